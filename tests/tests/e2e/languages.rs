//! Jobs in every guest language. Python, JavaScript, C, Zig and Go each have a word-count
//! with Rust's args and output contract: each gives the oracle's output at parallelism 1 and
//! 4, splits words exactly as Rust does, and survives the kill loop exactly; and their state
//! (word-count's documented keyed encoding, version 3) carries over to Rust's word-count across a
//! savepoint (Python, Go) and a hot swap (JavaScript).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use cairn_tests::kill_loop::KillLoop;
use cairn_tests::path_str as path;
use cairn_tests::{
    Corpus, Scratch, Session, cairn, check_word_count, committed_files, job, os, savepoint_path,
};

/// About 18k lines, 140k words.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("languages-corpus", 1 << 20, 5_000, 11))
}

fn word_count(lang: &str) -> PathBuf {
    job(&format!("word-count-{lang}"))
}

/// `cairn run <wasm> -p <p> [extra] -- --input <input> --output <out>`.
fn run_args(
    wasm: &Path,
    parallelism: u32,
    extra: &[&str],
    input: &Path,
    out: &Path,
) -> Vec<OsString> {
    let mut args = os(&["run", path(wasm), "-p", &parallelism.to_string()]);
    args.extend(os(extra));
    args.extend(os(&["--", "--input", path(input), "--output", path(out)]));
    args
}

/// The language's word-count at parallelism 1 and 4: exactly the oracle's output.
fn oracle_at_p1_and_p4(lang: &str) {
    let scratch = Scratch::new(&format!("oracle-{lang}"));
    for parallelism in [1, 4] {
        let out = scratch.join(&format!("out-p{parallelism}"));
        let run = cairn(
            run_args(&word_count(lang), parallelism, &[], &corpus().path, &out),
            None,
            None,
        );
        assert!(run.success(), "{lang} -p {parallelism}: {run:?}");
        assert!(run.last_line().contains(" FINISHED "), "{run:?}");
        let report = check_word_count(&corpus().counts, &out).unwrap();
        assert!(report.is_exact(), "{lang} -p {parallelism}: {report:?}");
        assert_eq!(report.lines, corpus().words());
    }
}

/// Ten `kill -9` at random moments, resuming from the latest checkpoint: exact output.
fn kill_loop(lang: &str, seed: u64) {
    let scratch = Scratch::new(&format!("kill-{lang}-chk"));
    let dir = path(scratch.path()).to_owned();
    let wasm = word_count(lang);
    let report = KillLoop {
        name: &format!("kill-{lang}"),
        job: &wasm,
        job_args: &[],
        parallelism: 2,
        mode: "EXACTLY_ONCE",
        dir: &dir,
        store: &[],
        seed,
        // Long enough for a start-up and a checkpoint in the slower language runtimes;
        // at 1000 lines/s the killed attempts read at most a third of the corpus.
        kill_after: 250..600,
        killed_rate: 1_000,
    }
    .run_word_count(corpus());
    assert!(report.is_exact(), "{lang}: {report:?}");
    assert_eq!(report.lines, corpus().words());
}

/// Every Unicode whitespace character separates words, and nothing else does — the
/// near-misses other languages' `split` treat as whitespace (U+001C–U+001F, U+FEFF, U+200B,
/// U+180E) stay inside words: the same output as Rust's word-count.
fn splits_as_rust_does(lang: &str) {
    let scratch = Scratch::new(&format!("split-{lang}"));
    let input = scratch.join("input.txt");
    let whitespace = [
        "\t", "\u{b}", "\u{c}", "\r", " ", "\u{85}", "\u{a0}", "\u{1680}", "\u{2000}", "\u{2005}",
        "\u{200a}", "\u{2028}", "\u{2029}", "\u{202f}", "\u{205f}", "\u{3000}",
    ];
    let not_whitespace = [
        "\u{1c}", "\u{1d}", "\u{1e}", "\u{1f}", "\u{feff}", "\u{200b}", "\u{180e}",
    ];
    let mut text = String::new();
    for (i, space) in whitespace.iter().enumerate() {
        text.push_str(&format!("a{i}{space}b{space}{space}a{i}\n"));
    }
    for (i, glue) in not_whitespace.iter().enumerate() {
        text.push_str(&format!("x{i}{glue}y b\n\n"));
    }
    text.push_str("naïve 日本語 🚀rocket\r\nlast line without end");
    std::fs::write(&input, &text).unwrap();

    let output = |wasm: &Path, name: &str| {
        let out = scratch.join(name);
        let run = cairn(run_args(wasm, 1, &[], &input, &out), None, None);
        assert!(run.success(), "{name}: {run:?}");
        let mut lines: Vec<String> = committed_files(&out)
            .unwrap()
            .iter()
            .flat_map(|file| {
                let text = std::fs::read_to_string(file).unwrap();
                text.lines().map(str::to_owned).collect::<Vec<_>>()
            })
            .collect();
        lines.sort();
        lines
    };
    let expected = output(&job("word-count"), "rust");
    assert!(expected.iter().any(|l| l == "x0\u{1c}y\t1"), "{expected:?}");
    assert_eq!(output(&word_count(lang), lang), expected, "{lang}");
}

fn language(lang: &str, seed: u64) {
    oracle_at_p1_and_p4(lang);
    splits_as_rust_does(lang);
    kill_loop(lang, seed);
}

#[test]
fn python() {
    language("py", 21);
}

#[test]
fn javascript() {
    language("js", 22);
}

#[test]
fn c() {
    language("c", 23);
}

#[test]
fn zig() {
    language("zig", 24);
}

#[test]
fn go() {
    language("go", 25);
}

/// Lines per second of the paced runs the upgrades happen in.
const RATE: &str = "4000";

/// `word-count-<lang>` paced at [`RATE`] with checkpoints every 100 ms into `chk`.
fn paced(wasm: &Path, id: &str, chk: &Path, out: &Path) -> Vec<OsString> {
    let chk_dir = format!("execution.checkpointing.dir={}", path(chk));
    let extra = [
        "--job-id",
        id,
        "-D",
        "execution.checkpointing.interval=100 ms",
        "-D",
        &chk_dir,
    ];
    let mut args = run_args(wasm, 2, &extra, &corpus().path, out);
    args.extend(os(&["--rate", RATE]));
    args
}

/// Python's word-count stops with a savepoint mid-stream at p=2; Rust's word-count-v2 (which
/// reads the shared version 3 encoding) resumes from it at p=3: exactly the oracle's output.
#[test]
fn python_to_rust_across_a_savepoint() {
    to_rust_across_a_savepoint("py", "9e", "9f");
}

/// The same from Go's word-count.
#[test]
fn go_to_rust_across_a_savepoint() {
    to_rust_across_a_savepoint("go", "6e", "6f");
}

/// `lang`'s word-count stops with a savepoint mid-stream at p=2 (job id `from` repeated);
/// Rust's word-count-v2 resumes from it at p=3 (job id `to` repeated): exactly the oracle's
/// output.
fn to_rust_across_a_savepoint(lang: &str, from: &str, to: &str) {
    let name = format!("{lang}-to-rust");
    let (session, scratch) = (Session::new(&name), Scratch::new(&name));
    let (id, out) = (from.repeat(16), scratch.join("out"));
    let mut guest = session.start(paced(&word_count(lang), &id, &scratch.join("chk"), &out));
    guest.wait_for_progress(3_000);

    let sp = scratch.join("savepoints");
    let stop = session.cli(os(&["stop", "--savepoint-path", path(&sp), &id]));
    assert!(stop.success(), "{stop:?}");
    let savepoint = savepoint_path(&stop.stdout);
    assert_eq!(guest.wait(), Some(0), "{}", guest.stderr());
    let partial = check_word_count(&corpus().counts, &out).unwrap();
    assert!(
        partial.missing > 0 && partial.duplicated == 0,
        "stopped mid-stream: {partial:?}"
    );

    // At another parallelism: the keyed state splits by key group.
    let extra = ["--job-id", &to.repeat(16), "-s", path(&savepoint)];
    let rust = cairn(
        run_args(&job("word-count-v2"), 3, &extra, &corpus().path, &out),
        None,
        None,
    );
    assert!(rust.success(), "{rust:?}");
    let report = check_word_count(&corpus().counts, &out).unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.lines, corpus().words());
}

/// JavaScript's word-count is swapped for Rust's in place, mid-stream: every count subtask
/// restores the JavaScript state into the Rust code, and the output is exactly the oracle's.
#[test]
fn javascript_to_rust_by_hot_swap() {
    let (session, scratch) = (Session::new("js-to-rust"), Scratch::new("js-to-rust"));
    let (id, out) = ("15".repeat(16), scratch.join("out"));
    let mut js = session.start(paced(&word_count("js"), &id, &scratch.join("chk"), &out));
    js.wait_for_progress(3_000);

    let rust = job("word-count-v2");
    let swap = session.cli(os(&["swap", &id, path(&rust)]));
    assert!(swap.success(), "{swap:?}");
    assert!(
        swap.stdout
            .ends_with(&format!("Swapped: job {id} runs {} now.\n", rust.display())),
        "{swap:?}"
    );
    assert_eq!(js.wait(), Some(0), "{}", js.stderr());
    assert!(js.stdout().contains(" FINISHED "), "{}", js.stdout());
    let report = check_word_count(&corpus().counts, &out).unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.lines, corpus().words());
}
