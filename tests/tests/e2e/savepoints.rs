//! Savepoints and the control plane end to end: the CLI commands and the REST API against
//! real running jobs, code upgrades across a moved savepoint (`stop`, `cancel -s`), hot
//! swaps with `cairn swap` (then `kill -9` and a resume), a swap that must roll back — each
//! checked against the word-count oracle.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cairn_api::{
    AsynchronousOperationResult, CheckpointConfigInfo, CheckpointMode, CheckpointingStatistics,
    ErrorBody, JobDetailsInfo, JobExceptionsInfoWithHistory, JobIdsWithStatusOverview, JobStatus,
    MultipleJobsDetails, QueueStatusId, ShipStrategy, TriggerResponse,
};
use cairn_tests::path_str as path;
use cairn_tests::{
    Corpus, RunningJob, Scratch, Session, cairn, check_word_count, http, job, os, read,
    run_checkpointed, savepoint_path, test_job, word_count_args,
};

/// Lines per second the paced jobs read: slow enough that commands land mid-stream.
const RATE: &str = "4000";

/// About 20k lines: five seconds at [`RATE`].
pub(crate) fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("savepoint-corpus", 1 << 20, 5_000, 7))
}

/// `cairn run <wasm>` of word-count (v1, v2 or a fixture) at parallelism 2, checkpointing
/// every 100 ms into `chk`; paced at [`RATE`] when `paced`.
fn word_count(
    wasm: &Path,
    id: &str,
    out: &Path,
    chk: &Path,
    paced: bool,
    extra: &[&str],
) -> Vec<OsString> {
    let mut args = run_checkpointed(wasm, 2, id, chk);
    args.extend(os(extra));
    args.extend(job_args(out, paced));
    args
}

/// The job's arguments on this file's corpus, paced at [`RATE`] when `paced`.
fn job_args(out: &Path, paced: bool) -> Vec<OsString> {
    word_count_args(&corpus().path, out, paced.then_some(RATE))
}

/// Moves a savepoint folder elsewhere: savepoints are relocatable.
fn moved(savepoint: &Path, scratch: &Scratch) -> PathBuf {
    let to = scratch.join("moved").join(savepoint.file_name().unwrap());
    std::fs::create_dir_all(to.parent().unwrap()).unwrap();
    std::fs::rename(savepoint, &to).unwrap();
    to
}

/// Runs word-count v2 from `savepoint` to the end of the input (unpaced).
fn finish_with_v2(savepoint: &Path, out: &Path, scratch: &Scratch) -> cairn_tests::Finished {
    let chk = scratch.join("chk-v2");
    let run = cairn(
        word_count(
            &job("word-count-v2"),
            &cairn_tests::job_id_for(out),
            out,
            &chk,
            false,
            &["-s", path(savepoint)],
        ),
        None,
        None,
    );
    assert!(run.success(), "{run:?}");
    assert!(run.last_line().contains("FINISHED"), "{run:?}");
    run
}

/// Starts word-count v1, paced, writing to `<scratch>/out`, and waits until its source has
/// emitted `progress` lines.
fn start_v1(session: &Session, scratch: &Scratch, id: &str, progress: u64) -> RunningJob {
    let out = scratch.join("out");
    let job = session.start(word_count(
        &job("word-count"),
        id,
        &out,
        &scratch.join("chk"),
        true,
        &[],
    ));
    job.wait_for_progress(progress);
    job
}

#[test]
fn stop_with_savepoint_then_v2_from_the_moved_savepoint_is_exact() {
    let (session, scratch) = (Session::new("stop-upgrade"), Scratch::new("stop-upgrade"));
    let (id, out) = ("a9".repeat(16), scratch.join("out"));
    let mut v1 = start_v1(&session, &scratch, &id, 3_000);

    let sp = scratch.join("savepoints");
    let stop = session.cli(os(&["stop", "--savepoint-path", path(&sp), &id]));
    assert!(stop.success(), "{stop:?}");
    assert!(
        stop.stdout
            .starts_with(&format!("Suspending job \"{id}\" with a savepoint.\n")),
        "{stop:?}"
    );
    let savepoint = savepoint_path(&stop.stdout);
    assert!(savepoint.starts_with(&sp), "{savepoint:?}");
    assert!(
        savepoint
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!("savepoint-{}-", &id[..6])),
        "{savepoint:?}"
    );
    assert_eq!(v1.wait(), Some(0), "{}", v1.stderr());
    assert!(v1.stdout().contains("FINISHED"), "{}", v1.stdout());
    let partial = check_word_count(&corpus().counts, &out).unwrap();
    assert!(
        partial.missing > 0 && partial.duplicated == 0,
        "stopped mid-stream: {partial:?}"
    );

    let savepoint = moved(&savepoint, &scratch);
    let inspect = cairn(os(&["inspect", "--json", path(&savepoint)]), None, None);
    assert!(
        inspect.stdout.contains("\"kind\": \"savepoint\""),
        "{inspect:?}"
    );
    let run = finish_with_v2(&savepoint, &out, &scratch);
    assert!(
        run.stderr.contains("migrated"),
        "v2 migrates v1's state: {run:?}"
    );
    corpus().assert_exact(&out);
}

#[test]
fn cancel_with_savepoint_then_v2_from_the_moved_savepoint_is_exact() {
    let (session, scratch) = (
        Session::new("cancel-upgrade"),
        Scratch::new("cancel-upgrade"),
    );
    let (id, out) = ("c2".repeat(16), scratch.join("out"));
    let mut v1 = start_v1(&session, &scratch, &id, 3_000);

    let sp = scratch.join("savepoints");
    let cancel = session.cli(os(&["cancel", "-s", path(&sp), &id]));
    assert!(cancel.success(), "{cancel:?}");
    assert!(
        cancel.stdout.starts_with(&format!(
            "Cancelling job {id} with savepoint to {}.\n",
            sp.display()
        )),
        "{cancel:?}"
    );
    let savepoint = savepoint_path(&cancel.stdout);
    assert_eq!(v1.wait(), Some(1), "{}", v1.stderr());
    assert!(v1.stdout().contains("CANCELED"), "{}", v1.stdout());

    let savepoint = moved(&savepoint, &scratch);
    finish_with_v2(&savepoint, &out, &scratch);
    corpus().assert_exact(&out);
}

#[test]
fn swap_to_v2_mid_stream_then_kill_and_resume_is_exact() {
    let session = Session::new("swap");
    let scratch = Scratch::new("swap");
    let (out, chk) = (scratch.join("out"), scratch.join("chk"));
    let id = "5a".repeat(16);
    let mut v1 = start_v1(&session, &scratch, &id, 2_000);

    let v2 = job("word-count-v2");
    let swap = session.cli(os(&["swap", &id, path(&v2)]));
    assert!(swap.success(), "{swap:?}");
    assert!(
        swap.stdout
            .ends_with(&format!("Swapped: job {id} runs {} now.\n", v2.display())),
        "{swap:?}"
    );
    // Both count subtasks took over their state in the new code.
    assert_eq!(
        v1.stderr().matches("migrated").count(),
        2,
        "{}",
        v1.stderr()
    );

    // Let a checkpoint taken by the new code complete, then crash.
    let swapped_at = Instant::now();
    while !latest_count_state_is_version(&chk.join(&id), 4) {
        assert!(swapped_at.elapsed() < Duration::from_secs(30));
        std::thread::sleep(Duration::from_millis(20));
    }
    v1.wait_for_progress(6_000);
    v1.kill();
    let partial = check_word_count(&corpus().counts, &out).unwrap();
    assert!(partial.missing > 0, "killed mid-stream: {partial:?}");

    let resume = cairn(
        word_count(
            &v2,
            &"d8".repeat(16),
            &out,
            &scratch.join("chk-resume"),
            false,
            &["-s", path(&chk.join(&id))],
        ),
        None,
        None,
    );
    assert!(resume.success(), "{resume:?}");
    corpus().assert_exact(&out);
}

/// Whether the job folder's latest checkpoint holds `count` state in `version`.
fn latest_count_state_is_version(job_folder: &Path, version: u64) -> bool {
    let inspect = cairn(os(&["inspect", "--json", path(job_folder)]), None, None);
    let Ok(metadata) = serde_json::from_str::<serde_json::Value>(&inspect.stdout) else {
        return false;
    };
    metadata["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|n| n["uid"] == "count")
        .flat_map(|n| n["subtasks"].as_array().cloned().unwrap_or_default())
        .any(|s| s["state"]["state"]["version"].as_u64() == Some(version))
}

#[test]
fn failed_swaps_leave_the_old_code_running_and_the_output_exact() {
    let (session, scratch) = (Session::new("swap-refused"), Scratch::new("swap-refused"));
    let (id, out) = ("e3".repeat(16), scratch.join("out"));
    let mut v1 = start_v1(&session, &scratch, &id, 2_000);

    // Every count subtask refuses v1's state: all roll back.
    let refused = session.cli(os(&["swap", &id, path(&test_job("refuses-state"))]));
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains(&format!(
            "swap refused; job {id} keeps running its current code: count (1/2), count (2/2): \
             cannot restore state: the state is in encoding version 3, this operator reads \
             version 7"
        )),
        "{refused:?}"
    );
    // Another graph: refused before anything is touched.
    let other = session.cli(os(&["swap", &id, path(&test_job("big-state"))]));
    assert_eq!(other.code, Some(1), "{other:?}");
    assert!(
        other
            .stderr
            .contains("does not have the running job's shape: the nodes differ"),
        "{other:?}"
    );
    let not_a_job = session.cli(os(&["swap", &id, path(&test_job("not-a-job"))]));
    assert!(
        not_a_job.stderr.contains("is not a Cairn job"),
        "{not_a_job:?}"
    );

    assert_eq!(v1.wait(), Some(0), "{}", v1.stderr());
    assert!(v1.stdout().contains("FINISHED"), "{}", v1.stdout());
    corpus().assert_exact(&out);
}

/// keyed-sum, unbounded and paced, checkpointing every 100 ms, with a default savepoint
/// folder.
fn keyed_sum(id: &str, scratch: &Scratch, extra: &[&str]) -> Vec<OsString> {
    let mut args = os(&["run", path(&job("keyed-sum")), "--job-id", id]);
    args.extend(os(&[
        "-D",
        "execution.checkpointing.interval=100 ms",
        "-D",
        &format!("execution.checkpointing.dir={}", path(&scratch.join("chk"))),
        "-D",
        &format!("state.savepoints.dir={}", path(&scratch.join("default-sp"))),
    ]));
    args.extend(os(extra));
    args.extend(os(&[
        "--",
        "--records",
        "0",
        "--keys",
        "1000",
        "--rate",
        "20000",
    ]));
    args
}

/// Polls a Flink-style asynchronous operation until it completes.
fn await_operation(job: &RunningJob, path: &str) -> AsynchronousOperationResult {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let body: AsynchronousOperationResult = job.get(path);
        if body.status.id == QueueStatusId::Completed {
            return body;
        }
        assert!(Instant::now() < deadline, "{path} never completed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn flink_rest_client_cli_commands_and_disposal() {
    let session = Session::new("control");
    let scratch = Scratch::new("control");
    let id = "f1".repeat(16);
    let mut running = session.start(keyed_sum(&id, &scratch, &[]));
    running.wait_for_progress(1_000);

    let list = session.cli(["list"]);
    assert!(list.success(), "{list:?}");
    assert!(
        list.stdout
            .contains(&format!(" : {id} : keyed-sum (RUNNING) http://")),
        "{list:?}"
    );

    // A Flink client: trigger, poll by request id, read the location.
    let target = scratch.join("rest-sp");
    let (status, triggered) = running.http(
        "POST",
        &format!("/jobs/{id}/savepoints"),
        Some(&format!(
            r#"{{"target-directory": "{}", "cancel-job": false}}"#,
            target.display()
        )),
    );
    assert_eq!(status, 202, "{triggered}");
    let request = read::<TriggerResponse>(&triggered).request_id;
    let done = await_operation(&running, &format!("/jobs/{id}/savepoints/{request}"));
    let location = done.outcome().unwrap().unwrap().unwrap().to_owned();
    let savepoint = PathBuf::from(location.strip_prefix("file://").unwrap_or(&location));
    assert!(savepoint.starts_with(&target), "{done:?}");
    assert!(savepoint.join("_metadata").is_file());
    assert!(savepoint.join("sum").join("0.state").is_file());

    // Flink's read-only endpoints.
    let jobs: JobIdsWithStatusOverview = running.get("/jobs");
    assert_eq!(jobs.jobs[0].id, id);
    assert_eq!(jobs.jobs[0].status, JobStatus::Running);
    let overview: MultipleJobsDetails = running.get("/jobs/overview");
    assert_eq!(overview.jobs[0].name, "keyed-sum", "{overview:?}");
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    let names: Vec<&str> = details.vertices.iter().map(|v| v.name.as_str()).collect();
    assert_eq!(names, ["numbers", "sum", "out"], "{details:?}");
    assert_eq!(
        details.plan.nodes[1].inputs[0].ship_strategy,
        ShipStrategy::Hash
    );
    let checkpoints = loop {
        let checkpoints: CheckpointingStatistics = running.get(&format!("/jobs/{id}/checkpoints"));
        if checkpoints.latest.completed.as_ref().map(|c| c.id) > Some(1) {
            break checkpoints;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(
        checkpoints
            .latest
            .savepoint
            .as_ref()
            .and_then(|s| s.external_path.as_deref()),
        Some(location.as_str()),
        "{checkpoints:?}"
    );
    let config: CheckpointConfigInfo = running.get(&format!("/jobs/{id}/checkpoints/config"));
    assert_eq!(
        (config.mode, config.interval),
        (CheckpointMode::ExactlyOnce, 100)
    );
    let exceptions: JobExceptionsInfoWithHistory = running.get(&format!("/jobs/{id}/exceptions"));
    assert!(exceptions.root_exception.is_none(), "{exceptions:?}");
    let (status, unknown) = running.http("GET", &format!("/jobs/{}", "0".repeat(32)), None);
    assert_eq!(status, 404, "{unknown}");
    let (status, _) = running.http(
        "GET",
        &format!("/jobs/{id}/savepoints/{}", "0".repeat(32)),
        None,
    );
    assert_eq!(status, 404);
    // A savepoint's request id is not a swap's.
    let (status, _) = running.http("GET", &format!("/jobs/{id}/swap/{request}"), None);
    assert_eq!(status, 404);
    assert_eq!(overview.jobs[0].tasks.states.running, 3, "{overview:?}");
    assert_eq!(overview.jobs[0].tasks.total, 3, "{overview:?}");
    assert_eq!(details.vertices[1].tasks.running, 1, "{details:?}");

    // The CLI, with the default savepoint folder.
    let triggered = session.cli(os(&["savepoint", &id]));
    assert!(triggered.success(), "{triggered:?}");
    assert!(
        triggered.stdout.starts_with(&format!(
            "Triggering savepoint for job {id}.\nWaiting for response...\nSavepoint completed. Path: "
        )),
        "{triggered:?}"
    );
    let default = savepoint_path(&triggered.stdout);
    assert!(
        default.starts_with(scratch.join("default-sp")),
        "{default:?}"
    );

    // Unknown and malformed job ids, and -m to a server running another job.
    let stranger = "0123456789abcdef".repeat(2);
    for command in [
        os(&["savepoint", &stranger]),
        os(&["cancel", &stranger]),
        os(&["stop", &stranger]),
        os(&["swap", &stranger, path(&job("word-count"))]),
    ] {
        let refused = session.cli(&command);
        assert_eq!(refused.code, Some(1), "{refused:?}");
        assert_eq!(
            refused.stderr,
            format!(
                "cairn: no running job with id {stranger} on this machine (`cairn list` shows \
                 the running jobs; use -m host:port for a job elsewhere)\n"
            ),
            "{command:?}"
        );
    }
    let malformed = session.cli(os(&["cancel", "42"]));
    assert!(
        malformed.stderr.contains("invalid job id '42'"),
        "{malformed:?}"
    );
    let elsewhere = session.cli(os(&["savepoint", "-m", &running.address, &stranger]));
    assert!(
        elsewhere
            .stderr
            .contains(&format!("no job {stranger} at http://{}", running.address)),
        "{elsewhere:?}"
    );

    // Disposal: a savepoint goes; a checkpoint or any other folder is refused, untouched.
    let dispose = session.cli(os(&["savepoint", "--dispose", path(&default)]));
    assert!(dispose.success(), "{dispose:?}");
    assert!(dispose.stdout.ends_with("disposed.\n"), "{dispose:?}");
    assert!(!default.exists());
    let checkpoint =
        copy_latest_checkpoint(&scratch.join("chk").join(&id), &scratch.join("chk-copy"));
    let refused = session.cli(os(&["savepoint", "--dispose", path(&checkpoint)]));
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("is a checkpoint, not a savepoint; nothing was deleted"),
        "{refused:?}"
    );
    assert!(
        checkpoint.join("_metadata").is_file() && checkpoint.join("sum").join("0.state").is_file()
    );
    let other = scratch.join("not-a-savepoint");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("precious.txt"), "keep me").unwrap();
    let refused = session.cli(os(&["savepoint", "--dispose", path(&other)]));
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("not a savepoint (it has no _metadata); nothing was deleted"),
        "{refused:?}"
    );
    assert_eq!(
        std::fs::read_to_string(other.join("precious.txt")).unwrap(),
        "keep me"
    );
    // Over REST too.
    let (status, triggered) = running.http(
        "POST",
        "/savepoint-disposal",
        Some(&format!(
            r#"{{"savepoint-path": "{}"}}"#,
            savepoint.display()
        )),
    );
    assert_eq!(status, 202);
    let request = read::<TriggerResponse>(&triggered).request_id;
    let done = await_operation(&running, &format!("/savepoint-disposal/{request}"));
    assert!(done.outcome().is_some_and(|o| o.is_ok()), "{done:?}");
    assert!(!savepoint.exists());

    // Stop into the default folder: the job finishes.
    let stop = session.cli(os(&["stop", &id]));
    assert!(stop.success(), "{stop:?}");
    let stopped = savepoint_path(&stop.stdout);
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    assert!(
        running.stdout().contains("FINISHED"),
        "{}",
        running.stdout()
    );
    assert_eq!(session.cli(["list"]).stdout, "No running jobs.\n");

    // keyed-sum's savepoint has no state for word-count's nodes, and state word-count
    // lacks: refused by name unless allowed; then word-count starts empty.
    let out = scratch.join("wc-out");
    let mut args = os(&["run", path(&job("word-count")), "-s", path(&stopped)]);
    args.extend(os(&[
        "--",
        "--input",
        path(&corpus().path),
        "--output",
        path(&out),
    ]));
    let refused = cairn(&args, None, None);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused
            .stderr
            .contains("it has state for 'numbers', 'sum', which this job does not have")
            && refused.stderr.contains("--allow-non-restored-state"),
        "{refused:?}"
    );
    args.insert(2, "--allow-non-restored-state".into());
    let allowed = cairn(&args, None, None);
    assert!(allowed.success(), "{allowed:?}");
    corpus().assert_exact(&out);
}

/// Copies a job folder's latest checkpoint (retention may delete the original any moment).
fn copy_latest_checkpoint(job_folder: &Path, to: &Path) -> PathBuf {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let latest = std::fs::read_dir(job_folder)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("_metadata").is_file())
            .max();
        if let Some(latest) = latest
            && copy_dir(&latest, to).is_ok()
            && to.join("_metadata").is_file()
        {
            return to.to_owned();
        }
        let _ = std::fs::remove_dir_all(to);
        assert!(Instant::now() < deadline, "no checkpoint to copy");
    }
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[test]
fn a_rest_server_beyond_loopback_requires_a_token() {
    let session = Session::new("auth");
    let scratch = Scratch::new("auth");
    let id = "7".repeat(32);
    let open = session.cli(keyed_sum(
        &id,
        &scratch,
        &["-D", "rest.bind-address=0.0.0.0"],
    ));
    assert_eq!(open.code, Some(1), "{open:?}");
    assert!(
        open.stderr
            .contains("a REST server reachable from other machines must require a token"),
        "{open:?}"
    );

    let mut running = session.start(keyed_sum(
        &id,
        &scratch,
        &[
            "-D",
            "rest.bind-address=0.0.0.0",
            "-D",
            "rest.auth-token=s3cret",
        ],
    ));
    let (status, body) = http(&running.address, "GET", "/jobs", None, None);
    assert_eq!(status, 401, "{body}");
    assert!(read::<ErrorBody>(&body).errors[0].starts_with("Unauthorized"));
    let (status, _) = http(&running.address, "GET", "/jobs", None, Some("wrong"));
    assert_eq!(status, 401);
    let (status, jobs) = http(&running.address, "GET", "/jobs", None, Some("s3cret"));
    assert_eq!(status, 200, "{jobs}");
    assert_eq!(read::<JobIdsWithStatusOverview>(&jobs).jobs[0].id, id);

    // The CLI finds the token in the registry; with -m it takes $CAIRN_REST_TOKEN.
    let without = session.cli(os(&["cancel", "-m", &running.address, &id]));
    assert_eq!(without.code, Some(1), "{without:?}");
    assert!(without.stderr.contains("401"), "{without:?}");
    let cancel = session.cli(os(&["cancel", &id]));
    assert!(cancel.success(), "{cancel:?}");
    assert_eq!(
        cancel.stdout,
        format!("Cancelling job {id}.\nCancelled job {id}.\n")
    );
    assert_eq!(running.wait(), Some(1));
    assert!(
        running.stdout().contains("CANCELED"),
        "{}",
        running.stdout()
    );
}

/// Every committed line of a file sink's folder, sorted.
pub(crate) fn committed_lines(dir: &Path) -> Vec<String> {
    let mut lines: Vec<String> = cairn_tests::committed_files(dir)
        .unwrap()
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect();
    lines.sort();
    lines
}

/// The `N records read` of a run's final line.
pub(crate) fn records_read(final_line: &str) -> usize {
    final_line
        .split_once(" records read")
        .and_then(|(before, _)| before.rsplit(['(', ' ']).next()?.parse().ok())
        .unwrap_or_else(|| panic!("no record count in {final_line:?}"))
}

#[test]
fn stop_with_drain_flushes_what_operators_hold_and_without_it_the_savepoint_keeps_it() {
    let session = Session::new("drain");
    let scratch = Scratch::new("drain");
    let text = std::fs::read_to_string(&corpus().path).unwrap();
    let all: Vec<&str> = text.lines().collect();
    let buffering = |id: &str, out: &Path, paced: bool, extra: &[&str]| {
        let mut args = os(&["run", path(&test_job("buffering")), "--job-id", id]);
        args.extend(os(extra));
        args.extend(job_args(out, paced));
        args
    };

    // --drain: the operator emits what it holds before the savepoint; the sink commits it.
    let drained = scratch.join("drained");
    let mut job = session.start(buffering(&"1".repeat(32), &drained, true, &[]));
    job.wait_for_progress(2_000);
    let stop = session.cli(os(&[
        "stop",
        "--drain",
        "-p",
        path(&scratch.join("sp")),
        &job.id,
    ]));
    assert!(stop.success(), "{stop:?}");
    assert_eq!(job.wait(), Some(0), "{}", job.stderr());
    let read = records_read(job.stdout().lines().last().unwrap());
    assert!(
        read >= 2_000 && read < all.len(),
        "stopped mid-stream: {read}"
    );
    let mut expected: Vec<String> = all[..read].iter().map(|l| l.to_string()).collect();
    expected.sort();
    assert_eq!(committed_lines(&drained), expected);

    // Without it the lines stay in the operator's state: nothing is committed, and the run
    // resumed from the savepoint emits every line exactly once.
    let kept = scratch.join("kept");
    let mut job = session.start(buffering(&"28".repeat(16), &kept, true, &[]));
    job.wait_for_progress(2_000);
    let stop = session.cli(os(&["stop", "-p", path(&scratch.join("sp")), &job.id]));
    assert!(stop.success(), "{stop:?}");
    assert_eq!(job.wait(), Some(0), "{}", job.stderr());
    assert_eq!(committed_lines(&kept), Vec::<String>::new());
    let savepoint = savepoint_path(&stop.stdout);
    let resumed = cairn(
        buffering(&"38".repeat(16), &kept, false, &["-s", path(&savepoint)]),
        None,
        None,
    );
    assert!(resumed.success(), "{resumed:?}");
    let mut expected: Vec<String> = all.iter().map(|l| l.to_string()).collect();
    expected.sort();
    assert_eq!(committed_lines(&kept), expected);
}

#[test]
fn failures_and_restarts_show_over_rest_and_requests_wait_for_a_running_job() {
    let session = Session::new("exceptions");
    let scratch = Scratch::new("exceptions");
    let id = "9d".repeat(16);
    let mut args = os(&["run", path(&job("flaky")), "--job-id", &id]);
    args.extend(os(&[
        "-D",
        "execution.checkpointing.interval=100 ms",
        "-D",
        &format!("execution.checkpointing.dir={}", path(&scratch.join("chk"))),
        "-D",
        "restart-strategy.type=fixed-delay",
        "-D",
        "restart-strategy.fixed-delay.attempts=1",
        "-D",
        "restart-strategy.fixed-delay.delay=2 s",
        "--",
        "--input",
        path(&corpus().path),
        "--output",
        path(&scratch.join("out")),
        "--rate",
        RATE,
        "--fail-mode",
        "trap",
        "--fail-at",
        "30000",
    ]));
    let mut running = session.start(args);

    // The first attempt traps; while the job waits to restart, requests are refused.
    let deadline = Instant::now() + Duration::from_secs(60);
    let exceptions = loop {
        let exceptions: JobExceptionsInfoWithHistory =
            running.get(&format!("/jobs/{id}/exceptions"));
        if !exceptions.exception_history.entries.is_empty() {
            break exceptions;
        }
        assert!(
            Instant::now() < deadline,
            "no failure reported: {}",
            running.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    let entry = &exceptions.exception_history.entries[0];
    assert_eq!(entry.task_name, "count (1/1)", "{exceptions:?}");
    assert!(
        entry
            .stack_trace
            .contains("flaky: injected trap at record 30000"),
        "{exceptions:?}"
    );
    assert!(
        exceptions
            .root_exception
            .as_deref()
            .unwrap()
            .starts_with("count (1/1) failed: "),
        "{exceptions:?}"
    );
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    assert_eq!(details.state, JobStatus::Restarting, "{details:?}");
    assert_eq!(details.vertices[0].tasks.created, 1, "{details:?}");
    // The failed attempt's checkpoints stay in the statistics.
    let checkpoints: CheckpointingStatistics = running.get(&format!("/jobs/{id}/checkpoints"));
    assert!(
        checkpoints.latest.completed.as_ref().map(|c| c.id) >= Some(1),
        "{checkpoints:?}"
    );
    let (status, refused) = running.http(
        "POST",
        &format!("/jobs/{id}/savepoints"),
        Some(&format!(
            r#"{{"target-directory": "{}"}}"#,
            scratch.join("sp").display()
        )),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(
        read::<ErrorBody>(&refused).errors[0],
        format!("job {id} is RESTARTING, not running")
    );

    // The second attempt runs; savepoints work again, and the job finishes.
    let deadline = Instant::now() + Duration::from_secs(60);
    while running.get::<JobDetailsInfo>(&format!("/jobs/{id}")).state != JobStatus::Running {
        assert!(
            Instant::now() < deadline,
            "no restart: {}",
            running.stderr()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let checkpoints: CheckpointingStatistics = running.get(&format!("/jobs/{id}/checkpoints"));
    assert_eq!(checkpoints.counts.restored, 1, "{checkpoints:?}");
    let restored = checkpoints.latest.restored.as_ref().unwrap();
    assert!(!restored.is_savepoint, "{checkpoints:?}");
    assert!(
        restored.external_path.contains(&format!("{id}/chk-")),
        "{checkpoints:?}"
    );
    let savepoint = session.cli(os(&["savepoint", &id, path(&scratch.join("sp"))]));
    assert!(savepoint.success(), "{savepoint:?}");
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    corpus().assert_exact(&scratch.join("out"));
}
