//! Command line: the scenarios, their flags, and the checks that keep every run bounded.

use crate::frame::MIN_MESSAGE_BYTES;
use clap::{Args, Parser, Subcommand, ValueEnum};
use std::time::Duration;
use url::Url;

/// Most rooms one scenario may open.
pub const MAX_ROOMS: u32 = 50_000;
/// Longest any timed phase may last, in seconds.
pub const MAX_DURATION_S: f64 = 3_600.0;
/// Most rooms in flight at once.
pub const MAX_CONCURRENCY: u32 = 10_000;
/// The platform's largest WebSocket message (the server's default limit is 64 KiB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// Longest room name the Worker accepts.
const MAX_ROOM_NAME: usize = 64;

#[derive(Debug, Parser)]
#[command(
    name = "duet-bench",
    version,
    about = "Load generator for Duet signaling: join, relay and idle scenarios against one URL",
    long_about = "Load generator for Duet signaling. Every run targets only --url, opens at most \
                  --rooms rooms and stops by itself (--duration). Results print as a table, or as \
                  JSON with --json."
)]
pub struct Cli {
    #[command(flatten)]
    pub common: Common,
    #[command(subcommand)]
    pub scenario: Scenario,
}

#[derive(Debug, Clone, Args)]
pub struct Common {
    /// Base URL of the Worker, ws:// or wss://; rooms are opened at {url}/ws/{room}.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8787")]
    pub url: String,
    /// Print the results as one JSON document instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    /// Seconds to wait for a connect or for any expected frame.
    #[arg(long, global = true, default_value_t = 10.0)]
    pub timeout: f64,
    /// Prefix of the room names (default: fresh for every run, so runs never share rooms).
    #[arg(long, global = true)]
    pub room_prefix: Option<String>,
    /// Server process ids whose memory and CPU to report (repeatable). Default: the processes
    /// of the local server that listens on the URL's port, when the URL is loopback.
    #[arg(long = "server-pid", global = true)]
    pub server_pids: Vec<u32>,
    /// No progress bars.
    #[arg(long, global = true)]
    pub no_progress: bool,
    /// Sign a join ticket for every peer with this secret (the server's `JOIN_SECRET`), sent
    /// as the `duet.ticket.` subprotocol; each peer is an identity of its own.
    #[arg(long, global = true)]
    pub ticket_secret: Option<String>,
    /// A name for the server under test, kept in the report (`duet-bench ratios` groups runs
    /// by it: duet, duet-tickets, bare, durable).
    #[arg(long, global = true)]
    pub label: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum Scenario {
    /// Open rooms × 2 peers with bounded concurrency; joins/s and connect→welcome latency.
    Join(JoinArgs),
    /// The two peers of each room ping-pong messages; round trip and relayed messages/s.
    Relay(RelayArgs),
    /// Hold rooms × 2 sockets with the client keep-alive, then check every room still relays;
    /// server memory per socket.
    Idle(IdleArgs),
    /// The standard scenarios in turn: join, relay with 1 and with 500 rooms, idle.
    All(AllArgs),
    /// Calls with churn, deliberate drops and resumes (with --serve and --restart-every, server
    /// restarts) for minutes; every relayed message is checked. PASS/FAIL per criterion.
    Soak(crate::scenario::soak::SoakArgs),
    /// Round trips in many rooms with and without one flooding client in the same run;
    /// PASS/FAIL on the ratio of the p50s.
    Flood(crate::scenario::flood::FloodArgs),
    /// Reads `--json` reports of runs labelled duet, duet-tickets, bare and durable (`make
    /// bench-floor`) and prints each figure's median and its ratio to the floor's.
    Ratios(RatiosArgs),
}

#[derive(Debug, Clone, Args)]
pub struct RatiosArgs {
    /// The reports, one `duet-bench --json --label NAME ...` output per file.
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct JoinArgs {
    /// Rooms to open (two peers each).
    #[arg(long, default_value_t = 1_000)]
    pub rooms: u32,
    /// Rooms in flight at once.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u32,
    /// Start no room after this many seconds.
    #[arg(long, default_value_t = 120.0)]
    pub duration: f64,
}

/// What the first peer of each room sends in a relay run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RelayMode {
    /// A `message` to the other peer, which sends it back: two relays per round trip.
    Relay,
    /// The exact ping, answered by the runtime without waking the room's object.
    AutoPing,
    /// A ping in another spelling, answered by the room's object (intake, no relay).
    ObjectPing,
}

#[derive(Debug, Clone, Args)]
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

#[derive(Debug, Clone, Args)]
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

#[derive(Debug, Clone, Args)]
pub struct AllArgs {
    /// Rooms of the join scenario.
    #[arg(long, default_value_t = 1_000)]
    pub join_rooms: u32,
    /// Room counts of the relay runs, comma-separated.
    #[arg(long, value_delimiter = ',', default_values_t = [1, 500])]
    pub relay_rooms: Vec<u32>,
    /// Seconds of each relay run.
    #[arg(long, default_value_t = 10.0)]
    pub relay_duration: f64,
    /// Bytes of each relayed message frame.
    #[arg(long, default_value_t = 256)]
    pub size: usize,
    /// Rooms of the idle scenario.
    #[arg(long, default_value_t = 1_000)]
    pub idle_rooms: u32,
    /// Seconds the idle scenario holds its sockets.
    #[arg(long, default_value_t = 30.0)]
    pub idle_duration: f64,
    /// Rooms being opened at once, in every scenario.
    #[arg(long, default_value_t = 50)]
    pub concurrency: u32,
}

impl AllArgs {
    pub fn join(&self) -> JoinArgs {
        JoinArgs {
            rooms: self.join_rooms,
            concurrency: self.concurrency,
            duration: 120.0,
        }
    }

    pub fn relays(&self) -> Vec<RelayArgs> {
        self.relay_rooms
            .iter()
            .map(|&rooms| RelayArgs {
                rooms,
                concurrency: self.concurrency,
                duration: self.relay_duration,
                warmup: 1.0,
                size: self.size,
                mode: RelayMode::Relay,
            })
            .collect()
    }

    pub fn idle(&self) -> IdleArgs {
        IdleArgs {
            rooms: self.idle_rooms,
            concurrency: self.concurrency,
            duration: self.idle_duration,
            ping_interval: 20.0,
        }
    }
}

/// A flag outside its range.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

fn fail<T>(message: String) -> Result<T, ArgError> {
    Err(ArgError(message))
}

pub fn check_rooms(flag: &str, rooms: u32) -> Result<(), ArgError> {
    if rooms == 0 || rooms > MAX_ROOMS {
        return fail(format!("--{flag} must be 1 to {MAX_ROOMS}, not {rooms}"));
    }
    Ok(())
}

pub fn check_concurrency(concurrency: u32) -> Result<(), ArgError> {
    if concurrency == 0 || concurrency > MAX_CONCURRENCY {
        return fail(format!(
            "--concurrency must be 1 to {MAX_CONCURRENCY}, not {concurrency}"
        ));
    }
    Ok(())
}

/// Seconds as a duration, from `min` to [`MAX_DURATION_S`].
pub fn seconds(flag: &str, secs: f64, min: f64) -> Result<Duration, ArgError> {
    if !(secs.is_finite() && secs >= min && secs <= MAX_DURATION_S) {
        return fail(format!(
            "--{flag} must be {min} to {MAX_DURATION_S} seconds, not {secs}"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn check_size(size: usize) -> Result<(), ArgError> {
    if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&size) {
        return fail(format!(
            "--size must be {MIN_MESSAGE_BYTES} to {MAX_MESSAGE_BYTES} bytes, not {size}"
        ));
    }
    Ok(())
}

/// The base URL: ws:// or wss://, a host, no query or fragment. Its path is replaced by
/// `/ws/{room}` for each room.
pub fn base_url(url: &str) -> Result<Url, ArgError> {
    let parsed = Url::parse(url).or_else(|e| fail(format!("--url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return fail(format!("--url must be ws:// or wss://, not {url:?}"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return fail(format!("--url {url:?} has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return fail(format!("--url {url:?} must have no query or fragment"));
    }
    if !matches!(parsed.path(), "" | "/") {
        return fail(format!(
            "--url {url:?} must have no path: rooms are at /ws/{{room}}"
        ));
    }
    Ok(parsed)
}

/// The URL of one room.
pub fn room_url(base: &Url, room: &str) -> String {
    let mut url = base.clone();
    url.set_path(&format!("/ws/{room}"));
    url.into()
}

/// Room names are `{prefix}-{scenario tag}-{index}`; the Worker takes 1–64 characters of
/// `[A-Za-z0-9_-]`. Leaves room for a 12-character tag and a 5-digit index.
pub fn check_room_prefix(prefix: &str) -> Result<(), ArgError> {
    let ok_chars = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if prefix.is_empty() || !ok_chars || prefix.len() > MAX_ROOM_NAME - 20 {
        return fail(format!(
            "--room-prefix must be 1 to {} characters of [A-Za-z0-9_-], not {prefix:?}",
            MAX_ROOM_NAME - 20
        ));
    }
    Ok(())
}

pub fn check_timeout(secs: f64) -> Result<Duration, ArgError> {
    seconds("timeout", secs, 0.1)
}

impl JoinArgs {
    pub fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("duration", self.duration, 0.1)?;
        Ok(())
    }
}

impl RelayArgs {
    pub fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("duration", self.duration, 0.1)?;
        seconds("warmup", self.warmup, 0.0)?;
        check_size(self.size)
    }
}

impl IdleArgs {
    pub fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("duration", self.duration, 0.0)?;
        seconds("ping-interval", self.ping_interval, 0.1)?;
        Ok(())
    }
}

impl AllArgs {
    pub fn check(&self) -> Result<(), ArgError> {
        self.join().check()?;
        if self.relay_rooms.is_empty() {
            return fail("--relay-rooms needs at least one room count".into());
        }
        for relay in self.relays() {
            relay.check()?;
        }
        self.idle().check()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("duet-bench").chain(args.iter().copied()))
    }

    #[test]
    fn defaults() {
        let cli = parse(&["join"]).unwrap();
        assert_eq!(cli.common.url, "ws://127.0.0.1:8787");
        assert!(!cli.common.json);
        let Scenario::Join(join) = cli.scenario else {
            panic!("not join");
        };
        assert_eq!((join.rooms, join.concurrency), (1_000, 50));
        assert!(join.check().is_ok());

        let Scenario::All(all) = parse(&["all"]).unwrap().scenario else {
            panic!("not all");
        };
        assert_eq!(all.relay_rooms, vec![1, 500]);
        assert_eq!(all.relays().len(), 2);
        assert!(all.check().is_ok());
    }

    #[test]
    fn global_flags_go_before_or_after_the_scenario() {
        let cli = parse(&[
            "--json",
            "relay",
            "--url",
            "wss://duet.example",
            "--size",
            "1024",
        ])
        .unwrap();
        assert!(cli.common.json);
        assert_eq!(cli.common.url, "wss://duet.example");
        let Scenario::Relay(relay) = cli.scenario else {
            panic!("not relay");
        };
        assert_eq!(relay.size, 1024);
        assert_eq!(relay.mode, RelayMode::Relay);
        assert!(parse(&["relay", "--mode", "auto-ping"]).is_ok());
        assert!(parse(&["relay", "--mode", "nope"]).is_err());
        assert!(parse(&["all", "--relay-rooms", "1,10,100"]).is_ok());
    }

    #[test]
    fn bounds() {
        let join = |rooms, concurrency, duration| JoinArgs {
            rooms,
            concurrency,
            duration,
        };
        assert!(join(1, 1, 0.1).check().is_ok());
        assert!(join(MAX_ROOMS, MAX_CONCURRENCY, MAX_DURATION_S)
            .check()
            .is_ok());
        assert!(join(0, 1, 1.0).check().is_err());
        assert!(join(MAX_ROOMS + 1, 1, 1.0).check().is_err());
        assert!(join(1, 0, 1.0).check().is_err());
        assert!(join(1, 1, f64::NAN).check().is_err());
        assert!(join(1, 1, f64::INFINITY).check().is_err());
        assert!(join(1, 1, MAX_DURATION_S + 1.0).check().is_err());
        assert_eq!(
            join(1, 1, -1.0).check(),
            Err(ArgError(
                "--duration must be 0.1 to 3600 seconds, not -1".into()
            ))
        );

        assert!(check_size(MIN_MESSAGE_BYTES).is_ok());
        assert!(check_size(65_536).is_ok());
        assert!(check_size(MIN_MESSAGE_BYTES - 1).is_err());
        assert!(check_size(MAX_MESSAGE_BYTES + 1).is_err());
        assert!(check_timeout(0.0).is_err());

        let idle = IdleArgs {
            rooms: 10,
            concurrency: 5,
            duration: 0.0,
            ping_interval: 0.0,
        };
        assert!(idle.check().is_err());
        let all = AllArgs {
            relay_rooms: vec![],
            ..parse_all()
        };
        assert!(all.check().is_err());
    }

    fn parse_all() -> AllArgs {
        match parse(&["all"]).unwrap().scenario {
            Scenario::All(all) => all,
            _ => panic!("not all"),
        }
    }

    #[test]
    fn urls() {
        let base = base_url("ws://127.0.0.1:8787").unwrap();
        assert_eq!(
            room_url(&base, "b1-join-7"),
            "ws://127.0.0.1:8787/ws/b1-join-7"
        );
        let base = base_url("wss://duet.example/").unwrap();
        assert_eq!(room_url(&base, "r"), "wss://duet.example/ws/r");
        for bad in [
            "http://127.0.0.1:8787",
            "127.0.0.1:8787",
            "ws://127.0.0.1:8787/ws/room",
            "ws://127.0.0.1:8787/?x=1",
            "ws://",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn room_prefixes() {
        assert!(check_room_prefix("bench_1-a").is_ok());
        assert!(check_room_prefix(&"a".repeat(44)).is_ok());
        assert!(check_room_prefix(&"a".repeat(45)).is_err());
        assert!(check_room_prefix("").is_err());
        assert!(check_room_prefix("a/b").is_err());
        assert!(check_room_prefix("é").is_err());
    }
}
