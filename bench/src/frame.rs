//! The frames of protocol v1 (`docs/protocol.md`) as the load generator sees them: server
//! frames classified by type, and the client frames it sends.

use duet::protocol::{ServerFrameType, PING_TEXT};
use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;
use std::borrow::Cow;

/// The exact keep-alive text the runtime answers itself, without waking the room's object.
pub const PING: &str = PING_TEXT;
/// A ping spelled differently, so the room's object answers it (for profiling the object).
pub const OBJECT_PING: &str = r#"{"type":"ping","via":"object"}"#;

/// `{"type":"message","data":` — a message frame is this, the JSON of `data`, and `}`.
const MESSAGE_HEAD: &str = r#"{"type":"message","data":"#;
/// The smallest frame [`message`] builds: room for a 20-digit sequence number.
pub const MIN_MESSAGE_BYTES: usize = 64;

/// A server frame, classified by its `type` (the types are the `duet` crate's).
#[derive(Debug, PartialEq)]
pub enum Frame<'a> {
    /// A relayed message; `data` is the sender's JSON, byte for byte.
    Message {
        data: &'a str,
    },
    Error {
        code: String,
    },
    /// Any other frame of protocol v1.
    Is(ServerFrameType),
    /// A well-formed frame of a type this tool does not know.
    Other(String),
    /// Not a JSON object with a string `type`.
    Invalid,
}

#[derive(Deserialize)]
struct Wire<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
    #[serde(default, borrow)]
    code: Option<Cow<'a, str>>,
}

/// Keeps `"data": null` apart from a missing `data`: null is a value a peer may relay.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> Frame<'a> {
    pub fn classify(text: &'a str) -> Frame<'a> {
        let Ok(wire) = serde_json::from_str::<Wire<'a>>(text) else {
            return Frame::Invalid;
        };
        match ServerFrameType::parse(&wire.kind) {
            Some(ServerFrameType::Message) => match wire.data {
                Some(data) => Frame::Message { data: data.get() },
                None => Frame::Invalid,
            },
            Some(ServerFrameType::Error) => Frame::Error {
                code: wire.code.map(Cow::into_owned).unwrap_or_default(),
            },
            Some(kind) => Frame::Is(kind),
            None => Frame::Other(wire.kind.into_owned()),
        }
    }

    /// The name failures are counted under: the type, `error:<code>` for errors.
    pub fn kind(&self) -> String {
        match self {
            Frame::Message { .. } => ServerFrameType::Message.as_str().into(),
            Frame::Error { code } => format!("error:{code}"),
            Frame::Is(kind) => kind.as_str().into(),
            Frame::Other(kind) => kind.clone(),
            Frame::Invalid => "invalid".into(),
        }
    }
}

/// A `message` frame of exactly `size` bytes (at least [`MIN_MESSAGE_BYTES`]) whose `data` is
/// a string starting with `seq`, padded with `x`.
pub fn message(size: usize, seq: u64) -> String {
    let size = size.max(MIN_MESSAGE_BYTES);
    let mut text = String::with_capacity(size);
    text.push_str(MESSAGE_HEAD);
    text.push('"');
    text.push_str(&seq.to_string());
    text.push('-');
    while text.len() < size - 2 {
        text.push('x');
    }
    text.push_str("\"}");
    text
}

/// The JSON text of the `data` of a frame made by [`message`] (or [`echo`]).
pub fn data_of(message: &str) -> &str {
    message
        .strip_prefix(MESSAGE_HEAD)
        .and_then(|rest| rest.strip_suffix('}'))
        .unwrap_or("")
}

/// The `message` frame that sends `data` (as received) back.
pub fn echo(data: &str) -> String {
    let mut text = String::with_capacity(MESSAGE_HEAD.len() + data.len() + 1);
    text.push_str(MESSAGE_HEAD);
    text.push_str(data);
    text.push('}');
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_every_server_frame() {
        let cases: &[(&str, &str)] = &[
            (
                r#"{"type":"created","version":1,"room":"r","clientId":"a","resumeToken":"t","iceServers":[],"maxPeers":2,"peers":[]}"#,
                "created",
            ),
            (
                r#"{"type":"joined","version":1,"room":"r","clientId":"b","peers":["a"],"resumed":false}"#,
                "joined",
            ),
            (
                r#"{"type":"peer-joined","room":"r","clientId":"b","resumed":false}"#,
                "peer-joined",
            ),
            (
                r#"{"type":"ready","room":"r","initiator":"a","peers":["a","b"]}"#,
                "ready",
            ),
            (r#"{"type":"pong"}"#, "pong"),
            (r#"{"type":"full","room":"r","maxPeers":2}"#, "full"),
            (
                r#"{"type":"peer-away","room":"r","clientId":"a"}"#,
                "peer-away",
            ),
            (
                r#"{"type":"peer-left","room":"r","clientId":"a","reason":"leave"}"#,
                "peer-left",
            ),
            (
                r#"{"type":"error","code":"rate-limited","message":"slow down"}"#,
                "error:rate-limited",
            ),
            (r#"{"type":"future","x":1}"#, "future"),
            (r#"{"type":"message","from":"a"}"#, "invalid"),
            (r#"{"kind":"pong"}"#, "invalid"),
            (r#"[1,2]"#, "invalid"),
            ("not json", "invalid"),
        ];
        for (text, kind) in cases {
            assert_eq!(Frame::classify(text).kind(), *kind, "{text}");
        }
    }

    #[test]
    fn a_relayed_message_keeps_its_data_text() {
        let text = r#"{"type":"message","from":"a","data":{"sdp":"v=0\r\n","n":[1, 2]}}"#;
        match Frame::classify(text) {
            Frame::Message { data } => assert_eq!(data, r#"{"sdp":"v=0\r\n","n":[1, 2]}"#),
            other => panic!("{other:?}"),
        }
        match Frame::classify(r#"{"type":"message","from":"a","data":null}"#) {
            Frame::Message { data } => assert_eq!(data, "null"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn messages_have_the_exact_size_and_round_trip() {
        for size in [MIN_MESSAGE_BYTES, 256, 1024, 65_536] {
            let text = message(size, 42);
            assert_eq!(text.len(), size);
            let data = data_of(&text);
            assert!(data.starts_with("\"42-x"), "{data}");
            // What the server relays, and what the echo of it sends back.
            let relayed =
                format!(r#"{{"type":"message","from":"0123456789abcdef","data":{data}}}"#);
            let Frame::Message { data: got } = Frame::classify(&relayed) else {
                panic!("not a message: {relayed}");
            };
            assert_eq!(got, data);
            assert_eq!(echo(got), text);
        }
        assert_eq!(message(1, u64::MAX).len(), MIN_MESSAGE_BYTES);
    }

    #[test]
    fn pings_are_well_formed() {
        assert_eq!(Frame::classify(PING), Frame::Other("ping".into()));
        assert_eq!(Frame::classify(OBJECT_PING), Frame::Other("ping".into()));
        assert_ne!(PING, OBJECT_PING);
    }
}
