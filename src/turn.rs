//! TURN credentials for the welcome frame's `iceServers`:
//! - the "TURN REST API" shared-secret scheme (coturn's `use-auth-secret`), minted per client:
//!   username `<expiry unix time>:<clientId>`, credential `base64(HMAC-SHA1(secret, username))`;
//! - Cloudflare's managed TURN: the request to its credential endpoint, the parsing of its
//!   answer, and how long an answer may be reused.
//!
//! Secrets stay in this module's types, whose `Debug` output redacts them.

use crate::vars::{parse_int, ConfigWarning};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use serde_json::{json, Value};
use sha1::Sha1;
use std::fmt;

pub const DEFAULT_TTL_SECONDS: u64 = 3600;
/// Short enough for a test of a refresh during a call, long enough that a client refreshing
/// at 80% of the lifetime (and no sooner than 5 s apart) still does so before the expiry.
pub const MIN_TTL_SECONDS: u64 = 10;
const MAX_TTL_SECONDS: u64 = 7 * 24 * 3600;
/// After a failed call to Cloudflare, joins go on with the STUN list for this long before the
/// next try, so an outage does not turn every join into a slow failing call.
pub const FAILURE_BACKOFF_MS: u64 = 30_000;
pub const CLOUDFLARE_TIMEOUT_MS: u64 = 3_000;

/// A self-hosted TURN server sharing a secret with the Worker.
#[derive(Clone)]
pub struct RestTurn {
    secret: String,
    urls: Vec<String>,
    ttl_s: u64,
}

/// Cloudflare's managed TURN service.
#[derive(Clone)]
pub struct CloudflareTurn {
    key_id: String,
    api_token: String,
    ttl_s: u64,
}

/// Which TURN services are configured.
#[derive(Clone, Default)]
pub struct TurnSettings {
    pub rest: Option<RestTurn>,
    pub cloudflare: Option<CloudflareTurn>,
}

impl fmt::Debug for TurnSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TurnSettings")
            .field("rest", &self.rest.as_ref().map(|r| (&r.urls, r.ttl_s)))
            .field(
                "cloudflare",
                &self.cloudflare.as_ref().map(|c| (&c.key_id, c.ttl_s)),
            )
            .finish()
    }
}

impl TurnSettings {
    /// Reads `TURN_SECRET`, `TURN_URLS`, `TURN_TTL_SECONDS`, `CF_TURN_KEY_ID` and
    /// `CF_TURN_API_TOKEN`. A half-configured service is a warning and stays off.
    pub fn from_vars(get: impl Fn(&str) -> Option<String>) -> (TurnSettings, Vec<ConfigWarning>) {
        let get = |name: &str| {
            get(name)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let mut warnings = Vec::new();
        let mut warn = |name: &'static str, problem: String| {
            warnings.push(ConfigWarning { name, problem });
        };
        let ttl_s = match get("TURN_TTL_SECONDS") {
            None => DEFAULT_TTL_SECONDS,
            Some(v) => parse_int(&v, MIN_TTL_SECONDS, MAX_TTL_SECONDS).unwrap_or_else(|problem| {
                warn("TURN_TTL_SECONDS", problem);
                DEFAULT_TTL_SECONDS
            }),
        };
        let rest = RestTurn::from_vars(get("TURN_SECRET"), get("TURN_URLS"), ttl_s).unwrap_or_else(
            |(name, problem)| {
                warn(name, problem);
                None
            },
        );
        let cloudflare =
            CloudflareTurn::from_vars(get("CF_TURN_KEY_ID"), get("CF_TURN_API_TOKEN"), ttl_s)
                .unwrap_or_else(|(name, problem)| {
                    warn(name, problem);
                    None
                });
        (TurnSettings { rest, cloudflare }, warnings)
    }
}

/// A setting that stays off, with the variable to blame and why.
type Off = (&'static str, String);

impl RestTurn {
    fn from_vars(
        secret: Option<String>,
        urls: Option<String>,
        ttl_s: u64,
    ) -> Result<Option<Self>, Off> {
        match (secret, urls) {
            (Some(secret), Some(urls)) => {
                let urls = parse_turn_urls(&urls).map_err(|problem| ("TURN_URLS", problem))?;
                Ok(Some(RestTurn {
                    secret,
                    urls,
                    ttl_s,
                }))
            }
            (None, None) => Ok(None),
            (Some(_), None) => Err((
                "TURN_URLS",
                "TURN_SECRET is set but TURN_URLS is not; TURN is off".to_owned(),
            )),
            (None, Some(_)) => Err((
                "TURN_SECRET",
                "TURN_URLS is set but the secret TURN_SECRET is not; TURN is off".to_owned(),
            )),
        }
    }
}

impl CloudflareTurn {
    fn from_vars(
        key_id: Option<String>,
        api_token: Option<String>,
        ttl_s: u64,
    ) -> Result<Option<Self>, Off> {
        match (key_id, api_token) {
            (Some(key_id), Some(api_token)) => {
                let valid = key_id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
                if !valid {
                    return Err((
                        "CF_TURN_KEY_ID",
                        "not a TURN key id (letters, digits, - and _)".to_owned(),
                    ));
                }
                Ok(Some(CloudflareTurn {
                    key_id,
                    api_token,
                    ttl_s,
                }))
            }
            (None, None) => Ok(None),
            _ => Err((
                "CF_TURN_API_TOKEN",
                "CF_TURN_KEY_ID and CF_TURN_API_TOKEN must both be set; Cloudflare TURN is off"
                    .to_owned(),
            )),
        }
    }
}

/// `turn:` / `turns:` URLs, comma-separated or as a JSON array.
fn parse_turn_urls(v: &str) -> Result<Vec<String>, String> {
    let urls: Vec<String> = if v.starts_with('[') {
        serde_json::from_str(v).map_err(|e| format!("not a JSON array of strings ({e})"))?
    } else {
        v.split(',').map(|u| u.trim().to_owned()).collect()
    };
    if urls.is_empty() {
        return Err("no URLs".to_owned());
    }
    match urls
        .iter()
        .find(|u| !(u.starts_with("turn:") || u.starts_with("turns:")) || u.len() < 7)
    {
        Some(bad) => Err(format!("{bad:?} is not a turn: or turns: URL")),
        None => Ok(urls),
    }
}

impl RestTurn {
    /// The expiry (unix time) of a credential minted at `now_s`.
    pub fn expiry_s(&self, now_s: u64) -> u64 {
        now_s.saturating_add(self.ttl_s)
    }

    /// The ICE server entry for `client_id`, valid for the TTL from `now_s`.
    pub fn ice_server(&self, client_id: &str, now_s: u64) -> Value {
        let username = format!("{}:{client_id}", self.expiry_s(now_s));
        json!({
            "urls": self.urls,
            "username": username,
            "credential": rest_credential(&self.secret, &username),
        })
    }
}

/// `base64(HMAC-SHA1(secret, username))`, the password coturn expects with `use-auth-secret`.
pub fn rest_credential(secret: &str, username: &str) -> String {
    // HMAC accepts keys of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha1>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(username.as_bytes());
    BASE64.encode(mac.finalize().into_bytes())
}

/// A call to Cloudflare's credential endpoint.
pub struct CloudflareCall {
    pub url: String,
    pub authorization: String,
    pub body: String,
}

impl CloudflareTurn {
    pub fn call(&self) -> CloudflareCall {
        CloudflareCall {
            url: format!(
                "https://rtc.live.cloudflare.com/v1/turn/keys/{}/credentials/generate-ice-servers",
                self.key_id
            ),
            authorization: format!("Bearer {}", self.api_token),
            body: json!({ "ttl": self.ttl_s }).to_string(),
        }
    }

    pub fn ttl_ms(&self) -> u64 {
        self.ttl_s * 1000
    }
}

/// Why Cloudflare's credentials could not be had. Logged; never shown to clients.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnError {
    Status(u16),
    Malformed,
    Timeout,
    Network,
}

impl TurnError {
    pub fn kind(self) -> &'static str {
        match self {
            TurnError::Status(_) => "status",
            TurnError::Malformed => "malformed",
            TurnError::Timeout => "timeout",
            TurnError::Network => "network",
        }
    }
}

/// The ICE servers in Cloudflare's answer, without port-53 URLs (browsers block that port and
/// would only wait on them).
pub fn parse_cloudflare(status: u16, body: &str) -> Result<Vec<Value>, TurnError> {
    if !(200..300).contains(&status) {
        return Err(TurnError::Status(status));
    }
    let answer: Value = serde_json::from_str(body).map_err(|_| TurnError::Malformed)?;
    let servers = match answer.get("iceServers") {
        Some(Value::Array(list)) => list.clone(),
        Some(server @ Value::Object(_)) => vec![server.clone()],
        _ => return Err(TurnError::Malformed),
    };
    let mut out = Vec::new();
    for mut server in servers {
        let urls: Vec<String> = match server.get("urls") {
            Some(Value::String(u)) => vec![u.clone()],
            Some(Value::Array(list)) => list
                .iter()
                .map(|u| u.as_str().map(str::to_owned).ok_or(TurnError::Malformed))
                .collect::<Result<_, _>>()?,
            _ => return Err(TurnError::Malformed),
        };
        let urls: Vec<String> = urls.into_iter().filter(|u| !is_port_53(u)).collect();
        if urls.is_empty() {
            continue;
        }
        let is_turn = urls.iter().any(|u| u.starts_with("turn"));
        if is_turn && (server.get("username").is_none() || server.get("credential").is_none()) {
            return Err(TurnError::Malformed);
        }
        server["urls"] = json!(urls);
        out.push(server);
    }
    if out.is_empty() {
        return Err(TurnError::Malformed);
    }
    Ok(out)
}

fn is_port_53(url: &str) -> bool {
    let host_port = url.split('?').next().unwrap_or(url);
    host_port.ends_with(":53")
}

/// Cloudflare's ICE servers as fetched, and when their credentials expire (`None` with no
/// servers, after a failure or without Cloudflare TURN).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CloudflareIce {
    pub servers: Vec<Value>,
    pub expires_at: Option<u64>,
}

/// Cloudflare's servers, kept for reuse while at least half their lifetime remains, or the
/// memory of a failure, kept for [`FAILURE_BACKOFF_MS`].
#[derive(Debug, Clone)]
pub enum Cached {
    Servers {
        servers: Vec<Value>,
        until_ms: u64,
        expires_at: u64,
    },
    Failed {
        until_ms: u64,
    },
}

impl Cached {
    /// Servers fetched at `now_ms`, whose credentials live for `ttl_ms`.
    pub fn servers(servers: Vec<Value>, now_ms: u64, ttl_ms: u64) -> Self {
        Cached::Servers {
            servers,
            until_ms: now_ms.saturating_add(ttl_ms / 2),
            expires_at: now_ms.saturating_add(ttl_ms),
        }
    }

    pub fn failed(now_ms: u64) -> Self {
        Cached::Failed {
            until_ms: now_ms.saturating_add(FAILURE_BACKOFF_MS),
        }
    }

    /// `Some` while this entry may stand in for a call: the servers with their expiry, or
    /// none after a failure.
    pub fn fresh(&self, now_ms: u64) -> Option<CloudflareIce> {
        match self {
            Cached::Servers {
                servers,
                until_ms,
                expires_at,
            } if now_ms < *until_ms => Some(CloudflareIce {
                servers: servers.clone(),
                expires_at: Some(*expires_at),
            }),
            Cached::Failed { until_ms } if now_ms < *until_ms => Some(CloudflareIce::default()),
            _ => None,
        }
    }
}

/// An `iceServers` list for one client and when its earliest credential expires.
#[derive(Debug)]
pub struct IceServers {
    pub servers: Box<RawValue>,
    /// Milliseconds since the epoch; `None` when nothing in the list expires (only
    /// `ICE_SERVERS`, whose static credentials Duet knows nothing about).
    pub expires_at: Option<u64>,
}

/// The `iceServers` of a welcome or `ice-servers` frame for `client_id`: `base`
/// (`ICE_SERVERS`), then Cloudflare's servers already fetched, then a shared-secret TURN
/// entry minted for this client now (a resume keeps its old id, so credentials name the id
/// the join settled on). The expiry is the earliest of Cloudflare's and the minted one's.
pub fn ice_servers(
    base: &RawValue,
    turn: &TurnSettings,
    cloudflare: &CloudflareIce,
    client_id: &str,
    now_ms: u64,
) -> IceServers {
    let mut extra = cloudflare.servers.clone();
    let mut expires_at = cloudflare.expires_at.filter(|_| !extra.is_empty());
    if let Some(rest) = &turn.rest {
        let now_s = now_ms / 1000;
        extra.push(rest.ice_server(client_id, now_s));
        // The username's own expiry, to the second, so both sides name the same instant.
        let minted = rest.expiry_s(now_s).saturating_mul(1000);
        expires_at = Some(expires_at.map_or(minted, |cf| cf.min(minted)));
    }
    IceServers {
        servers: merge(base, extra),
        expires_at,
    }
}

/// `base` (the validated `ICE_SERVERS` array) followed by `extra`.
pub fn merge(base: &RawValue, extra: Vec<Value>) -> Box<RawValue> {
    if extra.is_empty() {
        return base.to_owned();
    }
    let mut all: Vec<Value> = serde_json::from_str(base.get()).unwrap_or_default();
    all.extend(extra);
    serde_json::value::to_raw_value(&all).unwrap_or_else(|_| base.to_owned())
}

#[cfg(test)]
#[path = "turn_tests.rs"]
mod tests;
