//! Connectors end to end: generator → by-key → file sink (keyed-sum), stdin → stdout
//! (word-count), and file sinks that never overwrite committed output.

use cairn_tests::{Scratch, cairn, committed_files, job};

/// keyed-sum emits `key\tsum` for every record; per key the sums are the running totals of
/// the values i ≡ k (mod keys), so the largest one is the key's total.
#[test]
fn keyed_sum_over_the_generator_is_exact_in_parallel() {
    let scratch = Scratch::new("keyed-sum");
    let output = scratch.join("out");
    let (records, keys) = (200_000u64, 97u64);
    let run = cairn(
        [
            "run".as_ref(),
            job("keyed-sum").as_os_str(),
            "-p".as_ref(),
            "2".as_ref(),
            "--".as_ref(),
            format!("--records={records}").as_ref(),
            format!("--keys={keys}").as_ref(),
            "--output".as_ref(),
            output.as_os_str(),
        ],
        None,
        None,
    );
    assert!(run.success(), "{run:?}");
    assert_eq!(
        run.last_line().split_once(" (").map(|(_, counts)| counts),
        Some(format!("{records} records read, {records} written)").as_str()),
        "{run:?}"
    );

    cairn_tests::check_keyed_sum(&output, records, keys);
}

#[test]
fn word_count_reads_stdin_and_writes_stdout() {
    let run = cairn(
        [
            "run",
            job("word-count").to_str().unwrap(),
            "--",
            "--input",
            "-",
            "--output",
            "-",
        ],
        None,
        Some("to be or\nnot  to be\n".as_bytes()),
    );
    assert!(run.success(), "{run:?}");
    let mut lines: Vec<&str> = run.stdout.lines().collect();
    let status = lines.pop().unwrap();
    assert!(status.contains(" FINISHED in "), "{status}");
    assert!(
        lines
            .remove(0)
            .starts_with("Job has been submitted with JobID ")
    );
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["be\t1", "be\t2", "not\t1", "or\t1", "to\t1", "to\t2"]
    );
}

#[test]
fn file_sink_never_overwrites_committed_parts() {
    let scratch = Scratch::new("no-overwrite");
    let input = scratch.join("in.txt");
    std::fs::write(&input, "x y\n").unwrap();
    let output = scratch.join("out");
    for _ in 0..2 {
        let run = cairn(
            [
                "run".as_ref(),
                job("word-count").as_os_str(),
                "--".as_ref(),
                "--input".as_ref(),
                input.as_os_str(),
                "--output".as_ref(),
                output.as_os_str(),
            ],
            None,
            None,
        );
        assert!(run.success(), "{run:?}");
    }
    let names: Vec<String> = committed_files(&output)
        .unwrap()
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names, ["part-out-0-0", "part-out-0-1"]);
}

#[test]
fn config_file_in_the_working_folder_is_read() {
    let scratch = Scratch::new("cwd-config");
    // Enough distinct words that every one of three counter subtasks gets some.
    let words: Vec<String> = (0..200).map(|i| format!("w{i}")).collect();
    std::fs::write(scratch.join("in.txt"), words.join(" ")).unwrap();
    // A forward edge between nodes of different parallelism proves the file was applied:
    // the file source has parallelism 1, so parallelism.default 1 must come from the file.
    std::fs::write(scratch.join("cairn.yaml"), "parallelism: {default: 3}\n").unwrap();
    let run = cairn(
        [
            "run",
            job("word-count").to_str().unwrap(),
            "--",
            "--input",
            "in.txt",
            "--output",
            "out",
        ],
        Some(scratch.path()),
        None,
    );
    assert!(run.success(), "{run:?}");
    let parts = committed_files(&scratch.join("out")).unwrap();
    assert_eq!(parts.len(), 3, "three sink subtasks: {parts:?}");
}
