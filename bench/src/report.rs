//! Results: one JSON document (`--json`) or a table with a few detail lines per scenario.
//! Each scenario's report says itself what its row, its details and its verdict are
//! ([`Report`]); this module only lays them out.

use crate::server::ProcCpu;
use crate::stats::{Failures, Summary};
use serde::Serialize;
use std::fmt::Write;

/// What a scenario's report must say for the table and the exit status.
pub trait Report: erased_serde::Serialize + Send {
    /// The `scenario` key of its JSON document.
    fn name(&self) -> &'static str;
    /// Its line of the table and the detail lines under it.
    fn row(&self) -> Row;
    /// Whether the scenario got anything through at all.
    fn did_anything(&self) -> bool;
    /// Whether one of its pass criteria failed.
    fn failed(&self) -> bool {
        false
    }
}

erased_serde::serialize_trait_object!(Report);

/// The result of one scenario run: its report's fields after `"scenario": name`.
#[derive(Serialize)]
pub struct Outcome {
    pub scenario: &'static str,
    #[serde(flatten)]
    pub report: Box<dyn Report>,
}

impl Outcome {
    pub fn new(report: impl Report + 'static) -> Outcome {
        Outcome {
            scenario: report.name(),
            report: Box::new(report),
        }
    }
}

/// Everything one invocation measured.
#[derive(Serialize)]
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

/// One line of the table (see [`HEADER`]) and the detail lines printed under the table.
pub struct Row {
    pub cells: [String; 8],
    pub details: Vec<String>,
}

impl Row {
    /// A row whose latency columns are `latency`'s p50, p99 and max.
    pub fn new(
        name: String,
        rooms: u32,
        latency: &Option<Summary>,
        throughput: String,
        memory: String,
        failures: u64,
    ) -> Row {
        let [p50, p99, max] = quantiles(latency);
        Row {
            cells: [
                name,
                rooms.to_string(),
                p50,
                p99,
                max,
                throughput,
                memory,
                failures.to_string(),
            ],
            details: Vec::new(),
        }
    }

    pub fn details(mut self, details: Vec<String>) -> Row {
        self.details = details;
        self
    }
}

pub fn ms(value: Option<f64>) -> String {
    match value {
        None => "-".into(),
        Some(v) if v >= 1000.0 => format!("{:.2} s", v / 1000.0),
        Some(v) if v >= 100.0 => format!("{v:.0} ms"),
        Some(v) if v >= 10.0 => format!("{v:.1} ms"),
        Some(v) => format!("{v:.2} ms"),
    }
}

/// p50, p99 and max as [`ms`] writes them.
pub fn quantiles(s: &Option<Summary>) -> [String; 3] {
    [
        ms(s.map(|s| s.p50_ms)),
        ms(s.map(|s| s.p99_ms)),
        ms(s.map(|s| s.max_ms)),
    ]
}

/// The detail line of a scenario's failures.
pub fn failures_line(failures: &Failures) -> String {
    format!("failures: {}", failures.describe())
}

/// CPU seconds by process role, and per event when `per` events happened.
pub fn cpu(procs: &[ProcCpu], per: Option<(u64, &str)>) -> String {
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

/// One line of cells padded to `widths`: text to the left in the first column, numbers to
/// the right in the others.
fn line(cells: &[String], widths: &[usize; 8]) -> String {
    let mut out = String::new();
    for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
        let pad = " ".repeat(w - cell.chars().count());
        if i == 0 {
            out.push_str(cell);
            out.push_str(&pad);
        } else {
            out.push_str(&pad);
            out.push_str(cell);
        }
        out.push_str("  ");
    }
    out.trim_end().to_owned()
}

/// The table: one row per outcome, then each outcome's details.
pub fn table(report: &RunReport) -> String {
    let rows: Vec<Row> = report.results.iter().map(|o| o.report.row()).collect();
    let mut widths = HEADER.map(|h| h.chars().count());
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(&row.cells) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let _ = writeln!(out, "duet-bench {} → {}", report.version, report.url);
    if let (Some(before), Some(after)) = (report.load_before, report.load_after) {
        let _ = writeln!(
            out,
            "load average (1 min): {:.2} before the run (other work here skews the figures), {:.2} after",
            before[0], after[0]
        );
    }
    let _ = writeln!(out, "{}", line(&HEADER.map(String::from), &widths));
    for row in &rows {
        let _ = writeln!(out, "{}", line(&row.cells, &widths));
    }
    for row in &rows {
        let _ = writeln!(out, "\n{}", row.cells[0]);
        for d in &row.details {
            let _ = writeln!(out, "  {d}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn milliseconds() {
        assert_eq!(ms(None), "-");
        assert_eq!(ms(Some(0.4567)), "0.46 ms");
        assert_eq!(ms(Some(12.34)), "12.3 ms");
        assert_eq!(ms(Some(123.4)), "123 ms");
        assert_eq!(ms(Some(2500.0)), "2.50 s");
    }
}
