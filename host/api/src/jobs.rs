//! The job: its status, overview, details and plan, configuration, failures, metrics and
//! backpressure. Times are milliseconds since the Unix epoch.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Empty, always_false, always_true, always_zero, constant};

/// A job's status, with Flink's names.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "UPPERCASE")]
pub enum JobStatus {
    Initializing,
    Running,
    Restarting,
    Cancelling,
    Finished,
    Canceled,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Initializing => "INITIALIZING",
            JobStatus::Running => "RUNNING",
            JobStatus::Restarting => "RESTARTING",
            JobStatus::Cancelling => "CANCELLING",
            JobStatus::Finished => "FINISHED",
            JobStatus::Canceled => "CANCELED",
            JobStatus::Failed => "FAILED",
        }
    }

    /// FINISHED, CANCELED or FAILED: the job will not change again.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            JobStatus::Finished | JobStatus::Canceled | JobStatus::Failed
        )
    }
}

/// A task's (or vertex's) state, with Flink's execution-state names. Cairn runs every task of
/// a job alike, in the state derived from the job's status: CREATED while INITIALIZING or
/// RESTARTING, CANCELING while CANCELLING, else the state of the job's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ExecutionState {
    Created,
    Scheduled,
    Deploying,
    Running,
    Finished,
    Canceling,
    Canceled,
    Failed,
    Reconciling,
    Initializing,
}

impl From<JobStatus> for ExecutionState {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Initializing | JobStatus::Restarting => ExecutionState::Created,
            JobStatus::Running => ExecutionState::Running,
            JobStatus::Cancelling => ExecutionState::Canceling,
            JobStatus::Finished => ExecutionState::Finished,
            JobStatus::Canceled => ExecutionState::Canceled,
            JobStatus::Failed => ExecutionState::Failed,
        }
    }
}

/// Declares counts per execution state, one field per state, keys cased as `case`; `new`
/// counts `count` in one state and 0 in the others.
macro_rules! state_counts {
    ($(#[$doc:meta])* $name:ident, $case:tt) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
        #[serde(rename_all = $case)]
        pub struct $name {
            pub created: u32,
            pub scheduled: u32,
            pub deploying: u32,
            pub running: u32,
            pub finished: u32,
            pub canceling: u32,
            pub canceled: u32,
            pub failed: u32,
            pub reconciling: u32,
            pub initializing: u32,
        }

        impl $name {
            pub fn new(state: ExecutionState, count: u32) -> Self {
                let mut counts = Self::default();
                *match state {
                    ExecutionState::Created => &mut counts.created,
                    ExecutionState::Scheduled => &mut counts.scheduled,
                    ExecutionState::Deploying => &mut counts.deploying,
                    ExecutionState::Running => &mut counts.running,
                    ExecutionState::Finished => &mut counts.finished,
                    ExecutionState::Canceling => &mut counts.canceling,
                    ExecutionState::Canceled => &mut counts.canceled,
                    ExecutionState::Failed => &mut counts.failed,
                    ExecutionState::Reconciling => &mut counts.reconciling,
                    ExecutionState::Initializing => &mut counts.initializing,
                } = count;
                counts
            }
        }
    };
}

state_counts!(
    /// Flink's per-state task (subtask) counts: every task is counted in the job-derived
    /// state (see `ExecutionState`), the other counts are 0.
    TaskCounts,
    "lowercase"
);

state_counts!(
    /// Counts keyed by Flink's execution-state names (upper case, as Flink serialises
    /// `Map<ExecutionState, Integer>`): every task (or vertex) in the job-derived state, the
    /// other states 0.
    ExecutionStateCounts,
    "UPPERCASE"
);

/// Flink's `GET /jobs`: the one job this process runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobIdsWithStatusOverview {
    #[schema(min_items = 1, max_items = 1)]
    pub jobs: Vec<JobIdWithStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobIdWithStatus {
    pub id: String,
    pub status: JobStatus,
}

/// Flink's `GET /jobs/overview`: the one job this process runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MultipleJobsDetails {
    #[schema(min_items = 1, max_items = 1)]
    pub jobs: Vec<JobOverview>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobOverview {
    pub jid: String,
    pub name: String,
    pub state: JobStatus,
    /// When the job started.
    pub start_time: u64,
    /// When the job ended (FINISHED, CANCELED or FAILED); -1 until then.
    #[schema(minimum = -1)]
    pub end_time: i64,
    /// Milliseconds from the job's start to its end, or to now while it has not ended.
    pub duration: u64,
    /// When the job last changed status.
    pub last_modification: u64,
    pub tasks: JobTaskCounts,
    /// Operators not deployed yet: always 0, a Cairn job starts all its operators together.
    /// (Flink's client requires the field.)
    #[schema(schema_with = always_zero)]
    pub pending_operators: u32,
}

/// The job's tasks per state, and their total.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobTaskCounts {
    #[serde(flatten)]
    pub states: TaskCounts,
    /// Every task of the job.
    pub total: u32,
}

constant!(
    /// Cairn runs streaming jobs only.
    JobType = "STREAMING"
);

/// Flink's `GET /jobs/:jobid`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobDetailsInfo {
    pub jid: String,
    pub name: String,
    /// Always false (Flink's stoppable sources; use `/stop` for stop-with-savepoint).
    #[serde(rename = "isStoppable")]
    #[schema(schema_with = always_false)]
    pub is_stoppable: bool,
    pub state: JobStatus,
    pub job_type: JobType,
    /// When the job started.
    pub start_time: u64,
    /// When the job ended (FINISHED, CANCELED or FAILED); -1 until then.
    #[schema(minimum = -1)]
    pub end_time: i64,
    /// Milliseconds from the job's start to its end, or to now while it has not ended.
    pub duration: u64,
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: u32,
    /// When the answer was made.
    pub now: u64,
    /// When the job last entered each status it has been in.
    pub timestamps: BTreeMap<JobStatus, u64>,
    pub vertices: Vec<JobVertexDetails>,
    /// The number of vertices per execution state (all vertices share the job-derived state).
    pub status_counts: ExecutionStateCounts,
    pub plan: JobPlan,
    /// Operators not deployed yet: always 0, a Cairn job starts all its operators together.
    #[schema(schema_with = always_zero)]
    pub pending_operators: u32,
}

/// One node of the job graph (source, operator or sink).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobVertexDetails {
    /// Flink-format vertex id (32 lowercase hex), a hash of the node's uid, stable across
    /// runs.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    /// The node's uid.
    pub name: String,
    #[serde(rename = "maxParallelism")]
    pub max_parallelism: u32,
    pub parallelism: u32,
    pub status: ExecutionState,
    pub start_time: u64,
    /// -1 until the job ends.
    #[schema(minimum = -1)]
    pub end_time: i64,
    pub duration: u64,
    /// The vertex's subtasks per state.
    pub tasks: ExecutionStateCounts,
    pub metrics: VertexMetrics,
    /// Flink's slot sharing group: every vertex shares the one group (32 lowercase hex).
    #[serde(rename = "slotSharingGroupId")]
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub slot_sharing_group_id: String,
}

/// A vertex's record counts in the current attempt (0 while none runs: INITIALIZING,
/// RESTARTING, ended). Bytes and busy, idle and backpressured times are not measured per
/// vertex: 0, with `*-bytes-complete` false (Flink's way of saying a count is partial).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct VertexMetrics {
    /// Records read by the vertex's subtasks.
    pub read_records: u64,
    #[schema(schema_with = always_true)]
    pub read_records_complete: bool,
    /// Records written by the vertex's subtasks.
    pub write_records: u64,
    #[schema(schema_with = always_true)]
    pub write_records_complete: bool,
    /// Not measured: 0.
    #[schema(schema_with = always_zero)]
    pub read_bytes: u64,
    #[schema(schema_with = always_false)]
    pub read_bytes_complete: bool,
    /// Not measured: 0.
    #[schema(schema_with = always_zero)]
    pub write_bytes: u64,
    #[schema(schema_with = always_false)]
    pub write_bytes_complete: bool,
    /// Not measured: 0.
    #[schema(schema_with = always_zero)]
    pub accumulated_backpressured_time: u64,
    /// Not measured: 0.
    #[schema(schema_with = always_zero)]
    pub accumulated_idle_time: u64,
    /// Not measured: 0.
    #[schema(schema_with = always_zero)]
    pub accumulated_busy_time: f64,
}

/// The job graph as Flink's plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobPlan {
    pub jid: String,
    pub name: String,
    #[serde(rename = "type")]
    pub job_type: JobType,
    pub nodes: Vec<PlanNode>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanNode {
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub id: String,
    pub parallelism: u32,
    /// Always empty.
    pub operator: String,
    /// Always empty.
    pub operator_strategy: String,
    /// `Source: ...`, `Operator: <name>` or `Sink: ...`.
    pub description: String,
    pub inputs: Vec<PlanInput>,
    /// Always empty.
    pub optimizer_properties: Empty,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct PlanInput {
    pub num: usize,
    /// The upstream vertex's id.
    pub id: String,
    pub ship_strategy: ShipStrategy,
    pub exchange: Exchange,
}

/// How records travel from the upstream vertex, with Flink's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum ShipStrategy {
    Forward,
    Rebalance,
    /// By key.
    Hash,
    Broadcast,
}

constant!(
    /// Bounded pipelined channels.
    Exchange = "pipelined_bounded"
);

constant!(
    /// Cairn's jobs are pipelined.
    ExecutionMode = "PIPELINED"
);

/// Flink's `GET /jobs/:jobid/config`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct JobConfigInfo {
    pub jid: String,
    pub name: String,
    pub execution_config: ExecutionConfig,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ExecutionConfig {
    pub execution_mode: ExecutionMode,
    /// The effective restart strategy (`restart-strategy.*`), in Rust's debug notation, e.g.
    /// `None` or `FixedDelay { attempts: 3, delay: 1s }`.
    pub restart_strategy: String,
    /// `parallelism.default`.
    pub job_parallelism: u32,
    #[schema(schema_with = always_false)]
    pub object_reuse_mode: bool,
    /// Every configuration key Cairn knows, with its effective value (set, or the default)
    /// as a string; non-empty values of keys whose name contains `secret`, `token`,
    /// `password` or `access-key` are `******`.
    #[schema(example = json!({
        "parallelism.default": "4",
        "execution.checkpointing.interval": "10 s",
        "rest.auth-token": "******",
        "s3.secret-key": "",
    }))]
    pub user_config: BTreeMap<String, String>,
}

/// A metric of the job or of a vertex, as in Flink (an entry of its
/// `MetricCollectionResponseBody`): its id, and its current value when `get` asked for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Metric {
    /// The metric's Flink id: a job metric's name, or a vertex metric's subtask-scoped id
    /// (the descriptions of `GET /jobs/{jobid}/metrics` and
    /// `GET /jobs/{jobid}/vertices/{vertexid}/metrics` list them, that of `GET /metrics` says
    /// what each means).
    pub id: String,
    /// The number in decimal, without a fraction when whole (e.g. `"3"`, `"-1"`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
}

constant!(
    /// Cairn answers at once, from its latest sample.
    BackPressureStatus = "ok"
);

/// Flink's levels, from the ratio: `ok` up to 0.10, `low` up to 0.5, `high` above.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum BackPressureLevel {
    Ok,
    Low,
    High,
}

impl BackPressureLevel {
    /// The level of a share of time spent waiting for room downstream.
    pub fn of(ratio: f64) -> Self {
        match ratio {
            r if r <= 0.10 => BackPressureLevel::Ok,
            r if r <= 0.5 => BackPressureLevel::Low,
            _ => BackPressureLevel::High,
        }
    }
}

/// Flink's `GET /jobs/:jobid/vertices/:vertexid/backpressure`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct JobVertexBackPressureInfo {
    pub status: BackPressureStatus,
    /// The level of the vertex's most back-pressured subtask (`ok` with no subtasks).
    #[serde(rename = "backpressureLevel")]
    pub backpressure_level: BackPressureLevel,
    /// When the answer was made.
    #[serde(rename = "end-timestamp")]
    pub end_timestamp: u64,
    /// One entry per subtask of the running attempt; empty while none runs.
    pub subtasks: Vec<SubtaskBackPressureInfo>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SubtaskBackPressureInfo {
    /// The subtask's index.
    pub subtask: u32,
    /// The job's attempt, i.e. its number of restarts so far.
    #[serde(rename = "attempt-number")]
    pub attempt_number: u32,
    #[serde(rename = "backpressureLevel")]
    pub backpressure_level: BackPressureLevel,
    /// Share of time the subtask waited for room downstream.
    #[schema(minimum = 0, maximum = 1)]
    pub ratio: f64,
}

/// Flink's `GET /jobs/:jobid/exceptions` (with exception history).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct JobExceptionsInfoWithHistory {
    /// `<task> failed: <message>` for the latest failure; null if none.
    #[serde(rename = "root-exception")]
    #[schema(required = true)]
    pub root_exception: Option<String>,
    /// When the latest failure happened; null if none.
    #[schema(required = true)]
    pub timestamp: Option<u64>,
    /// Always empty (Flink's deprecated field).
    #[serde(rename = "all-exceptions")]
    #[schema(max_items = 0)]
    pub all_exceptions: Vec<Empty>,
    /// Whether failures older than `web.exception-history-size` were dropped.
    pub truncated: bool,
    #[serde(rename = "exceptionHistory")]
    pub exception_history: ExceptionHistory,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ExceptionHistory {
    /// The latest failures (at most `web.exception-history-size`), newest first.
    pub entries: Vec<ExceptionHistoryEntry>,
    /// Whether failures older than `web.exception-history-size` were dropped.
    pub truncated: bool,
}

constant!(
    /// Every failure Cairn reports is a task's.
    ExceptionName = "TaskFailure"
);

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ExceptionHistoryEntry {
    pub exception_name: ExceptionName,
    /// The failure's message.
    #[serde(rename = "stacktrace")]
    pub stack_trace: String,
    pub timestamp: u64,
    /// The failed subtask, Flink-style, e.g. `count (2/4)`.
    pub task_name: String,
    /// Always null.
    #[schema(required = true)]
    pub location: Option<String>,
    /// Always null.
    #[schema(required = true)]
    pub task_manager_id: Option<String>,
    /// Always empty.
    pub failure_labels: Empty,
    /// Always empty.
    #[schema(max_items = 0)]
    pub concurrent_exceptions: Vec<Empty>,
}
