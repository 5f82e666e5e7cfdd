//! duet-client against the real Worker. `test/client/rust.test.mjs` starts the servers under
//! Miniflare and runs these with their URLs in `DUET_*` variables: ignored in a plain `cargo
//! test` (the Worker is not built yet when `make test` runs the Rust tests), and failing, not
//! skipping, when a variable is missing.
//!
//! - `DUET_URL`: defaults, with TURN credentials that live 10 s;
//! - `DUET_TICKETED_URL`, `DUET_TICKET_SECRET` and `DUET_ADMIN_SECRET`: `JOIN_SECRET` and
//!   `ADMIN_SECRET` set;
//! - `DUET_LIMITED_URL`: a join limit of one per minute;
//! - `DUET_BROKEN_URL`: `JOIN_SECRET` without a key (every socket refused, `config-error`);
//! - `DUET_STRICT_URL`: `STALE_AFTER_MS=300`, `RATE_LIMIT_BURST=5`, `RATE_LIMIT_PER_SEC=1`.

#[path = "live/quickstart.rs"]
mod quickstart;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use duet::route::HttpError;
use duet_client::codec::{Codec, Context, Output};
use duet_client::protocol::{CloseCode, ErrorCode, LeaveReason};
use duet_client::{Client, Close, Config, Dial, Event, ServerFrame, Socket, Ticket};
use hmac::{Hmac, Mac};
use serde_json::value::RawValue;
use sha2::Sha256;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const LIMIT: Duration = Duration::from_secs(10);
const NEEDS: &str = "needs the Worker: run by test/client/rust.test.mjs";

fn server(var: &str) -> String {
    std::env::var(var).unwrap_or_else(|_| panic!("{var} is not set; {NEEDS}"))
}

fn room(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("{prefix}-{nanos:x}-{}", N.fetch_add(1, Ordering::Relaxed))
}

fn now_s() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// A join ticket (docs/access.md): an HS256 JWT for `room` and `sub`, expiring at `exp`.
fn mint(room: &str, sub: &str, exp: u64) -> String {
    let secret = server("DUET_TICKET_SECRET");
    let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = serde_json::json!({"room": room, "sub": sub, "exp": exp}).to_string();
    let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims));
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(input.as_bytes());
    format!(
        "{input}.{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

async fn next(client: &mut Client, within: Duration) -> Event {
    match tokio::time::timeout(within, client.next_event()).await {
        Ok(Some(event)) => event,
        Ok(None) => panic!("the client stopped"),
        Err(_) => panic!("no event within {within:?}"),
    }
}

/// The next event that is not a pong.
async fn next_frame(client: &mut Client) -> Event {
    loop {
        match next(client, LIMIT).await {
            Event::Pong => {}
            event => return event,
        }
    }
}

/// Skips events until one of the type `kind` (as [`Event::kind`] names it); any `closed`
/// on the way fails.
async fn until(client: &mut Client, kind: &str) -> Event {
    loop {
        let event = next(client, LIMIT).await;
        if event.kind() == kind {
            return event;
        }
        assert!(
            !matches!(event, Event::Closed(_)),
            "{event:?} before {kind}"
        );
    }
}

fn client(base: &str, room: &str) -> Client {
    Client::connect(Config::new(base, room).unwrap())
}

/// A room of two clients, both told `ready`.
async fn pair(base: &str, room: &str) -> (Client, Client) {
    let mut a = client(base, room);
    until(&mut a, "created").await;
    let mut b = client(base, room);
    until(&mut b, "joined").await;
    until(&mut a, "ready").await;
    until(&mut b, "ready").await;
    (a, b)
}

fn closed(event: Event) -> Close {
    match event {
        Event::Closed(close) => close,
        other => panic!("not closed: {other:?}"),
    }
}

#[test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
fn the_documented_example_runs() {
    server("DUET_URL");
    quickstart::main().unwrap();
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_welcome_then_the_first_ping_answered_then_a_verbatim_relay() {
    let base = server("DUET_URL");
    let room = room("relay");
    let mut a = client(&base, &room);
    let Event::Frame(ServerFrame::Created(w)) = next(&mut a, LIMIT).await else {
        panic!("no created");
    };
    assert_eq!((w.room.as_str(), w.peers.len()), (room.as_str(), 0));
    // The first ping leaves at once on the welcome, before anything else.
    assert!(matches!(next(&mut a, LIMIT).await, Event::Pong));
    let mut b = client(&base, &room);
    let Event::Frame(ServerFrame::Joined(wb)) = next(&mut b, LIMIT).await else {
        panic!("no joined");
    };
    assert_eq!(wb.peers, std::slice::from_ref(&w.client_id));
    let Event::Frame(ServerFrame::Ready { initiator, .. }) = until(&mut b, "ready").await else {
        unreachable!()
    };
    assert_eq!(initiator, w.client_id);
    until(&mut a, "ready").await;
    assert_eq!(a.status().slot.is_initiator(), Some(true));
    assert_eq!(b.status().slot.is_initiator(), Some(false));

    let data = RawValue::from_string(r#"{"sdp" : "v=0\r\n", "n": [1 , 2.50]}"#.into()).unwrap();
    a.send_raw(data.clone()).await.unwrap();
    match next_frame(&mut b).await {
        Event::Message { from, data: got } => {
            assert_eq!(
                (from.as_str(), got.get()),
                (w.client_id.as_str(), data.get())
            )
        }
        other => panic!("{other:?}"),
    }
    // A check: the runtime answers its ping at once.
    assert!(b.check().await);
    assert!(matches!(next(&mut b, LIMIT).await, Event::Pong));
    b.send(&serde_json::json!({"back": true})).await.unwrap();
    match next_frame(&mut a).await {
        Event::Message { data, .. } => assert_eq!(data.get(), r#"{"back":true}"#),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn leave_releases_the_slot_and_closes_with_1000() {
    let base = server("DUET_URL");
    let (mut a, mut b) = pair(&base, &room("leave")).await;
    let b_id = b.status().slot.client_id.unwrap();
    b.leave();
    let close = closed(until(&mut b, "closed:1000").await);
    assert_eq!(close.known, Some(CloseCode::Left));
    assert_eq!(b.status().slot.token, None);
    assert!(b.next_event().await.is_none(), "nothing after closed");
    match until(&mut a, "peer-left").await {
        Event::Frame(ServerFrame::PeerLeft {
            client_id, reason, ..
        }) => assert_eq!((client_id, reason), (b_id, LeaveReason::Leave)),
        other => panic!("{other:?}"),
    }
    // Alone again: a message has nobody to go to.
    a.send(&1).await.unwrap();
    match next_frame(&mut a).await {
        Event::Frame(ServerFrame::Error { code, .. }) => assert_eq!(code, ErrorCode::NoPeer),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_reconnect_resumes_the_slot_with_the_rotated_token() {
    let base = server("DUET_URL");
    let (mut a, _b) = pair(&base, &room("resume")).await;
    let before = a.status().slot;
    a.reconnect();
    match until(&mut a, "reconnecting").await {
        Event::Reconnecting { attempt, cause, .. } => {
            assert_eq!((attempt, cause.code), (1, duet_client::event::CLIENT_DROP))
        }
        other => panic!("{other:?}"),
    }
    let Event::Frame(ServerFrame::Joined(w)) = until(&mut a, "joined").await else {
        unreachable!()
    };
    assert_eq!(w.resumed, Some(true));
    match next_frame(&mut a).await {
        Event::Reconnected { resumed, client_id } => {
            assert!(resumed);
            assert_eq!(Some(client_id), before.client_id);
        }
        other => panic!("{other:?}"),
    }
    let after = a.status().slot;
    assert_ne!(after.token, before.token);
    assert_eq!(after.token.as_deref(), Some(w.resume_token.as_str()));
    // The pairing stands: no new `ready` after a resume, and we still make the offer.
    assert_eq!(after.is_initiator(), Some(true));
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_token_whose_successor_was_lost_still_resumes() {
    let base = server("DUET_URL");
    let url = duet_client::room_url(&base, &room("rotation")).unwrap();
    let (first, w1) = Socket::join(&Dial::new(&url)).await.unwrap();
    let t1 = w1.welcome.resume_token.clone();
    // A resume whose welcome (with the new token) is lost with its socket…
    let (lost, w2) = Socket::join(&Dial::new(&url).resume(&t1)).await.unwrap();
    assert!(w2.resumed());
    assert_ne!(w2.welcome.resume_token, t1);
    drop(lost);
    drop(first);
    // …so the client, which knows only t1, resumes with it: Config::resume_token.
    let mut config = Config::new(&base, url.rsplit('/').next().unwrap()).unwrap();
    config.resume_token = Some(t1.clone());
    let mut c = Client::connect(config);
    let Event::Frame(ServerFrame::Joined(w3)) = next(&mut c, LIMIT).await else {
        panic!("not joined");
    };
    assert_eq!(
        (w3.resumed, w3.client_id.as_str()),
        (Some(true), w1.welcome.client_id.as_str())
    );
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_full_room_is_final() {
    let base = server("DUET_URL");
    let room = room("full");
    let (_a, _b) = pair(&base, &room).await;
    let mut c = client(&base, &room);
    assert!(matches!(
        next(&mut c, LIMIT).await,
        Event::Frame(ServerFrame::Full { .. })
    ));
    let close = closed(next(&mut c, LIMIT).await);
    assert_eq!(close.known, Some(CloseCode::RoomFull));
    assert!(c.next_event().await.is_none());
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_slot_resumed_elsewhere_is_replaced() {
    let base = server("DUET_URL");
    let room = room("replaced");
    let mut a = client(&base, &room);
    until(&mut a, "pong").await;
    let token = a.status().slot.token.unwrap();
    let url = duet_client::room_url(&base, &room).unwrap();
    let (_taker, w) = Socket::join(&Dial::new(url).resume(token)).await.unwrap();
    assert!(w.resumed());
    let close = closed(until(&mut a, "closed:4000").await);
    assert_eq!(close.known, Some(CloseCode::Replaced));
}

fn refused(event: Event) -> duet_client::Refused {
    match event {
        Event::Refused(r) => r,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn ticket_refusals_are_read_in_band_and_final() {
    let base = server("DUET_TICKETED_URL");
    let room = room("tickets");
    let cases = [
        (None, HttpError::TicketRequired, CloseCode::TicketRefused),
        (
            Some(mint(&room, "u1", now_s() - 3600)),
            HttpError::TicketExpired,
            CloseCode::TicketRefused,
        ),
        (
            Some(mint("another-room", "u1", now_s() + 600)),
            HttpError::TicketWrongRoom,
            CloseCode::Forbidden,
        ),
        (
            Some("not.a.jwt".into()),
            HttpError::InvalidTicket,
            CloseCode::TicketRefused,
        ),
    ];
    for (ticket, code, close_code) in cases {
        let mut config = Config::new(&base, &room).unwrap();
        if let Some(ticket) = ticket {
            config = config.ticket(ticket);
        }
        let mut c = Client::connect(config);
        assert_eq!(refused(next(&mut c, LIMIT).await).code, code);
        let close = closed(next(&mut c, LIMIT).await);
        assert_eq!(
            (close.code, close.known),
            (close_code.code(), Some(close_code)),
            "{code:?}"
        );
        assert!(c.next_event().await.is_none());
    }
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_ticket_provider_is_asked_again_after_ticket_expired() {
    let base = server("DUET_TICKETED_URL");
    let room = room("provider");
    let calls = Arc::new(AtomicU32::new(0));
    let provider = {
        let (calls, room) = (Arc::clone(&calls), room.clone());
        Ticket::provider(move || {
            let n = calls.fetch_add(1, Ordering::SeqCst);
            // The first ticket has expired already; the next is fresh.
            let exp = if n == 0 {
                now_s() - 3600
            } else {
                now_s() + 600
            };
            let ticket = mint(&room, "ann", exp);
            async move { Ok::<_, String>(ticket) }
        })
    };
    let mut c = Client::connect(Config::new(&base, &room).unwrap().ticket(provider));
    assert_eq!(
        refused(next(&mut c, LIMIT).await).code,
        HttpError::TicketExpired
    );
    match next(&mut c, LIMIT).await {
        Event::Reconnecting { delay, cause, .. } => {
            assert_eq!(
                (delay, cause.known),
                (Duration::ZERO, Some(CloseCode::TicketRefused))
            )
        }
        other => panic!("{other:?}"),
    }
    let Event::Frame(ServerFrame::Created(w)) = next(&mut c, LIMIT).await else {
        panic!("not created");
    };
    assert_eq!(w.identity.map(|i| i.sub).as_deref(), Some("ann"));
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn too_many_joins_waits_retry_after() {
    let base = server("DUET_LIMITED_URL");
    let room = room("limited");
    let mut a = client(&base, &room);
    until(&mut a, "created").await;
    let mut b = client(&base, &room);
    let r = refused(next(&mut b, LIMIT).await);
    assert_eq!(
        (r.code, r.retry_after),
        (HttpError::TooManyJoins, Some(Duration::from_secs(60)))
    );
    match next(&mut b, LIMIT).await {
        Event::Reconnecting { delay, cause, .. } => {
            assert_eq!(delay, Duration::from_secs(60));
            assert_eq!(cause.known, Some(CloseCode::TooManyJoins));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_misconfigured_server_is_final() {
    let base = server("DUET_BROKEN_URL");
    let mut c = client(&base, &room("broken"));
    assert_eq!(
        refused(next(&mut c, LIMIT).await).code,
        HttpError::ConfigError
    );
    let close = closed(next(&mut c, LIMIT).await);
    assert_eq!(
        (close.code, close.known),
        (4503, Some(CloseCode::Misconfigured))
    );
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_silent_client_goes_stale_and_stops() {
    let base = server("DUET_STRICT_URL");
    let room = room("stale");
    let mut config = Config::new(&base, &room).unwrap();
    config.ping_interval = Duration::ZERO;
    let mut a = Client::connect(config);
    until(&mut a, "created").await;
    let url = duet_client::room_url(&base, &room).unwrap();
    let (_b, _) = Socket::join(&Dial::new(&url)).await.unwrap();
    // Newcomers find the room full until both occupants are past STALE_AFTER_MS (300 ms);
    // then the one silent for longer, `a`, gives its slot up.
    let deadline = tokio::time::Instant::now() + LIMIT;
    let _c = loop {
        match Socket::join(&Dial::new(&url)).await {
            Ok((c, _)) => break c,
            Err(duet_client::Error::Unexpected(full)) => {
                assert_eq!(full.kind(), "full");
                assert!(tokio::time::Instant::now() < deadline, "never evicted");
                // Polls the room's state: each try that finds it full is answered at once.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("{e}"),
        }
    };
    let close = closed(until(&mut a, "closed:4408").await);
    assert_eq!(close.known, Some(CloseCode::Stale));
    assert_eq!(a.status().slot.token, None);
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_flood_is_closed_with_4429_and_stops() {
    let base = server("DUET_STRICT_URL");
    let (mut a, _b) = pair(&base, &room("flood")).await;
    // Five frames pass (RATE_LIMIT_BURST), the rest are refused; the sixth refusal within 10 s
    // closes the socket, after which sends fail.
    for n in 0..50 {
        if a.send(&n).await.is_err() {
            break;
        }
    }
    let mut refused = 0;
    let close = loop {
        match next(&mut a, LIMIT).await {
            Event::Frame(ServerFrame::Error { code, .. }) => {
                assert_eq!(code, ErrorCode::RateLimited);
                refused += 1;
            }
            Event::Closed(close) => break close,
            _ => {}
        }
    };
    assert!(refused >= 5, "{refused} refusals");
    assert_eq!(close.known, Some(CloseCode::RateLimited));
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn ice_servers_are_refreshed_before_they_expire_and_on_demand() {
    let base = server("DUET_URL");
    let mut a = client(&base, &room("ice"));
    let Event::Frame(ServerFrame::Created(w)) = next(&mut a, LIMIT).await else {
        panic!("not created");
    };
    let first = w.ice_servers_expire_at.expect("TURN credentials expire");
    a.refresh_ice_servers().await.unwrap();
    let Event::Frame(ServerFrame::IceServers { expires_at, .. }) =
        until(&mut a, "ice-servers").await
    else {
        unreachable!()
    };
    assert!(expires_at >= Some(first));
    // Unasked: at 80% of the 10 s the credentials live.
    let Event::Frame(ServerFrame::IceServers {
        expires_at: later,
        ice_servers,
    }) = until_within(&mut a, "ice-servers", Duration::from_secs(20)).await
    else {
        unreachable!()
    };
    assert!(later > Some(first), "{later:?} after {first}");
    assert_eq!(
        a.status().slot.ice_servers.map(|s| s.get().to_owned()),
        Some(ice_servers.get().to_owned())
    );
}

async fn until_within(client: &mut Client, kind: &str, within: Duration) -> Event {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let event = next(client, left).await;
        if event.kind() == kind {
            return event;
        }
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.into()).unwrap()
}

/// A stand-in for the end-to-end envelope: wraps every message as `{"sealed": data}`, and
/// confirms the pairing with a hello sent on `ready`.
struct Wrap;

impl Codec for Wrap {
    fn seal(&mut self, _: &Context<'_>, data: &RawValue) -> Result<Box<RawValue>, String> {
        RawValue::from_string(format!(r#"{{"sealed":{}}}"#, data.get())).map_err(|e| e.to_string())
    }

    fn open(
        &mut self,
        _: &Context<'_>,
        from: &str,
        data: &RawValue,
        out: &mut Output,
    ) -> Option<Box<RawValue>> {
        let value: serde_json::Value = serde_json::from_str(data.get()).ok()?;
        if value.get("hello").is_some() {
            out.events.push(Event::E2eConfirmed { peer: from.into() });
            return None;
        }
        match value.get("sealed") {
            Some(inner) => serde_json::value::to_raw_value(inner).ok(),
            None => {
                out.events.push(Event::E2eError {
                    reason: "not-encrypted".into(),
                    from: Some(from.into()),
                    message: "plaintext".into(),
                });
                None
            }
        }
    }

    fn observe(&mut self, _: &Context<'_>, event: &Event, out: &mut Output) {
        if let Event::Frame(ServerFrame::Ready { .. }) = event {
            out.send
                .push(RawValue::from_string(r#"{"hello":1}"#.into()).unwrap());
        }
    }
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn a_codec_seals_opens_and_confirms() {
    let base = server("DUET_URL");
    let room = room("codec");
    let mut a = Client::connect(Config::new(&base, &room).unwrap().codec(Wrap));
    until(&mut a, "created").await;
    let url = duet_client::room_url(&base, &room).unwrap();
    let (mut b, _) = Socket::join(&Dial::new(url)).await.unwrap();
    // The hello of `observe` leaves on `ready`, before anything else `a` sends.
    let mut got = Vec::new();
    while got.len() < 2 {
        match b.recv_within(LIMIT, "hello").await.unwrap() {
            Event::Frame(ServerFrame::Ready { .. }) => got.push("ready".to_owned()),
            Event::Message { data, .. } => got.push(data.get().to_owned()),
            _ => {}
        }
    }
    assert_eq!(got, ["ready", r#"{"hello":1}"#]);
    until(&mut a, "ready").await;
    a.send(&"hi").await.unwrap();
    match b.recv_within(LIMIT, "sealed").await.unwrap() {
        Event::Message { data, .. } => assert_eq!(data.get(), r#"{"sealed":"hi"}"#),
        other => panic!("{other:?}"),
    }
    b.send_data(&raw(r#"{"hello":1}"#)).await.unwrap();
    assert!(matches!(
        until(&mut a, "e2e-confirmed").await,
        Event::E2eConfirmed { .. }
    ));
    b.send_data(&raw(r#"{"sealed":[1]}"#)).await.unwrap();
    match next_frame(&mut a).await {
        Event::Message { data, .. } => assert_eq!(data.get(), "[1]"),
        other => panic!("{other:?}"),
    }
    b.send_data(&raw(r#""plain""#)).await.unwrap();
    assert_eq!(next_frame(&mut a).await.kind(), "e2e-error:not-encrypted");
}

/// One admin request (docs/admin.md) to the ticketed server: the status and the body.
async fn admin(path: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let base = server("DUET_TICKETED_URL");
    let host = base.trim_start_matches("http://").trim_end_matches('/');
    let secret = server("DUET_ADMIN_SECRET");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {secret}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(host).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).await.unwrap();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap();
    let body = answer
        .split("\r\n\r\n")
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    (status, body)
}

#[tokio::test]
#[ignore = "needs the Worker: run by test/client/rust.test.mjs"]
async fn kicked_banned_and_ended_are_final() {
    let base = server("DUET_TICKETED_URL");
    let room = room("admin");
    let join = |sub: &str| {
        Client::connect(
            Config::new(&base, &room)
                .unwrap()
                .ticket(mint(&room, sub, now_s() + 600)),
        )
    };
    let mut ann = join("ann");
    until(&mut ann, "created").await;
    let mut bob = join("bob");
    until(&mut bob, "ready").await;
    until(&mut ann, "ready").await;

    let kick = r#"{"sub":"bob","reason":"be nice","banSeconds":600}"#;
    let (status, body) = admin(&format!("/admin/rooms/{room}/kick"), kick).await;
    assert_eq!((status, body.as_str()), (200, r#"{"kicked":true}"#));
    match until(&mut bob, "kicked").await {
        Event::Frame(ServerFrame::Kicked { reason, .. }) => assert_eq!(reason, "be nice"),
        other => panic!("{other:?}"),
    }
    let close = closed(next_frame(&mut bob).await);
    assert_eq!(close.known, Some(CloseCode::Kicked));
    assert!(
        bob.next_event().await.is_none(),
        "no reconnect after a kick"
    );
    match until(&mut ann, "peer-left").await {
        Event::Frame(ServerFrame::PeerLeft { reason, .. }) => {
            assert_eq!(reason, LeaveReason::Kicked)
        }
        other => panic!("{other:?}"),
    }

    // A fresh ticket does not bring the banned identity back.
    let mut again = join("bob");
    assert_eq!(
        refused(next(&mut again, LIMIT).await).code,
        HttpError::Banned
    );
    let close = closed(next(&mut again, LIMIT).await);
    assert_eq!(close.known, Some(CloseCode::Banned));
    assert!(again.next_event().await.is_none());

    let (status, body) = admin(&format!("/admin/rooms/{room}/end"), r#"{"reason":"over"}"#).await;
    assert_eq!((status, body.as_str()), (200, r#"{"ended":1}"#));
    match until(&mut ann, "ended").await {
        Event::Frame(ServerFrame::Ended { reason, .. }) => assert_eq!(reason, "over"),
        other => panic!("{other:?}"),
    }
    let close = closed(next_frame(&mut ann).await);
    assert_eq!((close.code, close.known), (4410, Some(CloseCode::Ended)));
    assert!(
        ann.next_event().await.is_none(),
        "no reconnect after the end"
    );
}
