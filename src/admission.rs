//! The one door into a room's Durable Object. The Worker decides everything about a request
//! (route, origin, ticket and identity, resume token, offered subprotocols, admin verb) and
//! hands the object a single [`Admission`]; the object reads it with these types and never
//! looks at the HTTP request again, so every refusal of a request is the Worker's.
//!
//! It travels in one header ([`ADMISSION_HEADER`]) as hex of its JSON: header values are
//! Latin-1, names in identities need not be, and hex needs no decoder beyond the one tokens
//! have. A version field lets a Worker and an object of different deploys refuse each other
//! cleanly instead of misreading.

use crate::admin::AdminVerb;
use crate::ticket::Identity;
use crate::token::{from_hex, to_hex};
use serde::{Deserialize, Serialize};

/// The header that carries the admission; whatever a client sent under that name is replaced.
pub const ADMISSION_HEADER: &str = "X-Duet-Admission";
/// The version of [`Admission`] this build writes and reads.
pub const ADMISSION_VERSION: u8 = 1;

/// What the Worker decided about one request for room `room`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Admission {
    pub v: u8,
    pub room: String,
    pub door: Door,
}

/// Which way the request comes in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Door {
    /// An admitted WebSocket upgrade.
    Join(Join),
    /// An authorized operator's verb, already validated.
    Admin(AdminVerb),
}

/// An admitted socket: what the object needs to seat it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Join {
    /// `duet.v1` was offered, so the 101 selects it.
    #[serde(default)]
    pub v1: bool,
    /// Hash of the resume token offered, if any (the token itself stays in the Worker).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_hash: Option<String>,
    /// Who the join ticket names, when tickets are required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// The client's address (`CF-Connecting-IP`), for its budget's key without tickets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Admission {
    pub fn new(room: &str, door: Door) -> Self {
        Admission {
            v: ADMISSION_VERSION,
            room: room.to_owned(),
            door,
        }
    }

    /// The header value.
    pub fn encode(&self) -> String {
        to_hex(serde_json::to_string(self).unwrap_or_default().as_bytes())
    }

    /// The admission in `header`; `None` when it is not one of this version's.
    pub fn decode(header: &str) -> Option<Admission> {
        let json = String::from_utf8(from_hex(header.trim())?).ok()?;
        let admission: Admission = serde_json::from_str(&json).ok()?;
        (admission.v == ADMISSION_VERSION).then_some(admission)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::{Kick, KickTarget};

    #[test]
    fn admissions_cross_to_the_object_intact() {
        let identity = Identity {
            sub: "ü-1".into(),
            name: Some("Zoë 山田".into()),
            meta: Some(serde_json::json!({"plan": "pro"})),
        };
        let doors = [
            Door::Join(Join::default()),
            Door::Join(Join {
                v1: true,
                resume_hash: Some("ab".into()),
                identity: Some(identity),
                address: Some("2001:db8::1".into()),
            }),
            Door::Admin(AdminVerb::Inspect),
            Door::Admin(AdminVerb::End {
                reason: "time's up ✓".into(),
            }),
            Door::Admin(AdminVerb::Kick(Kick {
                target: KickTarget::Sub("u".into()),
                reason: String::new(),
                ban_seconds: 60,
            })),
        ];
        for door in doors {
            let admission = Admission::new("room-1", door);
            let header = admission.encode();
            assert!(header.bytes().all(|b| b.is_ascii_hexdigit()), "{header}");
            assert_eq!(Admission::decode(&header), Some(admission));
        }
    }

    #[test]
    fn another_version_or_garbage_is_refused() {
        let mut admission = Admission::new("r", Door::Admin(AdminVerb::Inspect));
        admission.v = ADMISSION_VERSION + 1;
        assert_eq!(Admission::decode(&admission.encode()), None);
        for bad in ["", "zz", "7b7d", &to_hex(b"{\"v\":1}")] {
            assert_eq!(Admission::decode(bad), None, "{bad}");
        }
    }
}
