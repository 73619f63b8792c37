//! `cargo xtask build | demo | test | bench | lint | kafka`: the project's entry points.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, bail};
mod background;
mod guests;
mod kafka;
mod modules;

use background::Background;
use cairn_oracle::{check_word_count, committed_files, word_counts, write_text};
use guests::{Lang, Npm, ensure_guest_target, has_npm, lint_rust, npm_install, python_venv};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  build [--lang LANG]... [--jobs-only]
          build target/release/cairn and the jobs of each language (all when none:
          rust, py, js, c, zig) to target/jobs/<name>.wasm; --jobs-only skips cairn
  demo    build, then run word-count on a generated text and check its output
  test    build, then run the whole test suite
  sdk-test [--lang LANG]...
          run the guest SDKs' own unit tests (all when none), without building
  bench   build, then run the benchmarks (see BENCHMARKS.md)
  lint    cargo fmt --check and clippy on host and guests
  kafka install | start | stop | produce ... | consume ...
          a single-node Apache Kafka broker on loopback (docs/guides/kafka.md):
          install   fetch Kafka's jars from Maven Central (start does it on first use)
          start     start a broker, print its bootstrap address, run until Ctrl-C or stop
          stop      stop the broker `start` runs
          produce --bootstrap HOST:PORT --topic T [--partitions N] FILE
                    a file's lines into a topic (created with N partitions if missing)
          consume --bootstrap HOST:PORT --topic T OUT_FILE
                    a topic's committed values, one per line, up to its end offsets";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("build") => build(&args[1..]),
        Some("demo") => demo(),
        Some("test") => test(&args[1..]),
        Some("sdk-test") => sdk_test(&args[1..]),
        Some("bench") => bench(&args[1..]),
        Some("lint") => lint(),
        Some("kafka") => kafka::kafka(&args[1..]),
        _ => {
            eprintln!("{USAGE}");
            std::process::exit(2);
        }
    };
    if let Err(error) = result {
        eprintln!("xtask: {error:#}");
        std::process::exit(1);
    }
}

/// The workspace's root folder, xtask's parent.
fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(workspace_root());
    // What `cargo run` told xtask about itself: some build scripts (ring's) rerun when it
    // changes, so passing it on would rebuild them, and all that depends on them, whenever
    // a build alternates between `cargo xtask` and plain `cargo`.
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("CARGO_PKG_")
            || matches!(
                &*name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
            )
        {
            command.env_remove(&*name);
        }
    }
    command
}

fn run(command: &mut Command) -> anyhow::Result<()> {
    background::redirect(command)?;
    let status = command
        .status()
        .with_context(|| format!("cannot run {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed ({status})");
    }
    Ok(())
}

fn step(message: &str) {
    background::heading(message);
}

fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

/// The languages `--lang LANG`... names (all when none), and whether `flag` was given.
fn langs(args: &[String], flag: Option<&str>) -> anyhow::Result<(Vec<Lang>, bool)> {
    let (mut langs, mut flagged) = (Vec::new(), false);
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--lang" => {
                let name = args.next().context("--lang needs a language")?;
                langs.push(Lang::parse(name)?);
            }
            other if Some(other) == flag => flagged = true,
            other => bail!("unknown argument {other:?}\n\n{USAGE}"),
        }
    }
    if langs.is_empty() {
        langs = Lang::ALL.to_vec();
    }
    Ok((langs, flagged))
}

/// `build [--lang LANG]... [--jobs-only]`: the host, then the jobs of the languages named
/// (all when none).
fn build(args: &[String]) -> anyhow::Result<()> {
    let (langs, jobs_only) = langs(args, Some("--jobs-only"))?;
    let host = !jobs_only;
    let jobs = move || langs.into_iter().try_for_each(Lang::build);
    if host {
        build_beside(Host::All, "guest jobs", jobs)
    } else {
        jobs()
    }
}

/// Builds the host in the foreground and runs `beside` at the same time (the guest jobs,
/// and what else needs no host), waiting for both.
fn build_beside(
    host: Host,
    name: &'static str,
    beside: impl FnOnce() -> anyhow::Result<()> + Send + 'static,
) -> anyhow::Result<()> {
    ensure_guest_target()?;
    let background = Background::spawn(name, beside)?;
    let built = build_host(host);
    // Waited for even when the host failed: its commands must not outlive xtask.
    let beside = background.join();
    built.and(beside)
}

/// What of the host a command needs built.
#[derive(Clone, Copy, PartialEq)]
enum Host {
    /// The `cairn` binary alone (the demo).
    Binary,
    /// Everything native, tests and benchmarks included.
    All,
}

fn build_host(host: Host) -> anyhow::Result<()> {
    build_dashboard()?;
    if host == Host::Binary {
        step("building cairn (release)");
        return run(cargo().args(["build", "--release", "-p", "cairn", "--bin", "cairn"]));
    }
    // Everything native at once, tests included: building with the same feature set that
    // `cargo test --workspace` unifies (dev-dependencies count) means each dependency is
    // compiled once, not once for the binaries and again for the tests. The WIT tooling is
    // built when C or Zig guests are.
    step("building cairn, tests and benchmarks (release)");
    run(cargo()
        .args(["build", "--release", "--workspace", "--all-targets"])
        .args(NOT_TESTED))
}

/// Workspace members `cargo xtask build` and `test` leave to whoever needs them.
const NOT_TESTED: [&str; 2] = ["--exclude", "cairn-wit-tools"];

fn demo() -> anyhow::Result<()> {
    build_beside(Host::Binary, "the demo's job", guests::build_demo_job)?;
    let dir = target_dir().join("demo");
    let input = dir.join("input.txt");
    let output = dir.join("output");
    let checkpoints = dir.join("checkpoints");
    std::fs::create_dir_all(&dir)?;
    for stale in [&output, &checkpoints] {
        if stale.exists() {
            std::fs::remove_dir_all(stale)?;
        }
    }
    step("generating a 64 MB text");
    let bytes = write_text(&input, 64 << 20, 200_000, 42)?;
    eprintln!("    {} ({:.1} MB)", input.display(), bytes as f64 / 1e6);

    let cairn = target_dir().join("release").join("cairn");
    let job_id = "de300000000000000000000000000001";
    let word_count = |resume: Option<&Path>| {
        let mut command = Command::new(&cairn);
        command
            .arg("run")
            .arg(target_dir().join("jobs").join("word-count.wasm"))
            .args([
                "-p",
                "2",
                "-D",
                "execution.checkpointing.interval=200 ms",
                "-D",
            ])
            .arg(format!(
                "execution.checkpointing.dir={}",
                checkpoints.display()
            ));
        match resume {
            Some(from) => command.arg("-s").arg(from),
            None => command.args(["--job-id", job_id]),
        };
        command
            .args(["--", "--input"])
            .arg(&input)
            .arg("--output")
            .arg(&output);
        command
    };

    step("running word-count, parallelism 2, exactly-once checkpoints every 200 ms");
    let started = Instant::now();
    let mut first = word_count(None).spawn().context("cannot start cairn")?;
    std::thread::sleep(std::time::Duration::from_millis(1500));
    if first.try_wait()?.is_none() {
        first.kill()?;
        first.wait()?;
        step("crash: killed cairn with SIGKILL after 1.5 s; what it left behind:");
        let job_folder = checkpoints.join(job_id);
        run(Command::new(&cairn).arg("inspect").arg(&job_folder))?;
        let parts = committed_files(&output)?.len();
        eprintln!("    {parts} part files committed so far; uncommitted ones are hidden");

        step("resuming from the latest checkpoint");
        run(&mut word_count(Some(&job_folder)))?;
    } else {
        eprintln!("    (the job finished before the planned crash)");
    }
    let elapsed = started.elapsed();

    step("result");
    let counts = word_counts(&input)?;
    let report = check_word_count(&counts, &output)?;
    show_top_words(&output)?;
    let words: u64 = counts.values().sum();
    eprintln!(
        "    {words} words ({} distinct) in {:.2} s, crash and restore included",
        counts.len(),
        elapsed.as_secs_f64(),
    );
    eprintln!(
        "    oracle: {} output lines, {} missing, {} duplicated, {} unexpected",
        report.lines, report.missing, report.duplicated, report.unexpected
    );
    if !report.is_exact() {
        bail!("the output does not match the oracle");
    }
    eprintln!("    output matches the oracle exactly: no record lost or duplicated by the crash");
    Ok(())
}

/// The most frequent words, from the output alone: a word's highest `n` is its count.
fn show_top_words(output: &Path) -> anyhow::Result<()> {
    let mut highest = std::collections::HashMap::<String, u64>::new();
    for file in committed_files(output)? {
        for line in std::fs::read_to_string(&file)?.lines() {
            if let Some((word, n)) = line.rsplit_once('\t')
                && let Ok(n) = n.parse::<u64>()
            {
                let entry = highest.entry(word.to_owned()).or_default();
                *entry = (*entry).max(n);
            }
        }
    }
    let mut top: Vec<_> = highest.into_iter().collect();
    top.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    eprintln!("    top words:");
    for (word, n) in top.iter().take(5) {
        eprintln!("      {n:>9}  {word}");
    }
    Ok(())
}

/// `sdk-test [--lang LANG]...`: the SDKs' unit tests, of the languages named (all when none).
fn sdk_test(args: &[String]) -> anyhow::Result<()> {
    let (langs, _) = langs(args, None)?;
    langs.into_iter().try_for_each(Lang::unit_tests)
}

fn test(extra: &[String]) -> anyhow::Result<()> {
    build_beside(Host::All, "guest jobs and test tools", || {
        Lang::ALL.into_iter().try_for_each(Lang::build)?;
        ensure_moto()?;
        ensure_schemathesis()?;
        ensure_browser()?;
        ensure_flink()?;
        kafka::ensure_kafka()?;
        step("running the guest SDKs' unit tests");
        Lang::ALL.into_iter().try_for_each(Lang::unit_tests)
    })?;
    step("running the test suite");
    let mut command = cargo();
    command
        .args(["test", "--release", "--workspace"])
        .args(NOT_TESTED)
        .args(extra);
    // An end-to-end test spends most of its time waiting on `cairn` processes: twice as
    // many tests at once as cores keeps the cores busy (RUST_TEST_THREADS still wins).
    if std::env::var_os("RUST_TEST_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        command.env("RUST_TEST_THREADS", (2 * cores).to_string());
    }
    run(&mut command)
}

/// The dashboard's bundle, `dashboard/dist`, is committed so that the binary builds without
/// Node.js; with npm at hand it is rebuilt from `dashboard/src` (`cargo xtask lint` then
/// checks that the committed bundle is that build).
fn build_dashboard() -> anyhow::Result<()> {
    if !has_npm() {
        eprintln!(
            "    npm not found: using the committed dashboard/dist (install Node.js to rebuild it)"
        );
        return Ok(());
    }
    step("building the dashboard (npm)");
    npm_install(&workspace_root().join("dashboard"), Npm::Ci)?;
    run(Command::new("npm")
        .args(["run", "--silent", "build"])
        .current_dir(workspace_root().join("dashboard")))
}

/// What the dashboard's browser test needs: Debian's Chromium and Playwright (npm). If they
/// cannot be installed here, the other tests still run and that one fails saying why.
fn ensure_browser() -> anyhow::Result<()> {
    let chromium =
        std::env::var_os("CHROMIUM").map_or_else(|| PathBuf::from(CHROMIUM), PathBuf::from);
    if !chromium.exists() {
        step("installing Chromium (Debian's package) for the dashboard test");
        let installed = run(Command::new("apt-get").args(["update", "-qq"])).and_then(|()| {
            run(Command::new("apt-get")
                .args(["install", "-y", "-qq", "chromium"])
                .env("DEBIAN_FRONTEND", "noninteractive"))
        });
        if let Err(e) = installed {
            eprintln!(
                "    cannot install Chromium ({e:#}): run `apt-get install chromium` as root, \
                 or set CHROMIUM to a Chromium binary"
            );
        }
    }
    if !has_npm() {
        eprintln!("    npm not found: the dashboard test needs Node.js and npm");
        return Ok(());
    }
    npm_install(&workspace_root().join("tests").join("browser"), Npm::Ci)
}

/// Where Debian's `chromium` package puts the browser.
const CHROMIUM: &str = "/usr/bin/chromium";

/// The S3-compatible server the storage tests start on loopback (moto, from PyPI), in a
/// project-local virtual environment.
fn ensure_moto() -> anyhow::Result<()> {
    python_venv("moto", &["moto[server]>=5,<6"]).map(drop)
}

/// The OpenAPI checker the REST tests run against `docs/rest-api.yaml` (schemathesis, from
/// PyPI; its 4.x command line), in a venv under the toolchains folder.
fn ensure_schemathesis() -> anyhow::Result<()> {
    python_venv("schemathesis", &["schemathesis>=4.32,<5"]).map(drop)
}

/// Apache Flink's command line (PyPI's `apache-flink`: `pyflink/bin/flink` and its jars,
/// run with this machine's Java), which the Flink CLI tests drive against running jobs.
/// Only the CLI: without PyFlink's Python dependencies. When it cannot be installed, the
/// reason goes to `target/toolchains/flink.unavailable` and those tests are skipped, saying
/// it.
fn ensure_flink() -> anyhow::Result<()> {
    let unavailable = guests::toolchain_dir("flink.unavailable");
    match python_venv("flink", &["--no-deps", FLINK, FLINK_LIBRARIES]) {
        Ok(_) => {
            let _ = std::fs::remove_file(&unavailable);
        }
        Err(e) => {
            eprintln!("    cannot install the Flink CLI, its tests will be skipped: {e:#}");
            std::fs::write(&unavailable, format!("{e:#}"))?;
        }
    }
    Ok(())
}

/// The Flink release whose CLI the tests drive, and its jars (a separate PyPI package).
const FLINK: &str = "apache-flink==2.3.0";
const FLINK_LIBRARIES: &str = "apache-flink-libraries==2.3.0";

fn bench(extra: &[String]) -> anyhow::Result<()> {
    build(&[])?;
    step("running the benchmarks");
    run(Command::new(target_dir().join("release").join("cairn-bench")).args(extra))
}

fn lint() -> anyhow::Result<()> {
    ensure_guest_target()?;
    step("cargo fmt --check");
    run(cargo().args(["fmt", "--all", "--", "--check"]))?;
    step("clippy (host, tests, tools)");
    run(cargo().args([
        "clippy",
        "--release",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    step("the host crates' modules depend on each other without a cycle");
    for dir in modules::HOST_CRATES {
        modules::check_acyclic(&workspace_root().join(dir))?;
    }
    step("clippy (guests, for wasm32-wasip2)");
    lint_rust()?;
    step("the committed dashboard bundle is its sources' build");
    anyhow::ensure!(
        has_npm(),
        "npm is needed to check dashboard/dist against its sources"
    );
    build_dashboard()?;
    let status = Command::new("git")
        .args(["status", "--porcelain", "--", "dashboard/dist"])
        .current_dir(workspace_root())
        .output()
        .context("cannot run git")?;
    let changed = String::from_utf8_lossy(&status.stdout);
    anyhow::ensure!(
        changed.trim().is_empty(),
        "dashboard/dist differs from a fresh build of dashboard/src: commit the rebuilt \
         bundle\n{changed}"
    );
    Ok(())
}
