//! After a socket was accepted: leaving, closing, dropping, the alarm, and catching up on
//! sockets lost without a close event (a restart, a deploy).

use super::budget::DROP_COST;
use super::{Ctx, Presence, RoomState};
use crate::effect::Effect;
use crate::protocol::{CloseCode, LeaveReason, ServerFrame};
use crate::rate::RateLimiter;

impl RoomState {
    /// Marks connected slots whose socket no longer exists as away from now, and lets their
    /// peers know.
    pub(super) fn reconcile(&mut self, ctx: Ctx) -> Vec<Effect> {
        let gone: Vec<String> = self
            .slots
            .iter()
            .filter(|s| s.presence == Presence::Connected && !ctx.activity.contains_key(&s.conn))
            .map(|s| s.client_id.clone())
            .collect();
        // Mark them all first, so none of them is told about another vanished one.
        let deadline = ctx.now.saturating_add(ctx.config.resume_grace_ms);
        for slot in &mut self.slots {
            if gone.contains(&slot.client_id) {
                slot.presence = Presence::Away { deadline };
                slot.since = ctx.now;
            }
        }
        let mut out = Vec::new();
        for client_id in gone {
            out.extend(self.announce_away(ctx, &client_id));
        }
        out
    }

    /// The socket sent `leave`: free its slot and close it with 1000.
    pub(super) fn leave(&mut self, ctx: Ctx, conn: &str) -> Vec<Effect> {
        let Some(index) = self.index_of_conn(conn) else {
            return Vec::new();
        };
        let mut out = self.release(ctx, index, LeaveReason::Leave);
        out.push(Effect::Close {
            conn: conn.to_owned(),
            code: CloseCode::Left,
        });
        out
    }

    /// The client closed the socket with `code`. A close of a socket that no longer holds a
    /// connected slot changes nothing: it was replaced, evicted, or closed by the server,
    /// and the client's answer to a server's close is not a leave.
    pub(super) fn closed(
        &mut self,
        ctx: Ctx,
        conn: &str,
        code: u16,
        bucket: &Option<RateLimiter>,
    ) -> Vec<Effect> {
        let Some(index) = self.index_of_conn(conn) else {
            return Vec::new();
        };
        if self.slots[index].presence != Presence::Connected {
            return Vec::new();
        }
        if code == 1000 {
            if bucket.is_some() {
                self.slots[index].bucket = bucket.clone();
            }
            return self.release(ctx, index, LeaveReason::Leave);
        }
        self.drop_conn(ctx, conn, bucket.clone())
    }

    /// The slot held by `conn` lost its socket without leaving: hold it for the grace (with
    /// the socket's last `bucket`), or free it at once when the grace is 0.
    pub(super) fn drop_conn(
        &mut self,
        ctx: Ctx,
        conn: &str,
        bucket: Option<RateLimiter>,
    ) -> Vec<Effect> {
        let Some(index) = self.index_of_conn(conn) else {
            return Vec::new();
        };
        let slot = &mut self.slots[index];
        if slot.presence != Presence::Connected {
            return Vec::new();
        }
        slot.presence = Presence::Away {
            deadline: ctx.now.saturating_add(ctx.config.resume_grace_ms),
        };
        slot.since = ctx.now;
        if let Some(mut bucket) = bucket {
            // The client's own drop: told only if its budget pays for it and its return.
            let grace = ctx.config.resume_grace_ms > 0;
            slot.untold = grace && !RoomState::try_pay(ctx, &mut bucket, DROP_COST);
            slot.bucket = Some(bucket);
        }
        let client_id = slot.client_id.clone();
        self.announce_away(ctx, &client_id)
    }

    /// Tells the peer that `client_id` (already marked away) dropped, unless the drop is to go
    /// untold, or releases the slot at once when there is no grace.
    fn announce_away(&mut self, ctx: Ctx, client_id: &str) -> Vec<Effect> {
        let Some(index) = self.slots.iter().position(|s| s.client_id == client_id) else {
            return Vec::new();
        };
        if ctx.config.resume_grace_ms == 0 {
            return self.release(ctx, index, LeaveReason::Closed);
        }
        let mut out = vec![self.log("away", client_id, None)];
        if self.slots[index].untold {
            return out;
        }
        let away = ServerFrame::PeerAway {
            room: self.name.clone(),
            client_id: client_id.to_owned(),
        };
        self.tell_others(client_id, &away, &mut out);
        out
    }

    /// The alarm fired: catch up on lost sockets and free slots whose grace ran out.
    pub(super) fn alarm(&mut self, ctx: Ctx) -> Vec<Effect> {
        let mut out = self.reconcile(ctx);
        while let Some(index) = self
            .slots
            .iter()
            .position(|s| matches!(s.presence, Presence::Away { deadline } if deadline <= ctx.now))
        {
            out.extend(self.release(ctx, index, LeaveReason::Timeout));
        }
        out
    }
}
