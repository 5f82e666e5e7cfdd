//! A client's report of how its call's media connected (`docs/protocol.md`, "Reports"): the
//! `report` frame, parsed and checked here. The room turns an accepted report into a log line
//! and a `call.connected` or `call.failed` webhook. A report names a path and a transport,
//! never an address: nothing in it is taken over but the checked fields below.

use crate::protocol::ErrorCode;
use serde::Deserialize;

/// The longest `report` frame accepted.
pub const MAX_REPORT_BYTES: usize = 512;
/// Reports one slot may make; more are refused with `rate-limited`.
pub const MAX_REPORTS_PER_SLOT: u8 = 8;
/// The longest time to connect a report may give (10 minutes).
pub const MAX_CONNECT_MS: u64 = 600_000;
/// The most ICE restarts a report may count.
pub const MAX_ICE_RESTARTS: u32 = 1_000;

/// How the media path ended up, as the client saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Media flows, over this path and transport.
    Connected { path: Path, transport: Transport },
    /// The client gave up on connecting.
    Failed,
}

/// Whether media goes straight between the peers or through a TURN relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    Direct,
    Relay,
}

/// The transport of the local candidate in use: with a relay, the one to the TURN server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
    Tls,
}

/// One checked report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Report {
    pub outcome: Outcome,
    /// From `ready` (or the last resume) until media flowed or the client gave up.
    pub connect_ms: u64,
    pub ice_restarts: u32,
}

/// The report's fields as sent; unknown fields are ignored like in every frame.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Fields<'a> {
    outcome: &'a str,
    #[serde(default)]
    path: Option<&'a str>,
    #[serde(default)]
    transport: Option<&'a str>,
    connect_ms: u64,
    ice_restarts: u32,
}

impl Report {
    /// Reads a `report` frame; every refusal is `bad-report`.
    pub fn parse(text: &str) -> Result<Report, ErrorCode> {
        if text.len() > MAX_REPORT_BYTES {
            return Err(ErrorCode::BadReport);
        }
        let fields: Fields = serde_json::from_str(text).map_err(|_| ErrorCode::BadReport)?;
        let outcome = match (fields.outcome, fields.path, fields.transport) {
            ("connected", Some(path), Some(transport)) => Outcome::Connected {
                path: parse_path(path)?,
                transport: parse_transport(transport)?,
            },
            ("failed", None, None) => Outcome::Failed,
            _ => return Err(ErrorCode::BadReport),
        };
        if fields.connect_ms > MAX_CONNECT_MS || fields.ice_restarts > MAX_ICE_RESTARTS {
            return Err(ErrorCode::BadReport);
        }
        Ok(Report {
            outcome,
            connect_ms: fields.connect_ms,
            ice_restarts: fields.ice_restarts,
        })
    }
}

impl Report {
    /// The `report` frame as a client sends it; [`Report::parse`] reads it back.
    pub fn to_text(&self) -> String {
        let mut text = String::from(r#"{"type":"report","outcome":"#);
        match self.outcome {
            Outcome::Connected { path, transport } => text.push_str(&format!(
                r#""connected","path":"{}","transport":"{}""#,
                path.as_str(),
                transport.as_str()
            )),
            Outcome::Failed => text.push_str(r#""failed""#),
        }
        text.push_str(&format!(
            r#","connectMs":{},"iceRestarts":{}}}"#,
            self.connect_ms, self.ice_restarts
        ));
        text
    }
}

fn parse_path(path: &str) -> Result<Path, ErrorCode> {
    match path {
        "direct" => Ok(Path::Direct),
        "relay" => Ok(Path::Relay),
        _ => Err(ErrorCode::BadReport),
    }
}

fn parse_transport(transport: &str) -> Result<Transport, ErrorCode> {
    match transport {
        "udp" => Ok(Transport::Udp),
        "tcp" => Ok(Transport::Tcp),
        "tls" => Ok(Transport::Tls),
        _ => Err(ErrorCode::BadReport),
    }
}

impl Path {
    pub fn as_str(self) -> &'static str {
        match self {
            Path::Direct => "direct",
            Path::Relay => "relay",
        }
    }
}

impl Transport {
    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
        }
    }
}

impl Outcome {
    /// The log line's `reason`: `direct-udp` … `relay-tls`, or `failed`.
    pub fn summary(self) -> &'static str {
        use {Path::*, Transport::*};
        match self {
            Outcome::Failed => "failed",
            Outcome::Connected { path, transport } => match (path, transport) {
                (Direct, Udp) => "direct-udp",
                (Direct, Tcp) => "direct-tcp",
                (Direct, Tls) => "direct-tls",
                (Relay, Udp) => "relay-udp",
                (Relay, Tcp) => "relay-tcp",
                (Relay, Tls) => "relay-tls",
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_connected_and_a_failed_report_parse() {
        let connected = r#"{"type":"report","outcome":"connected","path":"relay","transport":"tcp","connectMs":1834,"iceRestarts":1,"extra":"ignored"}"#;
        assert_eq!(
            Report::parse(connected),
            Ok(Report {
                outcome: Outcome::Connected {
                    path: Path::Relay,
                    transport: Transport::Tcp
                },
                connect_ms: 1834,
                ice_restarts: 1,
            })
        );
        let failed = r#"{"type":"report","outcome":"failed","connectMs":30000,"iceRestarts":2}"#;
        assert_eq!(
            Report::parse(failed).map(|r| r.outcome),
            Ok(Outcome::Failed)
        );
        assert_eq!(Outcome::Failed.summary(), "failed");
    }

    #[test]
    fn anything_else_is_a_bad_report() {
        let base = r#""type":"report","connectMs":1,"iceRestarts":0"#;
        for bad in [
            format!(r#"{{{base}}}"#),
            format!(r#"{{{base},"outcome":"connected"}}"#),
            format!(r#"{{{base},"outcome":"connected","path":"direct"}}"#),
            format!(r#"{{{base},"outcome":"connected","path":"p2p","transport":"udp"}}"#),
            format!(r#"{{{base},"outcome":"connected","path":"direct","transport":"quic"}}"#),
            format!(r#"{{{base},"outcome":"failed","path":"direct","transport":"udp"}}"#),
            format!(r#"{{{base},"outcome":"maybe"}}"#),
            r#"{"type":"report","outcome":"failed","connectMs":600001,"iceRestarts":0}"#.into(),
            r#"{"type":"report","outcome":"failed","connectMs":-1,"iceRestarts":0}"#.into(),
            r#"{"type":"report","outcome":"failed","connectMs":1.5,"iceRestarts":0}"#.into(),
            r#"{"type":"report","outcome":"failed","connectMs":1,"iceRestarts":1001}"#.into(),
            r#"{"type":"report","outcome":"failed","connectMs":1}"#.into(),
            format!(
                r#"{{"type":"report","outcome":"failed","connectMs":1,"iceRestarts":0,"pad":"{}"}}"#,
                "x".repeat(MAX_REPORT_BYTES)
            ),
        ] {
            assert_eq!(Report::parse(&bad), Err(ErrorCode::BadReport), "{bad}");
        }
    }
}
