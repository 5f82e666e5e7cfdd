//! `join`: rooms × 2 peers, at most `concurrency` rooms in flight. Each room is opened (first
//! peer `created`, second `joined`, both `ready`) and then closed with 1000, so the run
//! measures room churn with a bounded number of live rooms.

use super::{Ctx, Scenario};
use crate::args::{check_concurrency, check_rooms, seconds, ArgError};
use crate::report::{cpu, failures_line, quantiles, Outcome, Report, Row};
use crate::room::{close_pair, open_room, Opened};
use crate::server::{cpu_between, own_cpu_s, ProcCpu};
use crate::stats::{rate, Failures, Latency, Summary};
use futures_util::future::BoxFuture;
use futures_util::{future, stream, FutureExt, StreamExt};
use serde::Serialize;
use std::time::{Duration, Instant};

/// Open rooms × 2 peers with bounded concurrency; joins/s and connect→welcome latency.
#[derive(Debug, Clone, clap::Args)]
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

impl Scenario for JoinArgs {
    fn check(&self) -> Result<(), ArgError> {
        check_rooms("rooms", self.rooms)?;
        check_concurrency(self.concurrency)?;
        seconds("duration", self.duration, 0.1)?;
        Ok(())
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, anyhow::Result<Vec<Outcome>>> {
        async move { Ok(vec![Outcome::new(run(ctx, "join", self).await)]) }.boxed()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct JoinReport {
    pub rooms: u32,
    pub concurrency: u32,
    /// Rooms that were started before `--duration` ran out.
    pub rooms_started: u32,
    pub rooms_ready: u64,
    /// Peers that got their welcome frame.
    pub joins: u64,
    pub elapsed_s: f64,
    pub joins_per_s: f64,
    pub rooms_per_s: f64,
    /// Connect start → welcome frame, per peer.
    pub welcome: Option<Summary>,
    /// First peer's connect start → both peers `ready`, per room.
    pub ready: Option<Summary>,
    pub failures: Failures,
    pub server_cpu: Vec<ProcCpu>,
    pub client_cpu_s: f64,
}

pub async fn run(ctx: &Ctx, tag: &str, args: &JoinArgs) -> JoinReport {
    let before = ctx.server.sample();
    let cpu_before = own_cpu_s();
    let start = Instant::now();
    let stop_starting = start + Duration::from_secs_f64(args.duration);
    let bar = ctx.bar(u64::from(args.rooms), "join");
    let (mut welcome, mut ready) = (Latency::new(), Latency::new());
    let mut failures = Failures::default();
    let mut started = 0;

    let mut results = stream::iter(0..args.rooms)
        .take_while(|_| future::ready(Instant::now() < stop_starting))
        .map(|i| {
            let room = ctx.room(tag, i);
            async move {
                let mut opened = Opened::default();
                let result = open_room(&room, &mut opened).await;
                let failure = match result {
                    Ok(pair) => {
                        close_pair(pair).await;
                        None
                    }
                    Err(failure) => Some(failure),
                };
                (opened, failure)
            }
        })
        .buffer_unordered(args.concurrency as usize);
    while let Some((opened, failure)) = results.next().await {
        started += 1;
        welcome.merge(&opened.welcome);
        if let Some(d) = opened.ready {
            ready.record(d);
        }
        if let Some(failure) = failure {
            failures.add(&failure);
        }
        bar.inc(1);
    }
    bar.finish_and_clear();
    let elapsed = start.elapsed();
    JoinReport {
        rooms: args.rooms,
        concurrency: args.concurrency,
        rooms_started: started,
        rooms_ready: ready.count(),
        joins: welcome.count(),
        elapsed_s: elapsed.as_secs_f64(),
        joins_per_s: rate(welcome.count(), elapsed),
        rooms_per_s: rate(ready.count(), elapsed),
        welcome: welcome.summary(),
        ready: ready.summary(),
        failures,
        server_cpu: cpu_between(&before, &ctx.server.sample()),
        client_cpu_s: own_cpu_s() - cpu_before,
    }
}

impl Report for JoinReport {
    fn name(&self) -> &'static str {
        "join"
    }

    fn did_anything(&self) -> bool {
        self.rooms_ready > 0
    }

    fn row(&self) -> Row {
        let [r50, r99, rmax] = quantiles(&self.ready);
        let throughput = format!("{:.0} joins/s", self.joins_per_s);
        let row = Row::new(
            "join".into(),
            self.rooms,
            &self.welcome,
            throughput,
            "-".into(),
            self.failures.total(),
        );
        row.details(vec![
            format!(
                "{}/{} rooms ready ({} started) in {:.1} s, {:.0} rooms/s, concurrency {}",
                self.rooms_ready,
                self.rooms,
                self.rooms_started,
                self.elapsed_s,
                self.rooms_per_s,
                self.concurrency
            ),
            format!(
                "latency: connect→welcome per peer (table); first connect→both ready per \
                 room: p50 {r50}, p99 {r99}, max {rmax}"
            ),
            format!(
                "server CPU: {}; client CPU {:.2} s",
                cpu(&self.server_cpu, Some((self.rooms_ready, "room"))),
                self.client_cpu_s
            ),
            failures_line(&self.failures),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::{table, RunReport};
    use crate::stats::Failure;

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
            results: vec![Outcome::new(join())],
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
        let json = serde_json::to_value(Outcome::new(join())).unwrap();
        assert_eq!(json["scenario"], "join");
        assert_eq!(json["rooms_ready"], 9);
        assert_eq!(json["welcome"]["p50_ms"], 1.234);
        assert_eq!(json["ready"], serde_json::Value::Null);
        assert_eq!(json["failures"]["timeout: created"], 1);
        let text = serde_json::to_string(&Outcome::new(join())).unwrap();
        assert!(
            text.starts_with(r#"{"scenario":"join","rooms":10,"#),
            "{text}"
        );
        assert!(join().did_anything());
    }

    #[test]
    fn bounds() {
        let join = |rooms, concurrency, duration| JoinArgs {
            rooms,
            concurrency,
            duration,
        };
        assert!(join(1, 1, 0.1).check().is_ok());
        assert!(join(0, 1, 1.0).check().is_err());
        assert!(join(1, 0, 1.0).check().is_err());
        assert!(join(1, 1, f64::NAN).check().is_err());
    }
}
