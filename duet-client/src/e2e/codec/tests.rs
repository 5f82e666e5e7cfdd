//! The key confirmation as the client drives it: hellos when duet.js sends them, one
//! `e2e-confirmed` per pairing, `key-mismatch` for a hello under another key and for silence,
//! and the keyless side's `unexpected-envelope`.

use super::*;
use std::time::Duration;

const SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8";
const OTHER_SECRET: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHhA";
const ROOM: &str = "codec-room";

fn ctx<'a>(me: &'a str, peer: Option<&'a str>) -> Context<'a> {
    Context {
        room: ROOM,
        client_id: me,
        peer,
        open: true,
    }
}

fn frame(text: &str) -> Event {
    let event = Event::decode(text);
    assert!(matches!(event, Event::Frame(_)), "{text} is a frame");
    event
}

fn welcome(kind: &str, me: &str, peers: &[&str], resumed: bool) -> Event {
    let peers = serde_json::to_string(peers).unwrap();
    frame(&format!(
        r#"{{"type":"{kind}","version":1,"room":"{ROOM}","clientId":"{me}","resumeToken":"t","iceServers":[],"iceServersExpireAt":null,"maxPeers":2,"maxMessageBytes":65536,"peers":{peers}{}}}"#,
        if kind == "joined" {
            format!(r#","resumed":{resumed}"#)
        } else {
            String::new()
        }
    ))
}

fn ready(initiator: &str, other: &str) -> Event {
    frame(&format!(
        r#"{{"type":"ready","room":"{ROOM}","initiator":"{initiator}","peers":["{initiator}","{other}"]}}"#
    ))
}

/// A codec welcomed as `me` and paired with `peer` by a `ready`; returns what the ready sent.
fn paired(secret: &str, me: &str, peer: &str) -> (EnvelopeCodec, Output) {
    let mut codec = EnvelopeCodec::new(secret, ROOM).unwrap();
    let mut out = Output::default();
    codec.observe(
        &ctx(me, None),
        &welcome("created", me, &[me], false),
        &mut out,
    );
    assert!(out.send.is_empty(), "no hello before a pairing");
    codec.observe(&ctx(me, Some(peer)), &ready(me, peer), &mut out);
    (codec, out)
}

fn reasons(out: &Output) -> Vec<String> {
    out.events
        .iter()
        .map(|e| match e {
            Event::E2eError { reason, .. } => reason.clone(),
            Event::E2eConfirmed { peer } => format!("confirmed by {peer}"),
            other => format!("{other:?}"),
        })
        .collect()
}

#[test]
fn ready_sends_a_hello_that_confirms_the_key_on_the_other_side_once() {
    let (mut alice, hello) = paired(SECRET, "alice", "bob");
    let (mut bob, bob_hello) = paired(SECRET, "bob", "alice");
    assert_eq!(hello.send.len(), 1);
    let deadline = alice.deadline().expect("the clock runs after ready");
    assert!(deadline > Instant::now() + Duration::from_millis(4900) - Duration::from_secs(1));

    let mut out = Output::default();
    assert!(
        bob.open(
            &ctx("bob", Some("alice")),
            "alice",
            &hello.send[0],
            &mut out
        )
        .is_none(),
        "a hello is never delivered"
    );
    assert_eq!(reasons(&out), ["confirmed by alice"]);
    assert_eq!(bob.key_confirmed(), Some(true));
    assert_eq!(bob.deadline(), None);

    // Alice confirms on Bob's hello; a second hello of Bob's (his return) reports nothing more.
    let mut out = Output::default();
    alice.open(
        &ctx("alice", Some("bob")),
        "bob",
        &bob_hello.send[0],
        &mut out,
    );
    let mut again = Output::default();
    bob.observe(
        &ctx("bob", Some("alice")),
        &frame(r#"{"type":"peer-joined","room":"codec-room","clientId":"alice","resumed":true}"#),
        &mut again,
    );
    assert_eq!(again.send.len(), 1, "a hello on the peer's return");
    alice.open(&ctx("alice", Some("bob")), "bob", &again.send[0], &mut out);
    assert_eq!(reasons(&out), ["confirmed by bob"]);
}

#[test]
fn a_hello_under_another_key_is_a_key_mismatch() {
    let (mut alice, _) = paired(SECRET, "alice", "bob");
    let (_, other) = paired(OTHER_SECRET, "bob", "alice");
    let mut out = Output::default();
    assert!(alice
        .open(&ctx("alice", Some("bob")), "bob", &other.send[0], &mut out)
        .is_none());
    assert_eq!(reasons(&out), ["key-mismatch"]);
    assert_eq!(alice.key_confirmed(), Some(false));
    assert_eq!(alice.deadline(), None, "decided: the clock stops");
}

#[test]
fn silence_until_the_deadline_is_a_key_mismatch_and_a_late_hello_still_confirms() {
    let (mut alice, _) = paired(SECRET, "alice", "bob");
    let (_, bob_hello) = paired(SECRET, "bob", "alice");
    let mut out = Output::default();
    alice.on_deadline(&ctx("alice", Some("bob")), &mut out);
    assert_eq!(reasons(&out), ["key-mismatch"]);
    let mut late = Output::default();
    alice.open(
        &ctx("alice", Some("bob")),
        "bob",
        &bob_hello.send[0],
        &mut late,
    );
    assert_eq!(reasons(&late), ["confirmed by bob"]);
    assert_eq!(alice.key_confirmed(), Some(true));
}

#[test]
fn a_drop_of_either_side_stops_the_clock() {
    for event in [
        frame(r#"{"type":"peer-away","room":"codec-room","clientId":"bob"}"#),
        frame(r#"{"type":"peer-left","room":"codec-room","clientId":"bob","reason":"leave"}"#),
        Event::SocketClosed(crate::event::Close::lost("gone")),
    ] {
        let (mut alice, _) = paired(SECRET, "alice", "bob");
        alice.observe(&ctx("alice", Some("bob")), &event, &mut Output::default());
        assert_eq!(alice.deadline(), None, "{event:?}");
    }
}

#[test]
fn a_resumed_welcome_with_a_peer_says_hello_again_until_confirmed() {
    let (mut alice, _) = paired(SECRET, "alice", "bob");
    let mut out = Output::default();
    alice.observe(
        &ctx("alice", Some("bob")),
        &welcome("joined", "alice", &["alice", "bob"], true),
        &mut out,
    );
    assert_eq!(out.send.len(), 1);
    // The hello names bob and is sealed as alice's.
    let mut bob = E2e::new(SECRET, ROOM).unwrap();
    bob.add_own_id("bob");
    let data: Value = serde_json::from_str(out.send[0].get()).unwrap();
    assert_eq!(
        bob.receive("alice", &data),
        Ok(Received::Hello {
            to: "bob".into(),
            confirmed: true
        })
    );
    // A fresh welcome (not a resume) waits for the next ready.
    let mut fresh = Output::default();
    alice.observe(
        &ctx("alice2", None),
        &welcome("joined", "alice2", &["alice2", "bob"], false),
        &mut fresh,
    );
    assert!(fresh.send.is_empty());
}

#[test]
fn messages_round_trip_and_our_own_come_back_reflected() {
    let (mut alice, _) = paired(SECRET, "alice", "bob");
    let (mut bob, _) = paired(SECRET, "bob", "alice");
    let data = RawValue::from_string(r#"{"kind":"signal","n":1}"#.into()).unwrap();
    let sealed = alice.seal(&ctx("alice", Some("bob")), &data).unwrap();
    assert!(sealed.get().starts_with(r#"{"e2e":1,"iv":""#));
    let mut out = Output::default();
    let opened = bob
        .open(&ctx("bob", Some("alice")), "alice", &sealed, &mut out)
        .unwrap();
    assert_eq!(opened.get(), data.get());
    assert!(out.events.is_empty());
    // The server relays alice's envelope back to her under her own id.
    alice.open(&ctx("alice", Some("bob")), "alice", &sealed, &mut out);
    // And to bob again: a replay.
    bob.open(&ctx("bob", Some("alice")), "alice", &sealed, &mut out);
    // And plaintext to a side with a key.
    bob.open(&ctx("bob", Some("alice")), "alice", &data, &mut out);
    assert_eq!(reasons(&out), ["reflected", "replayed", "not-encrypted"]);
}

#[test]
fn a_keyless_side_refuses_envelopes_and_passes_plaintext() {
    let (mut alice, hello) = paired(SECRET, "alice", "bob");
    let sealed = alice
        .seal(
            &ctx("alice", Some("bob")),
            &RawValue::from_string("{}".into()).unwrap(),
        )
        .unwrap();
    let mut plain = PlainCodec;
    let mut out = Output::default();
    let context = ctx("bob", Some("alice"));
    assert!(plain.open(&context, "alice", &sealed, &mut out).is_none());
    assert!(plain
        .open(&context, "alice", &hello.send[0], &mut out)
        .is_none());
    assert_eq!(
        reasons(&out),
        ["unexpected-envelope", "unexpected-envelope"]
    );
    let text = RawValue::from_string(r#"{"kind":"chat"}"#.into()).unwrap();
    assert_eq!(
        plain
            .open(&context, "alice", &text, &mut out)
            .unwrap()
            .get(),
        text.get()
    );
    assert_eq!(plain.seal(&context, &text).unwrap().get(), text.get());
}
