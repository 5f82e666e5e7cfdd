//! Webhook events as the room's transitions enqueue them, the call's duration, and what
//! deliveries do to the outbox; driven through `on_join` / `on_event` as the object does.

use super::*;
use crate::webhook::{
    Outcome, Pending, WebhookSettings, GIVE_UP_AFTER_MS, MAX_OUTBOX, MAX_OUTBOX_BYTES,
};
use serde_json::{json, Value};

static HOOKED: LazyLock<Config> = LazyLock::new(|| Config {
    webhook: Some(WebhookSettings {
        url: "https://hooks.example/duet".into(),
        secret: "whsec".into(),
    }),
    ..test_config()
});

/// The room as the object stores it, with the effects of its last step.
struct Stored {
    room: Option<RoomState>,
    last: Vec<Effect>,
    config: &'static Config,
}

impl Stored {
    fn new(config: &'static Config) -> Self {
        Stored {
            room: None,
            last: Vec::new(),
            config,
        }
    }

    fn ctx<'a>(&'a self, now: u64, activity: &'a Activity) -> Ctx<'a> {
        Ctx {
            now,
            config: self.config,
            activity,
        }
    }

    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in &effects {
            match effect {
                Effect::Save { room, .. } => self.room = Some(room.clone()),
                Effect::Clear => self.room = None,
                _ => {}
            }
        }
        self.last = effects;
    }

    fn join(&mut self, now: u64, open: &[&str], arrival: Arrival) {
        let activity = live(open);
        let joining = on_join(self.room.clone(), "r", arrival, self.ctx(now, &activity));
        self.apply(joining.effects);
    }

    fn event(&mut self, now: u64, open: &[&str], event: RoomEvent) {
        let activity = live(open);
        let effects = on_event(self.room.clone(), event, self.ctx(now, &activity));
        self.apply(effects);
    }

    fn outbox(&self) -> Vec<Value> {
        let outbox = self
            .room
            .as_ref()
            .map(|r| r.outbox.clone())
            .unwrap_or_default();
        outbox
            .iter()
            .map(|p| serde_json::from_str(&p.body).unwrap())
            .collect()
    }

    /// Delivers the whole outbox, in order, as the alarm does.
    fn drain(&mut self, now: u64, open: &[&str]) -> Vec<Value> {
        let mut sent = Vec::new();
        while let Some(head) = self.room.as_ref().and_then(|r| r.outbox.first().cloned()) {
            sent.push(serde_json::from_str(&head.body).unwrap());
            self.event(now, open, delivery(&head.id, Outcome::Delivered));
        }
        sent
    }
}

fn delivery(id: &str, outcome: Outcome) -> RoomEvent {
    RoomEvent::Delivery {
        id: id.into(),
        outcome,
    }
}

fn closed(conn: &str, code: u16) -> RoomEvent {
    RoomEvent::Closed {
        conn: conn.into(),
        code,
        bucket: None,
    }
}

#[test]
fn a_call_produces_each_event_once_in_order() {
    let mut s = Stored::new(&HOOKED);
    s.join(0, &[], arrival(1, None));
    s.join(5, &["s1"], arrival(2, None));
    assert_eq!(
        s.drain(6, &["s1", "s2"]),
        [
            json!({"id": "c1-1", "type": "room.started", "room": "r", "at": 0}),
            json!({"id": "c1-2", "type": "peer.joined", "room": "r", "at": 0,
                   "clientId": "c1", "resumed": false}),
            json!({"id": "c1-3", "type": "peer.joined", "room": "r", "at": 5,
                   "clientId": "c2", "resumed": false}),
            json!({"id": "c1-4", "type": "call.ready", "room": "r", "at": 5,
                   "peers": ["c1", "c2"], "initiator": "c1"}),
        ]
    );
    // A drop and a resume within the grace are the same call: no event.
    s.event(1_000, &["s1"], closed("s2", 1006));
    s.join(2_000, &["s1"], arrival(3, Some("t2")));
    assert_eq!(s.outbox(), Vec::<Value>::new());
    s.event(5_000, &["s1", "s3"], RoomEvent::Leave { conn: "s1".into() });
    s.event(6_000, &["s3"], closed("s3", 1000));
    // The room is empty but stays stored until its outbox is delivered, its alarm set for
    // the oldest event.
    let stored = s.room.clone().expect("kept for its outbox");
    assert!(stored.slots.is_empty() && stored.session.is_none());
    assert!(matches!(
        s.last[0],
        Effect::Save {
            alarm_at: Some(5_000),
            ..
        }
    ));
    assert_eq!(
        s.drain(6_001, &[]),
        [
            json!({"id": "c1-5", "type": "peer.left", "room": "r", "at": 5_000,
                   "clientId": "c1", "reason": "leave"}),
            json!({"id": "c1-6", "type": "peer.left", "room": "r", "at": 6_000,
                   "clientId": "c2", "reason": "leave"}),
            // Two connected from 5 to 1,000 and from 2,000 to 5,000.
            json!({"id": "c1-7", "type": "room.ended", "room": "r", "at": 6_000,
                   "startedAt": 0, "endedAt": 6_000, "callMs": 3_995}),
        ]
    );
    assert!(s.room.is_none(), "nothing stored once drained");
    assert!(matches!(s.last[0], Effect::Clear));
}

#[test]
fn leave_reasons_and_identities_are_reported() {
    let mut s = Stored::new(&HOOKED);
    s.join(0, &[], ticketed(1, "ann", None));
    s.join(0, &["s1"], ticketed(2, "ben", None));
    let joined = &s.outbox()[2];
    assert_eq!(joined["identity"], json!({"sub": "ben", "name": "ben!"}));
    s.drain(0, &["s1", "s2"]);
    // Both go silent and a newcomer evicts Ann; then Ben drops and never comes back.
    s.join(STALE + 1, &["s1", "s2"], ticketed(3, "cy", None));
    s.event(STALE + 2, &["s3"], closed("s2", 1006));
    s.event(STALE + 2 + GRACE, &["s3"], RoomEvent::Alarm);
    let reasons: Vec<Value> = s
        .drain(STALE + 3 + GRACE, &["s3"])
        .iter()
        .map(|e| json!([e["type"], e["clientId"], e["reason"]]))
        .collect();
    assert_eq!(
        reasons,
        [
            json!(["peer.left", "c1", "stale"]),
            json!(["peer.joined", "c3", null]),
            json!(["call.ready", null, null]),
            json!(["peer.left", "c2", "timeout"]),
        ]
    );
}

#[test]
fn events_never_carry_tokens() {
    let mut s = Stored::new(&HOOKED);
    s.join(0, &[], arrival(1, None));
    s.join(0, &["s1"], arrival(2, None));
    let bodies = serde_json::to_string(&s.outbox()).unwrap();
    for secret in [
        "\"t1\"",
        "\"t2\"",
        &token::hash("t1"),
        "resumeToken",
        "iceServers",
    ] {
        assert!(!bodies.contains(secret), "{secret} in {bodies}");
    }
}

#[test]
fn failures_back_off_keep_order_and_give_up_after_a_day() {
    let mut s = Stored::new(&HOOKED);
    s.join(100, &[], arrival(1, None));
    let head = |s: &Stored| s.room.as_ref().unwrap().outbox[0].clone();
    assert_eq!((head(&s).id.as_str(), head(&s).next_at), ("c1-1", 100));
    s.event(200, &["s1"], delivery("c1-1", Outcome::Status(500)));
    assert_eq!((head(&s).attempts, head(&s).next_at), (1, 1_200));
    assert!(matches!(
        s.last[0],
        Effect::Save {
            alarm_at: Some(1_200),
            ..
        }
    ));
    assert_eq!(
        logs(&s.last),
        [r#"{"event":"webhook-failed","room":"r","reason":"status"}"#]
    );
    s.event(1_200, &["s1"], delivery("c1-1", Outcome::Timeout));
    assert_eq!((head(&s).attempts, head(&s).next_at), (2, 3_200));
    // An outcome for an event that is not the head changes nothing.
    s.event(1_300, &["s1"], delivery("c1-2", Outcome::Delivered));
    assert_eq!(head(&s).id, "c1-1");
    assert_eq!(s.last.len(), 0, "no write for a stale outcome");
    s.event(3_200, &["s1"], delivery("c1-1", Outcome::Delivered));
    assert_eq!(head(&s).id, "c1-2");
    // Failing for 24 hours: dropped at the next failure, and the next event goes out.
    s.event(
        100 + GIVE_UP_AFTER_MS - 1,
        &["s1"],
        delivery("c1-2", Outcome::Network),
    );
    assert_eq!(head(&s).id, "c1-2");
    s.event(
        100 + GIVE_UP_AFTER_MS,
        &["s1"],
        delivery("c1-2", Outcome::Network),
    );
    assert_eq!(
        logs(&s.last),
        [r#"{"event":"webhook-dropped","room":"r","reason":"expired"}"#]
    );
    assert!(s.room.as_ref().unwrap().outbox.is_empty());
}

/// An arrival from client address `ip`.
fn from(n: u32, ip: &str) -> Arrival {
    Arrival {
        address: Some(ip.into()),
        ..arrival(n, None)
    }
}

/// A victim (c1, from one address) waits while a churner (from another) joins and leaves
/// beside it, a second apart, until the outbox is full.
fn churned_beside_a_victim(s: &mut Stored, churner: impl Fn(u32) -> Arrival) -> u32 {
    s.join(0, &[], from(1, "victim"));
    let mut n = 2;
    while s.room.as_ref().unwrap().outbox.len() < MAX_OUTBOX {
        let now = u64::from(n) * 1_000;
        s.join(now, &["s1"], churner(n));
        s.event(
            now,
            &["s1"],
            RoomEvent::Leave {
                conn: format!("s{n}"),
            },
        );
        n += 1;
    }
    n
}

#[test]
fn an_overflow_drops_the_churners_oldest_events_never_the_victims() {
    let mut s = Stored::new(&HOOKED);
    let n = churned_beside_a_victim(&mut s, |n| from(n, "churner"));
    let len_before = s.room.as_ref().unwrap().outbox.len();
    // Another cycle: its peer.joined, call.ready and peer.left push the churner's oldest out.
    let now = u64::from(n) * 1_000;
    s.join(now, &["s1"], from(n, "churner"));
    s.event(
        now,
        &["s1"],
        RoomEvent::Leave {
            conn: format!("s{n}"),
        },
    );
    let dropped = len_before + 3 - MAX_OUTBOX;
    let full = r#"{"event":"webhook-dropped","room":"r","reason":"outbox-full"}"#;
    let logged = logs(&s.last);
    assert_eq!(logged.iter().filter(|l| *l == full).count(), 1);
    let ids = outbox_ids(&s);
    assert_eq!(ids.len(), MAX_OUTBOX);
    // The victim's room.started and peer.joined stay; the churner's first cycle went.
    assert_eq!(ids[..2], ["c1-1", "c1-2"]);
    assert_eq!(
        ids[2],
        format!("c1-{}", 3 + dropped),
        "the churner's oldest went first"
    );
    let last_seq = 2 + 3 * (n - 1);
    assert_eq!(ids[MAX_OUTBOX - 1], format!("c1-{last_seq}"));
}

#[test]
fn the_outbox_stays_within_its_bytes_with_identities_at_the_ticket_limits() {
    use crate::ticket::{Identity, MAX_META_BYTES, MAX_NAME_CHARS, MAX_SUB_CHARS};
    let big = |n: u32| Identity {
        sub: format!("{n:0>width$}", width = MAX_SUB_CHARS),
        name: Some("\u{1F600}".repeat(MAX_NAME_CHARS)),
        meta: serde_json::from_str(&format!(
            r#"{{"m":"{}"}}"#,
            "\"".repeat((MAX_META_BYTES - 10) / 2)
        ))
        .ok(),
    };
    let mut s = Stored::new(&HOOKED);
    s.join(0, &[], ticketed(1, "victim", None));
    for n in 2..80 {
        let now = u64::from(n) * 1_000;
        let arrival = Arrival {
            identity: Some(big(n)),
            ..arrival(n, None)
        };
        s.join(now, &["s1"], arrival);
        s.event(
            now,
            &["s1"],
            RoomEvent::Leave {
                conn: format!("s{n}"),
            },
        );
        let room = s.room.as_ref().unwrap();
        let bytes: usize = room.outbox.iter().map(Pending::stored_len).sum();
        assert!(bytes <= MAX_OUTBOX_BYTES, "{bytes} bytes after cycle {n}");
        let stored = serde_json::to_string(&room.outbox).unwrap().len();
        assert!(
            stored <= MAX_OUTBOX_BYTES,
            "{stored} bytes stored after cycle {n}"
        );
        assert_eq!(
            outbox_ids(&s)[..2],
            ["c1-1", "c1-2"],
            "the victim's events stay"
        );
    }
}

fn outbox_ids(s: &Stored) -> Vec<String> {
    let room = s.room.as_ref().unwrap();
    room.outbox.iter().map(|p| p.id.clone()).collect()
}

#[test]
fn without_a_url_nothing_is_enqueued_and_leftovers_are_dropped() {
    let mut s = Stored::new(&CONFIG);
    s.join(0, &[], arrival(1, None));
    let room = s.room.clone().unwrap();
    assert!(room.outbox.is_empty() && room.session.is_none());
    // A room stored while webhooks were on, read after they were turned off.
    let mut hooked = Stored::new(&HOOKED);
    hooked.join(0, &[], arrival(1, None));
    s.room = hooked.room.clone();
    s.event(1, &[], closed("s1", 1000));
    assert!(s.room.is_none(), "nothing stored: {:?}", s.room);
    assert!(logs(&s.last)
        .contains(&r#"{"event":"webhook-dropped","room":"r","reason":"disabled"}"#.to_owned()));
}

#[test]
fn a_lone_session_is_given_up_after_an_hour_a_call_after_a_day() {
    use crate::webhook::LONE_GIVE_UP_AFTER_MS;
    let failed = Outcome::Status(503);
    // One client alone enters and leaves: its four events are a lone session's.
    let mut s = Stored::new(&HOOKED);
    s.join(0, &[], arrival(1, None));
    s.event(0, &["s1"], closed("s1", 1000));
    let lone: Vec<bool> = s
        .room
        .as_ref()
        .unwrap()
        .outbox
        .iter()
        .map(|p| p.lone)
        .collect();
    assert_eq!(lone, [true; 4]);
    let head = outbox_ids(&s)[0].clone();
    s.event(
        LONE_GIVE_UP_AFTER_MS - 1,
        &[],
        RoomEvent::Delivery {
            id: head.clone(),
            outcome: failed,
        },
    );
    assert_eq!(outbox_ids(&s)[0], head, "kept within the hour");
    s.event(
        LONE_GIVE_UP_AFTER_MS,
        &[],
        RoomEvent::Delivery {
            id: head,
            outcome: failed,
        },
    );
    assert_eq!(outbox_ids(&s).len(), 3, "given up after the hour");
    // A call: a second client joined, so its events keep the day.
    let mut s = Stored::new(&HOOKED);
    s.join(0, &[], arrival(1, None));
    s.join(0, &["s1"], arrival(2, None));
    s.event(0, &["s1", "s2"], closed("s2", 1000));
    s.event(0, &["s1"], closed("s1", 1000));
    let room = s.room.as_ref().unwrap();
    assert!(room.outbox.iter().all(|p| !p.lone));
    let head = outbox_ids(&s)[0].clone();
    s.event(
        LONE_GIVE_UP_AFTER_MS,
        &[],
        RoomEvent::Delivery {
            id: head.clone(),
            outcome: failed,
        },
    );
    assert_eq!(outbox_ids(&s)[0], head, "a call's events keep the day");
}

#[test]
fn a_report_is_a_webhook_marked_as_the_clients_and_a_log_line() {
    use crate::report::{Outcome as Media, Path, Report, Transport, MAX_REPORTS_PER_SLOT};
    let mut s = Stored::new(&HOOKED);
    s.join(0, &[], arrival(1, None));
    s.join(0, &["s1"], arrival(2, None));
    s.drain(0, &["s1", "s2"]);
    let connected = Report {
        outcome: Media::Connected {
            path: Path::Relay,
            transport: Transport::Tcp,
        },
        connect_ms: 1_834,
        ice_restarts: 1,
    };
    let report = |report| RoomEvent::Report {
        conn: "s2".into(),
        report,
    };
    s.event(7, &["s1", "s2"], report(connected));
    assert_eq!(
        logs(&s.last),
        [r#"{"event":"call-connected","room":"r","clientId":"c2","reason":"relay-tcp"}"#]
    );
    let failed = Report {
        outcome: Media::Failed,
        connect_ms: 30_000,
        ice_restarts: 2,
    };
    s.event(8, &["s1", "s2"], report(failed));
    assert_eq!(
        s.drain(9, &["s1", "s2"]),
        [
            json!({"id":"c1-5","type":"call.connected","room":"r","at":7,"clientId":"c2","reportedBy":"client","path":"relay","transport":"tcp","connectMs":1834,"iceRestarts":1}),
            json!({"id":"c1-6","type":"call.failed","room":"r","at":8,"clientId":"c2","reportedBy":"client","connectMs":30000,"iceRestarts":2}),
        ]
    );
    // A slot's reports are bounded; one more is refused and changes nothing.
    for _ in 2..MAX_REPORTS_PER_SLOT {
        s.event(10, &["s1", "s2"], report(failed));
    }
    let before = s.room.clone();
    s.event(11, &["s1", "s2"], report(failed));
    assert_eq!(
        wire(&s.last),
        [w(
            "s2",
            r#"{"type":"error","code":"rate-limited","message":"too many frames; slow down"}"#
        )]
    );
    assert_eq!(s.room, before);
}
