//! A socket asks for a slot: a resume of a slot it holds (by resume token, or by the
//! identity of its join ticket), a fresh join into a free slot (after evicting a stale
//! occupant if the room is full), or `full`. A socket that takes over a slot inherits the
//! slot's rate bucket, so reconnecting never refills it.

use super::{constant_time_eq, Accept, Arrival, Ctx, Presence, RoomState, Slot};
use crate::effect::{Effect, LogEvent};
use crate::protocol::{
    CloseCode, ErrorCode, LeaveReason, ServerFrame, Welcome, MAX_PEERS, VERSION,
};
use crate::rate::RateLimiter;
use crate::registry::SocketInfo;
use crate::route::HttpError;
use crate::turn;
use crate::webhook::Hook;

/// Whether an admitted socket took over a slot, and if so whether its peer hears of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Resumed {
    No,
    Yes { announce: bool },
}

impl RoomState {
    pub(super) fn join(&mut self, ctx: Ctx, arrival: Arrival) -> (Accept, Vec<Effect>) {
        let mut out = self.reconcile(ctx);
        let sub = arrival.identity.as_ref().map(|i| i.sub.as_str());
        if sub.is_some_and(|sub| self.is_banned(sub, ctx.now)) {
            return self.banned(arrival, out);
        }
        if let Some(index) = self.held_by(&arrival) {
            return self.resume(ctx, index, arrival, out);
        }
        let full = self.slots.len() >= usize::from(MAX_PEERS);
        let stalest = self.stalest(ctx);
        if full && stalest.is_none() {
            return self.full(arrival, out);
        }
        // Paid for before anybody is evicted: a refused join changes nothing.
        let key = self.budget_key(
            arrival.identity.as_ref(),
            arrival.address.as_deref(),
            &arrival.new_token,
        );
        let mut bucket = self.bucket_for(ctx, key.as_deref());
        if !self.pay_for_join(ctx, key.as_deref(), &mut bucket) {
            return self.refuse(arrival, out);
        }
        if let (true, Some(index)) = (full, stalest) {
            out.extend(self.evict(ctx, index));
        }
        self.fresh(ctx, arrival, key, bucket, out)
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

    /// A free slot for a new client, who spends `key`'s `bucket`.
    fn fresh(
        &mut self,
        ctx: Ctx,
        arrival: Arrival,
        key: Option<String>,
        bucket: RateLimiter,
        mut out: Vec<Effect>,
    ) -> (Accept, Vec<Effect>) {
        let client_id = arrival.new_client_id.clone();
        let starts = self.slots.is_empty();
        if starts {
            self.started_at.get_or_insert(ctx.now);
        }
        let resumed = (!starts).then_some(false);
        self.slots.push(Slot {
            client_id: client_id.clone(),
            token_hash: arrival.new_token_hash.clone(),
            previous_token_hash: None,
            conn: arrival.conn.clone(),
            presence: Presence::Connected,
            identity: arrival.identity.clone(),
            bucket: Some(bucket.clone()),
            key,
            untold: false,
            reports: 0,
            since: ctx.now,
        });
        // A room emptied earlier in this same decision (a restart caught up on with no
        // grace) never ended: its call goes on.
        let by = self.causer(&client_id);
        if starts && self.session.is_none() {
            self.emit(ctx, Hook::RoomStarted, by.clone());
        }
        let joined = Hook::PeerJoined {
            client_id: client_id.clone(),
            identity: arrival.identity.clone(),
        };
        self.emit(ctx, joined, by);
        out.push(Effect::Send {
            conn: arrival.conn.clone(),
            frame: self.welcome(ctx, &arrival, &client_id, resumed),
        });
        self.admit(ctx, arrival.conn, client_id, Resumed::No, bucket, out)
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
        let mut bucket = inherited.unwrap_or_else(fresh);
        // The return of a told drop was paid for with it; any other resume pays for its
        // `peer-joined` or goes unannounced.
        let told = matches!(slot.presence, Presence::Away { .. }) && !slot.untold;
        let announce = told || RoomState::try_pay(ctx, &mut bucket, 1);
        slot.untold = false;
        slot.bucket = Some(bucket.clone());
        // The token the resumer showed stays valid beside the new one until that one is used:
        // a resumer that never sees this welcome comes back with the same token. A resume by
        // ticket identity alone leaves no token to keep.
        slot.previous_token_hash = arrival.resume_hash.clone().filter(|hash| opens(slot, hash));
        slot.token_hash = arrival.new_token_hash.clone();
        slot.presence = Presence::Connected;
        slot.since = ctx.now;
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
        let resumed = Resumed::Yes { announce };
        self.admit(ctx, arrival.conn, client_id, resumed, bucket, out)
    }

    /// The arrival's budget cannot pay for its join: `rate-limited` and close 4429.
    fn refuse(&self, arrival: Arrival, out: Vec<Effect>) -> (Accept, Vec<Effect>) {
        let frame = ErrorCode::RateLimited.to_frame();
        let send = Effect::Send {
            conn: arrival.conn.clone(),
            frame,
        };
        self.turn_away(arrival, "rate-limited", send, CloseCode::RateLimited, out)
    }

    /// The arrival's identity is banned: `error` `banned` and close 4403, before any slot or
    /// budget is looked at, so neither a fresh ticket nor a resume token gets past it.
    fn banned(&self, arrival: Arrival, out: Vec<Effect>) -> (Accept, Vec<Effect>) {
        let send = Effect::SendText {
            conn: arrival.conn.clone(),
            text: HttpError::Banned.frame(),
        };
        self.turn_away(arrival, "banned", send, CloseCode::Banned, out)
    }

    /// No slot: the new socket gets `full` and close 4409.
    fn full(&self, arrival: Arrival, out: Vec<Effect>) -> (Accept, Vec<Effect>) {
        let frame = ServerFrame::Full {
            room: self.name.clone(),
            max_peers: MAX_PEERS,
        };
        let send = Effect::Send {
            conn: arrival.conn.clone(),
            frame,
        };
        self.turn_away(arrival, "full", send, CloseCode::RoomFull, out)
    }

    /// Every refusal of an arrival: one log line, the frame that says why, and the close.
    fn turn_away(
        &self,
        arrival: Arrival,
        event: &'static str,
        send: Effect,
        code: CloseCode,
        mut out: Vec<Effect>,
    ) -> (Accept, Vec<Effect>) {
        out.push(Effect::Log(LogEvent::room(event, &self.name)));
        out.push(send);
        out.push(Effect::Close {
            conn: arrival.conn,
            code,
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
    /// or since it connected if it never pinged), or that has sent nothing at all for longer
    /// than `UNCONFIRMED_AFTER_MS`; the most silent first.
    fn stalest(&self, ctx: Ctx) -> Option<usize> {
        let config = ctx.config;
        let limit = |confirmed: bool| match confirmed {
            true => config.stale_after_ms,
            false => config.stale_after_ms.min(config.unconfirmed_after_ms),
        };
        self.slots
            .iter()
            .enumerate()
            .filter(|(_, s)| s.presence == Presence::Connected)
            .filter_map(|(i, s)| ctx.activity.get(&s.conn).map(|l| (i, l)))
            .filter(|(_, l)| ctx.now.saturating_sub(l.last_seen) > limit(l.confirmed))
            .min_by_key(|(_, l)| l.last_seen)
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

    /// Logs the arrival, tells the other peer (unless a resume goes unannounced), and sends
    /// `ready` if the pair is now complete.
    fn admit(
        &mut self,
        ctx: Ctx,
        conn: String,
        client_id: String,
        resumed: Resumed,
        mut bucket: RateLimiter,
        mut out: Vec<Effect>,
    ) -> (Accept, Vec<Effect>) {
        let (event, announce) = match resumed {
            Resumed::No => ("join", true),
            Resumed::Yes { announce } => ("resume", announce),
        };
        out.push(self.log(event, &client_id, None));
        let identity = self
            .slots
            .iter()
            .find(|s| s.client_id == client_id)
            .and_then(|s| s.identity.clone());
        let joined = ServerFrame::PeerJoined {
            room: self.name.clone(),
            client_id: client_id.clone(),
            resumed: event == "resume",
            identity,
        };
        if announce {
            self.tell_others(&client_id, &joined, &mut out);
        }
        let ready = self.ready_if_complete(ctx, &client_id);
        if !ready.is_empty() && event == "resume" {
            // A resume into a new pair: `ready` cannot be withheld, so it is a debt.
            let (burst, rate) = (ctx.config.rate_limit_burst, ctx.config.rate_limit_per_sec);
            bucket.spend(1, ctx.now, burst, rate);
            if let Some(slot) = self.slots.iter_mut().find(|s| s.client_id == client_id) {
                slot.bucket = Some(bucket.clone());
            }
        }
        out.extend(ready);
        let info = SocketInfo {
            conn,
            client_id,
            room: self.name.clone(),
            connected_at: ctx.now,
            last_ping: None,
            bucket: Some(bucket),
            confirmed: false,
        };
        (Accept::Hibernate(info), out)
    }

    /// `ready` to both when two connected peers have not been told it together yet; the
    /// arrival of `by` completed the pair.
    fn ready_if_complete(&mut self, ctx: Ctx, by: &str) -> Vec<Effect> {
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
        self.call_started_at.get_or_insert(ctx.now);
        let by = self.causer(by);
        self.emit(
            ctx,
            Hook::CallReady {
                peers: pair,
                initiator,
            },
            by,
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
