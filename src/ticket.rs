//! Signed join tickets: a JWT (RFC 7519) in compact JWS form, signed with HMAC-SHA256
//! (`alg` `HS256`) under one of the `JOIN_SECRET` secrets, that names the room it admits to
//! and the identity (`sub`) that will hold the slot. Any other `alg`, `none` included, is
//! refused, and so is a `crit` header (RFC 7515, 4.1.11: it names extensions a verifier must
//! understand, and this one understands none). The format is normative: `docs/access.md`.

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
/// `MAX_TICKET_TTL_SECONDS` unset or invalid: an `exp` at most a day (and the leeway) ahead.
pub const DEFAULT_MAX_TTL_S: u64 = 86_400;
/// Largest `exp`, `nbf` or `iat`: 2^53 - 1, the largest whole number that JavaScript's
/// numbers, and so the JSON of most backends, hold exactly.
pub const MAX_NUMERIC_DATE: u64 = (1 << 53) - 1;

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
    /// Not a compact JWS, not HS256, a `crit` header, a bad signature, or claims of the wrong
    /// shape (times included: whole seconds from 0 to [`MAX_NUMERIC_DATE`]).
    Invalid,
    /// `exp` further ahead than the lifetime cap (`MAX_TICKET_TTL_SECONDS`) and the leeway: a
    /// bearer token that outlives a revoked user by months is refused however it was signed.
    TooLong,
    /// Past `exp` or before `nbf` (with the leeway).
    Expired,
    /// Signed for another room.
    WrongRoom,
}

/// Checks `ticket` for room `room` at `now_s` (unix seconds) against each of `secrets`; its
/// `exp` may be at most `max_ttl_s` (and the leeway) ahead.
pub fn verify(
    ticket: &str,
    secrets: &[String],
    room: &str,
    now_s: u64,
    max_ttl_s: u64,
) -> Result<Identity, TicketError> {
    let claims = verified_claims(ticket, secrets)?;
    let time = |name| claims.get(name).and_then(numeric_date);
    let exp = time("exp").ok_or(TicketError::Invalid)?;
    if exp > now_s.saturating_add(max_ttl_s).saturating_add(LEEWAY_S) {
        return Err(TicketError::TooLong);
    }
    let not_yet = time("nbf").is_some_and(|nbf| nbf > now_s.saturating_add(LEEWAY_S));
    if now_s > exp + LEEWAY_S || not_yet {
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
    let fields = json(header)?;
    if fields.get("alg").and_then(Value::as_str) != Some("HS256") || fields.get("crit").is_some() {
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
    let times_ok = ["exp", "nbf", "iat"]
        .iter()
        .all(|t| claims.get(*t).is_none_or(|v| numeric_date(v).is_some()));
    let room_ok = claims.get("room").is_some_and(Value::is_string);
    if times_ok && room_ok && claims.get("exp").is_some() {
        Ok(claims)
    } else {
        Err(TicketError::Invalid)
    }
}

/// A time claim: a whole number of seconds since the epoch, from 0 to [`MAX_NUMERIC_DATE`],
/// however the JSON spells it (`1700000000`, `1700000000.0`, `1.7e9`). RFC 7519 allows
/// fractions; Duet's format does not (docs/access.md), so a fraction, a negative time or
/// `1e300` is refused rather than rounded into a date.
fn numeric_date(value: &Value) -> Option<u64> {
    if let Some(n) = value.as_u64() {
        return (n <= MAX_NUMERIC_DATE).then_some(n);
    }
    let n = value.as_f64()?;
    let whole = n.fract() == 0.0 && (0.0..=MAX_NUMERIC_DATE as f64).contains(&n);
    whole.then_some(n as u64)
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
