//! Python jobs: the job's module and the SDK (`guest-sdk/python/cairn_sdk`) componentized
//! against `wit/` by componentize-py, installed from PyPI into a project-local venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::{Fingerprint, files_under, install_job, python_venv};
use crate::{run, target_dir};

/// The WIT the Python SDK builds against: `cairn:job@0.3.0`, until it moves to 0.4.0.
const WIT: &str = "wit/v0.3.0";

/// The componentize-py release jobs are built with (it bundles CPython 3.14).
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Python jobs: (folder under `example-jobs/`, the app module componentize-py wraps, which
/// exports `Job`). The job is installed as `target/jobs/<folder>.wasm`.
const JOBS: &[(&str, &str)] = &[("word-count-py", "word_count")];

pub(super) fn build() -> anyhow::Result<()> {
    let bin = python_venv("componentize-py", &[COMPONENTIZE_PY])?;
    let root = crate::workspace_root();
    let wit = root.join(WIT);
    let sdk = root.join("guest-sdk").join("python").join("cairn_sdk");
    for (folder, module) in JOBS {
        let job = root.join("example-jobs").join(folder);
        let out = componentize(&bin, &wit, &sdk, &job, folder, module)?;
        install_job(&out, "jobs", folder)?;
    }
    Ok(())
}

/// Builds one job into `target/python/<name>/<name>.wasm`, unless its inputs (the WIT files,
/// the SDK, the job's own Python files, the componentize-py version) are those it was last
/// built from.
fn componentize(
    bin: &Path,
    wit: &Path,
    sdk: &Path,
    job: &Path,
    name: &str,
    module: &str,
) -> anyhow::Result<PathBuf> {
    let build = target_dir().join("python").join(name);
    let out = build.join(format!("{name}.wasm"));
    let wit_files = files_under(wit, |p| p.extension().is_some_and(|e| e == "wit"))?;
    let sdk_files = files_under(sdk, is_component_source)?;
    let job_files = files_under(job, is_component_source)?;
    let inputs: Vec<PathBuf> = [&wit_files, &sdk_files, &job_files]
        .into_iter()
        .flatten()
        .cloned()
        .collect();
    let salt = format!("{COMPONENTIZE_PY} {module}");
    Fingerprint::of(&out, &inputs, &salt)?.build_unless_current(&out, || {
        // componentize-py compiles the sources in place (writing __pycache__ beside them), so
        // it gets copies: the job's files and the SDK package, side by side in one folder.
        let staged = build.join("src");
        if staged.exists() {
            std::fs::remove_dir_all(&staged)?;
        }
        for file in &job_files {
            copy(file, &staged.join(file.strip_prefix(job)?))?;
        }
        for file in &sdk_files {
            copy(
                file,
                &staged.join("cairn_sdk").join(file.strip_prefix(sdk)?),
            )?;
        }
        run(Command::new(bin.join("componentize-py"))
            .arg("--quiet")
            .arg("--wit-path")
            .arg(wit)
            .args(["--world", "cairn-job", "componentize", module])
            .arg("--python-path")
            .arg(&staged)
            .arg("--output")
            .arg(&out)
            // Only the staged folder and the venv's own packages: not whatever venv the
            // shell has.
            .env_remove("VIRTUAL_ENV")
            .env_remove("PYTHONPATH")
            .current_dir(&build))
        .with_context(|| format!("componentize-py could not build {}", job.display()))
    })?;
    Ok(out)
}

/// Python files that go into a component: not tests (`tests/`, `test_*.py`), which run
/// natively.
fn is_component_source(relative: &Path) -> bool {
    relative.extension().is_some_and(|e| e == "py")
        && !relative.components().any(|c| c.as_os_str() == "tests")
        && !relative
            .file_name()
            .is_some_and(|n| n.to_string_lossy().starts_with("test_"))
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}
