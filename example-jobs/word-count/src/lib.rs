//! Word count, the oracle job: emits `word<TAB>n` for the n-th occurrence of each word, so
//! its complete output is known from the input alone.
//!
//! `cairn run word-count.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]`
//! (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
//! paces reading the file, for watching a job run.)

use std::collections::HashMap;

use cairn_sdk::prelude::*;
use cairn_sdk::{KeyedChunk, StateValue};

/// Splits lines into words on Unicode whitespace, keyed by the word.
#[derive(Default, Serialize, Deserialize)]
pub struct Split;

impl Operator for Split {
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        for word in record.value_str()?.split(char::is_whitespace) {
            if !word.is_empty() {
                out.emit_keyed(word, []);
            }
        }
        Ok(())
    }
}

/// Counts occurrences per word and emits the running count.
///
/// Its state encodings, the contract every language's word count shares (so that state
/// moves between them across a savepoint and a `cairn swap`):
///
/// - version 1 (`word-count` before keyed state): operator-wide, [postcard] of
///   `struct { counts: map<string, u64> }` — a varint entry count, then per entry a
///   varint-length UTF-8 word and a varint count.
/// - version 2 (`word-count-v2` before keyed state, and the other languages' word counts on
///   `cairn:job@0.2.0`): operator-wide UTF-8 text, one `word<TAB>count<LF>` line per word,
///   sorted by word.
/// - version 3 (this one, and the Python, JavaScript, C and Zig word counts): keyed state —
///   key: the word (UTF-8), value: its count, u64 little-endian.
/// - version 4 (`word-count-v2`): keyed state — key: the word, value: its count in decimal
///   UTF-8 digits.
///
/// Versions 1 and 2 are migrated into keyed state on restore.
#[derive(Default, Serialize, Deserialize)]
pub struct Count {
    counts: KeyedState<u64>,
    /// Word counts migrated from an older encoding, and which: reported once restored.
    #[serde(skip)]
    migrated: Option<(usize, u32)>,
}

impl Operator for Count {
    const STATE_VERSION: u32 = 3;

    fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
        Some(&mut self.counts)
    }

    fn open(&mut self, _ctx: &Context) -> Result<()> {
        report_migration(self.migrated.take());
        Ok(())
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let mut n = self.counts.get_or_default(&record)?;
        *n += 1;
        let n = *n;
        out.emit_parts(|v| {
            v.bytes(record.key().unwrap_or_default()).byte(b'\t').u64(n);
        });
        Ok(())
    }

    fn restore(&mut self, state: &[u8], version: u32) -> Result<()> {
        let counts = operator_wide_counts(state, version, "versions 1, 2 and 3")?;
        self.migrated = Some((counts.len(), version));
        for (word, n) in counts {
            self.counts.insert_key(word.as_bytes(), n)?;
        }
        Ok(())
    }

    fn restore_keyed(&mut self, chunk: &KeyedChunk, version: u32) -> Result<()> {
        match version {
            3 => self.counts.restore(chunk),
            4 => {
                let mut migrated = 0;
                for entry in cairn_sdk::keyed::entries(&chunk.entries) {
                    let entry = entry?;
                    let text = std::str::from_utf8(entry.value.unwrap_or_default())?;
                    self.counts.insert_key(entry.key, text.parse()?)?;
                    migrated += 1;
                }
                let before = self.migrated.map_or(0, |(n, _)| n);
                self.migrated = Some((before + migrated, 4));
                Ok(())
            }
            other => Err(unknown_version(other, "versions 1, 2, 3 and 4")),
        }
    }
}

/// Logs how many word counts a restore migrated, if it did.
pub fn report_migration(migrated: Option<(usize, u32)>) {
    if let Some((n, version)) = migrated {
        cairn_sdk::info!("migrated {n} word counts from state version {version}");
    }
}

/// The word counts of operator-wide state of version 1 or 2 (see [`Count`]).
pub fn operator_wide_counts(state: &[u8], version: u32, reads: &str) -> Result<Vec<(String, u64)>> {
    match version {
        1 => {
            #[derive(Deserialize)]
            struct CountV1 {
                counts: HashMap<String, u64>,
            }
            let v1: CountV1 = postcard::from_bytes(state)
                .map_err(|e| Error::msg(format!("cannot decode version 1 state: {e}")))?;
            Ok(v1.counts.into_iter().collect())
        }
        2 => {
            let text = std::str::from_utf8(state)
                .map_err(|e| Error::msg(format!("version 2 state is not UTF-8: {e}")))?;
            text.lines()
                .map(|line| {
                    let (word, n) = line.split_once('\t').ok_or_else(|| {
                        Error::msg(format!("version 2 state: no tab in line {line:?}"))
                    })?;
                    Ok((word.to_owned(), n.parse::<u64>()?))
                })
                .collect()
        }
        other => Err(unknown_version(other, reads)),
    }
}

/// A count in keyed state of version 3: u64 little-endian.
pub fn count_v3(value: &[u8]) -> Result<u64> {
    u64::decode(value)
}

pub fn unknown_version(version: u32, reads: &str) -> Error {
    Error::msg(format!(
        "unknown state version {version}: this count reads {reads}"
    ))
}

/// The source `--input PATH|-` and `--rate LINES_PER_S` name.
pub fn input(args: &Args) -> Result<Source> {
    Ok(match (args.required("--input")?, args.value("--rate")) {
        ("-", _) => Source::stdin(),
        (path, None) => Source::file(path),
        (path, Some(rate)) => Source::file(path).option("rate", rate),
    })
}

/// The sink `--output DIR|-` names.
pub fn output(args: &Args) -> Result<Sink> {
    Ok(match args.required("--output")? {
        "-" => Sink::stdout(),
        dir => Sink::file(dir),
    })
}

pub struct WordCount;

impl Job for WordCount {
    fn describe(args: &Args) -> Result<JobGraph> {
        let (source, sink) = (input(args)?, output(args)?);
        let mut job = JobGraph::new("word-count");
        job.source("lines", source)
            .parallelism(1)
            .operator("split", "split", Partitioning::Rebalance)
            .operator("count", "count", Partitioning::ByKey)
            .sink("out", sink, Partitioning::Forward);
        Ok(job)
    }

    fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
        match name {
            "split" => operator::<Split>(),
            "count" => operator::<Count>(),
            _ => None,
        }
    }
}

#[cfg(feature = "component")]
cairn_sdk::export_job!(WordCount);
