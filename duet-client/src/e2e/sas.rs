//! The safety code: six digits both people read aloud (docs/e2e.md, "The safety code"; the
//! page's `public/js/sas.js`). The DTLS fingerprints of the two session descriptions protect
//! the media; whoever replaced one in transit leaves the two sides with different codes.

use sha2::{Digest, Sha256};

/// The hex with colons of the first `a=fingerprint:` line of `sdp` (`AB:CD:…`, as written,
/// without the hash function's name), or `None` if it has none.
pub fn fingerprint_of(sdp: &str) -> Option<&str> {
    sdp.lines().find_map(|line| {
        let rest = line
            .strip_suffix('\r')
            .unwrap_or(line)
            .strip_prefix("a=fingerprint:")?;
        // `\S+[ \t]+` then the hex, then optional blanks: the same line sas.js's pattern takes.
        let (name, value) = rest.split_once([' ', '\t'])?;
        if name.is_empty() || name.contains(char::is_whitespace) {
            return None;
        }
        let hex = value
            .trim_start_matches([' ', '\t'])
            .trim_end_matches([' ', '\t']);
        is_colon_hex(hex).then_some(hex)
    })
}

/// `XX(:XX)*` with hex digits of either case.
fn is_colon_hex(text: &str) -> bool {
    !text.is_empty()
        && text
            .split(':')
            .all(|pair| pair.len() == 2 && pair.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The safety code of two fingerprints (order does not matter), e.g. `"024 995"`.
pub fn safety_code_of(a: &str, b: &str) -> String {
    let (first, second) = if a <= b { (a, b) } else { (b, a) };
    let digest = Sha256::digest(format!("duet-sas-v1/{first}/{second}").as_bytes());
    let value = u32::from_be_bytes([digest[0], digest[1], digest[2], digest[3]]) % 1_000_000;
    let digits = format!("{value:06}");
    format!("{} {}", &digits[..3], &digits[3..])
}

/// The safety code of a negotiated session: the local and the remote description's first
/// fingerprints, or `None` while either has none.
pub fn safety_code(local_sdp: &str, remote_sdp: &str) -> Option<String> {
    Some(safety_code_of(
        fingerprint_of(local_sdp)?,
        fingerprint_of(remote_sdp)?,
    ))
}
