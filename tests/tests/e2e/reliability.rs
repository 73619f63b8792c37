//! What an adversarial sweep found (issue 12), end to end: crafted `_metadata` that tries
//! to reach outside its folders or panic the host, two runs writing the same files,
//! checkpoints piling up across restarts, absurd parallelism, restart loops, and the
//! README's Ctrl-C example.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use cairn_tests::kill_loop::wait_for_checkpoint;
use cairn_tests::{
    Corpus, Finished, Scratch, Session, cairn, check_word_count, job, job_id_for,
    latest_checkpoint, os, path_str, spawn_cairn,
};
use serde_json::Value;

/// `run word-count.wasm [extra] -- --input … --output …`, checkpointing into `chk` every
/// 50 ms and keeping checkpoints on cancel, with the input paced when `rate` is set.
fn word_count(
    corpus: &Corpus,
    scratch: &Scratch,
    job_id: &str,
    extra: &[&str],
    rate: Option<u64>,
) -> Vec<OsString> {
    let mut args = os(&["run"]);
    args.push(job("word-count").into());
    args.extend(os(&["--job-id", job_id]));
    for setting in [
        "execution.checkpointing.interval=50 ms",
        "execution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION",
        &format!(
            "execution.checkpointing.dir={}",
            path_str(&scratch.join("chk"))
        ),
    ] {
        args.extend(os(&["-D", setting]));
    }
    args.extend(extra.iter().map(OsString::from));
    args.extend(os(&["--", "--input", path_str(&corpus.path)]));
    args.extend(os(&["--output", path_str(&scratch.join("out"))]));
    if let Some(rate) = rate {
        args.extend(os(&["--rate", &rate.to_string()]));
    }
    args
}

/// Runs word-count paced until it has completed a checkpoint, then kills it with SIGKILL;
/// returns the latest checkpoint's folder.
fn checkpoint_of_killed_run(corpus: &Corpus, scratch: &Scratch, job_id: &str) -> PathBuf {
    let mut child = spawn_cairn(word_count(
        corpus,
        scratch,
        job_id,
        &["-p", "2"],
        Some(20_000),
    ));
    let folder = scratch.join("chk").join(job_id);
    wait_for_checkpoint(path_str(&folder));
    child.kill().unwrap();
    child.wait().unwrap();
    latest_checkpoint(&folder)
}

/// `_metadata`'s JSON (without its checksum line).
fn read_metadata(checkpoint: &Path) -> Value {
    let text = std::fs::read_to_string(checkpoint.join("_metadata")).unwrap();
    let body = text.trim_end().rsplit_once('\n').unwrap().0;
    serde_json::from_str(body).unwrap()
}

/// Writes `_metadata` with a valid checksum, as someone crafting a savepoint would.
fn write_metadata(checkpoint: &Path, metadata: &Value) {
    let mut bytes = serde_json::to_vec_pretty(metadata).unwrap();
    bytes.push(b'\n');
    let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
    bytes.extend_from_slice(format!("xxh3-64 {checksum:016x}\n").as_bytes());
    std::fs::write(checkpoint.join("_metadata"), bytes).unwrap();
}

/// The node `uid` of metadata.
fn node<'a>(metadata: &'a mut Value, uid: &str) -> &'a mut Value {
    metadata["nodes"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|n| n["uid"] == uid)
        .unwrap()
}

/// Resumes word-count from `from`, as a job of its own.
fn resume(corpus: &Corpus, scratch: &Scratch, from: &Path) -> Finished {
    let id = job_id_for(scratch.path());
    let mut args = word_count(corpus, scratch, &id, &["-p", "2"], None);
    args.splice(2..2, [OsString::from("-s"), from.into()]);
    cairn(args, None, None)
}

#[test]
fn crafted_metadata_cannot_reach_outside_the_output_folder() {
    let corpus = Corpus::new("crafted-corpus", 4 << 20, 5_000, 12);
    let scratch = Scratch::new("crafted");
    let checkpoint = checkpoint_of_killed_run(&corpus, &scratch, &"a1".repeat(16));
    let original = read_metadata(&checkpoint);
    let id = original["checkpoint_id"].clone();
    let (secret, precious) = (scratch.join("secret.txt"), scratch.join("precious.txt"));
    let out = scratch.join("out");
    let (hidden, visible) = (out.join(".secret"), out.join("precious.txt"));
    for file in [&secret, &precious, &hidden, &visible] {
        std::fs::write(file, format!("{} stays", file.display())).unwrap();
    }
    let untouched = || {
        for file in [&secret, &precious, &hidden, &visible] {
            assert_eq!(
                std::fs::read_to_string(file).unwrap(),
                format!("{} stays", file.display())
            );
        }
    };
    let pending = |from: &str, to: &str| {
        let mut metadata = original.clone();
        // The file sink's state is its connector's bytes: base64 of JSON.
        let data = &mut node(&mut metadata, "out")["subtasks"][0]["state"]["state"]["data"];
        let mut state: Value =
            serde_json::from_slice(&STANDARD.decode(data.as_str().unwrap()).unwrap()).unwrap();
        state["pending"] =
            serde_json::json!([{ "checkpoint": id, "in_progress": from, "committed": to }]);
        *data = STANDARD.encode(serde_json::to_vec(&state).unwrap()).into();
        metadata
    };

    // Paths that leave the folder are refused before anything starts.
    let escapes = [
        pending(path_str(&secret), path_str(&precious)),
        pending("../secret.txt", "../precious.txt"),
    ];
    for metadata in escapes {
        write_metadata(&checkpoint, &metadata);
        let run = resume(&corpus, &scratch, &checkpoint);
        assert_eq!(run.code, Some(1), "{run:?}");
        assert_eq!(run.stdout, "", "nothing is submitted: {run:?}");
        assert!(run.stderr.contains("is not a plain file name"), "{run:?}");
        untouched();
    }
    let mut metadata = original.clone();
    node(&mut metadata, "count")["subtasks"][0]["state"]["state"]["path"] =
        "../../../precious.txt".into();
    write_metadata(&checkpoint, &metadata);
    let run = resume(&corpus, &scratch, &checkpoint);
    assert!(
        run.stderr.contains("state path '../../../precious.txt'"),
        "{run:?}"
    );
    assert_eq!(run.stdout, "", "{run:?}");

    // Plain names in the output folder that are not this sink's parts: the sink refuses
    // them and renames nothing, and the job fails at once, though its (default) restart
    // strategy restarts without end: a restart would restore the same checkpoint.
    write_metadata(&checkpoint, &pending(".secret", "precious.txt"));
    let run = resume(&corpus, &scratch, &checkpoint);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.last_line()
            .contains("is not a part file of this sink subtask")
            && run
                .last_line()
                .contains("not restarted: the checkpoint cannot be restored"),
        "{run:?}"
    );
    untouched();

    // The untampered checkpoint still restores, to the exact output (without the planted
    // file, which a reader of the folder would take for output).
    std::fs::remove_file(&visible).unwrap();
    write_metadata(&checkpoint, &original);
    let run = resume(&corpus, &scratch, &checkpoint);
    assert!(run.success(), "{run:?}");
    let report = check_word_count(&corpus.counts, &out).unwrap();
    assert!(report.is_exact(), "{report:?}");
}

/// A change to metadata that a test makes.
type Craft = Box<dyn Fn(&mut Value)>;

#[test]
fn metadata_that_used_to_panic_the_host_is_refused_by_name() {
    let corpus = Corpus::new("panic-corpus", 4 << 20, 5_000, 13);
    let scratch = Scratch::new("shape");
    let checkpoint = checkpoint_of_killed_run(&corpus, &scratch, &"a2".repeat(16));
    let original = read_metadata(&checkpoint);
    let cases: [(&str, Craft); 3] = [
        (
            "'out' has 1 subtask entries for parallelism 2",
            Box::new(|m| {
                node(m, "out")["subtasks"].as_array_mut().unwrap().pop();
            }),
        ),
        (
            "checkpoint id 18446744073709551615 is out of range",
            Box::new(|m| m["checkpoint_id"] = u64::MAX.into()),
        ),
        (
            "'count' has parallelism 0",
            Box::new(|m| {
                node(m, "count")["parallelism"] = 0.into();
                node(m, "count")["subtasks"] = serde_json::json!([]);
            }),
        ),
    ];
    for (message, craft) in cases {
        let mut metadata = original.clone();
        craft(&mut metadata);
        write_metadata(&checkpoint, &metadata);
        let run = resume(&corpus, &scratch, &checkpoint);
        assert_eq!(run.code, Some(1), "a refusal, not a panic (101): {run:?}");
        assert_eq!(run.stderr.lines().count(), 1, "{run:?}");
        assert!(run.stderr.contains(message), "{message}: {run:?}");
    }
}

#[test]
fn a_second_writer_of_a_running_jobs_files_is_refused_naming_it() {
    let corpus = Corpus::new("twice-corpus", 4 << 20, 5_000, 14);
    let scratch = Scratch::new("twice");
    let session = Session::new("twice");
    let id = "a3".repeat(16);
    let mut first = session.start(word_count(&corpus, &scratch, &id, &[], Some(5_000)));
    let pid = first.child.id();
    let refused = |run: Finished, what: &str| {
        assert_eq!(run.code, Some(1), "{run:?}");
        assert_eq!(run.stdout, "", "nothing is submitted: {run:?}");
        assert!(run.stderr.contains(what), "{what}: {run:?}");
        assert!(
            run.stderr
                .contains(&format!("another cairn process (pid {pid}, job {id})")),
            "names the other process: {run:?}"
        );
    };
    // The same run again: same job id, same folders.
    refused(
        finish(session.command(word_count(&corpus, &scratch, &id, &[], None))),
        &format!("job {id} is already running on this machine"),
    );
    // Another job id writing the same output folder.
    refused(
        finish(session.command(word_count(&corpus, &scratch, &"b3".repeat(16), &[], None))),
        "output folder",
    );
    // The same job id from another registry (another user's runtime folder) still meets the
    // checkpoint folder's lock.
    let elsewhere = Session::new("twice-elsewhere");
    refused(
        finish(elsewhere.command(word_count(&corpus, &scratch, &id, &[], None))),
        "checkpoint folder",
    );

    // A killed process leaves no lock behind: the job resumes at once.
    let folder = scratch.join("chk").join(&id);
    wait_for_checkpoint(path_str(&folder));
    first.kill();
    let mut args = word_count(&corpus, &scratch, &id, &[], None);
    args.splice(2..2, [OsString::from("-s"), folder.into()]);
    let resumed = finish(session.command(args));
    assert!(resumed.success(), "{resumed:?}");
    let report = check_word_count(&corpus.counts, &scratch.join("out")).unwrap();
    assert!(report.is_exact(), "{report:?}");
}

fn finish(command: std::process::Command) -> Finished {
    cairn_tests::finish(command, None)
}

/// Completed checkpoints (`chk-N` with `_metadata`) in a job's checkpoint folder.
fn completed_checkpoints(job_folder: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(job_folder)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.join("_metadata").exists())
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn num_retained_holds_across_restarts() {
    let corpus = Corpus::new("retained-corpus", 4 << 20, 5_000, 15);
    let scratch = Scratch::new("retained");
    let id = "a4".repeat(16);
    let mut args = os(&["run"]);
    args.push(job("flaky").into());
    args.extend(os(&["--job-id", &id]));
    for setting in [
        "execution.checkpointing.interval=20 ms",
        "execution.checkpointing.num-retained=1",
        &format!(
            "execution.checkpointing.dir={}",
            path_str(&scratch.join("chk"))
        ),
        "restart-strategy=fixed-delay",
        "restart-strategy.fixed-delay.attempts=5",
        "restart-strategy.fixed-delay.delay=0 ms",
    ] {
        args.extend(os(&["-D", setting]));
    }
    args.extend(os(&["--", "--input", path_str(&corpus.path)]));
    args.extend(os(&[
        "--output",
        path_str(&scratch.join("out")),
        "--rate",
        "20000",
    ]));
    // Every attempt fails 40,000 words in (about a third of a second), after checkpoints.
    args.extend(os(&[
        "--fail-mode=error",
        "--fail-at=40000",
        "--fail-attempts=100",
    ]));
    let run = cairn(args, None, None);
    assert!(run.last_line().contains("FAILED"), "{run:?}");
    let restored = run
        .stderr
        .lines()
        .filter(|l| l.contains("restarting the job") && l.contains("from checkpoint"))
        .count();
    assert_eq!(restored, 5, "every restart resumed a checkpoint: {run:?}");
    let kept = completed_checkpoints(&scratch.join("chk").join(&id));
    assert_eq!(kept.len(), 1, "num-retained 1 across 6 attempts: {kept:?}");
}

#[test]
fn absurd_parallelism_is_refused_before_anything_starts() {
    let scratch = Scratch::new("absurd");
    let input = scratch.join("input.txt");
    std::fs::write(&input, "a b c\n").unwrap();
    let run = |p: &str, max: &str| {
        let mut args = os(&["run"]);
        args.push(job("word-count").into());
        args.extend(os(&[
            "-p",
            p,
            "-D",
            &format!("pipeline.max-parallelism={max}"),
        ]));
        args.extend(os(&["--", "--input", path_str(&input)]));
        args.extend(os(&["--output", path_str(&scratch.join("out"))]));
        cairn(args, None, None)
    };
    let too_many_key_groups = run("100000", "100000");
    assert_eq!(too_many_key_groups.code, Some(1), "{too_many_key_groups:?}");
    assert!(
        too_many_key_groups
            .stderr
            .contains("invalid value '100000' for pipeline.max-parallelism (from -D): expected an integer from 1 to 32768"),
        "{too_many_key_groups:?}"
    );
    let too_many_threads = run("20000", "32768");
    assert_eq!(too_many_threads.code, Some(1), "{too_many_threads:?}");
    assert_eq!(too_many_threads.stdout, "", "{too_many_threads:?}");
    assert!(
        too_many_threads
            .stderr
            .contains("the job is too large for this machine")
            && too_many_threads.stderr.contains("60001 subtasks"),
        "{too_many_threads:?}"
    );
    assert!(!scratch.join("out").exists(), "nothing was started");
}

/// `VmRSS` of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn a_restart_loop_stays_bounded_and_sigterm_cancels_it() {
    let scratch = Scratch::new("restart-loop");
    let session = Session::new("restart-loop");
    let input = scratch.join("input.txt");
    std::fs::write(&input, "a b c\n".repeat(100)).unwrap();
    let id = "a5".repeat(16);
    let mut args = os(&["run"]);
    args.push(job("flaky").into());
    args.extend(os(&["--job-id", &id]));
    for setting in [
        "restart-strategy=fixed-delay",
        "restart-strategy.fixed-delay.attempts=2000000000",
        "restart-strategy.fixed-delay.delay=0 ms",
    ] {
        args.extend(os(&["-D", setting]));
    }
    args.extend(os(&["--", "--input", path_str(&input)]));
    args.extend(os(&["--output", path_str(&scratch.join("out"))]));
    args.extend(os(&[
        "--fail-mode=error",
        "--fail-at=1",
        "--fail-attempts=4000000000",
    ]));
    let mut job = session.start(args);
    let restarts = |job: &cairn_tests::RunningJob| {
        let (_, text) = cairn_tests::http_text(&job.address, "GET", "/metrics", None, None);
        text.lines()
            .find(|l| l.starts_with("cairn_job_numRestarts"))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|n| n.parse::<f64>().ok())
            .unwrap_or(0.0) as u64
    };
    let wait_for = |job: &cairn_tests::RunningJob, n: u64| {
        let deadline = Instant::now() + Duration::from_secs(120);
        while restarts(job) < n {
            assert!(
                Instant::now() < deadline,
                "fewer than {n} restarts: {}",
                job.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    wait_for(&job, 200);
    let early = resident_kib(job.child.id());
    wait_for(&job, 2000);
    let late = resident_kib(job.child.id());
    assert!(
        late < early + 8 * 1024,
        "resident memory grew from {early} KiB to {late} KiB over 1800 restarts"
    );
    std::process::Command::new("kill")
        .args(["-TERM", &job.child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(job.wait(), Some(1));
    assert!(
        job.stdout()
            .trim_end()
            .lines()
            .last()
            .unwrap()
            .contains(" CANCELED "),
        "{}",
        job.stdout()
    );
    let log = job.stderr();
    let told_in_full = log
        .lines()
        .filter(|l| l.contains("injected error at record 1"))
        .count();
    assert_eq!(told_in_full, 1, "a repeated failure is told in full once");
    assert!(log.contains("the same failure as attempt 1"), "{log}");
}

#[test]
fn the_readme_ctrl_c_example_is_true() {
    let corpus = Corpus::new("ctrl-c-corpus", 8 << 20, 20_000, 16);
    let scratch = Scratch::new("ctrl-c");
    let id = "a6".repeat(16);
    let mut child = spawn_cairn(word_count(&corpus, &scratch, &id, &[], Some(50_000)));
    let folder = scratch.join("chk").join(&id);
    wait_for_checkpoint(path_str(&folder));
    // Ctrl-C.
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(1), "CANCELED");
    let inspect = cairn(os(&["inspect", path_str(&folder)]), None, None);
    assert!(inspect.success(), "{inspect:?}");
    let mut args = word_count(&corpus, &scratch, &"b6".repeat(16), &[], None);
    args.splice(2..2, [OsString::from("-s"), folder.clone().into()]);
    let resumed = cairn(args, None, None);
    assert!(resumed.success(), "{resumed:?}");
    let report = check_word_count(&corpus.counts, &scratch.join("out")).unwrap();
    assert!(report.is_exact(), "{report:?}");
}

#[test]
fn state_the_code_refuses_fails_the_job_at_once_instead_of_restarting_forever() {
    let corpus = Corpus::new("refused-corpus", 4 << 20, 5_000, 17);
    let scratch = Scratch::new("refused-state");
    let checkpoint = checkpoint_of_killed_run(&corpus, &scratch, &"a7".repeat(16));
    // Checkpointing is on, so the default strategy would restart without end.
    let mut args = word_count(&corpus, &scratch, &"b7".repeat(16), &["-p", "2"], None);
    args[1] = cairn_tests::test_job("refuses-state").into();
    args.splice(2..2, [OsString::from("-s"), checkpoint.into()]);
    let run = cairn(args, None, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    let last = run.last_line();
    assert!(
        last.contains("FAILED")
            && last.contains("cannot restore the checkpoint")
            && last.contains("not restarted"),
        "{run:?}"
    );
    assert!(!run.stderr.contains("restarting in"), "no restart: {run:?}");
}
