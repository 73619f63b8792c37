//! Helpers for end-to-end tests: where the built binary and jobs are, a deterministic text
//! generator, and the word-count oracle (DESIGN.md §9).

use std::collections::HashMap;
use std::ffi::OsStr;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use cairn_api::JobDetailsInfo;
use serde::de::DeserializeOwned;

pub mod kafka;
pub mod kill_loop;

pub use cairn_oracle::{
    OracleReport, SplitMix, WordCountCheck, check_word_count, committed_files, windowed,
    word_counts, write_text,
};

/// The longest one `cairn` command may take in a test before it is killed.
const COMMAND_DEADLINE: Duration = Duration::from_secs(300);

/// What a finished `cairn` command printed.
#[derive(Debug)]
pub struct Finished {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Finished {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// The last line of stdout: `run`'s final status line.
    pub fn last_line(&self) -> &str {
        self.stdout.lines().last().unwrap_or("")
    }
}

/// Runs the real `cairn` binary with `args` (in `dir`, with `stdin` fed to it), killing it
/// if it runs past a generous deadline so that a hang fails the test instead of the suite.
pub fn cairn<I, S>(args: I, dir: Option<&Path>, stdin: Option<&[u8]>) -> Finished
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new(cairn_bin());
    command.args(args);
    if let Some(dir) = dir {
        command.current_dir(dir);
    }
    finish(command, stdin)
}

/// Runs a prepared `cairn` command to its end, as [`cairn`] does.
pub fn finish(mut command: Command, stdin: Option<&[u8]>) -> Finished {
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("cairn starts");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin is piped");
        let input = input.to_vec();
        std::thread::spawn(move || pipe.write_all(&input));
    }
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(child.wait_with_output()));
    let output = match rx.recv_timeout(COMMAND_DEADLINE) {
        Ok(output) => output.expect("cairn's output can be read"),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("cairn did not finish within {COMMAND_DEADLINE:?}");
        }
    };
    Finished {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Starts the real binary without waiting for it (for tests that kill it); its output is
/// discarded.
pub fn spawn_cairn<I, S>(args: I) -> std::process::Child
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    Command::new(cairn_bin())
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("cairn starts")
}

/// An S3-compatible server (moto, installed into `target/toolchains/moto` by `cargo xtask test`) on a
/// free loopback port, with one bucket; stopped when dropped.
pub struct S3Server {
    child: std::process::Child,
    pub endpoint: String,
}

impl S3Server {
    pub fn start(bucket: &str) -> Self {
        let moto = target_dir()
            .join("toolchains")
            .join("moto")
            .join("bin")
            .join("moto_server");
        assert!(
            moto.exists(),
            "{} is missing: `cargo xtask test` installs it",
            moto.display()
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free loopback port")
            .port();
        let child = Command::new(moto)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("moto_server starts");
        let server = S3Server {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", port)) {
                let request = format!(
                    "PUT /{bucket} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let mut response = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && io::Read::read_to_string(&mut stream, &mut response).is_ok()
                    && response.starts_with("HTTP/1.1 200")
                {
                    return server;
                }
            }
            assert!(
                std::time::Instant::now() < deadline,
                "moto_server did not come up"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// `-D` settings that point cairn at this server.
    pub fn config(&self) -> Vec<String> {
        vec![
            format!("s3.endpoint={}", self.endpoint),
            "s3.access-key=test".into(),
            "s3.secret-key=test".into(),
            "s3.region=us-east-1".into(),
            "s3.path.style.access=true".into(),
        ]
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh, empty folder for one test, under the target folder (not /tmp, which may be
/// small); removed when dropped.
pub struct Scratch(PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Self {
        let dir = target_dir()
            .join("test-scratch")
            .join(format!("{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch folder can be created");
        Scratch(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ lives in the workspace")
        .to_owned()
}

/// The workspace's target folder (`$CARGO_TARGET_DIR`, else `target/`).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"))
}

fn built(path: PathBuf) -> PathBuf {
    assert!(
        path.exists(),
        "{} is missing: run `cargo xtask build` first (`cargo xtask test` does)",
        path.display()
    );
    path
}

/// `target/release/cairn`.
pub fn cairn_bin() -> PathBuf {
    built(target_dir().join("release").join("cairn"))
}

/// An example job: `target/jobs/<name>.wasm`.
pub fn job(name: &str) -> PathBuf {
    built(target_dir().join("jobs").join(format!("{name}.wasm")))
}

/// A test-only guest: `target/test-jobs/<name>.wasm`.
pub fn test_job(name: &str) -> PathBuf {
    built(target_dir().join("test-jobs").join(format!("{name}.wasm")))
}

/// A generated text and its word counts, in a scratch folder of its own.
pub struct Corpus {
    _dir: Scratch,
    pub path: PathBuf,
    pub counts: HashMap<String, u64>,
}

impl Corpus {
    /// About `bytes` bytes of [`write_text`] text over `vocabulary` words.
    pub fn new(name: &str, bytes: u64, vocabulary: u64, seed: u64) -> Self {
        let dir = Scratch::new(name);
        let path = dir.join("input.txt");
        write_text(&path, bytes, vocabulary, seed).expect("the corpus can be written");
        let counts = word_counts(&path).expect("the corpus can be read");
        Corpus {
            _dir: dir,
            path,
            counts,
        }
    }

    /// Words in all: the number of lines word-count's complete output has.
    pub fn words(&self) -> u64 {
        self.counts.values().sum()
    }

    /// Asserts that the word-count output committed in `out` is exactly this text's.
    pub fn assert_exact(&self, out: &Path) {
        let report = check_word_count(&self.counts, out).expect("the output can be read");
        assert!(report.is_exact(), "{report:?}");
        assert_eq!(report.lines, self.words());
    }
}

/// Tests that talk to running jobs: each session has its own job registry (its own
/// `$XDG_RUNTIME_DIR`), so tests running in parallel see only their own jobs.
pub struct Session {
    scratch: Scratch,
    /// What `CAIRN_LOG` is for its commands (the default filter when `None`).
    log: Option<String>,
}

impl Session {
    pub fn new(name: &str) -> Self {
        Session {
            scratch: Scratch::new(&format!("{name}-session")),
            log: None,
        }
    }

    /// Sets `CAIRN_LOG` (what `cairn` logs) for this session's commands.
    pub fn with_log(mut self, filter: &str) -> Self {
        self.log = Some(filter.to_owned());
        self
    }

    /// A `cairn` command in this session.
    pub fn command<I, S>(&self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut command = Command::new(cairn_bin());
        command
            .args(args)
            .env("XDG_RUNTIME_DIR", self.scratch.path());
        if let Some(filter) = &self.log {
            command.env("CAIRN_LOG", filter);
        }
        command
    }

    /// Runs a `cairn` command in this session to its end.
    pub fn cli<I, S>(&self, args: I) -> Finished
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        finish(self.command(args), None)
    }

    /// Starts `cairn run` (its arguments must include `--job-id`) and waits until the job
    /// has registered its REST server. Its standard input is empty.
    pub fn start<I, S>(&self, args: I) -> RunningJob
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        self.start_with_stdin(args, Stdio::null())
    }

    /// [`start`](Self::start), the job's standard input `stdin` (`Stdio::piped()`: held
    /// open, in `child.stdin`, until the test drops it).
    pub fn start_with_stdin<I, S>(&self, args: I, stdin: Stdio) -> RunningJob
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let args: Vec<std::ffi::OsString> =
            args.into_iter().map(|a| a.as_ref().to_owned()).collect();
        let id = args
            .iter()
            .position(|a| a == "--job-id")
            .and_then(|i| args.get(i + 1))
            .and_then(|id| id.to_str())
            .expect("started jobs name their --job-id")
            .to_owned();
        let log = |name: &str| {
            std::fs::File::create(self.scratch.join(&format!("{id}.{name}")))
                .expect("log files can be created")
        };
        let registered = self
            .scratch
            .join("cairn")
            .join("jobs")
            .join(format!("{id}.json"));
        // A run of the same id killed with -9 left its registration: not this run's.
        let _ = std::fs::remove_file(&registered);
        let child = self
            .command(&args)
            .stdin(stdin)
            .stdout(log("stdout"))
            .stderr(log("stderr"))
            .spawn()
            .expect("cairn starts");
        let mut job = RunningJob {
            child,
            id: id.clone(),
            address: String::new(),
            logs: self.scratch.join(&id),
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(address) = std::fs::read_to_string(&registered)
                .ok()
                .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
                .and_then(|entry| entry["address"].as_str().map(str::to_owned))
            {
                job.address = address;
                return job;
            }
            if let Ok(Some(status)) = job.child.try_wait() {
                panic!(
                    "the job exited ({status}) before registering: {}",
                    job.stderr()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the job did not register"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Session {
    /// Stops `job` with a savepoint into `folder` (`cairn stop --savepoint-path`); waits for
    /// it to end and returns the savepoint's path.
    pub fn stop_with_savepoint(&self, job: &mut RunningJob, folder: &Path) -> String {
        let stop = self.cli(os(&["stop", "--savepoint-path", path_str(folder), &job.id]));
        assert!(stop.success(), "{stop:?}; the job said: {}", job.stderr());
        assert_eq!(job.wait(), Some(0), "{}", job.stderr());
        path_str(&savepoint_path(&stop.stdout)).to_owned()
    }
}

/// A job started by a [`Session`].
pub struct RunningJob {
    pub child: std::process::Child,
    pub id: String,
    /// Its REST server, `host:port`.
    pub address: String,
    /// `<scratch>/<job id>`: its output is in `.stdout` and `.stderr` beside it.
    logs: PathBuf,
}

impl RunningJob {
    pub fn stdout(&self) -> String {
        std::fs::read_to_string(self.logs.with_extension("stdout")).unwrap_or_default()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.logs.with_extension("stderr")).unwrap_or_default()
    }

    /// Waits for the job to end (within the command deadline); returns its exit code.
    pub fn wait(&mut self) -> Option<i32> {
        let deadline = std::time::Instant::now() + COMMAND_DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().expect("the job can be waited for") {
                return status.code();
            }
            if std::time::Instant::now() > deadline {
                let _ = self.child.kill();
                panic!("the job did not end within {COMMAND_DEADLINE:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// An HTTP request to the job's REST server; returns the status and the JSON body.
    pub fn http(&self, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
        http(&self.address, method, path, body, None)
    }

    /// `GET path` on the job's REST server: its `200` answer, read as a `T` (one of
    /// `cairn_api`'s types).
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        let (status, body) = self.http("GET", path, None);
        assert_eq!(status, 200, "GET {path}: {body}");
        read(&body)
    }

    /// The id of the job's vertex (node) with uid `name`.
    pub fn vertex(&self, name: &str) -> String {
        let details: JobDetailsInfo = self.get(&format!("/jobs/{}", self.id));
        let vertex = details.vertices.iter().find(|v| v.name == name);
        vertex
            .unwrap_or_else(|| panic!("the job has no vertex {name}"))
            .id
            .clone()
    }

    /// The sum over the subtasks of vertex `vertex` of metric `name` (`<subtask>.<name>` in
    /// Flink's vertex metrics), with the value of each subtask that has it.
    pub fn vertex_metric(&self, vertex: &str, name: &str) -> Vec<f64> {
        let path = format!("/jobs/{}/vertices/{vertex}/metrics", self.id);
        let listed: Vec<cairn_api::Metric> = self.get(&path);
        let ids: Vec<&str> = listed
            .iter()
            .map(|m| m.id.as_str())
            .filter(|id| id.split_once('.').is_some_and(|(_, n)| n == name))
            .collect();
        if ids.is_empty() {
            return Vec::new();
        }
        let values: Vec<cairn_api::Metric> = self.get(&format!("{path}?get={}", ids.join(",")));
        values
            .iter()
            .filter_map(|m| m.value.as_deref()?.parse().ok())
            .collect()
    }

    /// Waits until the job's first node (its source) has emitted at least `records`.
    pub fn wait_for_progress(&self, records: u64) {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while self.records_written_by_first_vertex() < records {
            assert!(
                std::time::Instant::now() < deadline,
                "the job made no progress: {}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn records_written_by_first_vertex(&self) -> u64 {
        let details: JobDetailsInfo = self.get(&format!("/jobs/{}", self.id));
        details.vertices[0].metrics.write_records
    }
}

/// The folder of the latest completed checkpoint in a job's checkpoint folder, as `cairn
/// inspect` finds it.
pub fn latest_checkpoint(job_folder: &Path) -> PathBuf {
    let run = cairn(
        [
            "inspect".as_ref(),
            job_folder.as_os_str(),
            "--json".as_ref(),
        ],
        None,
        None,
    );
    assert!(run.success(), "{run:?}");
    let id = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("\"checkpoint_id\": "))
        .expect("inspect --json names the checkpoint id")
        .trim_end_matches(',')
        .to_owned();
    job_folder.join(format!("chk-{id}"))
}

/// Command-line arguments from string literals.
pub fn os(items: &[&str]) -> Vec<std::ffi::OsString> {
    items.iter().map(std::ffi::OsString::from).collect()
}

/// A path as the `&str` an argument list takes (scratch paths are UTF-8).
pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("test paths are UTF-8")
}

/// A job id of its own for a run a helper starts on behalf of several tests: derived from
/// a path of the calling test's scratch folder, so that tests running at the same time never
/// share one (a job id is locked on the machine while it runs).
pub fn job_id_for(path: &Path) -> String {
    format!(
        "{:032x}",
        xxhash_rust::xxh3::xxh3_128(path.as_os_str().as_encoded_bytes())
    )
}

/// `run <wasm> -p <parallelism> --job-id <id>`, checkpointing every 100 ms into `chk`: how
/// the tests that drive a job mid-stream start it (options and the job's arguments follow).
pub fn run_checkpointed(
    wasm: &Path,
    parallelism: u32,
    id: &str,
    chk: &Path,
) -> Vec<std::ffi::OsString> {
    let p = parallelism.to_string();
    let mut args = os(&["run", path_str(wasm), "-p", &p, "--job-id", id]);
    args.extend(os(&[
        "-D",
        "execution.checkpointing.interval=100 ms",
        "-D",
        &format!("execution.checkpointing.dir={}", path_str(chk)),
    ]));
    args
}

/// `-- --input <input> --output <out>`, and `--rate <rate>` (lines per second) when given:
/// the arguments of word-count and of the jobs sharing its input and output.
pub fn word_count_args(input: &Path, out: &Path, rate: Option<&str>) -> Vec<std::ffi::OsString> {
    let mut args = os(&["--", "--input", path_str(input), "--output", path_str(out)]);
    if let Some(rate) = rate {
        args.extend(os(&["--rate", rate]));
    }
    args
}

/// Checks keyed-sum's committed output in `out` for `records` records over `keys` keys,
/// exactly once: one line per record, and per key the running sums of the values
/// i ≡ k (mod keys), so that the largest is the key's total.
pub fn check_keyed_sum(out: &Path, records: u64, keys: u64) {
    let mut lines = 0u64;
    let mut updates: std::collections::HashMap<String, Vec<u64>> = Default::default();
    for file in committed_files(out).expect("the output folder can be listed") {
        let text = std::fs::read_to_string(&file).expect("a part file can be read");
        for line in text.lines() {
            lines += 1;
            let (key, sum) = line.split_once('\t').expect("lines are key<TAB>sum");
            updates
                .entry(key.to_owned())
                .or_default()
                .push(sum.parse().expect("sums are numbers"));
        }
    }
    assert_eq!(lines, records, "one line per record");
    assert_eq!(updates.len() as u64, keys);
    for k in 0..keys {
        let sums = &updates[&format!("key-{k}")];
        let values: Vec<u64> = (k..records).step_by(keys as usize).collect();
        let total: u64 = values.iter().sum();
        assert_eq!(sums.len(), values.len(), "key-{k}");
        assert_eq!(sums.iter().max().copied(), Some(total), "key-{k}");
    }
}

/// The `Path: <location>` a savepoint command printed.
pub fn savepoint_path(stdout: &str) -> PathBuf {
    let location = stdout
        .lines()
        .find_map(|l| l.strip_prefix("Savepoint completed. Path: "))
        .or_else(|| {
            stdout
                .lines()
                .find_map(|l| l.split_once("Savepoint stored in ")?.1.strip_suffix('.'))
        })
        .unwrap_or_else(|| panic!("no savepoint path in {stdout:?}"));
    PathBuf::from(location.strip_prefix("file://").unwrap_or(location))
}

impl Drop for RunningJob {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A REST answer read as a `T` (one of `cairn_api`'s types); panics, showing the answer,
/// if it is not one.
pub fn read<T: DeserializeOwned>(body: &serde_json::Value) -> T {
    T::deserialize(body)
        .unwrap_or_else(|e| panic!("not a {}: {e}: {body}", std::any::type_name::<T>()))
}

/// [`http_text`], with the body parsed as JSON (`Null` if empty or not JSON).
pub fn http(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, serde_json::Value) {
    let (status, body) = http_text(address, method, path, body, token);
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

/// A minimal HTTP/1.1 client (one request per connection) for talking to a job's REST
/// server as any client would; returns the status and the body.
pub fn http_text(
    address: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    token: Option<&str>,
) -> (u16, String) {
    let mut stream =
        std::net::TcpStream::connect(address).unwrap_or_else(|e| panic!("connect {address}: {e}"));
    let body = body.unwrap_or("");
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n{auth}Connection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("request sent");
    let mut response = String::new();
    io::Read::read_to_string(&mut stream, &mut response).expect("response read");
    split_response(&response).unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

/// The status and the body of a whole HTTP/1.1 response, if it is one.
pub fn split_response(response: &str) -> Option<(u16, String)> {
    let status = response.split(' ').nth(1)?.parse().ok()?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Some((status, body.to_owned()))
}

/// Calls `check` until it answers, for up to a minute; fails the test saying what never
/// happened.
pub fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(std::time::Instant::now() < deadline, "never {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oracle_counts_missing_duplicated_and_unexpected() {
        let dir = std::env::temp_dir().join(format!("cairn-oracle-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let counts = HashMap::from([("a".to_owned(), 2), ("b".to_owned(), 1)]);
        std::fs::write(dir.join("part-0"), "a\t1\na\t2\nb\t1\n").unwrap();
        std::fs::write(dir.join(".part-1.inprogress"), "a\t1\n").unwrap();
        assert!(check_word_count(&counts, &dir).unwrap().is_exact());

        std::fs::write(dir.join("part-1"), "a\t2\nc\t1\nb\t2\nnonsense\n").unwrap();
        std::fs::write(dir.join("part-0"), "a\t1\n").unwrap();
        let report = check_word_count(&counts, &dir).unwrap();
        assert_eq!(
            report,
            OracleReport {
                lines: 5,
                missing: 1,
                duplicated: 0,
                unexpected: 3
            }
        );
        std::fs::write(dir.join("part-0"), "a\t1\na\t2\nb\t1\n").unwrap();
        let report = check_word_count(&counts, &dir).unwrap();
        assert_eq!(report.duplicated, 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn generated_text_is_deterministic_and_mixed() {
        let dir = std::env::temp_dir().join(format!("cairn-text-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (a, b) = (dir.join("a.txt"), dir.join("b.txt"));
        write_text(&a, 200_000, 5_000, 7).unwrap();
        write_text(&b, 200_000, 5_000, 7).unwrap();
        let text = std::fs::read_to_string(&a).unwrap();
        assert_eq!(text, std::fs::read_to_string(&b).unwrap());
        assert!(text.contains('\u{3000}') && text.contains("\r\n") && text.contains('\t'));
        let counts = word_counts(&a).unwrap();
        assert!(counts.len() > 1_000, "{} distinct words", counts.len());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
