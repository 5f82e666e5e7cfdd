//! One WebSocket to a room, nothing more: dial (with a ticket and a resume token), read
//! [`Event`]s, send client frames, close. No task, no timer, no reconnect: a load generator
//! holds thousands of these, and [`crate::Client`] builds its reconnecting connection on one.

use crate::event::{Close, Event, ABNORMAL};
use crate::Error;
use duet::protocol::{ClientFrame, ServerFrame, Welcome};
use duet::route::{is_room_name, RESUME_PREFIX, SUBPROTOCOL, TICKET_PREFIX};
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::value::RawValue;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode as WsCloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// The step a welcome that did not come in time is named by: `Error::Timeout("welcome")`.
pub const WELCOME_STEP: &str = "welcome";

/// How long [`Socket::close`] waits for the server to answer a close.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Where and how to open one socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dial {
    /// The room's socket URL, `ws://…/ws/{room}` or `wss://…/ws/{room}` ([`room_url`]).
    pub url: String,
    /// A join ticket, offered as the subprotocol `duet.ticket.{ticket}`.
    pub ticket: Option<String>,
    /// A resume token, offered as the subprotocol `duet.resume.{token}`, or in the query
    /// (`?resume=`) with `resume_in_query`.
    pub resume: Option<String>,
    /// Offer the resume token in the query rather than as a subprotocol: both are
    /// documented (`docs/protocol.md`), and a proxy may strip one of them.
    pub resume_in_query: bool,
    /// The limit on the TCP connect, the TLS handshake and the upgrade together; zero: none.
    pub timeout: Duration,
}

impl Dial {
    /// A dial of `url` without ticket or token, with a 10 s limit.
    pub fn new(url: impl Into<String>) -> Dial {
        Dial {
            url: url.into(),
            ticket: None,
            resume: None,
            resume_in_query: false,
            timeout: Duration::from_secs(10),
        }
    }

    pub fn ticket(mut self, ticket: impl Into<String>) -> Dial {
        self.ticket = Some(ticket.into());
        self
    }

    pub fn resume(mut self, token: impl Into<String>) -> Dial {
        self.resume = Some(token.into());
        self
    }

    /// Offers the resume token in the query (`?resume=`) rather than as a subprotocol.
    pub fn resume_in_query(mut self, in_query: bool) -> Dial {
        self.resume_in_query = in_query;
        self
    }

    pub fn timeout(mut self, limit: Duration) -> Dial {
        self.timeout = limit;
        self
    }

    /// The `Sec-WebSocket-Protocol` offer: `duet.v1` always (the server then refuses in-band,
    /// and selects it on success), and the ticket and the token.
    pub fn subprotocols(&self) -> String {
        let mut offer = SUBPROTOCOL.to_owned();
        if let Some(ticket) = &self.ticket {
            offer.push_str(&format!(", {TICKET_PREFIX}{ticket}"));
        }
        match &self.resume {
            Some(token) if !self.resume_in_query => {
                offer.push_str(&format!(", {RESUME_PREFIX}{token}"))
            }
            _ => {}
        }
        offer
    }

    fn request(&self) -> Result<tokio_tungstenite::tungstenite::handshake::client::Request, Error> {
        let url = match &self.resume {
            Some(token) if self.resume_in_query => format!("{}?resume={token}", self.url),
            _ => self.url.clone(),
        };
        let mut request = url
            .as_str()
            .into_client_request()
            .map_err(|e| Error::Url(e.to_string()))?;
        let offer = HeaderValue::from_str(&self.subprotocols())
            .map_err(|_| Error::Url("a ticket or token that cannot be a header".into()))?;
        request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, offer);
        Ok(request)
    }
}

/// The socket URL of `room` on the server at `base` (`https://…`, `http://…`, `wss://…` or
/// `ws://…`, with or without a trailing slash): `wss://host/ws/{room}`.
pub fn room_url(base: &str, room: &str) -> Result<String, Error> {
    if !is_room_name(room) {
        return Err(Error::Url(format!(
            "room names are 1-64 characters of A-Z, a-z, 0-9, _ and -, not {room:?}"
        )));
    }
    let base = base.trim_end_matches('/');
    let rest = [
        ("https://", "wss://"),
        ("http://", "ws://"),
        ("wss://", "wss://"),
        ("ws://", "ws://"),
    ]
    .into_iter()
    .find_map(|(from, to)| base.strip_prefix(from).map(|rest| format!("{to}{rest}")));
    match rest {
        Some(url) => Ok(format!("{url}/ws/{room}")),
        None => Err(Error::Url(format!(
            "{base:?} is not an http(s):// or ws(s):// URL"
        ))),
    }
}

/// A welcome frame and which one it was.
#[derive(Debug, Clone)]
pub struct Welcomed {
    /// `created` (an empty room) rather than `joined`.
    pub created: bool,
    pub welcome: Welcome,
}

impl Welcomed {
    /// Whether this welcome took a held slot back (`joined` with `resumed:true`).
    pub fn resumed(&self) -> bool {
        self.welcome.resumed == Some(true)
    }
}

/// A frame as it came off a socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Raw {
    Text(Utf8Bytes),
    /// A binary frame, which the server never sends.
    Binary,
    /// The socket closed: its close frame, or 1006 for a lost connection.
    Closed(Close),
}

/// One open socket. [`Socket::split`] gives a sending and a receiving half that two tasks can
/// hold; [`SocketSender::reunite`] makes a socket of them again. Unsplit, it reads and writes
/// the stream directly: no lock between the halves on every frame.
pub struct Socket {
    frames: Frames<Ws>,
}

/// The sending half of a [`Socket`].
pub struct SocketSender {
    sink: SplitSink<Ws, Message>,
}

/// The receiving half of a [`Socket`].
pub struct SocketReceiver {
    frames: Frames<SplitStream<Ws>>,
}

impl Socket {
    /// Opens a socket as `dial` says, within its timeout. Nagle is off: signaling frames are
    /// small and must not wait for ACKs. An upgrade the server refuses in-band succeeds here;
    /// its [`Event::Refused`] is the first event.
    pub async fn connect(dial: &Dial) -> Result<Socket, Error> {
        let request = dial.request()?;
        if dial.url.starts_with("wss:") {
            ensure_crypto_provider();
        }
        let connect = tokio_tungstenite::connect_async_with_config(request, None, true);
        let connected = if dial.timeout.is_zero() {
            connect.await
        } else {
            timeout(dial.timeout, connect)
                .await
                .map_err(|_| Error::Timeout("connect"))?
        };
        let (ws, _response) = connected.map_err(connect_error)?;
        Ok(Socket {
            frames: Frames::new(ws),
        })
    }

    /// Connects and reads the welcome (`created` or `joined`), which must be the first frame:
    /// anything else (a refusal, `full`) is [`Error::Unexpected`]. A welcome that does not
    /// come within the dial's timeout (counted afresh after the connect) is
    /// `Error::Timeout("welcome")` ([`WELCOME_STEP`]), apart from `Error::Timeout("connect")`.
    pub async fn join(dial: &Dial) -> Result<(Socket, Welcomed), Error> {
        let mut socket = Socket::connect(dial).await?;
        let welcomed = socket.welcome(dial.timeout).await?;
        Ok((socket, welcomed))
    }

    /// Waits up to `limit` (zero: as long as it takes) for the next event, which must be a
    /// welcome.
    pub async fn welcome(&mut self, limit: Duration) -> Result<Welcomed, Error> {
        self.frames.welcome(limit).await
    }

    /// The next event; after [`Event::SocketClosed`], `None`.
    pub async fn recv(&mut self) -> Option<Event> {
        self.frames.recv().await
    }

    /// The next frame as it came ([`SocketReceiver::recv_raw`]).
    pub async fn recv_raw(&mut self) -> Option<Raw> {
        self.frames.recv_raw().await
    }

    /// The next event within `limit`, or [`Error::Timeout`] with `step` as its label; after
    /// the socket closed, [`Error::Closed`].
    pub async fn recv_within(
        &mut self,
        limit: Duration,
        step: &'static str,
    ) -> Result<Event, Error> {
        self.frames.recv_within(limit, step).await
    }

    /// Sends a client frame.
    pub async fn send(&mut self, frame: &ClientFrame<'_>) -> Result<(), Error> {
        self.send_text(frame.to_text()).await
    }

    /// Relays `data` (JSON text) to the other peer.
    pub async fn send_data(&mut self, data: &RawValue) -> Result<(), Error> {
        self.send(&ClientFrame::Message(data)).await
    }

    /// Sends a text frame as it is: for frames spelled on purpose (a ping the room's object
    /// answers, a malformed frame in a test), or built once and sent many times.
    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        write(&mut self.frames.stream, Message::Text(text.into())).await
    }

    /// The keep-alive the runtime answers without waking the room ([`Event::Pong`]).
    pub async fn ping(&mut self) -> Result<(), Error> {
        self.send(&ClientFrame::Ping).await
    }

    /// Sends a close frame and returns at once: the socket stays readable, so the server's
    /// answer (its close frame, and what it relayed before) is still read with
    /// [`Socket::recv`]; dropping the socket instead abandons the connection right after the
    /// close frame went out, a client that leaves without waiting. 1000 releases the slot;
    /// any other code (1001, say) leaves it away and resumable.
    pub async fn send_close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        write(&mut self.frames.stream, close_frame(code, reason)).await
    }

    /// Closes with `code` and `reason` and waits briefly for the server's answer. 1000
    /// releases the slot at once; any other code leaves it away, resumable for the grace.
    pub async fn close(mut self, code: u16, reason: &str) {
        if self.send_close(code, reason).await.is_err() {
            return;
        }
        let _ = timeout(CLOSE_WAIT, async { while self.recv().await.is_some() {} }).await;
    }

    pub fn split(self) -> (SocketSender, SocketReceiver) {
        let Frames { stream, ended } = self.frames;
        let (sink, stream) = stream.split();
        let frames = Frames { stream, ended };
        (SocketSender { sink }, SocketReceiver { frames })
    }
}

impl SocketSender {
    pub async fn send(&mut self, frame: &ClientFrame<'_>) -> Result<(), Error> {
        self.send_text(frame.to_text()).await
    }

    pub async fn send_data(&mut self, data: &RawValue) -> Result<(), Error> {
        self.send(&ClientFrame::Message(data)).await
    }

    pub async fn send_text(&mut self, text: impl Into<Utf8Bytes>) -> Result<(), Error> {
        write(&mut self.sink, Message::Text(text.into())).await
    }

    /// Sends a close frame (the answer is read by the receiving half).
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), Error> {
        write(&mut self.sink, close_frame(code, reason)).await
    }

    /// The socket again, from both its halves.
    pub fn reunite(self, rx: SocketReceiver) -> Result<Socket, Error> {
        let Frames { stream, ended } = rx.frames;
        match self.sink.reunite(stream) {
            Ok(ws) => Ok(Socket {
                frames: Frames { stream: ws, ended },
            }),
            Err(_) => Err(Error::Socket("the halves are of different sockets".into())),
        }
    }
}

impl SocketReceiver {
    /// The next event; after [`Event::SocketClosed`], `None`. WebSocket-level pings and pongs
    /// are answered by the library and not reported.
    pub async fn recv(&mut self) -> Option<Event> {
        self.frames.recv().await
    }

    /// The next frame as it came, not decoded ([`Event::decode`] reads a text,
    /// [`crate::event::relayed`] a relayed message in place): for a reader that only counts,
    /// times or echoes frames. After [`Raw::Closed`], `None`.
    pub async fn recv_raw(&mut self) -> Option<Raw> {
        self.frames.recv_raw().await
    }

    pub async fn recv_within(
        &mut self,
        limit: Duration,
        step: &'static str,
    ) -> Result<Event, Error> {
        self.frames.recv_within(limit, step).await
    }

    pub async fn welcome(&mut self, limit: Duration) -> Result<Welcomed, Error> {
        self.frames.welcome(limit).await
    }

    /// Whether the socket has closed (its [`Event::SocketClosed`] was returned).
    pub fn is_ended(&self) -> bool {
        self.frames.ended
    }
}

/// The reading side of a socket, whole or split: frames in, until the close.
struct Frames<S> {
    stream: S,
    /// The close was returned; nothing follows.
    ended: bool,
}

impl<S: Stream<Item = Result<Message, WsError>> + Unpin> Frames<S> {
    fn new(stream: S) -> Frames<S> {
        Frames {
            stream,
            ended: false,
        }
    }

    async fn recv(&mut self) -> Option<Event> {
        Some(match self.recv_raw().await? {
            Raw::Text(text) => Event::decode(&text),
            Raw::Binary => Event::Unknown("(binary)".into()),
            Raw::Closed(close) => Event::SocketClosed(close),
        })
    }

    async fn recv_raw(&mut self) -> Option<Raw> {
        if self.ended {
            return None;
        }
        loop {
            let closed = match self.stream.next().await {
                Some(Ok(Message::Text(text))) => return Some(Raw::Text(text)),
                Some(Ok(Message::Binary(_))) => return Some(Raw::Binary),
                Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => continue,
                Some(Ok(Message::Close(Some(frame)))) => {
                    Close::new(u16::from(frame.code), frame.reason.as_str())
                }
                Some(Ok(Message::Close(None))) => Close::new(1005, ""),
                Some(Err(e)) => Close::lost(socket_error(e).to_string()),
                None => Close::lost("connection ended"),
            };
            self.ended = true;
            return Some(Raw::Closed(closed));
        }
    }

    /// The next event within `limit`; a limit of zero (a deadline already passed) times out
    /// unless an event is there.
    async fn recv_within(&mut self, limit: Duration, step: &'static str) -> Result<Event, Error> {
        let event = timeout(limit, self.recv()).await;
        opened(event.map_err(|_| Error::Timeout(step))?)
    }

    /// The welcome, within `limit` (zero: as long as it takes, as a dial's timeout).
    async fn welcome(&mut self, limit: Duration) -> Result<Welcomed, Error> {
        let event = if limit.is_zero() {
            opened(self.recv().await)?
        } else {
            self.recv_within(limit, WELCOME_STEP).await?
        };
        match event {
            Event::Frame(ServerFrame::Created(welcome)) => Ok(Welcomed {
                created: true,
                welcome,
            }),
            Event::Frame(ServerFrame::Joined(welcome)) => Ok(Welcomed {
                created: false,
                welcome,
            }),
            other => Err(Error::Unexpected(Box::new(other))),
        }
    }
}

/// An event of an open socket; its close is [`Error::Closed`].
fn opened(event: Option<Event>) -> Result<Event, Error> {
    match event {
        Some(Event::SocketClosed(close)) => Err(Error::Closed(close)),
        Some(event) => Ok(event),
        None => Err(Error::Closed(Close::lost("already closed"))),
    }
}

/// Sends one message on a whole socket or its sending half.
async fn write<S: Sink<Message, Error = WsError> + Unpin>(
    sink: &mut S,
    message: Message,
) -> Result<(), Error> {
    sink.send(message).await.map_err(socket_error)
}

fn close_frame(code: u16, reason: &str) -> Message {
    Message::Close(Some(CloseFrame {
        code: WsCloseCode::from(code),
        reason: reason.to_owned().into(),
    }))
}

/// wss:// needs a rustls crypto provider. rustls picks the only one compiled in by itself, but
/// a build with two (aws-lc-rs beside ring, through another crate) must choose: then ring,
/// unless the program chose already.
fn ensure_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Another thread may have installed one meanwhile, which is as good.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

fn connect_error(e: WsError) -> Error {
    match e {
        WsError::Io(io) => Error::Io(io.kind()),
        WsError::Http(response) => Error::Http {
            status: response.status().as_u16(),
            body: response
                .body()
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
                .unwrap_or_default(),
        },
        WsError::Tls(tls) => Error::Tls(tls.to_string()),
        WsError::Url(url) => Error::Url(url.to_string()),
        other => Error::Handshake(other.to_string()),
    }
}

fn socket_error(e: WsError) -> Error {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => {
            Error::Closed(Close::new(ABNORMAL, "closed"))
        }
        WsError::Io(io) => Error::Io(io.kind()),
        other => Error::Socket(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn room_urls() {
        for (base, url) in [
            ("https://duet.example", "wss://duet.example/ws/r-1"),
            ("https://duet.example/", "wss://duet.example/ws/r-1"),
            ("http://127.0.0.1:8787", "ws://127.0.0.1:8787/ws/r-1"),
            ("wss://duet.example", "wss://duet.example/ws/r-1"),
            ("ws://h:1", "ws://h:1/ws/r-1"),
        ] {
            assert_eq!(room_url(base, "r-1").unwrap(), url, "{base}");
        }
        for (base, room) in [
            ("ftp://duet.example", "r"),
            ("duet.example", "r"),
            ("https://duet.example", ""),
            ("https://duet.example", "a/b"),
            ("https://duet.example", &"x".repeat(65)),
        ] {
            assert!(
                matches!(room_url(base, room), Err(Error::Url(_))),
                "{base} {room}"
            );
        }
    }

    #[test]
    fn dials_offer_v1_the_ticket_and_the_token() {
        let dial = Dial::new("ws://h/ws/r");
        assert_eq!(dial.subprotocols(), "duet.v1");
        let dial = dial.ticket("a.b.c").resume("ff00");
        assert_eq!(
            dial.subprotocols(),
            "duet.v1, duet.ticket.a.b.c, duet.resume.ff00"
        );
        let request = dial.request().unwrap();
        assert_eq!(request.uri().to_string(), "ws://h/ws/r");
        assert_eq!(
            request.headers()[SEC_WEBSOCKET_PROTOCOL],
            "duet.v1, duet.ticket.a.b.c, duet.resume.ff00"
        );
        let query = Dial {
            resume_in_query: true,
            ..dial
        };
        assert_eq!(query.subprotocols(), "duet.v1, duet.ticket.a.b.c");
        assert_eq!(
            query.request().unwrap().uri().to_string(),
            "ws://h/ws/r?resume=ff00"
        );
        let bad = Dial::new("ws://h/ws/r").ticket("line\nbreak");
        assert!(matches!(bad.request(), Err(Error::Url(_))));
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_an_error() {
        // wss:// to a plain TCP server that hangs up: an error to count, never a panic.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                drop(tcp);
            }
        });
        let dial = Dial::new(format!("wss://127.0.0.1:{port}/ws/r"));
        match Socket::connect(&dial).await {
            Err(Error::Tls(_) | Error::Io(_)) => {}
            Err(other) => panic!("{other}"),
            Ok(_) => panic!("a TLS socket to a plain server"),
        }
    }
}
