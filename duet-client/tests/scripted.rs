//! The client against a scripted server on a loopback port: what the real Worker will not do
//! on demand (lose a welcome with its socket, stop answering pings, never welcome, refuse with
//! an HTTP status), and the exact delays of the backoff. The frames it sends are the server's
//! own types (`ServerFrame`), never retyped.

use duet_client::protocol::{ServerFrame, Welcome, PING_TEXT, PONG_TEXT};
use duet_client::{Backoff, Client, Config, Dial, Disconnect, Error, Event, Socket};
use futures_util::{SinkExt, StreamExt};
use serde_json::value::RawValue;
use std::future::Future;
use std::task::Poll;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::handshake::server::{ErrorResponse, Request, Response};
use tokio_tungstenite::tungstenite::http::{HeaderValue, StatusCode};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

const LIMIT: Duration = Duration::from_secs(10);

/// One accepted socket, the subprotocols its upgrade offered and the path and query it asked
/// for.
struct Conn {
    offer: String,
    uri: String,
    ws: WebSocketStream<TcpStream>,
}

/// A server that accepts every upgrade (selecting `duet.v1`), or answers `refuse` to each.
struct Scripted {
    base: String,
    conns: mpsc::UnboundedReceiver<Conn>,
}

impl Scripted {
    async fn start(refuse: Option<StatusCode>) -> Scripted {
        Scripted::start_slow(refuse, Duration::ZERO).await
    }

    /// A server that waits `slow` before it answers each upgrade.
    async fn start_slow(refuse: Option<StatusCode>, slow: Duration) -> Scripted {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, conns) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let tx = tx.clone();
                tokio::spawn(async move {
                    tokio::time::sleep(slow).await;
                    let (mut offer, mut uri) = (String::new(), String::new());
                    // tungstenite's callback type: its error is the HTTP answer, large or not.
                    #[allow(clippy::result_large_err)]
                    let callback =
                        |req: &Request, mut res: Response| -> Result<Response, ErrorResponse> {
                            uri = req.uri().to_string();
                            offer = req
                                .headers()
                                .get("sec-websocket-protocol")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            if let Some(status) = refuse {
                                let mut refusal =
                                    ErrorResponse::new(Some(r#"{"error":{"code":"nope"}}"#.into()));
                                *refusal.status_mut() = status;
                                return Err(refusal);
                            }
                            res.headers_mut().insert(
                                "sec-websocket-protocol",
                                HeaderValue::from_static("duet.v1"),
                            );
                            Ok(res)
                        };
                    if let Ok(ws) = tokio_tungstenite::accept_hdr_async(tcp, callback).await {
                        let _ = tx.send(Conn { offer, uri, ws });
                    }
                });
            }
        });
        Scripted { base, conns }
    }

    async fn next(&mut self) -> Conn {
        tokio::time::timeout(LIMIT, self.conns.recv())
            .await
            .expect("no connection in time")
            .expect("the server stopped")
    }
}

impl Conn {
    async fn send(&mut self, frame: ServerFrame) {
        self.ws
            .send(Message::Text(frame.to_text().into()))
            .await
            .unwrap();
    }

    async fn send_text(&mut self, text: &str) {
        self.ws.send(Message::Text(text.into())).await.unwrap();
    }

    /// The next text or close the client sent.
    async fn read(&mut self) -> Message {
        loop {
            match tokio::time::timeout(LIMIT, self.ws.next())
                .await
                .expect("nothing in time")
            {
                Some(Ok(m @ (Message::Text(_) | Message::Close(_)))) => return m,
                Some(Ok(_)) => {}
                other => panic!("{other:?}"),
            }
        }
    }

    /// How the client ended this socket: its close frame's code, or `None` for a connection
    /// that went without one. What it sent before is skipped.
    async fn ended(&mut self) -> Option<u16> {
        loop {
            match tokio::time::timeout(LIMIT, self.ws.next())
                .await
                .expect("not ended in time")
            {
                Some(Ok(Message::Close(frame))) => {
                    return Some(frame.map_or(1005, |f| f.code.into()))
                }
                Some(Ok(_)) => {}
                Some(Err(_)) | None => return None,
            }
        }
    }

    fn offers_token(&self, token: &str) -> bool {
        self.offer
            .split(',')
            .any(|p| p.trim() == format!("duet.resume.{token}"))
    }
}

fn welcome(token: &str, resumed: Option<bool>) -> Welcome {
    Welcome {
        version: 1,
        room: "r".into(),
        client_id: "0123456789abcdef".into(),
        resume_token: token.into(),
        ice_servers: RawValue::from_string("[]".into()).unwrap(),
        ice_servers_expire_at: None,
        max_peers: 2,
        max_message_bytes: 65_536,
        peers: vec![],
        resumed,
        identity: None,
        peer_identities: None,
    }
}

fn config(server: &Scripted) -> Config {
    let mut config = Config::new(&server.base, "r").unwrap();
    config.backoff = Backoff {
        initial: Duration::from_millis(1),
        max: Duration::from_millis(2),
        factor: 2.0,
    };
    config
}

async fn next(client: &mut Client) -> Event {
    tokio::time::timeout(LIMIT, client.next_event())
        .await
        .expect("no event in time")
        .expect("the client stopped")
}

async fn until(client: &mut Client, kind: &str) -> Event {
    loop {
        let event = next(client).await;
        if event.kind() == kind {
            return event;
        }
    }
}

#[tokio::test]
async fn a_welcome_lost_with_its_socket_leaves_the_token_as_it_was() {
    let mut server = Scripted::start(None).await;
    let mut config = config(&server);
    config.resume_token = Some("t0".into());
    let mut client = Client::connect(config);

    let mut first = server.next().await;
    assert!(first.offers_token("t0"), "{}", first.offer);
    assert!(first.offer.starts_with("duet.v1"), "{}", first.offer);
    first
        .send(ServerFrame::Joined(welcome("t1", Some(true))))
        .await;
    until(&mut client, "joined").await;
    drop(first);

    // The next socket is lost before its welcome…
    let second = server.next().await;
    assert!(second.offers_token("t1"), "{}", second.offer);
    drop(second);
    // …so the one after still offers t1, the newest token a welcome brought.
    let mut third = server.next().await;
    assert!(third.offers_token("t1"), "{}", third.offer);
    third
        .send(ServerFrame::Joined(welcome("t2", Some(true))))
        .await;
    until(&mut client, "reconnected").await;
    drop(third);
    let fourth = server.next().await;
    assert!(fourth.offers_token("t2"), "{}", fourth.offer);
}

#[tokio::test]
async fn a_socket_that_stops_answering_pings_is_replaced() {
    let mut server = Scripted::start(None).await;
    let mut config = config(&server);
    config.ping_interval = Duration::from_secs(3600);
    config.pong_timeout = Duration::from_millis(100);
    let mut client = Client::connect(config);
    let mut first = server.next().await;
    first.send(ServerFrame::Created(welcome("t1", None))).await;
    // The first ping leaves at once, spelled as the runtime answers it; no pong comes.
    assert_eq!(first.read().await, Message::Text(PING_TEXT.into()));
    match first.read().await {
        Message::Close(Some(frame)) => assert_eq!(u16::from(frame.code), 4001),
        other => panic!("{other:?}"),
    }
    match until(&mut client, "reconnecting").await {
        Event::Reconnecting { cause, .. } => {
            assert_eq!(
                (cause.code, cause.reason.as_str()),
                (4001, "no answer to a ping")
            )
        }
        other => panic!("{other:?}"),
    }
    let second = server.next().await;
    assert!(second.offers_token("t1"));
}

#[tokio::test]
async fn a_socket_that_never_welcomes_is_abandoned() {
    let mut server = Scripted::start(None).await;
    let mut config = config(&server);
    config.connect_timeout = Duration::from_millis(100);
    let mut client = Client::connect(config);
    let _silent = server.next().await;
    match next(&mut client).await {
        Event::Reconnecting { cause, .. } => {
            assert_eq!(
                (cause.code, cause.reason.as_str()),
                (4001, "connect timed out")
            )
        }
        other => panic!("{other:?}"),
    }
    server.next().await;
}

#[tokio::test]
async fn delays_follow_the_backoff_until_the_attempts_run_out() {
    let mut server = Scripted::start(None).await;
    let mut config = config(&server);
    config.backoff = Backoff {
        initial: Duration::from_millis(20),
        max: Duration::from_millis(80),
        factor: 2.0,
    };
    config.max_reconnect_attempts = 4;
    let mut client = Client::connect(config);
    let mut delays = Vec::new();
    loop {
        // Each socket is dropped at once, before any welcome.
        drop(server.next().await);
        match next(&mut client).await {
            Event::Reconnecting { attempt, delay, .. } => {
                assert_eq!(attempt as usize, delays.len() + 1);
                delays.push(delay);
            }
            Event::Closed(close) => {
                assert_eq!(close.code, 1006);
                break;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(delays.len(), 4);
    for (n, delay) in delays.iter().enumerate() {
        let ceiling = Duration::from_millis((20u64 << n).min(80));
        assert!(
            *delay >= ceiling / 2 && *delay <= ceiling,
            "attempt {n}: {delay:?}"
        );
    }
    assert!(client.next_event().await.is_none());
}

#[tokio::test]
async fn nothing_is_queued_while_reconnecting_and_reconnect_cuts_the_wait() {
    let mut server = Scripted::start(None).await;
    let mut config = config(&server);
    config.backoff.initial = Duration::from_secs(3600);
    config.backoff.max = Duration::from_secs(3600);
    let mut client = Client::connect(config);
    drop(server.next().await);
    assert_eq!(next(&mut client).await.kind(), "reconnecting");
    let refused = client.send(&1).await.unwrap_err();
    assert!(matches!(refused, duet_client::Error::NotOpen), "{refused}");
    // An hour's wait, cut short.
    client.reconnect();
    let mut second = server.next().await;
    second.send(ServerFrame::Created(welcome("t", None))).await;
    until(&mut client, "created").await;
    client.send(&serde_json::json!({"a": 1})).await.unwrap();
    assert_eq!(second.read().await, Message::Text(PING_TEXT.into()));
    assert_eq!(
        second.read().await,
        Message::Text(r#"{"type":"message","data":{"a":1}}"#.into())
    );
}

#[tokio::test]
async fn an_http_refusal_is_final() {
    let server = Scripted::start(Some(StatusCode::FORBIDDEN)).await;
    let mut client = Client::connect(config(&server));
    match next(&mut client).await {
        Event::Closed(close) => {
            assert_eq!(close.code, 1006);
            assert!(close.reason.starts_with("HTTP 403"), "{}", close.reason);
        }
        other => panic!("{other:?}"),
    }
    assert!(client.next_event().await.is_none());
}

#[tokio::test]
async fn a_frame_over_the_announced_limit_is_refused_before_it_leaves() {
    let mut server = Scripted::start(None).await;
    let mut client = Client::connect(config(&server));
    let mut conn = server.next().await;
    // `{"type":"message","data":"…"}` is 28 bytes around the string's characters.
    let max = 40;
    conn.send(ServerFrame::Created(Welcome {
        max_message_bytes: max,
        ..welcome("t", None)
    }))
    .await;
    until(&mut client, "created").await;
    assert_eq!(conn.read().await, Message::Text(PING_TEXT.into()));
    let over = "x".repeat(max - 28 + 1);
    match client.send(&over).await {
        Err(duet_client::Error::TooLarge { bytes, max: m }) => {
            assert_eq!((bytes, m), (max + 1, max))
        }
        other => panic!("{other:?}"),
    }
    let exact = "y".repeat(max - 28);
    client.send(&exact).await.unwrap();
    // The next frame on the wire is the one at the limit: the one over it never left.
    assert_eq!(
        conn.read().await,
        Message::Text(format!(r#"{{"type":"message","data":"{exact}"}}"#).into())
    );
}

#[tokio::test]
async fn a_leave_the_server_never_closes_still_stops_without_reconnecting() {
    let mut server = Scripted::start(None).await;
    let mut client = Client::connect(config(&server));
    let mut conn = server.next().await;
    conn.send(ServerFrame::Created(welcome("t", None))).await;
    until(&mut client, "created").await;
    client.leave();
    assert_eq!(conn.read().await, Message::Text(PING_TEXT.into()));
    assert_eq!(
        conn.read().await,
        Message::Text(r#"{"type":"leave"}"#.into())
    );
    // The server says nothing more; the client stops by itself and forgets the token.
    let close = loop {
        match next(&mut client).await {
            Event::Closed(close) => break close,
            Event::Pong => {}
            other => panic!("{other:?}"),
        }
    };
    assert_eq!((close.code, close.reason.as_str()), (1000, "left"));
    assert_eq!(client.status().slot.token, None);
    assert!(client.next_event().await.is_none());
    assert!(
        server.conns.try_recv().is_err(),
        "no new socket after a leave"
    );
}

#[tokio::test]
async fn a_ticket_provider_that_hangs_fails_the_attempt() {
    let mut server = Scripted::start(None).await;
    let calls = std::sync::Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = std::sync::Arc::clone(&calls);
    let mut config = config(&server).ticket(duet_client::Ticket::provider(move || {
        let n = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        async move {
            if n == 0 {
                std::future::pending::<()>().await;
            }
            Ok::<_, String>("jwt".to_owned())
        }
    }));
    config.connect_timeout = Duration::from_millis(100);
    let mut client = Client::connect(config);
    match next(&mut client).await {
        Event::Reconnecting { cause, .. } => {
            assert_eq!(cause.reason, "no ticket: the ticket provider timed out")
        }
        other => panic!("{other:?}"),
    }
    // The next attempt asks again, and offers what it got.
    let conn = server.next().await;
    assert!(
        conn.offer.split(", ").any(|p| p == "duet.ticket.jwt"),
        "{}",
        conn.offer
    );
    assert_eq!(calls.load(std::sync::atomic::Ordering::SeqCst), 2);
}

#[tokio::test]
async fn a_zero_connect_timeout_waits_as_long_as_it_takes() {
    let mut server = Scripted::start_slow(None, Duration::from_millis(50)).await;
    let mut config = config(&server);
    config.connect_timeout = Duration::ZERO;
    let mut client = Client::connect(config);
    let mut conn = server.next().await;
    conn.send(ServerFrame::Created(welcome("t", None))).await;
    assert_eq!(next(&mut client).await.kind(), "created");
}

#[tokio::test]
async fn a_check_answered_is_true_and_one_unanswered_redials_at_once() {
    let mut server = Scripted::start(None).await;
    let mut config = config(&server);
    config.ping_interval = Duration::from_secs(3600);
    config.check_timeout = Duration::from_millis(100);
    config.backoff.initial = Duration::from_secs(3600);
    config.backoff.max = Duration::from_secs(3600);
    let mut client = Client::connect(config);
    let mut first = server.next().await;
    first.send(ServerFrame::Created(welcome("t1", None))).await;
    until(&mut client, "created").await;
    assert_eq!(first.read().await, Message::Text(PING_TEXT.into()));
    first.send_text(PONG_TEXT).await;
    assert_eq!(next(&mut client).await.kind(), "pong");

    // A check pings at once; the pong answers it.
    let (ok, ()) = tokio::join!(client.check(), async {
        assert_eq!(first.read().await, Message::Text(PING_TEXT.into()));
        first.send_text(PONG_TEXT).await;
    });
    assert!(ok);
    assert_eq!(next(&mut client).await.kind(), "pong");

    // Unanswered: the socket is dropped (4001) and the next dials at once, not after the
    // hour of backoff, resuming the slot.
    assert!(!client.check().await);
    match next(&mut client).await {
        Event::Reconnecting { delay, cause, .. } => {
            assert_eq!(delay, Duration::ZERO);
            assert_eq!(
                (cause.code, cause.reason.as_str()),
                (4001, "no answer to a check")
            );
        }
        other => panic!("{other:?}"),
    }
    let second = server.next().await;
    assert!(second.offers_token("t1"), "{}", second.offer);
}

fn socket_dial(server: &Scripted) -> Dial {
    Dial::new(duet_client::room_url(&server.base, "r").unwrap())
}

#[tokio::test]
async fn a_dial_offers_its_ticket_and_token_as_subprotocols_or_the_token_in_the_query() {
    let mut server = Scripted::start(None).await;
    let dial = socket_dial(&server).ticket("a.b.c").resume("t1");
    let _socket = Socket::connect(&dial).await.unwrap();
    let conn = server.next().await;
    assert_eq!(conn.offer, "duet.v1, duet.ticket.a.b.c, duet.resume.t1");
    assert_eq!(conn.uri, "/ws/r");

    let _socket = Socket::connect(&dial.resume_in_query(true)).await.unwrap();
    let conn = server.next().await;
    assert_eq!(conn.offer, "duet.v1, duet.ticket.a.b.c");
    assert_eq!(conn.uri, "/ws/r?resume=t1");
}

#[tokio::test]
async fn a_join_without_a_welcome_in_time_names_the_welcome() {
    let mut server = Scripted::start(None).await;
    let dial = socket_dial(&server).timeout(Duration::from_millis(100));
    let joining = tokio::spawn(async move { Socket::join(&dial).await });
    let _silent = server.next().await;
    match joining.await.unwrap() {
        Err(Error::Timeout(step)) => assert_eq!(step, "welcome"),
        Err(other) => panic!("{other}"),
        Ok(_) => panic!("a welcome from a silent server"),
    }
}

#[tokio::test]
async fn a_welcome_with_no_limit_waits_as_long_as_it_takes() {
    let mut server = Scripted::start(None).await;
    let mut socket = Socket::connect(&socket_dial(&server)).await.unwrap();
    let mut conn = server.next().await;
    let waiting = socket.welcome(Duration::ZERO);
    tokio::pin!(waiting);
    // An hour passes (on tokio's paused clock) and nothing comes: still waiting.
    let first = std::future::poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx))).await;
    tokio::time::pause();
    tokio::time::advance(Duration::from_secs(3600)).await;
    let later = std::future::poll_fn(|cx| Poll::Ready(waiting.as_mut().poll(cx))).await;
    tokio::time::resume();
    assert!(first.is_pending() && later.is_pending(), "{later:?}");
    conn.send(ServerFrame::Created(welcome("t1", None))).await;
    assert!(waiting.await.unwrap().created);
}

#[tokio::test]
async fn send_close_returns_at_once_and_the_socket_reads_on() {
    let mut server = Scripted::start(None).await;
    let mut socket = Socket::connect(&socket_dial(&server)).await.unwrap();
    let mut conn = server.next().await;
    // Relayed before the server saw the close: still delivered.
    conn.send_text(PONG_TEXT).await;
    socket.send_close(1001, "going").await.unwrap();
    match conn.read().await {
        Message::Close(Some(frame)) => {
            assert_eq!(
                (u16::from(frame.code), frame.reason.as_str()),
                (1001, "going")
            )
        }
        other => panic!("{other:?}"),
    }
    // The server's echo of the close leaves with its next flush.
    conn.ws.flush().await.unwrap();
    let limit = Duration::from_secs(10);
    assert!(matches!(
        socket.recv_within(limit, "pong").await,
        Ok(Event::Pong)
    ));
    // The server's answer to the close (tungstenite echoes it) ends the socket.
    match socket.recv_within(limit, "close").await {
        Err(Error::Closed(close)) => assert_eq!(close.code, 1001),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn deliberate_drops_end_the_socket_as_asked_and_resume_the_slot() {
    for (how, close, delay) in [
        (Disconnect::Abort, None, Duration::from_millis(2)),
        (Disconnect::GoingAway, Some(1001), Duration::from_millis(2)),
        (Disconnect::Replace, None, Duration::ZERO),
    ] {
        let mut server = Scripted::start(None).await;
        let mut client = Client::connect(config(&server));
        let mut first = server.next().await;
        first.send(ServerFrame::Created(welcome("t1", None))).await;
        until(&mut client, "created").await;
        client.disconnect(how);
        let mut second = server.next().await;
        assert!(second.offers_token("t1"), "{how:?}: {}", second.offer);
        // A replaced socket is dropped once its successor is connected, without a close.
        assert_eq!(first.ended().await, close, "{how:?}");
        match until(&mut client, "reconnecting").await {
            Event::Reconnecting { delay: d, .. } => assert!(d <= delay, "{how:?}: {d:?}"),
            other => panic!("{other:?}"),
        }
        second
            .send(ServerFrame::Joined(welcome("t2", Some(true))))
            .await;
        match until(&mut client, "reconnected").await {
            Event::Reconnected { resumed, .. } => assert!(resumed, "{how:?}"),
            other => panic!("{other:?}"),
        }
    }
}
