//! Wire types of protocol v1: frames from client to server (`ClientFrame`) and from server to
//! client (`ServerFrame`), the error and close codes, and the one place where a refused frame
//! becomes an `error` frame. See `docs/protocol.md` for the normative text.

use crate::report::Report;
use crate::ticket::Identity;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::BTreeMap;

/// The protocol version announced in every welcome frame.
pub const VERSION: u8 = 1;
/// A room holds at most this many slots.
pub const MAX_PEERS: u8 = 2;
/// The exact keep-alive text the runtime answers without waking the object.
pub const PING_TEXT: &str = r#"{"type":"ping"}"#;
/// The exact auto-response to [`PING_TEXT`].
pub const PONG_TEXT: &str = r#"{"type":"pong"}"#;

/// A frame sent by a client, borrowed from the text it was parsed from.
#[derive(Debug)]
pub enum ClientFrame<'a> {
    /// Relay `data` to the other peer, byte for byte.
    Message(&'a RawValue),
    /// Release my slot now.
    Leave,
    /// Keep-alive that did not match [`PING_TEXT`] exactly, so the object answers it.
    Ping,
    /// Mint fresh ICE server credentials for me (answered with `ice-servers`).
    IceServers,
    /// How my call's media connected, or that it failed (`crate::report`).
    Report(Report),
}

impl PartialEq for ClientFrame<'_> {
    fn eq(&self, other: &Self) -> bool {
        match (self, other) {
            (ClientFrame::Message(a), ClientFrame::Message(b)) => a.get() == b.get(),
            (ClientFrame::Leave, ClientFrame::Leave)
            | (ClientFrame::Ping, ClientFrame::Ping)
            | (ClientFrame::IceServers, ClientFrame::IceServers) => true,
            (ClientFrame::Report(a), ClientFrame::Report(b)) => a == b,
            _ => false,
        }
    }
}

#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: Option<Cow<'a, str>>,
    #[serde(default, borrow, deserialize_with = "present")]
    data: Option<&'a RawValue>,
}

/// Keeps `"data": null` apart from a missing `data`: null is a value a client may relay.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

impl<'a> ClientFrame<'a> {
    /// Parses one text frame; unknown fields are ignored.
    pub fn parse(text: &'a str) -> Result<Self, ErrorCode> {
        // serde's derived structs also read an array (`["message",1]`); a frame is an object.
        if !text
            .trim_start_matches([' ', '\t', '\n', '\r'])
            .starts_with('{')
        {
            return Err(ErrorCode::BadMessage);
        }
        let envelope: Envelope<'a> =
            serde_json::from_str(text).map_err(|_| ErrorCode::BadMessage)?;
        match envelope.kind.as_deref() {
            Some("message") => envelope
                .data
                .map(ClientFrame::Message)
                .ok_or(ErrorCode::BadMessage),
            Some("leave") => Ok(ClientFrame::Leave),
            Some("ping") => Ok(ClientFrame::Ping),
            Some("ice-servers") => Ok(ClientFrame::IceServers),
            // Read again, with its own fields: rare, so the hot path's envelope stays small.
            Some("report") => Report::parse(text).map(ClientFrame::Report),
            _ => Err(ErrorCode::BadMessage),
        }
    }
}

impl ClientFrame<'_> {
    /// The frame as a client sends it; [`ClientFrame::parse`] reads it back. A ping is
    /// [`PING_TEXT`], the spelling the runtime answers without waking the object.
    pub fn to_text(&self) -> String {
        match self {
            ClientFrame::Message(data) => {
                let data = data.get();
                let mut text = String::with_capacity(data.len() + 26);
                text.push_str(r#"{"type":"message","data":"#);
                text.push_str(data);
                text.push('}');
                text
            }
            ClientFrame::Leave => r#"{"type":"leave"}"#.to_owned(),
            ClientFrame::Ping => PING_TEXT.to_owned(),
            ClientFrame::IceServers => r#"{"type":"ice-servers"}"#.to_owned(),
            ClientFrame::Report(report) => report.to_text(),
        }
    }
}

/// Why a slot was released, as told to the remaining peer in `peer-left`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LeaveReason {
    /// The peer sent `leave` or closed its socket with 1000.
    Leave,
    /// The socket dropped and `RESUME_GRACE_MS` is 0.
    Closed,
    /// The socket dropped and nobody resumed the slot within the grace.
    Timeout,
    /// The peer stopped pinging and a newcomer needed its slot.
    Stale,
    /// The operator ended the call (`POST /admin/rooms/{room}/end`).
    Ended,
    /// The operator removed the peer (`POST /admin/rooms/{room}/kick`).
    Kicked,
}

impl LeaveReason {
    pub fn as_str(self) -> &'static str {
        match self {
            LeaveReason::Leave => "leave",
            LeaveReason::Closed => "closed",
            LeaveReason::Timeout => "timeout",
            LeaveReason::Stale => "stale",
            LeaveReason::Ended => "ended",
            LeaveReason::Kicked => "kicked",
        }
    }
}

/// Reads a list of ICE servers as a client receives it. Through `serde_json::Value`: an
/// internally tagged enum buffers its fields, and a buffered field cannot become a `RawValue`
/// directly. Only clients read these frames, so the server's hot path never comes here.
fn raw_json<'de, D: Deserializer<'de>>(d: D) -> Result<Box<RawValue>, D::Error> {
    let value = serde_json::Value::deserialize(d)?;
    serde_json::value::to_raw_value(&value).map_err(serde::de::Error::custom)
}

/// The first frame on every admitted socket: `created` or `joined`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Welcome {
    pub version: u8,
    pub room: String,
    pub client_id: String,
    pub resume_token: String,
    #[serde(deserialize_with = "raw_json")]
    pub ice_servers: Box<RawValue>,
    /// When the earliest credential in `ice_servers` expires (ms since the epoch); `None`
    /// (`null`) when none does.
    pub ice_servers_expire_at: Option<u64>,
    pub max_peers: u8,
    /// The largest client frame the server accepts (`MAX_MESSAGE_BYTES`).
    pub max_message_bytes: usize,
    pub peers: Vec<String>,
    /// Only in `joined`: whether this is a resume of the slot.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resumed: Option<bool>,
    /// With join tickets: who you are, as your ticket says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identity: Option<Identity>,
    /// With join tickets: who the others are, by client id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer_identities: Option<BTreeMap<String, Identity>>,
}

/// A frame sent by the server. Field names are camelCase on the wire. Clients read it with
/// `serde_json::from_str`; the relayed `message` ([`Relayed`]), the `pong` ([`PONG_TEXT`]) and
/// the in-band refusal ([`RefusalFrame`]) are written elsewhere and read with their own types.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum ServerFrame {
    /// You opened an empty room (`resumed` is absent).
    Created(Welcome),
    /// You entered a room that had a slot taken, or you resumed your slot.
    Joined(Welcome),
    /// Another peer joined or resumed beside you.
    #[serde(rename_all = "camelCase")]
    PeerJoined {
        room: String,
        client_id: String,
        resumed: bool,
        /// With join tickets: who joined.
        #[serde(skip_serializing_if = "Option::is_none")]
        identity: Option<Identity>,
    },
    /// Both peers are connected; `initiator` makes the offer.
    Ready {
        room: String,
        initiator: String,
        peers: [String; 2],
    },
    /// The other peer's socket dropped; its slot is held for the resume grace.
    #[serde(rename_all = "camelCase")]
    PeerAway { room: String, client_id: String },
    /// The other peer's slot was released.
    #[serde(rename_all = "camelCase")]
    PeerLeft {
        room: String,
        client_id: String,
        reason: LeaveReason,
    },
    /// The operator ended the call; a 4410 close follows.
    Ended { room: String, reason: String },
    /// The operator removed you from the room; a 4403 close follows.
    Kicked { room: String, reason: String },
    /// The room has no slot for you; a 4409 close follows.
    #[serde(rename_all = "camelCase")]
    Full { room: String, max_peers: u8 },
    /// A frame was refused.
    Error { code: ErrorCode, message: String },
    /// The answer to the client frame `ice-servers`: the list with credentials minted now.
    #[serde(rename_all = "camelCase")]
    IceServers {
        #[serde(deserialize_with = "raw_json")]
        ice_servers: Box<RawValue>,
        /// As `iceServersExpireAt` in the welcome.
        expires_at: Option<u64>,
    },
}

/// The relayed `message` frame ([`relay_text`] writes it) as a client reads it: `data` is the
/// sender's JSON text, byte for byte.
#[derive(Debug, Deserialize)]
pub struct Relayed<'a> {
    #[serde(borrow)]
    pub from: Cow<'a, str>,
    #[serde(borrow)]
    pub data: &'a RawValue,
}

/// The one frame of an upgrade refused in-band (`route::HttpError::frame` writes it; see
/// `docs/protocol.md`, "In-band refusals"): an `error` whose `code` is the HTTP answer's, and
/// `retryAfter` (seconds) with `too-many-joins`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RefusalFrame {
    pub code: String,
    pub message: String,
    #[serde(default)]
    pub retry_after: Option<u64>,
}

/// The `type` of every frame the server sends: the [`ServerFrame`]s, the relayed `message`
/// and the `pong`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServerFrameType {
    Created,
    Joined,
    PeerJoined,
    Ready,
    PeerAway,
    PeerLeft,
    Full,
    Error,
    Message,
    Pong,
    IceServers,
    Ended,
    Kicked,
}

impl ServerFrameType {
    pub const ALL: [ServerFrameType; 13] = [
        ServerFrameType::Created,
        ServerFrameType::Joined,
        ServerFrameType::PeerJoined,
        ServerFrameType::Ready,
        ServerFrameType::PeerAway,
        ServerFrameType::PeerLeft,
        ServerFrameType::Full,
        ServerFrameType::Error,
        ServerFrameType::Message,
        ServerFrameType::Pong,
        ServerFrameType::IceServers,
        ServerFrameType::Ended,
        ServerFrameType::Kicked,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServerFrameType::Created => "created",
            ServerFrameType::Joined => "joined",
            ServerFrameType::PeerJoined => "peer-joined",
            ServerFrameType::Ready => "ready",
            ServerFrameType::PeerAway => "peer-away",
            ServerFrameType::PeerLeft => "peer-left",
            ServerFrameType::Full => "full",
            ServerFrameType::Error => "error",
            ServerFrameType::Message => "message",
            ServerFrameType::Pong => "pong",
            ServerFrameType::IceServers => "ice-servers",
            ServerFrameType::Ended => "ended",
            ServerFrameType::Kicked => "kicked",
        }
    }

    /// The type named `name` on the wire.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == name)
    }
}

impl ServerFrame {
    /// The frame's `type`.
    pub fn frame_type(&self) -> ServerFrameType {
        match self {
            ServerFrame::Created(_) => ServerFrameType::Created,
            ServerFrame::Joined(_) => ServerFrameType::Joined,
            ServerFrame::PeerJoined { .. } => ServerFrameType::PeerJoined,
            ServerFrame::Ready { .. } => ServerFrameType::Ready,
            ServerFrame::PeerAway { .. } => ServerFrameType::PeerAway,
            ServerFrame::PeerLeft { .. } => ServerFrameType::PeerLeft,
            ServerFrame::Full { .. } => ServerFrameType::Full,
            ServerFrame::Error { .. } => ServerFrameType::Error,
            ServerFrame::IceServers { .. } => ServerFrameType::IceServers,
            ServerFrame::Ended { .. } => ServerFrameType::Ended,
            ServerFrame::Kicked { .. } => ServerFrameType::Kicked,
        }
    }

    pub fn to_text(&self) -> String {
        // Serializing these types cannot fail: every map key is a string and RawValue is valid JSON.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// The relay frame, written around the sender's `data` without parsing it again. Written by
/// hand: this runs for every relayed message, and serde_json would serialize the `RawValue`
/// through its map machinery.
pub fn relay_text(from: &str, data: &RawValue) -> String {
    let data = data.get();
    let mut text = String::with_capacity(from.len() + data.len() + 40);
    text.push_str(r#"{"type":"message","from":"#);
    if from.bytes().all(|b| b.is_ascii_alphanumeric()) {
        text.push('"');
        text.push_str(from);
        text.push('"');
    } else {
        // Client ids are hex; anything else is escaped as any JSON string would be.
        text.push_str(&serde_json::to_string(from).unwrap_or_default());
    }
    text.push_str(r#","data":"#);
    text.push_str(data);
    text.push('}');
    text
}

/// Why a client frame was refused. Each becomes an `error` frame; the socket stays open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorCode {
    BadMessage,
    UnsupportedBinary,
    TooLarge,
    RateLimited,
    NoPeer,
    BadReport,
}

impl ErrorCode {
    /// Every code, for the wire-constant checks of other languages.
    pub const ALL: [ErrorCode; 6] = [
        ErrorCode::BadMessage,
        ErrorCode::UnsupportedBinary,
        ErrorCode::TooLarge,
        ErrorCode::RateLimited,
        ErrorCode::NoPeer,
        ErrorCode::BadReport,
    ];

    /// The code as written on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => "bad-message",
            ErrorCode::UnsupportedBinary => "unsupported-binary",
            ErrorCode::TooLarge => "too-large",
            ErrorCode::RateLimited => "rate-limited",
            ErrorCode::NoPeer => "no-peer",
            ErrorCode::BadReport => "bad-report",
        }
    }

    fn message(self) -> &'static str {
        match self {
            ErrorCode::BadMessage => {
                "expected a JSON object with type \"message\" (with data), \"leave\", \"ping\", \"ice-servers\" or \"report\""
            }
            ErrorCode::UnsupportedBinary => "binary frames are not supported; send JSON text",
            ErrorCode::TooLarge => "frame exceeds MAX_MESSAGE_BYTES",
            ErrorCode::RateLimited => "too many frames; slow down",
            ErrorCode::NoPeer => "no other peer is connected to receive this message",
            ErrorCode::BadReport => {
                "a report needs outcome \"connected\" (with path and transport) or \"failed\", connectMs and iceRestarts in range, in at most 512 bytes"
            }
        }
    }

    /// The one place a refusal becomes an `error` frame.
    pub fn to_frame(self) -> ServerFrame {
        ServerFrame::Error {
            code: self,
            message: self.message().to_owned(),
        }
    }
}

/// A close frame carries at most 123 bytes of reason (RFC 6455, 5.5).
pub const MAX_CLOSE_REASON_BYTES: usize = 123;

/// How the server answers a client's close frame: with the client's code where a server may
/// send it (1005 and 1006 only describe what happened, so 1000 instead), and the reason cut to
/// what a close frame can carry, at a character boundary.
pub fn close_reply(code: usize, reason: &str) -> (u16, &str) {
    let code = u16::try_from(code).unwrap_or(1006);
    let code = if matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        code
    } else {
        1000
    };
    let mut end = reason.len().min(MAX_CLOSE_REASON_BYTES);
    while !reason.is_char_boundary(end) {
        end -= 1;
    }
    (code, &reason[..end])
}

/// Close codes the server uses, each with its fixed reason text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseCode {
    /// After `leave`.
    Left,
    /// The slot was resumed on another socket.
    Replaced,
    /// The socket stopped pinging and its slot was given to a newcomer.
    Stale,
    /// The room has no slot.
    RoomFull,
    /// Too many frames refused by the rate limit.
    RateLimited,
    /// An upgrade refused in-band for its join ticket: missing, invalid or expired.
    TicketRefused,
    /// An upgrade refused in-band for any other reason of this client's (a ticket for another
    /// room).
    Forbidden,
    /// An upgrade refused in-band over the join limit; the `error` frame before it carries
    /// `retryAfter`.
    TooManyJoins,
    /// An upgrade refused in-band because the service's configuration is unusable
    /// (`config-error`): a server-side problem that only its operator can fix.
    Misconfigured,
    /// The operator ended the call (after `ended`).
    Ended,
    /// The operator removed this peer (after `kicked`). The same code as `Forbidden` and
    /// `Banned`: "not you, not here"; the reason tells them apart.
    Kicked,
    /// A join or resume refused in-band while its identity is banned from the room (after an
    /// `error` frame with code `banned`).
    Banned,
}

impl CloseCode {
    /// Every code, for the wire-constant checks of other languages.
    pub const ALL: [CloseCode; 12] = [
        CloseCode::Left,
        CloseCode::Replaced,
        CloseCode::Stale,
        CloseCode::RoomFull,
        CloseCode::RateLimited,
        CloseCode::TicketRefused,
        CloseCode::Forbidden,
        CloseCode::TooManyJoins,
        CloseCode::Misconfigured,
        CloseCode::Ended,
        CloseCode::Kicked,
        CloseCode::Banned,
    ];

    pub fn code(self) -> u16 {
        match self {
            CloseCode::Left => 1000,
            CloseCode::Replaced => 4000,
            CloseCode::Stale => 4408,
            CloseCode::RoomFull => 4409,
            CloseCode::RateLimited => 4429,
            CloseCode::TicketRefused => 4401,
            CloseCode::Forbidden => 4403,
            // The same code as `RateLimited`: both say "too much from you, wait"; the reason
            // and the `error` frame before it tell them apart.
            CloseCode::TooManyJoins => 4429,
            CloseCode::Misconfigured => 4503,
            CloseCode::Ended => 4410,
            CloseCode::Kicked | CloseCode::Banned => 4403,
        }
    }

    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Left => "left",
            CloseCode::Replaced => "replaced",
            CloseCode::Stale => "stale",
            CloseCode::RoomFull => "room full",
            CloseCode::RateLimited => "rate limited",
            CloseCode::TicketRefused => "ticket refused",
            CloseCode::Forbidden => "forbidden",
            CloseCode::TooManyJoins => "too many joins",
            CloseCode::Misconfigured => "misconfigured",
            CloseCode::Ended => "ended",
            CloseCode::Kicked => "kicked",
            CloseCode::Banned => "banned",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn parses_client_frames() {
        assert_eq!(
            ClientFrame::parse(r#"{"type":"leave"}"#),
            Ok(ClientFrame::Leave)
        );
        assert_eq!(
            ClientFrame::parse(r#" { "type" : "ping", "extra": [1] } "#),
            Ok(ClientFrame::Ping)
        );
        let text = r#"{"type":"message","data": {"sdp" : "v=0\r\n", "n":[1, 2]}}"#;
        match ClientFrame::parse(text) {
            Ok(ClientFrame::Message(data)) => {
                assert_eq!(data.get(), r#"{"sdp" : "v=0\r\n", "n":[1, 2]}"#)
            }
            other => panic!("{other:?}"),
        }
        match ClientFrame::parse(r#"{"type":"message","data":null}"#) {
            Ok(ClientFrame::Message(data)) => assert_eq!(data.get(), "null"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            ClientFrame::parse(r#"{"type":"ice-servers","data":{"ignored":true}}"#),
            Ok(ClientFrame::IceServers)
        );
        // An escaped type name is still the same name.
        assert_eq!(
            ClientFrame::parse(r#"{"type":"le\u0061ve"}"#),
            Ok(ClientFrame::Leave)
        );
    }

    #[test]
    fn refuses_bad_frames() {
        for bad in [
            "",
            "not json",
            "[]",
            "\"message\"",
            "42",
            "null",
            "{}",
            r#"{"type":7}"#,
            r#"{"type":"shout"}"#,
            r#"{"type":"message"}"#,
            r#"{"type":"Message","data":1}"#,
            r#"{"type":"message","data":1"#,
            r#"{"type":"leave","type":"ping"}"#,
            r#"{"type":"ice_servers"}"#,
            r#"{"type":"iceServers"}"#,
            r#"{"type":"ice-servers""#,
            r#"["ice-servers"]"#,
            r#"["leave"]"#,
            r#"["message",1]"#,
        ] {
            assert_eq!(
                ClientFrame::parse(bad),
                Err(ErrorCode::BadMessage),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn error_code_names_match_serde() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(&code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }

    #[test]
    fn close_replies_are_valid_close_frames() {
        assert_eq!(close_reply(1000, "bye"), (1000, "bye"));
        assert_eq!(close_reply(4001, ""), (4001, ""));
        for undescribed in [1005, 1006, 1015, 999, 5000, 70_000] {
            assert_eq!(close_reply(undescribed, "x").0, 1000, "{undescribed}");
        }
        let long = "é".repeat(100);
        let (_, cut) = close_reply(1000, &long);
        assert_eq!(cut.len(), 122);
        assert!(long.starts_with(cut));
        let ascii = "a".repeat(200);
        let (_, cut) = close_reply(1000, &ascii);
        assert_eq!(cut.len(), MAX_CLOSE_REASON_BYTES);
    }

    #[test]
    fn every_server_frame_has_a_listed_type() {
        let frames = [
            ServerFrame::Full {
                room: "r".into(),
                max_peers: 2,
            },
            ErrorCode::NoPeer.to_frame(),
            ServerFrame::PeerAway {
                room: "r".into(),
                client_id: "a".into(),
            },
            ServerFrame::IceServers {
                ice_servers: raw("[]"),
                expires_at: None,
            },
        ];
        let texts: Vec<String> = frames
            .iter()
            .map(ServerFrame::to_text)
            .chain([PONG_TEXT.into(), relay_text("a", &raw("1"))])
            .collect();
        for text in texts {
            let value: serde_json::Value = serde_json::from_str(&text).unwrap();
            let name = value["type"].as_str().unwrap();
            assert_eq!(ServerFrameType::parse(name).map(|t| t.as_str()), Some(name));
        }
        assert_eq!(ServerFrameType::parse("ping"), None);
    }

    #[test]
    fn relay_keeps_data_verbatim() {
        let data = raw(r#"{"a" : [1,2 , "é\u00e9"]}"#);
        assert_eq!(
            relay_text("c1", &data),
            r#"{"type":"message","from":"c1","data":{"a" : [1,2 , "é\u00e9"]}}"#
        );
    }

    #[test]
    fn relay_escapes_an_id_that_needs_it() {
        let data = raw("1");
        assert_eq!(
            relay_text("a\"b", &data),
            r#"{"type":"message","from":"a\"b","data":1}"#
        );
    }

    #[test]
    fn server_frames_match_the_wire_format() {
        let created = ServerFrame::Created(Welcome {
            version: VERSION,
            room: "r".into(),
            client_id: "a".into(),
            resume_token: "t".into(),
            ice_servers: raw(r#"[{"urls":"stun:x"}]"#),
            ice_servers_expire_at: None,
            max_peers: MAX_PEERS,
            max_message_bytes: 65_536,
            peers: vec![],
            resumed: None,
            identity: None,
            peer_identities: None,
        });
        assert_eq!(
            created.to_text(),
            r#"{"type":"created","version":1,"room":"r","clientId":"a","resumeToken":"t","iceServers":[{"urls":"stun:x"}],"iceServersExpireAt":null,"maxPeers":2,"maxMessageBytes":65536,"peers":[]}"#
        );
        let left = ServerFrame::PeerLeft {
            room: "r".into(),
            client_id: "b".into(),
            reason: LeaveReason::Timeout,
        };
        assert_eq!(
            left.to_text(),
            r#"{"type":"peer-left","room":"r","clientId":"b","reason":"timeout"}"#
        );
        assert_eq!(
            ErrorCode::NoPeer.to_frame().to_text(),
            r#"{"type":"error","code":"no-peer","message":"no other peer is connected to receive this message"}"#
        );
        let ready = ServerFrame::Ready {
            room: "r".into(),
            initiator: "a".into(),
            peers: ["a".into(), "b".into()],
        };
        assert_eq!(
            ready.to_text(),
            r#"{"type":"ready","room":"r","initiator":"a","peers":["a","b"]}"#
        );
        let full = ServerFrame::Full {
            room: "r".into(),
            max_peers: 2,
        };
        assert_eq!(full.to_text(), r#"{"type":"full","room":"r","maxPeers":2}"#);
        let ice = ServerFrame::IceServers {
            ice_servers: raw(r#"[{"urls":"turn:t","username":"1700003600:a","credential":"c"}]"#),
            expires_at: Some(1_700_003_600_000),
        };
        assert_eq!(
            ice.to_text(),
            r#"{"type":"ice-servers","iceServers":[{"urls":"turn:t","username":"1700003600:a","credential":"c"}],"expiresAt":1700003600000}"#
        );
        let static_only = ServerFrame::IceServers {
            ice_servers: raw("[]"),
            expires_at: None,
        };
        assert_eq!(
            static_only.to_text(),
            r#"{"type":"ice-servers","iceServers":[],"expiresAt":null}"#
        );
    }

    #[test]
    fn client_frames_read_back_as_written() {
        use crate::report::{Outcome, Path, Report, Transport};
        let data = raw(r#"{"sdp" : "v=0", "n":[1, 2]}"#);
        let frames = [
            ClientFrame::Message(&data),
            ClientFrame::Leave,
            ClientFrame::Ping,
            ClientFrame::IceServers,
            ClientFrame::Report(Report {
                outcome: Outcome::Connected {
                    path: Path::Relay,
                    transport: Transport::Tls,
                },
                connect_ms: 1834,
                ice_restarts: 2,
            }),
            ClientFrame::Report(Report {
                outcome: Outcome::Failed,
                connect_ms: 30_000,
                ice_restarts: 0,
            }),
        ];
        for frame in frames {
            let text = frame.to_text();
            assert_eq!(ClientFrame::parse(&text).as_ref(), Ok(&frame), "{text}");
        }
        assert_eq!(ClientFrame::Ping.to_text(), PING_TEXT);
        assert_eq!(
            ClientFrame::Message(&data).to_text(),
            r#"{"type":"message","data":{"sdp" : "v=0", "n":[1, 2]}}"#
        );
    }

    /// One of every server frame, with every optional field both present and absent.
    fn every_server_frame() -> Vec<ServerFrame> {
        let identity = Identity {
            sub: "u1".into(),
            name: Some("Ann".into()),
            meta: Some(serde_json::json!({"k": [1]})),
        };
        let welcome = Welcome {
            version: VERSION,
            room: "r".into(),
            client_id: "a".into(),
            resume_token: "t".into(),
            ice_servers: raw(r#"[{"urls":"stun:x"}]"#),
            ice_servers_expire_at: Some(5),
            max_peers: MAX_PEERS,
            max_message_bytes: 65_536,
            peers: vec!["b".into()],
            resumed: Some(true),
            identity: Some(identity.clone()),
            peer_identities: Some(BTreeMap::from([("b".to_owned(), identity.clone())])),
        };
        vec![
            ServerFrame::Created(Welcome {
                resumed: None,
                identity: None,
                peer_identities: None,
                ..welcome.clone()
            }),
            ServerFrame::Joined(welcome),
            ServerFrame::PeerJoined {
                room: "r".into(),
                client_id: "b".into(),
                resumed: false,
                identity: Some(identity),
            },
            ServerFrame::Ready {
                room: "r".into(),
                initiator: "a".into(),
                peers: ["a".into(), "b".into()],
            },
            ServerFrame::PeerAway {
                room: "r".into(),
                client_id: "b".into(),
            },
            ServerFrame::PeerLeft {
                room: "r".into(),
                client_id: "b".into(),
                reason: LeaveReason::Stale,
            },
            ServerFrame::Full {
                room: "r".into(),
                max_peers: 2,
            },
            ErrorCode::TooLarge.to_frame(),
            ServerFrame::IceServers {
                ice_servers: raw(r#"[{"urls":["turn:t"],"username":"1:a","credential":"c"}]"#),
                expires_at: Some(1_000),
            },
            ServerFrame::Ended {
                room: "r".into(),
                reason: "over".into(),
            },
            ServerFrame::Kicked {
                room: "r".into(),
                reason: String::new(),
            },
        ]
    }

    #[test]
    fn server_frames_read_back_as_written() {
        let frames = every_server_frame();
        // `message` and `pong` are written by hand, never as a `ServerFrame`.
        let types: std::collections::BTreeSet<_> =
            frames.iter().map(|f| f.frame_type().as_str()).collect();
        assert_eq!(types.len(), ServerFrameType::ALL.len() - 2, "{types:?}");
        for frame in frames {
            let text = frame.to_text();
            let read: ServerFrame = serde_json::from_str(&text).unwrap();
            assert_eq!(
                text.split('"').nth(3),
                Some(read.frame_type().as_str()),
                "{text}"
            );
            // As JSON values: a list of ICE servers read back has its keys in sorted order.
            let value = |t: &str| serde_json::from_str::<serde_json::Value>(t).unwrap();
            assert_eq!(value(&read.to_text()), value(&text), "{text}");
        }
        // Unknown fields are ignored, as every client must.
        let ready: ServerFrame = serde_json::from_str(
            r#"{"type":"ready","room":"r","initiator":"a","peers":["a","b"],"new":1}"#,
        )
        .unwrap();
        assert!(matches!(ready, ServerFrame::Ready { .. }));
    }

    #[test]
    fn relayed_messages_read_back_verbatim() {
        for data in [r#"{"a" : [1,2 , "é\u00e9"]}"#, "null", "1.50"] {
            let text = relay_text("c1", &raw(data));
            let read: Relayed = serde_json::from_str(&text).unwrap();
            assert_eq!((read.from.as_ref(), read.data.get()), ("c1", data));
        }
        let text = relay_text("a\"b", &raw("1"));
        let read: Relayed = serde_json::from_str(&text).unwrap();
        assert_eq!(read.from, "a\"b");
    }
}
