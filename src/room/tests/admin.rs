//! The operator's verbs: what `GET` shows, what `end` and `kick` send and store, bans at the
//! door and their end.

use super::*;
use crate::admin::{AdminVerb, Kick, KickTarget};
use crate::ticket::Identity;

/// An arrival with a ticket identity `sub`.
fn ticketed(n: u32, sub: &str, resume: Option<&str>) -> Arrival {
    Arrival {
        identity: Some(Identity {
            sub: sub.into(),
            name: None,
            meta: None,
        }),
        ..arrival(n, resume)
    }
}

/// Ann (c1, s1) and Ben (c2, s2) connected at 10 and told ready, as stored.
fn ticketed_pair() -> RoomState {
    let mut room = RoomState::new("r");
    admitted(room.join(at(10, &live(&[])), ticketed(1, "ann", None)));
    admitted(room.join(at(10, &live(&["s1"])), ticketed(2, "ben", None)));
    room
}

fn kick(target: KickTarget, ban_seconds: u32) -> AdminVerb {
    AdminVerb::Kick(Kick {
        target,
        reason: "spam".into(),
        ban_seconds,
    })
}

fn view(reply: &AdminReply) -> String {
    match reply {
        AdminReply::Room(_) => reply.body(),
        other => panic!("not a view: {other:?}"),
    }
}

#[test]
fn a_look_at_a_room_never_used_stores_nothing() {
    let (reply, effects) = on_admin(None, "r", &AdminVerb::Inspect, quiet(5));
    assert_eq!(
        view(&reply),
        r#"{"room":"r","startedAt":null,"callStartedAt":null,"peers":[],"bans":[],"webhooksWaiting":0}"#
    );
    assert!(effects.is_empty());
    let end = on_admin(None, "r", &AdminVerb::End { reason: "".into() }, quiet(5));
    assert_eq!((end.0.body(), end.1.len()), (r#"{"ended":0}"#.into(), 0));
    let nobody = on_admin(
        None,
        "r",
        &kick(KickTarget::Sub("ann".into()), 60),
        quiet(5),
    );
    assert_eq!(nobody.0, AdminReply::Refused(HttpError::NoSuchPeer));
    assert!(nobody.1.is_empty());
}

#[test]
fn a_look_shows_the_peers_and_changes_nothing() {
    let room = ticketed_pair();
    let (reply, effects) = on_admin(Some(room), "r", &AdminVerb::Inspect, quiet(20));
    assert_eq!(
        view(&reply),
        r#"{"room":"r","startedAt":10,"callStartedAt":10,"peers":[{"clientId":"c1","state":"connected","since":10,"identity":{"sub":"ann"}},{"clientId":"c2","state":"connected","since":10,"identity":{"sub":"ben"}}],"bans":[],"webhooksWaiting":0}"#
    );
    assert!(effects.is_empty());
}

#[test]
fn end_tells_and_closes_every_socket_and_empties_the_room() {
    let room = ticketed_pair();
    let verb = AdminVerb::End {
        reason: "time is up".into(),
    };
    let (reply, effects) = on_admin(Some(room), "r", &verb, at(30, &live(&["s1", "s2"])));
    assert_eq!(reply, AdminReply::Ended(2));
    assert!(matches!(effects[0], Effect::Clear), "{effects:?}");
    let ended = r#"{"type":"ended","room":"r","reason":"time is up"}"#;
    assert_eq!(
        wire(&effects),
        [
            w("s1", ended),
            w("s1", "close 4410 ended"),
            w("s2", ended),
            w("s2", "close 4410 ended"),
        ]
    );
    assert_eq!(
        logs(&effects),
        [
            r#"{"event":"leave","room":"r","clientId":"c1","reason":"ended"}"#,
            r#"{"event":"leave","room":"r","clientId":"c2","reason":"ended"}"#,
        ]
    );
}

#[test]
fn kick_by_client_id_releases_the_slot_at_once_without_a_ban() {
    let room = ticketed_pair();
    let verb = kick(KickTarget::ClientId("c1".into()), 0);
    let (reply, effects) = on_admin(Some(room), "r", &verb, at(30, &live(&["s1", "s2"])));
    assert_eq!(reply, AdminReply::Kicked);
    assert_eq!(
        wire(&effects),
        [
            w("s1", r#"{"type":"kicked","room":"r","reason":"spam"}"#),
            w("s1", "close 4403 kicked"),
            w(
                "s2",
                r#"{"type":"peer-left","room":"r","clientId":"c1","reason":"kicked"}"#
            ),
        ]
    );
    let stored = saved(&effects);
    assert_eq!(ids(&stored), ["c2"]);
    assert!(stored.bans.is_empty());
}

#[test]
fn a_ban_refuses_fresh_tickets_and_resumes_until_it_ends() {
    let room = ticketed_pair();
    let verb = kick(KickTarget::Sub("ann".into()), 60);
    let (_, effects) = on_admin(Some(room), "r", &verb, at(1_000, &live(&["s1", "s2"])));
    let mut room = saved(&effects);
    assert_eq!(
        room.bans,
        [crate::room_state::Ban {
            sub: "ann".into(),
            until: 61_000
        }]
    );
    // The room's alarm comes no later than the ban's end.
    assert!(room.next_alarm(1_000).is_some_and(|at| at <= 61_000));
    let banned =
        r#"{"type":"error","code":"banned","message":"you are banned from this room for now"}"#;
    for (n, resume) in [(3, None), (4, Some("t1"))] {
        let joining = room.join(at(2_000, &live(&["s2"])), ticketed(n, "ann", resume));
        assert!(is_full(joining.clone()), "{joining:?}");
        let conn = format!("s{n}");
        assert_eq!(
            wire(&joining.1),
            [w(&conn, banned), w(&conn, "close 4403 banned")]
        );
    }
    // Others are not banned.
    admitted(room.join(at(2_000, &live(&["s2"])), ticketed(5, "cat", None)));
    // At its end the ban is forgotten, and Ann may join again.
    let mut room = ticketed_pair();
    room.bans.push(crate::room_state::Ban {
        sub: "zed".into(),
        until: 61_000,
    });
    let fired = on_event(
        Some(room),
        RoomEvent::Alarm,
        at(61_000, &live(&["s1", "s2"])),
    );
    assert!(saved(&fired).bans.is_empty());
}

#[test]
fn a_room_with_only_a_ban_stays_stored_until_the_ban_ends() {
    let mut room = ticketed_pair();
    let verb = kick(KickTarget::Sub("ann".into()), 60);
    let (_, effects) = on_admin(
        Some(room.clone()),
        "r",
        &verb,
        at(1_000, &live(&["s1", "s2"])),
    );
    room = saved(&effects);
    let left = on_event(
        Some(room),
        RoomEvent::Leave { conn: "s2".into() },
        at(2_000, &live(&["s2"])),
    );
    let room = saved(&left);
    assert!(room.slots.is_empty());
    assert_eq!((room.started_at, room.call_started_at), (None, None));
    let ended = on_event(Some(room), RoomEvent::Alarm, quiet(61_000));
    assert!(matches!(ended[0], Effect::Clear), "{ended:?}");
}

#[test]
fn a_kick_never_shortens_a_ban_and_an_unknown_peer_changes_nothing() {
    let mut room = ticketed_pair();
    room.bans.push(crate::room_state::Ban {
        sub: "ann".into(),
        until: 900_000,
    });
    let verb = kick(KickTarget::ClientId("c1".into()), 1);
    let (_, effects) = on_admin(Some(room.clone()), "r", &verb, quiet(1_000));
    assert_eq!(saved(&effects).bans[0].until, 900_000);
    for target in [
        KickTarget::ClientId("c9".into()),
        KickTarget::Sub("nobody".into()),
    ] {
        let (reply, effects) = on_admin(Some(room.clone()), "r", &kick(target, 60), quiet(1_000));
        assert_eq!(reply, AdminReply::Refused(HttpError::NoSuchPeer));
        assert_eq!(reply.status(), 404);
        assert!(effects.is_empty());
    }
}
