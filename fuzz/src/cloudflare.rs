//! Cloudflare's TURN answer: `turn::parse_cloudflare`, the ICE servers it yields, and how they
//! join the welcome's `iceServers` (`turn::merge`) and the cache (`turn::Cached`).
//!
//! Input: the HTTP status on the first line (anything else is 201), the body after it.
//!
//! Checked (docs/deploy.md, "Cloudflare TURN"):
//! - a status outside 2xx is `Status(status)`; a body that is not `{"iceServers": server or
//!   [servers]}` with string `urls`, or a TURN server without `username` and `credential`, or
//!   nothing left, is `Malformed`;
//! - the servers kept are the answer's, in order, each with its fields untouched but `urls`,
//!   from which only the port-53 URLs are gone; a server left without URLs is dropped;
//! - merged after `ICE_SERVERS` they follow it whole; the cache gives them back for half the
//!   TTL, and a failure's empty list for the backoff.

use duet::config::DEFAULT_ICE_SERVERS;
use duet::turn::{merge, parse_cloudflare, Cached, CloudflareIce, TurnError, FAILURE_BACKOFF_MS};
use serde_json::value::RawValue;
use serde_json::Value;

/// Browsers block port 53; the query (`?transport=`) is not part of the port.
fn is_port_53(url: &str) -> bool {
    url.split('?').next().unwrap_or("").ends_with(":53")
}

fn expected(status: u16, body: &str) -> Result<Vec<Value>, TurnError> {
    if !(200..=299).contains(&status) {
        return Err(TurnError::Status(status));
    }
    let answer: Value = serde_json::from_str(body).map_err(|_| TurnError::Malformed)?;
    let servers = match answer.get("iceServers") {
        Some(Value::Array(list)) => list.clone(),
        Some(one @ Value::Object(_)) => vec![one.clone()],
        _ => return Err(TurnError::Malformed),
    };
    let mut kept = Vec::new();
    for server in servers {
        let urls: Vec<&str> = match server.get("urls") {
            Some(Value::String(u)) => vec![u],
            Some(Value::Array(list)) => list
                .iter()
                .map(|u| u.as_str().ok_or(TurnError::Malformed))
                .collect::<Result<_, _>>()?,
            _ => return Err(TurnError::Malformed),
        };
        let urls: Vec<&str> = urls.into_iter().filter(|u| !is_port_53(u)).collect();
        if urls.is_empty() {
            continue;
        }
        let has_credentials =
            server.get("username").is_some() && server.get("credential").is_some();
        if urls.iter().any(|u| u.starts_with("turn")) && !has_credentials {
            return Err(TurnError::Malformed);
        }
        let mut server = server.clone();
        server["urls"] = Value::from(urls);
        kept.push(server);
    }
    if kept.is_empty() {
        Err(TurnError::Malformed)
    } else {
        Ok(kept)
    }
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (status, body) = text.split_once('\n').unwrap_or((&text, ""));
    let status: u16 = status.trim().parse().unwrap_or(201);
    let answer = parse_cloudflare(status, body);
    assert_eq!(answer, expected(status, body), "{body:?}");
    let Ok(servers) = answer else {
        return;
    };
    for server in &servers {
        let urls = server["urls"].as_array().expect("urls is an array");
        assert!(!urls.is_empty());
        assert!(urls
            .iter()
            .all(|u| u.as_str().is_some_and(|u| !is_port_53(u))));
    }

    let base = RawValue::from_string(DEFAULT_ICE_SERVERS.to_owned()).expect("default JSON");
    let merged: Vec<Value> =
        serde_json::from_str(merge(&base, servers.clone()).get()).expect("JSON");
    let default: Vec<Value> = serde_json::from_str(DEFAULT_ICE_SERVERS).expect("default JSON");
    assert_eq!(merged.len(), default.len() + servers.len());
    assert_eq!(merged[..default.len()], default[..]);
    assert_eq!(merge(&base, Vec::new()).get(), DEFAULT_ICE_SERVERS);

    let (now, ttl) = (1_700_000_000_000u64, 3_600_000u64);
    let cached = Cached::servers(servers.clone(), now, ttl);
    assert_eq!(
        cached.fresh(now + ttl / 2 - 1),
        Some(CloudflareIce {
            servers,
            expires_at: Some(now + ttl)
        })
    );
    assert_eq!(cached.fresh(now + ttl / 2), None);
    let failed = Cached::failed(now);
    assert_eq!(
        failed.fresh(now + FAILURE_BACKOFF_MS - 1),
        Some(CloudflareIce::default())
    );
    assert_eq!(failed.fresh(now + FAILURE_BACKOFF_MS), None);
}
