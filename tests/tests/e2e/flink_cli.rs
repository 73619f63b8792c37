//! Apache Flink's own command line, unchanged, against running Cairn jobs: `flink list`,
//! `savepoint`, `savepoint -d`, `stop` (with and without `--drain`) and `cancel`, each
//! checked for its effect — a savepoint that exists and restores exactly, a disposed one
//! gone, the job ended with the right status — and the cluster endpoints Flink's frontend
//! and tools read first (`/config`, `/overview`, `/jobmanager/config`, `/taskmanagers`).
//!
//! The CLI is PyPI's `apache-flink` (its `pyflink/bin/flink` and jars, run by this
//! machine's Java), which `cargo xtask test` installs into `target/toolchains/flink`. When
//! PyPI could not be reached, xtask says so in `target/toolchains/flink.unavailable` and
//! these tests are skipped, saying why.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use cairn_api::{
    ClusterOverviewWithVersion, ConfigurationEntry, DashboardConfiguration, FLINK_VERSION,
    JobDetailsInfo, TaskManagersInfo,
};
use cairn_tests::path_str as path;
use cairn_tests::{
    Corpus, Finished, RunningJob, Scratch, Session, cairn, finish, job, os, run_checkpointed,
    savepoint_path, target_dir, test_job, word_count_args,
};

use crate::savepoints::{committed_lines, records_read};

/// The installed Flink CLI.
struct Flink {
    script: PathBuf,
    /// Where the CLI writes its log.
    logs: PathBuf,
}

impl Flink {
    /// The CLI xtask installed, or `None` (saying why) when PyPI could not be reached.
    fn installed(scratch: &Scratch) -> Option<Flink> {
        let toolchains = target_dir().join("toolchains");
        let unavailable = toolchains.join("flink.unavailable");
        if let Ok(why) = std::fs::read_to_string(&unavailable) {
            eprintln!("skipped: the Flink CLI could not be installed from PyPI: {why}");
            return None;
        }
        let lib = toolchains.join("flink").join("lib");
        let script = std::fs::read_dir(&lib)
            .ok()
            .into_iter()
            .flatten()
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.path().join("site-packages/pyflink/bin/flink"))
            .find(|script| script.exists())
            .unwrap_or_else(|| {
                panic!(
                    "no Flink CLI under {}: `cargo xtask test` installs it",
                    lib.display()
                )
            });
        let logs = scratch.join("flink-log");
        std::fs::create_dir_all(&logs).unwrap();
        Some(Flink { script, logs })
    }

    /// `flink <args> -m <the job's REST address>`, run to its end.
    fn command(&self, job: &RunningJob, args: &[&str]) -> Finished {
        let mut command = Command::new("bash");
        command
            .arg(&self.script)
            .args(args)
            .args(["-m", &job.address])
            .env("FLINK_LOG_DIR", &self.logs);
        finish(command, None)
    }

    /// [`Flink::command`], which must succeed.
    fn run(&self, job: &RunningJob, args: &[&str]) -> Finished {
        let run = self.command(job, args);
        assert!(run.success(), "flink {args:?}: {run:?}");
        run
    }
}

/// `cairn run word-count` at parallelism 2, checkpointing every 100 ms; paced at [`RATE`]
/// when `paced`.
fn word_count(
    id: &str,
    out: &Path,
    scratch: &Scratch,
    paced: bool,
    extra: &[&str],
) -> Vec<OsString> {
    let mut args = run_checkpointed(&job("word-count"), 2, id, &scratch.join("chk"));
    args.extend(os(extra));
    args.extend(word_count_args(&corpus().path, out, paced.then_some(RATE)));
    args
}

/// Lines per second the paced jobs read: the corpus then lasts minutes, time for every
/// Flink command (a JVM each, seconds apiece on a loaded machine) while the job runs.
const RATE: &str = "500";

/// About 80k lines.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("flink-corpus", 4 << 20, 5_000, 11))
}

#[test]
fn flink_lists_savepoints_disposes_and_stops_a_cairn_job() {
    let (session, scratch) = (Session::new("flink-cli"), Scratch::new("flink-cli"));
    let Some(flink) = Flink::installed(&scratch) else {
        return;
    };
    let (id, out) = ("fa".repeat(16), scratch.join("out"));
    let mut running = session.start(word_count(&id, &out, &scratch, true, &[]));
    running.wait_for_progress(2_000);

    // `list` shows running and scheduled jobs, `list -r` running ones: the job in both.
    for args in [&["list"][..], &["list", "-r"]] {
        let listed = flink.run(&running, args);
        assert!(
            listed
                .stdout
                .contains(&format!(" : {id} : word-count (RUNNING)")),
            "{listed:?}"
        );
    }

    // The cluster endpoints Flink's frontend and tools read first, under `/v1` as they ask.
    let overview: ClusterOverviewWithVersion = running.get("/v1/overview");
    let details: JobDetailsInfo = running.get(&format!("/v1/jobs/{id}"));
    let slots: u32 = details.vertices.iter().map(|v| v.parallelism).sum();
    assert_eq!(
        (
            overview.taskmanagers,
            overview.slots_total,
            overview.jobs_running
        ),
        (1, slots, 1)
    );
    assert_eq!(overview.flink_version, FLINK_VERSION);
    let managers: TaskManagersInfo = running.get("/v1/taskmanagers");
    let manager = &managers.taskmanagers[0];
    assert_eq!((manager.slots_number, manager.free_slots), (slots, 0));
    assert!(manager.hardware.cpu_cores >= 1 && manager.hardware.physical_memory > 0);
    let frontend: DashboardConfiguration = running.get("/v1/config");
    assert!(frontend.features.web_cancel && !frontend.features.web_submit);
    let settings: Vec<ConfigurationEntry> = running.get("/v1/jobmanager/config");
    let chk = path(&scratch.join("chk")).to_owned();
    assert!(
        settings
            .iter()
            .any(|e| e.key == "execution.checkpointing.dir" && e.value.contains(&chk)),
        "{settings:?}"
    );

    let savepoints = scratch.join("savepoints");
    let saved = flink.run(&running, &["savepoint", &id, path(&savepoints)]);
    let first = savepoint_path(&saved.stdout);
    assert!(first.starts_with(&savepoints), "{first:?}");
    assert!(first.join("_metadata").is_file(), "{saved:?}");

    let disposed = flink.run(&running, &["savepoint", "-d", path(&first)]);
    assert!(disposed.stdout.contains("disposed"), "{disposed:?}");
    assert!(!first.exists(), "{disposed:?}");

    // A failed operation: Flink's CLI shows Cairn's reason at once (no retries).
    let refused = flink.command(&running, &["savepoint", "-d", path(&first)]);
    assert!(!refused.success(), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("not a savepoint (it has no _metadata)"),
        "{refused:?}"
    );

    let stopped = flink.run(
        &running,
        &["stop", "--savepointPath", path(&savepoints), &id],
    );
    let last = savepoint_path(&stopped.stdout);
    assert!(last.join("_metadata").is_file(), "{stopped:?}");
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    assert!(
        running.stdout().contains("FINISHED"),
        "{}",
        running.stdout()
    );

    // The stop's savepoint restores exactly: the run resumed from it ends the oracle.
    let resumed = cairn(
        word_count(
            &"f2".repeat(16),
            &out,
            &scratch,
            false,
            &["-s", path(&last)],
        ),
        None,
        None,
    );
    assert!(resumed.success(), "{resumed:?}");
    corpus().assert_exact(&out);
}

#[test]
fn flink_cancels_a_cairn_job_and_stops_one_draining_it() {
    let (session, scratch) = (Session::new("flink-cancel"), Scratch::new("flink-cancel"));
    let Some(flink) = Flink::installed(&scratch) else {
        return;
    };
    let id = "f3".repeat(16);
    let mut running = session.start(word_count(&id, &scratch.join("out"), &scratch, true, &[]));
    running.wait_for_progress(1_000);
    let cancelled = flink.run(&running, &["cancel", &id]);
    assert!(cancelled.stdout.contains(&id), "{cancelled:?}");
    running.wait();
    assert!(
        running.stdout().contains("CANCELED"),
        "{}",
        running.stdout()
    );

    // --drain: the buffering fixture emits what it holds before the savepoint, and the
    // sink commits exactly the lines read.
    let (id, drained) = ("f4".repeat(16), scratch.join("drained"));
    let mut args = os(&["run", path(&test_job("buffering")), "--job-id", &id]);
    args.extend(word_count_args(&corpus().path, &drained, Some(RATE)));
    let mut running = session.start(args);
    running.wait_for_progress(2_000);
    let savepoints = scratch.join("savepoints");
    let stopped = flink.run(
        &running,
        &["stop", "--drain", "--savepointPath", path(&savepoints), &id],
    );
    assert!(savepoint_path(&stopped.stdout).join("_metadata").is_file());
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    let read = records_read(running.stdout().lines().last().unwrap());
    let text = std::fs::read_to_string(&corpus().path).unwrap();
    let mut expected: Vec<String> = text.lines().take(read).map(str::to_owned).collect();
    expected.sort();
    assert_eq!(committed_lines(&drained), expected);
}
