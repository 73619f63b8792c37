//! `_metadata`: written last, it alone marks a checkpoint complete. JSON, readable with
//! `cat`, followed by a checksum line over everything before it, so that a flipped byte or
//! a truncated file is refused rather than misread.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use super::StateError;
use super::blob::BlobInfo;
use crate::config::{CheckpointingMode, UPPER_MAX_PARALLELISM};
use crate::connectors::{SinkState, SourcePosition};
use crate::names::relative_path;

pub const METADATA_FILE: &str = "_metadata";
/// Bumped whenever the layout below changes incompatibly.
pub const FORMAT_VERSION: u32 = 1;
const CHECKSUM_PREFIX: &str = "xxh3-64 ";
/// The largest checkpoint id metadata may hold (Flink's ids are Java longs), so that the
/// ids after it never overflow.
pub const MAX_CHECKPOINT_ID: u64 = i64::MAX as u64;
/// The most state one subtask can have: a 32-bit guest's whole memory.
const MAX_STATE_BYTES: u64 = 4 << 30;

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
        metadata.validate().map_err(corrupt)?;
        Ok(metadata)
    }

    /// Checks what the checksum cannot: that metadata from outside (savepoints travel
    /// between machines and people; the checksum only catches accidents) has a shape the
    /// host can use safely — every number in range, one entry per subtask, every path a
    /// plain relative name that stays inside its folder.
    fn validate(&self) -> Result<(), String> {
        if self.checkpoint_id > MAX_CHECKPOINT_ID {
            return Err(format!(
                "checkpoint id {} is out of range (at most {MAX_CHECKPOINT_ID})",
                self.checkpoint_id
            ));
        }
        let mut uids = HashSet::new();
        for node in &self.nodes {
            if node.uid.is_empty() || !uids.insert(node.uid.as_str()) {
                return Err(format!("node uid '{}' is empty or repeated", node.uid));
            }
            let uid = &node.uid;
            if !(1..=UPPER_MAX_PARALLELISM).contains(&node.parallelism) {
                return Err(format!(
                    "'{uid}' has parallelism {}, outside 1..={UPPER_MAX_PARALLELISM}",
                    node.parallelism
                ));
            }
            if node.subtasks.len() != node.parallelism as usize {
                return Err(format!(
                    "'{uid}' has {} subtask entries for parallelism {}",
                    node.subtasks.len(),
                    node.parallelism
                ));
            }
            for (subtask, snapshot) in node.subtasks.iter().enumerate() {
                let context = |e: String| format!("'{uid}' subtask {subtask}: {e}");
                match &snapshot.state {
                    SubtaskState::Operator { file: Some(file) } => {
                        relative_path(&file.path).map_err(context)?;
                        if file.raw_size > MAX_STATE_BYTES {
                            return Err(context(format!(
                                "state of {} bytes is more than a guest can hold (4 GiB)",
                                file.raw_size
                            )));
                        }
                        if file.checksum.len() != 16 || file.info().is_none() {
                            return Err(context(format!(
                                "checksum '{}' is not 16 hex digits",
                                file.checksum
                            )));
                        }
                    }
                    SubtaskState::Sink { state } => {
                        state.validate(self.checkpoint_id).map_err(context)?
                    }
                    SubtaskState::Operator { file: None } | SubtaskState::Source { .. } => {}
                }
            }
        }
        Ok(())
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

    /// Metadata with its checksum recomputed: what a hostile savepoint looks like.
    fn reread(metadata: &CheckpointMetadata) -> Result<CheckpointMetadata, StateError> {
        CheckpointMetadata::from_bytes(&metadata.to_bytes(), "m")
    }

    #[test]
    fn refuses_paths_that_leave_their_folder() {
        for bad in [
            "/etc/passwd",
            "../x",
            "count/../../x",
            "count//0.zst",
            "",
            "count/./0",
        ] {
            let mut m = sample();
            let SubtaskState::Operator { file: Some(file) } = &mut m.nodes[0].subtasks[0].state
            else {
                unreachable!("the sample has an operator file")
            };
            file.path = bad.into();
            let err = reread(&m).unwrap_err().to_string();
            assert!(err.contains("state path"), "{bad}: {err}");
        }
    }

    #[test]
    fn refuses_shapes_the_host_cannot_use() {
        let mut m = sample();
        m.nodes[0].parallelism = 2;
        let err = reread(&m).unwrap_err().to_string();
        assert!(err.contains("1 subtask entries for parallelism 2"), "{err}");
        let mut m = sample();
        m.nodes[0].parallelism = 0;
        m.nodes[0].subtasks.clear();
        assert!(
            reread(&m)
                .unwrap_err()
                .to_string()
                .contains("parallelism 0")
        );
        let mut m = sample();
        m.checkpoint_id = u64::MAX;
        assert!(reread(&m).unwrap_err().to_string().contains("out of range"));
        let mut m = sample();
        m.nodes.push(m.nodes[0].clone());
        assert!(reread(&m).unwrap_err().to_string().contains("repeated"));
        let mut m = sample();
        let SubtaskState::Operator { file: Some(file) } = &mut m.nodes[0].subtasks[0].state else {
            unreachable!("the sample has an operator file")
        };
        file.checksum = "+1".into();
        assert!(
            reread(&m)
                .unwrap_err()
                .to_string()
                .contains("16 hex digits")
        );
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
