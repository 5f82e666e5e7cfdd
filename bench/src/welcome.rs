//! Connecting as a peer: a socket and its welcome frame (`created` or `joined`), for a new
//! join or a resume by token.

use crate::conn::{self, Ws};
use crate::event::{Event, Welcome};
use crate::stats::Failure;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::handshake::client::Request;
use tokio_tungstenite::tungstenite::http::HeaderValue;

/// Connects and reads the first frame, which must be a welcome.
pub async fn welcome<R>(
    request: R,
    limit: Duration,
    step: &'static str,
) -> Result<(Ws, Welcome), Failure>
where
    R: IntoClientRequest + Unpin,
{
    let mut ws = conn::connect(request, limit).await?;
    let text = conn::next_text(&mut ws, limit, step).await?;
    match Event::parse(&text) {
        Event::Welcome(w) => Ok((ws, w)),
        other => Err(Failure::Unexpected(other.kind())),
    }
}

/// The request that resumes the slot of `token` in the room at `url`: the token as a
/// subprotocol beside `duet.v1` (as the bundled client sends it), or in the query.
pub fn resume_request(url: &str, token: &str, by_subprotocol: bool) -> Result<Request, Failure> {
    let bad = |what: &str| Failure::Handshake(what.chars().take(60).collect());
    if !by_subprotocol {
        return format!("{url}?resume={token}")
            .into_client_request()
            .map_err(|e| bad(&e.to_string()));
    }
    let mut request = url.into_client_request().map_err(|e| bad(&e.to_string()))?;
    let protocols = HeaderValue::from_str(&format!("duet.v1, duet.resume.{token}"))
        .map_err(|_| bad("a token that cannot be a header"))?;
    request
        .headers_mut()
        .insert("Sec-WebSocket-Protocol", protocols);
    Ok(request)
}

/// Resumes the slot of `token`; the welcome is whatever the server answered (the caller
/// checks that it resumed).
pub async fn resume(
    url: String,
    token: String,
    by_subprotocol: bool,
    limit: Duration,
) -> Result<(Ws, Welcome), Failure> {
    let request = resume_request(&url, &token, by_subprotocol)?;
    welcome(request, limit, "joined (resume)").await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resume_requests() {
        let query = resume_request("ws://127.0.0.1:1/ws/r", "ab12", false).unwrap();
        assert_eq!(query.uri().to_string(), "ws://127.0.0.1:1/ws/r?resume=ab12");
        assert!(query.headers().get("Sec-WebSocket-Protocol").is_none());
        let sub = resume_request("ws://127.0.0.1:1/ws/r", "ab12", true).unwrap();
        assert_eq!(sub.uri().to_string(), "ws://127.0.0.1:1/ws/r");
        assert_eq!(
            sub.headers()["Sec-WebSocket-Protocol"],
            "duet.v1, duet.resume.ab12"
        );
    }
}
