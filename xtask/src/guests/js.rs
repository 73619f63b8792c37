//! JavaScript jobs: a job's entry module bundled with the JavaScript SDK (guest-sdk/js) and
//! made a QuickJS component by componentize-qjs, jco's QuickJS backend, through the SDK's
//! `build.js`. The toolchain is the SDK's npm dependencies, pinned by its lockfile and
//! installed into `guest-sdk/js/node_modules` on first use.

use std::path::Path;
use std::process::Command;

use anyhow::Context;

use super::{Fingerprint, Npm, files_under, install_job, npm_install};
use crate::{run, target_dir};

/// The WIT the JavaScript SDK builds against: `cairn:job@0.4.0`.
const WIT: &str = "wit";

/// JavaScript jobs: (name, entry module).
const JOBS: &[(&str, &str)] = &[
    ("word-count-js", "example-jobs/word-count-js/job.js"),
    ("windowed-count-js", "example-jobs/windowed-count-js/job.js"),
];

/// The package's own WIT files (not the older versions and vectors in its subfolders).
fn package_wit(path: &Path) -> bool {
    path.parent() == Some(Path::new("")) && path.extension().is_some_and(|e| e == "wit")
}

pub(super) fn build() -> anyhow::Result<()> {
    let root = crate::workspace_root();
    let sdk = root.join("guest-sdk").join("js");
    npm_install(&sdk, Npm::InstallNoSave)?;
    let built = target_dir().join("guest-js");
    std::fs::create_dir_all(&built)?;
    let all = |_: &Path| true;
    for (name, entry) in JOBS {
        let entry = root.join(entry);
        let component = built.join(format!("{name}.wasm"));
        // What the component is made of: the job's folder, the SDK and its toolchain's
        // lockfile, and the WIT. Rebuilding costs seconds, checking this milliseconds.
        let folder = entry
            .parent()
            .context("a job's entry module is in a folder")?;
        let mut inputs = files_under(folder, all)?;
        inputs.extend(files_under(&sdk.join("src"), all)?);
        inputs.extend(files_under(&root.join(WIT), package_wit)?);
        inputs.extend([sdk.join("build.js"), sdk.join("package-lock.json")]);
        Fingerprint::of(&component, &inputs, "")?.build_unless_current(&component, || {
            run(Command::new("node")
                .arg(sdk.join("build.js"))
                .arg(&entry)
                .arg("-o")
                .arg(&component)
                .arg("--wit")
                .arg(root.join(WIT)))
            .with_context(|| format!("cannot build {}", entry.display()))
        })?;
        install_job(&component, "jobs", name)?;
    }
    Ok(())
}
