//! What one client frame on an open socket does: the hot path. It reads only the registry
//! (never storage): a relay or a pong is decided here; a `leave` or a rate-limit close hands
//! a [`RoomEvent`] on to the stored room.

use crate::config::Config;
use crate::effect::Effect;
use crate::intake::{intake, Incoming, Intake};
use crate::protocol::{relay_text, ClientFrame, ErrorCode, PONG_TEXT};
use crate::registry::{Entry, Registry};
use crate::room::RoomEvent;
use serde_json::value::RawValue;

/// The outcome of one frame.
#[derive(Debug)]
pub enum Step {
    /// Perform these; the stored room is not involved.
    Done(Vec<Effect>),
    /// Perform these, then apply the event to the stored room.
    Room(Vec<Effect>, RoomEvent),
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
        Intake::Accept(ClientFrame::Message(data)) => Step::Done(relay(registry, index, data)),
        Intake::Accept(ClientFrame::Ping) => {
            entry.info.last_ping = Some(now);
            let pong = Effect::SendText {
                conn: entry.info.conn.clone(),
                text: PONG_TEXT.to_owned(),
            };
            Step::Done(vec![pong, attach(entry)])
        }
        Intake::Accept(ClientFrame::Leave) => Step::Room(
            Vec::new(),
            RoomEvent::Leave {
                conn: entry.info.conn.clone(),
            },
        ),
        Intake::Refuse(code) => {
            let error = Effect::Send {
                conn: entry.info.conn.clone(),
                frame: code.to_frame(),
            };
            // A refusal by the rate limit is kept in the attachment, so a wake does not
            // hand a flooder a full bucket.
            match code {
                ErrorCode::RateLimited => Step::Done(vec![error, attach(entry)]),
                _ => Step::Done(vec![error]),
            }
        }
        Intake::RefuseAndClose { error, close } => {
            let conn = entry.info.conn.clone();
            Step::Room(
                vec![
                    Effect::Send {
                        conn: conn.clone(),
                        frame: error.to_frame(),
                    },
                    Effect::Close {
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
    }
}

/// Writes the socket's attachment with its bucket as it is now.
fn attach<S>(entry: &mut Entry<S>) -> Effect {
    entry.info.bucket = Some(entry.limiter.clone());
    Effect::Attach {
        conn: entry.info.conn.clone(),
        info: entry.info.clone(),
    }
}

/// `data` to every other open socket of the room, or `no-peer` back to the sender. The relay
/// text is written once and moved into the last (almost always the only) send.
fn relay<S>(registry: &Registry<S>, index: usize, data: &RawValue) -> Vec<Effect> {
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
        return vec![Effect::Send {
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
        out.push(Effect::SendText {
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
            };
            (i as u8, info)
        });
        Registry::new(sockets, 3, 0)
    }

    fn texts(step: &Step) -> Vec<String> {
        let effects = match step {
            Step::Done(e) | Step::Room(e, _) => e,
        };
        effects
            .iter()
            .map(|e| match e {
                Effect::Send { conn, frame } => format!("{conn} {}", frame.to_text()),
                Effect::SendText { conn, text } => format!("{conn} {text}"),
                Effect::Close { conn, code } => format!("{conn} close {}", code.code()),
                Effect::Attach { conn, info } => format!("{conn} attach {:?}", info.last_ping),
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
