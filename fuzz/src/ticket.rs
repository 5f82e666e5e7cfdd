//! Join tickets: `ticket::verify` and `ticket::base64url`, and the identity they yield on its
//! way to the room (inside the `admission::Admission` the Worker hands the room).
//!
//! Input, read twice:
//! - as a ticket, as sent (which the fuzzer cannot sign, so it must be refused);
//! - as `header JSON \n claims JSON` (without a line break: claims under the usual header),
//!   which the target signs with the test secret, so the claims checks are reached.
//!
//! Checked (docs/access.md, "The ticket"):
//! - `verify` answers exactly what a reference written from the docs answers: `invalid-ticket`
//!   for a bad shape, an `alg` other than `HS256`, a `crit` header, a bad signature
//!   (HMAC-SHA256 computed here), claims of the wrong shape (times that are not whole seconds
//!   from 0 to 2^53 - 1 included), or an `exp` further ahead than the lifetime cap and the
//!   30 s leeway; `ticket-expired` past `exp` or before `nbf` (30 s leeway);
//!   `ticket-wrong-room`; else the identity;
//! - a ticket verified with secret S verifies again with S anywhere in a rotation list, and not
//!   without S, nor with its signature changed; at `exp` + 30 s it is still valid, a second
//!   later it has expired; with a cap of exactly `exp` - now - 30 s it is valid, with a second
//!   less it is too long;
//! - its identity crosses to the room (JSON, the admission header) unchanged, but for the last
//!   binary digit of a number that is not whole;
//! - base64url decodes exactly what RFC 4648's decoder (the `base64` crate) decodes.

use super::json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use duet::admission::{Admission, Door, Join};
use duet::ticket::{
    base64url, verify, Identity, TicketError, LEEWAY_S, MAX_META_BYTES, MAX_NAME_CHARS,
    MAX_SUB_CHARS, MAX_TICKET_BYTES,
};

/// 2^53 - 1, the largest time docs/access.md allows.
const MAX_TIME: u64 = 9_007_199_254_740_991;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

pub const SECRET: &str = "duet-test-secret";
/// After the `nbf` and before the `exp` of the test tickets.
pub const NOW_S: u64 = 1_700_000_100;
/// The lifetime cap the tickets are checked with: past their `exp` of 2033.
pub const CAP_S: u64 = 400_000_000;
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

fn hmac(secret: &str, signed: &str) -> Vec<u8> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key");
    mac.update(signed.as_bytes());
    mac.finalize().into_bytes().to_vec()
}

/// A ticket of `header` and `claims` signed with `secret`.
pub fn sign(header: &[u8], claims: &[u8], secret: &str) -> String {
    let signed = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = URL_SAFE_NO_PAD.encode(hmac(secret, &signed));
    format!("{signed}.{signature}")
}

/// What docs/access.md says of `ticket` for `room` at `now`, under `secret`, with an `exp`
/// at most `cap` seconds (and the leeway) ahead.
fn reference(
    ticket: &str,
    secret: &str,
    room: &str,
    now: u64,
    cap: u64,
) -> Result<Identity, TicketError> {
    use TicketError::{Expired, Invalid, TooLong, WrongRoom};
    if ticket.len() > MAX_TICKET_BYTES {
        return Err(Invalid);
    }
    let parts: Vec<&str> = ticket.split('.').collect();
    let [header, claims, signature] = parts[..] else {
        return Err(Invalid);
    };
    let decode = |part: &str| URL_SAFE_NO_PAD.decode(part).map_err(|_| Invalid);
    let json = |part: &str| -> Result<Value, TicketError> {
        let text = String::from_utf8(decode(part)?).map_err(|_| Invalid)?;
        serde_json::from_str(&text).map_err(|_| Invalid)
    };
    let header = json(header)?;
    if header.get("alg") != Some(&Value::from("HS256")) || header.get("crit").is_some() {
        return Err(Invalid);
    }
    if decode(signature)? != hmac(secret, &format!("{}.{claims}", parts[0])) {
        return Err(Invalid);
    }
    let claims = json(claims)?;
    let Value::Object(claims) = claims else {
        return Err(Invalid);
    };
    // Whole seconds from 0 to 2^53 - 1, in any JSON spelling of a whole number; compared as
    // exact integers (u128, so no sum here can overflow).
    let time = |name: &str| match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => {
            let whole = match (n.as_u64(), n.as_f64()) {
                (Some(u), _) => Some(u),
                (None, Some(f)) if f.fract() == 0.0 && f >= 0.0 && f <= MAX_TIME as f64 => {
                    Some(f as u64)
                }
                _ => None,
            };
            match whole.filter(|t| *t <= MAX_TIME) {
                Some(t) => Ok(Some(u128::from(t))),
                None => Err(Invalid),
            }
        }
        Some(_) => Err(Invalid),
    };
    let (exp, nbf, _iat) = (time("exp")?.ok_or(Invalid)?, time("nbf")?, time("iat")?);
    let Some(Value::String(claimed_room)) = claims.get("room") else {
        return Err(Invalid);
    };
    let (now, leeway) = (u128::from(now), u128::from(LEEWAY_S));
    if exp > now + u128::from(cap) + leeway {
        return Err(TooLong);
    }
    if now > exp + leeway || nbf.is_some_and(|nbf| now + leeway < nbf) {
        return Err(Expired);
    }
    if claimed_room != room {
        return Err(WrongRoom);
    }
    let sub = match claims.get("sub") {
        Some(Value::String(s)) if (1..=MAX_SUB_CHARS).contains(&s.chars().count()) => s.clone(),
        _ => return Err(Invalid),
    };
    let name = match claims.get("name") {
        None => None,
        Some(Value::String(n)) if n.chars().count() <= MAX_NAME_CHARS => Some(n.clone()),
        Some(_) => return Err(Invalid),
    };
    let meta = match claims.get("meta") {
        None => None,
        Some(m @ Value::Object(_)) if m.to_string().len() <= MAX_META_BYTES => Some(m.clone()),
        Some(_) => return Err(Invalid),
    };
    Ok(Identity { sub, name, meta })
}

fn check_base64url(text: &str) {
    let ours = base64url(text).ok();
    assert_eq!(
        ours,
        URL_SAFE_NO_PAD.decode(text).ok(),
        "base64url {text:?}"
    );
    if let Some(bytes) = ours {
        assert_eq!(URL_SAFE_NO_PAD.encode(bytes), text, "canonical");
    }
}

fn check_ticket(ticket: &str) {
    let secrets = [SECRET.to_owned()];
    let claimed_room = ticket
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .and_then(|c| c.get("room").and_then(Value::as_str).map(str::to_owned));
    let mut rooms = vec!["r1".to_owned()];
    rooms.extend(claimed_room.filter(|r| r != "r1"));
    for room in &rooms {
        let answer = verify(ticket, &secrets, room, NOW_S, CAP_S);
        assert_eq!(
            answer,
            reference(ticket, SECRET, room, NOW_S, CAP_S),
            "{ticket} for {room}"
        );
        let Ok(identity) = answer else {
            continue;
        };
        let rotation = ["old-secret".to_owned(), SECRET.to_owned()];
        assert_eq!(
            verify(ticket, &rotation, room, NOW_S, CAP_S).as_ref(),
            Ok(&identity)
        );
        let others = ["old-secret".to_owned(), format!("{SECRET}x")];
        assert_eq!(
            verify(ticket, &others, room, NOW_S, CAP_S),
            Err(TicketError::Invalid)
        );
        let signature_at = ticket.rfind('.').expect("three parts") + 1;
        let mut changed = ticket.to_owned();
        let first = if ticket[signature_at..].starts_with('A') {
            "B"
        } else {
            "A"
        };
        changed.replace_range(signature_at..signature_at + 1, first);
        assert_eq!(
            verify(&changed, &secrets, room, NOW_S, CAP_S),
            Err(TicketError::Invalid)
        );
        check_expiry(ticket, &secrets, room, &identity);

        let json = serde_json::to_string(&identity).expect("identity JSON");
        assert!(json::is_json(&json));
        let again: Identity = serde_json::from_str(&json).expect("identity JSON parses");
        assert!(crosses(&identity, &again), "{identity:?} became {again:?}");
        let join = Join {
            identity: Some(identity.clone()),
            ..Join::default()
        };
        let header = Admission::new(room, Door::Join(join)).encode();
        assert!(header.is_ascii());
        let admission = Admission::decode(&header).expect("the admission header decodes");
        let Door::Join(Join {
            identity: Some(decoded),
            ..
        }) = admission.door
        else {
            panic!("{admission:?} lost its identity");
        };
        assert!(
            crosses(&identity, &decoded),
            "{identity:?} became {decoded:?}"
        );
    }
}

/// Whether `b` is `a` after a trip through JSON: the same but for numbers that are not whole,
/// which serde_json's default (fast) float parser may read one unit in the last place off
/// (docs/access.md; its exact `float_roundtrip` would cost 8 KB of gzipped wasm).
fn crosses(a: &Identity, b: &Identity) -> bool {
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) if x.is_f64() && y.is_f64() => {
                let (x, y) = (
                    x.as_f64().unwrap_or(f64::NAN),
                    y.as_f64().unwrap_or(f64::NAN),
                );
                x == y || x.next_up() == y || x.next_down() == y
            }
            (Value::Array(a), Value::Array(b)) => {
                a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same(a, b))
            }
            (Value::Object(a), Value::Object(b)) => {
                a.len() == b.len() && a.iter().all(|(k, v)| b.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }
    let meta = match (&a.meta, &b.meta) {
        (Some(a), Some(b)) => same(a, b),
        (None, None) => true,
        _ => false,
    };
    a.sub == b.sub && a.name == b.name && meta
}

/// The leeway's edge, for a whole-second `exp` without `nbf`.
fn check_expiry(ticket: &str, secrets: &[String], room: &str, identity: &Identity) {
    let claims = ticket
        .split('.')
        .nth(1)
        .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok());
    let claims: Option<Value> = claims.and_then(|c| serde_json::from_slice(&c).ok());
    let Some(claims) = claims.filter(|c| c.get("nbf").is_none()) else {
        return;
    };
    let Some(exp) = claims["exp"].as_u64().filter(|e| *e < 1 << 52) else {
        return;
    };
    let edge = exp + LEEWAY_S;
    assert_eq!(
        verify(ticket, secrets, room, edge, CAP_S).as_ref(),
        Ok(identity)
    );
    assert_eq!(
        verify(ticket, secrets, room, edge + 1, CAP_S),
        Err(TicketError::Expired)
    );
    // The lifetime cap's edge: `exp` may be the cap and the leeway ahead, not a second more.
    if let Some(cap) = exp.checked_sub(NOW_S + LEEWAY_S) {
        assert_eq!(
            verify(ticket, secrets, room, NOW_S, cap).as_ref(),
            Ok(identity)
        );
        if let Some(less) = cap.checked_sub(1) {
            assert_eq!(
                verify(ticket, secrets, room, NOW_S, less),
                Err(TicketError::TooLong)
            );
        }
    }
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    for part in text.split('.') {
        check_base64url(part);
    }
    // As sent: valid only with a signature made with the secret, which the fuzzer lacks.
    check_ticket(&text);
    // Signed here, so the claims are what is tested.
    let (header, claims) = match data.iter().position(|&b| b == b'\n') {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => (HEADER.as_bytes(), data),
    };
    check_ticket(&sign(header, claims, SECRET));
}
