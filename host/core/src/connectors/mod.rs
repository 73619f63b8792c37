//! Sources and sinks: the connector API, and the registry of the host's connectors.
//!
//! A connector is one module here and one line in [`SOURCES`] or [`SINKS`]. Its kind
//! ([`SourceKind`], [`SinkKind`]) names it, lists the node options it takes and configures
//! it from them, once per graph node, before anything runs. The configured connector
//! ([`SourceConnector`], [`SinkConnector`]) opens one reader or writer per subtask.
//!
//! What a connector checkpoints is its own: versioned bytes ([`SourcePosition`] per split,
//! [`SinkState`]) that the host stores in `_metadata` without reading them, hands back on
//! restore, and asks the connector to describe for `cairn inspect`.
//!
//! Sinks are exactly-once by two-phase commit, and every commit is idempotent: at a barrier
//! the writer makes what it wrote durable but invisible ([`SinkWriter::prepare`]); when that
//! checkpoint is complete (`_metadata` is durable) it makes it visible
//! ([`SinkWriter::commit`]); on restore it commits again what the restored checkpoint
//! prepared — the process may have died between completing the checkpoint and committing —
//! and aborts the rest ([`SinkStart::Restore`]).

mod blackhole;
mod file;
mod generator;
mod kafka;
mod options;
mod pace;
mod stdio;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use cairn_wire::{Emitter, PackedBatch};
use serde::Serialize;
use serde::de::DeserializeOwned;

pub use crate::state::metadata::{SinkState, SourcePosition, SplitPosition};
pub use file::{FileSinkState, PendingPart};
pub use options::Options;

/// Every source connector, by the name graphs use (`source("file")`).
pub const SOURCES: &[SourceKind] = &[file::SOURCE, generator::SOURCE, stdio::STDIN, kafka::SOURCE];
/// Every sink connector, by the name graphs use (`sink("stdout")`).
pub const SINKS: &[SinkKind] = &[file::SINK, stdio::STDOUT, blackhole::SINK, kafka::SINK];

/// A kind of source: its name, options, and how a node's options configure it.
pub struct SourceKind {
    pub name: &'static str,
    /// The node options it takes; any other is refused.
    pub options: &'static [&'static str],
    pub from_options: fn(&Options) -> Result<Arc<dyn SourceConnector>, ConnectorError>,
    /// One line about a checkpointed position, for `cairn inspect` (no job needed).
    pub describe: fn(&SourcePosition) -> String,
}

/// A kind of sink: its name, options, and how a node's options configure it.
pub struct SinkKind {
    pub name: &'static str,
    pub options: &'static [&'static str],
    pub from_options: fn(&Options) -> Result<Arc<dyn SinkConnector>, ConnectorError>,
    /// One line about a checkpointed sink state, for `cairn inspect`.
    pub describe: fn(&SinkState) -> String,
}

/// The source kind named `name`.
pub fn source_kind(name: &str) -> Option<&'static SourceKind> {
    SOURCES.iter().find(|kind| kind.name == name)
}

/// The sink kind named `name`.
pub fn sink_kind(name: &str) -> Option<&'static SinkKind> {
    SINKS.iter().find(|kind| kind.name == name)
}

/// One subtask of a connector's node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subtask<'a> {
    /// The job's name (its graph's): the same across its runs, restarts and resumes,
    /// whatever their job ids.
    pub job_name: &'a str,
    /// The node's uid.
    pub uid: &'a str,
    pub index: u32,
    pub parallelism: u32,
}

/// A source as one graph node configured it; shared by the node's subtasks.
pub trait SourceConnector: Send + Sync + fmt::Debug {
    /// The most subtasks it can read with; `None` when any number can.
    fn max_parallelism(&self) -> Option<u32> {
        None
    }

    /// Whether its splits are independent of the parallelism, so that a restore at another
    /// parallelism can hand every subtask the positions of all old subtasks and each takes
    /// its own splits' (as Flink's union list state). Sources whose one split is their
    /// subtask cannot.
    fn redistributes(&self) -> bool {
        false
    }

    /// Opens the reader of `subtask`: at the start of its splits, or at `restored`'s split
    /// positions. A position that cannot be resumed is a [`ConnectorError::Restore`].
    fn open(
        &self,
        subtask: Subtask,
        restored: Option<&SourcePosition>,
    ) -> Result<Box<dyn SourceReader>, ConnectorError>;
}

/// What a source reader has right now.
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
pub trait SourceReader: Send {
    /// Adds up to one batch of records to `out`.
    fn poll(&mut self, out: &mut Emitter) -> Result<Poll, ConnectorError>;
    /// The position after the records returned so far, as checkpointed at a barrier.
    fn position(&self) -> SourcePosition;
    /// The checkpoint that stored `position` (this reader's) is complete: a source that
    /// reports progress elsewhere (a Kafka consumer group's offsets) does it now.
    fn checkpoint_complete(&mut self, _position: &SourcePosition) {}
    /// Where it is in each partition of a log it reads, for metrics (empty for sources
    /// without partitions).
    fn partitions(&self) -> Vec<PartitionProgress> {
        Vec::new()
    }
}

/// Where a source subtask is in one partition of a log (a Kafka partition): Flink's
/// `currentOffset` and `committedOffset`, and the consumer's `records-lag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProgress {
    pub topic: String,
    pub partition: i32,
    /// The offset of the next record to read.
    pub current_offset: i64,
    /// The offset last committed to the consumer group, if any.
    pub committed_offset: Option<i64>,
    /// Records between the current offset and the partition's end (its last stable offset
    /// for `read_committed`), as of the client's last statistics.
    pub lag: Option<i64>,
}

/// A sink as one graph node configured it; shared by the node's subtasks.
pub trait SinkConnector: Send + Sync + fmt::Debug {
    /// Opens the writer of `subtask`. Restoring, it first commits again what the restored
    /// checkpoint prepared and aborts anything later attempts left.
    fn open(
        &self,
        subtask: Subtask,
        start: SinkStart,
    ) -> Result<Box<dyn SinkWriter>, ConnectorError>;

    /// Checks a state from checkpoint `checkpoint`'s metadata before the job starts, so that
    /// one that cannot be restored is refused before anything runs.
    fn check(&self, _state: &SinkState, _checkpoint: u64) -> Result<(), ConnectorError> {
        Ok(())
    }

    /// A warning about running with checkpoints every `interval` (`None`: checkpointing
    /// off) — a Kafka sink whose transactions would time out first, or never commit —
    /// given once when the job starts.
    fn checkpointing_warning(&self, _interval: Option<Duration>) -> Option<String> {
        None
    }

    /// A local folder this sink writes, which no other run may write at the same time.
    fn output_folder(&self) -> Option<&Path> {
        None
    }
}

/// How a sink writer starts.
#[derive(Debug, Clone, Copy)]
pub enum SinkStart<'a> {
    /// The job's first attempt, without a checkpoint.
    Fresh,
    /// A restart with no checkpoint to restore: what earlier attempts left uncommitted is
    /// discarded.
    Restart,
    /// Restoring a checkpoint: what the old subtasks this one takes over prepared in it, by
    /// their index (empty states where they held nothing back). At an unchanged
    /// parallelism that is this subtask's own state; after a rescale, old subtask `k`'s
    /// goes to new subtask `k mod parallelism` (so possibly none).
    Restore(&'a [(u32, SinkState)]),
}

/// One subtask of a sink.
pub trait SinkWriter: Send {
    fn write(&mut self, batch: &PackedBatch) -> Result<(), ConnectorError>;
    /// Barrier of checkpoint `checkpoint`: everything written so far becomes durable and
    /// pending for it; returns what the checkpoint must hold to commit it again on restore.
    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, ConnectorError>;
    /// Checkpoint `checkpoint` is complete: make what is pending up to it visible.
    fn commit(&mut self, checkpoint: u64) -> Result<(), ConnectorError>;
    /// The job failed: discard what is neither committed nor pending.
    fn abort(&mut self);
}

/// A connector configured by one node: its kind's name and the node's options (which say
/// whether two nodes have the same connector), and the configured connector.
pub struct Configured<C: ?Sized> {
    pub name: &'static str,
    pub options: Vec<(String, String)>,
    pub connector: Arc<C>,
}

impl<C: ?Sized> Clone for Configured<C> {
    fn clone(&self) -> Self {
        Configured {
            name: self.name,
            options: self.options.clone(),
            connector: self.connector.clone(),
        }
    }
}

impl<C: ?Sized> PartialEq for Configured<C> {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.options == other.options
    }
}

impl<C: ?Sized> Eq for Configured<C> {}

/// `'file' (path=in.txt, rate=10)`, `'stdout'`
impl<C: ?Sized> fmt::Display for Configured<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "'{}'", self.name)?;
        if !self.options.is_empty() {
            let options: Vec<String> = self
                .options
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            write!(f, " ({})", options.join(", "))?;
        }
        Ok(())
    }
}

impl<C: ?Sized> fmt::Debug for Configured<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl SourceKind {
    /// Configures this source from a node's options, checking what can be checked before
    /// the job starts (for a file: that it can be opened).
    pub fn configure(
        &'static self,
        options: &[(String, String)],
    ) -> Result<Configured<dyn SourceConnector>, ConnectorError> {
        let connector =
            (self.from_options)(&Options::new(self.name, "source", options, self.options)?)?;
        Ok(Configured {
            name: self.name,
            options: options.to_vec(),
            connector,
        })
    }
}

impl SinkKind {
    /// Configures this sink from a node's options.
    pub fn configure(
        &'static self,
        options: &[(String, String)],
    ) -> Result<Configured<dyn SinkConnector>, ConnectorError> {
        let connector =
            (self.from_options)(&Options::new(self.name, "sink", options, self.options)?)?;
        Ok(Configured {
            name: self.name,
            options: options.to_vec(),
            connector,
        })
    }
}

/// A connector's configuration, I/O or restored state failed.
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
    /// A Kafka call failed; what was being done, and the client's or broker's error.
    #[error("kafka: {0}")]
    Kafka(String),
    #[error("received a malformed batch: {0}")]
    Malformed(String),
    /// The restored state can never be resumed: retrying would fail the same way.
    #[error("cannot restore: {0}")]
    Restore(String),
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

impl ConnectorError {
    /// Whether the error is in restored state, which a restart would restore again.
    pub fn is_restore(&self) -> bool {
        matches!(
            self,
            ConnectorError::Restore(_)
                | ConnectorError::MissingPending { .. }
                | ConnectorError::ForeignPart { .. }
        )
    }
}

fn list(known: &[&str]) -> String {
    if known.is_empty() {
        "no options".to_owned()
    } else {
        known.join(", ")
    }
}

/// A connector's bytes: JSON of its own type, in encoding `version`.
fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("connector state serialises")
}

/// Reads bytes [`encode`]d by `connector` in encoding `version`, which must be
/// `supported`.
fn decode<T: DeserializeOwned>(
    connector: &str,
    bytes: &[u8],
    version: u32,
    supported: u32,
) -> Result<T, ConnectorError> {
    if version != supported {
        return Err(ConnectorError::Restore(format!(
            "the {connector} state has encoding version {version}; this cairn reads version \
             {supported}"
        )));
    }
    serde_json::from_slice(bytes)
        .map_err(|e| ConnectorError::Restore(format!("the {connector} state is damaged: {e}")))
}

/// A source whose splits are fixed by its subtask (one per subtask): the position of its
/// only split, named by the subtask index.
fn single_split<T: Serialize>(subtask: u32, position: &T) -> SourcePosition {
    SourcePosition {
        version: 1,
        splits: vec![SplitPosition {
            split: subtask.to_string(),
            position: encode(position),
        }],
    }
}

/// The position of `subtask`'s only split in `restored`.
fn restored_single_split<T: DeserializeOwned>(
    connector: &str,
    subtask: Subtask,
    restored: &SourcePosition,
) -> Result<T, ConnectorError> {
    match restored.splits.as_slice() {
        [split] if split.split == subtask.index.to_string() => {
            decode(connector, &split.position, restored.version, 1)
        }
        splits => Err(ConnectorError::Restore(format!(
            "the checkpoint gives {connector} subtask {} the splits [{}]; it reads exactly one, \
             '{}'",
            subtask.index,
            splits
                .iter()
                .map(|s| s.split.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            subtask.index
        ))),
    }
}

/// One line for a single-split position, or what is wrong with it.
fn describe_single_split<T: DeserializeOwned>(
    connector: &str,
    position: &SourcePosition,
    describe: impl Fn(T) -> String,
) -> String {
    let described: Result<Vec<String>, ConnectorError> = position
        .splits
        .iter()
        .map(|split| decode(connector, &split.position, position.version, 1).map(&describe))
        .collect();
    match described {
        Ok(lines) => lines.join("; "),
        Err(e) => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn subtask(index: u32, parallelism: u32) -> Subtask<'static> {
        Subtask {
            job_name: "job",
            uid: "node",
            index,
            parallelism,
        }
    }

    /// Everything one reader emits until its input ends, as values.
    fn drain(reader: &mut dyn SourceReader) -> Vec<Vec<u8>> {
        let mut out = Emitter::default();
        let mut values = Vec::new();
        loop {
            let poll = reader.poll(&mut out).unwrap();
            let batch = out.take();
            values.extend(batch.records(0).unwrap().map(|r| r.value().to_vec()));
            if poll == Poll::End {
                return values;
            }
        }
    }

    #[test]
    fn every_connector_has_its_own_name() {
        for names in [
            SOURCES.iter().map(|k| k.name).collect::<Vec<_>>(),
            SINKS.iter().map(|k| k.name).collect(),
        ] {
            let mut unique = names.clone();
            unique.sort_unstable();
            unique.dedup();
            assert_eq!(unique.len(), names.len(), "{names:?}");
        }
    }

    #[test]
    fn options_are_checked_by_the_kind() {
        let generator = source_kind("generator").unwrap();
        let err = generator
            .configure(&options(&[("count", "3"), ("speed", "9")]))
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "generator source has no option 'speed' (it takes: count, keys, rate)"
        );
        let err = generator.configure(&options(&[("keys", "0")])).unwrap_err();
        assert!(err.to_string().contains("at least one key"), "{err}");
        let err = sink_kind("file").unwrap().configure(&[]).unwrap_err();
        assert_eq!(err.to_string(), "file sink needs option 'path'");
    }

    #[test]
    fn nodes_have_the_same_connector_when_name_and_options_match() {
        let generator = source_kind("generator").unwrap();
        let a = generator.configure(&options(&[("count", "3")])).unwrap();
        assert_eq!(a, generator.configure(&options(&[("count", "3")])).unwrap());
        assert_ne!(a, generator.configure(&options(&[("count", "4")])).unwrap());
        assert_eq!(a.to_string(), "'generator' (count=3)");
    }

    #[test]
    fn a_source_resumes_at_its_checkpointed_position() {
        let generator = source_kind("generator")
            .unwrap()
            .configure(&options(&[("count", "300"), ("keys", "2")]))
            .unwrap();
        let mut first = generator.connector.open(subtask(1, 2), None).unwrap();
        let mut out = Emitter::default();
        first.poll(&mut out).unwrap();
        let end = first.position();
        assert_eq!(
            (generator.name, end.splits.len()),
            ("generator", 64),
            "subtask 1 of 2 reads splits 64 to 127"
        );
        assert_eq!(
            (SOURCES[1].describe)(&end),
            "generator 64 split(s), next 320..=383",
            "it produced 64 to 127 and 192 to 255"
        );
        let mut resumed = generator.connector.open(subtask(1, 2), Some(&end)).unwrap();
        assert!(drain(resumed.as_mut()).is_empty());
    }

    #[test]
    fn a_position_that_is_not_the_subtasks_is_a_restore_error() {
        let path = std::env::temp_dir().join(format!("cairn-file-split-{}", std::process::id()));
        std::fs::write(&path, "one\n").unwrap();
        let file = source_kind("file")
            .unwrap()
            .configure(&options(&[("path", path.to_str().unwrap())]))
            .unwrap()
            .connector;
        let position = file.open(subtask(0, 1), None).unwrap().position();
        // A file source reads one split, named by its subtask: not another subtask's.
        let other = single_split(1, &serde_json::json!({"offset": 0}));
        let err = file.open(subtask(0, 1), Some(&other)).err().unwrap();
        assert!(err.is_restore(), "{err}");
        let mut damaged = position.clone();
        damaged.splits[0].position = b"{\"offset\": -1}".to_vec();
        let err = file.open(subtask(0, 1), Some(&damaged)).err().unwrap();
        assert!(err.to_string().contains("damaged"), "{err}");
        let mut newer = position;
        newer.version = 2;
        let err = file.open(subtask(0, 1), Some(&newer)).err().unwrap();
        assert!(err.to_string().contains("encoding version 2"), "{err}");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_file_source_rewinds_to_its_offset() {
        let path = std::env::temp_dir().join(format!("cairn-file-src-{}", std::process::id()));
        std::fs::write(&path, "one\ntwo\nthree\n").unwrap();
        let file = source_kind("file")
            .unwrap()
            .configure(&options(&[("path", path.to_str().unwrap())]))
            .unwrap();
        assert_eq!(file.connector.max_parallelism(), Some(1));
        let mut reader = file.connector.open(subtask(0, 1), None).unwrap();
        assert_eq!(drain(reader.as_mut()).len(), 3);
        let end = reader.position();
        assert_eq!((SOURCES[0].describe)(&end), "file offset 14");
        std::fs::write(&path, "one\ntwo\nthree\nfour\n").unwrap();
        let mut resumed = file.connector.open(subtask(0, 1), Some(&end)).unwrap();
        assert_eq!(drain(resumed.as_mut()), [b"four".to_vec()]);
        // A shorter input than the position: the input changed under the checkpoint.
        std::fs::write(&path, "one\n").unwrap();
        let err = file
            .connector
            .open(subtask(0, 1), Some(&end))
            .err()
            .unwrap();
        assert!(err.is_restore(), "{err}");
        std::fs::remove_file(&path).unwrap();
    }
}
