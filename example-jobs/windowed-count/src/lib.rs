//! Windowed word count, the event-time oracle job: counts each word per tumbling window of
//! event time, so its complete output is known from the input alone.
//!
//! ```text
//! cairn run windowed-count.wasm -p 4 -- --input events.txt --output out/ \
//!     --window 1000 --max-delay 500 [--rate LINES_PER_S] [--allowed-lateness MS] \
//!     [--late-output DIR] [--idleness MS] [--also-stdin]
//! ```
//!
//! Input lines are `<epoch-ms><TAB><text>`; each word of the text (split on whitespace as
//! word-count splits it) takes the line's timestamp as its event time. Watermarks trail the
//! highest timestamp by `--max-delay` (Flink's bounded out-of-orderness). Each window of
//! `--window` ms (starting at `ts - ts mod window`) emits one line
//! `<window-start><TAB><word><TAB><count>` per word once the watermark passes its end; the
//! file sink writes them exactly-once. A record whose window's end (less 1 ms) plus
//! `--allowed-lateness` (default 0) is at or behind the watermark when it arrives is late:
//! dropped and counted in `numLateRecordsDropped`, or with `--late-output DIR` written there
//! as `<timestamp><TAB><word>`.
//! `--input` and `--output` take what word-count's take (a file, `-`, `kafka://…`).
//!
//! `--idleness MS` marks a stamping subtask idle after MS without records (Flink's
//! `withIdleness`), so that it stops holding event time back — and, as in Flink, records it
//! stamps after a pause that long may be late, event time having moved on without it;
//! `--also-stdin` adds standard input as a second source of lines (which stays idle while
//! nothing is written to it).

use cairn_sdk::Input;
use cairn_sdk::prelude::*;

/// A line of input that is not `<epoch-ms><TAB><text>` (or whose time is -2^63, the mark of
/// "no timestamp"): skipped, and counted.
pub const MALFORMED_LINES: &str = "numMalformedLines";

/// The window counts' side output of late records.
const LATE: &str = "late";

/// Parses `<epoch-ms><TAB><text>` lines into their words, keyed by the word, each with the
/// line's timestamp.
#[derive(Default, Serialize, Deserialize)]
pub struct Stamp;

impl Operator for Stamp {
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let line = record.value_str()?;
        let Some(timestamp) = line
            .split_once('\t')
            .and_then(|(ms, text)| Some((ms.trim().parse::<i64>().ok()?, text)))
            .filter(|&(ms, _)| ms != i64::MIN)
        else {
            return cairn_sdk::host::counter_add(MALFORMED_LINES, 1);
        };
        let (timestamp, text) = timestamp;
        for word in word_count::words(text) {
            out.emit_with_timestamp(word, [], timestamp);
        }
        Ok(())
    }
}

/// Counts a word's records per window.
#[derive(Default)]
pub struct WordsPerWindow;

impl Aggregate for WordsPerWindow {
    type Acc = u64;

    fn windows(&self, ctx: &Context) -> Result<Windows> {
        let ms = |key: &str| -> Result<u64> {
            let value = ctx.option(key).unwrap_or("0");
            value
                .parse()
                .map_err(|_| Error::msg(format!("option {key}: {value:?} is not a number of ms")))
        };
        let windows = Windows::tumbling(ms("window")?)?.allowed_lateness(ms("allowed-lateness")?);
        Ok(match ctx.option("late-output") {
            Some(name) => windows.late_records_to(name),
            None => windows,
        })
    }

    fn add(&self, count: &mut u64, _record: &Record<'_>) -> Result<()> {
        *count += 1;
        Ok(())
    }

    fn emit(&self, word: &[u8], window: &Window, count: &u64, out: &mut Emitter) -> Result<()> {
        out.emit_keyed_parts(word, |v| {
            v.i64(window.start)
                .byte(b'\t')
                .bytes(word)
                .byte(b'\t')
                .u64(*count);
        });
        Ok(())
    }
}

/// Late words as `<timestamp><TAB><word>` (the side output's records are the words as
/// stamped).
#[derive(Default, Serialize, Deserialize)]
pub struct LateWords;

impl Operator for LateWords {
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let word = record.key().unwrap_or_default();
        out.emit_keyed_parts(word, |v| {
            v.i64(record.timestamp().unwrap_or_default())
                .byte(b'\t')
                .bytes(word);
        });
        Ok(())
    }
}

pub struct WindowedCount;

impl Job for WindowedCount {
    fn describe(args: &Args) -> Result<JobGraph> {
        let (source, sink) = (word_count::input(args)?, word_count::output(args)?);
        let window = args.parse_or("--window", 1_000u64)?;
        Windows::tumbling(window).map_err(|e| Error::msg(format!("--window: {e}")))?;
        let mut strategy =
            WatermarkStrategy::bounded_out_of_orderness(args.parse_or("--max-delay", 0u64)?);
        if let Some(idleness) = args.value("--idleness") {
            let ms = idleness
                .parse()
                .map_err(|_| Error::msg(format!("--idleness {idleness}: not a number of ms")))?;
            strategy = strategy.with_idleness(ms);
        }
        let lateness = args.parse_or("--allowed-lateness", 0u64)?;

        let mut job = JobGraph::new("windowed-count");
        job.source("lines", source)
            .parallelism(1)
            .operator("stamp", "stamp", Partitioning::Rebalance)
            .watermarks(strategy);
        if args.flag("--also-stdin") {
            job.source("more-lines", Source::stdin())
                .parallelism(1)
                .operator("stamp-more", "stamp", Partitioning::Rebalance)
                .watermarks(strategy);
        }
        let count = job
            .stream("stamp")
            .ok_or_else(|| Error::msg("the graph lost its stamp node"))?
            .operator("count", "count", Partitioning::ByKey)
            .option("window", window.to_string())
            .option("allowed-lateness", lateness.to_string());
        let count = match args.value("--late-output") {
            Some(_) => count.option("late-output", LATE),
            None => count,
        };
        count.sink("out", sink, Partitioning::Forward);
        if args.flag("--also-stdin") {
            let count = job.nodes.iter_mut().find(|node| node.uid == "count");
            if let Some(count) = count {
                count.inputs.push(Input {
                    upstream: "stamp-more".into(),
                    partitioning: Partitioning::ByKey,
                    side_output: None,
                });
            }
        }
        if let Some(dir) = args.value("--late-output") {
            job.stream("count")
                .ok_or_else(|| Error::msg("the graph lost its count node"))?
                .side_output(LATE)
                .operator("late-words", "late-words", Partitioning::Forward)
                .sink("late-out", Sink::file(dir), Partitioning::Forward);
        }
        Ok(job)
    }

    fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
        match name {
            "stamp" => operator::<Stamp>(),
            "count" => operator::<Windowed<WordsPerWindow>>(),
            "late-words" => operator::<LateWords>(),
            _ => None,
        }
    }
}

cairn_sdk::export_job!(WindowedCount);

#[cfg(test)]
mod tests {
    use cairn_sdk::testing::Harness;

    use super::*;

    #[test]
    fn lines_are_stamped_words_and_malformed_ones_counted() {
        let mut stamp = Harness::open::<WindowedCount>("stamp", &[]).unwrap();
        let out = stamp
            .process(&[
                ("", "1500\tto be  or\u{3000}not", None),
                ("", "no tab here", None),
                ("", "12x\tword", None),
                ("", "-9223372036854775808\tword", None),
            ])
            .unwrap();
        let stamped: Vec<(&str, Option<i64>)> =
            out.iter().map(|(k, _, t)| (k.as_str(), *t)).collect();
        assert_eq!(
            stamped,
            [
                ("to", Some(1500)),
                ("be", Some(1500)),
                ("or", Some(1500)),
                ("not", Some(1500))
            ]
        );
        assert_eq!(stamp.counter(MALFORMED_LINES), 3);
    }

    #[test]
    fn words_are_counted_per_window_and_late_ones_dropped() {
        let options = [("window", "1000"), ("allowed-lateness", "0")];
        let mut count = Harness::open::<WindowedCount>("count", &options).unwrap();
        count
            .process(&[
                ("a", "", Some(10)),
                ("b", "", Some(999)),
                ("a", "", Some(500)),
            ])
            .unwrap();
        let fired = count.advance_watermark(999).unwrap();
        let mut lines: Vec<&str> = fired.iter().map(|(_, v, _)| v.as_str()).collect();
        lines.sort();
        assert_eq!(lines, ["0\ta\t2", "0\tb\t1"]);
        count.process(&[("a", "", Some(20))]).unwrap();
        assert_eq!(count.counter(cairn_sdk::window::LATE_RECORDS_DROPPED), 1);
    }
}
