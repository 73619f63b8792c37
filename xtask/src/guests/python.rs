//! Python jobs: the job's module and the SDK (`guest-sdk/python/cairn_sdk`) componentized
//! against `wit/` by componentize-py, installed from PyPI into a project-local venv.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::{Fingerprint, files_under, install_job, python_venv};
use crate::{run, target_dir};

/// The WIT the Python SDK builds against: `cairn:job@0.4.0`.
const WIT: &str = "wit";

/// The componentize-py release jobs are built with (it bundles CPython 3.14).
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// A Python job under `example-jobs/`, installed as `target/jobs/<folder>.wasm`.
struct PythonJob {
    folder: &'static str,
    /// The app module componentize-py wraps, which exports `Job`.
    module: &'static str,
    /// Other job folders whose modules it imports (windowed-count-py: word-count-py's
    /// `word_count`, as Rust's windowed-count uses the word_count crate), staged beside its own.
    uses: &'static [&'static str],
}

/// The Python jobs `cargo xtask build` builds.
const JOBS: &[PythonJob] = &[
    PythonJob {
        folder: "word-count-py",
        module: "word_count",
        uses: &[],
    },
    PythonJob {
        folder: "windowed-count-py",
        module: "windowed_count",
        uses: &["word-count-py"],
    },
];

pub(super) fn build() -> anyhow::Result<()> {
    let bin = python_venv("componentize-py", &[COMPONENTIZE_PY])?;
    let root = crate::workspace_root();
    let wit = root.join(WIT);
    let sdk = root.join("guest-sdk").join("python").join("cairn_sdk");
    for job in JOBS {
        let folders: Vec<PathBuf> = std::iter::once(job.folder)
            .chain(job.uses.iter().copied())
            .map(|folder| root.join("example-jobs").join(folder))
            .collect();
        let out = componentize(&bin, &wit, &sdk, &folders, job.folder, job.module)?;
        install_job(&out, "jobs", job.folder)?;
    }
    Ok(())
}

/// Builds one job into `target/python/<name>/<name>.wasm` from the Python files of `folders`
/// (the job's own first, then those it uses), unless its inputs (the WIT files, the SDK,
/// those files, the componentize-py version) are those it was last built from.
fn componentize(
    bin: &Path,
    wit: &Path,
    sdk: &Path,
    folders: &[PathBuf],
    name: &str,
    module: &str,
) -> anyhow::Result<PathBuf> {
    let build = target_dir().join("python").join(name);
    let out = build.join(format!("{name}.wasm"));
    let wit_files = files_under(wit, |p| p.extension().is_some_and(|e| e == "wit"))?;
    let sdk_files = files_under(sdk, is_component_source)?;
    let mut job_files = Vec::new();
    for folder in folders {
        for file in files_under(folder, is_component_source)? {
            job_files.push((folder.clone(), file));
        }
    }
    let inputs: Vec<PathBuf> = [&wit_files, &sdk_files]
        .into_iter()
        .flatten()
        .cloned()
        .chain(job_files.iter().map(|(_, file)| file.clone()))
        .collect();
    let salt = format!("{COMPONENTIZE_PY} {module}");
    Fingerprint::of(&out, &inputs, &salt)?.build_unless_current(&out, || {
        // componentize-py compiles the sources in place (writing __pycache__ beside them), so
        // it gets copies: the job's files, those of the jobs it uses and the SDK package, side
        // by side in one folder.
        let staged = build.join("src");
        if staged.exists() {
            std::fs::remove_dir_all(&staged)?;
        }
        for (folder, file) in &job_files {
            copy(file, &staged.join(file.strip_prefix(folder)?))?;
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
        .with_context(|| format!("componentize-py could not build {name}"))
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
