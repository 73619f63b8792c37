//! The word-count oracle (DESIGN.md §9): `word-count` emits `word<TAB>n` for the n-th
//! occurrence of each word, so its complete output is known from the input alone. This
//! crate generates such inputs (deterministic, with Unicode words and separators), counts
//! their words, and checks an output folder against the counts.

use std::collections::HashMap;
use std::io::{self, BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

pub mod windowed;

/// A small, fast, deterministic PRNG (splitmix64): tests need reproducible text, not
/// cryptographic randomness.
pub struct SplitMix(u64);

impl SplitMix {
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

const SYLLABLES: &[&str] = &[
    "ka", "lo", "mi", "ne", "su", "ra", "to", "vi", "be", "do", "ü", "ñ", "ø", "日", "本", "語",
    "ß", "é", "🚀", "λ",
];
const SEPARATORS: &[&str] = &[
    " ", " ", " ", " ", " ", "  ", "\t", "\u{3000}", "\u{a0}", " \t ",
];

/// `n` distinct words of ASCII and Unicode syllables, drawn with a Zipf-like (log-uniform
/// rank) distribution.
pub(crate) struct Vocabulary {
    words: Vec<String>,
    ln_size: f64,
}

impl Vocabulary {
    pub(crate) fn new(size: u64) -> Self {
        let words = (0..size)
            .map(|i| {
                let mut word = String::new();
                let mut n = i + 1;
                while n > 0 {
                    word.push_str(SYLLABLES[(n % SYLLABLES.len() as u64) as usize]);
                    n /= SYLLABLES.len() as u64;
                }
                word
            })
            .collect();
        Vocabulary {
            words,
            ln_size: (size as f64).ln(),
        }
    }

    pub(crate) fn draw(&self, rng: &mut SplitMix) -> &str {
        let size = self.words.len() as u64;
        let rank = ((rng.unit() * self.ln_size).exp() as u64).min(size) - 1;
        &self.words[rank as usize]
    }
}

/// Whitespace between words: mostly a space, sometimes tabs, ideographic or no-break spaces.
pub(crate) fn separator(rng: &mut SplitMix) -> &'static str {
    SEPARATORS[rng.below(SEPARATORS.len() as u64) as usize]
}

/// Writes about `bytes` bytes of text to `path`: lines of words drawn with a Zipf-like
/// (log-uniform rank) distribution from `vocabulary` distinct words, with ASCII and
/// Unicode letters, mixed whitespace (tabs, ideographic and no-break spaces), empty lines
/// and CRLF endings. Returns the bytes written.
pub fn write_text(path: &Path, bytes: u64, vocabulary: u64, seed: u64) -> io::Result<u64> {
    let mut rng = SplitMix::new(seed);
    let words = Vocabulary::new(vocabulary);
    let mut out = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut written = 0u64;
    let mut line = String::new();
    while written < bytes {
        line.clear();
        if rng.below(20) == 0 {
            line.push_str(separator(&mut rng));
        }
        for i in 0..rng.below(16) {
            if i > 0 {
                line.push_str(separator(&mut rng));
            }
            line.push_str(words.draw(&mut rng));
        }
        line.push_str(if rng.below(10) == 0 { "\r\n" } else { "\n" });
        out.write_all(line.as_bytes())?;
        written += line.len() as u64;
    }
    out.flush()?;
    Ok(written)
}

/// How often each word occurs in a text file, split as word-count splits: lines, then
/// Unicode whitespace, empty tokens dropped.
pub fn word_counts(path: &Path) -> io::Result<HashMap<String, u64>> {
    let mut counts = HashMap::new();
    for line in BufReader::new(std::fs::File::open(path)?).lines() {
        for word in line?.split(char::is_whitespace).filter(|w| !w.is_empty()) {
            *counts.entry(word.to_owned()).or_insert(0) += 1;
        }
    }
    Ok(counts)
}

/// How committed word-count output compares with the oracle.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct OracleReport {
    /// Output lines read.
    pub lines: u64,
    /// Expected `word\tn` lines absent from the output.
    pub missing: u64,
    /// Lines present more than once (counted per extra copy).
    pub duplicated: u64,
    /// Lines that should not be there at all (unknown word, n out of range, bad format).
    pub unexpected: u64,
}

impl OracleReport {
    pub fn is_exact(&self) -> bool {
        self.missing == 0 && self.duplicated == 0 && self.unexpected == 0
    }
}

/// The files of an output folder that a reader takes: every file not starting with `.`
/// or `_` (in-progress and metadata files are hidden that way).
pub fn committed_files(dir: &Path) -> io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !name.starts_with('.') && !name.starts_with('_') && entry.file_type()?.is_file() {
            files.push(entry.path());
        }
    }
    files.sort();
    Ok(files)
}

/// Checks word-count output in `dir` against `counts`: it must hold every `w\tn` for
/// n = 1..=count(w), each exactly once, and nothing else.
pub fn check_word_count(counts: &HashMap<String, u64>, dir: &Path) -> io::Result<OracleReport> {
    let mut check = WordCountCheck::new(counts);
    for file in committed_files(dir)? {
        for line in BufReader::new(std::fs::File::open(&file)?).lines() {
            check.line(&line?);
        }
    }
    Ok(check.report())
}

/// The word-count oracle over output lines from anywhere (files, a Kafka topic): every
/// `w\tn` for n = 1..=count(w), each exactly once, and nothing else.
pub struct WordCountCheck<'a> {
    counts: &'a HashMap<String, u64>,
    seen: HashMap<&'a str, Vec<bool>>,
    report: OracleReport,
}

impl<'a> WordCountCheck<'a> {
    pub fn new(counts: &'a HashMap<String, u64>) -> Self {
        WordCountCheck {
            counts,
            seen: HashMap::with_capacity(counts.len()),
            report: OracleReport::default(),
        }
    }

    /// Takes one output line.
    pub fn line(&mut self, line: &str) {
        self.report.lines += 1;
        let parsed = line
            .rsplit_once('\t')
            .and_then(|(word, n)| Some((word, n.parse::<u64>().ok()?)));
        let Some((word, n)) = parsed else {
            self.report.unexpected += 1;
            return;
        };
        let Some((known, &count)) = self.counts.get_key_value(word) else {
            self.report.unexpected += 1;
            return;
        };
        if n == 0 || n > count {
            self.report.unexpected += 1;
            return;
        }
        let marks = self
            .seen
            .entry(known.as_str())
            .or_insert_with(|| vec![false; count as usize]);
        if std::mem::replace(&mut marks[n as usize - 1], true) {
            self.report.duplicated += 1;
        }
    }

    /// The verdict on every line taken.
    pub fn report(mut self) -> OracleReport {
        for (word, &count) in self.counts {
            self.report.missing += match self.seen.get(word.as_str()) {
                Some(marks) => marks.iter().filter(|m| !**m).count() as u64,
                None => count,
            };
        }
        self.report
    }
}
