//! The generator source: deterministic keyed records, bounded or not, optionally paced.

use std::sync::Arc;

use cairn_wire::Emitter;

use super::pace::Pace;
use super::{
    ConnectorError, Options, Poll, SourceConnector, SourceKind, SourcePosition, SourceReader,
    Subtask, describe_single_split, restored_single_split, single_split,
};
use crate::batch::batch_full;

pub(super) const SOURCE: SourceKind = SourceKind {
    name: "generator",
    options: &["count", "keys", "rate"],
    from_options,
    describe: |position| {
        describe_single_split("generator", position, |next: Next| {
            format!("generator next {}", next.next)
        })
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

/// A generator subtask's position: the next sequence number it produces. Its split is its
/// share of the sequence (the numbers ≡ subtask mod parallelism), named by its subtask.
#[derive(serde::Serialize, serde::Deserialize)]
struct Next {
    next: u64,
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
    fn open(
        &self,
        subtask: Subtask,
        restored: Option<&SourcePosition>,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let (index, parallelism) = (subtask.index, subtask.parallelism);
        let next = match restored {
            None => None,
            Some(position) => {
                let Next { next } = restored_single_split("generator", subtask, position)?;
                if next % u64::from(parallelism) != u64::from(index) {
                    return Err(ConnectorError::Restore(format!(
                        "generator position {next} does not belong to subtask {index} of \
                         {parallelism} (it produces the numbers ≡ {index} mod {parallelism})"
                    )));
                }
                Some(next)
            }
        };
        Ok(Box::new(GeneratorSource::new(
            self.clone(),
            index,
            parallelism,
            next,
        )))
    }
}

/// Subtask `s` of `p` produces records i = s, s + p, s + 2p, … with key `key-<i mod keys>`
/// and value i as 8 little-endian bytes.
struct GeneratorSource {
    generator: Generator,
    subtask: u32,
    next: u64,
    step: u64,
    pace: Pace,
    key: Vec<u8>,
}

impl GeneratorSource {
    /// Subtask `subtask` of `parallelism`, continuing at sequence number `next` if given.
    fn new(generator: Generator, subtask: u32, parallelism: u32, next: Option<u64>) -> Self {
        GeneratorSource {
            pace: Pace::new(generator.rate as f64 / parallelism as f64),
            generator,
            subtask,
            next: next.unwrap_or(subtask as u64),
            step: parallelism as u64,
            key: Vec::with_capacity(24),
        }
    }

    fn exhausted(&self) -> bool {
        self.generator.count != 0 && self.next >= self.generator.count
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
            if self.exhausted() {
                return Ok(Poll::End);
            }
            self.key.clear();
            self.key.extend_from_slice(b"key-");
            self.key.extend_from_slice(
                itoa::Buffer::new()
                    .format(self.next % self.generator.keys)
                    .as_bytes(),
            );
            out.emit_keyed(&self.key, self.next.to_le_bytes());
            self.next += self.step;
            produced += 1;
        }
        self.pace.emitted(produced);
        Ok(if self.exhausted() {
            Poll::End
        } else {
            Poll::Ready
        })
    }

    fn position(&self) -> SourcePosition {
        single_split(self.subtask, &Next { next: self.next })
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn drain(mut source: GeneratorSource) -> Vec<(String, u64)> {
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

    #[test]
    fn subtasks_split_the_sequence_without_overlap() {
        let generator = Generator {
            count: 2500,
            keys: 7,
            rate: 0,
        };
        let mut seen: Vec<u64> = (0..3)
            .flat_map(|s| drain(GeneratorSource::new(generator.clone(), s, 3, None)))
            .map(|(key, i)| {
                assert_eq!(key, format!("key-{}", i % 7));
                i
            })
            .collect();
        seen.sort_unstable();
        assert_eq!(seen, (0..2500).collect::<Vec<_>>());
    }

    #[test]
    fn resumes_at_its_position() {
        let generator = Generator {
            count: 100,
            keys: 3,
            rate: 0,
        };
        let mut first = GeneratorSource::new(generator.clone(), 1, 2, None);
        let mut out = Emitter::default();
        first.poll(&mut out).unwrap();
        assert_eq!(first.position(), single_split(1, &Next { next: 101 }));
        let rest = drain(GeneratorSource::new(generator, 1, 2, Some(51)));
        let values: Vec<u64> = rest.iter().map(|(_, v)| *v).collect();
        assert_eq!(values, (51..100).step_by(2).collect::<Vec<_>>());
    }

    #[test]
    fn paced_generator_waits_between_batches() {
        let generator = Generator {
            count: 0,
            keys: 1,
            rate: 1000,
        };
        let mut source = GeneratorSource::new(generator, 0, 1, None);
        let mut out = Emitter::default();
        // Right at the start nothing is due yet; a wait of at most 100 ms is asked for.
        match source.poll(&mut out).unwrap() {
            Poll::Idle(wait) => assert!(wait <= Duration::from_millis(100)),
            other => panic!("expected Idle, got {other:?}"),
        }
        assert!(out.is_empty());
    }
}
