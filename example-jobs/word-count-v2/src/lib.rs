//! Word count, version 2: the same job and output contract as `word-count` (`word<TAB>n`
//! for the n-th occurrence of each word), with a different state encoding — and a
//! migration, so that it resumes from v1's savepoints and checkpoints, or takes over a
//! running v1 job with `cairn swap`.
//!
//! The `count` operator's state encodings (the contract other languages' word counts share):
//!
//! - version 1 (`word-count`): [postcard] of `struct { counts: map<string, u64> }` — a
//!   varint entry count, then per entry a varint-length UTF-8 word and a varint count.
//! - version 2 (this job): UTF-8 text, one `word<TAB>count<LF>` line per word, sorted by
//!   word. Words never contain whitespace, so the format needs no escaping.

use std::collections::{BTreeMap, HashMap};

use cairn_sdk::prelude::*;
use word_count::{Split, WordCount};

/// Counts occurrences per word and emits the running count, keeping its counts sorted.
#[derive(Default, Serialize, Deserialize)]
pub struct Count {
    counts: BTreeMap<String, u64>,
}

/// Version 1's state, as `word-count` encodes it.
#[derive(Deserialize)]
struct CountV1 {
    counts: HashMap<String, u64>,
}

impl Operator for Count {
    const STATE_VERSION: u32 = 2;

    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let word = record.key_str()?;
        let n = match self.counts.get_mut(word) {
            Some(n) => n,
            None => self.counts.entry(word.to_owned()).or_default(),
        };
        *n += 1;
        out.emit_parts(|v| {
            v.str(word).byte(b'\t').u64(*n);
        });
        Ok(())
    }

    fn snapshot(&self) -> Result<Vec<u8>> {
        let mut text = String::new();
        for (word, n) in &self.counts {
            text.push_str(word);
            text.push('\t');
            text.push_str(&n.to_string());
            text.push('\n');
        }
        Ok(text.into_bytes())
    }

    fn restore(&mut self, state: &[u8], version: u32) -> Result<()> {
        self.counts = match version {
            1 => {
                let v1: CountV1 = postcard::from_bytes(state)
                    .map_err(|e| Error::msg(format!("cannot decode version 1 state: {e}")))?;
                cairn_sdk::info!(
                    "migrating {} word counts from state version 1",
                    v1.counts.len()
                );
                v1.counts.into_iter().collect()
            }
            2 => parse_v2(state)?,
            other => {
                return Err(Error::msg(format!(
                    "unknown state version {other}: this count reads versions 1 and 2"
                )));
            }
        };
        Ok(())
    }
}

fn parse_v2(state: &[u8]) -> Result<BTreeMap<String, u64>> {
    let text = std::str::from_utf8(state)
        .map_err(|e| Error::msg(format!("version 2 state is not UTF-8: {e}")))?;
    text.lines()
        .map(|line| {
            let (word, n) = line
                .split_once('\t')
                .ok_or_else(|| Error::msg(format!("version 2 state: no tab in line {line:?}")))?;
            Ok((word.to_owned(), n.parse::<u64>()?))
        })
        .collect()
}

pub struct WordCountV2;

impl Job for WordCountV2 {
    /// The v1 graph, node for node: same uids, edges and connectors, so that state maps by
    /// uid and a running v1 job can be swapped to this code.
    fn describe(args: &Args) -> Result<JobGraph> {
        let mut graph = WordCount::describe(args)?;
        graph.name = "word-count-v2".into();
        Ok(graph)
    }

    fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
        match name {
            "split" => operator::<Split>(),
            "count" => operator::<Count>(),
            _ => None,
        }
    }
}

cairn_sdk::export_job!(WordCountV2);

#[cfg(test)]
mod tests {
    use cairn_sdk::{Context, OperatorInstance, PackedBatch, State};

    use super::*;

    fn ctx() -> Context {
        Context {
            job_id: "0".repeat(32),
            operator_uid: "count".into(),
            subtask: 0,
            parallelism: 1,
            attempt: 0,
            options: Vec::new(),
        }
    }

    fn words(words: &[&str]) -> PackedBatch {
        let mut out = Emitter::default();
        for w in words {
            out.emit_keyed(w, []);
        }
        out.take()
    }

    fn values(batch: &PackedBatch) -> Vec<String> {
        batch
            .records(0)
            .unwrap()
            .map(|r| r.value_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn migrates_version_1_state_and_counts_on() {
        let mut v1 = OperatorInstance::open::<WordCount>(ctx(), "count").unwrap();
        v1.process(0, &words(&["b", "a", "b", "é"])).unwrap();
        let state = v1.snapshot().unwrap();
        assert_eq!(state.version, 1);

        let mut v2 = OperatorInstance::open::<WordCountV2>(ctx(), "count").unwrap();
        v2.restore(&state).unwrap();
        let out = v2.process(0, &words(&["a", "b", "é", "c"])).unwrap();
        assert_eq!(values(&out), ["a\t2", "b\t3", "é\t2", "c\t1"]);

        let state = v2.snapshot().unwrap();
        assert_eq!(state.version, 2);
        assert_eq!(
            String::from_utf8(state.data.clone()).unwrap(),
            "a\t2\nb\t3\nc\t1\né\t2\n"
        );
        let mut again = OperatorInstance::open::<WordCountV2>(ctx(), "count").unwrap();
        again.restore(&state).unwrap();
        assert_eq!(values(&again.process(0, &words(&["c"])).unwrap()), ["c\t2"]);
    }

    #[test]
    fn refuses_unknown_versions_and_damage() {
        let mut v2 = OperatorInstance::open::<WordCountV2>(ctx(), "count").unwrap();
        let unknown = State {
            version: 3,
            data: Vec::new(),
        };
        assert_eq!(
            v2.restore(&unknown).unwrap_err().message(),
            "unknown state version 3: this count reads versions 1 and 2"
        );
        let damaged = State {
            version: 2,
            data: b"a\tx\n".to_vec(),
        };
        assert!(v2.restore(&damaged).is_err());
    }
}
