//! Python jobs: the job's module and the SDK (`guest-sdk/python/cairn_sdk`) componentized
//! against `wit/` by componentize-py, installed from PyPI into a project-local venv.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::Context;

use super::{install_job, python_venv};
use crate::{run, target_dir};

/// The componentize-py release jobs are built with (it bundles CPython 3.14).
const COMPONENTIZE_PY: &str = "componentize-py==0.25.1";

/// Python jobs: (folder under `example-jobs/`, the app module componentize-py wraps, which
/// exports `Job`). The job is installed as `target/jobs/<folder>.wasm`.
const JOBS: &[(&str, &str)] = &[("word-count-py", "word_count")];

pub(super) fn build() -> anyhow::Result<()> {
    let bin = python_venv("componentize-py", &[COMPONENTIZE_PY])?;
    let root = cairn_tests::workspace_root();
    let wit = root.join("wit");
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
    let stamp = build.join("inputs.hash");

    let wit_files = files(wit, "wit")?;
    let sdk_files = files(sdk, "py")?;
    let job_files = files(job, "py")?;
    let mut hasher = DefaultHasher::new();
    COMPONENTIZE_PY.hash(&mut hasher);
    module.hash(&mut hasher);
    for (base, list) in [(wit, &wit_files), (sdk, &sdk_files), (job, &job_files)] {
        for file in list.iter() {
            file.strip_prefix(base).unwrap_or(file).hash(&mut hasher);
            std::fs::read(file)
                .with_context(|| format!("cannot read {}", file.display()))?
                .hash(&mut hasher);
        }
    }
    let fingerprint = format!("{:016x}", hasher.finish());
    if out.exists() && std::fs::read_to_string(&stamp).is_ok_and(|s| s == fingerprint) {
        return Ok(out);
    }

    // componentize-py compiles the sources in place (writing __pycache__ beside them), so it
    // gets copies: the job's files and the SDK package, side by side in one folder.
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
    let _ = std::fs::remove_file(&stamp);
    run(Command::new(bin.join("componentize-py"))
        .arg("--quiet")
        .arg("--wit-path")
        .arg(wit)
        .args(["--world", "cairn-job", "componentize", module])
        .arg("--python-path")
        .arg(&staged)
        .arg("--output")
        .arg(&out)
        // Only the staged folder and the venv's own packages: not whatever venv the shell has.
        .env_remove("VIRTUAL_ENV")
        .env_remove("PYTHONPATH")
        .current_dir(&build))
    .with_context(|| format!("componentize-py could not build {}", job.display()))?;
    std::fs::write(&stamp, fingerprint)?;
    Ok(out)
}

/// The files under `dir` (recursively) whose names end in `.ext`, sorted; caches and tests
/// (`tests/`, `test_*.py`: they run natively, not in the component) skipped.
fn files(dir: &Path, ext: &str) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(dir) = pending.pop() {
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("cannot read {}", dir.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n != "__pycache__" && n != "tests")
                {
                    pending.push(path);
                }
            } else if path.extension().is_some_and(|e| e == ext)
                && !path
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with("test_"))
            {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

fn copy(from: &Path, to: &Path) -> anyhow::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::copy(from, to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    Ok(())
}
