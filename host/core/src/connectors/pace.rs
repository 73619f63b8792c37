//! Pacing a source at a given number of records per second, for demos and tests that need a
//! job to run for a while on a small input.

use std::time::{Duration, Instant};

/// Lets records through at `rate` per second, about 10 ms worth at a time so the pace stays
/// smooth. A rate of 0 is unpaced.
pub(crate) struct Pace {
    rate: f64,
    started: Instant,
    emitted: u64,
}

impl Pace {
    pub(crate) fn new(rate: f64) -> Self {
        Pace {
            rate,
            started: Instant::now(),
            emitted: 0,
        }
    }

    /// How many records may go now; `Err(wait)` when none may before `wait` has passed.
    pub(crate) fn allowance(&self) -> Result<u64, Duration> {
        if self.rate <= 0.0 {
            return Ok(u64::MAX);
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let due = (elapsed * self.rate) as u64;
        if due <= self.emitted {
            let wait = (self.emitted + 1) as f64 / self.rate - elapsed;
            return Err(Duration::from_secs_f64(wait.clamp(0.0005, 0.1)));
        }
        Ok((due - self.emitted).min((self.rate / 100.0) as u64 + 1))
    }

    /// Counts records that went.
    pub(crate) fn emitted(&mut self, records: u64) {
        self.emitted += records;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unpaced_lets_everything_through_and_paced_waits() {
        assert_eq!(Pace::new(0.0).allowance(), Ok(u64::MAX));
        let mut pace = Pace::new(100.0);
        // Nothing is due at the start: wait about one record's time.
        let wait = pace.allowance().unwrap_err();
        assert!(wait <= Duration::from_millis(11), "{wait:?}");
        std::thread::sleep(Duration::from_millis(50));
        let allowed = pace.allowance().unwrap();
        assert!((1..=2).contains(&allowed), "{allowed}");
        pace.emitted(1_000);
        assert!(pace.allowance().is_err());
    }
}
