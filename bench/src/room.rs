//! A room of two peers on `duet-client` sockets: open it (first peer `created`, second
//! `joined`, then `peer-joined` and `ready` for both), wait for what a scenario expects, close
//! it. The wire is the client's: nothing here spells or parses a frame.

use crate::stats::{Failure, Latency};
use duet_client::event::relayed;
use duet_client::protocol::{ClientFrame, ServerFrame};
use duet_client::{Dial, Event, Raw, Socket};
use serde_json::value::RawValue;
use std::time::{Duration, Instant};

/// The dials of a room's two peers: `a` arrives first, `b` second.
#[derive(Debug, Clone, PartialEq)]
pub struct RoomDial {
    pub a: Dial,
    pub b: Dial,
}

/// A room's two peers: `a` arrived first (got `created`), `b` second (got `joined`).
pub struct Pair {
    pub a: Socket,
    pub b: Socket,
}

impl Pair {
    /// `data` from `a` to `b`, and back: it must return unchanged. Whatever reaches `a`
    /// meanwhile (say `error:rate-limited`) means the message will never arrive: that is the
    /// failure, rather than a timeout. Each message is read once, in place.
    pub async fn round_trip(&mut self, data: &RawValue, limit: Duration) -> Result<(), Failure> {
        self.a.send_data(data).await?;
        let echo = |got: &RawValue| ClientFrame::Message(got).to_text();
        let back = tokio::select! {
            back = expect_relay(&mut self.b, limit, "relay", echo) => back?,
            event = self.a.recv_within(limit, "relay") => {
                return Err(event.map_or_else(Failure::from, |e| Failure::Unexpected(e.kind())));
            }
        };
        self.b.send_text(back).await?;
        let same = |got: &RawValue| got.get() == data.get();
        if expect_relay(&mut self.a, limit, "relay back", same).await? {
            Ok(())
        } else {
            Err(Failure::WrongData)
        }
    }
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
pub async fn open_room(room: &RoomDial, opened: &mut Opened) -> Result<Pair, Failure> {
    let start = Instant::now();
    let (a, welcomed) = Socket::join(&room.a).await.map_err(Failure::connect)?;
    if !welcomed.created {
        close(a).await;
        return Err(Failure::Unexpected("joined".into()));
    }
    opened.welcome.record(start.elapsed());
    let b_start = Instant::now();
    let mut pair = match Socket::join(&room.b).await {
        Ok((b, welcomed)) if !welcomed.created => Pair { a, b },
        Ok((b, _)) => {
            close_pair(Pair { a, b }).await;
            return Err(Failure::Unexpected("created".into()));
        }
        Err(e) => {
            close(a).await;
            return Err(Failure::connect(e));
        }
    };
    opened.welcome.record(b_start.elapsed());
    match ready(&mut pair, room.a.timeout).await {
        Ok(()) => {
            opened.ready = Some(start.elapsed());
            Ok(pair)
        }
        Err(failure) => {
            close_pair(pair).await;
            Err(failure)
        }
    }
}

/// `peer-joined` and `ready` for the first peer, `ready` for the second.
async fn ready(pair: &mut Pair, limit: Duration) -> Result<(), Failure> {
    let joined = |e: &Event| matches!(e, Event::Frame(ServerFrame::PeerJoined { .. }));
    let ready = |e: &Event| matches!(e, Event::Frame(ServerFrame::Ready { .. }));
    expect(&mut pair.a, limit, "peer-joined", joined).await?;
    expect(&mut pair.a, limit, "ready", ready).await?;
    expect(&mut pair.b, limit, "ready", ready).await?;
    Ok(())
}

/// Waits for an event that `want` accepts, skipping `pong`s (answers to keep-alives). Any
/// other event is a failure named after its kind.
pub async fn expect(
    socket: &mut Socket,
    limit: Duration,
    step: &'static str,
    want: impl Fn(&Event) -> bool,
) -> Result<Event, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = socket.recv_within(left, step).await?;
        if want(&event) {
            return Ok(event);
        }
        if !matches!(event, Event::Pong) {
            return Err(Failure::Unexpected(event.kind()));
        }
    }
}

/// Waits for a relayed message, skipping `pong`s, and reads its `data` with `read` where it
/// lies in the frame (the hot path of relay: one parse, no copy).
pub async fn expect_relay<R>(
    socket: &mut Socket,
    limit: Duration,
    step: &'static str,
    read: impl FnOnce(&RawValue) -> R,
) -> Result<R, Failure> {
    let deadline = Instant::now() + limit;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let raw = tokio::time::timeout(left, socket.recv_raw()).await;
        let text = match raw.map_err(|_| Failure::Timeout(step))? {
            Some(Raw::Text(text)) => text,
            Some(Raw::Binary) => return Err(Failure::Unexpected("(binary)".into())),
            Some(Raw::Closed(close)) => return Err(duet_client::Error::Closed(close).into()),
            None => return Err(Failure::Closed(None)),
        };
        if let Some(message) = relayed(&text) {
            return Ok(read(message.data));
        }
        match Event::decode(&text) {
            Event::Pong => {}
            other => return Err(Failure::Unexpected(other.kind())),
        }
    }
}

/// Closes with 1000, which releases the slot at once, and waits briefly for the answer.
pub async fn close(socket: Socket) {
    socket.close(1000, "").await;
}

pub async fn close_pair(pair: Pair) {
    tokio::join!(close(pair.a), close(pair.b));
}
