//! Server frames with the fields the soak checks (ids, tokens, `resumed`, `from`, codes),
//! where [`crate::frame::Frame`] keeps only the type.

use duet::protocol::ServerFrameType;
use serde::Deserialize;
use serde_json::value::RawValue;

/// One server frame.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `created` (`resumed` false) or `joined`.
    Welcome(Welcome),
    PeerJoined {
        client_id: String,
        resumed: bool,
    },
    Ready {
        initiator: String,
    },
    Message {
        from: String,
        /// The relayed `data`, as JSON text.
        data: String,
    },
    PeerAway {
        client_id: String,
    },
    PeerLeft {
        client_id: String,
        reason: String,
    },
    Full,
    Error {
        code: String,
    },
    Pong,
    /// A frame of another type, or one without the fields its type needs.
    Other(String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Welcome {
    pub created: bool,
    pub room: String,
    pub client_id: String,
    pub resume_token: String,
    pub peers: Vec<String>,
    pub resumed: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Wire<'a> {
    #[serde(rename = "type")]
    kind: String,
    room: Option<String>,
    client_id: Option<String>,
    resume_token: Option<String>,
    peers: Option<Vec<String>>,
    resumed: Option<bool>,
    initiator: Option<String>,
    from: Option<String>,
    #[serde(borrow)]
    data: Option<&'a RawValue>,
    code: Option<String>,
    reason: Option<String>,
}

impl Event {
    pub fn parse(text: &str) -> Event {
        let Ok(w) = serde_json::from_str::<Wire<'_>>(text) else {
            return Event::Other("invalid".into());
        };
        let kind = ServerFrameType::parse(&w.kind);
        let incomplete = || Event::Other(format!("{} (incomplete)", w.kind));
        match kind {
            Some(t @ (ServerFrameType::Created | ServerFrameType::Joined)) => {
                match (w.room, w.client_id, w.resume_token, w.peers) {
                    (Some(room), Some(client_id), Some(resume_token), Some(peers)) => {
                        Event::Welcome(Welcome {
                            created: t == ServerFrameType::Created,
                            room,
                            client_id,
                            resume_token,
                            peers,
                            resumed: w.resumed.unwrap_or(false),
                        })
                    }
                    _ => incomplete(),
                }
            }
            Some(ServerFrameType::PeerJoined) => match (w.client_id, w.resumed) {
                (Some(client_id), Some(resumed)) => Event::PeerJoined { client_id, resumed },
                _ => incomplete(),
            },
            Some(ServerFrameType::Ready) => match w.initiator {
                Some(initiator) => Event::Ready { initiator },
                None => incomplete(),
            },
            Some(ServerFrameType::Message) => match (w.from, w.data) {
                (Some(from), Some(data)) => Event::Message {
                    from,
                    data: data.get().to_owned(),
                },
                _ => incomplete(),
            },
            Some(ServerFrameType::PeerAway) => match w.client_id {
                Some(client_id) => Event::PeerAway { client_id },
                None => incomplete(),
            },
            Some(ServerFrameType::PeerLeft) => match (w.client_id, w.reason) {
                (Some(client_id), Some(reason)) => Event::PeerLeft { client_id, reason },
                _ => incomplete(),
            },
            Some(ServerFrameType::Full) => Event::Full,
            Some(ServerFrameType::Error) => Event::Error {
                code: w.code.unwrap_or_default(),
            },
            Some(ServerFrameType::Pong) => Event::Pong,
            // The soak never asks for fresh ICE servers: an answer would be unexplained.
            Some(ServerFrameType::IceServers) | None => Event::Other(w.kind),
        }
    }

    /// The frame's type, for labels.
    pub fn kind(&self) -> String {
        match self {
            Event::Welcome(w) if w.created => "created".into(),
            Event::Welcome(w) if w.resumed => "joined (resumed)".into(),
            Event::Welcome(_) => "joined".into(),
            Event::PeerJoined { resumed: true, .. } => "peer-joined (resumed)".into(),
            Event::PeerJoined { .. } => "peer-joined".into(),
            Event::Ready { .. } => "ready".into(),
            Event::Message { .. } => "message".into(),
            Event::PeerAway { .. } => "peer-away".into(),
            Event::PeerLeft { reason, .. } => format!("peer-left ({reason})"),
            Event::Full => "full".into(),
            Event::Error { code } => format!("error:{code}"),
            Event::Pong => "pong".into(),
            Event::Other(kind) => kind.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welcomes() {
        let created = Event::parse(
            r#"{"type":"created","version":1,"room":"r","clientId":"a","resumeToken":"t","iceServers":[],"maxPeers":2,"maxMessageBytes":65536,"peers":[]}"#,
        );
        assert_eq!(
            created,
            Event::Welcome(Welcome {
                created: true,
                room: "r".into(),
                client_id: "a".into(),
                resume_token: "t".into(),
                peers: vec![],
                resumed: false,
            })
        );
        let resumed = Event::parse(
            r#"{"type":"joined","version":1,"room":"r","clientId":"b","resumeToken":"u","iceServers":[],"maxPeers":2,"maxMessageBytes":65536,"peers":["a"],"resumed":true}"#,
        );
        assert_eq!(resumed.kind(), "joined (resumed)");
        let Event::Welcome(w) = resumed else {
            panic!("not a welcome");
        };
        assert_eq!(
            (w.client_id.as_str(), w.peers.len(), w.resumed),
            ("b", 1, true)
        );
        assert_eq!(
            Event::parse(r#"{"type":"joined","room":"r"}"#),
            Event::Other("joined (incomplete)".into())
        );
    }

    #[test]
    fn the_other_frames() {
        let cases: &[(&str, Event)] = &[
            (
                r#"{"type":"peer-joined","room":"r","clientId":"b","resumed":true}"#,
                Event::PeerJoined {
                    client_id: "b".into(),
                    resumed: true,
                },
            ),
            (
                r#"{"type":"ready","room":"r","initiator":"a","peers":["a","b"]}"#,
                Event::Ready {
                    initiator: "a".into(),
                },
            ),
            (
                r#"{"type":"message","from":"a","data":{"seq":1, "x":[1]}}"#,
                Event::Message {
                    from: "a".into(),
                    data: r#"{"seq":1, "x":[1]}"#.into(),
                },
            ),
            (
                r#"{"type":"peer-away","room":"r","clientId":"a"}"#,
                Event::PeerAway {
                    client_id: "a".into(),
                },
            ),
            (
                r#"{"type":"peer-left","room":"r","clientId":"a","reason":"timeout"}"#,
                Event::PeerLeft {
                    client_id: "a".into(),
                    reason: "timeout".into(),
                },
            ),
            (r#"{"type":"full","room":"r","maxPeers":2}"#, Event::Full),
            (
                r#"{"type":"error","code":"no-peer","message":"…"}"#,
                Event::Error {
                    code: "no-peer".into(),
                },
            ),
            (r#"{"type":"pong"}"#, Event::Pong),
            (r#"{"type":"future"}"#, Event::Other("future".into())),
            ("nope", Event::Other("invalid".into())),
        ];
        for (text, event) in cases {
            assert_eq!(&Event::parse(text), event, "{text}");
        }
        assert_eq!(
            Event::parse(r#"{"type":"peer-left","room":"r","clientId":"a","reason":"timeout"}"#)
                .kind(),
            "peer-left (timeout)"
        );
    }
}
