//! The Kafka sink: one topic, with Flink's `sink.delivery-guarantee`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use cairn_wire::PackedBatch;
use rdkafka::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;

use super::protocol::Coordinators;
use super::security::Security;
use super::transactions::{
    Prepared, Recovery, SinkTransactions, answers_for, is_fenced, recovery, subtask_prefix,
};
use super::{ClientLogs, bootstrap_servers, client, kafka_error, topics};
use crate::connectors::{
    ConnectorError, Options, SinkConnector, SinkKind, SinkStart, SinkState, SinkWriter, Subtask,
    decode, encode,
};

pub(crate) const SINK: SinkKind = SinkKind {
    name: "kafka",
    options: &[
        "topic",
        "properties.*",
        "sink.delivery-guarantee",
        "sink.transactional-id-prefix",
    ],
    from_options,
    describe,
};

/// The encoding of [`SinkTransactions`].
const STATE_VERSION: u32 = 1;
/// The producers' `transaction.timeout.ms` unless `properties.transaction.timeout.ms` says
/// otherwise: the broker's default `transaction.max.timeout.ms` (15 minutes), so that a
/// checkpoint prepared before a crash can still be committed by a restore that long after
/// (librdkafka's own default, one minute, loses it sooner).
const TRANSACTION_TIMEOUT_MS: u32 = 900_000;

/// Flink's `sink.delivery-guarantee`.
#[derive(Debug, Clone)]
enum Guarantee {
    /// A transaction per subtask and checkpoint, committed when the checkpoint completes;
    /// a restore reaches the transaction coordinators secured as this says.
    ExactlyOnce(Security),
    /// Everything written is flushed (acknowledged by the brokers) at each barrier.
    AtLeastOnce,
    /// Records are sent and not waited for.
    None,
}

fn from_options(options: &Options) -> Result<Arc<dyn SinkConnector>, ConnectorError> {
    let client = client(options)?;
    let mut config = client.config;
    let topic = match topics(options)?.as_slice() {
        [topic] => topic.clone(),
        _ => {
            return Err(options.invalid(
                "topic",
                options.get("topic").unwrap_or_default(),
                "a Kafka sink writes exactly one topic".into(),
            ));
        }
    };
    let guarantee = match options
        .get("sink.delivery-guarantee")
        .unwrap_or("at-least-once")
    {
        // A restore speaks to the transaction coordinators itself, secured as the client
        // settings say: refused up front when it cannot.
        "exactly-once" => {
            Guarantee::ExactlyOnce(Security::from_config(&config).map_err(|reason| {
                options.invalid(
                    "sink.delivery-guarantee",
                    "exactly-once",
                    format!(
                        "a restore commits transactions over connections of its own, which \
                         cannot follow these properties: {reason} (at-least-once can)"
                    ),
                )
            })?)
        }
        "at-least-once" => Guarantee::AtLeastOnce,
        "none" => Guarantee::None,
        other => {
            return Err(options.invalid(
                "sink.delivery-guarantee",
                other,
                "known: exactly-once, at-least-once, none".into(),
            ));
        }
    };
    // The partitioner Java clients use, so that a key lands where a Java producer puts it.
    if config.get("partitioner").is_none() {
        config.set("partitioner", "murmur2_random");
    }
    let transaction_timeout_ms = match config.get("transaction.timeout.ms") {
        Some(raw) => raw.trim().parse().map_err(|e: std::num::ParseIntError| {
            options.invalid("properties.*", raw, format!("transaction.timeout.ms: {e}"))
        })?,
        None => TRANSACTION_TIMEOUT_MS,
    };
    if matches!(guarantee, Guarantee::ExactlyOnce(_)) {
        config.set("transaction.timeout.ms", transaction_timeout_ms.to_string());
    }
    let prefix = options
        .get("sink.transactional-id-prefix")
        .map(str::to_owned);
    if let Some(prefix) = &prefix
        && prefix.is_empty()
    {
        return Err(options.invalid("sink.transactional-id-prefix", "", "empty".into()));
    }
    Ok(Arc::new(KafkaSink {
        timeout: client.timeout,
        config,
        topic,
        guarantee,
        prefix,
        transaction_timeout: Duration::from_millis(u64::from(transaction_timeout_ms)),
    }))
}

fn describe(state: &SinkState) -> String {
    match SinkTransactions::decode(state) {
        Ok(None) => "kafka, nothing pending".to_owned(),
        Ok(Some(state)) if state.pending.is_empty() => {
            format!("kafka, no transaction pending (ids {}<n>)", state.prefix)
        }
        Ok(Some(state)) => format!(
            "kafka, pending transaction(s) {}",
            state
                .pending
                .iter()
                .map(|p| format!("{} (checkpoint {})", p.transactional_id, p.checkpoint))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Err(e) => e.to_string(),
    }
}

impl SinkTransactions {
    /// Reads a checkpointed state; `None` for a sink that held nothing back (at-least-once).
    fn decode(state: &SinkState) -> Result<Option<Self>, ConnectorError> {
        if state.data.is_empty() {
            return Ok(None);
        }
        decode("kafka sink", &state.data, state.version, STATE_VERSION).map(Some)
    }

    fn encode(&self) -> SinkState {
        SinkState {
            version: STATE_VERSION,
            data: encode(self),
        }
    }
}

/// A Kafka sink node's settings.
#[derive(Debug)]
struct KafkaSink {
    config: ClientConfig,
    topic: String,
    guarantee: Guarantee,
    /// `sink.transactional-id-prefix`; by default `cairn/<job name>/<node uid>/<topic>`, the
    /// same for every run of the job, so that a run fences what an earlier one left open.
    prefix: Option<String>,
    /// How long one call to the cluster may take.
    timeout: Duration,
    transaction_timeout: Duration,
}

impl SinkConnector for KafkaSink {
    fn open(
        &self,
        subtask: Subtask,
        start: SinkStart,
    ) -> Result<Box<dyn SinkWriter>, ConnectorError> {
        let mut config = self.config.clone();
        config.set(
            "client.id",
            format!("cairn-{}-{}", subtask.uid, subtask.index),
        );
        let mode = match &self.guarantee {
            Guarantee::ExactlyOnce(security) => Mode::Transactional(Box::new(
                self.open_transactional(&config, security, subtask, start)?,
            )),
            guarantee => Mode::Plain {
                producer: create(&config)?,
                flush: matches!(guarantee, Guarantee::AtLeastOnce),
            },
        };
        Ok(Box::new(KafkaWriter {
            topic: self.topic.clone(),
            mode,
            timeout: self.timeout,
        }))
    }

    fn check(&self, state: &SinkState, _checkpoint: u64) -> Result<(), ConnectorError> {
        SinkTransactions::decode(state).map(drop)
    }

    fn checkpointing_warning(&self, interval: Option<Duration>) -> Option<String> {
        if !matches!(self.guarantee, Guarantee::ExactlyOnce(_)) {
            return None;
        }
        let Some(interval) = interval else {
            return Some(
                "the exactly-once Kafka sink commits its transactions when checkpoints \
                 complete, and checkpointing is off: read_committed readers see its output \
                 only when a bounded job ends; set execution.checkpointing.interval"
                    .to_owned(),
            );
        };
        (interval * 2 > self.transaction_timeout).then(|| {
            format!(
                "the Kafka sink's transactions time out after {:?} (transaction.timeout.ms) and \
                 the checkpoint interval is {interval:?}: a transaction must outlive its \
                 checkpoint and the restore after a crash, or its records are lost; raise \
                 properties.transaction.timeout.ms (up to the broker's \
                 transaction.max.timeout.ms) or checkpoint more often",
                self.transaction_timeout
            )
        })
    }
}

impl KafkaSink {
    /// Opens an exactly-once writer: restoring, it first commits what the restored
    /// checkpoint prepared; always, it fences what earlier attempts left open.
    fn open_transactional(
        &self,
        config: &ClientConfig,
        security: &Security,
        subtask: Subtask,
        start: SinkStart,
    ) -> Result<Transactional, ConnectorError> {
        let coordinators =
            Coordinators::new(bootstrap_servers(config), self.timeout, security.clone());
        let default_prefix = format!("cairn/{}/{}/{}", subtask.job_name, subtask.uid, self.topic);
        let prefix = self.prefix.as_deref().unwrap_or(&default_prefix);
        // Subtask prefixes of restored states under another prefix (the option changed),
        // and the ids the restore committed (never to be fenced, whatever they look like).
        let (mut others, mut committed) = (Vec::new(), Vec::new());
        if let SinkStart::Restore(states) = start {
            for (_, state) in states {
                let Some(restored) = SinkTransactions::decode(state)? else {
                    continue;
                };
                recover(&coordinators, &restored)?;
                committed.extend(restored.pending.iter().map(|p| p.transactional_id.clone()));
                if !restored.prefix.starts_with(&format!("{prefix}-")) {
                    others.push(restored.prefix);
                }
            }
        }
        let open = coordinators
            .open_transactions()
            .map_err(|e| ConnectorError::Kafka(format!("cannot list open transactions: {e}")))?;
        let timeout_ms = i32::try_from(self.transaction_timeout.as_millis()).unwrap_or(i32::MAX);
        for id in open.iter().filter(|id| {
            !committed.contains(id)
                && (answers_for(id, prefix, subtask.index, subtask.parallelism)
                    || others.iter().any(|other| id.starts_with(other.as_str())))
        }) {
            coordinators.fence(id, timeout_ms).map_err(|e| {
                ConnectorError::Kafka(format!("cannot abort transaction {id}: {e}"))
            })?;
            tracing::info!("aborted Kafka transaction {id}, left open by an earlier attempt");
        }
        Ok(Transactional {
            config: config.clone(),
            timeout: self.timeout,
            coordinators,
            state: SinkTransactions {
                prefix: subtask_prefix(prefix, subtask.index),
                pending: Vec::new(),
            },
            current: None,
            prepared: Vec::new(),
            spare: None,
        })
    }
}

/// Commits again every transaction `restored` prepared. One the broker no longer holds as
/// it was prepared is reported (its records are lost) and skipped, since no retry can
/// bring it back; any other failure fails the open, to be retried by a restart.
fn recover(coordinators: &Coordinators, restored: &SinkTransactions) -> Result<(), ConnectorError> {
    for prepared in &restored.pending {
        let id = &prepared.transactional_id;
        let now = coordinators
            .describe(id)
            .map_err(|e| ConnectorError::Kafka(format!("cannot describe transaction {id}: {e}")))?;
        let outcome = match recovery(prepared, now.as_ref()) {
            Recovery::Commit => {
                match coordinators.end(id, prepared.producer_id, prepared.epoch, true) {
                    Ok(()) => Ok("committed it"),
                    Err(e) if e.broker().is_some_and(is_fenced) => Err(e.to_string()),
                    Err(e) => {
                        return Err(ConnectorError::Kafka(format!(
                            "cannot commit transaction {id} of checkpoint {}: {e}",
                            prepared.checkpoint
                        )));
                    }
                }
            }
            Recovery::Committed => Ok("it was committed already"),
            Recovery::Lost(why) => Err(why),
        };
        match outcome {
            Ok(what) => tracing::info!(
                "restore: Kafka transaction {id} of checkpoint {}: {what}",
                prepared.checkpoint
            ),
            Err(why) => tracing::error!(
                "restore: Kafka transaction {id} of checkpoint {} cannot be committed, and the \
                 records it held are lost: {why}",
                prepared.checkpoint
            ),
        }
    }
    Ok(())
}

/// librdkafka's producer, with the first delivery error it reported.
type KafkaProducer = ThreadedProducer<DeliveryErrors>;

/// Keeps the first failed delivery, reported at the next flush.
#[derive(Default)]
struct DeliveryErrors {
    first: Mutex<Option<KafkaError>>,
    logs: ClientLogs,
}

impl rdkafka::ClientContext for DeliveryErrors {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.logs.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.logs.error(error, reason);
    }
}

/// A failed call of `producer`'s, with what was being done and the likely cause librdkafka
/// reported (its thread serves the producer's events).
fn failed<'a>(
    producer: &'a KafkaProducer,
    action: impl std::fmt::Display + 'a,
) -> impl FnOnce(KafkaError) -> ConnectorError + 'a {
    move |e| {
        producer
            .context()
            .logs
            .with_cause(ConnectorError::Kafka(format!("{action}: {e}")))
    }
}

impl ProducerContext for DeliveryErrors {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((error, _)) = result {
            let mut first = self.first.lock().unwrap_or_else(|e| e.into_inner());
            first.get_or_insert_with(|| error.clone());
        }
    }
}

impl DeliveryErrors {
    fn check(&self) -> Result<(), ConnectorError> {
        let first = self.first.lock().unwrap_or_else(|e| e.into_inner()).take();
        first.map_or(Ok(()), |e| {
            Err(ConnectorError::Kafka(format!(
                "cannot deliver a record: {e}"
            )))
        })
    }
}

fn create(config: &ClientConfig) -> Result<KafkaProducer, ConnectorError> {
    config
        .create_with_context(DeliveryErrors::default())
        .map_err(kafka_error("cannot create the Kafka producer"))
}

/// How a writer produces.
enum Mode {
    Plain {
        producer: KafkaProducer,
        flush: bool,
    },
    Transactional(Box<Transactional>),
}

/// An exactly-once writer's transactions.
struct Transactional {
    config: ClientConfig,
    /// How long one call may take.
    timeout: Duration,
    coordinators: Coordinators,
    state: SinkTransactions,
    /// The open transaction: its id, its producer, and whether anything was written.
    current: Option<(String, KafkaProducer, bool)>,
    /// Producers of the pre-committed transactions (`state.pending`), to commit with.
    prepared: Vec<KafkaProducer>,
    /// The next transaction's producer, readied off the sink's thread since the last
    /// barrier (a new client connects and initialises its id: tens of milliseconds).
    spare: Option<std::thread::JoinHandle<Result<(String, KafkaProducer), ConnectorError>>>,
}

/// A producer for transactional id `id` with a transaction begun.
fn ready(
    mut config: ClientConfig,
    id: String,
    timeout: Duration,
) -> Result<(String, KafkaProducer), ConnectorError> {
    config.set("transactional.id", &id);
    let producer = create(&config)?;
    producer.init_transactions(timeout).map_err(failed(
        &producer,
        format_args!("cannot start transactions as {id}"),
    ))?;
    producer.begin_transaction().map_err(failed(
        &producer,
        format_args!("cannot begin transaction {id}"),
    ))?;
    Ok((id, producer))
}

impl Transactional {
    /// The open transaction's producer, beginning a transaction under the next id if none
    /// is open.
    fn producer(&mut self) -> Result<&KafkaProducer, ConnectorError> {
        if self.current.is_none() {
            let (id, producer) = match self.spare.take() {
                Some(spare) => spare.join().map_err(|_| {
                    ConnectorError::Kafka("the thread readying a producer panicked".into())
                })??,
                None => ready(self.config.clone(), self.state.free_id(), self.timeout)?,
            };
            self.current = Some((id, producer, false));
        }
        let (_, producer, written) = self.current.as_mut().expect("opened above");
        *written = true;
        Ok(producer)
    }

    /// Flushes the open transaction and records it as pre-committed for `checkpoint`.
    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, ConnectorError> {
        if let Some((id, producer, true)) = self.current.take() {
            flush(&producer, self.timeout)?;
            let described = self
                .coordinators
                .describe(&id)
                .map_err(|e| {
                    ConnectorError::Kafka(format!("cannot describe transaction {id}: {e}"))
                })?
                .filter(|d| d.state == "Ongoing")
                .ok_or_else(|| {
                    ConnectorError::Kafka(format!(
                        "transaction {id} is not open after its records were delivered"
                    ))
                })?;
            self.state.pending.push(Prepared {
                checkpoint,
                transactional_id: id,
                producer_id: described.producer_id,
                epoch: described.epoch,
            });
            self.prepared.push(producer);
            let (config, id, timeout) = (self.config.clone(), self.state.free_id(), self.timeout);
            self.spare = Some(std::thread::spawn(move || ready(config, id, timeout)));
        }
        Ok(self.state.encode())
    }

    /// Commits the transactions pre-committed up to `checkpoint`.
    fn commit(&mut self, checkpoint: u64) -> Result<(), ConnectorError> {
        let due = self
            .state
            .pending
            .iter()
            .take_while(|p| p.checkpoint <= checkpoint)
            .count();
        for (prepared, producer) in self
            .state
            .pending
            .drain(..due)
            .zip(self.prepared.drain(..due))
        {
            producer.commit_transaction(self.timeout).map_err(failed(
                &producer,
                format_args!(
                    "cannot commit transaction {} of checkpoint {}",
                    prepared.transactional_id, prepared.checkpoint
                ),
            ))?;
        }
        Ok(())
    }
}

/// Waits until everything sent is acknowledged, and reports a failed delivery.
fn flush(producer: &KafkaProducer, timeout: Duration) -> Result<(), ConnectorError> {
    producer
        .flush(timeout)
        .map_err(failed(producer, "cannot flush records to Kafka"))?;
    producer.context().check()
}

/// One subtask of a Kafka sink.
struct KafkaWriter {
    topic: String,
    mode: Mode,
    /// How long a flush may take.
    timeout: Duration,
}

impl SinkWriter for KafkaWriter {
    fn write(&mut self, batch: &PackedBatch) -> Result<(), ConnectorError> {
        if batch.is_empty() {
            return Ok(());
        }
        let records = batch
            .records(0)
            .map_err(|e| ConnectorError::Malformed(e.to_string()))?;
        let producer = match &mut self.mode {
            Mode::Plain { producer, .. } => {
                producer.context().check()?;
                &*producer
            }
            Mode::Transactional(transactional) => transactional.producer()?,
        };
        for record in records {
            let mut message = BaseRecord::to(&self.topic).payload(record.value());
            if let Some(key) = record.key().filter(|k| !k.is_empty()) {
                message = message.key(key);
            }
            if let Some(ts) = record.timestamp() {
                message = message.timestamp(ts);
            }
            send(producer, message, self.timeout)?;
        }
        Ok(())
    }

    fn prepare(&mut self, checkpoint: u64) -> Result<SinkState, ConnectorError> {
        match &mut self.mode {
            Mode::Plain {
                producer,
                flush: true,
            } => {
                flush(producer, self.timeout)?;
                Ok(SinkState::empty())
            }
            Mode::Plain { producer, .. } => {
                producer.context().check()?;
                Ok(SinkState::empty())
            }
            Mode::Transactional(transactional) => transactional.prepare(checkpoint),
        }
    }

    fn commit(&mut self, checkpoint: u64) -> Result<(), ConnectorError> {
        match &mut self.mode {
            Mode::Plain { .. } => Ok(()),
            Mode::Transactional(transactional) => transactional.commit(checkpoint),
        }
    }

    /// Aborts the open transaction; pre-committed ones stay for the restore to commit.
    fn abort(&mut self) {
        if let Mode::Transactional(transactional) = &mut self.mode
            && let Some((id, producer, _)) = &transactional.current
            && let Err(e) = producer.abort_transaction(Duration::from_secs(5))
        {
            tracing::debug!("cannot abort transaction {id} (a restore fences it): {e}");
        }
    }
}

/// Sends one record, waiting while librdkafka's queue is full (backpressure), but not
/// longer than `timeout` at a stretch: a cluster that takes nothing fails the subtask.
fn send(
    producer: &KafkaProducer,
    mut message: BaseRecord<'_, [u8], [u8]>,
    timeout: Duration,
) -> Result<(), ConnectorError> {
    let mut waited = Duration::ZERO;
    loop {
        match producer.send(message) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), returned))
                if waited < timeout =>
            {
                message = returned;
                std::thread::sleep(QUEUE_FULL_PAUSE);
                waited += QUEUE_FULL_PAUSE;
            }
            Err((e, _)) => return Err(ConnectorError::Kafka(format!("cannot send a record: {e}"))),
        }
    }
}

/// How long a send waits for room in a full queue before it tries again.
const QUEUE_FULL_PAUSE: Duration = Duration::from_millis(1);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::connectors::sink_kind;

    fn sink(options: &[(&str, &str)]) -> Arc<dyn SinkConnector> {
        let options: Vec<(String, String)> = [
            ("properties.bootstrap.servers", "127.0.0.1:9092"),
            ("topic", "out"),
        ]
        .iter()
        .chain(options)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        sink_kind("kafka")
            .unwrap()
            .configure(&options)
            .unwrap()
            .connector
    }

    #[test]
    fn a_checkpoint_interval_near_the_transaction_timeout_is_warned_of() {
        let exactly_once = sink(&[
            ("sink.delivery-guarantee", "exactly-once"),
            ("properties.transaction.timeout.ms", "60000"),
        ]);
        let warn = |sink: &Arc<dyn SinkConnector>, seconds: Option<u64>| {
            sink.checkpointing_warning(seconds.map(Duration::from_secs))
        };
        assert!(warn(&exactly_once, Some(10)).is_none());
        let near = warn(&exactly_once, Some(40)).unwrap();
        assert!(near.contains("transaction.timeout.ms"), "{near}");
        let off = warn(&exactly_once, None).unwrap();
        assert!(off.contains("checkpointing is off"), "{off}");
        // Nothing waits for a checkpoint without transactions.
        let at_least_once = sink(&[]);
        assert!(warn(&at_least_once, Some(3600)).is_none());
        assert!(warn(&at_least_once, None).is_none());
    }

    #[test]
    fn exactly_once_needs_security_a_restore_can_speak_and_one_topic() {
        let options = |extra: &[(&str, &str)]| -> Vec<(String, String)> {
            [("properties.bootstrap.servers", "h:1"), ("topic", "a")]
                .iter()
                .chain(extra)
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let kind = sink_kind("kafka").unwrap();
        let err = kind
            .configure(&options(&[
                ("sink.delivery-guarantee", "exactly-once"),
                ("properties.security.protocol", "SASL_SSL"),
                ("properties.sasl.mechanism", "OAUTHBEARER"),
            ]))
            .err()
            .unwrap();
        assert!(err.to_string().contains("OAUTHBEARER is not one"), "{err}");
        let err = kind.configure(&options(&[("topic", "a;b")])).err().unwrap();
        assert!(err.to_string().contains("exactly one topic"), "{err}");
        let err = kind
            .configure(&options(&[("sink.delivery-guarantee", "twice")]))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("exactly-once, at-least-once, none"),
            "{err}"
        );
    }
}
