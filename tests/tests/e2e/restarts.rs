//! Restart strategies end to end, with the `flaky` job failing on purpose: how many runs a
//! strategy allows, the delays between them (the delay the strategy chose, as logged, and
//! that the restart waited at least that long, from the log's timestamps), that guests
//! stuck in a loop or over their memory are stopped and restarted, and that the output is
//! still exactly the oracle's. Also where configuration comes from.

use std::ffi::OsString;

use cairn_tests::{Finished, Scratch, cairn, check_word_count, job, test_job, word_counts};

/// Runs flaky: each counter subtask fails `mode` at its record `at` while the attempt is
/// below `attempts`. Input: 3000 words, output checked by the caller.
fn flaky(scratch: &Scratch, mode: &str, at: u32, attempts: u32, config: &[&str]) -> Finished {
    let input = scratch.join("input.txt");
    if !input.exists() {
        let text: String = (0..1000)
            .map(|i| format!("w{} x{} y\n", i % 37, i % 5))
            .collect();
        std::fs::write(&input, text).unwrap();
    }
    let mut args: Vec<OsString> = vec!["run".into(), job("flaky").into()];
    for setting in config {
        args.push("-D".into());
        args.push(setting.into());
    }
    args.extend([
        "--".into(),
        "--input".into(),
        input.into_os_string(),
        "--output".into(),
    ]);
    args.push(scratch.join("out").into());
    args.extend([
        format!("--fail-mode={mode}").into(),
        format!("--fail-at={at}").into(),
        format!("--fail-attempts={attempts}").into(),
    ]);
    cairn(args, None, None)
}

fn output_is_exact(scratch: &Scratch) {
    let counts = word_counts(&scratch.join("input.txt")).unwrap();
    let report = check_word_count(&counts, &scratch.join("out")).unwrap();
    assert!(report.is_exact(), "{report:?}");
}

/// Runs that failed, from the log: one `attempt N failed` line per failure that restarted.
fn failed_attempts(run: &Finished) -> usize {
    run.stderr
        .lines()
        .filter(|l| l.contains(" failed: ") && l.contains("attempt "))
        .count()
}

/// Per restart: the delay the strategy chose (the failure line's `restarting in <delay>`)
/// and the seconds from that line to the restart line that follows it. The first is exact;
/// the second is at least the first, and more on a loaded machine, so tests bound it only
/// from below.
fn restart_delays(run: &Finished) -> Vec<(f64, f64)> {
    let stamp = |line: &str| -> f64 {
        // 2026-11-24T01:53:20.664731Z
        let time = line.split_whitespace().next().unwrap();
        let clock = time.split('T').nth(1).unwrap().trim_end_matches('Z');
        let mut parts = clock.split(':');
        let h: f64 = parts.next().unwrap().parse().unwrap();
        let m: f64 = parts.next().unwrap().parse().unwrap();
        let s: f64 = parts.next().unwrap().parse().unwrap();
        h * 3600.0 + m * 60.0 + s
    };
    let chosen = |line: &str| -> f64 {
        let delay = line.split("; restarting in ").nth(1).unwrap();
        let delay = delay.split(" (").next().unwrap();
        humantime::parse_duration(delay).unwrap().as_secs_f64()
    };
    let mut delays = Vec::new();
    let mut failed = None;
    for line in run.stderr.lines() {
        if line.contains("failed: ") && line.contains("; restarting in ") {
            failed = Some((chosen(line), stamp(line)));
        } else if line.contains("restarting the job (attempt") {
            let (chosen, at) = failed.take().unwrap();
            delays.push((chosen, stamp(line) - at));
        }
    }
    delays
}

/// Checks that every restart waited at least the delay its strategy chose.
fn waited_at_least_the_chosen_delays(delays: &[(f64, f64)]) {
    for &(chosen, waited) in delays {
        // Timestamps are logged to the microsecond.
        assert!(waited >= chosen - 1e-6, "{delays:?}");
    }
}

#[test]
fn fixed_delay_with_enough_attempts_finishes_exactly() {
    let scratch = Scratch::new("fixed-enough");
    let run = flaky(
        &scratch,
        "trap",
        100,
        3,
        &[
            "restart-strategy.type=fixed-delay",
            "restart-strategy.fixed-delay.attempts=3",
            "restart-strategy.fixed-delay.delay=300 ms",
        ],
    );
    assert!(run.success(), "{run:?}");
    assert!(
        run.last_line().contains(" FINISHED ") && run.last_line().contains("3 restarts"),
        "{run:?}"
    );
    assert_eq!(failed_attempts(&run), 3, "{run:?}");
    let delays = restart_delays(&run);
    assert_eq!(delays.len(), 3, "{run:?}");
    assert!(
        delays.iter().all(|&(chosen, _)| chosen == 0.3),
        "{delays:?}"
    );
    waited_at_least_the_chosen_delays(&delays);
    output_is_exact(&scratch);
}

#[test]
fn fixed_delay_with_too_few_attempts_fails_after_attempts_plus_one_runs() {
    let scratch = Scratch::new("fixed-short");
    let run = flaky(
        &scratch,
        "error",
        100,
        5,
        &[
            "restart-strategy.type=fixed-delay",
            "restart-strategy.fixed-delay.attempts=2",
            "restart-strategy.fixed-delay.delay=50 ms",
        ],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    // Two restarts logged, then the third run's failure ends it: 3 runs = attempts + 1.
    assert_eq!(failed_attempts(&run), 2, "{run:?}");
    let last = run.last_line();
    assert!(last.contains(" FAILED after "), "{last}");
    assert!(
        last.contains(
            "fixed-delay gave up after 2 restarts (restart-strategy.fixed-delay.attempts = 2)"
        ),
        "{last}"
    );
    assert!(
        last.contains("last failure: count ("),
        "names the root cause: {last}"
    );
    assert!(
        last.contains("flaky: injected error at record 100"),
        "{last}"
    );
}

#[test]
fn no_restart_strategy_fails_on_the_first_failure() {
    let scratch = Scratch::new("none");
    let run = flaky(&scratch, "trap", 100, 1, &["restart-strategy.type=none"]);
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(failed_attempts(&run), 0, "{run:?}");
    assert!(
        run.last_line().contains("restart-strategy.type is none"),
        "{run:?}"
    );
}

#[test]
fn failure_rate_spaced_failures_keep_the_job_alive() {
    let scratch = Scratch::new("rate-spaced");
    // One failure allowed per 200 ms; restarts wait 400 ms, so failures are never bunched.
    let run = flaky(
        &scratch,
        "error",
        100,
        4,
        &[
            "restart-strategy.type=failure-rate",
            "restart-strategy.failure-rate.max-failures-per-interval=1",
            "restart-strategy.failure-rate.failure-rate-interval=200 ms",
            "restart-strategy.failure-rate.delay=400 ms",
        ],
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(failed_attempts(&run), 4, "{run:?}");
    output_is_exact(&scratch);
}

#[test]
fn failure_rate_bunched_failures_fail_the_job() {
    let scratch = Scratch::new("rate-bunched");
    let run = flaky(
        &scratch,
        "error",
        100,
        10,
        &[
            "restart-strategy.type=failure-rate",
            "restart-strategy.failure-rate.max-failures-per-interval=2",
            "restart-strategy.failure-rate.failure-rate-interval=1 min",
            "restart-strategy.failure-rate.delay=20 ms",
        ],
    );
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(failed_attempts(&run), 2, "{run:?}");
    assert!(
        run.last_line()
            .contains("failure-rate gave up: 3 failures within 1m"),
        "{run:?}"
    );
}

#[test]
fn exponential_delay_grows_by_the_multiplier_up_to_the_cap() {
    let scratch = Scratch::new("exponential");
    let run = flaky(
        &scratch,
        "error",
        100,
        5,
        &[
            "restart-strategy.type=exponential-delay",
            "restart-strategy.exponential-delay.initial-backoff=100 ms",
            "restart-strategy.exponential-delay.backoff-multiplier=2",
            "restart-strategy.exponential-delay.max-backoff=400 ms",
            "restart-strategy.exponential-delay.jitter-factor=0.1",
        ],
    );
    assert!(run.success(), "{run:?}");
    let delays = restart_delays(&run);
    let expected = [0.1, 0.2, 0.4, 0.4, 0.4];
    assert_eq!(delays.len(), expected.len(), "{run:?}");
    for (&(chosen, _), base) in delays.iter().zip(expected) {
        // Jitter keeps each delay within ±10% of its backoff.
        assert!(
            chosen >= base * 0.9 - 1e-9 && chosen <= base * 1.1 + 1e-9,
            "{delays:?}"
        );
    }
    waited_at_least_the_chosen_delays(&delays);
    output_is_exact(&scratch);
}

#[test]
fn endless_loop_and_memory_bomb_are_stopped_and_restarted() {
    for (mode, setting) in [
        ("loop", "wasm.call-timeout=1 s"),
        ("oom", "wasm.memory-limit=64 mb"),
    ] {
        let scratch = Scratch::new(&format!("guest-{mode}"));
        let run = flaky(
            &scratch,
            mode,
            100,
            1,
            &[
                setting,
                "restart-strategy.type=fixed-delay",
                "restart-strategy.fixed-delay.delay=10 ms",
            ],
        );
        assert!(run.success(), "{mode}: {run:?}");
        assert_eq!(failed_attempts(&run), 1, "{mode}: {run:?}");
        let reported = match mode {
            "loop" => "guest call ran longer than wasm.call-timeout (1s) and was interrupted",
            _ => "guest exceeded wasm.memory-limit (64.00 MiB)",
        };
        assert!(run.stderr.contains(reported), "{mode}: {run:?}");
        output_is_exact(&scratch);
    }
}

#[test]
fn checkpointing_restarts_from_the_latest_checkpoint_by_default() {
    let scratch = Scratch::new("restart-from-checkpoint");
    let input = scratch.join("input.txt");
    let text: String = (0..200_000)
        .map(|i| format!("w{} x{}\n", i % 1013, i % 7))
        .collect();
    std::fs::write(&input, text).unwrap();
    let chk = scratch.join("chk");
    let run = cairn(
        [
            "run".as_ref(),
            job("flaky").as_os_str(),
            "-D".as_ref(),
            "execution.checkpointing.interval=20 ms".as_ref(),
            "-D".as_ref(),
            format!("execution.checkpointing.dir={}", chk.display()).as_ref(),
            "--".as_ref(),
            "--input".as_ref(),
            input.as_os_str(),
            "--output".as_ref(),
            scratch.join("out").as_os_str(),
            // Paced, so that checkpoints complete before the trap on any machine: 300,000
            // words are 150,000 lines, 1.5 s in.
            "--rate=100000".as_ref(),
            "--fail-mode=trap".as_ref(),
            "--fail-at=300000".as_ref(),
            "--fail-attempts=1".as_ref(),
        ],
        None,
        None,
    );
    assert!(run.success(), "{run:?}");
    // No strategy set, checkpointing on: fixed-delay (1 s), restored from a checkpoint.
    assert!(
        run.stderr.contains("fixed-delay strategy, restart 1"),
        "{run:?}"
    );
    assert!(
        run.stderr
            .contains("restarting the job (attempt 2) from checkpoint "),
        "{run:?}"
    );
    output_is_exact(&scratch);
}

#[test]
fn config_precedence_is_file_then_job_code_then_command_line() {
    let scratch = Scratch::new("precedence");
    let file = scratch.join("cairn.yaml");
    std::fs::write(
        &file,
        "restart-strategy:\n  type: failure-rate\n  failure-rate.delay: 7 s\n\
         \x20 failure-rate.failure-rate-interval: 3 min\n\
         execution.checkpointing.interval: 1 s\nexecution.checkpointing.timeout: 1 min\n",
    )
    .unwrap();
    let run = cairn(
        [
            "run".as_ref(),
            test_job("bad-graph").as_os_str(),
            "--print-config".as_ref(),
            "-c".as_ref(),
            file.as_os_str(),
            "-D".as_ref(),
            "restart-strategy.failure-rate.delay=9 s".as_ref(),
            "-D".as_ref(),
            "execution.checkpointing.timeout=2 min".as_ref(),
            "--".as_ref(),
            "--case=ok".as_ref(),
            "--set=restart-strategy.failure-rate.delay=8 s".as_ref(),
            "--set=restart-strategy.type=fixed-delay".as_ref(),
            "--set=execution.checkpointing.timeout=90 s".as_ref(),
            "--set=execution.checkpointing.interval=2 s".as_ref(),
        ],
        None,
        None,
    );
    assert!(run.success(), "{run:?}");
    let line = |key: &str| {
        run.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} missing: {run:?}"))
            .to_owned()
    };
    let file_origin = file.display().to_string();
    // -D beats job code beats the file.
    assert_eq!(
        line("restart-strategy.failure-rate.delay"),
        "restart-strategy.failure-rate.delay = \"9 s\"  (-D)"
    );
    assert_eq!(
        line("execution.checkpointing.timeout"),
        "execution.checkpointing.timeout = \"2 min\"  (-D)"
    );
    // Job code beats the file.
    assert_eq!(
        line("restart-strategy.type"),
        "restart-strategy.type = \"fixed-delay\"  (job code)"
    );
    assert_eq!(
        line("execution.checkpointing.interval"),
        "execution.checkpointing.interval = \"2 s\"  (job code)"
    );
    // The file beats the defaults.
    assert_eq!(
        line("restart-strategy.failure-rate.failure-rate-interval"),
        format!("restart-strategy.failure-rate.failure-rate-interval = \"3 min\"  ({file_origin})")
    );
    assert!(line("restart-strategy.exponential-delay.max-backoff").ends_with("(default)"));
}
