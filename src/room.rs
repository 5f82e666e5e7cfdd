//! The room of two: who may take a slot, what happens when a socket drops, resumes or goes
//! stale, and which frames go to whom. Every method is a pure state transition that returns
//! [`Effect`]s; the Durable Object performs them. The [`Room`] value is what the object stores.

use crate::protocol::{CloseCode, LeaveReason, ServerFrame, MAX_PEERS, VERSION};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;

/// How often a room with connected slots re-checks that their sockets still exist. A deploy
/// drops sockets without any close event, so without this sweep such a room's storage would
/// stay until somebody joined it again.
pub const SWEEP_INTERVAL_MS: u64 = 5 * 60 * 1000;

/// Whether a slot's socket is up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum Presence {
    Connected,
    /// Dropped without leaving; held for its owner until `deadline` (ms since the epoch).
    Away {
        deadline: u64,
    },
}

/// One of the room's two places.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub client_id: String,
    /// SHA-256 of the current resume token; the token itself is never stored.
    pub token_hash: String,
    /// The id of the socket that holds the slot now (also that socket's tag).
    pub conn: String,
    pub presence: Presence,
}

/// The persistent state of one room. Slots are kept in arrival order: the first is the
/// initiator when the room becomes ready.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Room {
    pub name: String,
    pub slots: Vec<Slot>,
    /// The two client ids last told `ready` together; a resume within that pair needs none.
    pub ready_pair: Option<[String; 2]>,
}

/// Timing settings the room logic needs.
#[derive(Debug, Clone, Copy)]
pub struct Timing {
    pub resume_grace_ms: u64,
    pub stale_after_ms: u64,
}

/// The open sockets of the object: socket id → time of its last ping, if it ever pinged.
pub type Live = HashMap<String, Option<u64>>;

/// Something the Durable Object must do.
#[derive(Debug, Clone)]
pub enum Effect {
    Send { conn: String, frame: ServerFrame },
    Close { conn: String, code: CloseCode },
    Log(LogEvent),
}

/// A lifecycle event for the logs: never message contents, never tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub event: &'static str,
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

/// Builds the welcome frame's `iceServers` for the client id the join settles on (TURN
/// credentials name the client, and a resume keeps its old id).
pub type IceServersFor = Box<dyn FnOnce(&str) -> Box<RawValue>>;

/// A socket asking for a slot, with fresh random ids made by the shell.
pub struct Arrival {
    pub conn: String,
    /// The client id to use if this is not a resume.
    pub new_client_id: String,
    /// The resume token to hand out, and its hash.
    pub new_token: String,
    pub new_token_hash: String,
    /// Hash of the `resume` query parameter, if one was given.
    pub resume_hash: Option<String>,
    pub ice_servers: IceServersFor,
}

/// The answer to an [`Arrival`].
#[derive(Debug)]
pub enum Join {
    /// Accept the socket as `client_id`, then perform `effects` (its welcome frame among them).
    Admitted {
        client_id: String,
        effects: Vec<Effect>,
    },
    /// No slot: send `frame` (`full`) on the new socket and close it with 4409, then perform
    /// `effects` (what catching up on lost sockets changed, and the log line).
    Full {
        frame: ServerFrame,
        effects: Vec<Effect>,
    },
}

impl Room {
    pub fn new(name: &str) -> Self {
        Room {
            name: name.to_owned(),
            ..Room::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    fn log(&self, event: &'static str, client_id: &str, reason: Option<&'static str>) -> Effect {
        Effect::Log(LogEvent {
            event,
            room: self.name.clone(),
            client_id: Some(client_id.to_owned()),
            reason,
        })
    }

    fn ids(&self) -> Vec<String> {
        self.slots.iter().map(|s| s.client_id.clone()).collect()
    }

    /// Sends `frame` to every connected slot but `except`.
    fn tell_others(&self, except: &str, frame: &ServerFrame, out: &mut Vec<Effect>) {
        for slot in &self.slots {
            if slot.client_id != except && slot.presence == Presence::Connected {
                out.push(Effect::Send {
                    conn: slot.conn.clone(),
                    frame: frame.clone(),
                });
            }
        }
    }

    /// Marks connected slots whose socket no longer exists as away from `now` (a restart or a
    /// lost close event), and lets their peers know.
    pub fn reconcile(&mut self, now: u64, timing: Timing, live: &Live) -> Vec<Effect> {
        let gone: Vec<String> = self
            .slots
            .iter()
            .filter(|s| s.presence == Presence::Connected && !live.contains_key(&s.conn))
            .map(|s| s.client_id.clone())
            .collect();
        // Mark them all first, so none of them is told about another vanished one.
        let deadline = now.saturating_add(timing.resume_grace_ms);
        for slot in &mut self.slots {
            if gone.contains(&slot.client_id) {
                slot.presence = Presence::Away { deadline };
            }
        }
        let mut out = Vec::new();
        for client_id in gone {
            out.extend(self.announce_away(&client_id, timing));
        }
        out
    }

    /// A socket asks for a slot.
    pub fn join(&mut self, now: u64, timing: Timing, live: &Live, arrival: Arrival) -> Join {
        let mut out = self.reconcile(now, timing, live);
        let resumed = arrival.resume_hash.as_ref().and_then(|hash| {
            self.slots
                .iter()
                .position(|s| constant_time_eq(&s.token_hash, hash))
        });
        if let Some(index) = resumed {
            return self.resume(index, live, arrival, out);
        }
        if self.slots.len() >= usize::from(MAX_PEERS) {
            match self.stalest(now, timing, live) {
                Some(index) => {
                    let conn = self.slots[index].conn.clone();
                    out.push(Effect::Close {
                        conn,
                        code: CloseCode::Stale,
                    });
                    out.extend(self.release(index, LeaveReason::Stale));
                }
                None => {
                    out.push(Effect::Log(LogEvent {
                        event: "full",
                        room: self.name.clone(),
                        client_id: None,
                        reason: None,
                    }));
                    return Join::Full {
                        frame: ServerFrame::Full {
                            room: self.name.clone(),
                            max_peers: MAX_PEERS,
                        },
                        effects: out,
                    };
                }
            }
        }
        let client_id = arrival.new_client_id;
        let ice_servers = (arrival.ice_servers)(&client_id);
        let peers = self.ids();
        let welcome = if peers.is_empty() {
            ServerFrame::Created {
                version: VERSION,
                room: self.name.clone(),
                client_id: client_id.clone(),
                resume_token: arrival.new_token,
                ice_servers,
                max_peers: MAX_PEERS,
                peers,
            }
        } else {
            ServerFrame::Joined {
                version: VERSION,
                room: self.name.clone(),
                client_id: client_id.clone(),
                resume_token: arrival.new_token,
                ice_servers,
                max_peers: MAX_PEERS,
                peers,
                resumed: false,
            }
        };
        self.slots.push(Slot {
            client_id: client_id.clone(),
            token_hash: arrival.new_token_hash,
            conn: arrival.conn.clone(),
            presence: Presence::Connected,
        });
        out.push(Effect::Send {
            conn: arrival.conn,
            frame: welcome,
        });
        self.admit(client_id, false, out)
    }

    /// Logs the arrival, tells the other peer, and sends `ready` if the pair is now complete.
    fn admit(&mut self, client_id: String, resumed: bool, mut out: Vec<Effect>) -> Join {
        let event = if resumed { "resume" } else { "join" };
        out.push(self.log(event, &client_id, None));
        let joined = ServerFrame::PeerJoined {
            room: self.name.clone(),
            client_id: client_id.clone(),
            resumed,
        };
        self.tell_others(&client_id, &joined, &mut out);
        out.extend(self.ready_if_complete());
        Join::Admitted {
            client_id,
            effects: out,
        }
    }

    fn resume(
        &mut self,
        index: usize,
        live: &Live,
        arrival: Arrival,
        mut out: Vec<Effect>,
    ) -> Join {
        let slot = &mut self.slots[index];
        let old_conn = std::mem::replace(&mut slot.conn, arrival.conn.clone());
        slot.token_hash = arrival.new_token_hash;
        slot.presence = Presence::Connected;
        let client_id = slot.client_id.clone();
        if live.contains_key(&old_conn) {
            out.push(Effect::Close {
                conn: old_conn,
                code: CloseCode::Replaced,
            });
        }
        let peers = self
            .slots
            .iter()
            .filter(|s| s.client_id != client_id)
            .map(|s| s.client_id.clone())
            .collect();
        out.push(Effect::Send {
            conn: arrival.conn,
            frame: ServerFrame::Joined {
                version: VERSION,
                room: self.name.clone(),
                client_id: client_id.clone(),
                resume_token: arrival.new_token,
                ice_servers: (arrival.ice_servers)(&client_id),
                max_peers: MAX_PEERS,
                peers,
                resumed: true,
            },
        });
        self.admit(client_id, true, out)
    }

    /// The connected occupant with the oldest ping past `stale_after_ms`, if any. Sockets that
    /// never pinged are exempt: nothing says they are gone.
    fn stalest(&self, now: u64, timing: Timing, live: &Live) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.presence == Presence::Connected)
            .filter_map(|(i, s)| live.get(&s.conn).copied().flatten().map(|t| (i, t)))
            .filter(|&(_, last_ping)| now.saturating_sub(last_ping) > timing.stale_after_ms)
            .min_by_key(|&(_, last_ping)| last_ping)
            .map(|(i, _)| i)
    }

    /// `ready` to both when two connected peers have not been told it together yet.
    fn ready_if_complete(&mut self) -> Vec<Effect> {
        let [first, second] = match self.slots.as_slice() {
            [a, b] if a.presence == Presence::Connected && b.presence == Presence::Connected => {
                [a, b]
            }
            _ => return Vec::new(),
        };
        let pair = [first.client_id.clone(), second.client_id.clone()];
        if self.ready_pair.as_ref() == Some(&pair) {
            return Vec::new();
        }
        let frame = ServerFrame::Ready {
            room: self.name.clone(),
            initiator: first.client_id.clone(),
            peers: pair.clone(),
        };
        let out = [first, second]
            .iter()
            .map(|s| Effect::Send {
                conn: s.conn.clone(),
                frame: frame.clone(),
            })
            .chain([self.log("ready", &first.client_id, None)])
            .collect();
        self.ready_pair = Some(pair);
        out
    }

    /// Frees slot `index` and tells the other peer why.
    fn release(&mut self, index: usize, reason: LeaveReason) -> Vec<Effect> {
        let slot = self.slots.remove(index);
        self.ready_pair = None;
        let mut out = vec![self.log("leave", &slot.client_id, Some(reason.as_str()))];
        let left = ServerFrame::PeerLeft {
            room: self.name.clone(),
            client_id: slot.client_id.clone(),
            reason,
        };
        self.tell_others(&slot.client_id, &left, &mut out);
        out
    }

    fn index_of_conn(&self, conn: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.conn == conn)
    }

    /// The socket sent `leave`: free its slot and close it with 1000.
    pub fn leave(&mut self, conn: &str) -> Vec<Effect> {
        let Some(index) = self.index_of_conn(conn) else {
            return Vec::new();
        };
        let mut out = self.release(index, LeaveReason::Leave);
        out.push(Effect::Close {
            conn: conn.to_owned(),
            code: CloseCode::Left,
        });
        out
    }

    /// The socket closed with `code` (1006 when it errored). Closes of sockets that no longer
    /// hold a slot (replaced, evicted, already away) change nothing.
    pub fn closed(&mut self, now: u64, timing: Timing, conn: &str, code: u16) -> Vec<Effect> {
        let Some(index) = self.index_of_conn(conn) else {
            return Vec::new();
        };
        if code == 1000 {
            return self.release(index, LeaveReason::Leave);
        }
        self.drop_conn(now, timing, conn)
    }

    /// The slot held by `conn` lost its socket without leaving: hold it for the grace, or free
    /// it at once when the grace is 0.
    pub fn drop_conn(&mut self, now: u64, timing: Timing, conn: &str) -> Vec<Effect> {
        let Some(index) = self.index_of_conn(conn) else {
            return Vec::new();
        };
        let slot = &mut self.slots[index];
        if slot.presence != Presence::Connected {
            return Vec::new();
        }
        slot.presence = Presence::Away {
            deadline: now.saturating_add(timing.resume_grace_ms),
        };
        let client_id = slot.client_id.clone();
        self.announce_away(&client_id, timing)
    }

    /// Tells the peer that `client_id` (already marked away) dropped, or releases the slot at
    /// once when there is no grace.
    fn announce_away(&mut self, client_id: &str, timing: Timing) -> Vec<Effect> {
        let Some(index) = self.slots.iter().position(|s| s.client_id == client_id) else {
            return Vec::new();
        };
        if timing.resume_grace_ms == 0 {
            return self.release(index, LeaveReason::Closed);
        }
        let mut out = vec![self.log("away", client_id, None)];
        let away = ServerFrame::PeerAway {
            room: self.name.clone(),
            client_id: client_id.to_owned(),
        };
        self.tell_others(client_id, &away, &mut out);
        out
    }

    /// The alarm fired: catch up on lost sockets and free slots whose grace ran out.
    pub fn alarm(&mut self, now: u64, timing: Timing, live: &Live) -> Vec<Effect> {
        let mut out = self.reconcile(now, timing, live);
        while let Some(index) = self
            .slots
            .iter()
            .position(|s| matches!(s.presence, Presence::Away { deadline } if deadline <= now))
        {
            out.extend(self.release(index, LeaveReason::Timeout));
        }
        out
    }

    /// When the alarm should next fire, if at all.
    pub fn next_alarm(&self, now: u64) -> Option<u64> {
        self.slots
            .iter()
            .map(|s| match s.presence {
                Presence::Away { deadline } => deadline,
                Presence::Connected => now.saturating_add(SWEEP_INTERVAL_MS),
            })
            .min()
    }
}

/// Compares token hashes without leaking how many leading characters matched.
fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
#[path = "room_tests.rs"]
mod tests;
