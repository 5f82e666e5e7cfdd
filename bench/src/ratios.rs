//! `duet-bench ratios`: how far Duet is from the floor (`bench/floor/`), from the `--json`
//! reports of runs labelled with `--label`. Each figure is the median of a label's runs. A
//! join is compared with the durable floor (which stores its slots, as Duet must), a relay and
//! the idle memory with the bare floor (neither touches storage), and Duet with tickets with
//! Duet without. Runs labelled `before` (an earlier build of Duet served beside it) and
//! `duet-warn` (Duet with `LOG_LEVEL=warn`, which writes no line per join) get their own
//! column and ratio. The targets are issue 13's; they are reported, never asserted.

use serde::Serialize;
use serde_json::Value;
use std::fmt::Write;

pub const DUET: &str = "duet";
pub const DUET_TICKETS: &str = "duet-tickets";
pub const BARE: &str = "bare";
pub const DURABLE: &str = "durable";
/// An earlier build of Duet, tickets off, for before/after in the same run.
pub const BEFORE: &str = "before";
/// Duet with `LOG_LEVEL=warn`: the default build without its lifecycle log lines.
pub const DUET_WARN: &str = "duet-warn";
pub const LABELS: [&str; 6] = [DUET, DUET_WARN, DUET_TICKETS, BEFORE, BARE, DURABLE];

/// A bound on a ratio: at least or at most `bound`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    AtLeast(f64),
    AtMost(f64),
}

impl Target {
    pub fn met(self, ratio: f64) -> bool {
        match self {
            Target::AtLeast(bound) => ratio >= bound,
            Target::AtMost(bound) => ratio <= bound,
        }
    }

    fn describe(self) -> String {
        match self {
            Target::AtLeast(bound) => format!(">= {bound:.2}"),
            Target::AtMost(bound) => format!("<= {bound:.2}"),
        }
    }
}

/// Ticket verification may cost at most 5% more.
const TICKET_COST: f64 = 1.05;

/// One figure of one scenario in one report.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    scenario: String,
    figure: &'static str,
    /// The label whose median the ratio divides by.
    floor: &'static str,
    value: f64,
    target: Option<Target>,
    tickets_target: Option<Target>,
}

/// A figure across labels: the medians, Duet's ratio to its floor, and tickets on vs off.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    pub scenario: String,
    pub figure: &'static str,
    /// Every run's value, by label (in [`LABELS`] order).
    pub runs: Vec<(String, Vec<f64>)>,
    pub medians: Vec<(String, Option<f64>)>,
    pub floor: &'static str,
    /// Duet's median over the floor's.
    pub ratio: Option<f64>,
    pub target: Option<Target>,
    pub met: Option<bool>,
    /// The earlier build's median over the floor's, and Duet's over the earlier build's.
    pub before_ratio: Option<f64>,
    pub change: Option<f64>,
    /// Duet with `LOG_LEVEL=warn` over the floor.
    pub warn_ratio: Option<f64>,
    /// Duet with tickets over Duet without.
    pub tickets_ratio: Option<f64>,
    pub tickets_target: Option<Target>,
    pub tickets_met: Option<bool>,
}

/// Failures of one label in one scenario, summed over its runs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failed {
    pub scenario: String,
    pub label: String,
    pub failures: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Ratios {
    pub reports: usize,
    pub rows: Vec<Row>,
    pub failures: Vec<Failed>,
}

fn num(v: &Value) -> Option<f64> {
    v.as_f64()
}

/// CPU seconds of all server processes in a scenario's `server_cpu`.
fn server_cpu_s(outcome: &Value) -> Option<f64> {
    let procs = outcome["server_cpu"].as_array().filter(|p| !p.is_empty())?;
    Some(procs.iter().filter_map(|p| num(&p["cpu_s"])).sum())
}

/// CPU seconds of the runtime process in a scenario's `server_cpu`.
fn runtime_cpu_s(outcome: &Value) -> Option<f64> {
    outcome["server_cpu"]
        .as_array()?
        .iter()
        .find(|p| p["role"] == "runtime")
        .and_then(|p| num(&p["cpu_s"]))
}

fn runtime_rss_kib(sample: &Value) -> Option<f64> {
    sample["processes"]
        .as_array()?
        .iter()
        .find(|p| p["role"] == "runtime")
        .and_then(|p| num(&p["rss_kib"]))
}

fn failures(outcome: &Value) -> u64 {
    outcome["failures"]
        .as_object()
        .map_or(0, |f| f.values().filter_map(Value::as_u64).sum())
}

/// The figures of one scenario in one report, each with its floor and targets.
struct Figures {
    scenario: String,
    floor: &'static str,
    out: Vec<Sample>,
}

impl Figures {
    fn new(scenario: String, floor: &'static str) -> Figures {
        Figures {
            scenario,
            floor,
            out: Vec::new(),
        }
    }

    /// A figure, if the report has it.
    fn push(
        &mut self,
        figure: &'static str,
        value: Option<f64>,
        target: Option<Target>,
        tickets_target: Option<Target>,
    ) {
        if let Some(value) = value.filter(|v| v.is_finite()) {
            self.out.push(Sample {
                scenario: self.scenario.clone(),
                figure,
                floor: self.floor,
                value,
                target,
                tickets_target,
            });
        }
    }
}

/// The scenario's name and its figures.
fn samples(outcome: &Value) -> Option<(String, Vec<Sample>)> {
    let figures = match outcome["scenario"].as_str()? {
        "join" => join_figures(outcome)?,
        "relay" if outcome["mode"] == "relay" => relay_figures(outcome)?,
        "idle" => idle_figures(outcome)?,
        _ => return None,
    };
    Some((figures.scenario, figures.out))
}

/// A join is compared with the durable floor: rate at many in flight, latency at one.
fn join_figures(outcome: &Value) -> Option<Figures> {
    let concurrency = outcome["concurrency"].as_u64()?;
    let rooms = outcome["rooms"].as_u64()?;
    let mut f = Figures::new(format!("join {rooms}x2, {concurrency} in flight"), DURABLE);
    let ready = num(&outcome["rooms_ready"]).filter(|&n| n > 0.0);
    let one = concurrency == 1;
    let rate = num(&outcome["rooms_per_s"]);
    let (rate_target, rate_tickets) = match one {
        true => (None, None),
        false => (
            Some(Target::AtLeast(0.95)),
            Some(Target::AtLeast(1.0 / TICKET_COST)),
        ),
    };
    f.push("rooms/s", rate, rate_target, rate_tickets);
    let (p50_target, p50_tickets) = match one {
        true => (Some(Target::AtMost(1.1)), Some(Target::AtMost(TICKET_COST))),
        false => (None, None),
    };
    let p50 = num(&outcome["welcome"]["p50_ms"]);
    f.push("welcome p50 ms", p50, p50_target, p50_tickets);
    let per_room = |s: Option<f64>| s.zip(ready).map(|(s, n)| s * 1e3 / n);
    f.push(
        "runtime CPU ms/room",
        per_room(runtime_cpu_s(outcome)),
        None,
        None,
    );
    f.push(
        "server CPU ms/room",
        per_room(server_cpu_s(outcome)),
        None,
        None,
    );
    Some(f)
}

/// A relay is compared with the bare floor; targets only with more than one room.
fn relay_figures(outcome: &Value) -> Option<Figures> {
    let rooms = outcome["rooms"].as_u64()?;
    let size = outcome["size_bytes"].as_u64()?;
    let mut f = Figures::new(format!("relay {rooms} rooms, {size} B"), BARE);
    let loaded = rooms > 1;
    let messages = num(&outcome["round_trips"])
        .map(|n| 2.0 * n)
        .filter(|&n| n > 0.0);
    let rate = num(&outcome["messages_per_s"]);
    f.push(
        "messages/s",
        rate,
        loaded.then_some(Target::AtLeast(0.95)),
        None,
    );
    let p50 = num(&outcome["rtt"]["p50_ms"]);
    f.push(
        "round trip p50 ms",
        p50,
        loaded.then_some(Target::AtMost(1.0)),
        None,
    );
    let per_message = |s: Option<f64>| s.zip(messages).map(|(s, n)| s * 1e6 / n);
    f.push(
        "runtime CPU us/msg",
        per_message(runtime_cpu_s(outcome)),
        None,
        None,
    );
    f.push(
        "server CPU us/msg",
        per_message(server_cpu_s(outcome)),
        None,
        None,
    );
    Some(f)
}

/// Idle memory per socket is compared with the bare floor.
fn idle_figures(outcome: &Value) -> Option<Figures> {
    let sockets = num(&outcome["sockets_open"]).filter(|&n| n > 0.0);
    let scenario = format!(
        "idle {} sockets, {} s",
        2 * outcome["rooms"].as_u64()?,
        num(&outcome["held_s"])?
    );
    let mut f = Figures::new(scenario, BARE);
    let memory = &outcome["memory"];
    let all = num(&memory["rss_per_socket_kib"]);
    f.push("KiB/socket, all", all, Some(Target::AtMost(1.1)), None);
    let runtime = runtime_rss_kib(&memory["held"])
        .zip(runtime_rss_kib(&memory["before"]))
        .zip(sockets)
        .map(|((held, before), n)| (held - before) / n);
    f.push("KiB/socket, runtime", runtime, None, None);
    Some(f)
}

fn median(values: &[f64]) -> Option<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(sorted[n / 2]),
        _ => Some((sorted[n / 2 - 1] + sorted[n / 2]) / 2.0),
    }
}

/// A figure's values across the reports, by label (in [`LABELS`] order).
struct Acc {
    sample: Sample,
    runs: Vec<Vec<f64>>,
}

/// The rows for `reports` (each a parsed `duet-bench --json --label …` document), in the
/// order their scenarios and figures first appear.
pub fn ratios(reports: &[Value]) -> Ratios {
    let mut acc: Vec<Acc> = Vec::new();
    let mut failed: Vec<Failed> = Vec::new();
    for report in reports {
        let Some(label) = report["label"].as_str() else {
            continue;
        };
        let Some(slot) = LABELS.iter().position(|l| *l == label) else {
            continue;
        };
        for outcome in report["results"].as_array().into_iter().flatten() {
            if let Some((scenario, samples)) = samples(outcome) {
                add_failures(&mut failed, scenario, label, failures(outcome));
                for sample in samples {
                    add_sample(&mut acc, sample, slot);
                }
            }
        }
    }
    // Joins, then relays, then idle; within each, in the order they first appeared.
    let kind = |scenario: &str| {
        ["join", "relay", "idle"]
            .iter()
            .position(|k| scenario.starts_with(k))
    };
    acc.sort_by_key(|a| kind(&a.sample.scenario));
    Ratios {
        reports: reports.len(),
        rows: acc.into_iter().map(row).collect(),
        failures: failed,
    }
}

fn add_failures(failed: &mut Vec<Failed>, scenario: String, label: &str, n: u64) {
    match failed
        .iter_mut()
        .find(|f| f.scenario == scenario && f.label == label)
    {
        Some(f) => f.failures += n,
        None => failed.push(Failed {
            scenario,
            label: label.to_owned(),
            failures: n,
        }),
    }
}

fn add_sample(acc: &mut Vec<Acc>, sample: Sample, slot: usize) {
    let same = |a: &Acc| a.sample.scenario == sample.scenario && a.sample.figure == sample.figure;
    let at = match acc.iter().position(same) {
        Some(at) => at,
        None => {
            acc.push(Acc {
                sample: sample.clone(),
                runs: vec![Vec::new(); LABELS.len()],
            });
            acc.len() - 1
        }
    };
    acc[at].runs[slot].push(sample.value);
}

/// A figure's medians by label and its ratios.
fn row(a: Acc) -> Row {
    let medians: Vec<Option<f64>> = a.runs.iter().map(|r| median(r)).collect();
    let of = |label: &str| {
        LABELS
            .iter()
            .position(|l| *l == label)
            .and_then(|i| medians[i])
    };
    let over = |top: &str, bottom: &str| {
        of(top)
            .zip(of(bottom))
            .filter(|&(_, b)| b != 0.0)
            .map(|(t, b)| t / b)
    };
    let met = |target: Option<Target>, ratio: Option<f64>| target.zip(ratio).map(|(t, r)| t.met(r));
    let ratio = over(DUET, a.sample.floor);
    let tickets_ratio = over(DUET_TICKETS, DUET);
    let labels = || LABELS.iter().map(|l| l.to_string());
    Row {
        scenario: a.sample.scenario,
        figure: a.sample.figure,
        runs: labels().zip(a.runs).collect(),
        medians: labels().zip(medians.iter().copied()).collect(),
        floor: a.sample.floor,
        ratio,
        target: a.sample.target,
        met: met(a.sample.target, ratio),
        before_ratio: over(BEFORE, a.sample.floor),
        change: over(DUET, BEFORE),
        warn_ratio: over(DUET_WARN, a.sample.floor),
        tickets_ratio,
        tickets_target: a.sample.tickets_target,
        tickets_met: met(a.sample.tickets_target, tickets_ratio),
    }
}

fn value(v: Option<f64>) -> String {
    match v {
        None => "-".into(),
        Some(v) if v.abs() >= 100.0 => format!("{v:.0}"),
        Some(v) if v.abs() >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
    }
}

fn judged(ratio: Option<f64>, target: Option<Target>, met: Option<bool>) -> String {
    let Some(ratio) = ratio else {
        return "-".into();
    };
    match (target, met) {
        (Some(t), Some(true)) => format!("{ratio:.2} ({} ok)", t.describe()),
        (Some(t), _) => format!("{ratio:.2} ({} MISSED)", t.describe()),
        _ => format!("{ratio:.2}"),
    }
}

/// Which columns the table has: the labels with runs, and the optional ratios.
struct Columns {
    shown: Vec<usize>,
    before: bool,
    warn: bool,
}

impl Columns {
    fn of(ratios: &Ratios) -> Columns {
        let shown: Vec<usize> = (0..LABELS.len())
            .filter(|&i| ratios.rows.iter().any(|r| r.medians[i].1.is_some()))
            .collect();
        Columns {
            before: shown.iter().any(|&i| LABELS[i] == BEFORE),
            warn: shown.iter().any(|&i| LABELS[i] == DUET_WARN),
            shown,
        }
    }

    fn header(&self) -> Vec<String> {
        let mut header: Vec<String> = vec!["scenario".into(), "figure".into()];
        header.extend(self.shown.iter().map(|&i| LABELS[i].to_string()));
        header.push("duet/floor".into());
        if self.warn {
            header.push("warn/floor".into());
        }
        if self.before {
            header.extend(["before/floor".into(), "duet/before".into()]);
        }
        header.push("tickets/duet".into());
        header
    }

    fn cells(&self, row: &Row) -> Vec<String> {
        let met = |ratio: Option<f64>| row.target.zip(ratio).map(|(t, r)| t.met(r));
        let mut cells = vec![row.scenario.clone(), row.figure.into()];
        cells.extend(self.shown.iter().map(|&i| value(row.medians[i].1)));
        cells.push(format!(
            "{} {}",
            row.floor,
            judged(row.ratio, row.target, row.met)
        ));
        if self.warn {
            cells.push(judged(row.warn_ratio, row.target, met(row.warn_ratio)));
        }
        if self.before {
            cells.push(judged(row.before_ratio, row.target, met(row.before_ratio)));
            cells.push(judged(row.change, None, None));
        }
        cells.push(judged(
            row.tickets_ratio,
            row.tickets_target,
            row.tickets_met,
        ));
        cells
    }
}

/// The table: one line per figure, medians by label (the labels that have runs), then the
/// ratios and their targets.
pub fn table(ratios: &Ratios) -> String {
    let columns = Columns::of(ratios);
    let mut lines = vec![columns.header()];
    lines.extend(ratios.rows.iter().map(|row| columns.cells(row)));
    let widths: Vec<usize> = (0..lines[0].len())
        .map(|c| {
            lines
                .iter()
                .map(|l| l[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "duet-bench ratios: {} reports; medians of each label's runs",
        ratios.reports
    );
    let medians = 2..2 + columns.shown.len();
    for line in &lines {
        let mut text = String::new();
        for (c, (cell, w)) in line.iter().zip(&widths).enumerate() {
            let pad = " ".repeat(w - cell.chars().count());
            // Names to the left, numbers to the right.
            if medians.contains(&c) {
                let _ = write!(text, "{pad}{cell}  ");
            } else {
                let _ = write!(text, "{cell}{pad}  ");
            }
        }
        let _ = writeln!(out, "{}", text.trim_end());
    }
    let failed: Vec<String> = ratios
        .failures
        .iter()
        .filter(|f| f.failures > 0)
        .map(|f| format!("{} {}: {}", f.label, f.scenario, f.failures))
        .collect();
    let failed = match failed.is_empty() {
        true => "none".into(),
        false => failed.join(", "),
    };
    let _ = writeln!(out, "failures: {failed}");
    out
}

/// The flags of `duet-bench ratios`.
#[derive(Debug, Clone, clap::Args)]
pub struct RatiosArgs {
    /// The reports, one `duet-bench --json --label NAME ...` output per file.
    #[arg(required = true)]
    pub files: Vec<std::path::PathBuf>,
}

/// `duet-bench ratios`: reads the reports and prints the comparison.
pub fn print(args: &RatiosArgs, json: bool) -> anyhow::Result<()> {
    use anyhow::Context;
    let mut reports = Vec::new();
    for path in &args.files {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        let report: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not a duet-bench --json report", path.display()))?;
        reports.push(report);
    }
    let ratios = ratios(&reports);
    if json {
        println!("{}", serde_json::to_string_pretty(&ratios)?);
    } else {
        print!("{}", table(&ratios));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn join(label: &str, concurrency: u64, rooms_per_s: f64, p50: f64) -> Value {
        json!({
            "label": label,
            "results": [{
                "scenario": "join", "rooms": 100, "concurrency": concurrency,
                "rooms_ready": 100, "rooms_per_s": rooms_per_s,
                "welcome": {"p50_ms": p50},
                "failures": {},
                "server_cpu": [{"role": "runtime", "cpu_s": 0.5}, {"role": "proxy", "cpu_s": 9.0}],
            }],
        })
    }

    fn row<'a>(r: &'a Ratios, scenario: &str, figure: &str) -> &'a Row {
        r.rows
            .iter()
            .find(|row| row.scenario == scenario && row.figure == figure)
            .unwrap_or_else(|| panic!("no row {scenario} / {figure}"))
    }

    #[test]
    fn joins_are_compared_with_the_durable_floor_and_tickets_with_duet() {
        let reports = [
            join(DUET, 100, 90.0, 8.0),
            join(DUET, 100, 100.0, 8.0),
            join(DUET, 100, 80.0, 8.0),
            join(DURABLE, 100, 100.0, 6.0),
            join(BARE, 100, 200.0, 4.0),
            join(DUET_TICKETS, 100, 85.0, 9.0),
        ];
        let r = ratios(&reports);
        let rate = row(&r, "join 100x2, 100 in flight", "rooms/s");
        assert_eq!(rate.medians[0], (DUET.to_string(), Some(90.0)));
        assert_eq!(rate.runs[0].1, vec![90.0, 100.0, 80.0]);
        assert_eq!(rate.floor, DURABLE);
        assert_eq!(rate.ratio, Some(0.9));
        assert_eq!(rate.target, Some(Target::AtLeast(0.95)));
        assert_eq!(rate.met, Some(false));
        let tickets = rate.tickets_ratio.unwrap();
        assert!((tickets - 85.0 / 90.0).abs() < 1e-12);
        assert_eq!(rate.tickets_met, Some(false));
        // At 100 in flight the welcome latency is queueing: reported, not judged.
        let p50 = row(&r, "join 100x2, 100 in flight", "welcome p50 ms");
        assert_eq!(p50.target, None);
        assert_eq!(p50.met, None);
        // 0.5 s of runtime CPU over 100 rooms; the proxy's CPU is not the runtime's.
        let cpu = row(&r, "join 100x2, 100 in flight", "runtime CPU ms/room");
        assert_eq!(cpu.medians[0].1, Some(5.0));
        let all = row(&r, "join 100x2, 100 in flight", "server CPU ms/room");
        assert_eq!(all.medians[0].1, Some(95.0));
        assert!(table(&r).contains("durable 0.90 (>= 0.95 MISSED)"));
    }

    #[test]
    fn one_at_a_time_the_welcome_latency_is_judged() {
        let r = ratios(&[join(DUET, 1, 50.0, 6.6), join(DURABLE, 1, 60.0, 6.0)]);
        let p50 = row(&r, "join 100x2, 1 in flight", "welcome p50 ms");
        assert_eq!(p50.target, Some(Target::AtMost(1.1)));
        assert_eq!(p50.met, Some(true));
        assert_eq!(row(&r, "join 100x2, 1 in flight", "rooms/s").target, None);
        // No duet-tickets runs: no tickets ratio.
        assert_eq!(p50.tickets_ratio, None);
        assert_eq!(p50.tickets_met, None);
    }

    #[test]
    fn relays_and_idle_memory_are_compared_with_the_bare_floor() {
        let relay = |label: &str, rooms: u64, mps: f64, p50: f64| {
            json!({"label": label, "results": [{
                "scenario": "relay", "mode": "relay", "rooms": rooms, "size_bytes": 256,
                "round_trips": 1000, "messages_per_s": mps, "rtt": {"p50_ms": p50},
                "failures": {"timeout: relay": 2},
                "server_cpu": [{"role": "runtime", "cpu_s": 0.1}],
            }]})
        };
        let idle = |label: &str, all: f64, runtime_held: f64| {
            json!({"label": label, "results": [{
                "scenario": "idle", "rooms": 10, "sockets_open": 20, "held_s": 30.0,
                "failures": {},
                "memory": {
                    "rss_per_socket_kib": all,
                    "before": {"processes": [{"role": "runtime", "rss_kib": 1000.0}]},
                    "held": {"processes": [{"role": "runtime", "rss_kib": runtime_held}]},
                },
            }]})
        };
        let r = ratios(&[
            idle(DUET, 440.0, 5000.0),
            relay(DUET, 200, 19_000.0, 10.0),
            relay(BARE, 200, 20_000.0, 10.0),
            relay(DUET, 1, 8_000.0, 0.2),
            relay(BARE, 1, 10_000.0, 0.1),
            idle(BARE, 400.0, 3000.0),
            // Not a label of the floor run: ignored.
            relay("other", 200, 1.0, 1.0),
        ]);
        // Relays before idle, whatever order the reports came in.
        assert!(r.rows[0].scenario.starts_with("relay"));
        assert!(r.rows.last().unwrap().scenario.starts_with("idle"));
        let mps = row(&r, "relay 200 rooms, 256 B", "messages/s");
        assert_eq!(mps.ratio, Some(0.95));
        assert_eq!(mps.met, Some(true));
        let rtt = row(&r, "relay 200 rooms, 256 B", "round trip p50 ms");
        assert_eq!((rtt.ratio, rtt.met), (Some(1.0), Some(true)));
        // One room is unloaded latency: reported without a target.
        assert_eq!(row(&r, "relay 1 rooms, 256 B", "messages/s").target, None);
        let cpu = row(&r, "relay 1 rooms, 256 B", "runtime CPU us/msg");
        assert_eq!(cpu.medians[0].1, Some(50.0));
        let memory = row(&r, "idle 20 sockets, 30 s", "KiB/socket, all");
        assert_eq!((memory.ratio, memory.met), (Some(1.1), Some(true)));
        let runtime = row(&r, "idle 20 sockets, 30 s", "KiB/socket, runtime");
        assert_eq!(runtime.medians[0].1, Some(200.0));
        assert_eq!(runtime.ratio, Some(2.0));
        let text = table(&r);
        assert!(text.contains("failures: duet relay 200 rooms, 256 B: 2, bare relay 200 rooms"));
    }

    #[test]
    fn an_earlier_build_gets_its_own_ratio_and_the_change() {
        let r = ratios(&[
            join(DUET, 100, 90.0, 8.0),
            join(BEFORE, 100, 60.0, 8.0),
            join(DURABLE, 100, 100.0, 6.0),
        ]);
        let rate = row(&r, "join 100x2, 100 in flight", "rooms/s");
        assert_eq!(rate.before_ratio, Some(0.6));
        assert_eq!(rate.change, Some(1.5));
        let text = table(&r);
        assert!(text.contains("duet/floor"));
        assert!(text.contains("0.60 (>= 0.95 MISSED)  1.50"));
        // Labels without runs get no column.
        assert!(!text.lines().nth(1).unwrap().contains("bare"));
    }

    #[test]
    fn duet_with_quiet_logs_gets_its_own_ratio_to_the_floor() {
        let r = ratios(&[
            join(DUET, 100, 70.0, 8.0),
            join(DUET_WARN, 100, 96.0, 8.0),
            join(DURABLE, 100, 100.0, 6.0),
        ]);
        let rate = row(&r, "join 100x2, 100 in flight", "rooms/s");
        assert_eq!(rate.ratio, Some(0.7));
        assert_eq!(rate.warn_ratio, Some(0.96));
        let text = table(&r);
        assert!(text.contains("warn/floor"), "{text}");
        assert!(
            text.contains("durable 0.70 (>= 0.95 MISSED)  0.96 (>= 0.95 ok)"),
            "{text}"
        );
        // Without such runs, no column.
        let plain = table(&ratios(&[join(DUET, 100, 70.0, 8.0)]));
        assert!(!plain.contains("warn/floor"), "{plain}");
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
    }
}
