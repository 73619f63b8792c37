//! Checkpoint state: where it is stored ([`StateStore`], any `object_store` backend), how
//! each subtask's bytes are encoded (zstd, checksummed: [`blob`]), the `_metadata` that
//! alone marks a checkpoint complete ([`metadata`]), and a job's checkpoints over their life
//! ([`checkpoints`]: layout, completion, listing, retention, deletes).
//!
//! Layout under a checkpoint directory (DESIGN.md §4):
//!
//! ```text
//! <dir>/<job-id>/chk-<N>/_metadata
//! <dir>/<job-id>/chk-<N>/<operator-uid>/<subtask>.state   (cairn:job@0.3.0 operators)
//! <dir>/<job-id>/chk-<N>/<operator-uid>/<subtask>.zst     (cairn:job@0.2.0 operators)
//! ```

pub mod blob;
pub mod checkpoints;
pub mod metadata;
pub mod operator_file;
mod store;

pub use checkpoints::{CheckpointStore, delete_snapshot};
pub use metadata::{CheckpointMetadata, METADATA_FILE};
pub use store::{StateStore, install_tls_provider};

/// Why state could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("invalid state location '{location}': {message}")]
    Location { location: String, message: String },
    #[error("cannot {action} {location}: {cause}")]
    Store {
        action: &'static str,
        location: String,
        cause: String,
    },
    #[error("{location}: checksum mismatch, the file is corrupt")]
    Checksum { location: String },
    #[error("{location}: {message}")]
    Corrupt { location: String, message: String },
    #[error("{0}: no completed checkpoint found (no chk-<N>/_metadata)")]
    NoCheckpoint(String),
    #[error("{0}: not a checkpoint or savepoint (no _metadata)")]
    NotACheckpoint(String),
    #[error("{0} does not exist")]
    NotFound(String),
    #[error(
        "checkpoint {checkpoint} is incomplete: its state file {file} is missing (nothing was \
         restored)"
    )]
    MissingStateFile { checkpoint: String, file: String },
    #[error(
        "{0}: a savepoint must outlive this process, and a memory:// store does not; save to \
         a folder, file://, s3://, gs:// or az://"
    )]
    SavepointInMemory(String),
    #[error(
        "{0}: nothing can be there: a memory:// store lives only inside the cairn process that \
         writes it; restore from a folder, file://, s3://, gs:// or az://"
    )]
    NothingInMemory(String),
    #[error(
        "{location}: no S3 credentials: set s3.access-key and s3.secret-key (or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, web identity or container credentials), \
         or s3.use-instance-credentials: true to ask the instance metadata service"
    )]
    NoS3Credentials { location: String },
}

/// The whole-blob state file of one operator subtask (a `cairn:job@0.2.0` component's),
/// relative to its checkpoint folder.
pub fn state_file(uid: &str, subtask: u32) -> String {
    format!("{uid}/{subtask}.zst")
}

/// The segmented state file of one operator subtask ([`operator_file`]), relative to its
/// checkpoint folder.
pub fn operator_state_file(uid: &str, subtask: u32) -> String {
    format!("{uid}/{subtask}.state")
}
