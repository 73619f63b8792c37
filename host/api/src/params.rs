//! The path parameters of the REST API's routes, by the names the routes give them (the
//! server extracts them by position; these document them).

use utoipa::IntoParams;

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct JobId {
    /// The job's id (32 lowercase hex characters). Any other id is `404`.
    #[param(pattern = "^[0-9a-f]{32}$")]
    pub jobid: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct VertexId {
    /// A vertex's `id` from `GET /jobs/{jobid}` (32 lowercase hex characters). Any other id
    /// is `404`.
    #[param(pattern = "^[0-9a-f]{32}$")]
    pub vertexid: String,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct CheckpointId {
    /// A completed checkpoint's or savepoint's `id` (as `GET /jobs/{jobid}/checkpoints`
    /// lists them). An id the statistics no longer hold, or one that is not a number, is
    /// `404`.
    pub checkpointid: u64,
}

#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
pub struct TriggerId {
    /// The `request-id` a trigger returned (32 lowercase hex characters).
    #[param(pattern = "^[0-9a-f]{32}$")]
    pub triggerid: String,
}
