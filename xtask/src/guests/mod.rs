//! Jobs in every guest language: each language's module builds its example jobs into
//! `target/jobs/`, installing its toolchain into a project-local folder on first use.

mod c;
mod go;
mod js;
mod python;
mod rust;
mod wit_c;
mod zig;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, bail};

use crate::{run, step, target_dir};

pub(crate) use rust::{build_demo_job, ensure_guest_target, lint as lint_rust};

/// A language jobs can be written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Lang {
    Rust,
    Python,
    Js,
    C,
    Zig,
    Go,
}

impl Lang {
    pub(crate) const ALL: [Lang; 6] = [
        Lang::Rust,
        Lang::Python,
        Lang::Js,
        Lang::C,
        Lang::Zig,
        Lang::Go,
    ];

    /// The name `--lang` takes and job files carry (`word-count-<name>.wasm`).
    pub(crate) fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "py",
            Lang::Js => "js",
            Lang::C => "c",
            Lang::Zig => "zig",
            Lang::Go => "go",
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
            Lang::Go => go::build(),
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

impl Lang {
    /// Runs this language's SDK unit tests natively, and its example jobs' own: Python's
    /// unittest and Node's test runner against the SDKs' stand-ins for the host; C's and
    /// Zig's golden vectors (`wit/vectors`, which every SDK checks); Go's `go test`. The Rust
    /// SDK's are cargo tests, run with the workspace's.
    pub(crate) fn unit_tests(self) -> anyhow::Result<()> {
        let root = crate::workspace_root();
        match self {
            Lang::Rust => Ok(()),
            Lang::Python => {
                let python_sdk = root.join("guest-sdk").join("python");
                for dir in [
                    python_sdk.clone(),
                    root.join("example-jobs").join("word-count-py"),
                    root.join("example-jobs").join("windowed-count-py"),
                ] {
                    run(Command::new("python3")
                        .args(["-m", "unittest", "discover", "--quiet", "-s", "tests"])
                        .env("PYTHONPATH", &python_sdk)
                        .env("PYTHONDONTWRITEBYTECODE", "1")
                        .current_dir(&dir))
                    .with_context(|| format!("the Python tests in {} failed", dir.display()))?;
                }
                Ok(())
            }
            Lang::Js => {
                let js_sdk = root.join("guest-sdk").join("js");
                npm_install(&js_sdk, Npm::InstallNoSave)?;
                run(Command::new("npm")
                    .args(["test", "--silent"])
                    .current_dir(&js_sdk))
                .context("the JavaScript tests failed")
            }
            Lang::C => c::unit_tests(),
            Lang::Zig => zig::unit_tests(),
            Lang::Go => go::unit_tests(),
        }
    }
}

/// Cargo's target folder for the Rust guests and the WIT tooling, `target/guests`: apart
/// from the host's, so that they build while the host does (cargo locks a target folder for
/// the length of a build).
pub(crate) fn cargo_target_dir() -> PathBuf {
    target_dir().join("guests")
}

/// Where toolchains are installed on first use: `target/toolchains/<name>`.
pub(crate) fn toolchain_dir(name: &str) -> PathBuf {
    target_dir().join("toolchains").join(name)
}

/// A Python virtual environment at `target/toolchains/<name>` with `packages` installed
/// (`pip install`'s arguments: requirement specifiers, and options such as `--no-deps`);
/// returns its `bin` folder.
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

/// The files under `dir`, recursively and sorted, that `keep` accepts (given the path
/// relative to `dir`); installed packages and caches (`node_modules`, `__pycache__`) skipped.
pub(crate) fn files_under(
    dir: &Path,
    keep: impl Fn(&Path) -> bool,
) -> anyhow::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        let entries = std::fs::read_dir(&folder)
            .with_context(|| format!("cannot read {}", folder.display()))?;
        for entry in entries {
            let path = entry?.path();
            if path.is_dir() {
                if path
                    .file_name()
                    .is_some_and(|n| n != "node_modules" && n != "__pycache__")
                {
                    pending.push(path);
                }
            } else if keep(path.strip_prefix(dir).unwrap_or(&path)) {
                found.push(path);
            }
        }
    }
    found.sort();
    Ok(found)
}

/// What a build output was made from: a hash of its input files (paths and contents) and of
/// anything else it depends on (`salt`: a tool's version), kept beside the output, so that a
/// build whose inputs are unchanged is skipped. Contents rather than modification times:
/// a fresh checkout touches every file.
pub(crate) struct Fingerprint {
    value: String,
    stamp: PathBuf,
}

impl Fingerprint {
    pub(crate) fn of(output: &Path, inputs: &[PathBuf], salt: &str) -> anyhow::Result<Self> {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        salt.hash(&mut hasher);
        let root = crate::workspace_root();
        for file in inputs {
            file.strip_prefix(&root).unwrap_or(file).hash(&mut hasher);
            std::fs::read(file)
                .with_context(|| format!("cannot read {}", file.display()))?
                .hash(&mut hasher);
        }
        let mut stamp = output.as_os_str().to_owned();
        stamp.push(".inputs");
        Ok(Fingerprint {
            value: format!("{:016x}", hasher.finish()),
            stamp: stamp.into(),
        })
    }

    /// Whether `output` exists and was built from these inputs.
    fn is_current(&self, output: &Path) -> bool {
        output.exists() && std::fs::read_to_string(&self.stamp).is_ok_and(|s| s == self.value)
    }

    /// Runs `build` unless `output` is current, then records the inputs it was built from.
    pub(crate) fn build_unless_current(
        &self,
        output: &Path,
        build: impl FnOnce() -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        if self.is_current(output) {
            return Ok(());
        }
        // A build that fails half way must not look current next time.
        let _ = std::fs::remove_file(&self.stamp);
        build()?;
        std::fs::write(&self.stamp, &self.value)?;
        Ok(())
    }
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
    let root = crate::workspace_root();
    eprintln!("    {}", to.strip_prefix(&root).unwrap_or(&to).display());
    Ok(())
}
