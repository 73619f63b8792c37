//! Rescaling: word-count's keyed state moves between parallelisms across savepoints and
//! retained checkpoints, with `kill -9` in between, and the committed output is exactly the
//! oracle's; keyed-sum's generator positions move with their splits; a changed max
//! parallelism is refused, naming both values; `cairn state` reads a savepoint's keyed state
//! without the job, exactly as the oracle predicts.

use std::ffi::OsString;
use std::path::Path;
use std::sync::OnceLock;

use cairn_api::JobDetailsInfo;
use cairn_tests::kill_loop::wait_for_checkpoint;
use cairn_tests::path_str as path;
use cairn_tests::{
    Corpus, RunningJob, Scratch, Session, cairn, check_word_count, job, os, run_checkpointed,
    word_count_args,
};

/// Lines per second of the legs that are stopped or killed mid-stream.
const RATE: &str = "3000";

/// About 25k lines: eight seconds at [`RATE`].
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("rescale-corpus", 1 << 20, 4_000, 21))
}

/// `cairn run <wasm> -p <p> --job-id <id>` (a word count), checkpointing every 100 ms into
/// `chk`, with `extra` options; paced at [`RATE`] unless `to_the_end`.
fn leg(
    wasm: &Path,
    p: u32,
    id: &str,
    chk: &Path,
    out: &Path,
    extra: &[&str],
    to_the_end: bool,
) -> Vec<OsString> {
    let mut args = run_checkpointed(wasm, p, id, chk);
    args.extend(os(extra));
    args.extend(word_count_args(
        &corpus().path,
        out,
        (!to_the_end).then_some(RATE),
    ));
    args
}

/// Waits until `job` has read `lines` more and its folder has a checkpoint, then kills it.
fn kill_after(job: &mut RunningJob, lines: u64, job_folder: &Path) {
    job.wait_for_progress(lines);
    wait_for_checkpoint(path(job_folder));
    job.kill();
}

/// Rust's word-count at p=2 → savepoint → `middle` (a word count) at p=3, killed twice and
/// resumed from the job's checkpoint folder → savepoint → Rust's at p=1 to the end: exactly
/// the oracle's output, and `cairn inspect` shows the key groups each leg's subtasks owned.
/// `ids` gives the legs' job ids (two hex digits each).
fn rescales_across_savepoints_and_kills_exactly(name: &str, middle: &Path, ids: [&str; 3]) {
    let (session, scratch) = (Session::new(name), Scratch::new(name));
    let (out, chk, sp) = (scratch.join("out"), scratch.join("chk"), scratch.join("sp"));
    let [first, second, third] = ids.map(|id| id.repeat(16));
    let rust = job("word-count");

    let mut two = session.start(leg(&rust, 2, &first, &chk, &out, &[], false));
    two.wait_for_progress(2_000);
    let at_two = session.stop_with_savepoint(&mut two, &sp);
    let inspect = cairn(os(&["inspect", &at_two]), None, None);
    assert!(inspect.success(), "{inspect:?}");
    for range in ["key groups 0..=63", "key groups 64..=127"] {
        assert!(inspect.stdout.contains(range), "{range}: {inspect:?}");
    }

    let mut three = session.start(leg(middle, 3, &second, &chk, &out, &["-s", &at_two], false));
    let job_folder = chk.join(&second);
    kill_after(&mut three, 1_500, &job_folder);
    for _ in 0..2 {
        let mut resumed = session.start(leg(
            middle,
            3,
            &second,
            &chk,
            &out,
            &["-s", path(&job_folder)],
            false,
        ));
        kill_after(&mut resumed, 1_000, &job_folder);
    }
    let mut last_at_three = session.start(leg(
        middle,
        3,
        &second,
        &chk,
        &out,
        &["-s", path(&job_folder)],
        false,
    ));
    last_at_three.wait_for_progress(500);
    let at_three = session.stop_with_savepoint(&mut last_at_three, &sp);
    let inspect = cairn(os(&["inspect", "--key-groups", &at_three]), None, None);
    for range in [
        "key groups 0..=42",
        "key groups 43..=85",
        "key groups 86..=127",
    ] {
        assert!(inspect.stdout.contains(range), "{range}: {inspect:?}");
    }
    assert!(inspect.stdout.contains("count/2.state"), "{inspect:?}");
    let partial = check_word_count(&corpus().counts, &out).unwrap();
    assert!(
        partial.missing > 0 && partial.duplicated == 0,
        "stopped mid-stream: {partial:?}"
    );

    let one = cairn(
        leg(&rust, 1, &third, &chk, &out, &["-s", &at_three], true),
        None,
        None,
    );
    assert!(
        one.success() && one.last_line().contains("FINISHED"),
        "{one:?}"
    );
    corpus().assert_exact(&out);
}

#[test]
fn word_count_rescales_across_savepoints_and_kills_exactly() {
    rescales_across_savepoints_and_kills_exactly("rescale", &job("word-count"), ["1a", "1b", "1c"]);
}

/// The same with Python's word count in the middle: its keyed state (word count's version 3,
/// as Rust's) splits and merges as Rust's does.
#[test]
fn python_in_the_middle_leg_rescales_exactly() {
    rescales_across_savepoints_and_kills_exactly(
        "rescale-py",
        &job("word-count-py"),
        ["d1", "d2", "d3"],
    );
}

/// From retained checkpoints (kill -9 keeps them): up from p=2 to p=4, which is the max
/// parallelism, then down to 1; a restore with another max parallelism is refused by name.
#[test]
fn rescaling_from_retained_checkpoints_up_to_max_parallelism_and_down() {
    let (session, scratch) = (Session::new("rescale-chk"), Scratch::new("rescale-chk"));
    let (out, chk) = (scratch.join("out"), scratch.join("chk"));
    let id = "2d".repeat(16);
    let job_folder = chk.join(&id);
    let max = ["-D", "pipeline.max-parallelism=4"];
    let resume = |extra: &[&str]| {
        let mut all = vec!["-s", path(&job_folder)];
        all.extend(extra);
        all.into_iter().map(str::to_owned).collect::<Vec<_>>()
    };

    let mut two = session.start(leg(&job("word-count"), 2, &id, &chk, &out, &max, false));
    kill_after(&mut two, 2_000, &job_folder);
    let args = resume(&max);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut four = session.start(leg(&job("word-count"), 4, &id, &chk, &out, &args, false));
    kill_after(&mut four, 2_000, &job_folder);

    let inspect = cairn(os(&["inspect", path(&job_folder)]), None, None);
    assert!(inspect.stdout.contains("key groups: 4"), "{inspect:?}");
    let other_max = resume(&["-D", "pipeline.max-parallelism=8"]);
    let other_max: Vec<&str> = other_max.iter().map(String::as_str).collect();
    let refused = cairn(
        leg(&job("word-count"), 2, &id, &chk, &out, &other_max, true),
        None,
        None,
    );
    assert!(!refused.success(), "{refused:?}");
    assert!(
        refused.stderr.contains(
            "the checkpoint was taken with pipeline.max-parallelism 4, this job runs with 8"
        ),
        "{refused:?}"
    );
    let too_many = cairn(
        leg(&job("word-count"), 5, &id, &chk, &out, &args, true),
        None,
        None,
    );
    assert!(
        too_many.stderr.contains(
            "invalid value '5' for parallelism.default (from -p): expected at most \
                       pipeline.max-parallelism"
        ),
        "{too_many:?}"
    );

    let one = cairn(
        leg(&job("word-count"), 1, &id, &chk, &out, &args, true),
        None,
        None,
    );
    assert!(
        one.success() && one.last_line().contains("FINISHED"),
        "{one:?}"
    );
    corpus().assert_exact(&out);
}

/// keyed-sum over the generator, killed at p=2 and resumed from its checkpoint at p=3: the
/// generator's split positions and the sums move to their new subtasks, and every record is
/// summed and written exactly once.
#[test]
fn keyed_sum_rescales_its_source_and_state_exactly() {
    let scratch = Scratch::new("rescale-sum");
    let (out, chk) = (scratch.join("out"), scratch.join("chk"));
    let (records, keys) = (300_000u64, 97u64);
    let id = "3e".repeat(16);
    let run = |p: u32, resume: bool, rate: u64| {
        let mut args = os(&["run", path(&job("keyed-sum")), "-p", &p.to_string()]);
        args.extend(os(&[
            "--job-id",
            &id,
            "-D",
            "execution.checkpointing.interval=100 ms",
        ]));
        args.extend(os(&[
            "-D",
            &format!("execution.checkpointing.dir={}", path(&chk)),
        ]));
        if resume {
            args.extend(os(&["-s", path(&chk.join(&id))]));
        }
        args.extend(os(&[
            "--",
            &format!("--records={records}"),
            &format!("--keys={keys}"),
        ]));
        args.extend(os(&["--rate", &rate.to_string(), "--output", path(&out)]));
        args
    };
    let mut two = cairn_tests::spawn_cairn(run(2, false, 50_000));
    wait_for_checkpoint(path(&chk.join(&id)));
    std::thread::sleep(std::time::Duration::from_millis(300));
    two.kill().unwrap();
    two.wait().unwrap();
    let three = cairn(run(3, true, 0), None, None);
    assert!(
        three.success() && three.last_line().contains("FINISHED"),
        "{three:?}"
    );
    cairn_tests::check_keyed_sum(&out, records, keys);
}

/// `cairn state` on a savepoint of word-count lists exactly the words and counts of the
/// input prefix the savepoint's source had read (its offset says which), and `--key` reads
/// one key's key group only.
#[test]
fn cairn_state_lists_exactly_the_counts_of_the_prefix_read() {
    let (session, scratch) = (Session::new("state-tool"), Scratch::new("state-tool"));
    let (out, chk, sp) = (scratch.join("out"), scratch.join("chk"), scratch.join("sp"));
    let id = "4f".repeat(16);
    let mut running = session.start(leg(&job("word-count"), 2, &id, &chk, &out, &[], false));
    running.wait_for_progress(2_000);
    let savepoint = session.stop_with_savepoint(&mut running, &sp);

    let inspect = cairn(os(&["inspect", &savepoint]), None, None);
    let offset: usize = inspect
        .stdout
        .split("file offset ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no source offset: {inspect:?}"));
    let text = std::fs::read(&corpus().path).unwrap();
    let prefix = scratch.join("prefix.txt");
    std::fs::write(&prefix, &text[..offset]).unwrap();
    let expected = cairn_tests::word_counts(&prefix).unwrap();

    let listed = cairn(os(&["state", &savepoint, "--uid", "count"]), None, None);
    assert!(listed.success(), "{listed:?}");
    let mut lines = listed.stdout.lines();
    let summary = lines.next().unwrap();
    assert!(
        summary.starts_with("# count: parallelism 2, state version 3")
            && summary.contains(&format!("{} key(s), values u64-le", expected.len())),
        "{summary}"
    );
    let mut counts = std::collections::HashMap::new();
    for line in lines {
        let mut fields = line.split('\t');
        assert_eq!(fields.next(), Some("count"), "{line}");
        let word = fields.next().unwrap().to_owned();
        let n: u64 = fields.next().unwrap().parse().unwrap();
        assert!(counts.insert(word, n).is_none(), "each key once: {line}");
    }
    assert_eq!(counts, expected);

    let (word, n) = expected.iter().next().unwrap();
    let one = cairn(
        os(&["state", &savepoint, "--key", word, "--json"]),
        None,
        None,
    );
    let entries: Vec<serde_json::Value> = one
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &serde_json::Value| v["type"] == "entry")
        .collect();
    assert_eq!(entries.len(), 1, "{one:?}");
    assert_eq!(entries[0]["key"], word.as_str());
    assert_eq!(entries[0]["value"], *n);
}

/// A `cairn:job@0.2.0` component (the C word count as it was built before the SDKs moved
/// on, kept in `tests/fixtures/contract-0.2.0`) still runs, is killed and resumes at its own
/// parallelism; its savepoint is refused at another one, naming the contract; Rust's
/// `word-count-v2` migrates its state (version 2) into keyed state at the same parallelism,
/// and from there the job rescales: exactly the oracle's output.
#[test]
fn a_contract_0_2_0_component_runs_and_hands_its_state_to_0_3_0() {
    let (session, scratch) = (
        Session::new("contract-0.2.0"),
        Scratch::new("contract-0.2.0"),
    );
    let (out, chk, sp) = (scratch.join("out"), scratch.join("chk"), scratch.join("sp"));
    let old = cairn_tests::workspace_root().join("tests/fixtures/contract-0.2.0/word-count-c.wasm");
    let [first, second, third] = ["e1", "e2", "e3"].map(|id| id.repeat(16));

    let job_folder = chk.join(&first);
    let mut killed = session.start(leg(&old, 2, &first, &chk, &out, &[], false));
    kill_after(&mut killed, 1_500, &job_folder);
    let mut resumed = session.start(leg(
        &old,
        2,
        &first,
        &chk,
        &out,
        &["-s", path(&job_folder)],
        false,
    ));
    resumed.wait_for_progress(1_000);
    // Rescaled in place, it stops with a savepoint that cannot be split, and resumes from
    // it at its own parallelism.
    let rescale = session.cli(os(&["rescale", &first, "3", "-p", path(&sp)]));
    assert!(
        !rescale.success()
            && rescale.stderr.contains("cairn:job@0.2.0")
            && rescale
                .stderr
                .contains("the job resumes at parallelism 2 from"),
        "{rescale:?}"
    );
    assert_eq!(parallelisms(&resumed), [1, 2, 2, 2]);
    resumed.wait_for_progress(1_500);
    let savepoint = session.stop_with_savepoint(&mut resumed, &sp);

    let refused = cairn(
        leg(&old, 3, &first, &chk, &out, &["-s", &savepoint], true),
        None,
        None,
    );
    assert!(
        !refused.success()
            && refused.stderr.contains(
                "cannot restore 'count' at parallelism 3: its state was written by a \
                 cairn:job@0.2.0 component"
            ),
        "{refused:?}"
    );

    let v2 = job("word-count-v2");
    let mut migrated = session.start(leg(&v2, 2, &second, &chk, &out, &["-s", &savepoint], false));
    migrated.wait_for_progress(1_000);
    let keyed = session.stop_with_savepoint(&mut migrated, &sp);
    assert!(
        migrated.stderr().contains("migrated")
            && migrated.stderr().contains("from state version 2"),
        "{}",
        migrated.stderr()
    );
    let three = cairn(
        leg(&v2, 3, &third, &chk, &out, &["-s", &keyed], true),
        None,
        None,
    );
    assert!(three.success(), "{three:?}");
    corpus().assert_exact(&out);
}

/// The parallelism of each of a running job's vertices, in graph order.
fn parallelisms(job: &RunningJob) -> Vec<u32> {
    let details: JobDetailsInfo = job.get(&format!("/jobs/{}", job.id));
    details.vertices.iter().map(|v| v.parallelism).collect()
}

/// `cairn rescale` changes a running job's parallelism in place (Flink's rescaling: a stop
/// with a savepoint, then a resume from it in the same process), up and down, with
/// checkpoints before and after: the output is exactly the oracle's. A parallelism over
/// the max and the one it runs at are refused, and the job runs on.
#[test]
fn a_running_job_rescales_in_place() {
    let (session, scratch) = (
        Session::new("rescale-in-place"),
        Scratch::new("rescale-in-place"),
    );
    let (out, chk, sp) = (scratch.join("out"), scratch.join("chk"), scratch.join("sp"));
    let id = "f1".repeat(16);
    let mut running = session.start(leg(&job("word-count"), 2, &id, &chk, &out, &[], false));
    running.wait_for_progress(2_000);

    for (p, shape) in [("3", [1, 3, 3, 3]), ("1", [1, 1, 1, 1])] {
        let rescale = session.cli(os(&["rescale", &id, p, "-p", path(&sp)]));
        assert!(
            rescale.success()
                && rescale.stdout.contains(&format!(
                    "Rescaled: job {id} runs at parallelism {p} now (savepoint file://"
                )),
            "{rescale:?}"
        );
        assert_eq!(parallelisms(&running), shape);
        running.wait_for_progress(1_000);
    }
    for (p, refusal) in [
        (
            "129",
            "it must be between 1 and pipeline.max-parallelism (128)",
        ),
        ("1", "runs at parallelism 1 already"),
    ] {
        let refused = session.cli(os(&["rescale", &id, p, "-p", path(&sp)]));
        assert!(
            !refused.success() && refused.stderr.contains(refusal),
            "{refused:?}"
        );
    }
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    corpus().assert_exact(&out);
}

/// A failure after an in-place rescale, before any checkpoint of the rescaled job, restarts
/// from the rescale's savepoint — not from before it, whose output is committed — and the
/// output is exactly the oracle's.
#[test]
fn a_failure_after_a_rescale_restarts_from_its_savepoint() {
    let (session, scratch) = (
        Session::new("rescale-restart"),
        Scratch::new("rescale-restart"),
    );
    let (out, chk, sp) = (scratch.join("out"), scratch.join("chk"), scratch.join("sp"));
    let id = "f2".repeat(16);
    let mut args = leg(
        &job("flaky"),
        2,
        &id,
        &chk,
        &out,
        // No checkpoint but the rescale's savepoint: a restart has only that to go back to.
        &["-D", "execution.checkpointing.interval=1 h"],
        false,
    );
    // Each counter fails at its 3000th record after the rescale, on the first attempt.
    args.extend(os(&[
        "--fail-mode",
        "error",
        "--fail-at",
        "3000",
        "--fail-attempts",
        "1",
    ]));
    let mut running = session.start(args);
    running.wait_for_progress(500);
    let rescale = session.cli(os(&["rescale", &id, "3", "-p", path(&sp)]));
    assert!(rescale.success(), "{rescale:?}");
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    assert!(
        running.stdout().contains("1 restart"),
        "{}",
        running.stdout()
    );
    corpus().assert_exact(&out);
}
