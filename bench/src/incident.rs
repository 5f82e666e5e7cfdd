//! Errors seen during a soak, counted by kind and split into explained and unexplained.
//!
//! An error is *explained* when the run itself caused it: the local server was killed
//! (`--restart-every`), so its sockets ended, connects were refused until it was back and
//! messages in flight were lost; or the scenario dropped one of a room's sockets on purpose,
//! so a message in flight was lost or refused with `no-peer`. Each kind says what can explain
//! it; anything else is unexplained, and the soak passes only with none.

use serde::Serialize;
use std::collections::BTreeMap;

/// What went wrong.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// A socket the scenario did not drop ended (the text says how: `closed 1006`,
    /// `connection ended`, `socket error: …`).
    ConnectionLost(String),
    /// A connect or upgrade failed (`connect: ConnectionRefused`, `http 503`, …).
    ConnectFailed(String),
    /// No expected frame within `--timeout` (the step waited for).
    Timeout(&'static str),
    /// No pong within `--pong-timeout` of a ping.
    PongTimeout,
    /// An `error` frame from the server, by code.
    Refused(String),
    /// A frame the protocol does not send at that point (its type, and a detail).
    Unexpected(String),
    /// A message that never arrived.
    Lost,
    /// A relayed message that should never have arrived (cross-room, duplicate, …).
    Misdelivered(&'static str),
    /// A message that overtook an earlier one of the same direction.
    Reordered,
    /// A resume answered without its slot: another client id, or a refusal such as `full`.
    ResumeLostId,
    /// A reconnect that did not succeed within its attempts.
    ResumeGaveUp,
    /// A line of the server's log that reports a failure (`internal-error`, a panic).
    ServerLog(String),
    /// The server did not come back after a kill.
    RestartFailed(String),
}

impl Kind {
    pub fn label(&self) -> String {
        match self {
            Kind::ConnectionLost(how) => format!("connection lost: {how}"),
            Kind::ConnectFailed(how) => format!("connect failed: {how}"),
            Kind::Timeout(step) => format!("timeout: {step}"),
            Kind::PongTimeout => "pong timeout".into(),
            Kind::Refused(code) => format!("error frame: {code}"),
            Kind::Unexpected(what) => format!("unexpected frame: {what}"),
            Kind::Lost => "message lost".into(),
            Kind::Misdelivered(how) => format!("message misdelivered: {how}"),
            Kind::Reordered => "message reordered".into(),
            Kind::ResumeLostId => "resume lost its client id".into(),
            Kind::ResumeGaveUp => "resume gave up".into(),
            Kind::ServerLog(what) => format!("server log: {what}"),
            Kind::RestartFailed(why) => format!("restart failed: {why}"),
        }
    }

    /// Whether killing the server can cause it: every socket ends, connects fail until it is
    /// back, frames in flight are lost, and until both peers of a room are back the other is
    /// away (so a message is refused with `no-peer`, and a `peer-away` may arrive).
    fn restart_can_cause(&self) -> bool {
        match self {
            Kind::ConnectionLost(_)
            | Kind::ConnectFailed(_)
            | Kind::Timeout(_)
            | Kind::PongTimeout
            | Kind::Lost => true,
            Kind::Refused(code) => code == "no-peer",
            Kind::Unexpected(what) => what.starts_with("peer-away"),
            _ => false,
        }
    }

    /// Whether dropping one of the room's sockets on purpose can cause it: a message in
    /// flight is lost, or reaches the server after it noticed and is refused with `no-peer`.
    fn drop_can_cause(&self) -> bool {
        match self {
            Kind::Lost => true,
            Kind::Refused(code) => code == "no-peer",
            _ => false,
        }
    }
}

/// One error, over the interval it concerns (a pong timeout spans the wait; most errors are
/// an instant). Milliseconds since the run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incident {
    pub kind: Kind,
    pub from_ms: u64,
    pub to_ms: u64,
    /// The room had one of its sockets dropped on purpose, and was not whole again yet (or
    /// only just).
    pub own_drop: bool,
}

impl Incident {
    pub fn at(kind: Kind, at_ms: u64, own_drop: bool) -> Incident {
        Incident {
            kind,
            from_ms: at_ms,
            to_ms: at_ms,
            own_drop,
        }
    }
}

/// When the server was down for a restart, and settling afterwards: from the kill to some
/// time after it answered again. Milliseconds since the run started.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Window {
    pub from_ms: u64,
    pub to_ms: u64,
}

/// What explains an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cause {
    Restart,
    OwnDrop,
}

/// What explains `incident`, if anything: a restart window it overlaps, or a drop of the
/// room's own socket.
pub fn explain(incident: &Incident, restarts: &[Window]) -> Option<Cause> {
    let overlaps = restarts
        .iter()
        .any(|w| incident.from_ms <= w.to_ms && w.from_ms <= incident.to_ms);
    if overlaps && incident.kind.restart_can_cause() {
        Some(Cause::Restart)
    } else if incident.own_drop && incident.kind.drop_can_cause() {
        Some(Cause::OwnDrop)
    } else {
        None
    }
}

/// Errors counted by label, explained ones by label and cause.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Tally {
    pub unexplained: BTreeMap<String, u64>,
    pub explained_by_restart: BTreeMap<String, u64>,
    pub explained_by_drop: BTreeMap<String, u64>,
}

impl Tally {
    pub fn of(incidents: &[Incident], restarts: &[Window]) -> Tally {
        let mut tally = Tally::default();
        for incident in incidents {
            let counts = match explain(incident, restarts) {
                None => &mut tally.unexplained,
                Some(Cause::Restart) => &mut tally.explained_by_restart,
                Some(Cause::OwnDrop) => &mut tally.explained_by_drop,
            };
            *counts.entry(incident.kind.label()).or_default() += 1;
        }
        tally
    }

    pub fn unexplained_total(&self) -> u64 {
        self.unexplained.values().sum()
    }

    pub fn explained_total(&self) -> u64 {
        self.explained_by_restart.values().sum::<u64>()
            + self.explained_by_drop.values().sum::<u64>()
    }
}

/// `none`, or `label ×n` items separated by commas.
pub fn describe(counts: &BTreeMap<String, u64>) -> String {
    if counts.is_empty() {
        return "none".into();
    }
    counts
        .iter()
        .map(|(label, n)| format!("{label} ×{n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The failure a server log line reports, if any: the Worker's `internal-error` event, a
/// panic, a wasm trap, or any other error the runtime printed (wrangler marks those
/// `[ERROR]`), by its first words.
pub fn server_log_fault(line: &str) -> Option<String> {
    if line.contains(r#""event":"internal-error""#) {
        return Some("internal-error".into());
    }
    if line.contains("panicked") {
        return Some("panic".into());
    }
    if line.contains("RuntimeError") {
        return Some("wasm trap".into());
    }
    let plain = strip_ansi(line);
    let (_, message) = plain.split_once("[ERROR]")?;
    let message = message.trim().trim_start_matches("e = ");
    Some(message.chars().take(90).collect())
}

/// `text` without terminal colour codes (`ESC [ … m`).
fn strip_ansi(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const RESTART: Window = Window {
        from_ms: 120_000,
        to_ms: 150_000,
    };

    fn at(kind: Kind, ms: u64) -> Incident {
        Incident::at(kind, ms, false)
    }

    #[test]
    fn a_restart_explains_what_a_kill_does_inside_its_window_only() {
        let lost = Kind::ConnectionLost("closed 1006".into());
        assert_eq!(
            explain(&at(lost.clone(), 120_000), &[RESTART]),
            Some(Cause::Restart)
        );
        assert_eq!(
            explain(&at(lost.clone(), 150_000), &[RESTART]),
            Some(Cause::Restart)
        );
        assert_eq!(explain(&at(lost.clone(), 119_999), &[RESTART]), None);
        assert_eq!(explain(&at(lost.clone(), 150_001), &[RESTART]), None);
        assert_eq!(explain(&at(lost, 130_000), &[]), None);
        for kind in [
            Kind::ConnectFailed("connect: ConnectionRefused".into()),
            Kind::Timeout("joined"),
            Kind::Lost,
            Kind::Refused("no-peer".into()),
            Kind::Unexpected("peer-away".into()),
        ] {
            assert_eq!(
                explain(&at(kind, 130_000), &[RESTART]),
                Some(Cause::Restart)
            );
        }
    }

    #[test]
    fn a_restart_never_explains_a_protocol_fault() {
        for kind in [
            Kind::ResumeLostId,
            Kind::Misdelivered("duplicate"),
            Kind::Misdelivered("cross-room"),
            Kind::Reordered,
            Kind::Refused("rate-limited".into()),
            Kind::Unexpected("ready".into()),
            Kind::ResumeGaveUp,
            Kind::ServerLog("panic".into()),
        ] {
            let incident = Incident::at(kind.clone(), 130_000, true);
            assert_eq!(explain(&incident, &[RESTART]), None, "{kind:?}");
        }
    }

    #[test]
    fn a_pong_wait_that_overlaps_a_restart_is_explained() {
        let wait = |from_ms, to_ms| Incident {
            kind: Kind::PongTimeout,
            from_ms,
            to_ms,
            own_drop: false,
        };
        assert_eq!(
            explain(&wait(110_000, 120_000), &[RESTART]),
            Some(Cause::Restart)
        );
        assert_eq!(
            explain(&wait(150_000, 160_000), &[RESTART]),
            Some(Cause::Restart)
        );
        assert_eq!(explain(&wait(100_000, 110_000), &[RESTART]), None);
        assert_eq!(explain(&wait(150_001, 160_001), &[RESTART]), None);
    }

    #[test]
    fn an_own_drop_explains_only_losses_and_no_peer() {
        let dropped = |kind| Incident::at(kind, 10_000, true);
        assert_eq!(explain(&dropped(Kind::Lost), &[]), Some(Cause::OwnDrop));
        assert_eq!(
            explain(&dropped(Kind::Refused("no-peer".into())), &[]),
            Some(Cause::OwnDrop)
        );
        assert_eq!(explain(&at(Kind::Lost, 10_000), &[]), None);
        assert_eq!(
            explain(&dropped(Kind::ConnectionLost("closed 1006".into())), &[]),
            None
        );
        assert_eq!(explain(&dropped(Kind::Timeout("peer-joined")), &[]), None);
        assert_eq!(explain(&dropped(Kind::ResumeLostId), &[]), None);
    }

    #[test]
    fn the_tally_counts_by_label_and_cause() {
        let incidents = [
            at(
                Kind::ConnectFailed("connect: ConnectionRefused".into()),
                121_000,
            ),
            at(
                Kind::ConnectFailed("connect: ConnectionRefused".into()),
                122_000,
            ),
            Incident::at(Kind::Lost, 5_000, true),
            at(Kind::Lost, 5_000),
            at(Kind::ResumeLostId, 125_000),
        ];
        let tally = Tally::of(&incidents, &[RESTART]);
        assert_eq!(
            describe(&tally.explained_by_restart),
            "connect failed: connect: ConnectionRefused ×2"
        );
        assert_eq!(describe(&tally.explained_by_drop), "message lost ×1");
        assert_eq!(
            describe(&tally.unexplained),
            "message lost ×1, resume lost its client id ×1"
        );
        assert_eq!(tally.unexplained_total(), 2);
        assert_eq!(tally.explained_total(), 3);
        assert_eq!(describe(&Tally::default().unexplained), "none");
    }

    #[test]
    fn server_log_faults() {
        let fault = |line: &str| server_log_fault(line);
        assert_eq!(
            fault(r#"{"event":"internal-error","message":"storage"}"#).as_deref(),
            Some("internal-error")
        );
        assert_eq!(
            fault("panicked at src/room/join.rs:10:5").as_deref(),
            Some("panic")
        );
        assert_eq!(
            fault("RuntimeError: unreachable executed").as_deref(),
            Some("wasm trap")
        );
        // As wrangler prints the runtime's errors, in colour.
        let kj = "\u{1b}[31m✘ \u{1b}[41;31m[\u{1b}[41;97mERROR\u{1b}[41;31m]\u{1b}[0m \u{1b}[1me = \
                  kj/compat/http.c++:4188: failed: another message send is already in progress\u{1b}[0m";
        assert_eq!(
            fault(kj).as_deref(),
            Some("kj/compat/http.c++:4188: failed: another message send is already in progress")
        );
        assert_eq!(
            fault("✘ [ERROR] Uncaught Error: Network connection lost.").as_deref(),
            Some("Uncaught Error: Network connection lost.")
        );
        assert_eq!(fault(r#"{"event":"join","room":"r","clientId":"c"}"#), None);
        assert_eq!(
            fault("Error: getaddrinfo ENOTFOUND workers.cloudflare.com"),
            None
        );
    }
}
