//! Apache Kafka in and out, with the option names, defaults and semantics of Flink's Kafka
//! connector.
//!
//! - The source ([`source`]) reads one or more topics; its splits are partitions, spread over
//!   its subtasks as Flink's enumerator spreads them ([`assign`]). A split's position is the
//!   partition's next offset (and, bounded, the offset it stops at), so a restore at any
//!   parallelism resumes every partition exactly after its checkpointed offset.
//! - The sink ([`sink`]) writes one topic with `sink.delivery-guarantee` `exactly-once` (a
//!   Kafka transaction per subtask and checkpoint, committed once the checkpoint is
//!   complete and committed again by a restore: [`transactions`]), `at-least-once` or
//!   `none`.
//!
//! Both use librdkafka (the `rdkafka` crate); `properties.*` options go to it as they are,
//! which is where security settings belong. librdkafka has no call to commit a
//! transaction another process prepared, which a restore needs: [`protocol`] speaks those
//! few requests itself, secured as the same properties say ([`security`]: TLS, SASL PLAIN
//! and [`scram`]).

mod assign;
mod offsets;
mod protocol;
mod scram;
mod security;
mod sink;
mod source;
mod transactions;

use std::sync::Mutex;
use std::time::Duration;

use rdkafka::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::{ConnectorError, Options};

pub(super) use sink::SINK;
pub(super) use source::SOURCE;

/// How long one call to the cluster (metadata, offsets, a flush, a transaction's
/// coordinator) may take before the subtask fails with the error (the restart strategy then
/// decides): `properties.default.api.timeout.ms`, as the Java client Flink uses calls it,
/// with its default.
const API_TIMEOUT: Duration = Duration::from_secs(60);
const API_TIMEOUT_PROPERTY: &str = "default.api.timeout.ms";

/// A node's Kafka client: librdkafka's settings, and the timeout of one call.
#[derive(Debug, Clone)]
struct Client {
    config: ClientConfig,
    timeout: Duration,
}

/// The Kafka client settings a node's options give: `properties.bootstrap.servers`
/// (required) and every other `properties.*`, as librdkafka takes them, but for
/// `properties.default.api.timeout.ms`, which is Cairn's.
fn client(options: &Options) -> Result<Client, ConnectorError> {
    options.required("properties.bootstrap.servers")?;
    let mut config = ClientConfig::new();
    let mut timeout = API_TIMEOUT;
    for (key, value) in options.prefixed("properties.") {
        if key == API_TIMEOUT_PROPERTY {
            let ms: u64 = value.trim().parse().map_err(|e: std::num::ParseIntError| {
                options.invalid(
                    "properties.*",
                    value,
                    format!("{API_TIMEOUT_PROPERTY}: {e}"),
                )
            })?;
            timeout = Duration::from_millis(ms);
        } else {
            config.set(key, value);
        }
    }
    Ok(Client { config, timeout })
}

/// librdkafka's log lines and client-wide errors (a broker away, which it reconnects to),
/// into Cairn's log; the last such error is kept, since a call that then fails says only
/// that it timed out or could not reach a broker, not why.
#[derive(Debug, Default)]
struct ClientLogs {
    cause: Mutex<Option<String>>,
}

impl ClientLogs {
    /// `error` (a failed call's) with the client-wide error librdkafka reported last, the
    /// likely cause of a call that timed out: authentication refused, a certificate not
    /// verified, brokers away.
    fn with_cause(&self, error: ConnectorError) -> ConnectorError {
        let cause = self.cause.lock().unwrap_or_else(|e| e.into_inner()).clone();
        match (error, cause) {
            (ConnectorError::Kafka(message), Some(cause)) => {
                ConnectorError::Kafka(format!("{message} (librdkafka reports: {cause})"))
            }
            (error, _) => error,
        }
    }
}

impl rdkafka::ClientContext for ClientLogs {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        match level {
            RDKafkaLogLevel::Emerg
            | RDKafkaLogLevel::Alert
            | RDKafkaLogLevel::Critical
            | RDKafkaLogLevel::Error
            | RDKafkaLogLevel::Warning => tracing::warn!("librdkafka {fac}: {log_message}"),
            RDKafkaLogLevel::Notice | RDKafkaLogLevel::Info => {
                tracing::info!("librdkafka {fac}: {log_message}")
            }
            RDKafkaLogLevel::Debug => tracing::debug!("librdkafka {fac}: {log_message}"),
        }
    }

    fn error(&self, error: KafkaError, reason: &str) {
        tracing::warn!("kafka: {reason} ({error})");
        // "All brokers are down" follows from the cause; it is not one.
        if error.rdkafka_error_code() != Some(RDKafkaErrorCode::AllBrokersDown) {
            *self.cause.lock().unwrap_or_else(|e| e.into_inner()) = Some(reason.to_owned());
        }
    }
}

/// The bootstrap servers, as `host:port` pairs.
fn bootstrap_servers(config: &ClientConfig) -> Vec<String> {
    config
        .get("bootstrap.servers")
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// A failed call to Kafka, with what was being done.
fn kafka_error(action: impl std::fmt::Display) -> impl FnOnce(KafkaError) -> ConnectorError {
    move |e| ConnectorError::Kafka(format!("{action}: {e}"))
}

/// The topics of the `topic` option: one, or several separated by `;` (Flink's syntax).
fn topics(options: &Options) -> Result<Vec<String>, ConnectorError> {
    let raw = options.required("topic")?;
    let topics: Vec<String> = raw
        .split(';')
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if topics.is_empty() {
        return Err(options.invalid("topic", raw, "no topic named".into()));
    }
    if let Some(bad) = topics.iter().find(|t| !is_topic_name(t)) {
        return Err(options.invalid(
            "topic",
            raw,
            format!(
                "'{bad}' is not a Kafka topic name (letters, digits, '.', '_', '-'; at most 249)"
            ),
        ));
    }
    Ok(topics)
}

/// Kafka's rule for topic names.
fn is_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafkas_rule() {
        assert!(is_topic_name("words.in_2-x"));
        assert!(!is_topic_name("a b"));
        assert!(!is_topic_name(".."));
        assert!(!is_topic_name(&"t".repeat(250)));
    }
}
