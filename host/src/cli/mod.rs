//! Command-line interface: argument parsing and the commands.

mod inspect;
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
    /// Show a checkpoint's metadata.
    Inspect(InspectArgs),
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

    /// Resume from a checkpoint: its folder, its _metadata, or a job's checkpoint folder
    /// (then its latest completed checkpoint).
    #[arg(short = 's', long = "from-savepoint", value_name = "PATH")]
    from_savepoint: Option<String>,

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
