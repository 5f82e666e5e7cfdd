//! The checks every client frame passes before the room acts on it, in this order: rate limit,
//! binary, size, syntax. The rate limit comes first so that floods of bad frames are limited too.

use crate::config::Config;
use crate::protocol::{ClientFrame, CloseCode, ErrorCode};
use crate::rate::{Admission, RateLimiter};

/// A frame as the socket delivered it.
#[derive(Debug, Clone, Copy)]
pub enum Incoming<'a> {
    Text(&'a str),
    Binary,
}

/// What to do with one incoming frame.
#[derive(Debug, PartialEq)]
pub enum Intake<'a> {
    Accept(ClientFrame<'a>),
    /// Answer with this error frame; the socket stays open.
    Refuse(ErrorCode),
    /// Answer with `error`, then close the socket with `close`.
    RefuseAndClose {
        error: ErrorCode,
        close: CloseCode,
    },
}

pub fn intake<'a>(
    incoming: Incoming<'a>,
    limiter: &mut RateLimiter,
    now_ms: u64,
    config: &Config,
) -> Intake<'a> {
    match limiter.admit(now_ms, config.rate_limit_burst, config.rate_limit_per_sec) {
        Admission::Allowed => {}
        Admission::Refused => return Intake::Refuse(ErrorCode::RateLimited),
        Admission::Exceeded => {
            return Intake::RefuseAndClose {
                error: ErrorCode::RateLimited,
                close: CloseCode::RateLimited,
            }
        }
    }
    let text = match incoming {
        Incoming::Binary => return Intake::Refuse(ErrorCode::UnsupportedBinary),
        Incoming::Text(text) => text,
    };
    if text.len() > config.max_message_bytes {
        return Intake::Refuse(ErrorCode::TooLarge);
    }
    match ClientFrame::parse(text) {
        Ok(frame) => Intake::Accept(frame),
        Err(code) => Intake::Refuse(code),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            max_message_bytes: 20,
            rate_limit_burst: 2,
            rate_limit_per_sec: 0.001,
            ..Config::default()
        }
    }

    #[test]
    fn order_of_checks() {
        let c = config();
        let mut rl = RateLimiter::new(c.rate_limit_burst, 0);
        assert_eq!(
            intake(Incoming::Binary, &mut rl, 0, &c),
            Intake::Refuse(ErrorCode::UnsupportedBinary)
        );
        assert_eq!(
            intake(Incoming::Text(r#"{"type":"ping"}      "#), &mut rl, 0, &c),
            Intake::Refuse(ErrorCode::TooLarge)
        );
        assert_eq!(
            intake(Incoming::Text("{}"), &mut rl, 0, &c),
            Intake::Refuse(ErrorCode::RateLimited)
        );
        assert_eq!(
            intake(Incoming::Text("{}"), &mut rl, 0, &c),
            Intake::Refuse(ErrorCode::RateLimited)
        );
        assert_eq!(
            intake(Incoming::Text("{}"), &mut rl, 0, &c),
            Intake::RefuseAndClose {
                error: ErrorCode::RateLimited,
                close: CloseCode::RateLimited
            }
        );
    }

    #[test]
    fn size_limit_is_inclusive() {
        let c = config();
        let mut rl = RateLimiter::new(c.rate_limit_burst, 0);
        let fits = format!("{:<20}", r#"{"type":"ping"}"#);
        assert_eq!(
            intake(Incoming::Text(&fits), &mut rl, 0, &c),
            Intake::Accept(ClientFrame::Ping)
        );
        let over = format!("{:<21}", r#"{"type":"ping"}"#);
        assert_eq!(
            intake(Incoming::Text(&over), &mut rl, 0, &c),
            Intake::Refuse(ErrorCode::TooLarge)
        );
    }
}
