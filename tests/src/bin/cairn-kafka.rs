//! `cairn-kafka start | stop | produce | consume`: a Kafka broker for users, and a file's
//! lines into a topic and back, with the tests' own harness (`cairn_tests::kafka`). Run by
//! `cargo xtask kafka ...` (docs/guides/kafka.md), which installs Kafka first.

use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cairn_tests::kafka::{KafkaBroker, KafkaClient};
use cairn_tests::target_dir;

const USAGE: &str = "usage: cairn-kafka start | stop
       cairn-kafka produce --bootstrap HOST:PORT --topic T [--partitions N] FILE
       cairn-kafka consume --bootstrap HOST:PORT --topic T OUT_FILE";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("start") if args.len() == 1 => start(),
        Some("stop") if args.len() == 1 => stop(),
        Some("produce") => Options::parse(&args[1..], true).and_then(produce),
        Some("consume") => Options::parse(&args[1..], false).and_then(consume),
        _ => Err(anyhow::anyhow!("{USAGE}")),
    };
    if let Err(error) = result {
        eprintln!("cairn-kafka: {error:#}");
        std::process::exit(1);
    }
}

/// `target/kafka/`: the broker `start` runs (`broker/`: its configuration, data and
/// `broker.log`), its JVM's process id (`pid`, while it runs), its address (`bootstrap`), and
/// the lock `start` holds while it runs.
fn home() -> PathBuf {
    target_dir().join("kafka")
}

/// Starts a broker with fresh storage in `target/kafka/broker/`, prints its bootstrap
/// address, and runs until the broker is stopped (`stop`) or this process ends (Ctrl-C):
/// the broker dies with it.
fn start() -> anyhow::Result<()> {
    let home = home();
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    // Held while this process runs: one broker at a time in `target/kafka/`.
    let lock = home.join("lock");
    let lock = File::create(&lock).with_context(|| format!("cannot open {}", lock.display()))?;
    ensure!(
        lock.try_lock().is_ok(),
        "a broker is running or starting in {} already: `cargo xtask kafka stop` stops it",
        home.display()
    );
    let started = Instant::now();
    let mut broker = KafkaBroker::start_in(&home.join("broker"))?;
    let bootstrap = broker.bootstrap();
    let pid = broker.pid().context("the broker is not running")?;
    for (name, text) in [("pid", pid.to_string()), ("bootstrap", bootstrap.clone())] {
        let path = home.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    eprintln!(
        "Kafka broker serving after {:.1} s (its log: {}); Ctrl-C or `cargo xtask kafka stop` \
         stops it",
        started.elapsed().as_secs_f64(),
        broker.dir().join("broker.log").display()
    );
    println!("{bootstrap}");
    std::io::stdout().flush()?;
    let status = broker.wait()?;
    // `stop` removes the pid file before it stops the broker.
    ensure!(
        !home.join("pid").exists(),
        "{}",
        broker.failure(&format!("exited ({status})"))
    );
    eprintln!("Kafka broker stopped");
    Ok(())
}

/// Stops the broker `start` runs, cleanly (SIGTERM: Kafka's controlled shutdown), and waits
/// until its JVM has ended; `start` then ends too.
fn stop() -> anyhow::Result<()> {
    let Some(pid) = running()? else {
        eprintln!("no broker is running");
        return Ok(());
    };
    std::fs::remove_file(home().join("pid")).context("cannot remove the pid file")?;
    let status = std::process::Command::new("kill")
        .arg(pid.to_string())
        .status()
        .context("cannot run kill")?;
    ensure!(status.success(), "cannot stop process {pid} ({status})");
    let deadline = Instant::now() + Duration::from_secs(60);
    while is_broker(pid) {
        ensure!(
            Instant::now() < deadline,
            "the broker (process {pid}) is still running a minute after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    eprintln!("Kafka broker stopped");
    Ok(())
}

/// The process id of the broker `start` runs, if it runs.
fn running() -> anyhow::Result<Option<u32>> {
    let path = home().join("pid");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let pid = text
        .trim()
        .parse()
        .with_context(|| format!("{} holds no process id", path.display()))?;
    Ok(is_broker(pid).then_some(pid))
}

/// Whether process `pid` is the broker `start` runs (not another process that has its id
/// since): a JVM whose command line names the broker's folder.
fn is_broker(pid: u32) -> bool {
    let folder = home().join("broker");
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .is_ok_and(|cmdline| String::from_utf8_lossy(&cmdline).contains(&*folder.to_string_lossy()))
}

/// `produce`'s and `consume`'s arguments.
struct Options {
    bootstrap: String,
    topic: String,
    /// `--partitions`: of a topic `produce` creates.
    partitions: i32,
    file: PathBuf,
}

impl Options {
    /// `--bootstrap HOST:PORT --topic T [--partitions N] FILE` (`--partitions` only when
    /// `partitions` is allowed).
    fn parse(args: &[String], partitions: bool) -> anyhow::Result<Options> {
        let (mut bootstrap, mut topic, mut count, mut file) = (None, None, 1, None);
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
            match arg.as_str() {
                "--bootstrap" => bootstrap = Some(value()?.clone()),
                "--topic" => topic = Some(value()?.clone()),
                "--partitions" if partitions => {
                    let n = value()?;
                    count =
                        n.parse().ok().filter(|&n| n > 0).with_context(|| {
                            format!("--partitions {n:?}: not a positive number")
                        })?;
                }
                other if !other.starts_with("--") && file.is_none() => {
                    file = Some(PathBuf::from(other));
                }
                other => bail!("unexpected argument {other:?}\n{USAGE}"),
            }
        }
        Ok(Options {
            bootstrap: bootstrap.context("--bootstrap HOST:PORT is needed")?,
            topic: topic.context("--topic is needed")?,
            partitions: count,
            file: file.with_context(|| format!("a file is needed\n{USAGE}"))?,
        })
    }
}

/// The file's lines into the topic (created if missing), round robin over its partitions.
fn produce(options: Options) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&options.file)
        .with_context(|| format!("cannot read {}", options.file.display()))?;
    let lines: Vec<String> = text.lines().map(str::to_owned).collect();
    let client = KafkaClient::new(&options.bootstrap);
    if client.partitions(&options.topic)?.is_none() {
        client.create_topic(&options.topic, options.partitions)?;
    }
    client.produce_lines(&options.topic, &lines)?;
    eprintln!(
        "produced {} lines of {} into {}",
        lines.len(),
        options.file.display(),
        options.topic
    );
    Ok(())
}

/// The topic's committed values up to its end offsets now, one per line, partition by
/// partition.
fn consume(options: Options) -> anyhow::Result<()> {
    let records = KafkaClient::new(&options.bootstrap).read_committed(&options.topic)?;
    let mut out = Vec::new();
    for record in &records {
        out.extend_from_slice(record.value.as_deref().unwrap_or_default());
        out.push(b'\n');
    }
    std::fs::write(&options.file, &out)
        .with_context(|| format!("cannot write {}", options.file.display()))?;
    eprintln!(
        "consumed {} records of {} into {}",
        records.len(),
        options.topic,
        options.file.display()
    );
    Ok(())
}
