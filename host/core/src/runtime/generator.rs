//! Watermarks made from the timestamps a node emits, as its [`WatermarkStrategy`] says
//! (Flink's `BoundedOutOfOrdernessWatermarks` behind `withIdleness`), emitted periodically
//! (`pipeline.auto-watermark-interval`).
//!
//! A pure type: the subtask's thread calls it with the batches it emits and the time, and
//! sends on what it returns. Records without a timestamp do not move event time. Idleness
//! counts the time since the node last emitted records; records end it at once.

use std::time::{Duration, Instant};

use cairn_wire::WatermarkStrategy;
use cairn_wire::batch::NO_TIMESTAMP;

use super::valve::{Change, WatermarkStatus};

/// The watermarks of one source or operator subtask with a strategy.
#[derive(Debug)]
pub(crate) struct WatermarkGenerator {
    /// Subtracted from the highest timestamp, with Flink's further 1 ms.
    out_of_orderness: i64,
    idle_timeout: Option<Duration>,
    interval: Duration,
    /// The highest timestamp emitted; [`NO_TIMESTAMP`] before the first.
    highest: i64,
    last_records: Instant,
    idle: bool,
    /// When [`on_periodic`](Self::on_periodic) is next due.
    due: Instant,
}

impl WatermarkGenerator {
    pub(crate) fn new(strategy: WatermarkStrategy, interval: Duration, now: Instant) -> Self {
        let millis = |ms: u64| Duration::from_millis(ms);
        WatermarkGenerator {
            out_of_orderness: i64::try_from(strategy.max_out_of_orderness_ms).unwrap_or(i64::MAX),
            idle_timeout: strategy.idle_timeout_ms.map(millis),
            interval,
            highest: NO_TIMESTAMP,
            last_records: now,
            idle: false,
            due: now + interval,
        }
    }

    /// When the next periodic emission is due.
    pub(crate) fn due(&self) -> Instant {
        self.due
    }

    /// The node emits records with these timestamps (a batch's column; empty when none has
    /// one). Returns whether it was idle: it is active again, which the caller sends before
    /// the records.
    pub(crate) fn on_records(&mut self, timestamps: &[i64], now: Instant) -> bool {
        if let Some(&highest) = timestamps.iter().filter(|&&t| t != NO_TIMESTAMP).max() {
            self.highest = self.highest.max(highest);
        }
        self.last_records = now;
        std::mem::replace(&mut self.idle, false)
    }

    /// The periodic emission, if it is due: the node turning idle, or its watermark (the
    /// output drops one that is not above the last it sent).
    pub(crate) fn on_periodic(&mut self, now: Instant) -> Option<Change> {
        if now < self.due {
            return None;
        }
        // Due again one interval on, without catching up on emissions missed while busy.
        self.due += self.interval;
        if self.due <= now {
            self.due = now + self.interval;
        }
        if self.idle {
            return None;
        }
        if self
            .idle_timeout
            .is_some_and(|timeout| now.duration_since(self.last_records) >= timeout)
        {
            self.idle = true;
            return Some(Change::Status(WatermarkStatus::Idle));
        }
        (self.highest != NO_TIMESTAMP).then(|| {
            Change::Watermark(
                self.highest
                    .saturating_sub(self.out_of_orderness)
                    .saturating_sub(1),
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(200);

    fn at(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn the_watermark_trails_the_highest_timestamp_by_the_bound_and_a_millisecond() {
        let start = Instant::now();
        let mut generator = WatermarkGenerator::new(
            WatermarkStrategy::bounded_out_of_orderness(1_000),
            INTERVAL,
            start,
        );
        // Nothing before the first timestamp, nor before the interval.
        assert_eq!(generator.on_periodic(at(start, 200)), None);
        generator.on_records(&[5_000, NO_TIMESTAMP, 7_000, 6_000], at(start, 250));
        assert_eq!(generator.on_periodic(at(start, 300)), None);
        assert_eq!(
            generator.on_periodic(at(start, 400)),
            Some(Change::Watermark(5_999))
        );
        // A record without timestamp, or an older one, does not move it.
        generator.on_records(&[NO_TIMESTAMP], at(start, 450));
        generator.on_records(&[], at(start, 460));
        generator.on_records(&[2_000], at(start, 470));
        assert_eq!(
            generator.on_periodic(at(start, 600)),
            Some(Change::Watermark(5_999))
        );
        assert_eq!(generator.due(), at(start, 800));
    }

    #[test]
    fn monotonous_timestamps_trail_by_one_millisecond() {
        let start = Instant::now();
        let mut generator =
            WatermarkGenerator::new(WatermarkStrategy::monotonous_timestamps(), INTERVAL, start);
        generator.on_records(&[i64::MIN + 1], start);
        assert_eq!(
            generator.on_periodic(at(start, 200)),
            Some(Change::Watermark(i64::MIN))
        );
        generator.on_records(&[10], start);
        assert_eq!(
            generator.on_periodic(at(start, 400)),
            Some(Change::Watermark(9))
        );
    }

    #[test]
    fn a_quiet_node_turns_idle_and_records_make_it_active() {
        let start = Instant::now();
        let strategy = WatermarkStrategy::bounded_out_of_orderness(0).with_idleness(500);
        let mut generator = WatermarkGenerator::new(strategy, INTERVAL, start);
        generator.on_records(&[100], at(start, 100));
        assert_eq!(
            generator.on_periodic(at(start, 200)),
            Some(Change::Watermark(99))
        );
        assert_eq!(
            generator.on_periodic(at(start, 400)),
            Some(Change::Watermark(99))
        );
        assert_eq!(
            generator.on_periodic(at(start, 600)),
            Some(Change::Status(WatermarkStatus::Idle))
        );
        // Idle: nothing more until records come.
        assert_eq!(generator.on_periodic(at(start, 800)), None);
        assert!(generator.on_records(&[300], at(start, 900)));
        assert!(!generator.on_records(&[301], at(start, 950)));
        assert_eq!(
            generator.on_periodic(at(start, 1_000)),
            Some(Change::Watermark(300))
        );
    }

    #[test]
    fn a_late_tick_does_not_catch_up() {
        let start = Instant::now();
        let mut generator =
            WatermarkGenerator::new(WatermarkStrategy::monotonous_timestamps(), INTERVAL, start);
        generator.on_records(&[1], start);
        assert!(generator.on_periodic(at(start, 5_000)).is_some());
        assert_eq!(generator.due(), at(start, 5_200));
        assert!(generator.on_periodic(at(start, 5_100)).is_none());
    }
}
