//! A token-bucket throttle for `--rate EVENTS_PER_S`.

use std::time::{Duration, Instant};

/// Allows `rate` records per second on average, in bursts of up to 1/10 s.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    start: Instant,
    consumed: u64,
}

impl RateLimiter {
    /// A limiter for `rate` records per second.
    pub fn new(rate: f64) -> Self {
        RateLimiter {
            rate: rate.max(1e-3),
            start: Instant::now(),
            consumed: 0,
        }
    }

    /// How many records may be sent now.
    pub fn available(&self) -> usize {
        self.available_at(Instant::now())
    }

    /// How many records may be sent at `now`.
    pub fn available_at(&self, now: Instant) -> usize {
        let elapsed = now.saturating_duration_since(self.start).as_secs_f64();
        let allowed = (elapsed * self.rate) as u64 + 1;
        allowed.saturating_sub(self.consumed) as usize
    }

    /// Records that `n` records were sent.
    pub fn consume(&mut self, n: usize) {
        self.consumed += n as u64;
    }

    /// How long until the next record may be sent.
    pub fn wait(&self) -> Duration {
        let due = self.consumed as f64 / self.rate;
        let elapsed = self.start.elapsed().as_secs_f64();
        Duration::from_secs_f64((due - elapsed).clamp(0.0005, 0.1))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_exactly_the_rate() {
        let mut limiter = RateLimiter::new(1000.0);
        let start = limiter.start;
        assert_eq!(limiter.available_at(start), 1);
        limiter.consume(1);
        assert_eq!(limiter.available_at(start), 0);
        assert_eq!(limiter.available_at(start + Duration::from_millis(20)), 20);
        limiter.consume(20);
        assert_eq!(limiter.available_at(start + Duration::from_millis(20)), 0);
        assert_eq!(limiter.available_at(start + Duration::from_secs(1)), 980);
    }
}
