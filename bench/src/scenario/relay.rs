//! `relay`: in each room the first peer sends a message, the second sends it back, and the
//! round trip is timed; one message in flight per room. `--mode auto-ping` / `object-ping`
//! replace the message by a ping that the runtime / the room's object answers, which splits
//! the cost of a relay into transport, object wake-up and the relay itself.

use super::{cpu_between, Ctx, ProcCpu};
use crate::cli::{RelayArgs, RelayMode};
use crate::conn::{
    close_pair, expect, expect_data, next_text, open_room_in_batch, send, Opened, Pair, RoomDial,
};
use crate::frame::{self, Frame};
use crate::server::own_cpu_s;
use crate::stats::{rate, Failure, Failures, Latency, Summary};
use duet::protocol::ServerFrameType;
use serde::Serialize;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, watch, Semaphore};

#[derive(Debug, Clone, Serialize)]
pub struct RelayReport {
    pub mode: &'static str,
    pub rooms: u32,
    /// Rooms that opened and took part in the timed phase.
    pub rooms_running: u64,
    pub size_bytes: usize,
    pub duration_s: f64,
    pub round_trips: u64,
    /// Round trips per second over the measured window, all rooms together.
    pub round_trips_per_s: f64,
    /// Messages the server relayed per second (two per round trip in relay mode; in the ping
    /// modes, frames answered per second).
    pub messages_per_s: f64,
    pub rtt: Option<Summary>,
    pub failures: Failures,
    /// Server CPU time during the measured window, per process.
    pub server_cpu: Vec<ProcCpu>,
    /// Server CPU microseconds per message (see `messages_per_s`), all processes.
    pub server_cpu_us_per_message: Option<f64>,
    pub client_cpu_s: f64,
}

/// When the timed phase starts measuring and when it ends.
#[derive(Clone, Copy)]
struct Window {
    measure_from: Instant,
    until: Instant,
}

/// What one room did.
#[derive(Default)]
struct RoomRun {
    opened: bool,
    rtt: Latency,
    failure: Option<Failure>,
}

pub async fn run(ctx: &Ctx, tag: &str, args: &RelayArgs) -> RelayReport {
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let setup = Arc::new(Semaphore::new(args.concurrency as usize));
    let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<()>();
    let (go_tx, go_rx) = watch::channel::<Option<Window>>(None);
    let handles: Vec<_> = (0..args.rooms)
        .map(|i| {
            let room = Room {
                dial: ctx.room(tag, i),
                timeout: ctx.timeout,
                size: args.size,
                mode: args.mode,
            };
            let setup = Arc::clone(&setup);
            let opened_tx = opened_tx.clone();
            let go_rx = go_rx.clone();
            tokio::spawn(room.run(setup, opened_tx, go_rx))
        })
        .collect();
    drop(opened_tx);

    let bar = ctx.bar(u64::from(args.rooms), "open rooms");
    while opened_rx.recv().await.is_some() {
        bar.inc(1);
    }
    bar.finish_and_clear();

    let start = Instant::now();
    let window = Window {
        measure_from: start + warmup,
        until: start + warmup + duration,
    };
    let _ = go_tx.send(Some(window));
    tokio::time::sleep_until(window.measure_from.into()).await;
    let before = ctx.server.sample();
    let cpu_before = own_cpu_s();
    ctx.wait_with_bar(window.until, "relay").await;
    let after = ctx.server.sample();
    let client_cpu_s = own_cpu_s() - cpu_before;

    let mut rtt = Latency::new();
    let mut failures = Failures::default();
    let mut running = 0;
    for handle in handles {
        let run = match handle.await {
            Ok(run) => run,
            Err(e) => RoomRun {
                failure: Some(Failure::Socket(format!("task: {e}"))),
                ..RoomRun::default()
            },
        };
        running += u64::from(run.opened);
        rtt.merge(&run.rtt);
        if let Some(failure) = &run.failure {
            failures.add(failure);
        }
    }

    let round_trips = rtt.count();
    let per_round_trip = if args.mode == RelayMode::Relay { 2 } else { 1 };
    let messages = round_trips * per_round_trip;
    let server_cpu = match (&before, &after) {
        (Some(b), Some(a)) => cpu_between(b, a),
        _ => Vec::new(),
    };
    let server_cpu_s: f64 = server_cpu.iter().map(|p| p.cpu_s).sum();
    RelayReport {
        mode: mode_name(args.mode),
        rooms: args.rooms,
        rooms_running: running,
        size_bytes: args.size,
        duration_s: args.duration,
        round_trips,
        round_trips_per_s: rate(round_trips, duration),
        messages_per_s: rate(messages, duration),
        rtt: rtt.summary(),
        failures,
        server_cpu_us_per_message: (!server_cpu.is_empty() && messages > 0)
            .then(|| server_cpu_s * 1e6 / messages as f64),
        server_cpu,
        client_cpu_s,
    }
}

pub fn mode_name(mode: RelayMode) -> &'static str {
    match mode {
        RelayMode::Relay => "relay",
        RelayMode::AutoPing => "auto-ping",
        RelayMode::ObjectPing => "object-ping",
    }
}

struct Room {
    dial: RoomDial,
    timeout: Duration,
    size: usize,
    mode: RelayMode,
}

impl Room {
    async fn run(
        self,
        setup: Arc<Semaphore>,
        opened_tx: mpsc::UnboundedSender<()>,
        mut go_rx: watch::Receiver<Option<Window>>,
    ) -> RoomRun {
        let mut run = RoomRun::default();
        let opened = open_room_in_batch(
            &self.dial,
            self.timeout,
            &setup,
            opened_tx,
            &mut Opened::default(),
        )
        .await;
        let mut pair = match opened {
            Ok(pair) => pair,
            Err(failure) => {
                run.failure = Some(failure);
                return run;
            }
        };
        run.opened = true;
        let window = match go_rx.wait_for(Option::is_some).await {
            Ok(window) => *window,
            Err(_) => None,
        };
        if let Some(window) = window {
            run.failure = self.ping_pong(&mut pair, window, &mut run.rtt).await.err();
        }
        close_pair(pair).await;
        run
    }

    async fn ping_pong(
        &self,
        pair: &mut Pair,
        window: Window,
        rtt: &mut Latency,
    ) -> Result<(), Failure> {
        let mut seq = 0u64;
        loop {
            let sent_at = Instant::now();
            if sent_at >= window.until {
                return Ok(());
            }
            match self.mode {
                RelayMode::Relay => {
                    let text = frame::message(self.size, seq);
                    send(&mut pair.a, text.as_str()).await?;
                    // Whatever reaches the sender meanwhile (say `error:rate-limited`) means
                    // the message will never arrive: fail with that instead of timing out.
                    let back = tokio::select! {
                        back = expect_data(&mut pair.b, self.timeout, "relay", frame::echo) => back?,
                        text = next_text(&mut pair.a, self.timeout, "relay") => {
                            return Err(text.map_or_else(|f| f, |t| Failure::Unexpected(Frame::classify(&t).kind())));
                        }
                    };
                    send(&mut pair.b, back).await?;
                    let same = expect_data(&mut pair.a, self.timeout, "relay back", |d| {
                        d == frame::data_of(&text)
                    })
                    .await?;
                    if !same {
                        return Err(Failure::WrongData);
                    }
                }
                RelayMode::AutoPing | RelayMode::ObjectPing => {
                    let ping = if self.mode == RelayMode::AutoPing {
                        frame::PING
                    } else {
                        frame::OBJECT_PING
                    };
                    send(&mut pair.a, ping).await?;
                    expect(&mut pair.a, self.timeout, "pong", |f| {
                        *f == Frame::Is(ServerFrameType::Pong)
                    })
                    .await?;
                }
            }
            let done = Instant::now();
            if sent_at >= window.measure_from && done <= window.until {
                rtt.record(done - sent_at);
            }
            seq += 1;
        }
    }
}
