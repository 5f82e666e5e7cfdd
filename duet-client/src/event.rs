//! What a client hears: [`Event`], one enum for a single socket ([`crate::Socket`]) and for the
//! reconnecting [`crate::Client`]. Server frames are the server's own types
//! ([`duet::protocol::ServerFrame`]); this module only tells them apart ([`Event::decode`]) and
//! names the close codes and refusals of `docs/protocol.md`.

use duet::protocol::{CloseCode, RefusalFrame, ServerFrame, ServerFrameType};

pub use duet::protocol::Relayed;
use duet::route::HttpError;
use serde::Deserialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::time::Duration;

/// The close code this client closes its own sockets with when it drops them (a dead socket,
/// a connect that took too long): not one of the server's, so the slot becomes away and stays
/// resumable. The same as `CloseCode.CLIENT_DROP` of `duet.js`.
pub const CLIENT_DROP: u16 = 4001;

/// The code a close without a close frame reports (RFC 6455, 7.1.5): the connection was lost.
pub const ABNORMAL: u16 = 1006;

/// One thing that happened, in the order it happened.
#[derive(Debug, Clone)]
pub enum Event {
    /// A frame of protocol v1 from the server: `created`, `joined`, `peer-joined`, `ready`,
    /// `peer-away`, `peer-left`, `full`, `error` (a refused frame; the socket stays open) or
    /// `ice-servers`.
    Frame(ServerFrame),
    /// A message the other peer sent; `data` is its JSON text, byte for byte (with an
    /// end-to-end codec: the opened plaintext).
    Message { from: String, data: Box<RawValue> },
    /// The answer to a keep-alive ping.
    Pong,
    /// The server refused the join in-band (`docs/protocol.md`, "In-band refusals"); the
    /// socket's close (4401, 4403, 4429 or 4503) follows.
    Refused(Refused),
    /// A text frame this version does not know (a newer server's frame type, or not JSON); the
    /// text as received. Clients must ignore what they do not know, so this is no error.
    Unknown(String),
    /// This socket is gone: the server's close frame, or a lost connection (1006).
    SocketClosed(Close),
    /// [`crate::Client`] only: the socket is gone and the next attempt starts after `delay`.
    Reconnecting {
        attempt: u32,
        delay: Duration,
        cause: Close,
    },
    /// [`crate::Client`] only: a new socket got its welcome (after the `Frame` of the
    /// welcome). `resumed`: the same slot and `client_id`, no new `ready` comes; otherwise the
    /// held slot had expired and this is a fresh join.
    Reconnected { resumed: bool, client_id: String },
    /// [`crate::Client`] only: with an end-to-end codec, the other side proved it holds the same
    /// key (its key confirmation opened), once per pairing.
    E2eConfirmed { peer: String },
    /// [`crate::Client`] only: with an end-to-end codec, a message was dropped undelivered, or
    /// the key confirmation failed. `reason` is one of `docs/e2e.md`'s: `not-encrypted`,
    /// `unexpected-envelope`, `malformed`, `undecryptable`, `replayed`, `reflected`,
    /// `key-mismatch`.
    E2eError {
        reason: String,
        from: Option<String>,
        message: String,
    },
    /// [`crate::Client`] only: the connection stopped for good; nothing follows. 1000 after
    /// [`crate::Client::leave`], a final close code of the server (4000, 4401, 4403, 4408,
    /// 4409, 4429 rate limited, 4503), or the last cause when the attempts ran out.
    Closed(Close),
}

/// How a socket ended: the close code and reason, and which of the server's codes it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Close {
    /// The close frame's code; [`ABNORMAL`] (1006) when there was none.
    pub code: u16,
    pub reason: String,
    /// The server's close code this is, told apart by its reason where two share a number
    /// (4429 `rate limited` and `too many joins`); `None` for any other code.
    pub known: Option<CloseCode>,
}

impl Close {
    pub fn new(code: u16, reason: impl Into<String>) -> Close {
        let reason = reason.into();
        let known = CloseCode::ALL
            .into_iter()
            .filter(|c| c.code() == code)
            .min_by_key(|c| c.reason() != reason);
        Close {
            code,
            reason,
            known,
        }
    }

    /// A connection lost without a close frame, with what went wrong.
    pub fn lost(reason: impl Into<String>) -> Close {
        Close::new(ABNORMAL, reason)
    }

    /// Whether trying again cannot help (`docs/client.md`, "Reconnecting and resuming"): the
    /// slot is elsewhere (4000), gone (4408), refused (4409, 4401, 4403, 4503) or closed for
    /// flooding (4429 `rate limited`). A 1000 the client did not ask for with a `leave` is
    /// not final, as in `duet.js`: the client reconnects.
    pub fn is_final(&self) -> bool {
        match self.known {
            Some(CloseCode::TooManyJoins | CloseCode::Left) | None => false,
            Some(_) => true,
        }
    }
}

/// An in-band refusal: the server's code and message, and when it may be tried again.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The refusal, as the server's HTTP error of the same name (`ticket-required`,
    /// `invalid-ticket`, `ticket-expired`, `ticket-wrong-room`, `too-many-joins`,
    /// `config-error`).
    pub code: HttpError,
    pub message: String,
    /// With `too-many-joins`: wait this long before the next attempt.
    pub retry_after: Option<Duration>,
}

/// How [`duet::protocol::relay_text`] starts every relayed message.
const RELAY_HEAD: &str = r#"{"type":"message","from":"#;

/// Just the `type`: which type to read the frame as.
#[derive(Deserialize)]
struct Head<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

impl Event {
    /// Reads one text frame from the server. Never fails: what it cannot read is
    /// [`Event::Unknown`].
    pub fn decode(text: &str) -> Event {
        let unknown = || Event::Unknown(text.to_owned());
        if let Some(m) = relayed(text) {
            return Event::Message {
                from: m.from.into_owned(),
                data: m.data.to_owned(),
            };
        }
        let Ok(head) = serde_json::from_str::<Head>(text) else {
            return unknown();
        };
        match ServerFrameType::parse(&head.kind) {
            Some(ServerFrameType::Message) => match serde_json::from_str::<Relayed>(text) {
                Ok(m) => Event::Message {
                    from: m.from.into_owned(),
                    data: m.data.to_owned(),
                },
                Err(_) => unknown(),
            },
            Some(ServerFrameType::Pong) => Event::Pong,
            Some(ServerFrameType::Error) if refusal_code(head.code.as_deref()).is_some() => {
                match serde_json::from_str::<RefusalFrame>(text) {
                    Ok(r) => refused(r).unwrap_or_else(unknown),
                    Err(_) => unknown(),
                }
            }
            _ => serde_json::from_str::<ServerFrame>(text)
                .map(Event::Frame)
                .unwrap_or_else(|_| unknown()),
        }
    }

    /// The frame's type or the event's name, for labels and logs: `created`, `error:no-peer`,
    /// `refused:ticket-expired`, `closed:4409`, …
    pub fn kind(&self) -> String {
        match self {
            Event::Frame(ServerFrame::Error { code, .. }) => format!("error:{}", code.as_str()),
            Event::Frame(frame) => frame.frame_type().as_str().to_owned(),
            Event::Message { .. } => "message".into(),
            Event::Pong => "pong".into(),
            Event::Refused(r) => format!("refused:{}", r.code.code()),
            Event::Unknown(text) => match serde_json::from_str::<Head>(text) {
                Ok(head) => head.kind.into_owned(),
                Err(_) => "invalid".into(),
            },
            Event::SocketClosed(c) => format!("socket-closed:{}", c.code),
            Event::Reconnecting { .. } => "reconnecting".into(),
            Event::Reconnected { .. } => "reconnected".into(),
            Event::E2eConfirmed { .. } => "e2e-confirmed".into(),
            Event::E2eError { reason, .. } => format!("e2e-error:{reason}"),
            Event::Closed(c) => format!("closed:{}", c.code),
        }
    }
}

/// A relayed `message` as the server writes it ([`duet::protocol::relay_text`]), read in one
/// pass and in place: `from` and `data` borrow `text`, nothing is copied. For a reader of
/// [`crate::Raw`] frames on a hot path (a load generator echoing or checking messages);
/// anything else, a message spelled otherwise too, is `None`: read it with
/// [`Event::decode`].
pub fn relayed(text: &str) -> Option<Relayed<'_>> {
    if !text.starts_with(RELAY_HEAD) {
        return None;
    }
    serde_json::from_str::<Relayed>(text).ok()
}

/// The refusal named `code`: one of the HTTP errors the server also sends in-band.
fn refusal_code(code: Option<&str>) -> Option<HttpError> {
    let code = code?;
    HttpError::ALL
        .into_iter()
        .find(|e| e.close_code().is_some() && e.code() == code)
}

fn refused(frame: RefusalFrame) -> Option<Event> {
    Some(Event::Refused(Refused {
        code: refusal_code(Some(&frame.code))?,
        message: frame.message,
        retry_after: frame.retry_after.map(Duration::from_secs),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet::protocol::{relay_text, ErrorCode, LeaveReason, PONG_TEXT};

    #[test]
    fn every_in_band_refusal_is_read_with_its_code_and_wait() {
        let in_band: Vec<HttpError> = HttpError::ALL
            .into_iter()
            .filter(|e| e.close_code().is_some())
            .collect();
        // The refusals of docs/protocol.md, "In-band refusals" (and any the server adds).
        for code in [
            "ticket-required",
            "invalid-ticket",
            "ticket-expired",
            "ticket-wrong-room",
            "too-many-joins",
            "config-error",
        ] {
            assert!(in_band.iter().any(|e| e.code() == code), "{code}");
        }
        for err in in_band {
            let Event::Refused(refused) = Event::decode(&err.frame()) else {
                panic!("{}: not a refusal", err.code());
            };
            // invalid-ticket is the code of two refusals; both read as the first.
            assert_eq!(refused.code.code(), err.code());
            assert_eq!(refused.code.close_code(), err.close_code());
            assert_eq!(
                refused.retry_after,
                err.retry_after_s().map(Duration::from_secs)
            );
            assert!(!refused.message.is_empty());
        }
        let Event::Refused(r) = Event::decode(&HttpError::TooManyJoins.frame()) else {
            panic!("too-many-joins");
        };
        assert_eq!(r.retry_after, Some(Duration::from_secs(60)));
    }

    #[test]
    fn frame_errors_stay_frames_and_unknown_codes_are_unknown() {
        for code in ErrorCode::ALL {
            let event = Event::decode(&code.to_frame().to_text());
            assert_eq!(event.kind(), format!("error:{}", code.as_str()));
        }
        let future = r#"{"type":"error","code":"from-the-future","message":"m"}"#;
        assert!(matches!(Event::decode(future), Event::Unknown(t) if t == future));
        // An HTTP-only refusal never comes as a frame; read as one, it is unknown.
        let http_only = HttpError::InvalidRoom.frame();
        assert!(matches!(Event::decode(&http_only), Event::Unknown(_)));
    }

    #[test]
    fn messages_pongs_and_frames() {
        let data = RawValue::from_string(r#"{"sdp" : "v=0\r\n"}"#.into()).unwrap();
        match Event::decode(&relay_text("0123456789abcdef", &data)) {
            Event::Message { from, data } => {
                assert_eq!(from, "0123456789abcdef");
                assert_eq!(data.get(), r#"{"sdp" : "v=0\r\n"}"#);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(Event::decode(PONG_TEXT), Event::Pong));
        let left = ServerFrame::PeerLeft {
            room: "r".into(),
            client_id: "b".into(),
            reason: LeaveReason::Timeout,
        };
        match Event::decode(&left.to_text()) {
            Event::Frame(ServerFrame::PeerLeft { reason, .. }) => {
                assert_eq!(reason, LeaveReason::Timeout)
            }
            other => panic!("{other:?}"),
        }
        for (text, kind) in [
            (
                r#"{"type":"from-the-future","room":"r"}"#,
                "from-the-future",
            ),
            (r#"{"type":"message","from":"a"}"#, "message"),
            (r#"{"type":"joined","room":"r"}"#, "joined"),
            ("not json", "invalid"),
            ("[1]", "invalid"),
        ] {
            let event = Event::decode(text);
            assert!(matches!(event, Event::Unknown(_)), "{text}");
            assert_eq!(event.kind(), kind, "{text}");
        }
    }

    #[test]
    fn relayed_messages_are_read_in_place() {
        let data = RawValue::from_string(r#"{"n":[1,2],"s":"é\"x"}"#.into()).unwrap();
        let text = relay_text("0123456789abcdef", &data);
        let m = relayed(&text).unwrap();
        assert_eq!(
            (m.from.as_ref(), m.data.get()),
            ("0123456789abcdef", data.get())
        );
        // Borrowed from the frame, not copied.
        let range = text.as_bytes().as_ptr_range();
        assert!(range.contains(&m.data.get().as_ptr()));
        assert!(matches!(m.from, Cow::Borrowed(_)));
        for other in [
            PONG_TEXT,
            r#"{"from":"a","type":"message","data":1}"#,
            r#"{"type":"message","from":"a"}"#,
            "not json",
        ] {
            assert!(relayed(other).is_none(), "{other}");
        }
    }

    /// Not a check (speed is the benchmark's): `cargo test -p duet-client --release --lib --
    /// --ignored --nocapture relay_read_cost` prints the CPU per relayed message of reading
    /// it as an [`Event`] (one parse, `from` and `data` copied), in place ([`relayed`]), and
    /// in two passes (the type, then the message).
    #[test]
    #[ignore]
    fn relay_read_cost() {
        use std::hint::black_box;
        use std::time::Instant;
        for size in [256, 4096] {
            let data = format!("\"0-{}\"", "x".repeat(size - 32));
            let data = RawValue::from_string(data).unwrap();
            let text = relay_text("0123456789abcdef", &data);
            let rounds = 2_000_000 / (size / 256);
            let time = |read: &dyn Fn(&str) -> usize| {
                let start = Instant::now();
                for _ in 0..rounds {
                    black_box(read(black_box(&text)));
                }
                start.elapsed().as_nanos() as f64 / rounds as f64
            };
            let event = time(&|t| match Event::decode(t) {
                Event::Message { data, .. } => data.get().len(),
                _ => 0,
            });
            let in_place = time(&|t| relayed(t).map_or(0, |m| m.data.get().len()));
            let two_passes = time(&|t| {
                let head: Head = serde_json::from_str(t).unwrap();
                let m: Relayed = serde_json::from_str(t).unwrap();
                head.kind.len() + m.from.into_owned().len() + m.data.to_owned().get().len()
            });
            println!(
                "{} B frame: Event::decode {event:.0} ns, relayed {in_place:.0} ns, \
                 two passes {two_passes:.0} ns",
                text.len()
            );
        }
    }

    #[test]
    fn every_close_code_is_known_by_code_and_reason() {
        for code in CloseCode::ALL {
            let close = Close::new(code.code(), code.reason());
            assert_eq!(close.known, Some(code), "{code:?}");
        }
        // 4429 with another reason is still a 4429 of the server's.
        assert!(Close::new(4429, "").known.is_some());
        assert_eq!(Close::new(CLIENT_DROP, "x").known, None);
        assert_eq!(Close::lost("reset").code, ABNORMAL);
        let is_final = |c: CloseCode| Close::new(c.code(), c.reason()).is_final();
        for c in [
            CloseCode::Replaced,
            CloseCode::Stale,
            CloseCode::RoomFull,
            CloseCode::RateLimited,
            CloseCode::TicketRefused,
            CloseCode::Forbidden,
            CloseCode::Misconfigured,
            CloseCode::Ended,
            CloseCode::Kicked,
            CloseCode::Banned,
        ] {
            assert!(is_final(c), "{c:?}");
        }
        assert!(!is_final(CloseCode::Left) && !is_final(CloseCode::TooManyJoins));
        assert!(!Close::new(4429, "too many joins").is_final());
        assert!(!Close::lost("reset").is_final());
    }
}
