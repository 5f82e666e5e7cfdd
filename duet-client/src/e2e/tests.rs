//! The vectors of docs/e2e.md in both directions, and every receiving rule, with the names
//! duet.js reports.

use super::sas::{fingerprint_of, safety_code, safety_code_of};
use super::*;
use serde_json::json;

const DOC: &str = include_str!("../../../docs/e2e.md");
const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const ROOM: &str = "e2e-vector";
const SENDER: &str = "0123456789abcdef0123456789abcdef";
const RECEIVER: &str = "fedcba9876543210fedcba9876543210";
const PLAINTEXT: &str = r#"{"kind":"signal","n":1}"#;
const KEY_HEX: &str = "e446953ad42f5c906e45f2486fe153ba0069936d920dbf23fa251f1f28f6fb82";
const ENVELOPE: &str = r#"{"e2e":1,"iv":"oKGio6Slpqeoqaqr","ct":"l60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw"}"#;
const HELLO: &str = r#"{"e2e":1,"hello":1,"iv":"sLGys7S1tre4ubq7","ct":"gzw9Haknf-1ihNGtdZFxfhMHv7A41fG4SUutrjoigU1vOm-cw5yGHVU0fAD0e76hGFbe7VxI7-sk"}"#;

fn iv_from(first: u8) -> [u8; 12] {
    std::array::from_fn(|i| first + i as u8)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The receiving side of the vector: welcomed as RECEIVER.
fn receiver() -> E2e {
    let mut e2e = E2e::new(SECRET, ROOM).unwrap();
    e2e.add_own_id(RECEIVER);
    e2e
}

#[test]
fn the_document_states_these_vectors() {
    for text in [
        SECRET,
        ROOM,
        SENDER,
        RECEIVER,
        PLAINTEXT,
        KEY_HEX,
        ENVELOPE,
        HELLO,
        "`024 995`",
        "`088 731`",
        "`651 237`",
    ] {
        assert!(DOC.contains(text), "docs/e2e.md no longer says {text}");
    }
}

#[test]
fn the_secret_is_bytes_0_to_31_and_the_key_is_the_vectors() {
    assert_eq!(parse_secret(SECRET), Ok(std::array::from_fn(|i| i as u8)));
    assert_eq!(hex(&derive_key(SECRET, ROOM).unwrap()), KEY_HEX);
}

#[test]
fn sealing_the_vector_gives_its_envelope_byte_for_byte() {
    let envelope = receiver()
        .seal_text(SENDER, PLAINTEXT, iv_from(0xa0))
        .unwrap();
    assert_eq!(serde_json::to_string(&envelope).unwrap(), ENVELOPE);
    // Through seal() of a value, too: its JSON text is the vector's.
    let sealed = receiver()
        .seal(SENDER, &json!({"kind": "signal", "n": 1}))
        .unwrap();
    assert_eq!(
        sealed.ct.len(),
        "l60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw".len()
    );
}

#[test]
fn opening_the_vector_gives_its_plaintext() {
    assert_eq!(
        receiver().receive(SENDER, &value(ENVELOPE)),
        Ok(Received::Message(value(PLAINTEXT)))
    );
}

#[test]
fn sealing_the_hello_vector_gives_its_hello_byte_for_byte() {
    let hello = receiver()
        .seal_hello_with_iv(SENDER, RECEIVER, iv_from(0xb0))
        .unwrap();
    assert_eq!(serde_json::to_string(&hello).unwrap(), HELLO);
}

#[test]
fn the_hello_vector_confirms_the_key_for_its_receiver_only() {
    let confirmed = Received::Hello {
        to: RECEIVER.to_owned(),
        confirmed: true,
    };
    assert_eq!(receiver().receive(SENDER, &value(HELLO)), Ok(confirmed));
    // An earlier pairing's hello: it opens, and confirms nothing.
    let mut moved_on = receiver();
    moved_on.add_own_id("another-id");
    let stale = Received::Hello {
        to: RECEIVER.to_owned(),
        confirmed: false,
    };
    assert_eq!(moved_on.receive(SENDER, &value(HELLO)), Ok(stale));
}

#[test]
fn a_hello_never_opens_as_a_message_nor_a_message_as_a_hello() {
    let mut hello_as_message = value(HELLO);
    hello_as_message.as_object_mut().unwrap().remove("hello");
    assert_eq!(
        receiver().receive(SENDER, &hello_as_message),
        Err(E2eError::Undecryptable)
    );
    let mut message_as_hello = value(ENVELOPE);
    message_as_hello["hello"] = json!(1);
    assert_eq!(
        receiver().receive(SENDER, &message_as_hello),
        Err(E2eError::KeyMismatch)
    );
}

#[test]
fn a_hello_under_another_key_is_a_key_mismatch() {
    let other = E2e::new(&"A".repeat(43), ROOM).unwrap();
    let hello = serde_json::to_value(other.seal_hello(SENDER, RECEIVER).unwrap()).unwrap();
    assert_eq!(
        receiver().receive(SENDER, &hello),
        Err(E2eError::KeyMismatch)
    );
}

#[test]
fn a_hello_of_the_wrong_shape_is_malformed() {
    let mut two = value(HELLO);
    two["hello"] = json!(2);
    assert_eq!(receiver().receive(SENDER, &two), Err(E2eError::Malformed));
    // Opens, but its plaintext is not {"to": string}.
    let e2e = receiver();
    let aad = additional_data(HELLO_LABEL, ROOM, SENDER);
    for plaintext in [r#"{"to":1}"#, r#"["to"]"#, "null"] {
        let hello = e2e
            .encrypt(&aad, plaintext.as_bytes(), random_iv().unwrap(), Some(1))
            .unwrap();
        assert_eq!(
            receiver().receive(SENDER, &serde_json::to_value(hello).unwrap()),
            Err(E2eError::Malformed)
        );
    }
}

#[test]
fn a_message_attributed_to_another_sender_does_not_decrypt() {
    assert_eq!(
        receiver().receive("someone-else", &value(ENVELOPE)),
        Err(E2eError::Undecryptable)
    );
}

#[test]
fn another_room_or_key_does_not_decrypt() {
    let mut other_room = E2e::new(SECRET, "another-room").unwrap();
    assert_eq!(
        other_room.receive(SENDER, &value(ENVELOPE)),
        Err(E2eError::Undecryptable)
    );
    let mut other_key = E2e::new("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhA", ROOM).unwrap();
    assert_eq!(
        other_key.receive(SENDER, &value(ENVELOPE)),
        Err(E2eError::Undecryptable)
    );
}

#[test]
fn an_altered_iv_or_ciphertext_does_not_decrypt() {
    let mut iv = value(ENVELOPE);
    iv["iv"] = json!("oKGio6Slpqeoqaqs");
    assert_eq!(
        receiver().receive(SENDER, &iv),
        Err(E2eError::Undecryptable)
    );
    let mut ct = value(ENVELOPE);
    ct["ct"] = json!("m60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw");
    assert_eq!(
        receiver().receive(SENDER, &ct),
        Err(E2eError::Undecryptable)
    );
}

#[test]
fn plaintext_is_not_encrypted_and_a_keyless_side_refuses_envelopes() {
    assert_eq!(
        receiver().receive(SENDER, &json!({"kind": "signal"})),
        Err(E2eError::NotEncrypted)
    );
    assert_eq!(
        receiver().receive(SENDER, &json!("text")),
        Err(E2eError::NotEncrypted)
    );
    assert_eq!(
        check_plain(&value(ENVELOPE)),
        Err(E2eError::UnexpectedEnvelope)
    );
    assert_eq!(
        check_plain(&value(HELLO)),
        Err(E2eError::UnexpectedEnvelope)
    );
    assert_eq!(check_plain(&json!({"kind": "signal"})), Ok(()));
}

#[test]
fn malformed_envelopes_name_malformed() {
    let cases = [
        json!({"e2e": 2, "iv": "oKGio6Slpqeoqaqr", "ct": "l60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw"}),
        json!({"e2e": "1", "iv": "oKGio6Slpqeoqaqr", "ct": "l60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw"}),
        // An IV of 11 bytes, and one with padding.
        json!({"e2e": 1, "iv": "oKGio6Slpqeoqao", "ct": "l60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw"}),
        json!({"e2e": 1, "iv": "oKGio6Slpqeoqaqr==", "ct": "l60wcAOkZHc_5axhC7W221O-K2BJunShHxaUs6r_8LMmlkqEs8Xw"}),
        // Standard base64's alphabet, not base64url's.
        json!({"e2e": 1, "iv": "oKGio6Slpqeoqaqr", "ct": "l60wcAOkZHc/5axhC7W221O+K2BJunShHxaUs6r/8LMmlkqEs8Xw"}),
        // A ciphertext shorter than the tag; a missing one.
        json!({"e2e": 1, "iv": "oKGio6Slpqeoqaqr", "ct": "AAAAAAAAAAAAAAAAAAAA"}),
        json!({"e2e": 1, "iv": "oKGio6Slpqeoqaqr"}),
    ];
    for data in cases {
        assert_eq!(
            receiver().receive(SENDER, &data),
            Err(E2eError::Malformed),
            "{data}"
        );
    }
}

#[test]
fn only_canonical_base64url_is_accepted() {
    // A 1-byte plaintext: 17 bytes of ct, 23 characters whose last has 2 unused bits. Setting
    // one spells the same bytes non-canonically.
    let sealed = receiver().seal_text(SENDER, "1", iv_from(0)).unwrap();
    let alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = sealed.ct.chars().last().unwrap();
    let bumped = alphabet
        .chars()
        .nth(alphabet.find(last).unwrap() + 1)
        .unwrap();
    let mut data = serde_json::to_value(&sealed).unwrap();
    data["ct"] = json!(format!("{}{bumped}", &sealed.ct[..sealed.ct.len() - 1]));
    assert_eq!(receiver().receive(SENDER, &data), Err(E2eError::Malformed));
    assert!(receiver()
        .receive(SENDER, &serde_json::to_value(&sealed).unwrap())
        .is_ok());
    assert_eq!(
        parse_secret("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh9"),
        Err(BadSecret)
    );
    assert_eq!(
        parse_secret("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="),
        Err(BadSecret)
    );
    assert_eq!(
        parse_secret("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh"),
        Err(BadSecret)
    );
    assert_eq!(
        parse_secret("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdH+8"),
        Err(BadSecret)
    );
    assert!(E2e::new("not a key", ROOM).is_err());
}

#[test]
fn a_plaintext_that_is_not_json_is_malformed() {
    let e2e = receiver();
    let envelope = e2e.seal_text(SENDER, "{not json", iv_from(0)).unwrap();
    assert_eq!(
        receiver().receive(SENDER, &serde_json::to_value(envelope).unwrap()),
        Err(E2eError::Malformed)
    );
    let aad = additional_data(LABEL, ROOM, SENDER);
    let bad_utf8 = e2e.encrypt(&aad, b"\"\xff\"", iv_from(1), None).unwrap();
    assert_eq!(
        receiver().receive(SENDER, &serde_json::to_value(bad_utf8).unwrap()),
        Err(E2eError::Malformed)
    );
}

#[test]
fn the_same_iv_is_accepted_once_per_connection() {
    let mut e2e = receiver();
    assert!(e2e.receive(SENDER, &value(ENVELOPE)).is_ok());
    assert_eq!(
        e2e.receive(SENDER, &value(ENVELOPE)),
        Err(E2eError::Replayed)
    );
    // Messages and hellos share the set of IVs.
    let hello = e2e
        .seal_hello_with_iv(SENDER, RECEIVER, iv_from(0xa0))
        .unwrap();
    assert_eq!(
        e2e.receive(SENDER, &serde_json::to_value(hello).unwrap()),
        Err(E2eError::Replayed)
    );
    // A new id from a fresh welcome clears nothing.
    e2e.add_own_id("new-id");
    assert_eq!(
        e2e.receive(SENDER, &value(ENVELOPE)),
        Err(E2eError::Replayed)
    );
    // A rejected envelope does not use its IV up.
    let mut fresh = receiver();
    assert!(fresh.receive("someone-else", &value(ENVELOPE)).is_err());
    assert!(fresh.receive(SENDER, &value(ENVELOPE)).is_ok());
}

#[test]
fn our_own_envelopes_relayed_back_are_reflected_under_any_id_we_held() {
    let mut e2e = E2e::new(SECRET, ROOM).unwrap();
    e2e.add_own_id(SENDER);
    assert_eq!(
        e2e.receive(SENDER, &value(ENVELOPE)),
        Err(E2eError::Reflected)
    );
    // After a fresh welcome with a new id, the old one is still ours.
    e2e.add_own_id("next-id");
    assert_eq!(
        e2e.receive(SENDER, &value(ENVELOPE)),
        Err(E2eError::Reflected)
    );
    assert_eq!(e2e.receive(SENDER, &value(HELLO)), Err(E2eError::Reflected));
    // And a stored slot's id from before this object.
    let mut reloaded = E2e::new(SECRET, ROOM).unwrap();
    reloaded.add_former_id(SENDER);
    reloaded.add_own_id(RECEIVER);
    assert_eq!(
        reloaded.receive(SENDER, &value(ENVELOPE)),
        Err(E2eError::Reflected)
    );
}

#[test]
fn a_round_trip_between_two_sides() {
    let mut alice = E2e::new(SECRET, ROOM).unwrap();
    alice.add_own_id("alice");
    let mut bob = E2e::new(SECRET, ROOM).unwrap();
    bob.add_own_id("bob");
    let message = json!({"kind": "signal", "pc": "x", "to": null, "description": {"type": "offer", "sdp": "v=0\r\n"}});
    let sealed = serde_json::to_value(alice.seal("alice", &message).unwrap()).unwrap();
    assert_eq!(
        bob.receive("alice", &sealed),
        Ok(Received::Message(message))
    );
    let hello = serde_json::to_value(bob.seal_hello("bob", "alice").unwrap()).unwrap();
    assert_eq!(
        alice.receive("bob", &hello),
        Ok(Received::Hello {
            to: "alice".into(),
            confirmed: true
        })
    );
}

#[test]
fn reasons_are_the_names_duet_js_reports() {
    let names: Vec<_> = [
        E2eError::NotEncrypted,
        E2eError::UnexpectedEnvelope,
        E2eError::Malformed,
        E2eError::Undecryptable,
        E2eError::Replayed,
        E2eError::Reflected,
        E2eError::KeyMismatch,
    ]
    .into_iter()
    .map(E2eError::reason)
    .collect();
    for name in &names {
        assert!(
            DOC.contains(&format!("[`{name}`]")) || DOC.contains(&format!("**`{name}`**")),
            "{name}"
        );
    }
    let js = include_str!("../../../public/js/e2e.js");
    assert!(js.contains(
        &names
            .iter()
            .map(|n| format!("\"{n}\""))
            .collect::<Vec<_>>()
            .join(" | ")
    ));
}

#[test]
fn the_frame_size_is_known_before_sealing() {
    let e2e = receiver();
    for n in [0, 1, 2, 3, 100, 49_085] {
        let text = format!("\"{}\"", "a".repeat(n.max(2) - 2));
        let text = if n < 2 { "1".repeat(n.max(1)) } else { text };
        let frame =
            json!({"type": "message", "data": e2e.seal_text(SENDER, &text, iv_from(0)).unwrap()});
        assert_eq!(
            envelope_frame_bytes(text.len()),
            serde_json::to_string(&frame).unwrap().len(),
            "{n}"
        );
    }
    // The document's limit: a 49,085-byte value fits the default 65,536-byte frame, one more does not.
    assert!(envelope_frame_bytes(49_085) <= 65_536 && envelope_frame_bytes(49_086) > 65_536);
}

#[test]
fn a_new_secret_is_a_valid_secret() {
    let secret = new_secret().unwrap();
    assert_eq!(secret.len(), 43);
    assert!(parse_secret(&secret).is_ok());
    assert_ne!(secret, new_secret().unwrap());
}

fn fingerprint(bytes: impl Iterator<Item = u8>) -> String {
    bytes
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[test]
fn the_safety_code_vector() {
    let a = fingerprint(0..=31);
    let b = fingerprint((224..=255).rev());
    assert_eq!(safety_code_of(&a, &b), "024 995");
    assert_eq!(safety_code_of(&b, &a), "024 995");
    assert_eq!(
        safety_code_of(&format!("sha-256 {a}"), &format!("sha-256 {b}")),
        "088 731"
    );
    assert_eq!(
        safety_code_of(&a.to_lowercase(), &b.to_lowercase()),
        "651 237"
    );
}

#[test]
fn the_safety_code_takes_the_first_fingerprint_line_of_each_description() {
    let a = fingerprint(0..=31);
    let b = fingerprint((224..=255).rev());
    let local = format!(
        "v=0\r\na=group:BUNDLE 0\r\na=fingerprint:sha-256 {a}\r\na=fingerprint:sha-256 {b}\r\n"
    );
    let remote = format!("v=0\r\nm=audio 9\r\na=fingerprint:sha-256\t{b} \r\n");
    assert_eq!(fingerprint_of(&local), Some(a.as_str()));
    assert_eq!(fingerprint_of(&remote), Some(b.as_str()));
    assert_eq!(safety_code(&local, &remote).as_deref(), Some("024 995"));
    assert_eq!(
        fingerprint_of("v=0\r\na=fingerprint:sha-256 XY:01\r\n"),
        None
    );
    assert_eq!(safety_code(&local, "v=0\r\n"), None);
}
