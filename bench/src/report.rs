//! Results: one JSON document (`--json`) or a table with a few detail lines per scenario.

use crate::scenario::flood::FloodReport;
use crate::scenario::idle::IdleReport;
use crate::scenario::join::JoinReport;
use crate::scenario::relay::RelayReport;
use crate::scenario::soak::{self, SoakReport};
use crate::scenario::ProcCpu;
use crate::stats::Summary;
use serde::Serialize;
use std::fmt::Write;

/// The result of one scenario run.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "scenario", rename_all = "kebab-case")]
pub enum Outcome {
    Join(JoinReport),
    Relay(RelayReport),
    Idle(IdleReport),
    Soak(SoakReport),
    Flood(FloodReport),
}

/// Everything one invocation measured.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub tool: &'static str,
    pub version: &'static str,
    pub url: String,
    /// `--label`: which server this was (`duet-bench ratios` groups by it).
    pub label: Option<String>,
    /// Whether every peer offered a join ticket.
    pub tickets: bool,
    pub room_prefix: String,
    pub started_unix_s: u64,
    /// The machine's load averages before and after the run (other work skews the figures).
    pub load_before: Option<[f64; 3]>,
    pub load_after: Option<[f64; 3]>,
    pub results: Vec<Outcome>,
}

impl Outcome {
    /// Whether the scenario got anything through at all.
    pub fn did_anything(&self) -> bool {
        match self {
            Outcome::Join(r) => r.rooms_ready > 0,
            Outcome::Relay(r) => r.round_trips > 0,
            Outcome::Idle(r) => r.rooms_open > 0,
            Outcome::Soak(r) => r.calls_started > 0,
            Outcome::Flood(r) => r.quiet.is_some() || r.flooded.is_some(),
        }
    }

    /// Whether one of the scenario's pass criteria failed.
    pub fn failed(&self) -> bool {
        match self {
            Outcome::Soak(r) => crate::verdict::any_failed(&r.criteria),
            Outcome::Flood(r) => crate::verdict::any_failed(&r.criteria),
            _ => false,
        }
    }
}

fn ms(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) if v >= 10.0 => format!("{v:.1} ms"),
        Some(v) => format!("{v:.2} ms"),
    }
}

fn quantiles(s: &Option<Summary>) -> [String; 3] {
    [
        ms(s.map(|s| s.p50_ms)),
        ms(s.map(|s| s.p99_ms)),
        ms(s.map(|s| s.max_ms)),
    ]
}

/// CPU seconds by process role, and per event when `per` events happened.
fn cpu(procs: &[ProcCpu], per: Option<(u64, &str)>) -> String {
    if procs.is_empty() {
        return "n/a (no local server process found)".into();
    }
    procs
        .iter()
        .map(|p| match per {
            Some((n, unit)) if n > 0 => format!(
                "{} {:.2} s ({:.0} µs/{unit})",
                p.role,
                p.cpu_s,
                p.cpu_s * 1e6 / n as f64
            ),
            _ => format!("{} {:.2} s", p.role, p.cpu_s),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The summary row and detail lines of one outcome.
fn row(outcome: &Outcome) -> ([String; 8], Vec<String>) {
    match outcome {
        Outcome::Join(r) => {
            let [p50, p99, max] = quantiles(&r.welcome);
            let row = [
                "join".into(),
                r.rooms.to_string(),
                p50,
                p99,
                max,
                format!("{:.0} joins/s", r.joins_per_s),
                "-".into(),
                r.failures.total().to_string(),
            ];
            let [r50, r99, rmax] = quantiles(&r.ready);
            let details = vec![
                format!(
                    "{}/{} rooms ready ({} started) in {:.1} s, {:.0} rooms/s, concurrency {}",
                    r.rooms_ready,
                    r.rooms,
                    r.rooms_started,
                    r.elapsed_s,
                    r.rooms_per_s,
                    r.concurrency
                ),
                format!(
                    "latency: connect→welcome per peer (table); first connect→both ready per \
                     room: p50 {r50}, p99 {r99}, max {rmax}"
                ),
                format!(
                    "server CPU: {}; client CPU {:.2} s",
                    cpu(&r.server_cpu, Some((r.rooms_ready, "room"))),
                    r.client_cpu_s
                ),
                format!("failures: {}", r.failures.describe()),
            ];
            (row, details)
        }
        Outcome::Relay(r) => {
            let [p50, p99, max] = quantiles(&r.rtt);
            let unit = if r.mode == "relay" {
                "msg/s"
            } else {
                "pongs/s"
            };
            let row = [
                format!("{} {} B", r.mode, r.size_bytes),
                r.rooms.to_string(),
                p50,
                p99,
                max,
                format!("{:.0} {unit}", r.messages_per_s),
                "-".into(),
                r.failures.total().to_string(),
            ];
            let per_round_trip = if r.mode == "relay" { 2.0 } else { 1.0 };
            let messages = (r.round_trips as f64 * per_round_trip) as u64;
            let per_message = r
                .server_cpu_us_per_message
                .map_or("n/a".into(), |us| format!("{us:.0} µs"));
            let details = vec![
                format!(
                    "{} rooms running, {} round trips in {:.1} s ({:.0}/s); latency is the round trip",
                    r.rooms_running, r.round_trips, r.duration_s, r.round_trips_per_s
                ),
                format!(
                    "server CPU per message {per_message}: {}; client CPU {:.2} s",
                    cpu(&r.server_cpu, Some((messages, "msg"))),
                    r.client_cpu_s
                ),
                format!("failures: {}", r.failures.describe()),
            ];
            (row, details)
        }
        Outcome::Idle(r) => {
            let [p50, p99, max] = quantiles(&r.check_rtt);
            let memory = r
                .memory
                .as_ref()
                .and_then(|m| m.rss_per_socket_kib)
                .map_or("n/a".into(), |kib| format!("{kib:.1} KiB/socket"));
            let row = [
                format!("idle {:.0} s", r.held_s),
                r.rooms.to_string(),
                p50,
                p99,
                max,
                format!("{}/{} relay", r.rooms_relaying, r.rooms),
                memory,
                r.failures.total().to_string(),
            ];
            let mut details = vec![format!(
                "{} sockets held {:.0} s, ping every {:.0} s: {} pings, {} pongs; latency is the check's round trip",
                r.sockets_open, r.held_s, r.ping_interval_s, r.pings, r.pongs
            )];
            if let Some(m) = &r.memory {
                let mib = |kib: u64| kib as f64 / 1024.0;
                details.push(format!(
                    "server RSS {:.1} MiB before, {:.1} open, {:.1} held, {:.1} closed; open files {} → {} ({})",
                    mib(m.before.rss_kib),
                    mib(m.open.rss_kib),
                    mib(m.held.rss_kib),
                    mib(m.closed.rss_kib),
                    m.before.open_files,
                    m.held.open_files,
                    m.files_per_socket
                        .map_or("n/a".into(), |f| format!("{f:.1} per socket")),
                ));
                for p in &m.held.processes {
                    let was = m.before.processes.iter().find(|b| b.pid == p.pid);
                    details.push(format!(
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
            } else {
                details.push("server memory: n/a (no local server process found)".into());
            }
            details.push(format!("failures: {}", r.failures.describe()));
            (row, details)
        }
        Outcome::Soak(r) => {
            let [p50, p99, max] = quantiles(&r.message_latency);
            let growth = r
                .criteria
                .iter()
                .find(|c| c.name.starts_with("server memory"))
                .map_or("-".into(), |c| c.status.word().to_lowercase());
            let row = [
                format!("soak {:.0} s", r.duration_s),
                r.rooms.to_string(),
                p50,
                p99,
                max,
                format!("{} msg", r.messages.delivered),
                growth,
                r.errors.unexplained_total().to_string(),
            ];
            (row, soak::details(r))
        }
        Outcome::Flood(r) => {
            let [p50, p99, max] = quantiles(&r.flooded);
            let [q50, q99, qmax] = quantiles(&r.quiet);
            let row = [
                "flood".into(),
                r.rooms.to_string(),
                p50,
                p99,
                max,
                r.ratio.map_or("-".into(), |x| format!("×{x:.2} p50")),
                "-".into(),
                r.failures.total().to_string(),
            ];
            let mut details: Vec<String> = r.criteria.iter().map(|c| c.line()).collect();
            details.push(format!(
                "latency is the round trip under flood; without: p50 {q50}, p99 {q99}, max {qmax}"
            ));
            details.push(format!(
                "CPU without the flood: {}; with: {}",
                r.quiet_cpu.describe(),
                r.flood_cpu.describe()
            ));
            details.push(format!(
                "{} rounds of {:.0} s quiet + {:.0} s flood (the first {:.0} s of each not \
                 measured), a round trip every {:.0} ms per room, timed from when it was due; \
                 ratio per round: {}",
                r.rounds,
                r.phase_s,
                r.phase_s,
                r.settle_s,
                r.every_s * 1000.0,
                r.round_ratios
                    .iter()
                    .map(|x| x.map_or("-".into(), |x| format!("×{x:.2}")))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            (row, details)
        }
    }
}

const HEADER: [&str; 8] = [
    "scenario",
    "rooms",
    "p50",
    "p99",
    "max",
    "throughput",
    "memory",
    "failures",
];

/// The table: one row per outcome, then each outcome's details.
pub fn table(report: &RunReport) -> String {
    let rows: Vec<_> = report.results.iter().map(row).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for (cells, _) in &rows {
        for (w, cell) in widths.iter_mut().zip(cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
            let pad = w - cell.chars().count();
            // Text columns to the left, numbers to the right.
            if i == 0 {
                out.push_str(cell);
                out.push_str(&" ".repeat(pad));
            } else {
                out.push_str(&" ".repeat(pad));
                out.push_str(cell);
            }
            out.push_str("  ");
        }
        out.trim_end().to_owned()
    };
    let mut out = String::new();
    let _ = writeln!(out, "duet-bench {} → {}", report.version, report.url);
    if let (Some(before), Some(after)) = (report.load_before, report.load_after) {
        let _ = writeln!(
            out,
            "load average (1 min): {:.2} before the run (other work here skews the figures), {:.2} after",
            before[0], after[0]
        );
    }
    let _ = writeln!(out, "{}", line(&HEADER.map(String::from)));
    for (cells, _) in &rows {
        let _ = writeln!(out, "{}", line(cells));
    }
    for (cells, details) in &rows {
        let _ = writeln!(out, "\n{}", cells[0]);
        for d in details {
            let _ = writeln!(out, "  {d}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{Failure, Failures};

    fn join() -> JoinReport {
        let mut failures = Failures::default();
        failures.add(&Failure::Timeout("created"));
        JoinReport {
            rooms: 10,
            concurrency: 5,
            rooms_started: 10,
            rooms_ready: 9,
            joins: 19,
            elapsed_s: 2.0,
            joins_per_s: 9.5,
            rooms_per_s: 4.5,
            welcome: Some(Summary {
                count: 19,
                p50_ms: 1.234,
                p99_ms: 15.0,
                max_ms: 1500.0,
                mean_ms: 2.0,
            }),
            ready: None,
            failures,
            server_cpu: vec![],
            client_cpu_s: 0.5,
        }
    }

    #[test]
    fn table_rows_and_details() {
        let report = RunReport {
            tool: "duet-bench",
            version: "0.1.0",
            url: "ws://127.0.0.1:8787".into(),
            label: None,
            tickets: false,
            room_prefix: "b1".into(),
            started_unix_s: 0,
            load_before: None,
            load_after: None,
            results: vec![Outcome::Join(join())],
        };
        let text = table(&report);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "duet-bench 0.1.0 → ws://127.0.0.1:8787");
        assert_eq!(
            lines[1],
            "scenario  rooms      p50      p99     max  throughput  memory  failures"
        );
        assert_eq!(
            lines[2],
            "join         10  1.23 ms  15.0 ms  1.50 s  10 joins/s       -         1"
        );
        assert!(text.contains("9/10 rooms ready (10 started) in 2.0 s"));
        assert!(text.contains("failures: timeout: created ×1"));
        assert!(text.contains("server CPU: n/a"));
    }

    #[test]
    fn json_is_tagged_by_scenario() {
        let json = serde_json::to_value(Outcome::Join(join())).unwrap();
        assert_eq!(json["scenario"], "join");
        assert_eq!(json["rooms_ready"], 9);
        assert_eq!(json["welcome"]["p50_ms"], 1.234);
        assert_eq!(json["ready"], serde_json::Value::Null);
        assert_eq!(json["failures"]["timeout: created"], 1);
        assert!(Outcome::Join(join()).did_anything());
    }

    #[test]
    fn milliseconds() {
        assert_eq!(ms(None), "-");
        assert_eq!(ms(Some(0.4567)), "0.46 ms");
        assert_eq!(ms(Some(12.34)), "12.3 ms");
        assert_eq!(ms(Some(123.4)), "123 ms");
        assert_eq!(ms(Some(2500.0)), "2.50 s");
    }
}
