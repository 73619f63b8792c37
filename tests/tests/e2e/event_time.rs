//! Event time end to end: `windowed-count` (tumbling windows of 1 s over timestamps out of
//! order by up to 500 ms) must write exactly every (window, word, count) the oracle derives
//! from its input — at parallelism 1 and 4, through a `kill -9` loop with exactly-once
//! checkpoints, across a savepoint at another parallelism; late records are dropped and
//! counted (or sent to a side output) while the rest stays exact; an idle source holds event
//! time back unless idleness is set; the watermark metrics rise during a run. Its twins in
//! Python, JavaScript, C, Zig and Go give the same output; processing-time timers fire once
//! across a savepoint at another parallelism.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;

use cairn_tests::kill_loop::KillLoop;
use cairn_tests::path_str as path;
use cairn_tests::windowed::{
    Events, Expected, check_late_output, check_windowed_count, write_events,
};
use cairn_tests::{
    RunningJob, Scratch, Session, cairn, committed_files, eventually, job, os, test_job,
};
use cairn_tests::{run_checkpointed, word_count_args};

const WINDOW: i64 = 1_000;
const MAX_DELAY: &str = "500";

/// A generated event file and what windowed-count must make of it.
struct EventFile {
    _dir: Scratch,
    path: PathBuf,
    expected: Expected,
}

impl EventFile {
    fn new(name: &str, lines: u64, late_every: Option<u64>, seed: u64) -> Self {
        let dir = Scratch::new(name);
        let path = dir.join("events.txt");
        let events = Events {
            lines,
            vocabulary: 800,
            start_ms: 1_765_000_000_000,
            step_ms: 5,
            max_delay_ms: 500,
            late_every,
        };
        let expected = write_events(&path, &events, WINDOW, seed).expect("events written");
        EventFile {
            _dir: dir,
            path,
            expected,
        }
    }

    fn assert_exact(&self, out: &Path) {
        let report = check_windowed_count(&self.expected, out).expect("output read");
        assert!(report.is_exact(), "{report:?}");
        assert_eq!(report.lines as usize, self.expected.lines());
    }
}

/// 60k lines over 300 s of event time, none late.
fn events() -> &'static EventFile {
    static EVENTS: OnceLock<EventFile> = OnceLock::new();
    EVENTS.get_or_init(|| EventFile::new("windowed-events", 60_000, None, 16))
}

/// windowed-count's own arguments besides `--input`, `--output` and `--rate`.
fn windows() -> Vec<&'static str> {
    vec!["--window", "1000", "--max-delay", MAX_DELAY]
}

fn run_to_the_end(parallelism: u32) {
    let scratch = Scratch::new(&format!("windowed-p{parallelism}"));
    let out = scratch.join("out");
    let mut args = os(&["run", path(&job("windowed-count")), "-p"]);
    args.extend(os(&[&parallelism.to_string()]));
    args.extend(word_count_args(&events().path, &out, None));
    args.extend(os(&windows()));
    let run = cairn(args, None, None);
    assert!(run.success(), "{run:?}");
    assert!(run.last_line().contains(" FINISHED in "), "{run:?}");
    events().assert_exact(&out);
}

#[test]
fn windowed_count_is_exact_at_parallelism_1() {
    run_to_the_end(1);
}

#[test]
fn windowed_count_is_exact_at_parallelism_4() {
    run_to_the_end(4);
}

/// Ten `kill -9`s, each attempt resumed from the latest checkpoint: windows, their timers
/// and the watermarks come back as they were, and every window fires exactly once.
#[test]
fn windowed_count_survives_a_kill_loop_exactly_once() {
    let scratch = Scratch::new("windowed-kill-chk");
    let dir = path(scratch.path()).to_owned();
    let out = scratch.join("out");
    let windowed = job("windowed-count");
    let args = windows();
    KillLoop {
        name: "windowed-kill",
        job: &windowed,
        job_args: &args,
        parallelism: 2,
        mode: "EXACTLY_ONCE",
        dir: &dir,
        store: &[],
        seed: 5,
        kill_after: 150..400,
        // 10 kills × 0.4 s × 4000 lines/s: at most 16k of the 60k lines before the last.
        killed_rate: 4_000,
    }
    .run(&events().path, &out);
    events().assert_exact(&out);
}

/// Stopped with a savepoint at parallelism 2, resumed at 3: each key's open windows and
/// their timers move with its key group.
#[test]
fn windowed_count_rescales_across_a_savepoint() {
    let (session, scratch) = (
        Session::new("windowed-rescale"),
        Scratch::new("windowed-rescale"),
    );
    let (out, chk, sp) = (scratch.join("out"), scratch.join("chk"), scratch.join("sp"));
    let windowed = job("windowed-count");
    let leg = |p: u32, id: &str, rate: Option<&str>, from: Option<&str>| {
        let mut args = run_checkpointed(&windowed, p, id, &chk);
        if let Some(savepoint) = from {
            args.extend(os(&["-s", savepoint]));
        }
        args.extend(word_count_args(&events().path, &out, rate));
        args.extend(os(&windows()));
        args
    };
    // 30 s of input at 2000 lines/s, stopped after 5: far from its end on a loaded machine.
    let mut two = session.start(leg(2, &"c1".repeat(16), Some("2000"), None));
    two.wait_for_progress(10_000);
    let savepoint = session.stop_with_savepoint(&mut two, &sp);
    let partial = check_windowed_count(&events().expected, &out).unwrap();
    assert!(
        partial.missing > 0 && partial.duplicated == 0 && partial.unexpected == 0,
        "{partial:?}"
    );

    let mut three = session.start(leg(3, &"c2".repeat(16), None, Some(&savepoint)));
    assert_eq!(three.wait(), Some(0), "{}", three.stderr());
    events().assert_exact(&out);
}

/// windowed-count with standard input as a second source, held open and empty: the job
/// runs until the test closes it.
fn start_with_idle_stdin(
    session: &Session,
    id: &str,
    input: &EventFile,
    out: &Path,
    extra: &[&str],
) -> RunningJob {
    let chk = out.with_file_name("chk");
    let mut args = run_checkpointed(&job("windowed-count"), 2, id, &chk);
    args.extend(word_count_args(&input.path, out, Some("5000")));
    args.extend(os(&windows()));
    args.extend(os(&["--also-stdin"]));
    args.extend(os(extra));
    session.start_with_stdin(args, Stdio::piped())
}

/// Lines with timestamps a day behind the rest are late: dropped, each word counted in
/// `numLateRecordsDropped`, and the other windows still exact. Standard input stays idle
/// meanwhile, and with idleness set the windows fire all the same; the count's input
/// watermark rises as they do.
#[test]
fn late_records_are_dropped_and_counted_and_idleness_lets_windows_fire() {
    let input = EventFile::new("windowed-late-events", 20_000, Some(40), 23);
    let (session, scratch) = (Session::new("windowed-late"), Scratch::new("windowed-late"));
    let out = scratch.join("out");
    let id = "c3".repeat(16);
    // Idleness long enough that the stamping subtasks, busy with the file, never turn idle
    // on a loaded machine (their records would be late once they came back).
    let mut running = start_with_idle_stdin(&session, &id, &input, &out, &["--idleness", "2000"]);
    let count = running.vertex("count");

    let first = eventually("the count's input watermark set", || {
        let watermarks = running.vertex_metric(&count, "currentInputWatermark");
        (watermarks.len() == 2 && watermarks.iter().all(|&w| w > 1.7e12)).then_some(watermarks)
    });
    eventually("the count's input watermark rising", || {
        let now = running.vertex_metric(&count, "currentInputWatermark");
        (now.iter().zip(&first).all(|(now, first)| now > first)).then_some(())
    });
    eventually("windows committed while standard input is idle", || {
        let files = committed_files(&out).ok()?;
        files
            .iter()
            .any(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 0))
            .then_some(())
    });
    let late = input.expected.late.len() as f64;
    assert!(late > 100.0, "{late} late words");
    eventually("every late word counted", || {
        let dropped: f64 = running
            .vertex_metric(&count, "count.numLateRecordsDropped")
            .iter()
            .sum();
        assert!(dropped <= late, "{dropped} dropped, {late} late");
        (dropped == late).then_some(())
    });

    drop(running.child.stdin.take());
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    input.assert_exact(&out);
}

/// Without idleness, the idle standard input holds the count's watermark back: the whole
/// file is read and no window fires, until standard input ends.
#[test]
fn an_idle_source_holds_windows_back_without_idleness() {
    let input = EventFile::new("windowed-idle-events", 5_000, None, 29);
    let (session, scratch) = (Session::new("windowed-idle"), Scratch::new("windowed-idle"));
    let out = scratch.join("out");
    let id = "c4".repeat(16);
    let mut running = start_with_idle_stdin(&session, &id, &input, &out, &[]);
    running.wait_for_progress(5_000);
    let count = running.vertex("count");
    let stamp = running.vertex("stamp");
    eventually("the stamped words all counted in", || {
        let stamped: f64 = running.vertex_metric(&stamp, "numRecordsOut").iter().sum();
        let counted: f64 = running.vertex_metric(&count, "numRecordsIn").iter().sum();
        (stamped > 0.0 && counted == stamped).then_some(())
    });
    // Several checkpoints later, still nothing: no window has fired.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let watermarks = running.vertex_metric(&count, "currentInputWatermark");
    assert!(
        watermarks.len() == 2 && watermarks.iter().all(|&w| w == i64::MIN as f64),
        "{watermarks:?}"
    );
    let committed = committed_files(&out).unwrap_or_default();
    assert!(
        committed
            .iter()
            .all(|f| std::fs::metadata(f).is_ok_and(|m| m.len() == 0)),
        "{committed:?}"
    );

    drop(running.child.stdin.take());
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    input.assert_exact(&out);
}

/// With `--late-output`, late records go to a side output instead: exactly the late words,
/// none counted as dropped, and the windows exact.
#[test]
fn late_records_go_to_the_side_output_the_job_names() {
    let input = EventFile::new("windowed-side-events", 20_000, Some(50), 31);
    let scratch = Scratch::new("windowed-side");
    let (out, late) = (scratch.join("out"), scratch.join("late"));
    let mut args = os(&["run", path(&job("windowed-count")), "-p", "2"]);
    args.extend(word_count_args(&input.path, &out, Some("8000")));
    args.extend(os(&windows()));
    args.extend(os(&["--late-output", path(&late)]));
    let run = cairn(args, None, None);
    assert!(run.success(), "{run:?}");
    input.assert_exact(&out);
    let report = check_late_output(&input.expected, &late).unwrap();
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.lines as usize, input.expected.late.len());
}

/// 20k lines, one in 40 of the second half a day late.
fn late_events() -> &'static EventFile {
    static EVENTS: OnceLock<EventFile> = OnceLock::new();
    EVENTS.get_or_init(|| EventFile::new("windowed-twin-late-events", 20_000, Some(40), 37))
}

/// A windowed-count in any language (Rust's arguments and output), by job name: exact at
/// parallelism 1 and 4, and with late lines (paced, so that event time has moved on when
/// they come) exact without them.
fn twin_is_exact(name: &str) {
    let twin = job(name);
    let scratch = Scratch::new(&format!("windowed-twin-{name}"));
    let runs = [
        (1, events(), None),
        (4, events(), None),
        (2, late_events(), Some("8000")),
    ];
    for (parallelism, input, rate) in runs {
        let out = scratch.join(&format!("out-p{parallelism}"));
        let mut args = os(&["run", path(&twin), "-p", &parallelism.to_string()]);
        args.extend(word_count_args(&input.path, &out, rate));
        args.extend(os(&windows()));
        let run = cairn(args, None, None);
        assert!(run.success(), "{name} -p {parallelism}: {run:?}");
        input.assert_exact(&out);
    }
}

#[test]
fn windowed_count_rust_drops_late_lines_and_stays_exact() {
    twin_is_exact("windowed-count");
}

#[test]
fn windowed_count_py_is_exact() {
    twin_is_exact("windowed-count-py");
}

#[test]
fn windowed_count_js_is_exact() {
    twin_is_exact("windowed-count-js");
}

#[test]
fn windowed_count_c_is_exact() {
    twin_is_exact("windowed-count-c");
}

#[test]
fn windowed_count_zig_is_exact() {
    twin_is_exact("windowed-count-zig");
}

#[test]
fn windowed_count_go_is_exact() {
    twin_is_exact("windowed-count-go");
}

/// Every line of the committed files in `dir`.
fn committed_lines(dir: &Path) -> Vec<String> {
    let files = committed_files(dir).unwrap_or_default();
    files
        .iter()
        .flat_map(|f| {
            std::fs::read_to_string(f)
                .unwrap_or_default()
                .lines()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .collect()
}

/// Writes `words`, a line each, to the job's standard input.
fn type_words(job: &mut RunningJob, words: &[String]) {
    use std::io::Write;
    let stdin = job.child.stdin.as_mut().expect("standard input held open");
    for word in words {
        writeln!(stdin, "{word}").expect("the job reads its standard input");
    }
    stdin.flush().expect("the job reads its standard input");
}

/// Processing-time timers (the `timeouts` fixture: a timeout per word, fired once): words
/// whose timeouts (0.1 s) fired before a savepoint at parallelism 2 stay fired; those still
/// waiting (10 s: long past any savepoint on a loaded machine) fire after the restore at
/// parallelism 3, once each.
#[test]
fn processing_time_timers_fire_once_across_a_savepoint_at_another_parallelism() {
    let (session, scratch) = (Session::new("timeouts"), Scratch::new("timeouts"));
    let (out, chk, sp) = (scratch.join("out"), scratch.join("chk"), scratch.join("sp"));
    let timeouts = test_job("timeouts");
    let leg = |p: u32, id: &str, from: Option<&str>| {
        let mut args = run_checkpointed(&timeouts, p, id, &chk);
        if let Some(savepoint) = from {
            args.extend(os(&["-s", savepoint]));
        }
        args.extend(os(&["--", "--input", "-", "--output", path(&out)]));
        args
    };
    let early: Vec<String> = (0..100).map(|i| format!("early{i} 100")).collect();
    let waiting: Vec<String> = (0..200).map(|i| format!("waiting{i} 10000")).collect();

    let mut two = session.start_with_stdin(leg(2, &"d1".repeat(16), None), Stdio::piped());
    type_words(&mut two, &early);
    eventually("the early words timed out", || {
        (committed_lines(&out).len() == early.len()).then_some(())
    });
    type_words(&mut two, &waiting);
    let timed = two.vertex("timeouts");
    eventually("every word in", || {
        let counted: f64 = two.vertex_metric(&timed, "numRecordsIn").iter().sum();
        (counted == 300.0).then_some(())
    });
    let savepoint = session.stop_with_savepoint(&mut two, &sp);
    let before = committed_lines(&out);
    assert!(
        before.len() < early.len() + waiting.len(),
        "every timeout fired before the savepoint: the test proves nothing ({} lines)",
        before.len()
    );

    let mut three =
        session.start_with_stdin(leg(3, &"d2".repeat(16), Some(&savepoint)), Stdio::piped());
    // Words seen before are not timed again.
    type_words(&mut three, &early);
    eventually("the waiting words timed out after the restore", || {
        (committed_lines(&out).len() >= early.len() + waiting.len()).then_some(())
    });
    drop(three.child.stdin.take());
    assert_eq!(three.wait(), Some(0), "{}", three.stderr());
    let mut lines = committed_lines(&out);
    lines.sort();
    let mut expected: Vec<String> = early
        .iter()
        .chain(&waiting)
        .filter_map(|line| Some(line.split_once(' ')?.0.to_owned()))
        .collect();
    expected.sort();
    assert_eq!(lines, expected);
}
