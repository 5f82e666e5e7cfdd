//! A small seeded random generator (SplitMix64): the soak's choices (call lengths, when and
//! how a socket drops) follow from `--seed`, so a run can be repeated.

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for one of many tasks, independent of the others'.
    pub fn fork(seed: u64, index: u64) -> Rng {
        let mut base = Rng(seed ^ index.wrapping_mul(0xA24B_AED4_963E_E407));
        Rng(base.next_u64())
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [lo, hi] (hi below lo gives lo).
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo);
        lo + span.mul_f64(self.unit())
    }

    /// Exponentially distributed with this mean (the gaps of a Poisson process), at most 20
    /// times the mean.
    pub fn exp(&mut self, mean: Duration) -> Duration {
        let u = 1.0 - self.unit();
        mean.mul_f64((-u.ln()).min(20.0))
    }

    /// 0 or 1.
    pub fn pick(&mut self) -> usize {
        usize::from(self.next_u64() & 1 == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_forks_differ() {
        let mut a = Rng::fork(7, 0);
        let mut b = Rng::fork(7, 0);
        assert_eq!(a.next_u64(), b.next_u64());
        assert_ne!(Rng::fork(7, 1).next_u64(), Rng::fork(7, 2).next_u64());
    }

    #[test]
    fn ranges() {
        let mut r = Rng::fork(1, 0);
        let (lo, hi) = (Duration::from_secs(30), Duration::from_secs(90));
        let mut sum = Duration::ZERO;
        for _ in 0..10_000 {
            let u = r.unit();
            assert!((0.0..1.0).contains(&u));
            let d = r.between(lo, hi);
            assert!(d >= lo && d <= hi);
            let e = r.exp(Duration::from_secs(1));
            assert!(e <= Duration::from_secs(20));
            sum += e;
            assert!(r.pick() < 2);
        }
        // The mean of 10,000 exponential draws with mean 1 s is within 5% of it.
        let mean = sum.as_secs_f64() / 10_000.0;
        assert!((0.95..1.05).contains(&mean), "{mean}");
        assert_eq!(r.between(hi, lo), hi);
    }
}
