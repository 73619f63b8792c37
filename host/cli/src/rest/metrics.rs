//! Metrics: Prometheus' `/metrics`, and Flink's job metrics, vertex metrics and vertex
//! backpressure.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, Reply, error, flink_id, job};
use crate::control::{JobControl, Snapshot};
use crate::prometheus::{
    JOB_METRICS, PARTITION_METRICS, TASK_METRICS, partition_metric_name, task_metrics, task_samples,
};
use cairn_api::params::{JobId, VertexId};
use cairn_api::responses::{JobNotFound, Unauthorized, VertexNotFound};
use cairn_api::{
    BackPressureLevel, ErrorBody, JobVertexBackPressureInfo, Metric, SubtaskBackPressureInfo,
};
use cairn_core::clock::now_ms;
use cairn_core::graph::GraphNode;

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
    Ok(Json(collection(
        metrics.iter().map(|m| (m.name, m.value)),
        query.get.as_deref(),
    )))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct VertexMetricsQuery {
    /// Comma-separated metric ids (whitespace around each id is ignored).
    #[param(example = "0.numRecordsIn,0.numRecordsOut")]
    get: Option<String>,
}

/// Metrics of a vertex's subtasks
///
/// Flink's `GET /jobs/:jobid/vertices/:vertexid/metrics` (the description is
/// [`vertex_metrics_description`]).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/vertices/{vertexid}/metrics",
    tag = "metrics",
    operation_id = "vertexMetrics",
    description = vertex_metrics_description(),
    params(JobId, VertexId, VertexMetricsQuery),
    responses(
        (status = 200, description = "The metric ids, or the requested metrics with their values.", body = Vec<Metric>, examples(
            ("ids" = (value = json!([
                {"id": "0.numRecordsIn"},
                {"id": "0.numRecordsOut"},
                {"id": "0.KafkaSourceReader.topic.lines.partition.0.currentOffset"},
            ]))),
            ("values" = (value = json!([
                {"id": "0.numRecordsIn", "value": "52311"},
                {"id": "0.KafkaSourceReader.topic.lines.partition.0.records-lag", "value": "1200"},
            ]))),
        )),
        (status = 401, response = Unauthorized),
        (status = 404, response = VertexNotFound),
    )
)]
pub(super) async fn vertex_metrics(
    State(control): State<Arc<JobControl>>,
    Path((id, vertex_id)): Path<(String, String)>,
    Query(query): Query<VertexMetricsQuery>,
) -> Reply<Vec<Metric>> {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let node = vertex(&snapshot, &id, &vertex_id)?;
    let samples = task_samples(control, &snapshot);
    let metrics: Vec<_> = samples
        .iter()
        .filter(|s| s.task.uid == node.uid)
        .flat_map(task_metrics)
        .collect();
    Ok(Json(collection(
        metrics.iter().map(|m| (m.id.as_str(), m.value)),
        query.get.as_deref(),
    )))
}

/// Watermarks of a vertex's subtasks
///
/// Flink's `GET /jobs/:jobid/vertices/:vertexid/watermarks`: each subtask's
/// `currentInputWatermark` under the id `<subtask>.currentInputWatermark`, in milliseconds
/// since the epoch (`-9223372036854775808`: no watermark yet). Empty while no attempt runs.
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/vertices/{vertexid}/watermarks",
    tag = "metrics",
    operation_id = "vertexWatermarks",
    params(JobId, VertexId),
    responses(
        (status = 200, description = "Each subtask's input watermark.", body = Vec<Metric>, examples(
            ("watermarks" = (value = json!([
                {"id": "0.currentInputWatermark", "value": "1765112400000"},
                {"id": "1.currentInputWatermark", "value": "1765112399800"},
            ]))),
        )),
        (status = 401, response = Unauthorized),
        (status = 404, response = VertexNotFound),
    )
)]
pub(super) async fn vertex_watermarks(
    State(control): State<Arc<JobControl>>,
    Path((id, vertex_id)): Path<(String, String)>,
) -> Reply<Vec<Metric>> {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let node = vertex(&snapshot, &id, &vertex_id)?;
    Ok(Json(
        task_samples(control, &snapshot)
            .iter()
            .filter(|s| s.task.uid == node.uid)
            .map(|s| Metric {
                id: format!("{}.currentInputWatermark", s.task.subtask),
                value: Some(s.input_watermark.to_string()),
            })
            .collect(),
    ))
}

/// Flink's `MetricCollectionResponseBody` of `metrics` (id, value): without `get`, every
/// id; with `get` (comma-separated ids), the value of each id asked for that is known, in
/// the order asked for.
fn collection<'a>(
    metrics: impl Iterator<Item = (&'a str, f64)> + Clone,
    get: Option<&str>,
) -> Vec<Metric> {
    match get {
        None => metrics
            .map(|(id, _)| Metric {
                id: id.to_owned(),
                value: None,
            })
            .collect(),
        Some(ids) => ids
            .split(',')
            .filter_map(|asked| metrics.clone().find(|&(id, _)| id == asked.trim()))
            .map(|(id, value)| Metric {
                id: id.to_owned(),
                value: Some(value.to_string()),
            })
            .collect(),
    }
}

/// The graph node whose Flink vertex id is `vertex`, or `404`.
fn vertex<'a>(snapshot: &'a Snapshot, job: &str, vertex: &str) -> Result<&'a GraphNode, ApiError> {
    snapshot
        .graph
        .nodes
        .iter()
        .find(|n| flink_id(&n.uid) == vertex)
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("Job {job} has no vertex {vertex}."),
            )
        })
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
        (status = 404, response = VertexNotFound),
    )
)]
pub(super) async fn backpressure(
    State(control): State<Arc<JobControl>>,
    Path((id, vertex_id)): Path<(String, String)>,
) -> Reply<JobVertexBackPressureInfo> {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let node = vertex(&snapshot, &id, &vertex_id)?;
    let samples = task_samples(control, &snapshot);
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
    format!(
        "Mirrors Flink's `GET /jobs/:jobid/metrics`. The job-scope metrics are those `/metrics` \
         exposes as `cairn_job_<name>`, here under their Flink names: {} (see `GET /metrics` \
         for their meaning).\n\n\
         Without `get`, the answer lists every metric's name (`[{{\"id\": ...}}]`). With `get`, \
         it lists the value of each named metric, in the order asked for (`[{{\"id\": ..., \
         \"value\": ...}}]`); unknown names are left out.",
        names(&JOB_METRICS.map(|(name, ..)| name))
    )
}

/// Metric names as a description lists them: quoted as code, separated by commas.
fn names(names: &[&str]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `GET /jobs/{jobid}/vertices/{vertexid}/metrics`' description, naming the metrics it
/// declares.
fn vertex_metrics_description() -> String {
    format!(
        "Mirrors Flink's `GET /jobs/:jobid/vertices/:vertexid/metrics`: the metrics of the \
         vertex's subtasks in the running attempt (none while no attempt runs), under the ids \
         Flink gives them, prefixed with the subtask's index:\n\n\
         - `<subtask>.<name>` for each subtask: {} (exposed by `/metrics` as \
         `cairn_task_<name>`; see `GET /metrics` for their meaning).\n\
         - `<subtask>.KafkaSourceReader.topic.<topic>.partition.<partition>.<name>` for each \
         Kafka partition a source subtask reads, as Flink's Kafka source reader names them: \
         {} (exposed by `/metrics` as `cairn_task_KafkaSourceReader_<name>` with `_` for \
         `-`, labelled `topic` and `partition`), each only once its value is known (e.g. \
         `committedOffset` after the first checkpoint that committed offsets).\n\
         - `<subtask>.<uid>.<name>` for each counter of the operator's own (`metrics.counter-add` \
         in `cairn:job`, e.g. the windows' `numLateRecordsDropped`), once counted (exposed by \
         `/metrics` as `cairn_task_operator_<name>`).\n\n\
         Without `get`, the answer lists every metric's id (`[{{\"id\": ...}}]`). With `get`, \
         it lists the value of each named metric, in the order asked for (`[{{\"id\": ..., \
         \"value\": ...}}]`); unknown ids are left out.",
        names(&TASK_METRICS.map(|(name, ..)| name)),
        names(&PARTITION_METRICS.map(|(name, ..)| name)),
    )
}

/// `GET /metrics`' description, listing each metric `/metrics` declares with its meaning.
fn prometheus_description() -> String {
    let listed = |metrics: Vec<(String, &str)>| -> String {
        metrics
            .iter()
            .map(|(name, help)| format!("- `{name}`: {help}."))
            .collect::<Vec<_>>()
            .join("\n")
    };
    format!(
        "Not in Flink's REST API. For Prometheus to scrape: the job's metrics in the \
         OpenMetrics text format (ending `# EOF`), with Flink's metric names as Flink's \
         Prometheus reporter exposes them, prefixed `cairn_`. Every metric is a gauge with a \
         `# HELP` line (its meaning as listed below, without the final period) and a `# TYPE` \
         line; like Flink's reporter, counters are gauges too, so the names have no `_total` \
         suffix. Values are the same as `GET /jobs/{{jobid}}/metrics` and \
         `GET /jobs/{{jobid}}/vertices/{{vertexid}}/metrics` report.\n\n\
         Job scope, `cairn_job_<name>`, labelled `job_id` and `job_name`:\n{}\n\n\
         The counts cover every attempt; the four `last*` metrics are -1 before the first \
         completed checkpoint (savepoints do not count).\n\n\
         Subtask scope, `cairn_task_<name>`, labelled `job_id`, `job_name`, `task_name` (the \
         node's uid) and `subtask_index`, one sample per subtask of the running attempt (none \
         while no attempt runs):\n{}\n\n\
         Record counts are the current attempt's. The per-second metrics are over the last \
         second or more: they come from samples taken at most once a second and shared by \
         every reader (this endpoint, the vertex metrics and backpressure endpoints, the \
         dashboard), so a reader asking within a second of the latest sample gets that sample \
         again (the first sample of an attempt covers the time since the attempt started).\n\n\
         Kafka partitions (Flink's Kafka source reader's metrics), labelled as the subtask \
         scope and also `topic` and `partition`, one sample per partition a source subtask \
         reads, each once its value is known:\n{}\n\n\
         An operator's own counters (`metrics.counter-add` in `cairn:job`, e.g. the windows' \
         `numLateRecordsDropped`), as `cairn_task_operator_<name>`, labelled as the \
         subtask scope, once counted.",
        listed(
            JOB_METRICS
                .iter()
                .map(|&(n, h, _)| (format!("cairn_job_{n}"), h))
                .collect()
        ),
        listed(
            TASK_METRICS
                .iter()
                .map(|&(n, h, _)| (format!("cairn_task_{n}"), h))
                .collect()
        ),
        listed(
            PARTITION_METRICS
                .iter()
                .map(|&(n, h, _)| (format!("cairn_task_{}", partition_metric_name(n)), h))
                .collect()
        ),
    )
}
