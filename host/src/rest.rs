//! The REST API every running job serves (loopback by default). Where Flink's REST API has
//! the same endpoint, the path, method, request and response shapes are Flink's, so tools
//! written for Flink work unchanged; `docs/rest-api.yaml` documents them all.
//!
//! Savepoints, stops, swaps and disposals are asynchronous as in Flink: a `POST` answers
//! `202 {"request-id": …}` at once, and `GET …/<request-id>` reports `IN_PROGRESS` until the
//! operation is `COMPLETED` with its `operation` (a location, or a `failure-cause`).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::CheckpointingMode;
use crate::control::{
    ControlError, JobControl, JobStatus, Operation, OperationKind, Snapshot, now_ms,
};
use crate::graph::{Graph, Role};
use crate::runtime::{AfterSavepoint, CompletedCheckpoint, SubtaskCheckpoint, Summary};

/// The largest component `POST /jobs/:jobid/swap` accepts.
const MAX_COMPONENT_BYTES: usize = 256 << 20;

/// Serves the API on `listener` until the process ends.
pub async fn serve(control: Arc<JobControl>, listener: tokio::net::TcpListener) {
    let token = control.config.rest.auth_token.clone();
    let app = router(control).layer(middleware::from_fn_with_state(token, authorize));
    if let Err(e) = axum::serve(listener, app).await {
        tracing::warn!("the REST server stopped: {e}");
    }
}

fn router(control: Arc<JobControl>) -> Router {
    Router::new()
        .route("/jobs", get(jobs))
        .route("/jobs/overview", get(overview))
        .route("/jobs/{job}", get(details).patch(terminate))
        .route("/jobs/{job}/checkpoints", get(checkpoints))
        .route("/jobs/{job}/checkpoints/config", get(checkpoint_config))
        .route(
            "/jobs/{job}/checkpoints/details/{checkpoint}",
            get(checkpoint_details),
        )
        .route(
            "/jobs/{job}/checkpoints/details/{checkpoint}/subtasks/{vertex}",
            get(checkpoint_subtasks),
        )
        .route("/jobs/{job}/savepoints", post(trigger_savepoint))
        .route("/jobs/{job}/savepoints/{trigger}", get(savepoint_status))
        .route("/jobs/{job}/stop", post(stop))
        .route("/jobs/{job}/exceptions", get(exceptions))
        // Components of interpreted languages run to tens of megabytes.
        .route(
            "/jobs/{job}/swap",
            post(swap).layer(DefaultBodyLimit::max(MAX_COMPONENT_BYTES)),
        )
        .route("/jobs/{job}/swap/{trigger}", get(swap_status))
        .route("/metrics", get(metrics))
        .route(
            "/",
            get(|| asset("text/html; charset=utf-8", DASHBOARD_HTML)),
        )
        .route("/app.js", get(|| asset("text/javascript", DASHBOARD_JS)))
        .route("/app.css", get(|| asset("text/css", DASHBOARD_CSS)))
        .route("/uplot.css", get(|| asset("text/css", UPLOT_CSS)))
        .route("/jobs/{job}/config", get(job_config))
        .route("/jobs/{job}/metrics", get(job_metrics))
        .route(
            "/jobs/{job}/vertices/{vertex}/backpressure",
            get(backpressure),
        )
        .route("/savepoint-disposal", post(dispose))
        .route("/savepoint-disposal/{trigger}", get(disposal_status))
        .fallback(|| async { error(StatusCode::NOT_FOUND, "Not found.".into()) })
        .with_state(control)
}

/// With `rest.auth-token` set, every request must carry `Authorization: Bearer <token>`.
async fn authorize(State(token): State<Option<String>>, request: Request, next: Next) -> Response {
    if let Some(token) = token {
        let presented = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if presented != Some(token.as_str()) {
            return error(
                StatusCode::UNAUTHORIZED,
                "Unauthorized: this job requires `Authorization: Bearer <rest.auth-token>`".into(),
            )
            .into_response();
        }
    }
    next.run(request).await
}

/// A refused request, answered with Flink's error body.
struct ApiError {
    status: StatusCode,
    message: String,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, axum::Json(json!({ "errors": [self.message] }))).into_response()
    }
}

fn error(status: StatusCode, message: String) -> ApiError {
    ApiError { status, message }
}

type Reply = Result<Response, ApiError>;

fn ok(value: Value) -> Reply {
    Ok(axum::Json(value).into_response())
}

fn accepted(value: Value) -> Reply {
    Ok((StatusCode::ACCEPTED, axum::Json(value)).into_response())
}

/// The job, if `job` is its id (a Cairn process serves exactly one job).
fn job<'a>(control: &'a Arc<JobControl>, job: &str) -> Result<&'a Arc<JobControl>, ApiError> {
    if job == control.id {
        Ok(control)
    } else {
        Err(error(
            StatusCode::NOT_FOUND,
            format!("Job {job} not found: this server runs job {}", control.id),
        ))
    }
}

fn refused(e: ControlError) -> ApiError {
    let status = match e {
        ControlError::NotRunning { .. } => StatusCode::CONFLICT,
        ControlError::NoSavepointDir | ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

// The dashboard (`dashboard/`, built by `cargo xtask build` into `dashboard/dist`), served
// from the binary so it works offline.
const DASHBOARD_HTML: &str = include_str!("../../dashboard/dist/index.html");
const DASHBOARD_JS: &str = include_str!("../../dashboard/dist/app.js");
const DASHBOARD_CSS: &str = include_str!("../../dashboard/dist/app.css");
const UPLOT_CSS: &str = include_str!("../../dashboard/dist/uplot.css");

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

/// Flink's `GET /jobs/:jobid/config`, with every effective Cairn setting as the user config
/// (secrets redacted, as Flink redacts sensitive keys).
async fn job_config(State(control): State<Arc<JobControl>>, Path(id): Path<String>) -> Reply {
    let control = job(&control, &id)?;
    let sensitive = |key: &str| {
        ["secret", "token", "password", "access-key"]
            .iter()
            .any(|s| key.contains(s))
    };
    let user_config: serde_json::Map<String, Value> = control
        .settings
        .iter()
        .map(|(key, value)| {
            let shown = if sensitive(key) && !value.is_empty() {
                "******".to_owned()
            } else {
                value.clone()
            };
            (key.clone(), json!(shown))
        })
        .collect();
    ok(json!({
        "jid": control.id,
        "name": control.name,
        "execution-config": {
            "execution-mode": "PIPELINED",
            "restart-strategy": format!("{:?}", control.config.restart),
            "job-parallelism": control.config.default_parallelism,
            "object-reuse-mode": false,
            "user-config": user_config,
        },
    }))
}

#[derive(Deserialize)]
struct MetricsQuery {
    get: Option<String>,
}

/// Flink's `GET /jobs/:jobid/metrics[?get=a,b]`: the names, or the values asked for.
async fn job_metrics(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<MetricsQuery>,
) -> Reply {
    let control = job(&control, &id)?;
    let metrics = crate::prometheus::job_metrics(control, &control.snapshot());
    let answer: Vec<Value> = match query.get {
        None => metrics.iter().map(|m| json!({ "id": m.name })).collect(),
        Some(names) => names
            .split(',')
            .filter_map(|name| metrics.iter().find(|m| m.name == name.trim()))
            .map(|m| json!({ "id": m.name, "value": m.value.to_string() }))
            .collect(),
    };
    ok(json!(answer))
}

/// Flink's `GET /jobs/:jobid/vertices/:vertexid/backpressure`, from the share of time each
/// subtask waited for room downstream over the last second (Flink's levels: ok up to 10%,
/// low up to 50%, high above).
async fn backpressure(
    State(control): State<Arc<JobControl>>,
    Path((id, vertex)): Path<(String, String)>,
) -> Reply {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let Some(node) = snapshot
        .graph
        .nodes
        .iter()
        .find(|n| vertex_id(&n.uid) == vertex)
    else {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("Job {id} has no vertex {vertex}."),
        ));
    };
    let level = |ratio: f64| match ratio {
        r if r <= 0.10 => "ok",
        r if r <= 0.5 => "low",
        _ => "high",
    };
    let samples = snapshot
        .metrics
        .as_ref()
        .map(|m| m.sample(control.attempt_start_time()))
        .unwrap_or_default();
    let subtasks: Vec<(u32, f64)> = samples
        .iter()
        .filter(|s| s.task.uid == node.uid)
        .map(|s| (s.task.subtask, s.back_pressured_ms_per_second / 1000.0))
        .collect();
    let worst = subtasks.iter().map(|(_, r)| *r).fold(0.0, f64::max);
    ok(json!({
        "status": "ok",
        "backpressureLevel": level(worst),
        "end-timestamp": now_ms(),
        "subtasks": subtasks.iter().map(|(subtask, ratio)| json!({
            "subtask": subtask,
            "attempt-number": snapshot.restarts,
            "backpressureLevel": level(*ratio),
            "ratio": ratio,
        })).collect::<Vec<_>>(),
    }))
}

/// Prometheus scrapes this.
async fn metrics(State(control): State<Arc<JobControl>>) -> Reply {
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

async fn jobs(State(control): State<Arc<JobControl>>) -> Reply {
    let status = control.snapshot().status;
    ok(json!({ "jobs": [{ "id": control.id, "status": status.as_str() }] }))
}

async fn overview(State(control): State<Arc<JobControl>>) -> Reply {
    let snapshot = control.snapshot();
    let (start, end, duration) = times(&control, &snapshot);
    let tasks: u32 = snapshot.graph.nodes.iter().map(|n| n.parallelism).sum();
    let mut counts = state_counts(snapshot.status, tasks, str::to_lowercase);
    counts.insert("total".into(), json!(tasks));
    ok(json!({ "jobs": [{
        "jid": control.id,
        "name": control.name,
        "state": snapshot.status.as_str(),
        "start-time": start,
        "end-time": end,
        "duration": duration,
        "last-modification": snapshot.timestamps.values().max().copied().unwrap_or(start),
        "tasks": counts,
    }]}))
}

async fn details(State(control): State<Arc<JobControl>>, Path(id): Path<String>) -> Reply {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let (start, end, duration) = times(control, &snapshot);
    let counts = snapshot
        .metrics
        .as_ref()
        .map(|m| m.task_counts())
        .unwrap_or_default();
    let vertex_status = execution_state(snapshot.status);
    let vertices: Vec<Value> = snapshot
        .graph
        .nodes
        .iter()
        .map(|node| {
            let (read, written) = counts
                .iter()
                .filter(|(task, _, _)| task.uid == node.uid)
                .fold((0, 0), |(r, w), (_, i, o)| (r + i, w + o));
            json!({
                "id": vertex_id(&node.uid),
                "name": node.uid,
                "maxParallelism": snapshot.graph.max_parallelism,
                "parallelism": node.parallelism,
                "status": vertex_status,
                "start-time": start,
                "end-time": end,
                "duration": duration,
                "tasks": state_counts(snapshot.status, node.parallelism, str::to_owned),
                "metrics": {
                    "read-records": read,
                    "read-records-complete": true,
                    "write-records": written,
                    "write-records-complete": true,
                },
            })
        })
        .collect();
    let timestamps: serde_json::Map<String, Value> = snapshot
        .timestamps
        .iter()
        .map(|(status, at)| (status.as_str().to_owned(), json!(at)))
        .collect();
    ok(json!({
        "jid": control.id,
        "name": control.name,
        "isStoppable": false,
        "state": snapshot.status.as_str(),
        "job-type": "STREAMING",
        "start-time": start,
        "end-time": end,
        "duration": duration,
        "maxParallelism": snapshot.graph.max_parallelism,
        "now": now_ms(),
        "timestamps": timestamps,
        "vertices": vertices,
        "status-counts": state_counts(
            snapshot.status,
            snapshot.graph.nodes.len() as u32,
            str::to_owned,
        ),
        "plan": plan(control, &snapshot.graph),
    }))
}

#[derive(Deserialize)]
struct TerminateQuery {
    mode: Option<String>,
}

/// `PATCH /jobs/:jobid?mode=cancel`.
async fn terminate(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<TerminateQuery>,
) -> Reply {
    let control = job(&control, &id)?;
    match query.mode.as_deref() {
        None | Some("cancel") => {
            control.cancel();
            accepted(json!({}))
        }
        Some(other) => Err(error(
            StatusCode::BAD_REQUEST,
            format!("unsupported termination mode '{other}' (supported: cancel)"),
        )),
    }
}

async fn checkpoints(State(control): State<Arc<JobControl>>, Path(id): Path<String>) -> Reply {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let stats = snapshot.checkpoints;
    let entry = |c: &CompletedCheckpoint| Value::Object(completed_json(c));
    let restored = snapshot.restored.map(|r| {
        json!({
            "id": r.id,
            "restore_timestamp": r.timestamp_ms,
            "is_savepoint": r.is_savepoint,
            "external_path": r.location,
        })
    });
    let summary = |s: Summary| json!({ "min": s.min, "max": s.max, "avg": s.avg() });
    let failed = stats.latest_failed.as_ref().map(|f| {
        json!({
            "className": "failed",
            "id": f.id,
            "status": "FAILED",
            "is_savepoint": f.is_savepoint,
            "trigger_timestamp": f.timestamp_ms,
            "failure_timestamp": f.failed_ms,
            "failure_message": f.reason,
        })
    });
    ok(json!({
        "counts": {
            "restored": snapshot.restores,
            "total": stats.completed + stats.failed + stats.in_progress,
            "in_progress": stats.in_progress,
            "completed": stats.completed,
            "failed": stats.failed,
        },
        "summary": {
            "checkpointed_size": summary(stats.stored_bytes),
            "state_size": summary(stats.raw_bytes),
            "end_to_end_duration": summary(stats.duration_ms),
        },
        "latest": {
            "completed": stats.latest_checkpoint.as_ref().map(entry),
            "savepoint": stats.latest_savepoint.as_ref().map(entry),
            "failed": failed,
            "restored": restored,
        },
        "history": stats.history.iter().rev().map(entry).collect::<Vec<_>>(),
    }))
}

/// A completed checkpoint the statistics still hold (the history, and the latest ones).
fn find_checkpoint(control: &JobControl, id: &str) -> Result<CompletedCheckpoint, ApiError> {
    let stats = control.snapshot().checkpoints;
    let wanted: Option<u64> = id.parse().ok();
    stats
        .history
        .iter()
        .chain(&stats.latest_checkpoint)
        .chain(&stats.latest_savepoint)
        .find(|c| Some(c.id) == wanted)
        .cloned()
        .ok_or_else(|| {
            error(
                StatusCode::NOT_FOUND,
                format!("Could not find checkpointing statistics for checkpoint {id}."),
            )
        })
}

/// Flink's `GET /jobs/:jobid/checkpoints/details/:checkpointid`: the checkpoint, and per
/// vertex its subtasks' totals.
async fn checkpoint_details(
    State(control): State<Arc<JobControl>>,
    Path((id, checkpoint)): Path<(String, String)>,
) -> Reply {
    let control = job(&control, &id)?;
    let c = find_checkpoint(control, &checkpoint)?;
    let mut tasks = serde_json::Map::new();
    for node in &control.snapshot().graph.nodes {
        let parts: Vec<&SubtaskCheckpoint> = c
            .subtasks
            .iter()
            .filter(|s| s.task.uid == node.uid)
            .collect();
        let latest_ack = parts
            .iter()
            .map(|s| s.acked_ms)
            .max()
            .unwrap_or(c.timestamp_ms);
        tasks.insert(
            vertex_id(&node.uid),
            json!({
                "id": vertex_id(&node.uid),
                "status": "COMPLETED",
                "latest_ack_timestamp": latest_ack,
                "checkpointed_size": parts.iter().map(|s| s.stored_bytes).sum::<u64>(),
                "state_size": parts.iter().map(|s| s.raw_bytes).sum::<u64>(),
                "end_to_end_duration": latest_ack.saturating_sub(c.timestamp_ms),
                "num_subtasks": parts.len(),
                "num_acknowledged_subtasks": parts.len(),
            }),
        );
    }
    let mut details = completed_json(&c);
    details.insert("tasks".into(), Value::Object(tasks));
    ok(Value::Object(details))
}

/// Flink's statistics of one completed checkpoint or savepoint.
fn completed_json(c: &CompletedCheckpoint) -> serde_json::Map<String, Value> {
    let duration = c.duration.as_millis() as u64;
    let Value::Object(map) = json!({
        "className": "completed",
        "id": c.id,
        "status": "COMPLETED",
        "is_savepoint": c.is_savepoint,
        "checkpoint_type": if c.is_savepoint { "SAVEPOINT" } else { "CHECKPOINT" },
        "num_subtasks": c.subtasks.len(),
        "num_acknowledged_subtasks": c.subtasks.len(),
        "savepointFormat": c.is_savepoint.then_some("CANONICAL"),
        "trigger_timestamp": c.timestamp_ms,
        "latest_ack_timestamp": c.timestamp_ms + duration,
        "checkpointed_size": c.stored_bytes,
        "state_size": c.raw_bytes,
        "end_to_end_duration": duration,
        "external_path": c.location,
        "discarded": false,
    }) else {
        unreachable!("a JSON object literal is an object")
    };
    map
}

/// Flink's `GET /jobs/:jobid/checkpoints/details/:checkpointid/subtasks/:vertexid`: each
/// subtask's sync, async and alignment durations and sizes.
async fn checkpoint_subtasks(
    State(control): State<Arc<JobControl>>,
    Path((id, checkpoint, vertex)): Path<(String, String, String)>,
) -> Reply {
    let control = job(&control, &id)?;
    let c = find_checkpoint(control, &checkpoint)?;
    let parts: Vec<&SubtaskCheckpoint> = c
        .subtasks
        .iter()
        .filter(|s| vertex_id(&s.task.uid) == vertex)
        .collect();
    if parts.is_empty() {
        return Err(error(
            StatusCode::NOT_FOUND,
            format!("Checkpoint {checkpoint} has no vertex {vertex}."),
        ));
    }
    let millis = |ms: f64| ms.round() as u64;
    let latest_ack = parts
        .iter()
        .map(|s| s.acked_ms)
        .max()
        .unwrap_or(c.timestamp_ms);
    let subtasks: Vec<Value> = parts
        .iter()
        .map(|s| {
            json!({
                "index": s.task.subtask,
                "status": "completed",
                "ack_timestamp": s.acked_ms,
                "end_to_end_duration": s.acked_ms.saturating_sub(c.timestamp_ms),
                "state_size": s.raw_bytes,
                "checkpointed_size": s.stored_bytes,
                "checkpoint": {
                    "sync": millis(s.stats.sync_ms),
                    "async": millis(s.stats.async_ms),
                },
                "alignment": { "duration": millis(s.stats.alignment_ms) },
                "unaligned_checkpoint": false,
                "aborted": false,
            })
        })
        .collect();
    ok(json!({
        "id": vertex,
        "status": "COMPLETED",
        "latest_ack_timestamp": latest_ack,
        "checkpointed_size": parts.iter().map(|s| s.stored_bytes).sum::<u64>(),
        "state_size": parts.iter().map(|s| s.raw_bytes).sum::<u64>(),
        "end_to_end_duration": latest_ack.saturating_sub(c.timestamp_ms),
        "num_subtasks": parts.len(),
        "num_acknowledged_subtasks": parts.len(),
        "subtasks": subtasks,
    }))
}

async fn checkpoint_config(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
) -> Reply {
    let control = job(&control, &id)?;
    let config = &control.config.checkpoints;
    let Some(interval) = config.interval else {
        return Err(error(
            StatusCode::NOT_FOUND,
            "Checkpointing is not enabled for this job.".into(),
        ));
    };
    let retention = config.retention;
    ok(json!({
        "mode": match config.mode {
            CheckpointingMode::ExactlyOnce => "exactly_once",
            CheckpointingMode::AtLeastOnce => "at_least_once",
        },
        "interval": interval.as_millis() as u64,
        "timeout": config.timeout.as_millis() as u64,
        "min_pause": config.min_pause.as_millis() as u64,
        "max_concurrent": config.max_concurrent,
        "externalization": {
            "enabled": retention != crate::config::Retention::NoExternalized,
            "delete_on_cancellation": retention != crate::config::Retention::RetainOnCancellation,
        },
        "state_backend": "WasmOperatorState",
        "checkpoint_storage": "ObjectStoreCheckpointStorage",
        "unaligned_checkpoints": false,
        "tolerable_failed_checkpoints": config.tolerable_failures,
        "aligned_checkpoint_timeout": 0,
        "checkpoints_after_tasks_finish": true,
        "state_changelog_enabled": false,
        "num_retained": config.num_retained,
    }))
}

#[derive(Deserialize)]
struct SavepointBody {
    #[serde(rename = "target-directory")]
    target_directory: Option<String>,
    #[serde(rename = "cancel-job", default)]
    cancel_job: bool,
}

async fn trigger_savepoint(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let control = job(&control, &id)?;
    let body: SavepointBody = parse(&body)?;
    let then = if body.cancel_job {
        AfterSavepoint::Cancel
    } else {
        AfterSavepoint::Continue
    };
    let trigger = control
        .trigger_savepoint(body.target_directory.as_deref(), then)
        .map_err(refused)?;
    accepted(json!({ "request-id": trigger }))
}

#[derive(Deserialize)]
struct StopBody {
    #[serde(rename = "targetDirectory")]
    target_directory: Option<String>,
    #[serde(default)]
    drain: bool,
}

async fn stop(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Reply {
    let control = job(&control, &id)?;
    let body: StopBody = parse(&body)?;
    let trigger = control
        .trigger_savepoint(
            body.target_directory.as_deref(),
            AfterSavepoint::Stop { drain: body.drain },
        )
        .map_err(refused)?;
    accepted(json!({ "request-id": trigger }))
}

#[derive(Deserialize)]
struct SwapQuery {
    name: Option<String>,
}

/// `POST /jobs/:jobid/swap?name=NEW.wasm` with the component's bytes as the body.
async fn swap(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<SwapQuery>,
    body: Bytes,
) -> Reply {
    let control = job(&control, &id)?;
    let label = query.name.unwrap_or_else(|| "the new component".into());
    let trigger = control.trigger_swap(label, body.to_vec());
    accepted(json!({ "request-id": trigger }))
}

async fn savepoint_status(
    State(control): State<Arc<JobControl>>,
    Path((id, trigger)): Path<(String, String)>,
) -> Reply {
    status_of(job(&control, &id)?, &trigger, OperationKind::Savepoint)
}

async fn swap_status(
    State(control): State<Arc<JobControl>>,
    Path((id, trigger)): Path<(String, String)>,
) -> Reply {
    status_of(job(&control, &id)?, &trigger, OperationKind::Swap)
}

#[derive(Deserialize)]
struct DisposalBody {
    #[serde(rename = "savepoint-path")]
    savepoint_path: String,
}

async fn dispose(State(control): State<Arc<JobControl>>, body: Bytes) -> Reply {
    let body: DisposalBody = parse(&body)?;
    accepted(json!({ "request-id": control.trigger_disposal(body.savepoint_path) }))
}

async fn disposal_status(
    State(control): State<Arc<JobControl>>,
    Path(trigger): Path<String>,
) -> Reply {
    status_of(&control, &trigger, OperationKind::Disposal)
}

fn status_of(control: &JobControl, trigger: &str, kind: OperationKind) -> Reply {
    match control.operation(trigger, kind) {
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("There is no operation with trigger id {trigger}."),
        )),
        Some(Operation::InProgress) => ok(json!({ "status": { "id": "IN_PROGRESS" } })),
        Some(Operation::Completed(Ok(location))) => {
            let operation = match location {
                Some(location) => json!({ "location": location }),
                None => json!({}),
            };
            ok(json!({ "status": { "id": "COMPLETED" }, "operation": operation }))
        }
        Some(Operation::Completed(Err(cause))) => ok(json!({
            "status": { "id": "COMPLETED" },
            "operation": { "failure-cause": {
                "class": "cairn.OperationFailed",
                "stack-trace": cause,
                "serialized-throwable": null,
            }},
        })),
    }
}

async fn exceptions(State(control): State<Arc<JobControl>>, Path(id): Path<String>) -> Reply {
    let control = job(&control, &id)?;
    let snapshot = control.snapshot();
    let latest = snapshot.exceptions.last();
    let entries: Vec<Value> = snapshot
        .exceptions
        .iter()
        .rev()
        .map(|e| {
            json!({
                "exceptionName": "TaskFailure",
                "stacktrace": e.message,
                "timestamp": e.timestamp_ms,
                "taskName": e.task,
                "location": null,
                "taskManagerId": null,
                "failureLabels": {},
                "concurrentExceptions": [],
            })
        })
        .collect();
    ok(json!({
        "root-exception": latest.map(|e| format!("{} failed: {}", e.task, e.message)),
        "timestamp": latest.map(|e| e.timestamp_ms),
        "all-exceptions": [],
        "truncated": false,
        "exceptionHistory": { "entries": entries, "truncated": false },
    }))
}

fn parse<T: serde::de::DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let body: &[u8] = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        body
    };
    serde_json::from_slice(body)
        .map_err(|e| error(StatusCode::BAD_REQUEST, format!("Bad request body: {e}")))
}

/// Start, end (-1 while running) and duration in milliseconds, as Flink reports them.
fn times(control: &JobControl, snapshot: &Snapshot) -> (u64, i64, u64) {
    let end = snapshot
        .status
        .is_terminal()
        .then(|| snapshot.timestamps.get(&snapshot.status).copied())
        .flatten();
    let duration = end.unwrap_or_else(now_ms).saturating_sub(control.start_ms);
    (control.start_ms, end.map_or(-1, |e| e as i64), duration)
}

/// Flink's execution states, which task counts are keyed by.
const EXECUTION_STATES: [&str; 10] = [
    "CREATED",
    "SCHEDULED",
    "DEPLOYING",
    "RUNNING",
    "FINISHED",
    "CANCELING",
    "CANCELED",
    "FAILED",
    "RECONCILING",
    "INITIALIZING",
];

/// The execution state of every task of a job in `status` (Cairn runs all alike).
fn execution_state(status: JobStatus) -> &'static str {
    match status {
        JobStatus::Initializing | JobStatus::Restarting => "CREATED",
        JobStatus::Running => "RUNNING",
        JobStatus::Cancelling => "CANCELING",
        JobStatus::Finished => "FINISHED",
        JobStatus::Canceled => "CANCELED",
        JobStatus::Failed => "FAILED",
    }
}

/// `count` in the job's execution state, zero in every other; keys as `key` spells them.
fn state_counts(
    status: JobStatus,
    count: u32,
    key: fn(&str) -> String,
) -> serde_json::Map<String, Value> {
    let current = execution_state(status);
    EXECUTION_STATES
        .iter()
        .map(|state| (key(state), json!(if *state == current { count } else { 0 })))
        .collect()
}

/// A vertex id in Flink's format (32 hex), stable for a uid across runs.
fn vertex_id(uid: &str) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(uid.as_bytes()))
}

fn plan(control: &JobControl, graph: &Graph) -> Value {
    let nodes: Vec<Value> = graph
        .nodes
        .iter()
        .map(|node| {
            let description = match &node.role {
                Role::Source(spec) => format!("Source: {spec:?}"),
                Role::Operator { name, .. } => format!("Operator: {name}"),
                Role::Sink(spec) => format!("Sink: {spec:?}"),
            };
            let inputs: Vec<Value> = node
                .inputs
                .iter()
                .enumerate()
                .map(|(num, edge)| {
                    json!({
                        "num": num,
                        "id": vertex_id(&graph.nodes[edge.upstream].uid),
                        "ship_strategy": match edge.partitioning {
                            cairn_sdk::Partitioning::Forward => "FORWARD",
                            cairn_sdk::Partitioning::Rebalance => "REBALANCE",
                            cairn_sdk::Partitioning::ByKey => "HASH",
                            cairn_sdk::Partitioning::Broadcast => "BROADCAST",
                        },
                        "exchange": "pipelined_bounded",
                    })
                })
                .collect();
            json!({
                "id": vertex_id(&node.uid),
                "parallelism": node.parallelism,
                "operator": "",
                "operator_strategy": "",
                "description": description,
                "inputs": inputs,
                "optimizer_properties": {},
            })
        })
        .collect();
    json!({
        "jid": control.id,
        "name": control.name,
        "type": "STREAMING",
        "nodes": nodes,
    })
}
