//! Fetches Cloudflare TURN credentials, at most once per half credential lifetime per isolate,
//! with a timeout. A failure is logged and the join goes on with the configured STUN list.

use super::platform::{self, now_ms, post_request};
use crate::effect::LogEvent;
use crate::turn::{
    parse_cloudflare, Cached, CloudflareIce, CloudflareTurn, TurnError, CLOUDFLARE_TIMEOUT_MS,
};
use futures_util::future::{select, Either};
use serde_json::Value;
use std::cell::RefCell;
use std::pin::pin;
use std::time::Duration;
use worker::{AbortController, Delay, Fetch};

thread_local! {
    static CACHE: RefCell<Option<Cached>> = const { RefCell::new(None) };
}

/// Cloudflare's ICE servers for a welcome or `ice-servers` frame, with their expiry, or none
/// while the service fails.
pub async fn ice_servers(turn: &CloudflareTurn) -> CloudflareIce {
    let now = now_ms();
    if let Some(servers) = CACHE.with(|c| c.borrow().as_ref().and_then(|e| e.fresh(now))) {
        return servers;
    }
    let entry = match fetch(turn).await {
        Ok(servers) => Cached::servers(servers, now, turn.ttl_ms()),
        Err(err) => {
            // The error kind and status only: never the token or the response body.
            let status = match err {
                TurnError::Status(code) => Some(code),
                _ => None,
            };
            platform::log_error(&LogEvent {
                event: "turn-error",
                kind: Some(err.kind()),
                status,
                ..LogEvent::default()
            });
            Cached::failed(now)
        }
    };
    let servers = entry.fresh(now).unwrap_or_default();
    CACHE.with(|c| *c.borrow_mut() = Some(entry));
    servers
}

async fn fetch(turn: &CloudflareTurn) -> Result<Vec<Value>, TurnError> {
    let call = turn.call();
    let headers = [
        ("Authorization", call.authorization.as_str()),
        ("Content-Type", "application/json"),
    ];
    let request = post_request(&call.url, &headers, &call.body).map_err(|_| TurnError::Network)?;
    let controller = AbortController::default();
    let signal = controller.signal();
    let send = pin!(async {
        let mut response = Fetch::Request(request)
            .send_with_signal(&signal)
            .await
            .map_err(|_| TurnError::Network)?;
        let status = response.status_code();
        let body = response.text().await.map_err(|_| TurnError::Malformed)?;
        parse_cloudflare(status, &body)
    });
    let timeout = pin!(Delay::from(Duration::from_millis(CLOUDFLARE_TIMEOUT_MS)));
    match select(send, timeout).await {
        Either::Left((result, _)) => result,
        Either::Right(_) => {
            controller.abort();
            Err(TurnError::Timeout)
        }
    }
}
