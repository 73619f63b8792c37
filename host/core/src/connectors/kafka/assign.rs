//! Which source subtask reads a partition: Flink's `KafkaSourceEnumerator.getSplitOwner`, so
//! that a topic's partitions spread over the subtasks as they do in Flink, each topic
//! starting at its own subtask.

/// The subtask (of `parallelism`) that reads `partition` of `topic`.
pub(super) fn owner(topic: &str, partition: i32, parallelism: u32) -> u32 {
    let parallelism = i64::from(parallelism.max(1));
    let start = i64::from(java_hash(topic).wrapping_mul(31) & 0x7FFF_FFFF) % parallelism;
    ((start + i64::from(partition)) % parallelism) as u32
}

/// Java's `String.hashCode`: over UTF-16 code units, wrapping.
fn java_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_as_java_does() {
        // Values of "...".hashCode() in Java.
        assert_eq!(java_hash(""), 0);
        assert_eq!(java_hash("words"), 113_318_569);
        assert_eq!(java_hash("a-rather-long-topic-name"), 996_987_977);
    }

    #[test]
    fn partitions_go_round_robin_from_the_topics_start() {
        let start = owner("words", 0, 3);
        for partition in 0..9 {
            assert_eq!(owner("words", partition, 3), (start + partition as u32) % 3);
        }
        // Each subtask gets a fair share.
        let mut counts = [0; 4];
        for partition in 0..12 {
            counts[owner("t", partition, 4) as usize] += 1;
        }
        assert_eq!(counts, [3, 3, 3, 3]);
    }
}
