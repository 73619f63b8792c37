//! Rust jobs: cargo packages built for `wasm32-wasip2` with the `guest` profile.

use std::process::Command;

use anyhow::Context;

use super::{cargo_target_dir, install_job};
use crate::{cargo, run, step};

const GUEST_TARGET: &str = "wasm32-wasip2";

/// Guest crates: (package, folder under target/ the component goes to); the demo's first.
const GUESTS: &[(&str, &str)] = &[
    ("word-count", "jobs"),
    ("word-count-v2", "jobs"),
    ("keyed-sum", "jobs"),
    ("flaky", "jobs"),
    ("windowed-count", "jobs"),
    ("bad-graph", "test-jobs"),
    ("not-a-job", "test-jobs"),
    ("refuses-state", "test-jobs"),
    ("buffering", "test-jobs"),
    ("sandbox", "test-jobs"),
    ("big-state", "test-jobs"),
    ("timeouts", "test-jobs"),
];

/// Installs the guest target with rustup when it is missing.
pub(crate) fn ensure_guest_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .context("cannot run rustup: install Rust with rustup (https://rustup.rs)")?;
    if String::from_utf8_lossy(&installed.stdout)
        .lines()
        .any(|t| t.trim() == GUEST_TARGET)
    {
        return Ok(());
    }
    step(&format!("installing the {GUEST_TARGET} target"));
    run(Command::new("rustup").args(["target", "add", GUEST_TARGET]))
}

/// `cargo <subcommand>` for one guest package, built for the guest target and profile.
fn guest_cargo(subcommand: &str, package: &str) -> Command {
    let mut command = cargo();
    command.args([
        subcommand,
        "--quiet",
        "--profile",
        "guest",
        "--target",
        GUEST_TARGET,
    ]);
    command.args(["--package", package]);
    command.arg("--target-dir").arg(cargo_target_dir());
    command
}

pub(super) fn build() -> anyhow::Result<()> {
    ensure_guest_target()?;
    GUESTS
        .iter()
        .try_for_each(|(package, folder)| build_package(package, folder))
}

/// The demo's job alone: word-count, the first of [`GUESTS`].
pub(crate) fn build_demo_job() -> anyhow::Result<()> {
    ensure_guest_target()?;
    let (package, folder) = GUESTS[0];
    build_package(package, folder)
}

fn build_package(package: &str, folder: &str) -> anyhow::Result<()> {
    let built = cargo_target_dir().join(GUEST_TARGET).join("guest");
    // One package at a time: a job reusing another job's operators must not get that job's
    // component export through feature unification.
    run(&mut guest_cargo("build", package))?;
    // Libraries (jobs) are named with underscores, binaries as the package.
    let library = built.join(format!("{}.wasm", package.replace('-', "_")));
    let from = if library.exists() {
        library
    } else {
        built.join(format!("{package}.wasm"))
    };
    install_job(&from, folder, package)
}

/// Clippy on every guest package, for the guest target.
pub(crate) fn lint() -> anyhow::Result<()> {
    ensure_guest_target()?;
    for (package, _) in GUESTS {
        run(guest_cargo("clippy", package).args(["--", "-D", "warnings"]))?;
    }
    Ok(())
}
