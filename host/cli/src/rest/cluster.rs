//! The process as Flink's cluster: `/config` (what the web frontend reads first),
//! `/overview`, `/jobmanager/config` and `/taskmanagers`. A Cairn process runs one job; it is the cluster's
//! one "task manager", and the job's subtasks are its slots.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};

use super::Reply;
use crate::control::JobControl;
use cairn_api::responses::Unauthorized;
use cairn_api::{
    ClusterOverviewWithVersion, ConfigurationEntry, DashboardConfiguration, DashboardFeatures,
    FLINK_VERSION, HardwareDescription, JobStatus, TaskManagerInfo, TaskManagersInfo,
};
use cairn_core::clock::now_ms;

/// What answers where Flink gives its revision or commit.
const CAIRN: &str = concat!("cairn ", env!("CARGO_PKG_VERSION"));

/// How often the bundled dashboard refreshes (dashboard/src/main.js, `REFRESH_MS`).
const REFRESH_MS: u64 = 1_000;

/// The web frontend's configuration
///
/// Mirrors Flink's `GET /config`. `flink-version` is the Flink release whose REST API this
/// one mirrors; `flink-revision` names Cairn.
#[utoipa::path(
    get,
    path = "/config",
    tag = "cluster",
    operation_id = "dashboardConfiguration",
    responses(
        (status = 200, description = "The frontend's configuration.", body = DashboardConfiguration),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn config() -> Reply<DashboardConfiguration> {
    Ok(Json(DashboardConfiguration {
        refresh_interval: REFRESH_MS,
        timezone_name: "UTC".into(),
        timezone_offset: 0,
        flink_version: FLINK_VERSION.into(),
        flink_revision: CAIRN.into(),
        features: DashboardFeatures {
            web_submit: false,
            web_cancel: true,
            web_rescale: false,
            web_history: false,
        },
    }))
}

/// Cluster overview
///
/// Mirrors Flink's `GET /overview`: one task manager (this process) whose slots are the
/// job's subtasks, and the one job counted by its status.
#[utoipa::path(
    get,
    path = "/overview",
    tag = "cluster",
    operation_id = "clusterOverview",
    responses(
        (status = 200, description = "This process as a cluster.", body = ClusterOverviewWithVersion),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn overview(
    State(control): State<Arc<JobControl>>,
) -> Reply<ClusterOverviewWithVersion> {
    let snapshot = control.snapshot();
    let is = |status: JobStatus| u32::from(snapshot.status == status);
    Ok(Json(ClusterOverviewWithVersion {
        taskmanagers: 1,
        slots_total: snapshot.graph.subtasks(),
        slots_available: 0,
        jobs_running: u32::from(!snapshot.status.is_terminal()),
        jobs_finished: is(JobStatus::Finished),
        jobs_cancelled: is(JobStatus::Canceled),
        jobs_failed: is(JobStatus::Failed),
        flink_version: FLINK_VERSION.into(),
        flink_commit: CAIRN.into(),
    }))
}

/// The process's configuration
///
/// Mirrors Flink's `GET /jobmanager/config`: every configuration key Cairn knows with its
/// effective value, sensitive ones redacted as in `GET /jobs/{jobid}/config`.
#[utoipa::path(
    get,
    path = "/jobmanager/config",
    tag = "cluster",
    operation_id = "jobManagerConfig",
    responses(
        (status = 200, description = "Every key and its effective value.", body = Vec<ConfigurationEntry>),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn jobmanager_config(
    State(control): State<Arc<JobControl>>,
) -> Reply<Vec<ConfigurationEntry>> {
    Ok(Json(
        effective_config(&control)
            .into_iter()
            .map(|(key, value)| ConfigurationEntry { key, value })
            .collect(),
    ))
}

/// Every configuration key Cairn knows with its effective value (set, or the default);
/// non-empty values of keys whose name says they are secret show `******`, as Flink
/// redacts sensitive keys.
pub(super) fn effective_config(control: &JobControl) -> BTreeMap<String, String> {
    let sensitive = |key: &str| {
        ["secret", "token", "password", "access-key"]
            .iter()
            .any(|s| key.contains(s))
    };
    control
        .settings
        .iter()
        .map(|(key, value)| {
            let shown = if sensitive(key) && !value.is_empty() {
                "******".to_owned()
            } else {
                value.clone()
            };
            (key.clone(), shown)
        })
        .collect()
}

/// The task managers
///
/// Mirrors Flink's `GET /taskmanagers`: one, this process, whose slots are the job's
/// subtasks, with the machine's cores and memory.
#[utoipa::path(
    get,
    path = "/taskmanagers",
    tag = "cluster",
    operation_id = "taskManagers",
    responses(
        (status = 200, description = "This process.", body = TaskManagersInfo),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn taskmanagers(
    State(control): State<Arc<JobControl>>,
    headers: HeaderMap,
) -> Reply<TaskManagersInfo> {
    let subtasks = control.snapshot().graph.subtasks();
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or_default();
    let memory = |field: &str| meminfo(field).unwrap_or(0);
    Ok(Json(TaskManagersInfo {
        taskmanagers: vec![TaskManagerInfo {
            id: format!("cairn-{}", std::process::id()),
            path: format!("http://{host}"),
            data_port: -1,
            jmx_port: -1,
            time_since_last_heartbeat: now_ms(),
            slots_number: subtasks,
            free_slots: 0,
            assigned_tasks: subtasks,
            hardware: HardwareDescription {
                cpu_cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
                physical_memory: memory("MemTotal:"),
                free_memory: memory("MemAvailable:"),
                managed_memory: 0,
            },
            memory_configuration: Default::default(),
        }],
    }))
}

/// A `/proc/meminfo` field in bytes (Linux; `None` elsewhere).
fn meminfo(field: &str) -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: u64 = text
        .lines()
        .find_map(|line| line.strip_prefix(field))?
        .trim()
        .strip_suffix("kB")?
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}
