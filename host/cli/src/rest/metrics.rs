//! Metrics: Prometheus' `/metrics`, and Flink's job metrics and vertex backpressure.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, Reply, error, flink_id, job};
use crate::control::JobControl;
use crate::prometheus::{JOB_METRICS, TASK_METRICS};
use cairn_api::params::{JobId, VertexId};
use cairn_api::responses::{JobNotFound, Unauthorized};
use cairn_api::{
    BackPressureLevel, ErrorBody, JobVertexBackPressureInfo, Metric, SubtaskBackPressureInfo,
};
use cairn_core::clock::now_ms;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct MetricsQuery {
    /// Comma-separated metric names (whitespace around each name is ignored).
    #[param(example = "numRestarts,lastCheckpointDuration")]
    get: Option<String>,
}

/// Job-scope metrics
///
/// Flink's `GET /jobs/:jobid/metrics` (the description is [`job_metrics_description`]).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/metrics",
    tag = "metrics",
    operation_id = "jobMetrics",
    description = job_metrics_description(),
    params(JobId, MetricsQuery),
    responses(
        (status = 200, description = "The metric names, or the requested metrics with their values.", body = Vec<Metric>, examples(
            ("values" = (value = json!([
                {"id": "numRestarts", "value": "0"},
                {"id": "lastCheckpointDuration", "value": "184"},
            ]))),
        )),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
    )
)]
pub(super) async fn job_metrics(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<MetricsQuery>,
) -> Reply<Vec<Metric>> {
    let control = job(&control, &id)?;
    let metrics = crate::prometheus::job_metrics(control, &control.snapshot());
    let answer = match query.get {
        None => metrics
            .iter()
            .map(|m| Metric {
                id: m.name.to_owned(),
                value: None,
            })
            .collect(),
        Some(names) => names
            .split(',')
            .filter_map(|name| metrics.iter().find(|m| m.name == name.trim()))
            .map(|m| Metric {
                id: m.name.to_owned(),
                value: Some(m.value.to_string()),
            })
            .collect(),
    };
    Ok(Json(answer))
}

/// Backpressure of a vertex
///
/// Mirrors Flink's `GET /jobs/:jobid/vertices/:vertexid/backpressure`. Each subtask's
/// `ratio` is the share of time it waited for room downstream (its
/// `backPressuredTimeMsPerSecond` / 1000) since the previous sample, taken at most once a
/// second and shared by every reader. Levels are Flink's: `ok` up to 0.10, `low` up to
/// 0.5, `high` above; the vertex's level is that of its most back-pressured subtask.
/// While no attempt runs (INITIALIZING, RESTARTING, ended), `subtasks` is empty and the
/// level `ok`. Always answered at once (`status` is `ok`; Cairn does not sample on
/// request).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/vertices/{vertexid}/backpressure",
    tag = "metrics",
    operation_id = "vertexBackPressure",
    params(JobId, VertexId),
    responses(
        (status = 200, description = "The vertex's backpressure.", body = JobVertexBackPressureInfo),
        (status = 401, response = Unauthorized),
        (status = 404, description = "Unknown job id, or the job has no vertex with this id.", body = ErrorBody, examples(
            ("unknownJob" = (value = json!({"errors": ["Job 00000000000000000000000000000000 not found: this server runs job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b"]}))),
            ("unknownVertex" = (value = json!({"errors": ["Job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b has no vertex 0123456789abcdef0123456789abcdef."]}))),
        )),
    )
)]
pub(super) async fn backpressure(
    State(control): State<Arc<JobControl>>,
    Path((id, vertex)): Path<(String, String)>,
) -> Reply<JobVertexBackPressureInfo> {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let Some(node) = snapshot
        .graph
        .nodes
        .iter()
        .find(|n| flink_id(&n.uid) == vertex)
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("Job {id} has no vertex {vertex}."),
        ));
    };
    let samples = snapshot
        .metrics
        .as_ref()
        .map(|m| m.sample(control.attempt_start_time()))
        .unwrap_or_default();
    let subtasks: Vec<SubtaskBackPressureInfo> = samples
        .iter()
        .filter(|s| s.task.uid == node.uid)
        .map(|s| {
            let ratio = s.back_pressured_ms_per_second / 1000.0;
            SubtaskBackPressureInfo {
                subtask: s.task.subtask,
                attempt_number: snapshot.restarts,
                backpressure_level: BackPressureLevel::of(ratio),
                ratio,
            }
        })
        .collect();
    let worst = subtasks.iter().map(|s| s.ratio).fold(0.0, f64::max);
    Ok(Json(JobVertexBackPressureInfo {
        status: Default::default(),
        backpressure_level: BackPressureLevel::of(worst),
        end_timestamp: now_ms(),
        subtasks,
    }))
}

/// Prometheus metrics (Cairn only)
///
/// The job's metrics in the OpenMetrics text format (the description is
/// [`prometheus_description`]).
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "metrics",
    operation_id = "prometheusMetrics",
    description = prometheus_description(),
    responses(
        (status = 200, description = "The metrics, in the OpenMetrics text format.", body = String,
            content_type = crate::prometheus::CONTENT_TYPE,
            example = json!("# HELP cairn_job_numRestarts How often the job restarted after a failure\n# TYPE cairn_job_numRestarts gauge\ncairn_job_numRestarts{job_id=\"3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b\",job_name=\"word-count\"} 0.0\n# HELP cairn_task_numRecordsIn Records the subtask has taken in\n# TYPE cairn_task_numRecordsIn gauge\ncairn_task_numRecordsIn{job_id=\"3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b\",job_name=\"word-count\",task_name=\"count\",subtask_index=\"0\"} 52311.0\n# EOF\n")),
        (status = 401, response = Unauthorized),
        (status = 500, description = "The metrics could not be encoded.", body = ErrorBody,
            example = json!({"errors": ["cannot encode metrics: an error occurred when formatting an argument"]})),
    )
)]
pub(super) async fn prometheus(
    State(control): State<Arc<JobControl>>,
) -> Result<Response, ApiError> {
    let text = crate::prometheus::render(&control).map_err(|e| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode metrics: {e}"),
        )
    })?;
    Ok((
        [(header::CONTENT_TYPE, crate::prometheus::CONTENT_TYPE)],
        text,
    )
        .into_response())
}

/// `GET /jobs/{jobid}/metrics`'s description, naming the metrics `/metrics` declares.
fn job_metrics_description() -> String {
    let names: Vec<String> = JOB_METRICS
        .iter()
        .map(|(name, ..)| format!("`{name}`"))
        .collect();
    format!(
        "Mirrors Flink's `GET /jobs/:jobid/metrics`. The job-scope metrics are those `/metrics` \
         exposes as `cairn_job_<name>`, here under their Flink names: {} (see `GET /metrics` \
         for their meaning).\n\n\
         Without `get`, the answer lists every metric's name (`[{{\"id\": ...}}]`). With `get`, \
         it lists the value of each named metric, in the order asked for (`[{{\"id\": ..., \
         \"value\": ...}}]`); unknown names are left out.",
        names.join(", ")
    )
}

/// `GET /metrics`' description, listing each metric `/metrics` declares with its meaning.
fn prometheus_description() -> String {
    let listed = |scope: &str, metrics: Vec<(&str, &str)>| -> String {
        metrics
            .iter()
            .map(|(name, help)| format!("- `cairn_{scope}_{name}`: {help}."))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "Not in Flink's REST API. For Prometheus to scrape: the job's metrics in the \
         OpenMetrics text format (ending `# EOF`), with Flink's metric names as Flink's \
         Prometheus reporter exposes them, prefixed `cairn_`. Every metric is a gauge with a \
         `# HELP` line (its meaning as listed below, without the final period) and a `# TYPE` \
         line; like Flink's reporter, counters are gauges too, so the names have no `_total` \
         suffix. Values are the same as `GET /jobs/{{jobid}}/metrics` reports.\n\n\
         Job scope, `cairn_job_<name>`, labelled `job_id` and `job_name`:\n{}\n\n\
         The counts cover every attempt; the four `last*` metrics are -1 before the first \
         completed checkpoint (savepoints do not count).\n\n\
         Subtask scope, `cairn_task_<name>`, labelled `job_id`, `job_name`, `task_name` (the \
         node's uid) and `subtask_index`, one sample per subtask of the running attempt (none \
         while no attempt runs):\n{}\n\n\
         Record counts are the current attempt's. The per-second metrics are over the last \
         second or more: they come from samples taken at most once a second and shared by \
         every reader (this endpoint, the backpressure endpoint, the dashboard), so a reader \
         asking within a second of the latest sample gets that sample again (the first sample \
         of an attempt covers the time since the attempt started).",
        listed("job", JOB_METRICS.iter().map(|&(n, h, _)| (n, h)).collect()),
        listed(
            "task",
            TASK_METRICS.iter().map(|&(n, h, _)| (n, h)).collect()
        ),
    )
}
