//! Join tickets for servers that require them (`--ticket-secret`): HS256 JWTs as
//! `docs/access.md` specifies, one per peer, as an application's backend mints them (the
//! client only offers them).

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// `{"alg":"HS256","typ":"JWT"}`, the only header the server accepts.
const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// A ticket for `sub` in `room`, valid until `exp_s` (unix seconds), signed with `secret`.
pub fn mint(secret: &str, room: &str, sub: &str, exp_s: u64) -> String {
    let claims = serde_json::json!({"room": room, "sub": sub, "exp": exp_s}).to_string();
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(HEADER),
        URL_SAFE_NO_PAD.encode(claims)
    );
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|e| unreachable!("HMAC key of any length: {e}"));
    mac.update(signing_input.as_bytes());
    let signature = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    format!("{signing_input}.{signature}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use duet::ticket::{verify, Identity, TicketError, DEFAULT_MAX_TTL_S};

    #[test]
    fn the_server_accepts_what_is_minted() {
        let secrets = vec!["s3cret".to_owned()];
        // Valid for as long as the longest run's tickets (main.rs), within the server's default
        // lifetime cap.
        let now = 1_700_000_000;
        let exp = now + 4 * crate::args::MAX_DURATION_S as u64;
        let ticket = mint("s3cret", "r1", "a-r1", exp);
        assert_eq!(
            verify(&ticket, &secrets, "r1", now, DEFAULT_MAX_TTL_S),
            Ok(Identity {
                sub: "a-r1".into(),
                name: None,
                meta: None
            })
        );
        assert_eq!(
            verify(&ticket, &secrets, "r2", now, DEFAULT_MAX_TTL_S),
            Err(TicketError::WrongRoom)
        );
        let other = vec!["other".to_owned()];
        assert_eq!(
            verify(&ticket, &other, "r1", now, DEFAULT_MAX_TTL_S),
            Err(TicketError::Invalid)
        );
    }
}
