//! The WebRTC side of the native peer: one str0m `Rtc` per peer connection, spoken to the way
//! the app's `call.js` and `negotiation.js` speak. Sans-IO: [`Peer`] takes signals, UDP
//! datagrams and the time, and hands back signals to send and datagrams to transmit.
//!
//! The app's rules this follows (`public/js/call.js`, "Messages between the peers"):
//! - signals are `{kind:"signal", pc, to, description | candidate}`; `pc` is the sender's peer
//!   connection id, `to` the one of ours it answers (null at first). A signal from a peer
//!   connection we have not seen starts ours afresh; one addressed to a connection we no longer
//!   have is dropped;
//! - perfect negotiation: `ready`'s initiator is impolite and offers at once. Here the polite
//!   side never offers (so it never collides), and str0m's `accept_offer` rolls back a pending
//!   offer of ours, which is what a polite side does; the impolite side ignores a colliding offer;
//! - one data channel, negotiated with id 0 and label `duet`, carries `{"kind":"chat","text"}`
//!   and `{"kind":"state","mic","camera","screen"}` as JSON text.

use std::net::SocketAddr;
use std::time::Instant;

use duet_client::e2e::sas;
use serde_json::{json, Value};
use str0m::change::{SdpAnswer, SdpOffer, SdpPendingOffer};
use str0m::channel::{ChannelConfig, ChannelId};
use str0m::media::{Direction, MediaKind, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, IceConnectionState, Input, Output, Rtc};

/// The app's limit on a chat message (`CHAT_MAX_CHARS` of call.js).
const CHAT_MAX_CHARS: usize = 2000;

/// What the peer reports, for the main loop to print or act on.
#[derive(Debug, PartialEq)]
pub enum Report {
    Connected,
    ChannelOpen,
    Chat(String),
    PeerState(String),
    VideoFrames(u64),
    SafetyCode(String),
    Disconnected,
}

/// What one step produced.
#[derive(Default)]
pub struct Step {
    /// `data` values to send to the other peer as signaling messages.
    pub signals: Vec<Value>,
    pub transmit: Vec<(SocketAddr, Vec<u8>)>,
    pub reports: Vec<Report>,
}

struct Connection {
    rtc: Rtc,
    id: String,
    remote_id: Option<String>,
    channel: Option<ChannelId>,
    pending: Option<SdpPendingOffer>,
    local_sdp: Option<String>,
    remote_sdp: Option<String>,
    video_mids: Vec<Mid>,
}

pub struct Peer {
    local: SocketAddr,
    conn: Option<Connection>,
    polite: bool,
    frames: u64,
    safety_code: Option<String>,
    /// Chat to send once the channel is open.
    queued_chat: Vec<String>,
}

impl Peer {
    /// A peer whose host candidate is `local` (the address of its UDP socket).
    pub fn new(local: SocketAddr) -> Peer {
        Peer {
            local,
            conn: None,
            polite: true,
            frames: 0,
            safety_code: None,
            queued_chat: Vec::new(),
        }
    }

    /// `ready` paired us: the initiator offers at once, the other side waits for its offer.
    pub fn ready(&mut self, initiator: bool, step: &mut Step) -> Result<(), String> {
        self.close();
        self.polite = !initiator;
        if initiator {
            self.start(step)?;
            self.offer(step)?;
        }
        Ok(())
    }

    /// The other person left (or a new one came): no peer connection until the next `ready`.
    pub fn close(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            conn.rtc.disconnect();
        }
        self.safety_code = None;
    }

    /// A relayed message from the other peer (already opened, with a key).
    pub fn on_message(&mut self, data: &Value, step: &mut Step) -> Result<(), String> {
        if data.get("kind").and_then(Value::as_str) != Some("signal") {
            return Ok(()); // `keyframe` requests: we send no video
        }
        let Some(pc) = data.get("pc").and_then(Value::as_str) else {
            return Ok(());
        };
        let to = data.get("to").and_then(Value::as_str);
        let ours = self.conn.as_ref().map(|c| c.id.as_str());
        if to.is_some() && to != ours {
            return Ok(()); // for a peer connection we no longer have
        }
        let known = self.conn.as_ref().map(|c| c.remote_id.as_deref());
        if matches!(known, None | Some(Some(_))) && known != Some(Some(pc)) {
            self.start(step)?;
        }
        if let Some(conn) = self.conn.as_mut() {
            conn.remote_id.get_or_insert_with(|| pc.to_owned());
        }
        if let Some(description) = data.get("description") {
            self.on_description(description, step)?;
        } else if let Some(candidate) = data
            .get("candidate")
            .and_then(|c| c.get("candidate"))
            .and_then(Value::as_str)
        {
            if !candidate.is_empty() {
                let candidate =
                    Candidate::from_sdp_string(candidate).map_err(|e| format!("candidate: {e}"))?;
                if let Some(conn) = self.conn.as_mut() {
                    conn.rtc.add_remote_candidate(candidate);
                }
            }
        }
        self.poll(step);
        Ok(())
    }

    fn on_description(&mut self, description: &Value, step: &mut Step) -> Result<(), String> {
        let kind = description
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or("");
        let sdp = description
            .get("sdp")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_owned();
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        match kind {
            "offer" => {
                // A colliding offer: the impolite side ignores it; the polite one rolls back.
                if conn.pending.is_some() && !self.polite {
                    return Ok(());
                }
                conn.pending = None;
                let offer = SdpOffer::from_sdp_string(&sdp).map_err(|e| format!("offer: {e}"))?;
                let answer = conn
                    .rtc
                    .sdp_api()
                    .accept_offer(offer)
                    .map_err(|e| format!("offer: {e}"))?;
                if conn.channel.is_none() {
                    let config = channel_config();
                    conn.channel = Some(conn.rtc.direct_api().create_data_channel(config));
                }
                let text = answer.to_sdp_string();
                conn.remote_sdp = Some(sdp);
                conn.local_sdp = Some(text.clone());
                step.signals.push(signal(
                    conn,
                    json!({"description": {"type": "answer", "sdp": text}}),
                ));
            }
            "answer" => {
                let Some(pending) = conn.pending.take() else {
                    return Ok(());
                }; // a repeated answer
                let answer =
                    SdpAnswer::from_sdp_string(&sdp).map_err(|e| format!("answer: {e}"))?;
                conn.rtc
                    .sdp_api()
                    .accept_answer(pending, answer)
                    .map_err(|e| format!("answer: {e}"))?;
                conn.remote_sdp = Some(sdp);
            }
            _ => return Ok(()),
        }
        self.update_safety_code(step);
        Ok(())
    }

    /// A fresh peer connection (a new pairing, or the peer started afresh).
    fn start(&mut self, _step: &mut Step) -> Result<(), String> {
        self.close();
        let mut rtc = Rtc::builder().build(Instant::now());
        let host =
            Candidate::host(self.local, "udp").map_err(|e| format!("host candidate: {e}"))?;
        rtc.add_local_candidate(host);
        self.frames = 0;
        self.conn = Some(Connection {
            rtc,
            id: random_id(),
            remote_id: None,
            channel: None,
            pending: None,
            local_sdp: None,
            remote_sdp: None,
            video_mids: Vec::new(),
        });
        Ok(())
    }

    /// The initiator's offer: the chat channel, and room for the app's audio and video.
    fn offer(&mut self, step: &mut Step) -> Result<(), String> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let mut api = conn.rtc.sdp_api();
        api.add_media(MediaKind::Audio, Direction::RecvOnly, None, None, None);
        // No `MediaAdded` event comes for media we add ourselves.
        let video = api.add_media(MediaKind::Video, Direction::RecvOnly, None, None, None);
        let channel = api.add_channel_with_config(channel_config());
        let Some((offer, pending)) = api.apply() else {
            return Ok(());
        };
        conn.video_mids.push(video);
        conn.channel = Some(channel);
        conn.pending = Some(pending);
        let text = offer.to_sdp_string();
        conn.local_sdp = Some(text.clone());
        step.signals.push(signal(
            conn,
            json!({"description": {"type": "offer", "sdp": text}}),
        ));
        self.poll(step);
        Ok(())
    }

    /// After either side's signaling came back: an offer still unanswered may have been lost
    /// with the socket, so it goes again (`resendPendingOffer` of negotiation.js).
    pub fn resend_pending_offer(&mut self, step: &mut Step) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        if let (Some(_), Some(sdp)) = (&conn.pending, &conn.local_sdp) {
            step.signals.push(signal(
                conn,
                json!({"description": {"type": "offer", "sdp": sdp}}),
            ));
        }
    }

    /// A UDP datagram from `source`.
    pub fn receive(&mut self, source: SocketAddr, datagram: &[u8], step: &mut Step) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        let Ok(contents) = datagram.try_into() else {
            return;
        };
        let input = Input::Receive(
            Instant::now(),
            Receive {
                proto: Protocol::Udp,
                source,
                destination: self.local,
                contents,
            },
        );
        if conn.rtc.accepts(&input) && conn.rtc.handle_input(input).is_err() {
            step.reports.push(Report::Disconnected);
        }
        self.poll(step);
    }

    /// Time passed; returns when to call again.
    pub fn tick(&mut self, step: &mut Step) -> Option<Instant> {
        let conn = self.conn.as_mut()?;
        if conn
            .rtc
            .handle_input(Input::Timeout(Instant::now()))
            .is_err()
        {
            step.reports.push(Report::Disconnected);
        }
        self.poll(step)
    }

    /// Sends a chat message now, or once the channel opens.
    pub fn say(&mut self, text: &str) {
        let text: String = text.trim().chars().take(CHAT_MAX_CHARS).collect();
        if !text.is_empty() && !self.write(&json!({"kind": "chat", "text": text})) {
            self.queued_chat.push(text);
        }
    }

    fn write(&mut self, message: &Value) -> bool {
        let Some(conn) = self.conn.as_mut() else {
            return false;
        };
        let Some(mut channel) = conn.channel.and_then(|id| conn.rtc.channel(id)) else {
            return false;
        };
        channel.write(false, message.to_string().as_bytes()).is_ok()
    }

    fn poll(&mut self, step: &mut Step) -> Option<Instant> {
        loop {
            let output = self.conn.as_mut()?.rtc.poll_output();
            match output {
                Ok(Output::Timeout(at)) => return Some(at),
                Ok(Output::Transmit(t)) => step.transmit.push((t.destination, t.contents.to_vec())),
                Ok(Output::Event(event)) => self.on_event(event, step),
                Err(_) => {
                    step.reports.push(Report::Disconnected);
                    self.close();
                    return None;
                }
            }
        }
    }

    fn on_event(&mut self, event: Event, step: &mut Step) {
        let Some(conn) = self.conn.as_mut() else {
            return;
        };
        match event {
            Event::Connected => step.reports.push(Report::Connected),
            Event::IceConnectionStateChange(IceConnectionState::Disconnected) => {
                step.reports.push(Report::Disconnected)
            }
            Event::MediaAdded(added) if added.kind == MediaKind::Video => {
                conn.video_mids.push(added.mid)
            }
            Event::MediaData(data) if conn.video_mids.contains(&data.mid) => {
                self.frames += 1;
                step.reports.push(Report::VideoFrames(self.frames));
            }
            Event::ChannelOpen(..) => {
                step.reports.push(Report::ChannelOpen);
                // What we send, as the app tells it: no microphone, no camera.
                self.write(
                    &json!({"kind": "state", "mic": "none", "camera": "none", "screen": false}),
                );
                for text in std::mem::take(&mut self.queued_chat) {
                    self.say(&text);
                }
            }
            Event::ChannelData(data) if !data.binary => on_channel_text(&data.data, step),
            _ => {}
        }
    }

    fn update_safety_code(&mut self, step: &mut Step) {
        let Some(conn) = self.conn.as_ref() else {
            return;
        };
        let (Some(local), Some(remote)) = (&conn.local_sdp, &conn.remote_sdp) else {
            return;
        };
        let code = sas::safety_code(local, remote);
        if code != self.safety_code {
            self.safety_code.clone_from(&code);
            if let Some(code) = code {
                step.reports.push(Report::SafetyCode(code));
            }
        }
    }
}

/// Chat and the media state the app sends; photos (binary) are not shown here.
fn on_channel_text(data: &[u8], step: &mut Step) {
    let Ok(message) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    match message.get("kind").and_then(Value::as_str) {
        Some("chat") => {
            if let Some(text) = message.get("text").and_then(Value::as_str) {
                step.reports
                    .push(Report::Chat(text.chars().take(CHAT_MAX_CHARS).collect()));
            }
        }
        Some("state") => {
            let field = |name: &str| message.get(name).map(Value::to_string).unwrap_or_default();
            step.reports.push(Report::PeerState(format!(
                "mic={} camera={}",
                field("mic"),
                field("camera")
            )));
        }
        _ => {}
    }
}

/// The app's data channel: negotiated on both sides with id 0, so neither announces it.
fn channel_config() -> ChannelConfig {
    ChannelConfig {
        label: "duet".into(),
        negotiated: Some(0),
        ..Default::default()
    }
}

fn signal(conn: &Connection, body: Value) -> Value {
    let mut message = json!({"kind": "signal", "pc": conn.id, "to": conn.remote_id});
    if let (Some(m), Value::Object(b)) = (message.as_object_mut(), body) {
        m.extend(b);
    }
    message
}

/// A peer connection id; only needs to differ from the others of this call.
fn random_id() -> String {
    let mut bytes = [0u8; 16];
    if getrandom::getrandom(&mut bytes).is_err() {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        bytes = nanos.to_le_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    //! Two peers of this example call each other in memory (signals and datagrams handed over
    //! by the test, the clock the real one): the rules of call.js between them, and the safety
    //! code the same on both sides.
    use super::*;

    struct Side {
        peer: Peer,
        reports: Vec<Report>,
    }

    /// Hands each step's signals and datagrams to the other side, and ticks both, until
    /// `done` holds; nothing is lost in memory, so no retransmission timer has to run out.
    fn exchange(
        a: &mut Side,
        b: &mut Side,
        mut pending: Vec<(bool, Step)>,
        done: impl Fn(&Side, &Side) -> bool,
    ) {
        let (a_addr, b_addr) = (a.peer.local, b.peer.local);
        for _ in 0..2000 {
            if done(a, b) {
                return;
            }
            let mut next = Vec::new();
            for (from_a, step) in pending.drain(..) {
                let (to, source) = if from_a {
                    (&mut *b, a_addr)
                } else {
                    (&mut *a, b_addr)
                };
                let mut out = Step::default();
                for signal in step.signals {
                    to.peer.on_message(&signal, &mut out).unwrap();
                }
                for (_, datagram) in step.transmit {
                    to.peer.receive(source, &datagram, &mut out);
                }
                next.push((!from_a, out));
            }
            for (is_a, side) in [(true, &mut *a), (false, &mut *b)] {
                let mut out = Step::default();
                side.peer.tick(&mut out);
                next.push((is_a, out));
            }
            // Reports stay with the side that made them.
            for (is_a, step) in &mut next {
                let side = if *is_a { &mut *a } else { &mut *b };
                side.reports.append(&mut step.reports);
            }
            pending = next;
        }
        panic!("no outcome: {:?} / {:?}", a.reports, b.reports);
    }

    fn side(port: u16) -> Side {
        Side {
            peer: Peer::new(SocketAddr::from(([127, 0, 0, 1], port))),
            reports: Vec::new(),
        }
    }

    fn code(side: &Side) -> Option<&String> {
        side.reports.iter().rev().find_map(|r| {
            if let Report::SafetyCode(c) = r {
                Some(c)
            } else {
                None
            }
        })
    }

    #[test]
    fn two_peers_connect_chat_and_show_the_same_safety_code() {
        str0m::crypto::from_feature_flags().install_process_default();
        let (mut a, mut b) = (side(40001), side(40002));
        let mut first = Step::default();
        a.peer.ready(true, &mut first).unwrap();
        b.peer.ready(false, &mut Step::default()).unwrap();
        assert_eq!(first.signals.len(), 1, "the initiator offers at once");
        assert_eq!(first.signals[0]["description"]["type"], "offer");
        assert_eq!(first.signals[0]["to"], Value::Null);
        a.peer.say("hello b");
        let open = |s: &Side| s.reports.contains(&Report::ChannelOpen);
        exchange(&mut a, &mut b, vec![(true, first)], |a, b| {
            open(a) && open(b) && b.reports.contains(&Report::Chat("hello b".into()))
        });
        assert!(a.reports.contains(&Report::Connected) && b.reports.contains(&Report::Connected));
        assert!(a
            .reports
            .contains(&Report::PeerState(r#"mic="none" camera="none""#.into())));
        assert_eq!(code(&a), code(&b));
        assert!(code(&a).is_some());
    }

    #[test]
    fn an_unanswered_offer_goes_again_after_a_signaling_gap_and_an_answered_one_does_not() {
        str0m::crypto::from_feature_flags().install_process_default();
        let (mut a, mut b) = (side(40005), side(40006));
        let mut lost = Step::default();
        a.peer.ready(true, &mut lost).unwrap();
        let mut again = Step::default();
        a.peer.resend_pending_offer(&mut again);
        assert_eq!(
            again.signals, lost.signals,
            "the same offer, from the same peer connection"
        );
        let mut answer = Step::default();
        b.peer.on_message(&again.signals[0], &mut answer).unwrap();
        a.peer
            .on_message(&answer.signals[0], &mut Step::default())
            .unwrap();
        let mut none = Step::default();
        a.peer.resend_pending_offer(&mut none);
        b.peer.resend_pending_offer(&mut none);
        assert!(none.signals.is_empty());
    }

    #[test]
    fn a_signal_for_a_peer_connection_we_no_longer_have_is_dropped() {
        str0m::crypto::from_feature_flags().install_process_default();
        let (mut a, mut b) = (side(40003), side(40004));
        let mut offer = Step::default();
        a.peer.ready(true, &mut offer).unwrap();
        let mut stale = offer.signals[0].clone();
        stale["to"] = json!("an-old-peer-connection");
        let mut out = Step::default();
        b.peer.on_message(&stale, &mut out).unwrap();
        assert!(out.signals.is_empty() && b.peer.conn.is_none());
        // The real offer is answered, addressed to the offering connection.
        b.peer.on_message(&offer.signals[0], &mut out).unwrap();
        assert_eq!(out.signals[0]["description"]["type"], "answer");
        assert_eq!(out.signals[0]["to"], offer.signals[0]["pc"]);
    }
}
