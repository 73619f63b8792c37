//! The loop each subtask runs, by role, including its part of checkpoints: sources inject
//! barriers and report positions, operators snapshot their guest, sinks pre-commit; every
//! subtask acknowledges to the coordinator and acts on completed checkpoints.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_wire::{Context, Emitter, State};
use crossbeam_channel::{RecvTimeoutError, Sender};

use super::inputs::{Event, Inputs};
use super::output::Output;
use super::{
    Barrier, Checkpointing, CodeSwap, Control, Report, Stop, TaskError, TaskId, TaskMetrics,
};
use crate::connectors::{
    Configured, ConnectorError, Poll, SinkConnector, SinkStart, SinkWriter, SourceConnector,
    SourceReader, Subtask,
};
use crate::graph::Role;
use crate::operator::{OperatorError, OperatorFactory, OperatorInstance};
use crate::state::blob;
use crate::state::metadata::{SnapshotStats, StateFile, SubtaskState};
use crate::state::{StateError, state_file};

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
            Role::Source(source) => self.run_source(&source),
            Role::Operator { name, options } => {
                let mut operator = self.operators.open(&self.context(options), &name)?;
                if let Some(state) = self
                    .restored_operator_state()
                    .map_err(TaskError::restoring)?
                {
                    operator.restore(state).map_err(TaskError::restoring)?;
                }
                self.run_operator(operator)
            }
            Role::Sink(sink) => {
                let mut writer = self.open_sink(&*sink.connector)?;
                let result = self.run_sink(sink.name, writer.as_mut());
                if result.is_err() {
                    writer.abort();
                }
                result
            }
        }
    }

    fn run_source(&mut self, source: &Configured<dyn SourceConnector>) -> Result<(), TaskError> {
        let connector = source.name;
        let position = match &self.restored {
            Some((SubtaskState::Source { position, .. }, _)) => Some(position),
            _ => None,
        };
        let mut source = source
            .connector
            .open(self.subtask(), position)
            .map_err(opening)?;
        let mut batch = Emitter::default();
        // Set once the stream has ended: the checkpoint whose completion ends this subtask.
        let mut final_checkpoint = None;
        let mut exhausted = false;
        loop {
            while let Ok(control) = self.inputs.control().try_recv() {
                if self.source_control(control, connector, &*source, &mut final_checkpoint)? {
                    return Ok(());
                }
            }
            if self.stop.requested() {
                return Err(TaskError::Canceled);
            }
            if exhausted || final_checkpoint.is_some() {
                // Nothing more to read: take part in checkpoints until the last one.
                match self.inputs.control().recv_timeout(CANCEL_POLL) {
                    Ok(control) => {
                        if self.source_control(
                            control,
                            connector,
                            &*source,
                            &mut final_checkpoint,
                        )? {
                            return Ok(());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Err(TaskError::Canceled),
                }
                continue;
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
                    if let Ok(control) = self.inputs.control().recv_timeout(wait)
                        && self.source_control(
                            control,
                            connector,
                            &*source,
                            &mut final_checkpoint,
                        )?
                    {
                        return Ok(());
                    }
                }
                Poll::End => {
                    // The input has ended: the coordinator takes the final checkpoint once
                    // every source has.
                    exhausted = true;
                    let _ = self.reports.send(Report::SourceFinished);
                }
            }
        }
    }

    /// Acts on a message from the coordinator; returns whether the source is done (the
    /// checkpoint after which its stream ended has completed).
    fn source_control(
        &mut self,
        control: Control,
        connector: &'static str,
        source: &dyn SourceReader,
        final_checkpoint: &mut Option<u64>,
    ) -> Result<bool, TaskError> {
        match control {
            Control::Trigger(barrier) => {
                let ends_stream = barrier.ends_stream;
                let checkpoint = barrier.checkpoint;
                self.ack(
                    checkpoint,
                    SubtaskState::Source {
                        connector: connector.to_owned(),
                        position: source.position(),
                    },
                    SnapshotStats::default(),
                );
                self.output.barrier(barrier)?;
                if ends_stream {
                    self.output.end()?;
                    *final_checkpoint = Some(checkpoint);
                }
                Ok(false)
            }
            Control::Complete(checkpoint) => Ok(Some(checkpoint) == *final_checkpoint),
            Control::SwapDecision { .. } => Ok(false),
        }
    }

    fn run_operator(&mut self, mut operator: Box<dyn OperatorInstance>) -> Result<(), TaskError> {
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
                    self.metrics
                        .alignment_ns
                        .store(alignment.as_nanos() as u64, Ordering::Relaxed);
                    if barrier.drain {
                        let out = operator.finish()?;
                        self.emit(out)?;
                    }
                    if barrier.ends_stream {
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
                    self.output.barrier(barrier.clone())?;
                    let swap_state = barrier.swap.is_some().then(|| state.clone());
                    self.upload(&barrier, state, stats);
                    if let (Some(swap), Some(state)) = (&barrier.swap, swap_state) {
                        self.swap(&mut operator, swap, barrier.checkpoint, state)?;
                    }
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

    /// This subtask's part of a code swap: open the new code, restore the state just
    /// snapshotted into it, report, and switch only if the coordinator says every subtask
    /// could. Meanwhile the old instance is untouched, so keeping it is a full rollback.
    fn swap(
        &mut self,
        operator: &mut Box<dyn OperatorInstance>,
        swap: &CodeSwap,
        checkpoint: u64,
        state: State,
    ) -> Result<(), TaskError> {
        let prepared = self.prepare_swap(swap, state);
        let _ = self.reports.send(Report::SwapPrepared {
            checkpoint,
            task: self.index,
            result: prepared.as_ref().map(|_| ()).map_err(Clone::clone),
        });
        loop {
            match self.inputs.control().recv() {
                Ok(Control::SwapDecision {
                    checkpoint: decided,
                    commit,
                }) if decided == checkpoint => {
                    if let (true, Ok(new)) = (commit, prepared) {
                        *operator = new;
                    }
                    return Ok(());
                }
                Ok(Control::Complete(completed)) => operator.checkpoint_complete(completed)?,
                Ok(_) => {}
                Err(_) => return Err(TaskError::Canceled),
            }
        }
    }

    fn prepare_swap(
        &self,
        swap: &CodeSwap,
        state: State,
    ) -> Result<Box<dyn OperatorInstance>, String> {
        let Some(Role::Operator { name, options }) = swap
            .graph
            .nodes
            .iter()
            .find(|n| n.uid == self.id.uid)
            .map(|n| &n.role)
        else {
            return Err(format!("the new code has no operator '{}'", self.id.uid));
        };
        let mut new = swap
            .operators
            .open(&self.context(options.clone()), name)
            .map_err(|e| format!("cannot open operator '{name}' of the new code: {e}"))?;
        if !state.data.is_empty() {
            new.restore(state).map_err(|e| match e {
                OperatorError::Failed(message) => message,
                other => other.to_string(),
            })?;
        }
        Ok(new)
    }

    /// The context an operator of this subtask opens with.
    fn context(&self, options: Vec<(String, String)>) -> Context {
        Context {
            job_id: self.job_id.clone(),
            operator_uid: self.id.uid.clone(),
            subtask: self.id.subtask,
            parallelism: self.id.parallelism,
            attempt: self.attempt,
            options,
        }
    }

    fn emit(&mut self, batch: cairn_wire::PackedBatch) -> Result<(), TaskError> {
        self.metrics
            .records_out
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        self.output.emit(batch)
    }

    fn open_sink(&self, connector: &dyn SinkConnector) -> Result<Box<dyn SinkWriter>, TaskError> {
        let start = match &self.restored {
            Some((SubtaskState::Sink { state, .. }, _)) => SinkStart::Restore(state),
            _ if self.attempt > 0 => SinkStart::Restart,
            _ => SinkStart::Fresh,
        };
        connector.open(self.subtask(), start).map_err(opening)
    }

    /// This subtask, as its connector sees it.
    fn subtask(&self) -> Subtask<'_> {
        Subtask {
            uid: &self.id.uid,
            index: self.id.subtask,
            parallelism: self.id.parallelism,
        }
    }

    /// Runs `sink`, a writer of connector `connector`.
    fn run_sink(
        &mut self,
        connector: &'static str,
        sink: &mut dyn SinkWriter,
    ) -> Result<(), TaskError> {
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
                    self.metrics
                        .alignment_ns
                        .store(alignment.as_nanos() as u64, Ordering::Relaxed);
                    let started = Instant::now();
                    let state = sink.prepare(barrier.checkpoint)?;
                    let stats = SnapshotStats {
                        alignment_ms: millis(alignment),
                        sync_ms: millis(started.elapsed()),
                        async_ms: 0.0,
                    };
                    let connector = connector.to_owned();
                    self.ack(
                        barrier.checkpoint,
                        SubtaskState::Sink { connector, state },
                        stats,
                    );
                    if barrier.ends_stream {
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

    /// Compresses and uploads an operator's state into the barrier's folder, off the
    /// processing path, then acknowledges (or declines) the checkpoint.
    fn upload(&self, barrier: &Barrier, state: State, mut stats: SnapshotStats) {
        let checkpoint = barrier.checkpoint;
        let folder = match &barrier.folder {
            Some(folder) if !state.data.is_empty() => folder.clone(),
            _ => return self.ack(checkpoint, SubtaskState::Operator { file: None }, stats),
        };
        let path = state_file(&self.id.uid, self.id.subtask);
        let reports = self.reports.clone();
        let task = self.index;
        let version = state.version;
        self.checkpoints.runtime.spawn(async move {
            let started = Instant::now();
            let report = match folder.put_blob(&path, Arc::new(state.data)).await {
                Ok(info) => {
                    stats.async_ms = millis(started.elapsed());
                    Report::Ack {
                        checkpoint,
                        task,
                        state: SubtaskState::Operator {
                            file: Some(StateFile::new(path, info, version)),
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
    fn restored_operator_state(&self) -> Result<Option<State>, TaskError> {
        let Some((SubtaskState::Operator { file: Some(file) }, Some(stored))) = &self.restored
        else {
            return Ok(None);
        };
        let info = file.info().ok_or_else(|| StateError::Corrupt {
            location: file.path.clone(),
            message: "its checksum in _metadata is not valid hex".into(),
        })?;
        Ok(Some(State {
            version: file.version,
            data: blob::decode(stored, &info, &file.path)?,
        }))
    }
}

/// A connector failing to open: in restored state it can never succeed on retry.
fn opening(e: ConnectorError) -> TaskError {
    if e.is_restore() {
        TaskError::restoring(e)
    } else {
        e.into()
    }
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
