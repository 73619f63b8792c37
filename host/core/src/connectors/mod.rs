//! Host-native sources and sinks, named by the job graph (`source("file")`, `sink("stdout")`)
//! and configured by the node's options.

mod file;
mod generator;
mod pace;
mod stdio;

use std::path::PathBuf;
use std::time::Duration;

use cairn_wire::{Emitter, PackedBatch};

pub use file::{FileSink, FileSource};
pub use generator::{Generator, GeneratorSource};
pub use stdio::{StdinSource, StdoutSink};

/// Source connector names, as graphs use them.
pub const SOURCES: &[&str] = &["file", "generator", "stdin"];
/// Sink connector names, as graphs use them.
pub const SINKS: &[&str] = &["file", "stdout", "blackhole"];

/// A connector's configuration or I/O failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectorError {
    #[error("{connector} {role} has no option '{option}' (it takes: {})", list(.known))]
    UnknownOption {
        connector: &'static str,
        role: &'static str,
        option: String,
        known: &'static [&'static str],
    },
    #[error("{connector} {role} needs option '{option}'")]
    MissingOption {
        connector: &'static str,
        role: &'static str,
        option: &'static str,
    },
    #[error("{connector} {role}: invalid value '{value}' for option '{option}': {reason}")]
    InvalidOption {
        connector: &'static str,
        role: &'static str,
        option: &'static str,
        value: String,
        reason: String,
    },
    #[error("{action} {}: {cause}", .path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("{}: the line at byte {offset} is not valid UTF-8", .path.display())]
    NotUtf8 { path: PathBuf, offset: u64 },
    #[error("standard input/output: {0}")]
    Stdio(std::io::Error),
    #[error("received a malformed batch: {0}")]
    Malformed(String),
    #[error("cannot restore: {0}")]
    Position(String),
    #[error(
        "pending part {} of checkpoint {checkpoint} is missing: neither it nor its committed \
         file exists",
        .path.display()
    )]
    MissingPending { path: PathBuf, checkpoint: u64 },
    #[error(
        "the checkpoint's pending part '{name}' is not a part file of this sink subtask \
         ({expected}<n>); nothing was renamed"
    )]
    ForeignPart { name: String, expected: String },
}

/// A configured source connector: what to read, before any subtask runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    /// `rate`: lines per second (0: as fast as possible).
    File {
        path: PathBuf,
        rate: u64,
    },
    Generator(Generator),
    Stdin,
}

/// A configured sink connector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkSpec {
    File { dir: PathBuf },
    Stdout,
    Blackhole,
}

/// Where a source subtask is in its input, as checkpointed.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "connector", rename_all = "lowercase")]
pub enum SourcePosition {
    /// Byte offset of the next line to read.
    File { offset: u64 },
    /// The next sequence number this subtask produces.
    Generator { next: u64 },
    /// Lines read so far; standard input cannot be rewound.
    Stdin { lines: u64 },
}

/// A sink subtask's output that waits for a checkpoint to complete.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SinkState {
    pub pending: Vec<PendingPart>,
    /// The number of the next part file.
    pub next_part: u64,
}

/// The most part files one sink subtask numbers: far beyond any real job, and far from
/// overflowing the numbers after it.
const MAX_PART_NUMBER: u64 = 1 << 62;

impl SinkState {
    /// Checks a sink state read from a checkpoint's metadata (number `checkpoint`): every
    /// file name plain, every pending part due by that checkpoint, numbers in range.
    pub fn validate(&self, checkpoint: u64) -> Result<(), String> {
        if self.next_part > MAX_PART_NUMBER {
            return Err(format!(
                "next part number {} is out of range",
                self.next_part
            ));
        }
        for part in &self.pending {
            crate::names::file_name(&part.in_progress)?;
            crate::names::file_name(&part.committed)?;
            if part.checkpoint > checkpoint {
                return Err(format!(
                    "part '{}' is pending for checkpoint {}, after this checkpoint ({checkpoint})",
                    part.committed, part.checkpoint
                ));
            }
        }
        Ok(())
    }
}

/// A finished part file, committed when checkpoint `checkpoint` completes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PendingPart {
    pub checkpoint: u64,
    /// File names in the sink's folder.
    pub in_progress: String,
    pub committed: String,
}

/// What a source has for its subtask right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// Records were added to the batch; there may be more.
    Ready,
    /// Nothing to read for this long (a rate limit); records may have been added.
    Idle(Duration),
    /// The input has ended; records may have been added.
    End,
}

/// One subtask of a source.
pub trait Source: Send {
    /// Adds up to one batch of records to `out`.
    fn poll(&mut self, out: &mut Emitter) -> Result<Poll, ConnectorError>;
    /// The position after the records returned so far.
    fn position(&self) -> SourcePosition;
}

/// One subtask of a sink, exactly-once by two-phase commit: at a checkpoint barrier the
/// sink makes what it wrote durable but invisible ([`snapshot`](Sink::snapshot)); when that
/// checkpoint completes it makes it visible ([`commit`](Sink::commit)).
pub trait Sink: Send {
    fn write(&mut self, batch: &PackedBatch) -> Result<(), ConnectorError>;
    /// Barrier of checkpoint `checkpoint`: everything written so far becomes pending for it.
    fn snapshot(&mut self, checkpoint: u64) -> Result<SinkState, ConnectorError>;
    /// Checkpoint `checkpoint` is complete: make what is pending up to it visible.
    fn commit(&mut self, checkpoint: u64) -> Result<(), ConnectorError>;
    /// The job failed: discard what is neither committed nor pending.
    fn abort(&mut self);
}

/// Reads a connector's options, refusing unknown ones.
struct Options<'a> {
    connector: &'static str,
    role: &'static str,
    options: &'a [(String, String)],
}

impl<'a> Options<'a> {
    fn new(
        connector: &'static str,
        role: &'static str,
        options: &'a [(String, String)],
        known: &'static [&'static str],
    ) -> Result<Self, ConnectorError> {
        if let Some((option, _)) = options.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(ConnectorError::UnknownOption {
                connector,
                role,
                option: option.clone(),
                known,
            });
        }
        Ok(Options {
            connector,
            role,
            options,
        })
    }

    fn get(&self, option: &str) -> Option<&'a str> {
        self.options
            .iter()
            .rev()
            .find(|(k, _)| k == option)
            .map(|(_, v)| v.as_str())
    }

    fn required(&self, option: &'static str) -> Result<&'a str, ConnectorError> {
        self.get(option).ok_or(ConnectorError::MissingOption {
            connector: self.connector,
            role: self.role,
            option,
        })
    }

    fn number(&self, option: &'static str, default: u64) -> Result<u64, ConnectorError> {
        match self.get(option) {
            None => Ok(default),
            Some(raw) => raw.trim().parse().map_err(|e: std::num::ParseIntError| {
                ConnectorError::InvalidOption {
                    connector: self.connector,
                    role: self.role,
                    option,
                    value: raw.to_owned(),
                    reason: e.to_string(),
                }
            }),
        }
    }
}

fn list(known: &[&str]) -> String {
    if known.is_empty() {
        "no options".to_owned()
    } else {
        known.join(", ")
    }
}

impl SourceSpec {
    /// Configures source `connector` from its options, checking what can be checked before
    /// the job starts (for a file: that it can be opened).
    pub fn parse(connector: &str, options: &[(String, String)]) -> Result<Self, ConnectorError> {
        match connector {
            "file" => {
                let opts = Options::new("file", "source", options, &["path", "rate"])?;
                let path = PathBuf::from(opts.required("path")?);
                std::fs::File::open(&path).map_err(|source| ConnectorError::Io {
                    action: "cannot open input",
                    path: path.clone(),
                    cause: source,
                })?;
                Ok(SourceSpec::File {
                    path,
                    rate: opts.number("rate", 0)?,
                })
            }
            "generator" => {
                let opts =
                    Options::new("generator", "source", options, &["count", "keys", "rate"])?;
                let keys = opts.number("keys", 1000)?;
                if keys == 0 {
                    return Err(ConnectorError::InvalidOption {
                        connector: "generator",
                        role: "source",
                        option: "keys",
                        value: "0".into(),
                        reason: "there must be at least one key".into(),
                    });
                }
                Ok(SourceSpec::Generator(Generator {
                    count: opts.number("count", 0)?,
                    keys,
                    rate: opts.number("rate", 0)?,
                }))
            }
            "stdin" => {
                Options::new("stdin", "source", options, &[])?;
                Ok(SourceSpec::Stdin)
            }
            other => unreachable!("graph validation admits only known sources, got {other}"),
        }
    }

    /// The most subtasks this source can run as, if it is not fully parallel.
    pub fn max_parallelism(&self) -> Option<u32> {
        match self {
            SourceSpec::File { .. } | SourceSpec::Stdin => Some(1),
            SourceSpec::Generator(_) => None,
        }
    }

    /// Opens subtask `subtask` of `parallelism`, at `position` when restoring.
    pub fn open(
        &self,
        subtask: u32,
        parallelism: u32,
        position: Option<&SourcePosition>,
    ) -> Result<Box<dyn Source>, ConnectorError> {
        Ok(match (self, position) {
            (SourceSpec::File { path, rate }, None) => Box::new(FileSource::open(path, 0, *rate)?),
            (SourceSpec::File { path, rate }, Some(SourcePosition::File { offset })) => {
                Box::new(FileSource::open(path, *offset, *rate)?)
            }
            (SourceSpec::Generator(generator), None) => Box::new(GeneratorSource::new(
                generator.clone(),
                subtask,
                parallelism,
                None,
            )),
            (SourceSpec::Generator(generator), Some(SourcePosition::Generator { next })) => {
                if next % u64::from(parallelism) != u64::from(subtask) {
                    return Err(ConnectorError::Position(format!(
                        "generator position {next} does not belong to subtask {subtask} of \
                         {parallelism} (it produces the numbers ≡ {subtask} mod {parallelism})"
                    )));
                }
                Box::new(GeneratorSource::new(
                    generator.clone(),
                    subtask,
                    parallelism,
                    Some(*next),
                ))
            }
            (SourceSpec::Stdin, position) => {
                if let Some(SourcePosition::Stdin { lines }) = position {
                    tracing::warn!(
                        "standard input cannot be rewound: of the input before the checkpoint \
                         ({lines} lines) nothing is replayed, and what followed it is lost"
                    );
                }
                Box::new(StdinSource::spawn()?)
            }
            (_, Some(position)) => {
                return Err(ConnectorError::Position(format!(
                    "the checkpoint holds a {position:?} position for a different kind of source"
                )));
            }
        })
    }
}

impl SinkSpec {
    pub fn parse(connector: &str, options: &[(String, String)]) -> Result<Self, ConnectorError> {
        match connector {
            "file" => {
                let opts = Options::new("file", "sink", options, &["path"])?;
                Ok(SinkSpec::File {
                    dir: PathBuf::from(opts.required("path")?),
                })
            }
            "stdout" => {
                Options::new("stdout", "sink", options, &[])?;
                Ok(SinkSpec::Stdout)
            }
            "blackhole" => {
                Options::new("blackhole", "sink", options, &[])?;
                Ok(SinkSpec::Blackhole)
            }
            other => unreachable!("graph validation admits only known sinks, got {other}"),
        }
    }

    /// Opens subtask `subtask` of the sink node `uid`, with its state when restoring.
    pub fn open(
        &self,
        uid: &str,
        subtask: u32,
        restored: Option<&SinkState>,
    ) -> Result<Box<dyn Sink>, ConnectorError> {
        Ok(match self {
            SinkSpec::File { dir } => Box::new(FileSink::open(dir, uid, subtask, restored)?),
            SinkSpec::Stdout => Box::new(StdoutSink),
            SinkSpec::Blackhole => Box::new(Blackhole),
        })
    }
}

/// Discards everything.
struct Blackhole;

impl Sink for Blackhole {
    fn write(&mut self, _batch: &PackedBatch) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn snapshot(&mut self, _checkpoint: u64) -> Result<SinkState, ConnectorError> {
        Ok(SinkState::default())
    }

    fn commit(&mut self, _checkpoint: u64) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn abort(&mut self) {}
}
