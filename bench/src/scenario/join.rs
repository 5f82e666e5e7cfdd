//! `join`: rooms × 2 peers, at most `concurrency` rooms in flight. Each room is opened (first
//! peer `created`, second `joined`, both `ready`) and then closed with 1000, so the run
//! measures room churn with a bounded number of live rooms.

use super::{cpu_between, Ctx, ProcCpu};
use crate::cli::JoinArgs;
use crate::conn::{close_pair, open_room, Opened};
use crate::server::own_cpu_s;
use crate::stats::{rate, Failures, Latency, Summary};
use futures_util::{future, stream, StreamExt};
use serde::Serialize;
use std::time::{Duration, Instant};

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

pub async fn run(ctx: &Ctx, tag: &str, args: &JoinArgs, duration: Duration) -> JoinReport {
    let before = ctx.server.sample();
    let cpu_before = own_cpu_s();
    let start = Instant::now();
    let stop_starting = start + duration;
    let bar = ctx.bar(u64::from(args.rooms), "join");
    let mut welcome = Latency::new();
    let mut ready = Latency::new();
    let mut failures = Failures::default();
    let mut started = 0;

    let mut results = stream::iter(0..args.rooms)
        .take_while(|_| future::ready(Instant::now() < stop_starting))
        .map(|i| {
            let room = ctx.room(tag, i);
            async move {
                let mut opened = Opened::default();
                let result = open_room(&room, ctx.timeout, &mut opened).await;
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
    let after = ctx.server.sample();

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
        server_cpu: match (&before, &after) {
            (Some(b), Some(a)) => cpu_between(b, a),
            _ => Vec::new(),
        },
        client_cpu_s: own_cpu_s() - cpu_before,
    }
}
