//! JavaScript jobs: a job's entry module bundled with the JavaScript SDK (guest-sdk/js) and
//! made a QuickJS component by componentize-qjs, jco's QuickJS backend, through the SDK's
//! `build.js`. The toolchain is the SDK's npm dependencies, pinned by its lockfile and
//! installed into `guest-sdk/js/node_modules` on first use.

use std::path::PathBuf;
use std::process::Command;
use std::time::SystemTime;

use anyhow::Context;

use super::{Npm, install_job, modified, npm_install};
use crate::{run, target_dir};

/// JavaScript jobs: (name, entry module).
const JOBS: &[(&str, &str)] = &[("word-count-js", "example-jobs/word-count-js/job.js")];

pub(super) fn build() -> anyhow::Result<()> {
    let root = cairn_tests::workspace_root();
    let sdk = root.join("guest-sdk").join("js");
    npm_install(&sdk, Npm::InstallNoSave)?;
    let built = target_dir().join("guest-js");
    std::fs::create_dir_all(&built)?;
    for (name, entry) in JOBS {
        let entry = root.join(entry);
        let component = built.join(format!("{name}.wasm"));
        // What the component is made of: the job's folder, the SDK and its toolchain's
        // lockfile, and the WIT. Rebuilding costs seconds, checking this milliseconds.
        let folder = entry
            .parent()
            .context("a job's entry module is in a folder")?;
        let inputs = [
            folder.to_path_buf(),
            sdk.join("src"),
            sdk.join("build.js"),
            sdk.join("package-lock.json"),
            root.join("wit"),
        ];
        if newest(&inputs)? > modified(&component) {
            run(Command::new("node")
                .arg(sdk.join("build.js"))
                .arg(&entry)
                .arg("-o")
                .arg(&component))
            .with_context(|| format!("cannot build {}", entry.display()))?;
        }
        install_job(&component, "jobs", name)?;
    }
    Ok(())
}

/// The latest modification time of `paths` and, for folders, of the files in them.
fn newest(paths: &[PathBuf]) -> anyhow::Result<Option<SystemTime>> {
    let mut latest = None;
    let mut pending: Vec<PathBuf> = paths.to_vec();
    while let Some(path) = pending.pop() {
        let meta =
            std::fs::metadata(&path).with_context(|| format!("cannot read {}", path.display()))?;
        if meta.is_dir() {
            for entry in std::fs::read_dir(&path)? {
                let entry = entry?;
                if entry.file_name() != "node_modules" {
                    pending.push(entry.path());
                }
            }
        } else {
            latest = latest.max(Some(meta.modified()?));
        }
    }
    Ok(latest)
}
