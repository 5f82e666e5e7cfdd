//! Random ids and resume tokens as text, and the hash under which tokens are stored.

use sha2::{Digest, Sha256};

/// Bytes of randomness in a resume token (256 bits).
pub const TOKEN_BYTES: usize = 32;
/// Bytes of randomness in a client id or socket id.
pub const ID_BYTES: usize = 8;
/// Longer `resume` parameters cannot be tokens and are treated as absent.
pub const MAX_TOKEN_LEN: usize = 2 * TOKEN_BYTES;

pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0xf)]));
    }
    s
}

/// The bytes of lower- or upper-case hex text, if it is hex.
pub fn from_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let nibble = |c: u8| char::from(c).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|pair| Some((nibble(pair[0])? << 4 | nibble(pair[1])?) as u8))
        .collect()
}

/// The stored form of a resume token.
pub fn hash(token: &str) -> String {
    to_hex(&Sha256::digest(token.as_bytes()))
}

/// The hash of a `resume` query parameter, or `None` when it cannot be a token.
pub fn resume_hash(param: Option<&str>) -> Option<String> {
    param
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN_LEN)
        .map(hash)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_and_hash() {
        assert_eq!(to_hex(&[0, 0x0f, 0xa5, 0xff]), "000fa5ff");
        // SHA-256("abc"), FIPS 180-2 test vector.
        assert_eq!(
            hash("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn resume_param() {
        assert_eq!(resume_hash(None), None);
        assert_eq!(resume_hash(Some("")), None);
        assert_eq!(resume_hash(Some(&"a".repeat(65))), None);
        assert_eq!(resume_hash(Some("abc")), Some(hash("abc")));
    }
}
