//! What the core asks the Durable Object to do. Every decision about a socket, a log line or
//! storage comes out of the core as an [`Effect`]; performing effects, in order, is the only
//! way the shell touches a socket or the room's storage. The hot path (`crate::frame`)
//! returns [`SocketEffect`]s, which cannot name storage: relaying never writes.

use crate::protocol::{CloseCode, ServerFrame};
use crate::registry::SocketInfo;
use crate::room_state::RoomState;
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
    /// Store the room; with `alarm_at`, also arm the alarm for then (ms since the epoch), in
    /// the same write. Without, the alarm armed before (`room.alarm_at`) is early enough.
    Save {
        room: RoomState,
        alarm_at: Option<u64>,
    },
    /// The room is empty: delete its storage and its alarm.
    Clear,
    /// Nothing changed but the alarm that just fired must fire again at `at`.
    Rearm { at: u64 },
}

/// An effect on the sockets and the logs only: what the relay path may ask for.
#[derive(Debug, Clone)]
pub enum SocketEffect {
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
}

/// A write of the room's storage.
#[derive(Debug, Clone)]
pub enum StorageEffect {
    Save {
        room: Box<RoomState>,
        alarm_at: Option<u64>,
    },
    Clear,
    Rearm {
        at: u64,
    },
}

impl Effect {
    /// The effect as one on sockets, or as a storage write.
    pub fn split(self) -> Result<SocketEffect, StorageEffect> {
        match self {
            Effect::Send { conn, frame } => Ok(SocketEffect::Send { conn, frame }),
            Effect::SendText { conn, text } => Ok(SocketEffect::SendText { conn, text }),
            Effect::Close { conn, code } => Ok(SocketEffect::Close { conn, code }),
            Effect::Log(event) => Ok(SocketEffect::Log(event)),
            Effect::Attach { conn, info } => Ok(SocketEffect::Attach { conn, info }),
            Effect::Save { room, alarm_at } => Err(StorageEffect::Save {
                room: Box::new(room),
                alarm_at,
            }),
            Effect::Clear => Err(StorageEffect::Clear),
            Effect::Rearm { at } => Err(StorageEffect::Rearm { at }),
        }
    }
}

impl From<SocketEffect> for Effect {
    fn from(effect: SocketEffect) -> Self {
        match effect {
            SocketEffect::Send { conn, frame } => Effect::Send { conn, frame },
            SocketEffect::SendText { conn, text } => Effect::SendText { conn, text },
            SocketEffect::Close { conn, code } => Effect::Close { conn, code },
            SocketEffect::Log(event) => Effect::Log(event),
            SocketEffect::Attach { conn, info } => Effect::Attach { conn, info },
        }
    }
}

/// A log line of the core or the shell: never message contents, never tokens, secrets or
/// addresses. Every line the Worker and its objects write is one of these.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LogEvent {
    pub event: &'static str,
    /// Empty for a line about no room (a configuration problem, an internal error).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub room: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'static str>,
    /// What went wrong, for an operator (`config-error`, `internal-error`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// `placement`: the location hint given for the room's object, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location_hint: Option<&'static str>,
    /// `placement`: the jurisdiction of the room's object, if one is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub jurisdiction: Option<&'static str>,
    /// `turn-error`: the kind of failure and the HTTP status, if there was one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kind: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

/// `LOG_LEVEL`: which lines the Worker and its objects write. Errors (`config-error`,
/// `internal-error`, `turn-error` …) are always written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogLevel {
    /// Every lifecycle event: one line per placement, join, resume, ready, away, leave …
    #[default]
    Info,
    /// Only what needs an operator: failed and dropped webhook deliveries. A join then writes
    /// nothing, which is what a join costs least (bench/BASELINE.md, "Close to the floor").
    Warn,
}

impl LogLevel {
    pub fn parse(v: &str) -> Result<LogLevel, String> {
        match v {
            "info" => Ok(LogLevel::Info),
            "warn" => Ok(LogLevel::Warn),
            _ => Err(format!("{v:?} is not info or warn")),
        }
    }

    /// Whether `event` is written at this level.
    pub fn writes(self, event: &LogEvent) -> bool {
        self == LogLevel::Info || event.is_warning()
    }

    /// Whether the Worker writes its `placement` line (an info line) at this level.
    pub fn writes_info(self) -> bool {
        self == LogLevel::Info
    }
}

impl LogEvent {
    /// Whether the event needs an operator's attention: a webhook delivery failed or was given
    /// up, or a client reported that its call's media never connected. Every other event is
    /// the normal course of a room.
    pub fn is_warning(&self) -> bool {
        matches!(
            self.event,
            "webhook-failed" | "webhook-dropped" | "call-failed"
        )
    }

    /// An event of the room itself, about no client.
    pub fn room(event: &'static str, room: &str) -> Self {
        LogEvent {
            event,
            room: room.to_owned(),
            ..LogEvent::default()
        }
    }

    /// A problem about no room in particular, with its `message`.
    pub fn problem(event: &'static str, message: String) -> Self {
        LogEvent {
            event,
            message: Some(message),
            ..LogEvent::default()
        }
    }

    /// The first event of an object instance: a wake when sockets were already open.
    pub fn instance_start(room: &str, open_sockets: usize) -> Self {
        let event = if open_sockets > 0 { "wake" } else { "start" };
        LogEvent::room(event, room)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn warn_writes_only_the_webhook_warnings() {
        let failed = LogEvent::room("webhook-failed", "r");
        let dropped = LogEvent::room("webhook-dropped", "r");
        let call_failed = LogEvent::room("call-failed", "r");
        for event in [
            "start",
            "wake",
            "join",
            "resume",
            "ready",
            "away",
            "leave",
            "full",
            "rate-limited",
            "call-connected",
        ] {
            let line = LogEvent::room(event, "r");
            assert!(LogLevel::Info.writes(&line), "{event}");
            assert!(!LogLevel::Warn.writes(&line), "{event}");
        }
        for line in [&failed, &dropped, &call_failed] {
            assert!(LogLevel::Info.writes(line) && LogLevel::Warn.writes(line));
        }
        assert!(LogLevel::Info.writes_info() && !LogLevel::Warn.writes_info());
    }

    #[test]
    fn lines_carry_only_their_fields() {
        let text = |e: &LogEvent| serde_json::to_string(e).unwrap();
        assert_eq!(
            text(&LogEvent::room("join", "r")),
            r#"{"event":"join","room":"r"}"#
        );
        assert_eq!(
            text(&LogEvent::problem("internal-error", "x".into())),
            r#"{"event":"internal-error","message":"x"}"#
        );
        let placement = LogEvent {
            location_hint: Some("weur"),
            jurisdiction: Some("eu"),
            ..LogEvent::room("placement", "r")
        };
        assert_eq!(
            text(&placement),
            r#"{"event":"placement","room":"r","locationHint":"weur","jurisdiction":"eu"}"#
        );
    }

    #[test]
    fn only_the_two_names_parse() {
        assert_eq!(LogLevel::parse("info"), Ok(LogLevel::Info));
        assert_eq!(LogLevel::parse("warn"), Ok(LogLevel::Warn));
        for bad in ["", "INFO", "debug", "error", "warning"] {
            assert!(LogLevel::parse(bad).is_err(), "{bad}");
        }
    }
}
