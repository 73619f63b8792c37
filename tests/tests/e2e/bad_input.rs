//! Bad input gets one clear line naming the file and the problem, and a non-zero exit.

use std::ffi::OsString;
use std::path::Path;

use cairn_tests::{Finished, Scratch, cairn, job, test_job};

fn run(args: &[&dyn AsRef<std::ffi::OsStr>]) -> Finished {
    let args: Vec<OsString> = std::iter::once(OsString::from("run"))
        .chain(args.iter().map(|a| a.as_ref().to_owned()))
        .collect();
    cairn(args, None, None)
}

/// The run failed before the job was submitted, with exactly one line on stderr.
fn refused(run: Finished) -> String {
    assert_eq!(run.code, Some(1), "{run:?}");
    assert_eq!(run.stdout, "", "nothing is submitted: {run:?}");
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(lines.len(), 1, "one error line: {run:?}");
    lines[0].to_owned()
}

/// The job was submitted, then failed: the last stdout line says why.
fn failed(run: Finished) -> String {
    assert_eq!(run.code, Some(1), "{run:?}");
    assert!(
        run.stdout.starts_with("Job has been submitted with JobID "),
        "{run:?}"
    );
    run.last_line().to_owned()
}

#[test]
fn missing_job_file() {
    let line = refused(run(&[&"no/such/job.wasm"]));
    assert_eq!(
        line,
        "cairn: cannot read no/such/job.wasm: No such file or directory (os error 2)"
    );
}

#[test]
fn file_that_is_not_wasm() {
    let scratch = Scratch::new("not-wasm");
    let path = scratch.join("job.wasm");
    std::fs::write(&path, "#!/bin/sh\necho hello\n").unwrap();
    let line = refused(run(&[&path]));
    assert_eq!(
        line,
        format!(
            "cairn: {} is not a WebAssembly file (it does not start with the \\0asm magic bytes)",
            path.display()
        )
    );
}

#[test]
fn core_module_instead_of_component() {
    let scratch = Scratch::new("core-module");
    let path = scratch.join("module.wasm");
    // The smallest valid core module: magic and version 1.
    std::fs::write(&path, b"\0asm\x01\0\0\0").unwrap();
    let line = refused(run(&[&path]));
    assert!(
        line.contains("module.wasm is a core WebAssembly module, not a component"),
        "{line}"
    );
    assert!(line.contains("wasm32-wasip2"), "{line}");
}

#[test]
fn component_of_another_world() {
    let path = test_job("not-a-job");
    let line = refused(run(&[&path]));
    assert_eq!(
        line,
        format!(
            "cairn: {} is not a Cairn job: it exports none of `cairn:job/job@0.4.0`, \
             `cairn:job/job@0.3.0` and `cairn:job/job@0.2.0` (its exports: wasi:cli/run@0.2.0)",
            path.display()
        )
    );
}

#[test]
fn truncated_component() {
    let scratch = Scratch::new("truncated");
    let path = scratch.join("half.wasm");
    let bytes = std::fs::read(job("word-count")).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let line = refused(run(&[&path]));
    assert!(
        line.starts_with(&format!(
            "cairn: {} is not a valid WebAssembly component",
            path.display()
        )),
        "{line}"
    );
}

#[test]
fn describe_error_shows_the_jobs_message() {
    let path = job("word-count");
    let line = refused(run(&[&path, &"--", &"--output", &"out"]));
    assert_eq!(
        line,
        format!(
            "cairn: {}: the job refused to start: missing required argument --input",
            path.display()
        )
    );
}

fn bad_graph(case: &str) -> String {
    let path = test_job("bad-graph");
    let run = run(&[&path, &"--", &"--case", &case]);
    let line = refused(run);
    let prefix = format!("cairn: {}: invalid job graph: ", path.display());
    line.strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{line:?} does not start with {prefix:?}"))
        .to_owned()
}

#[test]
fn graph_with_unknown_input() {
    assert_eq!(
        bad_graph("unknown-input"),
        "node 'b' reads from 'nowhere', which is not a node of the graph"
    );
}

#[test]
fn graph_with_cycle() {
    assert_eq!(
        bad_graph("cycle"),
        "the job graph has a cycle through: a, b, out"
    );
}

#[test]
fn graph_reading_a_side_output_of_a_source() {
    assert_eq!(
        bad_graph("side-output-of-source"),
        "node 'a' reads side output 'late' of source 'numbers'; only operators emit to side \
         outputs"
    );
}

#[test]
fn graph_with_duplicate_uid() {
    assert_eq!(
        bad_graph("duplicate-uid"),
        "the job graph has two nodes with uid 'a'"
    );
}

#[test]
fn graph_with_unknown_connector() {
    assert_eq!(
        bad_graph("unknown-connector"),
        "node 'out' uses unknown sink connector 'pulsar' (known: file, stdout, blackhole, kafka)"
    );
}

#[test]
fn graph_naming_an_operator_the_job_lacks() {
    assert_eq!(
        bad_graph("unknown-operator"),
        "node 'a' cannot open operator 'nope': the operator returned an error: this job has no \
         operator named \"nope\""
    );
}

#[test]
fn graph_with_node_without_inputs() {
    assert_eq!(bad_graph("orphan"), "node 'orphan' has no inputs");
}

#[test]
fn unknown_config_key_suggests_the_closest() {
    let path = test_job("bad-graph");
    let line = refused(run(&[
        &path,
        &"-D",
        &"pipeline.max-paralelism=64",
        &"--",
        &"--case",
        &"ok",
    ]));
    assert_eq!(
        line,
        "cairn: unknown config key 'pipeline.max-paralelism' (from -D); did you mean 'pipeline.max-parallelism'?"
    );
    // Set in the job's own code.
    let line = refused(run(&[&path, &"--", &"--case", &"config-typo"]));
    assert_eq!(
        line,
        "cairn: unknown config key 'paralelism.default' (from job code); did you mean 'parallelism.default'?"
    );
    // In a config file: the file is named.
    let scratch = Scratch::new("config-typo");
    let file = scratch.join("cairn.yaml");
    std::fs::write(&file, "wasm:\n  memory-limt: 64 mb\n").unwrap();
    let line = refused(run(&[&path, &"-c", &file, &"--", &"--case", &"ok"]));
    assert_eq!(
        line,
        format!(
            "cairn: unknown config key 'wasm.memory-limt' (from {}); did you mean 'wasm.memory-limit'?",
            file.display()
        )
    );
}

#[test]
fn bad_config_value_names_key_and_origin() {
    let path = test_job("bad-graph");
    let line = refused(run(&[
        &path,
        &"-D",
        &"wasm.call-timeout=soon",
        &"--",
        &"--case",
        &"ok",
    ]));
    assert_eq!(
        line,
        "cairn: invalid value 'soon' for wasm.call-timeout (from -D): expected a duration such as 10 s"
    );
}

#[test]
fn messages_name_what_was_wrong() {
    let path = test_job("bad-graph");
    let line = refused(run(&[&path, &"-p", &"0", &"--", &"--case", &"ok"]));
    assert_eq!(
        line,
        "cairn: invalid value '0' for parallelism.default (from -p): expected a positive integer"
    );
    let line = refused(run(&[
        &path,
        &"-D",
        &"wasm.memory-limit=1 kb",
        &"--",
        &"--case",
        &"ok",
    ]));
    assert!(
        line.contains("expected a memory size of at least 64 kb"),
        "{line}"
    );
    let scratch = Scratch::new("config-shapes");
    let file = scratch.join("cairn.yaml");
    for (text, kind) in [("- a\n- b\n", "a list"), ("words\n", "a single value")] {
        std::fs::write(&file, text).unwrap();
        let line = refused(run(&[&"-c", &file, &path, &"--", &"--case", &"ok"]));
        assert_eq!(
            line,
            format!(
                "cairn: config file {}: expected keys with values (`parallelism.default: 4`), got {kind}",
                file.display()
            )
        );
    }
}

#[test]
fn an_output_folder_that_cannot_be_used_is_refused_before_submission() {
    let scratch = Scratch::new("output-is-a-file");
    let input = scratch.join("input.txt");
    std::fs::write(&input, "a b\n").unwrap();
    let taken = scratch.join("taken");
    std::fs::write(&taken, "a file").unwrap();
    for output in [taken.clone(), taken.join("below")] {
        let line = refused(run(&[
            &job("word-count"),
            &"--",
            &"--input",
            &input,
            &"--output",
            &output,
        ]));
        assert!(
            line.starts_with(&format!(
                "cairn: cannot use output folder {} (sink 'out'): ",
                output.display()
            )),
            "{line}"
        );
    }
    assert_eq!(std::fs::read_to_string(&taken).unwrap(), "a file");
}

#[test]
fn bad_job_id_is_refused() {
    let line = refused(run(&[
        &"--job-id",
        &"XYZ",
        &test_job("bad-graph"),
        &"--",
        &"--case",
        &"ok",
    ]));
    assert_eq!(
        line,
        "cairn: invalid --job-id 'XYZ': expected 32 lowercase hex characters"
    );
}

fn flaky(mode: &str, config: &[&str]) -> Finished {
    let scratch = Scratch::new(&format!("flaky-{mode}"));
    let input = scratch.join("input.txt");
    std::fs::write(&input, "a b c\n".repeat(1000)).unwrap();
    let output = scratch.join("out");
    let mut args: Vec<OsString> = vec!["run".into(), job("flaky").into(), "-p".into(), "2".into()];
    args.extend(config.iter().map(OsString::from));
    args.extend(["--".into(), "--input".into(), input.into_os_string()]);
    args.extend(["--output".into(), output.clone().into_os_string()]);
    args.extend(["--fail-mode".into(), mode.into(), "--fail-at=500".into()]);
    let run = cairn(args, None, None);
    assert_no_committed_output(&output);
    run
}

fn assert_no_committed_output(dir: &Path) {
    if let Ok(files) = cairn_tests::committed_files(dir) {
        assert!(files.is_empty(), "a failed job committed output: {files:?}");
    }
}

#[test]
fn guest_trap_fails_the_job_with_the_panic_message() {
    let line = failed(flaky("trap", &[]));
    assert!(line.contains(" FAILED after "), "{line}");
    assert!(line.contains("count ("), "names the subtask: {line}");
    assert!(
        line.contains("guest trapped: wasm trap: wasm `unreachable` instruction executed"),
        "{line}"
    );
    assert!(
        line.contains("flaky: injected trap at record 500"),
        "{line}"
    );
}

#[test]
fn guest_error_result_fails_the_job() {
    let line = failed(flaky("error", &[]));
    assert!(
        line.ends_with(
            "failed: the operator returned an error: flaky: injected error at record 500"
        ),
        "{line}"
    );
}

#[test]
fn guest_over_its_memory_cap_is_stopped() {
    let line = failed(flaky("oom", &["-D", "wasm.memory-limit=64 mb"]));
    assert!(
        line.ends_with("failed: guest exceeded wasm.memory-limit (64.00 MiB)"),
        "{line}"
    );
}

#[test]
fn guest_in_an_endless_loop_is_interrupted() {
    let line = failed(flaky("loop", &["-D", "wasm.call-timeout=1 s"]));
    assert!(
        line.ends_with(
            "failed: guest call ran longer than wasm.call-timeout (1s) and was interrupted"
        ),
        "{line}"
    );
}

/// Jobs get clocks, randomness and stdio; the filesystem and network imports a toolchain
/// adds are traps naming the call.
#[test]
fn a_job_reaching_for_files_or_network_is_stopped_naming_the_call() {
    let sandbox = test_job("sandbox");
    for (what, call) in [
        ("fs", "the job called `wasi:filesystem/"),
        ("net", "the job called `wasi:sockets/"),
    ] {
        let run = run(&[&sandbox, &"--", &"--try", &what]);
        let line = refused(run);
        assert!(line.contains(call), "{what}: {line}");
        assert!(
            line.contains("jobs have no filesystem, network or other capability"),
            "{line}"
        );
    }
}

#[test]
fn a_jobs_stdout_and_stderr_go_to_the_log_tagged_with_its_task() {
    let run = run(&[&test_job("sandbox"), &"--", &"--try", &"print"]);
    assert!(run.success(), "{run:?}");
    let logged = |text: &str| run.stderr.lines().find(|line| line.contains(text));
    let out = logged("hello from the guest's stdout").unwrap_or_else(|| panic!("{run:?}"));
    assert!(out.contains("INFO") && out.contains("stdout"), "{out}");
    let err = logged("and from its stderr").unwrap_or_else(|| panic!("{run:?}"));
    assert!(err.contains("WARN") && err.contains("stderr"), "{err}");
}
