//! Key groups: the unit keyed records are routed and keyed state is stored by.
//! `key_group = hash(key) mod max_parallelism` is fixed for the life of a job; a subtask is
//! the current owner of a contiguous [`KeyGroupRange`].

use std::ops::RangeInclusive;

/// The key group of a key: a stable hash, modulo the number of key groups.
pub fn key_group(key: &[u8], max_parallelism: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(key) % max_parallelism as u64) as u32
}

/// The subtask that owns a key group: contiguous ranges of key groups per subtask, as in
/// Flink, so that rescaling later moves whole ranges.
pub fn subtask_for_key_group(key_group: u32, max_parallelism: u32, parallelism: u32) -> u32 {
    (key_group as u64 * parallelism as u64 / max_parallelism as u64) as u32
}

/// Key groups `first..=last` (`cairn:job/types.key-group-range`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyGroupRange {
    pub first: u32,
    pub last: u32,
}

impl KeyGroupRange {
    /// The key groups subtask `subtask` of `parallelism` owns: those that
    /// [`subtask_for_key_group`] gives it. Every subtask owns at least one when
    /// `parallelism <= max_parallelism`.
    pub fn of_subtask(subtask: u32, max_parallelism: u32, parallelism: u32) -> Self {
        let (max, p, i) = (
            u64::from(max_parallelism),
            u64::from(parallelism),
            u64::from(subtask),
        );
        // The smallest g with g * p / max >= i is ceil(i * max / p).
        let start = |i: u64| (i * max).div_ceil(p);
        KeyGroupRange {
            first: start(i) as u32,
            last: (start(i + 1) - 1) as u32,
        }
    }

    pub fn contains(&self, key_group: u32) -> bool {
        (self.first..=self.last).contains(&key_group)
    }

    /// The key groups, in order.
    pub fn iter(&self) -> RangeInclusive<u32> {
        self.first..=self.last
    }

    /// Whether the two ranges share a key group.
    pub fn overlaps(&self, other: &KeyGroupRange) -> bool {
        self.first <= other.last && other.first <= self.last
    }
}

impl std::fmt::Display for KeyGroupRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}..={}", self.first, self.last)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_subtasks_range_is_what_routing_gives_it() {
        for max in [1, 2, 7, 128, 1000] {
            for parallelism in (1..=max.min(40)).chain([max]) {
                let mut next = 0;
                for subtask in 0..parallelism {
                    let range = KeyGroupRange::of_subtask(subtask, max, parallelism);
                    assert_eq!(range.first, next, "max {max} p {parallelism} #{subtask}");
                    assert!(range.first <= range.last);
                    for g in range.iter() {
                        assert_eq!(subtask_for_key_group(g, max, parallelism), subtask);
                    }
                    next = range.last + 1;
                }
                assert_eq!(next, max);
            }
        }
    }

    #[test]
    fn key_groups_split_into_contiguous_ranges() {
        for parallelism in 1..=7 {
            let owners: Vec<u32> = (0..128)
                .map(|g| subtask_for_key_group(g, 128, parallelism))
                .collect();
            assert!(owners.windows(2).all(|w| w[0] <= w[1] && w[1] - w[0] <= 1));
            assert_eq!(owners[0], 0);
            assert_eq!(owners[127], parallelism - 1);
        }
    }
}
