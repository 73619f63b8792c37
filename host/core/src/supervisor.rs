//! A job's life across attempts: run an attempt; when it fails, ask the restart strategy
//! whether another follows, wait its delay, and choose what that attempt restores — all
//! told to a [`Watcher`] (the control plane). The `cairn` binary only parses arguments,
//! watches and prints.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::clock::now_ms;
use crate::config::S3Config;
use crate::graph::Graph;
use crate::operator::OperatorFactory;
use crate::restart::{Decision, RestartStrategy, Restarts};
use crate::restore::RestoreError;
use crate::runtime::{
    CancelHandle, Checkpointing, Job, JobFailure, JobMetrics, Outcome, Request, Restore,
};
use crate::state::StateError;
use crate::state::metadata::CheckpointKind;

/// Why the supervisor could not go on.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error("cannot start the job's threads: {0}")]
    Start(std::io::Error),
}

/// What the supervisor tells, and asks, whoever watches the job.
pub trait Watcher {
    /// The code the next attempt runs (a code swap replaces it).
    fn code(&self) -> (Graph, Arc<dyn OperatorFactory>);
    /// An attempt is running, restored from `restored` if anything; its requests (savepoints,
    /// swaps) go to `requests`.
    fn attempt_started(
        &self,
        requests: Sender<Request>,
        metrics: Arc<JobMetrics>,
        restored: Option<Restored>,
    );
    /// The running attempt has ended, whatever its outcome.
    fn attempt_ended(&self) {}
    /// The attempt failed; another follows when `restarting`.
    fn attempt_failed(&self, failure: &JobFailure, restarting: bool);
    /// The attempt finished: the savepoint the job resumes from instead of ending, when it
    /// was stopped to be rescaled (`code` then has the new parallelism). `None`: it ends.
    fn resume_after_finish(&self) -> Option<String> {
        None
    }
}

/// The checkpoint or savepoint an attempt started from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Restored {
    pub id: u64,
    pub is_savepoint: bool,
    pub location: String,
    /// When the attempt restored it, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
}

impl Restored {
    fn of(restore: &Restore) -> Self {
        Restored {
            id: restore.metadata.checkpoint_id,
            is_savepoint: restore.metadata.kind == CheckpointKind::Savepoint,
            location: restore.folder.url().to_owned(),
            timestamp_ms: now_ms(),
        }
    }
}

/// Runs one job until it ends for good.
pub struct Supervisor {
    pub job_id: String,
    pub checkpoints: Checkpointing,
    /// What the first attempt restores (`-s`).
    pub restore: Option<Restore>,
    /// Where `restore` came from: what a restart restores when the job has no completed
    /// checkpoint of its own yet.
    pub restore_path: Option<String>,
    pub s3: S3Config,
    pub restart: RestartStrategy,
    pub cancel: CancelHandle,
    /// `pipeline.auto-watermark-interval`.
    pub watermark_interval: Option<Duration>,
}

/// How the job ended, after every attempt.
#[derive(Debug)]
pub struct Ended {
    pub end: End,
    pub restarts: u32,
    /// Records the sources read and the sinks wrote, over all attempts.
    pub records_read: u64,
    pub records_written: u64,
}

#[derive(Debug)]
pub enum End {
    Finished,
    Canceled,
    Failed(Box<JobFailure>),
    /// No restart followed this failure, for `reason`.
    GaveUp {
        reason: String,
        failure: Box<JobFailure>,
    },
    /// Stopped to be rescaled, the job could not resume from its savepoint.
    NotResumed {
        savepoint: String,
        reason: String,
    },
}

impl Supervisor {
    /// Runs attempts until one finishes, the job is canceled, or no restart follows a
    /// failure. A failure that a restart cannot mend (the restored state does not fit) is
    /// not restarted, whatever the strategy.
    pub fn run(mut self, watcher: &dyn Watcher) -> Result<Ended, SupervisorError> {
        let mut restarts = Restarts::new(self.restart.clone());
        let mut restore = self.restore.take();
        let mut first_id = self.checkpoints.first_id;
        let (mut read, mut written) = (0, 0);
        let mut last_failure: Option<(u32, String)> = None;
        let end = loop {
            let attempt_started = Instant::now();
            let (graph, operators) = watcher.code();
            let (requests, requests_rx) = crossbeam_channel::unbounded();
            let restored = restore.as_ref().map(Restored::of);
            let job = Job {
                id: self.job_id.clone(),
                graph,
                operators,
                checkpoints: Checkpointing {
                    first_id,
                    ..self.checkpoints.clone()
                },
                restore: restore.take(),
                attempt: restarts.count(),
                cancel: self.cancel.clone(),
                requests: Some(requests_rx),
                watermark_interval: self.watermark_interval,
            };
            let running = job.start().map_err(SupervisorError::Start)?;
            let metrics = running.metrics();
            watcher.attempt_started(requests, metrics.clone(), restored);
            let outcome = running.wait();
            watcher.attempt_ended();
            read += metrics.records_read();
            written += metrics.records_written();
            let failure = match outcome {
                Outcome::Failed(failure) if !self.cancel.is_canceled() => failure,
                // A cancel wins over the failure it raced with, as in Flink: canceling a
                // failing or restarting job ends it CANCELED.
                Outcome::Failed(_) | Outcome::Canceled => break End::Canceled,
                Outcome::Finished => match watcher.resume_after_finish() {
                    // A rescale: not a restart, and nothing failed.
                    Some(savepoint) => {
                        first_id = metrics.next_checkpoint_id();
                        let graph = watcher.code().0;
                        let resumed = self.checkpoints.runtime.block_on(async {
                            let (folder, metadata) =
                                crate::restore::find(&savepoint, &self.s3).await?;
                            crate::restore::load(folder, metadata, &graph).await
                        });
                        match resumed {
                            // Canceled meanwhile: no attempt starts.
                            Ok(_) if self.cancel.is_canceled() => break End::Canceled,
                            Ok(resumed) => {
                                tracing::info!("resuming from {savepoint}, rescaled");
                                restore = Some(resumed);
                                self.restore_path = Some(savepoint);
                                continue;
                            }
                            Err(e) => {
                                let reason = e.to_string();
                                break End::NotResumed { savepoint, reason };
                            }
                        }
                    }
                    None => break End::Finished,
                },
            };
            let attempt = restarts.count() + 1;
            let decision = if failure.error.is_permanent() {
                Decision::GiveUp(
                    "not restarted: the checkpoint cannot be restored, and a restart would \
                     restore it again"
                        .into(),
                )
            } else {
                restarts.on_failure(Instant::now(), attempt_started.elapsed())
            };
            watcher.attempt_failed(&failure, matches!(decision, Decision::Restart { .. }));
            let delay = match decision {
                Decision::GiveUp(reason) => break End::GaveUp { reason, failure },
                Decision::Restart { delay, .. } => delay,
            };
            // A failure that repeats (a restart loop) is told in full once.
            let message = failure.to_string();
            let told = match &last_failure {
                Some((first, text)) if *text == message => {
                    format!("the same failure as attempt {first}")
                }
                _ => {
                    last_failure = Some((attempt, message.clone()));
                    message
                }
            };
            tracing::warn!(
                "attempt {attempt} failed: {told}; restarting in {} ({} strategy, restart {})",
                humantime::format_duration(delay),
                restarts.strategy(),
                restarts.count()
            );
            if !sleep_unless_canceled(delay, &self.cancel) {
                break End::Canceled;
            }
            first_id = metrics.next_checkpoint_id();
            restore = match self
                .checkpoints
                .runtime
                .block_on(self.restore_for_restart(watcher))
            {
                Ok(restore) => restore,
                // What cannot be restored now cannot be on any later try either.
                Err(e) => {
                    let reason = format!("not restarted: cannot restore the restart: {e}");
                    break End::GaveUp { reason, failure };
                }
            };
            let from = restore.as_ref().map_or_else(
                || "from the start".to_owned(),
                |r| {
                    format!(
                        "from checkpoint {} at {}",
                        r.metadata.checkpoint_id,
                        r.folder.url()
                    )
                },
            );
            tracing::warn!("restarting the job (attempt {}) {from}", attempt + 1);
        };
        Ok(Ended {
            end,
            restarts: restarts.count(),
            records_read: read,
            records_written: written,
        })
    }

    /// What a restart resumes from: the newer of the job's latest completed checkpoint and
    /// what the job last resumed from (the first attempt's restore, or a rescale's
    /// savepoint), else nothing. Incomplete checkpoints of the failed attempt are removed.
    async fn restore_for_restart(
        &self,
        watcher: &dyn Watcher,
    ) -> Result<Option<Restore>, RestoreError> {
        let graph = watcher.code().0;
        let mut newest = None;
        if let Some(storage) = &self.checkpoints.storage {
            storage.remove_incomplete().await?;
            match storage.latest().await {
                Ok(folder) => newest = Some(crate::restore::read(folder).await?),
                Err(StateError::NoCheckpoint(_) | StateError::NotACheckpoint(_)) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(path) = &self.restore_path {
            match crate::restore::find(path, &self.s3).await {
                // A rescale's savepoint is newer than the checkpoints before it: output up
                // to it is committed, so a restart must not go back past it.
                Ok(resumed)
                    if newest.as_ref().is_none_or(|(_, latest)| {
                        latest.checkpoint_id < resumed.1.checkpoint_id
                    }) =>
                {
                    newest = Some(resumed)
                }
                Ok(_) => {}
                // Gone since (disposed), but a newer checkpoint is there.
                Err(_) if newest.is_some() => {}
                Err(e) => return Err(e.into()),
            }
        }
        match newest {
            Some((folder, metadata)) => {
                Ok(Some(crate::restore::load(folder, metadata, &graph).await?))
            }
            None => Ok(None),
        }
    }
}

/// Sleeps `delay`, waking early to return `false` if the job is canceled meanwhile.
fn sleep_unless_canceled(delay: Duration, cancel: &CancelHandle) -> bool {
    let until = Instant::now() + delay;
    while Instant::now() < until {
        if cancel.is_canceled() {
            return false;
        }
        std::thread::sleep((until - Instant::now()).min(Duration::from_millis(50)));
    }
    !cancel.is_canceled()
}
