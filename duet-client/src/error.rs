//! Why an operation of the client failed.

use crate::event::{Close, Event};
use std::fmt;

/// What went wrong with a socket or a call of the client. Each variant is a kind of failure a
/// caller may count or act on; none carries a stack trace or a secret.
#[derive(Debug)]
pub enum Error {
    /// A URL, room name, ticket or token that cannot make a request.
    Url(String),
    /// The network: connection refused, reset, unreachable…
    Io(std::io::ErrorKind),
    Tls(String),
    /// The server answered the upgrade with an HTTP error (the refusals a client cannot read
    /// in-band: `invalid-room`, `forbidden-origin`, …); `body` is its JSON.
    Http {
        status: u16,
        body: String,
    },
    /// The upgrade failed otherwise (not a WebSocket server, a protocol error).
    Handshake(String),
    /// A step did not finish in time; the step's name.
    Timeout(&'static str),
    /// The socket closed.
    Closed(Close),
    /// A WebSocket error on an open socket.
    Socket(String),
    /// An event other than the one the step waits for (a refusal or `full` instead of a
    /// welcome, say).
    Unexpected(Box<Event>),
    /// The ticket provider failed.
    Ticket(String),
    /// The data to send is not JSON, or an end-to-end codec could not seal it.
    Data(String),
    /// [`crate::Client`]: the `message` frame would be `bytes` long, over the `max` the server
    /// announced in its welcome (`maxMessageBytes`); nothing was sent.
    TooLarge {
        bytes: usize,
        max: usize,
    },
    /// [`crate::Client`]: no socket is open (nothing is queued), or the client has stopped.
    NotOpen,
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Url(e) => write!(f, "bad request: {e}"),
            Error::Io(kind) => write!(f, "network: {kind:?}"),
            Error::Tls(e) => write!(f, "tls: {e}"),
            Error::Http { status, body } => write!(f, "HTTP {status}: {body}"),
            Error::Handshake(e) => write!(f, "handshake: {e}"),
            Error::Timeout(step) => write!(f, "timed out: {step}"),
            Error::Closed(close) => write!(f, "closed: {} {}", close.code, close.reason),
            Error::Socket(e) => write!(f, "socket: {e}"),
            Error::Unexpected(event) => write!(f, "unexpected: {}", event.kind()),
            Error::Ticket(e) => write!(f, "no ticket: {e}"),
            Error::Data(e) => write!(f, "data: {e}"),
            Error::TooLarge { bytes, max } => {
                write!(f, "a frame of {bytes} bytes is over the server's {max}")
            }
            Error::NotOpen => write!(f, "no socket is open"),
        }
    }
}

impl std::error::Error for Error {}
