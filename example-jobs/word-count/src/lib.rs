//! Word count, the oracle job: emits `word<TAB>n` for the n-th occurrence of each word, so
//! its complete output is known from the input alone. Each output record is keyed by its
//! word (a Kafka output topic is keyed by word; files hold the values).
//!
//! `cairn run word-count.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]`
//! (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
//! paces reading the file, for watching a job run.)
//!
//! `kafka://HOST:PORT/TOPIC` as input reads the topic from its earliest offset to the end it
//! had when the job first started, then ends, as a file does; as output it writes the topic
//! exactly-once (in Kafka transactions committed with each checkpoint). Connector options
//! after `?` override those defaults: `kafka://HOST:PORT/TOPIC?scan.bounded.mode=unbounded`.

use std::collections::HashMap;

use cairn_sdk::prelude::*;
use cairn_sdk::{KeyedChunk, StateValue};

/// The words of `text`: split on Unicode whitespace, none empty.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(char::is_whitespace)
        .filter(|word| !word.is_empty())
}

/// Splits lines into words on Unicode whitespace, keyed by the word.
#[derive(Default, Serialize, Deserialize)]
pub struct Split;

impl Operator for Split {
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        for word in words(record.value_str()?) {
            out.emit_keyed(word, []);
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
        let (word, n) = (record.key().unwrap_or_default(), *n);
        out.emit_keyed_parts(word, |v| {
            v.bytes(word).byte(b'\t').u64(n);
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

/// The source `--input PATH|-|kafka://HOST:PORT/TOPIC[?OPTION=VALUE&...]` and
/// `--rate LINES_PER_S` name.
pub fn input(args: &Args) -> Result<Source> {
    let (input, rate) = (args.required("--input")?, args.value("--rate"));
    if let Some(kafka) = args.kafka("--input")? {
        if rate.is_some() {
            return Err(Error::msg(format!(
                "--rate paces a file input; it does not apply to {input}"
            )));
        }
        return Ok(kafka.source(&[("scan.bounded.mode", "latest-offset")]));
    }
    Ok(match (input, rate) {
        ("-", _) => Source::stdin(),
        (path, None) => Source::file(path),
        (path, Some(rate)) => Source::file(path).option("rate", rate),
    })
}

/// The sink `--output DIR|-|kafka://HOST:PORT/TOPIC[?OPTION=VALUE&...]` names.
pub fn output(args: &Args) -> Result<Sink> {
    let output = args.required("--output")?;
    if let Some(kafka) = args.kafka("--output")? {
        return Ok(kafka.sink(&[("sink.delivery-guarantee", "exactly-once")]));
    }
    Ok(match output {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Args {
        Args::new(list.iter().map(|a| a.to_string()).collect())
    }

    #[test]
    fn paths_and_dashes_are_files_and_standard_streams() {
        let paths = args(&["--input", "in.txt", "--rate", "5", "--output", "out"]);
        assert_eq!(
            input(&paths).unwrap(),
            Source::file("in.txt").option("rate", "5")
        );
        assert_eq!(output(&paths).unwrap(), Sink::file("out"));
        let dashes = args(&["--input", "-", "--output", "-"]);
        assert_eq!(input(&dashes).unwrap(), Source::stdin());
        assert_eq!(output(&dashes).unwrap(), Sink::stdout());
    }

    #[test]
    fn kafka_urls_are_bounded_sources_and_exactly_once_sinks() {
        let kafka = args(&[
            "--input",
            "kafka://localhost:9092/lines",
            "--output=kafka://a:9092,b:9092/counts",
        ]);
        assert_eq!(
            input(&kafka).unwrap(),
            Source::kafka("localhost:9092", "lines").option("scan.bounded.mode", "latest-offset")
        );
        assert_eq!(
            output(&kafka).unwrap(),
            Sink::kafka("a:9092,b:9092", "counts")
                .option("sink.delivery-guarantee", "exactly-once")
        );
    }

    #[test]
    fn kafka_url_options_override_the_defaults() {
        let kafka = args(&[
            "--input",
            "kafka://h:1/in?scan.bounded.mode=unbounded&properties.group.id=g",
            "--output",
            "kafka://h:1/out?sink.delivery-guarantee=at-least-once",
        ]);
        assert_eq!(
            input(&kafka).unwrap(),
            Source::kafka("h:1", "in")
                .option("scan.bounded.mode", "latest-offset")
                .option("scan.bounded.mode", "unbounded")
                .option("properties.group.id", "g")
        );
        assert_eq!(
            output(&kafka).unwrap(),
            Sink::kafka("h:1", "out")
                .option("sink.delivery-guarantee", "exactly-once")
                .option("sink.delivery-guarantee", "at-least-once")
        );
    }

    #[test]
    fn malformed_kafka_urls_and_a_rate_on_kafka_are_refused() {
        for url in [
            "kafka://host:9092",
            "kafka://host:9092/",
            "kafka:///t",
            "kafka://h:1/t/u",
            "kafka://h:1/t?novalue",
        ] {
            let error = input(&args(&["--input", url])).unwrap_err().to_string();
            assert_eq!(
                error,
                format!(
                    "invalid --input {url}: expected kafka://HOST:PORT/TOPIC[?OPTION=VALUE&...]"
                )
            );
            assert!(output(&args(&["--output", url])).is_err());
        }
        let rated = args(&["--input", "kafka://h:1/t", "--rate", "5"]);
        assert_eq!(
            input(&rated).unwrap_err().to_string(),
            "--rate paces a file input; it does not apply to kafka://h:1/t"
        );
    }
}
