//! The dataflow runtime: every node of the graph runs as `parallelism` subtasks, each on a
//! thread of its own, connected by bounded channels (one per upstream/downstream subtask
//! pair) that carry batches and, in band, the end of the stream.
//!
//! Operator subtasks call into their own guest instance; Wasm execution is CPU work and
//! stays on these threads, never on an async reactor.

mod coordinator;
pub mod crash;
pub mod footprint;
mod generator;
mod inputs;
mod metrics;
mod output;
mod task;
mod valve;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_wire::{PackedBatch, Partitioning};
use crossbeam_channel::{Receiver, Sender};

use crate::config::{CheckpointConfig, Retention};
use crate::connectors::ConnectorError;
use crate::graph::{Graph, Role};
use crate::operator::{OperatorError, OperatorFactory};
use crate::rescale::SubtaskRestore;
use crate::state::metadata::SubtaskSnapshot;
use crate::state::{CheckpointMetadata, CheckpointStore, StateError, StateStore};
use coordinator::Coordinator;
pub use coordinator::CoordinatorError;
use generator::WatermarkGenerator;
use inputs::Inputs;
pub use metrics::{
    CheckpointStats, CompletedCheckpoint, FailedCheckpoint, JobMetrics, SubtaskCheckpoint, Summary,
    TaskKind, TaskMetrics, TaskSample,
};
use output::{Output, OutputEdge};
use task::{Restored, Task};
use valve::WatermarkStatus;

/// Batches a channel holds before its sender blocks (backpressure).
const CHANNEL_CAPACITY: usize = 8;

/// The input channels of one subtask, each with the index of its input edge.
pub(crate) type InputChannels = Vec<(u32, Receiver<Message>)>;

/// What travels on a channel.
pub(crate) enum Message {
    /// A batch, and on a by-key edge its records' key groups (else empty): the router hashed
    /// every key to route it, so the operator gets them without hashing again.
    Batch(PackedBatch, Vec<u16>),
    /// Checkpoint barrier: everything before it belongs to the checkpoint.
    Barrier(Barrier),
    /// Event time on this channel reached this: no record with an earlier or equal
    /// timestamp follows.
    Watermark(i64),
    /// The sender turned idle (its watermark holds nothing back) or active again.
    Status(WatermarkStatus),
    /// The upstream subtask has ended (bounded input, after the final checkpoint's barrier);
    /// nothing follows.
    End,
}

/// A checkpoint barrier: every record before it belongs to checkpoint `checkpoint`. A
/// savepoint, a stop and a code swap are checkpoints too; the barrier says what else happens.
#[derive(Debug, Clone)]
pub struct Barrier {
    pub checkpoint: u64,
    /// Where subtasks store their state: the checkpoint's or the savepoint's folder; `None`
    /// when the snapshot is not stored (checkpointing is off).
    pub folder: Option<StateStore>,
    /// The stream ends after this barrier: the final checkpoint of a bounded job, or a stop
    /// with a savepoint.
    pub ends_stream: bool,
    /// Operators `finish` (emit what they buffer) before they snapshot: bounded input has
    /// ended, or `stop --drain`.
    pub drain: bool,
    /// Operators switch to new code at this barrier (`cairn swap`).
    pub swap: Option<Arc<CodeSwap>>,
}

/// New operator code for a running job: every operator subtask snapshots its state at the
/// swap's barrier, opens the same uid's operator in the new code, and restores the state
/// into it. Only when every subtask succeeded do they all switch; otherwise all keep the old.
pub struct CodeSwap {
    pub operators: Arc<dyn OperatorFactory>,
    /// The new code's graph: same shape, maybe other operator names and options.
    pub graph: Graph,
}

impl fmt::Debug for CodeSwap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeSwap")
            .field("graph", &self.graph.name)
            .finish_non_exhaustive()
    }
}

/// From the checkpoint coordinator to a subtask.
#[derive(Debug, Clone)]
pub(crate) enum Control {
    /// Sources only: inject this barrier.
    Trigger(Barrier),
    /// The checkpoint is complete: notify operators, commit sinks.
    Complete(u64),
    /// Operators only: every operator subtask has prepared the code swap of this checkpoint
    /// (`commit`: switch to the new code) or some could not (keep the old).
    SwapDecision { checkpoint: u64, commit: bool },
}

/// A request to a running job, from its control plane (REST, CLI).
#[derive(Debug)]
pub enum Request {
    /// Take a savepoint into `folder`, then do `then`. Replies with the savepoint's location.
    Savepoint {
        folder: StateStore,
        then: AfterSavepoint,
        reply: tokio::sync::oneshot::Sender<Result<String, String>>,
    },
    /// Switch the operators to new code (see [`CodeSwap`]).
    Swap {
        swap: Arc<CodeSwap>,
        reply: tokio::sync::oneshot::Sender<Result<(), String>>,
    },
}

/// What a job does once a savepoint completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterSavepoint {
    /// Keep running.
    Continue,
    /// Cancel the job (`cancel -s`).
    Cancel,
    /// The savepoint's barrier ends the stream; the job finishes (`stop`), operators
    /// `finish` first when `drain`.
    Stop { drain: bool },
}

/// From a subtask to the checkpoint coordinator.
#[derive(Debug)]
pub(crate) enum Report {
    /// The subtask's part of a checkpoint is durable.
    Ack {
        checkpoint: u64,
        task: usize,
        snapshot: SubtaskSnapshot,
    },
    /// The subtask could not store its part of a checkpoint.
    Decline {
        checkpoint: u64,
        task: usize,
        reason: String,
    },
    /// A source reached the end of its input and waits for the final checkpoint.
    SourceFinished,
    /// An operator subtask has the new code of a swap ready (or cannot: why), and waits
    /// for the [`Control::SwapDecision`].
    SwapPrepared {
        checkpoint: u64,
        task: usize,
        result: Result<(), String>,
    },
}

/// Why a subtask stopped before its input ended.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error(transparent)]
    Operator(#[from] OperatorError),
    #[error(transparent)]
    Connector(#[from] ConnectorError),
    #[error("emitted a malformed batch: {0}")]
    MalformedBatch(String),
    #[error("host task panicked: {0}")]
    Panic(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Checkpoint(#[from] CoordinatorError),
    /// Stopped because another subtask failed.
    #[error("canceled")]
    Canceled,
    /// Restoring the checkpoint failed in a way a retry would repeat (the operator refused
    /// its state; the checkpoint does not fit a connector): the job fails at once instead of
    /// restarting, as Flink's `SuppressRestartsException` does.
    #[error("cannot restore the checkpoint: {0}")]
    Restore(Box<TaskError>),
}

impl TaskError {
    /// Restoring failed this way: what restarting would restore fails again.
    pub(crate) fn restoring(error: impl Into<TaskError>) -> Self {
        TaskError::Restore(Box::new(error.into()))
    }

    /// Whether restarting cannot help: the same restore would fail the same way.
    pub fn is_permanent(&self) -> bool {
        matches!(self, TaskError::Restore(_))
    }
}

/// A subtask, named as Flink names them: `count (2/4)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TaskId {
    pub uid: String,
    pub subtask: u32,
    pub parallelism: u32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} ({}/{})",
            self.uid,
            self.subtask + 1,
            self.parallelism
        )
    }
}

/// The first failure of a job: which subtask, and why.
#[derive(Debug, thiserror::Error)]
#[error("{task} failed: {error}")]
pub struct JobFailure {
    pub task: TaskId,
    pub error: TaskError,
}

/// A job ready to run: its validated graph, the code of its operators, how it checkpoints
/// and, when resuming, the checkpoint it restores.
pub struct Job {
    pub id: String,
    pub graph: Graph,
    pub operators: Arc<dyn OperatorFactory>,
    pub checkpoints: Checkpointing,
    pub restore: Option<Restore>,
    /// 0 on the first run; counts restarts (operators see it in their context).
    pub attempt: u32,
    /// Cancels the job from outside (a signal handler, say).
    pub cancel: CancelHandle,
    /// Savepoint and swap requests from the control plane, if it has one.
    pub requests: Option<Receiver<Request>>,
    /// `pipeline.auto-watermark-interval`: how often nodes with a watermark strategy make
    /// watermarks; `None`: never.
    pub watermark_interval: Option<Duration>,
}

/// Cancels a job — every attempt of it — from anywhere.
#[derive(Debug, Clone, Default)]
pub struct CancelHandle(Arc<AtomicBool>);

impl CancelHandle {
    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Whether the subtasks of one run should stop: it is failing, or the user canceled.
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    failing: Arc<AtomicBool>,
    user: CancelHandle,
}

impl Stop {
    pub(crate) fn requested(&self) -> bool {
        self.failing.load(Ordering::Relaxed) || self.user.is_canceled()
    }

    pub(crate) fn fail(&self) {
        self.failing.store(true, Ordering::Relaxed);
    }

    /// Cancels the job, as the user would.
    pub(crate) fn cancel(&self) {
        self.user.cancel();
    }
}

/// How a job checkpoints.
#[derive(Clone)]
pub struct Checkpointing {
    pub config: CheckpointConfig,
    /// The job's checkpoints (`<dir>/<job-id>`); `None` when checkpointing is off (the
    /// final checkpoint of a bounded job still runs, to commit sinks, but is not stored).
    pub storage: Option<CheckpointStore>,
    /// The runtime that uploads state and writes metadata, beside the subtask threads.
    pub runtime: tokio::runtime::Handle,
    /// The id of the first checkpoint (after a restored one).
    pub first_id: u64,
}

impl Checkpointing {
    /// The folder of checkpoint `id`, when checkpoints are stored.
    pub(crate) fn folder(&self, id: u64) -> Option<StateStore> {
        self.storage.as_ref().map(|storage| storage.folder(id))
    }
}

/// The checkpoint a job resumes from.
pub struct Restore {
    pub metadata: CheckpointMetadata,
    /// The checkpoint's folder.
    pub folder: StateStore,
    /// What each subtask restores, by node uid: one entry per subtask at the node's
    /// parallelism now.
    pub plan: HashMap<String, Vec<SubtaskRestore>>,
    /// Whole-blob state files as stored, already verified, by path.
    pub blobs: HashMap<String, Bytes>,
}

impl Restore {
    /// What subtask `subtask` of node `uid` restores; `None` for a node the checkpoint has
    /// no state of.
    fn restored(&self, uid: &str, subtask: usize) -> Option<Restored> {
        let plan = self.plan.get(uid)?.get(subtask)?.clone();
        let blob = match &plan {
            SubtaskRestore::Whole(file) => self.blobs.get(&file.path).cloned(),
            _ => None,
        };
        let node = self.metadata.nodes.iter().find(|n| n.uid == uid)?;
        let parallelism = self.plan.get(uid)?.len() as u32;
        Some(Restored {
            plan,
            folder: self.folder.clone(),
            blob,
            watermark: crate::rescale::watermark(node, subtask, parallelism),
        })
    }
}

impl Job {
    /// Starts every subtask and the checkpoint coordinator. Subtasks instantiate their
    /// operators (and restore their state) on their own threads, in parallel.
    pub fn start(self) -> std::io::Result<RunningJob> {
        let graph = &self.graph;
        // receivers[node][subtask] = the input channels of that subtask.
        let mut receivers: Vec<Vec<InputChannels>> = graph
            .nodes
            .iter()
            .map(|n| (0..n.parallelism).map(|_| Vec::new()).collect())
            .collect();
        // outputs[node][subtask] = the output edges of that subtask.
        let mut outputs: Vec<Vec<Vec<OutputEdge>>> = graph
            .nodes
            .iter()
            .map(|n| (0..n.parallelism).map(|_| Vec::new()).collect())
            .collect();
        for (up, node) in graph.nodes.iter().enumerate() {
            for (down, input, edge) in graph.outputs(up) {
                let down_parallelism = graph.nodes[down].parallelism;
                for su in 0..node.parallelism {
                    let targets: Vec<u32> = match edge.partitioning {
                        Partitioning::Forward => vec![su],
                        _ => (0..down_parallelism).collect(),
                    };
                    let mut channels = Vec::with_capacity(targets.len());
                    for sd in targets {
                        let (tx, rx): (Sender<Message>, _) =
                            crossbeam_channel::bounded(CHANNEL_CAPACITY);
                        channels.push(tx);
                        receivers[down][sd as usize].push((input, rx));
                    }
                    outputs[up][su as usize].push(OutputEdge::new(
                        edge.partitioning,
                        edge.side_output.clone(),
                        channels,
                        graph.max_parallelism,
                    ));
                }
            }
        }

        let stop = Stop {
            failing: Arc::new(AtomicBool::new(false)),
            user: self.cancel.clone(),
        };
        let (outcome_tx, outcomes) = crossbeam_channel::unbounded();
        let (report_tx, reports) = crossbeam_channel::unbounded();
        let mut tasks = Vec::new();
        let mut controls = Vec::new();
        let mut threads = Vec::new();
        for (n, node) in graph.nodes.iter().enumerate() {
            let node_receivers = std::mem::take(&mut receivers[n]);
            let node_outputs = std::mem::take(&mut outputs[n]);
            for (subtask, (inputs, edges)) in
                node_receivers.into_iter().zip(node_outputs).enumerate()
            {
                let id = TaskId {
                    uid: node.uid.clone(),
                    subtask: subtask as u32,
                    parallelism: node.parallelism,
                };
                let metrics = Arc::new(TaskMetrics::default());
                let kind = match node.role {
                    Role::Source(_) => TaskKind::Source,
                    Role::Operator { .. } => TaskKind::Operator,
                    Role::Sink(_) => TaskKind::Sink,
                };
                let (control_tx, control) = crossbeam_channel::unbounded();
                controls.push(control_tx);
                let index = tasks.len();
                let task = Task {
                    job_id: self.id.clone(),
                    job_name: graph.name.clone(),
                    index,
                    id: id.clone(),
                    role: node.role.clone(),
                    inputs: Inputs::new(inputs, self.checkpoints.config.mode, control),
                    output: Output::new(edges, metrics.clone()),
                    metrics: metrics.clone(),
                    operators: self.operators.clone(),
                    stop: stop.clone(),
                    attempt: self.attempt,
                    checkpoints: self.checkpoints.clone(),
                    reports: report_tx.clone(),
                    max_parallelism: graph.max_parallelism,
                    watermarks: node.watermarks.zip(self.watermark_interval).map(
                        |(strategy, interval)| {
                            WatermarkGenerator::new(strategy, interval, Instant::now())
                        },
                    ),
                    restored: self
                        .restore
                        .as_ref()
                        .and_then(|r| r.restored(&node.uid, subtask)),
                };
                let outcome_tx = outcome_tx.clone();
                threads.push(
                    std::thread::Builder::new()
                        .name(format!("cairn-{}-{}", id.uid, id.subtask))
                        .spawn(move || {
                            let _ = outcome_tx.send((index, task.run()));
                        })?,
                );
                tasks.push((id, kind, metrics));
            }
        }
        drop(report_tx);
        let metrics = Arc::new(JobMetrics::new(
            tasks,
            self.checkpoints.first_id,
            self.checkpoints.config.history_size,
        ));
        let coordinator = Coordinator::new(&self, metrics.clone(), controls, reports, stop.clone());
        let coordinator = std::thread::Builder::new()
            .name("cairn-coordinator".into())
            .spawn(move || coordinator.run())?;
        Ok(RunningJob {
            metrics,
            outcomes,
            threads,
            coordinator,
            stop,
            checkpoints: self.checkpoints,
        })
    }
}

/// How a job ended.
#[derive(Debug)]
pub enum Outcome {
    Finished,
    Canceled,
    Failed(Box<JobFailure>),
}

/// A job whose subtasks are running.
pub struct RunningJob {
    metrics: Arc<JobMetrics>,
    outcomes: Receiver<(usize, Result<(), TaskError>)>,
    threads: Vec<JoinHandle<()>>,
    coordinator: JoinHandle<Result<(), CoordinatorError>>,
    stop: Stop,
    checkpoints: Checkpointing,
}

impl RunningJob {
    pub fn metrics(&self) -> Arc<JobMetrics> {
        self.metrics.clone()
    }

    /// Waits until every subtask has ended. The job fails with the first subtask failure
    /// that is a cause rather than a consequence (`Canceled`), or with the coordinator's
    /// (too many failed checkpoints); the other subtasks are then stopped. Afterwards the
    /// job's checkpoints are kept or deleted as the retention policy says.
    pub fn wait(self) -> Outcome {
        let mut failure: Option<JobFailure> = None;
        for _ in 0..self.threads.len() {
            let Ok((index, outcome)) = self.outcomes.recv() else {
                break;
            };
            if let Err(error) = outcome {
                self.stop.fail();
                let is_cause = !matches!(error, TaskError::Canceled);
                if failure
                    .as_ref()
                    .is_none_or(|f| is_cause && matches!(f.error, TaskError::Canceled))
                {
                    let task = self.metrics.tasks[index].0.clone();
                    failure = Some(JobFailure { task, error });
                }
            }
        }
        for thread in self.threads {
            let _ = thread.join();
        }
        let coordinator = self
            .coordinator
            .join()
            .unwrap_or(Err(CoordinatorError::Panicked));
        let outcome = match (failure, coordinator) {
            (Some(f), _) if !matches!(f.error, TaskError::Canceled) => Outcome::Failed(Box::new(f)),
            (_, Err(error)) => Outcome::Failed(Box::new(JobFailure {
                task: TaskId {
                    uid: "checkpoint coordinator".into(),
                    subtask: 0,
                    parallelism: 1,
                },
                error: TaskError::Checkpoint(error),
            })),
            (_, Ok(())) if self.stop.user.is_canceled() => Outcome::Canceled,
            (Some(f), Ok(())) => Outcome::Failed(Box::new(f)),
            (None, Ok(())) => Outcome::Finished,
        };
        apply_retention(&self.checkpoints, &outcome);
        outcome
    }
}

/// FINISHED deletes the job's checkpoints, CANCELED unless they are retained on
/// cancellation, FAILED keeps them (as a crash does).
fn apply_retention(checkpoints: &Checkpointing, outcome: &Outcome) {
    let Some(storage) = &checkpoints.storage else {
        return;
    };
    let delete = match outcome {
        Outcome::Finished => true,
        Outcome::Canceled => checkpoints.config.retention != Retention::RetainOnCancellation,
        Outcome::Failed(_) => false,
    };
    if delete && let Err(e) = checkpoints.runtime.block_on(storage.remove_all()) {
        tracing::warn!("cannot delete the job's checkpoints: {e}");
    }
}

/// Fixes glibc malloc's mmap threshold at 256 KiB, for a process that runs jobs. It adapts
/// upwards by default, and then keeps freed buffers of up to 32 MiB in its per-thread arenas:
/// a snapshot of large keyed state arrives as hundreds of ~1 MB chunks on the subtask's
/// thread and is freed on the uploader's, and the process stayed larger by about a
/// snapshot's size for good. Mapped buffers go back to the system when freed. (Batches, at
/// most 64 KiB, are not affected.) Does nothing on other platforms.
///
/// # Safety
///
/// Call it before the process has other threads (`mallopt` is not thread-safe).
pub unsafe fn return_large_frees_at_once() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: the caller guarantees no other thread allocates meanwhile.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
    }
}
