//! Event time's cost: windowed-count (words counted per tumbling window of event time, with
//! timers, watermarks and exactly-once checkpoints every second) next to word-count on the
//! very same words, and the window state checkpoints hold — at its peak, and at the end,
//! when every window has fired and been freed.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use cairn_core::config::S3Config;
use cairn_core::state::{CheckpointStore, StateStore};
use cairn_tests::Scratch;
use cairn_tests::windowed::{Events, write_events};
use cairn_wasm::Engine;

use crate::{Checkpointing, Code, job, measure, megabytes, path, remove_dir, strings};

/// Window size and out-of-orderness bound of the runs.
const WINDOW_MS: i64 = 10_000;
const MAX_DELAY_MS: i64 = 500;

pub fn windowed(
    engine: &Engine,
    off: &Checkpointing,
    records: u64,
    runs: u32,
) -> anyhow::Result<()> {
    let scratch = Scratch::new("bench-windowed");
    let events = scratch.join("events.txt");
    // Lines hold 1 to 8 words, 4.5 on average.
    let lines = records * 2 / 9;
    let expected = write_events(
        &events,
        &Events {
            lines,
            vocabulary: 100_000,
            start_ms: 1_765_000_000_000,
            step_ms: 1,
            max_delay_ms: MAX_DELAY_MS,
            late_every: None,
        },
        WINDOW_MS,
        3,
    )?;
    let words: u64 = expected.counts.values().sum();
    let text = scratch.join("text.txt");
    strip_timestamps(&events, &text)?;

    let output = scratch.join("out");
    let clear = || {
        remove_dir(&output)?;
        remove_dir(&scratch.join("checkpoints"))
    };
    let mut every_second = off.clone();
    every_second.config.interval = Some(Duration::from_secs(1));
    let window = WINDOW_MS.to_string();
    let delay = MAX_DELAY_MS.to_string();
    let cases = [
        (
            "word-count",
            strings(&["--input", path(&text), "--output", path(&output)]),
        ),
        (
            "windowed-count",
            strings(&[
                "--input",
                path(&events),
                "--output",
                path(&output),
                "--window",
                &window,
                "--max-delay",
                &delay,
            ]),
        ),
    ];

    println!();
    println!(
        "| {words} words, {lines} lines; exactly-once checkpoints every 1 s | p | seconds | words/s | vs word-count | checkpoints | peak raw state | last periodic | final | RSS growth |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for parallelism in [1, 2] {
        let mut word_count_rate = None;
        for (name, args) in &cases {
            every_second.storage = Some(CheckpointStore::new(StateStore::open(
                path(&scratch.join("checkpoints")),
                &S3Config::default(),
            )?));
            let m = measure(
                engine,
                &Code::Wasm(job(name)),
                args,
                parallelism,
                runs,
                &clear,
                &every_second,
            )?;
            let rate = words as f64 / m.seconds;
            let vs = match word_count_rate {
                Some(base) => format!("{:.2}", rate / base),
                None => {
                    word_count_rate = Some(rate);
                    String::new()
                }
            };
            let history = &m.checkpoints.history;
            let last_periodic = history
                .iter()
                .rev()
                .nth(1)
                .map_or("-".into(), |c| megabytes(c.raw_bytes));
            let last = history
                .back()
                .map_or("-".into(), |c| megabytes(c.raw_bytes));
            println!(
                "| {name} | {parallelism} | {:.2} | {:.2} M | {vs} | {} | {} | {last_periodic} | {last} | {} |",
                m.seconds,
                rate / 1e6,
                m.checkpoints.completed,
                megabytes(m.checkpoints.raw_bytes.max),
                megabytes(m.memory)
            );
        }
    }
    clear()
}

/// The text of an event file without its timestamps: the same words, for word-count.
fn strip_timestamps(events: &Path, text: &Path) -> anyhow::Result<()> {
    let mut out = BufWriter::new(std::fs::File::create(text)?);
    for line in BufReader::new(std::fs::File::open(events)?).lines() {
        let line = line?;
        let words = line
            .split_once('\t')
            .map_or(line.as_str(), |(_, words)| words);
        writeln!(out, "{words}")?;
    }
    out.flush()?;
    Ok(())
}
