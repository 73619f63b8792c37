//! An operator subtask's timers and clocks as its calls see them (Flink's `TimerService`):
//! timers are registered and deleted during `process`, `on_timers` and `finish`; the
//! subtask's loop fires them as the input watermark (event time) and the wall clock
//! (processing time) pass them, and checkpoints them per key group beside the keyed state.

use cairn_wire::key_groups::key_group;
use cairn_wire::timers::{TimeDomain, Timer, TimerQueue};
use cairn_wire::{Emitter, KeyGroupRange, KeyedChunk, PackedBatch, keyed};

use crate::clock::now_ms;

/// The most timers handed to one `on_timers` call.
const FIRE_BATCH: usize = 1024;

/// The wall clock as timers see it: milliseconds since the epoch.
pub fn current_processing_time() -> i64 {
    i64::try_from(now_ms()).unwrap_or(i64::MAX)
}

/// A timer for a key the subtask does not own.
#[derive(Debug, thiserror::Error)]
#[error(
    "a timer for key {key} (key group {group}) is not this subtask's to keep (key groups \
     {range}): timers are for the keys of records from a by-key input"
)]
pub struct ForeignKey {
    key: String,
    group: u32,
    range: KeyGroupRange,
}

/// One operator subtask's timers, its input watermark and the clock.
#[derive(Debug)]
pub struct TimerService {
    queue: TimerQueue,
    key_groups: KeyGroupRange,
    max_parallelism: u32,
    watermark: i64,
}

impl TimerService {
    /// No timers, no watermark yet, for a subtask owning `key_groups` of
    /// `max_parallelism`.
    pub fn new(key_groups: KeyGroupRange, max_parallelism: u32) -> Self {
        TimerService {
            queue: TimerQueue::default(),
            key_groups,
            max_parallelism,
            watermark: i64::MIN,
        }
    }

    /// Calls `fire(key, timestamp)` at `timestamp` in `domain` for `key`; once per key,
    /// domain and timestamp however often it is registered. The key must be in this
    /// subtask's key groups, so that the timer moves with the key's state on a rescale.
    pub fn register(
        &mut self,
        domain: TimeDomain,
        key: &[u8],
        timestamp: i64,
    ) -> Result<(), ForeignKey> {
        let timer = self.timer(key, timestamp)?;
        self.queue.register(domain, timer);
        Ok(())
    }

    /// Forgets the timer of `key` at `timestamp` in `domain`, if there is one.
    pub fn delete(&mut self, domain: TimeDomain, key: &[u8], timestamp: i64) {
        if let Ok(timer) = self.timer(key, timestamp) {
            self.queue.delete(domain, &timer);
        }
    }

    /// The subtask's input watermark (`i64::MIN` before the first).
    pub fn current_watermark(&self) -> i64 {
        self.watermark
    }

    /// The wall clock, in milliseconds since the epoch.
    pub fn current_processing_time(&self) -> i64 {
        current_processing_time()
    }

    fn timer(&self, key: &[u8], timestamp: i64) -> Result<Timer, ForeignKey> {
        let group = key_group(key, self.max_parallelism);
        if !self.key_groups.contains(group) {
            return Err(ForeignKey {
                key: keyed::shown(key),
                group,
                range: self.key_groups,
            });
        }
        Ok(Timer {
            timestamp,
            // Below max-parallelism, at most 2^15.
            key_group: group as u16,
            key: key.into(),
        })
    }

    /// The input watermark rose to `watermark`.
    pub(crate) fn advance_watermark(&mut self, watermark: i64) {
        self.watermark = self.watermark.max(watermark);
    }

    /// Takes the next timers due in `domain` (event time: at or below the watermark;
    /// processing time: at or before the clock), in firing order and at most
    /// [`FIRE_BATCH`], as a batch of records — key the timer's key, no value, timestamp the
    /// timer's — with their key groups; `None` when none is due.
    pub(crate) fn due(&mut self, domain: TimeDomain) -> Option<(PackedBatch, Vec<u16>)> {
        let until = match domain {
            TimeDomain::EventTime => self.watermark,
            TimeDomain::ProcessingTime => self.current_processing_time(),
        };
        let timers = self.queue.pop_due(domain, until, FIRE_BATCH);
        if timers.is_empty() {
            return None;
        }
        let mut batch = Emitter::default();
        let groups = timers.iter().map(|t| t.key_group).collect();
        for timer in &timers {
            batch.emit_with_timestamp(&timer.key, b"", timer.timestamp);
        }
        Some((batch.take(), groups))
    }

    /// When the next processing-time timer is due, in milliseconds since the epoch.
    pub(crate) fn next_processing_time(&self) -> Option<i64> {
        self.queue.next(TimeDomain::ProcessingTime)
    }

    /// The timers, one chunk per key group, for a checkpoint.
    pub(crate) fn snapshot(&self) -> Vec<KeyedChunk> {
        self.queue.snapshot()
    }

    /// Adds timers a checkpoint holds (of this subtask's key groups).
    pub(crate) fn restore(&mut self, chunk: &KeyedChunk) -> Result<(), cairn_wire::Error> {
        self.queue.restore(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fired(service: &mut TimerService, domain: TimeDomain) -> Vec<(String, i64)> {
        let mut fired = Vec::new();
        while let Some((batch, groups)) = service.due(domain) {
            for (record, group) in batch.records(0).unwrap().zip(groups) {
                assert_eq!(u32::from(group), key_group(record.key().unwrap(), 128));
                fired.push((
                    record.key_str().unwrap().to_owned(),
                    record.timestamp().unwrap(),
                ));
            }
        }
        fired
    }

    #[test]
    fn event_timers_fire_in_order_once_the_watermark_passes_them() {
        let mut service = TimerService::new(KeyGroupRange::of_subtask(0, 128, 1), 128);
        for (key, at) in [("b", 20), ("a", 10), ("a", 20), ("a", 10), ("c", 30)] {
            service
                .register(TimeDomain::EventTime, key.as_bytes(), at)
                .unwrap();
        }
        service.delete(TimeDomain::EventTime, b"c", 30);
        assert_eq!(fired(&mut service, TimeDomain::EventTime), []);
        service.advance_watermark(20);
        service.advance_watermark(5);
        assert_eq!(service.current_watermark(), 20);
        let mut at_20 = fired(&mut service, TimeDomain::EventTime);
        assert_eq!(at_20.remove(0), ("a".to_owned(), 10));
        at_20.sort();
        assert_eq!(at_20, [("a".to_owned(), 20), ("b".to_owned(), 20)]);
        service.advance_watermark(i64::MAX);
        assert_eq!(fired(&mut service, TimeDomain::EventTime), []);
    }

    #[test]
    fn processing_timers_follow_the_clock_and_keys_must_be_the_subtasks() {
        let range = KeyGroupRange::of_subtask(0, 128, 2);
        let mut service = TimerService::new(range, 128);
        let (mine, theirs) = (0..100)
            .map(|i| format!("k{i}"))
            .partition::<Vec<_>, _>(|k| range.contains(key_group(k.as_bytes(), 128)));
        let now = service.current_processing_time();
        service
            .register(TimeDomain::ProcessingTime, mine[0].as_bytes(), now - 1)
            .unwrap();
        service
            .register(TimeDomain::ProcessingTime, mine[1].as_bytes(), now + 60_000)
            .unwrap();
        assert_eq!(service.next_processing_time(), Some(now - 1));
        assert_eq!(
            fired(&mut service, TimeDomain::ProcessingTime),
            [(mine[0].clone(), now - 1)]
        );
        let e = service
            .register(TimeDomain::EventTime, theirs[0].as_bytes(), 1)
            .unwrap_err();
        assert!(e.to_string().contains("not this subtask's"), "{e}");
        // The checkpoint holds what is left; a restore gives it back.
        let mut restored = TimerService::new(range, 128);
        for chunk in service.snapshot() {
            restored.restore(&chunk).unwrap();
        }
        assert_eq!(restored.next_processing_time(), Some(now + 60_000));
    }
}
