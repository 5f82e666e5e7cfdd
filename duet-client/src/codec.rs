//! The seam for end-to-end encryption: a [`Codec`] seals every message the [`crate::Client`]
//! sends and opens every message it receives, and may send messages of its own (a key
//! confirmation after `ready`, say) and report events ([`Event::E2eConfirmed`],
//! [`Event::E2eError`]). The envelope of `docs/e2e.md` is one such codec (`crate::e2e`); the
//! client itself knows nothing of keys.
//!
//! Every call comes from the client's one task, in the order of events, so a codec needs no
//! lock; it keeps its own state (accepted IVs, our past ids, the confirmation deadline).

use crate::event::Event;
use serde_json::value::RawValue;
use tokio::time::Instant;

/// Where the client stands when it asks the codec.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub room: &'a str,
    /// Our id in the room (the last welcome's); empty before the first welcome.
    pub client_id: &'a str,
    /// The other peer's id, when there is one.
    pub peer: Option<&'a str>,
    /// Whether a socket is open and welcomed, so that [`Output::send`] goes out now.
    pub open: bool,
}

/// What a codec asks the client to do besides its answer.
#[derive(Debug, Default)]
pub struct Output {
    /// `data` values, already sealed, to send as `message` frames now, before anything the
    /// application sends after this event (in order; dropped while no socket is open).
    pub send: Vec<Box<RawValue>>,
    /// Events to hand to the application, after the event that caused them.
    pub events: Vec<Event>,
}

/// Seals and opens the `data` of messages. See the module's documentation.
pub trait Codec: Send + 'static {
    /// The `data` to send for the application's `data`. An error refuses the send: nothing is
    /// ever sent in the clear instead.
    fn seal(&mut self, ctx: &Context<'_>, data: &RawValue) -> Result<Box<RawValue>, String>;

    /// What to deliver for a message `from` the other peer: `Some(data)` delivers it as an
    /// [`Event::Message`]; `None` delivers nothing (a control message, or a failure, which
    /// the codec reports in `out.events`).
    fn open(
        &mut self,
        ctx: &Context<'_>,
        from: &str,
        data: &RawValue,
        out: &mut Output,
    ) -> Option<Box<RawValue>>;

    /// Sees every event before the application does (welcomes, `ready`, `peer-joined`,
    /// `peer-left`, reconnects, the close), to start or stop a key confirmation.
    fn observe(&mut self, ctx: &Context<'_>, event: &Event, out: &mut Output) {
        let _ = (ctx, event, out);
    }

    /// When [`Codec::on_deadline`] should be called next, if ever.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// The deadline has passed (a key confirmation that never came, say).
    fn on_deadline(&mut self, ctx: &Context<'_>, out: &mut Output) {
        let _ = (ctx, out);
    }
}
