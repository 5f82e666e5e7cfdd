//! The `Room` Durable Object: one per room name. Each handler finds the socket, asks the core
//! ([`crate::frame`], [`crate::room`]) and performs the effects it returns; nothing else
//! touches a socket or storage. It keeps nothing in memory that the room needs after an
//! eviction: slots are in storage, each socket's identity is in its tag and attachment, and
//! deadlines are in the alarm. The registry of open sockets is a cache of the runtime's own
//! list, rebuilt once after a wake, and the stored room is cached by [`RoomStorage`].
//!
//! Socket events run to completion without waiting: storage is read and written
//! synchronously, and the alarm calls are left to the output gate (see `storage`). The runtime
//! calls these handlers through `room_class`.

use super::cloudflare_turn;
use super::codec;
use super::platform::{self, json_response, now_ms, random_hex};
use super::storage::RoomStorage;
use super::webhook as shell_webhook;
use crate::admin::AdminVerb;
use crate::admission::{Admission, Door, Join, ADMISSION_HEADER};
use crate::config::Config;
use crate::effect::{Effect, LogEvent, SocketEffect, StorageEffect};
use crate::frame::{on_frame, IceRequest, Step};
use crate::intake::Incoming;
use crate::protocol::{close_reply, PING_TEXT, PONG_TEXT};
use crate::registry::{Activity, Registry};
use crate::room::{self, Accept, Arrival, Ctx, RoomEvent};
use crate::route::SUBPROTOCOL;
use crate::token;
use crate::turn::CloudflareIce;
use crate::webhook::{self, Outcome};
use std::cell::{Cell, RefCell, RefMut};
use std::rc::Rc;
use wasm_bindgen::JsValue;
use worker::{
    worker_sys::WebSocketRequestResponsePair, Env, Result, State, WebSocket, WebSocketPair,
};

pub struct Room {
    state: State,
    storage: RoomStorage,
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

impl Room {
    pub fn new(state: State, env: Env) -> Self {
        match WebSocketRequestResponsePair::new(PING_TEXT, PONG_TEXT) {
            Ok(pair) => state.set_websocket_auto_response(&pair),
            Err(_) => platform::log_error(&LogEvent::room("auto-response-unavailable", "")),
        }
        Room {
            storage: RoomStorage::new(state.storage()),
            state,
            config: platform::config(&env),
            started: Cell::new(false),
            sockets: RefCell::new(None),
            delivering: Cell::new(false),
        }
    }

    /// The one way in besides the socket handlers: the [`Admission`] the Worker made. The
    /// request carries nothing else the object reads.
    pub async fn fetch(&self, req: web_sys::Request) -> Result<web_sys::Response> {
        let header = req.headers().get(ADMISSION_HEADER)?;
        let Some(admission) = header.as_deref().and_then(Admission::decode) else {
            return Err("a request without an admission of this version".into());
        };
        self.note_start(&admission.room);
        match admission.door {
            Door::Join(join) => self.join(&admission.room, join).await,
            Door::Admin(verb) => self.admin(&admission.room, &verb).await,
        }
    }

    /// An admitted socket asks for a slot in room `name`.
    async fn join(&self, name: &str, join: Join) -> Result<web_sys::Response> {
        // Any outbound call happens before the room is loaded: from the load on nothing is
        // awaited, so no other event can interleave with this join.
        let cloudflare_ice = self.cloudflare_ice().await;
        let new_token = random_hex(token::TOKEN_BYTES)?;
        let arrival = Arrival {
            conn: random_hex(token::ID_BYTES)?,
            new_client_id: random_hex(token::ID_BYTES)?,
            new_token_hash: token::hash(&new_token),
            new_token,
            resume_hash: join.resume_hash,
            cloudflare_ice,
            identity: join.identity,
            address: join.address,
        };
        let conn = arrival.conn.clone();
        let stored = self.storage.load()?;
        let now = now_ms();
        let activity = self.activity();
        let joining = room::on_join(stored, name, arrival, self.ctx(now, &activity));
        let pair = WebSocketPair::new()?;
        match joining.accept {
            Accept::Hibernate(info) => {
                self.state
                    .accept_websocket_with_tags(&pair.server, &[info.conn.as_str()]);
                codec::attach(&pair.server, &info)?;
                self.registry().insert(pair.server.clone(), info, now);
                self.perform(joining.effects, None)?;
            }
            Accept::Refuse => {
                // A socket that lives for one frame needs no hibernation, and a plain socket
                // closed here also ends its TCP connection.
                pair.server.accept()?;
                self.perform(joining.effects, Some((&conn, &pair.server)))?;
            }
        }
        let response = platform::socket_response(&pair.client, join.v1.then_some(SUBPROTOCOL))?;
        self.settle().await?;
        Ok(response)
    }

    /// An operator's verb, checked by the Worker; the answer is the core's.
    async fn admin(&self, name: &str, verb: &AdminVerb) -> Result<web_sys::Response> {
        let stored = self.storage.load()?;
        let activity = self.activity();
        let (reply, effects) = room::on_admin(stored, name, verb, self.ctx(now_ms(), &activity));
        self.perform(effects, None)?;
        self.settle().await?;
        json_response(reply.status(), &reply.body())
    }

    /// A frame from `ws`: text, or anything else (binary, whose bytes are never needed).
    /// Returns the `ice-servers` request that still needs Cloudflare's servers fetched
    /// ([`Room::answer_ice`]); every other frame is done with when this returns.
    pub fn websocket_message(
        &self,
        ws: WebSocket,
        message: &JsValue,
    ) -> Result<Option<IceRequest>> {
        if !is_open(&ws) {
            return Ok(None);
        }
        let text = message.as_string();
        let incoming = match &text {
            Some(text) => Incoming::Text(text),
            None => Incoming::Binary,
        };
        let step = {
            let mut registry = self.registry();
            // Unknown: the socket holds no slot (its attachment was never written).
            let Some(index) = registry.position(|s| same_socket(s, &ws)) else {
                return Ok(None);
            };
            self.note_start(&registry.entries()[index].info.room);
            on_frame(&mut registry, index, incoming, now_ms(), &self.config)
        };
        match step {
            Step::Done(effects) => {
                for effect in effects {
                    self.perform_now(effect, None)?;
                }
                Ok(None)
            }
            Step::Room(effects, event) => {
                for effect in effects {
                    self.perform_now(effect, None)?;
                }
                self.room_event(event)?;
                Ok(None)
            }
            Step::Ice(request) if self.config.turn.cloudflare.is_none() => {
                let reply = request.reply(&self.config, &CloudflareIce::default(), now_ms());
                self.perform_now(reply, None)?;
                Ok(None)
            }
            Step::Ice(request) => Ok(Some(request)),
        }
    }

    /// Answers an `ice-servers` request once Cloudflare's TURN servers are at hand.
    pub async fn answer_ice(&self, request: IceRequest) -> Result<()> {
        let cloudflare = self.cloudflare_ice().await;
        let reply = request.reply(&self.config, &cloudflare, now_ms());
        self.perform_now(reply, None)
    }

    pub fn websocket_close(&self, ws: WebSocket, code: usize, reason: &str) -> Result<()> {
        // Answer the client's close frame. Newer runtimes answer it themselves, and then this
        // call finds the socket closed, which is fine.
        let (reply, reply_reason) = close_reply(code, reason);
        let _ = ws.close(Some(reply), Some(reply_reason));
        self.socket_gone(&ws, u16::try_from(code).unwrap_or(1006))
    }

    pub fn websocket_error(&self, ws: WebSocket) -> Result<()> {
        self.socket_gone(&ws, 1006)
    }

    pub async fn alarm(&self) -> Result<()> {
        self.room_event(RoomEvent::Alarm)?;
        self.settle().await?;
        self.deliver_webhooks().await
    }

    /// The storage writes of the event so far that are not confirmed yet, for a synchronous
    /// handler to return to the runtime.
    pub fn unconfirmed(&self) -> JsValue {
        self.storage.take_pending()
    }

    /// Waits for this event's writes, for a handler that is async anyway; what it sent is
    /// held by the output gate until then regardless.
    async fn settle(&self) -> Result<()> {
        let pending = self.storage.take_pending();
        if !pending.is_undefined() {
            js_sys::futures::JsFuture::from(js_sys::Promise::from(pending)).await?;
        }
        Ok(())
    }

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
                    let info = codec::attachment(&ws).ok()??;
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

    fn socket_gone(&self, ws: &WebSocket, code: u16) -> Result<()> {
        let Some(info) = codec::attachment(ws)? else {
            return Ok(());
        };
        self.note_start(&info.room);
        let entry = self.registry().remove(&info.conn);
        self.room_event(RoomEvent::Closed {
            conn: info.conn,
            code,
            bucket: entry.map(|e| e.limiter),
        })
    }

    /// Applies `event` to the stored room and performs what the core decides.
    fn room_event(&self, event: RoomEvent) -> Result<()> {
        let stored = self.storage.load()?;
        if let Some(room) = &stored {
            self.note_start(&room.name);
        }
        let activity = self.activity();
        let effects = room::on_event(stored, event, self.ctx(now_ms(), &activity));
        self.perform(effects, None)
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
                let stored = self.storage.load()?;
                let head = stored.and_then(|room| webhook::due(&room.outbox, now_ms()).cloned());
                let Some(event) = head else { break };
                let outcome = shell_webhook::post(settings, &event).await;
                self.room_event(RoomEvent::Delivery {
                    id: event.id,
                    outcome,
                })?;
                self.settle().await?;
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
    fn perform(&self, effects: Vec<Effect>, extra: Option<(&str, &WebSocket)>) -> Result<()> {
        for effect in effects {
            match effect.split() {
                Ok(effect) => self.perform_now(effect, extra)?,
                Err(StorageEffect::Save { room, alarm_at }) => {
                    self.storage.save(*room, alarm_at)?
                }
                Err(StorageEffect::Clear) => self.storage.clear()?,
                Err(StorageEffect::Rearm { at }) => self.storage.rearm(at)?,
            }
        }
        Ok(())
    }

    /// Performs an effect on the sockets or the logs: the whole of the relay path, whose
    /// effects cannot name storage.
    fn perform_now(&self, effect: SocketEffect, extra: Option<(&str, &WebSocket)>) -> Result<()> {
        match effect {
            SocketEffect::Send { conn, frame } => self.send(&conn, &frame.to_text(), extra),
            SocketEffect::SendText { conn, text } => self.send(&conn, &text, extra),
            SocketEffect::Close { conn, code } => {
                let entry = self.registry().remove(&conn);
                let extra = extra.filter(|(c, _)| *c == conn).map(|(_, ws)| ws);
                if let Some(ws) = entry.as_ref().map(|e| &e.socket).or(extra) {
                    // A socket that is already closing needs nothing more.
                    let _ = ws.close(Some(code.code()), Some(code.reason()));
                }
            }
            SocketEffect::Log(event) if self.config.log_level.writes(&event) => {
                platform::log(&event)
            }
            SocketEffect::Log(_) => {}
            SocketEffect::Attach { conn, info } => {
                if let Some(ws) = self.registry().socket(&conn) {
                    codec::attach(ws, &info)?;
                }
            }
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
