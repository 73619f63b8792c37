//! Command-line interface: argument parsing and the commands.

mod client;
mod inspect;
mod jobs;
pub mod progress;
mod run;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

/// Cairn runs stream-processing jobs written as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a job until its input ends, it fails, or it is canceled (Ctrl-C, SIGTERM).
    Run(RunArgs),
    /// List the jobs running on this machine.
    List,
    /// Trigger a savepoint of a running job, or dispose of a savepoint.
    Savepoint(SavepointArgs),
    /// Cancel a running job, optionally taking a savepoint first.
    Cancel(CancelArgs),
    /// Stop a running job with a savepoint: its sinks commit, and it finishes.
    Stop(StopArgs),
    /// Replace a running job's operator code in place, keeping its state (and its sources
    /// and sinks running). Operators restore from a snapshot taken at a barrier; if any
    /// cannot, all keep the old code.
    Swap(SwapArgs),
    /// Show a checkpoint's or savepoint's metadata.
    Inspect(InspectArgs),
}

/// Where a running job's REST server is.
#[derive(Debug, clap::Args)]
pub struct JobAddress {
    /// The job's REST server, host:port (default: found by job id on this machine).
    /// With a token, set it in $CAIRN_REST_TOKEN.
    #[arg(short = 'm', long, value_name = "HOST:PORT")]
    jobmanager: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SavepointArgs {
    /// The running job.
    #[arg(value_name = "JOB_ID", required_unless_present = "dispose")]
    job: Option<String>,

    /// Where the savepoint goes (default: execution.checkpointing.savepoint-dir of the job).
    #[arg(value_name = "TARGET_DIR")]
    target_dir: Option<String>,

    /// Delete the savepoint at PATH (refused unless it is a savepoint).
    #[arg(short = 'd', long, value_name = "PATH", conflicts_with_all = ["job", "target_dir"])]
    dispose: Option<String>,

    #[command(flatten)]
    address: JobAddress,

    /// Config file, for store settings such as s3.endpoint when disposing.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Set a config key (store settings when disposing).
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    definitions: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// Take a savepoint first (into TARGET_DIR, else the job's savepoint-dir), then cancel.
    #[arg(short = 's', long)]
    with_savepoint: bool,

    /// [TARGET_DIR] JOB_ID
    #[arg(value_name = "[TARGET_DIR] JOB_ID", num_args = 1..=2, required = true)]
    args: Vec<String>,

    #[command(flatten)]
    address: JobAddress,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The running job.
    #[arg(value_name = "JOB_ID")]
    job: String,

    /// Where the savepoint goes (default: execution.checkpointing.savepoint-dir of the job).
    #[arg(short = 'p', long, value_name = "DIR")]
    savepoint_path: Option<String>,

    /// Flush everything operators buffer (Flink's MAX_WATERMARK) before the savepoint: for
    /// ending a job for good rather than resuming it.
    #[arg(short = 'd', long)]
    drain: bool,

    #[command(flatten)]
    address: JobAddress,
}

#[derive(Debug, clap::Args)]
pub struct SwapArgs {
    /// The running job.
    #[arg(value_name = "JOB_ID")]
    job: String,

    /// The new job component; its graph must have the running job's shape.
    #[arg(value_name = "NEW.wasm")]
    component: PathBuf,

    #[command(flatten)]
    address: JobAddress,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A checkpoint folder, its _metadata, or a job's checkpoint folder (its latest).
    #[arg(value_name = "PATH")]
    path: String,

    /// Print the metadata as JSON.
    #[arg(long)]
    json: bool,

    /// Config file, for store settings such as s3.endpoint (default: ./cairn.yaml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Set a config key.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    definitions: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The job component (a .wasm file built against cairn:job).
    #[arg(value_name = "JOB.wasm")]
    job: PathBuf,

    /// Default parallelism of the job's nodes (overrides parallelism.default).
    #[arg(short = 'p', long, value_name = "N")]
    parallelism: Option<u32>,

    /// Config file (default: ./cairn.yaml if it exists).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    config: Option<PathBuf>,

    /// Set a config key, overriding the config file and the job's code.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    definitions: Vec<String>,

    /// Resume from a savepoint or checkpoint: its folder, its _metadata, or a job's
    /// checkpoint folder (then its latest completed checkpoint).
    #[arg(short = 's', long = "from-savepoint", value_name = "PATH")]
    from_savepoint: Option<String>,

    /// With -s: start even if the savepoint has state for operators this job lacks (that
    /// state is dropped).
    #[arg(short = 'n', long)]
    allow_non_restored_state: bool,

    /// Print the effective configuration, and where each value came from, then exit.
    #[arg(long)]
    print_config: bool,

    /// Use this job id (32 lowercase hex characters) instead of a random one.
    #[arg(long, value_name = "HEX32")]
    job_id: Option<String>,

    /// Arguments for the job itself.
    #[arg(last = true, value_name = "JOB ARGS")]
    job_args: Vec<String>,
}

pub fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::List => jobs::list(),
        Command::Savepoint(args) => jobs::savepoint(args),
        Command::Cancel(args) => jobs::cancel(args),
        Command::Stop(args) => jobs::stop(args),
        Command::Swap(args) => jobs::swap(args),
        Command::Inspect(args) => inspect::inspect(args),
    }
}

/// The config file: `-c FILE` (which must exist), else `./cairn.yaml`, else
/// `$CAIRN_CONF_DIR/cairn.yaml`, when present.
fn config_file(explicit: Option<&PathBuf>) -> anyhow::Result<Option<PathBuf>> {
    if let Some(file) = explicit {
        if !file.is_file() {
            anyhow::bail!("config file {} does not exist", file.display());
        }
        return Ok(Some(file.clone()));
    }
    let local = PathBuf::from("cairn.yaml");
    let conf_dir =
        std::env::var_os("CAIRN_CONF_DIR").map(|dir| PathBuf::from(dir).join("cairn.yaml"));
    Ok([Some(local), conf_dir]
        .into_iter()
        .flatten()
        .find(|f| f.is_file()))
}

/// The configuration outside a job run: the config file and `-D`, for store settings.
fn store_config(
    file: Option<&PathBuf>,
    definitions: &[String],
) -> anyhow::Result<cairn::config::Config> {
    let mut layers = cairn::config::ConfigLayers::default();
    if let Some(file) = config_file(file)? {
        layers.file(&file)?;
    }
    layers.definitions(definitions)?;
    Ok(layers.resolve()?)
}

/// Logs go to stderr, around the progress line. `CAIRN_LOG` filters them (`RUST_LOG`
/// syntax); by default warnings, plus what guests log at info and above.
pub fn init_logging() {
    let filter =
        EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new("warn,guest=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(progress::LogWriter::default)
        .init();
}
