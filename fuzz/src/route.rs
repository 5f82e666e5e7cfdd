//! A request as the Worker reads it: `UrlParts` of the URL, `Offered::parse` of the
//! subprotocols, the ticket and resume token they carry, and `route`, with the origins and
//! secrets of `Config::from_vars`.
//!
//! Input, one field a line (`~` or a missing line: absent): URL, method, `Origin`, `Upgrade`,
//! `Sec-WebSocket-Key`, `Sec-WebSocket-Version`, `Sec-WebSocket-Protocol`, the
//! `ALLOWED_ORIGINS` value, the `JOIN_SECRET` value. Tickets are checked at a fixed time
//! (1,999,990,000), with the default lifetime cap (a day).
//!
//! Checked:
//! - `route` answers exactly what a reference written from docs/protocol.md ("HTTP routes")
//!   answers, checks in the documented order, with the handshake key checked by a base64
//!   decoder; every refusal is one of the documented status and code pairs, with a JSON body;
//!   a `JOIN_SECRET` without a key refuses every socket (503 `config-error`), and exactly the
//!   ticket refusals cost the client's address a join;
//! - the URL's parts put back together split the same; the path starts with `/`; a query
//!   parameter is the first `name=value` item of the query;
//! - the subprotocols: `duet.v1` exactly when offered, the first ticket and resume token as
//!   sent, and an `Offered` written back as a header parses the same;
//! - a resume token is hashed exactly when it can be one (1 to 64 bytes), with SHA-256;
//! - a refusal goes in-band exactly as docs/protocol.md ("In-band refusals") says: for the
//!   refusals of who may join, to a client that offered `duet.v1` from an allowed origin with
//!   a valid handshake; its frame has the HTTP body's code and message (and `retryAfter` where
//!   `Retry-After` is), its close code is 4000 plus the HTTP status.

use super::fields;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use duet::config::{AllowedOrigins, Config};
use duet::route::{
    is_room_name, refusal, refusal_limit_key, route, Access, HttpError, Offered, Refusal,
    RequestParts, Route, UrlParts, MAX_ROOM_LEN,
};
use duet::ticket::{self, Identity, DEFAULT_MAX_TTL_S};
use duet::token::{resume_hash, to_hex, MAX_TOKEN_LEN};
use sha2::{Digest, Sha256};

/// When tickets are checked: less than a day before the `exp` of the test tickets
/// (2,000,000,000), so the default lifetime cap lets them through.
pub const NOW_S: u64 = 1_999_990_000;

/// Every refusal of `route` and the status docs/protocol.md gives it.
pub const DOCUMENTED: [(u16, &str); 11] = [
    (400, "invalid-room"),
    (400, "bad-upgrade"),
    (401, "ticket-required"),
    (401, "invalid-ticket"),
    (401, "ticket-expired"),
    (403, "forbidden-origin"),
    (403, "ticket-wrong-room"),
    (404, "not-found"),
    (405, "method-not-allowed"),
    (426, "upgrade-required"),
    (503, "config-error"),
];

/// The answer the docs give, with `route`'s types.
fn reference(
    req: &RequestParts,
    origins: &AllowedOrigins,
    secrets: &[String],
    refused: bool,
) -> Result<Route, HttpError> {
    let path = req.path;
    if path == "/ws" || path.starts_with("/ws/") {
        if req.method != "GET" {
            return Err(HttpError::MethodNotAllowed);
        }
        let room = path.get(4..).unwrap_or("");
        if !room_name(room) {
            return Err(HttpError::InvalidRoom);
        }
        if refused {
            return Err(HttpError::ConfigError);
        }
        if let Some(origin) = req.origin {
            let own = origin.eq_ignore_ascii_case(req.own_origin);
            let listed = match origins {
                AllowedOrigins::Any => true,
                AllowedOrigins::List(list) => list.iter().any(|o| o.eq_ignore_ascii_case(origin)),
            };
            if !own && !listed {
                return Err(HttpError::ForbiddenOrigin);
            }
        }
        let identity = if secrets.is_empty() {
            None
        } else {
            let ticket = req.ticket.ok_or(HttpError::TicketRequired)?;
            // The ticket target checks verify itself.
            Some(ticket::verify(
                ticket,
                secrets,
                room,
                NOW_S,
                DEFAULT_MAX_TTL_S,
            )?)
        };
        if req
            .upgrade
            .map(|u| u.trim().to_ascii_lowercase())
            .as_deref()
            != Some("websocket")
        {
            return Err(HttpError::UpgradeRequired);
        }
        if !(key_is_16_bytes(req.ws_key) && req.ws_version.map(str::trim) == Some("13")) {
            return Err(HttpError::BadUpgrade);
        }
        return Ok(Route::Socket {
            room: room.to_owned(),
            identity,
        });
    }
    match (path, req.method) {
        ("/healthz", "GET" | "HEAD") => Ok(Route::Health),
        ("/healthz", _) => Err(HttpError::MethodNotAllowed),
        _ if path == "/api" || path.starts_with("/api/") => Err(HttpError::NotFound),
        // The admin API, decided by `admin::route_admin` (its own target, `admin`).
        _ if path == "/admin" || path.starts_with("/admin/") => Ok(Route::Admin),
        _ if room_name(&path[1..]) => Ok(Route::AppPage),
        _ => Ok(Route::Asset),
    }
}

/// 1 to 64 characters of `A-Za-z0-9_-`.
fn room_name(name: &str) -> bool {
    (1..=MAX_ROOM_LEN).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// RFC 6455: the key is base64 of 16 bytes (padded; the spare bits of the last character are
/// not looked at).
fn key_is_16_bytes(key: Option<&str>) -> bool {
    let lenient = GeneralPurpose::new(
        &STANDARD,
        GeneralPurposeConfig::new()
            .with_decode_allow_trailing_bits(true)
            .with_decode_padding_mode(DecodePaddingMode::RequireCanonical),
    );
    key.and_then(|k| lenient.decode(k.trim()).ok())
        .is_some_and(|bytes| bytes.len() == 16)
}

/// Checks how `err`, the refusal of `req`, is delivered (docs/protocol.md, "In-band refusals").
fn check_delivery(err: HttpError, req: RequestParts<'_>, config: &Config, v1: bool) {
    let origin_ok = req.origin.is_none_or(|o| {
        o.eq_ignore_ascii_case(req.own_origin)
            || match &config.allowed_origins {
                AllowedOrigins::Any => true,
                AllowedOrigins::List(list) => list.iter().any(|a| a.eq_ignore_ascii_case(o)),
            }
    });
    let handshake_ok = req
        .upgrade
        .is_some_and(|u| u.trim().eq_ignore_ascii_case("websocket"))
        && key_is_16_bytes(req.ws_key)
        && req.ws_version.map(str::trim) == Some("13");
    let of_access = matches!(
        err.code(),
        "config-error"
            | "ticket-required"
            | "invalid-ticket"
            | "ticket-expired"
            | "ticket-wrong-room"
            | "too-many-joins"
    );
    let in_band = v1 && origin_ok && handshake_ok && of_access;
    match refusal(err, req, &Access::of(config, NOW_S), v1) {
        Refusal::Http(http) => {
            assert_eq!(http, err);
            assert!(!in_band, "{err:?} of {req:?} should go in-band");
        }
        Refusal::InBand { frame, close } => {
            assert!(in_band, "{err:?} of {req:?} should be an HTTP answer");
            let frame: serde_json::Value = serde_json::from_str(&frame).expect("JSON frame");
            let body: serde_json::Value = serde_json::from_str(&err.body()).expect("JSON body");
            assert_eq!(frame["type"], "error");
            assert_eq!(frame["code"], body["error"]["code"]);
            assert_eq!(frame["message"], body["error"]["message"]);
            assert_eq!(
                frame.get("retryAfter").and_then(|r| r.as_u64()),
                err.retry_after_s()
            );
            assert_eq!(u32::from(close.code()), 4000 + u32::from(err.status()));
        }
    }
}

fn check_url(url: &str) -> Option<UrlParts<'_>> {
    let parts = UrlParts::split(url);
    assert_eq!(parts.is_some(), url.contains("://"), "{url:?}");
    let parts = parts?;
    assert!(url.starts_with(parts.origin));
    let authority = &parts.origin[parts.origin.find("://")? + 3..];
    assert!(!authority.contains(['/', '?', '#']), "{parts:?}");
    assert!(parts.path.starts_with('/') && !parts.path.contains(['?', '#']));
    assert!(!parts.query.contains('#'));
    let query = if parts.query.is_empty() {
        String::new()
    } else {
        format!("?{}", parts.query)
    };
    let again = format!("{}{}{query}", parts.origin, parts.path);
    assert_eq!(UrlParts::split(&again).as_ref(), Some(&parts), "{again:?}");
    for name in ["ticket", "resume"] {
        let first = parts.query.split('&').find(|item| {
            *item == name || item.strip_prefix(name).is_some_and(|r| r.starts_with('='))
        });
        let value = first.map(|item| item.get(name.len() + 1..).unwrap_or(""));
        assert_eq!(parts.param(name), value, "{name} of {:?}", parts.query);
    }
    Some(parts)
}

fn check_offered(header: Option<&str>) -> Offered<'_> {
    let offered = Offered::parse(header);
    let items: Vec<&str> = header
        .map(|h| h.split(',').map(str::trim).collect())
        .unwrap_or_default();
    assert_eq!(offered.v1, items.contains(&"duet.v1"));
    let first = |prefix: &str| items.iter().find_map(|i| i.strip_prefix(prefix));
    assert_eq!(offered.ticket, first("duet.ticket."));
    assert_eq!(offered.resume, first("duet.resume."));
    // Written back as a header, it says the same.
    let mut written = Vec::new();
    if offered.v1 {
        written.push("duet.v1".to_owned());
    }
    written.extend(offered.ticket.map(|t| format!("duet.ticket.{t}")));
    written.extend(offered.resume.map(|r| format!("duet.resume.{r}")));
    let written = written.join(", ");
    assert_eq!(Offered::parse(Some(&written)), offered, "{written:?}");
    offered
}

pub fn check(data: &[u8]) {
    let f = fields(data, 9);
    let get = |i: usize| f[i].as_deref();
    let url = get(0).unwrap_or("https://duet.example/");
    let Some(url) = check_url(url) else {
        return;
    };
    let offered = check_offered(get(6));
    let resume = offered.resume.or_else(|| url.param("resume"));
    let expected_hash = resume
        .filter(|r| (1..=MAX_TOKEN_LEN).contains(&r.len()))
        .map(|r| to_hex(&Sha256::digest(r.as_bytes())));
    assert_eq!(resume_hash(resume), expected_hash);

    let (config, _) = Config::from_vars(|name| match name {
        "ALLOWED_ORIGINS" => get(7).map(str::to_owned),
        "JOIN_SECRET" => get(8).map(str::to_owned),
        _ => None,
    });
    let req = RequestParts {
        method: get(1).unwrap_or("GET"),
        path: url.path,
        origin: get(2),
        own_origin: url.origin,
        upgrade: get(3),
        ws_key: get(4),
        ws_version: get(5),
        ticket: offered.ticket.or_else(|| url.param("ticket")),
    };
    let answer = route(req, &Access::of(&config, NOW_S));
    // docs/protocol.md: set without a key (only commas and spaces), JOIN_SECRET refuses all.
    let refused = get(8).is_some_and(|v| v.split(',').all(|k| k.trim().is_empty()));
    assert_eq!(
        answer,
        reference(
            &req,
            &config.allowed_origins,
            &config.join_secrets.0,
            refused
        ),
        "{req:?}"
    );
    match answer {
        Err(err) => {
            assert!(
                DOCUMENTED.contains(&(err.status(), err.code())),
                "undocumented refusal {err:?}"
            );
            assert_eq!(err.retry_after_s(), None);
            // docs/access.md: a refused ticket costs the address a join; nothing else does.
            let ticket_refusal = matches!(err.status(), 401) || err.code() == "ticket-wrong-room";
            assert_eq!(
                refusal_limit_key(err, "203.0.113.9").as_deref(),
                ticket_refusal.then_some("ip:203.0.113.9")
            );
            let body: serde_json::Value = serde_json::from_str(&err.body()).expect("JSON body");
            assert_eq!(body["error"]["code"], err.code());
            assert!(body["error"]["message"]
                .as_str()
                .is_some_and(|m| !m.is_empty()));
            check_delivery(err, req, &config, offered.v1);
            if let Some(key) = refusal_limit_key(err, "203.0.113.9") {
                // The refusal of an address whose joins are spent.
                assert_eq!(key, "ip:203.0.113.9");
                check_delivery(HttpError::TooManyJoins, req, &config, offered.v1);
            }
        }
        Ok(Route::Socket { room, identity }) => {
            // Over the join limit.
            check_delivery(HttpError::TooManyJoins, req, &config, offered.v1);
            assert!(room_name(&room) && is_room_name(&room) && req.path == format!("/ws/{room}"));
            let with_ticket: Option<&Identity> = identity.as_ref();
            assert_eq!(with_ticket.is_some(), !config.join_secrets.0.is_empty());
        }
        Ok(_) => {}
    }
}
