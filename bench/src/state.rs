//! One operator's state through a checkpoint and back, piece by piece, for states of 1 MB to
//! 1 GB: the snapshot out of the guest, compression alone (zstd level 1, one thread: the
//! yardstick), Cairn's upload (sort keyed chunks, compress segment by segment and write,
//! streamed in pieces), the `_metadata` write, and the restore (read, verify, decompress,
//! then the guest's own `restore-keyed` and `restore`); and how much the process's resident
//! memory grows during the upload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use cairn_core::config::{CheckpointingMode, S3Config};
use cairn_core::operator::CallContext;
use cairn_core::operator::OperatorFactory;
use cairn_core::state::metadata::{
    CheckpointKind, FORMAT_VERSION, NodeState, SnapshotStats, SubtaskSnapshot, SubtaskState,
};
use cairn_core::state::operator_file::{self, Layout};
use cairn_core::state::{CheckpointMetadata, METADATA_FILE, StateStore};
use cairn_core::timer_service::TimerService;
use cairn_sdk::key_groups::key_group;
use cairn_sdk::{Context, Emitter, KeyGroupRange};
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
    const MAX_PARALLELISM: u32 = 128;
    let key_groups = KeyGroupRange {
        first: 0,
        last: MAX_PARALLELISM - 1,
    };
    let ctx = Context {
        job_id: "0".repeat(32),
        operator_uid: uid.into(),
        subtask: 0,
        parallelism: 1,
        attempt: 0,
        options,
        max_parallelism: MAX_PARALLELISM,
        key_groups,
    };
    let component = JobComponent::load(engine, &wasm, true, limits)?;
    let mut guest = component.open(&ctx, uid)?;
    if let Source::KeyedSum { keys } = source {
        let mut call = CallContext::new(TimerService::new(ctx.key_groups, MAX_PARALLELISM));
        for start in (0..*keys).step_by(1024) {
            let mut batch = Emitter::default();
            let mut groups = Vec::with_capacity(1024);
            for i in start..(start + 1024).min(*keys) {
                let key = format!("key-{i}");
                groups.push(key_group(key.as_bytes(), MAX_PARALLELISM) as u16);
                batch.emit_keyed(key, i.to_le_bytes());
            }
            guest.process(0, batch.take(), &groups, &mut call)?;
        }
    }

    let started = Instant::now();
    let state = guest.snapshot(1)?;
    let snapshot = started.elapsed();
    drop(guest);
    let version = state.version;
    let raw: Vec<u8> = state
        .operator_state
        .iter()
        .chain(state.keyed.iter().map(|c| &c.entries))
        .flatten()
        .copied()
        .collect();
    let raw_mb = raw.len() as f64 / 1e6;

    let started = Instant::now();
    let compressed_len = zstd::bulk::Compressor::new(1)?.compress(&raw)?.len();
    let zstd_seconds = started.elapsed().as_secs_f64();
    drop(raw);

    let store = StateStore::open(path(&scratch.join("transfer")), &S3Config::default())?;
    let layout = Layout {
        path: cairn_core::state::operator_state_file(uid, 0),
        key_groups,
        max_parallelism: MAX_PARALLELISM,
    };
    let state = Arc::new(state);
    let sampler = RssSampler::start();
    let started = Instant::now();
    let file = {
        let (state, layout) = (state.clone(), layout.clone());
        runtime.block_on(store.put_stream(&layout.path.clone(), move |sink| {
            operator_file::write(&state, &[], &layout, sink)
        }))?
    };
    let upload_seconds = started.elapsed().as_secs_f64();
    let growth = sampler.stop();
    drop(state);
    let stored_size = file.size();

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
                state: SubtaskState::KeyedOperator {
                    state: file.clone(),
                },
                stats: SnapshotStats::default(),
                watermark: None,
            }],
        }],
        max_parallelism: Some(MAX_PARALLELISM),
    };
    let started = Instant::now();
    runtime.block_on(store.put(METADATA_FILE, metadata.to_bytes().into()))?;
    let metadata_seconds = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let items = runtime.block_on(operator_file::read_items(&store, &file))?;
    let mut chunks = Vec::new();
    for batch in operator_file::batches(&file.chunks, key_groups) {
        chunks.push(runtime.block_on(operator_file::read_chunks(&store, &file.path, &batch))?);
    }
    let read_seconds = started.elapsed().as_secs_f64();

    let mut fresh = component.open(
        &Context {
            options: vec![("bytes".into(), "0".into())],
            ..ctx
        },
        uid,
    )?;
    let started = Instant::now();
    for batch in chunks {
        fresh.restore_keyed(version, batch)?;
    }
    fresh.restore(version, items)?;
    let guest_seconds = started.elapsed().as_secs_f64();

    println!(
        "| {label} | {raw_mb:.1} MB | {:.2} s | {:.0} MB/s ({:.1} MB) | {} | {:.0} MB/s ({:.2} s, {:.0}% of zstd) | {:.1} ms | {:.2} s | {:.2} s | {} |",
        snapshot.as_secs_f64(),
        raw_mb / zstd_seconds,
        compressed_len as f64 / 1e6,
        megabytes(stored_size),
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
