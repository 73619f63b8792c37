//! The windowed-count oracle: `windowed-count` emits `<window-start>\t<word>\t<count>` once per
//! window and word, so with no record late its complete output is known from the input: the
//! words of each line counted in the tumbling window of the line's timestamp. This module
//! writes such inputs — timestamps out of order by at most a bound, and optionally lines far
//! behind it (late) — and checks an output folder against them.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::Path;

use crate::{OracleReport, SplitMix, Vocabulary, committed_files, separator};

/// What to generate.
#[derive(Debug, Clone)]
pub struct Events {
    pub lines: u64,
    pub vocabulary: u64,
    /// The timestamp of the first line, ms since the epoch.
    pub start_ms: i64,
    /// How far event time moves per line, on average.
    pub step_ms: i64,
    /// How far behind the highest timestamp before it a line may be (the job's
    /// `--max-delay`): each line is up to this much earlier than its place in the sequence.
    pub max_delay_ms: i64,
    /// Every `n`-th line of the second half is late: a day before `start_ms`, behind any
    /// watermark the first half made. `None`: no line is late.
    pub late_every: Option<u64>,
}

/// The words of an event file, as the oracle counts them.
#[derive(Debug, Default, Clone)]
pub struct Expected {
    /// (window start, word) → count, of every line on time.
    pub counts: HashMap<(i64, String), u64>,
    /// The late lines' words with their timestamps, one per word occurrence.
    pub late: Vec<(i64, String)>,
    /// The window size the counts are for.
    pub window_ms: i64,
}

impl Expected {
    /// The lines `windowed-count` writes for these counts.
    pub fn lines(&self) -> usize {
        self.counts.len()
    }
}

/// Writes `events` to `path` as `<epoch-ms>\t<text>` lines and returns what windowed-count
/// with windows of `window_ms` must output for them.
pub fn write_events(
    path: &Path,
    events: &Events,
    window_ms: i64,
    seed: u64,
) -> io::Result<Expected> {
    let mut rng = SplitMix::new(seed);
    let words = Vocabulary::new(events.vocabulary);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut expected = Expected {
        window_ms,
        ..Expected::default()
    };
    let mut line = String::new();
    let mut line_words = Vec::new();
    for i in 0..events.lines {
        let on_time = events.start_ms + i as i64 * events.step_ms;
        let jitter = rng.below(events.max_delay_ms as u64 + 1) as i64;
        let late = events
            .late_every
            .is_some_and(|n| i >= events.lines / 2 && i % n == 0);
        let timestamp = if late {
            events.start_ms - 86_400_000 - jitter
        } else {
            on_time - jitter
        };
        line_words.clear();
        for _ in 0..1 + rng.below(8) {
            line_words.push(words.draw(&mut rng));
        }
        line.clear();
        line.push_str(&timestamp.to_string());
        line.push('\t');
        for (k, word) in line_words.iter().enumerate() {
            if k > 0 {
                line.push_str(separator(&mut rng));
            }
            line.push_str(word);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
        for word in &line_words {
            if late {
                expected.late.push((timestamp, (*word).to_owned()));
            } else {
                let start = timestamp - timestamp.rem_euclid(window_ms);
                *expected
                    .counts
                    .entry((start, (*word).to_owned()))
                    .or_default() += 1;
            }
        }
    }
    out.flush()?;
    Ok(expected)
}

/// Checks windowed-count output in `dir`: every `<start>\t<word>\t<count>` of `expected`
/// exactly once, nothing else.
pub fn check_windowed_count(expected: &Expected, dir: &Path) -> io::Result<OracleReport> {
    let mut report = OracleReport::default();
    let mut seen: HashMap<(i64, &str), bool> = HashMap::with_capacity(expected.counts.len());
    for file in committed_files(dir)? {
        for line in BufReader::new(std::fs::File::open(&file)?).lines() {
            let line = line?;
            report.lines += 1;
            let parsed = line.split_once('\t').and_then(|(start, rest)| {
                let (word, count) = rest.rsplit_once('\t')?;
                Some((start.parse::<i64>().ok()?, word, count.parse::<u64>().ok()?))
            });
            let Some((start, word, count)) = parsed else {
                report.unexpected += 1;
                continue;
            };
            match expected.counts.get_key_value(&(start, word.to_owned())) {
                Some(((_, known), &n)) if n == count => {
                    if seen.insert((start, known.as_str()), true).is_some() {
                        report.duplicated += 1;
                    }
                }
                _ => report.unexpected += 1,
            }
        }
    }
    report.missing = (expected.counts.len() - seen.len()) as u64;
    Ok(report)
}

/// Checks the late records windowed-count wrote to `--late-output DIR`, as
/// `<timestamp>\t<word>` lines: exactly `expected.late`, in any order.
pub fn check_late_output(expected: &Expected, dir: &Path) -> io::Result<OracleReport> {
    let mut want: HashMap<(i64, &str), u64> = HashMap::new();
    for (timestamp, word) in &expected.late {
        *want.entry((*timestamp, word.as_str())).or_default() += 1;
    }
    let mut report = OracleReport::default();
    let mut got: HashMap<(i64, String), u64> = HashMap::new();
    for file in committed_files(dir)? {
        for line in BufReader::new(std::fs::File::open(&file)?).lines() {
            let line = line?;
            report.lines += 1;
            match line
                .split_once('\t')
                .and_then(|(t, w)| Some((t.parse::<i64>().ok()?, w.to_owned())))
            {
                Some(key) => *got.entry(key).or_default() += 1,
                None => report.unexpected += 1,
            }
        }
    }
    for ((timestamp, word), n) in &got {
        match want.get(&(*timestamp, word.as_str())) {
            Some(wanted) => report.duplicated += n.saturating_sub(*wanted),
            None => report.unexpected += n,
        }
    }
    for ((timestamp, word), n) in &want {
        let had = got
            .get(&(*timestamp, (*word).to_owned()))
            .copied()
            .unwrap_or(0);
        report.missing += n.saturating_sub(had);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("cairn-oracle-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn events() -> Events {
        Events {
            lines: 500,
            vocabulary: 50,
            start_ms: 1_000_000,
            step_ms: 7,
            max_delay_ms: 40,
            late_every: Some(25),
        }
    }

    /// The oracle's own counts, written out as windowed-count would, check as exact; a
    /// line changed, dropped or doubled does not.
    #[test]
    fn exact_output_checks_and_every_kind_of_error_is_seen() {
        let dir = scratch("windowed");
        let expected = write_events(&dir.join("events.txt"), &events(), 100, 7).unwrap();
        assert!(!expected.late.is_empty());
        let out = dir.join("out");
        std::fs::create_dir_all(&out).unwrap();
        let mut lines: Vec<String> = expected
            .counts
            .iter()
            .map(|((start, word), n)| format!("{start}\t{word}\t{n}"))
            .collect();
        lines.sort();
        std::fs::write(out.join("part-0"), lines.join("\n") + "\n").unwrap();
        let report = check_windowed_count(&expected, &out).unwrap();
        assert!(report.is_exact(), "{report:?}");
        assert_eq!(report.lines as usize, expected.lines());

        let mut wrong = lines.clone();
        wrong[0] = wrong[0].replace('\t', "\tx");
        wrong.push(lines[1].clone());
        wrong.remove(2);
        std::fs::write(out.join("part-0"), wrong.join("\n") + "\n").unwrap();
        let report = check_windowed_count(&expected, &out).unwrap();
        assert_eq!(
            (report.unexpected, report.duplicated, report.missing),
            (1, 1, 2)
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn late_lines_are_a_day_behind_and_only_in_the_second_half() {
        let dir = scratch("late");
        let path = dir.join("events.txt");
        let expected = write_events(&path, &events(), 100, 3).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let stamps: Vec<i64> = text
            .lines()
            .map(|l| l.split_once('\t').unwrap().0.parse().unwrap())
            .collect();
        let mut highest = i64::MIN;
        for (i, &t) in stamps.iter().enumerate() {
            if t < 1_000_000 - 86_000_000 {
                assert!(i >= 250 && i % 25 == 0, "line {i} late");
                continue;
            }
            assert!(
                t >= highest.saturating_sub(40),
                "line {i} more than the bound behind"
            );
            highest = highest.max(t);
        }
        let late_out = dir.join("late");
        std::fs::create_dir_all(&late_out).unwrap();
        let late: Vec<String> = expected
            .late
            .iter()
            .map(|(t, w)| format!("{t}\t{w}"))
            .collect();
        std::fs::write(late_out.join("part-0"), late.join("\n") + "\n").unwrap();
        assert!(check_late_output(&expected, &late_out).unwrap().is_exact());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
