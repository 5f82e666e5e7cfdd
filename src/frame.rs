//! What one client frame on an open socket does: the hot path. It reads only the registry
//! (never storage): a relay or a pong is decided here; a `leave` or a rate-limit close hands
//! a [`RoomEvent`] on to the stored room; `ice-servers` waits for Cloudflare's servers, which
//! only the shell can fetch, and is then answered by [`IceRequest::reply`].

use crate::config::Config;
use crate::effect::SocketEffect;
use crate::intake::{intake, Incoming, Intake};
use crate::protocol::{relay_text, ClientFrame, CloseCode, ErrorCode, ServerFrame, PONG_TEXT};
use crate::registry::{Entry, Registry};
use crate::room::RoomEvent;
use crate::turn::{self, CloudflareIce};
use serde_json::value::RawValue;

/// The outcome of one frame.
#[derive(Debug)]
pub enum Step {
    /// Perform these; the stored room is not involved.
    Done(Vec<SocketEffect>),
    /// Perform these, then apply the event to the stored room.
    Room(Vec<SocketEffect>, RoomEvent),
    /// Fetch Cloudflare's TURN servers where configured, then perform the request's reply.
    Ice(IceRequest),
}

/// A client's `ice-servers` frame, to be answered once Cloudflare's servers are at hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IceRequest {
    pub conn: String,
    /// The slot's client id, which minted credentials name.
    pub client_id: String,
}

impl IceRequest {
    /// The `ice-servers` frame with credentials minted at `now` for the same client id, as a
    /// welcome at `now` would carry them.
    pub fn reply(&self, config: &Config, cloudflare: &CloudflareIce, now: u64) -> SocketEffect {
        let ice = turn::ice_servers(
            &config.ice_servers,
            &config.turn,
            cloudflare,
            &self.client_id,
            now,
        );
        SocketEffect::Send {
            conn: self.conn.clone(),
            frame: ServerFrame::IceServers {
                ice_servers: ice.servers,
                expires_at: ice.expires_at,
            },
        }
    }
}

/// Handles a frame from the socket at `index` of `registry`.
pub fn on_frame<S>(
    registry: &mut Registry<S>,
    index: usize,
    incoming: Incoming<'_>,
    now: u64,
    config: &Config,
) -> Step {
    let Some(entry) = registry.entry_mut(index) else {
        return Step::Done(Vec::new());
    };
    // The socket id is cloned only off the relay path.
    match intake(incoming, &mut entry.limiter, now, config) {
        Intake::Accept(ClientFrame::Message(data)) => {
            // The first message of a socket confirms it (`SocketInfo::confirmed`), once.
            let confirm = (!entry.info.confirmed).then(|| {
                entry.info.confirmed = true;
                attach(entry)
            });
            let mut out = relay(registry, index, data);
            out.extend(confirm);
            Step::Done(out)
        }
        Intake::Accept(ClientFrame::Ping) => {
            entry.info.last_ping = Some(now);
            let pong = SocketEffect::SendText {
                conn: entry.info.conn.clone(),
                text: PONG_TEXT.to_owned(),
            };
            Step::Done(vec![pong, attach(entry)])
        }
        Intake::Accept(ClientFrame::IceServers) => Step::Ice(IceRequest {
            conn: entry.info.conn.clone(),
            client_id: entry.info.client_id.clone(),
        }),
        Intake::Accept(ClientFrame::Leave) => Step::Room(
            Vec::new(),
            RoomEvent::Leave {
                conn: entry.info.conn.clone(),
            },
        ),
        Intake::Accept(ClientFrame::Report(report)) => Step::Room(
            Vec::new(),
            RoomEvent::Report {
                conn: entry.info.conn.clone(),
                report,
            },
        ),
        Intake::Refuse(code) => refused(entry, code),
        Intake::RefuseAndClose { error, close } => refused_and_closed(entry, error, close),
    }
}

/// A refused frame: its `error`. A refusal by the rate limit is kept in the attachment, so a
/// wake does not hand a flooder a full bucket.
fn refused<S>(entry: &mut Entry<S>, code: ErrorCode) -> Step {
    let error = SocketEffect::Send {
        conn: entry.info.conn.clone(),
        frame: code.to_frame(),
    };
    match code {
        ErrorCode::RateLimited => Step::Done(vec![error, attach(entry)]),
        _ => Step::Done(vec![error]),
    }
}

/// A refused frame that closes the socket: `error`, the close, and the slot goes away with
/// the spent bucket.
fn refused_and_closed<S>(entry: &Entry<S>, error: ErrorCode, close: CloseCode) -> Step {
    let conn = entry.info.conn.clone();
    Step::Room(
        vec![
            SocketEffect::Send {
                conn: conn.clone(),
                frame: error.to_frame(),
            },
            SocketEffect::Close {
                conn: conn.clone(),
                code: close,
            },
        ],
        RoomEvent::ServerClosed {
            conn,
            bucket: entry.limiter.clone(),
        },
    )
}

/// Writes the socket's attachment with its bucket as it is now.
fn attach<S>(entry: &mut Entry<S>) -> SocketEffect {
    entry.info.bucket = Some(entry.limiter.clone());
    SocketEffect::Attach {
        conn: entry.info.conn.clone(),
        info: entry.info.clone(),
    }
}

/// `data` to every other open socket of the room, or `no-peer` back to the sender. The relay
/// text is written once and moved into the last (almost always the only) send.
fn relay<S>(registry: &Registry<S>, index: usize, data: &RawValue) -> Vec<SocketEffect> {
    let entries = registry.entries();
    let Some(me) = entries.get(index) else {
        return Vec::new();
    };
    let mut others = entries
        .iter()
        .enumerate()
        .filter(|&(i, _)| i != index)
        .map(|(_, e)| &e.info.conn)
        .peekable();
    if others.peek().is_none() {
        return vec![SocketEffect::Send {
            conn: me.info.conn.clone(),
            frame: ErrorCode::NoPeer.to_frame(),
        }];
    }
    let mut text = relay_text(&me.info.client_id, data);
    let mut out = Vec::with_capacity(1);
    while let Some(conn) = others.next() {
        let text = match others.peek() {
            Some(_) => text.clone(),
            None => std::mem::take(&mut text),
        };
        out.push(SocketEffect::SendText {
            conn: conn.clone(),
            text,
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::SocketInfo;

    fn registry(conns: &[&str]) -> Registry<u8> {
        let sockets = conns.iter().enumerate().map(|(i, c)| {
            let info = SocketInfo {
                conn: (*c).into(),
                client_id: format!("id-{c}"),
                room: "r".into(),
                connected_at: 0,
                last_ping: None,
                bucket: None,
                confirmed: true,
            };
            (i as u8, info)
        });
        Registry::new(sockets, 3, 0)
    }

    fn texts(step: &Step) -> Vec<String> {
        let effects = match step {
            Step::Done(e) | Step::Room(e, _) => e,
            Step::Ice(_) => return vec![format!("{step:?}")],
        };
        effects
            .iter()
            .map(|e| match e {
                SocketEffect::Send { conn, frame } => format!("{conn} {}", frame.to_text()),
                SocketEffect::SendText { conn, text } => format!("{conn} {text}"),
                SocketEffect::Close { conn, code } => format!("{conn} close {}", code.code()),
                SocketEffect::Attach { conn, info } => {
                    format!("{conn} attach {:?}", info.last_ping)
                }
                other => format!("{other:?}"),
            })
            .collect()
    }

    fn text(t: &str) -> Incoming<'_> {
        Incoming::Text(t)
    }

    /// The step for text `t` from socket `index`, at time 0 with the default configuration.
    fn frame_from(r: &mut Registry<u8>, index: usize, t: &str) -> Step {
        on_frame(r, index, text(t), 0, &Config::default())
    }

    #[test]
    fn a_message_goes_to_the_other_socket_only() {
        let mut r = registry(&["a", "b"]);
        let step = frame_from(&mut r, 0, r#"{"type":"message","data":[1]}"#);
        assert_eq!(
            texts(&step),
            [r#"b {"type":"message","from":"id-a","data":[1]}"#]
        );
    }

    #[test]
    fn with_a_replaced_socket_still_open_both_others_get_it() {
        let mut r = registry(&["a", "b", "c"]);
        let step = frame_from(&mut r, 1, r#"{"type":"message","data":"x"}"#);
        assert_eq!(
            texts(&step),
            [
                r#"a {"type":"message","from":"id-b","data":"x"}"#,
                r#"c {"type":"message","from":"id-b","data":"x"}"#
            ]
        );
    }

    #[test]
    fn the_first_message_of_a_socket_confirms_it_once() {
        let mut r = registry(&["a", "b"]);
        r.entry_mut(0).unwrap().info.confirmed = false;
        let message = r#"{"type":"message","data":1}"#;
        let step = frame_from(&mut r, 0, message);
        let relayed = r#"b {"type":"message","from":"id-a","data":1}"#;
        assert_eq!(texts(&step), [relayed, "a attach None"]);
        assert!(r.entries()[0].info.confirmed);
        assert_eq!(texts(&frame_from(&mut r, 0, message)), [relayed]);
    }

    #[test]
    fn a_report_goes_to_the_room_and_a_bad_one_is_refused() {
        let mut r = registry(&["a", "b"]);
        let good = r#"{"type":"report","outcome":"failed","connectMs":5,"iceRestarts":0}"#;
        match frame_from(&mut r, 0, good) {
            Step::Room(effects, RoomEvent::Report { conn, report }) => {
                assert!(effects.is_empty());
                assert_eq!((conn.as_str(), report.connect_ms), ("a", 5));
            }
            other => panic!("{other:?}"),
        }
        let bad = r#"{"type":"report","outcome":"failed","connectMs":-5,"iceRestarts":0}"#;
        let refused = texts(&frame_from(&mut r, 0, bad));
        assert!(
            refused[0].starts_with(r#"a {"type":"error","code":"bad-report""#),
            "{refused:?}"
        );
    }

    #[test]
    fn alone_a_message_gets_no_peer() {
        let mut r = registry(&["a"]);
        let step = frame_from(&mut r, 0, r#"{"type":"message","data":1}"#);
        assert_eq!(
            texts(&step),
            [
                r#"a {"type":"error","code":"no-peer","message":"no other peer is connected to receive this message"}"#
            ]
        );
    }

    #[test]
    fn a_ping_is_answered_and_remembered() {
        let mut r = registry(&["a", "b"]);
        let step = on_frame(
            &mut r,
            1,
            text(r#"{"type": "ping"}"#),
            7,
            &Config::default(),
        );
        assert_eq!(texts(&step), [r#"b {"type":"pong"}"#, "b attach Some(7)"]);
        assert_eq!(r.entries()[1].info.last_ping, Some(7));
    }

    #[test]
    fn leave_goes_to_the_room() {
        let mut r = registry(&["a"]);
        let step = on_frame(
            &mut r,
            0,
            text(r#"{"type":"leave"}"#),
            0,
            &Config::default(),
        );
        assert!(
            matches!(step, Step::Room(ref e, RoomEvent::Leave { ref conn }) if e.is_empty() && conn == "a")
        );
    }

    #[test]
    fn ice_servers_asks_for_the_slots_client_id() {
        let mut r = registry(&["a", "b"]);
        let step = frame_from(&mut r, 1, r#"{"type":"ice-servers","extra":[1]}"#);
        let Step::Ice(request) = step else {
            panic!("{step:?}")
        };
        assert_eq!(
            request,
            IceRequest {
                conn: "b".into(),
                client_id: "id-b".into(),
            }
        );
    }

    /// A configuration with shared-secret TURN (TTL 600 s) and `ICE_SERVERS` of one STUN URL.
    fn turn_config() -> Config {
        let pairs = [
            ("ICE_SERVERS", r#"[{"urls":"stun:s"}]"#),
            ("TURN_SECRET", "duet-test-secret"),
            ("TURN_URLS", "turn:t.example:3478"),
            ("TURN_TTL_SECONDS", "600"),
        ];
        let (config, warnings) = Config::from_vars(crate::vars::vars(&pairs));
        assert!(warnings.is_empty(), "{warnings:?}");
        config
    }

    fn reply_text(request: &IceRequest, config: &Config, cf: &CloudflareIce, now: u64) -> String {
        match request.reply(config, cf, now) {
            SocketEffect::Send { conn, frame } => format!("{conn} {}", frame.to_text()),
            other => format!("{other:?}"),
        }
    }

    #[test]
    fn the_reply_mints_for_the_same_client_id_now() {
        let request = IceRequest {
            conn: "b".into(),
            client_id: "0123456789abcdef".into(),
        };
        let config = turn_config();
        let none = CloudflareIce::default();
        assert_eq!(
            reply_text(&request, &config, &none, 1_700_003_000_500),
            concat!(
                r#"b {"type":"ice-servers","iceServers":[{"urls":"stun:s"},"#,
                r#"{"credential":"JnNF6StTy5wLjPzYAdZ1LRn7n7o=","urls":["turn:t.example:3478"],"#,
                r#""username":"1700003600:0123456789abcdef"}],"expiresAt":1700003600000}"#
            )
        );
        // A second later, a later expiry in the username and in expiresAt.
        let later = reply_text(&request, &config, &none, 1_700_003_001_000);
        assert!(later.contains(r#""username":"1700003601:0123456789abcdef""#));
        assert!(later.ends_with(r#""expiresAt":1700003601000}"#));
    }

    #[test]
    fn the_reply_with_static_servers_only_never_expires() {
        let request = IceRequest {
            conn: "a".into(),
            client_id: "c".into(),
        };
        assert_eq!(
            reply_text(&request, &Config::default(), &CloudflareIce::default(), 5),
            r#"a {"type":"ice-servers","iceServers":[{"urls":"stun:stun.cloudflare.com:3478"}],"expiresAt":null}"#
        );
    }

    #[test]
    fn the_reply_with_cloudflare_carries_its_expiry() {
        let request = IceRequest {
            conn: "a".into(),
            client_id: "c".into(),
        };
        let cf = CloudflareIce {
            servers: vec![serde_json::json!({"urls":"turn:cf","username":"u","credential":"k"})],
            expires_at: Some(9_000),
        };
        assert_eq!(
            reply_text(&request, &Config::default(), &cf, 5),
            r#"a {"type":"ice-servers","iceServers":[{"urls":"stun:stun.cloudflare.com:3478"},{"credential":"k","urls":"turn:cf","username":"u"}],"expiresAt":9000}"#
        );
    }

    #[test]
    fn ice_servers_frames_count_against_the_bucket() {
        let config = Config {
            rate_limit_burst: 2,
            rate_limit_per_sec: 0.001,
            ..Config::default()
        };
        let mut r = registry(&["a"]);
        for _ in 0..2 {
            let step = on_frame(&mut r, 0, text(r#"{"type":"ice-servers"}"#), 0, &config);
            assert!(matches!(step, Step::Ice(_)), "{step:?}");
        }
        let step = on_frame(&mut r, 0, text(r#"{"type":"ice-servers"}"#), 0, &config);
        assert!(texts(&step)[0].contains("rate-limited"), "{step:?}");
    }

    #[test]
    fn a_flood_is_refused_then_closed_with_4429() {
        let config = Config {
            rate_limit_burst: 3,
            rate_limit_per_sec: 0.001,
            ..Config::default()
        };
        let mut r = registry(&["a", "b"]);
        for _ in 0..3 {
            on_frame(&mut r, 0, text("{}"), 0, &config);
        }
        for _ in 0..3 {
            let step = on_frame(&mut r, 0, text("{}"), 0, &config);
            assert!(texts(&step)[0].contains("rate-limited"));
            // The spent bucket goes into the attachment.
            assert!(texts(&step)[1].starts_with("a attach"));
        }
        assert_eq!(
            r.entries()[0].info.bucket.as_ref(),
            Some(&r.entries()[0].limiter)
        );
        let step = on_frame(&mut r, 0, text("{}"), 0, &config);
        assert_eq!(texts(&step)[1], "a close 4429");
        assert!(
            matches!(step, Step::Room(_, RoomEvent::ServerClosed { ref conn, .. }) if conn == "a")
        );
    }
}
