//! Key groups: the unit keyed records are routed (and, later, keyed state is stored) by.
//! `key_group = hash(key) mod max_parallelism` is fixed for the life of a job.

/// The key group of a key: a stable hash, modulo the number of key groups.
pub fn key_group(key: &[u8], max_parallelism: u32) -> u32 {
    (xxhash_rust::xxh3::xxh3_64(key) % max_parallelism as u64) as u32
}

/// The subtask that owns a key group: contiguous ranges of key groups per subtask, as in
/// Flink, so that rescaling later moves whole ranges.
pub fn subtask_for_key_group(key_group: u32, max_parallelism: u32, parallelism: u32) -> u32 {
    (key_group as u64 * parallelism as u64 / max_parallelism as u64) as u32
}

#[cfg(test)]
mod tests {
    use super::*;

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
