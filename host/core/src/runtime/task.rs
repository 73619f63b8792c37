//! The loop each subtask runs, by role, including its part of checkpoints: sources inject
//! barriers and report positions, operators snapshot their guest, sinks pre-commit; every
//! subtask acknowledges to the coordinator and acts on completed checkpoints.

use std::collections::VecDeque;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_wire::timers::TimeDomain;
use cairn_wire::{Context, Emitter, KeyGroupRange, KeyedChunk, OperatorStateMode, Snapshot, keyed};
use crossbeam_channel::{RecvTimeoutError, Sender};

use super::generator::WatermarkGenerator;
use super::inputs::{Event, Inputs};
use super::output::Output;
use super::valve::{Change, END_OF_TIME, WatermarkStatus};
use super::{
    Barrier, Checkpointing, CodeSwap, Control, Report, Stop, TaskError, TaskId, TaskMetrics,
};
use crate::connectors::{
    Configured, ConnectorError, Poll, SinkConnector, SinkStart, SinkWriter, SourceConnector,
    SourcePosition, SourceReader, Subtask,
};
use crate::graph::Role;
use crate::operator::{CallContext, OperatorError, OperatorFactory, OperatorInstance};
use crate::rescale::{KeyedRestore, SubtaskRestore};
use crate::state::metadata::{SnapshotStats, StateFile, SubtaskSnapshot, SubtaskState};
use crate::state::operator_file::{self, Layout};
use crate::state::{StateError, StateStore, blob, operator_state_file, state_file};
use crate::timer_service::TimerService;

/// How often a waiting source looks whether it should stop.
const CANCEL_POLL: Duration = Duration::from_millis(100);

/// The most positions a source keeps for checkpoints not yet complete: beyond any number
/// in flight; more are older attempts that will never complete.
const MAX_ACKED: usize = 64;

/// A source subtask's reader, as it runs.
struct RunningSource {
    connector: &'static str,
    reader: Box<dyn SourceReader>,
    /// Set once the stream has ended: the checkpoint whose completion ends this subtask.
    final_checkpoint: Option<u64>,
    /// The positions of checkpoints acknowledged and not yet complete, oldest first.
    acked: VecDeque<(u64, SourcePosition)>,
    /// When its partitions' progress is next copied into its metrics.
    progress_due: Instant,
}

/// How often a source's progress per partition is copied into its metrics.
const PROGRESS_EVERY: Duration = Duration::from_secs(1);

/// Everything one subtask owns.
pub(crate) struct Task {
    pub(crate) job_id: String,
    /// The job graph's name.
    pub(crate) job_name: String,
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
    /// Number of key groups.
    pub(crate) max_parallelism: u32,
    /// With a watermark strategy: the watermarks of what it emits.
    pub(crate) watermarks: Option<WatermarkGenerator>,
    /// When resuming: what this subtask restores.
    pub(crate) restored: Option<Restored>,
}

/// What a resuming subtask restores, and from where.
pub(crate) struct Restored {
    pub(crate) plan: SubtaskRestore,
    /// The checkpoint's folder.
    pub(crate) folder: StateStore,
    /// A whole-blob state file's stored bytes, verified before the job started.
    pub(crate) blob: Option<Bytes>,
    /// The watermark to start from: none lower is ever sent again.
    pub(crate) watermark: Option<i64>,
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
        // Downstream channels leave "no watermark" at once, and nothing lower follows.
        if let Some(floor) = self.restored.as_ref().and_then(|r| r.watermark) {
            self.output.watermark(floor)?;
        }
        match self.role.clone() {
            Role::Source(source) => self.run_source(&source),
            Role::Operator { name, options } => {
                let mut operator = self.operators.open(&self.context(options), &name)?;
                let mut timers = TimerService::new(self.key_groups(), self.max_parallelism);
                self.restore_operator(operator.as_mut(), &mut timers)
                    .map_err(TaskError::restoring)?;
                self.run_operator(operator, CallContext::new(timers))
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
        let position = match &self.restored {
            Some(Restored {
                plan: SubtaskRestore::Source(position),
                ..
            }) => Some(position),
            _ => None,
        };
        let reader = source
            .connector
            .open(self.subtask(), position)
            .map_err(opening)?;
        let mut source = RunningSource {
            connector: source.name,
            reader,
            final_checkpoint: None,
            acked: VecDeque::new(),
            progress_due: Instant::now(),
        };
        let mut batch = Emitter::default();
        let mut exhausted = false;
        loop {
            while let Ok(control) = self.inputs.control().try_recv() {
                if self.source_control(control, &mut source)? {
                    return Ok(());
                }
            }
            if self.stop.requested() {
                return Err(TaskError::Canceled);
            }
            if exhausted || source.final_checkpoint.is_some() {
                self.report_progress(&mut source);
                // Nothing more to read: take part in checkpoints until the last one.
                match self.inputs.control().recv_timeout(CANCEL_POLL) {
                    Ok(control) => {
                        if self.source_control(control, &mut source)? {
                            return Ok(());
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(RecvTimeoutError::Disconnected) => return Err(TaskError::Canceled),
                }
                continue;
            }
            let poll = source.reader.poll(&mut batch)?;
            self.report_progress(&mut source);
            self.emit(batch.take())?;
            match poll {
                Poll::Ready => {}
                Poll::Idle(wait) => {
                    self.output.flush()?;
                    let wait = match &self.watermarks {
                        Some(generator) => {
                            wait.min(generator.due().saturating_duration_since(Instant::now()))
                        }
                        None => wait,
                    };
                    // Wait for the rate limit, or less if the coordinator calls.
                    if let Ok(control) = self.inputs.control().recv_timeout(wait)
                        && self.source_control(control, &mut source)?
                    {
                        return Ok(());
                    }
                }
                Poll::End => {
                    // The input has ended: event time ends with it, which fires everything
                    // pending downstream before the final checkpoint; the coordinator takes
                    // that once every source has ended.
                    self.output.watermark(END_OF_TIME)?;
                    exhausted = true;
                    let _ = self.reports.send(Report::SourceFinished);
                }
            }
        }
    }

    /// Copies the source's progress per partition into its metrics, when due.
    fn report_progress(&self, source: &mut RunningSource) {
        if source.progress_due <= Instant::now() {
            source.progress_due = Instant::now() + PROGRESS_EVERY;
            *self
                .metrics
                .partitions
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = source.reader.partitions();
        }
    }

    /// Acts on a message from the coordinator; returns whether the source is done (the
    /// checkpoint after which its stream ended has completed).
    fn source_control(
        &mut self,
        control: Control,
        source: &mut RunningSource,
    ) -> Result<bool, TaskError> {
        match control {
            Control::Trigger(barrier) => {
                let ends_stream = barrier.ends_stream;
                let checkpoint = barrier.checkpoint;
                let position = source.reader.position();
                if source.acked.len() == MAX_ACKED {
                    source.acked.pop_front();
                }
                source.acked.push_back((checkpoint, position.clone()));
                if barrier.drain {
                    // `stop --drain`: everything pending fires into the savepoint.
                    self.output.watermark(END_OF_TIME)?;
                }
                self.ack(
                    checkpoint,
                    SubtaskState::Source {
                        connector: source.connector.to_owned(),
                        position,
                    },
                    SnapshotStats::default(),
                );
                self.output.barrier(barrier)?;
                if ends_stream {
                    self.output.end()?;
                    source.final_checkpoint = Some(checkpoint);
                }
                Ok(false)
            }
            Control::Complete(checkpoint) => {
                // Checkpoints complete in order; older ones that did not are subsumed.
                let mut completed = None;
                while source
                    .acked
                    .front()
                    .is_some_and(|(id, _)| *id <= checkpoint)
                {
                    completed = source.acked.pop_front();
                }
                if let Some((id, position)) = completed
                    && id == checkpoint
                {
                    source.reader.checkpoint_complete(&position);
                }
                Ok(Some(checkpoint) == source.final_checkpoint)
            }
            Control::SwapDecision { .. } => Ok(false),
        }
    }

    fn run_operator(
        &mut self,
        mut operator: Box<dyn OperatorInstance>,
        mut ctx: CallContext,
    ) -> Result<(), TaskError> {
        let mut final_checkpoint = None;
        let (mut ended, mut final_complete) = (false, false);
        // Once `finish` ran, its records were the last: pending processing-time timers do
        // not fire (Flink's behaviour at the end of input).
        let mut finished = false;
        while !(ended && final_complete) {
            // Once the end went downstream, nothing follows it: no timer fires and no
            // periodic watermark goes out (downstream subtasks may be gone already).
            let next_timer = ctx.timers.next_processing_time().filter(|_| !finished);
            let deadline = [
                self.watermarks.as_ref().map(WatermarkGenerator::due),
                next_timer.map(instant_of),
            ]
            .into_iter()
            .flatten()
            .min()
            .filter(|_| !ended);
            match self.inputs.next(&mut self.output, deadline)? {
                Event::Batch(input, batch, key_groups) => {
                    self.metrics
                        .records_in
                        .fetch_add(batch.len() as u64, Ordering::Relaxed);
                    let out = operator.process(input, batch, &key_groups, &mut ctx)?;
                    self.emitted(out, &mut ctx)?;
                    self.fire(operator.as_mut(), &mut ctx, TimeDomain::ProcessingTime)?;
                }
                Event::Barrier(barrier, alignment) => {
                    self.metrics
                        .alignment_ns
                        .store(alignment.as_nanos() as u64, Ordering::Relaxed);
                    if barrier.drain {
                        let out = operator.finish(&mut ctx)?;
                        self.emitted(out, &mut ctx)?;
                        finished = true;
                    }
                    if barrier.ends_stream {
                        final_checkpoint = Some(barrier.checkpoint);
                    }
                    let started = Instant::now();
                    // A snapshot neither stored (checkpointing off) nor swapped is not
                    // taken: a large state would be copied out of the guest for nothing.
                    let snapshot = if barrier.folder.is_some() || barrier.swap.is_some() {
                        Some(Arc::new(operator.snapshot(barrier.checkpoint)?))
                    } else {
                        None
                    };
                    let timer_chunks = ctx.timers.snapshot();
                    let stats = SnapshotStats {
                        alignment_ms: millis(alignment),
                        sync_ms: millis(started.elapsed()),
                        async_ms: 0.0,
                    };
                    // The barrier goes on at once; the upload happens off this thread.
                    self.output.barrier(barrier.clone())?;
                    match snapshot {
                        Some(snapshot) => {
                            self.upload(&barrier, snapshot.clone(), timer_chunks, stats);
                            if let Some(swap) = &barrier.swap {
                                self.swap(&mut operator, swap, barrier.checkpoint, &snapshot)?;
                            }
                        }
                        None => {
                            let none = SubtaskState::Operator { file: None };
                            self.ack(barrier.checkpoint, none, stats);
                        }
                    }
                }
                Event::Watermark(watermark) => {
                    self.metrics
                        .input_watermark
                        .store(watermark, Ordering::Relaxed);
                    // What the timers it passes emit comes before it.
                    ctx.timers.advance_watermark(watermark);
                    self.fire(operator.as_mut(), &mut ctx, TimeDomain::EventTime)?;
                    // With a strategy of its own, only the end of event time passes
                    // (Flink's `TimestampsAndWatermarksOperator`).
                    if self.watermarks.is_none() || watermark == END_OF_TIME {
                        self.output.watermark(watermark)?;
                    }
                }
                Event::Status(status) => {
                    if self.watermarks.is_none() {
                        self.output.status(status)?;
                    }
                }
                Event::Tick if ended => {}
                Event::Tick => {
                    if !finished {
                        self.fire(operator.as_mut(), &mut ctx, TimeDomain::ProcessingTime)?;
                    }
                    self.periodic_watermark()?;
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
        snapshot: &Snapshot,
    ) -> Result<(), TaskError> {
        let prepared = self.prepare_swap(swap, snapshot);
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
        snapshot: &Snapshot,
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
        if !snapshot.is_empty() {
            let message = |e: OperatorError| match e {
                OperatorError::Failed(message) => message,
                other => other.to_string(),
            };
            // The new code gets chunks as a restore would: sorted by key.
            let mut chunks = snapshot.keyed.clone();
            for chunk in &mut chunks {
                chunk.entries = keyed::sort(&chunk.entries, false)
                    .map_err(|e| e.to_string())?
                    .chunk;
            }
            if !chunks.is_empty() {
                new.restore_keyed(snapshot.version, chunks)
                    .map_err(message)?;
            }
            new.restore(snapshot.version, snapshot.operator_state.clone())
                .map_err(message)?;
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
            max_parallelism: self.max_parallelism,
            key_groups: self.key_groups(),
        }
    }

    /// The key groups this subtask owns.
    fn key_groups(&self) -> KeyGroupRange {
        KeyGroupRange::of_subtask(self.id.subtask, self.max_parallelism, self.id.parallelism)
    }

    /// Sends a batch the subtask emits on; with a watermark strategy, its timestamps move
    /// event time, and the periodic watermark goes out when due.
    fn emit(&mut self, batch: cairn_wire::PackedBatch) -> Result<(), TaskError> {
        self.send(None, batch)?;
        self.periodic_watermark()
    }

    /// Sends on what an operator call emitted — its records, then its side outputs — and
    /// adds what it counted to the subtask's counters; then the periodic watermark, when
    /// due, follows all of it.
    fn emitted(
        &mut self,
        out: cairn_wire::PackedBatch,
        ctx: &mut CallContext,
    ) -> Result<(), TaskError> {
        self.send(None, out)?;
        for (name, batch) in ctx.take_side_outputs() {
            self.send(Some(&name), batch)?;
        }
        let counted = ctx.take_counters();
        if !counted.is_empty() {
            self.metrics.count(counted);
        }
        self.periodic_watermark()
    }

    /// Sends a batch to the subtask's records' edges or to side output `side_output`'s.
    /// Any records keep a subtask with a watermark strategy active; only the records' own
    /// timestamps move its event time.
    fn send(
        &mut self,
        side_output: Option<&str>,
        batch: cairn_wire::PackedBatch,
    ) -> Result<(), TaskError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.metrics
            .records_out
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        if let Some(generator) = &mut self.watermarks {
            let timestamps: &[i64] = match side_output {
                None => &batch.timestamps,
                Some(_) => &[],
            };
            if generator.on_records(timestamps, Instant::now()) {
                self.output.status(WatermarkStatus::Active)?;
            }
        }
        match side_output {
            None => self.output.emit(batch),
            Some(name) => self.output.emit_side(name, batch),
        }
    }

    /// Fires the timers of `domain` that are due, in order, emitting what the operator
    /// emits for them; timers they register that are due already fire too.
    fn fire(
        &mut self,
        operator: &mut dyn OperatorInstance,
        ctx: &mut CallContext,
        domain: TimeDomain,
    ) -> Result<(), TaskError> {
        while let Some((fired, key_groups)) = ctx.timers.due(domain) {
            let out = operator.on_timers(domain, fired, &key_groups, ctx)?;
            self.emitted(out, ctx)?;
        }
        Ok(())
    }

    /// The watermark strategy's periodic watermark or idleness, when due.
    fn periodic_watermark(&mut self) -> Result<(), TaskError> {
        let Some(generator) = &mut self.watermarks else {
            return Ok(());
        };
        match generator.on_periodic(Instant::now()) {
            Some(Change::Watermark(watermark)) => self.output.watermark(watermark),
            Some(Change::Status(status)) => self.output.status(status),
            None => Ok(()),
        }
    }

    fn open_sink(&self, connector: &dyn SinkConnector) -> Result<Box<dyn SinkWriter>, TaskError> {
        let start = match &self.restored {
            Some(Restored {
                plan: SubtaskRestore::Sink(states),
                ..
            }) => SinkStart::Restore(states),
            _ if self.attempt > 0 => SinkStart::Restart,
            _ => SinkStart::Fresh,
        };
        connector.open(self.subtask(), start).map_err(opening)
    }

    /// This subtask, as its connector sees it.
    fn subtask(&self) -> Subtask<'_> {
        Subtask {
            job_name: &self.job_name,
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
            match self.inputs.next(&mut self.output, None)? {
                Event::Batch(_, batch, _) => {
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
                Event::Watermark(watermark) => {
                    self.metrics
                        .input_watermark
                        .store(watermark, Ordering::Relaxed);
                }
                Event::Status(_) | Event::Tick => {}
                Event::Complete(checkpoint) => {
                    super::crash::before_commit(checkpoint);
                    sink.commit(checkpoint)?;
                    final_complete |= Some(checkpoint) == final_checkpoint;
                }
                Event::End => ended = true,
            }
        }
        Ok(())
    }

    /// Acknowledges checkpoint `checkpoint` with the subtask's part of it; called at its
    /// barrier, when the output's watermark is the one the checkpoint holds.
    fn ack(&self, checkpoint: u64, state: SubtaskState, stats: SnapshotStats) {
        let _ = self.reports.send(Report::Ack {
            checkpoint,
            task: self.index,
            snapshot: SubtaskSnapshot {
                state,
                stats,
                watermark: self.output.checkpointed_watermark(),
            },
        });
    }

    /// Compresses and uploads an operator's state into the barrier's folder, off the
    /// processing path, then acknowledges (or declines) the checkpoint.
    fn upload(
        &self,
        barrier: &Barrier,
        snapshot: Arc<Snapshot>,
        timers: Vec<KeyedChunk>,
        mut stats: SnapshotStats,
    ) {
        let checkpoint = barrier.checkpoint;
        let folder = match &barrier.folder {
            Some(folder) if !snapshot.is_empty() || !timers.is_empty() => folder.clone(),
            _ => return self.ack(checkpoint, SubtaskState::Operator { file: None }, stats),
        };
        let reports = self.reports.clone();
        let task = self.index;
        let watermark = self.output.checkpointed_watermark();
        let (uid, subtask) = (&self.id.uid, self.id.subtask);
        let whole = snapshot.mode == OperatorStateMode::Whole;
        let path = if whole {
            state_file(uid, subtask)
        } else {
            operator_state_file(uid, subtask)
        };
        let layout = Layout {
            path: path.clone(),
            key_groups: self.key_groups(),
            max_parallelism: self.max_parallelism,
        };
        if whole && !timers.is_empty() {
            // Only a cairn:job@0.2.0 operator keeps one blob, and it cannot register timers.
            let _ = self.reports.send(Report::Decline {
                checkpoint,
                task: self.index,
                reason: "an operator whose state is one blob cannot keep timers".into(),
            });
            return;
        }
        self.checkpoints.runtime.spawn(async move {
            let started = Instant::now();
            let stored = if whole {
                let blob = Arc::new(snapshot.operator_state.concat());
                folder
                    .put_blob(&path, blob)
                    .await
                    .map(|info| SubtaskState::Operator {
                        file: Some(StateFile::new(path, info, snapshot.version)),
                    })
            } else {
                folder
                    .put_stream(&path, move |sink| {
                        operator_file::write(&snapshot, &timers, &layout, sink)
                    })
                    .await
                    .map(|state| SubtaskState::KeyedOperator { state })
            };
            let report = match stored {
                Ok(state) => {
                    stats.async_ms = millis(started.elapsed());
                    Report::Ack {
                        checkpoint,
                        task,
                        snapshot: SubtaskSnapshot {
                            state,
                            stats,
                            watermark,
                        },
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

    /// Hands the operator the state this subtask restores: keyed chunks in batches, as they
    /// are read (a large state never is in memory at once), then the operator-wide items.
    fn restore_operator(
        &mut self,
        operator: &mut dyn OperatorInstance,
        timers: &mut TimerService,
    ) -> Result<(), TaskError> {
        let Some(restored) = self.restored.take() else {
            return Ok(());
        };
        let runtime = &self.checkpoints.runtime;
        let folder = &restored.folder;
        match restored.plan {
            SubtaskRestore::Whole(file) => {
                let stored = restored.blob.ok_or_else(|| StateError::MissingStateFile {
                    checkpoint: folder.url().to_owned(),
                    file: file.path.clone(),
                })?;
                let info = file.info().ok_or_else(|| StateError::Corrupt {
                    location: file.path.clone(),
                    message: "its checksum in _metadata is not valid hex".into(),
                })?;
                let data = blob::decode(&stored, &info, &file.path)?;
                operator.restore(file.version, vec![data])?;
            }
            SubtaskRestore::Keyed(KeyedRestore {
                version,
                items,
                chunks,
                timers: timer_chunks,
            }) => {
                for (path, batch) in &timer_chunks {
                    for chunk in
                        runtime.block_on(operator_file::read_chunks(folder, path, batch))?
                    {
                        timers.restore(&chunk).map_err(|e| StateError::Corrupt {
                            location: folder.url_of(path),
                            message: e.to_string(),
                        })?;
                    }
                }
                let started = Instant::now();
                let (mut key_groups, mut entries, mut bytes_read) = (0, 0, 0);
                for (path, batch) in &chunks {
                    let chunks =
                        runtime.block_on(operator_file::read_chunks(folder, path, batch))?;
                    key_groups += batch.len();
                    entries += batch.iter().map(|c| c.entries).sum::<u64>();
                    bytes_read += batch.iter().map(|c| c.segment.stored_size).sum::<u64>();
                    operator.restore_keyed(version, chunks)?;
                }
                let mut all = Vec::new();
                for (file, range) in &items {
                    let read = runtime.block_on(operator_file::read_items(folder, file))?;
                    bytes_read += file
                        .operator_state
                        .as_ref()
                        .map_or(0, |i| i.segment.stored_size);
                    all.extend(
                        read.into_iter()
                            .skip(range.start as usize)
                            .take((range.end - range.start) as usize),
                    );
                }
                let items = all.len();
                operator.restore(version, all)?;
                tracing::info!(
                    operator = %self.id.uid,
                    subtask = self.id.subtask,
                    key_groups,
                    entries,
                    items,
                    bytes_read,
                    duration_ms = started.elapsed().as_millis() as u64,
                    "state restored"
                );
            }
            SubtaskRestore::Nothing | SubtaskRestore::Source(_) | SubtaskRestore::Sink(_) => {}
        }
        Ok(())
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

/// When the wall clock shows `ms` milliseconds since the epoch (now, if that has passed).
fn instant_of(ms: i64) -> Instant {
    let now = i64::try_from(crate::clock::now_ms()).unwrap_or(i64::MAX);
    Instant::now() + Duration::from_millis(u64::try_from(ms.saturating_sub(now)).unwrap_or(0))
}

fn millis(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}
