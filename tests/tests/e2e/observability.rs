//! Observability end to end: Prometheus metrics and Flink's checkpoint statistics from a
//! running job while it checkpoints and restarts after injected failures, Flink's vertex
//! metrics, and the web dashboard watched in a real browser.

use std::ffi::OsString;
use std::process::Command;
use std::time::{Duration, Instant};

use cairn_api::{
    BackPressureStatus, CheckpointDetails, CheckpointingStatistics, JobDetailsInfo,
    JobVertexBackPressureInfo, Metric, TaskCheckpointStatisticsWithSubtaskDetails,
};
use cairn_tests::{
    Corpus, RunningJob, Scratch, Session, eventually, http_text, job, read, workspace_root,
};

/// The value of `metric` (its full name) with all of `labels`, from a scrape.
fn value(scrape: &str, metric: &str, labels: &[&str]) -> Option<f64> {
    scrape.lines().find_map(|line| {
        let (name, rest) = line.split_once('{')?;
        let (label_text, value) = rest.rsplit_once("} ")?;
        (name == metric && labels.iter().all(|l| label_text.contains(l)))
            .then(|| value.trim().parse().ok())?
    })
}

fn scrape(job: &RunningJob) -> String {
    let (status, text) = http_text(&job.address, "GET", "/metrics", None, None);
    assert_eq!(status, 200, "{text}");
    text
}

/// Scrapes until `check` holds.
fn scrape_until(job: &RunningJob, what: &str, check: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let text = scrape(job);
        if check(&text) {
            return text;
        }
        assert!(
            Instant::now() < deadline,
            "never {what}; last scrape:\n{text}\nstderr: {}",
            job.stderr()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The flaky word count, paced at `rate` lines/s with checkpoints every `interval`, whose
/// counter subtasks fail as `fault` says (its `--fail-*` arguments); restarts with a
/// fixed delay of `delay`, at most `attempts` times.
struct Flaky<'a> {
    interval: &'a str,
    /// `web.checkpoints.history`.
    history: &'a str,
    attempts: &'a str,
    delay: &'a str,
    rate: &'a str,
    fault: &'a [&'a str],
    /// `rest.auth-token`, if the job requires one.
    token: Option<&'a str>,
}

impl Flaky<'_> {
    fn start(&self, session: &Session, scratch: &Scratch, corpus: &Corpus, id: &str) -> RunningJob {
        let config = [
            format!("execution.checkpointing.interval={}", self.interval),
            format!("web.checkpoints.history={}", self.history),
            format!(
                "execution.checkpointing.dir={}",
                scratch.join("chk").display()
            ),
            "restart-strategy.type=fixed-delay".to_owned(),
            format!("restart-strategy.fixed-delay.attempts={}", self.attempts),
            format!("restart-strategy.fixed-delay.delay={}", self.delay),
        ];
        let mut args: Vec<OsString> = [
            "run",
            job("flaky").to_str().unwrap(),
            "--job-id",
            id,
            "-p",
            "2",
        ]
        .iter()
        .map(OsString::from)
        .collect();
        for setting in &config {
            args.extend(["-D".into(), setting.into()]);
        }
        if let Some(token) = self.token {
            args.extend(["-D".into(), format!("rest.auth-token={token}").into()]);
        }
        let input = corpus.path.to_str().unwrap();
        let output = scratch.join("out");
        let output = output.to_str().unwrap();
        args.extend(
            [
                "--", "--input", input, "--output", output, "--rate", self.rate,
            ]
            .iter()
            .chain(self.fault)
            .map(OsString::from),
        );
        session.start(args)
    }
}

#[test]
fn metrics_show_checkpoints_rising_and_restarts_counting_failures() {
    let session = Session::new("metrics");
    let scratch = Scratch::new("metrics");
    let corpus = Corpus::new("metrics-corpus", 2 << 20, 5_000, 11);
    let id = "3e".repeat(16);
    let mut running = Flaky {
        interval: "100 ms",
        history: "3",
        attempts: "2",
        delay: "200 ms",
        rate: "5000",
        fault: &[
            "--fail-mode",
            "error",
            "--fail-at",
            "20000",
            "--fail-attempts",
            "2",
        ],
        token: None,
    }
    .start(&session, &scratch, &corpus, &id);
    let job_labels = [&*format!("job_id=\"{id}\""), "job_name=\"flaky\""];

    // Checkpoints complete and their counter rises between scrapes.
    let completed = |text: &str| {
        value(text, "cairn_job_numberOfCompletedCheckpoints", &job_labels).unwrap_or(0.0)
    };
    let first = scrape_until(&running, "a completed checkpoint", |t| completed(t) >= 1.0);
    // Per-subtask metrics, labelled Flink-style (absent while the job restarts).
    let count = ["task_name=\"count\"", "subtask_index=\"1\""];
    let later = scrape_until(&running, "more checkpoints, and counts", |t| {
        completed(t) >= completed(&first) + 2.0
            && value(t, "cairn_task_numRecordsIn", &count).is_some_and(|n| n > 0.0)
    });
    assert!(
        value(&later, "cairn_job_lastCompletedCheckpointId", &job_labels).unwrap() >= 2.0,
        "{later}"
    );
    assert!(value(&later, "cairn_job_lastCheckpointSize", &job_labels).unwrap() > 0.0);
    for metric in [
        "cairn_task_numRecordsOut",
        "cairn_task_numRecordsInPerSecond",
        "cairn_task_backPressuredTimeMsPerSecond",
        "cairn_task_checkpointAlignmentTime",
    ] {
        let v = value(&later, metric, &count);
        assert!(v.is_some_and(|v| v >= 0.0), "{metric} in {later}");
    }
    assert!(
        later.contains("# TYPE cairn_job_numRestarts gauge"),
        "{later}"
    );

    // Flink's checkpoint statistics: the history, and one checkpoint's per-subtask details.
    let stats: CheckpointingStatistics = running.get(&format!("/jobs/{id}/checkpoints"));
    assert!(stats.counts.completed >= 3, "{stats:?}");
    let history = &stats.history;
    assert_eq!(history.len(), 3, "web.checkpoints.history: {stats:?}");
    let checkpoint = history[0].id;
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    let count = details
        .vertices
        .iter()
        .find(|v| v.name == "count")
        .unwrap()
        .id
        .clone();
    let (status, detail) = running.http(
        "GET",
        &format!("/jobs/{id}/checkpoints/details/{checkpoint}"),
        None,
    );
    assert_eq!(status, 200, "{detail}");
    let detail: CheckpointDetails = read(&detail);
    assert_eq!(detail.tasks[&count].num_subtasks, 2, "{detail:?}");
    assert!(detail.checkpoint.state_size > 0, "{detail:?}");
    // Read as the typed answer: sync, async and alignment durations are integers.
    let subtasks: TaskCheckpointStatisticsWithSubtaskDetails = running.get(&format!(
        "/jobs/{id}/checkpoints/details/{checkpoint}/subtasks/{count}"
    ));
    let subtasks = subtasks.subtasks;
    assert_eq!(subtasks.len(), 2);
    for subtask in &subtasks {
        assert!(subtask.state_size > 0, "{subtask:?}");
    }
    let (status, _) = running.http(
        "GET",
        &format!("/jobs/{id}/checkpoints/details/999999"),
        None,
    );
    assert_eq!(status, 404);
    // Between two attempts (this job fails on purpose) no subtask runs, and none is
    // sampled: read it while an attempt runs.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let pressure = loop {
        let pressure: JobVertexBackPressureInfo =
            running.get(&format!("/jobs/{id}/vertices/{count}/backpressure"));
        if pressure.subtasks.len() == 2 || std::time::Instant::now() > deadline {
            break pressure;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(pressure.status, BackPressureStatus::Value, "{pressure:?}");
    assert_eq!(pressure.subtasks.len(), 2, "{pressure:?}");
    let metrics: Vec<Metric> = running.get(&format!(
        "/jobs/{id}/metrics?get=numRestarts,lastCompletedCheckpointId"
    ));
    assert_eq!(metrics[0].id, "numRestarts", "{metrics:?}");
    assert!(metrics[1].value.as_deref().unwrap().parse::<f64>().unwrap() >= 1.0);

    // Each counter subtask fails on attempts 0 and 1: two restarts, counted.
    let restarted = scrape_until(&running, "two restarts", |t| {
        value(t, "cairn_job_numRestarts", &job_labels) == Some(2.0)
    });
    assert!(completed(&restarted) >= completed(&later), "{restarted}");
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    assert!(
        running.stdout().contains("2 restarts"),
        "{}",
        running.stdout()
    );
}

/// Flink's vertex metrics of a job that reads a file: each subtask's metrics listed under
/// Flink's subtask-scoped ids (and no Kafka partition's), values for the ids asked for
/// (unknown ones left out), `404` for an unknown vertex.
#[test]
fn vertex_metrics_list_and_get_each_subtasks_metrics() {
    let session = Session::new("vertex-metrics");
    let scratch = Scratch::new("vertex-metrics");
    let corpus = Corpus::new("vertex-metrics-corpus", 2 << 20, 5_000, 17);
    let id = "7e".repeat(16);
    let mut running = Flaky {
        interval: "1 s",
        history: "3",
        attempts: "0",
        delay: "1 s",
        rate: "2000",
        // Attempt 0 is not below 0: the counters never fail.
        fault: &["--fail-mode", "error", "--fail-attempts", "0"],
        token: None,
    }
    .start(&session, &scratch, &corpus, &id);
    let details: JobDetailsInfo = running.get(&format!("/jobs/{id}"));
    let count = &details
        .vertices
        .iter()
        .find(|v| v.name == "count")
        .unwrap()
        .id;
    let path = format!("/jobs/{id}/vertices/{count}/metrics");

    // Listed once the attempt runs and its subtasks are sampled.
    let listed = eventually("the count subtasks' metrics listed", || {
        let listed: Vec<Metric> = running.get(&path);
        (!listed.is_empty()).then_some(listed)
    });
    let ids: Vec<&str> = listed.iter().map(|m| m.id.as_str()).collect();
    for subtask in 0..2 {
        for name in [
            "numRecordsIn",
            "numRecordsOut",
            "numRecordsInPerSecond",
            "numRecordsOutPerSecond",
            "backPressuredTimeMsPerSecond",
            "checkpointAlignmentTime",
            "currentInputWatermark",
            "currentOutputWatermark",
        ] {
            let id = format!("{subtask}.{name}");
            assert!(ids.contains(&id.as_str()), "{id} in {ids:?}");
        }
    }
    assert_eq!(
        ids.len(),
        16,
        "no partition metrics for a file source: {ids:?}"
    );
    // Flink's watermarks route: each subtask's input watermark (none yet: the job assigns
    // no event time, and its input has not ended).
    let watermarks: Vec<Metric> = running.get(&format!("/jobs/{id}/vertices/{count}/watermarks"));
    let watermarks: Vec<(&str, Option<&str>)> = watermarks
        .iter()
        .map(|m| (m.id.as_str(), m.value.as_deref()))
        .collect();
    assert_eq!(
        watermarks,
        [
            ("0.currentInputWatermark", Some("-9223372036854775808")),
            ("1.currentInputWatermark", Some("-9223372036854775808")),
        ]
    );
    assert!(listed.iter().all(|m| m.value.is_none()), "{listed:?}");

    // Values, in the order asked for (whitespace around an id ignored, an unknown id left
    // out), once both counter subtasks have taken records in.
    let asked = format!(
        "{path}?get=1.numRecordsIn,%200.numRecordsIn,0.noSuchMetric,0.checkpointAlignmentTime"
    );
    let values = eventually("records counted by both subtasks", || {
        let metrics: Vec<Metric> = running.get(&asked);
        let counted = |i: usize| {
            metrics
                .get(i)
                .and_then(|m| m.value.as_deref()?.parse::<f64>().ok())
                .is_some_and(|n| n > 0.0)
        };
        (counted(0) && counted(1)).then_some(metrics)
    });
    assert_eq!(
        values.iter().map(|m| m.id.as_str()).collect::<Vec<_>>(),
        [
            "1.numRecordsIn",
            "0.numRecordsIn",
            "0.checkpointAlignmentTime"
        ],
        "{values:?}"
    );
    assert!(values[2].value.as_deref().unwrap().parse::<f64>().unwrap() >= 0.0);

    let (status, body) = running.http(
        "GET",
        &format!("/jobs/{id}/vertices/{}/metrics", "0".repeat(32)),
        None,
    );
    assert_eq!(status, 404, "{body}");
    assert!(
        body["errors"][0]
            .as_str()
            .unwrap()
            .contains("has no vertex"),
        "{body}"
    );
    running.kill();
}

/// The web dashboard end to end: a real browser (Debian's headless Chromium, driven by
/// Playwright from `tests/browser/`) opens a running job's dashboard and watches the
/// checkpoint history grow and a restart appear. The screenshot it takes is kept as
/// `target/test-artifacts/dashboard.png`.
#[test]
fn the_dashboard_shows_checkpoints_growing_and_a_restart() {
    let chromium = std::env::var_os("CHROMIUM").unwrap_or_else(|| "/usr/bin/chromium".into());
    assert!(
        std::path::Path::new(&chromium).exists(),
        "{} is missing: install Debian's chromium (`cargo xtask test` does, as root), or set \
         CHROMIUM",
        chromium.to_string_lossy()
    );
    let browser = workspace_root().join("tests").join("browser");
    assert!(
        browser
            .join("node_modules")
            .join("playwright-core")
            .exists(),
        "tests/browser/node_modules is missing: `cargo xtask test` installs it"
    );
    let session = Session::new("dashboard");
    let scratch = Scratch::new("dashboard");
    let corpus = Corpus::new("dashboard-corpus", 2 << 20, 5_000, 13);
    let id = "da".repeat(16);
    let mut running = Flaky {
        interval: "300 ms",
        history: "10",
        attempts: "1",
        delay: "1 s",
        rate: "2000",
        fault: &["--fail-mode", "trap", "--fail-at", "30000"],
        // With a token, as on a shared machine: the browser opens the `/?token=` address
        // once, and the session cookie must carry every request the dashboard makes.
        token: Some("dashboard-secret"),
    }
    .start(&session, &scratch, &corpus, &id);

    let artifacts = workspace_root().join("target").join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let screenshot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&screenshot);
    let output = Command::new("node")
        .arg(browser.join("dashboard.mjs"))
        .arg(format!(
            "http://{}/?token=dashboard-secret",
            running.address
        ))
        .arg(&screenshot)
        .current_dir(&browser)
        .output()
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser check failed:\n{stdout}\n{}\njob: {}",
        String::from_utf8_lossy(&output.stderr),
        running.stderr()
    );
    let seen: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    assert_eq!(seen["nodes"], 4, "{seen}");
    assert_eq!(seen["chart"], 1, "{seen}");
    // Its source reads a file: no Kafka partitions to show.
    assert_eq!(seen["partitions"], 0, "{seen}");
    // It assigns no event time: every node says so (until its input ends).
    let watermarks = seen["watermarks"].as_array().unwrap();
    assert_eq!(watermarks.len(), 4, "{seen}");
    assert!(
        watermarks.iter().all(|w| {
            ["no watermark", "watermark: end of input"].contains(&w.as_str().unwrap())
        }),
        "{seen}"
    );
    assert!(
        seen["later"].as_u64() >= Some(seen["first"].as_u64().unwrap() + 2),
        "{seen}"
    );
    assert!(
        seen["exception"]
            .as_str()
            .unwrap()
            .contains("flaky: injected trap at record 30000"),
        "{seen}"
    );
    assert!(std::fs::metadata(&screenshot).unwrap().len() > 10_000);
    running.kill();
}
