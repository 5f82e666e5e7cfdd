//! Configuration values: `Config::from_vars` (so `vars::parse_int`, the origins, `ICE_SERVERS`,
//! the jurisdiction, `JOIN_SECRET`, `MAX_TICKET_TTL_SECONDS`) and `TurnSettings::from_vars`
//! (`TURN_URLS` and the rest).
//!
//! Input: lines `NAME=value` (the last one of a name counts).
//!
//! Checked, against the tables of docs/protocol.md ("Configuration") and docs/deploy.md:
//! - each value the docs allow is used exactly, and each other one gives exactly one warning
//!   naming the variable ("invalid NAME: ...; using the default") and the default; except that
//!   a setting that restricts access fails closed: an invalid `ALLOWED_ORIGINS` allows only the
//!   Worker's own origin, and a `JOIN_SECRET` without a key or an unknown `ROOM_JURISDICTION`
//!   refuses every socket, each saying so in its warning;
//! - fail closed, as a property: no invalid value of a setting that restricts access yields a
//!   configuration more open than leaving it unset or giving it any of a few valid values (the
//!   most closed among them), whatever the other settings are;
//! - an accepted `ICE_SERVERS` is handed to clients byte for byte, is a JSON array of objects
//!   with non-empty `urls`, and stays whole when TURN entries are appended to it;
//! - accepted origins parse again to themselves, and each is allowed, in any ASCII case;
//! - TURN entries carry the URLs, `<expiry>:<clientId>` and base64(HMAC-SHA1(secret, username));
//! - `Debug` of the configuration never shows `JOIN_SECRET`, `TURN_SECRET` or the API token.

use super::json::Members;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use duet::config::{
    AllowedOrigins, Config, DEFAULT_ICE_SERVERS, MAX_MESSAGE_BYTES_CEILING, MAX_TICKET_TTL_CEILING,
};
use duet::effect::LogLevel;
use duet::turn::{ice_servers, CloudflareIce, DEFAULT_TTL_SECONDS};
use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use serde_json::Value;
use std::collections::HashMap;

/// A whole number in `min..=max`, as docs/protocol.md has them (Rust's integer syntax: digits
/// with an optional `+`).
fn whole(v: &str, min: u64, max: u64) -> Option<u64> {
    let digits = v.strip_prefix('+').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 20 {
        return None;
    }
    let n: u128 = significant.parse().unwrap_or(0);
    (u128::from(min)..=u128::from(max))
        .contains(&n)
        .then_some(n as u64)
}

/// `scheme://host[:port]`, nothing after the authority, as browsers send `Origin`.
fn origin_shaped(o: &str) -> bool {
    let Some((scheme, authority)) = o.split_once("://") else {
        return false;
    };
    let scheme_ok = !scheme.is_empty()
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    scheme_ok && !authority.is_empty() && !authority.contains(['/', '?', '#', '@', ' '])
}

fn expected_origins(v: &str) -> Option<AllowedOrigins> {
    if v == "*" {
        return Some(AllowedOrigins::Any);
    }
    let items: Vec<String> = v
        .split(',')
        .map(str::trim)
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    items
        .iter()
        .all(|o| origin_shaped(o))
        .then_some(AllowedOrigins::List(items))
}

/// A JSON array of objects whose `urls` (the last, as `JSON.parse` reads a repeated key) is a
/// non-empty string or a non-empty array of them; and all of it JSON that serde_json's values
/// can hold (no lone surrogates, no numbers out of range), so TURN entries can be appended.
fn ice_servers_ok(v: &str) -> bool {
    let Ok(servers) = serde_json::from_str::<Vec<&RawValue>>(v) else {
        return false;
    };
    let shape_ok = servers.iter().all(|server| {
        let Some(members) = Members::of(server.get()) else {
            return false;
        };
        let Some(urls) = members.all("urls").pop() else {
            return false;
        };
        match serde_json::from_str::<Value>(urls.get()) {
            Ok(Value::String(u)) => !u.is_empty(),
            Ok(Value::Array(list)) => {
                !list.is_empty()
                    && list
                        .iter()
                        .all(|u| u.as_str().is_some_and(|u| !u.is_empty()))
            }
            _ => false,
        }
    });
    shape_ok && serde_json::from_str::<Value>(v).is_ok()
}

fn expected_turn_urls(v: &str) -> Option<Vec<String>> {
    let urls: Vec<String> = if v.starts_with('[') {
        serde_json::from_str(v).ok()?
    } else {
        v.split(',').map(|u| u.trim().to_owned()).collect()
    };
    let ok = !urls.is_empty()
        && urls
            .iter()
            .all(|u| (u.starts_with("turn:") || u.starts_with("turns:")) && u.len() >= 7);
    ok.then_some(urls)
}

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let vars: HashMap<&str, &str> = text
        .split('\n')
        .filter_map(|line| line.split_once('='))
        .collect();
    let (config, warnings) = Config::from_vars(|name| vars.get(name).map(|v| (*v).to_owned()));
    let value = |name: &str| vars.get(name).map(|v| v.trim());
    // TURN's variables count as unset when empty.
    let turn_value = |name: &str| value(name).filter(|v| !v.is_empty());
    let d = Config::default();
    let mut invalid: Vec<&str> = Vec::new();

    // Invalid: no origin but the Worker's own, never the default `*`.
    let origins = match value("ALLOWED_ORIGINS") {
        None => AllowedOrigins::Any,
        Some(v) => expected_origins(v).unwrap_or_else(|| {
            invalid.push("ALLOWED_ORIGINS");
            AllowedOrigins::List(vec![])
        }),
    };
    assert_eq!(config.allowed_origins, origins);
    if let AllowedOrigins::List(list) = &config.allowed_origins {
        assert_eq!(
            expected_origins(&list.join(",")).as_ref(),
            Some(&config.allowed_origins)
        );
        for o in list {
            assert!(config.allowed_origins.allows(&o.to_ascii_uppercase()));
            assert!(config.allowed_origins.allows(&o.to_ascii_lowercase()));
        }
    }

    match value("ICE_SERVERS") {
        Some(v) if ice_servers_ok(v) => assert_eq!(config.ice_servers.get(), v),
        Some(_) => {
            invalid.push("ICE_SERVERS");
            assert_eq!(config.ice_servers.get(), DEFAULT_ICE_SERVERS);
        }
        None => assert_eq!(config.ice_servers.get(), DEFAULT_ICE_SERVERS),
    }

    let mut number = |name: &'static str, min: u64, max: u64, default: u64| match value(name) {
        None => default,
        Some(v) => whole(v, min, max).unwrap_or_else(|| {
            invalid.push(name);
            default
        }),
    };
    let max = number(
        "MAX_MESSAGE_BYTES",
        1,
        MAX_MESSAGE_BYTES_CEILING as u64,
        65_536,
    );
    let burst = number("RATE_LIMIT_BURST", 1, 1_000_000, 100);
    let grace = number("RESUME_GRACE_MS", 0, 86_400_000, 15_000);
    let stale = number("STALE_AFTER_MS", 1, 86_400_000, 60_000);
    let unconfirmed = number("UNCONFIRMED_AFTER_MS", 1, 86_400_000, 10_000);
    let ttl_cap = number("MAX_TICKET_TTL_SECONDS", 1, 365 * 86_400, 86_400);
    assert_eq!(MAX_TICKET_TTL_CEILING, 365 * 86_400);
    assert_eq!(config.max_ticket_ttl_s, ttl_cap);
    assert_eq!(config.max_message_bytes as u64, max);
    assert_eq!(u64::from(config.rate_limit_burst), burst);
    assert_eq!(config.resume_grace_ms, grace);
    assert_eq!(config.stale_after_ms, stale);
    assert_eq!(config.unconfirmed_after_ms, unconfirmed);

    let per_sec = match value("RATE_LIMIT_PER_SEC") {
        None => d.rate_limit_per_sec,
        // A plain decimal (docs/protocol.md): digits, at most one point, at most 9 digits on
        // either side of it.
        Some(v) => {
            let (whole, fraction) = v.split_once('.').unwrap_or((v, ""));
            let digits = |s: &str| s.len() <= 9 && s.bytes().all(|b| b.is_ascii_digit());
            let plain =
                !(whole.is_empty() && fraction.is_empty()) && digits(whole) && digits(fraction);
            match (plain, v.parse::<f64>()) {
                (true, Ok(n)) if n > 0.0 && n <= 1e6 => n,
                _ => {
                    invalid.push("RATE_LIMIT_PER_SEC");
                    d.rate_limit_per_sec
                }
            }
        }
    };
    let error = (config.rate_limit_per_sec - per_sec).abs();
    assert!(
        error <= per_sec * 1e-12,
        "{} for {per_sec}",
        config.rate_limit_per_sec
    );

    // WEBHOOK_URL needs an http(s) URL with a host, and WEBHOOK_SECRET (docs/webhooks.md).
    let webhook = value("WEBHOOK_URL")
        .filter(|u| !u.is_empty())
        .and_then(|url| {
            let rest = url
                .strip_prefix("https://")
                .or_else(|| url.strip_prefix("http://"));
            let authority = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
            let url_ok = authority.is_some_and(|a| !a.is_empty() && !a.contains(['@', ' ']))
                && !url.contains(char::is_whitespace);
            let secret = value("WEBHOOK_SECRET").filter(|s| !s.is_empty());
            match (url_ok, secret) {
                (true, Some(secret)) => Some((url.to_owned(), secret.to_owned())),
                _ => {
                    invalid.push("WEBHOOK_URL");
                    None
                }
            }
        });
    assert_eq!(
        config
            .webhook
            .as_ref()
            .map(|w| (w.url.clone(), w.secret.clone())),
        webhook
    );

    let jurisdiction = match value("ROOM_JURISDICTION") {
        None | Some("") => None,
        Some(v) => match v.to_ascii_lowercase().as_str() {
            "eu" => Some("eu"),
            "fedramp" => Some("fedramp"),
            _ => {
                invalid.push("ROOM_JURISDICTION");
                None
            }
        },
    };
    assert_eq!(config.room_jurisdiction, jurisdiction);

    // LOG_LEVEL is `info` or `warn`, nothing else (docs/protocol.md).
    let log_level = match value("LOG_LEVEL") {
        None | Some("info") => LogLevel::Info,
        Some("warn") => LogLevel::Warn,
        Some(_) => {
            invalid.push("LOG_LEVEL");
            LogLevel::Info
        }
    };
    assert_eq!(config.log_level, log_level);

    let secrets: Vec<&str> = value("JOIN_SECRET")
        .map(|v| {
            v.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(config.join_secrets.0, secrets);
    // Set (even empty) without a key: every socket is refused, never open rooms.
    if value("JOIN_SECRET").is_some() && secrets.is_empty() {
        invalid.push("JOIN_SECRET");
    }
    assert_eq!(
        format!("{:?}", config.join_secrets),
        format!("Secrets({} redacted)", secrets.len())
    );

    // TURN (docs/deploy.md).
    let ttl = match turn_value("TURN_TTL_SECONDS") {
        None => DEFAULT_TTL_SECONDS,
        Some(v) => whole(v, 10, 7 * 24 * 3600).unwrap_or_else(|| {
            invalid.push("TURN_TTL_SECONDS");
            DEFAULT_TTL_SECONDS
        }),
    };
    let rest = match (turn_value("TURN_SECRET"), turn_value("TURN_URLS")) {
        (Some(secret), Some(urls)) => match expected_turn_urls(urls) {
            Some(urls) => Some((secret, urls)),
            None => {
                invalid.push("TURN_URLS");
                None
            }
        },
        (Some(_), None) => {
            invalid.push("TURN_URLS");
            None
        }
        (None, Some(_)) => {
            invalid.push("TURN_SECRET");
            None
        }
        (None, None) => None,
    };
    let cloudflare = match (
        turn_value("CF_TURN_KEY_ID"),
        turn_value("CF_TURN_API_TOKEN"),
    ) {
        (Some(key), Some(token)) => {
            if key
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                Some((key, token))
            } else {
                invalid.push("CF_TURN_KEY_ID");
                None
            }
        }
        (None, None) => None,
        _ => {
            invalid.push("CF_TURN_API_TOKEN");
            None
        }
    };
    assert_eq!(
        format!("{:?}", config.turn),
        format!(
            "TurnSettings {{ rest: {:?}, cloudflare: {:?} }}",
            rest.as_ref().map(|(_, urls)| (urls, ttl)),
            cloudflare.map(|(key, _)| (key, ttl))
        ),
        "TURN settings, with no secret in Debug"
    );
    match (&config.turn.cloudflare, cloudflare) {
        (Some(turn), Some((key, token))) => {
            let call = turn.call();
            assert!(call.url.contains(&format!("/keys/{key}/")));
            assert_eq!(call.authorization, format!("Bearer {token}"));
            assert_eq!(call.body, format!(r#"{{"ttl":{ttl}}}"#));
            assert_eq!(turn.ttl_ms(), ttl * 1000);
        }
        (None, None) => {}
        (turn, expected) => panic!(
            "Cloudflare TURN on: {}, expected {}",
            turn.is_some(),
            expected.is_some()
        ),
    }

    // The welcome's iceServers: ICE_SERVERS whole, then the client's TURN entry.
    let (client, now_ms) = ("0123456789abcdef", 1_700_000_000_000u64);
    let minted = ice_servers(
        &config.ice_servers,
        &config.turn,
        &CloudflareIce::default(),
        client,
        now_ms,
    );
    assert_eq!(
        minted.expires_at.is_some(),
        config.turn.rest.is_some(),
        "only minted credentials expire here"
    );
    let merged = minted.servers;
    let base: Vec<&RawValue> = serde_json::from_str(config.ice_servers.get()).expect("an array");
    match (&config.turn.rest, rest) {
        (None, None) => assert_eq!(merged.get(), config.ice_servers.get()),
        (Some(_), Some((secret, urls))) => {
            let all: Vec<Value> = serde_json::from_str(merged.get()).expect("merged JSON");
            assert_eq!(
                all.len(),
                base.len() + 1,
                "ICE_SERVERS kept whole: {}",
                merged.get()
            );
            for (merged, base) in all.iter().zip(&base) {
                let base: Value = serde_json::from_str(base.get()).expect("a server");
                assert_eq!(merged["urls"], base["urls"]);
            }
            let entry = &all[base.len()];
            let username = format!("{}:{client}", now_ms / 1000 + ttl);
            let mut mac = Hmac::<sha1::Sha1>::new_from_slice(secret.as_bytes()).expect("any key");
            mac.update(username.as_bytes());
            let credential = BASE64.encode(mac.finalize().into_bytes());
            assert_eq!(entry["urls"], serde_json::json!(urls));
            assert_eq!(entry["username"], username.as_str());
            assert_eq!(entry["credential"], credential.as_str());
        }
        (turn, expected) => panic!(
            "TURN on: {}, expected {}",
            turn.is_some(),
            expected.is_some()
        ),
    }

    let mut names: Vec<&str> = warnings.iter().map(|w| w.name).collect();
    names.sort_unstable();
    invalid.sort_unstable();
    assert_eq!(
        names, invalid,
        "one warning for each invalid value, and only those"
    );
    for w in &warnings {
        let instead = match w.name {
            "ALLOWED_ORIGINS" => "only the Worker's own origin may open sockets",
            "JOIN_SECRET" | "ROOM_JURISDICTION" => {
                "every socket is refused (503 config-error) until it is fixed"
            }
            _ => "using the default",
        };
        assert_eq!(
            w.to_string(),
            format!("invalid {}: {}; {instead}", w.name, w.problem)
        );
    }
    let mut unusable = config.unusable.clone();
    unusable.sort_unstable();
    let refusing: Vec<&str> = invalid
        .iter()
        .copied()
        .filter(|n| matches!(*n, "JOIN_SECRET" | "ROOM_JURISDICTION"))
        .collect();
    assert_eq!(unusable, refusing, "every socket is refused exactly then");
    assert_eq!(config.refuses_sockets(), !refusing.is_empty());
    fails_closed(&vars, &config, &invalid);
}

/// The settings that restrict access, with valid values to hold an invalid one against: for
/// the gates, values from the most closed to the open; for the ticket lifetime cap, whose
/// invalid values take the default (docs/protocol.md), the default.
const RESTRICTING: [(&str, &[&str]); 4] = [
    ("ALLOWED_ORIGINS", &["", "https://a.example", "*"]),
    ("JOIN_SECRET", &["k", "k,old"]),
    ("ROOM_JURISDICTION", &["", "eu", "fedramp"]),
    ("MAX_TICKET_TTL_SECONDS", &["86400"]),
];

/// No invalid value of a setting that restricts access yields a configuration more open than
/// the same variables with that setting unset, or set to one of its valid values above.
fn fails_closed(vars: &HashMap<&str, &str>, config: &Config, invalid: &[&str]) {
    for (name, valid) in RESTRICTING {
        if !invalid.contains(&name) {
            continue;
        }
        let with = |v: Option<&str>| {
            let mut vars = vars.clone();
            vars.remove(name);
            if let Some(v) = v {
                vars.insert(name, v);
            }
            Config::from_vars(|n| vars.get(n).map(|v| (*v).to_owned())).0
        };
        assert!(
            config.at_most_as_open(&with(None)),
            "invalid {name} opens more than leaving it unset"
        );
        for v in valid {
            assert!(
                config.at_most_as_open(&with(Some(v))),
                "invalid {name} opens more than {name}={v:?}"
            );
        }
    }
}
