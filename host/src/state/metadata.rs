//! `_metadata`: written last, it alone marks a checkpoint complete. JSON, readable with
//! `cat`, followed by a checksum line over everything before it, so that a flipped byte or
//! a truncated file is refused rather than misread.

use serde::{Deserialize, Serialize};

use super::StateError;
use super::blob::BlobInfo;
use crate::config::CheckpointingMode;
use crate::connectors::{SinkState, SourcePosition};

pub const METADATA_FILE: &str = "_metadata";
/// Bumped whenever the layout below changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;
const CHECKSUM_PREFIX: &str = "xxh3-64 ";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckpointKind {
    Checkpoint,
    /// Taken on request; self-contained, never deleted by Cairn (`savepoint --dispose`).
    Savepoint,
}

/// Everything needed to restore a job from one checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckpointMetadata {
    pub format: u32,
    pub kind: CheckpointKind,
    pub job_id: String,
    pub job_name: String,
    pub checkpoint_id: u64,
    /// Milliseconds since the Unix epoch, when the checkpoint was triggered.
    pub timestamp_ms: u64,
    pub mode: CheckpointingMode,
    pub nodes: Vec<NodeState>,
}

/// The state of one node, per subtask in subtask order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeState {
    pub uid: String,
    pub parallelism: u32,
    pub subtasks: Vec<SubtaskSnapshot>,
}

impl NodeState {
    /// Whether restoring this node needs its parallelism unchanged: sources and sinks
    /// always, operators when any subtask has state.
    pub fn has_state(&self) -> bool {
        self.subtasks.iter().any(|s| match &s.state {
            SubtaskState::Operator { file } => file.is_some(),
            SubtaskState::Source { .. } | SubtaskState::Sink { .. } => true,
        })
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskSnapshot {
    pub state: SubtaskState,
    pub stats: SnapshotStats,
}

/// What one subtask contributed to a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum SubtaskState {
    /// A source's position to rewind to.
    Source { position: SourcePosition },
    /// An operator's state file; none when its snapshot was empty.
    Operator { file: Option<StateFile> },
    /// A sink's output waiting for commit.
    Sink { state: SinkState },
}

/// A state file, relative to its checkpoint folder.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StateFile {
    pub path: String,
    pub raw_size: u64,
    pub stored_size: u64,
    /// xxh3-64 of the stored bytes, 16 hex digits.
    pub checksum: String,
    /// The operator's state encoding version (`cairn:job` `state.version`); 1 in metadata
    /// written before versions were recorded.
    #[serde(default = "first_state_version")]
    pub version: u32,
}

fn first_state_version() -> u32 {
    1
}

impl StateFile {
    pub fn new(path: String, info: BlobInfo, version: u32) -> Self {
        StateFile {
            path,
            raw_size: info.raw_size,
            stored_size: info.stored_size,
            checksum: format!("{:016x}", info.checksum),
            version,
        }
    }

    pub fn info(&self) -> Option<BlobInfo> {
        Some(BlobInfo {
            raw_size: self.raw_size,
            stored_size: self.stored_size,
            checksum: u64::from_str_radix(&self.checksum, 16).ok()?,
        })
    }
}

/// How long a subtask's part of the checkpoint took, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct SnapshotStats {
    /// From the first barrier to the last (exactly-once alignment).
    pub alignment_ms: f64,
    /// Taking the snapshot on the processing path.
    pub sync_ms: f64,
    /// Compressing and uploading, off the processing path.
    pub async_ms: f64,
}

impl CheckpointMetadata {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut bytes = serde_json::to_vec_pretty(self).expect("metadata serialises");
        bytes.push(b'\n');
        let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
        bytes.extend_from_slice(format!("{CHECKSUM_PREFIX}{checksum:016x}\n").as_bytes());
        bytes
    }

    /// Parses `_metadata`, refusing it unless its checksum line matches.
    pub fn from_bytes(bytes: &[u8], location: &str) -> Result<Self, StateError> {
        let corrupt = |message: String| StateError::Corrupt {
            location: location.to_owned(),
            message,
        };
        let body_end = bytes
            .strip_suffix(b"\n")
            .and_then(|b| b.iter().rposition(|&c| c == b'\n'))
            .map(|i| i + 1)
            .ok_or_else(|| corrupt("truncated: no checksum line".into()))?;
        let footer = std::str::from_utf8(&bytes[body_end..])
            .ok()
            .and_then(|f| f.trim_end().strip_prefix(CHECKSUM_PREFIX))
            .and_then(|hex| u64::from_str_radix(hex, 16).ok())
            .ok_or_else(|| corrupt("truncated or damaged: no valid checksum line".into()))?;
        if xxhash_rust::xxh3::xxh3_64(&bytes[..body_end]) != footer {
            return Err(StateError::Checksum {
                location: location.to_owned(),
            });
        }
        let metadata: CheckpointMetadata = serde_json::from_slice(&bytes[..body_end])
            .map_err(|e| corrupt(format!("not Cairn checkpoint metadata: {e}")))?;
        if metadata.format != FORMAT_VERSION {
            return Err(corrupt(format!(
                "metadata format {} is not supported (this cairn reads format {FORMAT_VERSION})",
                metadata.format
            )));
        }
        Ok(metadata)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> CheckpointMetadata {
        CheckpointMetadata {
            format: FORMAT_VERSION,
            kind: CheckpointKind::Checkpoint,
            job_id: "ab".repeat(16),
            job_name: "wc".into(),
            checkpoint_id: 7,
            timestamp_ms: 1_700_000_000_000,
            mode: CheckpointingMode::ExactlyOnce,
            nodes: vec![NodeState {
                uid: "count".into(),
                parallelism: 1,
                subtasks: vec![SubtaskSnapshot {
                    state: SubtaskState::Operator {
                        file: Some(StateFile::new(
                            "count/0.zst".into(),
                            BlobInfo {
                                raw_size: 10,
                                stored_size: 5,
                                checksum: 0xfeed,
                            },
                            1,
                        )),
                    },
                    stats: SnapshotStats::default(),
                }],
            }],
        }
    }

    #[test]
    fn round_trips_and_refuses_damage() {
        let bytes = sample().to_bytes();
        assert_eq!(
            CheckpointMetadata::from_bytes(&bytes, "m").unwrap(),
            sample()
        );
        // Every single flipped byte is caught, wherever it is.
        for i in (0..bytes.len()).step_by(7) {
            let mut bad = bytes.clone();
            bad[i] ^= 0x01;
            assert!(
                CheckpointMetadata::from_bytes(&bad, "m").is_err(),
                "flip at {i}"
            );
        }
        for len in [0, 1, bytes.len() / 2, bytes.len() - 2] {
            let err = CheckpointMetadata::from_bytes(&bytes[..len], "m").unwrap_err();
            assert!(
                matches!(
                    err,
                    StateError::Corrupt { .. } | StateError::Checksum { .. }
                ),
                "{len}: {err}"
            );
        }
    }
}
