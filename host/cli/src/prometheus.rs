//! The job's metrics in the Prometheus (OpenMetrics) text format, served at `/metrics`.
//!
//! Names are Flink's metric names, as Flink's Prometheus reporter exposes them but with the
//! `cairn_` prefix: job scope `cairn_job_<name>` labelled `job_id` and `job_name`, subtask
//! scope `cairn_task_<name>` also labelled `task_name` (the node's uid) and
//! `subtask_index`, and a source's partition metrics (Kafka) also labelled `topic` and
//! `partition`. Like Flink's reporter, counters are exposed as gauges, so the names stay
//! exactly Flink's (no `_total` suffix).
//!
//! The tables of metrics here ([`JOB_METRICS`], [`TASK_METRICS`], [`PARTITION_METRICS`])
//! are the only place their names and values are defined: the REST API's metric endpoints
//! and its document read them too.

use std::borrow::Cow;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::control::{JobControl, Snapshot};
use cairn_core::runtime::TaskSample;

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

type TaskLabels = Vec<(&'static str, String)>;
type TaskGauges = Family<TaskLabels, Gauge<f64, AtomicU64>>;
/// Reads one metric's value off a subtask's sample.
type SampleValue = fn(&TaskSample) -> f64;
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
/// subtask's sample (see [`task_metrics`] for their ids in Flink's vertex metrics).
pub const TASK_METRICS: [(&str, &str, SampleValue); 8] = [
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
    (
        "currentInputWatermark",
        "The subtask's input watermark, in milliseconds since the epoch (-2^63: none yet)",
        |s| s.input_watermark as f64,
    ),
    (
        "currentOutputWatermark",
        "The last watermark the subtask sent on, in milliseconds since the epoch (-2^63: \
         none yet)",
        |s| s.output_watermark as f64,
    ),
];

/// The metric group Flink's Kafka source reader registers each partition's metrics under,
/// as `KafkaSourceReader.topic.<topic>.partition.<partition>.<name>`.
const KAFKA_SOURCE_READER: &str = "KafkaSourceReader";

/// The metrics of a source's partitions (Kafka): the names Flink's Kafka source reader
/// registers (and its consumer's `records-lag`), what each means (`# HELP`), and how to read
/// it off a partition's progress (`None`: not known yet). [`partition_metric_name`] is a
/// name's Prometheus form, [`task_metrics`] its id in Flink's vertex metrics.
pub const PARTITION_METRICS: [(&str, &str, PartitionValue); 3] = [
    (
        "currentOffset",
        "The offset of the next record the subtask reads from the partition",
        |p| Some(p.current_offset),
    ),
    (
        "committedOffset",
        "The offset last committed to the consumer group when a checkpoint completed",
        |p| p.committed_offset,
    ),
    (
        "records-lag",
        "Records between the subtask's offset and the partition's end (last stable offset \
         for read_committed)",
        |p| p.lag,
    ),
];

/// A [`PARTITION_METRICS`] name as `/metrics` exposes it below `cairn_task_`, the way
/// Flink's Prometheus reporter writes it: the reader's group and the name joined by `_`,
/// with `_` for `-` (`KafkaSourceReader_records_lag`); topic and partition are labels.
pub fn partition_metric_name(name: &str) -> String {
    format!("{KAFKA_SOURCE_READER}_{}", name.replace('-', "_"))
}

/// An operator's own counter (`metrics.counter-add`) as `/metrics` exposes it below
/// `cairn_task_`: `operator_<name>`, as Flink's Prometheus reporter writes an operator-scope
/// metric (counter names are letters, digits and `_`: valid in Prometheus as they are).
pub fn counter_metric_name(name: &str) -> String {
    format!("operator_{name}")
}

/// A subtask-scope metric under its id in Flink's vertex metrics, and its value now.
pub struct TaskMetric {
    pub id: String,
    pub value: f64,
}

/// One subtask's metrics under the ids Flink's `GET /jobs/:jobid/vertices/:vertexid/metrics`
/// gives them: `<subtask>.<name>` for each of [`TASK_METRICS`], then, for each partition the
/// subtask reads, `<subtask>.KafkaSourceReader.topic.<topic>.partition.<partition>.<name>`
/// for each of [`PARTITION_METRICS`] whose value is known, then `<subtask>.<uid>.<name>` for
/// each of the operator's own counters (Flink's id of an operator-scope metric).
pub fn task_metrics(sample: &TaskSample) -> impl Iterator<Item = TaskMetric> + '_ {
    let subtask = sample.task.subtask;
    let task = TASK_METRICS
        .iter()
        .map(move |&(name, _, value)| TaskMetric {
            id: format!("{subtask}.{name}"),
            value: value(sample),
        });
    let partitions = sample.partitions.iter().flat_map(move |progress| {
        PARTITION_METRICS
            .iter()
            .filter_map(move |&(name, _, value)| {
                Some(TaskMetric {
                    id: format!(
                        "{subtask}.{KAFKA_SOURCE_READER}.topic.{}.partition.{}.{name}",
                        progress.topic, progress.partition
                    ),
                    value: value(progress)? as f64,
                })
            })
    });
    let counters = sample.counters.iter().map(move |(name, value)| TaskMetric {
        id: format!("{subtask}.{}.{name}", sample.task.uid),
        value: *value as f64,
    });
    task.chain(partitions).chain(counters)
}

/// A sample of every subtask of the running attempt (none while no attempt runs), shared
/// with every other reader within a second (see `JobMetrics::sample`).
pub fn task_samples(control: &JobControl, snapshot: &Snapshot) -> Vec<TaskSample> {
    snapshot
        .metrics
        .as_ref()
        .map(|m| m.sample(control.attempt_start_time()))
        .unwrap_or_default()
}

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
    let samples = task_samples(control, &snapshot);
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
        task.register(partition_metric_name(name), help, family);
    }

    let mut counters: Vec<&str> = samples
        .iter()
        .flat_map(|s| s.counters.iter().map(|(name, _)| name.as_str()))
        .collect();
    counters.sort_unstable();
    counters.dedup();
    for name in counters {
        let family = TaskGauges::default();
        for sample in &samples {
            if let Some((_, value)) = sample.counters.iter().find(|(n, _)| n == name) {
                let labels = vec![
                    ("task_name", sample.task.uid.clone()),
                    ("subtask_index", sample.task.subtask.to_string()),
                ];
                family.get_or_create(&labels).set(*value as f64);
            }
        }
        let help = format!("The operator's own counter {name}");
        task.register(counter_metric_name(name), help, family);
    }

    let mut text = String::new();
    encode(&mut text, &registry)?;
    Ok(text)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use cairn_core::connectors::PartitionProgress;
    use cairn_core::runtime::{TaskId, TaskKind, TaskSample};

    use super::{counter_metric_name, partition_metric_name, task_metrics};

    /// A Kafka source subtask's ids are Flink's: `<subtask>.<name>` for the task metrics,
    /// `<subtask>.KafkaSourceReader.topic.<t>.partition.<p>.<name>` for each partition's
    /// known values.
    #[test]
    fn task_metric_ids_are_flinks() {
        let sample = TaskSample {
            task: TaskId {
                uid: "lines".into(),
                subtask: 1,
                parallelism: 2,
            },
            kind: TaskKind::Source,
            records_in: 0,
            records_out: 7,
            records_in_per_second: 0.0,
            records_out_per_second: 3.5,
            back_pressured_ms_per_second: 0.0,
            alignment: Duration::ZERO,
            input_watermark: i64::MIN,
            output_watermark: 1_000,
            counters: vec![("numLateRecordsDropped".into(), 3)],
            partitions: vec![PartitionProgress {
                topic: "word.lines".into(),
                partition: 2,
                current_offset: 40,
                committed_offset: None,
                lag: Some(12),
            }],
        };
        let metrics: Vec<_> = task_metrics(&sample)
            .map(|m| (m.id, m.value))
            .filter(|(id, _)| {
                [
                    "numRecordsOut",
                    "numRecordsOutPerSecond",
                    "KafkaSourceReader",
                    "lines",
                ]
                .iter()
                .any(|name| id.starts_with(&format!("1.{name}")))
            })
            .collect();
        let expected = [
            ("1.numRecordsOut", 7.0),
            ("1.numRecordsOutPerSecond", 3.5),
            (
                "1.KafkaSourceReader.topic.word.lines.partition.2.currentOffset",
                40.0,
            ),
            (
                "1.KafkaSourceReader.topic.word.lines.partition.2.records-lag",
                12.0,
            ),
            ("1.lines.numLateRecordsDropped", 3.0),
        ];
        assert_eq!(metrics, expected.map(|(id, v)| (id.to_owned(), v)));
        assert_eq!(
            partition_metric_name("records-lag"),
            "KafkaSourceReader_records_lag"
        );
        assert_eq!(counter_metric_name("numLate_1"), "operator_numLate_1");
    }
}
