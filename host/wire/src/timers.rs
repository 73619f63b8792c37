//! Timers per key, as Flink's `TimerService`: the host keeps them, fires them to the job in
//! order and checkpoints them per key group beside the keyed state, so that they move with
//! their keys when the parallelism changes.
//!
//! **Order.** A [`TimerQueue`] holds one ordered set per [`TimeDomain`]. Timers of a domain
//! fire by timestamp; ties are broken by key group, then by key bytewise, so that a run of a
//! job fires the same timers in the same order whatever the order they were registered in.
//! Event-time and processing-time timers have no order relative to each other.
//!
//! **Dedup.** A key has at most one timer per domain and timestamp: registering it again
//! changes nothing (Flink's timer service dedups the same way). A key may have timers at
//! several timestamps, and one in each domain at the same timestamp.
//!
//! **Checkpoint encoding** (part of the `cairn:job` contract, beside `keyed-chunk`). The
//! timers of a key group, both domains, are one chunk of the keyed-state encoding
//! ([`crate::keyed`]), an entry per timer:
//!
//! ```text
//! key   = domain (1 byte: 0 event time, 1 processing time)
//!         · (timestamp XOR 2^63) as 8 bytes big-endian
//!         · the user key
//! value = empty (tag 1)
//! ```
//!
//! Flipping the sign bit makes the unsigned big-endian bytes of an `i64` sort as the signed
//! number does, so the host's bytewise order of entries (the order [`crate::keyed::sort`]
//! gives, the order [`TimerQueue::snapshot`] writes) is (domain, timestamp, key): within a
//! key group, the firing order. The user key starts at byte 9: that is what hashes to the
//! chunk's key group. A tombstone (tag 0) is reserved for a deleted timer in an incremental
//! delta; a full chunk, what [`TimerQueue::restore`] reads, has none.

use std::collections::{BTreeMap, BTreeSet};

use crate::keyed::{self, shown};
use crate::{Error, KeyedChunk, Result};

/// The bytes before the user key in a timer's entry key: the domain and the timestamp.
const PREFIX: usize = 9;

/// Flips the sign bit: the big-endian bytes of the result sort as the timestamps do.
const SIGN: u64 = 1 << 63;

/// Which clock a timer waits for (Flink's `TimeDomain`): they are kept, fired and bounded
/// apart, because the watermark and the wall clock advance independently.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimeDomain {
    /// Fires once the operator's input watermark reaches the timestamp.
    EventTime = 0,
    /// Fires once the host's clock (milliseconds since the epoch) reaches the timestamp.
    ProcessingTime = 1,
}

impl TimeDomain {
    /// Both domains, in the order of their bytes in the checkpoint encoding.
    const ALL: [TimeDomain; 2] = [TimeDomain::EventTime, TimeDomain::ProcessingTime];

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(TimeDomain::EventTime),
            1 => Some(TimeDomain::ProcessingTime),
            _ => None,
        }
    }
}

/// A timer of one key. The derived order — timestamp, then key group, then key — is the
/// order timers of a domain fire in: deterministic, whatever the registration order.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timer {
    /// Milliseconds since the epoch (event time or processing time, as its domain says).
    pub timestamp: i64,
    /// The key group of `key`, kept so that snapshots group timers without hashing keys and
    /// ties fire in key-group order.
    pub key_group: u16,
    /// The key of the records the timer belongs to: keyed state reads it when it fires.
    pub key: Box<[u8]>,
}

/// The timers of an operator subtask, both domains. Pure: the host decides when time
/// advances (it passes the watermark or the clock to [`TimerQueue::pop_due`]), so the queue
/// is tested, and used by the Rust SDK's native harness, without threads or clocks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TimerQueue {
    event: BTreeSet<Timer>,
    processing: BTreeSet<Timer>,
}

impl TimerQueue {
    fn domain(&self, domain: TimeDomain) -> &BTreeSet<Timer> {
        match domain {
            TimeDomain::EventTime => &self.event,
            TimeDomain::ProcessingTime => &self.processing,
        }
    }

    fn domain_mut(&mut self, domain: TimeDomain) -> &mut BTreeSet<Timer> {
        match domain {
            TimeDomain::EventTime => &mut self.event,
            TimeDomain::ProcessingTime => &mut self.processing,
        }
    }

    /// Adds `timer`. `false`: the key already has a timer at that timestamp in `domain`, and
    /// it fires once (dedup).
    pub fn register(&mut self, domain: TimeDomain, timer: Timer) -> bool {
        self.domain_mut(domain).insert(timer)
    }

    /// Removes `timer` so that it never fires. `false`: there was no such timer (deleting
    /// one that fired or never existed is not an error, as in Flink).
    pub fn delete(&mut self, domain: TimeDomain, timer: &Timer) -> bool {
        self.domain_mut(domain).remove(timer)
    }

    /// The timestamp of the next timer to fire in `domain`: the host waits for its clock up
    /// to there, and need not look at the queue while the watermark stays below it.
    pub fn next(&self, domain: TimeDomain) -> Option<i64> {
        self.domain(domain).first().map(|timer| timer.timestamp)
    }

    /// Removes and returns, in firing order, up to `max` timers of `domain` with a timestamp
    /// `≤ until` (the watermark or the clock). `max` bounds one call's batch; timers left
    /// due come with the next call.
    pub fn pop_due(&mut self, domain: TimeDomain, until: i64, max: usize) -> Vec<Timer> {
        let set = self.domain_mut(domain);
        let mut due = Vec::new();
        while due.len() < max && set.first().is_some_and(|timer| timer.timestamp <= until) {
            due.extend(set.pop_first());
        }
        due
    }

    /// How many timers there are, both domains: metrics and `cairn inspect`.
    pub fn len(&self) -> usize {
        self.event.len() + self.processing.len()
    }

    /// No timers in either domain: a snapshot has nothing to store.
    pub fn is_empty(&self) -> bool {
        self.event.is_empty() && self.processing.is_empty()
    }

    /// The timers as checkpoint chunks: one per key group that has timers (both domains in
    /// it), in key-group order, each chunk's entries sorted bytewise by key — the encoding
    /// of the [module docs](self), ready to be stored as the host stores keyed state.
    pub fn snapshot(&self) -> Vec<KeyedChunk> {
        let mut chunks: BTreeMap<u16, Vec<u8>> = BTreeMap::new();
        let mut key = Vec::new();
        // A domain's set restricted to one key group is in (timestamp, key) order, and the
        // domains come in byte order: every chunk is appended to in its sorted order.
        for domain in TimeDomain::ALL {
            for timer in self.domain(domain) {
                entry_key(&mut key, domain, timer);
                keyed::put(chunks.entry(timer.key_group).or_default(), &key, &[]);
            }
        }
        chunks
            .into_iter()
            .map(|(key_group, entries)| KeyedChunk { key_group, entries })
            .collect()
    }

    /// Adds the timers of a chunk [`TimerQueue::snapshot`] wrote — any old subtask's, after a
    /// rescale: restoring the chunks of several snapshots gives the union of their timers,
    /// in any order. Entries may come in any order; a timer already in the queue stays once.
    /// A malformed chunk is refused whole, the queue unchanged. The host has checked that the
    /// keys belong to the chunk's key group when it wrote the checkpoint.
    pub fn restore(&mut self, chunk: &KeyedChunk) -> Result<()> {
        let malformed = |what: String| {
            Error::msg(format!(
                "malformed timers of key group {}: {what}",
                chunk.key_group
            ))
        };
        let mut timers = Vec::new();
        for entry in keyed::entries(&chunk.entries) {
            let entry = entry.map_err(|e| malformed(e.to_string()))?;
            let Some((&domain, Some((timestamp, key)))) = entry
                .key
                .split_first()
                .map(|(domain, rest)| (domain, rest.split_first_chunk::<8>()))
            else {
                return Err(malformed(format!(
                    "the entry key {} is shorter than a domain and a timestamp ({PREFIX} bytes)",
                    shown(entry.key)
                )));
            };
            let domain = TimeDomain::from_byte(domain).ok_or_else(|| {
                malformed(format!(
                    "the entry key {} has domain {domain} (0 is event time, 1 processing time)",
                    shown(entry.key)
                ))
            })?;
            match entry.value {
                Some([]) => {}
                Some(value) => {
                    return Err(malformed(format!(
                        "the timer {} has a value ({} bytes); timers have none",
                        shown(entry.key),
                        value.len()
                    )));
                }
                None => {
                    return Err(malformed(format!(
                        "the timer {} is a tombstone (a deleted timer), which a full snapshot \
                         does not hold",
                        shown(entry.key)
                    )));
                }
            }
            timers.push((
                domain,
                Timer {
                    timestamp: (u64::from_be_bytes(*timestamp) ^ SIGN) as i64,
                    key_group: chunk.key_group,
                    key: key.into(),
                },
            ));
        }
        for (domain, timer) in timers {
            self.register(domain, timer);
        }
        Ok(())
    }
}

/// The user key of a timer's entry key (see the [module docs](self)): what hashes to the
/// chunk's key group; `None` when the entry key is too short to be a timer's.
pub fn user_key(entry_key: &[u8]) -> Option<&[u8]> {
    entry_key.get(PREFIX..)
}

/// Sets `out` to the entry key of `timer` in `domain` (see the [module docs](self)).
fn entry_key(out: &mut Vec<u8>, domain: TimeDomain, timer: &Timer) {
    out.clear();
    out.push(domain as u8);
    out.extend_from_slice(&((timer.timestamp as u64) ^ SIGN).to_be_bytes());
    out.extend_from_slice(&timer.key);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::KeyGroupRange;
    use crate::key_groups::key_group;
    use TimeDomain::{EventTime, ProcessingTime};
    use proptest::prelude::*;

    fn timer(timestamp: i64, key_group: u16, key: &[u8]) -> Timer {
        Timer {
            timestamp,
            key_group,
            key: key.into(),
        }
    }

    fn popped(queue: &mut TimerQueue, domain: TimeDomain, until: i64) -> Vec<(i64, u16, Vec<u8>)> {
        queue
            .pop_due(domain, until, usize::MAX)
            .into_iter()
            .map(|t| (t.timestamp, t.key_group, t.key.into_vec()))
            .collect()
    }

    #[test]
    fn a_key_has_one_timer_per_domain_and_timestamp() {
        let mut queue = TimerQueue::default();
        assert!(queue.is_empty());
        assert!(queue.register(EventTime, timer(10, 3, b"a")));
        assert!(!queue.register(EventTime, timer(10, 3, b"a")));
        assert!(queue.register(EventTime, timer(11, 3, b"a")));
        assert!(queue.register(EventTime, timer(10, 3, b"b")));
        assert!(queue.register(ProcessingTime, timer(10, 3, b"a")));
        assert!(!queue.register(ProcessingTime, timer(10, 3, b"a")));
        assert_eq!(queue.len(), 4);
        assert!(!queue.is_empty());
        assert_eq!(
            popped(&mut queue, EventTime, 10),
            [(10, 3, b"a".to_vec()), (10, 3, b"b".to_vec())]
        );
        assert_eq!(queue.len(), 2);
    }

    #[test]
    fn a_deleted_timer_never_fires() {
        let mut queue = TimerQueue::default();
        queue.register(EventTime, timer(5, 0, b"k"));
        queue.register(ProcessingTime, timer(5, 0, b"k"));
        assert!(!queue.delete(EventTime, &timer(6, 0, b"k")));
        assert!(!queue.delete(EventTime, &timer(5, 1, b"k")));
        assert!(queue.delete(EventTime, &timer(5, 0, b"k")));
        assert!(!queue.delete(EventTime, &timer(5, 0, b"k")));
        assert_eq!(popped(&mut queue, EventTime, i64::MAX), []);
        assert_eq!(queue.next(ProcessingTime), Some(5));
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn timers_fire_by_timestamp_then_key_group_then_key() {
        let mut queue = TimerQueue::default();
        for (ts, group, key) in [
            (0, 0, &b"z"[..]),
            (-1, 9, b"a"),
            (i64::MIN, 5, b""),
            (i64::MAX, 0, b"a"),
            (0, 0, b"y"),
            (0, 0, b""),
            (-1, 2, b"b"),
            (1, 0, b"a"),
        ] {
            queue.register(EventTime, timer(ts, group, key));
        }
        assert_eq!(queue.next(EventTime), Some(i64::MIN));
        assert_eq!(queue.next(ProcessingTime), None);
        let order: Vec<_> = popped(&mut queue, EventTime, i64::MAX);
        assert_eq!(
            order,
            [
                (i64::MIN, 5, vec![]),
                (-1, 2, b"b".to_vec()),
                (-1, 9, b"a".to_vec()),
                (0, 0, vec![]),
                (0, 0, b"y".to_vec()),
                (0, 0, b"z".to_vec()),
                (1, 0, b"a".to_vec()),
                (i64::MAX, 0, b"a".to_vec()),
            ]
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn pop_due_takes_at_most_max_timers_up_to_until() {
        let mut queue = TimerQueue::default();
        for ts in [-3, -2, -1, 0, 1, 2] {
            queue.register(EventTime, timer(ts, 0, b"k"));
        }
        queue.register(ProcessingTime, timer(-10, 0, b"k"));
        let stamps = |timers: Vec<Timer>| timers.iter().map(|t| t.timestamp).collect::<Vec<_>>();
        assert_eq!(stamps(queue.pop_due(EventTime, -4, 10)), [] as [i64; 0]);
        assert_eq!(stamps(queue.pop_due(EventTime, 1, 2)), [-3, -2]);
        assert_eq!(stamps(queue.pop_due(EventTime, 1, 0)), [] as [i64; 0]);
        assert_eq!(stamps(queue.pop_due(EventTime, 1, 10)), [-1, 0, 1]);
        assert_eq!(queue.next(EventTime), Some(2));
        assert_eq!(queue.next(ProcessingTime), Some(-10));
        assert_eq!(stamps(queue.pop_due(ProcessingTime, 100, 10)), [-10]);
        assert_eq!(queue.next(ProcessingTime), None);
        assert_eq!(queue.len(), 1);
    }

    #[test]
    fn the_encoding_is_the_documented_one() {
        let mut queue = TimerQueue::default();
        queue.register(ProcessingTime, timer(1, 7, b"k"));
        queue.register(EventTime, timer(-1, 7, b"k"));
        queue.register(EventTime, timer(0, 2, b""));
        let chunks = queue.snapshot();
        let mut seven = Vec::new();
        keyed::put(
            &mut seven,
            &[
                &[0, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff][..],
                b"k",
            ]
            .concat(),
            &[],
        );
        keyed::put(
            &mut seven,
            &[&[1, 0x80, 0, 0, 0, 0, 0, 0, 1][..], b"k"].concat(),
            &[],
        );
        let mut two = Vec::new();
        keyed::put(&mut two, &[0, 0x80, 0, 0, 0, 0, 0, 0, 0], &[]);
        assert_eq!(
            chunks,
            [
                KeyedChunk {
                    key_group: 2,
                    entries: two
                },
                KeyedChunk {
                    key_group: 7,
                    entries: seven
                },
            ]
        );
        assert_eq!(TimerQueue::default().snapshot(), []);
    }

    #[test]
    fn malformed_chunks_are_refused_and_change_nothing() {
        let entry = |key: &[u8], value: Option<&[u8]>| {
            let mut entry = Vec::new();
            match value {
                Some(value) => keyed::put(&mut entry, key, value),
                None => keyed::put_tombstone(&mut entry, key),
            }
            entry
        };
        // A good timer first: a refused chunk must not leave it in the queue.
        let good = entry(&[0, 0x80, 0, 0, 0, 0, 0, 0, 5, b'x'], Some(b""));
        let chunk = |bad: &[u8]| KeyedChunk {
            key_group: 4,
            entries: [&good[..], bad].concat(),
        };
        let cases = [
            (
                entry(&[0, 0x80, 0, 0, 0, 0, 0, 0], Some(b"")),
                "malformed timers of key group 4: the entry key 0x0080000000000000 is shorter \
                 than a domain and a timestamp (9 bytes)",
            ),
            (
                entry(&[2, 0x80, 0, 0, 0, 0, 0, 0, 0], Some(b"")),
                "malformed timers of key group 4: the entry key 0x028000000000000000 has \
                 domain 2 (0 is event time, 1 processing time)",
            ),
            (
                entry(&[1, 0x80, 0, 0, 0, 0, 0, 0, 0, b'k'], Some(b"v")),
                "malformed timers of key group 4: the timer 0x0180000000000000006b has a \
                 value (1 bytes); timers have none",
            ),
            (
                entry(&[1, 0x80, 0, 0, 0, 0, 0, 0, 0], None),
                "malformed timers of key group 4: the timer 0x018000000000000000 is a \
                 tombstone (a deleted timer), which a full snapshot does not hold",
            ),
            (
                vec![0x03, 1],
                "malformed timers of key group 4: malformed keyed chunk: an entry runs past \
                 its end",
            ),
        ];
        for (bad, message) in cases {
            let mut queue = TimerQueue::default();
            let err = queue.restore(&chunk(&bad)).unwrap_err();
            assert_eq!(err.message(), message);
            assert!(queue.is_empty());
        }
        let mut queue = TimerQueue::default();
        queue.restore(&chunk(&[])).unwrap();
        assert_eq!(popped(&mut queue, EventTime, 5), [(5, 4, b"x".to_vec())]);
    }

    const MAX_PARALLELISM: u32 = 16;

    /// Timers of a few keys (so that keys share key groups and timestamps tie), each in a
    /// domain, with the key group their key hashes to.
    fn timers() -> impl Strategy<Value = Vec<(TimeDomain, Timer)>> {
        let timestamp = prop_oneof![-3i64..3, any::<i64>(), Just(i64::MIN), Just(i64::MAX),];
        let key = prop_oneof![
            (0u8..8).prop_map(|k| vec![k]),
            proptest::collection::vec(any::<u8>(), 0..12),
        ];
        let domain = prop_oneof![Just(EventTime), Just(ProcessingTime)];
        proptest::collection::vec((domain, timestamp, key), 0..80).prop_map(|timers| {
            timers
                .into_iter()
                .map(|(domain, timestamp, key)| {
                    let key_group = key_group(&key, MAX_PARALLELISM) as u16;
                    (domain, timer(timestamp, key_group, &key))
                })
                .collect()
        })
    }

    fn queue_of(timers: &[(TimeDomain, Timer)]) -> TimerQueue {
        let mut queue = TimerQueue::default();
        for (domain, timer) in timers {
            queue.register(*domain, timer.clone());
        }
        queue
    }

    proptest! {
        #[test]
        fn a_snapshot_restores_to_the_same_queue(timers in timers()) {
            let queue = queue_of(&timers);
            let chunks = queue.snapshot();
            let groups: Vec<u16> = chunks.iter().map(|c| c.key_group).collect();
            let mut expected = groups.clone();
            expected.sort_unstable();
            expected.dedup();
            prop_assert_eq!(&groups, &expected, "one chunk per key group, in order");
            let mut restored = TimerQueue::default();
            for chunk in &chunks {
                let sorted = keyed::sort(&chunk.entries, false).unwrap();
                prop_assert_eq!(&sorted.chunk, &chunk.entries, "entries sorted by key");
                restored.restore(chunk).unwrap();
            }
            prop_assert_eq!(restored, queue);
        }

        #[test]
        fn restoring_the_chunks_of_several_subtasks_gives_the_union(
            timers in timers(),
            old in 1u32..5,
            seed in any::<u64>(),
        ) {
            // Each old subtask had the timers of its key groups.
            let subtasks: Vec<TimerQueue> = (0..old)
                .map(|i| {
                    let range = KeyGroupRange::of_subtask(i, MAX_PARALLELISM, old);
                    let own: Vec<_> = timers
                        .iter()
                        .filter(|(_, t)| range.contains(u32::from(t.key_group)))
                        .cloned()
                        .collect();
                    queue_of(&own)
                })
                .collect();
            let mut chunks: Vec<KeyedChunk> =
                subtasks.iter().flat_map(TimerQueue::snapshot).collect();
            chunks.sort_by_key(|c| key_group(&[&seed.to_le_bytes()[..], &c.entries].concat(), u32::MAX));
            let mut restored = TimerQueue::default();
            for chunk in &chunks {
                restored.restore(chunk).unwrap();
            }
            prop_assert_eq!(restored, queue_of(&timers));
        }

        #[test]
        fn encoded_keys_sort_in_firing_order(timers in timers()) {
            // Within a key group (a chunk), bytewise order of entry keys is the domain, then
            // the order timers fire in.
            for (d1, t1) in &timers {
                for (d2, t2) in &timers {
                    // Every pair, as if both keys were of one key group.
                    let t2 = &Timer { key_group: t1.key_group, ..t2.clone() };
                    let (mut k1, mut k2) = (Vec::new(), Vec::new());
                    entry_key(&mut k1, *d1, t1);
                    entry_key(&mut k2, *d2, t2);
                    prop_assert_eq!(k1.cmp(&k2), (d1, t1).cmp(&(d2, t2)), "{:?} {:?}", t1, t2);
                }
            }
        }
    }
}
