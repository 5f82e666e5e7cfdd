//! A socket asks for a slot: a resume of a slot it holds (by resume token, or by the
//! identity of its join ticket), a fresh join into a free slot (after evicting a stale
//! occupant if the room is full), or `full`. A socket that takes over a slot inherits the
//! slot's rate bucket, so reconnecting never refills it.

use super::{constant_time_eq, Accept, Arrival, Ctx, Presence, RoomState, Slot};
use crate::effect::{Effect, LogEvent};
use crate::protocol::{CloseCode, LeaveReason, ServerFrame, Welcome, MAX_PEERS, VERSION};
use crate::rate::RateLimiter;
use crate::registry::SocketInfo;
use crate::turn;
use crate::webhook::Hook;

impl RoomState {
    pub(super) fn join(&mut self, ctx: Ctx, arrival: Arrival) -> (Accept, Vec<Effect>) {
        let mut out = self.reconcile(ctx);
        if let Some(index) = self.held_by(&arrival) {
            return self.resume(ctx, index, arrival, out);
        }
        if self.slots.len() >= usize::from(MAX_PEERS) {
            match self.stalest(ctx) {
                Some(index) => out.extend(self.evict(ctx, index)),
                None => return self.full(arrival, out),
            }
        }
        self.fresh(ctx, arrival, out)
    }

    /// The slot the arrival already holds: the one its resume token opens (only a slot of
    /// the same identity, with tickets), else the one of its ticket's identity.
    fn held_by(&self, arrival: &Arrival) -> Option<usize> {
        let sub = arrival.identity.as_ref().map(|i| i.sub.as_str());
        let same_sub = |slot: &Slot| slot.identity.as_ref().map(|i| i.sub.as_str()) == sub;
        let by_token = arrival.resume_hash.as_ref().and_then(|hash| {
            self.slots
                .iter()
                .position(|s| opens(s, hash) && same_sub(s))
        });
        by_token.or_else(|| sub.and_then(|_| self.slots.iter().position(same_sub)))
    }

    /// A free slot for a new client.
    fn fresh(&mut self, ctx: Ctx, arrival: Arrival, mut out: Vec<Effect>) -> (Accept, Vec<Effect>) {
        let client_id = arrival.new_client_id.clone();
        let starts = self.slots.is_empty();
        let resumed = (!starts).then_some(false);
        let bucket = RateLimiter::new(ctx.config.rate_limit_burst, ctx.now);
        self.slots.push(Slot {
            client_id: client_id.clone(),
            token_hash: arrival.new_token_hash.clone(),
            previous_token_hash: None,
            conn: arrival.conn.clone(),
            presence: Presence::Connected,
            identity: arrival.identity.clone(),
            bucket: Some(bucket.clone()),
        });
        // A room emptied earlier in this same decision (a restart caught up on with no
        // grace) never ended: its call goes on.
        if starts && self.session.is_none() {
            self.emit(ctx, Hook::RoomStarted);
        }
        self.emit(
            ctx,
            Hook::PeerJoined {
                client_id: client_id.clone(),
                identity: arrival.identity.clone(),
            },
        );
        out.push(Effect::Send {
            conn: arrival.conn.clone(),
            frame: self.welcome(ctx, &arrival, &client_id, resumed),
        });
        self.admit(ctx, arrival.conn, client_id, false, bucket, out)
    }

    /// The slot at `index`, taken over by the new socket: a socket still open on it is
    /// closed with 4000, and the new one inherits its bucket.
    fn resume(
        &mut self,
        ctx: Ctx,
        index: usize,
        arrival: Arrival,
        mut out: Vec<Effect>,
    ) -> (Accept, Vec<Effect>) {
        let slot = &mut self.slots[index];
        let old_conn = std::mem::replace(&mut slot.conn, arrival.conn.clone());
        let live = ctx.activity.get(&old_conn);
        let inherited = live.map(|l| l.bucket.clone()).or(slot.bucket.take());
        let fresh = || RateLimiter::new(ctx.config.rate_limit_burst, ctx.now);
        let bucket = inherited.unwrap_or_else(fresh);
        slot.bucket = Some(bucket.clone());
        // The token the resumer showed stays valid beside the new one until that one is used:
        // a resumer that never sees this welcome comes back with the same token. A resume by
        // ticket identity alone leaves no token to keep.
        slot.previous_token_hash = arrival.resume_hash.clone().filter(|hash| opens(slot, hash));
        slot.token_hash = arrival.new_token_hash.clone();
        slot.presence = Presence::Connected;
        let client_id = slot.client_id.clone();
        if live.is_some() {
            out.push(Effect::Close {
                conn: old_conn,
                code: CloseCode::Replaced,
            });
        }
        out.push(Effect::Send {
            conn: arrival.conn.clone(),
            frame: self.welcome(ctx, &arrival, &client_id, Some(true)),
        });
        self.admit(ctx, arrival.conn, client_id, true, bucket, out)
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
    fn evict(&mut self, ctx: Ctx, index: usize) -> Vec<Effect> {
        let close = Effect::Close {
            conn: self.slots[index].conn.clone(),
            code: CloseCode::Stale,
        };
        let mut out = vec![close];
        out.extend(self.release(ctx, index, LeaveReason::Stale));
        out
    }

    /// The connected occupant silent for longer than `STALE_AFTER_MS` (since its last ping,
    /// or since it connected if it never pinged), the most silent first.
    fn stalest(&self, ctx: Ctx) -> Option<usize> {
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.presence == Presence::Connected)
            .filter_map(|(i, s)| ctx.activity.get(&s.conn).map(|l| (i, l.last_seen)))
            .filter(|&(_, seen)| ctx.now.saturating_sub(seen) > ctx.config.stale_after_ms)
            .min_by_key(|&(_, seen)| seen)
            .map(|(i, _)| i)
    }

    /// `created` (no `resumed`) or `joined` for the client the join settled on, whose slot
    /// is already in place.
    fn welcome(
        &self,
        ctx: Ctx,
        arrival: &Arrival,
        client_id: &str,
        resumed: Option<bool>,
    ) -> ServerFrame {
        let config = ctx.config;
        let others = || self.slots.iter().filter(move |s| s.client_id != client_id);
        let identities = arrival.identity.as_ref().map(|_| {
            others()
                .filter_map(|s| Some((s.client_id.clone(), s.identity.clone()?)))
                .collect()
        });
        let ice = turn::ice_servers(
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
            ice_servers: ice.servers,
            ice_servers_expire_at: ice.expires_at,
            max_peers: MAX_PEERS,
            max_message_bytes: config.max_message_bytes,
            peers: others().map(|s| s.client_id.clone()).collect(),
            resumed,
            identity: arrival.identity.clone(),
            peer_identities: identities,
        };
        match resumed {
            None => ServerFrame::Created(welcome),
            Some(_) => ServerFrame::Joined(welcome),
        }
    }

    /// Logs the arrival, tells the other peer, and sends `ready` if the pair is now complete.
    fn admit(
        &mut self,
        ctx: Ctx,
        conn: String,
        client_id: String,
        resumed: bool,
        bucket: RateLimiter,
        mut out: Vec<Effect>,
    ) -> (Accept, Vec<Effect>) {
        let event = if resumed { "resume" } else { "join" };
        out.push(self.log(event, &client_id, None));
        let identity = self
            .slots
            .iter()
            .find(|s| s.client_id == client_id)
            .and_then(|s| s.identity.clone());
        let joined = ServerFrame::PeerJoined {
            room: self.name.clone(),
            client_id: client_id.clone(),
            resumed,
            identity,
        };
        self.tell_others(&client_id, &joined, &mut out);
        out.extend(self.ready_if_complete(ctx));
        let info = SocketInfo {
            conn,
            client_id,
            room: self.name.clone(),
            connected_at: ctx.now,
            last_ping: None,
            bucket: Some(bucket),
        };
        (Accept::Hibernate(info), out)
    }

    /// `ready` to both when two connected peers have not been told it together yet.
    fn ready_if_complete(&mut self, ctx: Ctx) -> Vec<Effect> {
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
        let initiator = first.client_id.clone();
        let out = [first, second]
            .iter()
            .map(|s| Effect::Send {
                conn: s.conn.clone(),
                frame: frame.clone(),
            })
            .chain([self.log("ready", &first.client_id, None)])
            .collect();
        self.ready_pair = Some(pair.clone());
        self.emit(
            ctx,
            Hook::CallReady {
                peers: pair,
                initiator,
            },
        );
        out
    }
}

/// Whether the resume token hashed as `hash` opens `slot`: its current token, or the one it
/// was last resumed with (see [`Slot::previous_token_hash`]).
fn opens(slot: &Slot, hash: &str) -> bool {
    let current = constant_time_eq(&slot.token_hash, hash);
    let previous = slot
        .previous_token_hash
        .as_deref()
        .is_some_and(|p| constant_time_eq(p, hash));
    current | previous
}
