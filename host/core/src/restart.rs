//! Restart strategies, as Flink has them: when a task fails, the strategy decides whether
//! the job restarts (from its latest completed checkpoint) and after what delay, or gives up.

use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// A restart strategy and its settings (`restart-strategy.*`).
#[derive(Debug, Clone, PartialEq)]
pub enum RestartStrategy {
    /// The first failure fails the job.
    None,
    /// Up to `attempts` restarts, each after `delay`.
    FixedDelay { attempts: u32, delay: Duration },
    /// Restarts after `delay` unless more than `max_failures` happened within `interval`.
    FailureRate {
        max_failures: u32,
        interval: Duration,
        delay: Duration,
    },
    /// Delays grow by `multiplier` from `initial` up to `max`, ± `jitter` of each delay;
    /// after running `reset_threshold` without failure they start over, and so does the
    /// count of `attempts` allowed before giving up.
    ExponentialDelay {
        initial: Duration,
        max: Duration,
        multiplier: f64,
        reset_threshold: Duration,
        jitter: f64,
        attempts: u32,
    },
}

impl fmt::Display for RestartStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RestartStrategy::None => f.write_str("none"),
            RestartStrategy::FixedDelay { .. } => f.write_str("fixed-delay"),
            RestartStrategy::FailureRate { .. } => f.write_str("failure-rate"),
            RestartStrategy::ExponentialDelay { .. } => f.write_str("exponential-delay"),
        }
    }
}

/// What to do about a failure.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Restart after this delay; `attempt` counts restarts, from 1.
    Restart { delay: Duration, attempt: u32 },
    /// Fail the job; the reason names the limit that was hit.
    GiveUp(String),
}

/// A strategy with its memory of past failures.
#[derive(Debug)]
pub struct Restarts {
    strategy: RestartStrategy,
    restarts: u32,
    /// Failure-rate: when recent failures happened.
    failures: VecDeque<Instant>,
    /// Exponential delay: the next backoff, and the attempts since the last reset.
    backoff: Duration,
    attempts_since_reset: u32,
    /// Jitter source: a small deterministic generator is plenty for spreading restarts.
    seed: u64,
}

impl Restarts {
    pub fn new(strategy: RestartStrategy) -> Self {
        let backoff = match &strategy {
            RestartStrategy::ExponentialDelay { initial, .. } => *initial,
            _ => Duration::ZERO,
        };
        Restarts {
            strategy,
            restarts: 0,
            failures: VecDeque::new(),
            backoff,
            attempts_since_reset: 0,
            seed: std::process::id() as u64 ^ 0x9E37_79B9_7F4A_7C15,
        }
    }

    pub fn strategy(&self) -> &RestartStrategy {
        &self.strategy
    }

    /// Restarts so far (Flink's `numRestarts`).
    pub fn count(&self) -> u32 {
        self.restarts
    }

    /// Decides about a failure at `now` of an attempt that had run for `ran`.
    pub fn on_failure(&mut self, now: Instant, ran: Duration) -> Decision {
        match &self.strategy {
            RestartStrategy::None => Decision::GiveUp(
                "restart-strategy.type is none (the default without checkpointing)".into(),
            ),
            RestartStrategy::FixedDelay { attempts, delay } => {
                if self.restarts >= *attempts {
                    Decision::GiveUp(format!(
                        "fixed-delay gave up after {} restarts (restart-strategy.fixed-delay.attempts = {attempts})",
                        self.restarts
                    ))
                } else {
                    self.restart(*delay)
                }
            }
            RestartStrategy::FailureRate {
                max_failures,
                interval,
                delay,
            } => {
                self.failures.push_back(now);
                while self
                    .failures
                    .front()
                    .is_some_and(|&at| now.duration_since(at) > *interval)
                {
                    self.failures.pop_front();
                }
                if self.failures.len() as u32 > *max_failures {
                    Decision::GiveUp(format!(
                        "failure-rate gave up: {} failures within {} \
                         (restart-strategy.failure-rate.max-failures-per-interval = {max_failures}, \
                         failure-rate-interval = {})",
                        self.failures.len(),
                        humantime::format_duration(*interval),
                        humantime::format_duration(*interval)
                    ))
                } else {
                    self.restart(*delay)
                }
            }
            RestartStrategy::ExponentialDelay {
                initial,
                max,
                multiplier,
                reset_threshold,
                jitter,
                attempts,
            } => {
                let (initial, max, multiplier, jitter, attempts) =
                    (*initial, *max, *multiplier, *jitter, *attempts);
                if ran >= *reset_threshold {
                    self.backoff = initial;
                    self.attempts_since_reset = 0;
                }
                if self.attempts_since_reset >= attempts {
                    Decision::GiveUp(format!(
                        "exponential-delay gave up after {} restarts without a reset \
                         (restart-strategy.exponential-delay.attempts-before-reset-backoff = {attempts})",
                        self.attempts_since_reset
                    ))
                } else {
                    let backoff = self.backoff;
                    self.backoff = backoff.mul_f64(multiplier).min(max);
                    self.attempts_since_reset += 1;
                    let spread = 2.0 * self.unit() - 1.0; // in [-1, 1)
                    let delay = backoff.mul_f64((1.0 + jitter * spread).max(0.0));
                    self.restart(delay)
                }
            }
        }
    }

    fn restart(&mut self, delay: Duration) -> Decision {
        self.restarts += 1;
        Decision::Restart {
            delay,
            attempt: self.restarts,
        }
    }

    /// Uniform in `[0, 1)` (splitmix64).
    fn unit(&mut self) -> f64 {
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn delay(decision: Decision) -> Duration {
        match decision {
            Decision::Restart { delay, .. } => delay,
            Decision::GiveUp(reason) => panic!("gave up: {reason}"),
        }
    }

    #[test]
    fn none_gives_up_at_once() {
        let mut r = Restarts::new(RestartStrategy::None);
        assert!(matches!(
            r.on_failure(Instant::now(), SECOND),
            Decision::GiveUp(_)
        ));
        assert_eq!(r.count(), 0);
    }

    #[test]
    fn fixed_delay_allows_exactly_its_attempts() {
        let mut r = Restarts::new(RestartStrategy::FixedDelay {
            attempts: 2,
            delay: SECOND,
        });
        let now = Instant::now();
        assert_eq!(
            r.on_failure(now, SECOND),
            Decision::Restart {
                delay: SECOND,
                attempt: 1
            }
        );
        assert_eq!(
            r.on_failure(now, SECOND),
            Decision::Restart {
                delay: SECOND,
                attempt: 2
            }
        );
        let Decision::GiveUp(reason) = r.on_failure(now, SECOND) else {
            panic!("a third restart")
        };
        assert!(
            reason.contains("restart-strategy.fixed-delay.attempts = 2"),
            "{reason}"
        );
        assert_eq!(r.count(), 2);
    }

    #[test]
    fn failure_rate_counts_only_failures_within_the_interval() {
        let strategy = RestartStrategy::FailureRate {
            max_failures: 2,
            interval: Duration::from_secs(10),
            delay: SECOND,
        };
        let start = Instant::now();
        // Spaced wider than the interval: never more than one in it.
        let mut spaced = Restarts::new(strategy.clone());
        for i in 0..10 {
            delay(spaced.on_failure(start + Duration::from_secs(11 * i), SECOND));
        }
        // Bunched: the third within 10 s gives up.
        let mut bunched = Restarts::new(strategy);
        delay(bunched.on_failure(start, SECOND));
        delay(bunched.on_failure(start + Duration::from_secs(3), SECOND));
        let Decision::GiveUp(reason) = bunched.on_failure(start + Duration::from_secs(6), SECOND)
        else {
            panic!("should give up")
        };
        assert!(reason.contains("3 failures within 10s"), "{reason}");
    }

    #[test]
    fn exponential_delay_grows_to_the_cap_within_the_jitter() {
        let mut r = Restarts::new(RestartStrategy::ExponentialDelay {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            multiplier: 2.0,
            reset_threshold: Duration::from_secs(3600),
            jitter: 0.1,
            attempts: u32::MAX,
        });
        let now = Instant::now();
        let expected = [100, 200, 400, 800, 1000, 1000];
        for base in expected {
            let d = delay(r.on_failure(now, SECOND)).as_secs_f64() * 1000.0;
            let base = base as f64;
            assert!(
                d >= base * 0.9 && d <= base * 1.1,
                "{d} ms vs {base} ms ± 10%"
            );
        }
        // A long healthy run resets the backoff.
        let d = delay(r.on_failure(now, Duration::from_secs(3600))).as_secs_f64() * 1000.0;
        assert!((90.0..=110.0).contains(&d), "{d}");
    }

    #[test]
    fn exponential_delay_attempts_reset_with_the_backoff() {
        let mut r = Restarts::new(RestartStrategy::ExponentialDelay {
            initial: SECOND,
            max: SECOND * 10,
            multiplier: 1.5,
            reset_threshold: SECOND * 60,
            jitter: 0.0,
            attempts: 2,
        });
        let now = Instant::now();
        assert_eq!(delay(r.on_failure(now, SECOND)), SECOND);
        assert_eq!(delay(r.on_failure(now, SECOND)), SECOND.mul_f64(1.5));
        assert!(matches!(r.on_failure(now, SECOND), Decision::GiveUp(_)));
        assert_eq!(delay(r.on_failure(now, SECOND * 60)), SECOND);
    }
}
