//! # duet-client
//!
//! A native client for Duet signaling (docs/protocol.md): one room of two, resume, tickets,
//! keep-alive, ICE servers and the end-to-end envelope of docs/e2e.md.
//!
//! The wire types are the server's own (`duet::protocol`); nothing here redefines a frame.

pub use duet::protocol;

pub mod e2e;
