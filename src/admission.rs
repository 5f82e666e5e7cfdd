//! The one door into a room's Durable Object. The Worker decides everything about a request
//! (route, origin, ticket and identity, resume token, offered subprotocols, admin verb) and
//! hands the object a single [`Admission`]; the object reads it with these types and never
//! looks at the HTTP request again, so every refusal of a request is the Worker's.
//!
//! It travels in one header ([`ADMISSION_HEADER`]) as hex of a JSON array: header values are
//! Latin-1, names in identities need not be, and hex needs no decoder beyond the one tokens
//! have. The array is read through `serde_json::Value`, which the module has anyway: derived
//! deserializers for these types cost more wasm than the rest of the door. Its first element is
//! the version, so that a Worker and an object of different deploys refuse each other cleanly
//! instead of misreading:
//!
//! ```text
//! [1, room, "join", v1, resumeHash|null, address|null, identityJson|null]
//! [1, room, "inspect"]
//! [1, room, "end", reason]
//! [1, room, "kick", "clientId"|"sub", target, reason, banSeconds]
//! ```

use crate::admin::{AdminVerb, Kick, KickTarget};
use crate::ticket::Identity;
use crate::token::{from_hex, to_hex};
use serde_json::Value;

/// The header that carries the admission; nothing else of the client's request reaches the
/// room's object.
pub const ADMISSION_HEADER: &str = "X-Duet-Admission";
/// The version of [`Admission`] this build writes and reads.
pub const ADMISSION_VERSION: u8 = 1;

/// What the Worker decided about one request for room `room`.
#[derive(Debug, Clone, PartialEq)]
pub struct Admission {
    pub room: String,
    pub door: Door,
}

/// Which way the request comes in.
#[derive(Debug, Clone, PartialEq)]
pub enum Door {
    /// An admitted WebSocket upgrade.
    Join(Join),
    /// An authorized operator's verb, already validated.
    Admin(AdminVerb),
}

/// An admitted socket: what the object needs to seat it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Join {
    /// `duet.v1` was offered, so the 101 selects it.
    pub v1: bool,
    /// Hash of the resume token offered, if any (the token itself stays in the Worker).
    pub resume_hash: Option<String>,
    /// The client's address (`CF-Connecting-IP`), for its budget's key without tickets.
    pub address: Option<String>,
    /// Who the join ticket names, when tickets are required.
    pub identity: Option<Identity>,
}

impl Admission {
    pub fn new(room: &str, door: Door) -> Self {
        Admission {
            room: room.to_owned(),
            door,
        }
    }

    /// The header value. The array is written by hand: `json!` would build a `Value` first.
    pub fn encode(&self) -> String {
        let text = |s: &str| serde_json::to_string(s).unwrap_or_default();
        let optional = |s: Option<&str>| s.map_or_else(|| "null".to_owned(), text);
        let mut array = format!("[{ADMISSION_VERSION},{}", text(&self.room));
        let rest = match &self.door {
            Door::Join(join) => {
                let identity = join.identity.as_ref().map(serde_json::to_string);
                let identity = identity.and_then(Result::ok);
                format!(
                    r#","join",{},{},{},{}"#,
                    join.v1,
                    optional(join.resume_hash.as_deref()),
                    optional(join.address.as_deref()),
                    optional(identity.as_deref())
                )
            }
            Door::Admin(AdminVerb::Inspect) => r#","inspect""#.to_owned(),
            Door::Admin(AdminVerb::End { reason }) => format!(r#","end",{}"#, text(reason)),
            Door::Admin(AdminVerb::Kick(kick)) => {
                let (by, target) = match &kick.target {
                    KickTarget::ClientId(id) => ("clientId", id),
                    KickTarget::Sub(sub) => ("sub", sub),
                };
                let (target, reason) = (text(target), text(&kick.reason));
                format!(r#","kick","{by}",{target},{reason},{}"#, kick.ban_seconds)
            }
        };
        array.push_str(&rest);
        array.push(']');
        to_hex(array.as_bytes())
    }

    /// The admission in `header`; `None` when it is not one of this version's.
    pub fn decode(header: &str) -> Option<Admission> {
        let text = String::from_utf8(from_hex(header.trim())?).ok()?;
        let Value::Array(items) = serde_json::from_str(&text).ok()? else {
            return None;
        };
        let text_at = |i: usize| items.get(i).and_then(Value::as_str);
        // Absent and null are both "none"; any other non-string is not an admission.
        let optional = |i: usize| match items.get(i) {
            None | Some(Value::Null) => Some(None),
            Some(Value::String(s)) => Some(Some(s.clone())),
            Some(_) => None,
        };
        if items.first()?.as_u64()? != u64::from(ADMISSION_VERSION) {
            return None;
        }
        let door = match text_at(2)? {
            "join" => Door::Join(Join {
                v1: items.get(3)?.as_bool()?,
                resume_hash: optional(4)?,
                address: optional(5)?,
                identity: match optional(6)? {
                    Some(json) => Some(serde_json::from_str(&json).ok()?),
                    None => None,
                },
            }),
            "inspect" => Door::Admin(AdminVerb::Inspect),
            "end" => Door::Admin(AdminVerb::End {
                reason: text_at(3)?.to_owned(),
            }),
            "kick" => Door::Admin(AdminVerb::Kick(Kick {
                target: match (text_at(3)?, text_at(4)?.to_owned()) {
                    ("clientId", id) => KickTarget::ClientId(id),
                    ("sub", sub) => KickTarget::Sub(sub),
                    _ => return None,
                },
                reason: text_at(5)?.to_owned(),
                ban_seconds: u32::try_from(items.get(6)?.as_u64()?).ok()?,
            })),
            _ => return None,
        };
        Some(Admission::new(text_at(1)?, door))
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
        let other = to_hex(format!(r#"[{},"r","inspect"]"#, ADMISSION_VERSION + 1).as_bytes());
        assert_eq!(Admission::decode(&other), None);
        let this = to_hex(format!(r#"[{},"r","inspect"]"#, ADMISSION_VERSION).as_bytes());
        assert!(Admission::decode(&this).is_some());
        for bad in [
            "",
            "zz",
            "7b7d",
            &to_hex(br#"{"v":1}"#),
            &to_hex(br#"[1,"r","leave"]"#),
            &to_hex(br#"[1,"r","join","yes"]"#),
            &to_hex(br#"[1,"r","join",true,7]"#),
            &to_hex(br#"[1,"r","join",true,null,null,"{not json"]"#),
            &to_hex(br#"[1,"r","kick","name","x","",0]"#),
            &to_hex(br#"[1,"r","kick","sub","x","",-1]"#),
        ] {
            assert_eq!(Admission::decode(bad), None, "{bad}");
        }
    }
}
