//! A socket asks for a slot: a resume of a slot it holds, a fresh join into a free slot (after
//! evicting a stale occupant if the room is full), or `full`.

use super::{constant_time_eq, Accept, Arrival, Ctx, Presence, RoomState, Slot};
use crate::effect::{Effect, LogEvent};
use crate::protocol::{CloseCode, LeaveReason, ServerFrame, Welcome, MAX_PEERS, VERSION};
use crate::registry::SocketInfo;
use crate::turn;
use serde_json::value::RawValue;

impl RoomState {
    pub(super) fn join(&mut self, ctx: Ctx, arrival: Arrival) -> (Accept, Vec<Effect>) {
        let mut out = self.reconcile(ctx);
        let resumed = arrival.resume_hash.as_ref().and_then(|hash| {
            self.slots
                .iter()
                .position(|s| constant_time_eq(&s.token_hash, hash))
        });
        if let Some(index) = resumed {
            return self.resume(ctx, index, arrival, out);
        }
        if self.slots.len() >= usize::from(MAX_PEERS) {
            match self.stalest(ctx) {
                Some(index) => out.extend(self.evict(index)),
                None => return self.full(arrival, out),
            }
        }
        self.fresh(ctx, arrival, out)
    }

    /// A free slot for a new client.
    fn fresh(&mut self, ctx: Ctx, arrival: Arrival, mut out: Vec<Effect>) -> (Accept, Vec<Effect>) {
        let client_id = arrival.new_client_id.clone();
        let peers: Vec<String> = self.slots.iter().map(|s| s.client_id.clone()).collect();
        let resumed = (!peers.is_empty()).then_some(false);
        out.push(Effect::Send {
            conn: arrival.conn.clone(),
            frame: self.welcome(ctx, &arrival, &client_id, peers, resumed),
        });
        self.slots.push(Slot {
            client_id: client_id.clone(),
            token_hash: arrival.new_token_hash,
            conn: arrival.conn.clone(),
            presence: Presence::Connected,
        });
        self.admit(arrival.conn, client_id, false, out)
    }

    /// The slot whose token was offered, taken over by the new socket.
    fn resume(
        &mut self,
        ctx: Ctx,
        index: usize,
        arrival: Arrival,
        mut out: Vec<Effect>,
    ) -> (Accept, Vec<Effect>) {
        let slot = &mut self.slots[index];
        let old_conn = std::mem::replace(&mut slot.conn, arrival.conn.clone());
        slot.token_hash = arrival.new_token_hash.clone();
        slot.presence = Presence::Connected;
        let client_id = slot.client_id.clone();
        if ctx.activity.contains_key(&old_conn) {
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
            conn: arrival.conn.clone(),
            frame: self.welcome(ctx, &arrival, &client_id, peers, Some(true)),
        });
        self.admit(arrival.conn, client_id, true, out)
    }

    /// No slot: the new socket gets `full` and close 4409.
    fn full(&self, arrival: Arrival, mut out: Vec<Effect>) -> (Accept, Vec<Effect>) {
        out.push(Effect::Log(LogEvent::room("full", &self.name)));
        out.push(Effect::Send {
            conn: arrival.conn.clone(),
            frame: ServerFrame::Full {
                room: self.name.clone(),
                max_peers: MAX_PEERS,
            },
        });
        out.push(Effect::Close {
            conn: arrival.conn,
            code: CloseCode::RoomFull,
        });
        (Accept::Refuse, out)
    }

    /// Closes the stale occupant of slot `index` and frees the slot.
    fn evict(&mut self, index: usize) -> Vec<Effect> {
        let close = Effect::Close {
            conn: self.slots[index].conn.clone(),
            code: CloseCode::Stale,
        };
        let mut out = vec![close];
        out.extend(self.release(index, LeaveReason::Stale));
        out
    }

    /// The connected occupant with the oldest ping past `STALE_AFTER_MS`, if any. Sockets that
    /// never pinged are exempt: nothing says they are gone.
    fn stalest(&self, ctx: Ctx) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.presence == Presence::Connected)
            .filter_map(|(i, s)| ctx.activity.get(&s.conn).copied().flatten().map(|t| (i, t)))
            .filter(|&(_, ping)| ctx.now.saturating_sub(ping) > ctx.config.stale_after_ms)
            .min_by_key(|&(_, ping)| ping)
            .map(|(i, _)| i)
    }

    /// `created` (no `resumed`) or `joined` for the client the join settled on.
    fn welcome(
        &self,
        ctx: Ctx,
        arrival: &Arrival,
        client_id: &str,
        peers: Vec<String>,
        resumed: Option<bool>,
    ) -> ServerFrame {
        let config = ctx.config;
        let ice_servers: Box<RawValue> = turn::ice_servers(
            &config.ice_servers,
            &config.turn,
            &arrival.cloudflare_ice,
            client_id,
            ctx.now,
        );
        let welcome = Welcome {
            version: VERSION,
            room: self.name.clone(),
            client_id: client_id.to_owned(),
            resume_token: arrival.new_token.clone(),
            ice_servers,
            max_peers: MAX_PEERS,
            max_message_bytes: config.max_message_bytes,
            peers,
            resumed,
        };
        match resumed {
            None => ServerFrame::Created(welcome),
            Some(_) => ServerFrame::Joined(welcome),
        }
    }

    /// Logs the arrival, tells the other peer, and sends `ready` if the pair is now complete.
    fn admit(
        &mut self,
        conn: String,
        client_id: String,
        resumed: bool,
        mut out: Vec<Effect>,
    ) -> (Accept, Vec<Effect>) {
        let event = if resumed { "resume" } else { "join" };
        out.push(self.log(event, &client_id, None));
        let joined = ServerFrame::PeerJoined {
            room: self.name.clone(),
            client_id: client_id.clone(),
            resumed,
        };
        self.tell_others(&client_id, &joined, &mut out);
        out.extend(self.ready_if_complete());
        let info = SocketInfo {
            conn,
            client_id,
            room: self.name.clone(),
            last_ping: None,
        };
        (Accept::Hibernate(info), out)
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
}
