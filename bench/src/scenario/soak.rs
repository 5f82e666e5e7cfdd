//! `soak`: `--rooms` calls at once for `--duration`, each a room of two peers that ping,
//! relay checked messages both ways, lose a socket now and then and resume it, and end with a
//! `leave` so that a new call starts in a fresh room (churn). With `--serve` and
//! `--restart-every`, the local server is killed (SIGKILL of its whole process group) and
//! started again on the same storage during the run, as a deploy does.
//!
//! It ends with a verdict on five criteria (`docs/testing.md`, "Soak and chaos"): every resume
//! within the grace keeps its client id; no message reaches another room, the wrong socket,
//! or arrives twice; no pong is late outside a restart; the server's memory grows by less
//! than 10% from minute 2 to the end; and no error that neither a restart nor a deliberate
//! drop explains.

mod call;

use call::{Clock, Drops, Live, Plan, Resumes, SlotRun};

use super::{Ctx, Scenario};
use crate::args::{
    check_concurrency, check_rooms, fail, seconds, secs, ArgError, MAX_MESSAGE_BYTES,
};
use crate::incident::{describe, server_log_fault, Incident, Kind, Tally, Window};
use crate::ledger::Deliveries;
use crate::local_server::{LocalServer, ServeArgs, Served};
use crate::report::{Outcome, Report, Row};
use crate::server::{self, Server, PROXY, RUNTIME, WRANGLER};
use crate::stats::Summary;
use crate::verdict::{any_failed, memory_criterion, Criterion, Point};
use anyhow::{Context, Result};
use clap::Args;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};

/// Calls with churn, deliberate drops and resumes (with --serve and --restart-every, server
/// restarts) for minutes; every relayed message is checked. PASS/FAIL per criterion.
#[derive(Debug, Clone, Args)]
pub struct SoakArgs {
    /// Calls at once, each a room of two peers (churn replaces each ended call by a new one).
    #[arg(long, default_value_t = 1_000)]
    pub rooms: u32,
    /// How long calls are started (`600`, `10m`); the run then ends every call.
    #[arg(long, default_value = "10m", value_parser = secs)]
    pub duration: f64,
    /// Calls being opened at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u32,
    /// Shortest call, seconds (each call's length is uniform between the two).
    #[arg(long, default_value = "30", value_parser = secs)]
    pub call_min: f64,
    /// Longest call, seconds.
    #[arg(long, default_value = "120", value_parser = secs)]
    pub call_max: f64,
    /// Mean seconds between the messages of each peer (exponential gaps).
    #[arg(long, default_value = "5", value_parser = secs)]
    pub message_every: f64,
    /// Share of calls that send no messages until a check just before leaving, so their
    /// objects hibernate and are woken.
    #[arg(long, default_value_t = 0.1)]
    pub quiet_share: f64,
    /// Bytes of each message frame (at least what its probe needs).
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Seconds between keep-alive pings of each socket (the bundled client's 20 s).
    #[arg(long, default_value = "20", value_parser = secs)]
    pub ping_every: f64,
    /// Seconds a ping may wait for its pong (the bundled client's 10 s).
    #[arg(long, default_value = "10", value_parser = secs)]
    pub pong_timeout: f64,
    /// Mean seconds between deliberate socket drops in each room (abort, close 1001, or a
    /// second socket that resumes while the first is open); `0`: none.
    #[arg(long, default_value = "120", value_parser = secs)]
    pub drop_every: f64,
    /// A dropped socket resumes after a random delay up to this many seconds.
    #[arg(long, default_value = "5", value_parser = secs)]
    pub resume_delay_max: f64,
    /// The server's RESUME_GRACE_MS: a resume within it must keep its client id.
    #[arg(long, default_value_t = 15_000)]
    pub grace_ms: u64,
    /// Kill the --serve server (SIGKILL) and start it again on the same storage this often
    /// (`120s`).
    #[arg(long, value_parser = secs)]
    pub restart_every: Option<f64>,
    /// Seconds after a restart's server answers again during which restart errors are
    /// explained.
    #[arg(long, default_value = "30", value_parser = secs)]
    pub restart_settle: f64,
    /// Memory growth is measured from the last sample at or before this time to the end.
    #[arg(long, default_value = "2m", value_parser = secs)]
    pub memory_from: f64,
    /// Seconds between samples of the server's memory.
    #[arg(long, default_value = "10", value_parser = secs)]
    pub sample_every: f64,
    /// Seed of the random choices (default: from the clock; printed).
    #[arg(long)]
    pub seed: Option<u64>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// The smallest message: the probe with a 44-character room, a client id and a 20-digit
/// sequence number.
const MIN_SIZE: usize = 160;

impl Scenario for SoakArgs {
    fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("duration", self.duration, 1.0)?;
        seconds("call-min", self.call_min, 1.0)?;
        seconds("call-max", self.call_max, self.call_min)?;
        seconds("message-every", self.message_every, 0.1)?;
        seconds("ping-every", self.ping_every, 1.0)?;
        seconds("pong-timeout", self.pong_timeout, 0.1)?;
        if self.drop_every != 0.0 {
            seconds("drop-every", self.drop_every, 1.0)?;
        }
        let grace_s = self.grace_ms as f64 / 1000.0;
        seconds("resume-delay-max", self.resume_delay_max, 0.1)?;
        if self.resume_delay_max >= grace_s / 2.0 {
            return fail(format!(
                "--resume-delay-max must stay below half the grace ({grace_s} s): a resume \
                 must be back within it"
            ));
        }
        seconds("restart-settle", self.restart_settle, 0.0)?;
        seconds("memory-from", self.memory_from, 0.0)?;
        seconds("sample-every", self.sample_every, 0.5)?;
        if !(0.0..=1.0).contains(&self.quiet_share) {
            return fail("--quiet-share must be 0 to 1");
        }
        if !(MIN_SIZE..=MAX_MESSAGE_BYTES).contains(&self.size) {
            return fail(format!(
                "--size must be {MIN_SIZE} to {MAX_MESSAGE_BYTES} bytes"
            ));
        }
        seconds("start-timeout", self.serve.start_timeout, 1.0)?;
        self.check_restarts()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Vec<Outcome>>> {
        async move { Ok(vec![Outcome::new(run(ctx, self).await?)]) }.boxed()
    }
}

impl SoakArgs {
    fn check_restarts(&self) -> Result<(), ArgError> {
        if let Some(every) = self.restart_every {
            seconds("restart-every", every, 10.0)?;
            if self.serve.serve.is_none() {
                return fail(
                    "--restart-every needs --serve: duet-bench restarts only a server it started",
                );
            }
        }
        Ok(())
    }
}

/// The server's memory at one moment.
#[derive(Debug, Clone, Serialize)]
pub struct MemSample {
    pub t_s: f64,
    /// Both `workerd` processes: the criterion's figure.
    pub workerd_kib: u64,
    pub runtime_kib: u64,
    pub proxy_kib: u64,
    pub wrangler_kib: u64,
    /// CPU seconds so far of this server instance's processes (a restart starts again at 0).
    pub runtime_cpu_s: f64,
    pub proxy_cpu_s: f64,
    pub wrangler_cpu_s: f64,
    pub open_files: u64,
    /// The machine's 1-minute load average.
    pub load1: Option<f64>,
    /// `restart`: just before a kill; `end`: when the run stopped starting calls.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mark: Option<&'static str>,
}

fn mem_sample(server: &Server, clock: Clock, mark: Option<&'static str>) -> Option<MemSample> {
    let sample = server.sample()?;
    let role = |r: &str| -> u64 {
        sample
            .processes
            .iter()
            .filter(|p| p.role == r)
            .map(|p| p.rss_kib)
            .sum()
    };
    let cpu = |r: &str| -> f64 {
        sample
            .processes
            .iter()
            .filter(|p| p.role == r)
            .map(|p| p.cpu_s)
            .sum()
    };
    let (runtime_kib, proxy_kib) = (role(RUNTIME), role(PROXY));
    Some(MemSample {
        t_s: clock.s(Instant::now()),
        workerd_kib: runtime_kib + proxy_kib,
        runtime_kib,
        proxy_kib,
        wrangler_kib: role(WRANGLER),
        runtime_cpu_s: cpu(RUNTIME),
        proxy_cpu_s: cpu(PROXY),
        wrangler_cpu_s: cpu(WRANGLER),
        open_files: sample.open_files,
        load1: server::load_average().map(|l| l[0]),
        mark,
    })
}

/// CPU seconds the server's processes used over the samples, by role: the sum of the rises
/// between consecutive samples of the same instance (a restart's new processes start from 0,
/// so a fall marks a new instance and is skipped).
pub fn server_cpu(samples: &[MemSample]) -> [(&'static str, f64); 3] {
    let mut used = [(RUNTIME, 0.0), (PROXY, 0.0), (WRANGLER, 0.0)];
    for pair in samples.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        let rises = [
            b.runtime_cpu_s - a.runtime_cpu_s,
            b.proxy_cpu_s - a.proxy_cpu_s,
            b.wrangler_cpu_s - a.wrangler_cpu_s,
        ];
        if rises.iter().all(|r| *r >= 0.0) {
            for (slot, rise) in used.iter_mut().zip(rises) {
                slot.1 += rise;
            }
        }
    }
    used
}

/// One kill and start of the server.
#[derive(Debug, Clone, Serialize)]
pub struct Restart {
    pub killed_at_s: f64,
    pub up_at_s: f64,
    /// Kill → `/healthz` answers again.
    pub down_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub rooms: u32,
    pub duration_s: f64,
    pub seed: u64,
    pub restart_every_s: Option<f64>,
    pub drop_every_s: f64,
    pub grace_ms: u64,
    pub elapsed_s: f64,
    pub calls_started: u64,
    pub calls_completed: u64,
    pub calls_broken: u64,
    pub joins: u64,
    pub resumes: Resumes,
    pub drops: Drops,
    pub messages: Deliveries,
    /// Send → arrival of a relayed message (one way).
    pub message_latency: Option<Summary>,
    pub pings: u64,
    pub pongs: u64,
    pub pong_wait: Option<Summary>,
    /// The server's (re)start time before the run, seconds.
    pub first_start_s: Option<f64>,
    pub restarts: Vec<Restart>,
    /// The restart windows errors were explained by (kill → up + settle), milliseconds.
    pub restart_windows: Vec<Window>,
    pub memory: Vec<MemSample>,
    pub errors: Tally,
    pub criteria: Vec<Criterion>,
    pub client_cpu_s: f64,
}

/// The server's memory samples, taken by a task of their own and at restarts, of whichever
/// server instance is up.
struct Sampling {
    server: Mutex<Server>,
    samples: Mutex<Vec<MemSample>>,
    clock: Clock,
}

impl Sampling {
    fn take(&self, mark: Option<&'static str>) -> Option<MemSample> {
        let server = self.server.lock().ok()?;
        mem_sample(&server, self.clock, mark)
    }

    fn keep(&self, sample: Option<MemSample>) {
        if let (Some(sample), Ok(mut all)) = (sample, self.samples.lock()) {
            all.push(sample);
        }
    }

    fn set_server(&self, server: Server) {
        if let Ok(mut s) = self.server.lock() {
            *s = server;
        }
    }

    fn all(&self) -> Vec<MemSample> {
        self.samples.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

pub async fn run(ctx: &Ctx, args: &SoakArgs) -> Result<SoakReport> {
    let mut served = Served::start(&ctx.base, &args.serve, "soak", ctx.chatty).await?;
    let seed = args.seed.unwrap_or_else(clock_seed);
    let (up_tx, up_rx) = watch::channel(Instant::now());
    let plan = Arc::new(plan(ctx, args, seed, up_rx));
    let sampling = Arc::new(Sampling {
        server: Mutex::new(served.processes(&ctx.server)),
        samples: Mutex::default(),
        clock: plan.clock,
    });
    ctx.note(format_args!(
        "soak: {} calls for {:.0} s, seed {seed}, restarts {}",
        args.rooms,
        args.duration,
        args.restart_every
            .map_or("none".into(), |s| format!("every {s:.0} s"))
    ));
    let cpu_before = server::own_cpu_s();
    let every = Duration::from_secs_f64(args.sample_every);
    let sampler = tokio::spawn(sample(
        Arc::clone(&sampling),
        Arc::clone(&plan),
        every,
        ctx.chatty,
    ));
    let slots: Vec<_> = (0..args.rooms)
        .map(|i| tokio::spawn(call::run_slot(Arc::clone(&plan), i)))
        .collect();
    let mut total = SlotRun::default();
    let restarts = match (args.restart_every, served.local.as_mut()) {
        (Some(every), Some(local)) => {
            let restarter = Restarter {
                every: Duration::from_secs_f64(every),
                start_limit: args.serve.start_limit(),
                up_tx,
            };
            let incidents = &mut total.incidents;
            restarter.run(local, &plan, &sampling, incidents, ctx).await
        }
        _ => Vec::new(),
    };
    tokio::time::sleep_until(plan.stop_at.into()).await;
    sampling.keep(sampling.take(Some("end")));
    let _ = sampler.await;
    ctx.note("soak: ending every call");
    for slot in slots {
        let run = slot.await.unwrap_or_else(|e| SlotRun {
            incidents: vec![Incident::at(
                Kind::Unexpected(format!("call task failed: {e}")),
                plan.clock.ms(Instant::now()),
                false,
            )],
            ..SlotRun::default()
        });
        total.merge(run);
    }
    let ran = Ran {
        seed,
        elapsed_s: plan.clock.s(Instant::now()),
        client_cpu_s: server::own_cpu_s() - cpu_before,
        first_start_s: served.first_start.map(|d| d.as_secs_f64()),
        restarts,
        memory: sampling.all(),
    };
    served.stop().await;
    if let Some(local) = &served.local {
        scan_log(local, plan.clock, &mut total.incidents)?;
    }
    Ok(report(args, total, ran))
}

/// What every call of the run reads, from the flags.
fn plan(ctx: &Ctx, args: &SoakArgs, seed: u64, server_up: watch::Receiver<Instant>) -> Plan {
    let start = *server_up.borrow();
    let secs = Duration::from_secs_f64;
    Plan {
        base: ctx.base.clone(),
        prefix: ctx.prefix.clone(),
        seed,
        clock: Clock(start),
        stop_at: start + secs(args.duration),
        timeout: ctx.timeout,
        call_min: secs(args.call_min),
        call_max: secs(args.call_max),
        message_every: secs(args.message_every),
        quiet_share: args.quiet_share,
        size: args.size,
        ping_every: secs(args.ping_every),
        pong_timeout: secs(args.pong_timeout),
        drop_every: (args.drop_every > 0.0).then(|| secs(args.drop_every)),
        resume_delay_max: secs(args.resume_delay_max),
        grace: Duration::from_millis(args.grace_ms),
        give_up: args.serve.start_limit() + Duration::from_millis(args.grace_ms),
        open_permits: Semaphore::new(args.concurrency as usize),
        server_up,
        live: Live::default(),
    }
}

/// The processes of the server `--serve` started, found again after a restart.
fn served_processes(ctx: &Ctx) -> Server {
    Server::locate(&[], ctx.base.host_str(), ctx.base.port_or_known_default())
}

/// A seed from the clock, for a run without `--seed` (the report prints it).
fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// Samples the server's memory every `every` until the run stops starting calls; a progress
/// line every 30 s.
async fn sample(sampling: Arc<Sampling>, plan: Arc<Plan>, every: Duration, chatty: bool) {
    let mut tick = tokio::time::interval(every);
    let mut last_note = Instant::now();
    loop {
        tick.tick().await;
        if Instant::now() >= plan.stop_at {
            break;
        }
        let sample = sampling.take(None);
        if chatty && last_note.elapsed() >= Duration::from_secs(30) {
            last_note = Instant::now();
            let live = &plan.live;
            eprintln!(
                "soak {:>4.0} s: {} calls, {} messages delivered, {} resumes, workerd {}",
                plan.clock.s(Instant::now()),
                live.calls.load(Ordering::Relaxed),
                live.delivered.load(Ordering::Relaxed),
                live.resumes.load(Ordering::Relaxed),
                sample.as_ref().map_or("n/a".into(), |s| format!(
                    "{:.0} MiB, load {:.2}",
                    s.workerd_kib as f64 / 1024.0,
                    s.load1.unwrap_or(0.0)
                )),
            );
        }
        sampling.keep(sample);
    }
}

/// Kills the `--serve` server and starts it again, every `every` until the run's end.
struct Restarter {
    every: Duration,
    start_limit: Duration,
    /// When the server last came up, for the calls' grace.
    up_tx: watch::Sender<Instant>,
}

impl Restarter {
    async fn run(
        &self,
        server: &mut LocalServer,
        plan: &Plan,
        sampling: &Sampling,
        incidents: &mut Vec<Incident>,
        ctx: &Ctx,
    ) -> Vec<Restart> {
        let clock = plan.clock;
        let mut restarts = Vec::new();
        for k in 1.. {
            let at = clock.0 + self.every * k;
            if at >= plan.stop_at {
                break;
            }
            tokio::time::sleep_until(at.into()).await;
            sampling.keep(sampling.take(Some("restart")));
            sampling.set_server(Server::default());
            let killed = Instant::now();
            server.kill();
            if let Err(e) = server.start(self.start_limit).await {
                // No more restarts; the calls find no server and give up, and the report
                // says why.
                let why = format!("{e:#}");
                ctx.note(format_args!("soak: {why}"));
                incidents.push(Incident::at(
                    Kind::RestartFailed(why),
                    clock.ms(Instant::now()),
                    false,
                ));
                break;
            }
            let up = Instant::now();
            let _ = self.up_tx.send(up);
            sampling.set_server(served_processes(ctx));
            let down_s = (up - killed).as_secs_f64();
            ctx.note(format_args!(
                "soak {:>4.0} s: restarted, down {down_s:.1} s",
                clock.s(up)
            ));
            restarts.push(Restart {
                killed_at_s: clock.s(killed),
                up_at_s: clock.s(up),
                down_s,
            });
        }
        restarts
    }
}

/// The server's log, read for internal errors and panics once it stopped.
fn scan_log(server: &LocalServer, clock: Clock, incidents: &mut Vec<Incident>) -> Result<()> {
    let log = std::fs::read_to_string(server.log())
        .with_context(|| format!("reading {}", server.log().display()))?;
    let end_ms = clock.ms(Instant::now());
    for fault in log.lines().filter_map(server_log_fault) {
        incidents.push(Incident::at(Kind::ServerLog(fault), end_ms, false));
    }
    Ok(())
}

/// What the run itself measured, besides what the calls saw.
struct Ran {
    seed: u64,
    elapsed_s: f64,
    client_cpu_s: f64,
    first_start_s: Option<f64>,
    restarts: Vec<Restart>,
    memory: Vec<MemSample>,
}

fn report(args: &SoakArgs, total: SlotRun, ran: Ran) -> SoakReport {
    let settle_ms = (args.restart_settle * 1000.0) as u64;
    let windows: Vec<Window> = ran
        .restarts
        .iter()
        .map(|r| Window {
            from_ms: (r.killed_at_s * 1000.0) as u64,
            to_ms: (r.up_at_s * 1000.0) as u64 + settle_ms,
        })
        .collect();
    let mut report = SoakReport {
        rooms: args.rooms,
        duration_s: args.duration,
        seed: ran.seed,
        restart_every_s: args.restart_every,
        drop_every_s: args.drop_every,
        grace_ms: args.grace_ms,
        elapsed_s: ran.elapsed_s,
        calls_started: total.calls_started,
        calls_completed: total.calls_completed,
        calls_broken: total.calls_broken,
        joins: total.joins,
        resumes: total.resumes,
        drops: total.drops,
        messages: total.deliveries.clone(),
        message_latency: total.latency.summary(),
        pings: total.pings,
        pongs: total.pongs,
        pong_wait: total.pong_wait.summary(),
        first_start_s: ran.first_start_s,
        restarts: ran.restarts,
        errors: Tally::of(&total.incidents, &windows),
        restart_windows: windows,
        memory: ran.memory,
        criteria: Vec::new(),
        client_cpu_s: ran.client_cpu_s,
    };
    report.criteria = criteria(&report, args.memory_from);
    report
}

/// The five criteria, judged on the report's figures.
pub fn criteria(r: &SoakReport, memory_from_s: f64) -> Vec<Criterion> {
    let points: Vec<Point> = r
        .memory
        .iter()
        .map(|s| Point {
            t_s: s.t_s,
            kib: s.workerd_kib,
        })
        .collect();
    let memory = memory_criterion(
        "server memory (workerd RSS) grows by less than 10% from minute 2 to the end",
        &points,
        memory_from_s,
    );
    let errors = Criterion::new(
        "zero unexplained errors",
        r.errors.unexplained_total() == 0,
        format!(
            "unexplained: {}; explained: {} (by restarts {}, by deliberate drops {})",
            describe(&r.errors.unexplained),
            r.errors.explained_total(),
            r.errors.explained_by_restart.values().sum::<u64>(),
            r.errors.explained_by_drop.values().sum::<u64>(),
        ),
    );
    vec![
        resume_criterion(r),
        delivery_criterion(&r.messages),
        pong_criterion(r),
        memory,
        errors,
    ]
}

/// p50, p99 and max of a summary, `-` without one.
fn ms3(s: &Option<Summary>) -> [String; 3] {
    let ms = |f: fn(&Summary) -> f64| s.as_ref().map_or("-".into(), |s| format!("{:.1} ms", f(s)));
    [ms(|s| s.p50_ms), ms(|s| s.p99_ms), ms(|s| s.max_ms)]
}

fn resume_criterion(r: &SoakReport) -> Criterion {
    let res = &r.resumes;
    let [p50, p99, max] = ms3(&res.took.summary());
    Criterion::new(
        "every resume within the grace keeps its client id",
        res.lost_within_grace == 0,
        format!(
            "{} of {} resumes within the grace ({} ms) kept their id; took p50 {p50}, p99 {p99}, \
             max {max}; {} beyond the grace",
            res.within_grace - res.lost_within_grace,
            res.within_grace,
            r.grace_ms,
            res.beyond_grace
        ),
    )
}

fn delivery_criterion(m: &Deliveries) -> Criterion {
    Criterion::new(
        "no message delivered to another room or twice",
        m.misdelivered() == 0,
        format!(
            "{} sent, {} delivered; cross-room {}, duplicates {}, echoed {}, wrong sender {}, \
             never sent {}, malformed {}; reordered {}; lost {} while a socket was down, {} \
             otherwise",
            m.sent,
            m.delivered,
            m.cross_room,
            m.duplicate,
            m.echoed,
            m.wrong_sender,
            m.never_sent,
            m.malformed,
            m.reordered,
            m.lost_disrupted,
            m.lost_undisrupted
        ),
    )
}

fn pong_criterion(r: &SoakReport) -> Criterion {
    let label = Kind::PongTimeout.label();
    let late = |counts: &BTreeMap<String, u64>| counts.get(&label).copied().unwrap_or(0);
    let [p50, p99, max] = ms3(&r.pong_wait);
    Criterion::new(
        "no pong later than its timeout except across a restart",
        late(&r.errors.unexplained) == 0,
        format!(
            "{} pings, {} pongs; wait p50 {p50}, p99 {p99}, max {max}; timeouts: {} outside \
             restarts, {} across",
            r.pings,
            r.pongs,
            late(&r.errors.unexplained),
            late(&r.errors.explained_by_restart)
        ),
    )
}

impl Report for SoakReport {
    fn name(&self) -> &'static str {
        "soak"
    }

    fn did_anything(&self) -> bool {
        self.calls_started > 0
    }

    fn failed(&self) -> bool {
        any_failed(&self.criteria)
    }

    fn row(&self) -> Row {
        let growth = self
            .criteria
            .iter()
            .find(|c| c.name.starts_with("server memory"))
            .map_or("-".into(), |c| c.status.word().to_lowercase());
        let row = Row::new(
            format!("soak {:.0} s", self.duration_s),
            self.rooms,
            &self.message_latency,
            format!("{} msg", self.messages.delivered),
            growth,
            self.errors.unexplained_total(),
        );
        let mut details: Vec<String> = self.criteria.iter().map(Criterion::line).collect();
        details.extend(self.call_lines());
        details.extend(self.server_lines());
        row.details(details)
    }
}

impl SoakReport {
    /// What the calls did: started, dropped, messages.
    fn call_lines(&self) -> Vec<String> {
        let mut lines = vec![
            format!(
                "{} calls at once for {:.0} s (ran {:.0} s), seed {}: {} calls started, {} \
                 completed, {} broken; {} joins",
                self.rooms,
                self.duration_s,
                self.elapsed_s,
                self.seed,
                self.calls_started,
                self.calls_completed,
                self.calls_broken,
                self.joins
            ),
            format!(
                "drops (one per {:.0} s per room): {} aborted, {} closed 1001, {} replaced; {} \
                 resumes",
                self.drop_every_s,
                self.drops.abort,
                self.drops.close,
                self.drops.replace,
                self.resumes.total
            ),
        ];
        if let Some(l) = &self.message_latency {
            lines.push(format!(
                "message send → arrival: p50 {:.2} ms, p99 {:.1} ms, max {:.0} ms",
                l.p50_ms, l.p99_ms, l.max_ms
            ));
        }
        lines
    }

    /// What the server did: restarts, memory by minute, explained errors, CPU.
    fn server_lines(&self) -> Vec<String> {
        let mut lines = vec![match (&self.first_start_s, self.restarts.is_empty()) {
            (Some(first), true) => format!("server started in {first:.1} s, no restarts"),
            (Some(first), false) => format!(
                "server started in {first:.1} s; restarts (kill → /healthz): {}",
                self.restarts
                    .iter()
                    .map(|x| format!("{:.0} s ({:.1} s down)", x.killed_at_s, x.down_s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            (None, _) => "server not started by duet-bench".into(),
        }];
        let memory = self.memory_by_minute();
        if !memory.is_empty() {
            lines.push(format!("workerd RSS, MiB: {}", memory.join(", ")));
        }
        let cpu = server_cpu(&self.memory)
            .iter()
            .map(|(role, s)| {
                let share = s * 100.0 / self.elapsed_s.max(1.0);
                format!("{role} {s:.0} s ({share:.0}% of a core)")
            })
            .collect::<Vec<_>>()
            .join(", ");
        lines.extend([
            format!(
                "explained by restarts: {}",
                describe(&self.errors.explained_by_restart)
            ),
            format!(
                "explained by drops: {}",
                describe(&self.errors.explained_by_drop)
            ),
            format!(
                "CPU between samples: {cpu}; client {:.0} s (the whole run)",
                self.client_cpu_s
            ),
        ]);
        lines
    }

    /// The first sample of each minute and every marked one, in MiB.
    fn memory_by_minute(&self) -> Vec<String> {
        let mut minute = -1i64;
        let mut memory = Vec::new();
        for s in &self.memory {
            let m = (s.t_s / 60.0).floor() as i64;
            if s.mark.is_some() || m != minute {
                minute = m;
                let mark = s.mark.map_or(String::new(), |m| format!(" ({m})"));
                memory.push(format!(
                    "{:.0} s {:.0}{mark}",
                    s.t_s,
                    s.workerd_kib as f64 / 1024.0
                ));
            }
        }
        memory
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verdict::Status;

    fn report(incidents: &[Incident], windows: Vec<Window>) -> SoakReport {
        let memory = [(0.0, 100_000), (120.0, 200_000), (600.0, 210_000)]
            .iter()
            .map(|&(t_s, kib)| MemSample {
                t_s,
                workerd_kib: kib,
                runtime_kib: kib,
                proxy_kib: 0,
                wrangler_kib: 0,
                runtime_cpu_s: t_s / 2.0,
                proxy_cpu_s: 0.0,
                wrangler_cpu_s: 0.0,
                open_files: 0,
                load1: None,
                mark: None,
            })
            .collect();
        SoakReport {
            rooms: 2,
            duration_s: 600.0,
            seed: 1,
            restart_every_s: Some(120.0),
            drop_every_s: 120.0,
            grace_ms: 15_000,
            elapsed_s: 610.0,
            calls_started: 4,
            calls_completed: 4,
            calls_broken: 0,
            joins: 8,
            resumes: Resumes {
                total: 3,
                kept: 3,
                within_grace: 3,
                ..Resumes::default()
            },
            drops: Drops::default(),
            messages: Deliveries {
                sent: 10,
                delivered: 9,
                lost_disrupted: 1,
                ..Deliveries::default()
            },
            message_latency: None,
            pings: 5,
            pongs: 5,
            pong_wait: None,
            first_start_s: Some(5.0),
            restarts: Vec::new(),
            errors: Tally::of(incidents, &windows),
            restart_windows: windows,
            memory,
            criteria: Vec::new(),
            client_cpu_s: 1.0,
        }
    }

    fn statuses(r: &SoakReport) -> Vec<Status> {
        criteria(r, 120.0).iter().map(|c| c.status).collect()
    }

    #[test]
    fn a_clean_run_passes_every_criterion() {
        use Status::Pass;
        let restart = Window {
            from_ms: 120_000,
            to_ms: 150_000,
        };
        let explained = [
            Incident::at(Kind::ConnectionLost("closed 1006".into()), 120_100, false),
            Incident {
                kind: Kind::PongTimeout,
                from_ms: 115_000,
                to_ms: 125_000,
                own_drop: false,
            },
            Incident::at(Kind::Lost, 60_000, true),
        ];
        let r = report(&explained, vec![restart]);
        assert_eq!(statuses(&r), [Pass, Pass, Pass, Pass, Pass]);
        let pong = &criteria(&r, 120.0)[2];
        assert!(pong
            .figures
            .ends_with("timeouts: 0 outside restarts, 1 across"));
    }

    #[test]
    fn each_fault_fails_its_criterion() {
        use Status::{Fail, Pass};
        let mut r = report(&[], vec![]);
        r.resumes.lost_within_grace = 1;
        assert_eq!(statuses(&r)[0], Fail);

        let mut r = report(&[], vec![]);
        r.messages.duplicate = 1;
        assert_eq!(statuses(&r)[1], Fail);
        r.messages.duplicate = 0;
        r.messages.cross_room = 1;
        assert_eq!(statuses(&r)[1], Fail);

        // A pong timeout outside any restart fails the pong criterion and the error one.
        let late = Incident {
            kind: Kind::PongTimeout,
            from_ms: 10_000,
            to_ms: 20_000,
            own_drop: false,
        };
        let r = report(&[late], vec![]);
        assert_eq!(statuses(&r), [Pass, Pass, Fail, Pass, Fail]);

        let mut r = report(&[], vec![]);
        r.memory[2].workerd_kib = 220_000;
        assert_eq!(statuses(&r)[3], Fail);

        let r = report(
            &[Incident::at(Kind::Refused("rate-limited".into()), 1, true)],
            vec![],
        );
        assert_eq!(statuses(&r), [Pass, Pass, Pass, Pass, Fail]);
    }

    #[test]
    fn resumes_keep_their_json_keys() {
        let mut r = report(&[], vec![]);
        r.resumes.took.record(Duration::from_millis(5));
        let json = serde_json::to_value(Outcome::new(r)).unwrap();
        let keys: Vec<&str> = json["resumes"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(
            keys,
            [
                "beyond_grace",
                "kept_id",
                "lost_id_within_grace",
                "took",
                "total",
                "within_grace"
            ]
        );
        assert_eq!(json["resumes"]["took"]["count"], 1);
        assert_eq!(json["scenario"], "soak");
    }

    #[test]
    fn server_cpu_adds_the_rises_of_each_instance() {
        let mut r = report(&[], vec![]);
        // A restart after 120 s: the new instance starts from 0.
        r.memory[2].runtime_cpu_s = 5.0;
        r.memory.push(MemSample {
            t_s: 700.0,
            runtime_cpu_s: 15.0,
            ..r.memory[2].clone()
        });
        assert_eq!(server_cpu(&r.memory)[0], (RUNTIME, 60.0 + 10.0));
    }

    #[test]
    fn resumes_are_judged_within_the_grace() {
        let grace = Duration::from_secs(15);
        let mut r = Resumes::default();
        r.record(true, Duration::from_secs(1), grace);
        r.record(false, Duration::from_secs(14), grace);
        r.record(false, Duration::from_secs(15), grace);
        assert_eq!(
            (
                r.total,
                r.kept,
                r.within_grace,
                r.lost_within_grace,
                r.beyond_grace
            ),
            (3, 1, 2, 1, 1)
        );
    }
}
