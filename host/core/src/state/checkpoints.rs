//! A job's checkpoints in storage, for their whole life: where each one goes, completing it
//! (`_metadata` last), listing and finding the latest, `num-retained`, removing what a
//! failed attempt left incomplete, and deleting — in the background, off the coordinator's
//! thread, in the order asked.
//!
//! ```text
//! <dir>/<job-id>/chk-<N>/_metadata
//! <dir>/<job-id>/chk-<N>/<operator-uid>/<subtask>.zst
//! ```
//!
//! Savepoints live in folders of their own (`crate::savepoint`) but complete and delete the
//! same way ([`complete`], [`delete_snapshot`]).

use std::collections::VecDeque;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::{CheckpointMetadata, METADATA_FILE, StateError, StateStore};

/// The checkpoints of one job: the folder `<dir>/<job-id>`.
#[derive(Debug, Clone)]
pub struct CheckpointStore {
    folder: StateStore,
}

impl CheckpointStore {
    /// The checkpoints in `folder` (a job's checkpoint folder).
    pub fn new(folder: StateStore) -> Self {
        CheckpointStore { folder }
    }

    pub fn url(&self) -> &str {
        self.folder.url()
    }

    /// The folder of checkpoint `id`, where its subtasks write their state files.
    pub fn folder(&self, id: u64) -> StateStore {
        self.folder.child(&checkpoint_folder(id))
    }

    /// Every checkpoint in the store, oldest first, each with whether it is complete (has
    /// `_metadata`).
    pub async fn list(&self) -> Result<Vec<(u64, bool)>, StateError> {
        let mut ids: Vec<u64> = self
            .folder
            .folders()
            .await?
            .iter()
            .filter_map(|name| parse_checkpoint_folder(name))
            .collect();
        ids.sort_unstable();
        let mut found = Vec::with_capacity(ids.len());
        for id in ids {
            found.push((id, self.folder(id).exists(METADATA_FILE).await?));
        }
        Ok(found)
    }

    /// The completed checkpoints, oldest first.
    pub async fn completed(&self) -> Result<Vec<u64>, StateError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .filter_map(|(id, complete)| complete.then_some(id))
            .collect())
    }

    /// The folder of the latest completed checkpoint. `NotACheckpoint` when the store has
    /// no checkpoint at all, `NoCheckpoint` when none completed.
    pub async fn latest(&self) -> Result<StateStore, StateError> {
        let checkpoints = self.list().await?;
        if checkpoints.is_empty() {
            return Err(StateError::NotACheckpoint(self.url().to_owned()));
        }
        match checkpoints.iter().rev().find(|(_, complete)| *complete) {
            Some((id, _)) => Ok(self.folder(*id)),
            None => Err(StateError::NoCheckpoint(self.url().to_owned())),
        }
    }

    /// Deletes the checkpoints that never completed (no `_metadata`): what a failed
    /// attempt's in-flight checkpoints left behind.
    pub async fn remove_incomplete(&self) -> Result<(), StateError> {
        for (id, complete) in self.list().await? {
            if !complete {
                self.folder.delete_all(&checkpoint_folder(id)).await?;
            }
        }
        Ok(())
    }

    /// Deletes every checkpoint, and the job's folder unless something else is in it (a
    /// savepoint someone put there is not the job's to delete).
    pub async fn remove_all(&self) -> Result<(), StateError> {
        let (checkpoints, others): (Vec<_>, Vec<_>) = self
            .folder
            .folders()
            .await?
            .into_iter()
            .partition(|f| parse_checkpoint_folder(f).is_some());
        for folder in checkpoints {
            delete_snapshot(&self.folder.child(&folder)).await?;
        }
        if others.is_empty() {
            self.folder.delete_all("").await?;
        }
        Ok(())
    }
}

/// The folder name of checkpoint `id`.
pub fn checkpoint_folder(id: u64) -> String {
    format!("chk-{id}")
}

/// The checkpoint id of a `chk-<N>` folder name.
pub fn parse_checkpoint_folder(name: &str) -> Option<u64> {
    name.strip_prefix("chk-")?.parse().ok()
}

/// Completes a checkpoint or savepoint in `folder`: its `_metadata`, written after every
/// state file, alone marks it complete.
pub async fn complete(
    folder: &StateStore,
    metadata: &CheckpointMetadata,
) -> Result<(), StateError> {
    folder
        .put(METADATA_FILE, Bytes::from(metadata.to_bytes()))
        .await
}

/// Deletes a checkpoint's or savepoint's folder, `_metadata` first, so that an interrupted
/// delete never leaves a snapshot that looks complete but lacks state.
pub async fn delete_snapshot(folder: &StateStore) -> Result<(), StateError> {
    folder.delete_all(METADATA_FILE).await?;
    folder.delete_all("").await
}

/// `execution.checkpointing.num-retained`: which completed checkpoints are kept. Those of
/// earlier attempts count too, so that restarts do not pile checkpoints up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retained {
    /// Oldest first.
    kept: VecDeque<u64>,
    limit: usize,
}

impl Retained {
    /// Keeps at most `limit` (at least one) of `existing` (oldest first) and of those to
    /// come.
    pub fn new(existing: impl IntoIterator<Item = u64>, limit: u32) -> Self {
        Retained {
            kept: existing.into_iter().collect(),
            limit: limit.max(1) as usize,
        }
    }

    /// Checkpoint `id` completed (its `_metadata` is written).
    #[must_use]
    pub fn completed(&mut self, id: u64) -> Retain {
        if let Some(newer) = self.latest().filter(|&latest| latest > id) {
            return Retain::Subsumed { by: newer };
        }
        self.kept.push_back(id);
        let excess = self.kept.len().saturating_sub(self.limit);
        Retain::Keep {
            delete: self.kept.drain(..excess).collect(),
        }
    }

    /// The newest completed checkpoint.
    pub fn latest(&self) -> Option<u64> {
        self.kept.back().copied()
    }
}

/// What becomes of a checkpoint that completed, and of those before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retain {
    /// It is the newest: keep it, and delete these older ones (oldest first).
    Keep { delete: Vec<u64> },
    /// A newer checkpoint completed while its `_metadata` was being written: it is
    /// subsumed, to be deleted.
    Subsumed { by: u64 },
}

/// Deletes snapshot folders on the I/O runtime, one after the other in the order asked, so
/// that whoever asks (the coordinator) never waits for a store.
#[derive(Debug, Clone)]
pub struct Deleter {
    work: mpsc::UnboundedSender<Work>,
}

enum Work {
    Delete(StateStore),
    Flush(oneshot::Sender<()>),
}

impl Deleter {
    /// A deleter working on `runtime` until every clone of it is dropped.
    pub fn spawn(runtime: &tokio::runtime::Handle) -> Self {
        let (work, mut queue) = mpsc::unbounded_channel();
        runtime.spawn(async move {
            while let Some(work) = queue.recv().await {
                match work {
                    Work::Delete(folder) => {
                        if let Err(e) = delete_snapshot(&folder).await {
                            tracing::warn!("cannot delete {}: {e}", folder.url());
                        }
                    }
                    Work::Flush(done) => {
                        let _ = done.send(());
                    }
                }
            }
        });
        Deleter { work }
    }

    /// Deletes `folder` (`_metadata` first) after what was asked before.
    pub fn delete(&self, folder: StateStore) {
        let _ = self.work.send(Work::Delete(folder));
    }

    /// Waits until every delete asked for so far is done.
    pub async fn flush(&self) {
        let (done, finished) = oneshot::channel();
        if self.work.send(Work::Flush(done)).is_ok() {
            let _ = finished.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_newest_and_counts_earlier_attempts() {
        let keep = |delete: &[u64]| Retain::Keep {
            delete: delete.to_vec(),
        };
        let mut retained = Retained::new([3, 4], 2);
        assert_eq!(retained.completed(5), keep(&[3]));
        assert_eq!(retained.completed(6), keep(&[4]));
        assert_eq!(retained.latest(), Some(6));
        let mut one = Retained::new([], 0);
        assert_eq!(one.completed(1), keep(&[]), "at least one is kept");
        assert_eq!(one.completed(2), keep(&[1]));
    }

    #[test]
    fn a_checkpoint_completing_after_a_newer_one_is_subsumed() {
        let mut retained = Retained::new([], 3);
        assert_eq!(retained.completed(7), Retain::Keep { delete: vec![] });
        assert_eq!(retained.completed(6), Retain::Subsumed { by: 7 });
        assert_eq!(retained.latest(), Some(7));
    }

    #[test]
    fn folder_names_round_trip() {
        assert_eq!(parse_checkpoint_folder(&checkpoint_folder(42)), Some(42));
        assert_eq!(parse_checkpoint_folder("chk-"), None);
        assert_eq!(parse_checkpoint_folder("savepoint-ab"), None);
    }

    #[tokio::test]
    async fn lists_finds_the_latest_and_removes_what_is_incomplete() {
        let store = CheckpointStore::new(
            StateStore::open(
                &format!("memory://retain-{}", std::process::id()),
                &Default::default(),
            )
            .unwrap()
            .child("job"),
        );
        assert!(matches!(
            store.latest().await,
            Err(StateError::NotACheckpoint(_))
        ));
        for id in [1, 2, 3] {
            store
                .folder(id)
                .put("op/0.zst", Bytes::from_static(b"x"))
                .await
                .unwrap();
        }
        assert!(matches!(
            store.latest().await,
            Err(StateError::NoCheckpoint(_))
        ));
        for id in [1, 2] {
            store
                .folder(id)
                .put(METADATA_FILE, Bytes::from_static(b"{}"))
                .await
                .unwrap();
        }
        assert_eq!(
            store.list().await.unwrap(),
            [(1, true), (2, true), (3, false)]
        );
        assert_eq!(store.latest().await.unwrap().url(), store.folder(2).url());
        store.remove_incomplete().await.unwrap();
        assert_eq!(store.completed().await.unwrap(), [1, 2]);

        let deleter = Deleter::spawn(&tokio::runtime::Handle::current());
        deleter.delete(store.folder(1));
        deleter.flush().await;
        assert_eq!(store.completed().await.unwrap(), [2]);
        store.remove_all().await.unwrap();
        assert!(store.list().await.unwrap().is_empty());
    }
}
