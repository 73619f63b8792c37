//! Apache Kafka for the tests and for users. [`ensure_kafka`] installs the broker's jars from
//! Maven Central into `target/toolchains/kafka/libs/`, once; `cargo xtask kafka ...` runs the
//! tests crate's `cairn-kafka` tool (`tests/src/bin/cairn-kafka.rs`), which shares the one
//! implementation of starting a broker, producing and consuming with the tests
//! (`tests/src/kafka.rs`). Nothing of it is part of the host's build.

use std::process::Command;

use anyhow::{Context, bail};

use crate::guests::toolchain_dir;
use crate::{cargo, run, step};

const USAGE: &str = "usage: cargo xtask kafka install | start | stop
       cargo xtask kafka produce --bootstrap HOST:PORT --topic T [--partitions N] FILE
       cargo xtask kafka consume --bootstrap HOST:PORT --topic T OUT_FILE";

/// The Kafka release the project's broker is.
const KAFKA_VERSION: &str = "4.1.0";

/// The artifacts whose jars, with their dependencies, make the broker (group, artifact,
/// version): Kafka itself, its admin and console tools, and the slf4j binding that sends
/// Kafka's logs to log4j 2 (whose core Kafka depends on), as Kafka's own distribution does.
const ARTIFACTS: [(&str, &str, &str); 3] = [
    ("org.apache.kafka", "kafka_2.13", KAFKA_VERSION),
    ("org.apache.kafka", "kafka-tools", KAFKA_VERSION),
    ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),
];

/// Installs Kafka for the tests. When it cannot be installed, the reason goes to
/// `target/toolchains/kafka.unavailable`: the Kafka tests then fail with it in CI (`CI=true`)
/// and are skipped, saying it, elsewhere.
pub(crate) fn ensure_kafka() -> anyhow::Result<()> {
    if let Err(e) = install() {
        eprintln!("    cannot install Apache Kafka, its tests will not run: {e:#}");
        let unavailable = toolchain_dir("kafka.unavailable");
        std::fs::write(&unavailable, format!("{e:#}"))
            .with_context(|| format!("cannot write {}", unavailable.display()))?;
    }
    Ok(())
}

/// `cargo xtask kafka ...`.
pub(crate) fn kafka(args: &[String]) -> anyhow::Result<()> {
    match args.first().map(String::as_str) {
        Some("install") if args.len() == 1 => install(),
        Some("start") => {
            install()?;
            tool(args)
        }
        Some("stop" | "produce" | "consume") => tool(args),
        _ => bail!("{USAGE}"),
    }
}

/// Runs `cairn-kafka` with `args`, built in the release profile beside the tests (which
/// share its rdkafka build).
fn tool(args: &[String]) -> anyhow::Result<()> {
    run(cargo()
        .args([
            "run",
            "--release",
            "-p",
            "cairn-tests",
            "--bin",
            "cairn-kafka",
            "--",
        ])
        .args(args))
}

/// Resolves [`ARTIFACTS`] with Maven into `target/toolchains/kafka/libs/`, unless a complete
/// install of the same artifacts is there (its marker, the pom, is written last).
fn install() -> anyhow::Result<()> {
    let home = toolchain_dir("kafka");
    let marker = home.join(".cairn-installed");
    let pom = pom();
    if std::fs::read_to_string(&marker).is_ok_and(|installed| installed == pom) {
        return Ok(());
    }
    step(&format!(
        "installing Apache Kafka {KAFKA_VERSION} (Maven Central) into {} (first use)",
        home.display()
    ));
    let libs = home.join("libs");
    // What an interrupted install left: jars of another set, or not all of them.
    if libs.exists() {
        std::fs::remove_dir_all(&libs)
            .with_context(|| format!("cannot remove {}", libs.display()))?;
    }
    std::fs::create_dir_all(&home).with_context(|| format!("cannot create {}", home.display()))?;
    let pom_file = home.join("pom.xml");
    std::fs::write(&pom_file, &pom)
        .with_context(|| format!("cannot write {}", pom_file.display()))?;
    run(Command::new("mvn")
        .args(["-q", "-B", "-f"])
        .arg(&pom_file)
        .args(["dependency:copy-dependencies", "-DincludeScope=runtime"])
        .arg(format!("-DoutputDirectory={}", libs.display())))
    .context(
        "cannot fetch Kafka's jars with Maven: Maven and Java 17 are needed \
         (Debian: apt-get install maven openjdk-17-jdk-headless), and Maven Central reachable",
    )?;
    std::fs::write(&marker, &pom).with_context(|| format!("cannot write {}", marker.display()))?;
    let _ = std::fs::remove_file(toolchain_dir("kafka.unavailable"));
    Ok(())
}

/// A pom whose dependencies are [`ARTIFACTS`].
fn pom() -> String {
    let dependencies: String = ARTIFACTS
        .iter()
        .map(|(group, artifact, version)| {
            format!(
                "    <dependency><groupId>{group}</groupId><artifactId>{artifact}</artifactId>\
                 <version>{version}</version></dependency>\n"
            )
        })
        .collect();
    format!(
        "<project xmlns=\"http://maven.apache.org/POM/4.0.0\">\n  \
         <modelVersion>4.0.0</modelVersion>\n  \
         <groupId>cairn</groupId><artifactId>kafka-broker</artifactId><version>1</version>\n  \
         <dependencies>\n{dependencies}  </dependencies>\n</project>\n"
    )
}
