//! Where the source starts and stops in each partition: Flink's `scan.startup.mode` and
//! `scan.bounded.mode`, resolved to offsets once, when a partition is first read, so that a
//! checkpoint always holds offsets and never a mode.

use std::collections::BTreeMap;

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::{Offset, TopicPartitionList};

use std::time::Duration;

use super::{ConnectorError, Options, kafka_error};

/// A way to pick one offset per partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum OffsetSpec {
    /// The first offset the partition still holds.
    Earliest,
    /// The partition's end when resolved (for `read_committed`, its last stable offset).
    Latest,
    /// The consumer group's committed offset (`properties.group.id`); without one,
    /// `properties.auto.offset.reset` (`earliest` or `latest`) decides, or it is an error.
    GroupOffsets,
    /// The first offset whose record timestamp is at or after this (ms since the epoch);
    /// the end when there is none.
    Timestamp(i64),
    /// Offsets by partition: `partition:0,offset:42;partition:1,offset:300`.
    Specific(BTreeMap<i32, i64>),
}

/// `scan.startup.mode` (default `earliest-offset`, the DataStream `KafkaSource`'s).
pub(super) fn startup(options: &Options) -> Result<OffsetSpec, ConnectorError> {
    let mode = options
        .get("scan.startup.mode")
        .unwrap_or("earliest-offset");
    spec(options, "scan.startup.mode", mode, "scan.startup")?.ok_or_else(|| {
        options.invalid(
            "scan.startup.mode",
            mode,
            "a source must start somewhere: earliest-offset, latest-offset, group-offsets, \
             timestamp or specific-offsets"
                .into(),
        )
    })
}

/// `scan.bounded.mode` (default `unbounded`): `None` for an unbounded source.
pub(super) fn bounded(options: &Options) -> Result<Option<OffsetSpec>, ConnectorError> {
    let mode = options.get("scan.bounded.mode").unwrap_or("unbounded");
    let spec = spec(options, "scan.bounded.mode", mode, "scan.bounded")?;
    if spec == Some(OffsetSpec::Earliest) {
        return Err(options.invalid(
            "scan.bounded.mode",
            mode,
            "a bounded source stops at latest-offset, group-offsets, timestamp or \
             specific-offsets"
                .into(),
        ));
    }
    Ok(spec)
}

/// The spec `mode` names; its parameters are options `<prefix>.timestamp-millis` and
/// `<prefix>.specific-offsets`.
fn spec(
    options: &Options,
    option: &'static str,
    mode: &str,
    prefix: &'static str,
) -> Result<Option<OffsetSpec>, ConnectorError> {
    let (timestamp, specific) = match prefix {
        "scan.startup" => (
            "scan.startup.timestamp-millis",
            "scan.startup.specific-offsets",
        ),
        _ => (
            "scan.bounded.timestamp-millis",
            "scan.bounded.specific-offsets",
        ),
    };
    Ok(Some(match mode {
        "unbounded" if prefix == "scan.bounded" => return Ok(None),
        "earliest-offset" => OffsetSpec::Earliest,
        "latest-offset" => OffsetSpec::Latest,
        "group-offsets" => OffsetSpec::GroupOffsets,
        "timestamp" => {
            let raw = options.required(timestamp)?;
            OffsetSpec::Timestamp(raw.trim().parse().map_err(|e: std::num::ParseIntError| {
                options.invalid(timestamp, raw, e.to_string())
            })?)
        }
        "specific-offsets" => {
            let raw = options.required(specific)?;
            OffsetSpec::Specific(
                parse_specific(raw).map_err(|reason| options.invalid(specific, raw, reason))?,
            )
        }
        other => {
            let known = if prefix == "scan.bounded" {
                "unbounded, latest-offset, group-offsets, timestamp, specific-offsets"
            } else {
                "earliest-offset, latest-offset, group-offsets, timestamp, specific-offsets"
            };
            return Err(options.invalid(option, other, format!("known modes: {known}")));
        }
    }))
}

/// `partition:0,offset:42;partition:1,offset:300`
fn parse_specific(raw: &str) -> Result<BTreeMap<i32, i64>, String> {
    let mut offsets = BTreeMap::new();
    for entry in raw.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let parsed = entry.split_once(',').and_then(|(partition, offset)| {
            let partition = partition
                .trim()
                .strip_prefix("partition:")?
                .trim()
                .parse()
                .ok()?;
            let offset = offset.trim().strip_prefix("offset:")?.trim().parse().ok()?;
            Some((partition, offset))
        });
        match parsed {
            Some((partition, offset)) if partition >= 0 && offset >= 0 => {
                offsets.insert(partition, offset);
            }
            _ => {
                return Err(format!(
                    "'{entry}' is not 'partition:<n>,offset:<n>' (entries separated by ';')"
                ));
            }
        }
    }
    if offsets.is_empty() {
        return Err("no partition offsets given".into());
    }
    Ok(offsets)
}

/// What resolving a spec needs besides the partitions.
pub(super) struct Resolve<'a> {
    pub spec: &'a OffsetSpec,
    /// Used by `group-offsets` without a committed offset.
    pub auto_offset_reset: Option<&'a str>,
    pub group: Option<&'a str>,
    /// Whether a partition `Specific` does not list falls back to the earliest offset
    /// (startup) or is an error (bounded).
    pub unlisted_earliest: bool,
    /// How long one call may take.
    pub timeout: Duration,
}

impl Resolve<'_> {
    /// One offset for each of `partitions` of `topic`.
    pub(super) fn offsets<C: ConsumerContext>(
        &self,
        consumer: &BaseConsumer<C>,
        topic: &str,
        partitions: &[i32],
    ) -> Result<Vec<i64>, ConnectorError> {
        let watermarks = |partition: i32| {
            consumer
                .fetch_watermarks(topic, partition, self.timeout)
                .map_err(kafka_error(format_args!(
                    "cannot read the offsets of {topic}-{partition}"
                )))
        };
        match self.spec {
            OffsetSpec::Earliest => partitions.iter().map(|&p| Ok(watermarks(p)?.0)).collect(),
            OffsetSpec::Latest => partitions.iter().map(|&p| Ok(watermarks(p)?.1)).collect(),
            OffsetSpec::Specific(offsets) => partitions
                .iter()
                .map(|&p| match offsets.get(&p) {
                    Some(&offset) => Ok(offset),
                    None if self.unlisted_earliest => Ok(watermarks(p)?.0),
                    None => Err(ConnectorError::Kafka(format!(
                        "scan.bounded.specific-offsets gives no offset for partition {p} of \
                         topic {topic}"
                    ))),
                })
                .collect(),
            OffsetSpec::Timestamp(ts) => {
                let mut query = TopicPartitionList::new();
                for &p in partitions {
                    query
                        .add_partition_offset(topic, p, Offset::Offset(*ts))
                        .map_err(kafka_error("cannot ask for offsets by time"))?;
                }
                let found =
                    consumer
                        .offsets_for_times(query, self.timeout)
                        .map_err(kafka_error(format_args!(
                            "cannot look up offsets of {topic} by timestamp {ts}"
                        )))?;
                partitions
                    .iter()
                    .map(
                        |&p| match found.find_partition(topic, p).map(|e| e.offset()) {
                            Some(Offset::Offset(offset)) => Ok(offset),
                            // No record at or after the timestamp: the end.
                            _ => Ok(watermarks(p)?.1),
                        },
                    )
                    .collect()
            }
            OffsetSpec::GroupOffsets => {
                let group = self.group.ok_or_else(|| {
                    ConnectorError::Kafka(
                        "group-offsets needs the consumer group: set properties.group.id".into(),
                    )
                })?;
                let mut query = TopicPartitionList::new();
                for &p in partitions {
                    query.add_partition(topic, p);
                }
                let committed =
                    consumer
                        .committed_offsets(query, self.timeout)
                        .map_err(kafka_error(format_args!(
                            "cannot read group {group}'s committed offsets of {topic}"
                        )))?;
                let offsets = partitions
                    .iter()
                    .map(
                        |&p| match committed.find_partition(topic, p).map(|e| e.offset()) {
                            Some(Offset::Offset(offset)) => Ok(offset),
                            _ => match self.auto_offset_reset {
                                Some("earliest" | "smallest" | "beginning") => Ok(watermarks(p)?.0),
                                Some("latest" | "largest" | "end") => Ok(watermarks(p)?.1),
                                _ => Err(ConnectorError::Kafka(format!(
                                    "group {group} has no committed offset for {topic}-{p}; set \
                                 properties.auto.offset.reset to earliest or latest to start \
                                 there"
                                ))),
                            },
                        },
                    )
                    .collect();
                // Dropped before the consumer is used again (see the harness's pitfall).
                drop(committed);
                offsets
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specific_offsets_are_flinks_syntax() {
        assert_eq!(
            parse_specific("partition:0,offset:42; partition:1,offset:300"),
            Ok(BTreeMap::from([(0, 42), (1, 300)]))
        );
        assert!(
            parse_specific("0:42")
                .unwrap_err()
                .contains("partition:<n>")
        );
        assert!(parse_specific("partition:-1,offset:2").is_err());
        assert!(parse_specific(" ; ").is_err());
    }
}
