//! The REST API under hostile or careless use, end to end against the real binary: a
//! restart loop's bounded exception history, concurrent swap uploads, relative savepoint
//! targets, the token (as a header in any case, as the dashboard's cookie, from a file),
//! and the OpenAPI document checked against the server by schemathesis.

use std::ffi::OsString;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use cairn_api::{
    AsynchronousOperationResult, CheckpointingStatistics, ErrorBody, JobDetailsInfo,
    JobExceptionsInfoWithHistory, JobStatus, Metric, TriggerResponse,
};
use cairn_tests::path_str as path;
use cairn_tests::{
    Corpus, RunningJob, Scratch, Session, cairn, eventually, http, job, os, read, target_dir,
    word_count_args, workspace_root,
};

/// Long enough to read for minutes at 200 lines/s: the job keeps running through a test.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("rest-security-corpus", 1 << 20, 5_000, 17))
}

/// `cairn run word-count.wasm <options> -- …` paced at 200 lines/s, writing into `out`.
fn word_count_run(options: &[&str], out: &Path) -> Vec<OsString> {
    let mut args = os(&["run", path(&job("word-count"))]);
    args.extend(os(options));
    args.extend(word_count_args(&corpus().path, out, Some("200")));
    args
}

/// [`word_count_run`] started as job `id`, writing into the scratch folder.
fn word_count(session: &Session, scratch: &Scratch, id: &str, options: &[&str]) -> RunningJob {
    let mut options = options.to_vec();
    options.extend(["--job-id", id]);
    session.start(word_count_run(&options, &scratch.join("out")))
}

/// One request with the given extra header lines; returns the status, the response's
/// header block and its body.
fn request(address: &str, method: &str, path: &str, headers: &[&str]) -> (u16, String, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    let extra: String = headers.iter().map(|h| format!("{h}\r\n")).collect();
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\n{extra}Content-Length: 0\r\n\
         Connection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let (head, body) = response.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    (status, head.to_owned(), body.to_owned())
}

/// A restart loop (every attempt fails at its first record, no delay) keeps only the last
/// `web.exception-history-size` failures (16 by default) and says it dropped older ones.
#[test]
fn a_restart_loop_keeps_a_bounded_exception_history() {
    let session = Session::new("exception-history");
    let scratch = Scratch::new("exception-history");
    let id = "e1".repeat(16);
    let out = scratch.join("out");
    let mut args = os(&["run", path(&job("flaky")), "--job-id", &id]);
    for setting in [
        "restart-strategy.type=fixed-delay",
        "restart-strategy.fixed-delay.attempts=1000000",
        "restart-strategy.fixed-delay.delay=0 ms",
    ] {
        args.extend(os(&["-D", setting]));
    }
    args.extend(os(&[
        "--",
        "--input",
        path(&corpus().path),
        "--output",
        path(&out),
        // Every attempt (up to a million) fails at its first record.
        "--fail-mode",
        "error",
        "--fail-at",
        "1",
        "--fail-attempts",
        "1000000",
    ]));
    let running = session.start(args);
    let restarts = || {
        let metrics: Vec<Metric> = running.get(&format!("/jobs/{id}/metrics?get=numRestarts"));
        metrics[0].value.as_deref()?.parse::<u64>().ok()
    };
    eventually("40 restarts", || restarts().filter(|&n| n > 40));
    let exceptions: JobExceptionsInfoWithHistory = running.get(&format!("/jobs/{id}/exceptions"));
    let entries = &exceptions.exception_history.entries;
    assert!(
        (1..=16).contains(&entries.len()),
        "{} entries after more than 40 restarts",
        entries.len()
    );
    assert!(
        entries[0]
            .stack_trace
            .contains("flaky: injected error at record 1"),
        "{exceptions:?}"
    );
    assert!(exceptions.exception_history.truncated);
    assert!(exceptions.truncated);
}

/// The highest resident memory the process has had, in bytes (`VmHWM`).
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().strip_suffix("kB"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap();
    kb << 10
}

/// The swap upload files `pid` has open (`cairn-swap-*` in its temporary folder).
fn open_uploads(pid: u32) -> Vec<PathBuf> {
    let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
        return Vec::new();
    };
    fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter(|target| {
            target
                .file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("cairn-swap-"))
        })
        .collect()
}

/// `POST path` with `len` junk bytes (not WebAssembly) on its own connection, written
/// from one reused buffer so that the test holds little memory; stops writing as soon as
/// the server answers. Returns the status and body of the answer.
fn upload_junk(address: &str, path: &str, len: u64) -> (u16, String) {
    let mut stream = TcpStream::connect(address).unwrap();
    stream
        .set_write_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    let mut reader = stream.try_clone().unwrap();
    reader
        .set_read_timeout(Some(Duration::from_secs(120)))
        .unwrap();
    let answered = Arc::new(AtomicBool::new(false));
    let response = std::thread::spawn({
        let answered = answered.clone();
        move || {
            let mut response = Vec::new();
            let mut buffer = [0; 4096];
            // A refusal may come with a reset once the server stops reading: keep what came.
            while let Ok(n @ 1..) = reader.read(&mut buffer) {
                response.extend_from_slice(&buffer[..n]);
                answered.store(true, Ordering::SeqCst);
            }
            String::from_utf8_lossy(&response).into_owned()
        }
    });
    let chunk = vec![0x5a_u8; 1 << 20];
    let written = write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/wasm\r\n\
         Content-Length: {len}\r\nConnection: close\r\n\r\n"
    );
    let mut sent = 0;
    while written.is_ok() && sent < len && !answered.load(Ordering::SeqCst) {
        let n = chunk.len().min((len - sent) as usize);
        if stream.write_all(&chunk[..n]).is_err() {
            break;
        }
        sent += n as u64;
    }
    let response = response.join().unwrap();
    cairn_tests::split_response(&response)
        .unwrap_or_else(|| panic!("no answer after {sent} bytes: {response:?}"))
}

/// Eight concurrent 250 MB swap uploads: one is taken (streamed to a temporary file, which
/// is removed afterwards), seven are refused with 409 at once, the job keeps running and its
/// memory stays far below the uploads' size.
#[test]
fn concurrent_swap_uploads_are_refused_and_never_held_in_memory() {
    let session = Session::new("swap-flood");
    let scratch = Scratch::new("swap-flood");
    let id = "5f".repeat(16);
    let running = word_count(&session, &scratch, &id, &[]);
    running.wait_for_progress(1);
    let pid = running.child.id();
    let swap = format!("/jobs/{id}/swap?name=junk.wasm");
    let uploads: Vec<_> = (0..8)
        .map(|_| {
            let (address, swap) = (running.address.clone(), swap.clone());
            std::thread::spawn(move || upload_junk(&address, &swap, 250_000_000))
        })
        .collect();
    let mut upload_files = Vec::new();
    while !uploads.iter().all(|u| u.is_finished()) {
        for file in open_uploads(pid) {
            if !upload_files.contains(&file) {
                upload_files.push(file);
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    let answers: Vec<(u16, String)> = uploads.into_iter().map(|u| u.join().unwrap()).collect();
    let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
    assert_eq!(
        statuses.iter().filter(|&&s| s == 409).count(),
        7,
        "{answers:?}"
    );
    let (_, refusal) = answers.iter().find(|(s, _)| *s == 409).unwrap();
    let refusal: ErrorBody = serde_json::from_str(refusal).unwrap();
    assert!(
        refusal.errors[0].contains("another swap or a rescale of job"),
        "{refusal:?}"
    );
    let (_, accepted) = answers.iter().find(|(s, _)| *s == 202).unwrap();
    let accepted: TriggerResponse = serde_json::from_str(accepted).unwrap();
    let request = accepted.request_id;
    let outcome = eventually("the swap completed", || {
        let status: AsynchronousOperationResult =
            running.get(&format!("/jobs/{id}/swap/{request}"));
        status.outcome().is_some().then_some(status)
    });
    assert!(
        matches!(outcome.outcome(), Some(Err(cause)) if cause.contains("is not a WebAssembly file")),
        "{outcome:?}"
    );
    assert_eq!(upload_files.len(), 1, "{upload_files:?}");
    assert!(!upload_files[0].exists(), "{upload_files:?} left behind");
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    assert_eq!(details.state, JobStatus::Running, "{}", running.stderr());
    let peak = peak_rss(pid);
    eprintln!("peak RSS of the job: {} MiB", peak >> 20);
    assert!(peak < 400 << 20, "peak RSS {} MiB", peak >> 20);
}

/// Swap bodies must be components: an empty one is a bad request. Savepoint targets from
/// REST must be absolute (a relative one would resolve against the job's working folder),
/// while the CLI still takes relative folders, making them absolute itself.
#[test]
fn empty_swaps_and_relative_savepoint_targets_are_refused() {
    let session = Session::new("rest-refusals");
    let scratch = Scratch::new("rest-refusals");
    let id = "4e".repeat(16);
    let running = word_count(&session, &scratch, &id, &[]);
    running.wait_for_progress(1);

    let (status, body) = running.http("POST", &format!("/jobs/{id}/swap"), None);
    assert_eq!(status, 400, "{body}");
    assert!(
        read::<ErrorBody>(&body).errors[0].contains("empty"),
        "{body}"
    );

    for (endpoint, field) in [
        ("savepoints", "target-directory"),
        ("stop", "targetDirectory"),
    ] {
        let request = format!(r#"{{"{field}": "../escaped"}}"#);
        let (status, body) =
            running.http("POST", &format!("/jobs/{id}/{endpoint}"), Some(&request));
        assert_eq!(status, 400, "{endpoint}: {body}");
        assert!(
            read::<ErrorBody>(&body).errors[0]
                .contains("'../escaped' is relative: give an absolute path or a URL"),
            "{body}"
        );
    }
    assert!(!scratch.path().parent().unwrap().join("escaped").exists());

    let cli = session
        .command(os(&["savepoint", &id, "relative-savepoints"]))
        .current_dir(scratch.path())
        .output()
        .unwrap();
    assert!(cli.status.success(), "{cli:?}");
    let saved = std::fs::read_dir(scratch.join("relative-savepoints"))
        .unwrap()
        .count();
    assert_eq!(saved, 1);
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    assert_eq!(details.state, JobStatus::Running);
}

/// With the token in a file: it is accepted with the scheme in any case, the dashboard
/// exchanges `/?token=` for an HttpOnly cookie that authorizes its assets and API calls,
/// a wrong token gets 401, and the token shows nowhere (`ps`, `--print-config`, config).
#[test]
fn the_token_from_a_file_guards_every_way_in_and_shows_nowhere() {
    let session = Session::new("token");
    let scratch = Scratch::new("token");
    let id = "70".repeat(16);
    let token = "s3cr3t-t0ken-for-the-dashboard";
    let token_file = scratch.join("token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let from_file = format!("rest.auth-token-file={}", token_file.display());

    let missing = format!("rest.auth-token-file={}", scratch.join("nope").display());
    std::fs::write(scratch.join("empty"), " \n").unwrap();
    let empty = format!("rest.auth-token-file={}", scratch.join("empty").display());
    for (setting, message) in [
        (&missing, "cannot read rest.auth-token-file"),
        (&empty, "a file holding the token, not an empty one"),
    ] {
        let run = session.cli(word_count_run(&["-D", setting], &scratch.join("out")));
        assert!(!run.success(), "{run:?}");
        assert!(run.stderr.contains(message), "{}", run.stderr);
    }
    let printed = cairn(
        word_count_run(&["--print-config", "-D", &from_file], &scratch.join("out")),
        None,
        None,
    );
    assert!(printed.success(), "{printed:?}");
    assert!(
        printed.stdout.contains("rest.auth-token-file"),
        "{printed:?}"
    );
    assert!(!printed.stdout.contains(token), "{}", printed.stdout);

    let running = word_count(&session, &scratch, &id, &["-D", &from_file]);
    let address = running.address.as_str();
    let cmdline = std::fs::read(format!("/proc/{}/cmdline", running.child.id())).unwrap();
    assert!(!String::from_utf8_lossy(&cmdline).contains(token));

    let jobs = format!("/jobs/{id}");
    assert_eq!(request(address, "GET", &jobs, &[]).0, 401);
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let auth = format!("Authorization: {scheme} {token}");
        let (status, _, body) = request(address, "GET", &jobs, &[&auth]);
        assert_eq!(status, 200, "{scheme}: {body}");
    }
    let wrong = "Authorization: Bearer not-the-token";
    assert_eq!(request(address, "GET", &jobs, &[wrong]).0, 401);

    let (status, _, page) = request(address, "GET", "/", &[]);
    assert_eq!(status, 401);
    assert!(page.contains("/?token="), "{page}");
    let (status, head, _) = request(address, "GET", "/?token=not-the-token", &[]);
    assert_eq!(status, 401, "{head}");
    assert!(!head.to_ascii_lowercase().contains("set-cookie"), "{head}");

    let (status, head, _) = request(address, "GET", &format!("/?token={token}"), &[]);
    assert_eq!(status, 303, "{head}");
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
            .unwrap_or_else(|| panic!("no {name} in {head}"))
    };
    assert_eq!(header("location"), "/");
    let set_cookie = header("set-cookie");
    assert!(set_cookie.contains("HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    assert!(!set_cookie.contains(token), "{set_cookie}");
    let cookie = format!("Cookie: {}", set_cookie.split(';').next().unwrap());
    for page in ["/", "/app.js", &jobs, &format!("/jobs/{id}/checkpoints")] {
        let (status, _, body) = request(address, "GET", page, &[&cookie]);
        assert_eq!(status, 200, "{page}: {body}");
    }
    let forged = format!("Cookie: cairn-session-{id}={}", "0".repeat(64));
    assert_eq!(request(address, "GET", &jobs, &[&forged]).0, 401);

    let (status, _, config) = request(address, "GET", &format!("{jobs}/config"), &[&cookie]);
    assert_eq!(status, 200, "{config}");
    assert!(config.contains("rest.auth-token-file"), "{config}");
    assert!(!config.contains(token), "{config}");

    // The CLI finds the token in the job's registry entry.
    let listed = session.cli(os(&["list"]));
    assert!(
        listed.success() && listed.stdout.contains(&id),
        "{listed:?}"
    );
    let (status, _) = http(address, "GET", &jobs, None, Some(token));
    assert_eq!(status, 200);
}

/// schemathesis checks `docs/rest-api.yaml` against a running job: no server errors, and
/// every status code, content type and response body as documented. The operations that
/// end the job or write outside the test (cancel, stop, savepoints and their disposal,
/// whose generated targets would be arbitrary absolute paths) are left out, so that one job
/// serves the whole run; every other operation runs against it, with its real job id.
#[test]
fn the_openapi_document_matches_the_server() {
    let st = target_dir()
        .join("toolchains")
        .join("schemathesis")
        .join("bin")
        .join("st");
    assert!(
        st.exists(),
        "{} is missing: `cargo xtask test` installs it",
        st.display()
    );
    let session = Session::new("schemathesis");
    let scratch = Scratch::new("schemathesis");
    let id = "5c".repeat(16);
    let running = word_count(
        &session,
        &scratch,
        &id,
        &[
            "-D",
            "execution.checkpointing.interval=500 ms",
            "-D",
            &format!(
                "execution.checkpointing.dir={}",
                scratch.join("chk").display()
            ),
            "-D",
            "web.checkpoints.history=1000",
        ],
    );
    // Real ids for the path parameters, so that the operations reach past their 404s: a
    // vertex, a completed checkpoint (kept in the history for the whole run) and a
    // savepoint's trigger id.
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    let vertex = details.vertices[0].id.clone();
    let checkpoint = eventually("a completed checkpoint", || {
        let stats: CheckpointingStatistics = running.get(&format!("/jobs/{id}/checkpoints"));
        stats.latest.completed.map(|c| c.id)
    });
    let target = format!(
        r#"{{"target-directory": "{}"}}"#,
        scratch.join("sp").display()
    );
    let (_, triggered) = running.http("POST", &format!("/jobs/{id}/savepoints"), Some(&target));
    let trigger = read::<TriggerResponse>(&triggered).request_id;
    let config = scratch.join("schemathesis.toml");
    std::fs::write(
        &config,
        format!(
            "[parameters]\n\"path.jobid\" = \"{id}\"\n\"path.vertexid\" = \"{vertex}\"\n\
             \"path.checkpointid\" = {checkpoint}\n\"path.triggerid\" = \"{trigger}\"\n"
        ),
    )
    .unwrap();
    let started = Instant::now();
    let output = Command::new(&st)
        .arg("--config-file")
        .arg(&config)
        .arg("run")
        .arg(workspace_root().join("docs").join("rest-api.yaml"))
        .args(["--url", &format!("http://{}", running.address)])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,\
             response_schema_conformance",
            "--phases",
            "examples,coverage,fuzzing",
            "--max-examples",
            "20",
            "--request-timeout",
            "5",
            "--seed",
            "1",
            "--generation-database",
            "none",
            "--no-shrink",
            "--no-color",
        ])
        .args(
            [
                "cancelJob",
                "rescaleJob",
                "stopWithSavepoint",
                "triggerSavepoint",
                "triggerSavepointDisposal",
            ]
            .iter()
            .flat_map(|op| ["--exclude-operation-id", op]),
        )
        .current_dir(scratch.path())
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found mismatches:\n{report}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    eprintln!("schemathesis took {:?}", started.elapsed());
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    assert_eq!(details.state, JobStatus::Running, "{}", running.stderr());
}
