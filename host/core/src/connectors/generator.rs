//! The generator source: deterministic keyed records, bounded or not, optionally paced.
//!
//! The sequence is cut into [`SPLITS`] splits, independent of the parallelism: split `s`
//! produces `s`, `s + SPLITS`, `s + 2·SPLITS`, …. Subtask `i` of `p` reads the contiguous range
//! of splits key group `i` would own (`KeyGroupRange::of_subtask`), round robin, and
//! checkpoints one position per split — so the positions move with their splits when the job
//! restores at another parallelism.

use std::sync::Arc;

use cairn_wire::{Emitter, KeyGroupRange};

use super::pace::Pace;
use super::{
    ConnectorError, Options, Poll, SourceConnector, SourceKind, SourcePosition, SourceReader,
    SplitPosition, Subtask, decode, encode,
};
use crate::batch::batch_full;

/// How many splits the sequence has: the most subtasks a generator runs at.
pub const SPLITS: u32 = 128;
/// The encoding of positions: version 2 is one position per split (version 1, one per
/// subtask with the sequence cut by the parallelism, is refused by name).
const POSITION_VERSION: u32 = 2;

pub(super) const SOURCE: SourceKind = SourceKind {
    name: "generator",
    options: &["count", "keys", "rate"],
    from_options,
    describe: |position| match splits(position) {
        Ok(splits) if splits.is_empty() => "generator, no splits".to_owned(),
        Ok(splits) => {
            let least = splits
                .iter()
                .map(|(_, next)| next)
                .min()
                .copied()
                .unwrap_or(0);
            let most = splits
                .iter()
                .map(|(_, next)| next)
                .max()
                .copied()
                .unwrap_or(0);
            format!("generator {} split(s), next {least}..={most}", splits.len())
        }
        Err(e) => e.to_string(),
    },
};

fn from_options(options: &Options) -> Result<Arc<dyn SourceConnector>, ConnectorError> {
    let keys = options.number("keys", 1000)?;
    if keys == 0 {
        return Err(options.invalid("keys", "0", "there must be at least one key".into()));
    }
    Ok(Arc::new(Generator {
        count: options.number("count", 0)?,
        keys,
        rate: options.number("rate", 0)?,
    }))
}

/// A split's position: the next sequence number it produces.
#[derive(serde::Serialize, serde::Deserialize)]
struct Next {
    next: u64,
}

/// The `(split, next)` pairs of a checkpointed position, checked: every split is one of the
/// generator's and its next number is of that split.
fn splits(position: &SourcePosition) -> Result<Vec<(u32, u64)>, ConnectorError> {
    position
        .splits
        .iter()
        .map(|split| {
            let index = split
                .split
                .parse::<u32>()
                .ok()
                .filter(|s| *s < SPLITS)
                .ok_or_else(|| {
                    ConnectorError::Restore(format!(
                        "'{}' is not a generator split (0 to {})",
                        split.split,
                        SPLITS - 1
                    ))
                })?;
            let Next { next } = decode(
                "generator",
                &split.position,
                position.version,
                POSITION_VERSION,
            )?;
            if next % u64::from(SPLITS) != u64::from(index) {
                return Err(ConnectorError::Restore(format!(
                    "generator position {next} is not of split {index}"
                )));
            }
            Ok((index, next))
        })
        .collect()
}

/// Generator settings (node options `count`, `keys`, `rate`).
#[derive(Debug, Clone, PartialEq, Eq)]
struct Generator {
    /// Records in all, across subtasks; 0 = unbounded.
    count: u64,
    /// Distinct keys: record i has key `key-<i mod keys>`.
    keys: u64,
    /// Records per second in all, across subtasks; 0 = as fast as possible.
    rate: u64,
}

impl SourceConnector for Generator {
    fn max_parallelism(&self) -> Option<u32> {
        Some(SPLITS)
    }

    fn redistributes(&self) -> bool {
        true
    }

    /// Restoring, `restored` may hold the positions of every split (after a rescale, all
    /// old subtasks'): the subtask takes those of its own splits, each of which must be
    /// there.
    fn open(
        &self,
        subtask: Subtask,
        restored: Option<&SourcePosition>,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let owned = KeyGroupRange::of_subtask(subtask.index, SPLITS, subtask.parallelism);
        let splits =
            match restored {
                None => owned.iter().map(|s| (s, u64::from(s))).collect(),
                Some(position) => {
                    let all = splits(position)?;
                    owned
                        .iter()
                        .map(|s| {
                            all.iter().find(|(split, _)| *split == s).copied().ok_or_else(|| {
                            ConnectorError::Restore(format!(
                                "the checkpoint has no position for generator split {s} (of \
                                 subtask {} of {})",
                                subtask.index, subtask.parallelism
                            ))
                        })
                        })
                        .collect::<Result<_, _>>()?
                }
            };
        Ok(Box::new(GeneratorSource::new(
            self.clone(),
            splits,
            subtask.parallelism,
        )))
    }
}

/// A subtask's splits, read round robin: record i has key `key-<i mod keys>` and value i as
/// 8 little-endian bytes.
struct GeneratorSource {
    generator: Generator,
    /// `(split, next number)`.
    splits: Vec<(u32, u64)>,
    /// The split read next.
    turn: usize,
    /// Splits that have numbers left.
    live: usize,
    pace: Pace,
    key: Vec<u8>,
}

impl GeneratorSource {
    fn new(generator: Generator, splits: Vec<(u32, u64)>, parallelism: u32) -> Self {
        // Resume with the split that is furthest behind: a restored subtask goes on in the
        // order it would have without the restore.
        let turn = splits
            .iter()
            .enumerate()
            .min_by_key(|(i, (_, next))| (*next, *i))
            .map_or(0, |(i, _)| i);
        let live = splits
            .iter()
            .filter(|(_, next)| !generator.past_the_end(*next))
            .count();
        GeneratorSource {
            pace: Pace::new(generator.rate as f64 / parallelism as f64),
            generator,
            splits,
            turn,
            live,
            key: Vec::with_capacity(24),
        }
    }
}

impl Generator {
    /// Whether sequence number `n` is beyond a bounded generator's end.
    fn past_the_end(&self, n: u64) -> bool {
        self.count != 0 && n >= self.count
    }
}

impl SourceReader for GeneratorSource {
    fn poll(&mut self, out: &mut Emitter) -> Result<Poll, ConnectorError> {
        let limit = match self.pace.allowance() {
            Ok(limit) => limit,
            Err(wait) => return Ok(Poll::Idle(wait)),
        };
        let mut produced = 0;
        while produced < limit && !batch_full(out) {
            if self.live == 0 {
                return Ok(Poll::End);
            }
            let splits = self.splits.len();
            let (_, next) = &mut self.splits[self.turn];
            self.turn += 1;
            if self.turn == splits {
                self.turn = 0;
            }
            if self.generator.past_the_end(*next) {
                continue;
            }
            let value = *next;
            *next += u64::from(SPLITS);
            if self.generator.past_the_end(*next) {
                self.live -= 1;
            }
            self.key.clear();
            self.key.extend_from_slice(b"key-");
            self.key.extend_from_slice(
                itoa::Buffer::new()
                    .format(value % self.generator.keys)
                    .as_bytes(),
            );
            out.emit_keyed(&self.key, value.to_le_bytes());
            produced += 1;
        }
        self.pace.emitted(produced);
        Ok(if self.live == 0 {
            Poll::End
        } else {
            Poll::Ready
        })
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            version: POSITION_VERSION,
            splits: self
                .splits
                .iter()
                .map(|(split, next)| SplitPosition {
                    split: split.to_string(),
                    position: encode(&Next { next: *next }),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn subtasks_split_the_sequence_without_overlap() {
        let generator = Generator {
            count: 2500,
            keys: 7,
            rate: 0,
        };
        let mut seen: Vec<u64> = (0..3)
            .flat_map(|s| drain(open(&generator, s, 3, None)))
            .map(|(key, i)| {
                assert_eq!(key, format!("key-{}", i % 7));
                i
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..2500).collect::<Vec<_>>());
    }

    fn open(
        generator: &Generator,
        index: u32,
        parallelism: u32,
        restored: Option<&SourcePosition>,
    ) -> Box<dyn SourceReader> {
        let subtask = Subtask {
            job_name: "job",
            uid: "numbers",
            index,
            parallelism,
        };
        generator.open(subtask, restored).unwrap()
    }

    fn drain(mut source: Box<dyn SourceReader>) -> Vec<(String, u64)> {
        let mut out = Emitter::default();
        let mut all = Vec::new();
        loop {
            let poll = source.poll(&mut out).unwrap();
            let batch = out.take();
            for r in batch.records(0).unwrap() {
                let value = u64::from_le_bytes(r.value().try_into().unwrap());
                all.push((r.key_str().unwrap().to_owned(), value));
            }
            if poll == Poll::End {
                return all;
            }
        }
    }

    /// Reads about `records` from each subtask's reader and returns their positions.
    fn partly(
        generator: &Generator,
        parallelism: u32,
        records: usize,
    ) -> (Vec<u64>, SourcePosition) {
        let mut seen = Vec::new();
        let mut union = SourcePosition {
            version: POSITION_VERSION,
            splits: Vec::new(),
        };
        for index in 0..parallelism {
            let mut reader = open(generator, index, parallelism, None);
            let mut out = Emitter::default();
            while seen.len() < records * (index as usize + 1) {
                reader.poll(&mut out).unwrap();
                let batch = out.take();
                seen.extend(
                    batch
                        .records(0)
                        .unwrap()
                        .map(|r| u64::from_le_bytes(r.value().try_into().unwrap())),
                );
            }
            union.splits.extend(reader.position().splits);
        }
        (seen, union)
    }

    #[test]
    fn positions_move_with_their_splits_to_any_parallelism() {
        let generator = Generator {
            count: 50_000,
            keys: 11,
            rate: 0,
        };
        for (old, new) in [(1, 3), (3, 2), (2, 128), (5, 1)] {
            let (mut seen, union) = partly(&generator, old, 3_000);
            for index in 0..new {
                seen.extend(
                    drain(open(&generator, index, new, Some(&union)))
                        .iter()
                        .map(|r| r.1),
                );
            }
            seen.sort_unstable();
            assert_eq!(seen, (0..50_000).collect::<Vec<_>>(), "{old} -> {new}");
        }
    }

    #[test]
    fn a_position_that_is_not_the_generators_is_a_restore_error() {
        let generator = Generator {
            count: 100,
            keys: 3,
            rate: 0,
        };
        let (_, mut position) = partly(&generator, 2, 10);
        let subtask = Subtask {
            job_name: "job",
            uid: "numbers",
            index: 0,
            parallelism: 2,
        };
        let mut missing = position.clone();
        missing.splits.retain(|s| s.split != "5");
        let err = generator.open(subtask, Some(&missing)).err().unwrap();
        assert!(
            err.to_string()
                .contains("no position for generator split 5"),
            "{err}"
        );
        position.splits[0].position = encode(&Next { next: 1 });
        let err = generator.open(subtask, Some(&position)).err().unwrap();
        assert!(err.to_string().contains("is not of split 0"), "{err}");
        position.version = 1;
        let err = generator.open(subtask, Some(&position)).err().unwrap();
        assert!(err.to_string().contains("encoding version 1"), "{err}");
    }

    #[test]
    fn paced_generator_waits_between_batches() {
        let generator = Generator {
            count: 0,
            keys: 1,
            rate: 1000,
        };
        let mut source = open(&generator, 0, 1, None);
        let mut out = Emitter::default();
        // Right at the start nothing is due yet; a wait of at most 100 ms is asked for.
        match source.poll(&mut out).unwrap() {
            Poll::Idle(wait) => assert!(wait <= Duration::from_millis(100)),
            other => panic!("expected Idle, got {other:?}"),
        }
        assert!(out.is_empty());
    }
}
