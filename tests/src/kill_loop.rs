//! The kill loop: a job checkpointing every 100 ms (word-count, or one sharing its `--input`,
//! `--output` and `--rate`) is killed with SIGKILL at random moments, resumed each time from
//! its latest completed checkpoint, then let finish; the committed output is checked
//! against the oracle.

use std::ffi::{OsStr, OsString};
use std::ops::Range;
use std::path::Path;
use std::time::Duration;

use crate::{Corpus, OracleReport, Scratch, SplitMix, cairn, check_word_count, spawn_cairn};

/// Kills per loop, as the checkpoint issue asks: at least ten.
pub const KILLS: u32 = 10;

/// One kill loop over a word-count job (any language's: they share args and output), or a
/// job taking the same `--input`, `--output` and `--rate`.
pub struct KillLoop<'a> {
    /// Names the scratch folder.
    pub name: &'a str,
    pub job: &'a Path,
    /// The job's arguments besides `--input`, `--output` and `--rate`.
    pub job_args: &'a [&'a str],
    pub parallelism: u32,
    /// `EXACTLY_ONCE` or `AT_LEAST_ONCE`.
    pub mode: &'a str,
    /// Checkpoint directory: a path or a store URL.
    pub dir: &'a str,
    /// Store settings (`-D`).
    pub store: &'a [String],
    pub seed: u64,
    /// Kills come after a random delay in this range, in milliseconds (the first attempt's
    /// after its first completed checkpoint): long enough for checkpoints to complete
    /// (slower on a remote store).
    pub kill_after: Range<u64>,
    /// Lines per second the attempts that get killed read at. Paced, the killed attempts
    /// never reach the end of the input, whatever the machine's speed: keep
    /// `KILLS * kill_after.end / 1000 * killed_rate` well under the corpus's lines. The last
    /// attempt reads the rest unpaced.
    pub killed_rate: u64,
}

/// Whether `location` holds a completed checkpoint, asked of `cairn inspect`.
pub fn has_checkpoint(location: &str, store: &[String]) -> bool {
    let mut args = vec![OsString::from("inspect"), location.into()];
    for setting in store {
        args.extend(["-D".into(), setting.into()]);
    }
    cairn(args, None, None).success()
}

/// Waits, at most a minute, until `location` holds a completed checkpoint.
pub fn wait_for_checkpoint(location: &str) {
    wait_for_checkpoint_in(location, &[]);
}

/// Waits, at most a minute, until `location`, in the store `store` configures, holds a
/// completed checkpoint.
pub fn wait_for_checkpoint_in(location: &str, store: &[String]) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !has_checkpoint(location, store) {
        assert!(
            std::time::Instant::now() < deadline,
            "no checkpoint at {location} within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl KillLoop<'_> {
    fn args(
        &self,
        job_id: &str,
        resume: Option<&str>,
        rate: Option<u64>,
        input: &OsStr,
        output: &OsStr,
    ) -> Vec<OsString> {
        let mut args: Vec<OsString> = vec!["run".into(), self.job.into()];
        args.extend(["-p".into(), self.parallelism.to_string().into()]);
        args.extend(["--job-id".into(), job_id.into()]);
        for setting in [
            "execution.checkpointing.interval=100 ms".to_owned(),
            format!("execution.checkpointing.mode={}", self.mode),
            format!("execution.checkpointing.dir={}", self.dir),
        ]
        .iter()
        .chain(self.store)
        {
            args.extend(["-D".into(), setting.into()]);
        }
        if let Some(resume) = resume {
            args.extend(["-s".into(), resume.into()]);
        }
        args.extend(["--".into(), "--input".into(), input.into()]);
        args.extend(["--output".into(), output.into()]);
        if let Some(rate) = rate {
            args.extend(["--rate".into(), rate.to_string().into()]);
        }
        args.extend(self.job_args.iter().map(OsString::from));
        args
    }

    /// Kills the word-count job reading `corpus` [`KILLS`] times, each time resuming from
    /// the newest job folder that has a completed checkpoint, then lets it finish. Returns
    /// the oracle's verdict on the committed output.
    pub fn run_word_count(&self, corpus: &Corpus) -> OracleReport {
        let scratch = Scratch::new(self.name);
        let output = scratch.join("out");
        self.run(&corpus.path, &output);
        check_word_count(&corpus.counts, &output).expect("the output can be read")
    }

    /// The loop over file `input`, writing to folder `output`, which the caller checks.
    pub fn run(&self, input: &Path, output: &Path) {
        self.attempts(input.as_os_str(), output.as_os_str(), true);
    }

    /// The same loop with the corpus already in topic `input` and the output going to topic
    /// `output` (`kafka://` addresses): the attempts read unpaced (a Kafka source has no
    /// rate), so one may finish before its kill, which ends the loop there. Returns the
    /// number of attempts killed; the caller reads the output topic.
    pub fn run_through(&self, input: &str, output: &str) -> u32 {
        self.attempts(input.as_ref(), output.as_ref(), false)
    }

    /// Runs the attempts; returns how many were killed.
    fn attempts(&self, input: &OsStr, output: &OsStr, paced: bool) -> u32 {
        let mut rng = SplitMix::new(self.seed);
        let mut resume: Option<String> = None;
        for attempt in 0..=u64::from(KILLS) {
            let job_id = format!("{:016x}{attempt:016x}", self.seed);
            let last = attempt == u64::from(KILLS);
            let rate = (!last && paced).then_some(self.killed_rate);
            let args = self.args(&job_id, resume.as_deref(), rate, input, output);
            if last {
                let run = cairn(args, None, None);
                assert!(
                    run.success() && run.last_line().contains(" FINISHED "),
                    "{run:?}"
                );
                break;
            }
            let mut child = spawn_cairn(args);
            let folder = format!("{}/{job_id}", self.dir);
            if resume.is_none() {
                // Until one checkpoint completes, a kill restarts from nothing: on a loaded
                // machine every kill could come before the first one, and the loop would
                // prove nothing. Later attempts may still be killed before their first.
                wait_for_checkpoint_in(&folder, self.store);
            }
            let wait =
                self.kill_after.start + rng.below(self.kill_after.end - self.kill_after.start);
            std::thread::sleep(Duration::from_millis(wait));
            if let Some(status) = child.try_wait().expect("the job can be waited for") {
                assert!(
                    !paced && status.success(),
                    "attempt {attempt} ended ({status}) before it was killed"
                );
                return attempt as u32;
            }
            child.kill().expect("the job can be killed");
            child.wait().expect("the job can be waited for");
            if has_checkpoint(&folder, self.store) {
                resume = Some(folder);
            }
        }
        KILLS
    }
}
