//! `_metadata`: written last, it alone marks a checkpoint complete. JSON, readable with
//! `cat`, followed by a checksum line over everything before it, so that a flipped byte or
//! a truncated file is refused rather than misread.
//!
//! Connectors' parts of it ([`SourcePosition`], [`SinkState`]) are opaque bytes in the
//! connector's own versioned encoding, base64 in the JSON; `cairn inspect` has each
//! connector describe its own. Format 1 (before the connector API) is read and upgraded
//! ([`upgrade_format_1`]).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use cairn_wire::KeyGroupRange;

use super::StateError;
use super::blob::BlobInfo;
use crate::config::{CheckpointingMode, UPPER_MAX_PARALLELISM};
use crate::names::relative_path;

pub const METADATA_FILE: &str = "_metadata";
/// Bumped whenever the layout below changes incompatibly. Format 1 stored the built-in
/// connectors' positions and the file sink's state as JSON of their own; 2 stores opaque
/// connector bytes; 3 adds the key groups (`max_parallelism`) and operator state split into
/// segments by key group ([`SubtaskState::KeyedOperator`]); 4 adds timers to those files
/// ([`OperatorStateFile::timers`]), which a host before it would drop unseen. Formats 2, 3
/// and 4 read alike.
pub const FORMAT_VERSION: u32 = 4;
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
    /// `pipeline.max-parallelism`: the number of key groups, fixed for the life of a job.
    /// Unknown in metadata before format 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_parallelism: Option<u32>,
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
            SubtaskState::KeyedOperator { .. }
            | SubtaskState::Source { .. }
            | SubtaskState::Sink { .. } => true,
        })
    }
}

impl SubtaskState {
    /// The bytes of its state files: `(raw, stored)`; none for sources and sinks.
    pub fn sizes(&self) -> (u64, u64) {
        match self {
            SubtaskState::Operator { file: Some(file) } => (file.raw_size, file.stored_size),
            SubtaskState::KeyedOperator { state } => {
                state.segments().fold((0, 0), |(raw, stored), s| {
                    (raw + s.raw_size, stored + s.stored_size)
                })
            }
            SubtaskState::Operator { file: None }
            | SubtaskState::Source { .. }
            | SubtaskState::Sink { .. } => (0, 0),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SubtaskSnapshot {
    pub state: SubtaskState,
    pub stats: SnapshotStats,
    /// The last watermark the subtask sent on before the barrier, short of the end of
    /// event time: a restore never sends a lower one. None: it sent none (absent before
    /// event time, read as none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watermark: Option<i64>,
}

/// What one subtask contributed to a checkpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
pub enum SubtaskState {
    /// A source's position to rewind to, from its `connector` (`file`, `generator`, …).
    Source {
        connector: String,
        position: SourcePosition,
    },
    /// An operator's state as one opaque blob (a `cairn:job@0.2.0` component's, restored
    /// only at the same parallelism); none when its snapshot was empty — of any component.
    Operator { file: Option<StateFile> },
    /// An operator's state split by key group (a `cairn:job@0.3.0` component's).
    #[serde(rename = "keyed-operator")]
    KeyedOperator { state: OperatorStateFile },
    /// What a sink prepared for commit, from its `connector`.
    Sink { connector: String, state: SinkState },
}

/// Where a source subtask is in its input: one entry per split it reads (a file; a
/// generator's share of the sequence; later a Kafka partition), so that positions can move
/// with their splits. Each position is the connector's own bytes in its encoding `version`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SourcePosition {
    pub version: u32,
    pub splits: Vec<SplitPosition>,
}

/// One split's position.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitPosition {
    /// The split's id, unique within its source.
    pub split: String,
    #[serde(with = "base64_bytes")]
    pub position: Vec<u8>,
}

/// What a sink subtask prepared at a checkpoint barrier, to commit when the checkpoint
/// completes and to commit again on restore: the connector's own bytes in its encoding
/// `version`. Empty when the sink holds nothing back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkState {
    pub version: u32,
    #[serde(with = "base64_bytes")]
    pub data: Vec<u8>,
}

impl SinkState {
    /// A sink that holds nothing back (standard output, the blackhole).
    pub fn empty() -> Self {
        SinkState {
            version: 1,
            data: Vec::new(),
        }
    }
}

/// Connector bytes as base64 text in the JSON.
mod base64_bytes {
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&STANDARD.encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        STANDARD
            .decode(text.as_bytes())
            .map_err(|e| serde::de::Error::custom(format!("not base64: {e}")))
    }

    pub fn encode(bytes: &[u8]) -> String {
        STANDARD.encode(bytes)
    }
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

/// The state file of a `cairn:job@0.3.0` operator subtask: independently compressed
/// segments — its operator-wide items, then one chunk per key group in key-group order — so
/// that a restore reads, by range, only the key groups a subtask owns now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperatorStateFile {
    pub path: String,
    /// The operator's state encoding version (`cairn:job` `snapshot.version`).
    pub version: u32,
    pub mode: ItemMode,
    /// How the keyed values are encoded (`cairn:job` `value-encoding`), for `cairn state`.
    pub value_encoding: String,
    /// The key groups the subtask owned.
    pub key_groups: KeyGroups,
    /// The operator-wide items; none when there were none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operator_state: Option<ItemsSegment>,
    /// One per key group with state, in key-group order.
    pub chunks: Vec<ChunkSegment>,
    /// The subtask's timers: one per key group that has any, in key-group order, after the
    /// chunks (`cairn_wire::timers`' encoding). None before format 4.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub timers: Vec<ChunkSegment>,
}

/// How a subtask's operator-wide items are shared out on rescaling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemMode {
    Split,
    Union,
}

/// Key groups `first..=last`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyGroups {
    pub first: u32,
    pub last: u32,
}

impl From<KeyGroups> for KeyGroupRange {
    fn from(groups: KeyGroups) -> Self {
        KeyGroupRange {
            first: groups.first,
            last: groups.last,
        }
    }
}

impl From<KeyGroupRange> for KeyGroups {
    fn from(range: KeyGroupRange) -> Self {
        KeyGroups {
            first: range.first,
            last: range.last,
        }
    }
}

/// A compressed segment of a state file: a zstd frame at `offset`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Segment {
    pub offset: u64,
    pub stored_size: u64,
    pub raw_size: u64,
    /// xxh3-64 of the stored bytes, 16 hex digits.
    pub checksum: String,
}

impl Segment {
    pub fn new(offset: u64, info: BlobInfo) -> Self {
        Segment {
            offset,
            stored_size: info.stored_size,
            raw_size: info.raw_size,
            checksum: format!("{:016x}", info.checksum),
        }
    }

    pub fn info(&self) -> Option<BlobInfo> {
        Some(BlobInfo {
            raw_size: self.raw_size,
            stored_size: self.stored_size,
            checksum: u64::from_str_radix(&self.checksum, 16).ok()?,
        })
    }

    /// The byte range it has in its file.
    pub fn range(&self) -> std::ops::Range<u64> {
        self.offset..self.offset + self.stored_size
    }
}

/// The operator-wide items of a subtask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemsSegment {
    pub items: u64,
    #[serde(flatten)]
    pub segment: Segment,
}

/// The keyed state of one key group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkSegment {
    pub key_group: u32,
    pub entries: u64,
    #[serde(flatten)]
    pub segment: Segment,
}

impl OperatorStateFile {
    /// Every segment, in file order.
    pub fn segments(&self) -> impl Iterator<Item = &Segment> {
        self.operator_state
            .iter()
            .map(|items| &items.segment)
            .chain(self.chunks.iter().map(|chunk| &chunk.segment))
            .chain(self.timers.iter().map(|chunk| &chunk.segment))
    }

    /// The size the file has: where its last segment ends.
    pub fn size(&self) -> u64 {
        self.segments().map(|s| s.range().end).max().unwrap_or(0)
    }

    /// Checks what could make the host misread the file: a path leaving its folder, a
    /// segment out of order or overlapping another, a chunk outside the key groups, sizes a
    /// guest cannot hold.
    fn validate(&self, max_parallelism: Option<u32>) -> Result<(), String> {
        relative_path(&self.path)?;
        if self.key_groups.first > self.key_groups.last
            || max_parallelism.is_some_and(|max| self.key_groups.last >= max)
        {
            return Err(format!(
                "key groups {}..={} are not a range of this job's",
                self.key_groups.first, self.key_groups.last
            ));
        }
        let mut end = 0;
        for segment in self.segments() {
            if segment.offset != end {
                return Err(format!(
                    "a segment at byte {} does not follow the previous one (at {end})",
                    segment.offset
                ));
            }
            if segment.raw_size > MAX_STATE_BYTES || segment.info().is_none() {
                return Err(format!(
                    "the segment at byte {} has {} bytes or checksum '{}'",
                    segment.offset, segment.raw_size, segment.checksum
                ));
            }
            end = segment.range().end;
        }
        let range = KeyGroupRange::from(self.key_groups);
        for (what, chunks) in [("state", &self.chunks), ("timers", &self.timers)] {
            let mut previous = None;
            for chunk in chunks {
                if !range.contains(chunk.key_group) || previous >= Some(chunk.key_group) {
                    return Err(format!(
                        "the {what} of key group {} are out of order or outside {range}",
                        chunk.key_group
                    ));
                }
                previous = Some(chunk.key_group);
            }
        }
        Ok(())
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
        seal(serde_json::to_vec_pretty(self).expect("metadata serialises"))
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
        let not_metadata =
            |e: serde_json::Error| corrupt(format!("not Cairn checkpoint metadata: {e}"));
        let mut json: serde_json::Value =
            serde_json::from_slice(&bytes[..body_end]).map_err(not_metadata)?;
        match json.get("format").and_then(serde_json::Value::as_u64) {
            Some(1) => upgrade_format_1(&mut json).map_err(corrupt)?,
            // Later formats only add what earlier ones lack (absent: none).
            Some(2 | 3) => json["format"] = FORMAT_VERSION.into(),
            Some(format) if format == u64::from(FORMAT_VERSION) => {}
            other => {
                return Err(corrupt(format!(
                    "metadata format {} is not supported (this cairn reads formats 1 to \
                     {FORMAT_VERSION})",
                    other.map_or_else(|| "(none)".to_owned(), |f| f.to_string())
                )));
            }
        }
        let metadata: CheckpointMetadata = serde_json::from_value(json).map_err(not_metadata)?;
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
        if let Some(max) = self.max_parallelism
            && !(1..=UPPER_MAX_PARALLELISM).contains(&max)
        {
            return Err(format!(
                "max parallelism {max} is outside 1..={UPPER_MAX_PARALLELISM}"
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
                    SubtaskState::KeyedOperator { state } => {
                        state.validate(self.max_parallelism).map_err(context)?;
                    }
                    SubtaskState::Source { connector, .. }
                    | SubtaskState::Sink { connector, .. }
                        if connector.is_empty() =>
                    {
                        return Err(context("no connector named".into()));
                    }
                    SubtaskState::Operator { file: None }
                    | SubtaskState::Source { .. }
                    | SubtaskState::Sink { .. } => {}
                }
            }
        }
        Ok(())
    }
}

/// JSON `body`, a line break, and the checksum line over both.
fn seal(mut body: Vec<u8>) -> Vec<u8> {
    body.push(b'\n');
    let checksum = xxhash_rust::xxh3::xxh3_64(&body);
    body.extend_from_slice(format!("{CHECKSUM_PREFIX}{checksum:016x}\n").as_bytes());
    body
}

/// Rewrites format-1 metadata (JSON) as format 2. Format 1 held a source's position as
/// `{"connector": "file", "offset": N}` (`generator`: `next`, `stdin`: `lines`) and every
/// sink's state in the file sink's shape `{"pending": […], "next_part": N}`. Those same
/// objects, without the tag, are what the built-in connectors encode as version 1 of their
/// bytes; a source's only split is named by its subtask index, as those connectors name
/// theirs. A sink state with nothing pending and nothing written becomes an empty state,
/// which any sink restores as "nothing to commit".
fn upgrade_format_1(json: &mut serde_json::Value) -> Result<(), String> {
    use serde_json::{Value, json};
    let shape = |what: &str| format!("format-1 metadata has {what}");
    let nodes = json
        .get_mut("nodes")
        .and_then(Value::as_array_mut)
        .ok_or_else(|| shape("no nodes"))?;
    for node in nodes {
        let subtasks = node
            .get_mut("subtasks")
            .and_then(Value::as_array_mut)
            .ok_or_else(|| shape("a node without subtasks"))?;
        for (index, subtask) in subtasks.iter_mut().enumerate() {
            let Some(state) = subtask.get_mut("state").and_then(Value::as_object_mut) else {
                return Err(shape("a subtask without state"));
            };
            match state.get("role").and_then(Value::as_str) {
                Some("source") => {
                    let Some(Value::Object(mut position)) = state.remove("position") else {
                        return Err(shape("a source without a position"));
                    };
                    let Some(Value::String(connector)) = position.remove("connector") else {
                        return Err(shape("a source position without its connector"));
                    };
                    let bytes = serde_json::to_vec(&position).map_err(|e| e.to_string())?;
                    state.insert("connector".into(), Value::String(connector));
                    state.insert(
                        "position".into(),
                        json!({"version": 1, "splits": [
                            {"split": index.to_string(), "position": base64_bytes::encode(&bytes)}
                        ]}),
                    );
                }
                Some("sink") => {
                    let old = state
                        .remove("state")
                        .ok_or_else(|| shape("a sink without state"))?;
                    let holds_nothing = old
                        .get("pending")
                        .and_then(Value::as_array)
                        .is_some_and(Vec::is_empty)
                        && old.get("next_part").and_then(Value::as_u64) == Some(0);
                    let bytes = if holds_nothing {
                        Vec::new()
                    } else {
                        serde_json::to_vec(&old).map_err(|e| e.to_string())?
                    };
                    state.insert("connector".into(), Value::String("file".into()));
                    state.insert(
                        "state".into(),
                        json!({"version": 1, "data": base64_bytes::encode(&bytes)}),
                    );
                }
                _ => {}
            }
        }
    }
    json["format"] = json!(FORMAT_VERSION);
    Ok(())
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
            max_parallelism: Some(128),
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
                    watermark: Some(1_765_000_000_000),
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

    #[test]
    fn format_1_is_upgraded_to_connector_bytes() {
        let stats = serde_json::json!({"alignment_ms": 0.0, "sync_ms": 0.0, "async_ms": 0.0});
        let subtask = |state| serde_json::json!({"state": state, "stats": stats});
        let v1 = serde_json::json!({
            "format": 1, "kind": "savepoint", "job_id": "ab".repeat(16), "job_name": "wc",
            "checkpoint_id": 3, "timestamp_ms": 1, "mode": "AT_LEAST_ONCE",
            "nodes": [
                {"uid": "gen", "parallelism": 2, "subtasks": [
                    subtask(serde_json::json!({"role": "source",
                        "position": {"connector": "generator", "next": 8}})),
                    subtask(serde_json::json!({"role": "source",
                        "position": {"connector": "generator", "next": 5}}))]},
                {"uid": "out", "parallelism": 2, "subtasks": [
                    subtask(serde_json::json!({"role": "sink", "state": {"pending": [
                        {"checkpoint": 3, "in_progress": ".p.inprogress", "committed": "p"}],
                        "next_part": 1}})),
                    subtask(serde_json::json!({"role": "sink",
                        "state": {"pending": [], "next_part": 0}}))]},
            ]
        });
        let bytes = seal(serde_json::to_vec_pretty(&v1).unwrap());
        let m = CheckpointMetadata::from_bytes(&bytes, "m").unwrap();
        assert_eq!(m.format, FORMAT_VERSION);
        let state = |node: usize, subtask: usize| &m.nodes[node].subtasks[subtask].state;
        let SubtaskState::Source {
            connector,
            position,
        } = state(0, 1)
        else {
            panic!("a source: {:?}", state(0, 1));
        };
        assert_eq!(connector, "generator");
        assert_eq!(
            position,
            &SourcePosition {
                version: 1,
                splits: vec![SplitPosition {
                    split: "1".into(),
                    position: br#"{"next":5}"#.to_vec(),
                }],
            }
        );
        let SubtaskState::Sink {
            connector,
            state: pending,
        } = state(1, 0)
        else {
            panic!("a sink: {:?}", state(1, 0));
        };
        assert_eq!(connector, "file");
        let json: serde_json::Value = serde_json::from_slice(&pending.data).unwrap();
        assert_eq!(json["pending"][0]["committed"], "p");
        assert_eq!(json["next_part"], 1);
        let SubtaskState::Sink { state: nothing, .. } = state(1, 1) else {
            panic!("a sink: {:?}", state(1, 1));
        };
        assert!(nothing.data.is_empty(), "nothing held back: {nothing:?}");
        // Written again, it is format 2 and reads back the same.
        assert_eq!(
            CheckpointMetadata::from_bytes(&m.to_bytes(), "m").unwrap(),
            m
        );
    }

    #[test]
    fn refuses_formats_it_does_not_know() {
        let mut json = serde_json::to_value(sample()).unwrap();
        json["format"] = (FORMAT_VERSION + 1).into();
        let bytes = seal(serde_json::to_vec_pretty(&json).unwrap());
        let err = CheckpointMetadata::from_bytes(&bytes, "m")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains(&format!(
                "metadata format {} is not supported",
                FORMAT_VERSION + 1
            )),
            "{err}"
        );
        // Format 3 (before timers) reads as the current one.
        json["format"] = 3.into();
        let bytes = seal(serde_json::to_vec_pretty(&json).unwrap());
        let read = CheckpointMetadata::from_bytes(&bytes, "m").unwrap();
        assert_eq!(read.format, FORMAT_VERSION);
    }
}
