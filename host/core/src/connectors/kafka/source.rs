//! The Kafka source: partitions as splits, offsets as positions.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use cairn_wire::Emitter;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::statistics::Statistics;
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use super::offsets::{self, OffsetSpec, Resolve};
use super::{ClientLogs, assign, client, kafka_error, topics};
use crate::batch::batch_full;
use crate::config::parse_duration;
use crate::connectors::{
    ConnectorError, Options, PartitionProgress, Poll, SourceConnector, SourceKind, SourcePosition,
    SourceReader, SplitPosition, Subtask, decode, encode,
};

pub(crate) const SOURCE: SourceKind = SourceKind {
    name: "kafka",
    options: &[
        "topic",
        "properties.*",
        "scan.startup.mode",
        "scan.startup.timestamp-millis",
        "scan.startup.specific-offsets",
        "scan.bounded.mode",
        "scan.bounded.timestamp-millis",
        "scan.bounded.specific-offsets",
        "scan.topic-partition-discovery.interval",
    ],
    from_options,
    describe,
};

/// The encoding of split positions.
const POSITION_VERSION: u32 = 1;
/// Flink's default `scan.topic-partition-discovery.interval`.
const DISCOVERY_INTERVAL: Duration = Duration::from_secs(5 * 60);
/// How long a reader with nothing to read lets its subtask wait before it looks again.
const IDLE: Duration = Duration::from_millis(10);

fn from_options(options: &Options) -> Result<Arc<dyn SourceConnector>, ConnectorError> {
    let client = client(options)?;
    let mut config = client.config;
    let group = config.get("group.id").map(str::to_owned);
    let auto_offset_reset = config.get("auto.offset.reset").map(str::to_owned);
    // Cairn assigns partitions and keeps offsets in checkpoints: no group membership, no
    // automatic commits. Offsets go to the group (if any) when a checkpoint completes.
    for (key, value) in [
        ("enable.auto.commit", "false"),
        ("enable.auto.offset.store", "false"),
        ("enable.partition.eof", "false"),
    ] {
        config.set(key, value);
    }
    if config.get("isolation.level").is_none() {
        config.set("isolation.level", "read_committed");
    }
    // An offset retention has deleted since (a restored one, after a long outage) resumes
    // at the earliest record left, not at the end: what is gone is gone, what is left is
    // read (librdkafka's own default would skip to the end).
    if auto_offset_reset.is_none() {
        config.set("auto.offset.reset", "earliest");
    }
    let bounded = offsets::bounded(options)?;
    let discovery = match options.get("scan.topic-partition-discovery.interval") {
        _ if bounded.is_some() => None,
        None => Some(DISCOVERY_INTERVAL),
        Some(raw) => match parse_duration(raw) {
            Some(interval) if interval.is_zero() => None,
            Some(interval) => Some(interval),
            None => {
                return Err(options.invalid(
                    "scan.topic-partition-discovery.interval",
                    raw,
                    "not a duration (for example '5 min', '30 s'; 0 turns discovery off)".into(),
                ));
            }
        },
    };
    Ok(Arc::new(KafkaSource {
        config,
        timeout: client.timeout,
        topics: topics(options)?,
        startup: offsets::startup(options)?,
        bounded,
        discovery,
        group,
        auto_offset_reset,
    }))
}

/// The consumer's context: librdkafka's log, and each partition's end from its statistics
/// (for the lag).
struct SourceContext {
    /// Whether the consumer reads committed records only: then a partition ends at its last
    /// stable offset, not its high watermark.
    read_committed: bool,
    ends: Mutex<HashMap<(String, i32), i64>>,
    logs: ClientLogs,
}

impl rdkafka::ClientContext for SourceContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.logs.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logs.error(error, reason);
    }

    fn stats(&self, statistics: Statistics) {
        let mut ends = self.ends.lock().unwrap_or_else(|e| e.into_inner());
        for (topic, stats) in statistics.topics {
            for partition in stats.partitions.values().filter(|p| p.partition >= 0) {
                let end = if self.read_committed {
                    partition.ls_offset
                } else {
                    partition.hi_offset
                };
                if end >= 0 {
                    ends.insert((topic.clone(), partition.partition), end);
                }
            }
        }
    }
}

impl ConsumerContext for SourceContext {}

/// How often librdkafka reports statistics (the partitions' ends, for the lag), unless
/// `properties.statistics.interval.ms` says otherwise.
const STATISTICS_INTERVAL_MS: &str = "1000";

/// A Kafka source node's settings.
#[derive(Debug)]
struct KafkaSource {
    config: ClientConfig,
    /// How long one call to the cluster may take.
    timeout: Duration,
    topics: Vec<String>,
    startup: OffsetSpec,
    /// Where each partition stops; `None`: unbounded.
    bounded: Option<OffsetSpec>,
    /// How often an unbounded source looks for new partitions; `None`: never.
    discovery: Option<Duration>,
    group: Option<String>,
    auto_offset_reset: Option<String>,
}

/// A split's checkpointed position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct Position {
    /// The offset of the next record to read.
    next: i64,
    /// The offset the split stops before (bounded sources).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    stop: Option<i64>,
}

/// One partition a reader reads.
#[derive(Debug)]
struct Split {
    topic: String,
    partition: i32,
    position: Position,
    /// The offset last committed to the consumer group.
    committed: Option<i64>,
}

impl Split {
    fn name(&self) -> String {
        split_name(&self.topic, self.partition)
    }

    fn done(&self) -> bool {
        self.position
            .stop
            .is_some_and(|stop| self.position.next >= stop)
    }
}

/// `topic-partition`, as Kafka and Flink print a partition.
fn split_name(topic: &str, partition: i32) -> String {
    format!("{topic}-{partition}")
}

/// The `(topic, partition, position)` of each checkpointed split.
fn positions(position: &SourcePosition) -> Result<Vec<(String, i32, Position)>, ConnectorError> {
    position
        .splits
        .iter()
        .map(|split| {
            let (topic, partition) = split
                .split
                .rsplit_once('-')
                .and_then(|(topic, partition)| Some((topic, partition.parse().ok()?)))
                .ok_or_else(|| {
                    ConnectorError::Restore(format!(
                        "'{}' is not a Kafka split (topic-partition)",
                        split.split
                    ))
                })?;
            let decoded: Position =
                decode("kafka", &split.position, position.version, POSITION_VERSION)?;
            Ok((topic.to_owned(), partition, decoded))
        })
        .collect()
}

fn describe(position: &SourcePosition) -> String {
    match positions(position) {
        Ok(splits) if splits.is_empty() => "kafka, no partitions".to_owned(),
        Ok(splits) => splits
            .iter()
            .map(|(topic, partition, p)| match p.stop {
                Some(stop) => format!("{topic}-{partition} next {} of {stop}", p.next),
                None => format!("{topic}-{partition} next {}", p.next),
            })
            .collect::<Vec<_>>()
            .join(", "),
        Err(e) => e.to_string(),
    }
}

impl SourceConnector for KafkaSource {
    fn redistributes(&self) -> bool {
        true
    }

    /// Restoring, `restored` holds the positions of every partition (after a rescale, all
    /// old subtasks'); the reader takes its own. A partition the checkpoint does not know
    /// (added since) starts at its earliest offset, as Flink starts discovered partitions.
    fn open(
        &self,
        subtask: Subtask,
        restored: Option<&SourcePosition>,
    ) -> Result<Box<dyn SourceReader>, ConnectorError> {
        let mut config = self.config.clone();
        config.set(
            "client.id",
            format!("cairn-{}-{}", subtask.uid, subtask.index),
        );
        // librdkafka assigns partitions only to a consumer with a group; without the
        // user's, one of the job's own, to which no offsets are committed.
        if self.group.is_none() {
            config.set(
                "group.id",
                format!("cairn-{}-{}", subtask.job_name, subtask.uid),
            );
        }
        if config.get("statistics.interval.ms").is_none() {
            config.set("statistics.interval.ms", STATISTICS_INTERVAL_MS);
        }
        let context = SourceContext {
            read_committed: config.get("isolation.level") == Some("read_committed"),
            ends: Mutex::default(),
            logs: ClientLogs::default(),
        };
        let consumer: BaseConsumer<SourceContext> = config
            .create_with_context(context)
            .map_err(kafka_error("cannot create the Kafka consumer"))?;
        let restored = restored.map(positions).transpose()?;
        let mut reader = KafkaReader {
            consumer,
            source: SourceSettings {
                topics: self.topics.clone(),
                startup: self.startup.clone(),
                bounded: self.bounded.clone(),
                group: self.group.clone(),
                auto_offset_reset: self.auto_offset_reset.clone(),
                started: restored.is_some(),
                timeout: self.timeout,
            },
            index: subtask.index,
            parallelism: subtask.parallelism,
            splits: Vec::new(),
            discovery: self.discovery.map(|every| (every, Instant::now() + every)),
            last_error: None,
        };
        reader
            .add_splits(&restored.unwrap_or_default())
            .map_err(|e| reader.with_cause(e))?;
        Ok(Box::new(reader))
    }
}

/// What a reader needs of its node's settings to start new splits.
struct SourceSettings {
    topics: Vec<String>,
    startup: OffsetSpec,
    bounded: Option<OffsetSpec>,
    group: Option<String>,
    auto_offset_reset: Option<String>,
    /// Whether partitions found now are new since the job started (found by a restore or a
    /// discovery): they start at their earliest offset, as Flink starts them.
    started: bool,
    timeout: Duration,
}

/// One subtask of a Kafka source.
struct KafkaReader {
    consumer: BaseConsumer<SourceContext>,
    source: SourceSettings,
    index: u32,
    parallelism: u32,
    splits: Vec<Split>,
    /// The discovery interval and when it is next due.
    discovery: Option<(Duration, Instant)>,
    /// The last transient error logged, not to log it for every poll.
    last_error: Option<RDKafkaErrorCode>,
}

/// How long a failed start serves the consumer's queue for the client-wide errors behind
/// the failure (librdkafka reports them there, and only a poll hands them over).
const SERVE_CAUSES: Duration = Duration::from_millis(200);

impl KafkaReader {
    /// `error` with its likely cause, from the client-wide errors librdkafka reported.
    /// Serving them may take records from assigned partitions; the reader is failing.
    fn with_cause(&self, error: ConnectorError) -> ConnectorError {
        let deadline = Instant::now() + SERVE_CAUSES;
        let mut now = Instant::now();
        while now < deadline {
            let _ = self.consumer.poll(deadline - now);
            now = Instant::now();
        }
        self.consumer.context().logs.with_cause(error)
    }
    /// Adds the partitions of the source's topics this subtask owns and does not read yet,
    /// at their position in `restored` or where the startup mode says, and assigns them.
    fn add_splits(&mut self, restored: &[(String, i32, Position)]) -> Result<(), ConnectorError> {
        let mut added = Vec::new();
        for topic in self.source.topics.clone() {
            let new: Vec<i32> = self
                .partitions(&topic)?
                .into_iter()
                .filter(|&p| assign::owner(&topic, p, self.parallelism) == self.index)
                .filter(|&p| {
                    !self
                        .splits
                        .iter()
                        .any(|s| s.topic == topic && s.partition == p)
                })
                .collect();
            let (known, unknown): (Vec<i32>, Vec<i32>) = new
                .iter()
                .partition(|&&p| restored.iter().any(|(t, rp, _)| *t == topic && *rp == p));
            for p in known {
                let (_, _, position) = restored
                    .iter()
                    .find(|(t, rp, _)| *t == topic && *rp == p)
                    .expect("partitioned by presence");
                added.push(Split {
                    topic: topic.clone(),
                    partition: p,
                    position: *position,
                    committed: None,
                });
            }
            added.extend(self.start(&topic, &unknown)?);
        }
        if added.is_empty() {
            return Ok(());
        }
        let mut assignment = TopicPartitionList::new();
        for split in added.iter().filter(|s| !s.done()) {
            assignment
                .add_partition_offset(
                    &split.topic,
                    split.partition,
                    Offset::Offset(split.position.next),
                )
                .map_err(kafka_error("cannot assign partitions"))?;
        }
        self.consumer
            .incremental_assign(&assignment)
            .map_err(kafka_error("cannot assign partitions"))?;
        tracing::info!(
            "kafka source subtask {} reads {}",
            self.index,
            added.iter().map(Split::name).collect::<Vec<_>>().join(", ")
        );
        self.splits.extend(added);
        Ok(())
    }

    /// New splits for `partitions` of `topic`, with their start (and stop) resolved.
    fn start(&self, topic: &str, partitions: &[i32]) -> Result<Vec<Split>, ConnectorError> {
        if partitions.is_empty() {
            return Ok(Vec::new());
        }
        let settings = &self.source;
        let startup = if settings.started {
            &OffsetSpec::Earliest
        } else {
            &settings.startup
        };
        let resolve = |spec, unlisted_earliest| Resolve {
            spec,
            auto_offset_reset: settings.auto_offset_reset.as_deref(),
            group: settings.group.as_deref(),
            unlisted_earliest,
            timeout: settings.timeout,
        };
        let starts = resolve(startup, true).offsets(&self.consumer, topic, partitions)?;
        let stops = match &settings.bounded {
            Some(spec) => resolve(spec, false)
                .offsets(&self.consumer, topic, partitions)?
                .into_iter()
                .map(Some)
                .collect(),
            None => vec![None; partitions.len()],
        };
        Ok(partitions
            .iter()
            .zip(starts.into_iter().zip(stops))
            .map(|(&partition, (next, stop))| Split {
                topic: topic.to_owned(),
                partition,
                position: Position { next, stop },
                committed: None,
            })
            .collect())
    }

    /// The partitions of `topic`; an unknown topic is an error.
    fn partitions(&self, topic: &str) -> Result<Vec<i32>, ConnectorError> {
        let metadata = self
            .consumer
            .fetch_metadata(Some(topic), self.source.timeout)
            .map_err(kafka_error(format_args!(
                "cannot read the metadata of topic {topic}"
            )))?;
        let Some(found) = metadata.topics().iter().find(|t| t.name() == topic) else {
            return Err(ConnectorError::Kafka(format!(
                "the cluster did not describe topic {topic}"
            )));
        };
        if let Some(error) = found.error() {
            let code = RDKafkaErrorCode::from(error);
            return Err(ConnectorError::Kafka(match code {
                RDKafkaErrorCode::UnknownTopicOrPartition => format!(
                    "topic {topic} does not exist (create it, or enable the broker's \
                     auto.create.topics.enable)"
                ),
                RDKafkaErrorCode::TopicAuthorizationFailed => {
                    format!("not authorized to read topic {topic}")
                }
                code => format!("cannot read topic {topic}: {code}"),
            }));
        }
        Ok(found.partitions().iter().map(|p| p.id()).collect())
    }

    /// Stops fetching a split that reached its stop offset.
    fn finish(&self, split: usize) {
        let split = &self.splits[split];
        let mut done = TopicPartitionList::new();
        done.add_partition(&split.topic, split.partition);
        if let Err(e) = self.consumer.incremental_unassign(&done) {
            tracing::debug!("cannot unassign {}: {e}", split.name());
        }
    }

    /// Moves every split's next offset up to the consumer's position, which is past the
    /// transaction markers and aborted records `read_committed` never returns. Only when
    /// nothing fetched is waiting to be returned: then no record lies below that position.
    fn catch_up(&mut self) -> Result<(), ConnectorError> {
        let positions = self
            .consumer
            .position()
            .map_err(kafka_error("cannot read the consumer's positions"))?;
        for i in 0..self.splits.len() {
            let split = &mut self.splits[i];
            if split.done() {
                continue;
            }
            if let Some(Offset::Offset(at)) = positions
                .find_partition(&split.topic, split.partition)
                .map(|e| e.offset())
                && at > split.position.next
            {
                split.position.next = split.position.stop.map_or(at, |stop| at.min(stop));
                if split.done() {
                    self.finish(i);
                }
            }
        }
        Ok(())
    }

    /// Looks for partitions added to the topics, when due.
    fn discover(&mut self) -> Result<(), ConnectorError> {
        let Some((every, due)) = self.discovery else {
            return Ok(());
        };
        if Instant::now() < due {
            return Ok(());
        }
        self.discovery = Some((every, Instant::now() + every));
        let before = self.splits.len();
        self.source.started = true;
        // The next look may succeed: a failed one is not a reason to stop reading.
        if let Err(e) = self.add_splits(&[]) {
            tracing::warn!(
                "kafka source subtask {}: cannot look for new partitions: {e}",
                self.index
            );
            return Ok(());
        }
        if self.splits.len() > before {
            tracing::info!(
                "kafka source subtask {} discovered {} new partition(s)",
                self.index,
                self.splits.len() - before
            );
        }
        Ok(())
    }

    /// Handles a consumer error: transient ones (a broker away, which librdkafka reconnects
    /// to) are logged once and waited out; others fail the subtask.
    fn consumer_error(&mut self, error: KafkaError) -> Result<(), ConnectorError> {
        let code = match &error {
            KafkaError::PartitionEOF(_) => return Ok(()),
            KafkaError::MessageConsumption(code) => *code,
            _ => return Err(ConnectorError::Kafka(format!("cannot consume: {error}"))),
        };
        let transient = matches!(
            code,
            RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::Resolve
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut
                | RDKafkaErrorCode::NotLeaderForPartition
                | RDKafkaErrorCode::LeaderNotAvailable
                | RDKafkaErrorCode::NetworkException
        );
        if !transient {
            return Err(ConnectorError::Kafka(format!("cannot consume: {error}")));
        }
        if self.last_error != Some(code) {
            tracing::warn!(
                "kafka source subtask {}: {error}; waiting for the broker",
                self.index
            );
            self.last_error = Some(code);
        }
        Ok(())
    }
}

impl SourceReader for KafkaReader {
    fn poll(&mut self, out: &mut Emitter) -> Result<Poll, ConnectorError> {
        self.discover()?;
        let mut drained = false;
        while !batch_full(out) {
            let message = match self.consumer.poll(Duration::ZERO) {
                None => {
                    drained = true;
                    break;
                }
                Some(Err(e)) => {
                    self.consumer_error(e)?;
                    continue;
                }
                Some(Ok(message)) => message,
            };
            self.last_error = None;
            let (topic, partition, offset) =
                (message.topic(), message.partition(), message.offset());
            let Some(i) = self
                .splits
                .iter()
                .position(|s| s.partition == partition && s.topic == topic)
            else {
                continue;
            };
            let split = &mut self.splits[i];
            if split.done() || offset < split.position.next {
                continue;
            }
            if split.position.stop.is_some_and(|stop| offset >= stop) {
                split.position.next = split.position.stop.unwrap_or(offset);
                self.finish(i);
                continue;
            }
            let (key, value) = (
                message.key().unwrap_or_default(),
                message.payload().unwrap_or_default(),
            );
            match message.timestamp().to_millis() {
                Some(ts) => out.emit_with_timestamp(key, value, ts),
                None => out.emit_keyed(key, value),
            }
            split.position.next = offset + 1;
            if split.done() {
                self.finish(i);
            }
        }
        if drained {
            self.catch_up()?;
        }
        if self.source.bounded.is_some() && self.splits.iter().all(Split::done) {
            return Ok(Poll::End);
        }
        Ok(if drained {
            Poll::Idle(IDLE)
        } else {
            Poll::Ready
        })
    }

    fn position(&self) -> SourcePosition {
        SourcePosition {
            version: POSITION_VERSION,
            splits: self
                .splits
                .iter()
                .map(|split| SplitPosition {
                    split: split.name(),
                    position: encode(&split.position),
                })
                .collect(),
        }
    }

    /// Commits the completed checkpoint's offsets to the consumer group, for lag
    /// monitoring; recovery never reads them.
    fn checkpoint_complete(&mut self, position: &SourcePosition) {
        if self.source.group.is_none() {
            return;
        }
        let Ok(splits) = positions(position) else {
            return;
        };
        let mut offsets = TopicPartitionList::new();
        for (topic, partition, p) in &splits {
            if let Err(e) = offsets.add_partition_offset(topic, *partition, Offset::Offset(p.next))
            {
                tracing::debug!("cannot commit the offset of {topic}-{partition}: {e}");
            }
        }
        if let Err(e) = self.consumer.commit(&offsets, CommitMode::Async) {
            tracing::warn!("cannot commit offsets to the consumer group: {e}");
            return;
        }
        for split in &mut self.splits {
            if let Some((_, _, p)) = splits
                .iter()
                .find(|(t, partition, _)| *t == split.topic && *partition == split.partition)
            {
                split.committed = Some(p.next);
            }
        }
    }

    fn partitions(&self) -> Vec<PartitionProgress> {
        if self.source.bounded.is_some() && self.splits.iter().all(Split::done) {
            // Ended: nothing reads the consumer's queue any more but this, and librdkafka
            // keeps queueing its statistics there.
            while self.consumer.poll(Duration::ZERO).is_some() {}
        }
        let ends = self
            .consumer
            .context()
            .ends
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        self.splits
            .iter()
            .map(|split| {
                let end = ends
                    .get(&(split.topic.clone(), split.partition))
                    .map(|&end| split.position.stop.map_or(end, |stop| end.min(stop)));
                PartitionProgress {
                    topic: split.topic.clone(),
                    partition: split.partition,
                    current_offset: split.position.next,
                    committed_offset: split.committed,
                    lag: end.map(|end| (end - split.position.next).max(0)),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_name_their_partition() {
        let position = SourcePosition {
            version: POSITION_VERSION,
            splits: vec![
                SplitPosition {
                    split: "my-topic-2".into(),
                    position: encode(&Position {
                        next: 7,
                        stop: Some(9),
                    }),
                },
                SplitPosition {
                    split: "t-0".into(),
                    position: encode(&Position {
                        next: 0,
                        stop: None,
                    }),
                },
            ],
        };
        assert_eq!(describe(&position), "my-topic-2 next 7 of 9, t-0 next 0");
        let parsed = positions(&position).unwrap();
        assert_eq!(parsed[0].0, "my-topic");
        assert_eq!(parsed[0].1, 2);
        let mut bad = position.clone();
        bad.splits[0].split = "nopartition".into();
        assert!(positions(&bad).unwrap_err().is_restore());
    }
}
