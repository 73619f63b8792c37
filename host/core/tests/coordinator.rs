//! The checkpoint coordinator's narrow windows, reached on purpose: jobs run in-process with
//! a native counting operator whose snapshots (and first records) the test holds and
//! releases, over a store that fails or holds uploads by rule. Every wait is on an event
//! (a snapshot entered, an upload held, a statistic changed), polled with a generous
//! deadline; nothing relies on a sleep being long enough.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use cairn_core::config::{CheckpointConfig, ConfigLayers, Retention};
use cairn_core::connectors::{FileSinkState, PendingPart};
use cairn_core::graph::Graph;
use cairn_core::operator::CallContext;
use cairn_core::operator::{OperatorError, OperatorFactory, OperatorInstance};
use cairn_core::restart::RestartStrategy;
use cairn_core::runtime::{
    CancelHandle, CheckpointStats, Checkpointing, CodeSwap, CoordinatorError, Job, JobFailure,
    JobMetrics, Outcome, Request, Restore, RunningJob, TaskError, TaskKind,
};
use cairn_core::state::metadata::{CheckpointKind, SubtaskState};
use cairn_core::state::{CheckpointMetadata, CheckpointStore, METADATA_FILE, StateStore, blob};
use cairn_core::supervisor::{End, Restored, Supervisor, Watcher};
use cairn_wire::timers::TimeDomain;
use cairn_wire::{
    Context, Emitter, JobGraph, KeyedChunk, OperatorStateMode, PackedBatch, Partitioning, Sink,
    Snapshot, Source, ValueEncoding, WatermarkStrategy,
};
use crossbeam_channel::{Receiver, Sender};
use futures::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::memory::InMemory;
use object_store::path::Path as StorePath;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult,
};

/// Longest any awaited event may take, on a loaded machine.
const DEADLINE: Duration = Duration::from_secs(60);
/// The periodic checkpoint interval of these tests.
const INTERVAL: Duration = Duration::from_millis(20);
/// The reason the coordinator gives checkpoints pending when the job stops.
const STOPPED: &str = "the job stopped";

/// Polls `done` until it holds, failing the test after [`DEADLINE`].
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + DEADLINE;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------
// Holds: points in the operator that wait until the test lets them pass.

#[derive(Default)]
struct HoldState {
    held: BTreeSet<u64>,
    /// Every `(subtask, id)` that reached a hold point, held or not.
    entered: Vec<(u32, u64)>,
    released_all: bool,
}

/// Hold points by id (checkpoint ids for snapshots).
#[derive(Default)]
struct Holds {
    state: Mutex<HoldState>,
    changed: Condvar,
}

impl Holds {
    fn hold(&self, id: u64) {
        self.state.lock().unwrap().held.insert(id);
    }

    fn release(&self, id: u64) {
        self.state.lock().unwrap().held.remove(&id);
        self.changed.notify_all();
    }

    /// Releases every hold, now and to come.
    fn release_all(&self) {
        self.state.lock().unwrap().released_all = true;
        self.changed.notify_all();
    }

    /// Subtask `subtask` reached point `id`: waits while it is held.
    fn enter(&self, subtask: u32, id: u64) {
        let mut state = self.state.lock().unwrap();
        state.entered.push((subtask, id));
        self.changed.notify_all();
        while state.held.contains(&id) && !state.released_all {
            state = self.changed.wait(state).unwrap();
        }
    }

    /// Waits until `subtasks` subtasks have reached point `id`.
    fn wait_entered(&self, id: u64, subtasks: usize) {
        let deadline = Instant::now() + DEADLINE;
        let mut state = self.state.lock().unwrap();
        while state.entered.iter().filter(|(_, i)| *i == id).count() < subtasks {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "timed out waiting for hold point {id}");
            state = self.changed.wait_timeout(state, left).unwrap().0;
        }
    }

    fn entered(&self) -> Vec<(u32, u64)> {
        self.state.lock().unwrap().entered.clone()
    }
}

// ---------------------------------------------------------------------------------------
// The operator: counts its records and passes each on as `<tag>:<n>`.

/// The hold point of an operator instance's first record.
const FIRST_RECORD: u64 = 0;

/// What the test controls and observes of the operators of one factory.
#[derive(Default)]
struct Knobs {
    /// Subtasks whose `restore` fails (on a job's restore and when preparing a swap).
    refuse_restore: Mutex<Vec<u32>>,
    /// The next record fails the operator.
    fail_now: AtomicBool,
    /// Snapshots by checkpoint id; and [`FIRST_RECORD`].
    holds: Holds,
    opened: AtomicU64,
    processed: AtomicU64,
    finished: AtomicU64,
    /// `(subtask, checkpoint)` of every `checkpoint_complete`.
    completed: Mutex<Vec<(u32, u64)>>,
    /// Operator `timers` registers none: only restored timers fire.
    register_no_timers: AtomicBool,
}

/// Operator `timers`: for each record, an event-time timer of its key at [`LATE`] (one per
/// key, however many records); operator `timeouts`: a processing-time timer of its key
/// 50 ms after the key's first record. Either emits `fired:<key>` when one fires. Keeps no
/// state but its timers.
struct Timers {
    register: bool,
    domain: TimeDomain,
    /// Keys whose processing-time timer is registered.
    timed: HashSet<Vec<u8>>,
}

/// Later than any record: only the end of event time fires it.
const LATE: i64 = 1 << 50;

impl OperatorInstance for Timers {
    fn process(
        &mut self,
        input: u32,
        batch: PackedBatch,
        _key_groups: &[u16],
        ctx: &mut CallContext,
    ) -> Result<PackedBatch, OperatorError> {
        if self.register {
            let at = match self.domain {
                TimeDomain::EventTime => LATE,
                TimeDomain::ProcessingTime => ctx.timers.current_processing_time() + 50,
            };
            for record in batch.records(input).unwrap() {
                let key = record.key().unwrap();
                // Processing time: once per key.
                if self.domain == TimeDomain::ProcessingTime && !self.timed.insert(key.to_vec()) {
                    continue;
                }
                ctx.timers
                    .register(self.domain, key, at)
                    .map_err(|e| OperatorError::Failed(e.to_string()))?;
            }
        }
        Ok(PackedBatch::default())
    }

    fn on_timers(
        &mut self,
        domain: TimeDomain,
        fired: PackedBatch,
        _key_groups: &[u16],
        ctx: &mut CallContext,
    ) -> Result<PackedBatch, OperatorError> {
        assert_eq!(domain, self.domain);
        let mut out = Emitter::default();
        for timer in fired.records(0).unwrap() {
            match domain {
                TimeDomain::EventTime => {
                    assert!(ctx.timers.current_watermark() >= LATE);
                    assert_eq!(timer.timestamp(), Some(LATE));
                }
                TimeDomain::ProcessingTime => {
                    assert!(timer.timestamp() <= Some(ctx.timers.current_processing_time()));
                }
            }
            out.emit(format!("fired:{}", timer.key_str().unwrap()));
        }
        Ok(out.take())
    }

    fn finish(&mut self, _ctx: &mut CallContext) -> Result<PackedBatch, OperatorError> {
        Ok(PackedBatch::default())
    }

    fn snapshot(&mut self, _checkpoint: u64) -> Result<Snapshot, OperatorError> {
        Ok(Snapshot {
            version: 1,
            operator_state: Vec::new(),
            mode: OperatorStateMode::Split,
            keyed: Vec::new(),
            value_encoding: ValueEncoding::Bytes,
        })
    }

    fn restore_keyed(&mut self, _: u32, _: Vec<KeyedChunk>) -> Result<(), OperatorError> {
        Ok(())
    }

    fn restore(&mut self, _: u32, _: Vec<Vec<u8>>) -> Result<(), OperatorError> {
        Ok(())
    }

    fn checkpoint_complete(&mut self, _: u64) -> Result<(), OperatorError> {
        Ok(())
    }
}

/// Opens operator `count`, tagging its output with `tag` (the code's version, for swaps),
/// each record's timestamp its number.
struct Counting {
    tag: &'static str,
    knobs: Arc<Knobs>,
}

struct Counter {
    tag: &'static str,
    knobs: Arc<Knobs>,
    subtask: u32,
    count: u64,
    /// Whether this instance has had a record (restored or not).
    started: bool,
}

impl OperatorFactory for Counting {
    fn open(&self, ctx: &Context, name: &str) -> Result<Box<dyn OperatorInstance>, OperatorError> {
        if name == "timers" || name == "timeouts" {
            return Ok(Box::new(Timers {
                register: !self.knobs.register_no_timers.load(Ordering::Relaxed),
                domain: if name == "timers" {
                    TimeDomain::EventTime
                } else {
                    TimeDomain::ProcessingTime
                },
                timed: HashSet::new(),
            }));
        }
        if name != "count" {
            return Err(OperatorError::Failed(format!("no operator '{name}'")));
        }
        self.knobs.opened.fetch_add(1, Ordering::Relaxed);
        Ok(Box::new(Counter {
            tag: self.tag,
            knobs: self.knobs.clone(),
            subtask: ctx.subtask,
            count: 0,
            started: false,
        }))
    }
}

impl OperatorInstance for Counter {
    fn process(
        &mut self,
        input: u32,
        batch: PackedBatch,
        _key_groups: &[u16],
        _ctx: &mut CallContext,
    ) -> Result<PackedBatch, OperatorError> {
        if !self.started {
            self.started = true;
            self.knobs.holds.enter(self.subtask, FIRST_RECORD);
        }
        if self.knobs.fail_now.load(Ordering::Relaxed) {
            return Err(OperatorError::Failed("failing on purpose".into()));
        }
        let mut out = Emitter::default();
        for record in batch.records(input).unwrap() {
            let n = u64::from_le_bytes(record.value().try_into().unwrap());
            // The sequence number is the record's event time.
            out.emit_with_timestamp("", format!("{}:{n}", self.tag), n as i64);
            self.count += 1;
        }
        self.knobs
            .processed
            .fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(out.take())
    }

    fn finish(&mut self, _ctx: &mut CallContext) -> Result<PackedBatch, OperatorError> {
        self.knobs.finished.fetch_add(1, Ordering::Relaxed);
        Ok(Emitter::default().take())
    }

    /// One opaque blob, as a `cairn:job@0.2.0` operator's state.
    fn snapshot(&mut self, checkpoint: u64) -> Result<Snapshot, OperatorError> {
        self.knobs.holds.enter(self.subtask, checkpoint);
        Ok(Snapshot {
            version: 1,
            operator_state: vec![self.count.to_le_bytes().to_vec()],
            mode: OperatorStateMode::Whole,
            keyed: Vec::new(),
            value_encoding: ValueEncoding::Bytes,
        })
    }

    fn restore_keyed(&mut self, _: u32, _: Vec<KeyedChunk>) -> Result<(), OperatorError> {
        Err(OperatorError::Failed(
            "the counter keeps no keyed state".into(),
        ))
    }

    fn restore(&mut self, _version: u32, items: Vec<Vec<u8>>) -> Result<(), OperatorError> {
        if self
            .knobs
            .refuse_restore
            .lock()
            .unwrap()
            .contains(&self.subtask)
        {
            return Err(OperatorError::Failed(format!(
                "{} refuses the state",
                self.tag
            )));
        }
        self.count = u64::from_le_bytes(items[0].as_slice().try_into().unwrap());
        Ok(())
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), OperatorError> {
        self.knobs
            .completed
            .lock()
            .unwrap()
            .push((self.subtask, checkpoint));
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// The store: in memory, failing or holding puts by rule, logging what it does.

/// Paths a rule applies to: containing `contains` and ending in `suffix`.
#[derive(Debug, Clone, Copy)]
struct Paths {
    contains: &'static str,
    suffix: &'static str,
}

impl Paths {
    fn matches(&self, path: &str) -> bool {
        path.contains(self.contains) && path.ends_with(self.suffix)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Op {
    /// A put that completed (`true`) or failed.
    Put(String, bool),
    /// A put that waits for its release.
    Held(String),
    Delete(String),
}

#[derive(Default)]
struct Rules {
    fail: Vec<Paths>,
    /// Fails the nth put (1-based) of paths ending in the suffix, and its retries.
    fail_nth: Option<(&'static str, usize)>,
    nth_seen: usize,
    failing_paths: HashSet<String>,
    holds: Vec<(Paths, tokio::sync::watch::Receiver<bool>)>,
}

struct FaultStore {
    inner: InMemory,
    rules: Mutex<Rules>,
    log: Arc<Mutex<Vec<Op>>>,
    /// The bytes of every `_metadata` put, failed or not, by path.
    metadata: Mutex<Vec<(String, Vec<u8>)>>,
}

impl fmt::Debug for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultStore")
    }
}

impl fmt::Display for FaultStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("FaultStore")
    }
}

/// Lets held puts go on.
struct Release(tokio::sync::watch::Sender<bool>);

impl Release {
    fn release(&self) {
        self.0.send_replace(true);
    }
}

impl FaultStore {
    fn new() -> Self {
        FaultStore {
            inner: InMemory::new(),
            rules: Mutex::default(),
            log: Arc::default(),
            metadata: Mutex::default(),
        }
    }

    fn fail_puts(&self, contains: &'static str, suffix: &'static str) {
        self.rules
            .lock()
            .unwrap()
            .fail
            .push(Paths { contains, suffix });
    }

    fn fail_nth_put(&self, suffix: &'static str, n: usize) {
        self.rules.lock().unwrap().fail_nth = Some((suffix, n));
    }

    fn hold_puts(&self, contains: &'static str, suffix: &'static str) -> Release {
        let (tx, rx) = tokio::sync::watch::channel(false);
        self.rules
            .lock()
            .unwrap()
            .holds
            .push((Paths { contains, suffix }, rx));
        Release(tx)
    }

    /// The first `_metadata` put to `path`, even one that failed.
    fn attempted_metadata(&self, path: &str) -> CheckpointMetadata {
        let metadata = self.metadata.lock().unwrap();
        let (_, bytes) = metadata.iter().find(|(p, _)| p == path).unwrap();
        CheckpointMetadata::from_bytes(bytes, path).unwrap()
    }

    fn log(&self) -> Vec<Op> {
        self.log.lock().unwrap().clone()
    }

    fn logged(&self, op: &Op) -> bool {
        self.log.lock().unwrap().contains(op)
    }

    fn record(&self, op: Op) {
        self.log.lock().unwrap().push(op);
    }

    /// Puts of `path` so far, as `(completed)` flags.
    fn puts_of(&self, path: &str) -> Vec<bool> {
        self.log()
            .into_iter()
            .filter_map(|op| match op {
                Op::Put(p, ok) if p == path => Some(ok),
                _ => None,
            })
            .collect()
    }
}

#[async_trait::async_trait]
impl ObjectStore for FaultStore {
    async fn put_opts(
        &self,
        location: &StorePath,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        let path = location.to_string();
        let (fail, hold) = {
            let mut rules = self.rules.lock().unwrap();
            if let Some((suffix, n)) = rules.fail_nth
                && path.ends_with(suffix)
                && !rules.failing_paths.contains(&path)
            {
                rules.nth_seen += 1;
                if rules.nth_seen == n {
                    rules.failing_paths.insert(path.clone());
                }
            }
            let fail = rules.failing_paths.contains(&path)
                || rules.fail.iter().any(|paths| paths.matches(&path));
            let hold = rules
                .holds
                .iter()
                .find(|(paths, _)| paths.matches(&path))
                .map(|(_, release)| release.clone());
            (fail, hold)
        };
        if path.ends_with(METADATA_FILE) {
            let bytes: Vec<u8> = payload.as_ref().iter().flatten().copied().collect();
            self.metadata.lock().unwrap().push((path.clone(), bytes));
        }
        if let Some(mut release) = hold {
            self.record(Op::Held(path.clone()));
            let _ = release.wait_for(|released| *released).await;
        }
        if fail {
            self.record(Op::Put(path.clone(), false));
            return Err(object_store::Error::Generic {
                store: "FaultStore",
                source: format!("injected failure writing {path}").into(),
            });
        }
        let result = self.inner.put_opts(location, payload, opts).await;
        self.record(Op::Put(path, result.is_ok()));
        result
    }

    async fn put_multipart_opts(
        &self,
        location: &StorePath,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &StorePath,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<StorePath>>,
    ) -> BoxStream<'static, object_store::Result<StorePath>> {
        let log = self.log.clone();
        let logged = locations
            .inspect(move |location| {
                if let Ok(path) = location {
                    log.lock().unwrap().push(Op::Delete(path.to_string()));
                }
            })
            .boxed();
        self.inner.delete_stream(logged)
    }

    fn list(
        &self,
        prefix: Option<&StorePath>,
    ) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&StorePath>,
    ) -> object_store::Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &StorePath,
        to: &StorePath,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}

// ---------------------------------------------------------------------------------------
// Running a job: generator → count → file sink, forward edges.

/// The job's folder in the store: `job/chk-<N>/…`.
const JOB: &str = "job";

/// A test's scratch folder, removed when the test ends.
struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Setup {
    runtime: tokio::runtime::Runtime,
    faults: Arc<FaultStore>,
    /// The job's checkpoint folder.
    storage: StateStore,
    /// The file sink's folder.
    out: PathBuf,
    knobs: Arc<Knobs>,
    cancel: CancelHandle,
    requests: (Sender<Request>, Receiver<Request>),
    _scratch: Scratch,
}

fn setup(name: &str) -> Setup {
    let dir = std::env::temp_dir().join(format!("cairn-coordinator-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let faults = Arc::new(FaultStore::new());
    let storage = StateStore::from_object_store(faults.clone(), "memory://faults").child(JOB);
    Setup {
        runtime: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap(),
        faults,
        storage,
        out: dir.join("out"),
        knobs: Arc::default(),
        cancel: CancelHandle::default(),
        requests: crossbeam_channel::unbounded(),
        _scratch: Scratch(dir),
    }
}

/// Checkpoints every [`INTERVAL`], kept on cancellation, with `change` applied.
fn config(change: impl FnOnce(&mut CheckpointConfig)) -> CheckpointConfig {
    let mut config = ConfigLayers::default().resolve().unwrap().checkpoints;
    config.interval = Some(INTERVAL);
    config.retention = Retention::RetainOnCancellation;
    change(&mut config);
    config
}

/// `count` records (0: unbounded) at `rate` per second (0: at once), every node with
/// `parallelism` subtasks.
fn graph(out: &Path, count: u64, rate: u64, parallelism: u32) -> Graph {
    let mut job = JobGraph::new("coordinator-test");
    job.source(
        "gen",
        Source::generator(count, 7).option("rate", rate.to_string()),
    )
    .operator("count", "count", Partitioning::Forward)
    .sink(
        "out",
        Sink::file(out.to_str().unwrap()),
        Partitioning::Forward,
    );
    Graph::new(&job, parallelism, 128).unwrap()
}

impl Setup {
    fn operators(&self) -> Arc<dyn OperatorFactory> {
        Arc::new(Counting {
            tag: "v1",
            knobs: self.knobs.clone(),
        })
    }

    fn checkpointing(&self, config: CheckpointConfig, stored: bool) -> Checkpointing {
        Checkpointing {
            config,
            storage: stored.then(|| CheckpointStore::new(self.storage.clone())),
            runtime: self.runtime.handle().clone(),
            first_id: 1,
        }
    }

    fn start(&self, graph: Graph, checkpoints: Checkpointing) -> RunningJob {
        self.start_attempt(graph, checkpoints, None, 0)
    }

    fn start_attempt(
        &self,
        graph: Graph,
        checkpoints: Checkpointing,
        restore: Option<Restore>,
        attempt: u32,
    ) -> RunningJob {
        Job {
            restore,
            attempt,
            ..self.job(graph, checkpoints)
        }
        .start()
        .unwrap()
    }

    /// A first attempt of `graph`, not started.
    fn job(&self, graph: Graph, checkpoints: Checkpointing) -> Job {
        Job {
            id: JOB.into(),
            graph,
            operators: self.operators(),
            checkpoints,
            restore: None,
            attempt: 0,
            cancel: self.cancel.clone(),
            requests: Some(self.requests.1.clone()),
            watermark_interval: None,
        }
    }

    /// Waits until the (single) operator subtask is held in the snapshot of checkpoint
    /// `id`, cancels the job, waits until the coordinator has given up what was pending,
    /// and only then lets the snapshot go on: nothing after `id` can complete.
    fn cancel_at(&self, job: RunningJob, id: u64) -> (Outcome, CheckpointStats) {
        self.knobs.holds.wait_entered(id, 1);
        self.cancel.cancel();
        let metrics = job.metrics();
        eventually("the coordinator to stop", || {
            metrics
                .checkpoint_stats()
                .latest_failed
                .is_some_and(|f| f.reason == STOPPED)
        });
        self.knobs.holds.release_all();
        let outcome = job.wait();
        (outcome, metrics.checkpoint_stats())
    }

    /// A supervisor of a job checkpointing into the store, restarting up to 3 times at once.
    fn supervisor(&self) -> Supervisor {
        Supervisor {
            job_id: JOB.into(),
            checkpoints: self.checkpointing(config(|_| {}), true),
            restore: None,
            restore_path: None,
            s3: Default::default(),
            restart: RestartStrategy::FixedDelay {
                attempts: 3,
                delay: Duration::ZERO,
            },
            cancel: self.cancel.clone(),
            watermark_interval: None,
        }
    }

    /// The checkpoints in the store, each with whether it has `_metadata`.
    fn checkpoints(&self) -> Vec<(u64, bool)> {
        self.runtime
            .block_on(CheckpointStore::new(self.storage.clone()).list())
            .unwrap()
    }

    /// Every file in the store under `prefix`.
    fn files(&self, prefix: &str) -> Vec<String> {
        let prefix = StorePath::from(prefix);
        let mut files: Vec<String> = self
            .runtime
            .block_on(
                self.faults
                    .inner
                    .list(Some(&prefix))
                    .map_ok(|meta| meta.location.to_string())
                    .try_collect::<Vec<_>>(),
            )
            .unwrap();
        files.sort();
        files
    }

    fn metadata(&self, id: u64) -> CheckpointMetadata {
        let folder = self.storage.child(&format!("chk-{id}"));
        let bytes = self.runtime.block_on(folder.get(METADATA_FILE)).unwrap();
        CheckpointMetadata::from_bytes(&bytes, &folder.url_of(METADATA_FILE)).unwrap()
    }

    /// The count the operator subtask stored in checkpoint `id`.
    fn stored_count(&self, id: u64, meta: &CheckpointMetadata, subtask: usize) -> u64 {
        let node = meta.nodes.iter().find(|n| n.uid == "count").unwrap();
        let SubtaskState::Operator { file: Some(file) } = &node.subtasks[subtask].state else {
            panic!("no state file for count {subtask}");
        };
        let folder = self.storage.child(&format!("chk-{id}"));
        let stored = self.runtime.block_on(folder.get(&file.path)).unwrap();
        let raw = blob::decode(&stored, &file.info().unwrap(), &file.path).unwrap();
        u64::from_le_bytes(raw.as_slice().try_into().unwrap())
    }

    /// The sink's committed lines, per sink subtask, in file order.
    fn committed(&self, parallelism: u32) -> Vec<Vec<String>> {
        (0..parallelism)
            .map(|subtask| {
                let prefix = format!("part-out-{subtask}-");
                let mut parts: Vec<(u64, PathBuf)> = std::fs::read_dir(&self.out)
                    .unwrap()
                    .map(|e| e.unwrap())
                    .filter_map(|e| {
                        let name = e.file_name().to_string_lossy().into_owned();
                        let n = name.strip_prefix(&prefix)?.parse().ok()?;
                        Some((n, e.path()))
                    })
                    .collect();
                parts.sort();
                parts
                    .iter()
                    .flat_map(|(_, path)| {
                        std::fs::read_to_string(path)
                            .unwrap()
                            .lines()
                            .map(str::to_owned)
                            .collect::<Vec<_>>()
                    })
                    .collect()
            })
            .collect()
    }

    /// Whether the sink's folder has file `name`.
    fn out_has(&self, name: &str) -> bool {
        self.out.join(name).exists()
    }
}

/// The ids of the completed checkpoints, in the order they completed.
fn completed(stats: &CheckpointStats) -> Vec<u64> {
    stats.history.iter().map(|c| c.id).collect()
}

/// Where generator subtask `subtask` stood in a checkpoint.
fn source_next(meta: &CheckpointMetadata, subtask: usize) -> u64 {
    let node = meta.nodes.iter().find(|n| n.uid == "gen").unwrap();
    match &node.subtasks[subtask].state {
        SubtaskState::Source {
            connector,
            position,
        } if connector == "generator" => {
            // The generator's position encoding: per split s (producing s, s + 128, …) JSON
            // `{"next": N}`; the records it produced are the splits' counts summed.
            position
                .splits
                .iter()
                .map(|split| {
                    let json: serde_json::Value = serde_json::from_slice(&split.position).unwrap();
                    let s: u64 = split.split.parse().unwrap();
                    (json["next"].as_u64().unwrap() - s) / 128
                })
                .sum()
        }
        other => panic!("not a generator position: {other:?}"),
    }
}

/// The sink's pending parts in a checkpoint.
fn sink_pending(meta: &CheckpointMetadata) -> Vec<PendingPart> {
    let node = meta.nodes.iter().find(|n| n.uid == "out").unwrap();
    match &node.subtasks[0].state {
        SubtaskState::Sink { state, .. } => FileSinkState::decode(state).unwrap().pending,
        other => panic!("not a sink state: {other:?}"),
    }
}

/// The numbers generator subtask `subtask` of `parallelism` produces from the start, in
/// order: its contiguous range of the 128 splits (split s: s, s + 128, …), round robin.
fn produced_by(subtask: u32, parallelism: u32, count: u64) -> impl Iterator<Item = u64> {
    let splits = cairn_wire::KeyGroupRange::of_subtask(subtask, 128, parallelism);
    (0..count.div_ceil(128))
        .flat_map(move |round| splits.iter().map(move |s| round * 128 + u64::from(s)))
        .filter(move |n| *n < count)
}

fn lines(tag: &str, numbers: impl Iterator<Item = u64>) -> Vec<String> {
    numbers.map(|n| format!("{tag}:{n}")).collect()
}

fn state_file(id: u64) -> String {
    format!("{JOB}/chk-{id}/count/0.zst")
}

fn metadata_file(id: u64) -> String {
    format!("{JOB}/chk-{id}/_metadata")
}

// ---------------------------------------------------------------------------------------
// The tests.

/// The second state upload fails (every retry): checkpoint 2 fails, checkpoint 3
/// completes, within `tolerable-failed-checkpoints: 1`. Checkpoint 3's `_metadata` holds
/// the source position and an operator state of exactly as many records.
#[test]
fn a_failed_state_upload_fails_only_its_checkpoint() {
    let s = setup("failed-upload");
    s.faults.fail_nth_put(".zst", 2);
    s.knobs.holds.hold(4);
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(config(|c| c.tolerable_failures = 1), true),
    );
    let metrics = job.metrics();
    s.knobs.holds.wait_entered(4, 1);
    let before = metrics.checkpoint_stats();
    assert_eq!(completed(&before), [1, 3]);
    let failed = before.latest_failed.unwrap();
    assert_eq!(failed.id, 2);
    assert!(
        failed
            .reason
            .contains("count (1/1) could not store its state")
            && failed.reason.contains("injected failure"),
        "{}",
        failed.reason
    );
    // Every attempt at chk-2's state failed; nothing of chk-2 was left behind.
    assert_eq!(s.faults.puts_of(&state_file(2)), [false; 4]);
    assert!(s.faults.puts_of(&metadata_file(2)).is_empty());
    assert_eq!(s.files("job/chk-2"), Vec::<String>::new());

    let (outcome, stats) = s.cancel_at(job, 4);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [1, 3]);
    // 2 failed, 4 was pending when the job stopped.
    assert_eq!(stats.failed, 2);
    assert_eq!(stats.latest_failed.unwrap().id, 4);
    // num-retained 1: only chk-3 is left.
    assert_eq!(s.checkpoints(), [(3, true)]);
    assert_eq!(
        s.files(JOB),
        [metadata_file(3), state_file(3)],
        "chk-4's late upload must be deleted"
    );
    let meta = s.metadata(3);
    assert_eq!(meta.checkpoint_id, 3);
    assert_eq!(meta.kind, CheckpointKind::Checkpoint);
    assert_eq!(meta.job_id, JOB);
    let uids: Vec<&str> = meta.nodes.iter().map(|n| n.uid.as_str()).collect();
    assert_eq!(uids, ["gen", "count", "out"]);
    assert_eq!(s.stored_count(3, &meta, 0), source_next(&meta, 0));
}

/// `tolerable-failed-checkpoints: 1` counts consecutive failures: 2 fails, 3 completes
/// (the count starts over), 4 and 5 fail and the job fails with the coordinator's error,
/// keeping checkpoint 3.
#[test]
fn consecutive_failures_beyond_the_tolerable_fail_the_job() {
    let s = setup("tolerable");
    s.faults.fail_puts("/chk-2/", ".zst");
    s.faults.fail_puts("/chk-4/", ".zst");
    s.faults.fail_puts("/chk-5/", ".zst");
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(config(|c| c.tolerable_failures = 1), true),
    );
    let metrics = job.metrics();
    let outcome = job.wait();
    let Outcome::Failed(failure) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.task.uid, "checkpoint coordinator");
    match &failure.error {
        TaskError::Checkpoint(CoordinatorError::TooManyFailures {
            failures,
            tolerable,
            reason,
        }) => {
            assert_eq!((*failures, *tolerable), (2, 1));
            assert!(reason.contains("injected failure"), "{reason}");
        }
        other => panic!("expected too many failures, got {other}"),
    }
    let stats = metrics.checkpoint_stats();
    assert_eq!(completed(&stats), [1, 3]);
    assert_eq!(stats.failed, 3);
    assert_eq!(stats.latest_failed.unwrap().id, 5);
    // A failed job keeps its checkpoints: the last completed one, nothing of 4 and 5.
    assert_eq!(s.checkpoints(), [(3, true)]);
    assert_eq!(s.files(JOB), [metadata_file(3), state_file(3)]);
}

/// Writing checkpoint 2's `_metadata` fails: 2 is not complete, its folder is removed, the
/// sink's part pending for 2 stays hidden until checkpoint 3 commits it with its own.
#[test]
fn a_failed_metadata_write_completes_and_commits_nothing() {
    let s = setup("metadata");
    s.faults.fail_puts("/chk-2/", METADATA_FILE);
    s.knobs.holds.hold(3);
    s.knobs.holds.hold(4);
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(
            config(|c| {
                c.tolerable_failures = 1;
                // Long enough for records between barriers on a loaded machine.
                c.interval = Some(Duration::from_millis(100));
            }),
            true,
        ),
    );
    let metrics = job.metrics();
    s.knobs.holds.wait_entered(3, 1);
    // The write is retried off the coordinator's thread, which meanwhile triggered 3.
    eventually("checkpoint 2 to fail", || {
        metrics.checkpoint_stats().latest_failed.is_some()
    });
    let stats = metrics.checkpoint_stats();
    assert_eq!(completed(&stats), [1]);
    let failed = stats.latest_failed.unwrap();
    assert_eq!(failed.id, 2);
    assert!(failed.reason.contains("_metadata"), "{}", failed.reason);
    assert_eq!(s.faults.puts_of(&metadata_file(2)), [false; 4]);
    eventually("chk-2's state to be deleted", || {
        s.files("job/chk-2").is_empty() && s.faults.logged(&Op::Delete(state_file(2)))
    });
    assert_eq!(s.checkpoints(), [(1, true)]);
    // Checkpoint 1 committed its parts; the parts pending for 2 (as its failed `_metadata`
    // lists them) stay hidden.
    let due = |meta: &CheckpointMetadata, id: u64| -> Vec<PendingPart> {
        let mut parts = sink_pending(meta);
        parts.retain(|p| p.checkpoint == id);
        parts
    };
    let first = due(&s.metadata(1), 1);
    let second = due(&s.faults.attempted_metadata(&metadata_file(2)), 2);
    assert!(
        !second.is_empty(),
        "records reached the sink between barriers 1 and 2"
    );
    eventually("checkpoint 1's parts to be committed", || {
        first.iter().all(|p| s.out_has(&p.committed))
    });
    for part in &second {
        assert!(
            s.out_has(&part.in_progress) && !s.out_has(&part.committed),
            "{part:?}"
        );
    }

    s.knobs.holds.release(3);
    s.knobs.holds.wait_entered(4, 1);
    assert_eq!(completed(&metrics.checkpoint_stats()), [1, 3]);
    let meta = s.metadata(3);
    // When 3's barrier came, 2's parts were still pending: 3 commits them with its own.
    let third = due(&meta, 3);
    assert_eq!(
        sink_pending(&meta),
        [second.clone(), third.clone()].concat()
    );
    eventually("checkpoint 2's and 3's parts to be committed", || {
        second.iter().chain(&third).all(|p| s.out_has(&p.committed))
    });
    let (outcome, stats) = s.cancel_at(job, 4);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [1, 3]);
    // Exactly the records before checkpoint 3's barrier are visible, each once.
    assert_eq!(s.committed(1), [lines("v1", 0..source_next(&meta, 0))]);
}

/// Checkpoint 2's upload hangs past `execution.checkpointing.timeout`: 2 expires and its
/// folder is deleted, 3 completes; when the upload finally lands, its file is deleted.
#[test]
fn an_upload_past_the_timeout_is_aborted_and_its_late_file_deleted() {
    let s = setup("timeout");
    let release = s.faults.hold_puts("/chk-2/", ".zst");
    s.knobs.holds.hold(4);
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(
            config(|c| {
                c.timeout = Duration::from_secs(2);
                c.tolerable_failures = 5;
            }),
            true,
        ),
    );
    let metrics = job.metrics();
    eventually("chk-2's upload to hang", || {
        s.faults.logged(&Op::Held(state_file(2)))
    });
    s.knobs.holds.wait_entered(4, 1);
    let stats = metrics.checkpoint_stats();
    assert_eq!(completed(&stats), [1, 3]);
    let failed = stats.latest_failed.unwrap();
    assert_eq!(failed.id, 2);
    assert!(
        failed.reason.contains("execution.checkpointing.timeout"),
        "{}",
        failed.reason
    );
    assert!(s.files("job/chk-2").is_empty());

    release.release();
    eventually("the late file to be written and deleted", || {
        s.faults.puts_of(&state_file(2)) == [true] && s.faults.logged(&Op::Delete(state_file(2)))
    });
    assert!(s.files("job/chk-2").is_empty());
    assert!(s.faults.puts_of(&metadata_file(2)).is_empty());
    let (outcome, stats) = s.cancel_at(job, 4);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [1, 3]);
    assert_eq!(s.checkpoints(), [(3, true)]);
}

/// Every upload hangs: each checkpoint expires after `execution.checkpointing.timeout`,
/// and the third consecutive expiry is one more than `tolerable-failed-checkpoints: 2`
/// (it replaces an end-to-end test whose 1 ms timeout a fast checkpoint could beat).
#[test]
fn expired_checkpoints_beyond_the_tolerance_fail_the_job() {
    let s = setup("expired");
    let release = s.faults.hold_puts("/chk-", ".zst");
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(
            config(|c| {
                c.timeout = Duration::from_millis(100);
                c.tolerable_failures = 2;
            }),
            true,
        ),
    );
    let metrics = job.metrics();
    // The job's end waits for abandoned uploads: let them land once the job has failed.
    let waiter = std::thread::spawn(move || job.wait());
    eventually("three checkpoints to expire", || {
        metrics.checkpoint_stats().failed == 3
    });
    release.release();
    let Outcome::Failed(failure) = waiter.join().unwrap() else {
        panic!("expected a failure");
    };
    assert_eq!(
        failure.error.to_string(),
        "3 consecutive checkpoints failed, more than \
         execution.checkpointing.tolerable-failed-checkpoints (2); last: expired after \
         execution.checkpointing.timeout (100ms)"
    );
    let stats = metrics.checkpoint_stats();
    assert!(completed(&stats).is_empty());
    assert_eq!(stats.failed, 3);
    for id in 1..=3 {
        assert!(s.faults.logged(&Op::Held(state_file(id))), "{id}");
    }
    // What the uploads wrote when they landed is deleted; no checkpoint is left.
    assert_eq!(s.checkpoints(), []);
    assert!(s.files(JOB).is_empty(), "{:?}", s.files(JOB));
}

/// With two checkpoints in flight, 2 completes while 1's upload hangs: 1 is subsumed (not
/// completed, its folder deleted); its late acknowledgement deletes what it wrote, and
/// checkpoint 2 commits the sink's parts of both.
#[test]
fn a_newer_checkpoint_subsumes_an_older_one_whose_ack_comes_late() {
    let s = setup("subsume");
    let release = s.faults.hold_puts("/chk-1/", ".zst");
    s.knobs.holds.hold(3);
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(config(|c| c.max_concurrent = 2), true),
    );
    let metrics = job.metrics();
    s.knobs.holds.wait_entered(3, 1);
    let stats = metrics.checkpoint_stats();
    assert_eq!(completed(&stats), [2]);
    let failed = stats.latest_failed.unwrap();
    assert_eq!(
        (failed.id, failed.reason.as_str()),
        (1, "subsumed by checkpoint 2")
    );
    assert!(s.faults.logged(&Op::Held(state_file(1))));
    assert_eq!(s.checkpoints(), [(2, true)]);
    // Checkpoint 2 commits what was pending for 1 as well as its own.
    let parts = sink_pending(&s.metadata(2));
    assert!(
        parts.iter().all(|p| p.checkpoint == 1 || p.checkpoint == 2),
        "{parts:?}"
    );
    eventually("checkpoint 2 to commit the parts of 1 and 2", || {
        parts.iter().all(|p| s.out_has(&p.committed))
    });

    release.release();
    eventually("the late file to be written and deleted", || {
        s.faults.puts_of(&state_file(1)) == [true] && s.faults.logged(&Op::Delete(state_file(1)))
    });
    assert!(s.files("job/chk-1").is_empty());
    assert!(s.faults.puts_of(&metadata_file(1)).is_empty());
    let meta = s.metadata(2);
    let (outcome, stats) = s.cancel_at(job, 3);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [2]);
    assert_eq!(s.checkpoints(), [(2, true)]);
    assert_eq!(s.committed(1), [lines("v1", 0..source_next(&meta, 0))]);
    // The operator never heard of checkpoint 1 completing.
    assert!(!s.knobs.completed.lock().unwrap().contains(&(0, 1)));
}

/// `max-concurrent-checkpoints: 2`: with 1 and 2 both uploading, no third starts; released
/// in order, they complete in order, neither subsumed.
#[test]
fn concurrent_checkpoints_complete_in_order() {
    let s = setup("concurrent");
    let first = s.faults.hold_puts("/chk-1/", ".zst");
    let second = s.faults.hold_puts("/chk-2/", ".zst");
    s.knobs.holds.hold(3);
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(config(|c| c.max_concurrent = 2), true),
    );
    let metrics = job.metrics();
    eventually("both uploads to hang", || {
        s.faults.logged(&Op::Held(state_file(1))) && s.faults.logged(&Op::Held(state_file(2)))
    });
    // Many intervals pass with two checkpoints in flight: a third never starts. (A wait
    // that can only miss a bug, never fail a correct run.)
    std::thread::sleep(INTERVAL * 10);
    assert_eq!(metrics.next_checkpoint_id(), 3);
    assert!(s.knobs.holds.entered().iter().all(|(_, id)| *id < 3));
    assert_eq!(metrics.checkpoint_stats().in_progress, 2);

    first.release();
    eventually("checkpoint 1 to complete", || {
        completed(&metrics.checkpoint_stats()) == [1]
    });
    second.release();
    eventually("checkpoint 2 to complete", || {
        completed(&metrics.checkpoint_stats()) == [1, 2]
    });
    let (outcome, stats) = s.cancel_at(job, 3);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [1, 2]);
    // Once 2 completed, 4 may have started beside the held 3; either way only what was
    // pending at the cancel failed.
    let triggered = metrics.next_checkpoint_id() - 1;
    assert!((3..=4).contains(&triggered), "{triggered}");
    assert_eq!(stats.failed, triggered - 2);
    assert_eq!(s.checkpoints(), [(2, true)]);
}

/// Checkpoint 1's `_metadata` write hangs; the coordinator goes on (the write is off its
/// thread), and checkpoint 2 completes first. When 1's write lands, 1 is subsumed: deleted,
/// counted as failed, never announced complete. A write under way counts against
/// `max-concurrent-checkpoints`.
#[test]
fn a_metadata_write_landing_after_a_newer_checkpoint_is_subsumed() {
    let s = setup("late-metadata");
    let first = s.faults.hold_puts("/chk-1/", METADATA_FILE);
    s.knobs.holds.hold(3);
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(config(|c| c.max_concurrent = 2), true),
    );
    let metrics = job.metrics();
    eventually("checkpoint 2 to complete", || {
        completed(&metrics.checkpoint_stats()) == [2]
    });
    assert!(s.faults.logged(&Op::Held(metadata_file(1))));
    first.release();
    eventually("checkpoint 1 to be subsumed", || {
        metrics
            .checkpoint_stats()
            .latest_failed
            .is_some_and(|f| f.id == 1 && f.reason == "subsumed by checkpoint 2")
    });
    let (outcome, stats) = s.cancel_at(job, 3);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [2]);
    assert_eq!(s.checkpoints(), [(2, true)]);
}

/// `num-retained: 2` keeps exactly the two latest checkpoints, and counts an earlier
/// attempt's: a restored second attempt deletes them as its own complete. Across the
/// restore, every record reaches the sink exactly once.
#[test]
fn retention_keeps_exactly_num_retained_across_attempts() {
    let s = setup("retention");
    s.knobs.holds.hold(5);
    let checkpoints = s.checkpointing(config(|c| c.num_retained = 2), true);
    let job = s.start(graph(&s.out, 0, 2000, 1), checkpoints.clone());
    let (outcome, stats) = s.cancel_at(job, 5);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [1, 2, 3, 4]);
    assert_eq!(s.checkpoints(), [(3, true), (4, true)]);

    // The second attempt restores checkpoint 4, as a restart would.
    let folder = s.storage.child("chk-4");
    let metadata = s.metadata(4);
    let restore = s
        .runtime
        .block_on(cairn_core::restore::load(
            folder,
            metadata.clone(),
            &graph(&s.out, 0, 2000, 1),
        ))
        .unwrap();
    let restored_count = s.stored_count(4, &metadata, 0);
    let s2 = Setup {
        knobs: Arc::default(),
        cancel: CancelHandle::default(),
        ..s
    };
    s2.knobs.holds.hold(7);
    let job = s2.start_attempt(
        graph(&s2.out, 0, 2000, 1),
        Checkpointing {
            first_id: 5,
            ..checkpoints
        },
        Some(restore),
        1,
    );
    let (outcome, stats) = s2.cancel_at(job, 7);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    assert_eq!(completed(&stats), [5, 6]);
    assert_eq!(s2.checkpoints(), [(5, true), (6, true)]);
    let meta = s2.metadata(6);
    let next = source_next(&meta, 0);
    // The restored operator went on counting from checkpoint 4's state: it has counted
    // every record before checkpoint 6's barrier, the first attempt's too.
    assert_eq!(s2.stored_count(6, &meta, 0), next);
    assert!(next >= restored_count);
    assert_eq!(s2.committed(1), [lines("v1", 0..next)]);
}

/// Generator → `count` (its records stamped with their numbers, a watermark strategy with a
/// 10 ms bound) → file sink, at parallelism 2.
fn watermark_graph(out: &Path) -> Graph {
    let mut job = JobGraph::new("watermarks");
    job.source("gen", Source::generator(0, 7).option("rate", "2000"))
        .operator("count", "count", Partitioning::Rebalance)
        .watermarks(WatermarkStrategy::bounded_out_of_orderness(10))
        .sink(
            "out",
            Sink::file(out.to_str().unwrap()),
            Partitioning::Forward,
        );
    Graph::new(&job, 2, 128).unwrap()
}

/// Each subtask's (input, output) watermarks, of the subtasks of `kind`.
fn watermarks(metrics: &JobMetrics, kind: TaskKind) -> Vec<(i64, i64)> {
    metrics
        .sample(Instant::now())
        .into_iter()
        .filter(|sample| sample.kind == kind)
        .map(|sample| (sample.input_watermark, sample.output_watermark))
        .collect()
}

/// A watermark strategy on an operator: watermarks follow the timestamps it emits (its
/// records' numbers, minus the bound and 1 ms), periodically, and reach the sink while the
/// job runs; an upstream without a strategy sends none.
#[test]
fn watermarks_follow_the_timestamps_an_operator_emits() {
    let s = setup("watermarks");
    let checkpoints = s.checkpointing(config(|c| c.interval = None), false);
    let running = Job {
        watermark_interval: Some(Duration::from_millis(10)),
        ..s.job(watermark_graph(&s.out), checkpoints)
    }
    .start()
    .unwrap();
    let metrics = running.metrics();
    // Samples are shared for a second: ask again until they show it.
    eventually("the sinks' watermarks to pass 200", || {
        watermarks(&metrics, TaskKind::Sink)
            .iter()
            .all(|&(input, _)| (200..i64::MAX).contains(&input))
    });
    for (input, output) in watermarks(&metrics, TaskKind::Operator) {
        assert_eq!(input, i64::MIN, "the source has no strategy");
        assert!((200..i64::MAX).contains(&output));
    }
    s.cancel.cancel();
    running.wait();
}

/// Checkpoints hold each subtask's last watermark; a restored job starts from them, before
/// any record: the sinks see each operator subtask's checkpointed watermark at once.
#[test]
fn a_restored_job_starts_from_its_checkpointed_watermarks() {
    let s = setup("watermarks-restored");
    let checkpoints = s.checkpointing(
        config(|c| c.interval = Some(Duration::from_millis(50))),
        true,
    );
    let running = Job {
        watermark_interval: Some(Duration::from_millis(10)),
        ..s.job(watermark_graph(&s.out), checkpoints.clone())
    }
    .start()
    .unwrap();
    let metrics = running.metrics();
    eventually("a checkpoint with watermarks past 200", || {
        let stats = metrics.checkpoint_stats();
        stats.latest_checkpoint.is_some_and(|c| {
            s.metadata(c.id).nodes[1]
                .subtasks
                .iter()
                .all(|sub| sub.watermark.is_some_and(|w| w >= 200))
        })
    });
    s.cancel.cancel();
    running.wait();
    let latest = metrics.checkpoint_stats().latest_checkpoint.unwrap().id;
    let metadata = s.metadata(latest);
    let floors: Vec<i64> = metadata.nodes[1]
        .subtasks
        .iter()
        .map(|sub| sub.watermark.unwrap())
        .collect();
    assert!(
        metadata.nodes[0]
            .subtasks
            .iter()
            .all(|sub| sub.watermark.is_none()),
        "the source sent none"
    );

    let restore = s
        .runtime
        .block_on(cairn_core::restore::load(
            s.storage.child(&format!("chk-{latest}")),
            metadata,
            &watermark_graph(&s.out),
        ))
        .unwrap();
    let s2 = Setup {
        knobs: Arc::default(),
        cancel: CancelHandle::default(),
        ..s
    };
    // No record gets through the operators: what the sinks see is the restored floor.
    s2.knobs.holds.hold(FIRST_RECORD);
    let running = Job {
        restore: Some(restore),
        attempt: 1,
        watermark_interval: Some(Duration::from_millis(10)),
        ..s2.job(
            watermark_graph(&s2.out),
            Checkpointing {
                first_id: latest + 1,
                ..checkpoints
            },
        )
    }
    .start()
    .unwrap();
    let metrics = running.metrics();
    eventually("the sinks to see the restored watermarks", || {
        let inputs: Vec<i64> = watermarks(&metrics, TaskKind::Sink)
            .iter()
            .map(|&(input, _)| input)
            .collect();
        inputs == floors
    });
    s2.cancel.cancel();
    s2.knobs.holds.release_all();
    running.wait();
}

/// Generator (`count` records, 7 keys) → by key → operator `operator` (`timers` or
/// `timeouts`) at `parallelism` → file sink.
fn timers_graph(out: &Path, operator: &str, count: u64, parallelism: u32) -> Graph {
    let mut job = JobGraph::new("timers");
    job.source("gen", Source::generator(count, 7).option("rate", "2000"))
        .operator(operator, operator, Partitioning::ByKey)
        .parallelism(parallelism)
        .sink(
            "out",
            Sink::file(out.to_str().unwrap()),
            Partitioning::Rebalance,
        );
    Graph::new(&job, 1, 128).unwrap()
}

/// Processing-time timers fire by the clock while the input keeps coming (the subtask's
/// wait for input ends when one is due): each key's, 50 ms after its first record, once.
#[test]
fn processing_timers_fire_by_the_clock() {
    let s = setup("timeouts");
    let checkpoints = s.checkpointing(
        config(|c| c.interval = Some(Duration::from_millis(50))),
        true,
    );
    let running = s.start(timers_graph(&s.out, "timeouts", 0, 2), checkpoints);
    let expected: Vec<String> = (0..7).map(|k| format!("fired:key-{k}")).collect();
    eventually("every key's timeout committed", || {
        // The sink makes its folder when it opens.
        if !s.out.exists() {
            return false;
        }
        let mut fired = s.committed(1).concat();
        fired.sort();
        fired == expected
    });
    s.cancel.cancel();
    running.wait();
}

/// Timers are checkpointed per key group and restored at another parallelism: a job that
/// registered one timer per key, restored at parallelism 3 from a checkpoint taken at 2 by
/// operators that register none, fires each key's timer exactly once when its input ends.
#[test]
fn timers_survive_a_restore_at_another_parallelism() {
    let s = setup("timers");
    let checkpoints = s.checkpointing(
        config(|c| c.interval = Some(Duration::from_millis(50))),
        true,
    );
    let running = s.start(timers_graph(&s.out, "timers", 0, 2), checkpoints.clone());
    let metrics = running.metrics();
    eventually("a checkpoint holding every key's timer", || {
        metrics
            .checkpoint_stats()
            .latest_checkpoint
            .is_some_and(|c| {
                let metadata = s.metadata(c.id);
                let timers: u64 = metadata.nodes[1]
                    .subtasks
                    .iter()
                    .map(|sub| match &sub.state {
                        SubtaskState::KeyedOperator { state } => {
                            state.timers.iter().map(|t| t.entries).sum()
                        }
                        _ => 0,
                    })
                    .sum();
                timers == 7
            })
    });
    s.cancel.cancel();
    running.wait();
    let latest = metrics.checkpoint_stats().latest_checkpoint.unwrap().id;
    let metadata = s.metadata(latest);
    assert_eq!(metadata.format, 4);

    let restore = s
        .runtime
        .block_on(cairn_core::restore::load(
            s.storage.child(&format!("chk-{latest}")),
            metadata,
            &timers_graph(&s.out, "timers", 4000, 3),
        ))
        .unwrap();
    let s2 = Setup {
        knobs: Arc::default(),
        cancel: CancelHandle::default(),
        ..s
    };
    s2.knobs.register_no_timers.store(true, Ordering::Relaxed);
    let outcome = s2
        .start_attempt(
            timers_graph(&s2.out, "timers", 4000, 3),
            Checkpointing {
                first_id: latest + 1,
                ..checkpoints
            },
            Some(restore),
            1,
        )
        .wait();
    assert!(matches!(outcome, Outcome::Finished), "{outcome:?}");
    let mut fired: Vec<String> = s2.committed(1).concat();
    fired.sort();
    assert_eq!(
        fired,
        (0..7).map(|k| format!("fired:key-{k}")).collect::<Vec<_>>()
    );
}

/// A bounded job: once every source has ended, the final checkpoint (stored, with
/// `_metadata`) commits all output, operators drain first; FINISHED then deletes the job's
/// checkpoints.
#[test]
fn the_final_checkpoint_commits_the_sinks_at_the_end_of_bounded_input() {
    let s = setup("final");
    let checkpoints = s.checkpointing(config(|c| c.interval = None), true);
    let job = s.start(graph(&s.out, 5000, 0, 2), checkpoints);
    let metrics = job.metrics();
    let outcome = job.wait();
    assert!(matches!(outcome, Outcome::Finished), "{outcome:?}");
    let stats = metrics.checkpoint_stats();
    assert_eq!(completed(&stats), [1]);
    assert_eq!(stats.failed, 0);
    assert_eq!(s.faults.puts_of(&metadata_file(1)), [true]);
    assert_eq!(s.knobs.finished.load(Ordering::Relaxed), 2);
    // Event time ended with the input: every subtask passed the end of time on (sources
    // send it before reporting the end, so it precedes the final barrier everywhere).
    for sample in metrics.sample(Instant::now()) {
        let (input, output) = (sample.input_watermark, sample.output_watermark);
        match sample.kind {
            TaskKind::Source => assert_eq!((input, output), (i64::MIN, i64::MAX)),
            TaskKind::Operator => assert_eq!((input, output), (i64::MAX, i64::MAX)),
            TaskKind::Sink => assert_eq!((input, output), (i64::MAX, i64::MIN)),
        }
    }
    let mut heard = s.knobs.completed.lock().unwrap().clone();
    heard.sort();
    assert_eq!(heard, [(0, 1), (1, 1)]);
    // Each generator subtask produces its splits' numbers: all of 0..5000 across the two.
    assert_eq!(
        s.committed(2),
        [
            lines("v1", produced_by(0, 2, 5000)),
            lines("v1", produced_by(1, 2, 5000))
        ]
    );
    let hidden: Vec<_> = std::fs::read_dir(&s.out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(hidden.is_empty(), "{hidden:?}");
    assert!(s.files(JOB).is_empty(), "FINISHED deletes the checkpoints");
}

/// Swaps the operators of a running bounded job (2 subtasks) to code tagged `v2` whose
/// subtasks in `refuse` refuse the state; the first records are held until the swap's
/// barrier is on its way, so the swap always lands mid-stream. Returns the reply and the
/// new code's knobs once the job has finished.
fn swap(name: &str, refuse: &[u32]) -> (Setup, Result<(), String>, Arc<Knobs>) {
    let s = setup(name);
    s.knobs.holds.hold(FIRST_RECORD);
    let graph = graph(&s.out, 200_000, 0, 2);
    let job = s.start(
        graph.clone(),
        s.checkpointing(config(|c| c.interval = None), false),
    );
    let metrics = job.metrics();
    s.knobs.holds.wait_entered(FIRST_RECORD, 2);
    let new = Arc::new(Knobs::default());
    *new.refuse_restore.lock().unwrap() = refuse.to_vec();
    let (reply_tx, reply) = tokio::sync::oneshot::channel();
    s.requests
        .0
        .send(Request::Swap {
            swap: Arc::new(CodeSwap {
                operators: Arc::new(Counting {
                    tag: "v2",
                    knobs: new.clone(),
                }),
                graph,
            }),
            reply: reply_tx,
        })
        .unwrap();
    // The sources cannot end before the swap: the held operators stop them.
    eventually("the swap's barrier", || metrics.next_checkpoint_id() == 2);
    s.knobs.holds.release(FIRST_RECORD);
    let reply = reply.blocking_recv().unwrap();
    let outcome = job.wait();
    assert!(matches!(outcome, Outcome::Finished), "{outcome:?}");
    (s, reply, new)
}

/// The numbers of a sink subtask's lines, checking each line's tag; and the tags in order.
fn numbers_and_tags(lines: &[String]) -> (Vec<u64>, Vec<String>) {
    let mut numbers = Vec::new();
    let mut tags: Vec<String> = Vec::new();
    for line in lines {
        let (tag, n) = line.split_once(':').unwrap();
        numbers.push(n.parse().unwrap());
        if tags.last().is_none_or(|t| t != tag) {
            tags.push(tag.to_owned());
        }
    }
    (numbers, tags)
}

/// One subtask cannot restore its state into the new code: every subtask keeps the old
/// code, the request fails naming that subtask, and the job goes on to the exact output.
#[test]
fn a_swap_one_subtask_refuses_keeps_the_old_code_everywhere() {
    let (s, reply, new) = swap("swap-refused", &[1]);
    let reason = reply.unwrap_err();
    assert_eq!(reason, "count (2/2): v2 refuses the state");
    assert_eq!(new.opened.load(Ordering::Relaxed), 2, "both prepared");
    assert_eq!(new.processed.load(Ordering::Relaxed), 0, "neither switched");
    assert_eq!(
        s.committed(2),
        [
            lines("v1", produced_by(0, 2, 200_000)),
            lines("v1", produced_by(1, 2, 200_000))
        ]
    );
    assert_eq!(s.knobs.finished.load(Ordering::Relaxed), 2);
}

/// Every subtask accepts: all switch at the swap's barrier, the new code carries the old
/// one's state on, and every record is output once, old code's output before new code's.
#[test]
fn a_swap_every_subtask_accepts_switches_all_at_the_barrier() {
    let (s, reply, new) = swap("swap-accepted", &[]);
    reply.unwrap();
    assert_eq!(new.opened.load(Ordering::Relaxed), 2);
    assert_eq!(
        new.finished.load(Ordering::Relaxed),
        2,
        "the new code drained"
    );
    assert_eq!(s.knobs.finished.load(Ordering::Relaxed), 0);
    let old = s.knobs.processed.load(Ordering::Relaxed);
    assert_eq!(old + new.processed.load(Ordering::Relaxed), 200_000);
    for (subtask, lines) in s.committed(2).iter().enumerate() {
        let (numbers, tags) = numbers_and_tags(lines);
        let expected: Vec<u64> = produced_by(subtask as u32, 2, 200_000).collect();
        assert_eq!(numbers, expected, "subtask {subtask}");
        assert_eq!(tags, ["v1", "v2"], "subtask {subtask}");
    }
}

/// An operator that refuses its checkpointed state fails the job with a permanent error
/// (restarting would restore the same state).
#[test]
fn a_refused_restore_fails_the_job_permanently() {
    let s = setup("refused-restore");
    s.knobs.holds.hold(2);
    let checkpoints = s.checkpointing(config(|_| {}), true);
    let job = s.start(graph(&s.out, 0, 2000, 1), checkpoints.clone());
    let (outcome, _) = s.cancel_at(job, 2);
    assert!(matches!(outcome, Outcome::Canceled), "{outcome:?}");
    let folder = s.storage.child("chk-1");
    let metadata = s.metadata(1);
    let restore = s
        .runtime
        .block_on(cairn_core::restore::load(
            folder,
            metadata.clone(),
            &graph(&s.out, 0, 2000, 1),
        ))
        .unwrap();
    let s2 = Setup {
        knobs: Arc::default(),
        cancel: CancelHandle::default(),
        ..s
    };
    *s2.knobs.refuse_restore.lock().unwrap() = vec![0];
    let job = s2.start_attempt(
        graph(&s2.out, 0, 2000, 1),
        Checkpointing {
            first_id: 2,
            ..checkpoints
        },
        Some(restore),
        1,
    );
    let Outcome::Failed(failure) = job.wait() else {
        panic!("expected a failure");
    };
    assert_eq!(failure.task.uid, "count");
    assert!(failure.error.is_permanent(), "{}", failure.error);
    assert!(
        failure.to_string().contains("v1 refuses the state"),
        "{failure}"
    );
    // The checkpoint it could not restore is still there.
    assert_eq!(s2.checkpoints(), [(1, true)]);
}

/// The operator fails while checkpoint 2's upload hangs: the job fails with the operator's
/// error, and the coordinator, before it ends, deletes what the abandoned upload writes
/// when it lands; checkpoint 1 is kept.
#[test]
fn a_late_upload_after_the_job_failed_is_deleted() {
    let s = setup("late-after-failure");
    let release = s.faults.hold_puts("/chk-2/", ".zst");
    let job = s.start(
        graph(&s.out, 0, 2000, 1),
        s.checkpointing(config(|_| {}), true),
    );
    let metrics = job.metrics();
    eventually("chk-2's upload to hang", || {
        s.faults.logged(&Op::Held(state_file(2)))
    });
    s.knobs.fail_now.store(true, Ordering::Relaxed);
    // The job's failure reaches the coordinator through `wait`.
    let waiter = std::thread::spawn(move || job.wait());
    eventually("the coordinator to give up checkpoint 2", || {
        metrics
            .checkpoint_stats()
            .latest_failed
            .is_some_and(|f| f.id == 2 && f.reason == STOPPED)
    });
    release.release();
    let outcome = waiter.join().unwrap();
    let Outcome::Failed(failure) = outcome else {
        panic!("expected a failure, got {outcome:?}");
    };
    assert_eq!(failure.task.uid, "count");
    assert!(
        matches!(&failure.error, TaskError::Operator(OperatorError::Failed(m)) if m == "failing on purpose"),
        "{failure}"
    );
    assert_eq!(s.faults.puts_of(&state_file(2)), [true]);
    assert!(s.faults.logged(&Op::Delete(state_file(2))));
    assert_eq!(s.checkpoints(), [(1, true)]);
    assert_eq!(s.files(JOB), [metadata_file(1), state_file(1)]);
}

#[test]
fn the_fault_store_fails_only_what_its_rules_say() {
    let store = Arc::new(FaultStore::new());
    store.fail_nth_put(".zst", 2);
    let root = StateStore::from_object_store(store.clone(), "memory://rules");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        root.put("a.zst", Bytes::from_static(b"1")).await.unwrap();
        root.put("b.json", Bytes::from_static(b"2")).await.unwrap();
        assert!(root.put("c.zst", Bytes::from_static(b"3")).await.is_err());
        root.put("d.zst", Bytes::from_static(b"4")).await.unwrap();
    });
    assert_eq!(
        store.puts_of("c.zst"),
        [false; 4],
        "retried, failing each time"
    );
    assert_eq!(store.puts_of("d.zst"), [true]);
}

/// The supervisor's watcher in these tests: fails the first attempt once checkpoint 2 is
/// complete, runs `on_failure` when told of the failure, and records what it is told.
struct FailOnce {
    knobs: Arc<Knobs>,
    operators: Arc<dyn OperatorFactory>,
    graph: Graph,
    on_failure: Box<dyn Fn()>,
    told: Mutex<Vec<String>>,
}

impl Watcher for FailOnce {
    fn code(&self) -> (Graph, Arc<dyn OperatorFactory>) {
        (self.graph.clone(), self.operators.clone())
    }

    fn attempt_started(
        &self,
        _requests: Sender<Request>,
        metrics: Arc<JobMetrics>,
        restored: Option<Restored>,
    ) {
        let mut told = self.told.lock().unwrap();
        told.push(format!("started from {:?}", restored.map(|r| r.id)));
        if told.len() == 1 {
            let knobs = self.knobs.clone();
            std::thread::spawn(move || {
                eventually("checkpoint 2 to complete", || {
                    completed(&metrics.checkpoint_stats()).contains(&2)
                });
                knobs.fail_now.store(true, Ordering::Relaxed);
            });
        }
    }

    fn attempt_failed(&self, failure: &JobFailure, restarting: bool) {
        self.knobs.fail_now.store(false, Ordering::Relaxed);
        (self.on_failure)();
        self.told
            .lock()
            .unwrap()
            .push(format!("failed ({failure}), restarting: {restarting}"));
    }
}

/// The supervisor runs a bounded job across a failure: the restart strategy restarts it,
/// the second attempt restores the latest completed checkpoint (2 or later), and every
/// record is committed exactly once.
#[test]
fn the_supervisor_restarts_from_the_latest_checkpoint_and_finishes_exactly() {
    let s = setup("supervisor");
    let watcher = FailOnce {
        knobs: s.knobs.clone(),
        operators: s.operators(),
        graph: graph(&s.out, 3000, 3000, 1),
        on_failure: Box::new(|| {}),
        told: Mutex::default(),
    };
    let supervisor = s.supervisor();
    let ended = supervisor.run(&watcher).unwrap();
    assert!(matches!(ended.end, End::Finished), "{ended:?}");
    assert_eq!(ended.restarts, 1);
    let told = watcher.told.into_inner().unwrap();
    assert_eq!(told.len(), 3, "{told:?}");
    assert_eq!(told[0], "started from None");
    assert!(
        told[1].contains("failing on purpose") && told[1].ends_with("restarting: true"),
        "{told:?}"
    );
    let restored: u64 = told[2]
        .strip_prefix("started from Some(")
        .and_then(|id| id.strip_suffix(')'))
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{told:?}"));
    assert!(restored >= 2, "{told:?}");
    assert_eq!(s.committed(1), [lines("v1", 0..3000)]);
}

/// A restart whose checkpoint lost a state file meanwhile is not tried: the job fails at
/// once, saying why, though the strategy would restart it (a retry would fail alike).
#[test]
fn a_restart_that_cannot_restore_fails_the_job_at_once() {
    let s = setup("supervisor-lost");
    let storage = s.storage.clone();
    let runtime = s.runtime.handle().clone();
    let watcher = FailOnce {
        knobs: s.knobs.clone(),
        operators: s.operators(),
        graph: graph(&s.out, 0, 3000, 1),
        on_failure: Box::new(move || {
            let folders = runtime.block_on(storage.folders()).unwrap();
            for folder in folders {
                let _ = runtime.block_on(storage.child(&folder).delete_all("count"));
            }
        }),
        told: Mutex::default(),
    };
    let ended = s.supervisor().run(&watcher).unwrap();
    let End::GaveUp { reason, failure } = &ended.end else {
        panic!("expected the job to give up: {ended:?}");
    };
    assert!(
        reason.starts_with("not restarted: cannot restore the restart: ")
            && reason.contains("state file")
            && reason.contains("is missing"),
        "{reason}"
    );
    assert!(
        failure.to_string().contains("failing on purpose"),
        "{failure}"
    );
    assert_eq!(ended.restarts, 1, "the restart was decided, then not tried");
    assert_eq!(watcher.told.into_inner().unwrap().len(), 2);
}
