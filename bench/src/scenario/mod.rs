//! The scenarios. Each takes the run's [`Ctx`] and its own flags and returns a report; none
//! panics on a server misbehaving, it counts a failure instead.

pub mod flood;
pub mod idle;
pub mod join;
pub mod relay;
pub mod soak;

use crate::cli::room_url;
use crate::conn::{Dial, RoomDial};
use crate::server::{Sample, Server};
use crate::ticket;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::time::{Duration, Instant};
use url::Url;

/// What every scenario of one run shares.
pub struct Ctx {
    pub base: Url,
    pub timeout: Duration,
    pub prefix: String,
    pub progress: bool,
    pub server: Server,
    /// With a join-ticket secret, every peer offers a ticket of its own.
    pub tickets: Option<Tickets>,
}

/// Join tickets: the secret they are signed with and when they expire (unix seconds).
pub struct Tickets {
    pub secret: String,
    pub exp_s: u64,
}

impl Ctx {
    /// How the two peers of room `index` of the scenario run tagged `tag` connect; with
    /// tickets, each peer is an identity of its own (`a-{room}`, `b-{room}`).
    pub fn room(&self, tag: &str, index: u32) -> RoomDial {
        let name = format!("{}-{tag}-{index}", self.prefix);
        let url = room_url(&self.base, &name);
        let dial = |peer: &str| Dial {
            url: url.clone(),
            protocols: self.tickets.as_ref().map(|t| {
                let sub = format!("{peer}-{name}");
                ticket::subprotocols(&ticket::mint(&t.secret, &name, &sub, t.exp_s))
            }),
        };
        RoomDial {
            a: dial("a"),
            b: dial("b"),
        }
    }

    /// A bar counting `len` steps, or a hidden one.
    pub fn bar(&self, len: u64, message: &'static str) -> ProgressBar {
        if !self.progress {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::new(len).with_message(message);
        if let Ok(style) =
            ProgressStyle::with_template("{msg:>16} [{bar:40}] {pos}/{len} {elapsed_precise}")
        {
            bar.set_style(style.progress_chars("=> "));
        }
        bar
    }

    /// Sleeps until `until`, showing the time left on a bar.
    pub async fn wait_with_bar(&self, until: Instant, message: &'static str) {
        let total = until.saturating_duration_since(Instant::now());
        let bar = self.bar(total.as_secs().max(1), message);
        let step = Duration::from_millis(250);
        loop {
            let now = Instant::now();
            if now >= until {
                break;
            }
            let done = total.saturating_sub(until - now);
            bar.set_position(done.as_secs());
            tokio::time::sleep(step.min(until - now)).await;
        }
        bar.finish_and_clear();
    }
}

/// CPU seconds each server process used between two samples.
#[derive(Debug, Clone, Serialize)]
pub struct ProcCpu {
    pub pid: u32,
    pub role: &'static str,
    pub cpu_s: f64,
}

pub fn cpu_between(before: &Sample, after: &Sample) -> Vec<ProcCpu> {
    after
        .processes
        .iter()
        .map(|p| {
            let was = before
                .processes
                .iter()
                .find(|b| b.pid == p.pid)
                .map_or(0.0, |b| b.cpu_s);
            ProcCpu {
                pid: p.pid,
                role: p.role,
                cpu_s: p.cpu_s - was,
            }
        })
        .collect()
}
