//! Host-native sources and sinks, named by the job graph (`source("file")`, `sink("stdout")`)
//! and configured by the node's options.

mod file;
mod generator;
mod stdio;

use std::path::PathBuf;
use std::time::Duration;

use cairn_sdk::{Emitter, PackedBatch};

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
    #[error("{}: line {line} is not valid UTF-8", .path.display())]
    NotUtf8 { path: PathBuf, line: u64 },
    #[error("standard input/output: {0}")]
    Stdio(std::io::Error),
    #[error("received a malformed batch: {0}")]
    Malformed(String),
}

/// A configured source connector: what to read, before any subtask runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceSpec {
    File { path: PathBuf },
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
}

/// One subtask of a sink. Output becomes visible in two phases: when its input ends the
/// sink makes what it wrote durable ([`finish`](Sink::finish)); only when the whole job has
/// finished is it committed, and a failed job's output is aborted instead.
pub trait Sink: Send {
    fn write(&mut self, batch: &PackedBatch) -> Result<(), ConnectorError>;
    /// All input has ended: make everything written durable, still invisible.
    fn finish(&mut self) -> Result<(), ConnectorError>;
    /// The job has finished: make the output visible.
    fn commit(&mut self) -> Result<(), ConnectorError>;
    /// The job failed: discard what was not committed.
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
                let opts = Options::new("file", "source", options, &["path"])?;
                let path = PathBuf::from(opts.required("path")?);
                std::fs::File::open(&path).map_err(|source| ConnectorError::Io {
                    action: "cannot open input",
                    path: path.clone(),
                    cause: source,
                })?;
                Ok(SourceSpec::File { path })
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

    /// Opens subtask `subtask` of `parallelism`.
    pub fn open(&self, subtask: u32, parallelism: u32) -> Result<Box<dyn Source>, ConnectorError> {
        Ok(match self {
            SourceSpec::File { path } => Box::new(FileSource::open(path)?),
            SourceSpec::Generator(generator) => Box::new(GeneratorSource::new(
                generator.clone(),
                subtask,
                parallelism,
            )),
            SourceSpec::Stdin => Box::new(StdinSource::spawn()?),
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

    /// Opens subtask `subtask` of the sink node `uid`.
    pub fn open(&self, uid: &str, subtask: u32) -> Result<Box<dyn Sink>, ConnectorError> {
        Ok(match self {
            SinkSpec::File { dir } => Box::new(FileSink::open(dir, uid, subtask)?),
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

    fn finish(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn commit(&mut self) -> Result<(), ConnectorError> {
        Ok(())
    }

    fn abort(&mut self) {}
}
