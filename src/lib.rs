//! # Duet: WebRTC signaling for rooms of two on Cloudflare Workers
//!
//! ## Layout
//! The crate is a functional core and a thin shell.
//! - Core (plain Rust, tested on the host with `cargo test`):
//!   - [`protocol`]: the wire types of protocol v1 and the error and close codes.
//!   - [`intake`] and [`rate`]: the checks every client frame passes (rate, binary, size, syntax).
//!   - [`room`]: the room of two as state transitions that return effects (frames to send,
//!     sockets to close, lifecycle events to log).
//!   - [`route`]: which HTTP request goes where, and the HTTP errors.
//!   - [`config`]: the `[vars]`, validated, with defaults.
//!   - [`token`]: ids, resume tokens and their stored hashes.
//!   - [`turn`]: TURN credentials (shared secret per client, Cloudflare's managed TURN).
//!   - [`placement`]: the location hint and jurisdiction of a room's Durable Object.
//! - Shell (`shell`, wasm32 only): the Worker's `fetch` and the `Room` Durable Object, which
//!   perform the core's decisions through the WebSocket hibernation API.
//!
//! ## Environment
//! - Binding `ROOMS`: the `Room` Durable Object namespace (SQLite-backed).
//! - Binding `ASSETS`: the static files in `public/`.
//! - Vars: `ALLOWED_ORIGINS`, `ICE_SERVERS`, `MAX_MESSAGE_BYTES`, `RATE_LIMIT_BURST`,
//!   `RATE_LIMIT_PER_SEC`, `RESUME_GRACE_MS`, `STALE_AFTER_MS`, `ROOM_JURISDICTION`,
//!   `TURN_URLS`, `TURN_TTL_SECONDS`, `CF_TURN_KEY_ID` (see `docs/protocol.md`).
//! - Secrets: `TURN_SECRET`, `CF_TURN_API_TOKEN` (see `docs/deploy.md`).
//!
//! ## What is stored where
//! One Durable Object per room name. Its object is evicted whenever its sockets hibernate and
//! restarted on every deploy, so nothing lives only in memory:
//! - storage key `room`: the [`room::Room`] (slots, token hashes, who was told `ready`),
//!   written on lifecycle changes only, never when relaying;
//! - each socket's tag: its socket id; its attachment: socket id, client id, last ping;
//! - the alarm: the next resume deadline or sweep.
//!
//! A room holds two sockets because a call is two people: the server only pairs them and
//! relays their SDP and ICE; media flows peer to peer.

pub mod config;
pub mod effect;
pub mod frame;
pub mod intake;
pub mod placement;
pub mod protocol;
pub mod rate;
pub mod registry;
pub mod room;
pub mod route;
pub mod token;
pub mod turn;
pub mod vars;

#[cfg(target_arch = "wasm32")]
mod shell;
