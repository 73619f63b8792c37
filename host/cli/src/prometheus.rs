//! The job's metrics in the Prometheus (OpenMetrics) text format, served at `/metrics`.
//!
//! Names are Flink's metric names, as Flink's Prometheus reporter exposes them but with the
//! `cairn_` prefix: job scope `cairn_job_<name>` labelled `job_id` and `job_name`, subtask
//! scope `cairn_task_<name>` also labelled `task_name` (the node's uid) and
//! `subtask_index`. Like Flink's reporter, counters are exposed as gauges, so the names stay
//! exactly Flink's (no `_total` suffix).

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::control::{JobControl, Snapshot};

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type TaskLabels = Vec<(&'static str, String)>;
type TaskGauges = Family<TaskLabels, Gauge<f64, AtomicU64>>;
/// Reads one metric's value off a subtask's sample.
type SampleValue = fn(&cairn_core::runtime::TaskSample) -> f64;
/// A partition metric's value, if known.
type PartitionValue = fn(&cairn_core::connectors::PartitionProgress) -> Option<i64>;

/// A job-scope metric: Flink's name, what it means, its value now.
pub struct JobMetric {
    pub name: &'static str,
    pub help: &'static str,
    pub value: f64,
}

/// Reads one job-scope metric's value off the job.
type JobValue = fn(&JobControl, &Snapshot) -> f64;

/// The job-scope metrics: Flink's name, what it means (`# HELP`), how to read it. The REST
/// document lists them from here too.
pub const JOB_METRICS: [(&str, &str, JobValue); 10] = [
    (
        "numRestarts",
        "How often the job restarted after a failure",
        |_, s| s.restarts as f64,
    ),
    (
        "uptime",
        "Milliseconds the job has run since its latest (re)start, -1 while it does not run",
        // Flink's: how long the job has run without interruption.
        |control, s| match &s.metrics {
            Some(_) => control.attempt_start_time().elapsed().as_millis() as f64,
            None => -1.0,
        },
    ),
    (
        "numberOfCompletedCheckpoints",
        "Completed checkpoints and savepoints",
        |_, s| s.checkpoints.completed as f64,
    ),
    (
        "numberOfFailedCheckpoints",
        "Failed checkpoints and savepoints",
        |_, s| s.checkpoints.failed as f64,
    ),
    (
        "numberOfInProgressCheckpoints",
        "Checkpoints triggered and not yet completed or failed",
        |_, s| s.checkpoints.in_progress as f64,
    ),
    (
        "totalNumberOfCheckpoints",
        "Checkpoints triggered so far",
        |_, s| (s.checkpoints.completed + s.checkpoints.failed + s.checkpoints.in_progress) as f64,
    ),
    (
        "lastCompletedCheckpointId",
        "Id of the latest completed checkpoint (-1: none)",
        |_, s| latest(s).map_or(-1.0, |c| c.id as f64),
    ),
    (
        "lastCheckpointDuration",
        "End-to-end duration of the latest completed checkpoint, in milliseconds",
        |_, s| latest(s).map_or(-1.0, |c| c.duration.as_millis() as f64),
    ),
    (
        "lastCheckpointSize",
        "Stored (compressed) size of the latest completed checkpoint, in bytes",
        |_, s| latest(s).map_or(-1.0, |c| c.stored_bytes as f64),
    ),
    (
        "lastCheckpointFullSize",
        "Uncompressed state size of the latest completed checkpoint, in bytes",
        |_, s| latest(s).map_or(-1.0, |c| c.raw_bytes as f64),
    ),
];

fn latest(snapshot: &Snapshot) -> Option<&cairn_core::runtime::CompletedCheckpoint> {
    snapshot.checkpoints.latest_checkpoint.as_ref()
}

/// The subtask-scope metrics: Flink's name, what it means (`# HELP`), how to read it off a
/// subtask's sample.
pub const TASK_METRICS: [(&str, &str, SampleValue); 6] = [
    ("numRecordsIn", "Records the subtask has taken in", |s| {
        s.records_in as f64
    }),
    ("numRecordsOut", "Records the subtask has sent on", |s| {
        s.records_out as f64
    }),
    (
        "numRecordsInPerSecond",
        "Records taken in per second, over the last second or more",
        |s| s.records_in_per_second,
    ),
    (
        "numRecordsOutPerSecond",
        "Records sent on per second, over the last second or more",
        |s| s.records_out_per_second,
    ),
    (
        "backPressuredTimeMsPerSecond",
        "Milliseconds per second the subtask waited for room downstream",
        |s| s.back_pressured_ms_per_second,
    ),
    (
        "checkpointAlignmentTime",
        "The subtask's last checkpoint barrier alignment, in nanoseconds",
        |s| s.alignment.as_nanos() as f64,
    ),
];

/// The metrics of a source's partitions (Kafka): the names Flink's Kafka source reader
/// registers (its consumer's `records-lag`, with Prometheus' `_` for `-`), and how to read
/// each off a partition's progress (`None`: not known yet).
pub const PARTITION_METRICS: [(&str, &str, PartitionValue); 3] = [
    (
        "KafkaSourceReader_currentOffset",
        "The offset of the next record the subtask reads from the partition",
        |p| Some(p.current_offset),
    ),
    (
        "KafkaSourceReader_committedOffset",
        "The offset last committed to the consumer group when a checkpoint completed",
        |p| p.committed_offset,
    ),
    (
        "KafkaSourceReader_records_lag",
        "Records between the subtask's offset and the partition's end (last stable offset \
         for read_committed)",
        |p| p.lag,
    ),
];

/// The job-scope metrics, from a snapshot of the job.
pub fn job_metrics(control: &JobControl, snapshot: &Snapshot) -> Vec<JobMetric> {
    JOB_METRICS
        .iter()
        .map(|&(name, help, value)| JobMetric {
            name,
            help,
            value: value(control, snapshot),
        })
        .collect()
}

/// Every metric of the job, now.
pub fn render(control: &JobControl) -> Result<String, std::fmt::Error> {
    let snapshot = control.snapshot();
    let job_labels = [
        (Cow::Borrowed("job_id"), Cow::Owned(control.id.clone())),
        (Cow::Borrowed("job_name"), Cow::Owned(control.name.clone())),
    ];
    let mut registry = Registry::with_prefix_and_labels("cairn", job_labels.into_iter());

    let job = registry.sub_registry_with_prefix("job");
    for metric in job_metrics(control, &snapshot) {
        let gauge = Gauge::<f64, AtomicU64>::default();
        gauge.set(metric.value);
        job.register(metric.name, metric.help, gauge);
    }

    let task = registry.sub_registry_with_prefix("task");
    let samples = snapshot
        .metrics
        .as_ref()
        .map(|m| m.sample(control.attempt_start_time()))
        .unwrap_or_default();
    for (name, help, value) in TASK_METRICS {
        let family = TaskGauges::default();
        for sample in &samples {
            let labels = vec![
                ("task_name", sample.task.uid.clone()),
                ("subtask_index", sample.task.subtask.to_string()),
            ];
            family.get_or_create(&labels).set(value(sample));
        }
        task.register(name, help, family);
    }

    for (name, help, value) in PARTITION_METRICS {
        let family = TaskGauges::default();
        for sample in &samples {
            for progress in &sample.partitions {
                let Some(value) = value(progress) else {
                    continue;
                };
                let labels = vec![
                    ("task_name", sample.task.uid.clone()),
                    ("subtask_index", sample.task.subtask.to_string()),
                    ("topic", progress.topic.clone()),
                    ("partition", progress.partition.to_string()),
                ];
                family.get_or_create(&labels).set(value as f64);
            }
        }
        task.register(name, help, family);
    }

    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}
