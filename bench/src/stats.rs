//! Numbers a run collects: latency histograms, failures counted by kind, rates.

use hdrhistogram::Histogram;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// Highest latency a histogram tracks (10 minutes, far above any timeout); larger values are
/// clamped to it.
const MAX_MICROS: u64 = 600_000_000;

/// Latencies in microseconds, three significant digits (exact below 2 ms).
#[derive(Clone, Debug)]
pub struct Latency(Histogram<u64>);

/// A histogram reduced to what the reports show. Milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
    pub mean_ms: f64,
}

impl Default for Latency {
    fn default() -> Self {
        Self::new()
    }
}

impl Latency {
    pub fn new() -> Self {
        // The bounds are constants that hdrhistogram accepts (low >= 1, high >= 2 * low,
        // sigfig <= 5), so this cannot fail.
        let hist = Histogram::new_with_bounds(1, MAX_MICROS, 3)
            .unwrap_or_else(|e| unreachable!("constant histogram bounds: {e}"));
        Latency(hist)
    }

    pub fn record(&mut self, d: Duration) {
        let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.record_micros(micros);
    }

    pub fn record_micros(&mut self, micros: u64) {
        self.0.saturating_record(micros.clamp(1, MAX_MICROS));
    }

    pub fn merge(&mut self, other: &Latency) {
        // Same bounds on both sides, so adding cannot go out of range.
        let _ = self.0.add(&other.0);
    }

    pub fn count(&self) -> u64 {
        self.0.len()
    }

    /// `None` when nothing was recorded.
    pub fn summary(&self) -> Option<Summary> {
        if self.0.is_empty() {
            return None;
        }
        let ms = |micros: u64| micros as f64 / 1000.0;
        Some(Summary {
            count: self.0.len(),
            p50_ms: ms(self.0.value_at_quantile(0.50)),
            p99_ms: ms(self.0.value_at_quantile(0.99)),
            max_ms: ms(self.0.max()),
            mean_ms: self.0.mean() / 1000.0,
        })
    }
}

/// A histogram is reported as its summary (`null` when empty).
impl Serialize for Latency {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.summary().serialize(s)
    }
}

/// Events per second; zero for an empty interval.
pub fn rate(count: u64, elapsed: Duration) -> f64 {
    let secs = elapsed.as_secs_f64();
    if secs > 0.0 {
        count as f64 / secs
    } else {
        0.0
    }
}

/// Why one room or socket did not do what the scenario expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// TCP connect or TLS failed; the text is the I/O error kind.
    Connect(String),
    /// The upgrade was answered with this HTTP status instead of 101.
    Http(u16),
    /// The WebSocket handshake failed otherwise.
    Handshake(String),
    /// Nothing arrived within the timeout while waiting for the named step.
    Timeout(&'static str),
    /// A frame of this type arrived where another was expected (`error:<code>` for errors).
    Unexpected(String),
    /// A relayed message arrived with other data than was sent.
    WrongData,
    /// The server closed the socket with this code (`None`: no close frame, connection ended).
    Closed(Option<u16>),
    /// A WebSocket protocol or I/O error on an open socket.
    Socket(String),
}

impl Failure {
    /// The key failures are counted under.
    pub fn label(&self) -> String {
        match self {
            Failure::Connect(kind) => format!("connect: {kind}"),
            Failure::Http(status) => format!("http {status}"),
            Failure::Handshake(what) => format!("handshake: {what}"),
            Failure::Timeout(step) => format!("timeout: {step}"),
            Failure::Unexpected(kind) => format!("unexpected frame: {kind}"),
            Failure::WrongData => "wrong data relayed".to_owned(),
            Failure::Closed(Some(code)) => format!("closed {code}"),
            Failure::Closed(None) => "connection ended".to_owned(),
            Failure::Socket(what) => format!("socket error: {what}"),
        }
    }
}

/// An error's text, cut to keep failure labels few and short.
fn short(text: &str) -> String {
    text.chars().take(60).collect()
}

impl Failure {
    /// What a connect (and its welcome) failed with: a network error is the connect's.
    pub fn connect(e: duet_client::Error) -> Failure {
        match e {
            duet_client::Error::Io(kind) => Failure::Connect(format!("{kind:?}")),
            other => Failure::from(other),
        }
    }
}

impl From<duet_client::Error> for Failure {
    /// What a step on an open socket failed with.
    fn from(e: duet_client::Error) -> Failure {
        use duet_client::Error;
        match e {
            Error::Io(kind) => Failure::Socket(format!("{kind:?}")),
            Error::Tls(tls) => Failure::Connect(short(&format!("tls: {tls}"))),
            Error::Http { status, .. } => Failure::Http(status),
            Error::Url(e) | Error::Handshake(e) => Failure::Handshake(short(&e)),
            Error::Timeout(step) => Failure::Timeout(step),
            // No close frame (1005) or none at all (1006): the connection ended.
            Error::Closed(close) if matches!(close.code, 1005 | 1006) => Failure::Closed(None),
            Error::Closed(close) => Failure::Closed(Some(close.code)),
            Error::Unexpected(event) => Failure::Unexpected(event.kind()),
            other => Failure::Socket(short(&other.to_string())),
        }
    }
}

/// Failures counted by [`Failure::label`], in label order.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Failures(BTreeMap<String, u64>);

impl Failures {
    pub fn add(&mut self, failure: &Failure) {
        *self.0.entry(failure.label()).or_default() += 1;
    }

    pub fn total(&self) -> u64 {
        self.0.values().sum()
    }

    /// `none`, or `label ×n` items separated by commas.
    pub fn describe(&self) -> String {
        if self.0.is_empty() {
            return "none".to_owned();
        }
        self.0
            .iter()
            .map(|(label, n)| format!("{label} ×{n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_of_exact_values() {
        let mut l = Latency::new();
        for micros in 1..=1000 {
            l.record_micros(micros);
        }
        let s = l.summary().unwrap();
        assert_eq!(s.count, 1000);
        assert_eq!(s.p50_ms, 0.5);
        assert_eq!(s.p99_ms, 0.99);
        assert_eq!(s.max_ms, 1.0);
        assert!((s.mean_ms - 0.5005).abs() < 1e-9);
    }

    #[test]
    fn empty_has_no_summary() {
        assert_eq!(Latency::new().summary(), None);
    }

    #[test]
    fn merge_adds_counts_and_keeps_the_max() {
        let mut a = Latency::new();
        a.record(Duration::from_micros(100));
        let mut b = Latency::new();
        b.record(Duration::from_micros(300));
        b.record(Duration::from_micros(200));
        a.merge(&b);
        let s = a.summary().unwrap();
        assert_eq!(s.count, 3);
        assert_eq!(s.p50_ms, 0.2);
        assert_eq!(s.max_ms, 0.3);
    }

    #[test]
    fn out_of_range_values_are_clamped() {
        let mut l = Latency::new();
        l.record(Duration::ZERO);
        l.record(Duration::from_secs(3600));
        let s = l.summary().unwrap();
        assert_eq!(s.count, 2);
        assert_eq!(s.p50_ms, 0.001);
        assert!(s.max_ms >= 600_000.0 && s.max_ms < 601_000.0);
    }

    #[test]
    fn rates() {
        assert_eq!(rate(500, Duration::from_millis(250)), 2000.0);
        assert_eq!(rate(5, Duration::ZERO), 0.0);
    }

    #[test]
    fn failures_are_counted_by_label() {
        let mut f = Failures::default();
        assert_eq!(f.describe(), "none");
        f.add(&Failure::Timeout("welcome"));
        f.add(&Failure::Closed(Some(4409)));
        f.add(&Failure::Timeout("welcome"));
        f.add(&Failure::Http(503));
        f.add(&Failure::Closed(None));
        assert_eq!(f.total(), 5);
        assert_eq!(
            f.describe(),
            "closed 4409 ×1, connection ended ×1, http 503 ×1, timeout: welcome ×2"
        );
        assert_eq!(
            serde_json::to_string(&f).unwrap(),
            r#"{"closed 4409":1,"connection ended":1,"http 503":1,"timeout: welcome":2}"#
        );
    }

    #[test]
    fn labels() {
        assert_eq!(
            Failure::Connect("ConnectionRefused".into()).label(),
            "connect: ConnectionRefused"
        );
        assert_eq!(
            Failure::Unexpected("error:rate-limited".into()).label(),
            "unexpected frame: error:rate-limited"
        );
        assert_eq!(Failure::WrongData.label(), "wrong data relayed");
    }
}
