//! Where state and compiled code are kept, end to end: `memory://` checkpoints across a
//! restart (and savepoints refused there), S3 without credentials (no request to the instance
//! metadata service unless asked), the compilation cache's checksum, `/` as a path, and what a
//! restore says about a file or a missing state file.

use std::ffi::OsString;
use std::io::Read;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use cairn_api::ErrorBody;
use cairn_tests::kill_loop::wait_for_checkpoint;
use cairn_tests::path_str as path;
use cairn_tests::{
    Corpus, Finished, Scratch, Session, cairn, cairn_bin, finish, job, os, read, savepoint_path,
    spawn_cairn,
};

/// About 300k words: a few seconds at the paced rates below.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("stores-corpus", 2 << 20, 5_000, 12))
}

/// `-- --input <corpus> --output <out>`, paced at `rate` lines per second if given.
fn job_args(out: &Path, rate: Option<&str>) -> Vec<OsString> {
    let mut args = os(&["--", "--input", path(&corpus().path), "--output", path(out)]);
    if let Some(rate) = rate {
        args.extend(os(&["--rate", rate]));
    }
    args
}

#[test]
fn memory_checkpoints_survive_a_restart_exactly() {
    let scratch = Scratch::new("memory-restart");
    let out = scratch.join("out");
    // Paced so that checkpoints complete (and commit output) before the failure.
    let mut args = os(&["run", path(&job("flaky"))]);
    for setting in [
        "execution.checkpointing.dir=memory://chk",
        "execution.checkpointing.interval=100 ms",
        "restart-strategy.type=fixed-delay",
        "restart-strategy.fixed-delay.delay=100 ms",
    ] {
        args.extend(os(&["-D", setting]));
    }
    args.extend(job_args(&out, Some("40000")));
    args.extend(os(&[
        "--fail-mode=error",
        "--fail-at=100000",
        "--fail-attempts=1",
    ]));
    let run = cairn(args, None, None);
    assert!(run.success(), "{run:?}");
    assert!(
        run.last_line().contains(" FINISHED ") && run.last_line().contains("1 restart"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("restarting the job (attempt 2) from checkpoint "),
        "the restart finds the first attempt's checkpoints: {run:?}"
    );
    corpus().assert_exact(&out);
}

#[test]
fn savepoints_to_memory_and_restores_from_it_are_refused_by_name() {
    let (session, scratch) = (Session::new("memory-sp"), Scratch::new("memory-sp"));
    let id = "3d".repeat(16);
    let mut args = os(&["run", path(&job("word-count")), "--job-id", &id]);
    args.extend(job_args(&scratch.join("out"), Some("2000")));
    let running = session.start(args);

    let refused = session.cli(os(&["savepoint", &id, "memory://sp"]));
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert!(
        refused.stderr.contains(
            "memory://sp: a savepoint must outlive this process, and a memory:// store does not"
        ),
        "{refused:?}"
    );
    let (status, body) = running.http(
        "POST",
        &format!("/jobs/{id}/savepoints"),
        Some(r#"{"target-directory": "memory://sp", "cancel-job": false}"#),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        read::<ErrorBody>(&body)
            .message()
            .contains("a memory:// store does not"),
        "{body}"
    );

    let mut args = os(&["run", path(&job("word-count")), "-s", "memory://sp/x"]);
    args.extend(job_args(&scratch.join("out-2"), None));
    let run = cairn(args, None, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        "cairn: memory://sp/x: nothing can be there: a memory:// store lives only inside the \
         cairn process that writes it; restore from a folder, file://, s3://, gs:// or az://"
    );
}

/// The compilation cache entries under `cache` (an `XDG_CACHE_HOME`).
fn cache_entries(cache: &Path) -> Vec<PathBuf> {
    let dir = cache.join("cairn").join("components");
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|listing| listing.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    entries.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    entries
}

#[test]
fn a_damaged_compilation_cache_entry_is_recompiled_and_rewritten() {
    let scratch = Scratch::new("cache-damaged");
    let cache = scratch.join("cache");
    let run = |n: usize| {
        let out = scratch.join(&format!("out-{n}"));
        let mut args = os(&["run", path(&job("word-count"))]);
        args.extend(job_args(&out, None));
        let mut command = Command::new(cairn_bin());
        command
            .args(args)
            .env("XDG_CACHE_HOME", &cache)
            .env("CAIRN_LOG", "warn,cairn_wasm::component=debug");
        let run = finish(command, None);
        assert!(run.success(), "run {n}: {run:?}");
        corpus().assert_exact(&out);
        run
    };
    let first = run(1);
    assert!(!first.stderr.contains("cache entry"), "{first:?}");
    let entries = cache_entries(&cache);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let entry = &entries[0];
    let written = std::fs::read(entry).unwrap();

    let mut damaged = written.clone();
    let middle = damaged.len() / 2;
    for byte in &mut damaged[middle..middle + 64] {
        *byte ^= 0x5a;
    }
    std::fs::write(entry, &damaged).unwrap();
    let second = run(2);
    assert!(
        second
            .stderr
            .contains("ignoring unusable compilation cache entry, recompiling: checksum mismatch"),
        "{second:?}"
    );
    let rewritten = std::fs::read(entry).unwrap();
    assert_ne!(rewritten, damaged, "the entry was rewritten");

    let third = run(3);
    assert!(!third.stderr.contains("unusable"), "{third:?}");
    assert!(
        third
            .stderr
            .contains("loaded compiled component from cache"),
        "a clean hit: {third:?}"
    );
    assert_eq!(
        std::fs::read(entry).unwrap(),
        rewritten,
        "a hit writes nothing"
    );
}

/// A savepoint of a paced word-count, taken with `cairn savepoint`.
fn take_savepoint(session: &Session, scratch: &Scratch, id: &str) -> PathBuf {
    let mut args = os(&["run", path(&job("word-count")), "--job-id", id]);
    args.extend(job_args(&scratch.join("out"), Some("2000")));
    let running = session.start(args);
    running.wait_for_progress(500);
    let taken = session.cli(os(&["savepoint", id, path(&scratch.join("sp"))]));
    assert!(taken.success(), "{taken:?}");
    savepoint_path(&taken.stdout)
}

#[test]
fn slash_is_the_root_not_the_working_folder() {
    let (session, scratch) = (Session::new("slash-root"), Scratch::new("slash-root"));
    let savepoint = take_savepoint(&session, &scratch, &"51".repeat(16));
    let inside = |args: &[&str]| {
        let mut command = session.command(os(args));
        command.current_dir(&savepoint);
        finish(command, None)
    };

    let refused = inside(&["savepoint", "--dispose", "/"]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert_eq!(
        refused.stderr.trim(),
        "cairn: file:/// is the root of its file system or bucket; nothing was deleted"
    );
    assert!(
        savepoint.join("_metadata").is_file(),
        "the savepoint survives"
    );

    let inspect = inside(&["inspect", "/"]);
    assert_eq!(inspect.code, Some(1), "{inspect:?}");
    assert_eq!(
        inspect.stderr.trim(),
        "cairn: file:///: not a checkpoint or savepoint (no _metadata)"
    );
    // The working folder is still reachable by its own name.
    assert!(inside(&["inspect", "."]).success());
}

#[test]
fn restoring_from_a_file_says_it_is_a_file() {
    let scratch = Scratch::new("restore-file");
    let file = scratch.join("hostname");
    std::fs::write(&file, "a file\n").unwrap();
    let mut args = os(&["run", path(&job("word-count")), "-s", path(&file)]);
    args.extend(job_args(&scratch.join("out"), None));
    let run = cairn(args, None, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!(
            "cairn: {} (a file that is not _metadata): not a checkpoint or savepoint (no \
             _metadata)",
            file.display()
        )
    );
}

/// Files under `dir` whose name ends with `suffix`.
fn files_ending(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.to_string_lossy().ends_with(suffix) {
                found.push(path);
            }
        }
    }
    found
}

#[test]
fn a_missing_state_file_is_one_clear_error_without_retries() {
    let scratch = Scratch::new("missing-state");
    let (chk, id) = (scratch.join("chk"), "5e".repeat(16));
    let mut args = os(&["run", path(&job("word-count")), "--job-id", &id, "-D"]);
    args.push(format!("execution.checkpointing.dir={}", path(&chk)).into());
    args.extend(os(&["-D", "execution.checkpointing.interval=50 ms"]));
    args.extend(job_args(&scratch.join("out"), Some("2000")));
    let mut child = spawn_cairn(args);
    let job_folder = chk.join(&id);
    wait_for_checkpoint(path(&job_folder));
    child.kill().unwrap();
    child.wait().unwrap();

    let inspect = cairn(os(&["inspect", "--json", path(&job_folder)]), None, None);
    assert!(inspect.success(), "{inspect:?}");
    let checkpoint_id = inspect
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"checkpoint_id\": "))
        .unwrap()
        .trim_end_matches(',')
        .to_owned();
    let checkpoint = job_folder.join(format!("chk-{checkpoint_id}"));
    let state = files_ending(&checkpoint, ".state");
    assert!(!state.is_empty(), "word-count's counter has state");
    std::fs::remove_file(&state[0]).unwrap();
    let file = state[0].strip_prefix(&checkpoint).unwrap();

    let mut args = os(&["run", path(&job("word-count")), "-s", path(&checkpoint)]);
    args.extend(job_args(&scratch.join("out-2"), None));
    let run = cairn(args, None, None);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(
        run.stderr.trim(),
        format!(
            "cairn: checkpoint file://{} is incomplete: its state file {} is missing (nothing \
             was restored)",
            checkpoint.display(),
            file.display()
        ),
        "one line, no retries"
    );
}

/// A loopback listener standing in for the instance metadata service: counts connections
/// (closing each at once) for as long as the test runs.
fn metadata_service() -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let connections = Arc::new(AtomicUsize::new(0));
    let counted = connections.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            counted.fetch_add(1, Ordering::SeqCst);
            if let Ok(mut stream) = stream {
                let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                let _ = stream.read(&mut [0; 1024]);
            }
        }
    });
    (endpoint, connections)
}

/// `cairn inspect` of an S3 location with no credentials anywhere: no `AWS_*` variable but
/// the metadata endpoint, which points at `metadata`.
fn inspect_s3_without_credentials(metadata: &str, extra: &[&str]) -> Finished {
    let mut args = os(&[
        "inspect",
        "s3://bucket/chk",
        "-D",
        // Nothing listens on the discard port: no S3 request could succeed either.
        "s3.endpoint=http://127.0.0.1:9",
        "-D",
        "s3.region=us-east-1",
    ]);
    for setting in extra {
        args.extend(os(&["-D", setting]));
    }
    let mut command = Command::new(cairn_bin());
    command.args(args);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AWS_") {
            command.env_remove(key);
        }
    }
    command.env("AWS_METADATA_ENDPOINT", metadata);
    finish(command, None)
}

#[test]
fn s3_without_credentials_is_refused_before_any_request() {
    let (endpoint, connections) = metadata_service();
    let refused = inspect_s3_without_credentials(&endpoint, &[]);
    assert_eq!(refused.code, Some(1), "{refused:?}");
    assert_eq!(
        refused.stderr.trim(),
        "cairn: s3://bucket/chk: no S3 credentials: set s3.access-key and s3.secret-key (or \
         AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, web identity or container credentials), \
         or s3.use-instance-credentials: true to ask the instance metadata service"
    );
    assert_eq!(connections.load(Ordering::SeqCst), 0, "no metadata request");

    // Opted in, the metadata service is asked (and this test sees it).
    let asked = inspect_s3_without_credentials(&endpoint, &["s3.use-instance-credentials=true"]);
    assert_eq!(asked.code, Some(1), "{asked:?}");
    assert!(connections.load(Ordering::SeqCst) > 0, "{asked:?}");
}
