//! The `Room` Durable Object: one per room name. It holds the room's sockets through the
//! hibernation API and applies the decisions of [`crate::room`]. It keeps nothing in memory
//! that the room needs after an eviction: slots are in storage, each socket's identity is in
//! its tag and attachment, and deadlines are in the alarm.

use super::cloudflare_turn;
use super::platform::{self, now_ms, random_hex};
use crate::config::Config;
use crate::intake::{intake, Incoming, Intake};
use crate::protocol::{ClientFrame, CloseCode, ErrorCode, PING_TEXT, PONG_TEXT};
use crate::rate::RateLimiter;
use crate::room::{self, Arrival, Effect, IceServersFor, Join, Live, Timing};
use crate::route::{is_room_name, socket_path_room, UrlParts};
use crate::{token, turn};
use serde::{Deserialize, Serialize};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use worker::{
    console_error, durable_object, worker_sys::WebSocketRequestResponsePair, DurableObject, Env,
    Request, Response, Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

const ROOM_KEY: &str = "room";

/// What a socket carries through hibernation.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SocketInfo {
    conn: String,
    client_id: String,
    room: String,
    /// Last ping the object answered itself (the runtime keeps the auto-response time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last_ping: Option<u64>,
}

#[durable_object]
pub struct Room {
    state: State,
    config: Rc<Config>,
    /// Token buckets by socket id. Memory is enough here: the runtime evicts the object only
    /// after it has been idle for longer than the default bucket takes to refill, so a bucket
    /// lost to eviction would have been full anyway.
    limiters: RefCell<HashMap<String, RateLimiter>>,
    /// Whether this instance has logged its first event (a wake from hibernation shows as one).
    started: Cell<bool>,
    /// The open sockets and who holds them, for the relay path. A cache: dropped by every
    /// event that can change the sockets, rebuilt from the runtime on the next message.
    peers: RefCell<Option<Rc<[Peer]>>>,
}

/// An open socket of this room and its identity.
struct Peer {
    ws: WebSocket,
    conn: String,
    client_id: String,
    room: String,
}

fn same_socket(a: &WebSocket, b: &WebSocket) -> bool {
    let a: &web_sys::WebSocket = a.as_ref();
    let b: &web_sys::WebSocket = b.as_ref();
    AsRef::<wasm_bindgen::JsValue>::as_ref(a) == AsRef::<wasm_bindgen::JsValue>::as_ref(b)
}

fn is_open(ws: &WebSocket) -> bool {
    ws.as_ref().ready_state() == web_sys::WebSocket::OPEN
}

/// Close codes a server may send back; 1005 and 1006 only describe what happened.
fn echo_code(code: usize) -> u16 {
    let code = u16::try_from(code).unwrap_or(1006);
    if matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999) {
        code
    } else {
        1000
    }
}

impl DurableObject for Room {
    fn new(state: State, env: Env) -> Self {
        match WebSocketRequestResponsePair::new(PING_TEXT, PONG_TEXT) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(_) => console_error!(r#"{{"event":"auto-response-unavailable"}}"#),
        }
        Room {
            state,
            config: platform::config(&env),
            limiters: RefCell::default(),
            started: Cell::new(false),
            peers: RefCell::new(None),
        }
    }

    async fn fetch(&self, req: Request) -> Result<Response> {
        let url_text = req.inner().url();
        let Some(url) = UrlParts::split(&url_text) else {
            return Response::error("invalid URL", 400);
        };
        let Some(name) = socket_path_room(url.path).filter(|n| is_room_name(n)) else {
            return Response::error("invalid room", 400);
        };
        self.note_start(name);
        // Any outbound call happens before the room is loaded: from the load on, only storage
        // is awaited, so no other event can interleave with this join.
        let ice_servers = self.ice_servers_for().await;
        let new_token = random_hex(token::TOKEN_BYTES)?;
        let arrival = Arrival {
            conn: random_hex(token::ID_BYTES)?,
            new_client_id: random_hex(token::ID_BYTES)?,
            new_token_hash: token::hash(&new_token),
            new_token,
            resume_hash: token::resume_hash(url.param("resume")),
            ice_servers,
        };
        let conn = arrival.conn.clone();
        let now = now_ms();
        let mut room = self.load().await?.unwrap_or_else(|| room::Room::new(name));
        let before = room.clone();
        let pair = WebSocketPair::new()?;
        match room.join(now, self.timing(), &self.live(), arrival) {
            Join::Full { frame, effects } => {
                // A socket that lives for one frame needs no hibernation, and a plain socket
                // closed here also ends its TCP connection.
                pair.server.accept()?;
                pair.server.send_with_str(frame.to_text())?;
                let code = CloseCode::RoomFull;
                pair.server.close(Some(code.code()), Some(code.reason()))?;
                self.save_if_changed(&before, &room, now).await?;
                self.apply(effects);
            }
            Join::Admitted { client_id, effects } => {
                self.state
                    .accept_websocket_with_tags(&pair.server, &[conn.as_str()]);
                // After the accept: a message handled while this join awaited the TURN API
                // may have rebuilt the cache without the new socket.
                self.peers.replace(None);
                pair.server.serialize_attachment(SocketInfo {
                    conn,
                    client_id,
                    room: room.name.clone(),
                    last_ping: None,
                })?;
                self.save_if_changed(&before, &room, now).await?;
                self.apply(effects);
            }
        }
        Response::from_websocket(pair.client)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        if !is_open(&ws) {
            return Ok(());
        }
        let find = |peers: &Rc<[Peer]>| peers.iter().position(|p| same_socket(&p.ws, &ws));
        let mut peers = self.peers();
        let mut index = find(&peers);
        if index.is_none() {
            // A socket the cache has not seen: rebuild it once from the runtime.
            self.peers.replace(None);
            peers = self.peers();
            index = find(&peers);
        }
        // Still unknown: the socket has no attachment, so it holds no slot.
        let Some(me) = index.map(|i| &peers[i]) else {
            return Ok(());
        };
        self.note_start(&me.room);
        let now = now_ms();
        let incoming = match &message {
            WebSocketIncomingMessage::String(text) => Incoming::Text(text),
            WebSocketIncomingMessage::Binary(_) => Incoming::Binary,
        };
        let decision = {
            let mut limiters = self.limiters.borrow_mut();
            // Looked up by reference: the key is cloned only for a socket's first frame.
            if !limiters.contains_key(&me.conn) {
                let fresh = RateLimiter::new(self.config.rate_limit_burst, now);
                limiters.insert(me.conn.clone(), fresh);
            }
            match limiters.get_mut(&me.conn) {
                Some(limiter) => intake(incoming, limiter, now, &self.config),
                None => return Ok(()),
            }
        };
        match decision {
            Intake::Accept(ClientFrame::Message(data)) => {
                let relayed = crate::protocol::relay_text(&me.client_id, data);
                let mut sent = false;
                for peer in peers.iter().filter(|p| p.conn != me.conn) {
                    if is_open(&peer.ws) {
                        sent |= peer.ws.send_with_str(&relayed).is_ok();
                    }
                }
                if !sent {
                    send(&ws, &ErrorCode::NoPeer.to_frame().to_text());
                }
            }
            Intake::Accept(ClientFrame::Ping) => {
                send(&ws, PONG_TEXT);
                if let Some(mut info) = ws.deserialize_attachment::<SocketInfo>()? {
                    info.last_ping = Some(now);
                    ws.serialize_attachment(&info)?;
                }
            }
            Intake::Accept(ClientFrame::Leave) => {
                self.peers.replace(None);
                self.update(|room, _, _, _| room.leave(&me.conn)).await?;
            }
            Intake::Refuse(code) => send(&ws, &code.to_frame().to_text()),
            Intake::RefuseAndClose => {
                send(&ws, &ErrorCode::RateLimited.to_frame().to_text());
                let code = CloseCode::RateLimited;
                ws.close(Some(code.code()), Some(code.reason()))?;
                self.peers.replace(None);
                self.update(|room, now, timing, _| room.drop_conn(now, timing, &me.conn))
                    .await?;
            }
        }
        Ok(())
    }

    async fn websocket_close(
        &self,
        ws: WebSocket,
        code: usize,
        reason: String,
        _was_clean: bool,
    ) -> Result<()> {
        // Answer the client's close frame. Newer runtimes answer it themselves, and then this
        // call finds the socket closed, which is fine.
        let _ = ws.close(Some(echo_code(code)), Some(reason));
        self.peers.replace(None);
        self.socket_gone(&ws, code).await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.peers.replace(None);
        self.socket_gone(&ws, 1006).await
    }

    async fn alarm(&self) -> Result<Response> {
        self.peers.replace(None);
        let now = now_ms();
        if let Some(mut room) = self.load().await? {
            self.note_start(&room.name);
            let before = room.clone();
            let effects = room.alarm(now, self.timing(), &self.live());
            if room == before {
                // A sweep that found nothing: re-arm the spent alarm, write nothing else.
                if let Some(at) = room.next_alarm(now) {
                    self.state.storage().set_alarm(alarm_time(at)).await?;
                }
            } else {
                self.save(&room, now).await?;
            }
            self.apply(effects);
        }
        Response::empty()
    }
}

impl Room {
    /// The cached peers, rebuilt from the runtime's sockets and their attachments if dropped.
    fn peers(&self) -> Rc<[Peer]> {
        if let Some(peers) = self.peers.borrow().as_ref() {
            return Rc::clone(peers);
        }
        let peers: Rc<[Peer]> = self
            .state
            .get_websockets()
            .into_iter()
            .filter(is_open)
            .filter_map(|ws| {
                let info = ws.deserialize_attachment::<SocketInfo>().ok()??;
                Some(Peer {
                    ws,
                    conn: info.conn,
                    client_id: info.client_id,
                    room: info.room,
                })
            })
            .collect();
        self.peers.replace(Some(Rc::clone(&peers)));
        peers
    }

    /// The welcome frame's ICE servers: `ICE_SERVERS`, then Cloudflare's TURN servers, then a
    /// shared-secret TURN entry minted for the client id the join settles on.
    async fn ice_servers_for(&self) -> IceServersFor {
        let cloudflare = match &self.config.turn.cloudflare {
            Some(turn) => cloudflare_turn::ice_servers(turn).await,
            None => Vec::new(),
        };
        let config = Rc::clone(&self.config);
        let now_s = now_ms() / 1000;
        Box::new(move |client_id: &str| {
            let mut extra = cloudflare;
            if let Some(rest) = &config.turn.rest {
                extra.push(rest.ice_server(client_id, now_s));
            }
            turn::merge(&config.ice_servers, extra)
        })
    }

    fn timing(&self) -> Timing {
        Timing {
            resume_grace_ms: self.config.resume_grace_ms,
            stale_after_ms: self.config.stale_after_ms,
        }
    }

    /// Logs the first event of this instance; with sockets already open, that is a wake.
    fn note_start(&self, room: &str) {
        if !self.started.replace(true) {
            let sockets = self.state.get_websockets().len();
            let event = if sockets > 0 { "wake" } else { "start" };
            platform::log(&room::LogEvent {
                event,
                room: room.to_owned(),
                client_id: None,
                reason: None,
            });
        }
    }

    /// The open slot sockets and their last ping, whoever answered it.
    fn live(&self) -> Live {
        self.state
            .get_websockets()
            .iter()
            .filter(|ws| is_open(ws))
            .filter_map(|ws| {
                let info = ws.deserialize_attachment::<SocketInfo>().ok()??;
                let auto = platform::auto_response_ms(&self.state, ws);
                Some((info.conn, info.last_ping.max(auto)))
            })
            .collect()
    }

    async fn socket_gone(&self, ws: &WebSocket, code: usize) -> Result<()> {
        let Some(info) = ws.deserialize_attachment::<SocketInfo>()? else {
            return Ok(());
        };
        self.note_start(&info.room);
        self.limiters.borrow_mut().remove(&info.conn);
        let code = u16::try_from(code).unwrap_or(1006);
        self.update(|room, now, timing, _| room.closed(now, timing, &info.conn, code))
            .await
    }

    async fn load(&self) -> Result<Option<room::Room>> {
        self.state.storage().get::<room::Room>(ROOM_KEY).await
    }

    /// Loads the room, applies `change`, stores the room if it changed, then performs the
    /// effects (the runtime's output gate holds them until the write is durable).
    async fn update(
        &self,
        change: impl FnOnce(&mut room::Room, u64, Timing, &Live) -> Vec<Effect>,
    ) -> Result<()> {
        let Some(mut room) = self.load().await? else {
            return Ok(());
        };
        let before = room.clone();
        let now = now_ms();
        let effects = change(&mut room, now, self.timing(), &self.live());
        self.save_if_changed(&before, &room, now).await?;
        self.apply(effects);
        Ok(())
    }

    async fn save_if_changed(
        &self,
        before: &room::Room,
        room: &room::Room,
        now: u64,
    ) -> Result<()> {
        if before != room {
            self.save(room, now).await?;
        }
        Ok(())
    }

    /// Stores the room and arms the alarm for its next deadline; an empty room leaves nothing.
    async fn save(&self, room: &room::Room, now: u64) -> Result<()> {
        let storage = self.state.storage();
        match room.next_alarm(now) {
            None => {
                storage.delete_alarm().await?;
                // delete_all(), though dearer than delete(ROOM_KEY) (bench/BASELINE.md): only it
                // also drops the SQLite database's metadata, which would otherwise stay billed
                // for every room name ever used.
                storage.delete_all().await?;
            }
            Some(at) => {
                storage.put(ROOM_KEY, room).await?;
                storage.set_alarm(alarm_time(at)).await?;
            }
        }
        Ok(())
    }

    fn apply(&self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::Send { conn, frame } => {
                    let text = frame.to_text();
                    for ws in self.state.get_websockets_with_tag(&conn) {
                        send(&ws, &text);
                    }
                }
                Effect::Close { conn, code } => {
                    for ws in self.state.get_websockets_with_tag(&conn) {
                        // A socket that is already closing needs nothing more.
                        let _ = ws.close(Some(code.code()), Some(code.reason()));
                    }
                }
                Effect::Log(event) => platform::log(&event),
            }
        }
    }
}

/// An absolute alarm time (an i64 would be taken as an offset from now).
fn alarm_time(at_ms: u64) -> worker::ScheduledTime {
    worker::ScheduledTime::new(js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(
        at_ms as f64,
    )))
}

/// Sends on a socket that may have closed meanwhile; its close event does the bookkeeping.
fn send(ws: &WebSocket, text: &str) {
    let _ = ws.send_with_str(text);
}
