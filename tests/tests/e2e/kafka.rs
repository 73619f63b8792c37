//! Kafka in and out, against a real Apache Kafka broker (4.1, KRaft, on loopback: each test
//! starts its own, see `cairn_tests::kafka`): the word-count oracle through topics, read
//! back with `read_committed` — uninterrupted at two parallelisms, through a `kill -9` loop,
//! across a crash between `_metadata` and the transactions' commit, a broker restart and an
//! in-place rescale — an at-least-once sink without gaps, and clear errors. Over a secured
//! broker's `SASL_SSL` listener (TLS, SASL PLAIN and SCRAM, ACLs): the crash between
//! `_metadata` and commit, and clear errors for a wrong password, a user without ACLs and an
//! untrusted certificate.

use std::ffi::OsString;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use cairn_tests::kafka::{KafkaBroker, KafkaRecord, KafkaUser, SaslMechanism};
use cairn_tests::kill_loop::KillLoop;
use cairn_tests::{
    Corpus, OracleReport, Scratch, Session, WordCountCheck, eventually, finish, http_text, job, os,
    path_str, run_checkpointed,
};

/// About 50k words over 3,000 distinct ones.
fn corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("kafka-corpus", 300 << 10, 3_000, 15))
}

/// A bigger text for the kill loop: the attempts read unpaced, so it takes long enough to
/// be killed ten times.
fn big_corpus() -> &'static Corpus {
    static CORPUS: OnceLock<Corpus> = OnceLock::new();
    CORPUS.get_or_init(|| Corpus::new("kafka-big-corpus", 3 << 20, 20_000, 16))
}

/// A broker of the test's own, or `None` when Kafka could not be installed here (outside
/// CI, where that fails the test).
fn broker() -> Option<KafkaBroker> {
    KafkaBroker::available()
        .unwrap()
        .then(|| KafkaBroker::start().unwrap())
}

/// A secured broker of the test's own (`SASL_SSL` next to `PLAINTEXT`), or `None` as
/// [`broker`] says.
fn secured_broker() -> Option<KafkaBroker> {
    KafkaBroker::available()
        .unwrap()
        .then(|| KafkaBroker::start_secured().unwrap())
}

fn lines(corpus: &Corpus) -> Vec<String> {
    std::fs::read_to_string(&corpus.path)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Creates `topic` with 3 partitions and produces `corpus` into it.
fn produce(broker: &KafkaBroker, topic: &str, corpus: &Corpus) {
    broker.create_topic(topic, 3).unwrap();
    broker.produce_lines(topic, &lines(corpus)).unwrap();
}

/// `kafka://<broker>/<topic>[?<query>]`
fn url(broker: &KafkaBroker, topic: &str, query: &str) -> String {
    let query = if query.is_empty() {
        String::new()
    } else {
        format!("?{query}")
    };
    format!("kafka://{}/{topic}{query}", broker.bootstrap())
}

/// `kafka://<broker's SASL_SSL listener>/<topic>?<properties>[&<query>]`: the client
/// `properties` (as [`KafkaBroker::sasl_ssl_properties`] gives them) as `properties.*`
/// options. A `kafka://` address's query is not percent-decoded (a value runs to the next
/// `&`, `/` and `=` included), so a value must not hold a `&`.
fn secure_url<K: AsRef<str>>(
    broker: &KafkaBroker,
    topic: &str,
    properties: &[(K, String)],
    query: &str,
) -> String {
    let mut options: Vec<String> = properties
        .iter()
        .map(|(key, value)| {
            let key = key.as_ref();
            assert!(
                !value.contains('&'),
                "{key}={value:?} cannot be a kafka:// address's option"
            );
            format!("properties.{key}={value}")
        })
        .collect();
    options.extend((!query.is_empty()).then(|| query.to_owned()));
    format!(
        "kafka://{}/{topic}?{}",
        broker.secure_bootstrap(),
        options.join("&")
    )
}

/// The oracle's verdict on word-count output records; each must be keyed by its word.
fn check(records: &[KafkaRecord], corpus: &Corpus) -> OracleReport {
    let mut check = WordCountCheck::new(&corpus.counts);
    for record in records {
        let value = String::from_utf8(record.value.clone().unwrap_or_default()).unwrap();
        let word = value.rsplit_once('\t').map(|(word, _)| word.as_bytes());
        assert_eq!(
            record.key.as_deref(),
            word,
            "{value:?} is keyed by its word"
        );
        check.line(&value);
    }
    check.report()
}

/// Asserts that `topic` holds, committed, exactly the word count of `corpus`.
fn assert_exact(broker: &KafkaBroker, topic: &str, corpus: &Corpus) {
    let report = check(&broker.read_committed(topic).unwrap(), corpus);
    assert!(report.is_exact(), "{report:?}");
    assert_eq!(report.lines, corpus.words());
}

/// `cairn run word-count -p <p> --job-id <id>`, checkpointing every 100 ms into `chk`, with
/// `extra` options before the job's `--input <input> --output <output>`.
fn run_args(
    p: u32,
    id: &str,
    chk: &std::path::Path,
    extra: &[&str],
    input: &str,
    output: &str,
) -> Vec<OsString> {
    let mut args = run_checkpointed(&job("word-count"), p, id, chk);
    args.extend(os(extra));
    args.extend(os(&["--", "--input", input, "--output", output]));
    args
}

/// Waits, at most a minute, until `topic` holds `records` committed records.
fn wait_for_committed(broker: &KafkaBroker, topic: &str, records: u64) {
    eventually(&format!("{records} records committed in {topic}"), || {
        (broker.read_committed(topic).unwrap().len() as u64 >= records).then_some(())
    });
}

/// Starts word-count at p=2 on an unbounded source over topic `in` (`partitions`
/// partitions, holding the first half of the corpus; `query`: more source options) into
/// topic `out`, and waits until it read `progress` records. Returns the job and the second
/// half of the corpus.
fn start_unbounded(
    broker: &KafkaBroker,
    session: &Session,
    scratch: &Scratch,
    id: &str,
    partitions: i32,
    query: &str,
) -> (cairn_tests::RunningJob, Vec<String>) {
    let mut lines = lines(corpus());
    let second = lines.split_off(lines.len() / 2);
    broker.create_topic("in", partitions).unwrap();
    broker.create_topic("out", 3).unwrap();
    broker.produce_lines("in", &lines).unwrap();
    let running = session.start(run_args(
        2,
        id,
        &scratch.join("chk"),
        &[],
        &url(
            broker,
            "in",
            &format!("scan.bounded.mode=unbounded&{query}"),
        ),
        &url(broker, "out", ""),
    ));
    running.wait_for_progress(lines.len() as u64 / 2);
    (running, second)
}

/// The oracle with three input partitions, at parallelism 2 and 3: the output topic read
/// with read_committed is exactly the oracle, keyed by word.
#[test]
fn the_oracle_runs_through_topics() {
    let Some(broker) = broker() else { return };
    let scratch = Scratch::new("kafka-oracle");
    produce(&broker, "in", corpus());
    for (p, id) in [(2, "c1".repeat(16)), (3, "c2".repeat(16))] {
        let out = format!("out-{p}");
        broker.create_topic(&out, 2).unwrap();
        let run = cairn_tests::cairn(
            run_args(
                p,
                &id,
                &scratch.join(&format!("chk-{p}")),
                &[],
                &url(&broker, "in", ""),
                &url(&broker, &out, ""),
            ),
            None,
            None,
        );
        assert!(
            run.success() && run.last_line().contains(" FINISHED "),
            "{run:?}"
        );
        assert_exact(&broker, &out, corpus());
    }
}

/// `kill -9` ten times with exactly-once checkpoints, each attempt resumed from the job's
/// checkpoint folder, at parallelism 2 and 3 over three input partitions: read_committed
/// output is exactly the oracle.
#[test]
fn a_kill_loop_through_topics_is_exact() {
    let Some(broker) = broker() else { return };
    let scratch = Scratch::new("kafka-kill-loop");
    produce(&broker, "in", big_corpus());
    for (p, seed) in [(2, 0x4b61), (3, 0x4b63)] {
        let out = format!("out-{p}");
        broker.create_topic(&out, 3).unwrap();
        let chk = scratch.join(&format!("chk-{p}"));
        let kills = KillLoop {
            name: "kafka-kill-loop",
            job: &job("word-count"),
            job_args: &[],
            parallelism: p,
            mode: "EXACTLY_ONCE",
            dir: path_str(&chk),
            store: &[],
            seed,
            kill_after: 300..900,
            killed_rate: 0,
        }
        .run_through(&url(&broker, "in", ""), &url(&broker, &out, ""));
        assert!(
            kills >= 3,
            "p={p}: only {kills} attempts were killed before the input ended"
        );
        let uncommitted = broker.read_uncommitted(&out).unwrap().len() as u64;
        assert!(
            uncommitted > big_corpus().words(),
            "p={p}: the killed attempts left records of aborted transactions ({uncommitted})"
        );
        assert_exact(&broker, &out, big_corpus());
    }
}

/// `crashed` died by the test hook after checkpoint 3's `_metadata` and before its
/// transactions' commit: topic `out` holds records read_committed readers cannot see yet.
fn assert_crashed_before_commit(broker: &KafkaBroker, crashed: &cairn_tests::Finished) {
    assert!(
        !crashed.success()
            && crashed
                .stderr
                .contains("aborting before committing checkpoint 3"),
        "{crashed:?}"
    );
    let committed = broker.read_committed("out").unwrap().len();
    let written = broker.read_uncommitted("out").unwrap().len();
    assert!(
        committed < written,
        "checkpoint 3's records wait for a commit: {committed} committed of {written}"
    );
}

/// The process dies after checkpoint 3's `_metadata` is written and before its Kafka
/// transactions are committed (the test hook): those records are invisible to
/// read_committed readers until the restore commits them; then the output is exact.
#[test]
fn a_crash_between_metadata_and_commit_is_committed_by_the_restore() {
    let Some(broker) = broker() else { return };
    let (session, scratch) = (
        Session::new("kafka-commit-gap"),
        Scratch::new("kafka-commit-gap"),
    );
    broker.create_topic("out", 2).unwrap();
    let chk = scratch.join("chk");
    let id = "c3".repeat(16);
    let input = path_str(&corpus().path).to_owned();
    let output = url(&broker, "out", "");
    let mut args = run_args(2, &id, &chk, &[], &input, &output);
    args.extend(os(&["--rate", "5000"]));
    let mut crashing = session.command(&args);
    crashing.env("CAIRN_TEST_CRASH_BEFORE_COMMIT", "3");
    let crashed = finish(crashing, None);
    assert_crashed_before_commit(&broker, &crashed);
    let folder = chk.join(&id);
    let resumed = cairn_tests::cairn(
        run_args(
            2,
            &"c4".repeat(16),
            &chk,
            &["-s", path_str(&folder)],
            &input,
            &output,
        ),
        None,
        None,
    );
    assert!(
        resumed.success() && resumed.last_line().contains(" FINISHED "),
        "{resumed:?}"
    );
    assert_exact(&broker, "out", corpus());
}

/// An at-least-once sink through a kill loop (with exactly-once checkpoints, so that the
/// counts themselves are exact): every record of the oracle is there (duplicates allowed,
/// nothing missing, nothing else).
#[test]
fn an_at_least_once_sink_leaves_no_gap() {
    let Some(broker) = broker() else { return };
    let scratch = Scratch::new("kafka-at-least-once");
    produce(&broker, "in", big_corpus());
    broker.create_topic("out", 3).unwrap();
    let chk = scratch.join("chk");
    KillLoop {
        name: "kafka-at-least-once",
        job: &job("word-count"),
        job_args: &[],
        parallelism: 2,
        mode: "EXACTLY_ONCE",
        dir: path_str(&chk),
        store: &[],
        seed: 0x4b62,
        kill_after: 300..900,
        killed_rate: 0,
    }
    .run_through(
        &url(&broker, "in", ""),
        &url(&broker, "out", "sink.delivery-guarantee=at-least-once"),
    );
    let report = check(&broker.read_committed("out").unwrap(), big_corpus());
    assert_eq!((report.missing, report.unexpected), (0, 0), "{report:?}");
}

/// The broker is killed and restarted while a job writes to it: the job rides it out or
/// restarts (restart strategy), and the output stays exact.
#[test]
fn a_broker_restart_mid_run_stays_exact() {
    let Some(mut broker) = broker() else { return };
    let (session, scratch) = (
        Session::new("kafka-broker-restart"),
        Scratch::new("kafka-broker-restart"),
    );
    broker.create_topic("out", 2).unwrap();
    let chk = scratch.join("chk");
    let id = "c5".repeat(16);
    let input = path_str(&corpus().path).to_owned();
    let mut args = run_args(
        2,
        &id,
        &chk,
        &["-D", "restart-strategy.fixed-delay.delay=1 s"],
        &input,
        &url(&broker, "out", ""),
    );
    args.extend(os(&["--rate", "4000"]));
    let mut running = session.start(&args);
    running.wait_for_progress(2_000);
    broker.stop();
    std::thread::sleep(Duration::from_secs(2));
    broker.restart().unwrap();
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    assert_exact(&broker, "out", corpus());
}

/// An unbounded Kafka source rescaled in place from 2 to 3 while records keep arriving:
/// every partition resumes after its checkpointed offset at the new parallelism, and the
/// output is exact. The partitions' offsets and lag are in `/metrics` meanwhile.
#[test]
fn an_unbounded_source_rescales_in_place_exactly() {
    let Some(broker) = broker() else { return };
    let (session, scratch) = (Session::new("kafka-rescale"), Scratch::new("kafka-rescale"));
    let id = "c6".repeat(16);
    let (mut running, second) = start_unbounded(
        &broker,
        &session,
        &scratch,
        &id,
        3,
        "properties.group.id=wc",
    );

    let (status, metrics) = http_text(&running.address, "GET", "/metrics", None, None);
    assert_eq!(status, 200);
    for partition in 0..3 {
        assert!(
            metrics.lines().any(
                |l| l.starts_with("cairn_task_KafkaSourceReader_currentOffset{")
                    && l.contains("topic=\"in\"")
                    && l.contains(&format!("partition=\"{partition}\""))
            ),
            "{metrics}"
        );
    }

    // Flink's vertex metrics: the source vertex's partitions, by Flink's Kafka reader ids.
    let (status, body) = running.http(
        "GET",
        &format!("/jobs/{id}/vertices/{}/metrics", source_vertex(&running)),
        None,
    );
    assert_eq!(status, 200, "{body}");
    let ids: Vec<&str> = body
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["id"].as_str())
        .collect();
    for partition in 0..3 {
        assert!(
            ids.iter().any(|id| id.ends_with(&format!(
                ".KafkaSourceReader.topic.in.partition.{partition}.currentOffset"
            ))),
            "{ids:?}"
        );
    }

    let savepoints = scratch.join("sp");
    let rescale = session.cli(os(&["rescale", &id, "3", "-p", path_str(&savepoints)]));
    assert!(rescale.success(), "{rescale:?}");
    broker.produce_lines("in", &second).unwrap();
    wait_for_committed(&broker, "out", corpus().words());
    let stop = session.cli(os(&[
        "stop",
        "--savepoint-path",
        path_str(&savepoints),
        &id,
    ]));
    assert!(stop.success(), "{stop:?}");
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    assert_exact(&broker, "out", corpus());
}

/// Each `scan.startup.mode` starts where Flink's does: earliest, latest, at a timestamp, at
/// given offsets (unlisted partitions at their earliest), and at the consumer group's
/// offsets, which a finished run with that group committed. Each input line is one word, so
/// the output says which lines were read.
#[test]
fn startup_modes_start_where_flinks_do() {
    let Some(broker) = broker() else { return };
    let scratch = Scratch::new("kafka-startup");
    let batch = |name: &str| (0..30).map(|i| format!("{name}{i}")).collect::<Vec<_>>();
    broker.create_topic("in", 3).unwrap();
    broker.produce_lines("in", &batch("a")).unwrap();
    std::thread::sleep(Duration::from_millis(50));
    let between = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    std::thread::sleep(Duration::from_millis(50));
    broker.produce_lines("in", &batch("b")).unwrap();
    // Words read by a run of word-count over `in` with `query` options, sorted.
    let run = |name: &str, query: &str| -> Vec<String> {
        let out = scratch.join(name);
        let run = cairn_tests::cairn(
            os(&[
                "run",
                path_str(&job("word-count")),
                "-D",
                "execution.checkpointing.interval=100 ms",
                "-D",
                &format!(
                    "execution.checkpointing.dir={}",
                    path_str(&scratch.join("chk"))
                ),
                "--",
                "--input",
                &url(&broker, "in", query),
                "--output",
                path_str(&out),
            ]),
            None,
            None,
        );
        assert!(run.success(), "{name}: {run:?}");
        let mut words: Vec<String> = crate::savepoints::committed_lines(&out)
            .iter()
            .map(|l| l.split('\t').next().unwrap().to_owned())
            .collect();
        words.sort();
        words
    };
    let sorted = |mut words: Vec<String>| {
        words.sort();
        words
    };
    let all = sorted([batch("a"), batch("b")].concat());
    assert_eq!(run("earliest", ""), all);
    assert!(run("latest", "scan.startup.mode=latest-offset").is_empty());
    assert_eq!(
        run(
            "timestamp",
            &format!("scan.startup.mode=timestamp&scan.startup.timestamp-millis={between}")
        ),
        sorted(batch("b"))
    );
    // Partition p holds lines p, p+3, …: a0 a3 … a27 at offsets 0-9, then b0 b3 … b27.
    let specific = run(
        "specific",
        "scan.startup.mode=specific-offsets\
         &scan.startup.specific-offsets=partition:0,offset:15;partition:1,offset:5",
    );
    let expected: Vec<String> = all
        .iter()
        .filter(|word| {
            let (batch, i) = word.split_at(1);
            let i: usize = i.parse().unwrap();
            let offset = i / 3 + if batch == "b" { 10 } else { 0 };
            match i % 3 {
                0 => offset >= 15,
                1 => offset >= 5,
                _ => true,
            }
        })
        .cloned()
        .collect();
    assert_eq!(specific, expected);

    assert_eq!(run("group-1", "properties.group.id=g"), all);
    assert!(
        run(
            "group-2",
            "scan.startup.mode=group-offsets&properties.group.id=g"
        )
        .is_empty()
    );
    broker.produce_lines("in", &batch("c")).unwrap();
    assert_eq!(
        run(
            "group-3",
            "scan.startup.mode=group-offsets&properties.group.id=g"
        ),
        sorted(batch("c"))
    );
}

/// An unbounded source finds partitions added while it runs
/// (`scan.topic-partition-discovery.interval`) and reads them from their start.
#[test]
fn partitions_added_while_running_are_read() {
    let Some(broker) = broker() else { return };
    let (session, scratch) = (
        Session::new("kafka-discovery"),
        Scratch::new("kafka-discovery"),
    );
    let id = "c7".repeat(16);
    let (mut running, second) = start_unbounded(
        &broker,
        &session,
        &scratch,
        &id,
        1,
        "scan.topic-partition-discovery.interval=1 s",
    );
    broker.add_partitions("in", 3).unwrap();
    broker.produce_lines("in", &second).unwrap();
    wait_for_committed(&broker, "out", corpus().words());
    let stop = session.cli(os(&[
        "stop",
        "--savepoint-path",
        path_str(&scratch.join("sp")),
        &id,
    ]));
    assert!(stop.success(), "{stop:?}");
    assert_eq!(running.wait(), Some(0), "{}", running.stderr());
    assert_exact(&broker, "out", corpus());
}

/// The id of a running job's first vertex (its source).
fn source_vertex(job: &cairn_tests::RunningJob) -> String {
    let details: cairn_api::JobDetailsInfo = job.get(&format!("/jobs/{}", job.id));
    details.vertices[0].id.clone()
}

/// What cannot work fails the job with a clear error: an unknown topic, an unreachable
/// broker (within the client timeout), an unknown client property, a bad option.
#[test]
fn kafka_errors_are_clear() {
    let Some(broker) = broker() else { return };
    let scratch = Scratch::new("kafka-errors");
    let out = scratch.join("out");
    let out = path_str(&out);
    for (input, error) in [
        (
            url(&broker, "nope", ""),
            "kafka: topic nope does not exist".to_owned(),
        ),
        (
            "kafka://127.0.0.1:1/in?properties.default.api.timeout.ms=2000".to_owned(),
            "kafka: cannot read the metadata of topic in".to_owned(),
        ),
        (
            url(&broker, "in", "properties.no.such.setting=1"),
            "No such configuration property: \"no.such.setting\"".to_owned(),
        ),
        (
            url(&broker, "in", "scan.startup.mode=newest"),
            "invalid value 'newest' for option 'scan.startup.mode'".to_owned(),
        ),
    ] {
        let run = cairn_tests::cairn(
            os(&[
                "run",
                path_str(&job("word-count")),
                "--",
                "--input",
                &input,
                "--output",
                out,
            ]),
            None,
            None,
        );
        assert!(
            !run.success() && format!("{}{}", run.stdout, run.stderr).contains(&error),
            "{error}: {run:?}"
        );
    }
}

/// Over a secured broker's `SASL_SSL` listener, trusting its CA (`ssl.ca.location` in the
/// address): word-count at p=2 reads topic `in` (unbounded; the corpus arrives over 8 s) as
/// the admin with SCRAM-SHA-512 and writes topic `out` exactly-once with SCRAM-SHA-256,
/// checkpointing every second (so that checkpoint 3 comes after the clients' TLS and SASL
/// handshakes, while records flow). The process dies after checkpoint 3's `_metadata` and
/// before its transactions' commit (the test hook); the restore commits them over TLS and
/// SASL, the rest follows, and the output is exact.
#[test]
fn kafka_over_sasl_ssl() {
    let Some(broker) = secured_broker() else {
        return;
    };
    let (session, scratch) = (
        Session::new("kafka-sasl-ssl"),
        Scratch::new("kafka-sasl-ssl"),
    );
    broker.create_topic("in", 3).unwrap();
    broker.create_topic("out", 2).unwrap();
    let input = secure_url(
        &broker,
        "in",
        &broker.sasl_ssl_properties(KafkaUser::ADMIN, SaslMechanism::ScramSha512),
        "scan.bounded.mode=unbounded",
    );
    let output = secure_url(
        &broker,
        "out",
        &broker.sasl_ssl_properties(KafkaUser::ADMIN, SaslMechanism::ScramSha256),
        "sink.delivery-guarantee=exactly-once",
    );
    let chk = scratch.join("chk");
    let id = "c8".repeat(16);
    let lines = lines(corpus());
    let crashed = std::thread::scope(|scope| {
        let feeder = scope.spawn(|| {
            for chunk in lines.chunks(lines.len().div_ceil(16)) {
                broker.produce_lines("in", chunk).unwrap();
                std::thread::sleep(Duration::from_millis(500));
            }
        });
        let mut crashing = session.command(run_args(
            2,
            &id,
            &chk,
            &["-D", "execution.checkpointing.interval=1 s"],
            &input,
            &output,
        ));
        crashing.env("CAIRN_TEST_CRASH_BEFORE_COMMIT", "3");
        let crashed = finish(crashing, None);
        feeder.join().unwrap();
        crashed
    });
    assert_crashed_before_commit(&broker, &crashed);
    let folder = chk.join(&id);
    let resumed_id = "c9".repeat(16);
    let mut resumed = session.start(run_args(
        2,
        &resumed_id,
        &chk,
        &["-s", path_str(&folder)],
        &input,
        &output,
    ));
    wait_for_committed(&broker, "out", corpus().words());
    let stop = session.cli(os(&[
        "stop",
        "--savepoint-path",
        path_str(&scratch.join("sp")),
        &resumed_id,
    ]));
    assert!(stop.success(), "{stop:?}");
    assert_eq!(resumed.wait(), Some(0), "{}", resumed.stderr());
    assert_exact(&broker, "out", corpus());
}

/// Over a secured broker's `SASL_SSL` listener, what cannot work fails the job within
/// seconds (`properties.default.api.timeout.ms=5000`) with an error saying why in the job's
/// failure: a wrong password (authentication), a user without ACLs (authorization), and no
/// `ssl.ca.location` (the broker's certificate is not trusted). The job's failure, not
/// librdkafka's warnings in the log, which a failing client may not have served yet.
#[test]
fn kafka_security_errors_are_clear() {
    let Some(broker) = secured_broker() else {
        return;
    };
    let scratch = Scratch::new("kafka-security-errors");
    broker.create_topic("in", 1).unwrap();
    broker.produce_lines("in", &["a b".to_owned()]).unwrap();
    let out = scratch.join("out");
    let out = path_str(&out);
    let properties = |user, mechanism| broker.sasl_ssl_properties(user, mechanism);
    let untrusting: Vec<_> = properties(KafkaUser::ADMIN, SaslMechanism::ScramSha512)
        .into_iter()
        .filter(|(key, _)| *key != "ssl.ca.location")
        .collect();
    let bounded = "properties.default.api.timeout.ms=5000";
    let mut unclear = Vec::new();
    for (case, properties, error) in [
        (
            "a wrong password",
            properties(
                KafkaUser::ADMIN.with_password("wrong"),
                SaslMechanism::ScramSha256,
            ),
            "authentication",
        ),
        (
            "a user without ACLs",
            properties(KafkaUser::MALLORY, SaslMechanism::ScramSha512),
            "authoriz",
        ),
        ("no CA", untrusting, "certificate verify failed"),
    ] {
        let started = Instant::now();
        let run = cairn_tests::cairn(
            os(&[
                "run",
                path_str(&job("word-count")),
                "--",
                "--input",
                &secure_url(&broker, "in", &properties, bounded),
                "--output",
                out,
            ]),
            None,
            None,
        );
        let elapsed = started.elapsed();
        let failure = run.last_line();
        if run.success()
            || !failure.contains(" FAILED ")
            || !failure.to_lowercase().contains(error)
            || elapsed > Duration::from_secs(30)
        {
            let log: Vec<&str> = run.stderr.lines().take(6).collect();
            unclear.push(format!(
                "{case}: expected a failure naming {error:?} within 30 s; exit {:?} after \
                 {elapsed:?}: {failure}\nthe start of stderr:\n{}",
                run.code,
                log.join("\n")
            ));
        }
    }
    assert!(unclear.is_empty(), "{}", unclear.join("\n\n"));
}
