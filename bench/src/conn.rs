//! Sockets: connecting, waiting for an expected frame with a timeout, opening a room of two
//! peers, and closing them cleanly. Everything here returns a [`Failure`] instead of an error,
//! so scenarios can count what went wrong.

use crate::frame::Frame;
use crate::stats::{Failure, Latency};
use duet::protocol::ServerFrameType;
use futures_util::{SinkExt, StreamExt};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::time::timeout;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::header::{HeaderValue, SEC_WEBSOCKET_PROTOCOL};
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message, Utf8Bytes};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// How long a clean close waits for the server's answer.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Where one peer connects: the room's URL and the subprotocols it offers (a join ticket).
#[derive(Debug, Clone, PartialEq)]
pub struct Dial {
    pub url: String,
    pub protocols: Option<String>,
}

/// The dials of a room's two peers: `a` arrives first, `b` second.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomDial {
    pub a: Dial,
    pub b: Dial,
}

/// Opens a socket as `dial` says, with its subprotocols.
pub async fn connect_dial(dial: &Dial, limit: Duration) -> Result<Ws, Failure> {
    let mut request = dial
        .url
        .as_str()
        .into_client_request()
        .map_err(|e| Failure::Handshake(short(&e)))?;
    if let Some(protocols) = &dial.protocols {
        let value = HeaderValue::from_str(protocols)
            .map_err(|_| Failure::Handshake("subprotocols are not a header value".into()))?;
        request.headers_mut().insert(SEC_WEBSOCKET_PROTOCOL, value);
    }
    connect(request, limit).await
}

/// Opens a socket to `url` (or a request with headers), Nagle off (small frames must not wait
/// for ACKs).
pub async fn connect<R>(url: R, limit: Duration) -> Result<Ws, Failure>
where
    R: IntoClientRequest + Unpin,
{
    match timeout(
        limit,
        tokio_tungstenite::connect_async_with_config(url, None, true),
    )
    .await
    {
        Err(_) => Err(Failure::Timeout("connect")),
        Ok(Ok((ws, _response))) => Ok(ws),
        Ok(Err(e)) => Err(connect_failure(e)),
    }
}

fn connect_failure(e: WsError) -> Failure {
    match e {
        WsError::Io(io) => Failure::Connect(format!("{:?}", io.kind())),
        WsError::Http(response) => Failure::Http(response.status().as_u16()),
        WsError::Tls(tls) => Failure::Connect(format!("tls: {tls}")),
        other => Failure::Handshake(short(&other)),
    }
}

/// An error's text, cut to keep failure labels few and short.
fn short(e: &WsError) -> String {
    let text = e.to_string();
    text.chars().take(60).collect()
}

/// The next text frame, skipping WebSocket-level pings and pongs.
pub async fn next_text(
    ws: &mut Ws,
    limit: Duration,
    step: &'static str,
) -> Result<Utf8Bytes, Failure> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let next = tokio::time::timeout_at(deadline, ws.next())
            .await
            .map_err(|_| Failure::Timeout(step))?;
        match next {
            Some(Ok(Message::Text(text))) => return Ok(text),
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => {}
            Some(Ok(Message::Binary(_))) => return Err(Failure::Unexpected("binary".into())),
            Some(Ok(Message::Close(frame))) => {
                return Err(Failure::Closed(frame.map(|f| u16::from(f.code))))
            }
            Some(Err(e)) => return Err(socket_failure(e)),
            None => return Err(Failure::Closed(None)),
        }
    }
}

fn socket_failure(e: WsError) -> Failure {
    match e {
        WsError::ConnectionClosed | WsError::AlreadyClosed => Failure::Closed(None),
        WsError::Io(io) => Failure::Socket(format!("{:?}", io.kind())),
        other => Failure::Socket(short(&other)),
    }
}

/// Waits for a relayed `message` and hands its `data` to `take`, skipping `pong`s.
pub async fn expect_data<R>(
    ws: &mut Ws,
    limit: Duration,
    step: &'static str,
    take: impl FnOnce(&str) -> R,
) -> Result<R, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let text = next_text(ws, left, step).await?;
        match Frame::classify(&text) {
            Frame::Message { data } => return Ok(take(data)),
            Frame::Is(ServerFrameType::Pong) => {}
            other => return Err(Failure::Unexpected(other.kind())),
        }
    }
}

/// Waits for a frame that `want` accepts, skipping `pong`s (answers to keep-alives). Any other
/// frame is a failure named after its type.
pub async fn expect(
    ws: &mut Ws,
    limit: Duration,
    step: &'static str,
    want: impl Fn(&Frame) -> bool,
) -> Result<Utf8Bytes, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let text = next_text(ws, left, step).await?;
        let frame = Frame::classify(&text);
        if want(&frame) {
            return Ok(text);
        }
        if frame != Frame::Is(ServerFrameType::Pong) {
            return Err(Failure::Unexpected(frame.kind()));
        }
    }
}

pub async fn send(ws: &mut Ws, text: impl Into<Utf8Bytes>) -> Result<(), Failure> {
    ws.send(Message::Text(text.into()))
        .await
        .map_err(socket_failure)
}

/// A room's two peers: `a` arrived first (got `created`), `b` second (got `joined`).
pub struct Pair {
    pub a: Ws,
    pub b: Ws,
}

/// What opening a room measured.
#[derive(Default)]
pub struct Opened {
    /// Connect start → welcome frame, for each peer that got one.
    pub welcome: Latency,
    /// First connect start → both peers told `ready`.
    pub ready: Option<Duration>,
}

/// Opens a room: the first peer connects and gets `created`, the second connects and gets
/// `joined`; then the first gets `peer-joined` and both get `ready`.
pub async fn open_room(
    room: &RoomDial,
    limit: Duration,
    opened: &mut Opened,
) -> Result<Pair, Failure> {
    let start = Instant::now();
    let mut a = connect_dial(&room.a, limit).await?;
    expect(&mut a, limit, "created", |f| {
        *f == Frame::Is(ServerFrameType::Created)
    })
    .await?;
    opened.welcome.record(start.elapsed());

    let b_start = Instant::now();
    let mut b = match connect_dial(&room.b, limit).await {
        Ok(b) => b,
        Err(failure) => {
            close(a).await;
            return Err(failure);
        }
    };
    let welcomed = expect(&mut b, limit, "joined", |f| {
        *f == Frame::Is(ServerFrameType::Joined)
    })
    .await;
    if welcomed.is_ok() {
        opened.welcome.record(b_start.elapsed());
    }
    let ready = async {
        welcomed?;
        expect(&mut a, limit, "peer-joined", |f| {
            *f == Frame::Is(ServerFrameType::PeerJoined)
        })
        .await?;
        expect(&mut a, limit, "ready", |f| {
            *f == Frame::Is(ServerFrameType::Ready)
        })
        .await?;
        expect(&mut b, limit, "ready", |f| {
            *f == Frame::Is(ServerFrameType::Ready)
        })
        .await?;
        Ok(())
    }
    .await;
    match ready {
        Ok(()) => {
            opened.ready = Some(start.elapsed());
            Ok(Pair { a, b })
        }
        Err(failure) => {
            close_pair(Pair { a, b }).await;
            Err(failure)
        }
    }
}

/// Closes with 1000, which releases the slot at once, and waits briefly for the answer.
pub async fn close(mut ws: Ws) {
    let frame = CloseFrame {
        code: CloseCode::Normal,
        reason: Utf8Bytes::from_static(""),
    };
    if ws.close(Some(frame)).await.is_err() {
        return;
    }
    let _ = timeout(CLOSE_WAIT, async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
}

pub async fn close_pair(pair: Pair) {
    tokio::join!(close(pair.a), close(pair.b));
}
