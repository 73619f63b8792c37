//! The checkpoint coordinator: triggers checkpoints at the sources (interval, min pause,
//! max concurrent), collects every subtask's acknowledgement, writes `_metadata` last,
//! notifies the subtasks, keeps `num-retained` checkpoints, expires slow ones, and fails the
//! job beyond `tolerable-failed-checkpoints`. When every source has reached the end of its
//! input it takes the final checkpoint, which commits the last output (FLIP-147).

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::{
    Barrier, CompletedCheckpoint, Control, Job, JobMetrics, Report, Stop, TaskId, TaskKind,
};
use crate::config::CheckpointConfig;
use crate::state::metadata::{
    CheckpointKind, FORMAT_VERSION, NodeState, SnapshotStats, SubtaskSnapshot, SubtaskState,
};
use crate::state::{CheckpointMetadata, METADATA_FILE, StateError, StateStore, checkpoint_folder};

/// Longest the coordinator sleeps without looking at timers.
const TICK: Duration = Duration::from_millis(50);

#[derive(Debug, thiserror::Error)]
pub enum CoordinatorError {
    #[error(
        "{failures} consecutive checkpoints failed, more than \
         execution.checkpointing.tolerable-failed-checkpoints ({tolerable}); last: {reason}"
    )]
    TooManyFailures {
        failures: u32,
        tolerable: u32,
        reason: String,
    },
    #[error("the final checkpoint failed: {0}")]
    FinalFailed(String),
    #[error("the checkpoint coordinator panicked")]
    Panicked,
}

struct Pending {
    barrier: Barrier,
    started: Instant,
    timestamp_ms: u64,
    acks: Vec<Option<(SubtaskState, SnapshotStats)>>,
    missing: usize,
}

pub(crate) struct Coordinator {
    metrics: Arc<JobMetrics>,
    /// Every subtask in task-index order, flagged when it is a source.
    tasks: Vec<(TaskId, bool)>,
    config: CheckpointConfig,
    storage: Option<StateStore>,
    runtime: tokio::runtime::Handle,
    job_id: String,
    job_name: String,
    controls: Vec<Sender<Control>>,
    reports: Receiver<Report>,
    stop: Stop,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    completed: VecDeque<u64>,
    consecutive_failures: u32,
    last_completed: Option<Instant>,
    next_trigger: Option<Instant>,
    sources_finished: usize,
    final_triggered: bool,
}

impl Coordinator {
    pub(crate) fn new(
        job: &Job,
        metrics: Arc<JobMetrics>,
        controls: Vec<Sender<Control>>,
        reports: Receiver<Report>,
        stop: Stop,
    ) -> Self {
        let config = job.checkpoints.config.clone();
        let tasks = metrics
            .tasks
            .iter()
            .map(|(id, kind, _)| (id.clone(), *kind == TaskKind::Source))
            .collect();
        Coordinator {
            metrics,
            next_trigger: config.interval.map(|interval| Instant::now() + interval),
            storage: job.checkpoints.storage.clone(),
            runtime: job.checkpoints.runtime.clone(),
            job_id: job.id.clone(),
            job_name: job.graph.name.clone(),
            next_id: job.checkpoints.first_id,
            config,
            tasks,
            controls,
            reports,
            stop,
            pending: BTreeMap::new(),
            completed: VecDeque::new(),
            consecutive_failures: 0,
            last_completed: None,
            sources_finished: 0,
            final_triggered: false,
        }
    }

    /// Runs until the final checkpoint completes or the subtasks are gone.
    pub(crate) fn run(mut self) -> Result<(), CoordinatorError> {
        let result = self.coordinate();
        if result.is_err() {
            self.stop.fail();
        }
        result
    }

    fn coordinate(&mut self) -> Result<(), CoordinatorError> {
        let sources = self
            .tasks
            .iter()
            .filter(|(_, is_source)| *is_source)
            .count();
        loop {
            match self.reports.recv_timeout(TICK) {
                Ok(Report::Ack {
                    checkpoint,
                    task,
                    state,
                    stats,
                }) => {
                    if self.acknowledge(checkpoint, task, state, stats)? {
                        return Ok(());
                    }
                }
                Ok(Report::Decline {
                    checkpoint,
                    task,
                    reason,
                }) => {
                    let reason =
                        format!("{} could not store its state: {reason}", self.tasks[task].0);
                    self.fail(checkpoint, reason)?;
                }
                Ok(Report::SourceFinished) => self.sources_finished += 1,
                Err(RecvTimeoutError::Timeout) => {}
                // Every subtask has stopped: the job failed or was canceled.
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
            self.expire()?;
            // The job is failing or canceled: stop; subtasks waiting for a checkpoint to
            // complete see the coordinator gone and stop too.
            if self.stop.requested() {
                return Ok(());
            }
            if self.sources_finished == sources && !self.final_triggered && self.pending.is_empty()
            {
                self.final_triggered = true;
                self.trigger(true);
            } else if self.periodic_due() {
                self.trigger(false);
            }
        }
    }

    fn periodic_due(&self) -> bool {
        let Some(next) = self.next_trigger else {
            return false;
        };
        let paused = self
            .last_completed
            .is_some_and(|at| at.elapsed() < self.config.min_pause);
        !self.final_triggered
            && Instant::now() >= next
            && !paused
            && self.pending.len() < self.config.max_concurrent as usize
    }

    fn trigger(&mut self, is_final: bool) {
        let barrier = Barrier {
            checkpoint: self.next_id,
            is_final,
        };
        self.next_id += 1;
        self.metrics.set_next_checkpoint_id(self.next_id);
        self.next_trigger = self
            .config
            .interval
            .map(|interval| Instant::now() + interval);
        tracing::debug!(
            checkpoint = barrier.checkpoint,
            is_final,
            "triggering checkpoint"
        );
        self.pending.insert(
            barrier.checkpoint,
            Pending {
                barrier,
                started: Instant::now(),
                timestamp_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                acks: vec![None; self.tasks.len()],
                missing: self.tasks.len(),
            },
        );
        for (control, (_, is_source)) in self.controls.iter().zip(&self.tasks) {
            if *is_source {
                let _ = control.send(Control::Trigger(barrier));
            }
        }
    }

    /// Records an acknowledgement; completes the checkpoint when it was the last one.
    /// Returns whether the final checkpoint completed.
    fn acknowledge(
        &mut self,
        checkpoint: u64,
        task: usize,
        state: SubtaskState,
        stats: SnapshotStats,
    ) -> Result<bool, CoordinatorError> {
        let Some(pending) = self.pending.get_mut(&checkpoint) else {
            // Late: the checkpoint expired or was subsumed; drop what the upload wrote.
            self.delete(checkpoint);
            return Ok(false);
        };
        if pending.acks[task].replace((state, stats)).is_none() {
            pending.missing -= 1;
        }
        if pending.missing > 0 {
            return Ok(false);
        }
        let pending = self.pending.remove(&checkpoint).expect("present above");
        let is_final = pending.barrier.is_final;
        if let Err(e) = self.write_metadata(&pending) {
            self.fail_removed(checkpoint, is_final, e.to_string())?;
            return Ok(false);
        }
        self.consecutive_failures = 0;
        self.last_completed = Some(Instant::now());
        self.metrics.record_checkpoint(statistics(&pending));
        tracing::info!(
            checkpoint,
            duration_ms = pending.started.elapsed().as_millis() as u64,
            "checkpoint complete"
        );
        for control in &self.controls {
            let _ = control.send(Control::Complete(checkpoint));
        }
        // Older pending checkpoints are subsumed by this one.
        let older: Vec<u64> = self
            .pending
            .range(..checkpoint)
            .map(|(id, _)| *id)
            .collect();
        for id in older {
            self.pending.remove(&id);
            self.delete(id);
        }
        if self.storage.is_some() {
            self.completed.push_back(checkpoint);
            while self.completed.len() > self.config.num_retained as usize {
                if let Some(oldest) = self.completed.pop_front() {
                    self.delete(oldest);
                }
            }
        }
        Ok(is_final)
    }

    fn write_metadata(&self, pending: &Pending) -> Result<(), StateError> {
        let Some(storage) = &self.storage else {
            return Ok(());
        };
        let mut nodes: Vec<NodeState> = Vec::new();
        for ((task, _), ack) in self.tasks.iter().zip(&pending.acks) {
            let (state, stats) = ack.clone().expect("every subtask acknowledged");
            if nodes.last().is_none_or(|n| n.uid != task.uid) {
                nodes.push(NodeState {
                    uid: task.uid.clone(),
                    parallelism: task.parallelism,
                    subtasks: Vec::new(),
                });
            }
            nodes
                .last_mut()
                .expect("pushed above")
                .subtasks
                .push(SubtaskSnapshot { state, stats });
        }
        let metadata = CheckpointMetadata {
            format: FORMAT_VERSION,
            kind: CheckpointKind::Checkpoint,
            job_id: self.job_id.clone(),
            job_name: self.job_name.clone(),
            checkpoint_id: pending.barrier.checkpoint,
            timestamp_ms: pending.timestamp_ms,
            mode: self.config.mode,
            nodes,
        };
        let folder = storage.child(&checkpoint_folder(pending.barrier.checkpoint));
        self.runtime
            .block_on(folder.put(METADATA_FILE, Bytes::from(metadata.to_bytes())))
    }

    /// Aborts checkpoints that have run past the timeout.
    fn expire(&mut self) -> Result<(), CoordinatorError> {
        let timeout = self.config.timeout;
        let expired: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| p.started.elapsed() > timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in expired {
            self.fail(
                id,
                format!("expired after execution.checkpointing.timeout ({timeout:?})"),
            )?;
        }
        Ok(())
    }

    fn fail(&mut self, checkpoint: u64, reason: String) -> Result<(), CoordinatorError> {
        let Some(pending) = self.pending.remove(&checkpoint) else {
            return Ok(());
        };
        self.fail_removed(checkpoint, pending.barrier.is_final, reason)
    }

    fn fail_removed(
        &mut self,
        checkpoint: u64,
        is_final: bool,
        reason: String,
    ) -> Result<(), CoordinatorError> {
        tracing::warn!("checkpoint {checkpoint} failed: {reason}");
        self.delete(checkpoint);
        if is_final {
            return Err(CoordinatorError::FinalFailed(reason));
        }
        self.consecutive_failures += 1;
        if self.consecutive_failures > self.config.tolerable_failures {
            return Err(CoordinatorError::TooManyFailures {
                failures: self.consecutive_failures,
                tolerable: self.config.tolerable_failures,
                reason,
            });
        }
        Ok(())
    }

    /// Deletes a checkpoint's folder: its `_metadata` first, so that an interrupted delete
    /// never leaves a checkpoint that looks complete but lacks state.
    fn delete(&self, checkpoint: u64) {
        if let Some(storage) = &self.storage {
            let folder = checkpoint_folder(checkpoint);
            if let Err(e) = self.runtime.block_on(delete_checkpoint(storage, &folder)) {
                tracing::warn!("cannot delete checkpoint {checkpoint}: {e}");
            }
        }
    }
}

fn statistics(pending: &Pending) -> CompletedCheckpoint {
    let mut stats = CompletedCheckpoint {
        id: pending.barrier.checkpoint,
        duration: pending.started.elapsed(),
        raw_bytes: 0,
        stored_bytes: 0,
        max_sync: Duration::ZERO,
        max_async: Duration::ZERO,
    };
    for (state, subtask) in pending.acks.iter().flatten() {
        if let SubtaskState::Operator { file: Some(file) } = state {
            stats.raw_bytes += file.raw_size;
            stats.stored_bytes += file.stored_size;
        }
        stats.max_sync = stats
            .max_sync
            .max(Duration::from_secs_f64(subtask.sync_ms / 1e3));
        stats.max_async = stats
            .max_async
            .max(Duration::from_secs_f64(subtask.async_ms / 1e3));
    }
    stats
}

/// Deletes checkpoint folder `folder` of a job's checkpoint folder, `_metadata` first.
pub(crate) async fn delete_checkpoint(
    storage: &StateStore,
    folder: &str,
) -> Result<(), StateError> {
    let checkpoint = storage.child(folder);
    checkpoint.delete_all(METADATA_FILE).await?;
    storage.delete_all(folder).await
}
