//! One of the soak's concurrent calls: a task that opens a room of two peers, keeps it busy
//! (keep-alive pings, messages both ways, drops that resume, restarts it survives), ends it
//! with a `leave`, and starts the next call in a fresh room, until the run ends.
//!
//! Both peers of a room live in the same task, so it knows at every moment which of its
//! sockets are up, what each should receive next, and what is in flight, and checks every
//! frame against that. Anything off is an [`Incident`], explained later or not.

use crate::incident::{Incident, Kind};
use crate::ledger::{check, Deliveries, Delivery, Direction, Probe, Receiver};
use crate::payload;
use crate::rng::Rng;
use crate::room::close;
use crate::stats::{Failure, Latency};
use duet_client::protocol::{ClientFrame, CloseCode, LeaveReason, ServerFrame};
use duet_client::{Close, Dial, Event, Socket, Welcomed};
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Semaphore};
use url::Url;

/// Milliseconds and microseconds since the run started: one time base for every task.
#[derive(Debug, Clone, Copy)]
pub struct Clock(pub Instant);

impl Clock {
    pub fn ms(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.0).as_millis()).unwrap_or(u64::MAX)
    }

    pub fn us(&self, t: Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.0).as_micros()).unwrap_or(u64::MAX)
    }

    pub fn s(&self, t: Instant) -> f64 {
        t.saturating_duration_since(self.0).as_secs_f64()
    }
}

/// Counters the progress line reads while the calls run.
#[derive(Default)]
pub struct Live {
    pub calls: AtomicU64,
    pub delivered: AtomicU64,
    pub resumes: AtomicU64,
}

/// What every call task reads.
pub struct Plan {
    pub base: Url,
    pub prefix: String,
    pub seed: u64,
    pub clock: Clock,
    pub stop_at: Instant,
    pub timeout: Duration,
    pub call_min: Duration,
    pub call_max: Duration,
    pub message_every: Duration,
    pub quiet_share: f64,
    pub size: usize,
    pub ping_every: Duration,
    pub pong_timeout: Duration,
    pub drop_every: Option<Duration>,
    pub resume_delay_max: Duration,
    pub grace: Duration,
    /// How long a reconnect keeps trying before the call is given up.
    pub give_up: Duration,
    pub open_permits: Semaphore,
    /// When the server last came up (the start of the run without --serve).
    pub server_up: watch::Receiver<Instant>,
    pub live: Live,
}

impl Plan {
    /// The room's socket URL (names are checked with `--room-prefix`; a bad one fails to
    /// connect).
    pub fn room_url(&self, room: &str) -> String {
        duet_client::room_url(self.base.as_str(), room).unwrap_or_default()
    }
}

/// Resumes and what they got.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Resumes {
    pub total: u64,
    #[serde(rename = "kept_id")]
    pub kept: u64,
    pub within_grace: u64,
    #[serde(rename = "lost_id_within_grace")]
    pub lost_within_grace: u64,
    pub beyond_grace: u64,
    /// Drop (or the server's return after a restart) → the resumed welcome.
    pub took: Latency,
}

impl Resumes {
    pub fn record(&mut self, kept: bool, took: Duration, grace: Duration) {
        self.total += 1;
        self.kept += u64::from(kept);
        if took < grace {
            self.within_grace += 1;
            self.lost_within_grace += u64::from(!kept);
        } else {
            self.beyond_grace += 1;
        }
        self.took.record(took);
    }

    fn merge(&mut self, o: &Resumes) {
        self.total += o.total;
        self.kept += o.kept;
        self.within_grace += o.within_grace;
        self.lost_within_grace += o.lost_within_grace;
        self.beyond_grace += o.beyond_grace;
        self.took.merge(&o.took);
    }
}

/// Deliberate drops by kind.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Drops {
    /// TCP closed with no close frame.
    pub abort: u64,
    /// Close frame 1001.
    pub close: u64,
    /// A second socket resumed while the first was open (closed 4000 by the server).
    pub replace: u64,
}

/// What one call slot saw over the run.
#[derive(Debug, Default)]
pub struct SlotRun {
    pub calls_started: u64,
    pub calls_completed: u64,
    pub calls_broken: u64,
    pub joins: u64,
    pub resumes: Resumes,
    pub drops: Drops,
    pub deliveries: Deliveries,
    /// Send → arrival of each relayed message.
    pub latency: Latency,
    pub pings: u64,
    pub pongs: u64,
    pub pong_wait: Latency,
    pub incidents: Vec<Incident>,
}

impl SlotRun {
    pub fn merge(&mut self, o: SlotRun) {
        self.calls_started += o.calls_started;
        self.calls_completed += o.calls_completed;
        self.calls_broken += o.calls_broken;
        self.joins += o.joins;
        self.resumes.merge(&o.resumes);
        self.drops.abort += o.drops.abort;
        self.drops.close += o.drops.close;
        self.drops.replace += o.drops.replace;
        self.deliveries.merge(&o.deliveries);
        self.latency.merge(&o.latency);
        self.pings += o.pings;
        self.pongs += o.pongs;
        self.pong_wait.merge(&o.pong_wait);
        self.incidents.extend(o.incidents);
    }
}

/// First wait before reconnecting a socket that was lost (not dropped on purpose), and the
/// most any wait between attempts grows to.
const RETRY_FIRST: Duration = Duration::from_millis(250);
const RETRY_MAX: Duration = Duration::from_secs(2);
/// How long after a room is whole again a `no-peer` or a loss still counts as caused by the
/// drop (the refusal of a message sent just before it may arrive after the resume).
const DROP_SETTLE: Duration = Duration::from_secs(2);

/// How a socket goes down on purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DropKind {
    /// The TCP connection ends with no close frame, as when a network goes away.
    Abort,
    /// A close frame with 1001 (going away), which is not a leave.
    Close,
    /// A second socket resumes the slot while the first is still open (a new network
    /// while the old connection lingers); the server closes the old one with 4000.
    Replace,
}

/// Sockets are boxed: a socket is large, and links and steps move often.
enum Link {
    Up(Box<Socket>),
    /// Waiting to reconnect at `retry_at`. `deliberate`: the scenario dropped the socket
    /// (abort or close 1001), so the server's grace runs from `since` (see [`grace_start`]).
    Down {
        since: Instant,
        deliberate: bool,
        retry_at: Instant,
        attempt: u32,
    },
    Connecting {
        since: Instant,
        deliberate: bool,
        attempt: u32,
        welcome: BoxFuture<'static, Result<(Box<Socket>, Welcomed), Failure>>,
    },
    /// Left, or given up.
    Gone,
}

struct Peer {
    id: String,
    token: String,
    link: Link,
    /// A replaced socket, until the server closes it with 4000 or the deadline passes.
    retired: Option<(Box<Socket>, Instant)>,
    ping_at: Instant,
    /// When the ping now waiting for its pong was sent.
    ping_out: Option<Instant>,
    message_at: Instant,
    /// Since when this peer waits for `peer-joined` (resumed) of the other: the other came
    /// back while this one was up.
    expect_joined: Option<Instant>,
    /// It got that `peer-joined` before the other's welcome was read (two sockets: either
    /// may be read first).
    joined_early: bool,
}

impl Peer {
    fn new(welcomed: Welcomed, ws: Socket, now: Instant) -> Peer {
        Peer {
            id: welcomed.welcome.client_id,
            token: welcomed.welcome.resume_token,
            link: Link::Up(Box::new(ws)),
            retired: None,
            // The bundled client pings as soon as it is welcomed.
            ping_at: now,
            ping_out: None,
            message_at: now,
            expect_joined: None,
            joined_early: false,
        }
    }

    fn up(&self) -> bool {
        matches!(self.link, Link::Up(_))
    }

    fn connecting(&self) -> bool {
        matches!(self.link, Link::Connecting { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Steady,
    /// No new messages; waits until what is in flight arrived and both are up.
    Draining {
        until: Instant,
    },
    /// `leaver` left; waits for its close and the other's `peer-left`.
    Leaving {
        leaver: usize,
        until: Instant,
        closed: bool,
        told: bool,
    },
    Done,
}

/// What woke the call's loop.
enum Step {
    Link(usize, LinkEvent),
    Retired(usize, Option<Event>),
    Tick,
}

/// What happened on a peer's link: a frame on its socket, or its reconnect finished.
enum LinkEvent {
    Event(Option<Event>),
    Connected(Result<(Box<Socket>, Welcomed), Failure>),
}

/// Runs calls one after another until the run's end; returns what they saw.
pub async fn run_slot(plan: Arc<Plan>, index: u32) -> SlotRun {
    let mut run = SlotRun::default();
    let mut rng = Rng::fork(plan.seed, u64::from(index));
    let mut generation = 0u32;
    while Instant::now() < plan.stop_at {
        let room = format!("{}-soak-{index}-{generation}", plan.prefix);
        generation += 1;
        let opened = {
            let _permit = plan.open_permits.acquire().await;
            if Instant::now() >= plan.stop_at {
                break;
            }
            open(&plan, &room, &mut run).await
        };
        match opened {
            Ok((a, b)) => {
                run.calls_started += 1;
                plan.live.calls.fetch_add(1, Ordering::Relaxed);
                let mut call = Call::new(&plan, room, a, b, &mut rng, &mut run);
                call.run().await;
            }
            Err(()) => {
                let pause = rng.between(Duration::from_millis(500), Duration::from_secs(2));
                tokio::time::sleep(pause).await;
            }
        }
    }
    run
}

/// The incident a connect or a wait failed with.
fn kind_of(failure: &Failure) -> Kind {
    match failure {
        Failure::Connect(_) | Failure::Http(_) | Failure::Handshake(_) => {
            Kind::ConnectFailed(failure.label())
        }
        Failure::Timeout(step) => Kind::Timeout(step),
        Failure::Unexpected(kind) => Kind::Unexpected(kind.clone()),
        Failure::WrongData => Kind::Misdelivered("wrong data"),
        Failure::Closed(_) | Failure::Socket(_) => Kind::ConnectionLost(failure.label()),
    }
}

/// A resume of `token`'s slot, with the token as a subprotocol or in the query.
fn resume(
    url: &str,
    token: &str,
    by_subprotocol: bool,
    limit: Duration,
) -> BoxFuture<'static, Result<(Box<Socket>, Welcomed), Failure>> {
    let dial = resume_dial(url, token, by_subprotocol, limit);
    async move {
        let (socket, welcomed) = Socket::join(&dial).await.map_err(Failure::connect)?;
        Ok((Box::new(socket), welcomed))
    }
    .boxed()
}

fn resume_dial(url: &str, token: &str, by_subprotocol: bool, limit: Duration) -> Dial {
    Dial::new(url)
        .timeout(limit)
        .resume(token)
        .resume_in_query(!by_subprotocol)
}

/// Opens a room: `created` for the first peer, `joined` for the second, `peer-joined` and
/// `ready` for the first, `ready` for the second, all exactly.
async fn open(plan: &Plan, room: &str, run: &mut SlotRun) -> Result<(Peer, Peer), ()> {
    let dial = Dial::new(plan.room_url(room)).timeout(plan.timeout);
    let fail = |run: &mut SlotRun, kind: Kind| {
        run.incidents
            .push(Incident::at(kind, plan.clock.ms(Instant::now()), false));
    };
    let (mut a, wa) = match Socket::join(&dial).await {
        Ok(ok) => ok,
        Err(e) => {
            fail(run, kind_of(&Failure::connect(e)));
            return Err(());
        }
    };
    if !wa.created || wa.welcome.room != room || !wa.welcome.peers.is_empty() {
        fail(
            run,
            Kind::Unexpected(format!("{} for a new room", welcome_label(&wa))),
        );
        close(a).await;
        return Err(());
    }
    run.joins += 1;
    let (mut b, wb) = match Socket::join(&dial).await {
        Ok(ok) => ok,
        Err(e) => {
            fail(run, kind_of(&Failure::connect(e)));
            close(a).await;
            return Err(());
        }
    };
    run.joins += 1;
    if wb.created || wb.resumed() || wb.welcome.peers != [wa.welcome.client_id.clone()] {
        fail(
            run,
            Kind::Unexpected(format!("{} as second peer", welcome_label(&wb))),
        );
        tokio::join!(close(a), close(b));
        return Err(());
    }
    let ids = (wa.welcome.client_id.as_str(), wb.welcome.client_id.as_str());
    if let Err(failure) = lifecycle(&mut a, &mut b, ids, plan.timeout).await {
        fail(run, kind_of(&failure));
        tokio::join!(close(a), close(b));
        return Err(());
    }
    let now = Instant::now();
    Ok((Peer::new(wa, a, now), Peer::new(wb, b, now)))
}

/// `peer-joined` (not resumed) of `b` for `a`, then `ready` with `a` as the initiator for both.
async fn lifecycle(
    a: &mut Socket,
    b: &mut Socket,
    (a_id, b_id): (&str, &str),
    limit: Duration,
) -> Result<(), Failure> {
    match a.recv_within(limit, "peer-joined").await? {
        Event::Frame(ServerFrame::PeerJoined {
            client_id,
            resumed: false,
            ..
        }) if client_id == b_id => {}
        other => return Err(Failure::Unexpected(label(&other))),
    }
    for ws in [a, b] {
        match ws.recv_within(limit, "ready").await? {
            Event::Frame(ServerFrame::Ready { initiator, .. }) if initiator == a_id => {}
            other => return Err(Failure::Unexpected(label(&other))),
        }
    }
    Ok(())
}

/// A welcome's name in incidents: `created`, `joined` or `joined (resumed)`.
fn welcome_label(w: &Welcomed) -> &'static str {
    match (w.created, w.resumed()) {
        (true, _) => "created",
        (false, true) => "joined (resumed)",
        (false, false) => "joined",
    }
}

/// An event's name in incidents, with whether a `peer-joined` resumed and why a peer left.
fn label(event: &Event) -> String {
    match event {
        Event::Frame(ServerFrame::Created(_)) => "created".into(),
        Event::Frame(ServerFrame::Joined(w)) if w.resumed == Some(true) => {
            "joined (resumed)".into()
        }
        Event::Frame(ServerFrame::PeerJoined { resumed: true, .. }) => {
            "peer-joined (resumed)".into()
        }
        Event::Frame(ServerFrame::PeerLeft { reason, .. }) => {
            format!("peer-left ({})", reason.as_str())
        }
        other => other.kind(),
    }
}

/// A close's code as a failure counts it: none for a connection that ended without one.
fn close_code(close: &Close) -> Option<u16> {
    (!matches!(close.code, 1005 | 1006)).then_some(close.code)
}

async fn on_link(link: &mut Link) -> LinkEvent {
    match link {
        Link::Up(ws) => LinkEvent::Event(ws.recv().await),
        Link::Connecting { welcome, .. } => LinkEvent::Connected(welcome.await),
        _ => std::future::pending().await,
    }
}

async fn next_retired(retired: &mut Option<(Box<Socket>, Instant)>) -> Option<Event> {
    match retired {
        Some((ws, _)) => ws.recv().await,
        None => std::future::pending().await,
    }
}

struct Call<'a> {
    plan: &'a Plan,
    room: String,
    url: String,
    peers: [Peer; 2],
    /// `dirs[i]`: the messages `peers[i]` sent.
    dirs: [Direction; 2],
    quiet: bool,
    phase: Phase,
    end_at: Instant,
    drop_at: Option<Instant>,
    /// Errors until then may be caused by a drop of this room's own socket (far ahead while
    /// a dropped socket is not back).
    own_drop_until: Option<Instant>,
    /// When this room's sockets were dropped on purpose (the marks of [`Direction::disrupt`]).
    own_drops_us: Vec<u64>,
    /// A quiet call's check (one message each way) before leaving.
    checked: bool,
    broken: bool,
    rng: &'a mut Rng,
    run: &'a mut SlotRun,
}

impl<'a> Call<'a> {
    fn new(
        plan: &'a Plan,
        room: String,
        a: Peer,
        b: Peer,
        rng: &'a mut Rng,
        run: &'a mut SlotRun,
    ) -> Call<'a> {
        let now = Instant::now();
        let length = rng.between(plan.call_min, plan.call_max);
        let quiet = rng.chance(plan.quiet_share);
        let drop_at = plan.drop_every.map(|mean| now + rng.exp(mean));
        let url = plan.room_url(&room);
        let mut call = Call {
            plan,
            room,
            url,
            peers: [a, b],
            dirs: [Direction::default(), Direction::default()],
            quiet,
            phase: Phase::Steady,
            end_at: (now + length).min(plan.stop_at),
            drop_at,
            own_drop_until: None,
            own_drops_us: Vec::new(),
            checked: !quiet,
            broken: false,
            rng,
            run,
        };
        for i in 0..2 {
            call.peers[i].message_at = now + call.rng.exp(plan.message_every);
        }
        call
    }

    fn now_ms(&self) -> u64 {
        self.plan.clock.ms(Instant::now())
    }

    fn own_drop(&self, now: Instant) -> bool {
        self.own_drop_until.is_some_and(|until| now <= until)
    }

    fn incident(&mut self, kind: Kind) {
        let now = Instant::now();
        let own = self.own_drop(now);
        self.run
            .incidents
            .push(Incident::at(kind, self.plan.clock.ms(now), own));
    }

    /// Whether peer `i` has left (sent `leave` or its close): it sends nothing more.
    fn leaving(&self, i: usize) -> bool {
        matches!(self.phase, Phase::Leaving { leaver, .. } if leaver == i)
    }

    /// Both sockets up and neither waiting for the other's `peer-joined`.
    fn whole(&self) -> bool {
        self.peers
            .iter()
            .all(|p| p.up() && p.expect_joined.is_none())
    }

    /// A socket of the room went down (`own`: dropped on purpose): what is in flight may be
    /// lost.
    fn disrupt(&mut self, own: bool) {
        let us = self.plan.clock.us(Instant::now());
        for dir in &mut self.dirs {
            dir.disrupt(us);
        }
        if own {
            self.own_drops_us.push(us);
        }
    }

    async fn run(&mut self) {
        while self.phase != Phase::Done {
            let deadline = self.next_deadline();
            let step = {
                let [p0, p1] = &mut self.peers;
                tokio::select! {
                    e = on_link(&mut p0.link) => Step::Link(0, e),
                    e = on_link(&mut p1.link) => Step::Link(1, e),
                    m = next_retired(&mut p0.retired) => Step::Retired(0, m),
                    m = next_retired(&mut p1.retired) => Step::Retired(1, m),
                    _ = tokio::time::sleep_until(deadline.into()) => Step::Tick,
                }
            };
            match step {
                Step::Link(i, LinkEvent::Event(e)) => self.on_socket(i, e).await,
                Step::Link(i, LinkEvent::Connected(r)) => self.on_connected(i, r),
                Step::Retired(i, m) => self.on_retired(i, m),
                Step::Tick => {}
            }
            self.on_time().await;
        }
        self.finish().await;
    }

    /// The earliest time something is due.
    fn next_deadline(&self) -> Instant {
        let p = self.plan;
        // A state change (a frame, a welcome) may make something due at once: look again
        // soon even if nothing below is.
        let mut next = Instant::now() + Duration::from_millis(500);
        let mut at = |t: Instant| next = next.min(t);
        let whole = self.whole();
        for (i, peer) in self.peers.iter().enumerate() {
            match &peer.link {
                Link::Up(_) if self.leaving(i) => {}
                Link::Up(_) => match peer.ping_out {
                    Some(sent) => at(sent + p.pong_timeout),
                    None => at(peer.ping_at),
                },
                // Only one socket of a room reconnects at a time.
                Link::Down { retry_at, .. } if !self.peers[1 - i].connecting() => at(*retry_at),
                _ => {}
            }
            if let Some((_, until)) = &peer.retired {
                at(*until);
            }
            if let Some(since) = peer.expect_joined {
                at(since + p.timeout);
            }
            if whole && self.phase == Phase::Steady && !self.quiet {
                at(peer.message_at);
            }
        }
        match self.phase {
            Phase::Steady => {
                at(self.end_at);
                if let Some(drop_at) = self.drop_at {
                    at(drop_at);
                }
            }
            Phase::Draining { until } | Phase::Leaving { until, .. } => at(until),
            Phase::Done => {}
        }
        next
    }

    async fn send(&mut self, i: usize, text: String) -> bool {
        let Link::Up(ws) = &mut self.peers[i].link else {
            return false;
        };
        match ws.send_text(text).await {
            Ok(()) => true,
            Err(e) => {
                let how = format!("send: {e}").chars().take(66).collect();
                self.lost(i, Kind::ConnectionLost(how));
                false
            }
        }
    }

    /// Does what is due now.
    async fn on_time(&mut self) {
        let now = Instant::now();
        if self.own_drop_until.is_some_and(|t| t > now + DROP_SETTLE) && self.whole() {
            self.own_drop_until = Some(now + DROP_SETTLE);
        }
        for i in 0..2 {
            self.peer_due(i, now).await;
        }
        if self.phase == Phase::Steady {
            self.steady_due(now).await;
        }
        if let Phase::Draining { until } = self.phase {
            self.drain_due(now, until).await;
        }
        self.leaving_due(now);
    }

    /// Peer `i`'s keep-alive, reconnect and waits.
    async fn peer_due(&mut self, i: usize, now: Instant) {
        let p = self.plan;
        // Keep-alive, until the peer leaves.
        if self.peers[i].up() && !self.leaving(i) {
            let ping_out = self.peers[i].ping_out;
            match ping_out {
                Some(sent) if now >= sent + p.pong_timeout => {
                    let own = self.own_drop(sent);
                    self.run.incidents.push(Incident {
                        kind: Kind::PongTimeout,
                        from_ms: p.clock.ms(sent),
                        to_ms: p.clock.ms(now),
                        own_drop: own,
                    });
                    // As the bundled client does: give up on the socket and resume.
                    self.go_down(i, now);
                }
                None if now >= self.peers[i].ping_at
                    && self.send(i, ClientFrame::Ping.to_text()).await =>
                {
                    self.peers[i].ping_out = Some(now);
                    self.run.pings += 1;
                }
                _ => {}
            }
        }
        // Reconnect, one socket of the room at a time: the one that comes back second
        // finds the first up, so exactly the first gets `peer-joined`.
        let j = 1 - i;
        if let Link::Down {
            since,
            deliberate,
            retry_at,
            attempt,
        } = self.peers[i].link
        {
            if now >= retry_at && !self.peers[j].connecting() {
                let by_subprotocol = self.rng.pick() == 0;
                let welcome = resume(&self.url, &self.peers[i].token, by_subprotocol, p.timeout);
                self.peers[i].link = Link::Connecting {
                    since,
                    deliberate,
                    attempt,
                    welcome,
                };
            }
        }
        if let Some((_, until)) = &self.peers[i].retired {
            if now >= *until {
                self.peers[i].retired = None;
                self.incident(Kind::Timeout("close 4000 of the replaced socket"));
            }
        }
        if let Some(since) = self.peers[i].expect_joined {
            if now >= since + p.timeout {
                self.peers[i].expect_joined = None;
                self.incident(Kind::Timeout("peer-joined"));
            }
        }
    }

    /// Messages, drops and the call's end, while the call is steady.
    async fn steady_due(&mut self, now: Instant) {
        let p = self.plan;
        // Messages, only while the room is whole: a message to an away peer is refused.
        if !self.quiet {
            for i in 0..2 {
                if self.whole() && now >= self.peers[i].message_at {
                    self.send_probe(i).await;
                    self.peers[i].message_at = now + self.rng.exp(p.message_every);
                }
            }
        }
        if let Some(drop_at) = self.drop_at {
            if now >= drop_at {
                match (self.whole(), p.drop_every) {
                    (true, Some(mean)) => {
                        self.drop_one().await;
                        self.drop_at = Some(now + self.rng.exp(mean));
                    }
                    // Not now: a drop needs a whole room to resume into.
                    _ => self.drop_at = Some(now + Duration::from_secs(1)),
                }
            }
        }
        if now >= self.end_at {
            self.phase = Phase::Draining {
                until: now + 2 * p.timeout + p.resume_delay_max,
            };
        }
    }

    async fn drain_due(&mut self, now: Instant, until: Instant) {
        if !self.checked && self.whole() {
            // A quiet call checks once, each way, that the room still relays.
            self.send_probe(0).await;
            self.send_probe(1).await;
            self.checked = true;
        }
        let drained = self.whole()
            && self.checked
            && self.dirs.iter().all(|d| d.undisrupted_in_flight() == 0);
        if drained || now >= until {
            self.leave().await;
        }
    }

    fn leaving_due(&mut self, now: Instant) {
        if let Phase::Leaving {
            until,
            closed,
            told,
            ..
        } = self.phase
        {
            if closed && told {
                self.phase = Phase::Done;
            } else if now >= until {
                if !closed {
                    self.incident(Kind::Timeout("close after leave"));
                }
                if !told {
                    self.incident(Kind::Timeout("peer-left"));
                }
                self.phase = Phase::Done;
            }
        }
    }

    async fn send_probe(&mut self, i: usize) {
        let us = self.plan.clock.us(Instant::now());
        let seq = self.dirs[i].send(us);
        let probe = Probe {
            room: self.room.clone(),
            from: self.peers[i].id.clone(),
            seq,
            pad: String::new(),
        };
        let mut text = payload::frame(&probe.data());
        // `,"pad":""` is 9 bytes.
        if text.len() + 9 < self.plan.size {
            let probe = Probe {
                pad: "x".repeat(self.plan.size - text.len() - 9),
                ..probe
            };
            text = payload::frame(&probe.data());
        }
        // Counted as sent even if the socket fails under it: it is in flight either way.
        self.run.deliveries.sent += 1;
        self.send(i, text).await;
    }

    /// Drops one socket on purpose, in one of three ways; it resumes after a random delay
    /// within the grace (a replacement resumes at once).
    async fn drop_one(&mut self) {
        let now = Instant::now();
        let i = self.rng.pick();
        let kind = match self.rng.next_u64() % 3 {
            0 => DropKind::Abort,
            1 => DropKind::Close,
            _ => DropKind::Replace,
        };
        self.disrupt(true);
        self.own_drop_until = Some(now + Duration::from_secs(3600));
        let j = 1 - i;
        self.peers[j].expect_joined = None;
        self.peers[j].joined_early = false;
        self.peers[i].ping_out = None;
        let delay = self
            .rng
            .between(Duration::from_millis(100), self.plan.resume_delay_max);
        let down = Link::Down {
            since: now,
            deliberate: true,
            retry_at: now + delay,
            attempt: 0,
        };
        let Link::Up(ws) = std::mem::replace(&mut self.peers[i].link, down) else {
            return;
        };
        match kind {
            DropKind::Abort => {
                self.run.drops.abort += 1;
                drop(ws);
            }
            DropKind::Close => {
                self.run.drops.close += 1;
                // The close frame, and no wait for the answer: the socket is dropped.
                let mut ws = ws;
                let _ = ws.send_close(1001, "").await;
            }
            DropKind::Replace => {
                self.run.drops.replace += 1;
                self.peers[i].retired = Some((ws, now + self.plan.timeout));
                let by_subprotocol = self.rng.pick() == 0;
                // The slot never goes away: the server sees the resume before the old
                // socket's close. Only a restart in between starts a grace, at the wake.
                self.peers[i].link = Link::Connecting {
                    since: now,
                    deliberate: false,
                    attempt: 0,
                    welcome: resume(
                        &self.url,
                        &self.peers[i].token,
                        by_subprotocol,
                        self.plan.timeout,
                    ),
                };
            }
        }
    }

    /// Gives up on peer `i`'s socket (lost, or no pong): it reconnects after a short wait.
    fn go_down(&mut self, i: usize, now: Instant) {
        self.disrupt(false);
        self.peers[i].ping_out = None;
        self.peers[1 - i].expect_joined = None;
        self.peers[1 - i].joined_early = false;
        let wait = self
            .rng
            .between(Duration::from_millis(100), RETRY_FIRST * 4);
        self.peers[i].link = Link::Down {
            since: now,
            deliberate: false,
            retry_at: now + wait,
            attempt: 0,
        };
    }

    /// Peer `i`'s socket ended without the scenario asking for it.
    fn lost(&mut self, i: usize, kind: Kind) {
        self.incident(kind);
        self.go_down(i, Instant::now());
    }

    /// What peer `i`'s socket said: an event, or its end.
    async fn on_socket(&mut self, i: usize, event: Option<Event>) {
        let leaving = matches!(self.phase, Phase::Leaving { leaver, .. } if leaver == i);
        let close = match event {
            Some(Event::SocketClosed(close)) => close,
            Some(event) => return self.on_event(i, event).await,
            None => Close::lost("connection ended"),
        };
        let code = close_code(&close);
        match (leaving, code) {
            (true, None) => {
                let how = format!("{} after leave", Failure::Closed(None).label());
                self.incident(Kind::ConnectionLost(how));
                self.left(i);
            }
            (true, Some(code)) => {
                if code != CloseCode::Left.code() {
                    self.incident(Kind::Unexpected(format!(
                        "close {:?} after leave",
                        Some(code)
                    )));
                }
                self.left(i);
            }
            (false, code) => self.lost(i, Kind::ConnectionLost(Failure::Closed(code).label())),
        }
    }

    /// The leaver's socket is closed.
    fn left(&mut self, i: usize) {
        self.peers[i].link = Link::Gone;
        if let Phase::Leaving { ref mut closed, .. } = self.phase {
            *closed = true;
        }
    }

    async fn on_event(&mut self, i: usize, event: Event) {
        let j = 1 - i;
        let now = Instant::now();
        match event {
            Event::Pong => match self.peers[i].ping_out.take() {
                Some(sent) => {
                    self.run.pongs += 1;
                    self.run.pong_wait.record(now - sent);
                    let every = self.plan.ping_every;
                    self.peers[i].ping_at =
                        now + self.rng.between(every.mul_f64(0.9), every.mul_f64(1.1));
                }
                None => self.incident(Kind::Unexpected("pong without a ping".into())),
            },
            Event::Message { from, data } => self.on_message(i, &from, data.get()),
            Event::Frame(ServerFrame::PeerAway { client_id, .. }) => {
                let expected = client_id == self.peers[j].id
                    && (!self.peers[j].up() || self.peers[i].expect_joined.is_some());
                if expected {
                    let own = self.own_drop(now);
                    self.disrupt(own);
                } else {
                    self.incident(Kind::Unexpected("peer-away".into()));
                }
            }
            Event::Frame(ServerFrame::PeerJoined {
                client_id, resumed, ..
            }) => {
                let back = client_id == self.peers[j].id && resumed;
                if back && self.peers[i].expect_joined.is_some() {
                    self.peers[i].expect_joined = None;
                } else if back && self.peers[j].connecting() {
                    self.peers[i].joined_early = true;
                } else {
                    let what = if resumed {
                        "peer-joined (resumed)"
                    } else {
                        "peer-joined"
                    };
                    self.incident(Kind::Unexpected(what.into()));
                }
            }
            Event::Frame(ServerFrame::PeerLeft {
                client_id, reason, ..
            }) => {
                let expected = match self.phase {
                    Phase::Leaving { leaver, .. } => {
                        leaver == j && client_id == self.peers[j].id && reason == LeaveReason::Leave
                    }
                    _ => false,
                };
                if expected {
                    if let Phase::Leaving { ref mut told, .. } = self.phase {
                        *told = true;
                    }
                } else {
                    let reason = reason.as_str();
                    self.incident(Kind::Unexpected(format!("peer-left ({reason})")));
                }
            }
            Event::Frame(ServerFrame::Error { code, .. }) => {
                self.incident(Kind::Refused(code.as_str().into()));
            }
            other => self.incident(Kind::Unexpected(label(&other))),
        }
    }

    /// A relayed message at peer `i`: from the other peer, in this room, sent once.
    fn on_message(&mut self, i: usize, from: &str, data: &str) {
        let j = 1 - i;
        let us = self.plan.clock.us(Instant::now());
        let to = Receiver {
            room: &self.room,
            me: &self.peers[i].id,
            peer: &self.peers[j].id,
        };
        let delivery = check(to, from, data, &mut self.dirs[j], us);
        self.run.deliveries.add(&delivery);
        match delivery {
            Delivery::Fresh {
                latency_us,
                reordered,
            } => {
                self.run.latency.record_micros(latency_us);
                self.plan.live.delivered.fetch_add(1, Ordering::Relaxed);
                if reordered {
                    self.incident(Kind::Reordered);
                }
            }
            other => {
                if let Some(fault) = other.fault() {
                    self.incident(Kind::Misdelivered(fault));
                }
            }
        }
    }

    /// A frame on peer `i`'s replaced socket: messages relayed before the switch still
    /// count; then the server's 4000 close.
    fn on_retired(&mut self, i: usize, event: Option<Event>) {
        match event {
            Some(Event::Message { from, data }) => self.on_message(i, &from, data.get()),
            // The answer to a ping sent before the switch.
            Some(Event::Pong) => {}
            Some(Event::SocketClosed(close)) if close_code(&close).is_some() => {
                self.peers[i].retired = None;
                if close.code != CloseCode::Replaced.code() {
                    let code = close_code(&close);
                    self.incident(Kind::Unexpected(format!(
                        "close {code:?} of the replaced socket"
                    )));
                }
            }
            Some(Event::SocketClosed(_)) | None => {
                self.peers[i].retired = None;
                self.incident(Kind::Unexpected(
                    "replaced socket ended without a close".into(),
                ));
            }
            Some(other) => self.incident(Kind::Unexpected(format!(
                "{} on the replaced socket",
                label(&other)
            ))),
        }
    }

    /// A reconnect of peer `i` finished: it must have resumed its own slot.
    fn on_connected(&mut self, i: usize, result: Result<(Box<Socket>, Welcomed), Failure>) {
        let now = Instant::now();
        let Link::Connecting {
            since, deliberate, ..
        } = self.peers[i].link
        else {
            return;
        };
        let from = grace_start(since, deliberate, *self.plan.server_up.borrow());
        let took = now.saturating_duration_since(from);
        let (ws, welcomed) = match result {
            Ok(ok) => ok,
            Err(failure) => {
                if let Failure::Unexpected(_) = failure {
                    // The server answered (`full`, say) but not with the slot: a resume that
                    // failed, not a connection that did.
                    self.run.resumes.record(false, took, self.plan.grace);
                    self.incident(Kind::ResumeLostId);
                }
                self.incident(kind_of(&failure));
                self.retry_later(i, now);
                return;
            }
        };
        let kept = !welcomed.created
            && welcomed.resumed()
            && welcomed.welcome.client_id == self.peers[i].id;
        let welcome = welcomed.welcome;
        self.run.resumes.record(kept, took, self.plan.grace);
        self.plan.live.resumes.fetch_add(1, Ordering::Relaxed);
        if !kept {
            self.incident(Kind::ResumeLostId);
            self.peers[i].link = Link::Up(ws);
            self.broken = true;
            self.phase = Phase::Done;
            return;
        }
        let j = 1 - i;
        let other_down = match &self.peers[j].link {
            Link::Down { since, .. } | Link::Connecting { since, .. } => {
                Some(now.saturating_duration_since(*since))
            }
            _ => None,
        };
        // A leave processed just before a restart leaves the room rightly without the leaver.
        let other_left = matches!(self.phase, Phase::Leaving { leaver, .. } if leaver == j);
        let other = OtherPeer {
            id: &self.peers[j].id,
            down_for: other_down,
            left: other_left,
        };
        if !peers_as_expected(&welcome.peers, &other, self.plan.grace) {
            self.incident(Kind::Unexpected(format!(
                "joined (resumed) listing {} peers",
                welcome.peers.len()
            )));
        }
        let peer = &mut self.peers[i];
        peer.token = welcome.resume_token;
        peer.link = Link::Up(ws);
        peer.ping_out = None;
        peer.ping_at = now;
        let other = &mut self.peers[j];
        if std::mem::take(&mut other.joined_early) {
            // Its `peer-joined` was read before this welcome.
        } else if other.up() {
            other.expect_joined = Some(now);
        }
    }

    /// Peer `i`'s reconnect failed: try again after a backoff, or give the call up once the
    /// server had time to come back and the grace passed.
    fn retry_later(&mut self, i: usize, now: Instant) {
        let Link::Connecting {
            since,
            deliberate,
            attempt,
            ..
        } = self.peers[i].link
        else {
            return;
        };
        if now.duration_since(since) > self.plan.give_up {
            self.peers[i].link = Link::Gone;
            self.incident(Kind::ResumeGaveUp);
            self.broken = true;
            self.phase = Phase::Done;
            return;
        }
        let backoff = (RETRY_FIRST * 2u32.saturating_pow(attempt)).min(RETRY_MAX);
        let wait = self.rng.between(backoff / 2, backoff);
        self.peers[i].link = Link::Down {
            since,
            deliberate,
            retry_at: now + wait,
            attempt: attempt + 1,
        };
    }

    /// Ends the call: the leaver sends `leave` (or closes with 1000, which is the same), the
    /// other must be told `peer-left` (`leave`).
    async fn leave(&mut self) {
        let now = Instant::now();
        let leaver = self.rng.pick();
        if !self.peers.iter().all(Peer::up) {
            // Could not drain into a whole room: end without the leave's checks.
            self.incident(Kind::Timeout("drain: a socket still down"));
            self.broken = true;
            self.phase = Phase::Done;
            return;
        }
        let by_frame = self.rng.pick() == 0;
        if by_frame {
            self.send(leaver, ClientFrame::Leave.to_text()).await;
        } else {
            self.close_leaving(leaver).await;
        }
        self.phase = Phase::Leaving {
            leaver,
            until: now + self.plan.timeout,
            closed: false,
            told: false,
        };
    }

    /// Closes peer `i`'s socket with 1000 (a leave) and goes on reading it for the server's
    /// answer and what was relayed before.
    async fn close_leaving(&mut self, i: usize) {
        if let Link::Up(ws) = &mut self.peers[i].link {
            let _ = ws.send_close(1000, "").await;
        }
    }

    /// Closes what is still open and counts what never arrived.
    async fn finish(&mut self) {
        let mut open = Vec::new();
        for peer in &mut self.peers {
            if let Link::Up(ws) = std::mem::replace(&mut peer.link, Link::Gone) {
                open.push(*ws);
            }
            peer.retired = None;
        }
        futures_util::future::join_all(open.into_iter().map(close)).await;
        let now_ms = self.now_ms();
        for i in 0..2 {
            let (losses, times) = self.dirs[i].settle();
            self.run.deliveries.add_losses(losses);
            for at_us in times {
                let own = self.own_drops_us.contains(&at_us);
                self.run
                    .incidents
                    .push(Incident::at(Kind::Lost, at_us / 1000, own));
            }
            for _ in 0..losses.undisrupted {
                self.run
                    .incidents
                    .push(Incident::at(Kind::Lost, now_ms, false));
            }
        }
        if self.broken {
            self.run.calls_broken += 1;
        } else {
            self.run.calls_completed += 1;
        }
        self.plan.live.calls.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The room's other peer, as the call saw it when a resume's welcome came.
struct OtherPeer<'a> {
    id: &'a str,
    /// How long it has been down, if it is.
    down_for: Option<Duration>,
    /// Whether it left (the call is ending).
    left: bool,
}

/// Where the server's grace for a slot whose socket went down at `since` starts, as the client
/// can tell; `server_up` is when the server last came back from a restart. A deliberate drop
/// (abort, close 1001) reaches the server, which stores the deadline from then: a restart
/// does not move it. A socket lost without the client's doing (a kill, say) leaves the slot
/// connected in storage, and the server counts it away only from when it wakes the room.
fn grace_start(since: Instant, deliberate: bool, server_up: Instant) -> Instant {
    if deliberate {
        since
    } else {
        since.max(server_up)
    }
}

/// Whether a resumed welcome lists the room's other peer as it should: always, unless that
/// peer left, or has been down for longer than the grace, when the server may have released
/// its slot (a slot dropped just before a restart keeps the deadline of its drop).
fn peers_as_expected(listed: &[String], other: &OtherPeer, grace: Duration) -> bool {
    match listed {
        [only] => only == other.id,
        [] => other.left || other.down_for.is_some_and(|down| down > grace),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{grace_start, label, peers_as_expected, resume_dial, OtherPeer};
    use duet_client::Event;
    use std::time::{Duration, Instant};

    #[test]
    fn resumes_offer_the_token_as_a_subprotocol_or_in_the_query() {
        let limit = Duration::from_secs(1);
        let sub = resume_dial("ws://127.0.0.1:1/ws/r", "ab12", true, limit);
        assert_eq!(sub.subprotocols(), "duet.v1, duet.resume.ab12");
        let query = resume_dial("ws://127.0.0.1:1/ws/r", "ab12", false, limit);
        assert_eq!(query.subprotocols(), "duet.v1");
        assert!(query.resume_in_query);
        assert_eq!(query.resume.as_deref(), Some("ab12"));
    }

    #[test]
    fn incidents_name_events_with_what_the_soak_checks() {
        let cases = [
            (
                r#"{"type":"joined","version":1,"room":"r","clientId":"b","resumeToken":"u","iceServers":[],"iceServersExpireAt":null,"maxPeers":2,"maxMessageBytes":65536,"peers":["a"],"resumed":true}"#,
                "joined (resumed)",
            ),
            (
                r#"{"type":"peer-joined","room":"r","clientId":"b","resumed":true}"#,
                "peer-joined (resumed)",
            ),
            (
                r#"{"type":"peer-joined","room":"r","clientId":"b","resumed":false}"#,
                "peer-joined",
            ),
            (
                r#"{"type":"peer-left","room":"r","clientId":"a","reason":"timeout"}"#,
                "peer-left (timeout)",
            ),
            (
                r#"{"type":"error","code":"no-peer","message":"…"}"#,
                "error:no-peer",
            ),
            (r#"{"type":"full","room":"r","maxPeers":2}"#, "full"),
            (r#"{"type":"future"}"#, "future"),
        ];
        for (text, name) in cases {
            assert_eq!(label(&Event::decode(text)), name, "{text}");
        }
    }

    #[test]
    fn a_deliberate_drop_keeps_its_grace_across_a_restart() {
        let t0 = Instant::now();
        let drop = t0 + Duration::from_secs(1);
        let up = t0 + Duration::from_secs(12);
        // Dropped before the kill: the server stored the deadline from the drop.
        assert_eq!(grace_start(drop, true, up), drop);
        // Lost to the kill: the server counts the slot away from its wake.
        assert_eq!(grace_start(drop, false, up), up);
        // No restart since: from the drop either way.
        assert_eq!(grace_start(drop, false, t0), drop);
        assert_eq!(grace_start(drop, true, t0), drop);
    }

    #[test]
    fn the_other_peer_may_be_missing_only_after_its_grace_or_its_leave() {
        let grace = Duration::from_secs(15);
        let listed = ["b".to_owned()];
        let peer = |secs: Option<u64>, left| OtherPeer {
            id: "b",
            down_for: secs.map(Duration::from_secs),
            left,
        };
        assert!(peers_as_expected(&listed, &peer(None, false), grace));
        assert!(peers_as_expected(&listed, &peer(Some(20), false), grace));
        assert!(peers_as_expected(&[], &peer(Some(16), false), grace));
        assert!(peers_as_expected(&[], &peer(None, true), grace));
        assert!(!peers_as_expected(&[], &peer(Some(15), false), grace));
        assert!(!peers_as_expected(&[], &peer(None, false), grace));
        assert!(!peers_as_expected(
            &["c".to_owned()],
            &peer(Some(20), true),
            grace
        ));
        let twice = ["b".to_owned(), "b".to_owned()];
        assert!(!peers_as_expected(&twice, &peer(None, false), grace));
    }
}
