//! Lifecycle webhooks (`docs/webhooks.md`): the events, the room's outbox, the retry schedule
//! and the `Duet-Signature` header. All of it is pure: the room decides what to enqueue and
//! what a delivery's outcome changes, and the Durable Object only POSTs the outbox's head from
//! its alarm and reports back.

use crate::protocol::LeaveReason;
use crate::report::{Outcome as ReportOutcome, Report};
use crate::ticket::Identity;
use crate::token::to_hex;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::fmt;

/// The header that carries the signature.
pub const SIGNATURE_HEADER: &str = "Duet-Signature";
/// How long one delivery may take before it counts as failed.
pub const TIMEOUT_MS: u64 = 5_000;
/// The wait after the first failure; it doubles after each further one.
pub const FIRST_RETRY_MS: u64 = 1_000;
/// The longest wait between two attempts.
pub const MAX_RETRY_MS: u64 = 10 * 60 * 1000;
/// An event still undelivered this long after it happened is dropped at its next failure.
pub const GIVE_UP_AFTER_MS: u64 = 24 * 60 * 60 * 1000;
/// The same for the events of a lone session: a room that one client entered and left with
/// nobody else ever joining. Anyone can make one per join, so they are kept for less.
pub const LONE_GIVE_UP_AFTER_MS: u64 = 60 * 60 * 1000;
/// The most events one room keeps waiting. Stored with the room, so this and
/// [`MAX_OUTBOX_BYTES`] bound its storage while a receiver is down; beyond either, the oldest
/// event of whoever holds the most of the outbox is dropped (and logged).
pub const MAX_OUTBOX: usize = 200;
/// The most bytes the waiting events of one room take as stored ([`Pending::stored_len`]).
pub const MAX_OUTBOX_BYTES: usize = 64 * 1024;

/// `WEBHOOK_URL` and `WEBHOOK_SECRET`.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSettings {
    pub url: String,
    pub secret: String,
}

impl fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// One event waiting in the outbox, its body written once so that every attempt sends the
/// same bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Pending {
    pub id: String,
    /// When it happened (ms since the epoch).
    pub at: u64,
    pub body: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Not to be attempted before this time.
    pub next_at: u64,
    /// Who caused it: the budget key of the client whose action it records (its client id
    /// when it has none). When the outbox overflows, the events of whoever holds the most of
    /// it go first, never another participant's.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub by: String,
    /// It belongs to a lone session, and is given up after [`LONE_GIVE_UP_AFTER_MS`].
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lone: bool,
}

impl Pending {
    /// Its size as stored in the room's JSON: the body is escaped inside a string, and the
    /// record's other fields take at most [`PENDING_OVERHEAD`].
    pub fn stored_len(&self) -> usize {
        let escapes = self
            .body
            .bytes()
            .filter(|b| matches!(b, b'"' | b'\\'))
            .count();
        self.body.len() + escapes + self.id.len() + self.by.len() + PENDING_OVERHEAD
    }
}

/// The bytes of a stored [`Pending`] besides its body, id and causer: field names, quotes and
/// three numbers of at most 20 digits, and the lone flag.
pub const PENDING_OVERHEAD: usize = 120;

/// A call from the first slot taken in an empty room until the room is empty again.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// Makes the session's event ids unique: the first client's random id.
    pub id: String,
    pub started_at: u64,
    /// Events of this session so far.
    pub seq: u64,
    /// Time with two connected peers, not counting the current stretch.
    pub call_ms: u64,
    /// Since when both peers are connected, if they are.
    pub both_since: Option<u64>,
    /// Whether anybody but the first client joined during the session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joined_by_another: bool,
}

/// What happened, with the fields of its type.
#[derive(Debug, Clone, PartialEq)]
pub enum Hook {
    RoomStarted,
    PeerJoined {
        client_id: String,
        identity: Option<Identity>,
    },
    CallReady {
        peers: [String; 2],
        initiator: String,
    },
    PeerLeft {
        client_id: String,
        reason: LeaveReason,
    },
    RoomEnded {
        started_at: u64,
        ended_at: u64,
        call_ms: u64,
        /// `ended` when an operator ended the call; absent when the room simply emptied.
        reason: Option<&'static str>,
    },
    /// `call.connected` or `call.failed`, as a client reported it.
    CallReported {
        client_id: String,
        report: Report,
    },
}

impl Hook {
    pub fn kind(&self) -> &'static str {
        match self {
            Hook::RoomStarted => "room.started",
            Hook::PeerJoined { .. } => "peer.joined",
            Hook::CallReady { .. } => "call.ready",
            Hook::PeerLeft { .. } => "peer.left",
            Hook::RoomEnded { .. } => "room.ended",
            Hook::CallReported { report, .. } => match report.outcome {
                ReportOutcome::Connected { .. } => "call.connected",
                ReportOutcome::Failed => "call.failed",
            },
        }
    }

    /// The JSON body: `id`, `type`, `room`, `at`, then the fields of its type.
    pub fn body(&self, id: &str, room: &str, at: u64) -> String {
        let mut body = Body {
            id,
            kind: self.kind(),
            room,
            at,
            client_id: None,
            resumed: None,
            identity: None,
            peers: None,
            initiator: None,
            reason: None,
            started_at: None,
            ended_at: None,
            call_ms: None,
            reported_by: None,
            path: None,
            transport: None,
            connect_ms: None,
            ice_restarts: None,
        };
        match self {
            Hook::RoomStarted => {}
            Hook::PeerJoined {
                client_id,
                identity,
            } => {
                body.client_id = Some(client_id);
                body.resumed = Some(false);
                body.identity = identity.as_ref();
            }
            Hook::CallReady { peers, initiator } => {
                body.peers = Some(peers);
                body.initiator = Some(initiator);
            }
            Hook::PeerLeft { client_id, reason } => {
                body.client_id = Some(client_id);
                body.reason = Some(reason.as_str());
            }
            Hook::RoomEnded {
                started_at,
                ended_at,
                call_ms,
                reason,
            } => {
                body.reason = *reason;
                body.started_at = Some(*started_at);
                body.ended_at = Some(*ended_at);
                body.call_ms = Some(*call_ms);
            }
            Hook::CallReported { client_id, report } => {
                body.client_id = Some(client_id);
                body.reported_by = Some("client");
                if let ReportOutcome::Connected { path, transport } = report.outcome {
                    body.path = Some(path.as_str());
                    body.transport = Some(transport.as_str());
                }
                body.connect_ms = Some(report.connect_ms);
                body.ice_restarts = Some(report.ice_restarts);
            }
        }
        serde_json::to_string(&body).unwrap_or_default()
    }
}

/// Every field an event may have; each type sets its own.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Body<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    room: &'a str,
    at: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    client_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    resumed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    identity: Option<&'a Identity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    peers: Option<&'a [String; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    initiator: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ended_at: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    call_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reported_by: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    path: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    transport: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    connect_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ice_restarts: Option<u32>,
}

/// How one delivery attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The receiver answered 2xx.
    Delivered,
    /// The receiver answered with another status.
    Status(u16),
    /// No answer within [`TIMEOUT_MS`].
    Timeout,
    /// The request failed (DNS, connection refused, TLS).
    Network,
}

impl Outcome {
    /// For the log line of a failed attempt.
    pub fn reason(self) -> &'static str {
        match self {
            Outcome::Delivered => "delivered",
            Outcome::Status(_) => "status",
            Outcome::Timeout => "timeout",
            Outcome::Network => "network",
        }
    }
}

/// The wait before the next attempt after `failures` failed ones: 1 s, 2 s, 4 s, … up to
/// 10 minutes.
pub fn retry_delay(failures: u32) -> u64 {
    let doublings = failures.saturating_sub(1).min(20);
    (FIRST_RETRY_MS << doublings).min(MAX_RETRY_MS)
}

/// The outbox's head, if it is due at `now`. Only the head is ever sent: order per room.
pub fn due(outbox: &[Pending], now: u64) -> Option<&Pending> {
    outbox.first().filter(|p| p.next_at <= now)
}

/// `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`.
pub fn signature(secret: &str, unix_seconds: u64, body: &str) -> String {
    let t = unix_seconds.to_string();
    // HMAC takes a key of any length, so this never fails.
    let mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).map(|mut mac| {
        mac.update(t.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        to_hex(&mac.finalize().into_bytes())
    });
    format!("t={t},v1={}", mac.unwrap_or_default())
}

/// Reads `WEBHOOK_URL` and `WEBHOOK_SECRET`: `Ok(None)` when no URL is set.
pub fn parse_settings(
    url: Option<&str>,
    secret: Option<&str>,
) -> Result<Option<WebhookSettings>, String> {
    let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
        return Ok(None);
    };
    let host = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host_ok = host.is_some_and(|rest| {
        let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
        !authority.is_empty() && !authority.contains(['@', ' '])
    });
    if !host_ok || url.contains(char::is_whitespace) {
        return Err(format!(
            "{url:?} is not an http:// or https:// URL; webhooks are off"
        ));
    }
    match secret.map(str::trim).filter(|s| !s.is_empty()) {
        Some(secret) => Ok(Some(WebhookSettings {
            url: url.to_owned(),
            secret: secret.to_owned(),
        })),
        None => Err("WEBHOOK_URL is set but WEBHOOK_SECRET is not; webhooks are off".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn signature_matches_an_independent_hmac() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"whsec_test",
        //   b"1700000000.{\"id\":\"e1\"}",hashlib.sha256).hexdigest())'
        assert_eq!(
            signature("whsec_test", 1_700_000_000, r#"{"id":"e1"}"#),
            "t=1700000000,v1=6a85cb117c993612a34c72b4cfb5a16baed25a80d26e298ce0e6671320fd07c8"
        );
    }

    #[test]
    fn retries_back_off_to_ten_minutes() {
        let delays: Vec<u64> = (1..=12).map(retry_delay).collect();
        assert_eq!(
            delays,
            [
                1_000, 2_000, 4_000, 8_000, 16_000, 32_000, 64_000, 128_000, 256_000, 512_000,
                600_000, 600_000
            ]
        );
        assert_eq!(retry_delay(u32::MAX), MAX_RETRY_MS);
    }

    #[test]
    fn bodies_carry_the_fields_of_their_type() {
        let left = Hook::PeerLeft {
            client_id: "c1".into(),
            reason: LeaveReason::Timeout,
        };
        let body: Value = serde_json::from_str(&left.body("s-1", "r", 5)).unwrap();
        assert_eq!(
            body,
            json!({"id": "s-1", "type": "peer.left", "room": "r", "at": 5,
                   "clientId": "c1", "reason": "timeout"})
        );
        let ended = Hook::RoomEnded {
            started_at: 1,
            ended_at: 9,
            call_ms: 4,
            reason: None,
        };
        let body: Value = serde_json::from_str(&ended.body("s-2", "r", 9)).unwrap();
        assert_eq!(
            body,
            json!({"id": "s-2", "type": "room.ended", "room": "r", "at": 9,
                   "startedAt": 1, "endedAt": 9, "callMs": 4})
        );
        let by_operator = Hook::RoomEnded {
            started_at: 1,
            ended_at: 9,
            call_ms: 4,
            reason: Some("ended"),
        };
        let body: Value = serde_json::from_str(&by_operator.body("s-3", "r", 9)).unwrap();
        assert_eq!(body["reason"], "ended");
    }

    #[test]
    fn a_pending_event_knows_its_stored_size() {
        let pending = Pending {
            id: "c0ffee00c0ffee00-18446744073709551615".into(),
            at: u64::MAX,
            body: r#"{"type":"peer.joined","identity":{"name":"a \"quoted\" name"}}"#.into(),
            attempts: u32::MAX,
            next_at: u64::MAX,
            by: "0123456789abcdef0123456789abcdef".into(),
            lone: true,
        };
        let stored = serde_json::to_string(&pending).unwrap().len();
        assert!(
            stored <= pending.stored_len(),
            "{stored} > {}",
            pending.stored_len()
        );
        assert!(pending.stored_len() - stored < 48, "too generous: {stored}");
    }

    #[test]
    fn only_the_due_head_is_sent() {
        let p = |id: &str, next_at| Pending {
            id: id.into(),
            at: 0,
            body: String::new(),
            attempts: 0,
            next_at,
            by: String::new(),
            lone: false,
        };
        let outbox = [p("a", 10), p("b", 0)];
        assert_eq!(due(&outbox, 9), None, "b waits behind a");
        assert_eq!(due(&outbox, 10).map(|p| p.id.as_str()), Some("a"));
        assert_eq!(due(&[], 10), None);
    }

    #[test]
    fn settings_need_an_http_url_and_a_secret() {
        assert_eq!(parse_settings(None, Some("s")), Ok(None));
        assert_eq!(parse_settings(Some("  "), None), Ok(None));
        let ok = parse_settings(Some(" https://hooks.example/duet?x=1 "), Some(" s ")).unwrap();
        assert_eq!(
            ok,
            Some(WebhookSettings {
                url: "https://hooks.example/duet?x=1".into(),
                secret: "s".into()
            })
        );
        assert!(
            !format!("{ok:?}").contains("\"s\""),
            "the secret stays out of Debug"
        );
        for bad in [
            "ftp://x",
            "https://",
            "hooks.example",
            "http://a b",
            "https://u@h/",
        ] {
            assert!(parse_settings(Some(bad), Some("s")).is_err(), "{bad}");
        }
        let no_secret = parse_settings(Some("http://127.0.0.1:9/"), None).unwrap_err();
        assert!(no_secret.contains("WEBHOOK_SECRET"), "{no_secret}");
    }
}
