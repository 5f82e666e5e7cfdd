//! The reconnecting connection: one task per [`Client`] that dials (with a fresh ticket each
//! time), resumes its slot with the rotated token, pings, refreshes ICE servers, reconnects
//! with jittered backoff, and hands every [`Event`] to the application in order. Its
//! decisions are [`crate::policy`]'s; this file only performs them.

use crate::backoff::{Backoff, Jitter};
use crate::codec::{Codec, Context, Output};
use crate::event::{Close, Event, Refused, CLIENT_DROP};
use crate::policy::{self, After, Ending, Slot};
use crate::socket::{room_url, Dial, Socket, SocketReceiver, SocketSender};
use crate::ticket::Ticket;
use crate::Error;
use duet::protocol::{ClientFrame, ServerFrame};
use duet::report::Report;
use serde::Serialize;
use serde_json::value::RawValue;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::{sleep_until, Instant};

/// How a [`Client`] connects and keeps its connection.
pub struct Config {
    /// The room's socket URL ([`room_url`]).
    pub url: String,
    pub room: String,
    pub ticket: Ticket,
    /// Start by resuming the slot of this token (one kept from an earlier run).
    pub resume_token: Option<String>,
    /// Keep-alive interval, counted from the ping sent at once on every welcome; zero
    /// disables pings, that first one too.
    pub ping_interval: Duration,
    /// After a ping, how long to wait for any frame before the socket counts as dead and is
    /// replaced; zero disables.
    pub pong_timeout: Duration,
    /// How long [`Client::check`] waits for an answer before it replaces the socket.
    pub check_timeout: Duration,
    /// A socket that has not brought its welcome within this (a ticket provider that has not
    /// answered, too) is abandoned for the next attempt; zero waits as long as it takes.
    pub connect_timeout: Duration,
    pub backoff: Backoff,
    /// Give up after this many failed attempts in a row (then [`Event::Closed`]).
    pub max_reconnect_attempts: u32,
    /// Ask for fresh ICE servers before their credentials expire (`docs/client.md`, "Fresh
    /// TURN credentials during a call").
    pub refresh_ice_servers: bool,
    /// Seals and opens every message: the end-to-end envelope, see [`crate::codec`].
    pub codec: Option<Box<dyn Codec>>,
}

impl Config {
    /// Room `room` on the server at `base` (`https://…`, `wss://…`, …), with the defaults of
    /// `duet.js`: pings every 20 s, 10 s for a pong, 10 s to connect, backoff from 0.5 s to
    /// 10 s, no limit on attempts.
    pub fn new(base: &str, room: &str) -> Result<Config, Error> {
        Ok(Config {
            url: room_url(base, room)?,
            room: room.to_owned(),
            ticket: Ticket::None,
            resume_token: None,
            ping_interval: Duration::from_secs(20),
            pong_timeout: Duration::from_secs(10),
            check_timeout: Duration::from_millis(1500),
            connect_timeout: Duration::from_secs(10),
            backoff: Backoff::default(),
            max_reconnect_attempts: u32::MAX,
            refresh_ice_servers: true,
            codec: None,
        })
    }

    pub fn ticket(mut self, ticket: impl Into<Ticket>) -> Config {
        self.ticket = ticket.into();
        self
    }

    pub fn codec(mut self, codec: impl Codec) -> Config {
        self.codec = Some(Box::new(codec));
        self
    }
}

/// Where the connection is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    Connecting,
    Open,
    Reconnecting,
    Closed,
}

/// A snapshot of the connection: its state and the slot's, as the last frames said.
#[derive(Debug, Clone)]
pub struct Status {
    pub state: State,
    pub slot: Slot,
}

/// A deliberate drop of the socket ([`Client::disconnect`]): what a lost network, a page that
/// goes away or a network change looks like to the server. The client resumes its slot after
/// each, as after the real thing; to simulate them in an application's tests, or to drive
/// them in a load test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disconnect {
    /// The connection goes without a close frame, as when the network is lost: the server
    /// sees 1006 and holds the slot away for its grace. Reconnects with backoff.
    Abort,
    /// A close frame 1001 (going away, as a closing browser tab) and no wait for the answer:
    /// the slot is away, as after an abort. Reconnects with backoff.
    GoingAway,
    /// A second socket resumes the slot while the first is still open, as a device that
    /// changed networks before it noticed: the server moves the slot to the new socket as
    /// it upgrades (and closes the old one with 4000, which the client no longer reads). No
    /// backoff and no `peer-away` for the peer. If the new socket cannot connect, the old one
    /// is dropped all the same and the client reconnects as after a failed attempt.
    Replace,
}

enum Command {
    Send(Box<RawValue>, oneshot::Sender<Result<(), Error>>),
    Frame(String, oneshot::Sender<Result<(), Error>>),
    Leave,
    Reconnect,
    Disconnect(Disconnect),
    Check(oneshot::Sender<bool>),
}

/// A connection to one room that stays up. Dropping it drops the socket without leaving (the
/// slot is away and resumable for the server's grace, as after a network failure); call
/// [`Client::leave`] to give the slot up.
pub struct Client {
    commands: mpsc::UnboundedSender<Command>,
    events: mpsc::UnboundedReceiver<Event>,
    status: watch::Receiver<Status>,
    task: JoinHandle<()>,
}

impl Client {
    /// Starts connecting at once and returns; the first events are the welcome (or a
    /// refusal). Must be called within a tokio runtime.
    pub fn connect(config: Config) -> Client {
        let (commands, commands_rx) = mpsc::unbounded_channel();
        let (events_tx, events) = mpsc::unbounded_channel();
        let slot = Slot {
            token: config.resume_token.clone(),
            ..Slot::default()
        };
        let (status_tx, status) = watch::channel(Status {
            state: State::Connecting,
            slot,
        });
        let driver = Driver {
            config,
            commands: commands_rx,
            events: events_tx,
            status: status_tx,
            attempt: 0,
            jitter: Jitter::new(),
            welcomed_once: false,
            fresh_ticket_tried: false,
        };
        let task = tokio::spawn(driver.run());
        Client {
            commands,
            events,
            status,
            task,
        }
    }

    /// The next event; `None` once the connection has stopped and every event was read.
    /// Events wait here until read (nothing is dropped), so read them.
    pub async fn next_event(&mut self) -> Option<Event> {
        self.events.recv().await
    }

    /// The state and the slot now.
    pub fn status(&self) -> Status {
        self.status.borrow().clone()
    }

    /// Relays `data` to the other peer (sealed by the codec if there is one). Nothing is
    /// queued: with no socket open this is [`Error::NotOpen`]; after
    /// [`Event::Reconnected`], send again what matters. A frame over the server's
    /// `maxMessageBytes` (from the welcome) is [`Error::TooLarge`], and is not sent.
    pub async fn send<T: Serialize + ?Sized>(&self, data: &T) -> Result<(), Error> {
        let raw = serde_json::value::to_raw_value(data).map_err(|e| Error::Data(e.to_string()))?;
        self.send_raw(raw).await
    }

    /// Relays `data`, JSON text kept byte for byte.
    pub async fn send_raw(&self, data: Box<RawValue>) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Send(data, reply))?;
        answer.await.unwrap_or(Err(Error::NotOpen))
    }

    /// Tells the server how the call's media connected ([`Report`], `docs/protocol.md`,
    /// "Reports").
    pub async fn report(&self, report: Report) -> Result<(), Error> {
        self.frame(ClientFrame::Report(report).to_text()).await
    }

    /// Asks for ICE servers with fresh credentials; the answer is an `ice-servers` frame
    /// (and [`Status`] has them). The client does this by itself before they expire.
    pub async fn refresh_ice_servers(&self) -> Result<(), Error> {
        self.frame(ClientFrame::IceServers.to_text()).await
    }

    /// Leaves for good: the peer gets `peer-left` (`leave`), then [`Event::Closed`] (1000).
    pub fn leave(&self) {
        let _ = self.command(Command::Leave);
    }

    /// Drops the socket as a network failure would (the peer sees `peer-away`) and
    /// reconnects with backoff, resuming the slot: for a known network change.
    pub fn reconnect(&self) {
        let _ = self.command(Command::Reconnect);
    }

    /// Drops the socket on purpose, as `how` says ([`Disconnect`]), and resumes the slot
    /// after. While reconnecting there is no socket to drop: an abort or going-away does
    /// nothing, a replace dials at once.
    pub fn disconnect(&self, how: Disconnect) {
        let _ = self.command(Command::Disconnect(how));
    }

    /// Checks at once that the socket still works, after a network change say: sends the
    /// keep-alive and waits [`Config::check_timeout`] for any frame. Without one, the socket
    /// is dropped and a new one dials at once, without backoff, resuming the slot; while
    /// reconnecting, the next attempt starts now. Whether the socket answered.
    pub async fn check(&self) -> bool {
        let (reply, answer) = oneshot::channel();
        if self.command(Command::Check(reply)).is_err() {
            return false;
        }
        answer.await.unwrap_or(false)
    }

    async fn frame(&self, text: String) -> Result<(), Error> {
        let (reply, answer) = oneshot::channel();
        self.command(Command::Frame(text, reply))?;
        answer.await.unwrap_or(Err(Error::NotOpen))
    }

    fn command(&self, command: Command) -> Result<(), Error> {
        self.commands.send(command).map_err(|_| Error::NotOpen)
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How long, after a `leave`, the server's close may take before the client stops anyway.
const LEAVE_WAIT: Duration = Duration::from_secs(2);

/// What one socket's life ended in.
enum Next {
    Retry(Close, After),
    Stop(Close),
    /// [`Disconnect::Replace`]: go on with this socket, already connected.
    Replace(Box<Socket>),
}

/// The client's task.
struct Driver {
    config: Config,
    commands: mpsc::UnboundedReceiver<Command>,
    events: mpsc::UnboundedSender<Event>,
    status: watch::Sender<Status>,
    /// Failed attempts in a row.
    attempt: u32,
    jitter: Jitter,
    welcomed_once: bool,
    fresh_ticket_tried: bool,
}

impl Driver {
    async fn run(mut self) {
        let mut replacement = None;
        loop {
            let socket = match replacement.take() {
                Some(socket) => Ok(socket),
                None => self.dial().await,
            };
            let next = match socket {
                Ok(socket) => self.session(socket).await,
                Err(failure) => failure,
            };
            let (cause, after) = match next {
                Next::Stop(close) => return self.finish(close),
                Next::Retry(close, after) => (close, after),
                Next::Replace(socket) => {
                    self.set_state(State::Reconnecting);
                    self.emit(Event::Reconnecting {
                        attempt: self.attempt + 1,
                        delay: Duration::ZERO,
                        cause: Close::new(CLIENT_DROP, "replaced by a new socket"),
                    });
                    replacement = Some(*socket);
                    continue;
                }
            };
            if self.attempt >= self.config.max_reconnect_attempts {
                return self.finish(cause);
            }
            let delay = match after {
                After::RetryIn(delay) => delay,
                _ => self.config.backoff.delay(self.attempt, self.jitter.draw()),
            };
            self.attempt += 1;
            self.set_state(State::Reconnecting);
            self.emit(Event::Reconnecting {
                attempt: self.attempt,
                delay,
                cause,
            });
            if let Some(close) = self.wait(Instant::now() + delay).await {
                return self.finish(close);
            }
        }
    }

    /// Waits until `until` for the next attempt; a reconnect command cuts it short, a leave
    /// (or a dropped [`Client`]) stops: then the close to end with.
    async fn wait(&mut self, until: Instant) -> Option<Close> {
        loop {
            tokio::select! {
                _ = sleep_until(until) => return None,
                command = self.commands.recv() => match command {
                    None => return Some(left()),
                    Some(Command::Leave) => {
                        self.status.send_modify(|st| st.slot.token = None);
                        return Some(left());
                    }
                    Some(Command::Reconnect | Command::Disconnect(Disconnect::Replace)) => {
                        return None
                    }
                    Some(Command::Disconnect(_)) => {}
                    // Nothing to check: dial now.
                    Some(Command::Check(reply)) => {
                        let _ = reply.send(false);
                        return None;
                    }
                    Some(Command::Send(_, reply) | Command::Frame(_, reply)) => {
                        let _ = reply.send(Err(Error::NotOpen));
                    }
                },
            }
        }
    }

    /// Opens the next socket, with a fresh ticket and the current token.
    async fn dial(&mut self) -> Result<Socket, Next> {
        // A provider that hangs is a failed attempt, like a connect that hangs.
        let limit = Some(self.config.connect_timeout).filter(|t| !t.is_zero());
        let ticket = match limit {
            Some(limit) => tokio::time::timeout(limit, self.config.ticket.get())
                .await
                .unwrap_or_else(|_| Err("the ticket provider timed out".into())),
            None => self.config.ticket.get().await,
        }
        .map_err(|e| Next::Retry(Close::lost(format!("no ticket: {e}")), After::Backoff))?;
        let dial = Dial {
            url: self.config.url.clone(),
            ticket,
            resume: self.status.borrow().slot.token.clone(),
            resume_in_query: false,
            timeout: self.config.connect_timeout,
        };
        Socket::connect(&dial).await.map_err(|e| {
            let close = Close::lost(e.to_string());
            match e {
                // The server said no over HTTP: a request it refuses stays refused, but for
                // the join limit and its own trouble.
                Error::Http { status, .. } if status != 429 && status < 500 => Next::Stop(close),
                Error::Url(_) => Next::Stop(close),
                _ => Next::Retry(close, After::Backoff),
            }
        })
    }

    /// One socket's life, from the dial to its end.
    async fn session(&mut self, socket: Socket) -> Next {
        let (tx, rx) = socket.split();
        let mut session = Session {
            tx,
            welcomed: false,
            refusal: None,
            full: false,
            leave_by: None,
            checks: Vec::new(),
            check_by: None,
            ping_at: None,
            pong_by: None,
            ice_at: None,
            welcome_by: Some(Instant::now() + self.config.connect_timeout)
                .filter(|_| !self.config.connect_timeout.is_zero()),
        };
        let next = self.serve(&mut session, rx).await;
        let cause = match &next {
            Next::Retry(cause, _) | Next::Stop(cause) => cause.clone(),
            Next::Replace(_) => Close::new(CLIENT_DROP, "replaced by a new socket"),
        };
        // The codec learns of the drop (no key confirmation while away); it has nothing to
        // send on a socket that is gone.
        let _ = self.observe(&Event::SocketClosed(cause));
        next
    }

    async fn serve(&mut self, s: &mut Session, mut rx: SocketReceiver) -> Next {
        loop {
            let codec_at = self.config.codec.as_ref().and_then(|c| c.deadline());
            tokio::select! {
                event = rx.recv() => match event {
                    Some(Event::SocketClosed(close)) | Some(Event::Closed(close)) => {
                        return self.ended(s, close);
                    }
                    Some(event) => self.on_event(s, event).await,
                    None => return self.ended(s, Close::lost("connection ended")),
                },
                command = self.commands.recv() => {
                    if let Some(next) = self.on_command(s, command).await {
                        return next;
                    }
                }
                _ = sleep_opt(s.ping_at) => self.ping(s).await,
                _ = sleep_opt(s.pong_by) => return drop_socket(s, "no answer to a ping").await,
                // We left, and the server's close did not come: left all the same.
                _ = sleep_opt(s.leave_by) => return Next::Stop(left()),
                _ = sleep_opt(s.welcome_by) => return drop_socket(s, "connect timed out").await,
                _ = sleep_opt(s.check_by) => {
                    let _ = s.tx.close(CLIENT_DROP, "no answer to a check").await;
                    let cause = Close::new(CLIENT_DROP, "no answer to a check");
                    // The failed checks answer `false` as the session's state is dropped.
                    return Next::Retry(cause, After::RetryIn(Duration::ZERO));
                }
                _ = sleep_opt(s.ice_at) => {
                    s.ice_at = None;
                    let _ = s.tx.send(&ClientFrame::IceServers).await;
                }
                _ = sleep_opt(codec_at) => {
                    let mut out = Output::default();
                    if let Some(codec) = self.config.codec.as_mut() {
                        let status = self.status.borrow().clone();
                        codec.on_deadline(&context(&self.config.room, &status.slot, s.welcomed), &mut out);
                    }
                    self.perform(s, out).await;
                }
            }
        }
    }

    /// The socket ended: what next, by [`policy::after`].
    fn ended(&mut self, s: &Session, close: Close) -> Next {
        // After our `leave` (the token is forgotten already), whatever the close.
        if s.leave_by.is_some() {
            return Next::Stop(close);
        }
        let after = policy::after(Ending {
            close: &close,
            refusal: s.refusal.as_ref(),
            full: s.full,
            ticket_provider: self.config.ticket.is_provider(),
            fresh_ticket_tried: self.fresh_ticket_tried,
        });
        if s.refusal.as_ref().map(|r| r.code) == Some(duet::route::HttpError::TicketExpired) {
            self.fresh_ticket_tried = true;
        }
        match after {
            After::Stop => Next::Stop(close),
            After::StopAndForget => {
                self.status.send_modify(|st| st.slot.token = None);
                Next::Stop(close)
            }
            After::Backoff | After::RetryIn(_) => Next::Retry(close, after),
        }
    }

    async fn on_command(&mut self, s: &mut Session, command: Option<Command>) -> Option<Next> {
        match command {
            // The application dropped its handle: end without a word, as a lost connection.
            None => return Some(Next::Stop(Close::lost("client dropped"))),
            Some(Command::Leave) => {
                self.status.send_modify(|st| st.slot.token = None);
                if !s.welcomed || s.tx.send(&ClientFrame::Leave).await.is_err() {
                    return Some(Next::Stop(left()));
                }
                // Nothing more to keep alive; the server's close (1000) ends the session.
                (s.ping_at, s.pong_by, s.ice_at) = (None, None, None);
                s.leave_by = Some(Instant::now() + LEAVE_WAIT);
            }
            Some(Command::Reconnect) => return Some(drop_socket(s, "reconnect").await),
            Some(Command::Disconnect(how)) => return Some(self.disconnect(s, how).await),
            Some(Command::Check(reply)) => {
                s.checks.push(reply);
                if s.check_by.is_none() {
                    // Before the welcome there is nothing to ping: the welcome is the answer.
                    if s.welcomed {
                        let _ = s.tx.send(&ClientFrame::Ping).await;
                    }
                    s.check_by = Some(Instant::now() + self.config.check_timeout);
                }
            }
            Some(Command::Send(data, reply)) => {
                let sent = self.send_data(s, &data).await;
                let _ = reply.send(sent);
            }
            Some(Command::Frame(text, reply)) => {
                let sent = if s.welcomed {
                    s.tx.send_text(text).await
                } else {
                    Err(Error::NotOpen)
                };
                let _ = reply.send(sent);
            }
        }
        None
    }

    /// A deliberate drop ([`Disconnect`]); the session's socket goes as the session ends.
    async fn disconnect(&mut self, s: &mut Session, how: Disconnect) -> Next {
        match how {
            Disconnect::Abort => Next::Retry(Close::lost("aborted"), After::Backoff),
            Disconnect::GoingAway => {
                let _ = s.tx.close(1001, "going away").await;
                Next::Retry(Close::new(1001, "going away"), After::Backoff)
            }
            // The new socket has upgraded (its resume is done) before the old one goes.
            Disconnect::Replace => match self.dial().await {
                Ok(socket) => Next::Replace(Box::new(socket)),
                Err(failure) => failure,
            },
        }
    }

    async fn send_data(&mut self, s: &mut Session, data: &RawValue) -> Result<(), Error> {
        if !s.welcomed {
            return Err(Error::NotOpen);
        }
        let sealed;
        let data = match self.config.codec.as_mut() {
            None => data,
            Some(codec) => {
                let slot = self.status.borrow().slot.clone();
                sealed = codec
                    .seal(&context(&self.config.room, &slot, true), data)
                    .map_err(Error::Data)?;
                &sealed
            }
        };
        let text = ClientFrame::Message(data).to_text();
        let max = self.status.borrow().slot.max_message_bytes;
        match max {
            // The server would refuse it (`too-large`); say so before it leaves.
            Some(max) if text.len() > max => Err(Error::TooLarge {
                bytes: text.len(),
                max,
            }),
            _ => s.tx.send_text(text).await,
        }
    }

    /// One event of the socket: update the slot, let the codec see it, hand it on.
    async fn on_event(&mut self, s: &mut Session, event: Event) {
        // Any frame proves the socket works.
        s.pong_by = None;
        s.check_by = None;
        for check in s.checks.drain(..) {
            let _ = check.send(true);
        }
        let event = match event {
            Event::Message { from, data } => match self.open(s, from, data).await {
                Some(event) => event,
                None => return,
            },
            Event::Frame(frame) => {
                self.on_frame(s, &frame).await;
                Event::Frame(frame)
            }
            Event::Refused(refused) => {
                s.refusal = Some(refused.clone());
                Event::Refused(refused)
            }
            other => other,
        };
        let reconnected = match &event {
            Event::Frame(ServerFrame::Created(w) | ServerFrame::Joined(w)) => {
                let again = self.welcomed_once;
                self.welcomed_once = true;
                again.then(|| Event::Reconnected {
                    resumed: w.resumed == Some(true),
                    client_id: w.client_id.clone(),
                })
            }
            _ => None,
        };
        let out = self.observe(&event);
        self.emit(event);
        if let Some(reconnected) = reconnected {
            let more = self.observe(&reconnected);
            self.emit(reconnected);
            self.perform(s, more).await;
        }
        self.perform(s, out).await;
    }

    /// A relayed message, opened by the codec if there is one.
    async fn open(&mut self, s: &mut Session, from: String, data: Box<RawValue>) -> Option<Event> {
        let Some(codec) = self.config.codec.as_mut() else {
            return Some(Event::Message { from, data });
        };
        let slot = self.status.borrow().slot.clone();
        let mut out = Output::default();
        let opened = codec.open(
            &context(&self.config.room, &slot, s.welcomed),
            &from,
            &data,
            &mut out,
        );
        let events = std::mem::take(&mut out.events);
        let delivered = opened.map(|data| Event::Message { from, data });
        self.perform(s, out).await;
        for event in events {
            self.emit(event);
        }
        delivered
    }

    /// What a server frame changes: the slot, the timers.
    async fn on_frame(&mut self, s: &mut Session, frame: &ServerFrame) {
        match frame {
            ServerFrame::Created(w) | ServerFrame::Joined(w) => {
                self.status.send_modify(|st| {
                    st.slot.welcome(w);
                    st.state = State::Open;
                });
                s.welcomed = true;
                s.welcome_by = None;
                self.attempt = 0;
                self.fresh_ticket_tried = false;
                self.schedule_ice(s, w.ice_servers_expire_at);
                // The first ping at once: a slot whose socket never sent a frame is
                // unconfirmed and yields to a newcomer (docs/protocol.md, "Stale").
                if !self.config.ping_interval.is_zero() {
                    self.ping(s).await;
                }
            }
            ServerFrame::PeerJoined {
                client_id,
                identity,
                ..
            } => self
                .status
                .send_modify(|st| st.slot.peer_joined(client_id, identity.as_ref())),
            ServerFrame::PeerLeft { client_id, .. } => {
                self.status.send_modify(|st| st.slot.peer_left(client_id))
            }
            ServerFrame::Ready {
                initiator, peers, ..
            } => self
                .status
                .send_modify(|st| st.slot.ready(initiator, peers)),
            ServerFrame::Full { .. } => s.full = true,
            ServerFrame::IceServers {
                ice_servers,
                expires_at,
            } => {
                self.status.send_modify(|st| {
                    st.slot.ice_servers = Some(ice_servers.clone());
                    st.slot.ice_servers_expire_at = *expires_at;
                });
                self.schedule_ice(s, *expires_at);
            }
            // `peer-away`, `error`: nothing of the slot changes.
            _ => {}
        }
    }

    fn schedule_ice(&self, s: &mut Session, expires_at: Option<u64>) {
        s.ice_at = None;
        if !self.config.refresh_ice_servers {
            return;
        }
        if let Some(delay) = policy::ice_refresh_in(expires_at, now_ms()) {
            s.ice_at = Some(Instant::now() + delay);
        }
    }

    /// Sends the keep-alive and schedules the next; the answer is due within the pong
    /// timeout.
    async fn ping(&mut self, s: &mut Session) {
        let (interval, pong_timeout) = (self.config.ping_interval, self.config.pong_timeout);
        s.ping_at = Some(Instant::now() + interval);
        if s.tx.send(&ClientFrame::Ping).await.is_err() {
            return;
        }
        if s.pong_by.is_none() && !pong_timeout.is_zero() {
            s.pong_by = Some(Instant::now() + pong_timeout);
        }
    }

    /// Lets the codec see `event`; what it asks for.
    fn observe(&mut self, event: &Event) -> Output {
        let mut out = Output::default();
        if let Some(codec) = self.config.codec.as_mut() {
            let status = self.status.borrow().clone();
            let open = status.state == State::Open;
            codec.observe(
                &context(&self.config.room, &status.slot, open),
                event,
                &mut out,
            );
        }
        out
    }

    /// Sends what a codec asked to send and emits its events.
    async fn perform(&mut self, s: &mut Session, out: Output) {
        for data in out.send {
            if s.welcomed && s.tx.send_data(&data).await.is_err() {
                break;
            }
        }
        for event in out.events {
            self.emit(event);
        }
    }

    fn finish(&mut self, close: Close) {
        self.set_state(State::Closed);
        let event = Event::Closed(close);
        let out = self.observe(&event);
        self.emit(event);
        for event in out.events {
            self.emit(event);
        }
    }

    fn set_state(&self, state: State) {
        self.status.send_modify(|st| st.state = state);
    }

    fn emit(&self, event: Event) {
        // The application may have stopped listening; the connection goes on regardless.
        let _ = self.events.send(event);
    }
}

/// One socket's state.
struct Session {
    tx: SocketSender,
    welcomed: bool,
    refusal: Option<Refused>,
    full: bool,
    /// After a `leave`: how long the server's close may take.
    leave_by: Option<Instant>,
    /// The callers of [`Client::check`] waiting for an answer, and until when.
    checks: Vec<oneshot::Sender<bool>>,
    check_by: Option<Instant>,
    ping_at: Option<Instant>,
    pong_by: Option<Instant>,
    ice_at: Option<Instant>,
    welcome_by: Option<Instant>,
}

/// Closes our side with [`CLIENT_DROP`] (the slot stays resumable) and reconnects.
async fn drop_socket(s: &mut Session, why: &str) -> Next {
    let _ = s.tx.close(CLIENT_DROP, why).await;
    Next::Retry(Close::new(CLIENT_DROP, why), After::Backoff)
}

fn left() -> Close {
    Close::new(1000, "left")
}

fn context<'a>(room: &'a str, slot: &'a Slot, open: bool) -> Context<'a> {
    Context {
        room,
        client_id: slot.client_id.as_deref().unwrap_or(""),
        peer: slot.peers.first().map(String::as_str),
        open,
    }
}

async fn sleep_opt(at: Option<Instant>) {
    match at {
        Some(at) => sleep_until(at).await,
        None => std::future::pending().await,
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn moves_between_tasks<T: Send + 'static>() {}

    #[test]
    fn clients_sockets_and_events_move_between_tasks() {
        moves_between_tasks::<Client>();
        moves_between_tasks::<Socket>();
        moves_between_tasks::<SocketSender>();
        moves_between_tasks::<SocketReceiver>();
        moves_between_tasks::<Event>();
        moves_between_tasks::<Config>();
    }
}
