//! The dataflow runtime: every node of the graph runs as `parallelism` subtasks, each on a
//! thread of its own, connected by bounded channels (one per upstream/downstream subtask
//! pair) that carry batches and, in band, the end of the stream.
//!
//! Operator subtasks call into their own guest instance; Wasm execution is CPU work and
//! stays on these threads, never on an async reactor.

mod output;
mod task;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread::JoinHandle;

use cairn_sdk::{Emitter, PackedBatch, Partitioning};
use crossbeam_channel::{Receiver, Sender};

use crate::connectors::ConnectorError;
use crate::graph::{Graph, Role};
use crate::operator::{OperatorError, OperatorFactory};

use output::{Output, OutputEdge};
pub use output::{key_group, subtask_for_key_group};
use task::{Ended, Inputs, Task};

/// A batch is handed on once it holds this many records…
pub const MAX_BATCH_RECORDS: usize = 1024;
/// …or this many bytes of keys and values.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;
/// Batches a channel holds before its sender blocks (backpressure).
const CHANNEL_CAPACITY: usize = 8;

/// Whether a batch being built should be handed on.
pub fn batch_full(batch: &Emitter) -> bool {
    batch.len() >= MAX_BATCH_RECORDS || batch.size_bytes() >= MAX_BATCH_BYTES
}

/// The input channels of one subtask, each with the index of its input edge.
pub(crate) type InputChannels = Vec<(u32, Receiver<Message>)>;

/// What travels on a channel.
pub(crate) enum Message {
    Batch(PackedBatch),
    /// The upstream subtask has ended (bounded input); nothing follows.
    End,
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
    /// Stopped because another subtask failed.
    #[error("canceled")]
    Canceled,
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

/// Records counted by one subtask.
#[derive(Debug, Default)]
pub struct TaskMetrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
}

/// Counters of every subtask of a running job.
#[derive(Debug)]
pub struct JobMetrics {
    tasks: Vec<(TaskId, TaskKind, Arc<TaskMetrics>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TaskKind {
    Source,
    Operator,
    Sink,
}

impl JobMetrics {
    /// Records produced by all sources.
    pub fn records_read(&self) -> u64 {
        self.sum(TaskKind::Source, |m| &m.records_out)
    }

    /// Records taken by all sinks.
    pub fn records_written(&self) -> u64 {
        self.sum(TaskKind::Sink, |m| &m.records_in)
    }

    fn sum(&self, kind: TaskKind, counter: impl Fn(&TaskMetrics) -> &AtomicU64) -> u64 {
        self.tasks
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(_, _, m)| counter(m).load(Ordering::Relaxed))
            .sum()
    }
}

/// A job ready to run: its validated graph and the code of its operators.
pub struct Job {
    pub id: String,
    pub graph: Graph,
    pub operators: Arc<dyn OperatorFactory>,
}

impl Job {
    /// Starts every subtask. Subtasks instantiate their operators on their own threads, in
    /// parallel.
    pub fn start(self) -> std::io::Result<RunningJob> {
        let graph = &self.graph;
        // receivers[node][subtask] = the input channels of that subtask.
        let mut receivers: Vec<Vec<InputChannels>> = graph
            .nodes
            .iter()
            .map(|n| (0..n.parallelism).map(|_| Vec::new()).collect())
            .collect();
        // senders[node][subtask] = the output edges of that subtask.
        let mut outputs: Vec<Vec<Vec<OutputEdge>>> = graph
            .nodes
            .iter()
            .map(|n| (0..n.parallelism).map(|_| Vec::new()).collect())
            .collect();
        for (up, node) in graph.nodes.iter().enumerate() {
            for (down, input, partitioning) in graph.outputs(up) {
                let down_parallelism = graph.nodes[down].parallelism;
                for su in 0..node.parallelism {
                    let targets: Vec<u32> = match partitioning {
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
                        partitioning,
                        channels,
                        graph.max_parallelism,
                    ));
                }
            }
        }

        let cancel = Arc::new(AtomicBool::new(false));
        let (outcome_tx, outcomes) = crossbeam_channel::unbounded();
        let mut tasks = Vec::new();
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
                let task = Task {
                    job_id: self.id.clone(),
                    id: id.clone(),
                    role: node.role.clone(),
                    inputs: Inputs::new(inputs),
                    output: Output::new(edges),
                    metrics: metrics.clone(),
                    operators: self.operators.clone(),
                    cancel: cancel.clone(),
                };
                let index = tasks.len();
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
        Ok(RunningJob {
            metrics: Arc::new(JobMetrics { tasks }),
            outcomes,
            threads,
            cancel,
        })
    }
}

/// A job whose subtasks are running.
pub struct RunningJob {
    metrics: Arc<JobMetrics>,
    outcomes: Receiver<(usize, Result<Ended, TaskError>)>,
    threads: Vec<JoinHandle<()>>,
    cancel: Arc<AtomicBool>,
}

impl RunningJob {
    pub fn metrics(&self) -> Arc<JobMetrics> {
        self.metrics.clone()
    }

    /// Waits until every subtask has ended, then commits the sinks' output. The job fails
    /// with the first subtask failure that is a cause rather than a consequence (`Canceled`);
    /// the other subtasks are then stopped and the sinks' uncommitted output discarded.
    pub fn wait(self) -> Result<(), Box<JobFailure>> {
        let mut failure: Option<JobFailure> = None;
        let mut sinks = Vec::new();
        for _ in 0..self.threads.len() {
            let Ok((index, outcome)) = self.outcomes.recv() else {
                break;
            };
            match outcome {
                Ok(Ended::Done) => {}
                Ok(Ended::SinkToCommit(sink)) => sinks.push((index, sink)),
                Err(error) => {
                    self.cancel.store(true, Ordering::Relaxed);
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
        }
        for thread in self.threads {
            let _ = thread.join();
        }
        if let Some(failure) = failure {
            sinks.iter_mut().for_each(|(_, sink)| sink.abort());
            return Err(Box::new(failure));
        }
        for (index, sink) in &mut sinks {
            sink.commit().map_err(|error| {
                Box::new(JobFailure {
                    task: self.metrics.tasks[*index].0.clone(),
                    error: error.into(),
                })
            })?;
        }
        Ok(())
    }
}
