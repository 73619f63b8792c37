//! Pacing a source at a given number of records per second, for demos and tests that need a
//! job to run for a while on a small input.

use std::time::{Duration, Instant};

/// The most a paced reader catches up on after falling behind.
const MAX_BACKLOG: Duration = Duration::from_millis(100);

/// Lets records through at `rate` per second, about 10 ms worth at a time so the pace stays
/// smooth. A rate of 0 is unpaced. A reader that fell behind (a stall downstream, a busy
/// machine) catches up on at most [`MAX_BACKLOG`] worth: a rate is a ceiling, never a burst
/// of what a stall held back.
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

    /// Counts records that went, forgiving what is owed beyond [`MAX_BACKLOG`].
    pub(crate) fn emitted(&mut self, records: u64) {
        let due = (self.started.elapsed().as_secs_f64() * self.rate) as u64;
        let backlog = (MAX_BACKLOG.as_secs_f64() * self.rate) as u64;
        self.emitted = (self.emitted + records).max(due.saturating_sub(backlog));
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

    #[test]
    fn a_stall_is_not_made_up_for_beyond_a_tenth_of_a_second() {
        let mut pace = Pace::new(1_000.0);
        std::thread::sleep(Duration::from_millis(300));
        pace.emitted(0);
        let mut caught_up = 0;
        while let Ok(allowed) = pace.allowance() {
            pace.emitted(allowed);
            caught_up += allowed;
        }
        // About 100 ms worth (plus what became due meanwhile), not 300.
        assert!((90..200).contains(&caught_up), "{caught_up}");
    }
}
