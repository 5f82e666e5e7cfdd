//! Tickets minted by PyJWT 2.15.1 (`jwt.encode(claims, key, algorithm=...)`) with the key
//! `duet-test-secret` unless noted: an implementation no one here wrote.

use super::*;

const VALID: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJhbGljZSIsImV4cCI6MjAwMDAwMDAwMCwibmFtZSI6IkFsaWNlIiwibWV0YSI6eyJwbGFuIjoicHJvIn19.ZPQq9XR_DER25U05a2WYEWRDHUiZnn0gaaJNsmy2jic";
const MINIMAL: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJib2IiLCJleHAiOjIwMDAwMDAwMDB9.i3Zy5BvfXdwEipJcgpMilDGUAOccanX6c3i7s61c8k0";
const NBF_IAT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJjYXJvbCIsImV4cCI6MjAwMDAwMDAwMCwibmJmIjoxNzAwMDAwMDAwLCJpYXQiOjE3MDAwMDAwMDB9.Oc5gTo2F0GQ6QFSzbwZ2pOehk2FnXlu9ZLysHCZ6ASM";
const ROTATED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJkYXZlIiwiZXhwIjoyMDAwMDAwMDAwfQ.Alpq9UiPjTR7K3Cikt3DQNmY_bp2qvgeOp2aooOWxNE";
const HS512: &str = "eyJhbGciOiJIUzUxMiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJldmUiLCJleHAiOjIwMDAwMDAwMDB9.HZVvYp5dfUPa8SOibQRVCfdnhXMf5GIopqVPBR_c0DwVU0lzYy8DrplHyYgvKTlD3xRhhiQo1yrywR3YfQCwLQ";
const NONE: &str =
    "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJyb29tIjoicjEiLCJzdWIiOiJldmUiLCJleHAiOjIwMDAwMDAwMDB9.";
const EXPIRED: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJmcmFuayIsImV4cCI6MTcwMDAwMDAwMH0.9Bp1jwmMrVV1pyFiXJbznTY2_5WHK0QLnjeSk-UDkh8";
const WRONG_ROOM: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjIiLCJzdWIiOiJnaW5hIiwiZXhwIjoyMDAwMDAwMDAwfQ.bB7TXw0mH957zJqElzRdYbRvOs47Tu1a49j94jifLaQ";
const NO_SUB: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJleHAiOjIwMDAwMDAwMDB9.hB2_VBX59lZrFMFPrSQhW7PozOTSOm1hqOteKmwfye8";
const LONG_SUB: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHgiLCJleHAiOjIwMDAwMDAwMDB9.qDEpveHSZUTQydHR8dJXOqvVvkbm6HCxBUAAfXyy1i0";
const MAX_SUB: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eCIsImV4cCI6MjAwMDAwMDAwMH0.5UzEljRzF7zwY6camxV0E4ELAa84kKkCpfwRyb_XSW4";
const NO_EXP: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJoIn0.rR4yGXHY4hvjHXvKC7NvO5jZGPuGqiLVYvq3m4zs23I";
const LONG_NAME: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJpIiwiZXhwIjoyMDAwMDAwMDAwLCJuYW1lIjoibm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm5ubm4ifQ.S1BGaxYiU5RMk9fPIwwqDIY41Z9LRW0Utxsy6JXTfuw";
const META_ARRAY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJqIiwiZXhwIjoyMDAwMDAwMDAwLCJtZXRhIjpbMV19.__dPFUvKFJ8cvfHIaH9N7I16rRV60LuNS4EMa77OS0Y";
const BIG_META: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJrIiwiZXhwIjoyMDAwMDAwMDAwLCJtZXRhIjp7ImEiOiJ4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eHh4eCJ9fQ.Hz4t2ORgayhESv9Z5H3sO7hWWDAMOdVZrL3OwP7Gdng";

/// Minted as above with `headers={"crit": [...]}`, or with the time claims shown.
const CRIT: &str = "eyJhbGciOiJIUzI1NiIsImNyaXQiOlsiZXhwIl0sInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJjcml0IiwiZXhwIjoyMDAwMDAwMDAwfQ.TNasXshDdD5NdXsTG7PHjbCbosuurcHwYXv2ElH86Co";
const CRIT_EMPTY: &str = "eyJhbGciOiJIUzI1NiIsImNyaXQiOltdLCJ0eXAiOiJKV1QifQ.eyJyb29tIjoicjEiLCJzdWIiOiJjcml0IiwiZXhwIjoyMDAwMDAwMDAwfQ.9cDcDg6xTVPnjS5ek_NQzqWBaMNHEM6Uv6xojduf4EI";
/// `exp: 1e300`.
const EXP_1E300: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJodWdlIiwiZXhwIjoxZSszMDB9.z9O6unDcvcNyCT_pzV2GMGkt-I8DHPIMld6dM6cMAnk";
/// `exp: 2000000000.5`.
const EXP_FRACTION: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJmcmFjIiwiZXhwIjoyMDAwMDAwMDAwLjV9.xRHv8ihgLKhXS7X6dATDa-aP5y6XqOp3auMs0EotLS4";
/// `exp: 2000000000.0`, a whole number written as a float.
const EXP_WHOLE_FLOAT: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJmbG9hdCIsImV4cCI6MjAwMDAwMDAwMC4wfQ.k3buvBkiRflznnfoWwVL1f-itW7e1Bgr_-4Zl0mdvxc";
/// `exp: -1`.
const EXP_NEGATIVE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJuZWciLCJleHAiOi0xfQ.S7wru-qif9liaAcMUyoa4PSf0zsVYwaBsuk4gxFSnco";
/// `nbf: -5`.
const NBF_NEGATIVE: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJuZWciLCJleHAiOjIwMDAwMDAwMDAsIm5iZiI6LTV9.g6quXJZZ97M1-KLJxd7_efYQ4PVyDgwsddU912FYnTY";
/// `iat: 2**53` and `iat: 2**53 - 1`.
const IAT_2_53: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJiaWciLCJleHAiOjIwMDAwMDAwMDAsImlhdCI6OTAwNzE5OTI1NDc0MDk5Mn0.3A65TQI1JC3TqXQ4ow5jAGWzpRm0AhfyxrRrjE9nDtA";
const IAT_2_53_LESS_1: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJiaWciLCJleHAiOjIwMDAwMDAwMDAsImlhdCI6OTAwNzE5OTI1NDc0MDk5MX0.4nAkk_g7NO6L7t_hxX83iPRbiGBRdC68sb91X33xeJA";
/// `exp: NOW + 86400 + 30` and one second more.
const EXP_A_DAY: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJkYXkiLCJleHAiOjE3MDAwODY1MzB9.wSSDqLol8GsduFfixlyHOKfz8B2jdjWWh5iUlm34WbQ";
const EXP_A_DAY_AND_1: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJyb29tIjoicjEiLCJzdWIiOiJkYXkiLCJleHAiOjE3MDAwODY1MzF9.jJHhfrQH5ewwkth_F8jU99tAGz1xizfsREHqU80SArg";

const SECRET: &str = "duet-test-secret";
/// 2023-11-14, before every `exp` of 2033 and after the `nbf` of 1,700,000,000.
const NOW: u64 = 1_700_000_100;
/// A lifetime cap past 2033, so the tickets above that expire then are within it.
const CAP: u64 = 400_000_000;

fn secrets(list: &str) -> Vec<String> {
    parse_secrets(list)
}

fn check(ticket: &str) -> Result<Identity, TicketError> {
    verify(ticket, &secrets(SECRET), "r1", NOW, CAP)
}

#[test]
fn a_valid_ticket_gives_its_identity() {
    let id = check(VALID).unwrap();
    assert_eq!(id.sub, "alice");
    assert_eq!(id.name.as_deref(), Some("Alice"));
    assert_eq!(id.meta, Some(serde_json::json!({"plan": "pro"})));
    assert_eq!(
        serde_json::to_string(&id).unwrap(),
        r#"{"sub":"alice","name":"Alice","meta":{"plan":"pro"}}"#
    );
    let id = check(MINIMAL).unwrap();
    assert_eq!(serde_json::to_string(&id).unwrap(), r#"{"sub":"bob"}"#);
    assert_eq!(check(NBF_IAT).unwrap().sub, "carol");
    assert_eq!(check(MAX_SUB).unwrap().sub.len(), MAX_SUB_CHARS);
}

#[test]
fn any_secret_of_the_rotation_list_verifies() {
    assert_eq!(check(ROTATED), Err(TicketError::Invalid));
    let list = secrets(" old-secret , duet-test-secret ");
    assert_eq!(verify(ROTATED, &list, "r1", NOW, CAP).unwrap().sub, "dave");
    assert_eq!(verify(VALID, &list, "r1", NOW, CAP).unwrap().sub, "alice");
}

#[test]
fn other_algorithms_and_damaged_tickets_are_invalid() {
    assert_eq!(check(HS512), Err(TicketError::Invalid));
    assert_eq!(check(NONE), Err(TicketError::Invalid));
    // `none` with the signature of a valid ticket pasted on.
    let sig = VALID.rsplit('.').next().unwrap();
    assert_eq!(check(&format!("{NONE}{sig}")), Err(TicketError::Invalid));
    // A tampered payload: bob's claims under alice's signature.
    let mut parts: Vec<&str> = VALID.split('.').collect();
    parts[1] = MINIMAL.split('.').nth(1).unwrap();
    assert_eq!(check(&parts.join(".")), Err(TicketError::Invalid));
    for bad in [
        "",
        "a",
        "a.b",
        "a.b.c",
        "a.b.c.d",
        "...",
        &format!("{VALID}."),
        &format!("{VALID}="),
    ] {
        assert_eq!(check(bad), Err(TicketError::Invalid), "{bad:?}");
    }
    assert_eq!(
        check(&"a".repeat(MAX_TICKET_BYTES + 1)),
        Err(TicketError::Invalid)
    );
}

#[test]
fn claims_of_the_wrong_shape_are_invalid() {
    for bad in [NO_SUB, LONG_SUB, NO_EXP, LONG_NAME, META_ARRAY, BIG_META] {
        assert_eq!(check(bad), Err(TicketError::Invalid));
    }
}

#[test]
fn expiry_and_not_before_allow_thirty_seconds() {
    let exp = 1_700_000_000;
    assert_eq!(
        verify(EXPIRED, &secrets(SECRET), "r1", exp + LEEWAY_S, CAP)
            .unwrap()
            .sub,
        "frank"
    );
    assert_eq!(
        verify(EXPIRED, &secrets(SECRET), "r1", exp + LEEWAY_S + 1, CAP),
        Err(TicketError::Expired)
    );
    let nbf = 1_700_000_000;
    assert_eq!(
        verify(NBF_IAT, &secrets(SECRET), "r1", nbf - LEEWAY_S, CAP)
            .unwrap()
            .sub,
        "carol"
    );
    assert_eq!(
        verify(NBF_IAT, &secrets(SECRET), "r1", nbf - LEEWAY_S - 1, CAP),
        Err(TicketError::Expired)
    );
}

#[test]
fn a_ticket_names_exactly_one_room() {
    assert_eq!(check(WRONG_ROOM), Err(TicketError::WrongRoom));
    assert_eq!(
        verify(VALID, &secrets(SECRET), "R1", NOW, CAP),
        Err(TicketError::WrongRoom)
    );
    assert_eq!(
        verify(VALID, &secrets(SECRET), "r1x", NOW, CAP),
        Err(TicketError::WrongRoom)
    );
    // A signature check comes before the room: a forged ticket never says wrong-room.
    assert_eq!(
        verify(WRONG_ROOM, &secrets("other"), "r1", NOW, CAP),
        Err(TicketError::Invalid)
    );
}

#[test]
fn base64url_is_strict() {
    assert_eq!(base64url("").unwrap(), b"");
    assert_eq!(base64url("Zg").unwrap(), b"f");
    assert_eq!(base64url("Zm8").unwrap(), b"fo");
    assert_eq!(base64url("Zm9v").unwrap(), b"foo");
    assert_eq!(base64url("-_-_").unwrap(), [0xfb, 0xff, 0xbf]);
    // Padding, the standard alphabet, a lone sextet and non-zero spare bits are refused.
    for bad in ["Zg==", "+/+/", "Z", "Zh", "Zm9", "Zm9v!"] {
        assert!(base64url(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_crit_header_is_invalid() {
    // RFC 7515, 4.1.11: extensions this verifier would have to understand; it knows none.
    assert_eq!(check(CRIT), Err(TicketError::Invalid));
    assert_eq!(check(CRIT_EMPTY), Err(TicketError::Invalid));
}

#[test]
fn times_are_whole_seconds_from_0_to_2_53() {
    for bad in [
        EXP_1E300,
        EXP_FRACTION,
        EXP_NEGATIVE,
        NBF_NEGATIVE,
        IAT_2_53,
    ] {
        assert_eq!(check(bad), Err(TicketError::Invalid), "{bad}");
    }
    assert_eq!(check(EXP_WHOLE_FLOAT).unwrap().sub, "float");
    assert_eq!(check(IAT_2_53_LESS_1).unwrap().sub, "big");
    // Out of range under any cap, so no cap lets them through.
    assert_eq!(
        verify(EXP_1E300, &secrets(SECRET), "r1", NOW, u64::MAX),
        Err(TicketError::Invalid)
    );
}

#[test]
fn exp_may_be_at_most_the_cap_and_the_leeway_ahead() {
    let day = |ticket| verify(ticket, &secrets(SECRET), "r1", NOW, DEFAULT_MAX_TTL_S);
    assert_eq!(DEFAULT_MAX_TTL_S, 86_400);
    assert_eq!(day(EXP_A_DAY).unwrap().sub, "day");
    assert_eq!(day(EXP_A_DAY_AND_1), Err(TicketError::TooLong));
    // exp 2033 is nearly ten years ahead of NOW.
    assert_eq!(day(VALID), Err(TicketError::TooLong));
    // Later, the same ticket is within the cap.
    let later = verify(
        EXP_A_DAY_AND_1,
        &secrets(SECRET),
        "r1",
        NOW + 1,
        DEFAULT_MAX_TTL_S,
    );
    assert_eq!(later.unwrap().sub, "day");
    // The cap is checked after the signature: a forged far-future ticket is just invalid.
    assert_eq!(
        verify(VALID, &secrets("other"), "r1", NOW, DEFAULT_MAX_TTL_S),
        Err(TicketError::Invalid)
    );
}
