//! The room's decisions checked with exact frames, closes and stored state; no sockets.

use super::*;
use crate::config::Config;
use crate::protocol::Welcome;
use crate::rate::RateLimiter;
use crate::registry::{Activity, Live};
use crate::token;
use crate::turn::TurnSettings;
use crate::vars::vars;
use serde_json::value::RawValue;
use std::sync::LazyLock;

const GRACE: u64 = 15_000;
const STALE: u64 = 60_000;

/// STUN `stun:s` and a shared-secret TURN server, so each welcome names the client id its
/// credentials were minted for.
fn test_config() -> Config {
    let (turn, _) = TurnSettings::from_vars(vars(&[
        ("TURN_SECRET", "k"),
        ("TURN_URLS", "turn:t.example"),
    ]));
    Config {
        ice_servers: RawValue::from_string(r#"[{"urls":"stun:s"}]"#.into()).unwrap(),
        resume_grace_ms: GRACE,
        stale_after_ms: STALE,
        turn,
        ..Config::default()
    }
}

static CONFIG: LazyLock<Config> = LazyLock::new(test_config);
static NO_SOCKETS: LazyLock<Activity> = LazyLock::new(Activity::new);

/// The context at `now` with these open sockets.
fn at(now: u64, activity: &Activity) -> Ctx<'_> {
    Ctx {
        now,
        config: &CONFIG,
        activity,
    }
}

/// The context at `now` for decisions that do not look at sockets.
fn quiet(now: u64) -> Ctx<'static> {
    at(now, &NO_SOCKETS)
}

/// An arrival whose ids are derived from `n`: socket `sN`, client `cN`, token `tN`.
fn arrival(n: u32, resume: Option<&str>) -> Arrival {
    Arrival {
        conn: format!("s{n}"),
        new_client_id: format!("c{n}"),
        new_token: format!("t{n}"),
        new_token_hash: token::hash(&format!("t{n}")),
        resume_hash: token::resume_hash(resume),
        cloudflare_ice: Default::default(),
        identity: None,
        address: None,
    }
}

/// A socket last seen at `at`, with a full bucket.
fn seen(at: u64) -> Live {
    Live {
        last_seen: at,
        confirmed: true,
        bucket: RateLimiter::new(CONFIG.rate_limit_burst, at),
    }
}

/// These sockets open, all seen at time 0.
fn live(conns: &[&str]) -> Activity {
    conns.iter().map(|c| (c.to_string(), seen(0))).collect()
}

fn admitted((accept, effects): (Accept, Vec<Effect>)) -> Vec<Effect> {
    assert!(
        matches!(accept, Accept::Hibernate(_)),
        "expected admission, got {accept:?}"
    );
    effects
}

fn is_full(joining: (Accept, Vec<Effect>)) -> bool {
    joining.0 == Accept::Refuse
}

fn ids(room: &RoomState) -> Vec<String> {
    room.slots.iter().map(|s| s.client_id.clone()).collect()
}

/// A welcome's `iceServers` as `[{"for":ID}]`, ID being the client its TURN entry names, after
/// checking that the list is `stun:s` then that entry with the credential for its username,
/// and that `iceServersExpireAt` is the username's expiry.
fn ice_for(frame: &ServerFrame) -> ServerFrame {
    let mut frame = frame.clone();
    if let ServerFrame::Created(welcome) | ServerFrame::Joined(welcome) = &mut frame {
        let Welcome {
            ice_servers,
            ice_servers_expire_at,
            ..
        } = welcome;
        let list: serde_json::Value = serde_json::from_str(ice_servers.get()).unwrap();
        assert_eq!(list[0]["urls"], "stun:s");
        let username = list[1]["username"].as_str().unwrap();
        assert_eq!(
            list[1]["credential"],
            crate::turn::rest_credential("k", username)
        );
        let (expiry, id) = username.split_once(':').unwrap();
        let expiry_ms = expiry.parse::<u64>().unwrap() * 1000;
        assert_eq!(*ice_servers_expire_at, Some(expiry_ms), "{username}");
        *ice_servers = RawValue::from_string(format!(r#"[{{"for":"{id}"}}]"#)).unwrap();
    }
    frame
}

/// The frames and closes of `effects` as `(socket, text)`, in order; closes read `close N reason`.
fn wire(effects: &[Effect]) -> Vec<(String, String)> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Send { conn, frame } => Some((conn.clone(), ice_for(frame).to_text())),
            Effect::SendText { conn, text } => Some((conn.clone(), text.clone())),
            Effect::Close { conn, code } => Some((
                conn.clone(),
                format!("close {} {}", code.code(), code.reason()),
            )),
            _ => None,
        })
        .collect()
}

fn logs(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Log(l) => Some(serde_json::to_string(l).unwrap()),
            _ => None,
        })
        .collect()
}

fn w(conn: &str, text: &str) -> (String, String) {
    (conn.to_owned(), text.to_owned())
}

const READY_12: &str = r#"{"type":"ready","room":"r","initiator":"c1","peers":["c1","c2"]}"#;

/// A room where c1 (socket s1) and c2 (socket s2) are connected and were told ready.
fn pair() -> RoomState {
    let mut room = RoomState::new("r");
    admitted(room.join(at(0, &live(&[])), arrival(1, None)));
    admitted(room.join(at(0, &live(&["s1"])), arrival(2, None)));
    room
}

#[test]
fn first_peer_creates_and_second_joins_then_both_are_ready() {
    let mut room = RoomState::new("r");
    let effects = admitted(room.join(at(0, &live(&[])), arrival(1, None)));
    assert_eq!(
        wire(&effects),
        [w(
            "s1",
            r#"{"type":"created","version":1,"room":"r","clientId":"c1","resumeToken":"t1","iceServers":[{"for":"c1"}],"iceServersExpireAt":3600000,"maxPeers":2,"maxMessageBytes":65536,"peers":[]}"#
        )]
    );
    assert_eq!(
        logs(&effects),
        [r#"{"event":"join","room":"r","clientId":"c1"}"#]
    );

    let effects = admitted(room.join(at(5, &live(&["s1"])), arrival(2, None)));
    assert_eq!(
        wire(&effects),
        [
            w(
                "s2",
                r#"{"type":"joined","version":1,"room":"r","clientId":"c2","resumeToken":"t2","iceServers":[{"for":"c2"}],"iceServersExpireAt":3600000,"maxPeers":2,"maxMessageBytes":65536,"peers":["c1"],"resumed":false}"#
            ),
            w(
                "s1",
                r#"{"type":"peer-joined","room":"r","clientId":"c2","resumed":false}"#
            ),
            w("s1", READY_12),
            w("s2", READY_12),
        ]
    );
    assert_eq!(room.ready_pair, Some(["c1".into(), "c2".into()]));
    // Only the hash of a token is kept.
    assert_eq!(room.slots[1].token_hash, token::hash("t2"));
    assert!(!serde_json::to_string(&room).unwrap().contains("\"t2\""));
}

#[test]
fn third_peer_finds_the_room_full() {
    let mut room = pair();
    let before = room.clone();
    let (accept, effects) = room.join(at(9, &live(&["s1", "s2"])), arrival(3, None));
    assert_eq!(accept, Accept::Refuse);
    assert_eq!(
        wire(&effects),
        [
            w("s3", r#"{"type":"full","room":"r","maxPeers":2}"#),
            w("s3", "close 4409 room full")
        ]
    );
    assert_eq!(logs(&effects), [r#"{"event":"full","room":"r"}"#]);
    assert_eq!(room, before);
}

#[test]
fn an_away_slot_is_held_so_the_room_stays_full() {
    let mut room = pair();
    room.closed(quiet(100), "s2", 1006, &None);
    assert!(is_full(
        room.join(at(200, &live(&["s1"])), arrival(3, None))
    ));
}

#[test]
fn leave_releases_the_slot_and_closes_with_1000() {
    let mut room = pair();
    let effects = room.leave(quiet(0), "s2");
    assert_eq!(
        wire(&effects),
        [
            w(
                "s1",
                r#"{"type":"peer-left","room":"r","clientId":"c2","reason":"leave"}"#
            ),
            w("s2", "close 1000 left"),
        ]
    );
    assert_eq!(
        logs(&effects),
        [r#"{"event":"leave","room":"r","clientId":"c2","reason":"leave"}"#]
    );
    assert_eq!(room.slots.len(), 1);
    assert_eq!(room.ready_pair, None);
    // The echo of our own close changes nothing.
    assert!(room.closed(quiet(1), "s2", 1000, &None).is_empty());
}

#[test]
fn a_clean_client_close_is_a_leave() {
    let mut room = pair();
    let effects = room.closed(quiet(1), "s1", 1000, &None);
    assert_eq!(
        wire(&effects),
        [w(
            "s2",
            r#"{"type":"peer-left","room":"r","clientId":"c1","reason":"leave"}"#
        )]
    );
    // The remaining peer is now first, so it will be the initiator of the next pair.
    admitted(room.join(at(2, &live(&["s2"])), arrival(3, None)));
    assert_eq!(room.ready_pair, Some(["c2".into(), "c3".into()]));
}

#[test]
fn a_dropped_socket_is_away_then_times_out() {
    let mut room = pair();
    let effects = room.closed(quiet(1_000), "s2", 1006, &None);
    assert_eq!(
        wire(&effects),
        [w(
            "s1",
            r#"{"type":"peer-away","room":"r","clientId":"c2"}"#
        )]
    );
    assert_eq!(
        room.slots[1].presence,
        Presence::Away {
            deadline: 1_000 + GRACE
        }
    );
    assert_eq!(room.next_alarm(1_000), Some(1_000 + GRACE));
    // A second close event for the same socket is not a second drop.
    assert!(room.closed(quiet(1_001), "s2", 1001, &None).is_empty());
    // Before the deadline the alarm frees nothing.
    assert!(wire(&room.alarm(at(1_000 + GRACE - 1, &live(&["s1"])))).is_empty());
    let effects = room.alarm(at(1_000 + GRACE, &live(&["s1"])));
    assert_eq!(
        wire(&effects),
        [w(
            "s1",
            r#"{"type":"peer-left","room":"r","clientId":"c2","reason":"timeout"}"#
        )]
    );
    assert_eq!(room.slots.len(), 1);
    assert_eq!(
        room.next_alarm(20_000),
        Some(20_000 + SWEEP_INTERVAL_MS),
        "a room with a connected peer keeps a sweep alarm"
    );
}

#[test]
fn with_no_grace_a_drop_releases_at_once() {
    let config = Config {
        resume_grace_ms: 0,
        ..test_config()
    };
    let mut room = pair();
    let ctx = Ctx {
        now: 1,
        config: &config,
        activity: &NO_SOCKETS,
    };
    let effects = room.closed(ctx, "s1", 1006, &None);
    assert_eq!(
        wire(&effects),
        [w(
            "s2",
            r#"{"type":"peer-left","room":"r","clientId":"c1","reason":"closed"}"#
        )]
    );
    assert_eq!(room.slots.len(), 1);
}

#[test]
fn resume_after_a_blip_keeps_the_id_rotates_the_token_and_sends_no_ready() {
    let mut room = pair();
    room.closed(quiet(1_000), "s2", 1006, &None);
    let effects = admitted(room.join(at(2_000, &live(&["s1"])), arrival(3, Some("t2"))));
    assert_eq!(
        wire(&effects),
        [
            w(
                "s3",
                r#"{"type":"joined","version":1,"room":"r","clientId":"c2","resumeToken":"t3","iceServers":[{"for":"c2"}],"iceServersExpireAt":3602000,"maxPeers":2,"maxMessageBytes":65536,"peers":["c1"],"resumed":true}"#
            ),
            w(
                "s1",
                r#"{"type":"peer-joined","room":"r","clientId":"c2","resumed":true}"#
            ),
        ]
    );
    assert_eq!(
        logs(&effects),
        [r#"{"event":"resume","room":"r","clientId":"c2"}"#]
    );
    assert_eq!(room.slots[1].conn, "s3");
    assert_eq!(room.slots[1].presence, Presence::Connected);
    // Once the new token is used, the old one is spent: an ordinary join, and the room is full.
    room.closed(quiet(2_500), "s3", 1006, &None);
    admitted(room.join(at(3_000, &live(&["s1"])), arrival(4, Some("t3"))));
    assert!(is_full(
        room.join(at(3_500, &live(&["s1", "s4"])), arrival(5, Some("t2")))
    ));
}

#[test]
fn a_resume_whose_welcome_was_lost_can_be_retried_with_the_same_token() {
    let mut room = pair();
    room.closed(quiet(1_000), "s2", 1006, &None);
    admitted(room.join(at(2_000, &live(&["s1"])), arrival(3, Some("t2"))));
    // The socket that carried t3 is gone before the client read it: it still has only t2.
    room.closed(quiet(2_100), "s3", 1006, &None);
    let effects = admitted(room.join(at(3_000, &live(&["s1"])), arrival(4, Some("t2"))));
    assert!(
        wire(&effects)[0]
            .1
            .contains(r#""clientId":"c2","resumeToken":"t4""#),
        "{effects:?}"
    );
    assert_eq!(ids(&room), ["c1", "c2"]);
    // t3 was never used and is gone; t2 works until t4 is used, then only t5 does.
    room.closed(quiet(3_100), "s4", 1006, &None);
    assert!(is_full(
        room.join(at(3_200, &live(&["s1"])), arrival(5, Some("t3")))
    ));
    admitted(room.join(at(3_300, &live(&["s1"])), arrival(6, Some("t4"))));
    room.closed(quiet(3_400), "s6", 1006, &None);
    assert!(is_full(
        room.join(at(3_500, &live(&["s1"])), arrival(7, Some("t2")))
    ));
    let effects = admitted(room.join(at(3_600, &live(&["s1"])), arrival(8, Some("t4"))));
    assert!(wire(&effects)[0]
        .1
        .contains(r#""clientId":"c2","resumeToken":"t8""#));
    // Neither token is stored, only their hashes.
    let stored = serde_json::to_string(&room).unwrap_or_default();
    assert!(
        !stored.contains("\"t4\"") && !stored.contains("\"t8\""),
        "{stored}"
    );
    assert!(stored.contains(&token::hash("t4")), "{stored}");
}

#[test]
fn resume_while_the_old_socket_is_open_replaces_it() {
    let mut room = pair();
    let effects = admitted(room.join(at(5, &live(&["s1", "s2"])), arrival(3, Some("t2"))));
    let wire = wire(&effects);
    assert_eq!(wire[0], w("s2", "close 4000 replaced"));
    assert_eq!(wire.len(), 3, "{wire:?}");
    assert_eq!(
        wire[2],
        w(
            "s1",
            r#"{"type":"peer-joined","room":"r","clientId":"c2","resumed":true}"#
        )
    );
    // The replaced socket's close event is ignored.
    assert!(room.closed(quiet(6), "s2", 4000, &None).is_empty());
    assert_eq!(room.slots[1].presence, Presence::Connected);
}

#[test]
fn an_unknown_token_is_an_ordinary_join() {
    let mut room = RoomState::new("r");
    admitted(room.join(at(0, &live(&[])), arrival(1, None)));
    let effects = admitted(room.join(at(0, &live(&["s1"])), arrival(2, Some("nope"))));
    assert!(wire(&effects)[0].1.contains(r#""clientId":"c2""#));
    assert!(wire(&effects)[0].1.contains(r#""resumed":false"#));
}

#[test]
fn a_fresh_join_beside_an_away_peer_waits_for_it_and_then_gets_ready() {
    // c1 drops before anyone else arrives.
    let mut room = RoomState::new("r");
    admitted(room.join(at(0, &live(&[])), arrival(1, None)));
    room.closed(quiet(10), "s1", 1006, &None);
    let effects = admitted(room.join(at(20, &live(&[])), arrival(2, None)));
    assert_eq!(
        wire(&effects),
        [w(
            "s2",
            r#"{"type":"joined","version":1,"room":"r","clientId":"c2","resumeToken":"t2","iceServers":[{"for":"c2"}],"iceServersExpireAt":3600000,"maxPeers":2,"maxMessageBytes":65536,"peers":["c1"],"resumed":false}"#
        )]
    );
    // c1 comes back: they were never ready together, so both get ready; c1 was there first.
    let effects = admitted(room.join(at(30, &live(&["s2"])), arrival(3, Some("t1"))));
    assert_eq!(
        wire(&effects)[1..],
        [
            w(
                "s2",
                r#"{"type":"peer-joined","room":"r","clientId":"c1","resumed":true}"#
            ),
            w("s3", READY_12),
            w("s2", READY_12),
        ]
    );
}

#[test]
fn a_resume_into_a_new_pair_gets_ready() {
    let mut room = pair();
    room.closed(quiet(1), "s1", 1006, &None);
    room.leave(quiet(0), "s2");
    admitted(room.join(at(2, &live(&[])), arrival(3, None)));
    let effects = admitted(room.join(at(3, &live(&["s3"])), arrival(4, Some("t1"))));
    let ready = r#"{"type":"ready","room":"r","initiator":"c1","peers":["c1","c3"]}"#;
    assert_eq!(wire(&effects)[2..], [w("s4", ready), w("s3", ready)]);
}

#[test]
fn a_stale_occupant_makes_room_for_a_newcomer() {
    let mut room = pair();
    let mut lv = live(&["s1", "s2"]);
    lv.insert("s1".into(), seen(1_000));
    let now = 1_000 + STALE + 1;
    lv.insert("s2".into(), seen(now - 1)); // connected or pinged just now
    let effects = admitted(room.join(at(now, &lv), arrival(3, None)));
    assert_eq!(
        wire(&effects),
        [
            w("s1", "close 4408 stale"),
            w(
                "s2",
                r#"{"type":"peer-left","room":"r","clientId":"c1","reason":"stale"}"#
            ),
            w(
                "s3",
                r#"{"type":"joined","version":1,"room":"r","clientId":"c3","resumeToken":"t3","iceServers":[{"for":"c3"}],"iceServersExpireAt":3661000,"maxPeers":2,"maxMessageBytes":65536,"peers":["c2"],"resumed":false}"#
            ),
            w(
                "s2",
                r#"{"type":"peer-joined","room":"r","clientId":"c3","resumed":false}"#
            ),
            w(
                "s2",
                r#"{"type":"ready","room":"r","initiator":"c2","peers":["c2","c3"]}"#
            ),
            w(
                "s3",
                r#"{"type":"ready","room":"r","initiator":"c2","peers":["c2","c3"]}"#
            ),
        ]
    );
    // The evicted socket's close event changes nothing.
    assert!(room.closed(quiet(now), "s1", 4408, &None).is_empty());
}

#[test]
fn pings_within_the_limit_are_not_stale() {
    let mut room = pair();
    let mut lv = live(&["s1", "s2"]);
    lv.insert("s1".into(), seen(1_000));
    lv.insert("s2".into(), seen(1_000));
    assert!(is_full(room.join(at(1_000 + STALE, &lv), arrival(3, None))));
}

#[test]
fn the_stalest_of_two_is_evicted() {
    let mut room = pair();
    let mut lv = Activity::new();
    lv.insert("s1".into(), seen(500));
    lv.insert("s2".into(), seen(100));
    let effects = admitted(room.join(at(500 + STALE + 1, &lv), arrival(3, None)));
    assert_eq!(wire(&effects)[0], w("s2", "close 4408 stale"));
    assert_eq!(ids(&room), ["c1", "c3"]);
}

#[test]
fn slots_whose_sockets_vanished_become_away_on_wake() {
    // After a restart no socket exists and no close event ever arrives.
    let mut room = pair();
    let stored: RoomState = serde_json::from_str(&serde_json::to_string(&room).unwrap()).unwrap();
    assert_eq!(stored, room);
    let effects = admitted(room.join(at(50_000, &live(&[])), arrival(3, Some("t1"))));
    assert_eq!(
        wire(&effects),
        [w(
            "s3",
            r#"{"type":"joined","version":1,"room":"r","clientId":"c1","resumeToken":"t3","iceServers":[{"for":"c1"}],"iceServersExpireAt":3650000,"maxPeers":2,"maxMessageBytes":65536,"peers":["c2"],"resumed":true}"#
        )]
    );
    assert_eq!(
        room.slots[1].presence,
        Presence::Away {
            deadline: 50_000 + GRACE
        }
    );
    let effects = room.alarm(at(50_000 + GRACE, &live(&["s3"])));
    assert_eq!(
        wire(&effects),
        [w(
            "s3",
            r#"{"type":"peer-left","room":"r","clientId":"c2","reason":"timeout"}"#
        )]
    );
}

#[test]
fn the_sweep_alarm_catches_sockets_lost_without_a_close() {
    let mut room = pair();
    let effects = room.alarm(at(7, &live(&["s1"])));
    assert_eq!(
        wire(&effects),
        [w(
            "s1",
            r#"{"type":"peer-away","room":"r","clientId":"c2"}"#
        )]
    );
    assert_eq!(room.next_alarm(7), Some(7 + GRACE));
}

#[test]
fn an_empty_room_needs_no_alarm() {
    let mut room = pair();
    room.leave(quiet(0), "s1");
    room.leave(quiet(0), "s2");
    assert!(room.is_empty());
    assert_eq!(room.next_alarm(0), None);
}

#[test]
fn token_comparison_needs_the_whole_hash() {
    assert!(constant_time_eq("abc", "abc"));
    assert!(!constant_time_eq("abc", "abd"));
    assert!(!constant_time_eq("abc", "ab"));
}

#[test]
fn the_answer_to_a_server_close_is_not_a_leave() {
    let mut room = pair();
    let effects = room.drop_conn(quiet(10), "s2", None);
    assert_eq!(
        wire(&effects),
        [w(
            "s1",
            r#"{"type":"peer-away","room":"r","clientId":"c2"}"#
        )]
    );
    // The client answers the 4429 close with 1000: the slot stays away for its owner.
    assert!(room.closed(quiet(11), "s2", 1000, &None).is_empty());
    assert_eq!(
        room.slots[1].presence,
        Presence::Away {
            deadline: 10 + GRACE
        }
    );
}

/// The storage effects of a list, as text.
fn stores(effects: &[Effect]) -> Vec<String> {
    effects
        .iter()
        .filter_map(|e| match e {
            Effect::Save {
                room,
                alarm_at: Some(at),
            } => Some(format!("save {} at {at}", room.slots.len())),
            Effect::Save {
                room,
                alarm_at: None,
            } => Some(format!("save {} (armed)", room.slots.len())),
            Effect::Clear => Some("clear".into()),
            Effect::Rearm { at } => Some(format!("rearm {at}")),
            _ => None,
        })
        .collect()
}

#[test]
fn storage_is_written_first_and_only_on_change() {
    let joining = on_join(None, "r", arrival(1, None), quiet(0));
    assert!(matches!(joining.effects[0], Effect::Save { .. }));
    assert_eq!(
        stores(&joining.effects),
        [format!("save 1 at {SWEEP_INTERVAL_MS}")]
    );
    let stored = Some(pair());
    // A sweep that finds every socket re-arms and writes nothing else.
    let effects = on_event(
        stored.clone(),
        RoomEvent::Alarm,
        at(5, &live(&["s1", "s2"])),
    );
    assert_eq!(
        stores(&effects),
        [format!("rearm {}", 5 + SWEEP_INTERVAL_MS)]
    );
    assert!(wire(&effects).is_empty());
    // A close of an unknown socket changes nothing and stores nothing.
    let effects = on_event(
        stored.clone(),
        RoomEvent::Closed {
            conn: "zz".into(),
            code: 1000,
            bucket: None,
        },
        quiet(5),
    );
    assert!(effects.is_empty());
    // A drop stores the away slot with its deadline as the alarm.
    let effects = on_event(
        stored.clone(),
        RoomEvent::Closed {
            conn: "s2".into(),
            code: 1006,
            bucket: None,
        },
        quiet(5),
    );
    assert_eq!(stores(&effects), [format!("save 2 at {}", 5 + GRACE)]);
    // The last leave clears the storage.
    let mut alone = pair();
    alone.leave(quiet(0), "s1");
    let effects = on_event(
        Some(alone),
        RoomEvent::Leave { conn: "s2".into() },
        quiet(6),
    );
    assert_eq!(stores(&effects), ["clear"]);
    assert!(matches!(effects[0], Effect::Clear));
    // Nothing stored: nothing holds a slot.
    assert!(on_event(None, RoomEvent::Alarm, quiet(7)).is_empty());
}

/// The stored room after `effects`' save.
fn saved(effects: &[Effect]) -> RoomState {
    match &effects[0] {
        Effect::Save { room, .. } => room.clone(),
        other => panic!("no save first: {other:?}"),
    }
}

#[test]
fn an_alarm_that_comes_no_later_is_not_set_again() {
    // The first join arms the sweep; the second join and a leave need it no earlier.
    let first = on_join(None, "r", arrival(1, None), quiet(0)).effects;
    assert_eq!(stores(&first), [format!("save 1 at {SWEEP_INTERVAL_MS}")]);
    let room = saved(&first);
    assert_eq!(room.alarm_at, Some(SWEEP_INTERVAL_MS));
    let second = on_join(Some(room), "r", arrival(2, None), at(10, &live(&["s1"]))).effects;
    assert_eq!(stores(&second), ["save 2 (armed)"]);
    let room = saved(&second);
    assert_eq!(room.alarm_at, Some(SWEEP_INTERVAL_MS));
    let left = on_event(
        Some(room.clone()),
        RoomEvent::Leave { conn: "s1".into() },
        at(20, &live(&["s1", "s2"])),
    );
    assert_eq!(stores(&left), ["save 1 (armed)"]);
    // A drop needs the alarm earlier, at its deadline.
    let dropped = on_event(
        Some(room.clone()),
        RoomEvent::Closed {
            conn: "s2".into(),
            code: 1006,
            bucket: None,
        },
        at(30, &live(&["s1", "s2"])),
    );
    assert_eq!(stores(&dropped), [format!("save 2 at {}", 30 + GRACE)]);
    assert_eq!(saved(&dropped).alarm_at, Some(30 + GRACE));
    // Once the armed time has passed, the alarm has fired (or is firing): a change arms it.
    let late = on_event(
        Some(room.clone()),
        RoomEvent::Leave { conn: "s1".into() },
        at(SWEEP_INTERVAL_MS, &live(&["s1", "s2"])),
    );
    assert_eq!(
        stores(&late),
        [format!("save 1 at {}", 2 * SWEEP_INTERVAL_MS)]
    );
    // The alarm that fired is gone: an unchanged room re-arms, a changed one saves and arms.
    let fired = on_event(
        Some(room.clone()),
        RoomEvent::Alarm,
        at(SWEEP_INTERVAL_MS - 1, &live(&["s1", "s2"])),
    );
    assert_eq!(
        stores(&fired),
        [format!("rearm {}", 2 * SWEEP_INTERVAL_MS - 1)]
    );
    let swept = on_event(
        Some(room),
        RoomEvent::Alarm,
        at(SWEEP_INTERVAL_MS - 1, &live(&["s2"])),
    );
    // (s1's socket is gone without a close: its slot goes away.)
    assert_eq!(
        stores(&swept),
        [format!("save 2 at {}", SWEEP_INTERVAL_MS - 1 + GRACE)]
    );
}

#[test]
fn silent_sockets_are_stale_from_their_connect_time() {
    // Two squatters that never sent anything hold the room; after STALE_AFTER_MS the one
    // that connected first makes room for a newcomer.
    let mut room = pair();
    let mut lv = Activity::new();
    lv.insert("s1".into(), seen(10));
    lv.insert("s2".into(), seen(20));
    assert!(is_full(room.join(at(10 + STALE, &lv), arrival(3, None))));
    let effects = admitted(room.join(at(20 + STALE, &lv), arrival(4, None)));
    assert_eq!(wire(&effects)[0], w("s1", "close 4408 stale"));
}

/// A bucket with `tokens` left of the burst at time 0.
fn spent(tokens: u32) -> RateLimiter {
    let mut bucket = RateLimiter::new(CONFIG.rate_limit_burst, 0);
    for _ in tokens..CONFIG.rate_limit_burst {
        bucket.admit(0, CONFIG.rate_limit_burst, CONFIG.rate_limit_per_sec);
    }
    bucket
}

fn bucket_of(accept: &Accept) -> RateLimiter {
    match accept {
        Accept::Hibernate(info) => info.bucket.clone().unwrap(),
        Accept::Refuse => panic!("refused"),
    }
}

#[test]
fn the_bucket_belongs_to_the_slot_across_resumes() {
    let mut room = pair();
    // s2 spent all but 3 tokens and was closed 4429: the away slot keeps the bucket, less
    // the two frames its drop costs (`peer-away` now, `peer-joined` when it returns).
    room.drop_conn(quiet(0), "s2", Some(spent(3)));
    assert_eq!(room.slots[1].bucket, Some(spent(1)));
    // The resume starts from it, its `peer-joined` paid for.
    let (accept, _) = room.join(at(0, &live(&["s1"])), arrival(3, Some("t2")));
    assert_eq!(bucket_of(&accept), spent(1));
    // A resume while the old socket is open takes its live bucket.
    let mut lv = live(&["s1", "s3"]);
    lv.insert(
        "s3".into(),
        Live {
            last_seen: 0,
            confirmed: true,
            bucket: spent(1),
        },
    );
    // A resume that returns from no told drop pays for its `peer-joined`.
    let (accept, _) = room.join(at(0, &lv), arrival(4, Some("t3")));
    assert_eq!(bucket_of(&accept), spent(0));
    // A fresh join starts full.
    let mut other = RoomState::new("r");
    let (accept, _) = other.join(quiet(0), arrival(5, None));
    assert_eq!(bucket_of(&accept), spent(CONFIG.rate_limit_burst));
}

fn who(sub: &str) -> crate::ticket::Identity {
    crate::ticket::Identity {
        sub: sub.into(),
        name: Some(format!("{sub}!")),
        meta: None,
    }
}

fn ticketed(n: u32, sub: &str, resume: Option<&str>) -> Arrival {
    Arrival {
        identity: Some(who(sub)),
        ..arrival(n, resume)
    }
}

#[test]
fn with_tickets_frames_say_who_is_who() {
    let mut room = RoomState::new("r");
    let effects = admitted(room.join(quiet(0), ticketed(1, "ann", None)));
    assert!(wire(&effects)[0]
        .1
        .ends_with(r#""peers":[],"identity":{"sub":"ann","name":"ann!"},"peerIdentities":{}}"#));
    let effects = admitted(room.join(at(0, &live(&["s1"])), ticketed(2, "ben", None)));
    let wire = wire(&effects);
    assert!(wire[0].1.ends_with(r#""resumed":false,"identity":{"sub":"ben","name":"ben!"},"peerIdentities":{"c1":{"sub":"ann","name":"ann!"}}}"#), "{}", wire[0].1);
    assert_eq!(
        wire[1],
        w(
            "s1",
            r#"{"type":"peer-joined","room":"r","clientId":"c2","resumed":false,"identity":{"sub":"ben","name":"ben!"}}"#
        )
    );
}

#[test]
fn a_second_socket_of_the_same_identity_takes_its_slot_back() {
    let mut room = RoomState::new("r");
    admitted(room.join(quiet(0), ticketed(1, "ann", None)));
    admitted(room.join(at(0, &live(&["s1"])), ticketed(2, "ben", None)));
    // Ann opens a second tab, without a resume token: it takes her slot, not a third one.
    let effects = admitted(room.join(at(1, &live(&["s1", "s2"])), ticketed(3, "ann", None)));
    let wire = wire(&effects);
    assert_eq!(wire[0], w("s1", "close 4000 replaced"));
    assert!(wire[1].1.contains(r#""clientId":"c1""#) && wire[1].1.contains(r#""resumed":true"#));
    assert_eq!(
        wire[2],
        w(
            "s2",
            r#"{"type":"peer-joined","room":"r","clientId":"c1","resumed":true,"identity":{"sub":"ann","name":"ann!"}}"#
        )
    );
    assert_eq!(ids(&room), ["c1", "c2"]);
}

#[test]
fn a_resume_token_opens_only_a_slot_of_the_same_identity() {
    let mut room = RoomState::new("r");
    admitted(room.join(quiet(0), ticketed(1, "ann", None)));
    room.closed(quiet(1), "s1", 1006, &None);
    // Mallory has Ann's token but her own ticket: the token is ignored, she gets a new slot.
    let effects = admitted(room.join(at(2, &live(&[])), ticketed(2, "mal", Some("t1"))));
    assert!(wire(&effects)[0].1.contains(r#""clientId":"c2""#));
    assert!(wire(&effects)[0].1.contains(r#""resumed":false"#));
    assert_eq!(
        room.slots[0].presence,
        Presence::Away {
            deadline: 1 + GRACE
        }
    );
    // Ann resumes with her token and her ticket.
    let effects = admitted(room.join(at(3, &live(&["s2"])), ticketed(3, "ann", Some("t1"))));
    assert!(wire(&effects)[0].1.contains(r#""clientId":"c1""#));
}

mod admin;
mod budget;
mod hooks;
