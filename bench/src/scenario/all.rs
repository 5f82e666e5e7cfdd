//! `all`: the standard scenarios in turn: join, relay with 1 and with 500 rooms, idle.

use super::idle::{self, IdleArgs};
use super::join::{self, JoinArgs};
use super::relay::{self, RelayArgs, RelayMode};
use super::{Ctx, Scenario};
use crate::args::{fail, ArgError};
use crate::report::Outcome;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;

/// The standard scenarios in turn: join, relay with 1 and with 500 rooms, idle.
#[derive(Debug, Clone, clap::Args)]
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
    fn join(&self) -> JoinArgs {
        JoinArgs {
            rooms: self.join_rooms,
            concurrency: self.concurrency,
            duration: 120.0,
        }
    }

    fn relays(&self) -> Vec<RelayArgs> {
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

    fn idle(&self) -> IdleArgs {
        IdleArgs {
            rooms: self.idle_rooms,
            concurrency: self.concurrency,
            duration: self.idle_duration,
            ping_interval: 20.0,
        }
    }
}

impl Scenario for AllArgs {
    fn check(&self) -> Result<(), ArgError> {
        self.join().check()?;
        if self.relay_rooms.is_empty() {
            return fail("--relay-rooms needs at least one room count");
        }
        for relay in self.relays() {
            relay.check()?;
        }
        self.idle().check()
    }

    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, anyhow::Result<Vec<Outcome>>> {
        async move {
            let join = self.join();
            ctx.note(format_args!("join: {} rooms", join.rooms));
            let mut results = vec![Outcome::new(join::run(ctx, "join", &join).await)];
            for (i, relay) in self.relays().iter().enumerate() {
                ctx.note(format_args!(
                    "relay: {} rooms, {} s",
                    relay.rooms, relay.duration
                ));
                let report = relay::run(ctx, &format!("relay{i}"), relay).await;
                results.push(Outcome::new(report));
            }
            let idle = self.idle();
            ctx.note(format_args!(
                "idle: {} rooms, {} s",
                idle.rooms, idle.duration
            ));
            results.push(Outcome::new(idle::run(ctx, "idle", &idle).await));
            Ok(results)
        }
        .boxed()
    }
}
