//! Rescaling a large keyed state with the real binary: keyed-sum at p=2 reads one record of
//! each of `keys` keys (about 22 bytes of keyed state a key: 1 GB at 48M keys), stops with a
//! savepoint, and resumes at p=3. Each new subtask reads only its key groups' byte ranges
//! of the old subtasks' files; the table has what it read, how long it took to read and
//! restore them, and the process's peak memory.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use cairn_core::state::metadata::SubtaskState;
use cairn_core::state::{CheckpointMetadata, METADATA_FILE};
use cairn_tests::{RunningJob, Scratch, Session, job, os, savepoint_path};

use crate::process::memory_status;
use crate::{megabytes, path};

/// Room for a subtask's half of 1 GB of keyed state, its table, and the snapshot's loan.
const MEMORY_LIMIT: &str = "wasm.memory-limit=3 gb";

pub fn rescale(scratch: &Scratch, keys: u64) -> anyhow::Result<()> {
    // The restore's own report ("state restored", per subtask) is an info line.
    let session = Session::new("bench-rescale").with_log("warn,cairn_core=info");
    let run = |p: u32, id: &str, extra: &[&str]| {
        let mut args = os(&["run", path(&job("keyed-sum")), "-p", &p.to_string()]);
        args.extend(os(&["--job-id", id, "-D", MEMORY_LIMIT]));
        args.extend(os(extra));
        args.extend(os(&["--", "--records", "0", "--keys", &keys.to_string()]));
        args
    };

    let started = Instant::now();
    let (old, new) = ("b1".repeat(16), "b2".repeat(16));
    let mut two = session.start(run(2, &old, &[]));
    two.wait_for_progress(keys);
    let filled = started.elapsed();
    let folder = scratch.join("rescale-savepoints");
    let stop = session.cli(os(&["stop", "--savepoint-path", path(&folder), &old]));
    if !stop.success() {
        bail!("cairn stop failed: {stop:?}");
    }
    two.wait();
    let savepoint = savepoint_path(&stop.stdout);
    let (raw, stored) = state_sizes(&savepoint)?;

    let started = Instant::now();
    let mut three = session.start(run(3, &new, &["-s", path(&savepoint)]));
    let restores = wait_for_restores(&three, 3)?;
    let wall = started.elapsed();
    let peak = memory_status(&three.child.id().to_string(), "VmHWM:");
    three.kill();

    let read: u64 = restores.iter().map(|r| r.bytes_read).sum();
    let slowest = restores
        .iter()
        .map(|r| r.duration)
        .max()
        .unwrap_or_default();
    let each: Vec<String> = restores
        .iter()
        .map(|r| {
            format!(
                "{:.2} s ({})",
                r.duration.as_secs_f64(),
                megabytes(r.bytes_read)
            )
        })
        .collect();
    println!();
    println!(
        "| keyed-sum, {keys} keys: p=2 → savepoint → p=3 | raw keyed state | stored | read by the 3 subtasks | restore, slowest subtask | each subtask (read) | start to restored | peak RSS (p=3 process) |"
    );
    println!("|---|---:|---:|---:|---:|---|---:|---:|");
    println!(
        "| filled in {:.1} s | {} | {} | {} | {:.2} s | {} | {:.2} s | {} |",
        filled.as_secs_f64(),
        megabytes(raw),
        megabytes(stored),
        megabytes(read),
        slowest.as_secs_f64(),
        each.join(", "),
        wall.as_secs_f64(),
        megabytes(peak),
    );
    Ok(())
}

/// The raw and stored bytes of the keyed state in a savepoint.
fn state_sizes(savepoint: &Path) -> anyhow::Result<(u64, u64)> {
    let file = savepoint.join(METADATA_FILE);
    let bytes = std::fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let metadata = CheckpointMetadata::from_bytes(&bytes, &file.display().to_string())?;
    Ok(metadata
        .nodes
        .iter()
        .flat_map(|node| &node.subtasks)
        .filter(|s| matches!(s.state, SubtaskState::KeyedOperator { .. }))
        .map(|s| s.state.sizes())
        .fold((0, 0), |(raw, stored), (r, s)| (raw + r, stored + s)))
}

/// What one subtask's "state restored" line says.
struct Restore {
    bytes_read: u64,
    duration: Duration,
}

/// Waits until `job` has logged `subtasks` restores.
fn wait_for_restores(job: &RunningJob, subtasks: usize) -> anyhow::Result<Vec<Restore>> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let stderr = job.stderr();
        let restores: Vec<Restore> = stderr
            .lines()
            .filter(|line| line.contains("state restored"))
            .map(|line| {
                let field = |name: &str| {
                    line.split_whitespace()
                        .find_map(|f| f.strip_prefix(name)?.strip_prefix('='))
                        .and_then(|v| v.parse::<u64>().ok())
                        .with_context(|| format!("no {name} in {line:?}"))
                };
                Ok(Restore {
                    bytes_read: field("bytes_read")?,
                    duration: Duration::from_millis(field("duration_ms")?),
                })
            })
            .collect::<anyhow::Result<_>>()?;
        if restores.len() >= subtasks {
            return Ok(restores);
        }
        if Instant::now() > deadline {
            bail!(
                "{} of {subtasks} subtasks restored: {stderr}",
                restores.len()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
