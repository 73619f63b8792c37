//! Kafka → keyed-sum → Kafka with exactly-once 1 s checkpoints, next to what the same client
//! (librdkafka) does on the same broker without Cairn: producing the input, consuming it
//! (read_committed), and copying it topic to topic (consume and produce at once: the
//! broker's own end-to-end rate, the limit of any job that reads and writes Kafka) — and
//! next to the same job in Flink with Flink's Kafka connector (`bench/flink/`, a local Flink
//! cluster in one JVM), when Maven and a JDK are at hand.
//! A real broker on loopback (`cairn_tests::kafka`), as the tests start one.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail, ensure};
use cairn_tests::kafka::KafkaBroker;
use cairn_tests::{Session, job, os, target_dir, workspace_root};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::path;

/// Partitions of every topic.
const PARTITIONS: i32 = 3;
const TIMEOUT: Duration = Duration::from_secs(120);

pub fn kafka(records: u64, keys: u64) -> anyhow::Result<()> {
    if !KafkaBroker::available()? {
        return Ok(());
    }
    let broker = KafkaBroker::start()?;
    let bootstrap = broker.bootstrap();
    for topic in ["in", "copy", "out-1", "out-2", "flink-1", "flink-2"] {
        broker.create_topic(topic, PARTITIONS)?;
    }
    let mut rows = Vec::new();
    let started = Instant::now();
    produce(&bootstrap, "in", records, keys)?;
    rows.push((
        "librdkafka: produce the input (acks=all)",
        started.elapsed(),
    ));
    let started = Instant::now();
    copy(&bootstrap, "in", None, records)?;
    rows.push(("librdkafka: consume it (read_committed)", started.elapsed()));
    let started = Instant::now();
    copy(&bootstrap, "in", Some("copy"), records)?;
    let limit = started.elapsed();
    rows.push((
        "librdkafka: copy it to another topic (consume + produce)",
        limit,
    ));

    let session = Session::new("bench-kafka");
    let mut cairn = Vec::new();
    for p in [1u32, 2] {
        let output = format!("out-{p}");
        let mut args = os(&["run", path(&job("keyed-sum")), "-p", &p.to_string()]);
        args.extend(os(&["-D", "execution.checkpointing.interval=1 s"]));
        args.extend(os(&[
            "--",
            "--input",
            &format!("kafka://{bootstrap}/in"),
            "--output",
            &format!("kafka://{bootstrap}/{output}"),
        ]));
        let run = session.cli(args);
        if !run.success() {
            bail!("keyed-sum through Kafka failed: {run:?}");
        }
        let seconds = job_seconds(&run.stdout)?;
        let written = broker.read_committed(&output)?.len() as u64;
        ensure!(
            written == records,
            "keyed-sum at p={p} committed {written} records of {records}"
        );
        cairn.push((p, Duration::from_secs_f64(seconds)));
    }

    let mut flink = Vec::new();
    match flink_job() {
        Ok(command) => {
            for p in [1u32, 2] {
                let output = format!("flink-{p}");
                let run = Command::new("java")
                    .args(&command)
                    .args([bootstrap.as_str(), "in", &output, &p.to_string()])
                    .output()
                    .context("cannot run java")?;
                let stdout = String::from_utf8_lossy(&run.stdout);
                let seconds = stdout
                    .lines()
                    .find_map(|l| l.strip_prefix("FLINK_SECONDS "))
                    .and_then(|s| s.trim().parse::<f64>().ok())
                    .with_context(|| {
                        format!(
                            "the Flink job failed: {stdout}{}",
                            String::from_utf8_lossy(&run.stderr)
                        )
                    })?;
                let written = broker.read_committed(&output)?.len() as u64;
                ensure!(
                    written == records,
                    "Flink at p={p} committed {written} records of {records}"
                );
                flink.push((p, Duration::from_secs_f64(seconds)));
            }
        }
        Err(e) => eprintln!("    the Flink comparison is skipped: {e:#}"),
    }

    println!(
        "\n### Kafka → keyed-sum → Kafka ({records} records, {keys} keys, {PARTITIONS} \
         partitions, broker on loopback)\n"
    );
    println!("| run | seconds | records/s | vs the copy |");
    println!("|---|---:|---:|---:|");
    let rate = |d: Duration| records as f64 / d.as_secs_f64();
    for (what, took) in &rows {
        println!(
            "| {what} | {:.2} | {:.0} | {:.2}× |",
            took.as_secs_f64(),
            rate(*took),
            rate(*took) / rate(limit)
        );
    }
    for (p, took) in &cairn {
        println!(
            "| cairn keyed-sum p={p}, exactly-once, 1 s checkpoints | {:.2} | {:.0} | {:.2}× |",
            took.as_secs_f64(),
            rate(*took),
            rate(*took) / rate(limit)
        );
    }
    for (p, took) in &flink {
        println!(
            "| Flink 2.2 KafkaSource → keyed sum → KafkaSink p={p}, exactly-once, 1 s \
             checkpoints | {:.2} | {:.0} | {:.2}× |",
            took.as_secs_f64(),
            rate(*took),
            rate(*took) / rate(limit)
        );
    }
    Ok(())
}

/// The `java` arguments that run `bench/flink`'s job: its jars resolved from Maven Central
/// into `target/toolchains/flink-kafka-bench/libs` (once) and its class compiled beside them.
fn flink_job() -> anyhow::Result<Vec<String>> {
    let project = workspace_root().join("bench").join("flink");
    let dir = target_dir().join("toolchains").join("flink-kafka-bench");
    let (libs, classes) = (dir.join("libs"), dir.join("classes"));
    let resolved = dir.join("resolved");
    if !resolved.exists() {
        let status = Command::new("mvn")
            .args(["-q", "-B", "-f"])
            .arg(project.join("pom.xml"))
            .arg("dependency:copy-dependencies")
            .arg(format!("-DoutputDirectory={}", libs.display()))
            .status()
            .context("cannot run mvn (Maven)")?;
        ensure!(
            status.success(),
            "mvn could not resolve Flink's jars ({status})"
        );
        std::fs::write(&resolved, "")?;
    }
    let classpath = format!("{}/*", libs.display());
    let status = Command::new("javac")
        .args(["-cp", &classpath, "-d"])
        .arg(&classes)
        .arg(project.join("src/main/java/cairn/bench/KafkaSum.java"))
        .status()
        .context("cannot run javac")?;
    ensure!(status.success(), "javac failed ({status})");
    Ok(vec![
        "-cp".into(),
        format!("{}:{classpath}", classes.display()),
        "cairn.bench.KafkaSum".into(),
    ])
}

/// `records` records `key-<i mod keys>` → `i` (8 bytes, little endian), round robin over
/// the partitions, acknowledged by the broker.
fn produce(bootstrap: &str, topic: &str, records: u64, keys: u64) -> anyhow::Result<()> {
    let producer = producer(bootstrap)?;
    for i in 0..records {
        let key = format!("key-{}", i % keys);
        let value = i.to_le_bytes();
        let record = BaseRecord::to(topic)
            .key(key.as_bytes())
            .payload(&value[..])
            .partition((i % PARTITIONS as u64) as i32);
        send(&producer, record)?;
    }
    producer.flush(TIMEOUT).context("cannot flush the input")
}

/// Reads `records` records of `from` (read_committed) and, with `to`, writes each to that
/// topic (same key and value, same partition).
fn copy(bootstrap: &str, from: &str, to: Option<&str>, records: u64) -> anyhow::Result<()> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "cairn-bench")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .context("cannot create a consumer")?;
    let mut partitions = TopicPartitionList::new();
    for partition in 0..PARTITIONS {
        partitions.add_partition_offset(from, partition, Offset::Beginning)?;
    }
    consumer.assign(&partitions)?;
    let producer = to.map(|_| producer(bootstrap)).transpose()?;
    let deadline = Instant::now() + TIMEOUT;
    let mut read = 0;
    while read < records {
        ensure!(
            Instant::now() < deadline,
            "read {read} of {records} records of {from}"
        );
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.context("cannot consume")?;
        read += 1;
        if let (Some(producer), Some(to)) = (&producer, to) {
            let mut record = BaseRecord::to(to)
                .payload(message.payload().unwrap_or_default())
                .partition(message.partition());
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            send(producer, record)?;
        }
    }
    if let Some(producer) = producer {
        producer.flush(TIMEOUT).context("cannot flush the copy")?;
    }
    Ok(())
}

fn producer(bootstrap: &str) -> anyhow::Result<ThreadedProducer<DefaultProducerContext>> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "all")
        .create()
        .context("cannot create a producer")
}

/// Sends a record, waiting while the client's queue is full.
fn send(
    producer: &ThreadedProducer<DefaultProducerContext>,
    mut record: BaseRecord<'_, [u8], [u8]>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
            Err((e, _)) => return Err(e).context("cannot send"),
        }
    }
}

/// The seconds of `Job … FINISHED in <s> s (…)`.
fn job_seconds(stdout: &str) -> anyhow::Result<f64> {
    stdout
        .lines()
        .find_map(|line| line.split(" FINISHED in ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .and_then(|s| s.parse().ok())
        .with_context(|| format!("no FINISHED line in {stdout:?}"))
}
