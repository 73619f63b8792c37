//! Finding the checkpoint that `-s PATH` names, and checking that it fits the job.
//!
//! PATH may be a checkpoint (or savepoint) folder, its `_metadata`, or a job's checkpoint
//! folder `<dir>/<job-id>`, which means its latest completed checkpoint. It may be a local
//! path or any store URL.

use std::collections::HashMap;

use bytes::Bytes;

use crate::config::S3Config;
use crate::connectors::ConnectorError;
use crate::graph::{Graph, Role};
use crate::runtime::Restore;
use crate::state::metadata::SubtaskState;
use crate::state::{
    CheckpointMetadata, CheckpointStore, METADATA_FILE, StateError, StateStore, blob,
};

/// Why a checkpoint cannot restore this job.
#[derive(Debug, thiserror::Error)]
pub enum RestoreError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(
        "{location}: it has state for {uids}, which this job does not have (its nodes: \
         {known}); run with --allow-non-restored-state to start without that state"
    )]
    UnknownUids {
        location: String,
        uids: String,
        known: String,
    },
    #[error(
        "{location}: '{uid}' was checkpointed with parallelism {checkpointed}, this job runs it \
         with {now}; restoring state at another parallelism is not supported yet"
    )]
    Parallelism {
        location: String,
        uid: String,
        checkpointed: u32,
        now: u32,
    },
    #[error(
        "{location}: '{uid}' was checkpointed as a {role} of connector '{checkpointed}'; this \
         job's '{uid}' is a {role} of '{now}', which cannot take over that state"
    )]
    ConnectorChanged {
        location: String,
        uid: String,
        role: &'static str,
        checkpointed: String,
        now: &'static str,
    },
    #[error("{location}: '{uid}' subtask {subtask}: {cause}")]
    Connector {
        location: String,
        uid: String,
        subtask: usize,
        cause: Box<ConnectorError>,
    },
}

/// Opens the folder `path` names: a folder, or the folder of a `_metadata` file. A local
/// folder must exist (opening would create it); a `memory://` store must have been opened by
/// this process (nothing else can have written it).
pub fn open_folder(path: &str, s3: &S3Config) -> Result<StateStore, StateError> {
    let folder = folder_of(path);
    if StateStore::unopened_memory(folder) {
        return Err(StateError::NothingInMemory(path.to_owned()));
    }
    if let Some(local) = StateStore::local_path(folder)
        && !local.is_dir()
    {
        let what = if local.exists() {
            "a file that is not _metadata"
        } else {
            "no such folder"
        };
        return Err(StateError::NotACheckpoint(format!("{path} ({what})")));
    }
    StateStore::open(folder, s3)
}

/// The folder `path` names: itself, or the folder of its `_metadata`; trailing slashes go,
/// but a root (`/`, `file:///`) stays a root. A bare `_metadata` is in the working folder.
fn folder_of(path: &str) -> &str {
    let path = trim_slashes(path);
    match path.strip_suffix(METADATA_FILE) {
        Some("") => ".",
        Some(parent) if parent.ends_with('/') => trim_slashes(parent),
        _ => path,
    }
}

/// `path` without trailing slashes, unless they are all it has after a scheme or nothing.
fn trim_slashes(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() {
        path.get(..1).unwrap_or(".")
    } else if trimmed.ends_with(':') {
        path
    } else {
        trimmed
    }
}

/// Finds and reads the checkpoint `path` names: its folder and its verified metadata.
pub async fn find(
    path: &str,
    s3: &S3Config,
) -> Result<(StateStore, CheckpointMetadata), StateError> {
    let store = open_folder(path, s3)?;
    if store.exists(METADATA_FILE).await? {
        return read(store).await;
    }
    // A job's checkpoint folder: its newest checkpoint that has `_metadata`.
    read(CheckpointStore::new(store).latest().await?).await
}

/// Reads and verifies the `_metadata` of the checkpoint or savepoint in `folder`.
pub async fn read(folder: StateStore) -> Result<(StateStore, CheckpointMetadata), StateError> {
    let bytes = folder.get(METADATA_FILE).await?;
    let metadata = CheckpointMetadata::from_bytes(&bytes, &folder.url_of(METADATA_FILE))?;
    Ok((folder, metadata))
}

/// Downloads every operator state file of a checkpoint and verifies its checksum, all
/// before the job starts, so that a damaged checkpoint is refused as a whole. Returns the
/// stored (compressed) bytes by `(uid, subtask)`.
pub async fn fetch_state(
    folder: &StateStore,
    metadata: &CheckpointMetadata,
) -> Result<HashMap<(String, u32), Bytes>, StateError> {
    let files = metadata.nodes.iter().flat_map(|node| {
        node.subtasks
            .iter()
            .enumerate()
            .filter_map(move |(i, s)| match &s.state {
                SubtaskState::Operator { file: Some(file) } => {
                    Some((node.uid.clone(), i as u32, file))
                }
                _ => None,
            })
    });
    let downloads = files.map(|(uid, subtask, file)| async move {
        let location = folder.url_of(&file.path);
        let info = file.info().ok_or_else(|| StateError::Corrupt {
            location: location.clone(),
            message: "its checksum in _metadata is not valid hex".into(),
        })?;
        let stored = folder.get(&file.path).await.map_err(|e| match e {
            StateError::NotFound(_) => StateError::MissingStateFile {
                checkpoint: folder.url().to_owned(),
                file: file.path.clone(),
            },
            e => e,
        })?;
        blob::verify(&stored, &info, &location)?;
        Ok::<_, StateError>(((uid, subtask), stored))
    });
    futures::future::try_join_all(downloads)
        .await
        .map(|all| all.into_iter().collect())
}

/// Reads and verifies the state of every node of `graph` that the checkpoint has; state of
/// uids the graph lacks (`--allow-non-restored-state`) is not even downloaded.
pub async fn load(
    folder: StateStore,
    mut metadata: CheckpointMetadata,
    graph: &Graph,
) -> Result<Restore, StateError> {
    metadata
        .nodes
        .retain(|node| graph.nodes.iter().any(|n| n.uid == node.uid));
    let state = fetch_state(&folder, &metadata).await?;
    Ok(Restore {
        metadata,
        folder,
        state,
    })
}

/// Checks that the checkpoint's state maps onto `graph` by uid: every node with state must
/// exist with the same parallelism — unless `allow_non_restored`, when state of uids the
/// graph lacks is dropped; their uids are returned. Nodes new to the graph start empty.
/// Sources' and sinks' state must be their connector's, and pass its checks.
pub fn check(
    graph: &Graph,
    metadata: &CheckpointMetadata,
    location: &str,
    allow_non_restored: bool,
) -> Result<Vec<String>, RestoreError> {
    let with_state = || metadata.nodes.iter().filter(|n| n.has_state());
    let unknown: Vec<String> = with_state()
        .filter(|node| !graph.nodes.iter().any(|n| n.uid == node.uid))
        .map(|node| node.uid.clone())
        .collect();
    if !unknown.is_empty() && !allow_non_restored {
        return Err(RestoreError::UnknownUids {
            location: location.to_owned(),
            uids: unknown
                .iter()
                .map(|uid| format!("'{uid}'"))
                .collect::<Vec<_>>()
                .join(", "),
            known: graph
                .nodes
                .iter()
                .map(|n| n.uid.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        });
    }
    for node in with_state() {
        let Some(current) = graph.nodes.iter().find(|n| n.uid == node.uid) else {
            continue;
        };
        if current.parallelism != node.parallelism {
            return Err(RestoreError::Parallelism {
                location: location.to_owned(),
                uid: node.uid.clone(),
                checkpointed: node.parallelism,
                now: current.parallelism,
            });
        }
        for (subtask, snapshot) in node.subtasks.iter().enumerate() {
            check_connector(&current.role, &snapshot.state, metadata.checkpoint_id).map_err(
                |e| match e {
                    Mismatch::Connector {
                        role,
                        checkpointed,
                        now,
                    } => RestoreError::ConnectorChanged {
                        location: location.to_owned(),
                        uid: node.uid.clone(),
                        role,
                        checkpointed: checkpointed.to_owned(),
                        now,
                    },
                    Mismatch::Refused(cause) => RestoreError::Connector {
                        location: location.to_owned(),
                        uid: node.uid.clone(),
                        subtask,
                        cause: Box::new(cause),
                    },
                },
            )?;
        }
    }
    Ok(unknown)
}

enum Mismatch<'a> {
    Connector {
        role: &'static str,
        checkpointed: &'a str,
        now: &'static str,
    },
    Refused(ConnectorError),
}

/// Whether a subtask's checkpointed `state` can restore a node of `role`. A sink state that
/// holds nothing back restores any sink.
fn check_connector<'a>(
    role: &Role,
    state: &'a SubtaskState,
    checkpoint: u64,
) -> Result<(), Mismatch<'a>> {
    match (role, state) {
        (Role::Source(source), SubtaskState::Source { connector, .. })
            if *connector != source.name =>
        {
            Err(Mismatch::Connector {
                role: "source",
                checkpointed: connector,
                now: source.name,
            })
        }
        (Role::Sink(sink), SubtaskState::Sink { connector, state })
            if *connector != sink.name && !state.data.is_empty() =>
        {
            Err(Mismatch::Connector {
                role: "sink",
                checkpointed: connector,
                now: sink.name,
            })
        }
        (Role::Sink(sink), SubtaskState::Sink { state, .. }) => sink
            .connector
            .check(state, checkpoint)
            .map_err(Mismatch::Refused),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_names_its_folder_or_the_folder_of_its_metadata() {
        assert_eq!(folder_of("/a/b"), "/a/b");
        assert_eq!(folder_of("/a/b//"), "/a/b");
        assert_eq!(folder_of("/a/b/_metadata"), "/a/b");
        assert_eq!(folder_of("s3://x/b/_metadata"), "s3://x/b");
        assert_eq!(folder_of("_metadata"), ".");
        assert_eq!(folder_of("b"), "b");
        // Only a file named `_metadata` is one.
        assert_eq!(folder_of("/a/b_metadata"), "/a/b_metadata");
    }

    #[test]
    fn the_root_stays_the_root() {
        assert_eq!(folder_of("/"), "/");
        assert_eq!(folder_of("//"), "/");
        assert_eq!(folder_of("/_metadata"), "/");
        assert_eq!(folder_of("file:///"), "file:///");
        assert_eq!(folder_of(""), ".");
    }
}
