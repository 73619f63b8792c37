//! C jobs: every `.c` file of a job's folder compiled with `zig cc` for `wasm32-wasi`,
//! linked with the C SDK (guest-sdk/c) and the WIT bindings, then made a component.

use super::install_job;
use super::wit_c::{CSdk, build_dir, cc, componentize};
use crate::run;

/// C jobs: (name, folder of its sources).
const JOBS: &[(&str, &str)] = &[("word-count-c", "example-jobs/word-count-c")];

pub(super) fn build() -> anyhow::Result<()> {
    let sdk = CSdk::build()?;
    for (name, folder) in JOBS {
        let folder = cairn_tests::workspace_root().join(folder);
        let mut sources: Vec<_> = std::fs::read_dir(&folder)?
            .map(|entry| entry.map(|e| e.path()))
            .collect::<Result<_, _>>()?;
        sources.retain(|path| path.extension().is_some_and(|ext| ext == "c"));
        sources.sort();
        let core = build_dir().join(format!("{name}.core.wasm"));
        // A reactor: no `main`, `_initialize` runs constructors once; -s strips debug info.
        run(cc(&sdk)?
            .args(["-mexec-model=reactor", "-s"])
            .args(&sources)
            .args(&sdk.objects)
            .arg("-o")
            .arg(&core))?;
        let component = build_dir().join(format!("{name}.wasm"));
        componentize(&core, &component)?;
        install_job(&component, "jobs", name)?;
    }
    Ok(())
}
