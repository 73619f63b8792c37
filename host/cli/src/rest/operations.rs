//! Asynchronous operations, as in Flink: savepoints, stop-with-savepoint, rescaling, swaps
//! (Cairn's own) and savepoint disposals. A `POST` answers `202` with a trigger id at once; its
//! status route reports the outcome.

use std::io::Write;
use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{StatusCode, header};
use axum::{Extension, Json};
use futures::StreamExt;
use serde::Deserialize;
use utoipa::IntoParams;

use super::{Accepted, ApiError, FlinkClient, Reply, error, job, parse, refused};
use crate::control::{JobControl, Operation, OperationKind};
use cairn_api::params::{JobId, TriggerId};
use cairn_api::responses::{
    BadRequestBody, BadSavepointRequest, JobNotFound, NotFound, NotRunning, TriggerNotFound,
    Triggered, Unauthorized,
};
use cairn_api::{
    AsynchronousOperationResult, ComponentBytes, ErrorBody, SavepointDisposalRequest,
    SavepointTriggerRequestBody, StopWithSavepointRequestBody, TriggerResponse,
};
use cairn_core::runtime::AfterSavepoint;

/// The largest component `POST /jobs/:jobid/swap` accepts (components of interpreted
/// languages run to tens of megabytes).
const MAX_COMPONENT_BYTES: u64 = 256 << 20;

type Triggering = Result<Accepted<TriggerResponse>, ApiError>;

fn triggered(request_id: String) -> Triggering {
    Ok(Accepted(TriggerResponse { request_id }))
}

/// Trigger a savepoint
///
/// Mirrors Flink's `POST /jobs/:jobid/savepoints`. Takes a savepoint into a new
/// `savepoint-<jobid prefix>-<random>` folder under `target-directory` (else the configured
/// `execution.checkpointing.savepoint-dir` / `state.savepoints.dir`). Poll
/// `GET /jobs/{jobid}/savepoints/{triggerid}` for its location.
///
/// Like Flink, this intermediate savepoint does not commit sinks' output: it is left to
/// the next checkpoint (use `/stop` for a savepoint whose output is committed). With
/// `cancel-job: true` the job is cancelled once the savepoint has completed (`cancel -s`).
/// Requires a RUNNING job.
#[utoipa::path(
    post,
    path = "/jobs/{jobid}/savepoints",
    tag = "savepoints",
    operation_id = "triggerSavepoint",
    params(JobId),
    // A reference, not the type: the derive would call the body required.
    request_body(content = ref("#/components/schemas/SavepointTriggerRequestBody"),
        description = "Optional; an empty (or whitespace-only) body means `{}`."),
    responses(
        (status = 202, response = Triggered),
        (status = 400, response = BadSavepointRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
        (status = 409, response = NotRunning),
    )
)]
pub(super) async fn trigger_savepoint(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Triggering {
    let control = job(&control, &id)?;
    let body: SavepointTriggerRequestBody = parse(&body)?;
    let then = if body.cancel_job {
        AfterSavepoint::Cancel
    } else {
        AfterSavepoint::Continue
    };
    triggered(
        control
            .trigger_savepoint(body.target_directory.as_deref(), then)
            .map_err(refused)?,
    )
}

/// Status of a savepoint or stop-with-savepoint
///
/// Mirrors Flink's `GET /jobs/:jobid/savepoints/:triggerid`; also reports the savepoints
/// triggered by `POST /jobs/{jobid}/stop`, as Flink does. When completed successfully,
/// `operation.location` is the savepoint folder's URL; fetching a completed result marks
/// it as fetched (see the 10 s linger after the job ends).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/savepoints/{triggerid}",
    tag = "savepoints",
    operation_id = "savepointStatus",
    params(JobId, TriggerId),
    responses(
        (status = 200, description = "In progress, or completed with a location or a failure cause.",
            body = AsynchronousOperationResult, examples(
                ("inProgress" = (value = json!({"status": {"id": "IN_PROGRESS"}}))),
                ("completed" = (value = json!({"status": {"id": "COMPLETED"},
                    "operation": {"location": "file:///tmp/savepoints/savepoint-3f1c0a-0a1b2c3d4e5f"}}))),
                ("failed" = (value = json!({"status": {"id": "COMPLETED"},
                    "operation": {"failure-cause": {"class": "cairn.OperationFailed",
                        "stack-trace": "the job stopped before the savepoint completed",
                        "serialized-throwable": null}}}))),
            )),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
pub(super) async fn savepoint_status(
    State(control): State<Arc<JobControl>>,
    Path((id, trigger)): Path<(String, String)>,
    flink: Option<Extension<FlinkClient>>,
) -> Reply<AsynchronousOperationResult> {
    status_of(
        job(&control, &id)?,
        &trigger,
        OperationKind::Savepoint,
        flink,
    )
}

/// Stop the job with a savepoint
///
/// Mirrors Flink's `POST /jobs/:jobid/stop`. The savepoint's barrier ends the stream:
/// the savepoint is taken (into `targetDirectory`, else the configured savepoint folder),
/// sinks' output up to it is committed, and the job then ends FINISHED. With
/// `drain: true` operators first `finish` (emit what they buffer) before they snapshot.
/// No further savepoint or swap is accepted once a stop is under way. Poll
/// `GET /jobs/{jobid}/savepoints/{triggerid}` for the location. Requires a RUNNING job.
#[utoipa::path(
    post,
    path = "/jobs/{jobid}/stop",
    tag = "savepoints",
    operation_id = "stopWithSavepoint",
    params(JobId),
    // A reference, not the type: the derive would call the body required.
    request_body(content = ref("#/components/schemas/StopWithSavepointRequestBody"),
        description = "Optional; an empty (or whitespace-only) body means `{}`."),
    responses(
        (status = 202, response = Triggered),
        (status = 400, response = BadSavepointRequest),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
        (status = 409, response = NotRunning),
    )
)]
pub(super) async fn stop(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Triggering {
    let control = job(&control, &id)?;
    let body: StopWithSavepointRequestBody = parse(&body)?;
    triggered(
        control
            .trigger_savepoint(
                body.target_directory.as_deref(),
                AfterSavepoint::Stop { drain: body.drain },
            )
            .map_err(refused)?,
    )
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct RescaleQuery {
    /// The new parallelism of the nodes without one of their own (as `cairn run -p`), at
    /// most `pipeline.max-parallelism`.
    #[param(example = 3, minimum = 1)]
    parallelism: u32,
    /// Where the savepoint goes (Cairn only; default: the configured savepoint folder). An
    /// absolute path or a URL.
    #[serde(rename = "target-directory")]
    #[param(rename = "target-directory", example = "/backups/savepoints")]
    target_directory: Option<String>,
}

/// Rescale the job
///
/// Mirrors Flink's `PATCH /jobs/:jobid/rescaling`: the job stops with a savepoint (into
/// `target-directory`, else the configured savepoint folder; sinks commit their output up
/// to it) and resumes from it in the same process with `parallelism` for every node
/// without a parallelism of its own; keyed state moves by key group, sources' positions by
/// split. If the savepoint cannot be restored at the new parallelism (state of a
/// `cairn:job@0.2.0` operator), the job resumes at the old one and the operation reports
/// why. Poll `GET /jobs/{jobid}/rescaling/{triggerid}`; its `location` is the savepoint.
/// Requires a RUNNING job.
#[utoipa::path(
    patch,
    path = "/jobs/{jobid}/rescaling",
    tag = "savepoints",
    operation_id = "rescaleJob",
    params(JobId, RescaleQuery),
    responses(
        (status = 202, response = Triggered),
        (status = 400, description = "No such parallelism (0, or over `pipeline.max-parallelism`), the job runs at it already, or no savepoint folder.",
            body = ErrorBody,
            example = json!({"errors": ["cannot rescale to parallelism 500: it must be between 1 and pipeline.max-parallelism (128)"]})),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
        (status = 409, description = "The job is not RUNNING, or a swap or another rescale of it is under way.",
            body = ErrorBody,
            example = json!({"errors": ["another swap or a rescale of job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b is under way: retry when it has completed"]})),
    )
)]
pub(super) async fn rescale(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<RescaleQuery>,
) -> Triggering {
    let control = job(&control, &id)?;
    triggered(
        control
            .trigger_rescale(query.parallelism, query.target_directory.as_deref())
            .map_err(refused)?,
    )
}

/// Status of a rescale
///
/// Mirrors Flink's `GET /jobs/:jobid/rescaling/:triggerid`. `COMPLETED` with
/// `operation.location` (the savepoint) means the job resumed at the new parallelism; with
/// `operation.failure-cause`, that it did not (it runs as before, or resumed at its old
/// parallelism, as the cause says).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/rescaling/{triggerid}",
    tag = "savepoints",
    operation_id = "rescaleStatus",
    params(JobId, TriggerId),
    responses(
        (status = 200, description = "In progress, or completed with the savepoint's location or a failure cause.",
            body = AsynchronousOperationResult),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
pub(super) async fn rescale_status(
    State(control): State<Arc<JobControl>>,
    Path((id, trigger)): Path<(String, String)>,
    flink: Option<Extension<FlinkClient>>,
) -> Reply<AsynchronousOperationResult> {
    status_of(job(&control, &id)?, &trigger, OperationKind::Rescale, flink)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(super) struct SwapQuery {
    /// The component's name, used in messages (default `the new component`).
    #[param(example = "word-count-v2.wasm")]
    name: Option<String>,
}

/// Swap the job's operators to new code (Cairn only)
///
/// Not in Flink. The body is the new job component's raw bytes (`cairn swap` sends
/// `application/wasm`; the content type is not checked). The component is compiled,
/// described with the job's own arguments, and checked to have the running job graph's
/// shape; then, at a checkpoint barrier, every operator subtask snapshots its state,
/// opens the same uid's operator in the new code and restores the state into it. Only
/// if every subtask succeeds do they all switch; if any restore fails, all roll back and
/// the old code keeps running. Once swapped, restarts also run the new code.
///
/// One swap runs at a time: while another one is under way, its upload included, or a
/// rescale, the request is refused with `409`. The body is streamed to a temporary file (in
/// `$TMPDIR`, removed when the swap ends), never held in memory. Once the body is
/// received the request is accepted (`202`); every later refusal, including a job that
/// is not RUNNING, a file that is not a component, a component of another shape, a job
/// without operators, or a job that is stopping, is reported as a `failure-cause` by
/// `GET /jobs/{jobid}/swap/{triggerid}`.
#[utoipa::path(
    post,
    path = "/jobs/{jobid}/swap",
    tag = "swap",
    operation_id = "triggerSwap",
    params(JobId, SwapQuery),
    request_body(
        description = "The WebAssembly component's bytes (at most 256 MiB, this route's body limit).",
        content((ComponentBytes = "application/wasm"), (ComponentBytes = "application/octet-stream")),
    ),
    responses(
        (status = 202, response = Triggered),
        (status = 400, description = "The body is empty (it must be the component's bytes), or its upload broke off.",
            body = ErrorBody,
            example = json!({"errors": ["the request body must be the new component's bytes; it is empty"]})),
        (status = 401, response = Unauthorized),
        (status = 404, response = JobNotFound),
        (status = 409, description = "Another swap of the job (its upload or its preparation), or a rescale, is under way.",
            body = ErrorBody,
            example = json!({"errors": ["another swap or a rescale of job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b is under way: retry when it has completed"]})),
        (status = 413, description = "The body exceeds the 256 MiB limit of a component.", body = ErrorBody,
            example = json!({"errors": ["the component exceeds the 256 MiB limit of a swap"]})),
        (status = 500, description = "The body could not be stored in a temporary file (e.g. a full disk).",
            body = ErrorBody),
    )
)]
pub(super) async fn swap(
    State(control): State<Arc<JobControl>>,
    Path(id): Path<String>,
    Query(query): Query<SwapQuery>,
    request: Request,
) -> Triggering {
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
    triggered(control.trigger_swap(slot, label, component))
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

/// Status of a swap (Cairn only)
///
/// Not in Flink. `COMPLETED` with an empty `operation` means every operator now runs the
/// new code; `COMPLETED` with `operation.failure-cause` means the swap was refused or
/// rolled back and the old code keeps running (the cause names the failed subtasks).
#[utoipa::path(
    get,
    path = "/jobs/{jobid}/swap/{triggerid}",
    tag = "swap",
    operation_id = "swapStatus",
    params(JobId, TriggerId),
    responses(
        (status = 200, description = "In progress, or completed (empty operation, or a failure cause).",
            body = AsynchronousOperationResult, examples(
                ("swapped" = (value = json!({"status": {"id": "COMPLETED"}, "operation": {}}))),
                ("rolledBack" = (value = json!({"status": {"id": "COMPLETED"},
                    "operation": {"failure-cause": {"class": "cairn.OperationFailed",
                        "stack-trace": "count (2/4): cannot restore state: ...",
                        "serialized-throwable": null}}}))),
            )),
        (status = 401, response = Unauthorized),
        (status = 404, response = NotFound),
    )
)]
pub(super) async fn swap_status(
    State(control): State<Arc<JobControl>>,
    Path((id, trigger)): Path<(String, String)>,
    flink: Option<Extension<FlinkClient>>,
) -> Reply<AsynchronousOperationResult> {
    status_of(job(&control, &id)?, &trigger, OperationKind::Swap, flink)
}

/// Dispose of a savepoint
///
/// Mirrors Flink's `POST /savepoint-disposal`. Deletes the savepoint at `savepoint-path`
/// (its folder or its `_metadata`) after checking that its `_metadata` reads back intact
/// and says it is a savepoint (a checkpoint is refused). Does not need a RUNNING job.
/// Poll `GET /savepoint-disposal/{triggerid}`.
#[utoipa::path(
    post,
    path = "/savepoint-disposal",
    tag = "savepoints",
    operation_id = "triggerSavepointDisposal",
    request_body = SavepointDisposalRequest,
    responses(
        (status = 202, response = Triggered),
        (status = 400, response = BadRequestBody),
        (status = 401, response = Unauthorized),
    )
)]
pub(super) async fn dispose(State(control): State<Arc<JobControl>>, body: Bytes) -> Triggering {
    let body: SavepointDisposalRequest = parse(&body)?;
    triggered(control.trigger_disposal(body.savepoint_path))
}

/// Status of a savepoint disposal
///
/// Mirrors Flink's `GET /savepoint-disposal/:triggerid`. `COMPLETED` with an empty
/// `operation` means the savepoint was deleted; otherwise `operation.failure-cause`.
#[utoipa::path(
    get,
    path = "/savepoint-disposal/{triggerid}",
    tag = "savepoints",
    operation_id = "savepointDisposalStatus",
    params(TriggerId),
    responses(
        (status = 200, description = "In progress, or completed (empty operation, or a failure cause).",
            body = AsynchronousOperationResult),
        (status = 401, response = Unauthorized),
        (status = 404, response = TriggerNotFound),
    )
)]
pub(super) async fn disposal_status(
    State(control): State<Arc<JobControl>>,
    Path(trigger): Path<String>,
    flink: Option<Extension<FlinkClient>>,
) -> Reply<AsynchronousOperationResult> {
    status_of(&control, &trigger, OperationKind::Disposal, flink)
}

/// An operation's status. Asked under `/v1/` (by a Flink client), a failure is answered
/// `500` with Flink's error body, which that client shows as the command's error; its
/// `failure-cause` would need a Java-serialized throwable, and the client retries an
/// answer it cannot read until it gives up, never showing why.
fn status_of(
    control: &JobControl,
    trigger: &str,
    kind: OperationKind,
    flink: Option<Extension<FlinkClient>>,
) -> Reply<AsynchronousOperationResult> {
    match control.operation(trigger, kind) {
        None => Err(error(
            StatusCode::NOT_FOUND,
            format!("There is no operation with trigger id {trigger}."),
        )),
        Some(Operation::InProgress) => Ok(Json(AsynchronousOperationResult::in_progress())),
        Some(Operation::Completed(Err(cause))) if flink.is_some() => {
            Err(error(StatusCode::INTERNAL_SERVER_ERROR, cause))
        }
        Some(Operation::Completed(outcome)) => {
            Ok(Json(AsynchronousOperationResult::completed(outcome)))
        }
    }
}
