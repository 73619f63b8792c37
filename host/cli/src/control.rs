//! The control plane of one running job: its status across restarts, its current code, its
//! failures, and the asynchronous operations (savepoints, stops, swaps, rescales,
//! disposals) that the REST API triggers and polls by id, as Flink's does.

use cairn_core::clock::now_ms;
use cairn_core::supervisor::Restored;
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::oneshot;

use cairn_core::config::Config;
use cairn_core::graph::Graph;
use cairn_core::operator::OperatorFactory;
use cairn_core::runtime::footprint::{self, Footprint};
use cairn_core::runtime::{
    AfterSavepoint, CancelHandle, CheckpointStats, JobFailure, JobMetrics, Request,
};
use cairn_wasm::swap::Swapper;
use cairn_wire::JobGraph;

pub use cairn_api::JobStatus;

/// Why a control request was refused.
#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("job {id} is {}, not running", .status.as_str())]
    NotRunning { id: String, status: JobStatus },
    #[error(
        "no savepoint folder: give one, or set execution.checkpointing.savepoint-dir \
         (state.savepoints.dir)"
    )]
    NoSavepointDir,
    #[error("{0}")]
    Invalid(String),
    #[error("another swap or a rescale of job {id} is under way: retry when it has completed")]
    SwapUnderWay { id: String },
}

/// What an asynchronous operation does; each is polled at its own endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OperationKind {
    /// A savepoint, alone or before a cancel or a stop.
    Savepoint,
    Swap,
    /// A stop with a savepoint, then the job resumed from it at another parallelism.
    Rescale,
    Disposal,
}

/// An asynchronous operation, polled by its trigger id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Operation {
    InProgress,
    /// Done: a location (savepoints), nothing (swaps, disposals), or why it failed.
    Completed(Result<Option<String>, String>),
}

/// A failure of one attempt of the job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exception {
    pub timestamp_ms: u64,
    /// The subtask that failed, Flink-style: `count (2/4)`.
    pub task: String,
    pub message: String,
}

/// The control plane of one job, shared by its run loop and its REST server.
pub struct JobControl {
    pub id: String,
    pub name: String,
    pub start_ms: u64,
    pub config: Config,
    /// Every config key's effective value, for display (secrets are redacted there).
    pub settings: Vec<(String, String)>,
    cancel: CancelHandle,
    swapper: Swapper,
    state: Mutex<State>,
    /// Held from a swap's upload to its end, and for a whole rescale: one code change at a
    /// time, so that they take effect in order and concurrent uploads cannot pile up.
    swapping: Arc<tokio::sync::Mutex<()>>,
    /// Signalled when a rescale's savepoint has been taken (or has failed).
    rescaled: Condvar,
}

/// The right to swap the job's code, from [`JobControl::reserve_swap`] until dropped.
pub struct SwapSlot {
    _held: tokio::sync::OwnedMutexGuard<()>,
}

struct State {
    status: JobStatus,
    /// When the job entered each status, last time.
    timestamps: BTreeMap<JobStatus, u64>,
    attempt: Option<Attempt>,
    graph: Graph,
    operators: Arc<dyn OperatorFactory>,
    /// What the code's `describe` returned, and the parallelism of the nodes without one of
    /// their own: a rescale makes `graph` again from them.
    description: JobGraph,
    default_parallelism: u32,
    rescale: Option<Rescale>,
    rescales: u64,
    /// The latest `web.exception-history-size` failures, oldest first.
    exceptions: VecDeque<Exception>,
    /// Whether older failures were dropped from `exceptions`.
    exceptions_truncated: bool,
    /// By trigger id: what it is, its status, and whether a completed one's result has been
    /// fetched.
    operations: HashMap<String, (OperationKind, Operation, bool)>,
    restarts: u32,
    /// Checkpoint statistics of earlier attempts.
    history: CheckpointStats,
    /// How many attempts started from a checkpoint or savepoint, and the latest such.
    restores: u64,
    restored: Option<Restored>,
}

/// What a job runs: its graph, the description it was made from, its operators' code.
pub struct JobCode {
    pub graph: Graph,
    /// What the code's `describe` returned: a rescale makes the graph again from it.
    pub description: JobGraph,
    pub operators: Arc<dyn OperatorFactory>,
}

/// A rescale under way: its stop-with-savepoint is being taken, then the job resumes from it.
enum Rescale {
    /// The `n`-th rescale of the job (a failure of the stopping attempt ends it, and its
    /// savepoint must then not revive it).
    Stopping(u64),
    /// The savepoint to resume from (at the new parallelism if it fits, else the old one).
    Resume(String),
}

/// The running attempt: where requests go, and its counters.
struct Attempt {
    requests: Sender<Request>,
    metrics: Arc<JobMetrics>,
    started: std::time::Instant,
}

/// What the REST API shows of a job at one moment.
pub struct Snapshot {
    pub status: JobStatus,
    pub timestamps: BTreeMap<JobStatus, u64>,
    pub graph: Graph,
    pub metrics: Option<Arc<JobMetrics>>,
    /// Checkpoint statistics over every attempt of the job.
    pub checkpoints: CheckpointStats,
    pub restores: u64,
    pub restored: Option<Restored>,
    /// The latest failures, oldest first, and whether older ones were dropped.
    pub exceptions: Vec<Exception>,
    pub exceptions_truncated: bool,
    pub restarts: u32,
}

impl JobControl {
    pub fn new(
        id: String,
        config: Config,
        settings: Vec<(String, String)>,
        cancel: CancelHandle,
        code: JobCode,
        swapper: Swapper,
    ) -> Arc<Self> {
        let JobCode {
            graph,
            description,
            operators,
        } = code;
        let start_ms = now_ms();
        let history_size = config.checkpoints.history_size;
        let default_parallelism = config.default_parallelism;
        Arc::new(JobControl {
            id,
            name: graph.name.clone(),
            start_ms,
            config,
            settings,
            cancel,
            swapper,
            state: Mutex::new(State {
                status: JobStatus::Initializing,
                timestamps: BTreeMap::from([(JobStatus::Initializing, start_ms)]),
                attempt: None,
                graph,
                operators,
                description,
                default_parallelism,
                rescale: None,
                rescales: 0,
                exceptions: VecDeque::new(),
                exceptions_truncated: false,
                operations: HashMap::new(),
                restarts: 0,
                history: CheckpointStats::new(history_size),
                restores: 0,
                restored: None,
            }),
            swapping: Arc::new(tokio::sync::Mutex::new(())),
            rescaled: Condvar::new(),
        })
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The parallelism of nodes without one of their own (`parallelism.default`, or what a
    /// rescale set).
    pub fn default_parallelism(&self) -> u32 {
        self.state().default_parallelism
    }

    /// The code the next attempt runs: the latest swapped-in, else the original.
    pub fn code(&self) -> (Graph, Arc<dyn OperatorFactory>) {
        let state = self.state();
        (state.graph.clone(), state.operators.clone())
    }

    /// A new attempt runs, restored from `restored` if anything; requests go to it.
    pub fn attempt_started(
        &self,
        requests: Sender<Request>,
        metrics: Arc<JobMetrics>,
        restored: Option<Restored>,
    ) {
        let mut state = self.state();
        if restored.is_some() {
            state.restores += 1;
            state.restored = restored;
        }
        state.attempt = Some(Attempt {
            requests,
            metrics,
            started: std::time::Instant::now(),
        });
        set_status(&mut state, JobStatus::Running);
    }

    /// The attempt failed; the job restarts (or not).
    pub fn attempt_failed(&self, failure: &JobFailure, restarting: bool) {
        let mut state = self.state();
        state.exceptions.push_back(Exception {
            timestamp_ms: now_ms(),
            task: failure.task.to_string(),
            message: failure.error.to_string(),
        });
        // A restart loop must not grow the history (and the REST answer) without bound.
        while state.exceptions.len() > self.config.exception_history_size {
            state.exceptions.pop_front();
            state.exceptions_truncated = true;
        }
        // A rescale whose stop failed is over: the job restarts, or ends, as it would.
        if state.rescale.take().is_some() {
            self.rescaled.notify_all();
        }
        if restarting {
            state.restarts += 1;
            end_attempt(&mut state);
            set_status(&mut state, JobStatus::Restarting);
        }
    }

    /// The job has ended for good.
    pub fn ended(&self, status: JobStatus) {
        let mut state = self.state();
        end_attempt(&mut state);
        set_status(&mut state, status);
    }

    pub fn snapshot(&self) -> Snapshot {
        let state = self.state();
        let mut checkpoints = state.history.clone();
        if let Some(attempt) = &state.attempt {
            checkpoints.merge(attempt.metrics.checkpoint_stats());
        }
        Snapshot {
            status: state.status,
            timestamps: state.timestamps.clone(),
            graph: state.graph.clone(),
            metrics: state.attempt.as_ref().map(|a| a.metrics.clone()),
            checkpoints,
            restores: state.restores,
            restored: state.restored.clone(),
            exceptions: state.exceptions.iter().cloned().collect(),
            exceptions_truncated: state.exceptions_truncated,
            restarts: state.restarts,
        }
    }

    /// When the running attempt started (now, if none runs).
    pub fn attempt_start_time(&self) -> std::time::Instant {
        self.state()
            .attempt
            .as_ref()
            .map_or_else(std::time::Instant::now, |a| a.started)
    }

    /// Cancels the job (every attempt).
    pub fn cancel(&self) {
        let mut state = self.state();
        if !state.status.is_terminal() {
            set_status(&mut state, JobStatus::Cancelling);
        }
        self.cancel.cancel();
    }

    /// The status of an operation of this kind; a completed one counts as fetched from now
    /// on.
    pub fn operation(&self, trigger: &str, kind: OperationKind) -> Option<Operation> {
        let mut state = self.state();
        let (_, operation, fetched) = state
            .operations
            .get_mut(trigger)
            .filter(|(k, _, _)| *k == kind)?;
        *fetched |= matches!(operation, Operation::Completed(_));
        Some(operation.clone())
    }

    /// Waits, at most `timeout`, until every operation has completed and its result was
    /// fetched: a `stop` ends the job, and its client still needs the savepoint's path.
    pub fn wait_until_fetched(&self, timeout: std::time::Duration) {
        let deadline = std::time::Instant::now() + timeout;
        while std::time::Instant::now() < deadline
            && self
                .state()
                .operations
                .values()
                .any(|(_, operation, fetched)| !fetched || *operation == Operation::InProgress)
        {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }

    /// Starts a savepoint into `target` (else the configured savepoint folder), then
    /// `then`. Returns the trigger id to poll.
    ///
    /// `target` comes from a client, which may run elsewhere: it must be an absolute path or
    /// a URL, never a path the job would resolve against its own working directory.
    pub fn trigger_savepoint(
        self: &Arc<Self>,
        target: Option<&str>,
        then: AfterSavepoint,
    ) -> Result<String, ControlError> {
        let (trigger, outcome) = self.start_savepoint(target, then, OperationKind::Savepoint)?;
        let control = self.clone();
        let id = trigger.clone();
        tokio::spawn(async move {
            control.complete(&id, outcome.await.map(Some));
        });
        Ok(trigger)
    }

    /// Sends a savepoint request (see [`trigger_savepoint`](Self::trigger_savepoint)) as
    /// an operation of `kind`: its trigger id, and its location when it completes.
    fn start_savepoint(
        self: &Arc<Self>,
        target: Option<&str>,
        then: AfterSavepoint,
        kind: OperationKind,
    ) -> Result<(String, impl Future<Output = Result<String, String>> + use<>), ControlError> {
        let target = target.filter(|t| !t.is_empty());
        if let Some(relative) =
            target.filter(|t| !t.contains("://") && !std::path::Path::new(t).is_absolute())
        {
            return Err(ControlError::Invalid(format!(
                "the savepoint target directory '{relative}' is relative: give an absolute \
                 path or a URL (file://, s3://, gs://, az://)"
            )));
        }
        let dir = target
            .map(str::to_owned)
            .or_else(|| self.config.savepoint_dir.clone())
            .ok_or(ControlError::NoSavepointDir)?;
        let folder = cairn_core::savepoint::new_folder(&dir, &self.id, &self.config.s3)
            .map_err(|e| ControlError::Invalid(e.to_string()))?;
        let (reply, result) = oneshot::channel();
        self.send(Request::Savepoint {
            folder,
            then,
            reply,
        })?;
        let outcome = async {
            result
                .await
                .unwrap_or_else(|_| Err("the job stopped before the savepoint completed".into()))
        };
        Ok((self.new_operation(kind), outcome))
    }

    /// Stops the job with a savepoint (into `target`, else the configured savepoint folder)
    /// and resumes it from that savepoint with `parallelism` for the nodes without one of
    /// their own, as `cairn run -p` would: Flink's rescaling. Returns the trigger id to poll.
    /// If the savepoint does not fit the new parallelism (a `cairn:job@0.2.0` operator's
    /// state), the job resumes at the old one and the operation reports why.
    pub fn trigger_rescale(
        self: &Arc<Self>,
        parallelism: u32,
        target: Option<&str>,
    ) -> Result<String, ControlError> {
        let max = self.config.max_parallelism;
        if parallelism == 0 || parallelism > max {
            return Err(ControlError::Invalid(format!(
                "cannot rescale to parallelism {parallelism}: it must be between 1 and \
                 pipeline.max-parallelism ({max})"
            )));
        }
        // One code change at a time: no swap, and no other rescale, until this one is over.
        let slot = self.reserve_swap()?;
        let (graph, old, n) = {
            let mut state = self.state();
            let graph = Graph::new(&state.description, parallelism, max)
                .map_err(|e| ControlError::Invalid(format!("cannot rescale: {e}")))?;
            if graph == state.graph {
                return Err(ControlError::Invalid(format!(
                    "job {} runs at parallelism {parallelism} already",
                    self.id
                )));
            }
            let memory = footprint::physical_memory().unwrap_or(u64::MAX);
            Footprint::of(&graph)
                .check(memory)
                .map_err(|e| ControlError::Invalid(format!("cannot rescale: {e}")))?;
            // Marked before the stop is sent (and under the same lock as the check above):
            // the attempt may finish as soon as it is, and must then wait for this rescale
            // rather than end the job.
            state.rescales += 1;
            state.rescale = Some(Rescale::Stopping(state.rescales));
            (graph, state.default_parallelism, state.rescales)
        };
        let (trigger, outcome) = match self.start_savepoint(
            target,
            AfterSavepoint::Stop { drain: false },
            OperationKind::Rescale,
        ) {
            Ok(started) => started,
            Err(e) => {
                self.state().rescale = None;
                self.rescaled.notify_all();
                return Err(e);
            }
        };
        let control = self.clone();
        let id = trigger.clone();
        tokio::spawn(async move {
            let result = match outcome.await {
                Ok(savepoint) => {
                    let fits = fits(&savepoint, &graph, &control.config).await;
                    let mut state = control.state();
                    if !matches!(state.rescale, Some(Rescale::Stopping(m)) if m == n) {
                        Err(format!(
                            "the job failed while it stopped at savepoint {savepoint}; it \
                             restarts as its restart strategy says, at parallelism {old}"
                        ))
                    } else {
                        state.rescale = Some(Rescale::Resume(savepoint.clone()));
                        match fits {
                            Ok(()) => {
                                state.graph = graph;
                                state.default_parallelism = parallelism;
                                Ok(Some(savepoint))
                            }
                            Err(e) => Err(format!(
                                "{e}; the job resumes at parallelism {old} from {savepoint}"
                            )),
                        }
                    }
                }
                // The stop did not happen: the job runs on as it was.
                Err(e) => {
                    control.state().rescale = None;
                    Err(e)
                }
            };
            control.rescaled.notify_all();
            control.complete(&id, result);
            drop(slot);
        });
        Ok(trigger)
    }

    /// The attempt finished: the savepoint to resume from if a rescale stopped it (waiting
    /// until the rescale has checked it), else `None` — the job has ended.
    pub fn resume_after_finish(&self) -> Option<String> {
        let mut state = self.state();
        let deadline = std::time::Instant::now() + RESCALE_CHECK_TIMEOUT;
        loop {
            match state.rescale.take() {
                None => return None,
                Some(Rescale::Resume(savepoint)) => {
                    end_attempt(&mut state);
                    return Some(savepoint);
                }
                Some(Rescale::Stopping(n)) => {
                    state.rescale = Some(Rescale::Stopping(n));
                    let left = deadline.saturating_duration_since(std::time::Instant::now());
                    if left.is_zero() {
                        state.rescale = None;
                        return None;
                    }
                    state = self
                        .rescaled
                        .wait_timeout(state, left)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                }
            }
        }
    }

    /// Reserves the one swap the job may run at a time, before its component is uploaded;
    /// refused while another swap is under way.
    pub fn reserve_swap(&self) -> Result<SwapSlot, ControlError> {
        self.swapping
            .clone()
            .try_lock_owned()
            .map(|held| SwapSlot { _held: held })
            .map_err(|_| ControlError::SwapUnderWay {
                id: self.id.clone(),
            })
    }

    /// Starts swapping the job's operators to the component in `component` (named `label`
    /// in messages; the file is removed when the swap ends). Returns the trigger id to poll.
    pub fn trigger_swap(
        self: &Arc<Self>,
        slot: SwapSlot,
        label: String,
        component: tempfile::TempPath,
    ) -> String {
        let trigger = self.new_operation(OperationKind::Swap);
        let control = self.clone();
        let id = trigger.clone();
        tokio::spawn(async move {
            let outcome = control.swap(label, component).await;
            control.complete(&id, outcome.map(|()| None));
            drop(slot);
        });
        trigger
    }

    async fn swap(
        self: &Arc<Self>,
        label: String,
        component: tempfile::TempPath,
    ) -> Result<(), String> {
        let (running, _) = self.code();
        let default_parallelism = self.state().default_parallelism;
        let control = self.clone();
        // Reading and compiling are blocking, CPU-heavy work (seconds for big components):
        // off the reactor.
        let swap = tokio::task::spawn_blocking(move || {
            let bytes = std::fs::read(&component)
                .map_err(|e| format!("cannot read the uploaded {label}: {e}"))?;
            control
                .swapper
                .prepare(&label, &bytes, &running, default_parallelism)
                .map_err(|e| e.to_string())
        })
        .await
        .map_err(|e| format!("preparing the swap panicked: {e}"))??;
        let (swap, description) = swap;
        let swap = Arc::new(swap);
        let (reply, result) = oneshot::channel();
        self.send(Request::Swap {
            swap: swap.clone(),
            reply,
        })
        .map_err(|e| e.to_string())?;
        result
            .await
            .unwrap_or_else(|_| Err("the job stopped before the swap completed".into()))?;
        // Restarts from now on run the new code.
        let mut state = self.state();
        state.graph = swap.graph.clone();
        state.operators = swap.operators.clone();
        state.description = description;
        Ok(())
    }

    /// Starts disposing of the savepoint at `path`. Returns the trigger id to poll.
    pub fn trigger_disposal(self: &Arc<Self>, path: String) -> String {
        let trigger = self.new_operation(OperationKind::Disposal);
        let control = self.clone();
        let id = trigger.clone();
        tokio::spawn(async move {
            let outcome = cairn_core::savepoint::dispose(&path, &control.config.s3)
                .await
                .map(|_| None)
                .map_err(|e| e.to_string());
            control.complete(&id, outcome);
        });
        trigger
    }

    fn send(&self, request: Request) -> Result<(), ControlError> {
        let state = self.state();
        let not_running = || ControlError::NotRunning {
            id: self.id.clone(),
            status: state.status,
        };
        match (&state.attempt, state.status) {
            (Some(attempt), JobStatus::Running) => {
                attempt.requests.send(request).map_err(|_| not_running())
            }
            _ => Err(not_running()),
        }
    }

    fn new_operation(&self, kind: OperationKind) -> String {
        let trigger = format!("{:032x}", rand::random::<u128>());
        self.state()
            .operations
            .insert(trigger.clone(), (kind, Operation::InProgress, false));
        trigger
    }

    fn complete(&self, trigger: &str, outcome: Result<Option<String>, String>) {
        if let Some((_, operation, _)) = self.state().operations.get_mut(trigger) {
            *operation = Operation::Completed(outcome);
        }
    }
}

/// Longest a finished attempt waits for its rescale's check of the savepoint: reading
/// `_metadata`, which a store answers in far less.
const RESCALE_CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// Whether the savepoint at `location` restores into `graph`: the checks of `cairn run -s`.
async fn fits(location: &str, graph: &Graph, config: &Config) -> Result<(), String> {
    let (folder, metadata) = cairn_core::restore::find(location, &config.s3)
        .await
        .map_err(|e| e.to_string())?;
    cairn_core::restore::check(graph, &metadata, folder.url(), false)
        .map(drop)
        .map_err(|e| e.to_string())
}

/// The running attempt is over: keep its checkpoints' statistics.
fn end_attempt(state: &mut State) {
    if let Some(attempt) = state.attempt.take() {
        state.history.merge(attempt.metrics.checkpoint_stats());
    }
}

fn set_status(state: &mut State, status: JobStatus) {
    state.status = status;
    state.timestamps.insert(status, now_ms());
}
