//! Go jobs: mainline Go compiled for `GOOS=wasip1 GOARCH=wasm` as a reactor
//! (`-buildmode=c-shared`), exporting the world through the Go SDK's hand-written canonical
//! ABI (`//go:wasmexport`), then made a component with the WASI preview 1 adapter (Go's
//! runtime imports preview 1) by `cairn-wit-tools componentize-go`.
//!
//! The toolchain is the `go` command on the PATH, which fetches the pinned Go release from
//! the Go module proxy on first use if it is another (`GOTOOLCHAIN`); its module and build
//! caches live in `target/toolchains/go`. The SDK and the jobs have no dependencies.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use super::wit_c::{componentize_go, workspace_path};
use super::{Fingerprint, files_under, install_job, toolchain_dir};
use crate::{run, target_dir};

/// The Go release jobs are built with.
const GO: &str = "go1.26.8";

/// Go jobs: (name, folder of its module, folders of the other modules it requires besides
/// the SDK).
const JOBS: &[(&str, &str, &[&str])] = &[
    ("word-count-go", "example-jobs/word-count-go", &[]),
    (
        "windowed-count-go",
        "example-jobs/windowed-count-go",
        &["example-jobs/word-count-go"],
    ),
];

pub(super) fn build() -> anyhow::Result<()> {
    let dir = target_dir().join("guest-go");
    std::fs::create_dir_all(&dir)?;
    let sdk = workspace_path("guest-sdk/go");
    for (name, folder, requires) in JOBS {
        let folder = workspace_path(folder);
        let mut inputs = go_files(&sdk)?;
        inputs.extend(go_files(&folder)?);
        for module in *requires {
            inputs.extend(go_files(&workspace_path(module))?);
        }
        inputs.push(workspace_path("xtask/wit-tools/src/main.rs"));
        let component = dir.join(format!("{name}.wasm"));
        Fingerprint::of(&component, &inputs, GO)?.build_unless_current(&component, || {
            let core = dir.join(format!("{name}.core.wasm"));
            run(go(&folder)?
                .args([
                    "build",
                    "-buildmode=c-shared",
                    "-trimpath",
                    "-ldflags=-s -w",
                    "-o",
                ])
                .arg(&core)
                .env("GOOS", "wasip1")
                .env("GOARCH", "wasm"))?;
            componentize_go(&core, &component)
        })?;
        install_job(&component, "jobs", name)?;
    }
    Ok(())
}

/// `go test` of the SDK (golden vectors, the graph's ABI layout, keyed state, snapshots and
/// restores, timers, the harness) and of the jobs (word count's state versions, the windows
/// of windowed-count-go), natively.
pub(super) fn unit_tests() -> anyhow::Result<()> {
    let mut modules = vec![workspace_path("guest-sdk/go")];
    modules.extend(JOBS.iter().map(|(_, folder, _)| workspace_path(folder)));
    for module in modules {
        run(go(&module)?.args(["test", "-count=1", "./..."]))
            .with_context(|| format!("the Go tests in {} failed", module.display()))?;
    }
    Ok(())
}

/// The sources of a Go module: its `.go` files and go.mod.
fn go_files(dir: &Path) -> anyhow::Result<Vec<std::path::PathBuf>> {
    files_under(dir, |path| {
        path.extension().is_some_and(|ext| ext == "go") || path.ends_with("go.mod")
    })
}

/// `go` in `dir`, as [`GO`], with its caches under `target/toolchains/go`.
fn go(dir: &Path) -> anyhow::Result<Command> {
    let found = Command::new("go").arg("version").output();
    if !found.is_ok_and(|out| out.status.success()) {
        anyhow::bail!(
            "go not found: Go jobs need the go command (any release from 1.21 on fetches {GO} \
             itself; https://go.dev/doc/install)"
        );
    }
    let caches = toolchain_dir("go");
    let mut command = Command::new("go");
    command
        .current_dir(dir)
        .env("GOTOOLCHAIN", GO)
        .env("GOPATH", &caches)
        .env("GOMODCACHE", caches.join("mod"))
        .env("GOCACHE", caches.join("cache"))
        // Writable module cache: `cargo clean` can remove it.
        .env("GOFLAGS", "-modcacherw");
    Ok(command)
}
