//! A native peer for the Duet app: joins a room with `duet-client` and answers (or starts) the
//! browser app's call with str0m, a sans-IO WebRTC stack in Rust.
//!
//! ```text
//! cargo run -p duet-client --example native-peer -- --url http://127.0.0.1:8787 --room my-room [--key SECRET]
//! ```
//!
//! - `--key` is the secret of a `#k=` link: signaling is then end-to-end encrypted
//!   (docs/e2e.md), the key confirmed with the page, and the safety code printed is the one the
//!   page shows;
//! - it receives the app's video and counts its frames, and it chats with the app over the
//!   data channel: each line on standard input is sent, `--say TEXT` sends one line as soon as
//!   the channel opens, and each message from the app is printed as `chat: TEXT`;
//! - `--ip ADDR` is the address of its host candidate (default: the one with a route out, else
//!   127.0.0.1). It gathers no STUN or TURN candidates: it reaches peers it can route to.
//!
//! Each line it prints starts with what it reports (`connected`, `video frames: 30`,
//! `safety code: 123 456`, …), for people and for `test/browser/native-peer.test.mjs`.

mod peer;

use std::net::{IpAddr, Ipv4Addr, UdpSocket as StdUdpSocket};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use duet_client::e2e::{EnvelopeCodec, PlainCodec};
use duet_client::protocol::ServerFrame;
use duet_client::{Client, Config, Event};
use peer::{Peer, Report, Step};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::net::UdpSocket;

const USAGE: &str = "usage: native-peer --url <server> --room <room> [--key <secret of a #k= link>] [--say <text>] [--ip <address>]";

struct Args {
    url: String,
    room: String,
    key: Option<String>,
    say: Option<String>,
    ip: Option<IpAddr>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let (mut url, mut room, mut key, mut say, mut ip) = (None, None, None, None, None);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        match flag.as_str() {
            "--url" => url = Some(value()?),
            "--room" => room = Some(value()?),
            "--key" => key = Some(value()?),
            "--say" => say = Some(value()?),
            "--ip" => ip = Some(value()?.parse().map_err(|e| format!("--ip: {e}"))?),
            _ => return Err(format!("unknown argument {flag}")),
        }
    }
    match (url, room) {
        (Some(url), Some(room)) => Ok(Args {
            url,
            room,
            key,
            say,
            ip,
        }),
        _ => Err("--url and --room are required".into()),
    }
}

/// The local address packets to the outside would leave from (no packet is sent), else loopback.
fn host_ip() -> IpAddr {
    let routed = StdUdpSocket::bind("0.0.0.0:0")
        .and_then(|s| s.connect("192.0.2.1:9").and_then(|()| s.local_addr()));
    match routed {
        Ok(addr) if !addr.ip().is_unspecified() => addr.ip(),
        _ => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("no runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(problem) => {
            eprintln!("native-peer: {problem}");
            ExitCode::FAILURE
        }
    }
}

fn config(args: &Args) -> Result<Config, String> {
    let config = Config::new(&args.url, &args.room).map_err(|e| e.to_string())?;
    Ok(match &args.key {
        Some(secret) => {
            config.codec(EnvelopeCodec::new(secret, &args.room).map_err(|e| format!("--key: {e}"))?)
        }
        None => config.codec(PlainCodec),
    })
}

async fn run(args: Args) -> Result<(), String> {
    str0m::crypto::from_feature_flags().install_process_default();
    let config = config(&args)?;
    let socket = UdpSocket::bind((args.ip.unwrap_or_else(host_ip), 0))
        .await
        .map_err(|e| format!("udp: {e}"))?;
    let local = socket.local_addr().map_err(|e| format!("udp: {e}"))?;
    println!(
        "host candidate: {local}{}",
        if args.key.is_some() {
            " (signaling end-to-end encrypted)"
        } else {
            ""
        }
    );
    let mut state = State {
        peer: Peer::new(local),
        client_id: String::new(),
        say: args.say.clone(),
    };
    let mut client = Client::connect(config);
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut buf = vec![0u8; 2048];
    let mut wake = Instant::now() + Duration::from_secs(1);
    loop {
        let mut step = Step::default();
        tokio::select! {
            event = client.next_event() => match event {
                Some(event) => {
                    if !state.on_event(event, &mut step)? {
                        return Ok(());
                    }
                }
                None => return Ok(()),
            },
            received = socket.recv_from(&mut buf) => {
                let (n, source) = received.map_err(|e| format!("udp: {e}"))?;
                state.peer.receive(source, &buf[..n], &mut step);
            }
            line = stdin.next_line(), if stdin_open => match line {
                Ok(Some(line)) => state.peer.say(&line),
                _ => stdin_open = false,
            },
            () = tokio::time::sleep_until(wake.into()) => {}
        }
        wake = state
            .peer
            .tick(&mut step)
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(1));
        for (destination, datagram) in step.transmit.drain(..) {
            // A datagram that cannot go out is lost, as on any network; ICE retries.
            let _ = socket.send_to(&datagram, destination).await;
        }
        for signal in step.signals.drain(..) {
            if let Err(e) = client.send(&signal).await {
                println!("signal not sent: {e}");
            }
        }
        for report in step.reports.drain(..) {
            state.print(report);
        }
    }
}

struct State {
    peer: Peer,
    client_id: String,
    say: Option<String>,
}

impl State {
    /// One signaling event; `false` when the connection is over for good.
    fn on_event(&mut self, event: Event, step: &mut Step) -> Result<bool, String> {
        match event {
            Event::Frame(frame) => self.on_frame(frame, step)?,
            Event::Message { data, .. } => {
                let data: Value =
                    serde_json::from_str(data.get()).map_err(|e| format!("message: {e}"))?;
                if let Err(problem) = self.peer.on_message(&data, step) {
                    println!("signal refused: {problem}");
                }
            }
            Event::E2eConfirmed { .. } => {
                println!("key confirmed: the page's link has the same key")
            }
            Event::E2eError {
                reason, message, ..
            } => println!("e2e error: {reason} ({message})"),
            Event::Reconnecting { delay, .. } => println!("reconnecting in {delay:?}"),
            Event::Reconnected { resumed, .. } => {
                println!("reconnected (resumed: {resumed})");
                if resumed {
                    self.peer.resend_pending_offer(step);
                }
            }
            Event::Refused(refused) => println!("refused: {refused:?}"),
            Event::Closed(close) => {
                println!("closed: {close:?}");
                return Ok(false);
            }
            _ => {}
        }
        Ok(true)
    }

    fn on_frame(&mut self, frame: ServerFrame, step: &mut Step) -> Result<(), String> {
        match frame {
            ServerFrame::Created(welcome) => {
                self.client_id = welcome.client_id;
                println!(
                    "created room {}: waiting for the other person",
                    welcome.room
                );
            }
            ServerFrame::Joined(welcome) => {
                self.client_id = welcome.client_id;
                println!("joined room {}", welcome.room);
            }
            ServerFrame::Ready { initiator, .. } => {
                let starts = initiator == self.client_id;
                println!(
                    "ready: {}",
                    if starts {
                        "starting the call"
                    } else {
                        "answering the call"
                    }
                );
                self.peer.ready(starts, step)?;
                if let Some(text) = self.say.take() {
                    self.peer.say(&text);
                }
            }
            ServerFrame::PeerJoined { resumed: false, .. } => self.peer.close(),
            ServerFrame::PeerJoined { resumed: true, .. } => self.peer.resend_pending_offer(step),
            ServerFrame::PeerLeft { reason, .. } => {
                println!("peer left ({reason:?})");
                self.peer.close();
            }
            ServerFrame::Full { .. } => println!("the room is full"),
            _ => {}
        }
        Ok(())
    }

    fn print(&self, report: Report) {
        match report {
            Report::Connected => println!("connected"),
            Report::ChannelOpen => println!("channel open"),
            Report::Chat(text) => println!("chat: {text}"),
            Report::PeerState(state) => println!("peer state: {state}"),
            // The first frame, then every 30th (about a second of the app's video).
            Report::VideoFrames(n) if n == 1 || n % 30 == 0 => println!("video frames: {n}"),
            Report::VideoFrames(_) => {}
            Report::SafetyCode(code) => println!("safety code: {code}"),
            Report::Disconnected => println!("disconnected"),
        }
    }
}
