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
use crate::rescale::{self, Refusal};
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
    #[error("{location}: cannot restore '{uid}' at parallelism {now}: {refusal}")]
    Rescale {
        location: String,
        uid: String,
        now: u32,
        refusal: Refusal,
    },
    #[error(
        "{location}: the checkpoint was taken with pipeline.max-parallelism {checkpointed}, \
         this job runs with {now}; a job's number of key groups is fixed for its life: run \
         with -D pipeline.max-parallelism={checkpointed}"
    )]
    MaxParallelism {
        location: String,
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

/// Downloads every whole-blob state file of a checkpoint (`cairn:job@0.2.0` operators') and
/// verifies its checksum, and checks that every segmented state file is there, whole — all
/// before the job starts, so that a damaged checkpoint is refused as a whole. (Segments are
/// verified as they are read: a restore reads only the key groups it needs.) Returns the
/// blobs' stored (compressed) bytes by path.
pub async fn fetch_state(
    folder: &StateStore,
    metadata: &CheckpointMetadata,
) -> Result<HashMap<String, Bytes>, StateError> {
    let states = metadata
        .nodes
        .iter()
        .flat_map(|node| node.subtasks.iter().map(|s| &s.state));
    let missing = |path: &str| StateError::MissingStateFile {
        checkpoint: folder.url().to_owned(),
        file: path.to_owned(),
    };
    let mut blobs = Vec::new();
    let mut files = Vec::new();
    for state in states {
        match state {
            SubtaskState::Operator { file: Some(file) } => blobs.push(file),
            SubtaskState::KeyedOperator { state } => files.push(state),
            _ => {}
        }
    }
    let present = files.iter().map(|file| async move {
        match folder.size(&file.path).await? {
            Some(size) if size == file.size() => Ok(()),
            Some(size) => Err(StateError::Corrupt {
                location: folder.url_of(&file.path),
                message: format!(
                    "{size} bytes, expected {}: the file is truncated or replaced",
                    file.size()
                ),
            }),
            None => Err(missing(&file.path)),
        }
    });
    futures::future::try_join_all(present).await?;
    let downloads = blobs.into_iter().map(|file| async move {
        let location = folder.url_of(&file.path);
        let info = file.info().ok_or_else(|| StateError::Corrupt {
            location: location.clone(),
            message: "its checksum in _metadata is not valid hex".into(),
        })?;
        let stored = folder.get(&file.path).await.map_err(|e| match e {
            StateError::NotFound(_) => missing(&file.path),
            e => e,
        })?;
        blob::verify(&stored, &info, &location)?;
        Ok::<_, StateError>((file.path.clone(), stored))
    });
    futures::future::try_join_all(downloads)
        .await
        .map(|all| all.into_iter().collect())
}

/// Plans what every subtask of `graph` restores from the checkpoint, at the parallelism it
/// runs at now ([`rescale::assign`]), and fetches what must be checked first
/// ([`fetch_state`]); state of uids the graph lacks (`--allow-non-restored-state`) is not
/// even looked at.
pub async fn load(
    folder: StateStore,
    mut metadata: CheckpointMetadata,
    graph: &Graph,
) -> Result<Restore, RestoreError> {
    metadata
        .nodes
        .retain(|node| graph.nodes.iter().any(|n| n.uid == node.uid));
    let location = folder.url().to_owned();
    let mut plan = HashMap::new();
    for node in &metadata.nodes {
        let Some(current) = graph.nodes.iter().find(|n| n.uid == node.uid) else {
            continue;
        };
        let assigned = rescale::assign(node, current.parallelism, graph.max_parallelism).map_err(
            |refusal| RestoreError::Rescale {
                location: location.clone(),
                uid: node.uid.clone(),
                now: current.parallelism,
                refusal,
            },
        )?;
        plan.insert(node.uid.clone(), assigned);
    }
    let blobs = fetch_state(&folder, &metadata).await?;
    Ok(Restore {
        metadata,
        folder,
        plan,
        blobs,
    })
}

/// Checks that the checkpoint's state maps onto `graph` by uid: every node with state must
/// exist — unless `allow_non_restored`, when state of uids the graph lacks is dropped; their
/// uids are returned — and be restorable at its parallelism now, with the same number of key
/// groups. Nodes new to the graph start empty. Sources' and sinks' state must be their
/// connector's, and pass its checks.
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
    if let Some(checkpointed) = metadata.max_parallelism
        && checkpointed != graph.max_parallelism
    {
        return Err(RestoreError::MaxParallelism {
            location: location.to_owned(),
            checkpointed,
            now: graph.max_parallelism,
        });
    }
    for node in with_state() {
        let Some(current) = graph.nodes.iter().find(|n| n.uid == node.uid) else {
            continue;
        };
        let rescale_refused = |refusal| RestoreError::Rescale {
            location: location.to_owned(),
            uid: node.uid.clone(),
            now: current.parallelism,
            refusal,
        };
        if let Role::Source(source) = &current.role
            && node.parallelism != current.parallelism
            && !source.connector.redistributes()
        {
            return Err(rescale_refused(Refusal::Source {
                connector: source.name.to_owned(),
                checkpointed: node.parallelism,
                now: current.parallelism,
            }));
        }
        rescale::assign(node, current.parallelism, graph.max_parallelism)
            .map_err(rescale_refused)?;
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
