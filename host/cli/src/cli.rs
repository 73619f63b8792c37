//! Command-line interface: the arguments, and which command runs.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// Cairn runs stream-processing jobs written as WebAssembly components.
#[derive(Debug, Parser)]
#[command(name = "cairn", version, about, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Change a running job's parallelism: it stops with a savepoint and resumes from it in
    /// the same process, its keyed state and sources' positions shared out anew.
    Rescale(RescaleArgs),
    /// Replace a running job's operator code in place, keeping its state (and its sources
    /// and sinks running). Operators restore from a snapshot taken at a barrier; if any
    /// cannot, all keep the old code.
    Swap(SwapArgs),
    /// Show a checkpoint's or savepoint's metadata.
    Inspect(InspectArgs),
    /// Read the keyed state in a checkpoint or savepoint, without the job: per operator its
    /// key groups, keys and sizes, then every key and its value.
    State(StateArgs),
}

/// Where a running job's REST server is.
#[derive(Debug, clap::Args)]
pub struct JobAddress {
    /// The job's REST server, host:port (default: found by job id on this machine).
    /// With a token, set it in $CAIRN_REST_TOKEN.
    #[arg(short = 'm', long, value_name = "HOST:PORT")]
    pub jobmanager: Option<String>,
}

#[derive(Debug, clap::Args)]
pub struct SavepointArgs {
    /// The running job.
    #[arg(value_name = "JOB_ID", required_unless_present = "dispose")]
    pub job: Option<String>,

    /// Where the savepoint goes (default: execution.checkpointing.savepoint-dir of the job).
    #[arg(value_name = "TARGET_DIR")]
    pub target_dir: Option<String>,

    /// Delete the savepoint at PATH (refused unless it is a savepoint).
    #[arg(short = 'd', long, value_name = "PATH", conflicts_with_all = ["job", "target_dir"])]
    pub dispose: Option<String>,

    #[command(flatten)]
    pub address: JobAddress,

    /// Config file, for store settings such as s3.endpoint when disposing.
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Set a config key (store settings when disposing).
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    pub definitions: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// Take a savepoint first (into TARGET_DIR, else the job's savepoint-dir), then cancel.
    #[arg(short = 's', long)]
    pub with_savepoint: bool,

    /// [TARGET_DIR] JOB_ID
    #[arg(value_name = "[TARGET_DIR] JOB_ID", num_args = 1..=2, required = true)]
    pub args: Vec<String>,

    #[command(flatten)]
    pub address: JobAddress,
}

#[derive(Debug, clap::Args)]
pub struct StopArgs {
    /// The running job.
    #[arg(value_name = "JOB_ID")]
    pub job: String,

    /// Where the savepoint goes (default: execution.checkpointing.savepoint-dir of the job).
    #[arg(short = 'p', long, value_name = "DIR")]
    pub savepoint_path: Option<String>,

    /// Flush everything operators buffer (Flink's MAX_WATERMARK) before the savepoint: for
    /// ending a job for good rather than resuming it.
    #[arg(short = 'd', long)]
    pub drain: bool,

    #[command(flatten)]
    pub address: JobAddress,
}

#[derive(Debug, clap::Args)]
pub struct RescaleArgs {
    /// The running job.
    #[arg(value_name = "JOB_ID")]
    pub job: String,

    /// The new parallelism of the nodes without one of their own (as `cairn run -p`).
    #[arg(value_name = "PARALLELISM")]
    pub parallelism: u32,

    /// Where the savepoint goes (default: execution.checkpointing.savepoint-dir of the job).
    #[arg(short = 'p', long, value_name = "DIR")]
    pub savepoint_path: Option<String>,

    #[command(flatten)]
    pub address: JobAddress,
}

#[derive(Debug, clap::Args)]
pub struct SwapArgs {
    /// The running job.
    #[arg(value_name = "JOB_ID")]
    pub job: String,

    /// The new job component; its graph must have the running job's shape.
    #[arg(value_name = "NEW.wasm")]
    pub component: PathBuf,

    #[command(flatten)]
    pub address: JobAddress,
}

#[derive(Debug, clap::Args)]
pub struct InspectArgs {
    /// A checkpoint folder, its _metadata, or a job's checkpoint folder (its latest).
    #[arg(value_name = "PATH")]
    pub path: String,

    /// Print the metadata as JSON.
    #[arg(long)]
    pub json: bool,

    /// Also list every key group with keyed state: its subtask, entries, and where its
    /// chunk is in the state file.
    #[arg(long)]
    pub key_groups: bool,

    /// Config file, for store settings such as s3.endpoint (default: ./cairn.yaml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Set a config key.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    pub definitions: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct StateArgs {
    /// A checkpoint folder, its _metadata, or a job's checkpoint folder (its latest).
    #[arg(value_name = "PATH")]
    pub path: String,

    /// Only the operator with this uid.
    #[arg(long, value_name = "UID")]
    pub uid: Option<String>,

    /// Only this key (UTF-8): reads just its key group.
    #[arg(long, value_name = "KEY")]
    pub key: Option<String>,

    /// Only the summary, no keys.
    #[arg(long)]
    pub summary: bool,

    /// JSON Lines: an object per operator, then one per key.
    #[arg(long)]
    pub json: bool,

    /// Config file, for store settings such as s3.endpoint (default: ./cairn.yaml).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Set a config key.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    pub definitions: Vec<String>,
}

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    /// The job component (a .wasm file built against cairn:job).
    #[arg(value_name = "JOB.wasm")]
    pub job: PathBuf,

    /// Default parallelism of the job's nodes (overrides parallelism.default).
    #[arg(short = 'p', long, value_name = "N")]
    pub parallelism: Option<u32>,

    /// Config file (default: ./cairn.yaml if it exists).
    #[arg(short = 'c', long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Set a config key, overriding the config file and the job's code.
    #[arg(short = 'D', value_name = "KEY=VALUE")]
    pub definitions: Vec<String>,

    /// Resume from a savepoint or checkpoint: its folder, its _metadata, or a job's
    /// checkpoint folder (then its latest completed checkpoint).
    #[arg(short = 's', long = "from-savepoint", value_name = "PATH")]
    pub from_savepoint: Option<String>,

    /// With -s: start even if the savepoint has state for operators this job lacks (that
    /// state is dropped).
    #[arg(short = 'n', long)]
    pub allow_non_restored_state: bool,

    /// Print the effective configuration, and where each value came from, then exit.
    #[arg(long)]
    pub print_config: bool,

    /// Use this job id (32 lowercase hex characters) instead of a random one.
    #[arg(long, value_name = "HEX32")]
    pub job_id: Option<String>,

    /// Arguments for the job itself.
    #[arg(last = true, value_name = "JOB ARGS")]
    pub job_args: Vec<String>,
}

/// The config file: `-c FILE` (which must exist), else `./cairn.yaml`, else
/// `$CAIRN_CONF_DIR/cairn.yaml`, when present.
pub fn config_file(explicit: Option<&PathBuf>) -> anyhow::Result<Option<PathBuf>> {
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
pub fn store_config(
    file: Option<&PathBuf>,
    definitions: &[String],
) -> anyhow::Result<cairn_core::config::Config> {
    let mut layers = cairn_core::config::ConfigLayers::default();
    if let Some(file) = config_file(file)? {
        layers.file(&file)?;
    }
    layers.definitions(definitions)?;
    Ok(layers.resolve()?)
}
