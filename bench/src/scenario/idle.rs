//! `idle`: rooms × 2 sockets held open with the client's keep-alive (the exact ping, which the
//! runtime answers without waking the room's object), then every room must still relay a
//! message each way. Reports the local server's memory and open files per socket.
//!
//! One room is opened and closed before the first memory sample, so what the server does once
//! (compiling the Worker, its first Durable Object) is not counted per socket.

use super::{join_all, Ctx, Scenario};
use crate::args::{check_concurrency, check_rooms, seconds, ArgError, MIN_MESSAGE_BYTES};
use crate::payload;
use crate::report::{failures_line, Outcome, Report, Row};
use crate::room::{close_pair, expect_relay, open_room, Opened, Pair};
use crate::server::Sample;
use crate::stats::{Failure, Failures, Latency, Summary};
use duet_client::Event;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde::Serialize;
use serde_json::value::RawValue;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::time::MissedTickBehavior;

/// Hold rooms × 2 sockets with the client keep-alive, then check every room still relays;
/// server memory per socket.
#[derive(Debug, Clone, clap::Args)]
pub struct IdleArgs {
    /// Rooms to hold (two sockets each).
    #[arg(long, default_value_t = 1_000)]
    pub rooms: u32,
    /// Rooms being opened at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u32,
    /// Seconds to hold every socket once all are open.
    #[arg(long, default_value_t = 30.0)]
    pub duration: f64,
    /// Seconds between the keep-alive pings of each socket (the client sends one every 20 s).
    #[arg(long, default_value_t = 20.0)]
    pub ping_interval: f64,
}

impl Scenario for IdleArgs {
    fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("duration", self.duration, 0.0)?;
        seconds("ping-interval", self.ping_interval, 0.1)?;
        Ok(())
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, anyhow::Result<Vec<Outcome>>> {
        async move { Ok(vec![Outcome::new(run(ctx, "idle", self).await)]) }.boxed()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub rooms: u32,
    pub rooms_open: u64,
    pub sockets_open: u64,
    pub held_s: f64,
    pub ping_interval_s: f64,
    pub pings: u64,
    pub pongs: u64,
    /// Rooms that relayed a message each way after the hold.
    pub rooms_relaying: u64,
    /// Round trip of the check after the hold (first peer → second → first).
    pub check_rtt: Option<Summary>,
    /// Connect → welcome while opening.
    pub welcome: Option<Summary>,
    pub failures: Failures,
    pub memory: Option<Memory>,
}

/// The server's processes before any socket, once all were open, at the end of the hold, and
/// after every socket closed.
#[derive(Debug, Clone, Serialize)]
pub struct Memory {
    pub before: Sample,
    pub open: Sample,
    pub held: Sample,
    pub closed: Sample,
    /// (held − before) resident memory per open socket.
    pub rss_per_socket_kib: Option<f64>,
    /// (held − before) open files per open socket.
    pub files_per_socket: Option<f64>,
}

#[derive(Default)]
struct RoomRun {
    opened: bool,
    welcome: Latency,
    pings: u64,
    pongs: u64,
    check: Option<Duration>,
    failure: Option<Failure>,
}

pub async fn run(ctx: &Ctx, tag: &str, args: &IdleArgs) -> IdleReport {
    let interval = Duration::from_secs_f64(args.ping_interval);
    warm_up(ctx, tag).await;
    let before = ctx.server.sample();
    let (check_tx, check_rx) = watch::channel(false);
    let first_ping = Instant::now() + interval;
    let (limit, rooms) = (ctx.timeout, args.rooms);
    let handles = ctx
        .open_rooms(tag, rooms, args.concurrency, |i, dial, opening| {
            // Spread the keep-alives over the interval, as independent clients would be.
            let phase = interval.mul_f64(f64::from(i) / f64::from(rooms));
            let room = Room {
                limit,
                index: i,
                first_ping: first_ping + phase,
                interval,
            };
            let check_rx = check_rx.clone();
            async move {
                let mut opened = Opened::default();
                let result = opening.open(&dial, &mut opened).await;
                room.run(result, opened, check_rx).await
            }
        })
        .await;
    let open = ctx.server.sample();
    ctx.wait_with_bar(
        Instant::now() + Duration::from_secs_f64(args.duration),
        "hold",
    )
    .await;
    let held = ctx.server.sample();
    let _ = check_tx.send(true);
    let runs = join_all(handles, |f| RoomRun {
        failure: Some(f),
        ..RoomRun::default()
    })
    .await;
    let mut report = report(args, runs);
    // Give the server a moment to handle the closes before the last sample.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed = ctx.server.sample();
    if let (Some(before), Some(open), Some(held), Some(closed)) = (before, open, held, closed) {
        report.memory = Some(memory(report.sockets_open, before, open, held, closed));
    }
    report
}

fn report(args: &IdleArgs, runs: Vec<RoomRun>) -> IdleReport {
    let mut report = IdleReport {
        rooms: args.rooms,
        rooms_open: 0,
        sockets_open: 0,
        held_s: args.duration,
        ping_interval_s: args.ping_interval,
        pings: 0,
        pongs: 0,
        rooms_relaying: 0,
        check_rtt: None,
        welcome: None,
        failures: Failures::default(),
        memory: None,
    };
    let (mut welcome, mut check) = (Latency::new(), Latency::new());
    for run in runs {
        report.rooms_open += u64::from(run.opened);
        report.pings += run.pings;
        report.pongs += run.pongs;
        welcome.merge(&run.welcome);
        if let Some(d) = run.check {
            check.record(d);
        }
        if let Some(failure) = &run.failure {
            report.failures.add(failure);
        }
    }
    report.sockets_open = 2 * report.rooms_open;
    report.rooms_relaying = check.count();
    report.check_rtt = check.summary();
    report.welcome = welcome.summary();
    report
}

fn memory(sockets: u64, before: Sample, open: Sample, held: Sample, closed: Sample) -> Memory {
    let sockets = sockets as f64;
    let per_socket =
        |after: u64, was: u64| (sockets > 0.0).then(|| (after as f64 - was as f64) / sockets);
    Memory {
        rss_per_socket_kib: per_socket(held.rss_kib, before.rss_kib),
        files_per_socket: per_socket(held.open_files, before.open_files),
        before,
        open,
        held,
        closed,
    }
}

/// Opens and closes one room, then gives the server a moment to handle the closes.
async fn warm_up(ctx: &Ctx, tag: &str) {
    let room = ctx.room(&format!("{tag}w"), 0);
    if let Ok(pair) = open_room(&room, &mut Opened::default()).await {
        close_pair(pair).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

struct Room {
    limit: Duration,
    index: u32,
    first_ping: Instant,
    interval: Duration,
}

impl Room {
    async fn run(
        self,
        opened: Result<Pair, Failure>,
        welcome: Opened,
        mut check_rx: watch::Receiver<bool>,
    ) -> RoomRun {
        let mut run = RoomRun {
            welcome: welcome.welcome,
            ..RoomRun::default()
        };
        let mut pair = match opened {
            Ok(pair) => pair,
            Err(failure) => {
                run.failure = Some(failure);
                return run;
            }
        };
        run.opened = true;
        let result = async {
            self.hold(&mut pair, &mut check_rx, &mut run).await?;
            self.check(&mut pair).await
        }
        .await;
        match result {
            Ok(rtt) => run.check = Some(rtt),
            Err(failure) => run.failure = Some(failure),
        }
        close_pair(pair).await;
        run
    }

    /// Pings both sockets every interval until told to check; only `pong`s may arrive.
    async fn hold(
        &self,
        pair: &mut Pair,
        check_rx: &mut watch::Receiver<bool>,
        run: &mut RoomRun,
    ) -> Result<(), Failure> {
        let mut tick = tokio::time::interval_at(self.first_ping.into(), self.interval);
        tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                changed = check_rx.changed() => {
                    if changed.is_err() || *check_rx.borrow() {
                        return Ok(());
                    }
                }
                _ = tick.tick() => {
                    pair.a.ping().await?;
                    pair.b.ping().await?;
                    run.pings += 2;
                }
                next = pair.a.recv() => run.pongs += pong(next)?,
                next = pair.b.recv() => run.pongs += pong(next)?,
            }
        }
    }

    /// A message each way; the time from the first send to the second arrival.
    async fn check(&self, pair: &mut Pair) -> Result<Duration, Failure> {
        let start = Instant::now();
        let there = payload::data(MIN_MESSAGE_BYTES, u64::from(self.index));
        pair.a.send_data(&there).await?;
        let there_same = |got: &RawValue| got.get() == there.get();
        let got = expect_relay(&mut pair.b, self.limit, "check relay", there_same).await?;
        let back = payload::data(MIN_MESSAGE_BYTES, u64::from(self.index) + 1);
        pair.b.send_data(&back).await?;
        let back_same = |got: &RawValue| got.get() == back.get();
        if got && expect_relay(&mut pair.a, self.limit, "check relay back", back_same).await? {
            Ok(start.elapsed())
        } else {
            Err(Failure::WrongData)
        }
    }
}

/// 1 for a `pong`, a failure for anything else.
fn pong(event: Option<Event>) -> Result<u64, Failure> {
    match event {
        Some(Event::Pong) => Ok(1),
        Some(Event::SocketClosed(close)) => Err(duet_client::Error::Closed(close).into()),
        Some(other) => Err(Failure::Unexpected(other.kind())),
        None => Err(Failure::Closed(None)),
    }
}

impl Report for IdleReport {
    fn name(&self) -> &'static str {
        "idle"
    }

    fn did_anything(&self) -> bool {
        self.rooms_open > 0
    }

    fn row(&self) -> Row {
        let memory = self
            .memory
            .as_ref()
            .and_then(|m| m.rss_per_socket_kib)
            .map_or("n/a".into(), |kib| format!("{kib:.1} KiB/socket"));
        let row = Row::new(
            format!("idle {:.0} s", self.held_s),
            self.rooms,
            &self.check_rtt,
            format!("{}/{} relay", self.rooms_relaying, self.rooms),
            memory,
            self.failures.total(),
        );
        let mut details = vec![format!(
            "{} sockets held {:.0} s, ping every {:.0} s: {} pings, {} pongs; latency is the check's round trip",
            self.sockets_open, self.held_s, self.ping_interval_s, self.pings, self.pongs
        )];
        match &self.memory {
            Some(m) => details.extend(m.lines()),
            None => details.push("server memory: n/a (no local server process found)".into()),
        }
        details.push(failures_line(&self.failures));
        row.details(details)
    }
}

impl Memory {
    /// The server's memory and open files, then each process's.
    fn lines(&self) -> Vec<String> {
        let mib = |kib: u64| kib as f64 / 1024.0;
        let mut lines = vec![format!(
            "server RSS {:.1} MiB before, {:.1} open, {:.1} held, {:.1} closed; open files {} → {} ({})",
            mib(self.before.rss_kib),
            mib(self.open.rss_kib),
            mib(self.held.rss_kib),
            mib(self.closed.rss_kib),
            self.before.open_files,
            self.held.open_files,
            self.files_per_socket
                .map_or("n/a".into(), |f| format!("{f:.1} per socket")),
        )];
        for p in &self.held.processes {
            let was = self.before.processes.iter().find(|b| b.pid == p.pid);
            lines.push(format!(
                "  {} ({} {}): RSS {:.1} → {:.1} MiB, files {} → {}",
                p.role,
                p.name,
                p.pid,
                mib(was.map_or(0, |b| b.rss_kib)),
                mib(p.rss_kib),
                was.map_or(0, |b| b.open_files),
                p.open_files
            ));
        }
        lines
    }
}
