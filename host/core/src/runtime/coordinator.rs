//! The checkpoint coordinator: triggers checkpoints at the sources (interval, min pause,
//! max concurrent), collects every subtask's acknowledgement, has `_metadata` written last,
//! notifies the subtasks, keeps `num-retained` checkpoints, expires slow ones, and fails the
//! job beyond `tolerable-failed-checkpoints`. When every source has reached the end of its
//! input it takes the final checkpoint, which commits the last output (FLIP-147).
//!
//! It keeps only the protocol's state: store I/O (writing `_metadata`, deletes) runs on the
//! I/O runtime, and its results come back as messages, so acknowledgements never wait
//! behind a store.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, Sender};
use tokio::sync::oneshot;

use super::{
    AfterSavepoint, Barrier, Checkpointing, CodeSwap, CompletedCheckpoint, Control,
    FailedCheckpoint, Job, JobMetrics, Report, Request, Stop, SubtaskCheckpoint, TaskId, TaskKind,
};
use crate::config::CheckpointConfig;
use crate::state::checkpoints::{Deleter, Retain, Retained, complete};
use crate::state::metadata::{CheckpointKind, FORMAT_VERSION, NodeState, SubtaskSnapshot};
use crate::state::{CheckpointMetadata, StateError, StateStore};

/// Longest the coordinator sleeps without looking at timers.
const TICK: Duration = Duration::from_millis(50);
/// Longest the coordinator waits, when the job ends, for uploads of abandoned checkpoints.
const LATE_UPLOADS: Duration = Duration::from_secs(10);

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

/// A checkpoint's `_metadata` written, or why not.
type Written = (u64, Result<(), StateError>);

/// What a pending checkpoint is for, beyond being a checkpoint.
enum Purpose {
    /// Periodic, or the final checkpoint of a bounded job.
    Checkpoint,
    /// A savepoint someone asked for, with what the job does after it.
    Savepoint {
        then: AfterSavepoint,
        reply: oneshot::Sender<Result<String, String>>,
    },
}

struct Pending {
    barrier: Barrier,
    purpose: Purpose,
    started: Instant,
    timestamp_ms: u64,
    acks: Vec<Option<SubtaskSnapshot>>,
    /// When each subtask's acknowledgement arrived, in ms since the Unix epoch.
    acked_ms: Vec<u64>,
    missing: usize,
}

/// A code swap waiting for every operator subtask to prepare it.
struct PendingSwap {
    checkpoint: u64,
    waiting: usize,
    /// Task index and reason, per subtask that could not prepare.
    failures: Vec<(usize, String)>,
    reply: oneshot::Sender<Result<(), String>>,
}

pub(crate) struct Coordinator {
    metrics: Arc<JobMetrics>,
    /// Every subtask in task-index order, with its kind.
    tasks: Vec<(TaskId, TaskKind)>,
    config: CheckpointConfig,
    checkpoints: Checkpointing,
    job_id: String,
    job_name: String,
    /// Recorded in every checkpoint: key groups are fixed for a job's life.
    max_parallelism: u32,
    controls: Vec<Sender<Control>>,
    reports: Receiver<Report>,
    requests: Receiver<Request>,
    stop: Stop,
    next_id: u64,
    pending: BTreeMap<u64, Pending>,
    /// Acknowledged by every subtask, their `_metadata` being written.
    finalizing: BTreeMap<u64, Pending>,
    /// Where `_metadata` writes report.
    written: (Sender<Written>, Receiver<Written>),
    deleter: Deleter,
    /// Failed or subsumed checkpoints whose late uploads must be deleted when they arrive,
    /// with how many subtasks have yet to report.
    abandoned: HashMap<u64, (StateStore, usize)>,
    swap: Option<PendingSwap>,
    retained: Retained,
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
            .map(|(id, kind, _)| (id.clone(), *kind))
            .collect();
        Coordinator {
            metrics,
            next_trigger: config.interval.map(|interval| Instant::now() + interval),
            checkpoints: job.checkpoints.clone(),
            job_id: job.id.clone(),
            job_name: job.graph.name.clone(),
            max_parallelism: job.graph.max_parallelism,
            next_id: job.checkpoints.first_id,
            config,
            tasks,
            controls,
            reports,
            requests: job
                .requests
                .clone()
                .unwrap_or_else(crossbeam_channel::never),
            stop,
            pending: BTreeMap::new(),
            finalizing: BTreeMap::new(),
            written: crossbeam_channel::unbounded(),
            deleter: Deleter::spawn(&job.checkpoints.runtime),
            abandoned: HashMap::new(),
            swap: None,
            retained: Retained::new(
                completed_in_store(&job.checkpoints),
                job.checkpoints.config.num_retained,
            ),
            consecutive_failures: 0,
            last_completed: None,
            sources_finished: 0,
            final_triggered: false,
        }
    }

    /// Runs until the final checkpoint completes or the subtasks are gone; then abandons
    /// what is still pending and cleans up after uploads that finish late.
    pub(crate) fn run(mut self) -> Result<(), CoordinatorError> {
        let result = self.coordinate();
        if result.is_err() {
            self.stop.fail();
        }
        let pending = std::mem::take(&mut self.pending);
        self.metrics.checkpoints(|stats| stats.in_progress = 0);
        for (_, pending) in pending {
            if let Purpose::Savepoint { reply, .. } = self.abandon(pending, "the job stopped") {
                let _ = reply.send(Err("the job stopped before the savepoint completed".into()));
            }
        }
        // Uploads hold a report sender: the channel closes when the last one is done, and
        // no late report can come after. A `_metadata` still being written completes its
        // checkpoint or fails it.
        let deadline = Instant::now() + LATE_UPLOADS;
        let mut reports = Some(self.reports.clone());
        let never = crossbeam_channel::never();
        while !self.finalizing.is_empty() || (reports.is_some() && !self.abandoned.is_empty()) {
            let wait = deadline.saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(reports.as_ref().unwrap_or(&never)) -> report => match report {
                    Ok(Report::Ack { checkpoint, .. } | Report::Decline { checkpoint, .. }) => {
                        self.late(checkpoint)
                    }
                    Ok(_) => {}
                    Err(_) => reports = None,
                },
                recv(self.written.1) -> written => {
                    if let Ok((checkpoint, result)) = written {
                        let _ = self.written_metadata(checkpoint, result);
                    }
                },
                default(wait) => break,
            }
        }
        // Deletes asked for are done before the job's retention or a restart looks.
        let left = deadline.saturating_duration_since(Instant::now());
        let deleter = &self.deleter;
        let _ = self
            .checkpoints
            .runtime
            .block_on(async { tokio::time::timeout(left, deleter.flush()).await });
        result
    }

    fn coordinate(&mut self) -> Result<(), CoordinatorError> {
        let sources = self.count(TaskKind::Source);
        loop {
            crossbeam_channel::select! {
                recv(self.reports) -> report => match report {
                    Ok(report) => {
                        if self.on_report(report)? {
                            return Ok(());
                        }
                    }
                    // Every subtask has stopped: the job failed or was canceled.
                    Err(_) => return Ok(()),
                },
                recv(self.requests) -> request => {
                    if let Ok(request) = request {
                        self.on_request(request);
                    }
                },
                recv(self.written.1) -> written => {
                    if let Ok((checkpoint, result)) = written
                        && self.written_metadata(checkpoint, result)?
                    {
                        return Ok(());
                    }
                },
                default(TICK) => {}
            }
            self.expire()?;
            // The job is failing or canceled: stop; subtasks waiting for a checkpoint to
            // complete see the coordinator gone and stop too.
            if self.stop.requested() {
                return Ok(());
            }
            if self.sources_finished == sources
                && !self.final_triggered
                && self.pending.is_empty()
                && self.finalizing.is_empty()
            {
                self.final_triggered = true;
                let folder = self.checkpoints.folder(self.next_id);
                self.trigger(folder, Purpose::Checkpoint, Some(true), None);
            } else if self.periodic_due() {
                let folder = self.checkpoints.folder(self.next_id);
                self.trigger(folder, Purpose::Checkpoint, None, None);
            }
            let in_progress = self.in_progress() as u64;
            self.metrics
                .checkpoints(|stats| stats.in_progress = in_progress);
        }
    }

    fn count(&self, kind: TaskKind) -> usize {
        self.tasks.iter().filter(|(_, k)| *k == kind).count()
    }

    /// Returns whether the job's last checkpoint completed (the job is done).
    fn on_report(&mut self, report: Report) -> Result<bool, CoordinatorError> {
        match report {
            Report::Ack {
                checkpoint,
                task,
                snapshot,
            } => return self.acknowledge(checkpoint, task, snapshot),
            Report::Decline {
                checkpoint,
                task,
                reason,
            } => {
                let Some(pending) = self.pending.get_mut(&checkpoint) else {
                    self.late(checkpoint);
                    return Ok(false);
                };
                pending.missing -= 1;
                let reason = format!("{} could not store its state: {reason}", self.tasks[task].0);
                self.fail(checkpoint, reason)?;
            }
            Report::SourceFinished => self.sources_finished += 1,
            Report::SwapPrepared {
                checkpoint,
                task,
                result,
            } => self.swap_prepared(checkpoint, task, result),
        }
        Ok(false)
    }

    fn on_request(&mut self, request: Request) {
        // Once the stream is ending, no barrier can follow the final one.
        if self.final_triggered {
            let refusal = "the job is finishing; its final checkpoint is under way".to_owned();
            match request {
                Request::Savepoint { reply, .. } => drop(reply.send(Err(refusal))),
                Request::Swap { reply, .. } => drop(reply.send(Err(refusal))),
            }
            return;
        }
        match request {
            Request::Savepoint {
                folder,
                then,
                reply,
            } => {
                let ends = match then {
                    AfterSavepoint::Stop { drain } => {
                        self.final_triggered = true;
                        // Operators whose input has ended finish, drained or not.
                        let ended = self.sources_finished == self.count(TaskKind::Source);
                        Some(drain || ended)
                    }
                    AfterSavepoint::Continue | AfterSavepoint::Cancel => None,
                };
                self.trigger(Some(folder), Purpose::Savepoint { then, reply }, ends, None);
            }
            Request::Swap { swap, reply } => {
                let operators = self.count(TaskKind::Operator);
                if self.swap.is_some() {
                    let _ = reply.send(Err("another code swap is under way".into()));
                } else if operators == 0 {
                    let _ = reply.send(Err("the job has no operators to swap".into()));
                } else {
                    let folder = self.checkpoints.folder(self.next_id);
                    let checkpoint = self.trigger(folder, Purpose::Checkpoint, None, Some(swap));
                    self.swap = Some(PendingSwap {
                        checkpoint,
                        waiting: operators,
                        failures: Vec::new(),
                        reply,
                    });
                }
            }
        }
    }

    /// Checkpoints under way: acknowledging, or having `_metadata` written.
    fn in_progress(&self) -> usize {
        self.pending.len() + self.finalizing.len()
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
            && self.in_progress() < self.config.max_concurrent as usize
    }

    /// Starts checkpoint `next_id` at the sources. `ends` is `Some(drain)` when the stream
    /// ends after it. Savepoints and swaps are forced: they ignore the periodic gates.
    fn trigger(
        &mut self,
        folder: Option<StateStore>,
        purpose: Purpose,
        ends: Option<bool>,
        swap: Option<Arc<CodeSwap>>,
    ) -> u64 {
        let barrier = Barrier {
            checkpoint: self.next_id,
            folder,
            ends_stream: ends.is_some(),
            drain: ends.unwrap_or(false),
            swap,
        };
        self.next_id += 1;
        self.metrics.set_next_checkpoint_id(self.next_id);
        if matches!(purpose, Purpose::Checkpoint) {
            self.next_trigger = self
                .config
                .interval
                .map(|interval| Instant::now() + interval);
        }
        tracing::debug!(
            checkpoint = barrier.checkpoint,
            ends_stream = barrier.ends_stream,
            savepoint = !matches!(purpose, Purpose::Checkpoint),
            swap = barrier.swap.is_some(),
            "triggering checkpoint"
        );
        let id = barrier.checkpoint;
        for (control, (_, kind)) in self.controls.iter().zip(&self.tasks) {
            if *kind == TaskKind::Source {
                let _ = control.send(Control::Trigger(barrier.clone()));
            }
        }
        self.pending.insert(
            id,
            Pending {
                barrier,
                purpose,
                started: Instant::now(),
                timestamp_ms: SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_millis() as u64),
                acks: vec![None; self.tasks.len()],
                acked_ms: vec![0; self.tasks.len()],
                missing: self.tasks.len(),
            },
        );
        id
    }

    /// Records an acknowledgement; completes the checkpoint when it was the last one.
    /// Returns whether the job's last checkpoint completed.
    fn acknowledge(
        &mut self,
        checkpoint: u64,
        task: usize,
        snapshot: SubtaskSnapshot,
    ) -> Result<bool, CoordinatorError> {
        let Some(pending) = self.pending.get_mut(&checkpoint) else {
            self.late(checkpoint);
            return Ok(false);
        };
        pending.acked_ms[task] = crate::clock::now_ms();
        if pending.acks[task].replace(snapshot).is_none() {
            pending.missing -= 1;
        }
        if pending.missing > 0 {
            return Ok(false);
        }
        let pending = self.pending.remove(&checkpoint).expect("present above");
        let Some(folder) = pending.barrier.folder.clone() else {
            // Not stored (checkpointing off): complete at once.
            return self.finish(pending);
        };
        let metadata = self.metadata(&pending);
        let written = self.written.0.clone();
        self.checkpoints.runtime.spawn(async move {
            let _ = written.send((checkpoint, complete(&folder, &metadata).await));
        });
        self.finalizing.insert(checkpoint, pending);
        Ok(false)
    }

    /// Checkpoint `checkpoint`'s `_metadata` was written, or could not be. Returns whether
    /// the job's last checkpoint completed.
    fn written_metadata(
        &mut self,
        checkpoint: u64,
        result: Result<(), StateError>,
    ) -> Result<bool, CoordinatorError> {
        let Some(pending) = self.finalizing.remove(&checkpoint) else {
            return Ok(false);
        };
        match result {
            Ok(()) => self.finish(pending),
            Err(e) => {
                self.fail_removed(pending, e.to_string())?;
                Ok(false)
            }
        }
    }

    /// A checkpoint or savepoint is complete: record it, and act on it. Returns whether it
    /// was the job's last.
    fn finish(&mut self, pending: Pending) -> Result<bool, CoordinatorError> {
        let checkpoint = pending.barrier.checkpoint;
        let mut delete = Vec::new();
        if matches!(pending.purpose, Purpose::Checkpoint) {
            match self.retained.completed(checkpoint) {
                Retain::Keep { delete: older } => delete = older,
                Retain::Subsumed { by } => {
                    self.abandon(pending, &format!("subsumed by checkpoint {by}"));
                    return Ok(false);
                }
            }
        }
        let ends_stream = pending.barrier.ends_stream;
        let completed = statistics(&pending, &self.tasks);
        self.metrics.checkpoints(|stats| stats.record(completed));
        tracing::info!(
            checkpoint,
            duration_ms = pending.started.elapsed().as_millis() as u64,
            "{} complete",
            match pending.purpose {
                Purpose::Checkpoint => "checkpoint",
                Purpose::Savepoint { .. } => "savepoint",
            }
        );
        match pending.purpose {
            Purpose::Checkpoint => self.complete_checkpoint(checkpoint, delete),
            Purpose::Savepoint { then, reply } => {
                let location = pending.barrier.folder.as_ref().map_or_else(
                    || "(not stored)".to_owned(),
                    |folder| folder.url().to_owned(),
                );
                // Like Flink, only a savepoint that ends the job commits side effects; an
                // intermediate one leaves them to the next checkpoint.
                if ends_stream {
                    self.notify_complete(checkpoint);
                }
                let _ = reply.send(Ok(location));
                if then == AfterSavepoint::Cancel {
                    self.stop.cancel();
                }
            }
        }
        Ok(ends_stream)
    }

    fn notify_complete(&self, checkpoint: u64) {
        for control in &self.controls {
            let _ = control.send(Control::Complete(checkpoint));
        }
    }

    /// A checkpoint (not a savepoint) completed: notify, subsume older pending checkpoints,
    /// delete those beyond `num-retained`.
    fn complete_checkpoint(&mut self, checkpoint: u64, delete: Vec<u64>) {
        self.consecutive_failures = 0;
        self.last_completed = Some(Instant::now());
        self.notify_complete(checkpoint);
        let older: Vec<u64> = self
            .pending
            .range(..checkpoint)
            .filter(|(_, p)| matches!(p.purpose, Purpose::Checkpoint))
            .map(|(id, _)| *id)
            .collect();
        for id in older {
            if let Some(subsumed) = self.pending.remove(&id) {
                self.abandon(subsumed, &format!("subsumed by checkpoint {checkpoint}"));
            }
        }
        for folder in delete
            .into_iter()
            .filter_map(|id| self.checkpoints.folder(id))
        {
            self.delete(&folder);
        }
    }

    /// The `_metadata` of a checkpoint every subtask acknowledged.
    fn metadata(&self, pending: &Pending) -> CheckpointMetadata {
        let mut nodes: Vec<NodeState> = Vec::new();
        for ((task, _), ack) in self.tasks.iter().zip(&pending.acks) {
            let snapshot = ack.clone().expect("every subtask acknowledged");
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
                .push(snapshot);
        }
        CheckpointMetadata {
            format: FORMAT_VERSION,
            kind: match pending.purpose {
                Purpose::Checkpoint => CheckpointKind::Checkpoint,
                Purpose::Savepoint { .. } => CheckpointKind::Savepoint,
            },
            job_id: self.job_id.clone(),
            job_name: self.job_name.clone(),
            checkpoint_id: pending.barrier.checkpoint,
            timestamp_ms: pending.timestamp_ms,
            mode: self.config.mode,
            max_parallelism: Some(self.max_parallelism),
            nodes,
        }
    }

    /// An operator subtask prepared (or failed to prepare) the pending swap; when all
    /// have, tell them all to switch or to keep the old code, and answer the request.
    fn swap_prepared(&mut self, checkpoint: u64, task: usize, result: Result<(), String>) {
        let Some(swap) = self.swap.as_mut().filter(|s| s.checkpoint == checkpoint) else {
            return;
        };
        if let Err(reason) = result {
            swap.failures.push((task, reason));
        }
        swap.waiting -= 1;
        if swap.waiting > 0 {
            return;
        }
        let mut swap = self.swap.take().expect("present above");
        let commit = swap.failures.is_empty();
        for (control, (_, kind)) in self.controls.iter().zip(&self.tasks) {
            if *kind == TaskKind::Operator {
                let _ = control.send(Control::SwapDecision { checkpoint, commit });
            }
        }
        if commit {
            tracing::info!("swapped every operator to the new code at checkpoint {checkpoint}");
            let _ = swap.reply.send(Ok(()));
        } else {
            // Subtasks of one operator usually fail alike: one line per distinct reason.
            swap.failures.sort();
            let mut reasons: Vec<(Vec<String>, String)> = Vec::new();
            for (task, reason) in swap.failures {
                let task = self.tasks[task].0.to_string();
                match reasons.iter_mut().find(|(_, r)| *r == reason) {
                    Some((tasks, _)) => tasks.push(task),
                    None => reasons.push((vec![task], reason)),
                }
            }
            let reason = reasons
                .iter()
                .map(|(tasks, reason)| format!("{}: {reason}", tasks.join(", ")))
                .collect::<Vec<_>>()
                .join("; ");
            tracing::warn!("code swap rolled back, the old code keeps running: {reason}");
            let _ = swap.reply.send(Err(reason));
        }
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
        self.fail_removed(pending, reason)
    }

    /// A failed savepoint fails its request (and, if it was to end the stream, the job);
    /// a failed checkpoint counts towards `tolerable-failed-checkpoints`.
    fn fail_removed(&mut self, pending: Pending, reason: String) -> Result<(), CoordinatorError> {
        let checkpoint = pending.barrier.checkpoint;
        let ends_stream = pending.barrier.ends_stream;
        let is_checkpoint = matches!(pending.purpose, Purpose::Checkpoint);
        tracing::warn!(
            "{} {checkpoint} failed: {reason}",
            if is_checkpoint {
                "checkpoint"
            } else {
                "savepoint"
            }
        );
        if let Purpose::Savepoint { reply, .. } = self.abandon(pending, &reason) {
            let _ = reply.send(Err(reason.clone()));
        }
        if ends_stream {
            return Err(CoordinatorError::FinalFailed(reason));
        }
        if !is_checkpoint {
            return Ok(());
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

    /// Counts a checkpoint that will not complete as failed (as Flink does, subsumed ones
    /// too), deletes what it stored so far, and remembers its folder for the uploads still
    /// under way. Returns its purpose.
    fn abandon(&mut self, pending: Pending, reason: &str) -> Purpose {
        let failed = FailedCheckpoint {
            id: pending.barrier.checkpoint,
            is_savepoint: !matches!(pending.purpose, Purpose::Checkpoint),
            timestamp_ms: pending.timestamp_ms,
            failed_ms: crate::clock::now_ms(),
            reason: reason.to_owned(),
        };
        self.metrics.checkpoints(|stats| {
            stats.failed += 1;
            stats.latest_failed = Some(failed);
        });
        if let Some(folder) = pending.barrier.folder {
            self.delete(&folder);
            if pending.missing > 0 {
                self.abandoned
                    .insert(pending.barrier.checkpoint, (folder, pending.missing));
            }
        }
        pending.purpose
    }

    /// A report for an abandoned checkpoint: delete what its upload wrote.
    fn late(&mut self, checkpoint: u64) {
        let Some((folder, missing)) = self.abandoned.get_mut(&checkpoint) else {
            return;
        };
        *missing -= 1;
        let folder = folder.clone();
        if *missing == 0 {
            self.abandoned.remove(&checkpoint);
        }
        self.delete(&folder);
    }

    fn delete(&self, folder: &StateStore) {
        self.deleter.delete(folder.clone());
    }
}

fn statistics(pending: &Pending, tasks: &[(TaskId, TaskKind)]) -> CompletedCheckpoint {
    let mut stats = CompletedCheckpoint {
        id: pending.barrier.checkpoint,
        is_savepoint: matches!(pending.purpose, Purpose::Savepoint { .. }),
        timestamp_ms: pending.timestamp_ms,
        location: pending.barrier.folder.as_ref().map(|f| f.url().to_owned()),
        duration: pending.started.elapsed(),
        raw_bytes: 0,
        stored_bytes: 0,
        max_sync: Duration::ZERO,
        max_async: Duration::ZERO,
        subtasks: Vec::with_capacity(tasks.len()),
    };
    let acks = pending.acks.iter().zip(&pending.acked_ms).zip(tasks);
    for ((snapshot, acked_ms), (task, _)) in
        acks.filter_map(|((ack, at), task)| Some(((ack.as_ref()?, at), task)))
    {
        let subtask = &snapshot.stats;
        let (raw, stored) = snapshot.state.sizes();
        stats.raw_bytes += raw;
        stats.stored_bytes += stored;
        stats.subtasks.push(SubtaskCheckpoint {
            task: task.clone(),
            acked_ms: *acked_ms,
            raw_bytes: raw,
            stored_bytes: stored,
            stats: *subtask,
        });
        stats.max_sync = stats
            .max_sync
            .max(Duration::from_secs_f64(subtask.sync_ms / 1e3));
        stats.max_async = stats
            .max_async
            .max(Duration::from_secs_f64(subtask.async_ms / 1e3));
    }
    stats
}

/// The completed checkpoints already in the job's folder, oldest first: earlier attempts'
/// (the one restored among them) count towards `num-retained` as this attempt's do, so
/// that restarts do not pile checkpoints up.
fn completed_in_store(checkpoints: &Checkpointing) -> Vec<u64> {
    let Some(storage) = &checkpoints.storage else {
        return Vec::new();
    };
    checkpoints
        .runtime
        .block_on(storage.completed())
        .unwrap_or_else(|e| {
            tracing::warn!(
                "cannot list the job's earlier checkpoints ({e}); retention applies to this \
                 attempt's only"
            );
            Vec::new()
        })
}
