//! Savepoints: where a new one goes, and disposing of one.
//!
//! A savepoint is a checkpoint taken on request into its own folder,
//! `<dir>/savepoint-<first 6 of job id>-<12 random hex>/`, holding its `_metadata` (kind
//! `savepoint`) and every state file under paths relative to it — so the folder can be moved
//! or copied anywhere, even to another store, and still restores. Cairn never deletes one by
//! itself; `cairn savepoint --dispose` does.

use crate::config::S3Config;
use crate::runtime::delete_snapshot;
use crate::state::metadata::CheckpointKind;
use crate::state::{CheckpointMetadata, METADATA_FILE, StateError, StateStore};

/// Why a savepoint could not be disposed of. Nothing was deleted.
#[derive(Debug, thiserror::Error)]
pub enum DisposeError {
    #[error("{0}: not a savepoint (it has no _metadata); nothing was deleted")]
    NotASavepoint(String),
    #[error(
        "{0} is a checkpoint, not a savepoint; nothing was deleted (checkpoints are removed \
         by their job, as execution.checkpointing.num-retained and the retention policy say)"
    )]
    IsACheckpoint(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A new, unique savepoint folder for job `job_id` under `dir` (a path or store URL).
pub fn new_folder(dir: &str, job_id: &str, s3: &S3Config) -> Result<StateStore, StateError> {
    let prefix = job_id.get(..6).unwrap_or(job_id);
    let suffix = rand::random::<u64>() & 0xffff_ffff_ffff;
    Ok(StateStore::open(dir, s3)?.child(&format!("savepoint-{prefix}-{suffix:012x}")))
}

/// Deletes the savepoint at `path` (its folder or its `_metadata`) after checking that it
/// is one: its `_metadata` must read back intact and say `savepoint`. Returns its location.
pub async fn dispose(path: &str, s3: &S3Config) -> Result<String, DisposeError> {
    let store = crate::restore::open_folder(path, s3).map_err(|e| match e {
        StateError::NotACheckpoint(location) => DisposeError::NotASavepoint(location),
        other => DisposeError::State(other),
    })?;
    if !store.exists(METADATA_FILE).await? {
        return Err(DisposeError::NotASavepoint(store.url().to_owned()));
    }
    let bytes = store.get(METADATA_FILE).await?;
    let metadata = CheckpointMetadata::from_bytes(&bytes, &store.url_of(METADATA_FILE))?;
    if metadata.kind != CheckpointKind::Savepoint {
        return Err(DisposeError::IsACheckpoint(store.url().to_owned()));
    }
    delete_snapshot(&store).await?;
    Ok(store.url().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_named_for_the_job_and_unique() {
        let job = "0123456789abcdef0123456789abcdef";
        let a = new_folder("/tmp/sp", job, &S3Config::default()).unwrap();
        let b = new_folder("/tmp/sp", job, &S3Config::default()).unwrap();
        assert_ne!(a.url(), b.url());
        let name = a.url().rsplit('/').next().unwrap();
        assert!(name.starts_with("savepoint-012345-"), "{name}");
        assert_eq!(name.len(), "savepoint-012345-".len() + 12, "{name}");
    }
}
