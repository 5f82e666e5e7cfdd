//! A client's close frame: `protocol::close_reply`, the server's answer to it.
//!
//! Input: the close code on the first line (a number; anything else is 1005, the code of a
//! close frame without one), the reason after it.
//!
//! Checked (docs/protocol.md, "Close codes"): the answer's code is the client's where a server
//! may send it (1000-1003, 1007-1014, 3000-4999), else 1000; the reason is the longest prefix
//! of the client's that fits a close frame's 123 bytes and ends on a character boundary.

use duet::protocol::{close_reply, MAX_CLOSE_REASON_BYTES};

pub fn check(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (code, reason) = text.split_once('\n').unwrap_or((&text, ""));
    let code: usize = code.trim().parse().unwrap_or(1005);
    let (reply, cut) = close_reply(code, reason);
    let sendable = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
    assert_eq!(usize::from(reply), if sendable { code } else { 1000 });
    assert!(reason.starts_with(cut), "the reason is cut, never changed");
    assert!(cut.len() <= MAX_CLOSE_REASON_BYTES);
    if reason.len() <= MAX_CLOSE_REASON_BYTES {
        assert_eq!(cut, reason);
    } else {
        // The next character would not have fit.
        let next = reason[cut.len()..].chars().next().map_or(0, char::len_utf8);
        assert!(cut.len() + next > MAX_CLOSE_REASON_BYTES, "cut too short");
    }
}
