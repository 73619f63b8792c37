//! What the C and Zig guests share: the Zig toolchain (its `zig cc` compiles the C), the C
//! bindings of the `cairn-job` world, the C SDK compiled once per build, and turning a
//! linked core module into a component.
//!
//! Guests are compiled for `wasm32-wasi` against wasi-libc for its allocator and memory,
//! string and formatting functions only: nothing in the SDKs or the example jobs does I/O,
//! so the core module imports nothing from WASI and the component imports only
//! `cairn:job/log`. `componentize` refuses a module that imports WASI (a job calling
//! `printf`, say) with a message saying why, rather than wiring in the WASI adapter.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use super::{python_venv, toolchain_dir};
use crate::{run, target_dir};

/// The WIT the C and Zig SDKs build against: `cairn:job@0.4.0`.
const WIT: &str = "wit";

/// The C SDK's sources, compiled into every C and Zig job and their native tests.
pub(super) const SDK_SOURCES: &[&str] = &["guest-sdk/c/src/cairn.c", "guest-sdk/c/src/window.c"];

/// The Zig compiler (and, as `zig cc`, the C compiler), from PyPI.
const ZIGLANG: &str = "ziglang==0.17.1";

/// The target guests are compiled for: core wasm with wasi-libc, made a component after.
const TARGET: &str = "wasm32-wasi";

/// The world every job implements.
const WORLD: &str = "cairn-job";

/// `python -m ziglang <subcommand>` in the workspace root: the Zig toolchain, installed into
/// `target/toolchains/zig` on first use.
pub(super) fn zig(subcommand: &str) -> anyhow::Result<Command> {
    let bin = python_venv("zig", &[ZIGLANG])?;
    let mut command = Command::new(bin.join("python"));
    command.args(["-m", "ziglang", subcommand]);
    // Zig's cache (wasi-libc, compiled once, among it) stays under target/ too.
    command.env("ZIG_GLOBAL_CACHE_DIR", toolchain_dir("zig-cache"));
    command.current_dir(crate::workspace_root());
    Ok(command)
}

/// `zig cc` for the guest target, optimised, with the SDK's and the bindings' headers.
pub(super) fn cc(sdk: &CSdk) -> anyhow::Result<Command> {
    let mut command = zig("cc")?;
    command.args(["-target", TARGET, "-O2", "-Wall", "-Wextra"]);
    command
        .arg("-I")
        .arg(&sdk.include)
        .arg("-I")
        .arg(&sdk.bindings);
    Ok(command)
}

/// `zig build-exe` for the guest target, linking the C SDK: root module `root`, which
/// imports the Zig SDK as `cairn`.
///
/// ReleaseSafe keeps Zig's safety checks (a bad index panics, with its message in the log)
/// at no measurable cost to word-count's throughput. Without the stack protector: in safe
/// builds it seeds its canary from WASI's `random_get`, the one WASI import it would add.
pub(super) fn zig_build_exe(sdk: &CSdk, root: &Path, out: &Path) -> anyhow::Result<Command> {
    let translated = sdk.translated_header()?;
    let mut command = zig("build-exe")?;
    command
        .args(["-target", TARGET, "-mexec-model=reactor"])
        .args(["-O", "ReleaseSafe", "-fno-stack-protector"])
        .args(["-lc", "-fstrip"])
        .arg(format!("-femit-bin={}", out.display()))
        .args(["--dep", "cairn"])
        .arg(format!("-Mroot={}", root.display()))
        .args(["--dep", "cairn_c"])
        .arg(format!(
            "-Mcairn={}",
            workspace_path("guest-sdk/zig/cairn.zig").display()
        ))
        .arg(format!("-Mcairn_c={}", translated.display()))
        .args(&sdk.objects);
    Ok(command)
}

/// The C SDK built for the guest target.
pub(super) struct CSdk {
    /// `guest-sdk/c/include` (cairn.h).
    pub include: PathBuf,
    /// The generated bindings (cairn_job.h), which cairn.c includes.
    pub bindings: PathBuf,
    /// cairn.c and the bindings compiled, and the bindings' component type object: what a
    /// job links.
    pub objects: Vec<PathBuf>,
}

impl CSdk {
    /// Generates the C bindings of the SDKs' WIT and compiles them with the SDK into
    /// `target/guest-c/`.
    pub fn build() -> anyhow::Result<CSdk> {
        let dir = build_dir();
        let bindings = bindings(&dir.join("bindings"))?;
        let mut sdk = CSdk {
            include: workspace_path("guest-sdk/c/include"),
            bindings: bindings.clone(),
            objects: Vec::new(),
        };
        let sources = SDK_SOURCES
            .iter()
            .map(|source| workspace_path(source))
            .chain([bindings.join("cairn_job.c")]);
        let mut objects = Vec::new();
        for source in sources {
            let object = dir.join(object_name(&source)?);
            run(cc(&sdk)?.arg("-c").arg(&source).arg("-o").arg(&object))?;
            objects.push(object);
        }
        objects.push(bindings.join("cairn_job_component_type.o"));
        sdk.objects = objects;
        Ok(sdk)
    }

    /// cairn.h translated to Zig (`zig translate-c`), the `cairn_c` module the Zig SDK
    /// imports.
    fn translated_header(&self) -> anyhow::Result<PathBuf> {
        let path = build_dir().join("cairn_c.zig");
        translate_header(Some(TARGET), &path)?;
        Ok(path)
    }
}

/// `name.o` for source file `name.c`.
pub(super) fn object_name(source: &Path) -> anyhow::Result<PathBuf> {
    let stem = source
        .file_stem()
        .with_context(|| format!("{} has no file name", source.display()))?;
    Ok(Path::new(stem).with_extension("o"))
}

/// Translates cairn.h to Zig into `path`, for `target` (`None`: this machine).
pub(super) fn translate_header(target: Option<&str>, path: &Path) -> anyhow::Result<()> {
    let mut command = zig("translate-c")?;
    if let Some(target) = target {
        command.args(["-target", target]);
    }
    let output = command
        .arg("-lc")
        .arg(workspace_path("guest-sdk/c/include/cairn.h"))
        .output()
        .context("cannot run zig translate-c")?;
    if !output.status.success() {
        bail!(
            "zig translate-c of cairn.h failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    write_if_changed(path, &output.stdout)
}

/// Compiling the generated bindings natively, for the SDKs' tests: their operator resource
/// constructor keeps a pointer in 32 bits, as on wasm32, so the tests' harness
/// (guest-sdk/c/tests/harness.c) defines it instead, and the generated one is renamed away.
pub(super) const NATIVE_BINDINGS_DEFINE: &str =
    "-Dexports_cairn_job_job_operator_new=cairn_test_unused_operator_new";

/// The generated C bindings of the SDKs' WIT (`target/guest-c/bindings`), brought up to date.
pub(super) fn generated_bindings() -> anyhow::Result<PathBuf> {
    bindings(&build_dir().join("bindings"))
}

/// Where the bindings, the compiled SDK and the core modules go: `target/guest-c`.
pub(super) fn build_dir() -> PathBuf {
    target_dir().join("guest-c")
}

pub(super) fn workspace_path(relative: &str) -> PathBuf {
    crate::workspace_root().join(relative)
}

/// The WIT tooling (`xtask/wit-tools`), built on first use: xtask itself stays free of it.
fn wit_tools() -> anyhow::Result<Command> {
    static BUILT: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    if BUILT.get().is_none() {
        run(crate::cargo()
            .args(["build", "--release", "--quiet", "-p", "cairn-wit-tools"])
            .arg("--target-dir")
            .arg(super::cargo_target_dir()))?;
        BUILT.get_or_init(|| ());
    }
    Ok(Command::new(
        super::cargo_target_dir()
            .join("release")
            .join("cairn-wit-tools"),
    ))
}

/// Generates the C bindings (`cairn_job.h`, `cairn_job.c` and the component type object
/// `cairn_job_component_type.o`) of the world into `dir`, rewriting only changed files.
fn bindings(dir: &Path) -> anyhow::Result<PathBuf> {
    let staged = build_dir().join("bindings.new");
    run(wit_tools()?
        .arg("c-bindings")
        .arg(workspace_path(WIT))
        .arg(WORLD)
        .arg(&staged))?;
    std::fs::create_dir_all(dir)?;
    for entry in std::fs::read_dir(&staged)? {
        let path = entry?.path();
        let contents = std::fs::read(&path)?;
        write_if_changed(
            &dir.join(path.file_name().context("a file name")?),
            &contents,
        )?;
    }
    Ok(dir.to_owned())
}

/// Writes `contents` unless the file already holds them, so that timestamps only move when
/// the contents do.
fn write_if_changed(path: &Path, contents: &[u8]) -> anyhow::Result<()> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(());
    }
    std::fs::write(path, contents).with_context(|| format!("cannot write {}", path.display()))
}

/// Wraps core module `core` (linked with the bindings, so exporting the world's functions
/// and carrying its component type) into the job component `out`; a module importing WASI
/// is refused, saying why.
pub(super) fn componentize(core: &Path, out: &Path) -> anyhow::Result<()> {
    componentize_as("componentize", core, out)
}

/// Wraps a Go core module (`GOOS=wasip1`) into a component, through the WASI preview 1
/// adapter its runtime needs (see `cairn-wit-tools componentize-go`).
pub(super) fn componentize_go(core: &Path, out: &Path) -> anyhow::Result<()> {
    componentize_as("componentize-go", core, out)
}

fn componentize_as(subcommand: &str, core: &Path, out: &Path) -> anyhow::Result<()> {
    run(wit_tools()?
        .arg(subcommand)
        .arg(workspace_path(WIT))
        .arg(WORLD)
        .arg(core)
        .arg(out))
}
