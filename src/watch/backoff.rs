//! Retry pacing after a failure, in client-go's shape (the reflector's backoff manager):
//! 800 ms doubling to 30 s, each wait stretched by a random 0–100 %, reset only after two
//! minutes of health; plus the ±10 % jitter of the periodic re-list and deadline arithmetic
//! that cannot overflow.

use std::{
    hash::{BuildHasher, Hasher},
    time::{Duration, Instant},
};

/// First wait after a failure.
pub(super) const INITIAL: Duration = Duration::from_millis(800);
/// Largest base wait (before jitter).
pub(super) const MAX: Duration = Duration::from_secs(30);
/// A watch healthy for this long starts its next backoff from [`INITIAL`] again.
pub(super) const RESET_AFTER: Duration = Duration::from_secs(120);

/// A small xorshift64* generator: jitter needs spread, not cryptographic quality.
#[derive(Debug, Clone)]
pub(super) struct Rng(u64);

impl Rng {
    /// Seeded from std's per-process random hasher keys, so watches started together differ.
    pub(super) fn seeded(salt: &str) -> Rng {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write(salt.as_bytes());
        Rng::with_seed(h.finish())
    }
    pub(super) fn with_seed(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    /// Uniform in [0, 1).
    pub(super) fn unit(&mut self) -> f64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Exponential backoff with full jitter on top of the base (factor 1.0, as client-go).
#[derive(Debug)]
pub(super) struct Backoff {
    attempt: u32,
    rng: Rng,
}

impl Backoff {
    pub(super) fn new(rng: Rng) -> Backoff {
        Backoff { attempt: 0, rng }
    }
    /// The base wait of the next attempt (no jitter): 0.8, 1.6, 3.2 … 30 s.
    pub(super) fn base(&self) -> Duration {
        INITIAL.saturating_mul(2u32.saturating_pow(self.attempt.min(16))).min(MAX)
    }
    /// The next wait: base × (1 + random[0, 1)), at most 2 × [`MAX`].
    pub(super) fn next(&mut self) -> Duration {
        let base = self.base();
        self.attempt = self.attempt.saturating_add(1);
        base + base.mul_f64(self.rng.unit())
    }
    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }
    /// `d` stretched or shrunk by a random ±10 % (the periodic re-list, so that watches started
    /// together do not re-list together).
    pub(super) fn jitter_10(&mut self, d: Duration) -> Duration {
        d.mul_f64(0.9 + 0.2 * self.rng.unit())
    }
}

/// `now + d`, or a day later when that overflows (config bounds keep `d` far below), or `now`.
pub(super) fn deadline(now: Instant, d: Duration) -> Instant {
    now.checked_add(d).or_else(|| now.checked_add(Duration::from_secs(86_400))).unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_doubles_caps_and_resets() {
        let mut b = Backoff::new(Rng::with_seed(7));
        let bases: Vec<_> = (0..8)
            .map(|_| {
                let base = b.base();
                let w = b.next();
                assert!(w >= base && w < base * 2, "{w:?} outside [{base:?}, 2×{base:?})");
                base
            })
            .collect();
        assert_eq!(bases[0], Duration::from_millis(800));
        assert_eq!(bases[1], Duration::from_millis(1600));
        assert_eq!(bases[5], Duration::from_millis(25_600));
        assert_eq!(bases[6], MAX);
        for _ in 0..100 {
            assert!(b.next() < MAX * 2);
        }
        b.reset();
        assert_eq!(b.base(), INITIAL);
    }

    #[test]
    fn jitter_is_spread_not_constant() {
        let mut r = Rng::with_seed(42);
        let xs: Vec<f64> = (0..1000).map(|_| r.unit()).collect();
        assert!(xs.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = xs.iter().sum::<f64>() / xs.len() as f64;
        assert!((0.45..0.55).contains(&mean), "mean {mean}");
        let mut b = Backoff::new(Rng::with_seed(1));
        let d = Duration::from_secs(600);
        let js: Vec<_> = (0..200).map(|_| b.jitter_10(d)).collect();
        assert!(js.iter().all(|j| *j >= d.mul_f64(0.9) && *j <= d.mul_f64(1.1)));
        assert!(js.iter().any(|j| *j < d.mul_f64(0.95)) && js.iter().any(|j| *j > d.mul_f64(1.05)));
    }

    #[test]
    fn deadline_never_overflows() {
        let now = Instant::now();
        assert!(deadline(now, Duration::MAX) >= now);
        assert_eq!(deadline(now, Duration::from_secs(5)), now + Duration::from_secs(5));
    }
}
