//! Reconnect delays: exponential backoff with "equal jitter", as `public/js/backoff.js` does.
//! Half of each delay is fixed and half is random, so a crowd of clients that lost the server
//! at the same moment spreads out without any client retrying in a tight loop.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The delays between attempts: attempt *n* waits between d/2 and d, where
/// d = min(`max`, `initial` × `factor`^n).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Backoff {
    pub initial: Duration,
    pub max: Duration,
    pub factor: f64,
}

impl Default for Backoff {
    /// 500 ms, doubling, at most 10 s: `DEFAULT_BACKOFF` of `backoff.js`.
    fn default() -> Self {
        Backoff {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(10),
            factor: 2.0,
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first), with `random` in [0, 1).
    pub fn delay(&self, attempt: u32, random: f64) -> Duration {
        let exponent = i32::try_from(attempt).unwrap_or(i32::MAX);
        let grown = self.initial.as_secs_f64() * self.factor.powi(exponent);
        let ceiling = grown.min(self.max.as_secs_f64()).max(0.0);
        let random = random.clamp(0.0, 1.0);
        let ms = (ceiling / 2.0 + random * ceiling / 2.0) * 1000.0;
        Duration::from_millis(ms.round() as u64)
    }
}

/// A small generator of jitter (SplitMix64): no cryptography rests on it, only the spread of
/// reconnects, so it is seeded from the clock and the address of the state.
#[derive(Debug)]
pub struct Jitter(u64);

impl Jitter {
    pub fn new() -> Jitter {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let place = &nanos as *const u64 as u64;
        Jitter(nanos ^ place.rotate_left(32))
    }

    /// A number in [0, 1).
    pub fn draw(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

impl Default for Jitter {
    fn default() -> Self {
        Jitter::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(d: Duration) -> u128 {
        d.as_millis()
    }

    #[test]
    fn delays_match_backoff_js() {
        let b = Backoff::default();
        // backoffDelay(0, {}, () => 0) is 250; (() => 0.999…) is 500.
        assert_eq!(ms(b.delay(0, 0.0)), 250);
        assert_eq!(ms(b.delay(0, 1.0)), 500);
        assert_eq!(ms(b.delay(1, 0.5)), 750);
        assert_eq!(ms(b.delay(3, 0.0)), 2000);
        // Capped at maxDelayMs: d = 10 s from attempt 5 on.
        assert_eq!(ms(b.delay(5, 0.0)), 5000);
        assert_eq!(ms(b.delay(40, 1.0)), 10_000);
        assert_eq!(ms(b.delay(u32::MAX, 0.5)), 7500);
        // The cases of test/client/modules.test.mjs, random 0 and just under 1.
        let low: Vec<u128> = (0..7).map(|n| ms(b.delay(n, 0.0))).collect();
        assert_eq!(low, [250, 500, 1000, 2000, 4000, 5000, 5000]);
        let high: Vec<u128> = (0..7).map(|n| ms(b.delay(n, 0.999_999))).collect();
        assert_eq!(high, [500, 1000, 2000, 4000, 8000, 10_000, 10_000]);
        let custom = Backoff {
            initial: Duration::from_millis(100),
            ..b
        };
        assert_eq!(ms(custom.delay(0, 0.5)), 75);
        let triple = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(60),
            factor: 3.0,
        };
        assert_eq!(ms(triple.delay(3, 0.999_999)), 2700);
    }

    #[test]
    fn jitter_stays_in_range_and_varies() {
        let mut j = Jitter::new();
        let draws: Vec<f64> = (0..1000).map(|_| j.draw()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        assert!(draws.iter().any(|x| *x < 0.1) && draws.iter().any(|x| *x > 0.9));
    }
}
