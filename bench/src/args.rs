//! The bounds every run is checked against (rooms, durations, sizes, the URL), shared by the
//! scenarios' own flags. Leaf module: it imports no scenario.

use std::time::Duration;
use url::Url;

/// Most rooms one scenario may open.
pub const MAX_ROOMS: u32 = 50_000;
/// Longest any timed phase may last, in seconds.
pub const MAX_DURATION_S: f64 = 3_600.0;
/// Most rooms in flight at once.
pub const MAX_CONCURRENCY: u32 = 10_000;
/// The platform's largest WebSocket message (the server's default limit is 64 KiB).
pub const MAX_MESSAGE_BYTES: usize = 1 << 20;
/// The smallest message frame the bench builds: room for a 20-digit sequence number.
pub const MIN_MESSAGE_BYTES: usize = 64;
/// Longest room name the Worker accepts.
const MAX_ROOM_NAME: usize = 64;

/// A flag outside its range.
#[derive(Debug, Clone, PartialEq)]
pub struct ArgError(pub String);

impl std::fmt::Display for ArgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ArgError {}

pub fn fail<T>(message: impl Into<String>) -> Result<T, ArgError> {
    Err(ArgError(message.into()))
}

pub fn check_rooms(flag: &str, rooms: u32) -> Result<(), ArgError> {
    if rooms == 0 || rooms > MAX_ROOMS {
        return fail(format!("--{flag} must be 1 to {MAX_ROOMS}, not {rooms}"));
    }
    Ok(())
}

pub fn check_concurrency(concurrency: u32) -> Result<(), ArgError> {
    if concurrency == 0 || concurrency > MAX_CONCURRENCY {
        return fail(format!(
            "--concurrency must be 1 to {MAX_CONCURRENCY}, not {concurrency}"
        ));
    }
    Ok(())
}

/// Seconds as a duration, from `min` to [`MAX_DURATION_S`].
pub fn seconds(flag: &str, secs: f64, min: f64) -> Result<Duration, ArgError> {
    if !(secs.is_finite() && secs >= min && secs <= MAX_DURATION_S) {
        return fail(format!(
            "--{flag} must be {min} to {MAX_DURATION_S} seconds, not {secs}"
        ));
    }
    Ok(Duration::from_secs_f64(secs))
}

pub fn check_size(size: usize) -> Result<(), ArgError> {
    if !(MIN_MESSAGE_BYTES..=MAX_MESSAGE_BYTES).contains(&size) {
        return fail(format!(
            "--size must be {MIN_MESSAGE_BYTES} to {MAX_MESSAGE_BYTES} bytes, not {size}"
        ));
    }
    Ok(())
}

pub fn check_timeout(secs: f64) -> Result<Duration, ArgError> {
    seconds("timeout", secs, 0.1)
}

/// Seconds, written `90`, `90s`, `1.5m` or `2h` (a clap value parser).
pub fn secs(text: &str) -> Result<f64, String> {
    let t = text.trim();
    let (number, unit) = match t.char_indices().find(|(_, c)| c.is_ascii_alphabetic()) {
        Some((i, _)) => (&t[..i], &t[i..]),
        None => (t, "s"),
    };
    let scale = match unit {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(format!("{text:?}: the unit must be s, m or h")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a number of seconds"))?;
    Ok(value * scale)
}

/// The base URL: ws:// or wss://, a host, no path, query or fragment (the client adds each
/// room's path).
pub fn base_url(url: &str) -> Result<Url, ArgError> {
    let parsed = Url::parse(url).or_else(|e| fail(format!("--url {url:?}: {e}")))?;
    if !matches!(parsed.scheme(), "ws" | "wss") {
        return fail(format!("--url must be ws:// or wss://, not {url:?}"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return fail(format!("--url {url:?} has no host"));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return fail(format!("--url {url:?} must have no query or fragment"));
    }
    if !matches!(parsed.path(), "" | "/") {
        return fail(format!(
            "--url {url:?} must have no path: rooms are at /ws/{{room}}"
        ));
    }
    Ok(parsed)
}

/// Room names are `{prefix}-{scenario tag}-{index}`; the Worker takes 1–64 characters of
/// `[A-Za-z0-9_-]`. Leaves room for a 12-character tag and a 5-digit index.
pub fn check_room_prefix(prefix: &str) -> Result<(), ArgError> {
    let ok_chars = prefix
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if prefix.is_empty() || !ok_chars || prefix.len() > MAX_ROOM_NAME - 20 {
        return fail(format!(
            "--room-prefix must be 1 to {} characters of [A-Za-z0-9_-], not {prefix:?}",
            MAX_ROOM_NAME - 20
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_with_units() {
        assert_eq!(secs("120"), Ok(120.0));
        assert_eq!(secs("120s"), Ok(120.0));
        assert_eq!(secs("1.5m"), Ok(90.0));
        assert_eq!(secs("2h"), Ok(7200.0));
        assert!(secs("2d").is_err());
        assert!(secs("s").is_err());
        assert!(secs("").is_err());
    }

    #[test]
    fn bounds() {
        assert!(seconds("duration", 0.1, 0.1).is_ok());
        assert!(seconds("duration", MAX_DURATION_S, 0.1).is_ok());
        assert!(seconds("duration", f64::NAN, 0.1).is_err());
        assert!(seconds("duration", f64::INFINITY, 0.1).is_err());
        assert!(seconds("duration", MAX_DURATION_S + 1.0, 0.1).is_err());
        assert_eq!(
            seconds("duration", -1.0, 0.1),
            Err(ArgError(
                "--duration must be 0.1 to 3600 seconds, not -1".into()
            ))
        );
        assert!(check_rooms("rooms", MAX_ROOMS).is_ok());
        assert!(check_rooms("rooms", 0).is_err());
        assert!(check_rooms("rooms", MAX_ROOMS + 1).is_err());
        assert!(check_concurrency(MAX_CONCURRENCY).is_ok());
        assert!(check_concurrency(0).is_err());
        assert!(check_size(MIN_MESSAGE_BYTES).is_ok());
        assert!(check_size(65_536).is_ok());
        assert!(check_size(MIN_MESSAGE_BYTES - 1).is_err());
        assert!(check_size(MAX_MESSAGE_BYTES + 1).is_err());
        assert!(check_timeout(0.0).is_err());
    }

    #[test]
    fn urls() {
        assert!(base_url("ws://127.0.0.1:8787").is_ok());
        assert!(base_url("wss://duet.example/").is_ok());
        for bad in [
            "http://127.0.0.1:8787",
            "127.0.0.1:8787",
            "ws://127.0.0.1:8787/ws/room",
            "ws://127.0.0.1:8787/?x=1",
            "ws://",
        ] {
            assert!(base_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn room_prefixes() {
        assert!(check_room_prefix("bench_1-a").is_ok());
        assert!(check_room_prefix(&"a".repeat(44)).is_ok());
        assert!(check_room_prefix(&"a".repeat(45)).is_err());
        assert!(check_room_prefix("").is_err());
        assert!(check_room_prefix("a/b").is_err());
        assert!(check_room_prefix("é").is_err());
    }
}
