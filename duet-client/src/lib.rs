//! # duet-client
//!
//! A native client for Duet signaling (`docs/protocol.md`): one room of two, join tickets,
//! resume with the rotated token, keep-alive, fresh ICE servers, reconnects with jittered
//! backoff, and a seam for the end-to-end envelope of `docs/e2e.md`. `docs/client.md`, "Rust",
//! is the guide.
//!
//! ## Example
//! Two peers meet in a room, one sends the other a message, both leave. (Run against a real
//! server by `tests/live.rs`, with the server's URL in `DUET_URL`.)
//!
#![doc = concat!("```no_run\n", include_str!("../tests/live/quickstart.rs"), "```")]
//!
//! ## Layout
//! - [`socket`]: one WebSocket to a room and nothing more ([`Socket`], [`Dial`]): no task, no
//!   timer. Load generators and tests hold thousands of these.
//! - [`client`]: the connection that stays up ([`Client`]): one task per client that performs
//!   the decisions of [`policy`] (what a close means, when to refresh ICE servers, what a
//!   welcome changes) with [`backoff`]'s delays and [`ticket`]'s tickets.
//! - [`event`]: everything a client hears, one enum ([`Event`]), including every close code and
//!   in-band refusal of the protocol ([`Close`], [`Refused`]).
//! - [`codec`]: the seam for end-to-end encryption (below).
//!
//! ## One definition of the wire
//! The frames are the server's own types, from `duet::protocol` (re-exported as [`protocol`]):
//! [`ServerFrame`] and [`Welcome`] as the server sends them, `ClientFrame::to_text` for what a
//! client sends, and the close codes, error codes and refusals (`duet::route::HttpError`) by
//! their one definition. Nothing in this crate spells a frame.
//!
//! ## End-to-end encryption: the [`Codec`] seam
//! [`Config::codec`] takes any [`Codec`]. The client calls it from its one task, in event
//! order: `seal` for every message the application sends (an error refuses the send, nothing
//! goes out in the clear), `open` for every message received (`Some(data)` delivers it,
//! `None` drops it, with an [`Event::E2eError`] or [`Event::E2eConfirmed`] pushed to
//! `out.events`), `observe` for every other event before the application sees it (a `ready`
//! starts the key confirmation: push the sealed hello to `out.send`, which leaves before
//! anything the application sends next), and `on_deadline` when its `deadline` passes (no
//! hello in time: `key-mismatch`). The envelope itself (`docs/e2e.md`) is a codec of its own
//! module.
//!
//! ## Tickets, resume, keep-alive
//! [`Ticket::Fixed`] or [`Ticket::provider`] (called before every connect). Every dial offers
//! `duet.v1`, so the server refuses in-band ([`Event::Refused`], then the close) and the
//! client acts as `docs/client.md` says: wait `retryAfter` after `too-many-joins`, one fresh
//! ticket after `ticket-expired`, stop after the others. The resume token changes only when a
//! welcome brings a new one, so a socket lost before its welcome resumes with the token it
//! came with (`docs/protocol.md`, "Rotation"). The keep-alive is the exact text the runtime
//! answers without waking the room, first at once on every welcome.

pub mod backoff;
pub mod client;
pub mod codec;
pub mod e2e;
pub mod error;
pub mod event;
pub mod policy;
pub mod socket;
pub mod ticket;

pub use backoff::Backoff;
pub use client::{Client, Config, Disconnect, State, Status};
pub use codec::Codec;
pub use duet::protocol;
pub use duet::protocol::{ServerFrame, Welcome};
pub use duet::report::Report;
pub use error::Error;
pub use event::{Close, Event, Refused};
pub use socket::{room_url, Dial, Raw, Socket, SocketReceiver, SocketSender, Welcomed};
pub use ticket::Ticket;
