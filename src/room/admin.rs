//! The operator's verbs as transitions of the room: what `GET` shows, what `end` and `kick`
//! change, and their answers. The request was checked by the Worker (`crate::admin`); only
//! whether the peer exists is decided here.

use super::{Ctx, Presence, RoomState};
use crate::admin::{Kick, KickTarget};
use crate::effect::Effect;
use crate::protocol::{CloseCode, LeaveReason, ServerFrame};
use crate::room_state::Ban;
use crate::route::HttpError;
use crate::ticket::Identity;
use serde::Serialize;

/// The answer to an admin verb.
#[derive(Debug, Clone, PartialEq)]
pub enum AdminReply {
    Room(RoomView),
    Ended(usize),
    Kicked,
    Refused(HttpError),
}

impl AdminReply {
    pub fn status(&self) -> u16 {
        match self {
            AdminReply::Refused(err) => err.status(),
            _ => 200,
        }
    }

    pub fn body(&self) -> String {
        match self {
            AdminReply::Room(view) => serde_json::to_string(view).unwrap_or_default(),
            AdminReply::Ended(n) => format!(r#"{{"ended":{n}}}"#),
            AdminReply::Kicked => r#"{"kicked":true}"#.to_owned(),
            AdminReply::Refused(err) => err.body(),
        }
    }
}

/// `GET /admin/rooms/{room}`: never a token, an address, a budget key or message content.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomView {
    pub room: String,
    pub started_at: Option<u64>,
    pub call_started_at: Option<u64>,
    pub peers: Vec<PeerView>,
    pub bans: Vec<Ban>,
    pub webhooks_waiting: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PeerView {
    pub client_id: String,
    pub state: &'static str,
    pub since: u64,
    pub identity: Option<Identity>,
}

impl RoomState {
    pub(super) fn view(&self, now: u64) -> RoomView {
        let peers = self.slots.iter().map(|s| PeerView {
            client_id: s.client_id.clone(),
            state: match s.presence {
                Presence::Connected => "connected",
                Presence::Away { .. } => "away",
            },
            since: s.since,
            identity: s.identity.clone(),
        });
        RoomView {
            room: self.name.clone(),
            started_at: self.started_at,
            call_started_at: self.call_started_at,
            peers: peers.collect(),
            bans: self
                .bans
                .iter()
                .filter(|b| now < b.until)
                .cloned()
                .collect(),
            webhooks_waiting: self.outbox.len(),
        }
    }

    /// Ends the call: `ended` and close 4410 on every socket, every slot freed (`peer.left`
    /// with reason `ended` each, then `room.ended` with reason `ended`). Bans stay. Sockets
    /// lost without a close (a restart) are caught up on first, as a join would.
    pub(super) fn end(&mut self, ctx: Ctx, reason: &str) -> (AdminReply, Vec<Effect>) {
        let mut out = self.reconcile(ctx);
        let count = self.slots.len();
        for slot in &mut self.slots {
            if slot.presence == Presence::Connected {
                let frame = ServerFrame::Ended {
                    room: self.name.clone(),
                    reason: reason.to_owned(),
                };
                out.extend(removal(&slot.conn, frame, CloseCode::Ended));
            }
            // Nobody is left to be told: no `peer-left` goes out below.
            slot.presence = Presence::Away { deadline: ctx.now };
        }
        while !self.slots.is_empty() {
            out.extend(self.release(ctx, 0, LeaveReason::Ended));
        }
        self.count_call(ctx);
        self.end_session(ctx, Some("ended"));
        (AdminReply::Ended(count), out)
    }

    /// Removes the peer `kick` names: `kicked` and close 4403 on its socket, its slot and
    /// tokens gone at once (`peer-left` with reason `kicked` to the other), and with a ban,
    /// its identity refused until the ban ends. A peer the room does not hold is `not-found`
    /// and changes nothing.
    pub(super) fn kick(&mut self, ctx: Ctx, kick: &Kick) -> (AdminReply, Vec<Effect>) {
        let find = |room: &RoomState| {
            room.slots.iter().position(|s| match &kick.target {
                KickTarget::ClientId(id) => s.client_id == *id,
                KickTarget::Sub(sub) => s.identity.as_ref().is_some_and(|i| i.sub == *sub),
            })
        };
        let Some(index) = find(self) else {
            return (AdminReply::Refused(HttpError::NoSuchPeer), Vec::new());
        };
        let sub = self.slots[index].identity.as_ref().map(|i| i.sub.clone());
        if let (Some(sub), true) = (sub, kick.ban_seconds > 0) {
            self.ban(
                sub,
                ctx.now.saturating_add(u64::from(kick.ban_seconds) * 1000),
            );
        }
        // Without a grace, catching up may free the peer's slot already (as `closed`).
        let mut out = self.reconcile(ctx);
        let Some(index) = find(self) else {
            return (AdminReply::Kicked, out);
        };
        let slot = &self.slots[index];
        if slot.presence == Presence::Connected {
            let frame = ServerFrame::Kicked {
                room: self.name.clone(),
                reason: kick.reason.clone(),
            };
            out.extend(removal(&slot.conn, frame, CloseCode::Kicked));
        }
        out.extend(self.release(ctx, index, LeaveReason::Kicked));
        (AdminReply::Kicked, out)
    }

    /// Bans `sub` until `until`; a ban is never shortened.
    fn ban(&mut self, sub: String, until: u64) {
        match self.bans.iter_mut().find(|b| b.sub == sub) {
            Some(ban) => ban.until = ban.until.max(until),
            None => self.bans.push(Ban { sub, until }),
        }
    }
}

/// The frame that tells a removed peer why, then its close.
fn removal(conn: &str, frame: ServerFrame, code: CloseCode) -> [Effect; 2] {
    [
        Effect::Send {
            conn: conn.to_owned(),
            frame,
        },
        Effect::Close {
            conn: conn.to_owned(),
            code,
        },
    ]
}
