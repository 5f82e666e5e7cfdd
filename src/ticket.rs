//! Signed join tickets: a JWT (RFC 7519) in compact JWS form, signed with HMAC-SHA256
//! (`alg` `HS256`) under one of the `JOIN_SECRET` secrets, that names the room it admits to
//! and the identity (`sub`) that will hold the slot. Any other `alg`, `none` included, is
//! refused. The format is normative: `docs/access.md`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Sha256;

/// Seconds of clock skew forgiven on `exp` and `nbf`.
pub const LEEWAY_S: u64 = 30;
pub const MAX_SUB_CHARS: usize = 128;
pub const MAX_NAME_CHARS: usize = 64;
/// Largest `meta` object, as serialized JSON.
pub const MAX_META_BYTES: usize = 1024;
/// Longer tickets are refused unread: a ticket travels in a URL or a subprotocol.
pub const MAX_TICKET_BYTES: usize = 4096;

/// Who holds a slot, as the operator's backend vouched for it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Identity {
    pub sub: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The operator's JSON object, kept as its text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub meta: Option<Box<RawValue>>,
}

impl PartialEq for Identity {
    fn eq(&self, other: &Self) -> bool {
        let meta = |i: &Identity| i.meta.as_ref().map(|m| m.get().to_owned());
        self.sub == other.sub && self.name == other.name && meta(self) == meta(other)
    }
}

impl Eq for Identity {}

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

#[derive(Deserialize)]
struct Header<'a> {
    #[serde(borrow)]
    alg: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct Claims {
    room: String,
    sub: String,
    exp: f64,
    #[serde(default)]
    nbf: Option<f64>,
    #[serde(default)]
    iat: Option<f64>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    meta: Option<Box<RawValue>>,
}

/// Checks `ticket` for room `room` at `now_s` (unix seconds) against each of `secrets`.
pub fn verify(
    ticket: &str,
    secrets: &[String],
    room: &str,
    now_s: u64,
) -> Result<Identity, TicketError> {
    let claims = verified_claims(ticket, secrets)?;
    let now = now_s as f64;
    let leeway = LEEWAY_S as f64;
    if now > claims.exp + leeway || claims.nbf.is_some_and(|nbf| nbf > now + leeway) {
        return Err(TicketError::Expired);
    }
    if claims.room != room {
        return Err(TicketError::WrongRoom);
    }
    Ok(Identity {
        sub: claims.sub,
        name: claims.name,
        meta: claims.meta,
    })
}

/// The claims of a well-formed HS256 ticket whose signature one of `secrets` made.
fn verified_claims(ticket: &str, secrets: &[String]) -> Result<Claims, TicketError> {
    if ticket.len() > MAX_TICKET_BYTES {
        return Err(TicketError::Invalid);
    }
    let mut parts = ticket.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TicketError::Invalid);
    };
    let decode = |part: &str| {
        URL_SAFE_NO_PAD
            .decode(part)
            .map_err(|_| TicketError::Invalid)
    };
    let header_json = decode(header)?;
    let header: Header = serde_json::from_slice(&header_json).map_err(|_| TicketError::Invalid)?;
    if header.alg != "HS256" {
        return Err(TicketError::Invalid);
    }
    let signature = decode(signature)?;
    let signed = &ticket[..header_json_len(ticket)];
    if !secrets
        .iter()
        .any(|secret| signs(secret, signed, &signature))
    {
        return Err(TicketError::Invalid);
    }
    let claims: Claims =
        serde_json::from_slice(&decode(payload)?).map_err(|_| TicketError::Invalid)?;
    check_shape(&claims)?;
    Ok(claims)
}

/// The length of `header.payload`, the signed part of a ticket with three parts.
fn header_json_len(ticket: &str) -> usize {
    ticket.rfind('.').unwrap_or(0)
}

fn signs(secret: &str, signed: &str, signature: &[u8]) -> bool {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(signed.as_bytes());
    // verify_slice compares in constant time.
    mac.verify_slice(signature).is_ok()
}

fn check_shape(claims: &Claims) -> Result<(), TicketError> {
    let sub_chars = claims.sub.chars().count();
    let name_ok = claims
        .name
        .as_ref()
        .is_none_or(|n| n.chars().count() <= MAX_NAME_CHARS);
    let meta_ok = claims
        .meta
        .as_ref()
        .is_none_or(|m| m.get().starts_with('{') && m.get().len() <= MAX_META_BYTES);
    let times_ok = [Some(claims.exp), claims.nbf, claims.iat]
        .into_iter()
        .flatten()
        .all(f64::is_finite);
    if (1..=MAX_SUB_CHARS).contains(&sub_chars) && name_ok && meta_ok && times_ok {
        Ok(())
    } else {
        Err(TicketError::Invalid)
    }
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
