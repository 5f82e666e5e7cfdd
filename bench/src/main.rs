//! `duet-bench`: a load generator for Duet signaling (`docs/protocol.md`).
//!
//! # Layout
//! - this file: the command line, one line per scenario, and the run around it.
//! - [`scenario`]: one file per scenario, each with its flags, its run and its report
//!   (`join`, `relay`, `idle`, `all`; `soak` and `flood`, which end in PASS/FAIL criteria,
//!   [`verdict`]).
//! - [`args`]: the bounds every run is checked against (rooms, duration, size, URL).
//! - [`room`]: a room of two peers on `duet-client` sockets, which own the wire; [`payload`]:
//!   message data of an exact frame size.
//! - [`ledger`], [`incident`], [`rng`]: the soak's checked messages, its errors explained or
//!   not, its seeded random choices.
//! - [`local_server`]: a server duet-bench starts, kills and restarts itself (`--serve`).
//! - [`stats`]: latency histograms, failures counted by kind.
//! - [`server`]: the local server's memory, open files and CPU time from /proc.
//! - [`report`]: the table and the `--json` document.
//! - [`ticket`]: join tickets for servers that require them (`--ticket-secret`).
//! - [`ratios`]: `duet-bench ratios`, Duet's figures over the floors' (`make bench-floor`).
//!
//! Every run targets only `--url`, opens at most the rooms asked for, and ends by itself:
//! each wait has `--timeout`, each timed phase `--duration`.

mod args;
mod incident;
mod ledger;
mod local_server;
mod payload;
mod ratios;
mod report;
mod rng;
mod room;
mod scenario;
mod server;
mod stats;
mod ticket;
mod verdict;

use anyhow::{Context, Result};
use args::{base_url, check_room_prefix, check_timeout, MAX_DURATION_S};
use clap::{Args, Parser, Subcommand};
use report::{Outcome, RunReport};
use scenario::{Ctx, Scenario, Tickets};
use server::Server;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

/// The subcommands: one line per scenario, whose flags type is its [`Scenario`] (and whose
/// doc comment is its help).
macro_rules! scenarios {
    ($($name:ident($args:ty),)*) => {
        #[derive(Debug, Subcommand)]
        enum Command {
            $($name($args),)*
            /// Reads `--json` reports of runs labelled duet, duet-tickets, bare and durable
            /// (`make bench-floor`) and prints each figure's median and its ratio to the floor's.
            Ratios(ratios::RatiosArgs),
        }

        impl Command {
            fn scenario(&self) -> Option<&dyn Scenario> {
                match self {
                    $(Command::$name(args) => Some(args),)*
                    Command::Ratios(_) => None,
                }
            }
        }
    };
}

scenarios! {
    Join(scenario::join::JoinArgs),
    Relay(scenario::relay::RelayArgs),
    Idle(scenario::idle::IdleArgs),
    All(scenario::all::AllArgs),
    Soak(scenario::soak::SoakArgs),
    Flood(scenario::flood::FloodArgs),
}

#[derive(Debug, Parser)]
#[command(
    name = "duet-bench",
    version,
    about = "Load generator for Duet signaling: join, relay and idle scenarios against one URL",
    long_about = "Load generator for Duet signaling. Every run targets only --url, opens at most \
                  --rooms rooms and stops by itself (--duration). Results print as a table, or as \
                  JSON with --json."
)]
struct Cli {
    #[command(flatten)]
    common: Common,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Args)]
struct Common {
    /// Base URL of the Worker, ws:// or wss://; rooms are opened at {url}/ws/{room}.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8787")]
    url: String,
    /// Print the results as one JSON document instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// Seconds to wait for a connect or for any expected frame.
    #[arg(long, global = true, default_value_t = 10.0)]
    timeout: f64,
    /// Prefix of the room names (default: fresh for every run, so runs never share rooms).
    #[arg(long, global = true)]
    room_prefix: Option<String>,
    /// Server process ids whose memory and CPU to report (repeatable). Default: the processes
    /// of the local server that listens on the URL's port, when the URL is loopback.
    #[arg(long = "server-pid", global = true)]
    server_pids: Vec<u32>,
    /// No progress bars.
    #[arg(long, global = true)]
    no_progress: bool,
    /// Sign a join ticket for every peer with this secret (the server's `JOIN_SECRET`), sent
    /// as the `duet.ticket.` subprotocol; each peer is an identity of its own.
    #[arg(long, global = true)]
    ticket_secret: Option<String>,
    /// A name for the server under test, kept in the report (`duet-bench ratios` groups runs
    /// by it: duet, duet-tickets, bare, durable).
    #[arg(long, global = true)]
    label: Option<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match (&cli.command, cli.command.scenario()) {
        (Command::Ratios(args), _) => ratios::print(args, cli.common.json),
        (_, Some(scenario)) => bench(&cli.common, scenario),
        (_, None) => Ok(()),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario; an error for bad flags, or when a scenario got nothing through.
fn bench(common: &Common, scenario: &dyn Scenario) -> Result<()> {
    scenario.check()?;
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let ctx = context(common, started)?;
    // Each socket is a file; the default soft limit (often 1024) is far too low.
    let files = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    if !common.json {
        eprintln!(
            "open-file limit {files}; server processes {:?}; rooms {}-*",
            ctx.server.procs, ctx.prefix
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the runtime")?;
    let load_before = server::load_average();
    let results = runtime.block_on(async {
        // Dropping the run on a signal drops its `--serve` server, which kills it: a soak
        // stopped with Ctrl-C or SIGTERM leaves no `wrangler dev` behind.
        tokio::select! {
            results = scenario.run(&ctx) => results,
            signal = stop_signal() => anyhow::bail!("stopped by {signal}"),
        }
    })?;
    let report = RunReport {
        tool: "duet-bench",
        version: env!("CARGO_PKG_VERSION"),
        url: common.url.clone(),
        label: common.label.clone(),
        tickets: common.ticket_secret.is_some(),
        room_prefix: ctx.prefix,
        started_unix_s: started,
        load_before,
        load_after: server::load_average(),
        results,
    };
    print_and_judge(&report, common.json)
}

/// What the scenarios of this invocation share, from the common flags.
fn context(common: &Common, started: u64) -> Result<Ctx> {
    let base = base_url(&common.url)?;
    let timeout = check_timeout(common.timeout)?;
    let prefix = match &common.room_prefix {
        Some(prefix) => prefix.clone(),
        None => format!("b{started}-{}", std::process::id()),
    };
    check_room_prefix(&prefix)?;
    Ok(Ctx {
        server: Server::locate(
            &common.server_pids,
            base.host_str(),
            base.port_or_known_default(),
        ),
        base,
        timeout,
        prefix,
        progress: !common.no_progress && !common.json && std::io::stderr().is_terminal(),
        chatty: !common.json,
        // Valid for longer than any run can last (every timed phase is bounded).
        tickets: common.ticket_secret.clone().map(|secret| Tickets {
            secret,
            exp_s: started + 4 * MAX_DURATION_S as u64,
        }),
    })
}

/// Prints the report; an error when a scenario got nothing through or a criterion failed.
fn print_and_judge(report: &RunReport, json: bool) -> Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(report)?);
    } else {
        print!("{}", report::table(report));
    }
    let outcomes = || report.results.iter().map(|o: &Outcome| &o.report);
    if outcomes().any(|r| !r.did_anything()) {
        anyhow::bail!(
            "a scenario got nothing through: is the server up at {}?",
            report.url
        );
    }
    if outcomes().any(|r| r.failed()) {
        anyhow::bail!("a criterion failed (FAIL above)");
    }
    Ok(())
}

/// Waits for SIGINT or SIGTERM and names it; never returns if neither can be listened for.
async fn stop_signal() -> &'static str {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(mut int), Ok(mut term)) => tokio::select! {
            _ = int.recv() => "SIGINT",
            _ = term.recv() => "SIGTERM",
        },
        _ => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("duet-bench").chain(args.iter().copied()))
    }

    fn checked(args: &[&str]) -> bool {
        parse(args)
            .ok()
            .and_then(|cli| cli.command.scenario().map(|s| s.check().is_ok()))
            .unwrap_or(false)
    }

    #[test]
    fn defaults() {
        let cli = parse(&["join"]).unwrap();
        assert_eq!(cli.common.url, "ws://127.0.0.1:8787");
        assert!(!cli.common.json);
        let Command::Join(join) = cli.command else {
            panic!("not join");
        };
        assert_eq!((join.rooms, join.concurrency), (1_000, 50));
        for scenario in ["join", "relay", "idle", "all", "soak", "flood"] {
            assert!(checked(&[scenario]), "{scenario}");
        }
        let Command::All(all) = parse(&["all"]).unwrap().command else {
            panic!("not all");
        };
        assert_eq!(all.relay_rooms, vec![1, 500]);
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
        let Command::Relay(relay) = cli.command else {
            panic!("not relay");
        };
        assert_eq!(relay.size, 1024);
        assert_eq!(relay.mode, scenario::relay::RelayMode::Relay);
        assert!(parse(&["relay", "--mode", "auto-ping"]).is_ok());
        assert!(parse(&["relay", "--mode", "nope"]).is_err());
        assert!(parse(&["all", "--relay-rooms", "1,10,100"]).is_ok());
    }

    #[test]
    fn bounds() {
        assert!(checked(&[
            "join",
            "--rooms",
            "50000",
            "--concurrency",
            "10000"
        ]));
        assert!(!checked(&["join", "--rooms", "50001"]));
        assert!(!checked(&["relay", "--size", "63"]));
        assert!(!checked(&["idle", "--ping-interval", "0"]));
        assert!(!checked(&["all", "--relay-rooms", ""]));
        assert!(!checked(&["all", "--relay-rooms", "0"]));
        assert!(!checked(&["soak", "--size", "159"]));
        assert!(!checked(&["flood", "--settle", "10", "--phase", "10"]));
    }

    #[test]
    fn every_scenario_has_its_help() {
        use clap::CommandFactory;
        let cli = Cli::command();
        for sub in cli.get_subcommands() {
            assert!(sub.get_about().is_some(), "{}", sub.get_name());
        }
    }
}
