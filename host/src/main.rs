//! The `cairn` command.

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    cli::init_logging();
    match cli::execute(args) {
        Ok(code) => code,
        Err(error) => {
            cli::progress::bar().finish_and_clear();
            eprintln!("cairn: {error:#}");
            ExitCode::FAILURE
        }
    }
}
