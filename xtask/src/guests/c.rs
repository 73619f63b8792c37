//! C jobs: every `.c` file of a job's folder compiled with `zig cc` for `wasm32-wasi`,
//! linked with the C SDK (guest-sdk/c) and the WIT bindings, then made a component.
//!
//! The SDK's own tests (guest-sdk/c/tests) are compiled natively, with this machine's C
//! compiler.

use std::process::Command;

use anyhow::Context;

use super::install_job;
use super::wit_c::{
    CSdk, NATIVE_BINDINGS_DEFINE, SDK_SOURCES, build_dir, cc, componentize, generated_bindings,
    workspace_path,
};
use crate::run;

/// C jobs: (name, folder of its sources).
const JOBS: &[(&str, &str)] = &[
    ("word-count-c", "example-jobs/word-count-c"),
    ("windowed-count-c", "example-jobs/windowed-count-c"),
];

pub(super) fn build() -> anyhow::Result<()> {
    let sdk = CSdk::build()?;
    for (name, folder) in JOBS {
        let folder = crate::workspace_root().join(folder);
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

/// The C SDK's native tests, and word-count-c's and windowed-count-c's: the golden vectors
/// (`wit/vectors`) through the SDK's emitter, chunk encoder and WIT exports, keyed state,
/// timers and windows, the word count's state versions and the windowed count's operators —
/// each a program driven by guest-sdk/c/tests/harness.c as the host would. Built
/// into `target/guest-c/native/` with `$CC` (default `cc`).
pub(super) fn unit_tests() -> anyhow::Result<()> {
    let bindings = generated_bindings()?;
    let dir = build_dir().join("native");
    std::fs::create_dir_all(&dir)?;
    let tests = workspace_path("guest-sdk/c/tests");
    let compiler = std::env::var_os("CC").unwrap_or_else(|| "cc".into());
    let cc = || {
        let mut command = Command::new(&compiler);
        command
            .args(["-std=c11", "-O2", "-g"])
            .arg("-I")
            .arg(workspace_path("guest-sdk/c/include"))
            .arg("-I")
            .arg(&bindings)
            .arg("-I")
            .arg(&tests);
        command
    };
    // Generated code, written for wasm32: its warnings natively are not this SDK's.
    let bindings_object = dir.join("cairn_job.o");
    run(cc()
        .args(["-c", "-w", NATIVE_BINDINGS_DEFINE])
        .arg(bindings.join("cairn_job.c"))
        .arg("-o")
        .arg(&bindings_object))
    .with_context(|| {
        format!(
            "the C SDK's tests need a C compiler ({}, or set CC; Debian: apt-get install gcc)",
            compiler.to_string_lossy()
        )
    })?;
    let vectors = workspace_path("wit/vectors");
    let programs = [
        (
            "golden_vectors",
            vec![tests.join("golden_vectors.c")],
            vec![
                vectors.join("packed-batch.txt"),
                vectors.join("keyed-chunk.txt"),
            ],
        ),
        ("keyed_state", vec![tests.join("keyed_state.c")], vec![]),
        ("event_time", vec![tests.join("event_time.c")], vec![]),
        (
            "word_count_test",
            vec![
                workspace_path("example-jobs/word-count-c/tests/word_count_test.c"),
                workspace_path("example-jobs/word-count-c/word_count.c"),
            ],
            vec![],
        ),
        (
            "windowed_count_test",
            vec![
                workspace_path("example-jobs/windowed-count-c/tests/windowed_count_test.c"),
                workspace_path("example-jobs/windowed-count-c/windowed_count.c"),
            ],
            vec![],
        ),
    ];
    for (name, sources, args) in programs {
        let program = dir.join(name);
        run(cc()
            .args(["-Wall", "-Wextra"])
            .args(&sources)
            .arg(tests.join("harness.c"))
            .args(SDK_SOURCES.iter().map(|source| workspace_path(source)))
            .arg(&bindings_object)
            .arg("-o")
            .arg(&program))?;
        run(Command::new(&program).args(&args))
            .with_context(|| format!("the C SDK's test {name} failed"))?;
    }
    Ok(())
}
