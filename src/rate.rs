//! The per-socket token bucket for client frames, and the strike count that turns persistent
//! flooding into a 4429 close.

/// Refusals are counted over this window; more than `burst` of them in it closes the socket.
pub const STRIKE_WINDOW_MS: u64 = 10_000;

/// Token counts are kept in 64ths of a token. The bucket is stored as JSON text, and
/// serde_json's default float parser (its exact one costs 9 KB of wasm) reads back exactly
/// every decimal of at most 15 significant digits: a multiple of 1/64 up to a burst of a
/// million needs at most 13.
const QUANTUM: f64 = 64.0;

/// What the limiter says about one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Refuse the frame with `rate-limited`.
    Refused,
    /// Refuse it and close the socket with 4429.
    Exceeded,
}

/// A bucket belongs to its slot, not to a socket: it is carried in the socket's attachment and
/// in the stored slot, so a resume, a reconnect or an eviction starts from where it was.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RateLimiter {
    tokens: f64,
    updated_ms: u64,
    strikes: u32,
    strikes_since_ms: u64,
}

impl RateLimiter {
    /// A full bucket.
    pub fn new(burst: u32, now_ms: u64) -> Self {
        RateLimiter {
            tokens: f64::from(burst),
            updated_ms: now_ms,
            strikes: 0,
            strikes_since_ms: now_ms,
        }
    }

    /// Adds what `per_sec` refilled since the last update, up to `burst`.
    fn refill(&mut self, now_ms: u64, burst: u32, per_sec: f64) {
        let elapsed = now_ms.saturating_sub(self.updated_ms) as f64 / 1000.0;
        let refilled = (self.tokens + elapsed * per_sec).min(f64::from(burst));
        self.tokens = (refilled * QUANTUM).floor() / QUANTUM;
        self.updated_ms = now_ms;
    }

    /// Whether the bucket holds `n` whole tokens now.
    pub fn has(&mut self, n: u32, now_ms: u64, burst: u32, per_sec: f64) -> bool {
        self.refill(now_ms, burst, per_sec);
        self.tokens >= f64::from(n)
    }

    /// Takes `n` tokens for frames the server sends to the peer because of this client (a
    /// lifecycle frame), even beyond what the bucket holds: a debt is repaid by the refill
    /// before the client's next frame goes through.
    pub fn spend(&mut self, n: u32, now_ms: u64, burst: u32, per_sec: f64) {
        self.refill(now_ms, burst, per_sec);
        self.tokens -= f64::from(n);
    }

    /// Whether the bucket is full now, so that keeping it is the same as starting afresh.
    pub fn is_full(&mut self, now_ms: u64, burst: u32, per_sec: f64) -> bool {
        self.refill(now_ms, burst, per_sec);
        self.tokens >= f64::from(burst)
    }

    pub fn admit(&mut self, now_ms: u64, burst: u32, per_sec: f64) -> Admission {
        self.refill(now_ms, burst, per_sec);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Admission::Allowed;
        }
        if now_ms.saturating_sub(self.strikes_since_ms) >= STRIKE_WINDOW_MS {
            self.strikes = 0;
            self.strikes_since_ms = now_ms;
        }
        self.strikes += 1;
        if self.strikes > burst {
            Admission::Exceeded
        } else {
            Admission::Refused
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn burst_then_refill() {
        let mut rl = RateLimiter::new(3, 0);
        for _ in 0..3 {
            assert_eq!(rl.admit(0, 3, 2.0), Admission::Allowed);
        }
        assert_eq!(rl.admit(0, 3, 2.0), Admission::Refused);
        // Half a second at 2/s refills exactly one token.
        assert_eq!(rl.admit(500, 3, 2.0), Admission::Allowed);
        assert_eq!(rl.admit(500, 3, 2.0), Admission::Refused);
        // Refill never exceeds the burst.
        for _ in 0..3 {
            assert_eq!(rl.admit(60_000, 3, 2.0), Admission::Allowed);
        }
        assert_eq!(rl.admit(60_000, 3, 2.0), Admission::Refused);
    }

    #[test]
    fn stored_buckets_read_back_exactly() {
        // Without the quantum, 0.989 tokens (2,989 ms at 1/s after spending two of three)
        // came back one ULP off through serde_json.
        let mut rl = RateLimiter::new(3, 0);
        let mut now = 0;
        for step in [0, 1_000, 2_989, 3_001, 7_777, 123_457, 123_458, 999_999] {
            now += step;
            for per_sec in [1.0, 0.3, 20.0, 999_999.9] {
                for burst in [3, 100, 1_000_000] {
                    let mut copy = rl.clone();
                    copy.admit(now, burst, per_sec);
                    let json = serde_json::to_string(&copy).unwrap();
                    let back: RateLimiter = serde_json::from_str(&json).unwrap();
                    assert_eq!(back, copy, "{json}");
                }
            }
            rl.admit(now, 3, 1.0);
        }
    }

    #[test]
    fn spending_beyond_the_tokens_is_a_debt_the_refill_repays() {
        let mut rl = RateLimiter::new(3, 0);
        assert!(rl.has(3, 0, 3, 2.0) && !rl.has(4, 0, 3, 2.0));
        rl.spend(2, 0, 3, 2.0);
        rl.spend(2, 0, 3, 2.0);
        // One token in debt: nothing goes through until the refill has repaid it.
        assert_eq!(rl.admit(0, 3, 2.0), Admission::Refused);
        assert_eq!(rl.admit(500, 3, 2.0), Admission::Refused);
        assert_eq!(rl.admit(1_000, 3, 2.0), Admission::Allowed);
        assert!(!rl.is_full(1_000, 3, 2.0));
        assert!(rl.is_full(2_500, 3, 2.0));
        let json = serde_json::to_string(&rl).unwrap();
        assert_eq!(serde_json::from_str::<RateLimiter>(&json).unwrap(), rl);
    }

    #[test]
    fn more_than_burst_refusals_in_the_window_exceed() {
        let mut rl = RateLimiter::new(2, 0);
        assert_eq!(rl.admit(0, 2, 0.001), Admission::Allowed);
        assert_eq!(rl.admit(0, 2, 0.001), Admission::Allowed);
        assert_eq!(rl.admit(1, 2, 0.001), Admission::Refused);
        assert_eq!(rl.admit(2, 2, 0.001), Admission::Refused);
        assert_eq!(rl.admit(3, 2, 0.001), Admission::Exceeded);
    }

    #[test]
    fn strikes_expire_with_the_window() {
        let mut rl = RateLimiter::new(2, 0);
        rl.admit(0, 2, 0.0001);
        rl.admit(0, 2, 0.0001);
        assert_eq!(rl.admit(1, 2, 0.0001), Admission::Refused);
        assert_eq!(rl.admit(2, 2, 0.0001), Admission::Refused);
        assert_eq!(rl.admit(10_001, 2, 0.0001), Admission::Refused);
        assert_eq!(rl.admit(10_002, 2, 0.0001), Admission::Refused);
        assert_eq!(rl.admit(10_003, 2, 0.0001), Admission::Exceeded);
    }
}
