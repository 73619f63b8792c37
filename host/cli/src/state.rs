//! `cairn state`: the keyed state of a checkpoint or savepoint, read without the job (the
//! useful part of Flink's State Processor API). Per operator: its key groups, keys and
//! sizes; then every key and its value, shown by the value encoding the operator declared.

use std::io::Write as _;
use std::process::ExitCode;

use anyhow::Context as _;
use cairn_core::state::CheckpointMetadata;
use cairn_core::state::metadata::{OperatorStateFile, SubtaskState};
use cairn_core::state::operator_file;
use cairn_wire::KeyGroupRange;
use cairn_wire::key_groups::key_group;
use cairn_wire::keyed::{self, hex, printable};
use serde_json::{Value, json};

use crate::cli::StateArgs;

pub fn state(args: StateArgs) -> anyhow::Result<ExitCode> {
    let (runtime, folder, metadata) =
        crate::inspect::open(&args.path, args.config.as_ref(), &args.definitions)?;
    if let Some(uid) = &args.uid
        && !metadata.nodes.iter().any(|n| &n.uid == uid)
    {
        anyhow::bail!(
            "{}: no node '{uid}' (its nodes: {})",
            folder.url(),
            metadata
                .nodes
                .iter()
                .map(|n| n.uid.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for node in &metadata.nodes {
        if args.uid.as_ref().is_some_and(|uid| *uid != node.uid) {
            continue;
        }
        let files: Vec<&OperatorStateFile> = node
            .subtasks
            .iter()
            .filter_map(|s| match &s.state {
                SubtaskState::KeyedOperator { state } => Some(state),
                _ => None,
            })
            .collect();
        let blobs = node
            .subtasks
            .iter()
            .filter(|s| matches!(s.state, SubtaskState::Operator { file: Some(_) }))
            .count();
        if files.is_empty() && blobs == 0 {
            continue;
        }
        summary(
            &mut out,
            &node.uid,
            node.parallelism,
            &files,
            blobs,
            args.json,
        )?;
        if args.summary {
            continue;
        }
        let wanted = match &args.key {
            Some(key) => Some(wanted_group(&metadata, key)?),
            None => None,
        };
        for file in files {
            let range = match wanted {
                Some(group) if KeyGroupRange::from(file.key_groups).contains(group) => {
                    KeyGroupRange {
                        first: group,
                        last: group,
                    }
                }
                Some(_) => continue,
                None => file.key_groups.into(),
            };
            for batch in operator_file::batches(&file.chunks, range) {
                let chunks =
                    runtime.block_on(operator_file::read_chunks(&folder, &file.path, &batch))?;
                for chunk in chunks {
                    for entry in keyed::entries(&chunk.entries) {
                        let entry = entry
                            .map_err(|e| anyhow::anyhow!("{}: {e}", folder.url_of(&file.path)))?;
                        if args.key.as_ref().is_some_and(|k| k.as_bytes() != entry.key) {
                            continue;
                        }
                        let value = entry.value.unwrap_or_default();
                        write_entry(
                            &mut out,
                            &node.uid,
                            chunk.key_group,
                            entry.key,
                            value,
                            &file.value_encoding,
                            args.json,
                        )?;
                    }
                }
            }
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}

/// The key group of `key` in the checkpoint's job.
fn wanted_group(metadata: &CheckpointMetadata, key: &str) -> anyhow::Result<u32> {
    let max = metadata.max_parallelism.context(
        "the checkpoint does not record its number of key groups (it predates keyed state)",
    )?;
    Ok(key_group(key.as_bytes(), max))
}

/// One operator's totals: `# uid: …` (or a JSON object).
fn summary(
    out: &mut impl std::io::Write,
    uid: &str,
    parallelism: u32,
    files: &[&OperatorStateFile],
    blobs: usize,
    as_json: bool,
) -> anyhow::Result<()> {
    let groups: usize = files.iter().map(|f| f.chunks.len()).sum();
    let keys: u64 = files
        .iter()
        .flat_map(|f| &f.chunks)
        .map(|c| c.entries)
        .sum();
    let items: u64 = files
        .iter()
        .filter_map(|f| f.operator_state.as_ref())
        .map(|i| i.items)
        .sum();
    let (raw, stored) = files
        .iter()
        .flat_map(|f| f.segments())
        .fold((0, 0), |(r, s), seg| {
            (r + seg.raw_size, s + seg.stored_size)
        });
    let version = files.first().map(|f| f.version);
    let encoding = files.first().map_or("", |f| f.value_encoding.as_str());
    if as_json {
        let object = json!({
            "type": "operator", "uid": uid, "parallelism": parallelism,
            "state_version": version, "value_encoding": encoding,
            "key_groups": groups, "keys": keys, "operator_state_items": items,
            "raw_bytes": raw, "stored_bytes": stored, "whole_blobs": blobs,
        });
        writeln!(out, "{object}")?;
    } else if blobs > 0 {
        writeln!(
            out,
            "# {uid}: {blobs} whole state blob(s), not keyed (written by a cairn:job@0.2.0 \
             component or a Cairn before keyed state): nothing to list"
        )?;
    } else {
        writeln!(
            out,
            "# {uid}: parallelism {parallelism}, state version {}, {groups} key group(s) \
             with state, {keys} key(s), values {encoding}, {items} operator-state item(s); \
             {raw} bytes raw, {stored} stored",
            version.unwrap_or_default()
        )?;
    }
    Ok(())
}

/// One key and its value: `uid<TAB>key<TAB>value` (or a JSON object).
fn write_entry(
    out: &mut impl std::io::Write,
    uid: &str,
    group: u16,
    key: &[u8],
    value: &[u8],
    encoding: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    if as_json {
        let mut object = json!({"type": "entry", "uid": uid, "key_group": group});
        match printable(key) {
            Some(text) => object["key"] = text.into(),
            None => object["key_hex"] = hex(key).into(),
        }
        match json_value(value, encoding) {
            Some(value) => object["value"] = value,
            None => object["value_hex"] = hex(value).into(),
        }
        writeln!(out, "{object}")?;
    } else {
        let key = printable(key).map_or_else(|| hex(key), str::to_owned);
        writeln!(out, "{uid}\t{key}\t{}", text_value(value, encoding))?;
    }
    Ok(())
}

/// A value as text, by its encoding; hex when it does not decode.
fn text_value(value: &[u8], encoding: &str) -> String {
    match json_value(value, encoding) {
        Some(Value::String(text)) => text,
        Some(other) => other.to_string(),
        None => hex(value),
    }
}

/// A value as JSON, by its encoding (`value-encoding` in the WIT); `None` when it does not
/// decode as that encoding says.
fn json_value(value: &[u8], encoding: &str) -> Option<Value> {
    let eight = || <[u8; 8]>::try_from(value).ok();
    match encoding {
        "u64-le" => eight().map(|b| u64::from_le_bytes(b).into()),
        "s64-le" => eight().map(|b| i64::from_le_bytes(b).into()),
        "f64-le" => eight().map(|b| f64::from_le_bytes(b).into()),
        "json" => serde_json::from_slice(value).ok(),
        // utf8, bytes, or an encoding this cairn does not know: text when it is.
        _ => printable(value).map(|text| text.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_by_their_encoding() {
        assert_eq!(text_value(&42u64.to_le_bytes(), "u64-le"), "42");
        assert_eq!(text_value(&(-3i64).to_le_bytes(), "s64-le"), "-3");
        assert_eq!(text_value(&1.5f64.to_le_bytes(), "f64-le"), "1.5");
        assert_eq!(text_value(b"17", "utf8"), "17");
        assert_eq!(text_value(br#"{"a":1}"#, "json"), r#"{"a":1}"#);
        assert_eq!(text_value(&[0, 255], "bytes"), "0x00ff");
        // A value that is not what its encoding says is shown as it is.
        assert_eq!(text_value(&[1, 2], "u64-le"), "0x0102");
        assert_eq!(json_value(&7u64.to_le_bytes(), "u64-le"), Some(json!(7)));
    }
}
