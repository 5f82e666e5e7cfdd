//! Prints the wire constants of protocol v1 as one JSON object, from the crate's own
//! definitions, so that other languages can be checked against them instead of retyping them
//! (`test/client/wire.test.mjs` compares `public/js/duet.js` and the test helpers with it):
//!
//! ```sh
//! cargo run -q --example wire_constants
//! ```
//!
//! The refusals are those `route::refusal` delivers in-band, with their close codes.
//!
//! The room-name rule is printed as the characters `is_room_name` accepts, found by asking it
//! about every character up to U+02FF, so the check follows the function and not a copy of it.

use duet::config::{Config, DEFAULT_ICE_SERVERS};
use duet::protocol::{
    CloseCode, ErrorCode, ServerFrameType, MAX_PEERS, PING_TEXT, PONG_TEXT, VERSION,
};
use duet::route::{is_room_name, HttpError, MAX_ROOM_LEN};
use serde_json::{json, Value};

fn main() {
    let close_codes: Vec<Value> = CloseCode::ALL
        .iter()
        .map(|c| json!({ "name": format!("{c:?}"), "code": c.code(), "reason": c.reason() }))
        .collect();
    let error_codes: Vec<Value> = ErrorCode::ALL
        .iter()
        .map(|c| json!({ "name": format!("{c:?}"), "code": c.as_str() }))
        .collect();
    // The refusals delivered in-band, one per code (`invalid-ticket` covers two variants).
    let mut refusals: Vec<Value> = Vec::new();
    for err in HttpError::ALL {
        let Some(close) = err.close_code() else {
            continue;
        };
        if !refusals.iter().any(|r| r["code"] == err.code()) {
            refusals.push(json!({
                "name": format!("{err:?}"),
                "code": err.code(),
                "close": close.code(),
                "retryAfter": err.retry_after_s(),
            }));
        }
    }
    let room_name_chars: String = ('\0'..='\u{2ff}')
        .filter(|c| is_room_name(&c.to_string()))
        .collect();
    let constants = json!({
        "version": VERSION,
        "maxPeers": MAX_PEERS,
        "pingText": PING_TEXT,
        "pongText": PONG_TEXT,
        "closeCodes": close_codes,
        "errorCodes": error_codes,
        "refusals": refusals,
        "serverFrameTypes": ServerFrameType::ALL.map(ServerFrameType::as_str),
        "roomName": {
            "minLen": (0..=MAX_ROOM_LEN).find(|&n| is_room_name(&"a".repeat(n))),
            "maxLen": MAX_ROOM_LEN,
            "chars": room_name_chars,
        },
        "maxMessageBytes": Config::default().max_message_bytes,
        "defaultIceServers": serde_json::from_str::<Value>(DEFAULT_ICE_SERVERS).unwrap_or_default(),
    });
    println!("{constants}");
}
