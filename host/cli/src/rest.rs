//! The REST API every running job serves (loopback by default). Where Flink's REST API has
//! the same endpoint, the path, method, request and response shapes are Flink's, so tools
//! written for Flink work unchanged; `docs/rest-api.yaml` documents them all.
//!
//! Savepoints, stops, swaps and disposals are asynchronous as in Flink: a `POST` answers
//! `202 {"request-id": …}` at once, and `GET …/<request-id>` reports `IN_PROGRESS` until the
//! operation is `COMPLETED` with its `operation` (a location, or a `failure-cause`).

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::control::{ControlError, JobControl, JobStatus, Operation, OperationKind, Snapshot};
use cairn_core::clock::now_ms;
use cairn_core::config::CheckpointingMode;
use cairn_core::graph::{Graph, Role};
use cairn_core::runtime::{AfterSavepoint, CompletedCheckpoint, SubtaskCheckpoint, Summary};

/// The largest component `POST /jobs/:jobid/swap` accepts (components of interpreted
/// languages run to tens of megabytes).
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

/// Serves the API on `listener` until the process ends.
pub async fn serve(control: Arc<JobControl>, listener: tokio::net::TcpListener) {
    let guard = control
        .config
        .rest
        .auth_token
        .as_deref()
        .map(|token| Arc::new(Guard::new(token, &control.id)));
    let app = router(control).layer(middleware::from_fn_with_state(guard, authorize));
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
        .route("/jobs/{job}/swap", post(swap))
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

/// What lets a request in when `rest.auth-token` is set: the token, as `Authorization:
/// Bearer <token>` (the scheme in any case, as HTTP says), or the dashboard's session
/// cookie, which opening `/?token=<token>` sets once (a browser cannot send a header when
/// it navigates).
struct Guard {
    /// Hashes, so that comparing what a client presents takes the same time whatever it is.
    token: blake3::Hash,
    session: blake3::Hash,
    /// Per job: jobs on one host share cookies across their ports.
    cookie: String,
}

impl Guard {
    fn new(token: &str, job_id: &str) -> Self {
        Guard {
            token: blake3::hash(token.as_bytes()),
            // Derived, so the cookie never holds the token itself.
            session: blake3::derive_key("cairn dashboard session 1", token.as_bytes()).into(),
            cookie: format!("cairn-session-{job_id}"),
        }
    }

    fn is_token(&self, presented: &str) -> bool {
        blake3::hash(presented.as_bytes()) == self.token
    }

    fn admits(&self, headers: &HeaderMap) -> bool {
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split_once(' '))
            .is_some_and(|(scheme, token)| {
                scheme.eq_ignore_ascii_case("bearer") && self.is_token(token.trim())
            });
        bearer
            || headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|pair| pair.trim().split_once('='))
                .any(|(name, value)| {
                    name == self.cookie
                        && blake3::Hash::from_hex(value).is_ok_and(|v| v == self.session)
                })
    }

    /// `/?token=<token>`: the session cookie and a redirect to the dashboard without the
    /// token in its address (nor in the browser's history beyond this one entry).
    fn exchange(&self, presented: &str) -> Response {
        if !self.is_token(presented) {
            return login_page("The token in this address is not this job's rest.auth-token.");
        }
        let cookie = format!(
            "{}={}; Path=/; HttpOnly; SameSite=Strict",
            self.cookie,
            self.session.to_hex()
        );
        (
            StatusCode::SEE_OTHER,
            [
                (header::LOCATION, "/".to_owned()),
                (header::SET_COOKIE, cookie),
                (header::CACHE_CONTROL, "no-store".to_owned()),
            ],
        )
            .into_response()
    }
}

/// With `rest.auth-token` set, every request must present it (see [`Guard`]).
async fn authorize(
    State(guard): State<Option<Arc<Guard>>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(guard) = guard else {
        return next.run(request).await;
    };
    let dashboard = request.uri().path() == "/";
    if dashboard
        && let Some(token) = request.uri().query().and_then(|query| {
            url::form_urlencoded::parse(query.as_bytes())
                .find_map(|(name, value)| (name == "token").then_some(value))
        })
    {
        return guard.exchange(&token);
    }
    if guard.admits(request.headers()) {
        next.run(request).await
    } else if dashboard {
        login_page("This job's REST API requires its token (rest.auth-token).")
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized: this job requires `Authorization: Bearer <rest.auth-token>`".into(),
        )
        .into_response()
    }
}

/// The dashboard's answer to a browser without the session: how to get one.
fn login_page(problem: &str) -> Response {
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>Cairn</title></head>\
         <body><h1>401 Unauthorized</h1><p>{problem}</p><p>Open <code>/?token=&lt;token&gt;\
         </code> once: the dashboard then keeps a session cookie for this job.</p></body>\
         </html>"
    );
    (StatusCode::UNAUTHORIZED, Html(page)).into_response()
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
        ControlError::NotRunning { .. } | ControlError::SwapUnderWay { .. } => StatusCode::CONFLICT,
        ControlError::NoSavepointDir | ControlError::Invalid(_) => StatusCode::BAD_REQUEST,
    };
    error(status, e.to_string())
}

// The dashboard (`dashboard/`, built by `cargo xtask build` into `dashboard/dist`), served
// from the binary so it works offline.
const DASHBOARD_HTML: &str = include_str!("../../../dashboard/dist/index.html");
const DASHBOARD_JS: &str = include_str!("../../../dashboard/dist/app.js");
const DASHBOARD_CSS: &str = include_str!("../../../dashboard/dist/app.css");
const UPLOT_CSS: &str = include_str!("../../../dashboard/dist/uplot.css");

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
            "enabled": retention != cairn_core::config::Retention::NoExternalized,
            "delete_on_cancellation": retention != cairn_core::config::Retention::RetainOnCancellation,
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

/// `POST /jobs/:jobid/swap?name=NEW.wasm` with the component's bytes as the body. One swap
/// at a time, its upload included, so that concurrent uploads cannot exhaust memory.
async fn swap(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<SwapQuery>,
    request: Request,
) -> Reply {
    let control = job(&control, &id)?;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|length| length > MAX_COMPONENT_BYTES) {
        return Err(too_large());
    }
    let slot = control.reserve_swap().map_err(refused)?;
    let component = receive_component(request.into_body()).await?;
    let label = query.name.unwrap_or_else(|| "the new component".into());
    let trigger = control.trigger_swap(slot, label, component);
    accepted(json!({ "request-id": trigger }))
}

fn too_large() -> ApiError {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the component exceeds the {} MiB limit of a swap",
            MAX_COMPONENT_BYTES >> 20
        ),
    )
}

/// Streams a swap's body into a temporary file (removed when the returned path is
/// dropped), never holding more than a few chunks in memory.
async fn receive_component(body: Body) -> Result<tempfile::TempPath, ApiError> {
    let stored = |e: std::io::Error| {
        error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!(
                "cannot store the uploaded component in {}: {e}",
                std::env::temp_dir().display()
            ),
        )
    };
    let file = tempfile::Builder::new()
        .prefix("cairn-swap-")
        .suffix(".wasm")
        .tempfile()
        .map_err(stored)?;
    // Writing blocks: a blocking thread writes, fed through a bounded channel, so that a
    // disk slower than the network holds the upload back instead of queueing it in memory.
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Bytes>(16);
    let writer =
        tokio::task::spawn_blocking(move || -> std::io::Result<tempfile::NamedTempFile> {
            let mut file = file;
            while let Some(chunk) = received.blocking_recv() {
                file.write_all(&chunk)?;
            }
            file.flush().map(|()| file)
        });
    let mut size = 0;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| {
            error(
                StatusCode::BAD_REQUEST,
                format!("the upload broke off: {e}"),
            )
        })?;
        size += chunk.len() as u64;
        if size > MAX_COMPONENT_BYTES {
            return Err(too_large());
        }
        if chunks.send(chunk).await.is_err() {
            // The writer failed; its error is reported below.
            break;
        }
    }
    drop(chunks);
    let file = writer
        .await
        .map_err(|e| stored(std::io::Error::other(e)))?
        .map_err(stored)?;
    if size == 0 {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "the request body must be the new component's bytes; it is empty".into(),
        ));
    }
    Ok(file.into_temp_path())
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
        // Older failures beyond web.exception-history-size were dropped.
        "truncated": snapshot.exceptions_truncated,
        "exceptionHistory": { "entries": entries, "truncated": snapshot.exceptions_truncated },
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
                Role::Source(source) => format!("Source: {source}"),
                Role::Operator { name, .. } => format!("Operator: {name}"),
                Role::Sink(sink) => format!("Sink: {sink}"),
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
                            cairn_wire::Partitioning::Forward => "FORWARD",
                            cairn_wire::Partitioning::Rebalance => "REBALANCE",
                            cairn_wire::Partitioning::ByKey => "HASH",
                            cairn_wire::Partitioning::Broadcast => "BROADCAST",
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
