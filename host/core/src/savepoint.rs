//! Savepoints: where a new one goes, and disposing of one.
//!
//! A savepoint is a checkpoint taken on request into its own folder,
//! `<dir>/savepoint-<first 6 of job id>-<12 random hex>/`, holding its `_metadata` (kind
//! `savepoint`) and every state file under paths relative to it — so the folder can be moved
//! or copied anywhere, even to another store, and still restores. Cairn never deletes one by
//! itself; `cairn savepoint --dispose` does.

use crate::config::S3Config;
use crate::state::delete_snapshot;
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
    #[error("{0} is the root of its file system or bucket; nothing was deleted")]
    Root(String),
    #[error(transparent)]
    State(#[from] StateError),
}

/// A new, unique savepoint folder for job `job_id` under `dir` (a path or store URL). A
/// store that ends with the process (`memory://`) is refused: nothing could restore from it.
pub fn new_folder(dir: &str, job_id: &str, s3: &S3Config) -> Result<StateStore, StateError> {
    if StateStore::in_memory(dir) {
        return Err(StateError::SavepointInMemory(dir.to_owned()));
    }
    let prefix = job_id.get(..6).unwrap_or(job_id);
    let suffix = rand::random::<u64>() & 0xffff_ffff_ffff;
    Ok(StateStore::open(dir, s3)?.child(&format!("savepoint-{prefix}-{suffix:012x}")))
}

/// Deletes the savepoint at `path` (its folder or its `_metadata`) after checking that it
/// is one: its `_metadata` must read back intact and say `savepoint`, and it is not a root
/// (deleting a savepoint deletes everything in its folder). Returns its location.
pub async fn dispose(path: &str, s3: &S3Config) -> Result<String, DisposeError> {
    let store = crate::restore::open_folder(path, s3).map_err(|e| match e {
        StateError::NotACheckpoint(location) => DisposeError::NotASavepoint(location),
        other => DisposeError::State(other),
    })?;
    if is_root(store.url()) {
        return Err(DisposeError::Root(store.url().to_owned()));
    }
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

/// Whether a store URL is the root of its file system or bucket (`file:///`, `s3://b`).
fn is_root(url: &str) -> bool {
    let Some((scheme, rest)) = url.split_once("://") else {
        return false;
    };
    let rest = rest.trim_matches('/');
    match scheme {
        "file" => rest.is_empty(),
        // `bucket/prefix`: the bucket alone is its root.
        _ => !rest.contains('/'),
    }
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

    #[test]
    fn savepoints_in_memory_are_refused() {
        let job = "0123456789abcdef0123456789abcdef";
        let refused = new_folder("memory://sp", job, &S3Config::default()).unwrap_err();
        assert!(
            matches!(&refused, StateError::SavepointInMemory(dir) if dir == "memory://sp"),
            "{refused}"
        );
    }

    #[test]
    fn roots_are_the_file_system_root_and_bare_buckets() {
        assert!(is_root("file:///"));
        assert!(is_root("s3://bucket"));
        assert!(is_root("s3://bucket/"));
        assert!(!is_root("file:///a"));
        assert!(!is_root("s3://bucket/sp"));
    }
}
