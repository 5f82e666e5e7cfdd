//! The envelope of docs/e2e.md as the [`Client`](crate::Client)'s [`Codec`]: every message
//! sealed and opened, the key confirmation's hellos sent when duet.js sends them, and the
//! `e2e-confirmed` and `e2e-error` events it reports, with the same reasons.
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use duet_client::e2e::EnvelopeCodec;
//! use duet_client::{Client, Config};
//!
//! let secret = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8"; // from a `#k=` link
//! let codec = EnvelopeCodec::new(secret, "my-room")?;
//! let mut client = Client::connect(Config::new("https://duet.example", "my-room")?.codec(codec));
//! while let Some(event) = client.next_event().await {
//!     println!("{event:?}");
//! }
//! # Ok(())
//! # }
//! ```

use serde_json::value::{to_raw_value, RawValue};
use serde_json::Value;
use tokio::time::Instant;

use super::{check_plain, BadSecret, E2e, E2eError, Received, KEY_CONFIRM};
use crate::codec::{Codec, Context, Output};
use crate::event::Event;
use duet::protocol::ServerFrame;

/// The end-to-end codec: give it the secret of a `#k=` link.
#[derive(Debug)]
pub struct EnvelopeCodec {
    e2e: E2e,
    /// Whether the other side's key is ours (`Some(true)`), not (`Some(false)`), or unknown.
    confirmed: Option<bool>,
    /// `e2e-confirmed` goes out once per pairing.
    confirm_reported: bool,
    /// Silence after `ready` until then is `key-mismatch` (docs/e2e.md, "Key confirmation", 4).
    deadline: Option<Instant>,
}

impl EnvelopeCodec {
    /// The codec for `room` with the secret of a `#k=` link.
    pub fn new(secret: &str, room: &str) -> Result<EnvelopeCodec, BadSecret> {
        Ok(EnvelopeCodec {
            e2e: E2e::new(secret, room)?,
            confirmed: None,
            confirm_reported: false,
            deadline: None,
        })
    }

    /// Whether the other side holds our key: `Some(true)` once its hello opened, `Some(false)`
    /// after a `key-mismatch`, `None` while unknown.
    pub fn key_confirmed(&self) -> Option<bool> {
        self.confirmed
    }

    /// Sends our hello to `peer` (sealed with our current id), before anything sent after it.
    fn hello(&self, ctx: &Context<'_>, peer: &str, out: &mut Output) {
        if !ctx.open || ctx.client_id.is_empty() {
            return;
        }
        let sealed = self
            .e2e
            .seal_hello(ctx.client_id, peer)
            .ok()
            .and_then(|hello| to_raw_value(&hello).ok());
        out.send.extend(sealed);
    }

    fn on_frame(&mut self, ctx: &Context<'_>, frame: &ServerFrame, out: &mut Output) {
        match frame {
            ServerFrame::Created(welcome) | ServerFrame::Joined(welcome) => {
                self.e2e.add_own_id(&welcome.client_id);
                if welcome.resumed != Some(true) {
                    self.confirmed = None; // a fresh slot: no pairing until `ready`
                } else if self.confirmed != Some(true) {
                    // Back in a pairing whose hellos may have been lost with the socket.
                    let peer = welcome.peers.iter().find(|id| **id != welcome.client_id);
                    if let Some(peer) = peer {
                        let ctx = Context {
                            client_id: &welcome.client_id,
                            open: true,
                            ..*ctx
                        };
                        self.hello(&ctx, peer, out);
                    }
                }
            }
            // The peer is back: it may have missed our hello, or be a reloaded page.
            ServerFrame::PeerJoined {
                client_id,
                resumed: true,
                ..
            } => self.hello(ctx, client_id, out),
            ServerFrame::PeerAway { .. } => self.deadline = None,
            ServerFrame::PeerLeft { .. } => {
                self.deadline = None;
                self.confirmed = None;
            }
            ServerFrame::Ready { peers, .. } => {
                self.confirmed = None;
                self.confirm_reported = false;
                if let Some(peer) = peers.iter().find(|id| **id != ctx.client_id) {
                    self.hello(ctx, peer, out);
                }
                self.deadline = Some(Instant::now() + KEY_CONFIRM);
            }
            _ => {}
        }
    }

    fn report(&mut self, error: E2eError, from: Option<&str>, out: &mut Output) {
        if error == E2eError::KeyMismatch {
            self.deadline = None;
            if self.confirmed != Some(true) {
                self.confirmed = Some(false);
            }
        }
        out.events.push(e2e_error(error, from));
    }
}

fn e2e_error(error: E2eError, from: Option<&str>) -> Event {
    Event::E2eError {
        reason: error.reason().to_owned(),
        from: from.map(str::to_owned),
        message: error.to_string(),
    }
}

impl Codec for EnvelopeCodec {
    fn seal(&mut self, ctx: &Context<'_>, data: &RawValue) -> Result<Box<RawValue>, String> {
        let envelope = self
            .e2e
            .seal_json(ctx.client_id, data.get())
            .map_err(|e| e.to_string())?;
        to_raw_value(&envelope).map_err(|e| e.to_string())
    }

    fn open(
        &mut self,
        _ctx: &Context<'_>,
        from: &str,
        data: &RawValue,
        out: &mut Output,
    ) -> Option<Box<RawValue>> {
        let value: Value = match serde_json::from_str(data.get()) {
            Ok(value) => value,
            Err(_) => {
                self.report(E2eError::NotEncrypted, Some(from), out);
                return None;
            }
        };
        match self.e2e.receive(from, &value) {
            Ok(Received::Message(value)) => to_raw_value(&value).ok(),
            Ok(Received::Hello {
                confirmed: false, ..
            }) => None, // an earlier pairing's
            Ok(Received::Hello {
                confirmed: true, ..
            }) => {
                self.deadline = None;
                self.confirmed = Some(true);
                if !self.confirm_reported {
                    self.confirm_reported = true;
                    out.events.push(Event::E2eConfirmed {
                        peer: from.to_owned(),
                    });
                }
                None
            }
            Err(error) => {
                self.report(error, Some(from), out);
                None
            }
        }
    }

    fn observe(&mut self, ctx: &Context<'_>, event: &Event, out: &mut Output) {
        match event {
            Event::Frame(frame) => self.on_frame(ctx, frame, out),
            // A drop stops the clock: a hello may be lost with a socket; the return's decide.
            Event::SocketClosed(_) | Event::Reconnecting { .. } | Event::Closed(_) => {
                self.deadline = None
            }
            _ => {}
        }
    }

    fn deadline(&self) -> Option<Instant> {
        self.deadline
    }

    fn on_deadline(&mut self, ctx: &Context<'_>, out: &mut Output) {
        self.deadline = None;
        if self.confirmed == Some(true) || !ctx.open || ctx.peer.is_none() {
            return;
        }
        self.report(E2eError::KeyMismatch, ctx.peer, out);
    }
}

/// For a side without a key: messages pass as they are, and an envelope from the other side
/// (which has a key this side lacks) is dropped and reported as `unexpected-envelope`.
#[derive(Debug, Default)]
pub struct PlainCodec;

impl Codec for PlainCodec {
    fn seal(&mut self, _ctx: &Context<'_>, data: &RawValue) -> Result<Box<RawValue>, String> {
        Ok(data.to_owned())
    }

    fn open(
        &mut self,
        _ctx: &Context<'_>,
        from: &str,
        data: &RawValue,
        out: &mut Output,
    ) -> Option<Box<RawValue>> {
        let value: Value = serde_json::from_str(data.get()).unwrap_or(Value::Null);
        match check_plain(&value) {
            Ok(()) => Some(data.to_owned()),
            Err(error) => {
                out.events.push(e2e_error(error, Some(from)));
                None
            }
        }
    }
}

#[cfg(test)]
mod tests;
