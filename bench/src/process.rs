//! The real `cairn` binary, run as users run it: the time from `cairn run` to the first
//! record out (start-up), with the compiled-component cache warm and cold, and whole-process
//! throughput and peak memory (the kernel's high-water mark of resident memory, `VmHWM`).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cairn_tests::{Scratch, cairn_bin, job};

use crate::path;

/// How often a running process's memory high-water mark is read.
const MEMORY_POLL: Duration = Duration::from_millis(10);

/// A `cairn` command with its caches and registry in `scratch` (`cache` names the cache
/// folder, so runs can share one or start empty).
pub(crate) fn cairn(scratch: &Scratch, cache: &str, args: &[&str]) -> Command {
    let mut command = Command::new(cairn_bin());
    command
        .args(args)
        .env("XDG_CACHE_HOME", scratch.join(cache))
        .env("XDG_RUNTIME_DIR", scratch.join("runtime"))
        .stderr(Stdio::null());
    command
}

/// The memory high-water mark of running process `pid`, in bytes (0 once it has ended).
fn high_water_mark(pid: u32) -> u64 {
    memory_status(&pid.to_string(), "VmHWM:")
}

/// A memory figure (`field`, e.g. `VmRSS:`) of process `pid` (or `self`) from
/// `/proc/<pid>/status`, in bytes; 0 if the process is gone.
pub(crate) fn memory_status(pid: &str, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(field))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        })
        .map_or(0, |kb| kb << 10)
}

/// Waits for `child`, reading its memory high-water mark until it exits; returns its peak
/// resident memory in bytes.
pub(crate) fn peak_memory(mut child: Child) -> anyhow::Result<u64> {
    let mut peak = 0;
    loop {
        peak = peak.max(high_water_mark(child.id()));
        if let Some(status) = child.try_wait()? {
            if !status.success() {
                bail!("cairn exited with {status}");
            }
            return Ok(peak);
        }
        std::thread::sleep(MEMORY_POLL);
    }
}

/// One word-count run reading stdin and writing stdout: the time from spawning `cairn run`
/// to the first output record, and the process's peak memory.
fn first_record(scratch: &Scratch, cache: &str) -> anyhow::Result<(Duration, u64)> {
    let wasm = job("word-count");
    let started = Instant::now();
    let mut child = cairn(
        scratch,
        cache,
        &["run", path(&wasm), "--", "--input", "-", "--output", "-"],
    )
    .stdin(Stdio::piped())
    .stdout(Stdio::piped())
    .spawn()
    .context("cannot start cairn")?;
    let mut stdin = child.stdin.take().context("stdin is piped")?;
    stdin.write_all(b"hello\n")?;
    stdin.flush()?;
    let mut stdout = BufReader::new(child.stdout.take().context("stdout is piped")?);
    let mut line = String::new();
    // The first line is the submission message; the record follows.
    while !line.starts_with("hello\t") {
        line.clear();
        if stdout.read_line(&mut line)? == 0 {
            bail!("cairn ended before its first record");
        }
    }
    let elapsed = started.elapsed();
    // Read before the input ends: the job then finishes and its process is gone.
    let memory = high_water_mark(child.id());
    drop(stdin);
    std::io::copy(&mut stdout, &mut std::io::sink())?;
    Ok((elapsed, memory.max(peak_memory(child)?)))
}

pub fn startup_and_memory(runs: u32, records: u64, keys: u64) -> anyhow::Result<()> {
    let scratch = Scratch::new("bench-process");
    println!();
    println!(
        "| start-up: `cairn run` → first record out | median of {runs} | slowest | peak RSS |"
    );
    println!("|---|---:|---:|---:|");
    for (label, warm) in [("compiled-code cache cold", false), ("cache warm", true)] {
        if warm {
            first_record(&scratch, "warm")?;
        }
        let mut times = Vec::new();
        let mut peak = 0;
        for run in 0..runs {
            let cache = if warm {
                "warm".to_owned()
            } else {
                format!("cold-{run}")
            };
            let (time, memory) = first_record(&scratch, &cache)?;
            times.push(time);
            peak = peak.max(memory);
        }
        times.sort();
        println!(
            "| {label} | {:.1} ms | {:.1} ms | {:.1} MB |",
            times[times.len() / 2].as_secs_f64() * 1e3,
            times[times.len() - 1].as_secs_f64() * 1e3,
            peak as f64 / 1e6
        );
    }

    println!();
    println!(
        "| whole process: keyed-sum, {records} records, {keys} keys, p=1 | wall | records/s | peak RSS |"
    );
    println!("|---|---:|---:|---:|");
    let wasm = job("keyed-sum");
    let checkpoint_dir = format!(
        "execution.checkpointing.dir={}",
        scratch.join("checkpoints").display()
    );
    let job_args = [format!("--records={records}"), format!("--keys={keys}")];
    for (label, config) in [
        ("checkpoints off", vec![]),
        (
            "exactly-once checkpoints every 1 s",
            vec![
                "execution.checkpointing.interval=1 s",
                checkpoint_dir.as_str(),
            ],
        ),
    ] {
        let mut args = vec!["run", path(&wasm)];
        for setting in &config {
            args.extend(["-D", setting]);
        }
        args.push("--");
        args.extend(job_args.iter().map(String::as_str));
        let started = Instant::now();
        let child = cairn(&scratch, "warm", &args)
            .stdout(Stdio::null())
            .spawn()
            .context("cannot start cairn")?;
        let peak = peak_memory(child)?;
        let seconds = started.elapsed().as_secs_f64();
        println!(
            "| {label} | {seconds:.2} s | {:.2} M | {:.1} MB |",
            records as f64 / seconds / 1e6,
            peak as f64 / 1e6
        );
    }
    Ok(())
}

/// Samples this process's resident memory every few milliseconds on its own thread;
/// `stop` returns the highest growth over the level at `start`.
pub(crate) struct RssSampler {
    stop: Arc<AtomicBool>,
    peak: Arc<AtomicU64>,
    base: u64,
    thread: std::thread::JoinHandle<()>,
}

impl RssSampler {
    pub(crate) fn start() -> Self {
        let (stop, peak) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let base = resident();
        let thread = {
            let (stop, peak) = (stop.clone(), peak.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    peak.fetch_max(resident(), Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        RssSampler {
            stop,
            peak,
            base,
            thread,
        }
    }

    pub(crate) fn stop(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.thread.join();
        self.peak.load(Ordering::Relaxed).saturating_sub(self.base)
    }
}

/// This process's resident memory, in bytes.
fn resident() -> u64 {
    memory_status("self", "VmRSS:")
}
