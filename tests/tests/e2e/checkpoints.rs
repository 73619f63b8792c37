//! Checkpoints end to end: `kill -9` at random moments and resume from the latest
//! checkpoint, on local disk and on a real S3-compatible server; the committed output must
//! equal the word-count oracle (exactly-once) or miss nothing (at-least-once). Also damaged
//! checkpoints, retention, store failures, and `cairn inspect` (timeouts: the in-process
//! coordinator tests, where a checkpoint cannot beat its timeout by luck).

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;
use std::time::Duration;

use cairn_tests::kill_loop::{KillLoop, has_checkpoint, wait_for_checkpoint};
use cairn_tests::{
    Corpus, S3Server, Scratch, cairn, job, latest_checkpoint, os, path_str, spawn_cairn,
};

/// Lines per second the killed attempts read at: ten attempts of at most half a second read
/// under a third of the corpus.
const KILLED_RATE: u64 = 50_000;

/// A 48 MB text (about 900k lines) shared by the kill loops.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("checkpoint-corpus", 48 << 20, 100_000, 99))
}

#[test]
fn kill_loop_exactly_once() {
    let scratch = Scratch::new("kill-eo-chk");
    let dir = scratch.path().to_str().unwrap().to_owned();
    let word_count = job("word-count");
    let report = KillLoop {
        job: &word_count,
        job_args: &[],
        killed_rate: KILLED_RATE,
        name: "kill-eo",
        parallelism: 1,
        mode: "EXACTLY_ONCE",
        dir: &dir,
        store: &[],
        seed: 1,
        kill_after: 120..320,
    }
    .run_word_count(corpus());
    assert_eq!(report.lines, corpus().words(), "{report:?}");
    assert!(report.is_exact(), "{report:?}");
}

#[test]
fn kill_loop_at_least_once_loses_nothing() {
    let scratch = Scratch::new("kill-alo-chk");
    let dir = scratch.path().to_str().unwrap().to_owned();
    let word_count = job("word-count");
    let report = KillLoop {
        job: &word_count,
        job_args: &[],
        killed_rate: KILLED_RATE,
        name: "kill-alo",
        parallelism: 1,
        mode: "AT_LEAST_ONCE",
        dir: &dir,
        store: &[],
        seed: 2,
        kill_after: 120..320,
    }
    .run_word_count(corpus());
    assert_eq!(report.missing, 0, "{report:?}");
    assert_eq!(report.unexpected, 0, "{report:?}");
}

#[test]
fn kill_loop_exactly_once_at_parallelism_4() {
    let scratch = Scratch::new("kill-p4-chk");
    let dir = format!("file://{}", scratch.path().display());
    let word_count = job("word-count");
    let report = KillLoop {
        job: &word_count,
        job_args: &[],
        killed_rate: KILLED_RATE,
        name: "kill-p4",
        parallelism: 4,
        mode: "EXACTLY_ONCE",
        dir: &dir,
        store: &[],
        seed: 3,
        kill_after: 120..320,
    }
    .run_word_count(corpus());
    assert!(report.is_exact(), "{report:?}");
}

#[test]
fn kill_loop_exactly_once_on_s3() {
    let server = S3Server::start("checkpoints");
    let word_count = job("word-count");
    let report = KillLoop {
        job: &word_count,
        job_args: &[],
        killed_rate: KILLED_RATE,
        name: "kill-s3",
        parallelism: 1,
        mode: "EXACTLY_ONCE",
        dir: "s3://checkpoints/jobs",
        store: &server.config(),
        seed: 4,
        kill_after: 200..450,
    }
    .run_word_count(corpus());
    assert!(report.is_exact(), "{report:?}");
}

/// Runs keyed-sum unbounded and paced, so it checkpoints until stopped.
fn keyed_sum(dir: &Path, job_id: &str, config: &[&str]) -> Vec<OsString> {
    keyed_sum_to(&dir.display().to_string(), job_id, config)
}

/// [`keyed_sum`] with checkpoints to any location.
fn keyed_sum_to(dir: &str, job_id: &str, config: &[&str]) -> Vec<OsString> {
    let mut args = os(&["run"]);
    args.push(job("keyed-sum").into());
    args.extend(os(&["--job-id", job_id, "-D"]));
    args.push(format!("execution.checkpointing.dir={dir}").into());
    for setting in config {
        args.extend(os(&["-D", setting]));
    }
    args.extend(os(&["--", "--records=0", "--keys=5000", "--rate=100000"]));
    args
}

/// A job checkpointed into `dir` and killed once it has completed a checkpoint, leaving its
/// checkpoints behind.
fn killed_job(dir: &Path, job_id: &str) {
    let mut child = spawn_cairn(keyed_sum(
        dir,
        job_id,
        &["execution.checkpointing.interval=50 ms"],
    ));
    let folder = format!("{}/{job_id}", dir.display());
    wait_for_checkpoint(&folder);
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Resumes keyed-sum from `from` (it is expected to refuse).
fn resume(dir: &Path, from: &Path) -> cairn_tests::Finished {
    let mut args = keyed_sum(dir, &cairn_tests::job_id_for(dir), &[]);
    args.insert(2, "-s".into());
    args.insert(3, from.into());
    cairn(args, None, None)
}

#[test]
fn damaged_state_file_is_refused_naming_it() {
    let scratch = Scratch::new("damaged-state");
    let job_id = "a".repeat(32);
    killed_job(scratch.path(), &job_id);
    let checkpoint = latest_checkpoint(&scratch.join(&job_id));
    let file = checkpoint.join("sum").join("0.state");
    let mut bytes = std::fs::read(&file).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&file, bytes).unwrap();

    // Segments are verified as they are read (a restore reads only the key groups it
    // needs): the job fails at once, not restarted, naming the file and the damaged range.
    let run = resume(scratch.path(), &checkpoint);
    assert_eq!(run.code, Some(1), "{run:?}");
    let failed = run.last_line();
    assert!(
        failed.contains("FAILED")
            && failed.contains("not restarted: the checkpoint cannot be restored")
            && failed.contains(&format!("file://{} (bytes ", file.display()))
            && failed.ends_with("checksum mismatch, the file is corrupt"),
        "{run:?}"
    );
}

#[test]
fn damaged_or_truncated_metadata_is_refused_naming_it() {
    let scratch = Scratch::new("damaged-metadata");
    let job_id = "b".repeat(32);
    killed_job(scratch.path(), &job_id);
    let checkpoint = latest_checkpoint(&scratch.join(&job_id));
    let metadata = checkpoint.join("_metadata");
    let original = std::fs::read(&metadata).unwrap();

    let mut flipped = original.clone();
    let at = flipped.iter().position(|&b| b == b'1').unwrap();
    flipped[at] = b'2';
    std::fs::write(&metadata, &flipped).unwrap();
    let run = resume(scratch.path(), &checkpoint);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!(
            "cairn: file://{}: checksum mismatch, the file is corrupt",
            metadata.display()
        )
    );

    std::fs::write(&metadata, &original[..original.len() / 2]).unwrap();
    let run = resume(scratch.path(), &metadata);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stderr
            .trim()
            .starts_with(&format!("cairn: file://{}: truncated", metadata.display())),
        "{run:?}"
    );
}

/// Files under `dir`, relative to it.
fn files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

#[test]
fn retention_keeps_exactly_the_newest_and_nothing_else() {
    let scratch = Scratch::new("retention");
    let job_id = "c".repeat(32);
    let mut child = spawn_cairn(keyed_sum(
        scratch.path(),
        &job_id,
        &[
            "execution.checkpointing.interval=20 ms",
            "execution.checkpointing.num-retained=3",
            "execution.checkpointing.externalized-checkpoint-retention=RETAIN_ON_CANCELLATION",
        ],
    ));
    let folder = scratch.join(&job_id);
    // Wait for checkpoint 20, then cancel with SIGTERM.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !folder.join("chk-21").exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "20 checkpoints did not complete"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1), "CANCELED is not success");

    let all = files(&folder);
    let checkpoints: std::collections::BTreeSet<&str> =
        all.iter().map(|f| f.split('/').next().unwrap()).collect();
    assert_eq!(checkpoints.len(), 3, "{all:?}");
    // Each retained checkpoint holds its _metadata and the state files it names, only.
    for name in &checkpoints {
        assert!(name.starts_with("chk-"), "{all:?}");
        let mut expected = [format!("{name}/_metadata"), format!("{name}/sum/0.state")];
        expected.sort();
        let present: Vec<&String> = all
            .iter()
            .filter(|f| f.starts_with(&format!("{name}/")))
            .collect();
        assert_eq!(present, expected.iter().collect::<Vec<_>>(), "{all:?}");
    }
    let ids: Vec<u64> = checkpoints
        .iter()
        .map(|c| c[4..].parse().unwrap())
        .collect();
    assert!(ids[0] >= 18, "the newest three of at least 20: {ids:?}");
}

#[test]
fn cancel_without_retention_deletes_the_checkpoints() {
    let scratch = Scratch::new("cancel-deletes");
    let job_id = "d".repeat(32);
    let mut child = spawn_cairn(keyed_sum(
        scratch.path(),
        &job_id,
        &["execution.checkpointing.interval=50 ms"],
    ));
    let folder = scratch.join(&job_id);
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !folder.join("chk-3").exists() {
        assert!(std::time::Instant::now() < deadline, "no checkpoints");
        std::thread::sleep(Duration::from_millis(20));
    }
    std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    child.wait().unwrap();
    assert!(
        !folder.exists() || files(&folder).is_empty(),
        "{:?}",
        files(&folder)
    );
}

#[test]
fn unreachable_store_fails_the_job_after_retries() {
    // Port 9 (discard) on loopback: nothing listens, every request is refused.
    let args = keyed_sum_to(
        "s3://nowhere/chk",
        &"2".repeat(32),
        &[
            "execution.checkpointing.interval=50 ms",
            "restart-strategy.type=none",
            "s3.endpoint=http://127.0.0.1:9",
            "s3.access-key=x",
            "s3.secret-key=y",
            "s3.region=us-east-1",
        ],
    );
    let run = cairn(args, None, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.last_line().contains(
            "1 consecutive checkpoints failed, more than \
             execution.checkpointing.tolerable-failed-checkpoints (0); last: sum (1/1) could not \
             store its state: cannot write s3://nowhere/chk/"
        ),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("attempt 1 of 4, retrying"),
        "transient errors are retried first: {run:?}"
    );
}

#[test]
fn inspect_shows_a_table_and_json() {
    let scratch = Scratch::new("inspect");
    let job_id = "3".repeat(32);
    killed_job(scratch.path(), &job_id);
    let folder = scratch.join(&job_id);
    let run = cairn(["inspect".as_ref(), folder.as_os_str()], None, None);
    assert!(run.success(), "{run:?}");
    assert!(run.stdout.starts_with("Checkpoint "), "{run:?}");
    assert!(
        run.stdout.contains(&format!("of job {job_id} (keyed-sum)")),
        "{run:?}"
    );
    assert!(run.stdout.contains("mode:     EXACTLY_ONCE"), "{run:?}");
    assert!(run.stdout.contains("numbers  1/1      source"), "{run:?}");
    assert!(
        run.stdout.contains("generator 128 split(s), next "),
        "{run:?}"
    );
    assert!(run.stdout.contains("sum      1/1      operator"), "{run:?}");
    assert!(
        run.stdout.contains("key groups 0..=127: 128 with state"),
        "{run:?}"
    );
    let json = cairn(
        ["inspect".as_ref(), folder.as_os_str(), "--json".as_ref()],
        None,
        None,
    );
    assert!(
        json.success() && json.stdout.contains("\"job_id\": \"3333"),
        "{json:?}"
    );
    let missing = cairn(["inspect", "/no/such/checkpoint"], None, None);
    assert_eq!(missing.code, Some(1));
    assert!(
        missing
            .stderr
            .contains("/no/such/checkpoint (no such folder)"),
        "{missing:?}"
    );
}

/// A state beyond what wasmtime lets one call copy out of a guest by default (128 MiB) is
/// checkpointed, restored, and checkpointed again. (The fixture holds the state twice while
/// restoring it, hence the larger memory limit.)
#[test]
fn a_state_of_200_mb_checkpoints_and_restores() {
    let scratch = Scratch::new("big-state");
    let bytes = 200_000_000u64;
    let checkpointed_job = |job_id: &str, resume: Option<&Path>| {
        let mut args = os(&["run"]);
        args.push(cairn_tests::test_job("big-state").into());
        args.extend(os(&[
            "--job-id",
            job_id,
            "-D",
            "execution.checkpointing.interval=100 ms",
            "-D",
            "wasm.memory-limit=1 gb",
        ]));
        args.extend(os(&["-D"]));
        args.push(format!("execution.checkpointing.dir={}", scratch.path().display()).into());
        if let Some(from) = resume {
            args.extend(os(&["-s"]));
            args.push(from.into());
        }
        args.extend(os(&["--", "--bytes", &bytes.to_string()]));
        let mut child = spawn_cairn(args);
        let folder = scratch.join(job_id);
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !has_checkpoint(folder.to_str().unwrap(), &[]) {
            assert!(
                std::time::Instant::now() < deadline,
                "no checkpoint in 60 s"
            );
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the job ended ({status}) before a checkpoint");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        child.kill().unwrap();
        child.wait().unwrap();
        let inspect = cairn(
            os(&["inspect", "--json", folder.to_str().unwrap()]),
            None,
            None,
        );
        // The blob is the operator's one item: its bytes and the item's framing.
        let metadata: serde_json::Value = serde_json::from_str(&inspect.stdout).unwrap();
        let items = &metadata["nodes"][1]["subtasks"][0]["state"]["state"]["operator_state"];
        let raw = items["raw_size"].as_u64().unwrap();
        assert!((bytes..bytes + 16).contains(&raw), "{inspect:?}");
        folder
    };
    let first = checkpointed_job(&"b1".repeat(16), None);
    checkpointed_job(&"b2".repeat(16), Some(&first));
}

/// Copies folder `from` into `to`, hidden files included.
fn copy_folder(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_folder(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// A checkpoint in `_metadata` format 1 (before the connector API), taken by an older cairn
/// from word-count killed mid-stream, still restores: the file source resumes at its
/// offset, the file sink commits the part that checkpoint left pending (the process died
/// before renaming it) and drops the later in-progress one, and the output is exact.
#[test]
fn a_format_1_checkpoint_still_restores_exactly() {
    let fixture = cairn_tests::workspace_root().join("tests/fixtures/format-1");
    let scratch = Scratch::new("format-1");
    copy_folder(&fixture, scratch.path());
    let (checkpoint, out) = (scratch.join("checkpoint"), scratch.join("out"));
    let input = scratch.join("input.txt");

    let inspect = cairn(os(&["inspect", path_str(&checkpoint)]), None, None);
    assert!(inspect.success(), "{inspect:?}");
    assert!(inspect.stdout.contains("file offset 36459"), "{inspect:?}");
    assert!(
        inspect.stdout.contains("1 pending part(s), next part 15"),
        "{inspect:?}"
    );

    let run = cairn(
        os(&[
            "run",
            path_str(&job("word-count")),
            "-s",
            path_str(&checkpoint),
            "--",
            "--input",
            path_str(&input),
            "--output",
            path_str(&out),
        ]),
        None,
        None,
    );
    assert!(
        run.success() && run.last_line().contains("FINISHED"),
        "{run:?}"
    );
    assert!(
        run.stderr.contains("Restoring from checkpoint 15"),
        "{run:?}"
    );
    let counts = cairn_tests::word_counts(&input).unwrap();
    let report = cairn_tests::check_word_count(&counts, &out).unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert!(
        out.join("part-out-0-14").exists(),
        "the pending part is committed"
    );
}
