//! `relay`: in each room the first peer sends a message, the second sends it back, and the
//! round trip is timed; one message in flight per room. `--mode auto-ping` / `object-ping`
//! replace the message by a ping that the runtime / the room's object answers, which splits
//! the cost of a relay into transport, object wake-up and the relay itself.

use super::{join_all, Ctx, Scenario};
use crate::args::{check_concurrency, check_rooms, check_size, seconds, ArgError};
use crate::payload;
use crate::report::{cpu, failures_line, Outcome, Report, Row};
use crate::room::{close_pair, expect, Opened, Pair};
use crate::server::{cpu_between, own_cpu_s, ProcCpu};
use crate::stats::{rate, Failure, Failures, Latency, Summary};
use duet_client::Event;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde::Serialize;
use std::time::{Duration, Instant};
use tokio::sync::watch;

/// The two peers of each room ping-pong messages; round trip and relayed messages/s.
#[derive(Debug, Clone, clap::Args)]
pub struct RelayArgs {
    /// Rooms, each with one message in flight at a time.
    #[arg(long, default_value_t = 1)]
    pub rooms: u32,
    /// Rooms being opened at once before the timed phase.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u32,
    /// Seconds of measured ping-pong.
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Seconds of ping-pong before measuring starts.
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Bytes of each client `message` frame (the server's limit is MAX_MESSAGE_BYTES, 64 KiB
    /// by default).
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    #[arg(long, value_enum, default_value_t = RelayMode::Relay)]
    pub mode: RelayMode,
}

/// A ping in another spelling than the client's keep-alive, so that the room's object answers
/// it rather than the runtime (for profiling the object).
const OBJECT_PING: &str = r#"{"type":"ping","via":"object"}"#;

/// What the first peer of each room sends in a relay run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RelayMode {
    /// A `message` to the other peer, which sends it back: two relays per round trip.
    Relay,
    /// The exact ping, answered by the runtime without waking the room's object.
    AutoPing,
    /// A ping in another spelling, answered by the room's object (intake, no relay).
    ObjectPing,
}

impl RelayMode {
    fn name(self) -> &'static str {
        match self {
            RelayMode::Relay => "relay",
            RelayMode::AutoPing => "auto-ping",
            RelayMode::ObjectPing => "object-ping",
        }
    }
}

impl Scenario for RelayArgs {
    fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("duration", self.duration, 0.1)?;
        seconds("warmup", self.warmup, 0.0)?;
        check_size(self.size)
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, anyhow::Result<Vec<Outcome>>> {
        async move { Ok(vec![Outcome::new(run(ctx, "relay", self).await)]) }.boxed()
    }
}

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
    let (go_tx, go_rx) = watch::channel::<Option<Window>>(None);
    let (limit, size, mode) = (ctx.timeout, args.size, args.mode);
    let handles = ctx
        .open_rooms(tag, args.rooms, args.concurrency, |_, dial, opening| {
            let go_rx = go_rx.clone();
            async move {
                match opening.open(&dial, &mut Opened::default()).await {
                    Ok(pair) => Room { limit, size, mode }.run(pair, go_rx).await,
                    Err(failure) => RoomRun {
                        failure: Some(failure),
                        ..RoomRun::default()
                    },
                }
            }
        })
        .await;
    let start = Instant::now();
    let warmup = Duration::from_secs_f64(args.warmup);
    let duration = Duration::from_secs_f64(args.duration);
    let window = Window {
        measure_from: start + warmup,
        until: start + warmup + duration,
    };
    let _ = go_tx.send(Some(window));
    tokio::time::sleep_until(window.measure_from.into()).await;
    let before = ctx.server.sample();
    let cpu_before = own_cpu_s();
    ctx.wait_with_bar(window.until, "relay").await;
    let server_cpu = cpu_between(&before, &ctx.server.sample());
    let client_cpu_s = own_cpu_s() - cpu_before;
    let runs = join_all(handles, |f| RoomRun {
        failure: Some(f),
        ..RoomRun::default()
    })
    .await;
    report(args, runs, server_cpu, client_cpu_s)
}

fn report(
    args: &RelayArgs,
    runs: Vec<RoomRun>,
    server_cpu: Vec<ProcCpu>,
    client_cpu_s: f64,
) -> RelayReport {
    let mut rtt = Latency::new();
    let mut failures = Failures::default();
    let mut running = 0;
    for run in runs {
        running += u64::from(run.opened);
        rtt.merge(&run.rtt);
        if let Some(failure) = &run.failure {
            failures.add(failure);
        }
    }
    let duration = Duration::from_secs_f64(args.duration);
    let round_trips = rtt.count();
    let messages = round_trips * per_round_trip(args.mode);
    let server_cpu_s: f64 = server_cpu.iter().map(|p| p.cpu_s).sum();
    RelayReport {
        mode: args.mode.name(),
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

/// Frames the server handles per round trip: a relay each way, or one ping.
fn per_round_trip(mode: RelayMode) -> u64 {
    if mode == RelayMode::Relay {
        2
    } else {
        1
    }
}

struct Room {
    limit: Duration,
    size: usize,
    mode: RelayMode,
}

impl Room {
    async fn run(self, mut pair: Pair, mut go_rx: watch::Receiver<Option<Window>>) -> RoomRun {
        let mut run = RoomRun {
            opened: true,
            ..RoomRun::default()
        };
        let window = match go_rx.wait_for(Option::is_some).await {
            Ok(window) => *window,
            Err(_) => None,
        };
        if let Some(window) = window {
            run.failure = self
                .round_trips(&mut pair, window, &mut run.rtt)
                .await
                .err();
        }
        close_pair(pair).await;
        run
    }

    async fn round_trips(
        &self,
        pair: &mut Pair,
        window: Window,
        rtt: &mut Latency,
    ) -> Result<(), Failure> {
        for seq in 0u64.. {
            let sent_at = Instant::now();
            if sent_at >= window.until {
                break;
            }
            match self.mode {
                RelayMode::Relay => {
                    pair.round_trip(&payload::data(self.size, seq), self.limit)
                        .await?
                }
                RelayMode::AutoPing => self.ping(pair, None).await?,
                RelayMode::ObjectPing => self.ping(pair, Some(OBJECT_PING)).await?,
            }
            let done = Instant::now();
            if sent_at >= window.measure_from && done <= window.until {
                rtt.record(done - sent_at);
            }
        }
        Ok(())
    }

    /// The client's keep-alive, or a ping `spelled` otherwise, and its `pong`.
    async fn ping(&self, pair: &mut Pair, spelled: Option<&'static str>) -> Result<(), Failure> {
        match spelled {
            None => pair.a.ping().await?,
            Some(text) => pair.a.send_text(text).await?,
        }
        let pong = |e: &Event| matches!(e, Event::Pong);
        expect(&mut pair.a, self.limit, "pong", pong).await?;
        Ok(())
    }
}

impl Report for RelayReport {
    fn name(&self) -> &'static str {
        "relay"
    }

    fn did_anything(&self) -> bool {
        self.round_trips > 0
    }

    fn row(&self) -> Row {
        let relay = self.mode == "relay";
        let unit = if relay { "msg/s" } else { "pongs/s" };
        let messages = self.round_trips * if relay { 2 } else { 1 };
        let per_message = self
            .server_cpu_us_per_message
            .map_or("n/a".into(), |us| format!("{us:.0} µs"));
        let row = Row::new(
            format!("{} {} B", self.mode, self.size_bytes),
            self.rooms,
            &self.rtt,
            format!("{:.0} {unit}", self.messages_per_s),
            "-".into(),
            self.failures.total(),
        );
        row.details(vec![
            format!(
                "{} rooms running, {} round trips in {:.1} s ({:.0}/s); latency is the round trip",
                self.rooms_running, self.round_trips, self.duration_s, self.round_trips_per_s
            ),
            format!(
                "server CPU per message {per_message}: {}; client CPU {:.2} s",
                cpu(&self.server_cpu, Some((messages, "msg"))),
                self.client_cpu_s
            ),
            failures_line(&self.failures),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet_client::protocol::{ClientFrame, PING_TEXT};

    #[test]
    fn the_object_ping_is_a_ping_in_another_spelling() {
        assert_eq!(
            ClientFrame::parse(OBJECT_PING).ok(),
            Some(ClientFrame::Ping)
        );
        assert_ne!(OBJECT_PING, PING_TEXT);
        assert_eq!(ClientFrame::Ping.to_text(), PING_TEXT);
    }
}
