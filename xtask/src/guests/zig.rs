//! Zig jobs: a job's `main.zig` built with `zig build-exe` for `wasm32-wasi`, importing the
//! Zig SDK (guest-sdk/zig, over the C SDK) as `cairn`, then made a component.

use anyhow::Context;

use super::install_job;
use super::wit_c::{
    CSdk, NATIVE_BINDINGS_DEFINE, SDK_SOURCES, build_dir, componentize, generated_bindings,
    object_name, translate_header, workspace_path, zig, zig_build_exe,
};
use crate::run;

/// Zig jobs: (name, root source file).
const JOBS: &[(&str, &str)] = &[
    ("word-count-zig", "example-jobs/word-count-zig/main.zig"),
    (
        "windowed-count-zig",
        "example-jobs/windowed-count-zig/main.zig",
    ),
];

pub(super) fn build() -> anyhow::Result<()> {
    let sdk = CSdk::build()?;
    for (name, root) in JOBS {
        let root = crate::workspace_root().join(root);
        let core = build_dir().join(format!("{name}.core.wasm"));
        run(&mut zig_build_exe(&sdk, &root, &core)?)?;
        let component = build_dir().join(format!("{name}.wasm"));
        componentize(&core, &component)?;
        install_job(&component, "jobs", name)?;
    }
    Ok(())
}

/// The Zig SDK's native tests (guest-sdk/zig/tests), word-count-zig's and
/// windowed-count-zig's (`zig test`): the golden vectors, keyed state, timers and windows, the
/// word count's state versions and the windowed count's operators, linked with the C SDK
/// and its test harness compiled natively with `zig cc` (see the C SDK's tests), into
/// `target/guest-c/native-zig/`.
pub(super) fn unit_tests() -> anyhow::Result<()> {
    let bindings = generated_bindings()?;
    let dir = build_dir().join("native-zig");
    std::fs::create_dir_all(&dir)?;
    let translated = dir.join("cairn_c.zig");
    translate_header(None, &translated)?;
    let sources = SDK_SOURCES
        .iter()
        .chain(&["guest-sdk/c/tests/harness.c"])
        .map(|source| (workspace_path(source), None))
        .chain([(bindings.join("cairn_job.c"), Some(NATIVE_BINDINGS_DEFINE))]);
    let mut objects = Vec::new();
    for (source, define) in sources {
        let object = dir.join(object_name(&source)?);
        let mut command = zig("cc")?;
        command
            .args(["-c", "-O2", "-g"])
            .arg("-I")
            .arg(workspace_path("guest-sdk/c/include"))
            .arg("-I")
            .arg(&bindings);
        match define {
            // Generated code, written for wasm32: its warnings natively are not this SDK's.
            Some(define) => command.args(["-w", define]),
            None => command.args(["-Wall", "-Wextra"]),
        };
        run(command.arg(&source).arg("-o").arg(&object))?;
        objects.push(object);
    }
    let roots = [
        "guest-sdk/zig/tests/golden_vectors.zig",
        "guest-sdk/zig/tests/keyed_state.zig",
        "guest-sdk/zig/tests/event_time.zig",
        "example-jobs/word-count-zig/tests.zig",
        "example-jobs/windowed-count-zig/tests.zig",
    ];
    for root in roots {
        run(zig("test")?
            .arg("-lc")
            .args(["--dep", "cairn", "--dep", "harness"])
            .arg(format!("-Mroot={}", workspace_path(root).display()))
            .args(["--dep", "cairn_c"])
            .arg(format!(
                "-Mcairn={}",
                workspace_path("guest-sdk/zig/cairn.zig").display()
            ))
            .arg(format!("-Mcairn_c={}", translated.display()))
            .arg(format!(
                "-Mharness={}",
                workspace_path("guest-sdk/zig/tests/harness.zig").display()
            ))
            .args(&objects)
            .env(
                "CAIRN_VECTORS",
                workspace_path("wit/vectors/packed-batch.txt"),
            )
            .env(
                "CAIRN_KEYED_VECTORS",
                workspace_path("wit/vectors/keyed-chunk.txt"),
            ))
        .with_context(|| format!("the Zig tests of {root} failed"))?;
    }
    Ok(())
}
