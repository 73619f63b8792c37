//! `cairn inspect`: a checkpoint's metadata as a table, or as JSON for scripts.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use cairn_core::connectors::{sink_kind, source_kind};
use cairn_core::state::metadata::SubtaskState;
use cairn_core::state::{CheckpointMetadata, StateStore};

use crate::cli::InspectArgs;

pub fn inspect(args: InspectArgs) -> anyhow::Result<ExitCode> {
    let (_, folder, metadata) = open(&args.path, args.config.as_ref(), &args.definitions)?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&metadata)?);
    } else {
        print!("{}", table(&metadata, folder.url()));
        if args.key_groups {
            print!("{}", key_groups(&metadata));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// The checkpoint `path` names, with the store settings of the config file and `-D`s, and a
/// runtime to read more of it with.
pub fn open(
    path: &str,
    config: Option<&std::path::PathBuf>,
    definitions: &[String],
) -> anyhow::Result<(tokio::runtime::Runtime, StateStore, CheckpointMetadata)> {
    let config = crate::cli::store_config(config, definitions)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the I/O runtime")?;
    let (folder, metadata) = runtime.block_on(cairn_core::restore::find(path, &config.s3))?;
    Ok((runtime, folder, metadata))
}

fn table(m: &CheckpointMetadata, location: &str) -> String {
    let taken = UNIX_EPOCH + Duration::from_millis(m.timestamp_ms);
    let mut out = String::new();
    let (mut raw, mut stored, mut files) = (0, 0, 0);
    let mut rows = vec![[
        "uid".to_owned(),
        "subtask".into(),
        "role".into(),
        "raw".into(),
        "stored".into(),
        "position / pending".into(),
        "align ms".into(),
        "sync ms".into(),
        "async ms".into(),
    ]];
    for node in &m.nodes {
        for (i, subtask) in node.subtasks.iter().enumerate() {
            let (role, sizes, detail) = match &subtask.state {
                SubtaskState::Source {
                    connector,
                    position,
                } => (
                    "source",
                    None,
                    match source_kind(connector) {
                        Some(kind) => (kind.describe)(position),
                        None => unknown_connector(connector),
                    },
                ),
                SubtaskState::Operator { file } => {
                    if let Some(f) = file {
                        raw += f.raw_size;
                        stored += f.stored_size;
                        files += 1;
                    }
                    (
                        "operator",
                        file.as_ref().map(|f| (f.raw_size, f.stored_size)),
                        String::new(),
                    )
                }
                SubtaskState::KeyedOperator { state } => {
                    let (r, s) = state.segments().fold((0, 0), |(r, s), seg| {
                        (r + seg.raw_size, s + seg.stored_size)
                    });
                    raw += r;
                    stored += s;
                    files += 1;
                    let keys: u64 = state.chunks.iter().map(|c| c.entries).sum();
                    let items = state.operator_state.as_ref().map_or(0, |i| i.items);
                    (
                        "operator",
                        Some((r, s)),
                        format!(
                            "key groups {}..={}: {} with state, {keys} keys ({}); {items} \
                             item(s) ({}); state version {}",
                            state.key_groups.first,
                            state.key_groups.last,
                            state.chunks.len(),
                            state.value_encoding,
                            serde_json::to_value(state.mode)
                                .ok()
                                .and_then(|v| v.as_str().map(str::to_owned))
                                .unwrap_or_default(),
                            state.version
                        ),
                    )
                }
                SubtaskState::Sink { connector, state } => (
                    "sink",
                    None,
                    match sink_kind(connector) {
                        Some(kind) => (kind.describe)(state),
                        None => unknown_connector(connector),
                    },
                ),
            };
            let (r, s) = sizes.map_or(("-".into(), "-".into()), |(r, s)| (bytes(r), bytes(s)));
            rows.push([
                node.uid.clone(),
                format!("{}/{}", i + 1, node.parallelism),
                role.into(),
                r,
                s,
                detail,
                format!("{:.1}", subtask.stats.alignment_ms),
                format!("{:.1}", subtask.stats.sync_ms),
                format!("{:.1}", subtask.stats.async_ms),
            ]);
        }
    }
    let _ = writeln!(
        out,
        "Checkpoint {} of job {} ({})",
        m.checkpoint_id, m.job_id, m.job_name
    );
    let _ = writeln!(out, "  location: {location}");
    let _ = writeln!(
        out,
        "  taken:    {}",
        humantime::format_rfc3339_millis(taken)
    );
    let _ = writeln!(out, "  mode:     {}", m.mode);
    if let Some(max) = m.max_parallelism {
        let _ = writeln!(out, "  key groups: {max} (pipeline.max-parallelism)");
    }
    let _ = writeln!(
        out,
        "  state:    {files} file(s), {} raw, {} stored\n",
        bytes(raw),
        bytes(stored)
    );
    aligned(&mut out, &rows);
    out
}

/// Every key group with keyed state, node by node: which subtask's file holds it, and where.
fn key_groups(m: &CheckpointMetadata) -> String {
    let mut rows = vec![[
        "uid".to_owned(),
        "key group".into(),
        "subtask".into(),
        "entries".into(),
        "file".into(),
        "offset".into(),
        "stored".into(),
        "raw".into(),
    ]];
    for node in &m.nodes {
        for (i, subtask) in node.subtasks.iter().enumerate() {
            let SubtaskState::KeyedOperator { state } = &subtask.state else {
                continue;
            };
            for chunk in &state.chunks {
                rows.push([
                    node.uid.clone(),
                    chunk.key_group.to_string(),
                    format!("{}/{}", i + 1, node.parallelism),
                    chunk.entries.to_string(),
                    state.path.clone(),
                    chunk.segment.offset.to_string(),
                    bytes(chunk.segment.stored_size),
                    bytes(chunk.segment.raw_size),
                ]);
            }
        }
    }
    let mut out = String::from("\n");
    aligned(&mut out, &rows);
    out
}

/// Writes `rows` as columns, left-aligned.
fn aligned<const N: usize>(out: &mut String, rows: &[[String; N]]) {
    let widths: Vec<usize> = (0..N)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
}

/// A connector this cairn does not have (a checkpoint of a newer version).
fn unknown_connector(name: &str) -> String {
    format!("connector '{name}' (unknown to this cairn)")
}

fn bytes(n: u64) -> String {
    match n {
        n if n >= 1 << 30 => format!("{:.1} GiB", n as f64 / (1u64 << 30) as f64),
        n if n >= 1 << 20 => format!("{:.1} MiB", n as f64 / (1u64 << 20) as f64),
        n if n >= 1 << 10 => format!("{:.1} KiB", n as f64 / 1024.0),
        n => format!("{n} B"),
    }
}
