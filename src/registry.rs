//! The room's open sockets and who holds them: what each socket carries through hibernation
//! ([`SocketInfo`], its attachment) and the registry the relay path reads. The registry is
//! rebuilt once from the runtime's sockets and their attachments after a wake, then changed
//! only where sockets are accepted and closed.

use crate::rate::RateLimiter;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// What a socket carries through hibernation (its attachment).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketInfo {
    /// The socket's id, also its tag.
    pub conn: String,
    pub client_id: String,
    pub room: String,
    /// When the socket was accepted (ms since the epoch).
    #[serde(default)]
    pub connected_at: u64,
    /// Last ping the object answered itself (the runtime keeps the auto-response time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ping: Option<u64>,
    /// The slot's rate bucket as last written (at accept and on every refusal); a wake starts
    /// from it instead of a full bucket.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<RateLimiter>,
    /// The client has sent a frame on this socket (written once, at its first message; a
    /// ping shows in `last_ping` or the runtime's auto-response time instead). A socket that
    /// never did yields its slot after `UNCONFIRMED_AFTER_MS`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmed: bool,
}

/// What the registry knows of one open socket when a lifecycle decision needs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Live {
    /// Its last ping, or when it connected if it never pinged.
    pub last_seen: u64,
    /// Whether the client has sent anything on it, a ping included.
    pub confirmed: bool,
    /// Its rate bucket now.
    pub bucket: RateLimiter,
}

/// The open sockets that hold slots, by socket id.
pub type Activity = HashMap<String, Live>;

/// One open socket of the room. `S` is the runtime's socket handle (a plain value in tests).
#[derive(Debug)]
pub struct Entry<S> {
    pub socket: S,
    pub info: SocketInfo,
    /// Kept in memory: an eviction refills it (docs/protocol.md).
    pub limiter: RateLimiter,
}

/// The open sockets of one room, in the order they were accepted.
#[derive(Debug)]
pub struct Registry<S> {
    entries: Vec<Entry<S>>,
    burst: u32,
}

impl<S> Registry<S> {
    /// The registry of `sockets`, each with a full rate bucket of `burst` frames.
    pub fn new(sockets: impl IntoIterator<Item = (S, SocketInfo)>, burst: u32, now: u64) -> Self {
        let mut registry = Registry {
            entries: Vec::new(),
            burst,
        };
        for (socket, info) in sockets {
            registry.insert(socket, info, now);
        }
        registry
    }

    /// Adds a newly accepted socket; one already registered under its id is replaced. Its
    /// bucket is the one in its attachment, or a full one.
    pub fn insert(&mut self, socket: S, info: SocketInfo, now: u64) {
        self.remove(&info.conn);
        let limiter = info
            .bucket
            .clone()
            .unwrap_or_else(|| RateLimiter::new(self.burst, now));
        self.entries.push(Entry {
            socket,
            info,
            limiter,
        });
    }

    /// Forgets a socket that was closed, by either side.
    pub fn remove(&mut self, conn: &str) -> Option<Entry<S>> {
        let index = self.entries.iter().position(|e| e.info.conn == conn)?;
        Some(self.entries.remove(index))
    }

    pub fn entries(&self) -> &[Entry<S>] {
        &self.entries
    }

    pub fn entry_mut(&mut self, index: usize) -> Option<&mut Entry<S>> {
        self.entries.get_mut(index)
    }

    /// The index of the first socket `is` matches.
    pub fn position(&self, is: impl Fn(&S) -> bool) -> Option<usize> {
        self.entries.iter().position(|e| is(&e.socket))
    }

    pub fn socket(&self, conn: &str) -> Option<&S> {
        self.entries
            .iter()
            .find(|e| e.info.conn == conn)
            .map(|e| &e.socket)
    }

    /// Each socket's last sign of life: the later of the ping the object answered and
    /// `auto_pong`'s (the runtime's auto-response), or its connect time; and its bucket.
    pub fn activity(&self, auto_pong: impl Fn(&S) -> Option<u64>) -> Activity {
        self.entries
            .iter()
            .map(|e| {
                let ping = e.info.last_ping.max(auto_pong(&e.socket));
                let live = Live {
                    last_seen: ping.unwrap_or(e.info.connected_at),
                    confirmed: e.info.confirmed || ping.is_some(),
                    bucket: e.limiter.clone(),
                };
                (e.info.conn.clone(), live)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(conn: &str) -> SocketInfo {
        SocketInfo {
            conn: conn.into(),
            client_id: format!("c-{conn}"),
            room: "r".into(),
            connected_at: 3,
            last_ping: None,
            bucket: None,
            confirmed: false,
        }
    }

    #[test]
    fn insert_replaces_and_remove_forgets() {
        let mut r = Registry::new([(1, info("a")), (2, info("b"))], 5, 0);
        r.insert(3, info("a"), 0);
        let conns: Vec<_> = r.entries().iter().map(|e| e.info.conn.as_str()).collect();
        assert_eq!(conns, ["b", "a"]);
        assert_eq!(r.socket("a"), Some(&3));
        assert_eq!(r.remove("b").map(|e| e.socket), Some(2));
        assert!(r.remove("b").is_none());
        assert_eq!(r.position(|s| *s == 3), Some(0));
    }

    #[test]
    fn activity_takes_the_later_ping() {
        let mut a = info("a");
        a.last_ping = Some(10);
        let mut b = info("b");
        b.last_ping = Some(50);
        let r = Registry::new([(1, a), (2, b), (3, info("c"))], 5, 0);
        let act = r.activity(|s| (*s != 3).then_some(20));
        assert_eq!(act["a"].last_seen, 20);
        assert_eq!(act["b"].last_seen, 50);
        // Never pinged: its connect time, and unconfirmed until it sends something.
        assert_eq!(act["c"].last_seen, 3);
        assert!(act["a"].confirmed && act["b"].confirmed && !act["c"].confirmed);
    }

    #[test]
    fn a_socket_starts_with_the_bucket_of_its_attachment() {
        let mut spent = RateLimiter::new(5, 0);
        for _ in 0..5 {
            spent.admit(0, 5, 0.001);
        }
        let mut a = info("a");
        a.bucket = Some(spent.clone());
        let r = Registry::new([(1, a), (2, info("b"))], 5, 0);
        assert_eq!(r.entries()[0].limiter, spent);
        assert_eq!(r.entries()[1].limiter, RateLimiter::new(5, 0));
    }
}
