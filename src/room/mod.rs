//! The room of two: who may take a slot, what happens when a socket drops, resumes or goes
//! stale, and which frames go to whom. [`on_join`] and [`on_event`] take the stored
//! [`RoomState`] and return every [`Effect`] to perform, the storage write among them; the
//! Durable Object only performs them.
//!
//! - `join`: a socket asks for a slot (a fresh join, a resume, a stale eviction, or full).
//! - `lifecycle`: leaves, closes, drops, the alarm, and catching up on lost sockets.
//! - `hooks`: the webhook events of those transitions, the call's duration, and what a
//!   delivery changes in the outbox.

mod admin;
mod budget;
mod hooks;
mod join;
mod lifecycle;
mod reported;

pub use admin::{AdminReply, PeerView, RoomView};

use crate::admin::AdminVerb;
use crate::config::Config;
use crate::effect::{Effect, LogEvent};
use crate::protocol::{LeaveReason, ServerFrame};
use crate::rate::RateLimiter;
use crate::registry::{Activity, SocketInfo};
use crate::report::Report;
pub use crate::room_state::{Presence, RoomState, Slot};
use crate::route::HttpError;
use crate::ticket::Identity;
use crate::turn::CloudflareIce;
use crate::webhook::{Hook, Outcome};

pub use crate::room_state::SWEEP_INTERVAL_MS;

/// What a decision may look at besides the stored state.
#[derive(Debug, Clone, Copy)]
pub struct Ctx<'a> {
    pub now: u64,
    pub config: &'a Config,
    /// The open sockets that hold slots, and their last pings.
    pub activity: &'a Activity,
}

/// Something that happened to the room after a socket was accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum RoomEvent {
    /// The socket sent `leave`.
    Leave { conn: String },
    /// The client closed the socket with `code` (1006 when it errored); `bucket` is its rate
    /// bucket when it closed, if the registry had it.
    Closed {
        conn: String,
        code: u16,
        bucket: Option<RateLimiter>,
    },
    /// The server closed the socket for misbehaving (a rate-limit close): its slot is away and
    /// keeps the spent `bucket`.
    ServerClosed { conn: String, bucket: RateLimiter },
    /// The alarm fired.
    Alarm,
    /// The shell tried to deliver webhook event `id` (the outbox's head).
    Delivery { id: String, outcome: Outcome },
    /// The socket reported how its call's media connected.
    Report { conn: String, report: Report },
}

/// A socket asking for a slot, with fresh random ids made by the shell.
#[derive(Debug, Clone)]
pub struct Arrival {
    pub conn: String,
    /// The client id to use if this is not a resume.
    pub new_client_id: String,
    /// The resume token to hand out, and its hash.
    pub new_token: String,
    pub new_token_hash: String,
    /// Hash of the resume token offered, if any.
    pub resume_hash: Option<String>,
    /// Cloudflare's TURN servers, already fetched (empty without Cloudflare TURN).
    pub cloudflare_ice: CloudflareIce,
    /// Who the join ticket names, when tickets are required.
    pub identity: Option<Identity>,
    /// The client's address (`CF-Connecting-IP`), for its budget's key without tickets;
    /// only a keyed hash of it is ever stored.
    pub address: Option<String>,
}

/// How the shell accepts the arriving socket.
#[derive(Debug, Clone, PartialEq)]
pub enum Accept {
    /// Through the hibernation API, with this attachment (and its `conn` as the tag).
    Hibernate(SocketInfo),
    /// As a plain socket that lives for the `full` frame and its close only.
    Refuse,
}

/// The answer to an [`Arrival`]: how to accept the socket, then the effects to perform.
#[derive(Debug)]
pub struct Joining {
    pub accept: Accept,
    pub effects: Vec<Effect>,
}

/// A socket asks for a slot in room `name`, whose stored state is `stored`.
pub fn on_join(stored: Option<RoomState>, name: &str, arrival: Arrival, ctx: Ctx) -> Joining {
    let mut room = stored.clone().unwrap_or_else(|| RoomState::new(name));
    let (accept, mut effects) = room.join(ctx, arrival);
    effects.extend(room.account(ctx));
    room.tidy(ctx.now);
    Joining {
        accept,
        effects: persist(stored.as_ref(), room, ctx.now, false, effects),
    }
}

/// Applies `event` to the stored room. Without a stored room nothing holds a slot.
pub fn on_event(stored: Option<RoomState>, event: RoomEvent, ctx: Ctx) -> Vec<Effect> {
    let Some(mut room) = stored.clone() else {
        return Vec::new();
    };
    let mut effects = match &event {
        RoomEvent::Leave { conn } => room.leave(ctx, conn),
        RoomEvent::Closed { conn, code, bucket } => room.closed(ctx, conn, *code, bucket),
        RoomEvent::ServerClosed { conn, bucket } => room.drop_conn(ctx, conn, Some(bucket.clone())),
        RoomEvent::Alarm => room.alarm(ctx),
        RoomEvent::Delivery { id, outcome } => room.delivered(ctx, id, *outcome),
        RoomEvent::Report { conn, report } => room.reported(ctx, conn, *report),
    };
    effects.extend(room.account(ctx));
    room.tidy(ctx.now);
    let fired = event == RoomEvent::Alarm;
    persist(stored.as_ref(), room, ctx.now, fired, effects)
}

/// An operator's `verb` on room `name`. A look changes nothing, and a verb on a room that
/// stores nothing stores nothing.
pub fn on_admin(
    stored: Option<RoomState>,
    name: &str,
    verb: &AdminVerb,
    ctx: Ctx,
) -> (AdminReply, Vec<Effect>) {
    let Some(mut room) = stored.clone() else {
        return match verb {
            AdminVerb::Inspect => (AdminReply::Room(RoomState::new(name).view(ctx.now)), vec![]),
            AdminVerb::End { .. } => (AdminReply::Ended(0), vec![]),
            AdminVerb::Kick(_) => (AdminReply::Refused(HttpError::NoSuchPeer), vec![]),
        };
    };
    let (reply, mut effects) = match verb {
        AdminVerb::Inspect => return (AdminReply::Room(room.view(ctx.now)), vec![]),
        AdminVerb::End { reason } => room.end(ctx, reason),
        AdminVerb::Kick(kick) => room.kick(ctx, kick),
    };
    if let AdminReply::Refused(_) = reply {
        return (reply, effects);
    }
    effects.extend(room.account(ctx));
    room.tidy(ctx.now);
    (
        reply,
        persist(stored.as_ref(), room, ctx.now, false, effects),
    )
}

/// Puts the storage effect for `before` → `after` ahead of `effects`. With `fired` (the alarm
/// just fired, so none is armed), an unchanged room still gets its next alarm.
fn persist(
    before: Option<&RoomState>,
    mut after: RoomState,
    now: u64,
    fired: bool,
    effects: Vec<Effect>,
) -> Vec<Effect> {
    let next = after.next_alarm(now);
    let store = if before == Some(&after) {
        fired
            .then_some(next)
            .flatten()
            .map(|at| Effect::Rearm { at })
    } else {
        Some(match next {
            None => Effect::Clear,
            Some(at) => {
                // An alarm still ahead and no later than `at` stays: at worst it fires early.
                let keep = before
                    .and_then(|room| room.alarm_at)
                    .is_some_and(|armed| !fired && now < armed && armed <= at);
                if !keep {
                    after.alarm_at = Some(at);
                }
                Effect::Save {
                    room: after,
                    alarm_at: (!keep).then_some(at),
                }
            }
        })
    };
    store.into_iter().chain(effects).collect()
}

impl RoomState {
    /// After every decision: forgets ended bans, and the times of a call once the room is
    /// empty.
    fn tidy(&mut self, now: u64) {
        self.drop_ended_bans(now);
        if self.slots.is_empty() {
            self.started_at = None;
            self.call_started_at = None;
        }
    }

    fn log(&self, event: &'static str, client_id: &str, reason: Option<&'static str>) -> Effect {
        Effect::Log(LogEvent {
            client_id: Some(client_id.to_owned()),
            reason,
            ..LogEvent::room(event, &self.name)
        })
    }

    fn index_of_conn(&self, conn: &str) -> Option<usize> {
        self.slots.iter().position(|s| s.conn == conn)
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

    /// Frees slot `index` and tells the other peer why. A release the client caused costs its
    /// bucket the `peer-left`, and the bucket stays for its next join (`budget`).
    fn release(&mut self, ctx: Ctx, index: usize, reason: LeaveReason) -> Vec<Effect> {
        let slot = self.slots.remove(index);
        self.ready_pair = None;
        let live = ctx.activity.get(&slot.conn).map(|l| l.bucket.clone());
        let mut bucket = live.or_else(|| slot.bucket.clone());
        // Neither a stale eviction nor an operator's removal is the client's doing.
        if !matches!(
            reason,
            LeaveReason::Stale | LeaveReason::Ended | LeaveReason::Kicked
        ) {
            if let Some(bucket) = &mut bucket {
                let (burst, rate) = (ctx.config.rate_limit_burst, ctx.config.rate_limit_per_sec);
                bucket.spend(1, ctx.now, burst, rate);
            }
        }
        let by = slot.key.clone().unwrap_or_else(|| slot.client_id.clone());
        self.keep_bucket(ctx, slot.key.clone(), bucket);
        self.emit(
            ctx,
            Hook::PeerLeft {
                client_id: slot.client_id.clone(),
                reason,
            },
            by,
        );
        let mut out = vec![self.log("leave", &slot.client_id, Some(reason.as_str()))];
        let left = ServerFrame::PeerLeft {
            room: self.name.clone(),
            client_id: slot.client_id.clone(),
            reason,
        };
        self.tell_others(&slot.client_id, &left, &mut out);
        out
    }
}

/// Compares token hashes without leaking how many leading characters matched.
pub fn constant_time_eq(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

#[cfg(test)]
mod tests;
