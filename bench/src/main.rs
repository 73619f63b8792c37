//! Throughput of example jobs on the cairn runtime: each job's operators as the Wasm
//! component, and the very same operator code compiled natively into this binary, run
//! through the same runtime (graph, channels, partitioning, connectors). The ratio is the
//! cost of the sandbox and the component boundary. Then checkpoint costs, state transfer,
//! and (`process`) the real binary's start-up time and peak memory.
//!
//! `cargo xtask bench [-- --runs N --text-mb MB --records N --keys K --state-keys K
//! --rescale-keys K --overhead-records N --lang-text-mb MB --kafka-records N
//! --windowed-records N --only SECTION,…]`; prints Markdown tables for BENCHMARKS.md.
//! Sections: throughput, checkpoints, state, rescale, process, languages, kafka, windowed.

mod kafka;
mod languages;
mod process;
mod rescale;
mod state;
mod windowed;

use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cairn_core::config::{ConfigLayers, S3Config};
use cairn_core::graph::Graph;
use cairn_core::operator::CallContext;
use cairn_core::operator::{OperatorError, OperatorFactory, OperatorInstance};
use cairn_core::runtime::CheckpointStats;
use cairn_core::runtime::{Checkpointing, Job as RuntimeJob, Outcome};
use cairn_core::state::{CheckpointStore, StateStore};
use cairn_sdk::{Args, Context, Job, JobGraph, KeyedChunk, PackedBatch, Snapshot};
use cairn_tests::{Scratch, job, write_text};
use cairn_wasm::{Engine, JobComponent, Limits};

/// The operators of job `J`, compiled into this binary.
struct Native<J>(PhantomData<fn() -> J>);

struct NativeOperator(cairn_sdk::OperatorInstance);

impl<J: Job> OperatorFactory for Native<J> {
    fn open(&self, ctx: &Context, name: &str) -> Result<Box<dyn OperatorInstance>, OperatorError> {
        let instance = cairn_sdk::OperatorInstance::open::<J>(ctx.clone(), name)
            .map_err(|e| OperatorError::Failed(e.to_string()))?;
        Ok(Box::new(NativeOperator(instance)))
    }
}

impl OperatorInstance for NativeOperator {
    fn process(
        &mut self,
        input: u32,
        batch: PackedBatch,
        key_groups: &[u16],
        _ctx: &mut CallContext,
    ) -> Result<PackedBatch, OperatorError> {
        self.0
            .process(input, &batch, key_groups)
            .map_err(|e| OperatorError::Failed(e.to_string()))
    }

    fn finish(&mut self, _ctx: &mut CallContext) -> Result<PackedBatch, OperatorError> {
        self.0
            .finish()
            .map_err(|e| OperatorError::Failed(e.to_string()))
    }

    fn snapshot(&mut self, _checkpoint: u64) -> Result<Snapshot, OperatorError> {
        self.0
            .snapshot()
            .map_err(|e| OperatorError::Failed(e.to_string()))
    }

    fn restore_keyed(
        &mut self,
        version: u32,
        chunks: Vec<KeyedChunk>,
    ) -> Result<(), OperatorError> {
        self.0
            .restore_keyed(version, &chunks)
            .map_err(|e| OperatorError::Failed(e.to_string()))
    }

    fn restore(&mut self, version: u32, items: Vec<Vec<u8>>) -> Result<(), OperatorError> {
        self.0
            .restore(version, &items)
            .map_err(|e| OperatorError::Failed(e.to_string()))
    }

    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), OperatorError> {
        self.0.checkpoint_complete(checkpoint);
        Ok(())
    }
}

/// Where a job's operators come from.
enum Code {
    Wasm(PathBuf),
    Native {
        describe: fn(&Args) -> cairn_sdk::Result<JobGraph>,
        operators: Arc<dyn OperatorFactory>,
    },
}

impl Code {
    fn native<J: Job + 'static>() -> Self {
        Code::Native {
            describe: J::describe,
            operators: Arc::new(Native::<J>(PhantomData)),
        }
    }

    fn label(&self) -> &'static str {
        match self {
            Code::Wasm(_) => "wasm",
            Code::Native { .. } => "native",
        }
    }

    /// The job graph and operator factory for `args`.
    fn prepare(
        &self,
        engine: &Engine,
        args: &[String],
    ) -> anyhow::Result<(JobGraph, Arc<dyn OperatorFactory>)> {
        match self {
            Code::Wasm(path) => {
                let limits = Limits {
                    memory: 4 << 30,
                    call_timeout: Duration::from_secs(60),
                };
                let component = JobComponent::load(engine, path, true, limits)?;
                let graph = component
                    .instantiate("describe".into())?
                    .describe(args)?
                    .map_err(anyhow::Error::msg)?;
                Ok((graph, Arc::new(component)))
            }
            Code::Native {
                describe,
                operators,
            } => {
                let graph =
                    describe(&Args::new(args.to_vec())).map_err(|e| anyhow::anyhow!("{e}"))?;
                Ok((graph, operators.clone()))
            }
        }
    }
}

/// One job to measure, as Wasm and native.
struct Bench<'a> {
    name: String,
    codes: [Code; 2],
    args: &'a [String],
    /// Runs before every measured run (to clear the previous run's output).
    before_each: &'a dyn Fn() -> anyhow::Result<()>,
}

struct Measurement {
    records: u64,
    seconds: f64,
    checkpoints: CheckpointStats,
    /// How much the process's resident memory grew during the run.
    memory: u64,
}

/// Runs the job `runs` times and keeps the fastest run.
fn measure(
    engine: &Engine,
    code: &Code,
    args: &[String],
    parallelism: u32,
    runs: u32,
    before_each: &dyn Fn() -> anyhow::Result<()>,
    checkpoints: &Checkpointing,
) -> anyhow::Result<Measurement> {
    let mut best: Option<Measurement> = None;
    let mut peak_memory = 0;
    for _ in 0..runs {
        before_each()?;
        let (job_graph, operators) = code.prepare(engine, args)?;
        let graph = Graph::new(&job_graph, parallelism, 128)?;
        let sampler = process::RssSampler::start();
        let started = Instant::now();
        let running = RuntimeJob {
            id: "0".repeat(32),
            graph,
            operators,
            checkpoints: checkpoints.clone(),
            restore: None,
            requests: None,
            attempt: 0,
            cancel: Default::default(),
            // As `cairn run` by default (`pipeline.auto-watermark-interval`); jobs without a
            // watermark strategy never use it.
            watermark_interval: Some(Duration::from_millis(200)),
        }
        .start()?;
        let metrics = running.metrics();
        if let Outcome::Failed(failure) = running.wait() {
            bail!("{failure}");
        }
        let seconds = started.elapsed().as_secs_f64();
        let memory = sampler.stop();
        peak_memory = peak_memory.max(memory);
        let m = Measurement {
            records: metrics.records_read(),
            seconds,
            checkpoints: metrics.checkpoint_stats(),
            memory,
        };
        if best.as_ref().is_none_or(|b| m.seconds < b.seconds) {
            best = Some(m);
        }
    }
    // The fastest run's figures, with the most memory any run grew by.
    best.map(|m| Measurement {
        memory: peak_memory,
        ..m
    })
    .context("at least one run")
}

struct Options {
    runs: u32,
    text_mb: u64,
    records: u64,
    keys: u64,
    /// Keys of the large-state runs.
    state_keys: u64,
    /// Keys of the keyed state the rescale section moves from p=2 to p=3.
    rescale_keys: u64,
    /// Records of the keyed-sum runs with and without checkpoints.
    overhead_records: u64,
    /// Size of the text the languages' word counts read.
    lang_text_mb: u64,
    /// Records of the Kafka → keyed-sum → Kafka runs.
    kafka_records: u64,
    /// Words of the windowed-count runs.
    windowed_records: u64,
    /// The sections to run (`--only a,b`); all when empty.
    only: Vec<String>,
}

/// The table groups of the benchmark, in order.
const SECTIONS: [&str; 8] = [
    "throughput",
    "checkpoints",
    "state",
    "rescale",
    "process",
    "languages",
    "kafka",
    "windowed",
];

impl Options {
    fn runs_section(&self, section: &str) -> bool {
        self.only.is_empty() || self.only.iter().any(|s| s == section)
    }
}

fn options() -> anyhow::Result<Options> {
    let args = Args::new(std::env::args().skip(1).collect());
    if args.as_slice().iter().any(|a| a == "--help" || a == "-h") {
        println!(
            "usage: cairn-bench [--runs N] [--text-mb MB] [--records N] [--keys K] \
             [--state-keys K] [--rescale-keys K] [--overhead-records N] [--lang-text-mb MB] \
             [--kafka-records N] [--windowed-records N] [--only SECTION,...]\n\
             sections: {}",
            SECTIONS.join(", ")
        );
        std::process::exit(0);
    }
    let parse = |name, default| {
        args.parse_or(name, default)
            .map_err(|e| anyhow::anyhow!("{e}"))
    };
    let options = Options {
        runs: parse("--runs", 3)? as u32,
        text_mb: parse("--text-mb", 64)?,
        records: parse("--records", 10_000_000)?,
        keys: parse("--keys", 100_000)?,
        state_keys: parse("--state-keys", 5_000_000)?,
        // About 22 bytes of keyed state a key: 1 GB.
        rescale_keys: parse("--rescale-keys", 48_000_000)?,
        lang_text_mb: parse("--lang-text-mb", 8)?,
        overhead_records: parse("--overhead-records", 50_000_000)?,
        kafka_records: parse("--kafka-records", 2_000_000)?,
        windowed_records: parse("--windowed-records", 10_000_000)?,
        only: args
            .value("--only")
            .map(|only| only.split(',').map(str::to_owned).collect())
            .unwrap_or_default(),
    };
    if let Some(unknown) = options
        .only
        .iter()
        .find(|s| !SECTIONS.contains(&s.as_str()))
    {
        bail!(
            "unknown section {unknown:?} in --only: one of {}",
            SECTIONS.join(", ")
        );
    }
    if options.runs == 0 {
        bail!("--runs must be at least 1");
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    // As the cairn binary does, so that memory figures are the same process's.
    // SAFETY: first thing in main, before any other thread exists.
    unsafe { cairn_core::runtime::return_large_frees_at_once() };
    let options = options()?;
    let engine = Engine::new()?;
    let runtime = tokio::runtime::Runtime::new()?;
    // Checkpointing off: only the final checkpoint that commits sinks, not stored.
    let no_checkpoints = Checkpointing {
        config: ConfigLayers::default().resolve()?.checkpoints,
        storage: None,
        runtime: runtime.handle().clone(),
        first_id: 1,
    };
    let scratch = Scratch::new("bench");
    let text = scratch.join("input.txt");
    let text_bytes = write_text(&text, options.text_mb << 20, 300_000, 7)?;
    let output = scratch.join("out");
    let clear_output = || remove_dir(&output);

    let word_count_args = strings(&["--input", path(&text), "--output", path(&output)]);
    let keyed_args = strings(&[
        &format!("--records={}", options.records),
        &format!("--keys={}", options.keys),
    ]);
    let benches = if options.runs_section("throughput") {
        vec![
            Bench {
                name: format!("word-count, {:.0} MB text → file", text_bytes as f64 / 1e6),
                codes: [
                    Code::Wasm(job("word-count")),
                    Code::native::<word_count::WordCount>(),
                ],
                args: &word_count_args,
                before_each: &clear_output,
            },
            Bench {
                name: format!(
                    "keyed-sum, {} records, {} keys → blackhole",
                    options.records, options.keys
                ),
                codes: [
                    Code::Wasm(job("keyed-sum")),
                    Code::native::<keyed_sum::KeyedSum>(),
                ],
                args: &keyed_args,
                before_each: &|| Ok(()),
            },
        ]
    } else {
        Vec::new()
    };

    if !benches.is_empty() {
        println!(
            "| job | p | code | source records | seconds | records/s | wasm / native | RSS growth |"
        );
        println!("|---|---|---|---:|---:|---:|---:|---:|");
    }
    for Bench {
        name,
        codes,
        args,
        before_each,
    } in &benches
    {
        for parallelism in [1, 2] {
            let mut native_rate = None;
            let mut rows = Vec::new();
            for code in codes.iter().rev() {
                let m = measure(
                    &engine,
                    code,
                    args,
                    parallelism,
                    options.runs,
                    before_each,
                    &no_checkpoints,
                )?;
                let rate = m.records as f64 / m.seconds;
                let ratio = match (code, native_rate) {
                    (Code::Wasm(_), Some(native)) => format!("{:.2}", rate / native),
                    _ => String::new(),
                };
                if let Code::Native { .. } = code {
                    native_rate = Some(rate);
                }
                rows.push(format!(
                    "| {name} | {parallelism} | {} | {} | {:.3} | {:.2} M | {ratio} | {} |",
                    code.label(),
                    m.records,
                    m.seconds,
                    rate / 1e6,
                    megabytes(m.memory)
                ));
            }
            rows.iter().rev().for_each(|row| println!("{row}"));
        }
    }
    clear_output()?;

    if options.runs_section("checkpoints") {
        checkpoint_overhead(
            &engine,
            &options,
            &runtime,
            &scratch,
            &word_count_args,
            &clear_output,
        )?;
    }
    if options.runs_section("state") {
        state::state_transfer(&engine, &runtime, &scratch, options.state_keys)?;
    }
    if options.runs_section("rescale") {
        rescale::rescale(&scratch, options.rescale_keys)?;
    }
    if options.runs_section("process") {
        process::startup_and_memory(options.runs.max(5), options.records, options.keys)?;
    }
    if options.runs_section("languages") {
        languages::languages(&engine, &no_checkpoints, options.lang_text_mb, options.runs)?;
    }
    if options.runs_section("kafka") {
        kafka::kafka(options.kafka_records, options.keys)?;
    }
    if options.runs_section("windowed") {
        windowed::windowed(
            &engine,
            &no_checkpoints,
            options.windowed_records,
            options.runs,
        )?;
    }
    Ok(())
}

/// One checkpoint-overhead case: a Wasm job, its arguments, and the parallelisms to run.
struct OverheadCase<'a> {
    label: String,
    wasm: PathBuf,
    args: Vec<String>,
    parallelisms: &'a [u32],
    intervals: &'a [Duration],
    before_each: &'a dyn Fn() -> anyhow::Result<()>,
}

/// Wasm jobs with exactly-once checkpoints to local disk every 1 s and every 100 ms, next to
/// the same runs without checkpoints: keyed-sum (100k keys and a large key space) and
/// word-count.
fn checkpoint_overhead(
    engine: &Engine,
    options: &Options,
    runtime: &tokio::runtime::Runtime,
    scratch: &Scratch,
    word_count_args: &[String],
    clear_output: &dyn Fn() -> anyhow::Result<()>,
) -> anyhow::Result<()> {
    println!();
    println!(
        "| job | p | checkpoints | records/s | vs off | completed | last: duration | sync | async | raw state | stored | RSS growth |"
    );
    println!("|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let keyed_sum = |records: u64, keys: u64| {
        strings(&[&format!("--records={records}"), &format!("--keys={keys}")])
    };
    let both = [Duration::from_secs(1), Duration::from_millis(100)];
    let cases = [
        OverheadCase {
            // Long enough (50M records: ~5 s) that a 1 s interval takes several checkpoints.
            label: format!(
                "keyed-sum, {} records, {} keys",
                options.overhead_records, options.keys
            ),
            wasm: job("keyed-sum"),
            args: keyed_sum(options.overhead_records, options.keys),
            parallelisms: &[1, 2],
            intervals: &both,
            before_each: &|| Ok(()),
        },
        OverheadCase {
            label: "word-count".into(),
            wasm: job("word-count"),
            args: word_count_args.to_vec(),
            parallelisms: &[1, 2],
            intervals: &both,
            before_each: clear_output,
        },
        OverheadCase {
            label: format!(
                "keyed-sum, {} records, {} keys",
                options.records, options.state_keys
            ),
            wasm: job("keyed-sum"),
            args: keyed_sum(options.records, options.state_keys),
            parallelisms: &[1],
            intervals: &both[..1],
            before_each: &|| Ok(()),
        },
    ];
    let off = Checkpointing {
        config: ConfigLayers::default().resolve()?.checkpoints,
        storage: None,
        runtime: runtime.handle().clone(),
        first_id: 1,
    };
    for case in &cases {
        let code = Code::Wasm(case.wasm.clone());
        for &parallelism in case.parallelisms {
            let mut settings = vec![("off".to_owned(), off.clone())];
            for interval in case.intervals {
                let mut every = off.clone();
                every.config.interval = Some(*interval);
                every.storage = Some(CheckpointStore::new(StateStore::open(
                    path(&scratch.join("checkpoints")),
                    &S3Config::default(),
                )?));
                settings.push((format!("every {interval:?}"), every));
            }
            let mut off_rate = 0.0;
            for (label, checkpoints) in &settings {
                let m = measure(
                    engine,
                    &code,
                    &case.args,
                    parallelism,
                    options.runs,
                    case.before_each,
                    checkpoints,
                )?;
                let rate = m.records as f64 / m.seconds;
                let vs = if label == "off" {
                    off_rate = rate;
                    String::new()
                } else {
                    format!("{:.3}", rate / off_rate)
                };
                // The final checkpoint of a bounded job is not periodic: report the last
                // periodic one.
                let last = match m.checkpoints.history.iter().rev().nth(1) {
                    Some(c) => format!(
                        "{:.0} ms | {:.0} ms | {:.0} ms | {} | {}",
                        c.duration.as_secs_f64() * 1e3,
                        c.max_sync.as_secs_f64() * 1e3,
                        c.max_async.as_secs_f64() * 1e3,
                        megabytes(c.raw_bytes),
                        megabytes(c.stored_bytes)
                    ),
                    None => "- | - | - | - | -".into(),
                };
                println!(
                    "| {} | {parallelism} | {label} | {:.2} M | {vs} | {} | {last} | {} |",
                    case.label,
                    rate / 1e6,
                    m.checkpoints.completed.saturating_sub(1),
                    megabytes(m.memory)
                );
            }
        }
    }
    Ok(())
}

/// Removes a job's output folder left by a previous run, if there is one.
fn remove_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("scratch paths are UTF-8")
}

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
