//! What the core asks the Durable Object to do. Every decision about a socket, a log line or
//! storage comes out of the core as an [`Effect`]; performing effects, in order, is the only
//! way the shell touches a socket or the room's storage.

use crate::protocol::{CloseCode, ServerFrame};
use crate::registry::SocketInfo;
use crate::slots::RoomState;
use serde::Serialize;

/// One thing for the Durable Object to do. Storage effects come before the frames that
/// depend on them; the runtime's output gate holds those frames until the write is durable.
#[derive(Debug, Clone)]
pub enum Effect {
    /// Send `frame` on socket `conn`.
    Send { conn: String, frame: ServerFrame },
    /// Send text written without serde (a relayed message, a pong) on socket `conn`.
    SendText { conn: String, text: String },
    /// Close socket `conn` with `code` and its reason; it leaves the registry.
    Close { conn: String, code: CloseCode },
    /// Write one line to the logs.
    Log(LogEvent),
    /// Replace socket `conn`'s attachment.
    Attach { conn: String, info: SocketInfo },
    /// Store the room and arm the alarm for `alarm_at` (ms since the epoch).
    Save { room: RoomState, alarm_at: u64 },
    /// The room is empty: delete its storage and its alarm.
    Clear,
    /// Nothing changed but the alarm that just fired must fire again at `at`.
    Rearm { at: u64 },
}

/// A lifecycle event for the logs: never message contents, never tokens.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub event: &'static str,
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
}

impl LogEvent {
    /// An event of the room itself, about no client.
    pub fn room(event: &'static str, room: &str) -> Self {
        LogEvent {
            event,
            room: room.to_owned(),
            client_id: None,
            reason: None,
        }
    }

    /// The first event of an object instance: a wake when sockets were already open.
    pub fn instance_start(room: &str, open_sockets: usize) -> Self {
        let event = if open_sockets > 0 { "wake" } else { "start" };
        LogEvent::room(event, room)
    }
}
