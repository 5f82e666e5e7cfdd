//! `flood`: does one flooding client slow everyone else down? `--rooms` rooms relay a paced
//! round trip each (`--every`), well under the rate limit, through alternating phases: quiet,
//! then with one more room whose first peer sends as fast as its socket takes frames. The
//! server refuses it (`error:rate-limited`) and closes it with 4429; the flooder resumes its
//! slot as often as JOIN_LIMITER would let it (`--reconnect-every`) and floods again, until
//! the phase ends. Each round trip is timed from when it was due, so a stall counts in full.
//! The verdict compares the round-trip p50 of the flood phases with that of the quiet phases
//! of the same run: within `--max-ratio` (1.2) passes.
//!
//! Run it with the deployed rate limit (`RATE_LIMIT_BURST` 100, `RATE_LIMIT_PER_SEC` 20), not
//! the raised one `bench/run.sh` uses for `relay`: the measured rooms stay under it, and the
//! flooder must be refused.

use super::{join_all, Ctx, Scenario};
use crate::args::{check_concurrency, check_rooms, check_size, fail, seconds, secs, ArgError};
use crate::local_server::{ServeArgs, Served};
use crate::payload;
use crate::report::{quantiles, Outcome, Report, Row};
use crate::room::{close, close_pair, Opened, Pair, RoomDial};
use crate::server::{own_cpu_s, Server};
use crate::stats::{Failure, Failures, Latency, Summary};
use crate::verdict::{any_failed, Criterion, Status};
use anyhow::Result;
use clap::Args;
use duet_client::protocol::{CloseCode, ErrorCode, ServerFrame};
use duet_client::{Dial, Event, Socket};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Round trips in many rooms with and without one flooding client in the same run;
/// PASS/FAIL on the ratio of the p50s.
#[derive(Debug, Clone, Args)]
pub struct FloodArgs {
    /// Rooms whose round trip is measured.
    #[arg(long, default_value_t = 50)]
    pub rooms: u32,
    /// Rooms being opened at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u32,
    /// Seconds between the round trips of each measured room (each peer then sends 1/every
    /// frames per second: keep it under RATE_LIMIT_PER_SEC).
    #[arg(long, default_value = "0.1", value_parser = secs)]
    pub every: f64,
    /// Seconds of each phase.
    #[arg(long, default_value = "10", value_parser = secs)]
    pub phase: f64,
    /// Quiet + flood phase pairs, alternating, so both halves see the same background load.
    #[arg(long, default_value_t = 3)]
    pub rounds: u32,
    /// Seconds of round trips before the first phase (not measured).
    #[arg(long, default_value = "2", value_parser = secs)]
    pub warmup: f64,
    /// Seconds at the start of each phase that are not measured, so that what the previous
    /// phase left queued (a flood's backlog) does not count against the next.
    #[arg(long, default_value = "2", value_parser = secs)]
    pub settle: f64,
    /// Bytes of each measured message frame.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Bytes of each flood frame.
    #[arg(long, default_value_t = 256)]
    pub flood_size: usize,
    /// Flood frames per second; 0: as fast as the socket takes them.
    #[arg(long, default_value_t = 0)]
    pub flood_rate: u32,
    /// Least seconds between the flooder's connects: 1 s is what JOIN_LIMITER (60 joins a
    /// minute per IP) allows a deployed client. The local server runs with it raised, since
    /// every room of the run joins from one IP, so the flooder keeps to it itself.
    #[arg(long, default_value = "1", value_parser = secs)]
    pub reconnect_every: f64,
    /// The flood phases' p50 may be at most this multiple of the quiet phases'.
    #[arg(long, default_value_t = 1.2)]
    pub max_ratio: f64,
    #[command(flatten)]
    pub serve: ServeArgs,
}

impl Scenario for FloodArgs {
    fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("every", self.every, 0.01)?;
        seconds("phase", self.phase, 1.0)?;
        seconds("warmup", self.warmup, 0.0)?;
        seconds("settle", self.settle, 0.0)?;
        if self.settle >= self.phase {
            return fail("--settle must be shorter than --phase");
        }
        seconds("reconnect-every", self.reconnect_every, 0.0)?;
        if self.rounds == 0 || self.rounds > 100 {
            return fail("--rounds must be 1 to 100");
        }
        check_size(self.size)?;
        check_size(self.flood_size)?;
        if !(self.max_ratio.is_finite() && self.max_ratio >= 1.0) {
            return fail("--max-ratio must be at least 1");
        }
        seconds("start-timeout", self.serve.start_timeout, 1.0)?;
        Ok(())
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, Result<Vec<Outcome>>> {
        async move {
            let mut served = Served::start(&ctx.base, &self.serve, "flood", ctx.chatty).await?;
            let report = measure(ctx, &served.processes(&ctx.server), self).await;
            served.stop().await;
            Ok(vec![Outcome::new(report)])
        }
        .boxed()
    }
}

/// Which phase the run is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Quiet(u32),
    Flood(u32),
    Over,
}

/// What the flooder did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FloodStats {
    /// Rooms the flooder opened (one per flood phase).
    pub rooms: u64,
    pub frames_sent: u64,
    /// `error:rate-limited` answers.
    pub refused: u64,
    /// Flood frames relayed to the flooder's peer.
    pub relayed: u64,
    /// Sockets the server closed with 4429.
    pub closed_4429: u64,
    /// Other ends of a flooding socket (close codes, errors).
    pub other_ends: Failures,
    pub resumes: u64,
    /// Connect → 4429 close of each flooding socket.
    pub time_to_close: Option<Summary>,
    /// Frames the flooder sent per second of flood phase.
    pub frames_per_s: f64,
}

/// CPU seconds used during one half of the run (all its phases), by process role.
#[derive(Debug, Clone, Default, Serialize)]
pub struct HalfCpu {
    /// `proxy`, `runtime`, `wrangler` (the local server's processes) and `client` (this one:
    /// the measured rooms, and in the flood half the flooder).
    pub cpu_s: BTreeMap<String, f64>,
}

impl HalfCpu {
    fn add(&mut self, role: &str, s: f64) {
        *self.cpu_s.entry(role.to_owned()).or_default() += s;
    }

    pub fn describe(&self) -> String {
        self.cpu_s
            .iter()
            .map(|(role, s)| format!("{role} {s:.1} s"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct FloodReport {
    pub rooms: u32,
    pub rounds: u32,
    pub phase_s: f64,
    /// The first seconds of each phase, not measured.
    pub settle_s: f64,
    pub every_s: f64,
    pub flood_rate: u32,
    /// Round trips of the measured rooms in the quiet phases.
    pub quiet: Option<Summary>,
    /// And in the flood phases.
    pub flooded: Option<Summary>,
    /// Flood p50 / quiet p50, and the same for each round.
    pub ratio: Option<f64>,
    pub round_ratios: Vec<Option<f64>>,
    pub flooder: FloodStats,
    pub failures: Failures,
    /// Where the CPU went in each half.
    pub quiet_cpu: HalfCpu,
    pub flood_cpu: HalfCpu,
    pub criteria: Vec<Criterion>,
}

/// CPU seconds so far of the server's processes by role, and of this process.
fn cpu_now(server: &Server) -> BTreeMap<String, f64> {
    let mut now = BTreeMap::new();
    for p in server.sample().map(|s| s.processes).unwrap_or_default() {
        *now.entry(p.role.to_owned()).or_default() += p.cpu_s;
    }
    now.insert("client".into(), own_cpu_s());
    now
}

/// Each round's round trips: `[quiet, flood]`.
type Hists = Arc<Mutex<Vec<[Latency; 2]>>>;

async fn measure(ctx: &Ctx, server: &Server, args: &FloodArgs) -> FloodReport {
    let every = Duration::from_secs_f64(args.every);
    let (phase_tx, phase_rx) = watch::channel(Phase::Warmup);
    // The phase whose round trips are being recorded: set once the phase has settled.
    let (measure_tx, measure_rx) = watch::channel(None::<Phase>);
    let rounds = args.rounds as usize;
    let hists: Hists = Arc::new(Mutex::new(vec![[Latency::new(), Latency::new()]; rounds]));
    let (limit, size, n) = (ctx.timeout, args.size, args.rooms);
    let rooms = ctx
        .open_rooms("flood-m", n, args.concurrency, |i, dial, opening| {
            let offset = every.mul_f64(f64::from(i) / f64::from(n));
            let room = Measured {
                limit,
                size,
                every,
                offset,
            };
            let (phase_rx, measure_rx) = (phase_rx.clone(), measure_rx.clone());
            let hists = Arc::clone(&hists);
            async move {
                match opening.open(&dial, &mut Opened::default()).await {
                    Ok(pair) => room.run(pair, phase_rx, measure_rx, hists).await,
                    Err(failure) => Some(failure),
                }
            }
        })
        .await;
    let flooder = Flooder {
        rooms: (0..args.rounds).map(|r| ctx.room("flood-f", r)).collect(),
        size: args.flood_size,
        rate: args.flood_rate,
        reconnect_every: Duration::from_secs_f64(args.reconnect_every),
    };
    let flood_task = tokio::spawn(flooder.run(phase_rx.clone()));
    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let cpu = phases(ctx, server, args, &phase_tx, &measure_tx).await;
    let _ = phase_tx.send(Phase::Over);
    let mut failures = Failures::default();
    for failure in join_all(rooms, Some).await.into_iter().flatten() {
        failures.add(&failure);
    }
    let mut flooder = flood_task.await.unwrap_or_default();
    flooder.frames_per_s = flooder.frames_sent as f64 / (args.phase * f64::from(args.rounds));
    let hists = hists.lock().map(|h| h.clone()).unwrap_or_default();
    report(args, &hists, flooder, failures, cpu)
}

/// Runs the quiet and flood phases in turn; the CPU each half used.
async fn phases(
    ctx: &Ctx,
    server: &Server,
    args: &FloodArgs,
    phase_tx: &watch::Sender<Phase>,
    measure_tx: &watch::Sender<Option<Phase>>,
) -> [HalfCpu; 2] {
    let phase = Duration::from_secs_f64(args.phase);
    let settle = Duration::from_secs_f64(args.settle);
    let mut cpu = [HalfCpu::default(), HalfCpu::default()];
    for round in 0..args.rounds {
        for (half, next) in [Phase::Quiet(round), Phase::Flood(round)]
            .into_iter()
            .enumerate()
        {
            ctx.note(format_args!("flood: {next:?}"));
            let _ = phase_tx.send(next);
            let measured_from = Instant::now() + settle;
            ctx.wait_with_bar(measured_from, "settle").await;
            let _ = measure_tx.send(Some(next));
            let before = cpu_now(server);
            ctx.wait_with_bar(measured_from + phase - settle, "phase")
                .await;
            let _ = measure_tx.send(None);
            for (role, after) in cpu_now(server) {
                cpu[half].add(&role, after - before.get(&role).copied().unwrap_or(0.0));
            }
        }
    }
    cpu
}

fn report(
    args: &FloodArgs,
    hists: &[[Latency; 2]],
    flooder: FloodStats,
    failures: Failures,
    [quiet_cpu, flood_cpu]: [HalfCpu; 2],
) -> FloodReport {
    let mut quiet = Latency::new();
    let mut flooded = Latency::new();
    let mut round_ratios = Vec::new();
    for [q, f] in hists {
        quiet.merge(q);
        flooded.merge(f);
        round_ratios.push(ratio(q.summary(), f.summary()));
    }
    let (quiet, flooded) = (quiet.summary(), flooded.summary());
    let ratio = ratio(quiet, flooded);
    let criteria = criteria(args, quiet, flooded, ratio, &flooder, &failures);
    FloodReport {
        rooms: args.rooms,
        rounds: args.rounds,
        phase_s: args.phase,
        settle_s: args.settle,
        every_s: args.every,
        flood_rate: args.flood_rate,
        quiet,
        flooded,
        ratio,
        round_ratios,
        flooder,
        failures,
        quiet_cpu,
        flood_cpu,
        criteria,
    }
}

/// Flooded p50 over quiet p50.
pub fn ratio(quiet: Option<Summary>, flooded: Option<Summary>) -> Option<f64> {
    match (quiet, flooded) {
        (Some(q), Some(f)) if q.p50_ms > 0.0 => Some(f.p50_ms / q.p50_ms),
        _ => None,
    }
}

/// The verdict: the ratio within the limit, the flooder refused and closed, and the measured
/// rooms never failing.
pub fn criteria(
    args: &FloodArgs,
    quiet: Option<Summary>,
    flooded: Option<Summary>,
    ratio: Option<f64>,
    flooder: &FloodStats,
    failures: &Failures,
) -> Vec<Criterion> {
    let p50 = |s: Option<Summary>| s.map_or("-".into(), |s| format!("{:.3} ms", s.p50_ms));
    let latency = match ratio {
        Some(r) => Criterion::new(
            "round-trip p50 under flood within the limit of the same run without",
            r <= args.max_ratio,
            format!(
                "p50 {} with the flood, {} without: ×{r:.2} (limit ×{:.2}); {} + {} round trips",
                p50(flooded),
                p50(quiet),
                args.max_ratio,
                flooded.map_or(0, |s| s.count),
                quiet.map_or(0, |s| s.count),
            ),
        ),
        None => Criterion {
            name: "round-trip p50 under flood within the limit of the same run without",
            status: Status::Fail,
            figures: "no round trips in one of the halves".into(),
        },
    };
    let refused = Criterion::new(
        "the flooder is refused and closed with 4429",
        flooder.refused > 0 && flooder.closed_4429 > 0,
        format!(
            "{} frames sent ({:.0}/s), {} relayed, {} refused, {} closes 4429, {} resumes; other \
             ends: {}",
            flooder.frames_sent,
            flooder.frames_per_s,
            flooder.relayed,
            flooder.refused,
            flooder.closed_4429,
            flooder.resumes,
            flooder.other_ends.describe()
        ),
    );
    let rooms = Criterion::new(
        "no measured room fails",
        failures.total() == 0,
        format!("failures: {}", failures.describe()),
    );
    vec![latency, refused, rooms]
}

struct Measured {
    limit: Duration,
    size: usize,
    every: Duration,
    offset: Duration,
}

impl Measured {
    /// Round trips every `every` until the run is over; each one that is due and ends within
    /// the measured part of the same quiet or flood phase is recorded in that phase's
    /// histogram, timed from when it was due.
    async fn run(
        self,
        mut pair: Pair,
        phase_rx: watch::Receiver<Phase>,
        measure_rx: watch::Receiver<Option<Phase>>,
        hists: Hists,
    ) -> Option<Failure> {
        let mut tick =
            tokio::time::interval_at(tokio::time::Instant::now() + self.offset, self.every);
        // A round trip that is late because the one before stalled counts from when it was
        // due: missed ticks fire at once, each with its own due time, so a stall shows in
        // full instead of as fewer round trips (coordinated omission).
        tick.set_missed_tick_behavior(MissedTickBehavior::Burst);
        let mut seq = 0u64;
        let failure = loop {
            let due = tick.tick().await.into_std();
            if *phase_rx.borrow() == Phase::Over {
                break None;
            }
            let phase = *measure_rx.borrow();
            let data = payload::data(self.size, seq);
            seq += 1;
            let trip = pair.round_trip(&data, self.limit);
            if let Err(failure) = trip.await {
                break Some(failure);
            }
            let took = due.elapsed();
            let slot = match (phase, *measure_rx.borrow()) {
                (Some(Phase::Quiet(r)), Some(Phase::Quiet(s))) if r == s => Some((r, 0)),
                (Some(Phase::Flood(r)), Some(Phase::Flood(s))) if r == s => Some((r, 1)),
                _ => None,
            };
            if let (Some((round, half)), Ok(mut h)) = (slot, hists.lock()) {
                if let Some(pair) = h.get_mut(round as usize) {
                    pair[half].record(took);
                }
            }
        };
        close_pair(pair).await;
        failure
    }
}

struct Flooder {
    /// The flood room of each round: its flooder and its peer.
    rooms: Vec<RoomDial>,
    size: usize,
    rate: u32,
    reconnect_every: Duration,
}

impl Flooder {
    /// In each flood phase: a fresh room, and its first peer flooding, resuming after every
    /// close, until the phase ends.
    async fn run(self, mut phase_rx: watch::Receiver<Phase>) -> FloodStats {
        let mut stats = FloodStats::default();
        let mut time_to_close = Latency::new();
        while let Ok(Phase::Flood(round)) = phase_rx
            .wait_for(|p| matches!(p, Phase::Flood(_) | Phase::Over))
            .await
            .map(|p| *p)
        {
            let Some(room) = self.rooms.get(round as usize) else {
                break;
            };
            let (a, b, token) = match self.open(room).await {
                Ok(opened) => opened,
                Err(failure) => {
                    stats.other_ends.add(&failure);
                    let _ = phase_rx.wait_for(|p| *p != Phase::Flood(round)).await;
                    continue;
                }
            };
            stats.rooms += 1;
            // The peer only reads, so its socket never backs up.
            let (stop_tx, stop_rx) = watch::channel(false);
            let peer = tokio::spawn(drain(b, stop_rx));
            let mut flooding = Flooding {
                dial: room.a.clone(),
                token,
                phase: Phase::Flood(round),
            };
            flooding
                .run(&self, a, &mut phase_rx, &mut stats, &mut time_to_close)
                .await;
            let _ = stop_tx.send(true);
            stats.relayed += peer.await.unwrap_or(0);
        }
        stats.time_to_close = time_to_close.summary();
        stats
    }

    /// The flood room: the flooder (first, `created`) and its peer (`joined`), with the
    /// flooder's resume token. The lifecycle frames that follow are read and ignored.
    async fn open(&self, room: &RoomDial) -> Result<(Socket, Socket, String), Failure> {
        let (a, welcomed) = Socket::join(&room.a).await.map_err(Failure::connect)?;
        match Socket::join(&room.b).await {
            Ok((b, _)) => Ok((a, b, welcomed.welcome.resume_token)),
            Err(e) => {
                close(a).await;
                Err(Failure::connect(e))
            }
        }
    }
}

/// One flood phase's flooder: floods, and resumes its slot after each close.
struct Flooding {
    dial: Dial,
    token: String,
    phase: Phase,
}

impl Flooding {
    async fn run(
        &mut self,
        flooder: &Flooder,
        first: Socket,
        phase_rx: &mut watch::Receiver<Phase>,
        stats: &mut FloodStats,
        time_to_close: &mut Latency,
    ) {
        let mut socket = Some(first);
        let mut connected_at = Instant::now();
        while *phase_rx.borrow() == self.phase {
            let ws = match socket.take() {
                Some(ws) => ws,
                None => {
                    let next = connected_at + flooder.reconnect_every;
                    tokio::select! {
                        _ = tokio::time::sleep_until(next.into()) => {}
                        _ = phase_rx.wait_for(|p| *p != self.phase) => break,
                    }
                    connected_at = Instant::now();
                    match self.resume().await {
                        Ok(ws) => {
                            stats.resumes += 1;
                            ws
                        }
                        Err(failure) => {
                            stats.other_ends.add(&failure);
                            continue;
                        }
                    }
                }
            };
            let started = Instant::now();
            match flooder.flood(ws, phase_rx, self.phase, stats).await {
                End::Closed4429 => {
                    stats.closed_4429 += 1;
                    time_to_close.record(started.elapsed());
                }
                End::PhaseOver(ws) => {
                    close(*ws).await;
                    break;
                }
                End::Other(failure) => stats.other_ends.add(&failure),
            }
        }
    }

    /// Takes the slot back with the last token; the welcome brings the next one.
    async fn resume(&mut self) -> Result<Socket, Failure> {
        let dial = self.dial.clone().resume(self.token.clone());
        let (ws, welcomed) = Socket::join(&dial).await.map_err(Failure::connect)?;
        if welcomed.resumed() {
            self.token = welcomed.welcome.resume_token;
            Ok(ws)
        } else {
            close(ws).await;
            Err(Failure::Unexpected("joined (not resumed)".into()))
        }
    }
}

impl Flooder {
    /// Sends flood frames on `ws` until the server closes it or the phase ends, reading its
    /// answers meanwhile.
    async fn flood(
        &self,
        ws: Socket,
        phase_rx: &mut watch::Receiver<Phase>,
        phase: Phase,
        stats: &mut FloodStats,
    ) -> End {
        let (mut tx, mut rx) = ws.split();
        let text = payload::frame(&payload::data(self.size, 0));
        let gap = (self.rate > 0).then(|| Duration::from_secs_f64(1.0 / f64::from(self.rate)));
        let mut next_at = Instant::now();
        let end = loop {
            let at = next_at;
            tokio::select! {
                biased;
                changed = phase_rx.changed() => {
                    if changed.is_err() || *phase_rx.borrow() != phase {
                        break None;
                    }
                }
                event = rx.recv() => if let Some(end) = answer(event, stats) {
                    break Some(end);
                },
                sent = async {
                    if gap.is_some() {
                        tokio::time::sleep_until(at.into()).await;
                    }
                    tx.send_text(text.as_str()).await
                } => {
                    if sent.is_err() {
                        // The server closed it: its close frame is next.
                        break Some(answer(rx.recv().await, stats).unwrap_or(End::Other(Failure::Closed(None))));
                    }
                    stats.frames_sent += 1;
                    if let Some(gap) = gap {
                        next_at += gap;
                    }
                }
            }
        };
        match end {
            Some(end) => end,
            None => match tx.reunite(rx) {
                Ok(ws) => End::PhaseOver(Box::new(ws)),
                Err(e) => End::Other(e.into()),
            },
        }
    }
}

/// What the server's answer to the flood means: a refusal is counted, a close ends it.
fn answer(event: Option<Event>, stats: &mut FloodStats) -> Option<End> {
    match event? {
        Event::Frame(ServerFrame::Error {
            code: ErrorCode::RateLimited,
            ..
        }) => stats.refused += 1,
        Event::SocketClosed(close) if close.code == CloseCode::RateLimited.code() => {
            return Some(End::Closed4429)
        }
        Event::SocketClosed(close) => {
            return Some(End::Other(duet_client::Error::Closed(close).into()))
        }
        _ => {}
    }
    None
}

enum End {
    Closed4429,
    PhaseOver(Box<Socket>),
    Other(Failure),
}

/// Reads a socket until told to stop; returns the messages it got.
async fn drain(mut ws: Socket, mut stop: watch::Receiver<bool>) -> u64 {
    let mut messages = 0;
    loop {
        tokio::select! {
            _ = stop.changed() => break,
            event = ws.recv() => match event {
                Some(Event::Message { .. }) => messages += 1,
                Some(Event::SocketClosed(_)) | None => break,
                Some(_) => {}
            },
        }
    }
    close(ws).await;
    messages
}

impl Report for FloodReport {
    fn name(&self) -> &'static str {
        "flood"
    }

    fn did_anything(&self) -> bool {
        self.quiet.is_some() || self.flooded.is_some()
    }

    fn failed(&self) -> bool {
        any_failed(&self.criteria)
    }

    fn row(&self) -> Row {
        let [q50, q99, qmax] = quantiles(&self.quiet);
        let row = Row::new(
            "flood".into(),
            self.rooms,
            &self.flooded,
            self.ratio.map_or("-".into(), |x| format!("×{x:.2} p50")),
            "-".into(),
            self.failures.total(),
        );
        let ratios = self
            .round_ratios
            .iter()
            .map(|x| x.map_or("-".into(), |x| format!("×{x:.2}")))
            .collect::<Vec<_>>()
            .join(", ");
        let mut details: Vec<String> = self.criteria.iter().map(Criterion::line).collect();
        details.extend([
            format!(
                "latency is the round trip under flood; without: p50 {q50}, p99 {q99}, max {qmax}"
            ),
            format!(
                "CPU without the flood: {}; with: {}",
                self.quiet_cpu.describe(),
                self.flood_cpu.describe()
            ),
            format!(
                "{} rounds of {:.0} s quiet + {:.0} s flood (the first {:.0} s of each not \
                 measured), a round trip every {:.0} ms per room, timed from when it was due; \
                 ratio per round: {ratios}",
                self.rounds,
                self.phase_s,
                self.phase_s,
                self.settle_s,
                self.every_s * 1000.0,
            ),
        ]);
        row.details(details)
    }
}
