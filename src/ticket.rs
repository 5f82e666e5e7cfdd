//! Signed join tickets: a JWT (RFC 7519) in compact JWS form, signed with HMAC-SHA256
//! (`alg` `HS256`) under one of the `JOIN_SECRET` secrets, that names the room it admits to
//! and the identity (`sub`) that will hold the slot. Any other `alg`, `none` included, is
//! refused. The format is normative: `docs/access.md`.

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::Sha256;

/// Seconds of clock skew forgiven on `exp` and `nbf`.
pub const LEEWAY_S: u64 = 30;
pub const MAX_SUB_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 64;
/// Largest `meta` object, as serialized JSON.
pub const MAX_META_BYTES: usize = 1024;
/// Longer tickets are refused unread: a ticket travels in a URL or a subprotocol.
pub const MAX_TICKET_BYTES: usize = 4096;

/// Who holds a slot, as the operator's backend vouched for it. `meta` is kept as a JSON value
/// so the identity survives storage (whose serializer is not JSON) as well as the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Identity {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Value>,
}

/// Why a ticket was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketError {
    /// Not a compact JWS, not HS256, a bad signature, or claims of the wrong shape.
    Invalid,
    /// Past `exp` or before `nbf` (with the leeway).
    Expired,
    /// Signed for another room.
    WrongRoom,
}

/// Checks `ticket` for room `room` at `now_s` (unix seconds) against each of `secrets`.
pub fn verify(
    ticket: &str,
    secrets: &[String],
    room: &str,
    now_s: u64,
) -> Result<Identity, TicketError> {
    let claims = verified_claims(ticket, secrets)?;
    let number = |name| claims.get(name).and_then(Value::as_f64);
    let (now, leeway) = (now_s as f64, LEEWAY_S as f64);
    let exp = number("exp").ok_or(TicketError::Invalid)?;
    if now > exp + leeway || number("nbf").is_some_and(|nbf| nbf > now + leeway) {
        return Err(TicketError::Expired);
    }
    if claims.get("room").and_then(Value::as_str) != Some(room) {
        return Err(TicketError::WrongRoom);
    }
    identity(claims)
}

/// The claims of a well-formed HS256 ticket whose signature one of `secrets` made. Parsed as
/// JSON values, whose parser the Worker has anyway: typed claims would add their own.
fn verified_claims(ticket: &str, secrets: &[String]) -> Result<Value, TicketError> {
    if ticket.len() > MAX_TICKET_BYTES {
        return Err(TicketError::Invalid);
    }
    let mut parts = ticket.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TicketError::Invalid);
    };
    let json = |part: &str| -> Result<Value, TicketError> {
        let text = String::from_utf8(base64url(part)?).map_err(|_| TicketError::Invalid)?;
        serde_json::from_str(&text).map_err(|_| TicketError::Invalid)
    };
    if json(header)?.get("alg").and_then(Value::as_str) != Some("HS256") {
        return Err(TicketError::Invalid);
    }
    let signature = base64url(signature)?;
    let signed = &ticket[..header.len() + 1 + payload.len()];
    if !secrets
        .iter()
        .any(|secret| signs(secret, signed, &signature))
    {
        return Err(TicketError::Invalid);
    }
    let claims = json(payload)?;
    let times_ok = ["exp", "nbf", "iat"].iter().all(|t| {
        claims
            .get(*t)
            .is_none_or(|v| v.as_f64().is_some_and(f64::is_finite))
    });
    let room_ok = claims.get("room").is_some_and(Value::is_string);
    if times_ok && room_ok && claims.get("exp").is_some() {
        Ok(claims)
    } else {
        Err(TicketError::Invalid)
    }
}

fn signs(secret: &str, signed: &str, signature: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(signed.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(signature).is_ok()
}

/// The identity the claims name, if `sub`, `name` and `meta` have the documented shapes.
fn identity(mut claims: Value) -> Result<Identity, TicketError> {
    let mut take = |name: &str| claims.get_mut(name).map(Value::take);
    let sub = match take("sub") {
        Some(Value::String(s)) if (1..=MAX_SUB_CHARS).contains(&s.chars().count()) => s,
        _ => return Err(TicketError::Invalid),
    };
    let name = match take("name") {
        None => None,
        Some(Value::String(n)) if n.chars().count() <= MAX_NAME_CHARS => Some(n),
        Some(_) => return Err(TicketError::Invalid),
    };
    let meta = match take("meta") {
        None => None,
        Some(m @ Value::Object(_)) if m.to_string().len() <= MAX_META_BYTES => Some(m),
        Some(_) => return Err(TicketError::Invalid),
    };
    Ok(Identity { sub, name, meta })
}

/// Decodes unpadded base64url (RFC 4648, 5), as JWS uses it; anything else is invalid.
pub fn base64url(text: &str) -> Result<Vec<u8>, TicketError> {
    fn sextet(c: u8) -> Option<u32> {
        Some(u32::from(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' => 62,
            b'_' => 63,
            _ => return None,
        }))
    }
    if text.len() % 4 == 1 {
        return Err(TicketError::Invalid);
    }
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    for chunk in text.as_bytes().chunks(4) {
        let mut bits = 0u32;
        for (i, &c) in chunk.iter().enumerate() {
            bits |= sextet(c).ok_or(TicketError::Invalid)? << (18 - 6 * i);
        }
        let bytes = bits.to_be_bytes();
        out.extend_from_slice(&bytes[1..chunk.len()]);
        // Bits past the last whole byte must be zero (a canonical encoding).
        let spare = match chunk.len() {
            2 => bits & 0xffff,
            3 => bits & 0xff,
            _ => 0,
        };
        if spare != 0 {
            return Err(TicketError::Invalid);
        }
    }
    Ok(out)
}

/// The `JOIN_SECRET` list, whose `Debug` output shows only how many there are.
#[derive(Clone, Default)]
pub struct Secrets(pub Vec<String>);

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Secrets({} redacted)", self.0.len())
    }
}

/// The `JOIN_SECRET` list: comma-separated, any of them accepted (for rotation).
pub fn parse_secrets(value: &str) -> Vec<String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

#[cfg(test)]
#[path = "ticket_tests.rs"]
mod tests;
