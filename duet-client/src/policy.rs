//! The client's decisions, without sockets or timers: what to do when a socket ends, when to
//! refresh ICE servers, what a welcome changes. [`crate::Client`] only performs them.

use crate::event::{Close, Refused};
use duet::protocol::{CloseCode, Welcome};
use duet::route::HttpError;
use serde_json::value::RawValue;
use std::collections::BTreeMap;
use std::time::Duration;

/// ICE servers are refreshed when this share of their remaining lifetime has passed
/// (`ICE_REFRESH_AT` of `duet.js`).
pub const ICE_REFRESH_AT: f64 = 0.8;
/// …but never sooner than this after they arrived (`MIN_ICE_REFRESH_MS` of `duet.js`).
pub const MIN_ICE_REFRESH: Duration = Duration::from_millis(5000);

/// What to do after a socket ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum After {
    /// Dial again after the backoff's next delay.
    Backoff,
    /// Dial again after exactly this long (`retryAfter`, or at once for a fresh ticket).
    RetryIn(Duration),
    /// Stop for good, and keep the resume token (the slot may still be ours: 4000, refusals).
    Stop,
    /// Stop for good and forget the token: the slot is gone (4408, 4409).
    StopAndForget,
}

/// How the socket ended, as the client saw it.
#[derive(Debug, Clone, Copy)]
pub struct Ending<'a> {
    pub close: &'a Close,
    /// The in-band refusal that came before the close, if any.
    pub refusal: Option<&'a Refused>,
    /// Whether a `full` frame came before the close.
    pub full: bool,
    /// Whether tickets come from a provider that can give a fresh one.
    pub ticket_provider: bool,
    /// Whether the one retry with a fresh ticket was spent since the last welcome.
    pub fresh_ticket_tried: bool,
}

/// `docs/client.md`, "Reconnecting and resuming": any drop but a final close, a `full` or a
/// refusal reconnects; `too-many-joins` after its `retryAfter`; a first `ticket-expired` with a
/// provider at once.
pub fn after(ending: Ending<'_>) -> After {
    if let Some(refusal) = ending.refusal {
        return match refusal.code {
            HttpError::TooManyJoins => match refusal.retry_after {
                Some(wait) => After::RetryIn(wait),
                None => After::Backoff,
            },
            HttpError::TicketExpired if ending.ticket_provider && !ending.fresh_ticket_tried => {
                After::RetryIn(Duration::ZERO)
            }
            _ => After::Stop,
        };
    }
    match ending.close.known {
        _ if ending.full => After::StopAndForget,
        Some(CloseCode::RoomFull | CloseCode::Stale) => After::StopAndForget,
        _ if ending.close.is_final() => After::Stop,
        _ => After::Backoff,
    }
}

/// When to ask for fresh ICE servers, `now_ms` and `expires_at_ms` in ms since the epoch:
/// at [`ICE_REFRESH_AT`] of the time left, no sooner than [`MIN_ICE_REFRESH`]; never without an
/// expiry or when it has passed by our clock (the next welcome brings fresh ones).
pub fn ice_refresh_in(expires_at_ms: Option<u64>, now_ms: u64) -> Option<Duration> {
    let remaining = expires_at_ms?.checked_sub(now_ms).filter(|ms| *ms > 0)?;
    let delay = Duration::from_millis((remaining as f64 * ICE_REFRESH_AT) as u64);
    Some(delay.max(MIN_ICE_REFRESH))
}

/// The state of our slot, changed by the frames of the server.
#[derive(Debug, Clone, Default)]
pub struct Slot {
    /// The token the next dial resumes with. It changes only when a welcome brings a new one:
    /// a socket lost before its welcome retries with the token it came with, which the server
    /// keeps working until the new one is used (`docs/protocol.md`, "Rotation").
    pub token: Option<String>,
    pub client_id: Option<String>,
    /// The other peers' ids (at most one).
    pub peers: Vec<String>,
    /// Who makes the offer, from the last `ready`; kept across a resume of the same slot.
    pub initiator: Option<String>,
    /// Whether the last welcome resumed a held slot.
    pub resumed: bool,
    pub ice_servers: Option<Box<RawValue>>,
    pub ice_servers_expire_at: Option<u64>,
    /// From the last welcome (`maxMessageBytes`).
    pub max_message_bytes: Option<usize>,
    /// With join tickets: who we are, and who the others are.
    pub identity: Option<duet::ticket::Identity>,
    pub peer_identities: BTreeMap<String, duet::ticket::Identity>,
}

impl Slot {
    /// A welcome: our slot, its peers and limits, and the rotated token.
    pub fn welcome(&mut self, w: &Welcome) {
        let same_slot = self.client_id.as_deref() == Some(w.client_id.as_str());
        self.resumed = w.resumed == Some(true);
        // A resumed slot keeps its pairing; a fresh slot waits for a new `ready`.
        if !(self.resumed && same_slot) {
            self.initiator = None;
        }
        self.token = Some(w.resume_token.clone());
        self.client_id = Some(w.client_id.clone());
        self.peers = w
            .peers
            .iter()
            .filter(|p| **p != w.client_id)
            .cloned()
            .collect();
        self.ice_servers = Some(w.ice_servers.clone());
        self.ice_servers_expire_at = w.ice_servers_expire_at;
        self.max_message_bytes = Some(w.max_message_bytes);
        self.identity = w.identity.clone();
        self.peer_identities = w.peer_identities.clone().unwrap_or_default();
    }

    pub fn peer_joined(&mut self, id: &str, identity: Option<&duet::ticket::Identity>) {
        if !self.peers.iter().any(|p| p == id) {
            self.peers.push(id.to_owned());
        }
        if let Some(identity) = identity {
            self.peer_identities.insert(id.to_owned(), identity.clone());
        }
    }

    pub fn peer_left(&mut self, id: &str) {
        self.peers.retain(|p| p != id);
        self.initiator = None;
    }

    pub fn ready(&mut self, initiator: &str, peers: &[String]) {
        self.initiator = Some(initiator.to_owned());
        let me = self.client_id.as_deref();
        self.peers = peers
            .iter()
            .filter(|p| Some(p.as_str()) != me)
            .cloned()
            .collect();
    }

    /// Whether we make the offer; `None` until a `ready` says.
    pub fn is_initiator(&self) -> Option<bool> {
        let initiator = self.initiator.as_deref()?;
        Some(Some(initiator) == self.client_id.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ending<'a>(close: &'a Close, refusal: Option<&'a Refused>) -> Ending<'a> {
        Ending {
            close,
            refusal,
            full: false,
            ticket_provider: false,
            fresh_ticket_tried: false,
        }
    }

    fn refusal(code: HttpError) -> Refused {
        Refused {
            code,
            message: String::new(),
            retry_after: code.retry_after_s().map(Duration::from_secs),
        }
    }

    #[test]
    fn closes_of_the_server() {
        let cases = [
            // A 1000 after our own `leave` never comes here (the client stops by itself).
            (CloseCode::Left, After::Backoff),
            (CloseCode::Replaced, After::Stop),
            (CloseCode::Stale, After::StopAndForget),
            (CloseCode::RoomFull, After::StopAndForget),
            (CloseCode::RateLimited, After::Stop),
            (CloseCode::TicketRefused, After::Stop),
            (CloseCode::Forbidden, After::Stop),
            (CloseCode::Misconfigured, After::Stop),
            // Without its refusal frame, a 4429 "too many joins" is waited out.
            (CloseCode::TooManyJoins, After::Backoff),
        ];
        for (code, want) in cases {
            let close = Close::new(code.code(), code.reason());
            assert_eq!(after(ending(&close, None)), want, "{code:?}");
        }
        for (code, reason) in [(1006, ""), (1001, "going away"), (4001, "client drop")] {
            let close = Close::new(code, reason);
            assert_eq!(after(ending(&close, None)), After::Backoff, "{code}");
        }
        let close = Close::lost("");
        let full = Ending {
            full: true,
            ..ending(&close, None)
        };
        assert_eq!(after(full), After::StopAndForget);
    }

    #[test]
    fn refusals() {
        let close = Close::new(4401, "ticket refused");
        let expired = refusal(HttpError::TicketExpired);
        assert_eq!(after(ending(&close, Some(&expired))), After::Stop);
        let with_provider = Ending {
            ticket_provider: true,
            ..ending(&close, Some(&expired))
        };
        assert_eq!(after(with_provider), After::RetryIn(Duration::ZERO));
        let tried = Ending {
            fresh_ticket_tried: true,
            ..with_provider
        };
        assert_eq!(after(tried), After::Stop);
        for code in [
            HttpError::TicketRequired,
            HttpError::InvalidTicket,
            HttpError::TicketWrongRoom,
            HttpError::ConfigError,
        ] {
            let r = refusal(code);
            let e = Ending {
                ticket_provider: true,
                ..ending(&close, Some(&r))
            };
            assert_eq!(after(e), After::Stop, "{code:?}");
        }
        let joins = refusal(HttpError::TooManyJoins);
        let close = Close::new(4429, "too many joins");
        assert_eq!(
            after(ending(&close, Some(&joins))),
            After::RetryIn(Duration::from_secs(60))
        );
    }

    #[test]
    fn ice_refresh_at_80_percent_and_never_sooner_than_5_s() {
        assert_eq!(ice_refresh_in(None, 1000), None);
        assert_eq!(ice_refresh_in(Some(1000), 1000), None);
        assert_eq!(ice_refresh_in(Some(500), 1000), None);
        assert_eq!(
            ice_refresh_in(Some(3_600_000 + 1000), 1000),
            Some(Duration::from_millis(2_880_000))
        );
        assert_eq!(ice_refresh_in(Some(2000), 1000), Some(MIN_ICE_REFRESH));
    }

    fn welcome(client_id: &str, token: &str, resumed: Option<bool>) -> Welcome {
        Welcome {
            version: 1,
            room: "r".into(),
            client_id: client_id.into(),
            resume_token: token.into(),
            ice_servers: RawValue::from_string("[]".into()).unwrap(),
            ice_servers_expire_at: None,
            max_peers: 2,
            max_message_bytes: 100,
            peers: vec!["b".into()],
            resumed,
            identity: None,
            peer_identities: None,
        }
    }

    #[test]
    fn a_welcome_rotates_the_token_and_a_resume_keeps_the_pairing() {
        let mut slot = Slot {
            token: Some("t0".into()),
            ..Slot::default()
        };
        slot.welcome(&welcome("a", "t1", None));
        assert_eq!(slot.token.as_deref(), Some("t1"));
        assert_eq!(slot.peers, ["b"]);
        slot.ready("a", &["a".into(), "b".into()]);
        assert_eq!(slot.is_initiator(), Some(true));
        slot.welcome(&welcome("a", "t2", Some(true)));
        assert_eq!(
            (slot.token.as_deref(), slot.is_initiator()),
            (Some("t2"), Some(true))
        );
        // The slot had expired: a fresh join, no pairing until the next `ready`.
        slot.welcome(&welcome("c", "t3", Some(false)));
        assert_eq!(slot.is_initiator(), None);
        slot.ready("b", &["b".into(), "c".into()]);
        assert_eq!(slot.is_initiator(), Some(false));
        slot.peer_left("b");
        assert_eq!((slot.peers.len(), slot.is_initiator()), (0, None));
    }
}
