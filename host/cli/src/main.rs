//! The `cairn` command: the CLI (`cli`: arguments; `run`: a job in this process; `jobs`
//! and `client`: commands to running jobs over REST; `inspect`; `state`), and what a running job
//! serves: its control plane (`control`), the REST API and dashboard (`rest`), `/metrics`
//! (`prometheus`), and its entry in the local job registry (`registry`).

mod cli;
mod client;
mod control;
mod inspect;
mod jobs;
mod progress;
mod prometheus;
mod registry;
mod rest;
mod run;
mod state;

use std::process::ExitCode;

use clap::Parser;
use tracing_subscriber::EnvFilter;

use cli::{Cli, Command};

fn main() -> ExitCode {
    // SAFETY: first thing in main, before any other thread exists.
    unsafe { cairn_core::runtime::return_large_frees_at_once() };
    let args = Cli::parse();
    init_logging();
    cairn_core::state::install_tls_provider();
    match execute(args) {
        Ok(code) => code,
        Err(error) => {
            progress::bar().finish_and_clear();
            eprintln!("cairn: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Run(args) => run::run(args),
        Command::List => jobs::list(),
        Command::Savepoint(args) => jobs::savepoint(args),
        Command::Cancel(args) => jobs::cancel(args),
        Command::Stop(args) => jobs::stop(args),
        Command::Rescale(args) => jobs::rescale(args),
        Command::Swap(args) => jobs::swap(args),
        Command::Inspect(args) => inspect::inspect(args),
        Command::State(args) => state::state(args),
    }
}

/// Logs go to stderr, around the progress line. `CAIRN_LOG` filters them (`RUST_LOG`
/// syntax); by default warnings, plus what guests log at info and above.
fn init_logging() {
    let filter =
        EnvFilter::try_from_env("CAIRN_LOG").unwrap_or_else(|_| EnvFilter::new("warn,guest=info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(progress::LogWriter::default)
        .init();
}
