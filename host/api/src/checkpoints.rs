//! Checkpoint statistics and configuration, in Flink's shapes (snake_case, as Flink's are).
//! Sizes are bytes, durations and times milliseconds.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{always_false, always_true, constant};

/// Flink's `GET /jobs/:jobid/checkpoints`: the checkpoints and savepoints of every attempt of
/// the job (kept across restarts).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointingStatistics {
    pub counts: CheckpointCounts,
    pub summary: CheckpointSummary,
    pub latest: LatestCheckpoints,
    /// The latest `web.checkpoints.history` (default 10) completed checkpoints and savepoints
    /// of every attempt, newest first.
    pub history: Vec<CompletedCheckpointStatistics>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointCounts {
    /// Attempts that started from a checkpoint or savepoint (`-s`, or a restart).
    pub restored: u64,
    /// `completed` + `failed` + `in_progress`.
    pub total: u64,
    /// Checkpoints and savepoints of the running attempt triggered and neither completed nor
    /// failed yet.
    pub in_progress: u64,
    /// Completed checkpoints and savepoints of every attempt.
    pub completed: u64,
    /// Failed checkpoints and savepoints of every attempt.
    pub failed: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointSummary {
    pub checkpointed_size: MinMaxAvg,
    pub state_size: MinMaxAvg,
    pub end_to_end_duration: MinMaxAvg,
}

/// Over the completed checkpoints and savepoints of every attempt; all 0 when there are none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MinMaxAvg {
    pub min: u64,
    pub max: u64,
    pub avg: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LatestCheckpoints {
    /// The latest completed checkpoint (not savepoint), or null.
    #[schema(required = true)]
    pub completed: Option<CompletedCheckpointStatistics>,
    /// The latest completed savepoint, or null.
    #[schema(required = true)]
    pub savepoint: Option<CompletedCheckpointStatistics>,
    /// The latest failed checkpoint or savepoint of any attempt, or null if none failed.
    #[schema(required = true)]
    pub failed: Option<FailedCheckpointStatistics>,
    /// What the latest restoring attempt started from, or null if none did.
    #[schema(required = true)]
    pub restored: Option<RestoredCheckpointStatistics>,
}

constant!(
    /// Flink's class name of a completed checkpoint's statistics.
    CompletedClass = "completed"
);

constant!(
    /// Flink's class name of a failed checkpoint's statistics.
    FailedClass = "failed"
);

constant!(
    /// Cairn reports only completed checkpoints' details.
    CompletedStatus = "COMPLETED"
);

constant!(
    /// A failed checkpoint's status.
    FailedStatus = "FAILED"
);

constant!(
    /// Savepoints are written in Flink's canonical format's place: Cairn's only one.
    SavepointFormat = "CANONICAL"
);

/// Whether it was a checkpoint or a savepoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum CheckpointType {
    Checkpoint,
    Savepoint,
}

/// Flink's statistics of a completed checkpoint or savepoint (the fields of Flink's that
/// Cairn tracks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompletedCheckpointStatistics {
    #[serde(rename = "className")]
    pub class_name: CompletedClass,
    pub id: u64,
    pub status: CompletedStatus,
    pub is_savepoint: bool,
    pub checkpoint_type: CheckpointType,
    /// Every subtask that acknowledged it (all subtasks of the attempt that took it).
    pub num_subtasks: usize,
    /// Equal to `num_subtasks` (only completed checkpoints are reported).
    pub num_acknowledged_subtasks: usize,
    /// CANONICAL for a savepoint, null for a checkpoint.
    #[serde(rename = "savepointFormat")]
    #[schema(required = true)]
    pub savepoint_format: Option<SavepointFormat>,
    pub trigger_timestamp: u64,
    /// `trigger_timestamp` + `end_to_end_duration`.
    pub latest_ack_timestamp: u64,
    /// Bytes stored.
    pub checkpointed_size: u64,
    /// Operator state bytes, uncompressed.
    pub state_size: u64,
    /// Milliseconds from trigger to `_metadata` written.
    pub end_to_end_duration: u64,
    /// Its folder's URL, or null when not stored.
    #[schema(required = true)]
    pub external_path: Option<String>,
    #[schema(schema_with = always_false)]
    pub discarded: bool,
}

/// A failed checkpoint or savepoint (the fields of Flink's that Cairn tracks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct FailedCheckpointStatistics {
    #[serde(rename = "className")]
    pub class_name: FailedClass,
    pub id: u64,
    pub status: FailedStatus,
    pub is_savepoint: bool,
    pub trigger_timestamp: u64,
    /// When it failed.
    pub failure_timestamp: u64,
    /// Why it failed.
    pub failure_message: String,
}

/// The checkpoint or savepoint an attempt restored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RestoredCheckpointStatistics {
    pub id: u64,
    pub restore_timestamp: u64,
    pub is_savepoint: bool,
    pub external_path: String,
}

/// Flink's `GET /jobs/:jobid/checkpoints/details/:checkpointid`: a completed checkpoint's or
/// savepoint's statistics and its subtasks' totals per vertex.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointDetails {
    #[serde(flatten)]
    pub checkpoint: CompletedCheckpointStatistics,
    /// One entry per vertex of the job graph, keyed by the vertex's id.
    pub tasks: BTreeMap<String, TaskCheckpointStatistics>,
}

/// A vertex's part of a completed checkpoint, totalled over its subtasks (the fields of
/// Flink's that Cairn tracks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskCheckpointStatistics {
    /// The vertex's id.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub status: CompletedStatus,
    /// The latest acknowledgement of any of its subtasks (the checkpoint's
    /// `trigger_timestamp` if it has none).
    pub latest_ack_timestamp: u64,
    /// Bytes its subtasks stored (0 for sources and sinks).
    pub checkpointed_size: u64,
    /// Its subtasks' operator state bytes, uncompressed (0 for sources and sinks).
    pub state_size: u64,
    /// Milliseconds from the checkpoint's trigger to `latest_ack_timestamp`.
    pub end_to_end_duration: u64,
    /// Its subtasks in the checkpoint.
    pub num_subtasks: usize,
    /// Equal to `num_subtasks`.
    pub num_acknowledged_subtasks: usize,
}

/// Flink's `GET /jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid`: a
/// vertex's part of a completed checkpoint, with each of its subtasks (without `summary`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskCheckpointStatisticsWithSubtaskDetails {
    #[serde(flatten)]
    pub task: TaskCheckpointStatistics,
    /// One entry per subtask of the vertex, by index.
    pub subtasks: Vec<SubtaskCheckpointStatistics>,
}

constant!(
    /// A completed subtask's status, in Flink's lower case.
    SubtaskCompleted = "completed"
);

/// One subtask's part of a completed checkpoint (the fields of Flink's completed subtask
/// statistics that Cairn tracks). Durations are whole milliseconds (rounded).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubtaskCheckpointStatistics {
    /// The subtask's index (from 0).
    pub index: u32,
    pub status: SubtaskCompleted,
    /// When its acknowledgement arrived.
    pub ack_timestamp: u64,
    /// Milliseconds from the checkpoint's trigger to `ack_timestamp`.
    pub end_to_end_duration: u64,
    /// Its operator state bytes, uncompressed (0 for sources and sinks).
    pub state_size: u64,
    /// Bytes it stored (0 for sources and sinks).
    pub checkpointed_size: u64,
    pub checkpoint: SubtaskCheckpointDurations,
    pub alignment: SubtaskAlignment,
    #[schema(schema_with = always_false)]
    pub unaligned_checkpoint: bool,
    #[schema(schema_with = always_false)]
    pub aborted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubtaskCheckpointDurations {
    /// Milliseconds taking the snapshot on the processing path (0 for sources).
    pub sync: u64,
    /// Milliseconds compressing and uploading the state off the processing path (0 for
    /// sources, sinks and operators with nothing to store).
    #[serde(rename = "async")]
    pub asynchronous: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SubtaskAlignment {
    /// Milliseconds from its first barrier to its last (exactly-once alignment; 0 for
    /// sources).
    pub duration: u64,
}

/// The checkpointing mode, in Flink's lower case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointMode {
    ExactlyOnce,
    AtLeastOnce,
}

constant!(
    /// Operator state lives in the Wasm operators, snapshotted at barriers.
    StateBackend = "WasmOperatorState"
);

constant!(
    /// Checkpoints go to an `object_store` folder.
    CheckpointStorage = "ObjectStoreCheckpointStorage"
);

/// Flink's `GET /jobs/:jobid/checkpoints/config`, from the `execution.checkpointing.*` keys;
/// durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CheckpointConfigInfo {
    pub mode: CheckpointMode,
    pub interval: u64,
    pub timeout: u64,
    pub min_pause: u64,
    pub max_concurrent: u32,
    pub externalization: Externalization,
    pub state_backend: StateBackend,
    pub checkpoint_storage: CheckpointStorage,
    #[schema(schema_with = always_false)]
    pub unaligned_checkpoints: bool,
    pub tolerable_failed_checkpoints: u32,
    /// Always 0 (Cairn's checkpoints are aligned).
    #[schema(minimum = 0, maximum = 0)]
    pub aligned_checkpoint_timeout: u64,
    #[schema(schema_with = always_true)]
    pub checkpoints_after_tasks_finish: bool,
    #[schema(schema_with = always_false)]
    pub state_changelog_enabled: bool,
    pub num_retained: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Externalization {
    /// False only with retention NO_EXTERNALIZED_CHECKPOINTS.
    pub enabled: bool,
    /// False only with retention RETAIN_ON_CANCELLATION.
    pub delete_on_cancellation: bool,
}
