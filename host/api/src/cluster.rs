//! The cluster-level endpoints Flink's web frontend and tools read first: a Cairn process
//! is a cluster of one job, one process (one "task manager"), its subtasks the slots.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::always_zero;

/// The Flink release whose REST API Cairn's mirrors, reported where Flink reports its own
/// version (tools such as the Flink Kubernetes Operator choose their requests by it).
pub const FLINK_VERSION: &str = "2.3.0";

/// Flink's `GET /config`: what the web frontend needs to know of the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DashboardConfiguration {
    /// How often a dashboard should refresh, in milliseconds.
    pub refresh_interval: u64,
    /// Always `UTC`: times are epoch milliseconds, shown in the reader's own time zone.
    pub timezone_name: String,
    /// Always 0 (see `timezone-name`).
    #[schema(schema_with = always_zero)]
    pub timezone_offset: i32,
    /// [`FLINK_VERSION`]: the Flink release whose REST API this one mirrors.
    pub flink_version: String,
    /// `cairn <version>`: what actually answers.
    pub flink_revision: String,
    pub features: DashboardFeatures,
}

/// What the web frontend may offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct DashboardFeatures {
    /// False: jobs start with `cairn run`, not by uploading a jar.
    pub web_submit: bool,
    /// True: `PATCH /jobs/{jobid}?mode=cancel` cancels the job.
    pub web_cancel: bool,
    /// False: parallelism changes across a savepoint, not in place.
    pub web_rescale: bool,
    /// False: no history server; a job is visible while its process runs.
    pub web_history: bool,
}

/// Flink's `GET /overview`: this process as a cluster of one job.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct ClusterOverviewWithVersion {
    /// Always 1: this process.
    pub taskmanagers: u32,
    /// The job's subtasks (each runs on a thread of its own).
    pub slots_total: u32,
    /// Always 0: a process runs one job, whose subtasks use every slot.
    #[schema(schema_with = always_zero)]
    pub slots_available: u32,
    /// 1 while the job has not ended, else 0; likewise for the three below, by how it ended.
    pub jobs_running: u32,
    pub jobs_finished: u32,
    pub jobs_cancelled: u32,
    pub jobs_failed: u32,
    /// [`FLINK_VERSION`].
    pub flink_version: String,
    /// `cairn <version>`.
    pub flink_commit: String,
}

/// One entry of Flink's `GET /jobmanager/config`: a configuration key and its effective
/// value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConfigurationEntry {
    pub key: String,
    pub value: String,
}

/// Flink's `GET /taskmanagers`: the one task manager, this process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TaskManagersInfo {
    #[schema(min_items = 1, max_items = 1)]
    pub taskmanagers: Vec<TaskManagerInfo>,
}

/// This process as Flink's task manager: its slots are the job's subtasks.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TaskManagerInfo {
    /// `cairn-<process id>`.
    pub id: String,
    /// The address the request reached this process at (`http://<host:port>`).
    pub path: String,
    /// -1: subtasks exchange records in memory, through no data port.
    #[schema(minimum = -1, maximum = -1)]
    pub data_port: i32,
    /// -1: no JMX.
    #[schema(minimum = -1, maximum = -1)]
    pub jmx_port: i32,
    /// When the answer was made: the process answering is its own heartbeat.
    pub time_since_last_heartbeat: u64,
    /// The job's subtasks.
    pub slots_number: u32,
    /// Always 0: the job's subtasks use every slot.
    #[schema(schema_with = always_zero)]
    pub free_slots: u32,
    /// The job's subtasks.
    pub assigned_tasks: u32,
    pub hardware: HardwareDescription,
    /// Always empty: Cairn has no per-pool memory configuration.
    pub memory_configuration: crate::Empty,
}

/// The machine this process runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HardwareDescription {
    /// Cores this process may use.
    pub cpu_cores: u32,
    /// Bytes of memory (`MemTotal` of `/proc/meminfo`; 0 where there is none).
    pub physical_memory: u64,
    /// Bytes of memory available (`MemAvailable`; 0 where there is none).
    pub free_memory: u64,
    /// Always 0: no managed memory.
    #[schema(schema_with = always_zero)]
    pub managed_memory: u64,
}
