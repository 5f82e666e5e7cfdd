//! The `Room` Durable Object: one per room name. Each handler finds the socket, asks the core
//! ([`crate::frame`], [`crate::room`]) and performs the effects it returns; nothing else
//! touches a socket or storage. It keeps nothing in memory that the room needs after an
//! eviction: slots are in storage, each socket's identity is in its tag and attachment, and
//! deadlines are in the alarm. The registry of open sockets is a cache of the runtime's own
//! list, rebuilt once after a wake.

use super::cloudflare_turn;
use super::platform::{self, now_ms, random_hex};
use super::stored;
use super::webhook as shell_webhook;
use crate::config::Config;
use crate::effect::{Effect, LogEvent};
use crate::frame::{on_frame, Step};
use crate::intake::Incoming;
use crate::protocol::{close_reply, PING_TEXT, PONG_TEXT};
use crate::registry::{Activity, Registry};
use crate::room::{self, Accept, Arrival, Ctx, RoomEvent, RoomState};
use crate::route::{
    decode_identity, is_room_name, socket_path_room, Offered, UrlParts, IDENTITY_HEADER,
    SUBPROTOCOL,
};
use crate::token;
use crate::turn::CloudflareIce;
use crate::webhook::{self, Outcome};
use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use worker::{
    console_error, durable_object, worker_sys::WebSocketRequestResponsePair, DurableObject, Env,
    Request, Response, Result, State, WebSocket, WebSocketIncomingMessage, WebSocketPair,
};

#[durable_object]
pub struct Room {
    state: State,
    config: Rc<Config>,
    /// Whether this instance has logged its first event (a wake from hibernation shows as one).
    started: Cell<bool>,
    /// The open sockets of the room; `None` until first needed after a start or wake.
    sockets: RefCell<Option<Registry<WebSocket>>>,
    /// Whether a webhook delivery round is under way in this instance.
    delivering: Cell<bool>,
}

fn same_socket(a: &WebSocket, b: &WebSocket) -> bool {
    let a: &web_sys::WebSocket = a.as_ref();
    let b: &web_sys::WebSocket = b.as_ref();
    AsRef::<wasm_bindgen::JsValue>::as_ref(a) == AsRef::<wasm_bindgen::JsValue>::as_ref(b)
}

fn is_open(ws: &WebSocket) -> bool {
    ws.as_ref().ready_state() == web_sys::WebSocket::OPEN
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
            started: Cell::new(false),
            sockets: RefCell::new(None),
            delivering: Cell::new(false),
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
        let headers = req.headers();
        let protocols = headers.get("Sec-WebSocket-Protocol")?;
        let offered = Offered::parse(protocols.as_deref());
        // Only the Worker reaches the object, and with tickets it always sets this header.
        let identity = match self.config.join_secrets.0.is_empty() {
            true => None,
            false => headers
                .get(IDENTITY_HEADER)?
                .as_deref()
                .and_then(decode_identity),
        };
        self.note_start(name);
        // Any outbound call happens before the room is loaded: from the load on, only storage
        // is awaited, so no other event can interleave with this join.
        let cloudflare_ice = self.cloudflare_ice().await;
        let new_token = random_hex(token::TOKEN_BYTES)?;
        let arrival = Arrival {
            conn: random_hex(token::ID_BYTES)?,
            new_client_id: random_hex(token::ID_BYTES)?,
            new_token_hash: token::hash(&new_token),
            new_token,
            resume_hash: token::resume_hash(offered.resume.or_else(|| url.param("resume"))),
            cloudflare_ice,
            identity,
        };
        let conn = arrival.conn.clone();
        let stored = self.load().await?;
        let now = now_ms();
        let activity = self.activity();
        let joining = room::on_join(stored, name, arrival, self.ctx(now, &activity));
        let pair = WebSocketPair::new()?;
        match joining.accept {
            Accept::Hibernate(info) => {
                self.state
                    .accept_websocket_with_tags(&pair.server, &[info.conn.as_str()]);
                stored::attach(&pair.server, &info)?;
                self.registry().insert(pair.server.clone(), info, now);
                self.perform(joining.effects, None).await?;
            }
            Accept::Refuse => {
                // A socket that lives for one frame needs no hibernation, and a plain socket
                // closed here also ends its TCP connection.
                pair.server.accept()?;
                self.perform(joining.effects, Some((&conn, &pair.server)))
                    .await?;
            }
        }
        let mut response = Response::from_websocket(pair.client)?;
        if offered.v1 {
            response
                .headers_mut()
                .set("Sec-WebSocket-Protocol", SUBPROTOCOL)?;
        }
        Ok(response)
    }

    async fn websocket_message(
        &self,
        ws: WebSocket,
        message: WebSocketIncomingMessage,
    ) -> Result<()> {
        if !is_open(&ws) {
            return Ok(());
        }
        let incoming = match &message {
            WebSocketIncomingMessage::String(text) => Incoming::Text(text),
            WebSocketIncomingMessage::Binary(_) => Incoming::Binary,
        };
        let step = {
            let mut registry = self.registry();
            // Unknown: the socket holds no slot (its attachment was never written).
            let Some(index) = registry.position(|s| same_socket(s, &ws)) else {
                return Ok(());
            };
            self.note_start(&registry.entries()[index].info.room);
            on_frame(&mut registry, index, incoming, now_ms(), &self.config)
        };
        match step {
            Step::Done(effects) => {
                for effect in effects {
                    self.perform_now(effect, None)?;
                }
                Ok(())
            }
            Step::Room(effects, event) => {
                self.perform(effects, None).await?;
                self.room_event(event).await
            }
            Step::Ice(request) => {
                let cloudflare = self.cloudflare_ice().await;
                let reply = request.reply(&self.config, &cloudflare, now_ms());
                self.perform_now(reply, None)
            }
        }
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
        let (reply, reply_reason) = close_reply(code, &reason);
        let _ = ws.close(Some(reply), Some(reply_reason));
        self.socket_gone(&ws, u16::try_from(code).unwrap_or(1006))
            .await
    }

    async fn websocket_error(&self, ws: WebSocket, _error: worker::Error) -> Result<()> {
        self.socket_gone(&ws, 1006).await
    }

    async fn alarm(&self) -> Result<Response> {
        self.room_event(RoomEvent::Alarm).await?;
        self.deliver_webhooks().await?;
        Response::empty()
    }
}

impl Room {
    /// Cloudflare's TURN servers where configured (an outbound call, or the isolate's cache).
    async fn cloudflare_ice(&self) -> CloudflareIce {
        match &self.config.turn.cloudflare {
            Some(turn) => cloudflare_turn::ice_servers(turn).await,
            None => CloudflareIce::default(),
        }
    }

    /// The registry of open sockets, rebuilt from the runtime's sockets and their
    /// attachments when this instance first needs it.
    fn registry(&self) -> RefMut<'_, Registry<WebSocket>> {
        RefMut::map(self.sockets.borrow_mut(), |sockets| {
            sockets.get_or_insert_with(|| {
                let open = self.state.get_websockets().into_iter().filter(is_open);
                let sockets = open.filter_map(|ws| {
                    let info = stored::attachment(&ws).ok()??;
                    Some((ws, info))
                });
                Registry::new(sockets, self.config.rate_limit_burst, now_ms())
            })
        })
    }

    fn activity(&self) -> Activity {
        self.registry()
            .activity(|ws| platform::auto_response_ms(&self.state, ws))
    }

    fn ctx<'a>(&'a self, now: u64, activity: &'a Activity) -> Ctx<'a> {
        Ctx {
            now,
            config: &self.config,
            activity,
        }
    }

    /// Logs the first event of this instance; with sockets already open, that is a wake.
    fn note_start(&self, room: &str) {
        if !self.started.replace(true) && self.config.log_level.writes_info() {
            let open = self.state.get_websockets().len();
            platform::log(&LogEvent::instance_start(room, open));
        }
    }

    async fn socket_gone(&self, ws: &WebSocket, code: u16) -> Result<()> {
        let Some(info) = stored::attachment(ws)? else {
            return Ok(());
        };
        self.note_start(&info.room);
        let entry = self.registry().remove(&info.conn);
        self.room_event(RoomEvent::Closed {
            conn: info.conn,
            code,
            bucket: entry.map(|e| e.limiter),
        })
        .await
    }

    async fn load(&self) -> Result<Option<RoomState>> {
        stored::load_room(&self.state.storage()).await
    }

    /// Applies `event` to the stored room and performs what the core decides.
    async fn room_event(&self, event: RoomEvent) -> Result<()> {
        let stored = self.load().await?;
        if let Some(room) = &stored {
            self.note_start(&room.name);
        }
        let activity = self.activity();
        let effects = room::on_event(stored, event, self.ctx(now_ms(), &activity));
        self.perform(effects, None).await
    }

    /// Sends the outbox's due events one at a time, in order, each only after the previous
    /// one was delivered; a failure ends the round, and the core sets the alarm for the retry.
    /// Runs from the alarm only, never on a socket's event. Each outcome is applied to the room
    /// as loaded afresh, since joins and closes may have changed it during the request.
    async fn deliver_webhooks(&self) -> Result<()> {
        let Some(settings) = &self.config.webhook else {
            return Ok(());
        };
        if self.delivering.replace(true) {
            return Ok(());
        }
        let result = async {
            for _ in 0..webhook::MAX_OUTBOX {
                let stored = self.load().await?;
                let head = stored.and_then(|room| webhook::due(&room.outbox, now_ms()).cloned());
                let Some(event) = head else { break };
                let outcome = shell_webhook::post(settings, &event).await;
                self.room_event(RoomEvent::Delivery {
                    id: event.id,
                    outcome,
                })
                .await?;
                if outcome != Outcome::Delivered {
                    break;
                }
            }
            Ok(())
        }
        .await;
        self.delivering.set(false);
        result
    }

    /// Performs `effects` in order. `extra` is a socket outside the registry (a refused
    /// arrival) that effects may name.
    async fn perform(&self, effects: Vec<Effect>, extra: Option<(&str, &WebSocket)>) -> Result<()> {
        for effect in effects {
            match effect {
                Effect::Save { room, alarm_at } => {
                    stored::save_room(&self.state.storage(), &room, alarm_at).await?;
                }
                Effect::Clear => {
                    // delete_all(), though dearer than delete(ROOM_KEY) (bench/BASELINE.md):
                    // only it also drops the SQLite database's metadata, which would otherwise
                    // stay billed for every room name ever used. Since compatibility date
                    // 2026-02-24 (wrangler.toml has a later one) it deletes the alarm too.
                    self.state.storage().delete_all().await?;
                }
                Effect::Rearm { at } => stored::set_alarm(&self.state.storage(), at).await?,
                other => self.perform_now(other, extra)?,
            }
        }
        Ok(())
    }

    /// Performs an effect that needs no storage: the whole of the relay path.
    fn perform_now(&self, effect: Effect, extra: Option<(&str, &WebSocket)>) -> Result<()> {
        match effect {
            Effect::Send { conn, frame } => self.send(&conn, &frame.to_text(), extra),
            Effect::SendText { conn, text } => self.send(&conn, &text, extra),
            Effect::Close { conn, code } => {
                let entry = self.registry().remove(&conn);
                let extra = extra.filter(|(c, _)| *c == conn).map(|(_, ws)| ws);
                if let Some(ws) = entry.as_ref().map(|e| &e.socket).or(extra) {
                    // A socket that is already closing needs nothing more.
                    let _ = ws.close(Some(code.code()), Some(code.reason()));
                }
            }
            Effect::Log(event) if self.config.log_level.writes(&event) => platform::log(&event),
            Effect::Log(_) => {}
            Effect::Attach { conn, info } => {
                if let Some(ws) = self.registry().socket(&conn) {
                    stored::attach(ws, &info)?;
                }
            }
            // Storage effects are `perform`'s; the relay path never returns one.
            Effect::Save { .. } | Effect::Clear | Effect::Rearm { .. } => {}
        }
        Ok(())
    }

    /// Sends on a socket that may have closed meanwhile; its close event does the bookkeeping.
    fn send(&self, conn: &str, text: &str, extra: Option<(&str, &WebSocket)>) {
        match extra {
            Some((c, ws)) if c == conn => {
                let _ = ws.send_with_str(text);
            }
            _ => {
                if let Some(ws) = self.registry().socket(conn) {
                    let _ = ws.send_with_str(text);
                }
            }
        }
    }
}
