//! One client's budget across leaves, rejoins, drops and resumes (`room::budget`), and the
//! slot of a socket that never sent anything.

use super::*;

/// An arrival from client address `ip`, ids derived from `n` as in [`arrival`].
fn from(n: u32, ip: &str, resume: Option<&str>) -> Arrival {
    Arrival {
        address: Some(ip.into()),
        ..arrival(n, resume)
    }
}

/// `ip`'s socket `s{n}` sends `count` messages at time `now`, spending its live bucket.
fn send(activity: &mut Activity, conn: &str, count: u32, now: u64) {
    let live = activity.get_mut(conn).unwrap();
    for _ in 0..count {
        live.bucket
            .admit(now, CONFIG.rate_limit_burst, CONFIG.rate_limit_per_sec);
    }
}

fn tokens(bucket: &RateLimiter) -> f64 {
    serde_json::to_value(bucket).unwrap()["tokens"]
        .as_f64()
        .unwrap()
}

#[test]
fn leaving_and_rejoining_starts_from_the_bucket_the_client_left_with() {
    let mut room = RoomState::new("r");
    admitted(room.join(quiet(0), from(1, "198.51.100.7", None)));
    admitted(room.join(at(0, &live(&["s1"])), from(2, "203.0.113.9", None)));
    // c2 spends its whole bucket on messages, then leaves.
    let mut activity = live(&["s1", "s2"]);
    send(&mut activity, "s2", CONFIG.rate_limit_burst, 0);
    let left = room.leave(at(0, &activity), "s2");
    assert_eq!(
        wire(&left)[0].1,
        r#"{"type":"peer-left","room":"r","clientId":"c2","reason":"leave"}"#
    );
    // Kept under a keyed hash of the address, never the address.
    assert_eq!(room.kept.len(), 1);
    let stored = serde_json::to_string(&room).unwrap();
    assert!(!stored.contains("203.0.113.9"), "{stored}");
    // The same address is refused while the bucket cannot pay for its join...
    let again = room.join(at(0, &live(&["s1"])), from(3, "203.0.113.9", None));
    assert_eq!(
        wire(&again.1),
        [
            w(
                "s3",
                r#"{"type":"error","code":"rate-limited","message":"too many frames; slow down"}"#
            ),
            w("s3", "close 4429 rate limited"),
        ]
    );
    assert_eq!(again.0, Accept::Refuse);
    assert_eq!(ids(&room), ["c1"]);
    // ...another address is not...
    let other = room.join(at(0, &live(&["s1"])), from(4, "192.0.2.1", None));
    assert_eq!(bucket_of(&other.0), {
        let mut b = RateLimiter::new(CONFIG.rate_limit_burst, 0);
        b.spend(
            crate::room::budget::JOIN_COST,
            0,
            CONFIG.rate_limit_burst,
            CONFIG.rate_limit_per_sec,
        );
        b
    });
}

#[test]
fn a_rejoin_after_the_refill_pays_from_the_refilled_bucket() {
    let mut room = RoomState::new("r");
    admitted(room.join(quiet(0), from(1, "a", None)));
    admitted(room.join(at(0, &live(&["s1"])), from(2, "b", None)));
    let mut activity = live(&["s1", "s2"]);
    send(&mut activity, "s2", CONFIG.rate_limit_burst, 0);
    room.leave(at(0, &activity), "s2");
    // The peer-left put it one token in debt: three tokens' time later it has two, which pay
    // for the join's peer-joined and ready, and nothing is left for messages.
    let per_token = (1000.0 / CONFIG.rate_limit_per_sec) as u64;
    let joined = room.join(at(3 * per_token, &live(&["s1"])), from(3, "b", None));
    assert_eq!(tokens(&bucket_of(&joined.0)), 0.0);
    assert!(
        room.kept.is_empty(),
        "the bucket left the kept ones with the join"
    );
}

#[test]
fn with_tickets_the_identity_keeps_its_bucket_from_any_address() {
    let mut room = RoomState::new("r");
    admitted(room.join(quiet(0), ticketed(1, "ann", None)));
    admitted(room.join(at(0, &live(&["s1"])), ticketed(2, "eve", None)));
    let mut activity = live(&["s1", "s2"]);
    send(&mut activity, "s2", CONFIG.rate_limit_burst, 0);
    room.leave(at(0, &activity), "s2");
    let moved = Arrival {
        address: Some("elsewhere".into()),
        ..ticketed(3, "eve", None)
    };
    assert_eq!(room.join(at(0, &live(&["s1"])), moved).0, Accept::Refuse);
    // A different identity from eve's address is someone else.
    let bob = Arrival {
        address: Some("elsewhere".into()),
        ..ticketed(4, "bob", None)
    };
    assert!(matches!(
        room.join(at(0, &live(&["s1"])), bob).0,
        Accept::Hibernate(_)
    ));
}

#[test]
fn kept_buckets_go_once_full_and_when_the_room_empties() {
    let mut room = RoomState::new("r");
    admitted(room.join(quiet(0), from(1, "a", None)));
    admitted(room.join(at(0, &live(&["s1"])), from(2, "b", None)));
    room.leave(at(0, &live(&["s1", "s2"])), "s2");
    assert_eq!(room.kept.len(), 1);
    // Once refilled it is dropped at the next release...
    admitted(room.join(at(0, &live(&["s1"])), from(3, "c", None)));
    room.leave(at(60_000, &live(&["s1", "s3"])), "s3");
    assert_eq!(room.kept.len(), 1, "only c's is kept: {:?}", room.kept);
    // ...and an emptied room keeps none.
    room.leave(at(60_000, &live(&["s1"])), "s1");
    assert!(room.is_empty() && room.kept.is_empty());
}

#[test]
fn a_full_bucket_joins_even_when_the_burst_is_below_the_cost() {
    let config = Config {
        rate_limit_burst: 1,
        ..test_config()
    };
    let mut room = RoomState::new("r");
    let ctx = |now| Ctx {
        now,
        config: &config,
        activity: &NO_SOCKETS,
    };
    admitted(room.join(ctx(0), from(1, "a", None)));
    let lv = live(&["s1"]);
    let ctx1 = Ctx {
        now: 0,
        config: &config,
        activity: &lv,
    };
    assert!(matches!(
        room.join(ctx1, from(2, "b", None)).0,
        Accept::Hibernate(_)
    ));
}

#[test]
fn a_drop_the_budget_cannot_pay_for_goes_untold_and_so_does_its_return() {
    let mut room = pair();
    // c2 was closed 4429 with an empty bucket: its peer hears nothing of the drop.
    let away = room.drop_conn(at(0, &live(&["s1"])), "s2", Some(spent(0)));
    assert_eq!(
        logs(&away),
        [r#"{"event":"away","room":"r","clientId":"c2"}"#]
    );
    assert!(wire(&away).is_empty(), "{:?}", wire(&away));
    assert!(room.slots[1].untold);
    // Its resume on a still empty bucket is welcomed, but the peer is not told of it.
    let back = admitted(room.join(at(0, &live(&["s1"])), arrival(3, Some("t2"))));
    let to_peer: Vec<_> = wire(&back).into_iter().filter(|(c, _)| c == "s1").collect();
    assert!(to_peer.is_empty(), "{to_peer:?}");
    assert!(!room.slots[1].untold);
}

#[test]
fn a_drop_the_budget_pays_for_is_told_and_its_return_is_free() {
    let mut room = pair();
    let away = room.drop_conn(at(0, &live(&["s1"])), "s2", Some(spent(2)));
    assert_eq!(
        wire(&away),
        [w(
            "s1",
            r#"{"type":"peer-away","room":"r","clientId":"c2"}"#
        )]
    );
    let (accept, effects) = room.join(at(0, &live(&["s1"])), arrival(3, Some("t2")));
    assert_eq!(
        wire(&effects)[1],
        w(
            "s1",
            r#"{"type":"peer-joined","room":"r","clientId":"c2","resumed":true}"#
        )
    );
    assert_eq!(bucket_of(&accept), spent(0));
}

#[test]
fn resumes_on_a_spent_bucket_are_not_announced() {
    let mut room = pair();
    let mut lv = live(&["s1", "s2"]);
    lv.get_mut("s2").unwrap().bucket = spent(0);
    let effects = admitted(room.join(at(0, &lv), arrival(3, Some("t2"))));
    let to_peer: Vec<_> = wire(&effects)
        .into_iter()
        .filter(|(c, _)| c == "s1")
        .collect();
    assert!(to_peer.is_empty(), "{to_peer:?}");
}

#[test]
fn a_socket_that_never_sent_anything_yields_after_unconfirmed_after_ms() {
    let mut room = pair();
    let mut lv = Activity::new();
    for conn in ["s1", "s2"] {
        lv.insert(
            conn.into(),
            Live {
                confirmed: false,
                ..seen(0)
            },
        );
    }
    let limit = CONFIG.unconfirmed_after_ms;
    assert!(is_full(room.join(at(limit, &lv), arrival(3, None))));
    let effects = admitted(room.join(at(limit + 1, &lv), arrival(4, None)));
    assert_eq!(wire(&effects)[0], w("s1", "close 4408 stale"));
    // A confirmed socket as silent keeps its slot until STALE_AFTER_MS.
    let mut room = pair();
    lv.get_mut("s1").unwrap().confirmed = true;
    lv.get_mut("s2").unwrap().confirmed = true;
    assert!(is_full(room.join(at(limit + 1, &lv), arrival(5, None))));
}
