//! The `data` of the bench's messages, sized so that the client's `message` frame carrying it
//! is exactly `--size` bytes.

use duet_client::protocol::ClientFrame;
use serde_json::value::RawValue;
use std::sync::LazyLock;

/// The bytes a `message` frame adds around its `data`, as the client writes it (measured
/// once: relay builds a message per round trip).
fn frame_overhead() -> usize {
    static OVERHEAD: LazyLock<usize> = LazyLock::new(|| {
        let null = RawValue::NULL;
        ClientFrame::Message(null).to_text().len() - null.get().len()
    });
    *OVERHEAD
}

/// A JSON string `"{seq}-xxx…"` whose `message` frame is `size` bytes (at least room for the
/// sequence number).
pub fn data(size: usize, seq: u64) -> Box<RawValue> {
    let head = format!("\"{seq}-");
    let want = size.saturating_sub(frame_overhead() + 1);
    let text = format!("{head}{}\"", "x".repeat(want.saturating_sub(head.len())));
    // A quoted string of digits, a dash and x's is JSON.
    RawValue::from_string(text).unwrap_or_else(|_| RawValue::NULL.to_owned())
}

/// The client's `message` frame for `data`, built once to be sent many times.
pub fn frame(data: &RawValue) -> String {
    ClientFrame::Message(data).to_text()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::args::MIN_MESSAGE_BYTES;
    use duet_client::Event;

    #[test]
    fn frames_have_the_exact_size_and_round_trip() {
        for size in [MIN_MESSAGE_BYTES, 256, 1024, 65_536] {
            let data = data(size, 42);
            assert_eq!(frame(&data).len(), size);
            assert!(data.get().starts_with("\"42-x"), "{}", data.get());
            // What the server relays reads back as the same data.
            let relayed = format!(
                r#"{{"type":"message","from":"0123456789abcdef","data":{}}}"#,
                data.get()
            );
            let Event::Message { data: got, .. } = Event::decode(&relayed) else {
                panic!("not a message: {relayed}");
            };
            assert_eq!(got.get(), data.get());
        }
        assert!(frame(&data(1, u64::MAX)).len() <= MIN_MESSAGE_BYTES);
    }
}
