//! The client's timing constants and defaults are those of the browser client (`duet.js`,
//! `backoff.js`): read from their source, so that neither side drifts alone.

use duet_client::event::CLIENT_DROP;
use duet_client::policy::{ICE_REFRESH_AT, MIN_ICE_REFRESH};
use duet_client::{Backoff, Config};

const DUET_JS: &str = include_str!(concat!(env!("CARGO_MANIFEST_DIR"), "/../public/js/duet.js"));
const BACKOFF_JS: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../public/js/backoff.js"
));

fn has(source: &str, line: String) {
    assert!(source.contains(&line), "not in the JavaScript: {line}");
}

#[test]
fn the_same_constants_and_defaults_as_duet_js() {
    has(DUET_JS, format!("CLIENT_DROP: {CLIENT_DROP},"));
    has(
        DUET_JS,
        format!("export const ICE_REFRESH_AT = {ICE_REFRESH_AT};"),
    );
    has(
        DUET_JS,
        format!(
            "export const MIN_ICE_REFRESH_MS = {};",
            MIN_ICE_REFRESH.as_millis()
        ),
    );
    let config = Config::new("http://127.0.0.1:1", "r").unwrap();
    for (name, value) in [
        ("pingIntervalMs", config.ping_interval),
        ("pongTimeoutMs", config.pong_timeout),
        ("connectTimeoutMs", config.connect_timeout),
        ("checkTimeoutMs", config.check_timeout),
    ] {
        has(
            DUET_JS,
            format!("{name}: options.{name} ?? {},", value.as_millis()),
        );
    }
    let b = Backoff::default();
    has(
        BACKOFF_JS,
        format!(
            "DEFAULT_BACKOFF = Object.freeze({{ initialDelayMs: {}, maxDelayMs: {}, factor: {} }});",
            b.initial.as_millis(),
            b.max.as_millis(),
            b.factor
        ),
    );
    assert_eq!(config.max_reconnect_attempts, u32::MAX);
    has(
        DUET_JS,
        "maxReconnectAttempts: options.maxReconnectAttempts ?? Infinity,".into(),
    );
}
