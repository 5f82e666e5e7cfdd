//! `idle`: rooms × 2 sockets held open with the client's keep-alive (the exact ping, which the
//! runtime answers without waking the room's object), then every room must still relay a
//! message each way. Reports the local server's memory and open files per socket.
//!
//! One room is opened and closed before the first memory sample, so what the server does once
//! (compiling the Worker, its first Durable Object) is not counted per socket.

use super::Ctx;
use crate::cli::IdleArgs;
use crate::conn::{
    close_pair, expect_data, open_room, open_room_in_batch, send, Opened, Pair, RoomDial,
};
use crate::frame::{self, Frame};
use crate::server::Sample;
use crate::stats::{Failure, Failures, Latency, Summary};
use duet::protocol::ServerFrameType;
use futures_util::StreamExt;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::time::MissedTickBehavior;
use tokio_tungstenite::tungstenite::Message;

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
    let hold = Duration::from_secs_f64(args.duration);
    let interval = Duration::from_secs_f64(args.ping_interval);
    warm_up(ctx, tag).await;
    let before = ctx.server.sample();
    let setup = Arc::new(Semaphore::new(args.concurrency as usize));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<()>();
    let (check_tx, check_rx) = watch::channel(false);
    let first_ping = Instant::now();
    let handles: Vec<_> = (0..args.rooms)
        .map(|i| {
            // Spread the keep-alives over the interval, as independent clients would be.
            let phase = interval.mul_f64(f64::from(i) / f64::from(args.rooms));
            let room = Room {
                dial: ctx.room(tag, i),
                timeout: ctx.timeout,
                index: i,
                first_ping: first_ping + interval + phase,
                interval,
            };
            let setup = Arc::clone(&setup);
            let opened_tx = opened_tx.clone();
            tokio::spawn(room.run(setup, opened_tx, check_rx.clone()))
        })
        .collect();
    drop(opened_tx);

    let bar = ctx.bar(u64::from(args.rooms), "open rooms");
    while opened_rx.recv().await.is_some() {
        bar.inc(1);
    }
    bar.finish_and_clear();
    let open = ctx.server.sample();
    ctx.wait_with_bar(Instant::now() + hold, "hold").await;
    let held = ctx.server.sample();
    let _ = check_tx.send(true);

    let bar = ctx.bar(u64::from(args.rooms), "check rooms");
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
    let mut welcome = Latency::new();
    let mut check = Latency::new();
    for handle in handles {
        let run = handle.await.unwrap_or_else(|e| RoomRun {
            failure: Some(Failure::Socket(format!("task: {e}"))),
            ..RoomRun::default()
        });
        bar.inc(1);
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
    bar.finish_and_clear();
    report.sockets_open = 2 * report.rooms_open;
    report.rooms_relaying = check.count();
    report.check_rtt = check.summary();
    report.welcome = welcome.summary();
    // Give the server a moment to handle the closes before the last sample.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let closed = ctx.server.sample();
    if let (Some(before), Some(open), Some(held), Some(closed)) = (before, open, held, closed) {
        let sockets = report.sockets_open as f64;
        let per_socket =
            |after: u64, was: u64| (sockets > 0.0).then(|| (after as f64 - was as f64) / sockets);
        report.memory = Some(Memory {
            rss_per_socket_kib: per_socket(held.rss_kib, before.rss_kib),
            files_per_socket: per_socket(held.open_files, before.open_files),
            before,
            open,
            held,
            closed,
        });
    }
    report
}

/// Opens and closes one room, then gives the server a moment to handle the closes.
async fn warm_up(ctx: &Ctx, tag: &str) {
    let room = ctx.room(&format!("{tag}w"), 0);
    if let Ok(pair) = open_room(&room, ctx.timeout, &mut Opened::default()).await {
        close_pair(pair).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
}

struct Room {
    dial: RoomDial,
    timeout: Duration,
    index: u32,
    first_ping: Instant,
    interval: Duration,
}

impl Room {
    async fn run(
        self,
        setup: Arc<Semaphore>,
        opened_tx: mpsc::UnboundedSender<()>,
        mut check_rx: watch::Receiver<bool>,
    ) -> RoomRun {
        let mut run = RoomRun::default();
        let mut opened = Opened::default();
        let result =
            open_room_in_batch(&self.dial, self.timeout, &setup, opened_tx, &mut opened).await;
        run.welcome = opened.welcome;
        let mut pair = match result {
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
                    send(&mut pair.a, frame::PING).await?;
                    send(&mut pair.b, frame::PING).await?;
                    run.pings += 2;
                }
                next = pair.a.next() => run.pongs += pong(next)?,
                next = pair.b.next() => run.pongs += pong(next)?,
            }
        }
    }

    /// A message each way; the time from the first send to the second arrival.
    async fn check(&self, pair: &mut Pair) -> Result<Duration, Failure> {
        let start = Instant::now();
        let there = frame::message(frame::MIN_MESSAGE_BYTES, u64::from(self.index));
        send(&mut pair.a, there.as_str()).await?;
        let same = expect_data(&mut pair.b, self.timeout, "check relay", |d| {
            d == frame::data_of(&there)
        })
        .await?;
        let back = frame::message(frame::MIN_MESSAGE_BYTES, u64::from(self.index) + 1);
        send(&mut pair.b, back.as_str()).await?;
        let same_back = expect_data(&mut pair.a, self.timeout, "check relay back", |d| {
            d == frame::data_of(&back)
        })
        .await?;
        if same && same_back {
            Ok(start.elapsed())
        } else {
            Err(Failure::WrongData)
        }
    }
}

/// 1 for a `pong`, a failure for anything else.
fn pong(
    next: Option<Result<Message, tokio_tungstenite::tungstenite::Error>>,
) -> Result<u64, Failure> {
    match next {
        Some(Ok(Message::Text(text))) => match Frame::classify(&text) {
            Frame::Is(ServerFrameType::Pong) => Ok(1),
            other => Err(Failure::Unexpected(other.kind())),
        },
        Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(0),
        Some(Ok(Message::Binary(_))) => Err(Failure::Unexpected("binary".into())),
        Some(Ok(Message::Close(frame))) => Err(Failure::Closed(frame.map(|f| u16::from(f.code)))),
        Some(Err(e)) => Err(Failure::Socket(e.to_string().chars().take(60).collect())),
        None => Err(Failure::Closed(None)),
    }
}
