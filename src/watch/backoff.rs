//! Retry pacing after a failure.

use std::time::Duration;

/// Exponential backoff with jitter, 1 s doubling to 30 s (client-go's shape).
#[derive(Debug, Default)]
pub(super) struct Backoff {
    attempt: u32,
}

impl Backoff {
    pub(super) fn next(&mut self) -> Duration {
        let base = Duration::from_secs(1) * 2u32.saturating_pow(self.attempt.min(5));
        self.attempt += 1;
        let base = base.min(Duration::from_secs(30));
        // Jitter up to 25% from the clock's sub-second digits: enough to spread many watches.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        base + base.mul_f64((nanos % 1000) as f64 / 4000.0)
    }
    pub(super) fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_caps() {
        let mut b = Backoff::default();
        let first = b.next();
        assert!(first >= Duration::from_secs(1) && first <= Duration::from_millis(1250));
        for _ in 0..10 {
            b.next();
        }
        let capped = b.next();
        assert!(capped >= Duration::from_secs(30) && capped <= Duration::from_millis(37_500), "{capped:?}");
        b.reset();
        assert!(b.next() < Duration::from_secs(2));
    }
}
