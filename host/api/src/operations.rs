//! Asynchronous operations, as in Flink: a `POST` answers `202` with a [`TriggerResponse`] at
//! once, and `GET …/{triggerid}` answers an [`AsynchronousOperationResult`].

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::constant;

/// Flink's savepoint trigger body; other Flink fields (e.g. `formatType`, `triggerId`) are
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SavepointTriggerRequestBody {
    /// Where the savepoint's folder is created: an absolute path or a URL (`file://`,
    /// `s3://`, `gs://`, `az://`); a relative path is refused (`400`), since the job would
    /// resolve it against its own working folder. Null, absent or empty: the configured
    /// `execution.checkpointing.savepoint-dir`.
    pub target_directory: Option<String>,
    /// Cancel the job once the savepoint has completed (`cancel -s`).
    #[serde(default)]
    pub cancel_job: bool,
}

/// Flink's stop-with-savepoint body; other Flink fields (e.g. `formatType`, `triggerId`) are
/// ignored.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StopWithSavepointRequestBody {
    /// Where the savepoint's folder is created: an absolute path or a URL (`file://`,
    /// `s3://`, `gs://`, `az://`); a relative path is refused (`400`), since the job would
    /// resolve it against its own working folder. Null, absent or empty: the configured
    /// `execution.checkpointing.savepoint-dir`.
    #[serde(rename = "targetDirectory")]
    pub target_directory: Option<String>,
    /// Operators `finish` (emit what they buffer) before the final savepoint.
    #[serde(default)]
    pub drain: bool,
}

/// A swap's body: the new job component's bytes.
#[derive(Debug, Clone, PartialEq, Eq, ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ComponentBytes(pub Vec<u8>);

/// Flink's savepoint disposal body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct SavepointDisposalRequest {
    /// The savepoint's folder or its `_metadata` file (a path or an object-store URL).
    pub savepoint_path: String,
}

/// Answer to an asynchronous trigger, as in Flink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct TriggerResponse {
    /// The trigger id to poll (32 lowercase hex characters).
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub request_id: String,
}

/// Status of an asynchronous operation, as in Flink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AsynchronousOperationResult {
    pub status: QueueStatus,
    /// Absent while IN_PROGRESS. When COMPLETED it holds `location` (a successful savepoint
    /// or stop), nothing (a successful swap or disposal), or `failure-cause`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation: Option<OperationResult>,
}

impl AsynchronousOperationResult {
    pub fn in_progress() -> Self {
        AsynchronousOperationResult {
            status: QueueStatus {
                id: QueueStatusId::InProgress,
            },
            operation: None,
        }
    }

    /// Completed: with a location (or none), or why it failed.
    pub fn completed(outcome: Result<Option<String>, String>) -> Self {
        let operation = match outcome {
            Ok(location) => OperationResult {
                location,
                failure_cause: None,
            },
            Err(cause) => OperationResult {
                location: None,
                failure_cause: Some(FailureCause {
                    class: FailureClass::Value,
                    stack_trace: cause,
                    serialized_throwable: None,
                }),
            },
        };
        AsynchronousOperationResult {
            status: QueueStatus {
                id: QueueStatusId::Completed,
            },
            operation: Some(operation),
        }
    }

    /// `None` while in progress; once completed, its location (if any) or its failure.
    pub fn outcome(&self) -> Option<Result<Option<&str>, &str>> {
        if self.status.id == QueueStatusId::InProgress {
            return None;
        }
        let operation = self.operation.as_ref();
        Some(match operation.and_then(|o| o.failure_cause.as_ref()) {
            Some(cause) => Err(cause.stack_trace.as_str()),
            None => Ok(operation.and_then(|o| o.location.as_deref())),
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueStatus {
    pub id: QueueStatusId,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum QueueStatusId {
    InProgress,
    Completed,
}

/// A completed operation's result.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct OperationResult {
    /// The savepoint folder's URL (a `file://` or object-store URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure_cause: Option<FailureCause>,
}

constant!(
    /// The class of every failed operation's cause.
    FailureClass = "cairn.OperationFailed"
);

/// Flink's serialized-throwable shape; Cairn puts the message in `stack-trace`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub struct FailureCause {
    pub class: FailureClass,
    /// Why the operation failed.
    pub stack_trace: String,
    /// Always null.
    #[schema(required = true)]
    pub serialized_throwable: Option<String>,
}
