//! The word-count oracle, end to end through the real binary: a generated text of more than
//! 50 MB, at parallelism 1 and 4, must produce exactly every `w\tn` for n = 1..count(w).

use std::sync::OnceLock;

use cairn_tests::{Corpus, Scratch, cairn, check_word_count, job};

/// One 56 MB text shared by the tests of this file.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let corpus = Corpus::new("word-count-corpus", 56 << 20, 300_000, 2026);
        assert!(std::fs::metadata(&corpus.path).unwrap().len() >= 50_000_000);
        corpus
    })
}

fn run_word_count(parallelism: u32) {
    let corpus = corpus();
    let scratch = Scratch::new(&format!("word-count-p{parallelism}"));
    let output = scratch.join("out");
    let run = cairn(
        [
            "run".as_ref(),
            job("word-count").as_os_str(),
            "-p".as_ref(),
            parallelism.to_string().as_ref(),
            "--".as_ref(),
            "--input".as_ref(),
            corpus.path.as_os_str(),
            "--output".as_ref(),
            output.as_os_str(),
        ],
        None,
        None,
    );
    assert!(run.success(), "{run:?}");
    assert!(
        run.stdout.starts_with("Job has been submitted with JobID "),
        "{run:?}"
    );
    assert!(run.last_line().contains(" FINISHED in "), "{run:?}");

    let report = check_word_count(&corpus.counts, &output).unwrap();
    assert_eq!(report.lines, corpus.words(), "{report:?}");
    assert!(report.is_exact(), "{report:?}");

    // One committed part file per sink subtask, nothing in progress left behind.
    let mut names: Vec<String> = std::fs::read_dir(&output)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let expected_names: Vec<String> = (0..parallelism)
        .map(|s| format!("part-out-{s}-0"))
        .collect();
    assert_eq!(names, expected_names);
}

#[test]
fn oracle_exact_at_parallelism_1() {
    run_word_count(1);
}

#[test]
fn oracle_exact_at_parallelism_4() {
    run_word_count(4);
}
