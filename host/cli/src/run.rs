//! `cairn run`: load a job, describe and validate its graph, run it to the end.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::control::{JobCode, JobControl, JobStatus, Snapshot};
use crate::registry::{self, Registration};
use anyhow::{Context as _, bail};
use cairn_core::clock::now_ms;
use cairn_core::config::{Config, ConfigLayers, Origin};
use cairn_core::graph::{Graph, Role};
use cairn_core::lock::{Lock, LockError};
use cairn_core::operator::OperatorFactory;
use cairn_core::runtime::footprint::{self, Footprint};
use cairn_core::runtime::{CancelHandle, Checkpointing, JobFailure, JobMetrics, Request};
use cairn_core::state::{CheckpointStore, StateStore};
use cairn_core::supervisor::{End, Restored, Supervisor, Watcher};
use cairn_wasm::swap::Swapper;
use cairn_wasm::{Engine, JobComponent, Limits};

use crate::cli::RunArgs;
use crate::progress;

/// Longest a finished job waits for clients to fetch the results of their operations.
const OPERATION_LINGER: Duration = Duration::from_secs(10);

pub fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let job_id = match &args.job_id {
        Some(id) => validate_job_id(id)?,
        None => format!("{:032x}", rand::random::<u128>()),
    };

    // The file and the command line are known before the job's code runs; the job's own
    // config (from `describe`) slots in between them afterwards.
    let config_file = crate::cli::config_file(args.config.as_ref())?;
    let command_line = |layers: &mut ConfigLayers| -> anyhow::Result<()> {
        layers.definitions(&args.definitions)?;
        if let Some(p) = args.parallelism {
            layers.layer(Origin::Flag("-p"), [("parallelism.default", p.to_string())])?;
        }
        Ok(())
    };
    let mut layers = ConfigLayers::default();
    if let Some(file) = &config_file {
        layers.file(file)?;
    }
    let mut early = layers.clone();
    command_line(&mut early)?;
    let early = early.resolve()?;

    let engine = Arc::new(Engine::new().context("cannot start the WebAssembly engine")?);
    let mut component =
        JobComponent::load(&engine, &args.job, early.compilation_cache, limits(&early))?;
    let job_path = args.job.display().to_string();
    let job_graph = component
        .describe(&args.job_args)
        .with_context(|| job_path.clone())?;

    layers.layer(
        Origin::Job,
        job_graph.config.iter().map(|(k, v)| (k, v.clone())),
    )?;
    command_line(&mut layers)?;
    let config = layers.resolve()?;
    if args.print_config {
        for (key, value, origin) in layers.effective() {
            println!("{key} = {value:?}  ({origin})");
        }
        return Ok(ExitCode::SUCCESS);
    }
    component.set_limits(limits(&config));
    let graph = Graph::new(
        &job_graph,
        config.default_parallelism,
        config.max_parallelism,
    )
    .with_context(|| format!("{job_path}: invalid job graph"))?;
    graph
        .check_operators(&component, &job_id)
        .with_context(|| format!("{job_path}: invalid job graph"))?;
    let memory = footprint::physical_memory().unwrap_or(u64::MAX);
    Footprint::of(&graph)
        .check(memory)
        .with_context(|| format!("{job_path}: the job is too large for this machine"))?;
    // Held until the process ends, restarts included.
    let _locks = claim(&graph, &config, &job_id)?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("cairn-io")
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let restore = match &args.from_savepoint {
        Some(path) => {
            let (folder, metadata) =
                runtime.block_on(cairn_core::restore::find(path, &config.s3))?;
            let dropped = cairn_core::restore::check(
                &graph,
                &metadata,
                folder.url(),
                args.allow_non_restored_state,
            )?;
            if !dropped.is_empty() {
                eprintln!(
                    "Not restoring the state of {} (--allow-non-restored-state): this job has no such node",
                    dropped.join(", ")
                );
            }
            Some(runtime.block_on(cairn_core::restore::load(folder, metadata, &graph))?)
        }
        None => None,
    };
    let storage = match config.checkpoints.interval {
        Some(_) => Some(CheckpointStore::new(
            StateStore::open(&checkpoint_dir(&config)?, &config.s3)?.child(&job_id),
        )),
        None => None,
    };
    let checkpoints = Checkpointing {
        config: config.checkpoints.clone(),
        storage,
        runtime: runtime.handle().clone(),
        first_id: restore.as_ref().map_or(1, |r| r.metadata.checkpoint_id + 1),
    };

    let cancel = CancelHandle::default();
    let operators: Arc<dyn OperatorFactory> = Arc::new(component);
    let swapper = Swapper {
        engine: engine.clone(),
        job_id: job_id.clone(),
        args: args.job_args.clone(),
        limits: limits(&config),
        use_cache: config.compilation_cache,
        max_parallelism: config.max_parallelism,
    };
    let settings = layers
        .effective()
        .into_iter()
        .map(|(key, value, _)| (key.to_owned(), value))
        .collect();
    let control = JobControl::new(
        job_id.clone(),
        config.clone(),
        settings,
        cancel.clone(),
        JobCode {
            graph: graph.clone(),
            description: job_graph,
            operators,
        },
        swapper,
    );
    let (address, _registration) = serve_rest(&runtime, &control)?;

    println!("Job has been submitted with JobID {job_id}");
    eprintln!("REST API at http://{address}/jobs/{job_id}");
    if let Some(token) = &config.rest.auth_token {
        // The token opens the dashboard once (it becomes a session cookie). Shown in full
        // only on a terminal, so that it does not end up in logs.
        if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
            let token: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
            eprintln!("Dashboard at http://{address}/?token={token}");
        } else {
            eprintln!("Dashboard at http://{address}/?token=<rest.auth-token> (open it once)");
        }
    }
    if let (Some(interval), Some(storage)) = (config.checkpoints.interval, &checkpoints.storage) {
        eprintln!(
            "Checkpointing every {} ({}) to {}",
            humantime::format_duration(interval),
            config.checkpoints.mode,
            storage.url()
        );
    }
    for node in &graph.nodes {
        if let Role::Sink(sink) = &node.role
            && let Some(warning) = sink
                .connector
                .checkpointing_warning(config.checkpoints.interval)
        {
            tracing::warn!("sink '{}': {warning}", node.uid);
        }
    }
    if let Some(restore) = &restore {
        eprintln!(
            "Restoring from checkpoint {} at {}",
            restore.metadata.checkpoint_id,
            restore.folder.url()
        );
    }
    {
        let control = control.clone();
        runtime.spawn(async move {
            wait_for_termination_signal().await;
            control.cancel();
        });
    }
    let started = Instant::now();
    let supervisor = Supervisor {
        job_id: job_id.clone(),
        checkpoints,
        restore,
        restore_path: args.from_savepoint.clone(),
        s3: config.s3.clone(),
        restart: config.restart.clone(),
        cancel: cancel.clone(),
        watermark_interval: config.watermark_interval,
    };
    let ended = supervisor.run(&Watching::new(control.clone()))?;

    let elapsed = started.elapsed().as_secs_f64();
    let counts = format!(
        "{} records read, {} written",
        ended.records_read, ended.records_written
    );
    let restarted = match ended.restarts {
        0 => String::new(),
        1 => ", 1 restart".to_owned(),
        n => format!(", {n} restarts"),
    };
    control.ended(match &ended.end {
        End::Finished => JobStatus::Finished,
        End::Canceled => JobStatus::Canceled,
        End::Failed(_) | End::GaveUp { .. } | End::NotResumed { .. } => JobStatus::Failed,
    });
    // The REST server outlives the job a little, for clients still polling an operation.
    control.wait_until_fetched(OPERATION_LINGER);
    match ended.end {
        End::Finished => {
            println!("Job {job_id} FINISHED in {elapsed:.2} s ({counts}{restarted})");
            Ok(ExitCode::SUCCESS)
        }
        End::Canceled => {
            println!("Job {job_id} CANCELED after {elapsed:.2} s ({counts}{restarted})");
            Ok(ExitCode::FAILURE)
        }
        End::Failed(failure) => {
            println!("Job {job_id} FAILED after {elapsed:.2} s: {failure}");
            Ok(ExitCode::FAILURE)
        }
        End::GaveUp { reason, failure } => {
            println!("Job {job_id} FAILED after {elapsed:.2} s: {reason}; last failure: {failure}");
            Ok(ExitCode::FAILURE)
        }
        End::NotResumed { savepoint, reason } => {
            println!(
                "Job {job_id} FAILED after {elapsed:.2} s: stopped to be rescaled, it cannot \
                 resume from {savepoint}: {reason}"
            );
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The CLI watching the supervisor: the control plane hears of every attempt, and a
/// terminal shows a progress line while one runs.
struct Watching {
    control: Arc<JobControl>,
    /// Stops the running attempt's progress reporter.
    reporter:
        std::sync::Mutex<Option<(crossbeam_channel::Sender<()>, std::thread::JoinHandle<()>)>>,
}

impl Watching {
    fn new(control: Arc<JobControl>) -> Self {
        Watching {
            control,
            reporter: std::sync::Mutex::new(None),
        }
    }
}

impl Watcher for Watching {
    fn code(&self) -> (Graph, Arc<dyn OperatorFactory>) {
        self.control.code()
    }

    fn attempt_started(
        &self,
        requests: crossbeam_channel::Sender<Request>,
        metrics: Arc<JobMetrics>,
        restored: Option<Restored>,
    ) {
        self.control
            .attempt_started(requests, metrics.clone(), restored);
        progress::start();
        let (done_tx, done_rx) = crossbeam_channel::bounded::<()>(0);
        let control = self.control.clone();
        let reporter = std::thread::spawn(move || {
            let mut last = (Instant::now(), 0u64);
            loop {
                let read = metrics.records_read();
                let now = Instant::now();
                let rate =
                    (read - last.1) as f64 / now.duration_since(last.0).as_secs_f64().max(1e-3);
                last = (now, read);
                progress::bar().set_message(progress_line(
                    read,
                    rate,
                    metrics.records_written(),
                    &control.snapshot(),
                ));
                if done_rx.recv_timeout(Duration::from_millis(500)).is_ok() {
                    return;
                }
            }
        });
        *self.reporter.lock().expect("not poisoned") = Some((done_tx, reporter));
    }

    fn attempt_ended(&self) {
        if let Some((done, reporter)) = self.reporter.lock().expect("not poisoned").take() {
            let _ = done.send(());
            let _ = reporter.join();
        }
        progress::bar().finish_and_clear();
    }

    fn attempt_failed(&self, failure: &JobFailure, restarting: bool) {
        self.control.attempt_failed(failure, restarting);
    }

    fn resume_after_finish(&self) -> Option<String> {
        self.control.resume_after_finish()
    }
}

/// `1.2 M records read (400 k/s) · 3.1 M written · checkpoint 12, 2s ago, 1.4 MiB · 1 restart`
fn progress_line(read: u64, rate: f64, written: u64, snapshot: &Snapshot) -> String {
    let mut line = format!(
        "{} records read ({}/s) · {} written",
        progress::human(read as f64),
        progress::human(rate),
        progress::human(written as f64),
    );
    if let Some(checkpoint) = &snapshot.checkpoints.latest_checkpoint {
        let completed = checkpoint.timestamp_ms + checkpoint.duration.as_millis() as u64;
        let age = Duration::from_secs(now_ms().saturating_sub(completed) / 1000);
        line.push_str(&format!(
            " · checkpoint {}, {} ago, {}",
            checkpoint.id,
            humantime::format_duration(age),
            indicatif::HumanBytes(checkpoint.stored_bytes)
        ));
    }
    match snapshot.restarts {
        0 => {}
        1 => line.push_str(" · 1 restart"),
        n => line.push_str(&format!(" · {n} restarts")),
    }
    line
}

/// Ctrl-C or SIGTERM cancels the job cleanly.
async fn wait_for_termination_signal() {
    let mut terminate =
        tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match terminate.as_mut() {
                Some(signal) => { signal.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}

/// `execution.checkpointing.dir`, else the user's state folder.
fn checkpoint_dir(config: &Config) -> anyhow::Result<String> {
    if let Some(dir) = &config.checkpoints.dir {
        return Ok(dir.clone());
    }
    let base = dirs::state_dir()
        .or_else(dirs::data_local_dir)
        .context("no state folder for checkpoints: set execution.checkpointing.dir")?;
    Ok(base.join("cairn").join("checkpoints").display().to_string())
}

/// Locks what this run writes — its job id on this machine, its local checkpoint folder,
/// its file sinks' folders — so that a second run writing the same files is refused now,
/// naming the process that has them, instead of corrupting them. Creating the folders here
/// also reports an output folder that is a file or cannot be written before the job is
/// submitted. (Object stores cannot be locked: there only the job id guards.)
fn claim(graph: &Graph, config: &Config, job_id: &str) -> anyhow::Result<Vec<Lock>> {
    let mut locks = Vec::new();
    match Lock::file(&registry::dir().join(format!("{job_id}.lock")), job_id) {
        Ok(lock) => locks.push(lock),
        Err(LockError::Held { holder, .. }) => bail!(
            "job {job_id} is already running on this machine ({holder}): two runs of one job \
             would write the same checkpoints and output; stop it first, or give this run \
             another --job-id"
        ),
        Err(e) => tracing::warn!(
            "cannot lock job id {job_id} ({e}): a second run of it on this machine would not \
             be noticed"
        ),
    }
    if config.checkpoints.interval.is_some()
        && let Some(dir) = StateStore::local_path(&checkpoint_dir(config)?)
    {
        let dir = dir.join(job_id);
        locks.push(Lock::acquire(&dir, job_id).map_err(|e| match e {
            LockError::Held { holder, .. } => anyhow::anyhow!(
                "checkpoint folder {} is in use by {holder}: two writers would overwrite each \
                 other's checkpoints",
                dir.display()
            ),
            other => anyhow::anyhow!("cannot use checkpoint folder {}: {other}", dir.display()),
        })?);
    }
    let mut sink_folders: Vec<std::path::PathBuf> = Vec::new();
    for node in &graph.nodes {
        let Some(dir) = (match &node.role {
            Role::Sink(sink) => sink.connector.output_folder(),
            _ => None,
        }) else {
            continue;
        };
        let unusable = |e: &dyn std::fmt::Display| {
            anyhow::anyhow!(
                "cannot use output folder {} (sink '{}'): {e}",
                dir.display(),
                node.uid
            )
        };
        let folder = std::fs::create_dir_all(dir)
            .and_then(|()| std::fs::canonicalize(dir))
            .map_err(|e| unusable(&e))?;
        // Two sinks of this job may share a folder (their part files are named apart): it
        // is locked once.
        if sink_folders.contains(&folder) {
            continue;
        }
        locks.push(Lock::acquire(&folder, job_id).map_err(|e| match e {
            LockError::Held { holder, .. } => anyhow::anyhow!(
                "output folder {} (sink '{}') is in use by {holder}: two jobs writing one \
                 folder would overwrite each other's part files",
                dir.display(),
                node.uid
            ),
            other => unusable(&other),
        })?);
        sink_folders.push(folder);
    }
    Ok(locks)
}

/// Binds the job's REST server (`rest.bind-address`, `rest.port`), serves it beside the
/// job, and registers the job so the CLI finds it by id (when the registry is writable).
fn serve_rest(
    runtime: &tokio::runtime::Runtime,
    control: &Arc<JobControl>,
) -> anyhow::Result<(SocketAddr, Option<Registration>)> {
    let rest = &control.config.rest;
    let requested = SocketAddr::new(rest.bind_address, rest.port);
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind(requested))
        .with_context(|| {
            format!("cannot serve the REST API on {requested} (rest.bind-address, rest.port)")
        })?;
    let address = listener
        .local_addr()
        .context("cannot read the REST server's address")?;
    runtime.spawn(crate::rest::serve(control.clone(), listener));
    // Served on every interface: local clients reach it on loopback.
    let local = match address.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv4Addr::LOCALHOST.into(), address.port())
        }
        IpAddr::V6(ip) if ip.is_unspecified() => {
            SocketAddr::new(Ipv6Addr::LOCALHOST.into(), address.port())
        }
        _ => address,
    };
    let registration = match registry::register(&registry::Entry {
        id: control.id.clone(),
        name: control.name.clone(),
        address: local,
        start_ms: control.start_ms,
        token: rest.auth_token.clone(),
    }) {
        Ok(registration) => Some(registration),
        // The job runs anyway; the CLI can still reach it with -m.
        Err(e) => {
            tracing::warn!(
                "cannot register the job in {}: {e}; `cairn list` will not show it",
                registry::dir().display()
            );
            None
        }
    };
    Ok((address, registration))
}

fn limits(config: &Config) -> Limits {
    Limits {
        memory: config.memory_limit,
        call_timeout: config.call_timeout,
    }
}

fn validate_job_id(id: &str) -> anyhow::Result<String> {
    if id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        Ok(id.to_owned())
    } else {
        bail!("invalid --job-id '{id}': expected 32 lowercase hex characters")
    }
}
