//! The scenarios, one file each: its flags (`Args`), its run and its report. Each takes the
//! run's [`Ctx`] and returns outcomes; none panics on a server misbehaving, it counts a
//! failure instead. Adding a scenario is its file here plus one line in `main.rs`.

pub mod all;
pub mod flood;
pub mod idle;
pub mod join;
pub mod relay;
pub mod soak;

use crate::args::ArgError;
use crate::report::Outcome;
use crate::room::{open_room, Opened, Pair, RoomDial};
use crate::server::Server;
use crate::stats::Failure;
use crate::ticket;
use duet_client::Dial;
use futures_util::future::BoxFuture;
use indicatif::{ProgressBar, ProgressStyle};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Semaphore};
use tokio::task::JoinHandle;
use url::Url;

/// A scenario's flags: checked before anything connects, then run.
pub trait Scenario {
    fn check(&self) -> Result<(), ArgError>;
    fn run<'a>(&'a self, ctx: &'a Ctx) -> BoxFuture<'a, anyhow::Result<Vec<Outcome>>>;
}

/// What every scenario of one run shares.
pub struct Ctx {
    pub base: Url,
    pub timeout: Duration,
    pub prefix: String,
    pub progress: bool,
    /// Progress notes on stderr (not with `--json`).
    pub chatty: bool,
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
        // The name was checked with `--room-prefix`; a bad one would fail to connect.
        let url = duet_client::room_url(self.base.as_str(), &name).unwrap_or_default();
        let dial = |peer: &str| {
            let dial = Dial::new(url.clone()).timeout(self.timeout);
            match &self.tickets {
                Some(t) => dial.ticket(ticket::mint(
                    &t.secret,
                    &name,
                    &format!("{peer}-{name}"),
                    t.exp_s,
                )),
                None => dial,
            }
        };
        RoomDial {
            a: dial("a"),
            b: dial("b"),
        }
    }

    pub fn note(&self, what: impl std::fmt::Display) {
        if self.chatty {
            eprintln!("{what}");
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

    /// Starts one task per room, made by `task` from the room's index, its dial and its
    /// [`Opening`] (a place among `concurrency` rooms opening at once); returns once every
    /// room has had its turn to open, while the tasks go on.
    pub async fn open_rooms<T, Fut>(
        &self,
        tag: &str,
        rooms: u32,
        concurrency: u32,
        task: impl Fn(u32, RoomDial, Opening) -> Fut,
    ) -> Vec<JoinHandle<T>>
    where
        T: Send + 'static,
        Fut: Future<Output = T> + Send + 'static,
    {
        let setup = Arc::new(Semaphore::new(concurrency as usize));
        let (opened_tx, mut opened_rx) = mpsc::unbounded_channel::<()>();
        let handles = (0..rooms)
            .map(|i| {
                let opening = Opening {
                    setup: Arc::clone(&setup),
                    opened_tx: opened_tx.clone(),
                };
                tokio::spawn(task(i, self.room(tag, i), opening))
            })
            .collect();
        drop(opened_tx);
        let bar = self.bar(u64::from(rooms), "open rooms");
        while opened_rx.recv().await.is_some() {
            bar.inc(1);
        }
        bar.finish_and_clear();
        handles
    }
}

/// A room's turn to open among the rooms set up together.
pub struct Opening {
    setup: Arc<Semaphore>,
    opened_tx: mpsc::UnboundedSender<()>,
}

impl Opening {
    /// Waits for a place, opens the room, then tells the scenario this room is done setting
    /// up, whatever the outcome, so it knows when every room has had its turn.
    pub async fn open(self, dial: &RoomDial, opened: &mut Opened) -> Result<Pair, Failure> {
        let result = {
            let _permit = self.setup.acquire().await;
            open_room(dial, opened).await
        };
        let _ = self.opened_tx.send(());
        result
    }
}

/// The results of the room tasks; a task that panicked gives `failed(its error)`.
pub async fn join_all<T>(handles: Vec<JoinHandle<T>>, failed: impl Fn(Failure) -> T) -> Vec<T> {
    let mut out = Vec::with_capacity(handles.len());
    for handle in handles {
        out.push(match handle.await {
            Ok(t) => t,
            Err(e) => failed(Failure::Socket(format!("task: {e}"))),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet::ticket::{verify, DEFAULT_MAX_TTL_S};

    fn ctx(tickets: Option<Tickets>) -> Ctx {
        Ctx {
            base: Url::parse("ws://127.0.0.1:8787").unwrap(),
            timeout: Duration::from_secs(3),
            prefix: "b1".into(),
            progress: false,
            chatty: false,
            server: Server::default(),
            tickets,
        }
    }

    #[test]
    fn each_peer_of_a_room_dials_with_a_ticket_of_its_own() {
        let plain = ctx(None).room("join", 7);
        assert_eq!(plain.a.url, "ws://127.0.0.1:8787/ws/b1-join-7");
        assert_eq!(
            (plain.a.ticket.as_ref(), plain.a.timeout),
            (None, Duration::from_secs(3))
        );
        let now = 1_700_000_000;
        let tickets = Tickets {
            secret: "s3cret".into(),
            exp_s: now + 60,
        };
        let room = ctx(Some(tickets)).room("join", 7);
        let secrets = ["s3cret".to_owned()];
        for (dial, sub) in [(&room.a, "a-b1-join-7"), (&room.b, "b-b1-join-7")] {
            let ticket = dial.ticket.as_deref().unwrap();
            let identity = verify(ticket, &secrets, "b1-join-7", now, DEFAULT_MAX_TTL_S).unwrap();
            assert_eq!(identity.sub, sub);
            assert!(dial
                .subprotocols()
                .ends_with(&format!("duet.ticket.{ticket}")));
        }
    }
}
