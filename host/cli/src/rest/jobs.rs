//! The job: its status, overview, details, configuration and failures; cancelling it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Accepted, ApiError, Reply, error, flink_id, job, times};
use crate::control::JobControl;
use cairn_api::params::JobId;
use cairn_api::responses::{JobNotFound, Unauthorized};
use cairn_api::{
    Empty, ExceptionHistory, ExceptionHistoryEntry, ExecutionConfig, ExecutionState,
    ExecutionStateCounts, JobConfigInfo, JobDetailsInfo, JobExceptionsInfoWithHistory,
    JobIdWithStatus, JobIdsWithStatusOverview, JobOverview, JobPlan, JobTaskCounts,
    JobVertexDetails, MultipleJobsDetails, PlanInput, PlanNode, ShipStrategy, TaskCounts,
    VertexMetrics,
};
use cairn_core::clock::now_ms;
use cairn_core::graph::{Graph, Role};

/// The job and its status
///
/// Mirrors Flink's `GET /jobs`. Always lists exactly the one job this process runs.
#[utoipa::path(
    get,
    path = "/jobs",
    tag = "jobs",
    operation_id = "listJobs",
    responses(
        (status = 200, description = "The job's id and status.", body = JobIdsWithStatusOverview),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn jobs(
    State(control): State<Arc<JobControl>>,
) -> Reply<JobIdsWithStatusOverview> {
    Ok(Json(JobIdsWithStatusOverview {
        jobs: vec![JobIdWithStatus {
            id: control.id.clone(),
            status: control.snapshot().status,
        }],
    }))
}

/// Overview of the job
///
/// Mirrors Flink's `GET /jobs/overview`, with the one job this process runs.
#[utoipa::path(
    get,
    path = "/jobs/overview",
    tag = "jobs",
    operation_id = "jobsOverview",
    responses(
        (status = 200, description = "One overview entry.", body = MultipleJobsDetails),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn overview(State(control): State<Arc<JobControl>>) -> Reply<MultipleJobsDetails> {
    let snapshot = control.snapshot();
    let (start, end, duration) = times(&control, &snapshot);
    let tasks = snapshot.graph.subtasks();
    Ok(Json(MultipleJobsDetails {
        jobs: vec![JobOverview {
            jid: control.id.clone(),
            name: control.name.clone(),
            state: snapshot.status,
            start_time: start,
            end_time: end,
            duration,
            last_modification: snapshot.timestamps.values().max().copied().unwrap_or(start),
            tasks: JobTaskCounts {
                states: TaskCounts::new(snapshot.status.into(), tasks),
                total: tasks,
            },
            pending_operators: 0,
        }],
    }))
}

/// Job details
///
/// Mirrors Flink's `GET /jobs/:jobid`: status, timestamps, one vertex per node of the job
/// graph (source, operator or sink) and the plan. Record counts come from the current
/// attempt and are 0 while none runs (INITIALIZING, RESTARTING, ended).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}",
    tag = "jobs",
    operation_id = "jobDetails",
    params(JobId),
    responses(
        (status = 200, description = "The job's details.", body = JobDetailsInfo),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
    )
)]
pub(super) async fn details(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
) -> Reply<JobDetailsInfo> {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let (start, end, duration) = times(control, &snapshot);
    let counts = snapshot
        .metrics
        .as_ref()
        .map(|m| m.task_counts())
        .unwrap_or_default();
    let state = ExecutionState::from(snapshot.status);
    let slot_sharing_group = flink_id("slot sharing group: default");
    let vertices = snapshot
        .graph
        .nodes
        .iter()
        .map(|node| {
            let (read, written) = counts
                .iter()
                .filter(|(task, _, _)| task.uid == node.uid)
                .fold((0, 0), |(r, w), (_, i, o)| (r + i, w + o));
            JobVertexDetails {
                id: flink_id(&node.uid),
                name: node.uid.clone(),
                max_parallelism: snapshot.graph.max_parallelism,
                parallelism: node.parallelism,
                status: state,
                start_time: start,
                end_time: end,
                duration,
                tasks: ExecutionStateCounts::new(state, node.parallelism),
                metrics: VertexMetrics {
                    read_records: read,
                    read_records_complete: true,
                    write_records: written,
                    write_records_complete: true,
                    read_bytes: 0,
                    read_bytes_complete: false,
                    write_bytes: 0,
                    write_bytes_complete: false,
                    accumulated_backpressured_time: 0,
                    accumulated_idle_time: 0,
                    accumulated_busy_time: 0.0,
                },
                slot_sharing_group_id: slot_sharing_group.clone(),
            }
        })
        .collect();
    Ok(Json(JobDetailsInfo {
        jid: control.id.clone(),
        name: control.name.clone(),
        is_stoppable: false,
        state: snapshot.status,
        job_type: Default::default(),
        start_time: start,
        end_time: end,
        duration,
        max_parallelism: snapshot.graph.max_parallelism,
        now: now_ms(),
        timestamps: snapshot.timestamps.clone(),
        vertices,
        status_counts: ExecutionStateCounts::new(state, snapshot.graph.nodes.len() as u32),
        plan: plan(control, &snapshot.graph),
        pending_operators: 0,
    }))
}

fn plan(control: &JobControl, graph: &Graph) -> JobPlan {
    let nodes = graph
        .nodes
        .iter()
        .map(|node| PlanNode {
            id: flink_id(&node.uid),
            parallelism: node.parallelism,
            operator: String::new(),
            operator_strategy: String::new(),
            description: match &node.role {
                Role::Source(source) => format!("Source: {source}"),
                Role::Operator { name, .. } => format!("Operator: {name}"),
                Role::Sink(sink) => format!("Sink: {sink}"),
            },
            inputs: node
                .inputs
                .iter()
                .enumerate()
                .map(|(num, edge)| PlanInput {
                    num,
                    id: flink_id(&graph.nodes[edge.upstream].uid),
                    ship_strategy: match edge.partitioning {
                        cairn_wire::Partitioning::Forward => ShipStrategy::Forward,
                        cairn_wire::Partitioning::Rebalance => ShipStrategy::Rebalance,
                        cairn_wire::Partitioning::ByKey => ShipStrategy::Hash,
                        cairn_wire::Partitioning::Broadcast => ShipStrategy::Broadcast,
                    },
                    exchange: Default::default(),
                })
                .collect(),
            optimizer_properties: Empty {},
        })
        .collect();
    JobPlan {
        jid: control.id.clone(),
        name: control.name.clone(),
        job_type: Default::default(),
        nodes,
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct TerminateQuery {
    /// Only `cancel` is supported; omitted means `cancel`. Anything else is `400`.
    #[param(pattern = "^cancel$", example = "cancel")]
    mode: Option<String>,
}

/// Cancel the job
///
/// Mirrors Flink's `PATCH /jobs/:jobid?mode=cancel`. Cancels the job (every attempt,
/// including a pending restart): its status becomes CANCELLING unless it has already
/// ended, then CANCELED. Accepted in any status, and idempotent.
#[utoipa::path(
    patch,
    path = "/jobs/{jobid}",
    tag = "jobs",
    operation_id = "cancelJob",
    params(JobId, TerminateQuery),
    responses(
        (status = 202, description = "Cancellation requested. The body is an empty object, as in Flink.", body = Empty),
        (status = 400, description = "An unsupported `mode`.", body = cairn_api::ErrorBody,
            example = json!({"errors": ["unsupported termination mode 'stop' (supported: cancel)"]})),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
    )
)]
pub(super) async fn terminate(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<TerminateQuery>,
) -> Result<Accepted<Empty>, ApiError> {
    let control = job(&control, &id)?;
    match query.mode.as_deref() {
        None | Some("cancel") => {
            control.cancel();
            Ok(Accepted(Empty {}))
        }
        Some(other) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("unsupported termination mode '{other}' (supported: cancel)"),
        )),
    }
}

/// The job's configuration
///
/// Mirrors Flink's `GET /jobs/:jobid/config`. `execution-config.user-config` holds every
/// configuration key Cairn knows with its effective value (set, or the default) as a
/// string. Keys whose name contains `secret`, `token`, `password` or `access-key` (e.g.
/// `rest.auth-token`, `s3.access-key`, `s3.secret-key`) show `******` instead of a
/// non-empty value, as Flink redacts sensitive keys.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/config",
    tag = "jobs",
    operation_id = "jobConfig",
    params(JobId),
    responses(
        (status = 200, description = "The job's execution config.", body = JobConfigInfo),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
    )
)]
pub(super) async fn job_config(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
) -> Reply<JobConfigInfo> {
    let control = job(&control, &id)?;
    let user_config = super::cluster::effective_config(control);
    Ok(Json(JobConfigInfo {
        jid: control.id.clone(),
        name: control.name.clone(),
        execution_config: ExecutionConfig {
            execution_mode: Default::default(),
            restart_strategy: format!("{:?}", control.config.restart),
            job_parallelism: control.default_parallelism(),
            object_reuse_mode: false,
            user_config,
        },
    }))
}

/// Failures of the job's attempts
///
/// Mirrors Flink's `GET /jobs/:jobid/exceptions` (with exception history). Lists the
/// latest task failures across all attempts, newest first, at most
/// `web.exception-history-size` (default 16) of them; `truncated` says whether older ones
/// were dropped. `root-exception` and `timestamp` describe the latest one and are null
/// when the job never failed. No query parameters are read.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/exceptions",
    tag = "jobs",
    operation_id = "jobExceptions",
    params(JobId),
    responses(
        (status = 200, description = "The exception history.", body = JobExceptionsInfoWithHistory),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
    )
)]
pub(super) async fn exceptions(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
) -> Reply<JobExceptionsInfoWithHistory> {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let latest = snapshot.exceptions.last();
    let entries = snapshot
        .exceptions
        .iter()
        .rev()
        .map(|e| ExceptionHistoryEntry {
            exception_name: Default::default(),
            stack_trace: e.message.clone(),
            timestamp: e.timestamp_ms,
            task_name: e.task.clone(),
            location: None,
            task_manager_id: None,
            failure_labels: Empty {},
            concurrent_exceptions: Vec::new(),
        })
        .collect();
    Ok(Json(JobExceptionsInfoWithHistory {
        root_exception: latest.map(|e| format!("{} failed: {}", e.task, e.message)),
        timestamp: latest.map(|e| e.timestamp_ms),
        all_exceptions: Vec::new(),
        // Older failures beyond web.exception-history-size were dropped.
        truncated: snapshot.exceptions_truncated,
        exception_history: ExceptionHistory {
            entries,
            truncated: snapshot.exceptions_truncated,
        },
    }))
}
