//! The error answers several operations share, each with Flink's body ([`ErrorBody`]) and an
//! example; the document refers to them by name. Answers particular to one operation are
//! described at that operation.

use utoipa::ToResponse;

use crate::{ErrorBody, TriggerResponse};

/// The operation started; poll its status with the returned `request-id`.
#[derive(ToResponse)]
pub struct Triggered(pub TriggerResponse);

/// `rest.auth-token` is set and the request lacks `Authorization: Bearer <token>` with it.
#[derive(ToResponse)]
#[response(example = json!({
    "errors": ["Unauthorized: this job requires `Authorization: Bearer <rest.auth-token>`"]
}))]
pub struct Unauthorized(pub ErrorBody);

/// The job id is not the id of the job this server runs.
#[derive(ToResponse)]
#[response(example = json!({
    "errors": ["Job 00000000000000000000000000000000 not found: this server runs job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b"]
}))]
pub struct JobNotFound(pub ErrorBody);

/// Unknown job id, or the job has no vertex with this id.
#[derive(ToResponse)]
#[response(examples(
    ("unknownJob" = (value = json!({
        "errors": ["Job 00000000000000000000000000000000 not found: this server runs job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b"]
    }))),
    ("unknownVertex" = (value = json!({
        "errors": ["Job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b has no vertex 0123456789abcdef0123456789abcdef."]
    }))),
))]
pub struct VertexNotFound(pub ErrorBody);

/// No operation has this trigger id.
#[derive(ToResponse)]
#[response(example = json!({
    "errors": ["There is no operation with trigger id 0123456789abcdef0123456789abcdef."]
}))]
pub struct TriggerNotFound(pub ErrorBody);

/// Unknown job id, or no operation has this trigger id.
#[derive(ToResponse)]
#[response(examples(
    ("unknownJob" = (value = json!({
        "errors": ["Job 00000000000000000000000000000000 not found: this server runs job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b"]
    }))),
    ("unknownTrigger" = (value = json!({
        "errors": ["There is no operation with trigger id 0123456789abcdef0123456789abcdef."]
    }))),
))]
pub struct NotFound(pub ErrorBody);

/// The body is not valid JSON of the expected shape.
#[derive(ToResponse)]
#[response(example = json!({
    "errors": ["Bad request body: missing field `savepoint-path` at line 1 column 2"]
}))]
pub struct BadRequestBody(pub ErrorBody);

/// The body is not valid JSON of the expected shape; or the target directory is a relative
/// path; or no target directory was given and no savepoint folder is configured; or the
/// target directory cannot be opened.
#[derive(ToResponse)]
#[response(examples(
    ("badBody" = (value = json!({
        "errors": ["Bad request body: invalid type: string \"yes\", expected a boolean at line 1 column 19"]
    }))),
    ("noSavepointDir" = (value = json!({
        "errors": ["no savepoint folder: give one, or set execution.checkpointing.savepoint-dir (state.savepoints.dir)"]
    }))),
))]
pub struct BadSavepointRequest(pub ErrorBody);

/// The job is not RUNNING (e.g. INITIALIZING, RESTARTING, CANCELLING or ended).
#[derive(ToResponse)]
#[response(example = json!({
    "errors": ["job 3f1c0a9be2d44e6f8a1b2c3d4e5f6a7b is RESTARTING, not running"]
}))]
pub struct NotRunning(pub ErrorBody);
