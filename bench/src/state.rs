//! One operator's state through a checkpoint and back, piece by piece, for states of 1 MB to
//! 1 GB: the snapshot out of the guest, compression alone (zstd level 1, one thread: the
//! yardstick), Cairn's upload (compress and write, streamed in pieces), the `_metadata`
//! write, and the restore (read, verify, decompress, then the guest's own `restore`); and
//! how much the process's resident memory grows during the upload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::config::{CheckpointingMode, S3Config};
use cairn_core::operator::OperatorFactory;
use cairn_core::state::metadata::{
    CheckpointKind, FORMAT_VERSION, NodeState, SnapshotStats, StateFile, SubtaskSnapshot,
    SubtaskState,
};
use cairn_core::state::{CheckpointMetadata, METADATA_FILE, StateStore};
use cairn_sdk::{Context, Emitter};
use cairn_tests::{Scratch, job, test_job};
use cairn_wasm::{Engine, JobComponent, Limits};

use crate::process::RssSampler;
use crate::{megabytes, path};

/// Where a state comes from: a `big-state` blob of some size, or keyed-sum fed `keys` keys.
enum Source {
    Blob { bytes: u64 },
    KeyedSum { keys: u64 },
}

pub fn state_transfer(
    engine: &Engine,
    runtime: &tokio::runtime::Runtime,
    scratch: &Scratch,
    keyed_sum_keys: u64,
) -> anyhow::Result<()> {
    println!();
    println!(
        "| state | raw | snapshot (guest → host) | zstd -1, one thread | stored | Cairn upload (compress + write) | `_metadata` | restore: read + verify + decompress | restore: guest | RSS growth during upload |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for source in [
        Source::Blob { bytes: 1 << 20 },
        Source::Blob { bytes: 100 << 20 },
        Source::Blob { bytes: 1 << 30 },
        Source::KeyedSum {
            keys: keyed_sum_keys,
        },
    ] {
        row(engine, runtime, scratch, &source)?;
    }
    Ok(())
}

fn row(
    engine: &Engine,
    runtime: &tokio::runtime::Runtime,
    scratch: &Scratch,
    source: &Source,
) -> anyhow::Result<()> {
    let limits = Limits {
        memory: 4 << 30,
        call_timeout: Duration::from_secs(600),
    };
    let (label, wasm, uid, options) = match source {
        Source::Blob { bytes } => (
            format!("big-state, {}", megabytes(*bytes)),
            test_job("big-state"),
            "blob",
            vec![("bytes".to_owned(), bytes.to_string())],
        ),
        Source::KeyedSum { keys } => (
            format!("keyed-sum, {keys} keys"),
            job("keyed-sum"),
            "sum",
            Vec::new(),
        ),
    };
    let ctx = Context {
        job_id: "0".repeat(32),
        operator_uid: uid.into(),
        subtask: 0,
        parallelism: 1,
        attempt: 0,
        options,
    };
    let component = JobComponent::load(engine, &wasm, true, limits)?;
    let mut guest = component.open(&ctx, uid)?;
    if let Source::KeyedSum { keys } = source {
        for start in (0..*keys).step_by(1024) {
            let mut batch = Emitter::default();
            for i in start..(start + 1024).min(*keys) {
                batch.emit_keyed(format!("key-{i}"), i.to_le_bytes());
            }
            guest.process(0, batch.take())?;
        }
    }

    let started = Instant::now();
    let state = guest.snapshot(1)?;
    let snapshot = started.elapsed();
    drop(guest);
    let version = state.version;
    let raw = Arc::new(state.data);
    let raw_mb = raw.len() as f64 / 1e6;

    let started = Instant::now();
    let compressed_len = zstd::bulk::Compressor::new(1)?.compress(&raw)?.len();
    let zstd_seconds = started.elapsed().as_secs_f64();

    let store = StateStore::open(path(&scratch.join("transfer")), &S3Config::default())?;
    let file = cairn_core::state::state_file(uid, 0);
    let sampler = RssSampler::start();
    let started = Instant::now();
    let info = runtime.block_on(store.put_blob(&file, raw.clone()))?;
    let upload_seconds = started.elapsed().as_secs_f64();
    let growth = sampler.stop();

    let metadata = CheckpointMetadata {
        format: FORMAT_VERSION,
        kind: CheckpointKind::Checkpoint,
        job_id: ctx.job_id.clone(),
        job_name: "bench".into(),
        checkpoint_id: 1,
        timestamp_ms: 0,
        mode: CheckpointingMode::ExactlyOnce,
        nodes: vec![NodeState {
            uid: uid.into(),
            parallelism: 1,
            subtasks: vec![SubtaskSnapshot {
                state: SubtaskState::Operator {
                    file: Some(StateFile::new(file.clone(), info, version)),
                },
                stats: SnapshotStats::default(),
            }],
        }],
    };
    let started = Instant::now();
    runtime.block_on(store.put(METADATA_FILE, metadata.to_bytes().into()))?;
    let metadata_seconds = started.elapsed().as_secs_f64();
    drop(raw);

    let started = Instant::now();
    let stored = runtime.block_on(store.get(&file))?;
    let restored = cairn_core::state::blob::decode(&stored, &info, &file)?;
    let read_seconds = started.elapsed().as_secs_f64();
    drop(stored);

    let mut fresh = component.open(
        &Context {
            options: vec![("bytes".into(), "0".into())],
            ..ctx
        },
        uid,
    )?;
    let started = Instant::now();
    fresh.restore(cairn_sdk::State {
        version,
        data: restored,
    })?;
    let guest_seconds = started.elapsed().as_secs_f64();

    println!(
        "| {label} | {raw_mb:.1} MB | {:.2} s | {:.0} MB/s ({:.1} MB) | {} | {:.0} MB/s ({:.2} s, {:.0}% of zstd) | {:.1} ms | {:.2} s | {:.2} s | {} |",
        snapshot.as_secs_f64(),
        raw_mb / zstd_seconds,
        compressed_len as f64 / 1e6,
        megabytes(info.stored_size),
        raw_mb / upload_seconds,
        upload_seconds,
        100.0 * zstd_seconds / upload_seconds,
        metadata_seconds * 1e3,
        read_seconds,
        guest_seconds,
        megabytes(growth),
    );
    Ok(())
}
