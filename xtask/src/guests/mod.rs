//! Jobs in every guest language: each language's module builds its example jobs into
//! `target/jobs/`, installing its toolchain into a project-local folder on first use.

mod c;
mod js;
mod python;
mod rust;
mod wit_c;
mod zig;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run, step, target_dir};

pub(crate) use rust::{ensure_guest_target, lint as lint_rust};

/// A language jobs can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Rust,
    Python,
    Js,
    C,
    Zig,
}

impl Lang {
    pub(crate) const ALL: [Lang; 5] = [Lang::Rust, Lang::Python, Lang::Js, Lang::C, Lang::Zig];

    /// The name `--lang` takes and job files carry (`word-count-<name>.wasm`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "py",
            Lang::Js => "js",
            Lang::C => "c",
            Lang::Zig => "zig",
        }
    }

    pub(crate) fn parse(name: &str) -> anyhow::Result<Lang> {
        match name {
            "python" => Ok(Lang::Python),
            "javascript" => Ok(Lang::Js),
            _ => Lang::ALL
                .into_iter()
                .find(|lang| lang.name() == name)
                .with_context(|| {
                    let names: Vec<_> = Lang::ALL.iter().map(|l| l.name()).collect();
                    format!("unknown language {name:?}: one of {}", names.join(", "))
                }),
        }
    }

    /// Builds this language's jobs into `target/jobs/` (and test fixtures into
    /// `target/test-jobs/`).
    pub(crate) fn build(self) -> anyhow::Result<()> {
        step(&format!("building {} jobs", self.name()));
        match self {
            Lang::Rust => rust::build(),
            Lang::Python => python::build(),
            Lang::Js => js::build(),
            Lang::C => c::build(),
            Lang::Zig => zig::build(),
        }
        .with_context(|| {
            format!(
                "building the {} jobs failed (`cargo xtask build --lang rust` builds the Rust \
                 ones alone)",
                self.name()
            )
        })
    }
}

/// The Python and JavaScript SDKs' own unit tests, and their word-counts' (Python's
/// unittest, Node's test runner): they run the guest code natively, against the SDKs'
/// stand-ins for the host.
pub(crate) fn unit_tests() -> anyhow::Result<()> {
    let root = cairn_tests::workspace_root();
    let python_sdk = root.join("guest-sdk").join("python");
    for dir in [
        python_sdk.clone(),
        root.join("example-jobs").join("word-count-py"),
    ] {
        run(Command::new("python3")
            .args(["-m", "unittest", "discover", "--quiet", "-s", "tests"])
            .env("PYTHONPATH", &python_sdk)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .current_dir(&dir))
        .with_context(|| format!("the Python tests in {} failed", dir.display()))?;
    }
    let js_sdk = root.join("guest-sdk").join("js");
    npm_install(&js_sdk, Npm::InstallNoSave)?;
    run(Command::new("npm")
        .args(["test", "--silent"])
        .current_dir(&js_sdk))
    .context("the JavaScript tests failed")
}

/// Where toolchains are installed on first use: `target/toolchains/<name>`.
pub(crate) fn toolchain_dir(name: &str) -> PathBuf {
    target_dir().join("toolchains").join(name)
}

/// A Python virtual environment at `target/toolchains/<name>` with `packages` (pip
/// requirement specifiers) installed; returns its `bin` folder.
pub(crate) fn python_venv(name: &str, packages: &[&str]) -> anyhow::Result<PathBuf> {
    let venv = toolchain_dir(name);
    let bin = venv.join("bin");
    // pip writes this marker last, so its presence means a complete install of `packages`.
    let marker = venv.join(".cairn-installed");
    let wanted = packages.join("\n");
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == wanted) {
        return Ok(bin);
    }
    step(&format!(
        "installing {} into {} (first use)",
        packages.join(", "),
        venv.display()
    ));
    run(Command::new("python3").arg("-m").arg("venv").arg(&venv))
        .context("python3 with venv is needed (Debian: apt-get install python3 python3-venv)")?;
    run(Command::new(bin.join("pip"))
        .args(["install", "--quiet", "--disable-pip-version-check"])
        .args(packages))
    .with_context(|| format!("cannot install {} from PyPI", packages.join(", ")))?;
    std::fs::write(&marker, wanted)?;
    Ok(bin)
}

/// How a folder's npm packages are installed from its lockfile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Npm {
    /// `npm ci`: exactly the lockfile.
    Ci,
    /// `npm install --no-save`: the locked versions, for a lockfile `npm ci` refuses as out
    /// of sync — packages whose per-platform binaries are optional dependencies the registry
    /// lacks at those versions list them nowhere in the lockfile.
    InstallNoSave,
}

/// Installs `dir`'s npm packages, unless its `node_modules` was installed from the current
/// lockfile (npm's own record of the install is newer than it).
pub(crate) fn npm_install(dir: &Path, how: Npm) -> anyhow::Result<()> {
    if !has_npm() {
        bail!(
            "npm not found: install Node.js 20.19 or newer with npm (Debian: apt-get install npm)"
        );
    }
    let installed = modified(&dir.join("node_modules").join(".package-lock.json"));
    if installed.is_some() && installed >= modified(&dir.join("package-lock.json")) {
        return Ok(());
    }
    let args: &[&str] = match how {
        Npm::Ci => &["ci", "--no-audit", "--no-fund"],
        Npm::InstallNoSave => &["install", "--no-save", "--no-audit", "--no-fund"],
    };
    run(Command::new("npm").args(args).current_dir(dir))
        .with_context(|| format!("npm {} in {} failed", args[0], dir.display()))
}

/// When `path` was last modified, if it exists.
pub(crate) fn modified(path: &Path) -> Option<std::time::SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

pub(crate) fn has_npm() -> bool {
    Command::new("npm").arg("--version").output().is_ok()
}

/// Copies a built component to `target/<folder>/<name>.wasm` and says so.
pub(crate) fn install_job(from: &Path, folder: &str, name: &str) -> anyhow::Result<()> {
    let dir = target_dir().join(folder);
    std::fs::create_dir_all(&dir)?;
    let to = dir.join(format!("{name}.wasm"));
    std::fs::copy(from, &to)
        .with_context(|| format!("cannot copy {} to {}", from.display(), to.display()))?;
    let root = cairn_tests::workspace_root();
    eprintln!("    {}", to.strip_prefix(&root).unwrap_or(&to).display());
    Ok(())
}
