//! Client frames on an open socket: `frame::on_frame`, so `intake` (rate limit, binary, size,
//! syntax), `rate` and the relay.
//!
//! Input: an optional first line `#<max bytes> <burst> <per sec> <step ms> <peers>` (any field
//! that does not parse keeps its default: 64, 4, 2, 100, 2), then the frames one socket sends,
//! separated by RS (0x1e), one every `step ms`. A frame that is not UTF-8 arrives as a binary
//! frame. The room has `peers` open sockets (1 to 3: a replaced socket may still be open).
//!
//! Checked for every frame, against the order of checks in docs/protocol.md ("Errors"):
//! - the outcome is exactly the oracle's: `rate-limited` when the bucket refused, else
//!   `unsupported-binary`, `too-large` exactly above the limit, `bad-message` exactly when the
//!   text is not one JSON object with one string `type` of `message` (with one `data`),
//!   `leave` or `ping`, else a relay (or `no-peer` alone), a pong, or a leave; a `report` goes
//!   to the room or is refused with `bad-report`;
//! - a relay goes to every other open socket and never back, as
//!   `{"type":"message","from":<id>,"data":<data>}` with `data` the sender's bytes exactly;
//! - the bucket: the first `burst` frames pass; a frame a whole token's time after the last one
//!   passes; after a refusal, frames pass at no more than the rate; a 4429 close comes only
//!   after more than `burst` refusals within 10 s, and nothing is handled after it; with no
//!   time between frames, exactly `burst` pass, `burst` are refused and the next is closed;
//! - a refusal by the rate limit and a pong write the attachment with the bucket as it is.

use super::json::{self, Members};
use duet::config::{Config, MAX_MESSAGE_BYTES_CEILING};
use duet::effect::SocketEffect;
use duet::frame::{on_frame, Step};
use duet::intake::Incoming;
use duet::protocol::{CloseCode, ErrorCode, ServerFrame, PONG_TEXT};
use duet::rate::STRIKE_WINDOW_MS;
use duet::registry::{Registry, SocketInfo};
use duet::room::RoomEvent;

const IDS: [&str; 3] = ["0123456789abcdef", "fedcba9876543210", "00000000000000ff"];
const CONNS: [&str; 3] = ["s0", "s1", "s2"];
const START_MS: u64 = 1_700_000_000_000;
/// Frames are separated by ASCII RS, which JSON text cannot contain unescaped.
const SEPARATOR: u8 = 0x1e;

/// What one frame came to.
#[derive(Debug, PartialEq)]
enum Outcome<'a> {
    RateLimited,
    /// Refused by the rate limit and closed with 4429.
    Closed,
    Binary,
    TooLarge,
    Bad,
    /// Relayed with this `data`.
    Relay(&'a str),
    NoPeer,
    Pong,
    Leave,
    /// Fresh ICE servers requested.
    Ice,
    /// A `report`: handed to the room, or refused with `bad-report` (its fields are
    /// `crate::report`'s unit tests').
    Report,
}

struct Setup {
    config: Config,
    step_ms: u64,
    peers: usize,
}

fn setup(header: Option<&str>) -> Setup {
    let mut fields = header.unwrap_or("").split_whitespace();
    let mut next = || fields.next().unwrap_or("");
    let max = next().parse().unwrap_or(64usize);
    let burst = next().parse().unwrap_or(4u32);
    let per_sec = next().parse().unwrap_or(2.0f64);
    let step_ms = next().parse().unwrap_or(100u64);
    let peers = next().parse().unwrap_or(2usize);
    Setup {
        config: Config {
            max_message_bytes: max.clamp(1, MAX_MESSAGE_BYTES_CEILING),
            rate_limit_burst: burst.clamp(1, 1_000_000),
            // The domain Config::from_vars accepts.
            rate_limit_per_sec: if per_sec.is_finite() && per_sec > 0.0 && per_sec <= 1e6 {
                per_sec
            } else {
                2.0
            },
            ..Config::default()
        },
        step_ms: step_ms.min(86_400_000),
        peers: peers.clamp(1, 3),
    }
}

/// What the docs say a frame that passed the rate limit comes to.
fn expected<'a>(incoming: Incoming<'a>, setup: &Setup) -> Outcome<'a> {
    let text = match incoming {
        Incoming::Binary => return Outcome::Binary,
        Incoming::Text(text) => text,
    };
    if text.len() > setup.config.max_message_bytes {
        return Outcome::TooLarge;
    }
    let Some(members) = Members::of(text) else {
        return Outcome::Bad;
    };
    let (types, data) = (members.all("type"), members.all("data"));
    if types.len() != 1 || data.len() > 1 {
        return Outcome::Bad;
    }
    match json::string(types[0]).as_deref() {
        Some("message") => match data.first() {
            Some(data) => {
                if setup.peers == 1 {
                    Outcome::NoPeer
                } else {
                    Outcome::Relay(data.get())
                }
            }
            None => Outcome::Bad,
        },
        Some("leave") => Outcome::Leave,
        Some("ping") => Outcome::Pong,
        Some("ice-servers") => Outcome::Ice,
        Some("report") => Outcome::Report,
        _ => Outcome::Bad,
    }
}

/// What `step` did, checking the shape of its effects on the way.
fn observed<'s>(
    step: &'s Step,
    registry: &Registry<usize>,
    now: u64,
    setup: &Setup,
) -> Outcome<'s> {
    let me = &registry.entries()[0];
    let error_to_me = |effect: &SocketEffect| match effect {
        SocketEffect::Send {
            conn,
            frame: ServerFrame::Error { code, .. },
        } if conn == CONNS[0] => Some(*code),
        _ => None,
    };
    let my_attachment = |effect: &SocketEffect| match effect {
        SocketEffect::Attach { conn, info } if conn == CONNS[0] => {
            assert_eq!(info, &me.info, "the attachment is the registry's");
            assert_eq!(
                info.bucket.as_ref(),
                Some(&me.limiter),
                "with the bucket as it is"
            );
            true
        }
        _ => false,
    };
    match step {
        Step::Done(effects) => match effects.as_slice() {
            [error, attach] if error_to_me(error) == Some(ErrorCode::RateLimited) => {
                assert!(my_attachment(attach), "{effects:?}");
                Outcome::RateLimited
            }
            [SocketEffect::SendText { conn, text }, attach] if conn == CONNS[0] => {
                assert_eq!(text, PONG_TEXT);
                assert!(my_attachment(attach), "{effects:?}");
                assert_eq!(me.info.last_ping, Some(now), "a ping is remembered");
                Outcome::Pong
            }
            [error] if error_to_me(error).is_some() => match error_to_me(error) {
                Some(ErrorCode::BadMessage) => Outcome::Bad,
                Some(ErrorCode::UnsupportedBinary) => Outcome::Binary,
                Some(ErrorCode::TooLarge) => Outcome::TooLarge,
                Some(ErrorCode::NoPeer) => Outcome::NoPeer,
                Some(ErrorCode::BadReport) => Outcome::Report,
                _ => panic!("{effects:?}"),
            },
            [SocketEffect::SendText { text, .. }, ..] => {
                let conns: Vec<&str> = effects
                    .iter()
                    .map(|e| match e {
                        SocketEffect::SendText { conn, text: t } if t == text => conn.as_str(),
                        other => panic!("a relay sends one text only: {other:?}"),
                    })
                    .collect();
                assert_eq!(conns, CONNS[1..setup.peers], "to every other socket");
                let prefix = format!(r#"{{"type":"message","from":"{}","data":"#, IDS[0]);
                let data = text
                    .strip_prefix(&prefix)
                    .and_then(|t| t.strip_suffix('}'))
                    .unwrap_or_else(|| panic!("not a relay frame: {text}"));
                assert!(json::is_json(text), "relayed text is JSON: {text}");
                Outcome::Relay(data)
            }
            other => panic!("unexpected effects {other:?}"),
        },
        Step::Room(effects, event) => match (effects.as_slice(), event) {
            ([], RoomEvent::Leave { conn }) if conn == CONNS[0] => Outcome::Leave,
            ([], RoomEvent::Report { conn, .. }) if conn == CONNS[0] => Outcome::Report,
            (
                [error, SocketEffect::Close {
                    conn,
                    code: CloseCode::RateLimited,
                }],
                RoomEvent::ServerClosed { conn: c, bucket },
            ) if error_to_me(error) == Some(ErrorCode::RateLimited)
                && conn == CONNS[0]
                && c == CONNS[0] =>
            {
                assert_eq!(bucket, &me.limiter, "the slot keeps the spent bucket");
                Outcome::Closed
            }
            other => panic!("unexpected room step {other:?}"),
        },
        Step::Ice(request) => {
            assert_eq!(request.conn, CONNS[0], "for the sender");
            assert_eq!(request.client_id, IDS[0], "with the sender's client id");
            Outcome::Ice
        }
    }
}

pub fn check(data: &[u8]) {
    let (header, frames) = match data.strip_prefix(b"#") {
        Some(rest) => {
            let end = rest.iter().position(|&b| b == b'\n').unwrap_or(rest.len());
            let header = std::str::from_utf8(&rest[..end]).ok();
            (header, rest.get(end + 1..).unwrap_or(&[]))
        }
        None => (None, data),
    };
    let setup = setup(header);
    let (burst, per_sec) = (
        setup.config.rate_limit_burst,
        setup.config.rate_limit_per_sec,
    );
    let sockets = (0..setup.peers).map(|i| {
        let info = SocketInfo {
            conn: CONNS[i].to_owned(),
            client_id: IDS[i].to_owned(),
            room: "room".to_owned(),
            connected_at: START_MS,
            last_ping: None,
            bucket: None,
            // Pinging already: a socket's first message confirming it is the unit tests'.
            confirmed: true,
        };
        (i, info)
    });
    let mut registry = Registry::new(sockets, burst, START_MS);
    // Whether a whole token refills between two frames (with a margin for rounding).
    let refills = setup.step_ms as f64 * per_sec >= 1000.0 * (1.0 + 1e-9);
    let mut refusals: Vec<u64> = Vec::new();
    let mut passed_since_refusal = 0u64;
    for (k, frame) in frames.split(|&b| b == SEPARATOR).enumerate() {
        let now = START_MS + k as u64 * setup.step_ms;
        let incoming = match std::str::from_utf8(frame) {
            Ok(text) => Incoming::Text(text),
            Err(_) => Incoming::Binary,
        };
        let step = on_frame(&mut registry, 0, incoming, now, &setup.config);
        let outcome = observed(&step, &registry, now, &setup);
        if setup.step_ms == 0 {
            // No time passes, so nothing refills: `burst` frames pass, `burst` are refused,
            // the next is closed.
            let limited = matches!(outcome, Outcome::RateLimited | Outcome::Closed);
            assert_eq!(
                limited,
                k as u64 >= u64::from(burst),
                "frame {k} at one instant"
            );
            assert_eq!(outcome == Outcome::Closed, k as u64 == 2 * u64::from(burst));
        }
        match outcome {
            Outcome::RateLimited | Outcome::Closed => {
                assert!(
                    k as u64 >= u64::from(burst),
                    "frame {k} of a full bucket refused"
                );
                assert!(
                    !refills,
                    "refused though a token refilled since the last frame"
                );
                refusals.push(now);
                passed_since_refusal = 0;
            }
            _ => {
                assert_eq!(
                    outcome,
                    expected(incoming, &setup),
                    "frame {k}: {:?}",
                    String::from_utf8_lossy(frame)
                );
                if let Some(&last) = refusals.last() {
                    passed_since_refusal += 1;
                    let refilled = (now - last) as f64 / 1000.0 * per_sec;
                    assert!(
                        (passed_since_refusal as f64) < 1.0 + refilled + 1e-6,
                        "{passed_since_refusal} frames passed {} ms after a refusal",
                        now - last
                    );
                }
            }
        }
        if outcome == Outcome::Closed {
            let recent = refusals
                .iter()
                .filter(|&&t| now - t < STRIKE_WINDOW_MS)
                .count();
            assert!(
                recent as u64 > u64::from(burst),
                "closed after {recent} refusals in 10 s, burst {burst}"
            );
            // The socket is closed: nothing it sent after this is handled.
            break;
        }
    }
}
