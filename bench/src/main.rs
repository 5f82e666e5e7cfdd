//! `duet-bench`: a load generator for Duet signaling (`docs/protocol.md`).
//!
//! # Layout
//! - [`cli`]: the scenarios and their flags, and the bounds every run is checked against
//!   (rooms, duration, size, URL).
//! - [`frame`]: server frames classified by type, and the client frames sent.
//! - [`conn`]: sockets: connect, wait for an expected frame, open a room of two, close.
//! - [`scenario`]: `join`, `relay`, `idle`; `all` runs them in turn; `soak` and `flood`, which
//!   end in PASS/FAIL criteria ([`verdict`]).
//! - [`event`] and [`welcome`]: server frames with their fields, and joining or resuming a slot.
//! - [`ledger`]: the soak's relayed messages checked for room, sender, repeats and losses.
//! - [`incident`]: the soak's errors by kind, explained (by a restart, a deliberate drop) or not.
//! - [`local_server`]: a server duet-bench starts, kills and restarts itself (`--serve`).
//! - [`rng`]: the seeded random choices of the soak.
//! - [`stats`]: latency histograms, failures counted by kind.
//! - [`server`]: the local server's memory, open files and CPU time from /proc.
//! - [`report`]: the table and the `--json` document.
//! - [`ticket`]: join tickets for servers that require them (`--ticket-secret`).
//! - [`ratios`]: `duet-bench ratios`, Duet's figures over the floors' (`make bench-floor`).
//!
//! Every run targets only `--url`, opens at most the rooms asked for, and ends by itself:
//! each wait has `--timeout`, each timed phase `--duration`.

mod cli;
mod conn;
mod event;
mod frame;
mod incident;
mod ledger;
mod local_server;
mod ratios;
mod report;
mod rng;
mod scenario;
mod server;
mod stats;
mod ticket;
mod verdict;
mod welcome;

use anyhow::{Context, Result};
use clap::Parser;
use cli::{check_room_prefix, check_timeout, Cli, Scenario};
use report::{Outcome, RunReport};
use scenario::{Ctx, Tickets};
use server::Server;
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

fn main() -> ExitCode {
    match bench(Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("duet-bench: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the scenario; an error for bad flags, or when a scenario got nothing through.
fn bench(cli: Cli) -> Result<()> {
    let common = &cli.common;
    if let Scenario::Ratios(args) = &cli.scenario {
        return print_ratios(args, common.json);
    }
    let base = cli::base_url(&common.url)?;
    let timeout = check_timeout(common.timeout)?;
    match &cli.scenario {
        Scenario::Join(args) => args.check()?,
        Scenario::Relay(args) => args.check()?,
        Scenario::Idle(args) => args.check()?,
        Scenario::All(args) => args.check()?,
        Scenario::Soak(args) => args.check()?,
        Scenario::Flood(args) => args.check()?,
        Scenario::Ratios(_) => {}
    }
    let started = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let prefix = match &common.room_prefix {
        Some(prefix) => prefix.clone(),
        None => format!("b{started}-{}", std::process::id()),
    };
    check_room_prefix(&prefix)?;

    // Each socket is a file; the default soft limit (often 1024) is far too low.
    let files = rlimit::increase_nofile_limit(u64::MAX).context("raising the open-file limit")?;
    // wss:// needs a crypto provider; only one is compiled in, so this cannot conflict.
    let _ = rustls::crypto::ring::default_provider().install_default();

    let ctx = Ctx {
        server: Server::locate(
            &common.server_pids,
            base.host_str(),
            base.port_or_known_default(),
        ),
        base,
        timeout,
        prefix: prefix.clone(),
        progress: !common.no_progress && !common.json && std::io::stderr().is_terminal(),
        // Valid for longer than any run can last (every timed phase is bounded).
        tickets: common.ticket_secret.clone().map(|secret| Tickets {
            secret,
            exp_s: started + 4 * cli::MAX_DURATION_S as u64,
        }),
    };
    if !common.json {
        eprintln!(
            "open-file limit {files}; server processes {:?}; rooms {prefix}-*",
            ctx.server.procs
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
            results = run(&ctx, &cli.scenario, !common.json) => results,
            signal = stop_signal() => anyhow::bail!("stopped by {signal}"),
        }
    })?;
    let load_after = server::load_average();

    let report = RunReport {
        tool: "duet-bench",
        version: env!("CARGO_PKG_VERSION"),
        url: common.url.clone(),
        label: common.label.clone(),
        tickets: common.ticket_secret.is_some(),
        room_prefix: prefix,
        started_unix_s: started,
        load_before,
        load_after,
        results,
    };
    if common.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", report::table(&report));
    }
    if report.results.iter().any(|r| !r.did_anything()) {
        anyhow::bail!(
            "a scenario got nothing through: is the server up at {}?",
            common.url
        );
    }
    if report.results.iter().any(Outcome::failed) {
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

/// `duet-bench ratios`: reads the reports and prints the comparison.
fn print_ratios(args: &cli::RatiosArgs, json: bool) -> Result<()> {
    let mut reports = Vec::new();
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let report: serde_json::Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a duet-bench --json report", path.display()))?;
        reports.push(report);
    }
    let ratios = ratios::ratios(&reports);
    if json {
        println!("{}", serde_json::to_string_pretty(&ratios)?);
    } else {
        print!("{}", ratios::table(&ratios));
    }
    Ok(())
}

async fn run(ctx: &Ctx, scenario: &Scenario, chatty: bool) -> Result<Vec<Outcome>> {
    let note = |what: String| {
        if chatty {
            eprintln!("{what}");
        }
    };
    Ok(match scenario {
        Scenario::Join(args) => {
            let duration = Duration::from_secs_f64(args.duration);
            vec![Outcome::Join(
                scenario::join::run(ctx, "join", args, duration).await,
            )]
        }
        Scenario::Relay(args) => vec![Outcome::Relay(
            scenario::relay::run(ctx, "relay", args).await,
        )],
        Scenario::Idle(args) => vec![Outcome::Idle(scenario::idle::run(ctx, "idle", args).await)],
        Scenario::All(args) => {
            let mut results = Vec::new();
            let join = args.join();
            note(format!("join: {} rooms", join.rooms));
            let duration = Duration::from_secs_f64(join.duration);
            results.push(Outcome::Join(
                scenario::join::run(ctx, "join", &join, duration).await,
            ));
            for (i, relay) in args.relays().iter().enumerate() {
                note(format!(
                    "relay: {} rooms, {} s",
                    relay.rooms, relay.duration
                ));
                let tag = format!("relay{i}");
                results.push(Outcome::Relay(scenario::relay::run(ctx, &tag, relay).await));
            }
            let idle = args.idle();
            note(format!("idle: {} rooms, {} s", idle.rooms, idle.duration));
            results.push(Outcome::Idle(scenario::idle::run(ctx, "idle", &idle).await));
            results
        }
        Scenario::Soak(args) => vec![Outcome::Soak(scenario::soak::run(ctx, args, chatty).await?)],
        Scenario::Flood(args) => vec![Outcome::Flood(
            scenario::flood::run(ctx, args, chatty).await?,
        )],
        Scenario::Ratios(_) => Vec::new(),
    })
}
