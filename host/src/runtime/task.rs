//! The loop each subtask runs, by role, including its part of checkpoints: sources inject
//! barriers and report positions, operators snapshot their guest, sinks pre-commit; every
//! subtask acknowledges to the coordinator and acts on completed checkpoints.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_sdk::{Context, Emitter};
use crossbeam_channel::{RecvTimeoutError, Sender};

use super::inputs::{Event, Inputs};
use super::output::Output;
use super::{Barrier, Checkpointing, Control, Report, Stop, TaskError, TaskId, TaskMetrics};
use crate::connectors::{Poll, Sink, SinkSpec, SourceSpec};
use crate::graph::Role;
use crate::operator::{OperatorFactory, OperatorInstance};
use crate::state::blob;
use crate::state::metadata::{SnapshotStats, StateFile, SubtaskState};
use crate::state::{StateError, checkpoint_folder, state_file};

/// How often a waiting source looks whether it should stop.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// Everything one subtask owns.
pub(crate) struct Task {
    pub(crate) job_id: String,
    /// Position among all subtasks of the job, as the coordinator counts them.
    pub(crate) index: usize,
    pub(crate) id: TaskId,
    pub(crate) role: Role,
    pub(crate) inputs: Inputs,
    pub(crate) output: Output,
    pub(crate) metrics: Arc<TaskMetrics>,
    pub(crate) operators: Arc<dyn OperatorFactory>,
    pub(crate) stop: Stop,
    pub(crate) attempt: u32,
    pub(crate) checkpoints: Checkpointing,
    pub(crate) reports: Sender<Report>,
    /// When resuming: this subtask's state, and its state file's stored bytes (verified).
    pub(crate) restored: Option<(SubtaskState, Option<Bytes>)>,
}

impl Task {
    /// Runs the subtask to its end; a panic in host code becomes a task failure.
    pub(crate) fn run(self) -> Result<(), TaskError> {
        catch_unwind(AssertUnwindSafe(|| self.run_role())).unwrap_or_else(|panic| {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown panic".to_owned());
            Err(TaskError::Panic(message))
        })
    }

    fn run_role(mut self) -> Result<(), TaskError> {
        match self.role.clone() {
            Role::Source(spec) => self.run_source(&spec),
            Role::Operator { name, options } => {
                let ctx = Context {
                    job_id: self.job_id.clone(),
                    operator_uid: self.id.uid.clone(),
                    subtask: self.id.subtask,
                    parallelism: self.id.parallelism,
                    attempt: self.attempt,
                    options,
                };
                let mut operator = self.operators.open(&ctx, &name)?;
                if let Some(state) = self.restored_operator_state()? {
                    operator.restore(state)?;
                }
                self.run_operator(operator.as_mut())
            }
            Role::Sink(spec) => {
                let mut sink = self.open_sink(&spec)?;
                let result = self.run_sink(sink.as_mut());
                if result.is_err() {
                    sink.abort();
                }
                result
            }
        }
    }

    fn run_source(&mut self, spec: &SourceSpec) -> Result<(), TaskError> {
        let position = match &self.restored {
            Some((SubtaskState::Source { position }, _)) => Some(position),
            _ => None,
        };
        let mut source = spec.open(self.id.subtask, self.id.parallelism, position)?;
        let mut batch = Emitter::default();
        // Read until the input ends, injecting barriers when the coordinator says.
        loop {
            while let Ok(control) = self.inputs.control().try_recv() {
                if let Control::Trigger(barrier) = control {
                    self.inject(barrier, &source.position())?;
                }
            }
            if self.stop.requested() {
                return Err(TaskError::Canceled);
            }
            let poll = source.poll(&mut batch)?;
            let records = batch.take();
            self.metrics
                .records_out
                .fetch_add(records.len() as u64, Ordering::Relaxed);
            self.output.emit(records)?;
            match poll {
                Poll::Ready => {}
                Poll::Idle(wait) => {
                    self.output.flush()?;
                    // Wait for the rate limit, or less if the coordinator calls.
                    if let Ok(Control::Trigger(barrier)) = self.inputs.control().recv_timeout(wait)
                    {
                        self.inject(barrier, &source.position())?;
                    }
                }
                Poll::End => break,
            }
        }
        // The input has ended: take part in checkpoints until the final one, then end the
        // stream and wait for the final checkpoint to complete.
        let _ = self.reports.send(Report::SourceFinished);
        let mut final_checkpoint = None;
        loop {
            if self.stop.requested() {
                return Err(TaskError::Canceled);
            }
            match self.inputs.control().recv_timeout(CANCEL_POLL) {
                Ok(Control::Trigger(barrier)) => {
                    self.inject(barrier, &source.position())?;
                    if barrier.is_final {
                        self.output.end()?;
                        final_checkpoint = Some(barrier.checkpoint);
                    }
                }
                Ok(Control::Complete(checkpoint)) if Some(checkpoint) == final_checkpoint => {
                    return Ok(());
                }
                Ok(Control::Complete(_)) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Err(TaskError::Canceled),
            }
        }
    }

    /// A source's part of a checkpoint: its position, then the barrier downstream.
    fn inject(
        &mut self,
        barrier: Barrier,
        position: &crate::connectors::SourcePosition,
    ) -> Result<(), TaskError> {
        self.ack(
            barrier.checkpoint,
            SubtaskState::Source {
                position: position.clone(),
            },
            SnapshotStats::default(),
        );
        self.output.barrier(barrier)
    }

    fn run_operator(&mut self, operator: &mut dyn OperatorInstance) -> Result<(), TaskError> {
        let mut final_checkpoint = None;
        let (mut ended, mut final_complete) = (false, false);
        while !(ended && final_complete) {
            match self.inputs.next(&mut self.output)? {
                Event::Batch(input, batch) => {
                    self.metrics
                        .records_in
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let out = operator.process(input, batch)?;
                    self.emit(out)?;
                }
                Event::Barrier(barrier, alignment) => {
                    if barrier.is_final {
                        let out = operator.finish()?;
                        self.emit(out)?;
                        final_checkpoint = Some(barrier.checkpoint);
                    }
                    let started = Instant::now();
                    let state = operator.snapshot(barrier.checkpoint)?;
                    let stats = SnapshotStats {
                        alignment_ms: millis(alignment),
                        sync_ms: millis(started.elapsed()),
                        async_ms: 0.0,
                    };
                    // The barrier goes on at once; the upload happens off this thread.
                    self.output.barrier(barrier)?;
                    self.upload(barrier.checkpoint, state, stats);
                }
                Event::Complete(checkpoint) => {
                    operator.checkpoint_complete(checkpoint)?;
                    final_complete |= Some(checkpoint) == final_checkpoint;
                }
                Event::End => {
                    self.output.end()?;
                    ended = true;
                }
            }
        }
        Ok(())
    }

    fn emit(&mut self, batch: cairn_sdk::PackedBatch) -> Result<(), TaskError> {
        self.metrics
            .records_out
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.output.emit(batch)
    }

    fn open_sink(&self, spec: &SinkSpec) -> Result<Box<dyn Sink>, TaskError> {
        let restored = match &self.restored {
            Some((SubtaskState::Sink { state }, _)) => Some(state),
            _ => None,
        };
        Ok(spec.open(&self.id.uid, self.id.subtask, restored)?)
    }

    fn run_sink(&mut self, sink: &mut dyn Sink) -> Result<(), TaskError> {
        let mut final_checkpoint = None;
        let (mut ended, mut final_complete) = (false, false);
        while !(ended && final_complete) {
            match self.inputs.next(&mut self.output)? {
                Event::Batch(_, batch) => {
                    self.metrics
                        .records_in
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    sink.write(&batch)?;
                }
                Event::Barrier(barrier, alignment) => {
                    let started = Instant::now();
                    let state = sink.snapshot(barrier.checkpoint)?;
                    let stats = SnapshotStats {
                        alignment_ms: millis(alignment),
                        sync_ms: millis(started.elapsed()),
                        async_ms: 0.0,
                    };
                    self.ack(barrier.checkpoint, SubtaskState::Sink { state }, stats);
                    if barrier.is_final {
                        final_checkpoint = Some(barrier.checkpoint);
                    }
                }
                Event::Complete(checkpoint) => {
                    sink.commit(checkpoint)?;
                    final_complete |= Some(checkpoint) == final_checkpoint;
                }
                Event::End => ended = true,
            }
        }
        Ok(())
    }

    fn ack(&self, checkpoint: u64, state: SubtaskState, stats: SnapshotStats) {
        let _ = self.reports.send(Report::Ack {
            checkpoint,
            task: self.index,
            state,
            stats,
        });
    }

    /// Compresses and uploads an operator's state off the processing path, then
    /// acknowledges (or declines) the checkpoint.
    fn upload(&self, checkpoint: u64, state: Vec<u8>, mut stats: SnapshotStats) {
        let storage = match &self.checkpoints.storage {
            Some(storage) if !state.is_empty() => storage.child(&checkpoint_folder(checkpoint)),
            _ => return self.ack(checkpoint, SubtaskState::Operator { file: None }, stats),
        };
        let path = state_file(&self.id.uid, self.id.subtask);
        let reports = self.reports.clone();
        let task = self.index;
        self.checkpoints.runtime.spawn(async move {
            let started = Instant::now();
            let report = match storage.put_blob(&path, Arc::new(state)).await {
                Ok(info) => {
                    stats.async_ms = millis(started.elapsed());
                    Report::Ack {
                        checkpoint,
                        task,
                        state: SubtaskState::Operator {
                            file: Some(StateFile::new(path, info)),
                        },
                        stats,
                    }
                }
                Err(e) => Report::Decline {
                    checkpoint,
                    task,
                    reason: e.to_string(),
                },
            };
            let _ = reports.send(report);
        });
    }

    /// Decompresses this operator subtask's restored state (verified again on the way).
    fn restored_operator_state(&self) -> Result<Option<Vec<u8>>, TaskError> {
        let Some((SubtaskState::Operator { file: Some(file) }, Some(stored))) = &self.restored
        else {
            return Ok(None);
        };
        let info = file.info().ok_or_else(|| StateError::Corrupt {
            location: file.path.clone(),
            message: "its checksum in _metadata is not valid hex".into(),
        })?;
        Ok(Some(blob::decode(stored, &info, &file.path)?))
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
