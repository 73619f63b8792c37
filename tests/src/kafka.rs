//! A real Apache Kafka broker for tests and users: one single-node KRaft broker and
//! controller on loopback ([`KafkaBroker`]), and the few client calls tests need on it —
//! creating a topic, producing lines, reading a topic back committed or not
//! ([`KafkaClient`], over rdkafka). `cargo xtask test` (or `cargo xtask kafka install`)
//! installs the broker's jars into `target/toolchains/kafka/libs/`; the broker runs on this
//! machine's Java.
//!
//! Every broker has its own ports and folder, so brokers of concurrent tests do not collide,
//! and its JVM dies with the process that started it, however that ends: dropped, after a
//! panic, or killed.
//!
//! A secured broker ([`KafkaBroker::start_secured`]) has a second client listener,
//! `SASL_SSL` ([`KafkaBroker::secure_bootstrap`]), next to the `PLAINTEXT` one the harness's
//! own calls keep using:
//!
//! - TLS: a test CA and a broker certificate it signs (for `127.0.0.1` and `localhost`),
//!   made with Java's `keytool` in the broker's folder; clients trust the CA's PEM
//!   ([`KafkaBroker::ca_pem`], librdkafka's `ssl.ca.location`).
//! - SASL: `PLAIN`, `SCRAM-SHA-256` and `SCRAM-SHA-512` ([`SaslMechanism`]), each knowing
//!   the same users ([`KafkaUser`]); the SCRAM credentials are written when the storage is
//!   formatted.
//! - ACLs: Kafka's `StandardAuthorizer`, with `User:ANONYMOUS` (the `PLAINTEXT` and
//!   controller listeners' principal: the harness and the controller) and
//!   [`KafkaUser::ADMIN`] as super users, and no ACL at all: every other user
//!   ([`KafkaUser::MALLORY`]) is refused every operation on a topic
//!   (`TOPIC_AUTHORIZATION_FAILED`).
//!
//! [`KafkaBroker::sasl_ssl_properties`] gives the librdkafka settings of a client of that
//! listener.

use std::collections::HashMap;
use std::fs::File;
use std::hash::BuildHasher;
use std::net::{Ipv4Addr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use base64::Engine;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::consumer::{BaseConsumer, Consumer, DefaultConsumerContext};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};

use crate::target_dir;

/// The longest a broker may take to serve metadata after its JVM starts.
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// The longest one client call (metadata, offsets, topic creation, a flush, a read) may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(60);

/// The broker's heap.
const HEAP: &str = "-Xmx512m";

/// Attempts at starting a broker whose ports another process took before its JVM bound them.
const PORT_ATTEMPTS: u32 = 3;

/// Lines of the broker's log an error shows.
const LOG_TAIL: usize = 40;

/// One single-node Kafka broker and KRaft controller on loopback.
pub struct KafkaBroker {
    /// Its configuration, data (`data/`) and log (`broker.log`).
    dir: PathBuf,
    /// Whether `dir` is removed when the broker is dropped (a test's own folder).
    temporary: bool,
    /// The client listener's port (the bootstrap address's).
    port: u16,
    /// The `SASL_SSL` listener of a secured broker.
    secured: Option<Secured>,
    /// The running JVM, `None` after [`stop`](Self::stop).
    process: Option<Broker>,
}

/// A running broker JVM and the pipe whose end kills it.
struct Broker {
    child: Child,
    /// The [`WATCHDOG`]'s standard input (kept out of `child`, whose `wait` would close it).
    pipe: ChildStdin,
}

/// A secured broker's `SASL_SSL` listener.
struct Secured {
    /// Its port.
    port: u16,
    /// The test CA's certificate (PEM), which signed the listener's.
    ca_pem: PathBuf,
}

/// A user of a secured broker's `SASL_SSL` listener, with the same password for every
/// mechanism.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KafkaUser {
    pub name: &'static str,
    pub password: &'static str,
}

impl KafkaUser {
    /// A super user: every operation on every resource.
    pub const ADMIN: KafkaUser = KafkaUser {
        name: "admin",
        password: "admin-secret",
    };

    /// A user who authenticates but has no ACL: every operation on a topic is refused.
    pub const MALLORY: KafkaUser = KafkaUser {
        name: "mallory",
        password: "mallory-secret",
    };

    /// Every user a secured broker knows.
    pub const ALL: [KafkaUser; 2] = [KafkaUser::ADMIN, KafkaUser::MALLORY];

    /// The same user with another password (one the broker refuses, unless it is theirs).
    pub fn with_password(self, password: &'static str) -> KafkaUser {
        KafkaUser { password, ..self }
    }
}

/// A SASL mechanism of a secured broker's `SASL_SSL` listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    ScramSha256,
    ScramSha512,
}

impl SaslMechanism {
    /// The SCRAM mechanisms, whose credentials are stored in the cluster's metadata.
    const SCRAM: [SaslMechanism; 2] = [SaslMechanism::ScramSha256, SaslMechanism::ScramSha512];

    /// Its name, as `sasl.mechanism` and the broker's configuration say it.
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::ScramSha256 => "SCRAM-SHA-256",
            SaslMechanism::ScramSha512 => "SCRAM-SHA-512",
        }
    }
}

/// One record read back from a topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KafkaRecord {
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub value: Option<Vec<u8>>,
}

impl KafkaBroker {
    /// Starts a broker in a folder of its own under `target/test-scratch/`, removed when the
    /// broker is dropped, and waits until it serves metadata.
    pub fn start() -> anyhow::Result<KafkaBroker> {
        Self::launch(scratch_dir(), true, false)
    }

    /// Starts a secured broker (see the module's documentation: a `SASL_SSL` listener with
    /// TLS, SASL and ACLs next to the `PLAINTEXT` one) as [`start`](Self::start) starts one,
    /// its certificates made first (a few seconds more).
    pub fn start_secured() -> anyhow::Result<KafkaBroker> {
        Self::launch(scratch_dir(), true, true)
    }

    /// Starts a broker in `dir` (emptied first, kept when the broker is dropped: its log
    /// stays there), and waits until it serves metadata.
    pub fn start_in(dir: &Path) -> anyhow::Result<KafkaBroker> {
        Self::launch(dir.to_owned(), false, false)
    }

    /// Whether Kafka's jars are installed, so that Kafka tests can run. When xtask could not
    /// install them (`target/toolchains/kafka.unavailable` says why), that is an error in CI
    /// (`CI=true`: Kafka tests must not be skipped unseen there); elsewhere it prints why the
    /// test is skipped and returns `false`.
    pub fn available() -> anyhow::Result<bool> {
        let toolchains = target_dir().join("toolchains");
        let Ok(why) = std::fs::read_to_string(toolchains.join("kafka.unavailable")) else {
            return Ok(true);
        };
        ensure!(
            std::env::var("CI").as_deref() != Ok("true"),
            "Apache Kafka could not be installed: {why}"
        );
        eprintln!("skipped: Apache Kafka could not be installed: {why}");
        Ok(false)
    }

    /// Formats storage in `dir` (emptied first) and starts a broker on new ports, again with
    /// other ports when another process took one first; `secured`, with a `SASL_SSL`
    /// listener too, whose certificates are made first.
    fn launch(dir: PathBuf, temporary: bool, secured: bool) -> anyhow::Result<KafkaBroker> {
        let mut attempt = 1;
        loop {
            if dir.exists() {
                std::fs::remove_dir_all(&dir)
                    .with_context(|| format!("cannot empty {}", dir.display()))?;
            }
            std::fs::create_dir_all(&dir)
                .with_context(|| format!("cannot create {}", dir.display()))?;
            let ([port, controller], secured) = if secured {
                let [port, controller, secure] = free_ports()?;
                let secured = Secured {
                    port: secure,
                    ca_pem: make_certificates(&dir)?,
                };
                ([port, controller], Some(secured))
            } else {
                (free_ports()?, None)
            };
            let mut broker = KafkaBroker {
                dir: dir.clone(),
                temporary,
                port,
                secured,
                process: None,
            };
            broker.configure(controller)?;
            broker.format()?;
            match broker.restart() {
                Ok(()) => return Ok(broker),
                Err(e) if attempt < PORT_ATTEMPTS && broker.log().contains(PORT_TAKEN) => {
                    eprintln!("a Kafka broker's port was taken, starting again: {e:#}");
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The bootstrap address: `127.0.0.1:PORT`.
    pub fn bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The `SASL_SSL` listener's bootstrap address: `127.0.0.1:PORT`.
    ///
    /// Panics when the broker was not started with [`start_secured`](Self::start_secured).
    pub fn secure_bootstrap(&self) -> String {
        format!("127.0.0.1:{}", self.secure().port)
    }

    /// The test CA's certificate (PEM), which signed the `SASL_SSL` listener's: what its
    /// clients trust (librdkafka's `ssl.ca.location`).
    ///
    /// Panics when the broker was not started with [`start_secured`](Self::start_secured).
    pub fn ca_pem(&self) -> &Path {
        &self.secure().ca_pem
    }

    /// The librdkafka settings of a client of the `SASL_SSL` listener authenticating as
    /// `user` with `mechanism` (trusting [`ca_pem`](Self::ca_pem)), not the bootstrap
    /// servers: `security.protocol`, `sasl.mechanism`, `sasl.username`, `sasl.password` and
    /// `ssl.ca.location`.
    ///
    /// Panics when the broker was not started with [`start_secured`](Self::start_secured).
    pub fn sasl_ssl_properties(
        &self,
        user: KafkaUser,
        mechanism: SaslMechanism,
    ) -> Vec<(&'static str, String)> {
        vec![
            ("security.protocol", "SASL_SSL".to_owned()),
            ("sasl.mechanism", mechanism.name().to_owned()),
            ("sasl.username", user.name.to_owned()),
            ("sasl.password", user.password.to_owned()),
            ("ssl.ca.location", self.ca_pem().display().to_string()),
        ]
    }

    /// The `SASL_SSL` listener, which only a secured broker has.
    fn secure(&self) -> &Secured {
        self.secured
            .as_ref()
            .expect("a broker started with KafkaBroker::start_secured")
    }

    /// Creates `topic` with `partitions` partitions (replication 1) and waits until every
    /// partition has its leader.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        self.client().create_topic(topic, partitions)
    }

    /// Grows `topic` to `partitions` partitions.
    pub fn add_partitions(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        self.client().add_partitions(topic, partitions)
    }

    /// Lines as record values (no key), line i to partition i mod partitions (so every
    /// partition gets data), flushed and acknowledged (acks=all) before returning.
    pub fn produce_lines(&self, topic: &str, lines: &[String]) -> anyhow::Result<()> {
        self.client().produce_lines(topic, lines)
    }

    /// Every committed record of the topic (isolation.level=read_committed), all partitions,
    /// from the beginning up to the end offsets at the call (the last stable offsets: an open
    /// transaction ends the read before its first record), ordered by partition and offset.
    pub fn read_committed(&self, topic: &str) -> anyhow::Result<Vec<KafkaRecord>> {
        self.client().read_committed(topic)
    }

    /// Every record of the topic as [`read_committed`](Self::read_committed) reads them, but
    /// with read_uncommitted: records of open and aborted transactions too (what exactly-once
    /// hides).
    pub fn read_uncommitted(&self, topic: &str) -> anyhow::Result<Vec<KafkaRecord>> {
        self.client().read_uncommitted(topic)
    }

    /// Kills the broker with SIGKILL (a crash), keeping its data and ports for
    /// [`restart`](Self::restart). Does nothing when it is not running.
    pub fn stop(&mut self) {
        if let Some(broker) = self.process.take() {
            broker.kill();
        }
    }

    /// Starts the broker again (after [`stop`](Self::stop)) on the same ports and data, and
    /// waits until it serves metadata.
    pub fn restart(&mut self) -> anyhow::Result<()> {
        self.stop();
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.dir.join(LOG))
            .with_context(|| format!("cannot open {}", self.dir.join(LOG).display()))?;
        let mut command = self.java(Broker::watched("java"))?;
        command
            .arg(format!(
                "-Dlog4j2.configurationFile={}",
                self.dir.join(LOG4J).display()
            ))
            .arg("kafka.Kafka")
            .arg(self.dir.join(PROPERTIES))
            .stdout(log.try_clone().context("cannot share the broker's log")?)
            .stderr(log);
        self.process = Some(Broker::spawn(command)?);
        self.wait_until_serving().map_err(|e| {
            let failure = self.failure(&format!("did not start: {e:#}"));
            self.stop();
            anyhow::anyhow!(failure)
        })
    }

    /// The broker JVM's process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.process.as_ref().map(|broker| broker.child.id())
    }

    /// Blocks until the broker's JVM ends (it does not by itself: only when a signal ends
    /// it), returning its exit status.
    pub fn wait(&mut self) -> anyhow::Result<std::process::ExitStatus> {
        let broker = self.process.as_mut().context("the broker is not running")?;
        let status = broker.child.wait().context("cannot wait for the broker")?;
        self.process = None;
        Ok(status)
    }

    /// Its folder, where `broker.log` is.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn client(&self) -> KafkaClient {
        KafkaClient::new(&self.bootstrap())
    }

    /// Writes the broker's and its logging's configuration. Internal topics are small (one
    /// replica, few partitions); the broker's session with its controller expires after 4 s
    /// instead of 9, since a restart after SIGKILL waits for the killed incarnation's session
    /// to expire before the broker can register again. A secured broker's `SASL_SSL`
    /// listener, its users and its authorizer are [`security`]'s.
    fn configure(&self, controller: u16) -> anyhow::Result<()> {
        let port = self.port;
        let data = self.dir.join("data");
        let (listeners, advertised, protocols, security) = match &self.secured {
            None => (
                format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}"),
                format!("PLAINTEXT://127.0.0.1:{port}"),
                "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
                String::new(),
            ),
            Some(secured) => {
                let secure = secured.port;
                (
                    format!(
                        "PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secure},\
                         CONTROLLER://127.0.0.1:{controller}"
                    ),
                    format!("PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secure}"),
                    "PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
                    security(&self.dir.join(KEYSTORE)),
                )
            }
        };
        let properties = format!(
            "process.roles=broker,controller\n\
             node.id=1\n\
             controller.quorum.voters=1@127.0.0.1:{controller}\n\
             listeners={listeners}\n\
             advertised.listeners={advertised}\n\
             controller.listener.names=CONTROLLER\n\
             listener.security.protocol.map={protocols}\n\
             inter.broker.listener.name=PLAINTEXT\n\
             log.dirs={}\n\
             num.partitions=1\n\
             offsets.topic.replication.factor=1\n\
             offsets.topic.num.partitions=4\n\
             transaction.state.log.replication.factor=1\n\
             transaction.state.log.min.isr=1\n\
             transaction.state.log.num.partitions=4\n\
             share.coordinator.state.topic.replication.factor=1\n\
             share.coordinator.state.topic.min.isr=1\n\
             group.initial.rebalance.delay.ms=0\n\
             broker.session.timeout.ms=4000\n\
             broker.heartbeat.interval.ms=1000\n\
             {security}",
            data.display()
        );
        let logging = "status = warn\n\
             appender.out.type = Console\n\
             appender.out.name = out\n\
             appender.out.layout.type = PatternLayout\n\
             appender.out.layout.pattern = [%d] %p %m (%c)%n\n\
             rootLogger.level = info\n\
             rootLogger.appenderRef.out.ref = out\n";
        for (name, text) in [(PROPERTIES, properties.as_str()), (LOG4J, logging)] {
            let path = self.dir.join(name);
            std::fs::write(&path, text)
                .with_context(|| format!("cannot write {}", path.display()))?;
        }
        Ok(())
    }

    /// Formats the broker's storage with a random cluster id (Kafka's `StorageTool`), and
    /// a secured broker's users' SCRAM credentials.
    fn format(&self) -> anyhow::Result<()> {
        let cluster_id = cluster_id();
        let mut command = self.java(Command::new("java"))?;
        command
            .args(["kafka.tools.StorageTool", "format", "-t", &cluster_id, "-c"])
            .arg(self.dir.join(PROPERTIES));
        if self.secured.is_some() {
            for user in KafkaUser::ALL {
                for mechanism in SaslMechanism::SCRAM {
                    command.arg("--add-scram").arg(format!(
                        "{}=[name={},password={}]",
                        mechanism.name(),
                        user.name,
                        user.password
                    ));
                }
            }
        }
        let output = command
            .stdin(Stdio::null())
            .output()
            .context("cannot run java (Java 17 is needed)")?;
        ensure!(
            output.status.success(),
            "Kafka's StorageTool could not format {} ({}): {}{}",
            self.dir.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(())
    }

    /// `command` (a `java` command) given the broker's heap and classpath, run in its folder.
    fn java(&self, mut command: Command) -> anyhow::Result<Command> {
        let home = target_dir().join("toolchains").join("kafka");
        ensure!(
            home.join(".cairn-installed").exists(),
            "Apache Kafka is not installed in {}: `cargo xtask kafka install` installs it \
             (`cargo xtask test` does too){}",
            home.display(),
            std::fs::read_to_string(target_dir().join("toolchains").join("kafka.unavailable"))
                .map(|why| format!("; it could not: {why}"))
                .unwrap_or_default()
        );
        command
            .arg(HEAP)
            .arg("-cp")
            .arg(home.join("libs").join("*"))
            .current_dir(&self.dir);
        Ok(command)
    }

    /// Waits until the broker answers a metadata request naming itself, or fails when its
    /// JVM ends or the time is up.
    fn wait_until_serving(&mut self) -> anyhow::Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut client = None;
        loop {
            let broker = self.process.as_mut().context("the broker is not running")?;
            if let Some(status) = broker.child.try_wait().context("cannot check the broker")? {
                self.process = None;
                bail!("its JVM exited ({status})");
            }
            ensure!(
                Instant::now() < deadline,
                "it did not serve metadata within {START_TIMEOUT:?}"
            );
            // Clients are made once the port accepts: before, their reconnection backoff
            // would grow and delay the first request.
            if client.is_none() && TcpStream::connect((Ipv4Addr::LOCALHOST, self.port)).is_ok() {
                client = Some(KafkaClient::new(&self.bootstrap()).consumer(&[])?);
            }
            if let Some(consumer) = &client
                && consumer
                    .fetch_metadata(None, Duration::from_secs(1))
                    .is_ok_and(|metadata| !metadata.brokers().is_empty())
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// `"the Kafka broker in DIR {what}"`, with the end of its log.
    pub fn failure(&self, what: &str) -> String {
        format!(
            "the Kafka broker in {} {what}; the end of {LOG}:\n{}",
            self.dir.display(),
            self.log_tail()
        )
    }

    /// The broker's log, empty if it cannot be read.
    fn log(&self) -> String {
        let log = std::fs::read(self.dir.join(LOG)).unwrap_or_default();
        String::from_utf8_lossy(&log).into_owned()
    }

    /// The last lines of the broker's log.
    fn log_tail(&self) -> String {
        let log = self.log();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(LOG_TAIL)..].join("\n")
    }
}

impl Drop for KafkaBroker {
    fn drop(&mut self) {
        self.stop();
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// The broker's files in its folder.
const PROPERTIES: &str = "server.properties";
const LOG4J: &str = "log4j2.properties";
const LOG: &str = "broker.log";

/// A secured broker's files in its folder: its key and certificate chain (PKCS12), and the
/// test CA's certificate (PEM) clients trust. The CA's own key (`ca.p12`), the broker's
/// certificate request and signed certificate are there too.
const KEYSTORE: &str = "broker.p12";
const CA_PEM: &str = "ca.pem";

/// The password of both keystores (the CA's and the broker's).
const KEYSTORE_PASSWORD: &str = "cairn-test";

/// The names the broker's certificate is valid for (`keytool`'s `-ext`).
const BROKER_NAMES: &str = "SAN=ip:127.0.0.1,dns:localhost";

/// How long the test certificates are valid, in days.
const VALIDITY_DAYS: &str = "3650";

/// Makes a secured broker's certificates in `dir` with `keytool`: a test CA (a key pair with
/// a self-signed certificate, `bc:c`), the broker's key pair, its certificate signed by the
/// CA for [`BROKER_NAMES`] and installed with the CA's in the broker's PKCS12 keystore
/// ([`KEYSTORE`]), and the CA's certificate as PEM ([`CA_PEM`]), whose path it returns.
fn make_certificates(dir: &Path) -> anyhow::Result<PathBuf> {
    let keystore = |file: &'static str| {
        [
            "-keystore",
            file,
            "-storetype",
            "PKCS12",
            "-storepass",
            KEYSTORE_PASSWORD,
        ]
    };
    let key_pair = |alias: &'static str, name: &'static str, extension: &'static str| {
        [
            "-genkeypair",
            "-alias",
            alias,
            "-dname",
            name,
            "-keyalg",
            "RSA",
            "-keysize",
            "2048",
            "-validity",
            VALIDITY_DAYS,
            "-ext",
            extension,
        ]
    };
    keytool(
        dir,
        &[
            &key_pair("ca", "CN=cairn-test-ca", "bc:c"),
            &keystore("ca.p12"),
        ],
    )?;
    keytool(
        dir,
        &[
            &key_pair("broker", "CN=localhost", BROKER_NAMES),
            &keystore(KEYSTORE),
        ],
    )?;
    keytool(
        dir,
        &[
            &["-certreq", "-alias", "broker", "-file", "broker.csr"],
            &keystore(KEYSTORE),
        ],
    )?;
    keytool(
        dir,
        &[
            &[
                "-gencert",
                "-alias",
                "ca",
                "-infile",
                "broker.csr",
                "-outfile",
                "broker.pem",
                "-rfc",
                "-validity",
                VALIDITY_DAYS,
                "-ext",
                BROKER_NAMES,
            ],
            &keystore("ca.p12"),
        ],
    )?;
    keytool(
        dir,
        &[
            &["-exportcert", "-alias", "ca", "-rfc", "-file", CA_PEM],
            &keystore("ca.p12"),
        ],
    )?;
    // The certificate reply: the broker's certificate and then the CA's, its whole chain.
    let read = |file: &str| {
        std::fs::read_to_string(dir.join(file))
            .with_context(|| format!("cannot read {}", dir.join(file).display()))
    };
    let chain = dir.join("chain.pem");
    std::fs::write(&chain, read("broker.pem")? + &read(CA_PEM)?)
        .with_context(|| format!("cannot write {}", chain.display()))?;
    keytool(
        dir,
        &[
            &[
                "-importcert",
                "-alias",
                "broker",
                "-file",
                "chain.pem",
                "-noprompt",
            ],
            &keystore(KEYSTORE),
        ],
    )?;
    Ok(dir.join(CA_PEM))
}

/// Runs Java's `keytool` in `dir` with the concatenated `args` (its JVM started for a short
/// run), failing with its output when it fails.
fn keytool(dir: &Path, args: &[&[&str]]) -> anyhow::Result<()> {
    let args = args.concat();
    let output = Command::new("keytool")
        .args(["-J-XX:TieredStopAtLevel=1", "-J-XX:+UseSerialGC"])
        .args(&args)
        .current_dir(dir)
        .stdin(Stdio::null())
        .output()
        .context("cannot run keytool (Java 17 is needed)")?;
    ensure!(
        output.status.success(),
        "keytool {} failed in {} ({}): {}{}",
        args.join(" "),
        dir.display(),
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    Ok(())
}

/// A secured broker's configuration beyond the listeners: the `SASL_SSL` listener's keystore
/// (`keystore`), its SASL mechanisms and users ([`KafkaUser::ALL`]: PLAIN's in its JAAS
/// configuration, SCRAM's in the cluster's metadata, see [`KafkaBroker::format`]), and the
/// authorizer, whose super users are `User:ANONYMOUS` (the `PLAINTEXT` and controller
/// listeners' principal) and [`KafkaUser::ADMIN`].
fn security(keystore: &Path) -> String {
    let plain_users: String = KafkaUser::ALL
        .iter()
        .map(|user| format!(" user_{}=\"{}\"", user.name, user.password))
        .collect();
    let mechanisms = [
        SaslMechanism::Plain,
        SaslMechanism::ScramSha256,
        SaslMechanism::ScramSha512,
    ]
    .map(SaslMechanism::name)
    .join(",");
    format!(
        "sasl.enabled.mechanisms={mechanisms}\n\
         listener.name.sasl_ssl.sasl.enabled.mechanisms={mechanisms}\n\
         listener.name.sasl_ssl.ssl.keystore.type=PKCS12\n\
         listener.name.sasl_ssl.ssl.keystore.location={}\n\
         listener.name.sasl_ssl.ssl.keystore.password={KEYSTORE_PASSWORD}\n\
         listener.name.sasl_ssl.ssl.key.password={KEYSTORE_PASSWORD}\n\
         listener.name.sasl_ssl.plain.sasl.jaas.config=\
         org.apache.kafka.common.security.plain.PlainLoginModule required{plain_users};\n\
         listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=\
         org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
         listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=\
         org.apache.kafka.common.security.scram.ScramLoginModule required;\n\
         authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer\n\
         super.users=User:ANONYMOUS;User:{}\n",
        keystore.display(),
        KafkaUser::ADMIN.name,
    )
}

/// What the broker logs when a port it should listen on is taken.
const PORT_TAKEN: &str = "Address already in use";

/// A shell script that execs its arguments (the JVM) after starting a background reader of
/// its standard input, a pipe from this process, which kills the JVM with SIGKILL when the
/// pipe ends. The pipe ends when this process closes it or ends itself, however it ends, so
/// the JVM cannot outlive it. (`PR_SET_PDEATHSIG` would fire when the thread that started the
/// JVM ends, and tests run on threads of their own.)
const WATCHDOG: &str = "exec 3<&0 </dev/null
(read -r _ <&3; kill -9 $$) &
exec \"$@\" 3<&-";

impl Broker {
    /// `program` under the [`WATCHDOG`], to be given its arguments and spawned by
    /// [`Broker::spawn`].
    fn watched(program: &str) -> Command {
        let mut command = Command::new("sh");
        command
            .args(["-c", WATCHDOG, "sh", program])
            .stdin(Stdio::piped());
        command
    }

    fn spawn(mut command: Command) -> anyhow::Result<Broker> {
        let mut child = command
            .spawn()
            .context("cannot start the Kafka broker (sh, java)")?;
        let pipe = child
            .stdin
            .take()
            .context("the watchdog's input is piped")?;
        Ok(Broker { child, pipe })
    }

    /// Kills the JVM with SIGKILL and waits for it. The watchdog kills it when its pipe is
    /// closed; the JVM is killed directly only if that has not happened in a while, so that
    /// the watchdog never signals a process id the JVM no longer has.
    fn kill(self) {
        let Broker { mut child, pipe } = self;
        drop(pipe);
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Which records a read returns.
#[derive(Debug, Clone, Copy)]
enum Isolation {
    ReadCommitted,
    ReadUncommitted,
}

impl Isolation {
    /// The `isolation.level` setting.
    fn setting(self) -> &'static str {
        match self {
            Isolation::ReadCommitted => "read_committed",
            Isolation::ReadUncommitted => "read_uncommitted",
        }
    }
}

/// The client calls tests and `cargo xtask kafka` make on a Kafka cluster.
pub struct KafkaClient {
    bootstrap: String,
}

impl KafkaClient {
    /// A client of the cluster at `bootstrap` (`HOST:PORT[,HOST:PORT...]`).
    pub fn new(bootstrap: &str) -> KafkaClient {
        KafkaClient {
            bootstrap: bootstrap.to_owned(),
        }
    }

    /// The number of partitions `topic` has, `None` when it does not exist.
    pub fn partitions(&self, topic: &str) -> anyhow::Result<Option<i32>> {
        let consumer = self.consumer(&[])?;
        let metadata = consumer
            .fetch_metadata(Some(topic), CLIENT_TIMEOUT)
            .with_context(|| format!("cannot read the metadata of topic {topic:?}"))?;
        let topic_metadata = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .with_context(|| format!("the metadata has no topic {topic:?}"))?;
        match topic_metadata.error() {
            None => Ok(Some(
                i32::try_from(topic_metadata.partitions().len()).context("too many partitions")?,
            )),
            Some(rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) => {
                Ok(None)
            }
            Some(e) => bail!(
                "topic {topic:?}: {}",
                rdkafka::types::RDKafkaErrorCode::from(e)
            ),
        }
    }

    /// Creates `topic` with `partitions` partitions (replication 1) and waits until every
    /// partition has its leader (so that producing to it at once succeeds).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .config()
            .create()
            .context("cannot create a Kafka admin client")?;
        let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
        let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
        let results = futures::executor::block_on(admin.create_topics([&new_topic], &options))
            .with_context(|| format!("cannot create topic {topic:?}"))?;
        for result in results {
            if let Err((name, code)) = result {
                bail!("cannot create topic {name:?}: {code}");
            }
        }
        self.wait_for_leaders(topic, partitions)
    }

    /// Grows `topic` to `partitions` partitions and waits until every one has its leader.
    pub fn add_partitions(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let admin: AdminClient<DefaultClientContext> = self
            .config()
            .create()
            .context("cannot create a Kafka admin client")?;
        let total = usize::try_from(partitions).context("a partition count")?;
        let new_partitions = NewPartitions::new(topic, total);
        let options = AdminOptions::new().operation_timeout(Some(CLIENT_TIMEOUT));
        let results =
            futures::executor::block_on(admin.create_partitions([&new_partitions], &options))
                .with_context(|| format!("cannot add partitions to topic {topic:?}"))?;
        for result in results {
            if let Err((name, code)) = result {
                bail!("cannot add partitions to topic {name:?}: {code}");
            }
        }
        self.wait_for_leaders(topic, partitions)
    }

    /// Waits until `topic` has `partitions` partitions, each with its leader (so that
    /// producing to them at once succeeds).
    fn wait_for_leaders(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let consumer = self.consumer(&[])?;
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        loop {
            let metadata = consumer
                .fetch_metadata(Some(topic), CLIENT_TIMEOUT)
                .with_context(|| format!("cannot read the metadata of topic {topic:?}"))?;
            let led = metadata.topics().iter().any(|t| {
                t.name() == topic
                    && t.error().is_none()
                    && t.partitions().len() == partitions as usize
                    && t.partitions()
                        .iter()
                        .all(|p| p.error().is_none() && p.leader() >= 0)
            });
            if led {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "topic {topic:?}'s {partitions} partitions have no leader after {CLIENT_TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Lines as record values (no key), line i to partition i mod partitions (so every
    /// partition gets data), flushed and acknowledged (acks=all) before returning.
    pub fn produce_lines(&self, topic: &str, lines: &[String]) -> anyhow::Result<()> {
        let partitions = self
            .partitions(topic)?
            .with_context(|| format!("topic {topic:?} does not exist"))?;
        let producer: BaseProducer<Deliveries> = self
            .config()
            .set("acks", "all")
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create_with_context(Deliveries::default())
            .context("cannot create a Kafka producer")?;
        for (i, line) in lines.iter().enumerate() {
            let partition = i32::try_from(i % partitions as usize).context("partition")?;
            let mut record = BaseRecord::<(), _>::to(topic)
                .payload(line.as_bytes())
                .partition(partition);
            // A full queue is emptied by serving delivery reports; then the same record again.
            while let Err((e, returned)) = producer.send(record) {
                ensure!(
                    matches!(
                        e,
                        KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "cannot produce to topic {topic:?}: {e}"
                );
                producer.poll(Duration::from_millis(10));
                record = returned;
            }
        }
        producer
            .flush(CLIENT_TIMEOUT)
            .with_context(|| format!("cannot flush the records produced to {topic:?}"))?;
        let failure = producer
            .context()
            .failure
            .lock()
            .expect("not poisoned")
            .take();
        match failure {
            Some(e) => Err(e).with_context(|| format!("a record to {topic:?} was not delivered")),
            None => Ok(()),
        }
    }

    /// Every committed record of `topic`, as [`KafkaBroker::read_committed`] reads them.
    pub fn read_committed(&self, topic: &str) -> anyhow::Result<Vec<KafkaRecord>> {
        self.read(topic, Isolation::ReadCommitted)
    }

    /// Every record of `topic`, as [`KafkaBroker::read_uncommitted`] reads them.
    pub fn read_uncommitted(&self, topic: &str) -> anyhow::Result<Vec<KafkaRecord>> {
        self.read(topic, Isolation::ReadUncommitted)
    }

    /// Every record of `topic` visible at `isolation`, all partitions, from the beginning up
    /// to the end offsets at the call (at read_committed the last stable offsets, which an
    /// open transaction holds back), ordered by partition and offset.
    fn read(&self, topic: &str, isolation: Isolation) -> anyhow::Result<Vec<KafkaRecord>> {
        let partitions = self
            .partitions(topic)?
            .with_context(|| format!("topic {topic:?} does not exist"))?;
        let consumer = self.consumer(&[
            ("isolation.level", isolation.setting()),
            ("enable.partition.eof", "true"),
        ])?;
        // Per partition, the end offset to read up to (exclusive); only those with records.
        let mut ends = HashMap::new();
        let mut assignment = TopicPartitionList::new();
        for partition in 0..partitions {
            // The consumer's isolation level is the request's: the high offset is the last
            // stable offset at read_committed.
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, CLIENT_TIMEOUT)
                .with_context(|| format!("cannot read the offsets of {topic:?} {partition}"))?;
            if high > low {
                ends.insert(partition, high);
                assignment
                    .add_partition_offset(topic, partition, Offset::Offset(low))
                    .context("cannot build the assignment")?;
            }
        }
        consumer
            .assign(&assignment)
            .with_context(|| format!("cannot assign {topic:?}'s partitions"))?;
        let mut records = Vec::new();
        let deadline = Instant::now() + CLIENT_TIMEOUT;
        while !ends.is_empty() {
            ensure!(
                Instant::now() < deadline,
                "reading topic {topic:?} ({}) took over {CLIENT_TIMEOUT:?}: partitions {:?} \
                 are not read to their end offsets",
                isolation.setting(),
                ends
            );
            match consumer.poll(Duration::from_millis(100)) {
                None => {}
                Some(Ok(message)) => {
                    let partition = message.partition();
                    let Some(&end) = ends.get(&partition) else {
                        continue;
                    };
                    if message.offset() < end {
                        records.push(KafkaRecord {
                            partition,
                            offset: message.offset(),
                            key: message.key().map(<[u8]>::to_vec),
                            value: message.payload().map(<[u8]>::to_vec),
                        });
                    }
                    if message.offset() >= end - 1 {
                        ends.remove(&partition);
                    }
                }
                // At the end of what the partition has now, which is past the end offset
                // taken above (after it, only transaction markers, or aborted records at
                // read_committed).
                Some(Err(KafkaError::PartitionEOF(partition))) => {
                    ends.remove(&partition);
                }
                Some(Err(e)) => {
                    return Err(e).with_context(|| format!("cannot read topic {topic:?}"));
                }
            }
        }
        records.sort_by_key(|r| (r.partition, r.offset));
        Ok(records)
    }

    /// The configuration every client starts from.
    fn config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config
            .set("bootstrap.servers", &self.bootstrap)
            .set("reconnect.backoff.max.ms", "1000");
        config
    }

    /// A consumer with `settings`, in a group of its own that commits nothing (consumers
    /// need a group to be assigned partitions).
    fn consumer(&self, settings: &[(&str, &str)]) -> anyhow::Result<BaseConsumer> {
        static GROUPS: AtomicU32 = AtomicU32::new(0);
        let group = format!(
            "cairn-tests-{}-{}",
            std::process::id(),
            GROUPS.fetch_add(1, Ordering::Relaxed)
        );
        let mut config = self.config();
        config
            .set("group.id", group)
            .set("enable.auto.commit", "false");
        for (key, value) in settings {
            config.set(*key, *value);
        }
        config
            .create::<BaseConsumer<DefaultConsumerContext>>()
            .context("cannot create a Kafka consumer")
    }
}

/// A producer's context: the first record that failed to be delivered.
#[derive(Default)]
struct Deliveries {
    failure: Mutex<Option<KafkaError>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.failure
                .lock()
                .expect("not poisoned")
                .get_or_insert_with(|| e.clone());
        }
    }
}

/// `N` distinct free loopback ports for a broker's listeners (clients', controller's, and a
/// secured broker's `SASL_SSL`), picked at random below the kernel's ephemeral port range:
/// no outgoing connection can take one as its own port while the broker is down between
/// [`KafkaBroker::stop`] and [`KafkaBroker::restart`].
fn free_ports<const N: usize>() -> anyhow::Result<[u16; N]> {
    let ephemeral = std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|range| range.split_whitespace().next()?.parse::<u16>().ok())
        .unwrap_or(32_768);
    ensure!(
        ephemeral > LOWEST_PORT + 1_000,
        "the ephemeral port range starts at {ephemeral}: no ports below it for a broker"
    );
    let mut ports = [0; N];
    for i in 0..N {
        ports[i] = free_port(ephemeral, &ports[..i])?;
    }
    Ok(ports)
}

/// A free loopback port from 10000 up to `ephemeral` (exclusive), none of `except`.
fn free_port(ephemeral: u16, except: &[u16]) -> anyhow::Result<u16> {
    for _ in 0..1_000 {
        let bytes = random_bytes();
        let port =
            LOWEST_PORT + u16::from_le_bytes([bytes[0], bytes[1]]) % (ephemeral - LOWEST_PORT);
        if !except.contains(&port) && TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok() {
            return Ok(port);
        }
    }
    bail!("no free loopback port from {LOWEST_PORT} to {ephemeral}")
}

/// A new broker's own folder under `target/test-scratch/`.
fn scratch_dir() -> PathBuf {
    static STARTED: AtomicU32 = AtomicU32::new(0);
    let n = STARTED.fetch_add(1, Ordering::Relaxed);
    target_dir()
        .join("test-scratch")
        .join(format!("kafka-{}-{n}", std::process::id()))
}

/// The lowest port a broker listens on.
const LOWEST_PORT: u16 = 10_000;

/// A random cluster id: 16 bytes in URL-safe base64, as Kafka's `Uuid` writes them (and as
/// Kafka picks them, not starting with `-`, which would read as an option).
fn cluster_id() -> String {
    loop {
        let id = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random_bytes());
        if !id.starts_with('-') {
            return id;
        }
    }
}

/// 16 random bytes (from std's randomly keyed hasher).
fn random_bytes() -> [u8; 16] {
    let state = std::collections::hash_map::RandomState::new();
    let [a, b] = [0u8, 1].map(|i| state.hash_one(i).to_le_bytes());
    let mut bytes = [0; 16];
    bytes[..8].copy_from_slice(&a);
    bytes[8..].copy_from_slice(&b);
    bytes
}

#[cfg(test)]
mod tests {
    use rdkafka::producer::BaseProducer;

    use super::*;

    /// Lines by partition: what `produce_lines` sends to each of `partitions`.
    fn by_partition(lines: &[String], partitions: usize) -> Vec<Vec<Vec<u8>>> {
        (0..partitions)
            .map(|p| {
                lines
                    .iter()
                    .skip(p)
                    .step_by(partitions)
                    .map(|line| line.as_bytes().to_vec())
                    .collect()
            })
            .collect()
    }

    /// What `records` hold by partition: their values, in offset order.
    fn values(records: &[KafkaRecord], partitions: usize) -> Vec<Vec<Vec<u8>>> {
        let mut values = vec![Vec::new(); partitions];
        for record in records {
            assert_eq!(record.key, None);
            values[record.partition as usize].push(record.value.clone().expect("a value"));
        }
        values
    }

    /// The harness: a broker starts; a 3-partition topic gets 10 lines on all its partitions;
    /// both reads return them, and read_committed ends at an open transaction's first record
    /// (read_uncommitted shows it); after a crash (SIGKILL) and a restart on the same ports
    /// and data the lines are all there.
    #[test]
    fn broker_serves_a_topic_across_a_restart() -> anyhow::Result<()> {
        if !KafkaBroker::available()? {
            return Ok(());
        }
        let started = Instant::now();
        let mut broker = KafkaBroker::start()?;
        eprintln!(
            "the broker served metadata {:?} after start",
            started.elapsed()
        );
        broker.create_topic("lines", 3)?;
        let lines: Vec<String> = (0..10).map(|i| format!("line {i}")).collect();
        broker.produce_lines("lines", &lines)?;
        let expected = by_partition(&lines, 3);
        assert!(expected.iter().all(|values| !values.is_empty()));
        assert_eq!(values(&broker.read_committed("lines")?, 3), expected);
        assert_eq!(values(&broker.read_uncommitted("lines")?, 3), expected);

        let open: BaseProducer = ClientConfig::new()
            .set("bootstrap.servers", broker.bootstrap())
            .set("transactional.id", "harness-test")
            .create()?;
        open.init_transactions(CLIENT_TIMEOUT)?;
        open.begin_transaction()?;
        open.send(
            BaseRecord::<(), _>::to("lines")
                .payload("open")
                .partition(0),
        )
        .map_err(|(e, _)| e)?;
        open.flush(CLIENT_TIMEOUT)?;
        assert_eq!(values(&broker.read_committed("lines")?, 3), expected);
        let mut uncommitted = expected.clone();
        uncommitted[0].push(b"open".to_vec());
        assert_eq!(values(&broker.read_uncommitted("lines")?, 3), uncommitted);
        drop(open);

        broker.stop();
        let restarted = Instant::now();
        broker.restart()?;
        eprintln!(
            "the broker served metadata {:?} after restart",
            restarted.elapsed()
        );
        assert_eq!(values(&broker.read_committed("lines")?, 3), expected);
        Ok(())
    }

    /// What a client of a secured broker's `SASL_SSL` listener, as `user` with
    /// `mechanism`, learns of topic `topic`'s metadata: `None` when it may describe it, the
    /// topic's error otherwise.
    fn secure_metadata(
        broker: &KafkaBroker,
        user: KafkaUser,
        mechanism: SaslMechanism,
        topic: &str,
    ) -> anyhow::Result<Option<rdkafka::types::RDKafkaErrorCode>> {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", broker.secure_bootstrap());
        for (key, value) in broker.sasl_ssl_properties(user, mechanism) {
            config.set(key, value);
        }
        let consumer: BaseConsumer = config.create()?;
        let metadata = consumer.fetch_metadata(Some(topic), CLIENT_TIMEOUT)?;
        let found = metadata
            .topics()
            .iter()
            .find(|t| t.name() == topic)
            .context("the topic is described")?;
        Ok(found.error().map(rdkafka::types::RDKafkaErrorCode::from))
    }

    /// A secured broker: the harness's calls (over `PLAINTEXT`) work; over `SASL_SSL`
    /// trusting the test CA, the admin describes a topic with every mechanism, and mallory,
    /// authenticated, is refused it; the same after a restart.
    #[test]
    fn a_secured_broker_authenticates_and_authorizes() -> anyhow::Result<()> {
        if !KafkaBroker::available()? {
            return Ok(());
        }
        let started = Instant::now();
        let mut broker = KafkaBroker::start_secured()?;
        eprintln!(
            "the secured broker served metadata {:?} after start",
            started.elapsed()
        );
        broker.create_topic("lines", 2)?;
        let lines: Vec<String> = (0..4).map(|i| format!("line {i}")).collect();
        broker.produce_lines("lines", &lines)?;
        assert_eq!(
            values(&broker.read_committed("lines")?, 2),
            by_partition(&lines, 2)
        );
        let refused = Some(rdkafka::types::RDKafkaErrorCode::TopicAuthorizationFailed);
        for mechanism in [
            SaslMechanism::Plain,
            SaslMechanism::ScramSha256,
            SaslMechanism::ScramSha512,
        ] {
            assert_eq!(
                secure_metadata(&broker, KafkaUser::ADMIN, mechanism, "lines")?,
                None,
                "{mechanism:?}"
            );
            assert_eq!(
                secure_metadata(&broker, KafkaUser::MALLORY, mechanism, "lines")?,
                refused,
                "{mechanism:?}"
            );
        }
        broker.stop();
        broker.restart()?;
        let admin = secure_metadata(
            &broker,
            KafkaUser::ADMIN,
            SaslMechanism::ScramSha512,
            "lines",
        );
        assert_eq!(admin?, None);
        assert_eq!(
            values(&broker.read_committed("lines")?, 2),
            by_partition(&lines, 2)
        );
        Ok(())
    }
}
