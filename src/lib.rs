//! # Duet: WebRTC signaling for rooms of two on Cloudflare Workers
//!
//! ## Layout
//! The crate is a functional core and a thin shell.
//! - Core (plain Rust, tested on the host with `cargo test`):
//!   - [`protocol`]: the wire types of protocol v1 and the error and close codes.
//!   - [`intake`] and [`rate`]: the checks every client frame passes (rate, binary, size, syntax).
//!   - [`registry`]: the room's open sockets, their attachments and rate buckets.
//!   - [`frame`]: what one client frame does on the hot path (relay, pong, error, fresh ICE
//!     servers), from the registry alone.
//!   - [`room_state`]: what the object stores for a room ([`room_state::RoomState`]).
//!   - [`room`]: joins, resumes, leaves, drops, the alarm and the operator's verbs, as
//!     transitions of that state.
//!   - [`effect`]: what the core asks the shell to do (send, close, log, attach, store); the
//!     relay path's [`effect::SocketEffect`] cannot name storage. Every log line, the shell's
//!     too, is an [`effect::LogEvent`].
//!   - [`admission`]: the one typed value the Worker hands a room's object for a request.
//!   - [`admin`]: the operator's API: who may call it (`ADMIN_SECRET`), its verbs and bodies.
//!   - [`route`]: which HTTP request goes where, the handshake check, the HTTP errors, and
//!     which refusals go in-band to a client that can read them ([`route::refusal`]).
//!   - [`ticket`]: signed join tickets (HS256 JWTs) and the identities they name.
//!   - [`webhook`]: lifecycle webhooks: events, the outbox's retry schedule, the signature.
//!   - [`config`] and [`vars`]: the `[vars]`, validated, with defaults.
//!   - [`token`]: ids, resume tokens and their stored hashes.
//!   - [`report`]: a client's report of how its call's media connected.
//!   - [`turn`]: TURN credentials (shared secret per client, Cloudflare's managed TURN).
//!   - [`placement`]: the location hint and jurisdiction of a room's Durable Object.
//! - Shell (`shell`, wasm32 only): the Worker's `fetch` and the `Room` Durable Object, which
//!   perform the core's effects through the WebSocket hibernation API.
//!
//! ## One flow
//! request → Worker (`route`: method, room, origin, ticket, upgrade, handshake, join limit; or
//! `admin`: secret, verb, body) → one [`admission::Admission`] to the room's Durable Object,
//! which never reads the HTTP request itself → the core decides (`frame::on_frame` for a frame,
//! `room::on_join` for a new socket, `room::on_event` for a leave, a close or the alarm,
//! `room::on_admin` for an operator's verb) → a list of [`effect::Effect`]s → the object
//! performs them in order: storage writes first, then frames and closes on the sockets of its
//! registry. The object never decides anything itself.
//!
//! ## Environment
//! - Binding `ROOMS`: the `Room` Durable Object namespace (SQLite-backed).
//! - Binding `ASSETS`: the static files in `public/`.
//! - Binding `JOIN_LIMITER` (`[[ratelimits]]`): joins per client IP and per ticket identity;
//!   without it joins are not limited (logged once).
//! - Vars: `ALLOWED_ORIGINS`, `ICE_SERVERS`, `MAX_MESSAGE_BYTES`, `RATE_LIMIT_BURST`,
//!   `RATE_LIMIT_PER_SEC`, `RESUME_GRACE_MS`, `STALE_AFTER_MS`, `ROOM_JURISDICTION`,
//!   `MAX_TICKET_TTL_SECONDS`, `TURN_URLS`, `TURN_TTL_SECONDS`, `CF_TURN_KEY_ID`, `WEBHOOK_URL`
//!   (see `docs/deploy.md` for the TURN ones, `docs/protocol.md` for the rest). A setting that
//!   restricts access fails closed when invalid (`config`).
//! - Secrets: `TURN_SECRET`, `CF_TURN_API_TOKEN` (see `docs/deploy.md`), `JOIN_SECRET` (signed
//!   join tickets, see `docs/access.md`), `WEBHOOK_SECRET` (`docs/webhooks.md`), `ADMIN_SECRET`
//!   (the admin API, `docs/admin.md`; unset, the API does not exist).
//!
//! ## What is stored where
//! One Durable Object per room name. Its object is evicted whenever its sockets hibernate and
//! restarted on every deploy, so nothing lives only in memory:
//! - storage key `room`: the [`room_state::RoomState`] (slots, token hashes, who was told `ready`,
//!   with webhooks the call's session and the outbox of undelivered events, and the operator's
//!   bans until they end), written on lifecycle changes, webhook deliveries and the operator's
//!   verbs only, never when relaying;
//! - each socket's tag: its socket id; its attachment ([`registry::SocketInfo`]): socket id,
//!   client id, room, last ping;
//! - the alarm: no later than the next resume deadline, sweep or webhook delivery. A change
//!   sets it only when it must come earlier (`alarmAt` in the room records when it is set);
//!   an early alarm finds nothing due and re-arms.
//!
//! A room holds two sockets because a call is two people: the server only pairs them and
//! relays their SDP and ICE; media flows peer to peer.

pub mod admin;
pub mod admission;
pub mod config;
pub mod effect;
pub mod frame;
pub mod intake;
pub mod placement;
pub mod protocol;
pub mod rate;
pub mod registry;
pub mod report;
pub mod room;
pub mod room_state;
pub mod route;
pub mod ticket;
pub mod token;
pub mod turn;
pub mod vars;
pub mod webhook;

#[cfg(target_arch = "wasm32")]
mod shell;
