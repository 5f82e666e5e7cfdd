//! What the object stores for one room (storage key `room`): its slots, who holds them, and
//! who was last told `ready`. The decisions that change it are in the `room` module.

use crate::rate::RateLimiter;
use crate::ticket::Identity;
use crate::webhook::{Pending, Session};
use serde::{Deserialize, Serialize};

/// How often a room with connected slots re-checks that their sockets still exist. A deploy
/// drops sockets without any close event, so without this sweep such a room's storage would
/// stay until somebody joined it again.
pub const SWEEP_INTERVAL_MS: u64 = 5 * 60 * 1000;

/// Whether a slot's socket is up. Stored as `{"state":"connected"}` or
/// `{"state":"away","deadline":…}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "PresenceRecord", into = "PresenceRecord")]
pub enum Presence {
    Connected,
    /// Dropped without leaving; held for its owner until `deadline` (ms since the epoch).
    Away {
        deadline: u64,
    },
}

/// [`Presence`] as stored: serde's internally tagged enums buffer their input first, which
/// costs kilobytes of wasm; this flat record reads and writes the same JSON without that.
#[derive(Serialize, Deserialize)]
struct PresenceRecord {
    state: PresenceState,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    deadline: Option<u64>,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PresenceState {
    Connected,
    Away,
}

impl From<Presence> for PresenceRecord {
    fn from(presence: Presence) -> Self {
        match presence {
            Presence::Connected => PresenceRecord {
                state: PresenceState::Connected,
                deadline: None,
            },
            Presence::Away { deadline } => PresenceRecord {
                state: PresenceState::Away,
                deadline: Some(deadline),
            },
        }
    }
}

impl TryFrom<PresenceRecord> for Presence {
    type Error = &'static str;

    fn try_from(record: PresenceRecord) -> Result<Self, Self::Error> {
        match (record.state, record.deadline) {
            (PresenceState::Connected, _) => Ok(Presence::Connected),
            (PresenceState::Away, Some(deadline)) => Ok(Presence::Away { deadline }),
            (PresenceState::Away, None) => Err("an away slot needs its deadline"),
        }
    }
}

/// One of the room's two places.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Slot {
    pub client_id: String,
    /// SHA-256 of the current resume token; the token itself is never stored.
    pub token_hash: String,
    /// SHA-256 of the token this slot was last resumed with. The current token went out in
    /// that resume's welcome, which may have been lost with its socket (a restart, a network
    /// drop): the previous token then still resumes, until the current one is used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_token_hash: Option<String>,
    /// The id of the socket that holds the slot now (also that socket's tag).
    pub conn: String,
    pub presence: Presence,
    /// Who holds the slot, when join tickets are used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// The slot's rate bucket when its last socket went away, for the next one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bucket: Option<RateLimiter>,
    /// Whose budget the slot spends: a keyed hash of its ticket identity, or of its client
    /// address without tickets (`room::budget`). Never the address itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub key: Option<String>,
    /// The slot is away, but its drop was never told to the peer: its bucket could not pay
    /// for `peer-away` and the `peer-joined` of its return, so neither is sent.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub untold: bool,
    /// `report` frames accepted from the slot (`crate::report`), up to
    /// [`crate::report::MAX_REPORTS_PER_SLOT`].
    #[serde(default, skip_serializing_if = "is_zero")]
    pub reports: u8,
    /// Since when the slot has its presence (ms since the epoch): when it was taken or
    /// resumed, or when its socket went away.
    #[serde(default)]
    pub since: u64,
}

fn is_zero(n: &u8) -> bool {
    *n == 0
}

/// The rate bucket a client left the room with, kept for its next join while the room has
/// another occupant (`room::budget`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KeptBucket {
    /// The slot's [`Slot::key`].
    pub key: String,
    pub bucket: RateLimiter,
}

/// An identity refused from the room until `until` (ms since the epoch), by an operator's
/// kick (`crate::admin`). Kept while the room is otherwise empty, until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ban {
    /// The ticket identity's `sub`.
    pub sub: String,
    pub until: u64,
}

/// What the object stores for one room (storage key `room`). Slots are kept in arrival
/// order: the first is the initiator when the room becomes ready.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomState {
    pub name: String,
    pub slots: Vec<Slot>,
    /// The two client ids last told `ready` together; a resume within that pair needs none.
    pub ready_pair: Option<[String; 2]>,
    /// With webhooks: the call since the room was last empty.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<Session>,
    /// With webhooks: events not yet delivered, oldest first. A room whose slots are all free
    /// stays stored until this is empty.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub outbox: Vec<Pending>,
    /// The buckets of clients that left while somebody stayed, so a rejoin does not refill
    /// them; dropped once full again, and all of them when the room empties.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kept: Vec<KeptBucket>,
    /// The key of the keyed hashes in [`Slot::key`], made when the room needs its first one;
    /// it goes with the room's storage.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub salt: String,
    /// When the alarm was last set by a save (ms since the epoch). While it is still ahead, a
    /// save whose next alarm is no earlier leaves the alarm alone: it fires early, finds
    /// nothing due and re-arms, which is cheaper than a `setAlarm` on every change.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alarm_at: Option<u64>,
    /// When the first slot of the empty room was taken (ms since the epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<u64>,
    /// When the room's two peers were first told `ready` since it started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub call_started_at: Option<u64>,
    /// Identities an operator banned, until their bans end; they outlive the call.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bans: Vec<Ban>,
}

impl RoomState {
    pub fn new(name: &str) -> Self {
        RoomState {
            name: name.to_owned(),
            ..RoomState::default()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty()
    }

    /// When the alarm should next fire, if at all: the first resume deadline, the sweep, the
    /// next webhook delivery, or the end of the first ban.
    pub fn next_alarm(&self, now: u64) -> Option<u64> {
        self.slots
            .iter()
            .map(|s| match s.presence {
                Presence::Away { deadline } => deadline,
                Presence::Connected => now.saturating_add(SWEEP_INTERVAL_MS),
            })
            .chain(self.outbox.first().map(|p| p.next_at))
            .chain(self.bans.iter().map(|b| b.until))
            .min()
    }

    /// Whether `sub` is banned at `now`.
    pub fn is_banned(&self, sub: &str, now: u64) -> bool {
        self.bans.iter().any(|b| b.sub == sub && now < b.until)
    }

    /// Forgets the bans that have ended.
    pub fn drop_ended_bans(&mut self, now: u64) {
        self.bans.retain(|b| now < b.until);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presence_is_stored_as_before() {
        let away = Presence::Away { deadline: 5 };
        for (presence, json) in [
            (Presence::Connected, r#"{"state":"connected"}"#),
            (away, r#"{"state":"away","deadline":5}"#),
        ] {
            assert_eq!(serde_json::to_string(&presence).unwrap(), json);
            assert_eq!(serde_json::from_str::<Presence>(json).unwrap(), presence);
        }
        for bad in [r#"{"state":"away"}"#, r#"{"state":"gone"}"#, r#"{}"#] {
            assert!(serde_json::from_str::<Presence>(bad).is_err(), "{bad}");
        }
    }
}
