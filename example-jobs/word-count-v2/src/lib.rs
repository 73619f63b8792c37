//! Word count, version 2: the same job and output contract as `word-count` (`word<TAB>n`
//! for the n-th occurrence of each word), with a different state encoding — and a
//! migration, so that it resumes from `word-count`'s savepoints and checkpoints, or takes
//! over a running `word-count` job with `cairn swap`.
//!
//! Its `count` keeps version 4 of word count's state encodings (see `word_count::Count`):
//! keyed state whose values are counts in decimal UTF-8 digits (`cairn state` shows them
//! as text). It reads versions 1 to 3 too.

use cairn_sdk::prelude::*;
use cairn_sdk::{KeyedChunk, StateValue, ValueEncoding};
use word_count::{
    Split, WordCount, count_v3, operator_wide_counts, report_migration, unknown_version,
};

/// A count, stored as decimal digits.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Decimal(pub u64);

impl StateValue for Decimal {
    const ENCODING: ValueEncoding = ValueEncoding::Utf8;

    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.0.to_string().as_bytes());
    }

    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(Decimal(std::str::from_utf8(bytes)?.parse()?))
    }
}

/// Counts occurrences per word and emits the running count.
#[derive(Default, Serialize, Deserialize)]
pub struct Count {
    counts: KeyedState<Decimal>,
    #[serde(skip)]
    migrated: Option<(usize, u32)>,
}

const READS: &str = "versions 1 to 4";

impl Operator for Count {
    const STATE_VERSION: u32 = 4;

    fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
        Some(&mut self.counts)
    }

    fn open(&mut self, _ctx: &Context) -> Result<()> {
        report_migration(self.migrated.take());
        Ok(())
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let mut n = self.counts.get_or_default(&record)?;
        n.0 += 1;
        let (word, n) = (record.key().unwrap_or_default(), n.0);
        out.emit_keyed_parts(word, |v| {
            v.bytes(word).byte(b'\t').u64(n);
        });
        Ok(())
    }

    fn restore(&mut self, state: &[u8], version: u32) -> Result<()> {
        let counts = operator_wide_counts(state, version, READS)?;
        self.migrated = Some((counts.len(), version));
        for (word, n) in counts {
            self.counts.insert_key(word.as_bytes(), Decimal(n))?;
        }
        Ok(())
    }

    fn restore_keyed(&mut self, chunk: &KeyedChunk, version: u32) -> Result<()> {
        match version {
            3 => {
                let mut migrated = 0;
                for entry in cairn_sdk::keyed::entries(&chunk.entries) {
                    let entry = entry?;
                    let n = count_v3(entry.value.unwrap_or_default())?;
                    self.counts.insert_key(entry.key, Decimal(n))?;
                    migrated += 1;
                }
                let before = self.migrated.map_or(0, |(n, _)| n);
                self.migrated = Some((before + migrated, 3));
                Ok(())
            }
            4 => self.counts.restore(chunk),
            other => Err(unknown_version(other, READS)),
        }
    }
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
    use cairn_sdk::key_groups::key_group;
    use cairn_sdk::{Context, KeyGroupRange, OperatorInstance, PackedBatch, Snapshot};

    use super::*;

    const MAX: u32 = 128;

    fn ctx() -> Context {
        Context {
            job_id: "0".repeat(32),
            operator_uid: "count".into(),
            subtask: 0,
            parallelism: 1,
            attempt: 0,
            options: Vec::new(),
            max_parallelism: MAX,
            key_groups: KeyGroupRange {
                first: 0,
                last: MAX - 1,
            },
        }
    }

    /// Words as a by-key input delivers them: with their key groups.
    fn words(words: &[&str]) -> (PackedBatch, Vec<u16>) {
        let mut out = Emitter::default();
        for w in words {
            out.emit_keyed(w, []);
        }
        let groups = words
            .iter()
            .map(|w| key_group(w.as_bytes(), MAX) as u16)
            .collect();
        (out.take(), groups)
    }

    fn count(op: &mut OperatorInstance, list: &[&str]) -> Vec<String> {
        let (batch, groups) = words(list);
        let out = op.process(0, &batch, &groups).unwrap();
        out.records(0)
            .unwrap()
            .map(|r| r.value_str().unwrap().to_owned())
            .collect()
    }

    fn restored<J: Job>(snapshot: &Snapshot) -> OperatorInstance {
        let mut op = OperatorInstance::open::<J>(ctx(), "count").unwrap();
        op.restore_keyed(snapshot.version, &snapshot.keyed).unwrap();
        op.restore(snapshot.version, &snapshot.operator_state)
            .unwrap();
        op
    }

    /// The keyed entries of a snapshot, as text, sorted.
    fn entries(snapshot: &Snapshot) -> Vec<String> {
        let mut all: Vec<String> = snapshot
            .keyed
            .iter()
            .flat_map(|chunk| {
                cairn_sdk::keyed::entries(&chunk.entries).map(|e| {
                    let e = e.unwrap();
                    format!(
                        "{}={:?}",
                        std::str::from_utf8(e.key).unwrap(),
                        e.value.unwrap()
                    )
                })
            })
            .collect();
        all.sort();
        all
    }

    #[test]
    fn moves_between_versions_3_and_4_both_ways() {
        let mut v1 = OperatorInstance::open::<WordCount>(ctx(), "count").unwrap();
        count(&mut v1, &["b", "a", "b", "é"]);
        let snapshot = v1.snapshot().unwrap();
        assert_eq!(snapshot.version, 3);
        assert!(snapshot.operator_state.is_empty());
        assert_eq!(
            entries(&snapshot),
            [
                "a=[1, 0, 0, 0, 0, 0, 0, 0]",
                "b=[2, 0, 0, 0, 0, 0, 0, 0]",
                "é=[1, 0, 0, 0, 0, 0, 0, 0]"
            ]
        );

        let mut v2 = restored::<WordCountV2>(&snapshot);
        assert_eq!(
            count(&mut v2, &["a", "b", "é", "c"]),
            ["a\t2", "b\t3", "é\t2", "c\t1"]
        );
        let snapshot = v2.snapshot().unwrap();
        assert_eq!(snapshot.version, 4);
        assert_eq!(snapshot.value_encoding, ValueEncoding::Utf8);
        assert_eq!(entries(&snapshot), ["a=[50]", "b=[51]", "c=[49]", "é=[50]"]);

        let mut back = restored::<WordCount>(&snapshot);
        assert_eq!(count(&mut back, &["c", "b"]), ["c\t2", "b\t4"]);
    }

    #[test]
    fn migrates_operator_wide_versions_1_and_2() {
        for (version, state) in [
            // postcard: 2 entries, "a" -> 2, "b" -> 1.
            (1, vec![2, 1, b'a', 2, 1, b'b', 1]),
            (2, b"a\t2\nb\t1\n".to_vec()),
        ] {
            let snapshot = Snapshot {
                version,
                operator_state: vec![state],
                mode: Default::default(),
                keyed: Vec::new(),
                value_encoding: Default::default(),
            };
            let mut v2 = restored::<WordCountV2>(&snapshot);
            assert_eq!(
                count(&mut v2, &["a", "b"]),
                ["a\t3", "b\t2"],
                "version {version}"
            );
        }
    }

    #[test]
    fn refuses_unknown_versions_and_damage() {
        let mut v2 = OperatorInstance::open::<WordCountV2>(ctx(), "count").unwrap();
        assert_eq!(
            v2.restore(5, &[Vec::new()]).unwrap_err().message(),
            "unknown state version 5: this count reads versions 1 to 4"
        );
        assert!(v2.restore(2, &[b"a\tx\n".to_vec()]).is_err());
    }
}
