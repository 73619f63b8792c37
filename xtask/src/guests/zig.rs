//! Zig jobs: a job's `main.zig` built with `zig build-exe` for `wasm32-wasi`, importing the
//! Zig SDK (guest-sdk/zig, over the C SDK) as `cairn`, then made a component.

use super::install_job;
use super::wit_c::{CSdk, build_dir, componentize, zig_build_exe};
use crate::run;

/// Zig jobs: (name, root source file).
const JOBS: &[(&str, &str)] = &[("word-count-zig", "example-jobs/word-count-zig/main.zig")];

pub(super) fn build() -> anyhow::Result<()> {
    let sdk = CSdk::build()?;
    for (name, root) in JOBS {
        let root = cairn_tests::workspace_root().join(root);
        let core = build_dir().join(format!("{name}.core.wasm"));
        run(&mut zig_build_exe(&sdk, &root, &core)?)?;
        let component = build_dir().join(format!("{name}.wasm"));
        componentize(&core, &component)?;
        install_job(&component, "jobs", name)?;
    }
    Ok(())
}
