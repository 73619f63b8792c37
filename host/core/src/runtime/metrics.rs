//! What a running job counts: per subtask its records, the time it spent blocked on full
//! output channels (backpressure) and its last barrier alignment; per job its checkpoint
//! statistics, kept as Flink keeps them (counts, the latest of each kind, a short history).

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::TaskId;
use crate::connectors::PartitionProgress;
use crate::state::metadata::SnapshotStats;

/// Rates are over at least this long: readers asking sooner get the last sample again.
const SAMPLE_WINDOW: Duration = Duration::from_secs(1);

/// Counters of one subtask.
#[derive(Debug)]
pub struct TaskMetrics {
    pub records_in: AtomicU64,
    pub records_out: AtomicU64,
    /// Time spent waiting for room in a full output channel, in nanoseconds, counting
    /// waits that have ended…
    pub back_pressured_ns: AtomicU64,
    /// …and when the wait under way began ([`clock_ns`]; 0: not waiting), so that a subtask
    /// blocked for long shows as back-pressured while it is.
    pub blocked_since_ns: AtomicU64,
    /// The last barrier alignment, in nanoseconds.
    pub alignment_ns: AtomicU64,
    /// A source's progress per partition of the log it reads, as it last reported it.
    pub partitions: Mutex<Vec<PartitionProgress>>,
    /// Flink's `currentInputWatermark` (operators and sinks) and `currentOutputWatermark`
    /// (sources and operators), in milliseconds; `i64::MIN` before the first.
    pub input_watermark: AtomicI64,
    pub output_watermark: AtomicI64,
    /// The operator's own counters (`metrics.counter-add`), by name, in the order first
    /// counted.
    pub counters: Mutex<Vec<(String, u64)>>,
}

impl TaskMetrics {
    /// Adds what an operator call counted to the subtask's counters.
    pub(crate) fn count(&self, counted: Vec<(String, u64)>) {
        let mut counters = self.counters.lock().unwrap_or_else(|e| e.into_inner());
        for (name, delta) in counted {
            crate::operator::add_count(&mut counters, name, delta);
        }
    }
}

impl Default for TaskMetrics {
    fn default() -> Self {
        TaskMetrics {
            records_in: AtomicU64::default(),
            records_out: AtomicU64::default(),
            back_pressured_ns: AtomicU64::default(),
            blocked_since_ns: AtomicU64::default(),
            alignment_ns: AtomicU64::default(),
            partitions: Mutex::default(),
            input_watermark: AtomicI64::new(i64::MIN),
            output_watermark: AtomicI64::new(i64::MIN),
            counters: Mutex::default(),
        }
    }
}

/// Nanoseconds on a process-wide monotonic clock, never 0.
pub fn clock_ns() -> u64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64 + 1
}

/// One subtask's counters at one moment, and its rates since the sample before.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskSample {
    pub task: TaskId,
    pub kind: TaskKind,
    pub records_in: u64,
    pub records_out: u64,
    pub records_in_per_second: f64,
    pub records_out_per_second: f64,
    /// Flink's `backPressuredTimeMsPerSecond`: 0 (never blocked) to 1000 (always).
    pub back_pressured_ms_per_second: f64,
    pub alignment: Duration,
    pub partitions: Vec<PartitionProgress>,
    /// Flink's `currentInputWatermark` and `currentOutputWatermark` (`i64::MIN`: none yet).
    pub input_watermark: i64,
    pub output_watermark: i64,
    /// The operator's own counters, by name.
    pub counters: Vec<(String, u64)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskKind {
    Source,
    Operator,
    Sink,
}

/// Statistics of one completed checkpoint or savepoint.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletedCheckpoint {
    pub id: u64,
    pub is_savepoint: bool,
    /// When it was triggered, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its folder, when stored.
    pub location: Option<String>,
    /// From trigger to `_metadata` written.
    pub duration: Duration,
    /// Operator state, uncompressed and as stored.
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// The longest synchronous snapshot and asynchronous upload of any subtask.
    pub max_sync: Duration,
    pub max_async: Duration,
    /// Every subtask's part, in task order.
    pub subtasks: Vec<SubtaskCheckpoint>,
}

/// One subtask's part of a completed checkpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct SubtaskCheckpoint {
    pub task: TaskId,
    /// When its acknowledgement arrived, in milliseconds since the Unix epoch.
    pub acked_ms: u64,
    /// Its operator state, uncompressed and as stored (0 for sources and sinks).
    pub raw_bytes: u64,
    pub stored_bytes: u64,
    /// Its alignment, synchronous and asynchronous durations.
    pub stats: SnapshotStats,
}

/// A checkpoint or savepoint that failed.
#[derive(Debug, Clone, PartialEq)]
pub struct FailedCheckpoint {
    pub id: u64,
    pub is_savepoint: bool,
    /// When it was triggered and when it failed, in milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    pub failed_ms: u64,
    pub reason: String,
}

/// Minimum, maximum and sum of a value over every completed checkpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub count: u64,
    pub min: u64,
    pub max: u64,
    pub sum: u64,
}

impl Summary {
    fn add(&mut self, value: u64) {
        self.merge(Summary {
            count: 1,
            min: value,
            max: value,
            sum: value,
        });
    }

    fn merge(&mut self, other: Summary) {
        if other.count == 0 {
            return;
        }
        self.min = if self.count == 0 {
            other.min
        } else {
            self.min.min(other.min)
        };
        self.max = self.max.max(other.max);
        self.sum += other.sum;
        self.count += other.count;
    }

    pub fn avg(&self) -> u64 {
        self.sum / self.count.max(1)
    }
}

/// A job's checkpoint statistics.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckpointStats {
    /// How many completed checkpoints `history` keeps (`web.checkpoints.history`).
    pub history_size: usize,
    pub completed: u64,
    pub failed: u64,
    /// Triggered and neither completed nor failed yet.
    pub in_progress: u64,
    /// The latest `history_size` completed checkpoints and savepoints, oldest first.
    pub history: VecDeque<CompletedCheckpoint>,
    pub latest_checkpoint: Option<CompletedCheckpoint>,
    pub latest_savepoint: Option<CompletedCheckpoint>,
    pub latest_failed: Option<FailedCheckpoint>,
    /// Over every completed checkpoint: end-to-end duration in milliseconds, state as
    /// stored (Flink's checkpointed size) and uncompressed (state size).
    pub duration_ms: Summary,
    pub stored_bytes: Summary,
    pub raw_bytes: Summary,
}

impl CheckpointStats {
    pub fn new(history_size: usize) -> Self {
        CheckpointStats {
            history_size,
            completed: 0,
            failed: 0,
            in_progress: 0,
            history: VecDeque::new(),
            latest_checkpoint: None,
            latest_savepoint: None,
            latest_failed: None,
            duration_ms: Summary::default(),
            stored_bytes: Summary::default(),
            raw_bytes: Summary::default(),
        }
    }

    pub(crate) fn record(&mut self, checkpoint: CompletedCheckpoint) {
        self.completed += 1;
        self.duration_ms.add(checkpoint.duration.as_millis() as u64);
        self.stored_bytes.add(checkpoint.stored_bytes);
        self.raw_bytes.add(checkpoint.raw_bytes);
        if checkpoint.is_savepoint {
            self.latest_savepoint = Some(checkpoint.clone());
        } else {
            self.latest_checkpoint = Some(checkpoint.clone());
        }
        self.history.push_back(checkpoint);
        while self.history.len() > self.history_size {
            self.history.pop_front();
        }
    }

    /// Adds a later attempt's statistics to an earlier one's.
    pub fn merge(&mut self, later: CheckpointStats) {
        self.completed += later.completed;
        self.failed += later.failed;
        self.duration_ms.merge(later.duration_ms);
        self.stored_bytes.merge(later.stored_bytes);
        self.raw_bytes.merge(later.raw_bytes);
        self.in_progress = later.in_progress;
        for checkpoint in later.history {
            self.history.push_back(checkpoint);
        }
        while self.history.len() > self.history_size {
            self.history.pop_front();
        }
        self.latest_checkpoint = later.latest_checkpoint.or(self.latest_checkpoint.take());
        self.latest_savepoint = later.latest_savepoint.or(self.latest_savepoint.take());
        self.latest_failed = later.latest_failed.or(self.latest_failed.take());
    }
}

/// The latest sample: when, its raw counters (records in, out, blocked ns; the base of the
/// next rates), and what it gave.
type Sample = (Instant, Vec<[u64; 3]>, Vec<TaskSample>);

/// Counters of every subtask of a running job, and its checkpoint statistics.
#[derive(Debug)]
pub struct JobMetrics {
    pub(crate) tasks: Vec<(TaskId, TaskKind, std::sync::Arc<TaskMetrics>)>,
    checkpoints: Mutex<CheckpointStats>,
    /// The id the next checkpoint gets: a restart continues from here.
    next_checkpoint: AtomicU64,
    latest: Mutex<Option<Sample>>,
}

impl JobMetrics {
    pub(crate) fn new(
        tasks: Vec<(TaskId, TaskKind, std::sync::Arc<TaskMetrics>)>,
        first_checkpoint: u64,
        history_size: usize,
    ) -> Self {
        JobMetrics {
            tasks,
            checkpoints: Mutex::new(CheckpointStats::new(history_size)),
            next_checkpoint: AtomicU64::new(first_checkpoint),
            latest: Mutex::new(None),
        }
    }

    /// Records produced by all sources.
    pub fn records_read(&self) -> u64 {
        self.sum(TaskKind::Source, |m| &m.records_out)
    }

    /// Records taken by all sinks.
    pub fn records_written(&self) -> u64 {
        self.sum(TaskKind::Sink, |m| &m.records_in)
    }

    /// Every subtask with the records it has taken in and sent out so far (live counts).
    pub fn task_counts(&self) -> Vec<(TaskId, u64, u64)> {
        self.tasks
            .iter()
            .map(|(id, _, m)| {
                (
                    id.clone(),
                    m.records_in.load(Ordering::Relaxed),
                    m.records_out.load(Ordering::Relaxed),
                )
            })
            .collect()
    }

    /// Every subtask's counters and rates, over the last second or more (since the job
    /// started, on the first call). Every reader shares the same samples.
    pub fn sample(&self, started: Instant) -> Vec<TaskSample> {
        let mut latest = self.latest.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((at, _, samples)) = latest.as_ref()
            && at.elapsed() < SAMPLE_WINDOW
        {
            return samples.clone();
        }
        let now = Instant::now();
        let counters: Vec<[u64; 3]> = self
            .tasks
            .iter()
            .map(|(_, _, m)| {
                let since = m.blocked_since_ns.load(Ordering::Relaxed);
                let ongoing = if since == 0 {
                    0
                } else {
                    clock_ns().saturating_sub(since)
                };
                [
                    m.records_in.load(Ordering::Relaxed),
                    m.records_out.load(Ordering::Relaxed),
                    m.back_pressured_ns.load(Ordering::Relaxed) + ongoing,
                ]
            })
            .collect();
        let (since, before) = latest
            .take()
            .map(|(at, counters, _)| (at, counters))
            .unwrap_or_else(|| (started, vec![[0; 3]; counters.len()]));
        let seconds = now.duration_since(since).as_secs_f64().max(1e-3);
        let samples: Vec<TaskSample> = self
            .tasks
            .iter()
            .zip(&counters)
            .zip(&before)
            .map(|(((task, kind, m), now), before)| {
                let rate = |i: usize| now[i].saturating_sub(before[i]) as f64 / seconds;
                TaskSample {
                    task: task.clone(),
                    kind: *kind,
                    records_in: now[0],
                    records_out: now[1],
                    records_in_per_second: rate(0),
                    records_out_per_second: rate(1),
                    back_pressured_ms_per_second: (rate(2) / 1e6).min(1000.0),
                    alignment: Duration::from_nanos(m.alignment_ns.load(Ordering::Relaxed)),
                    partitions: m
                        .partitions
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .clone(),
                    input_watermark: m.input_watermark.load(Ordering::Relaxed),
                    output_watermark: m.output_watermark.load(Ordering::Relaxed),
                    counters: m.counters.lock().unwrap_or_else(|e| e.into_inner()).clone(),
                }
            })
            .collect();
        *latest = Some((now, counters, samples.clone()));
        samples
    }

    /// The id the next checkpoint would get.
    pub fn next_checkpoint_id(&self) -> u64 {
        self.next_checkpoint.load(Ordering::Relaxed)
    }

    pub(crate) fn set_next_checkpoint_id(&self, id: u64) {
        self.next_checkpoint.store(id, Ordering::Relaxed);
    }

    pub fn checkpoint_stats(&self) -> CheckpointStats {
        self.checkpoints
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Updates the checkpoint statistics.
    pub(crate) fn checkpoints(&self, update: impl FnOnce(&mut CheckpointStats)) {
        if let Ok(mut stats) = self.checkpoints.lock() {
            update(&mut stats);
        }
    }

    fn sum(&self, kind: TaskKind, counter: impl Fn(&TaskMetrics) -> &AtomicU64) -> u64 {
        self.tasks
            .iter()
            .filter(|(_, k, _)| *k == kind)
            .map(|(_, _, m)| counter(m).load(Ordering::Relaxed))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checkpoint(id: u64, is_savepoint: bool) -> CompletedCheckpoint {
        CompletedCheckpoint {
            id,
            is_savepoint,
            timestamp_ms: id,
            location: None,
            duration: Duration::ZERO,
            raw_bytes: 0,
            stored_bytes: 0,
            max_sync: Duration::ZERO,
            max_async: Duration::ZERO,
            subtasks: Vec::new(),
        }
    }

    #[test]
    fn a_subtask_blocked_right_now_reads_as_back_pressured() {
        let task = std::sync::Arc::new(TaskMetrics::default());
        let id = TaskId {
            uid: "count".into(),
            subtask: 0,
            parallelism: 1,
        };
        let metrics = JobMetrics::new(vec![(id, TaskKind::Operator, task.clone())], 1, 10);
        // Blocked since (about) the clock's start, and still blocked: no wait has ended.
        clock_ns();
        std::thread::sleep(Duration::from_millis(300));
        task.blocked_since_ns.store(1, Ordering::Relaxed);
        let window_start = Instant::now() - Duration::from_secs(1);
        let sample = &metrics.sample(window_start)[0];
        assert_eq!(task.back_pressured_ns.load(Ordering::Relaxed), 0);
        assert!(
            sample.back_pressured_ms_per_second > 200.0,
            "{}",
            sample.back_pressured_ms_per_second
        );
    }

    #[test]
    fn statistics_keep_counts_latest_and_a_bounded_history() {
        let mut first = CheckpointStats::new(10);
        for id in 1..=12 {
            let mut c = checkpoint(id, id == 5);
            c.stored_bytes = id * 10;
            first.record(c);
        }
        first.failed = 2;
        assert_eq!(first.completed, 12);
        assert_eq!(first.history.len(), 10);
        assert_eq!(first.history.front().unwrap().id, 3);
        assert_eq!(first.latest_savepoint.as_ref().unwrap().id, 5);

        let mut second = CheckpointStats::new(10);
        second.record(checkpoint(13, false));
        first.merge(second);
        assert_eq!((first.completed, first.failed), (13, 2));
        assert_eq!(first.latest_checkpoint.as_ref().unwrap().id, 13);
        assert_eq!(first.latest_savepoint.as_ref().unwrap().id, 5);
        assert_eq!(first.history.back().unwrap().id, 13);
        assert_eq!(first.history.len(), 10);
        assert_eq!(
            (
                first.stored_bytes.min,
                first.stored_bytes.max,
                first.stored_bytes.count
            ),
            (0, 120, 13)
        );
        assert_eq!(
            first.stored_bytes.avg(),
            (10..=120).step_by(10).sum::<u64>() / 13
        );
    }
}
