//! Property tests over what reaches the host from outside the process: `_metadata` with its
//! checksum recomputed (as a hostile or hand-edited savepoint has it), config files and
//! `-D` values. No input may panic the host, and what is accepted keeps the promises the
//! runtime relies on: one entry per subtask, paths inside their folders, durations that can
//! be added to a clock.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cairn_core::config::{ConfigLayers, Origin};
use cairn_core::connectors::{FileSinkState, SinkStart, Subtask};
use cairn_core::graph::{Graph, Role};
use cairn_core::rescale::SubtaskRestore;
use cairn_core::restart::Restarts;
use cairn_core::state::CheckpointMetadata;
use cairn_core::state::metadata::SubtaskState;
use cairn_wire::{JobGraph, Partitioning, Sink, Source};
use proptest::prelude::*;
use serde_json::Value;

/// A scratch folder per test process, with a canary file beside the sink's folder.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cairn-untrusted-{name}-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("out")).unwrap();
    std::fs::write(dir.join("canary"), "untouched").unwrap();
    dir
}

fn graph(out: &Path) -> Graph {
    let mut job = JobGraph::new("keyed");
    job.source("gen", Source::generator(0, 10))
        .operator("sum", "sum", Partitioning::ByKey)
        .sink(
            "out",
            Sink::file(out.to_str().unwrap()),
            Partitioning::Forward,
        );
    Graph::new(&job, 2, 128).unwrap()
}

/// Real-looking metadata for [`graph`] at parallelism 2, as JSON.
fn sample() -> Value {
    serde_json::json!({
        "format": 1, "kind": "checkpoint", "job_id": "ab".repeat(16), "job_name": "keyed",
        "checkpoint_id": 7, "timestamp_ms": 1_700_000_000_000u64, "mode": "EXACTLY_ONCE",
        "nodes": [
            { "uid": "gen", "parallelism": 2, "subtasks": [
                { "state": { "role": "source", "position": { "connector": "generator", "next": 40 } },
                  "stats": { "alignment_ms": 0.0, "sync_ms": 0.0, "async_ms": 0.0 } },
                { "state": { "role": "source", "position": { "connector": "generator", "next": 41 } },
                  "stats": { "alignment_ms": 0.0, "sync_ms": 0.0, "async_ms": 0.0 } } ] },
            { "uid": "sum", "parallelism": 2, "subtasks": [
                { "state": { "role": "operator", "file": { "path": "sum/0.zst", "raw_size": 10,
                    "stored_size": 5, "checksum": "00000000feedbeef", "version": 1 } },
                  "stats": { "alignment_ms": 0.0, "sync_ms": 0.0, "async_ms": 0.0 } },
                { "state": { "role": "operator", "file": null },
                  "stats": { "alignment_ms": 0.0, "sync_ms": 0.0, "async_ms": 0.0 } } ] },
            { "uid": "out", "parallelism": 2, "subtasks": [
                { "state": { "role": "sink", "state": { "pending": [ { "checkpoint": 7,
                    "in_progress": ".part-out-0-3.inprogress", "committed": "part-out-0-3" } ],
                    "next_part": 4 } },
                  "stats": { "alignment_ms": 0.0, "sync_ms": 0.0, "async_ms": 0.0 } },
                { "state": { "role": "sink", "state": { "pending": [], "next_part": 0 } },
                  "stats": { "alignment_ms": 0.0, "sync_ms": 0.0, "async_ms": 0.0 } } ] }
        ]
    })
}

/// `_metadata` bytes for `json`, with a valid checksum line.
fn with_checksum(json: &Value) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(json).unwrap();
    bytes.push(b'\n');
    let checksum = xxhash_rust::xxh3::xxh3_64(&bytes);
    bytes.extend_from_slice(format!("xxh3-64 {checksum:016x}\n").as_bytes());
    bytes
}

/// Values a hostile file might hold where the sample has something sensible.
fn hostile_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        prop_oneof![Just(0u64), Just(1), Just(2), Just(3), Just(u64::MAX)].prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop_oneof![
            Just("../../../etc/passwd"),
            Just("/tmp/precious"),
            Just(".."),
            Just(""),
            Just("sum/../../canary"),
            Just("part-out-0-9"),
            Just(".part-out-1-2.inprogress"),
            Just("generator"),
            Just("savepoint"),
        ]
        .prop_map(Value::from),
        "[ -~]{0,12}".prop_map(Value::from),
        Just(Value::Array(Vec::new())),
        Just(serde_json::json!({})),
    ]
}

/// A random place in `value`'s tree (by a list of child choices) replaced by `new`.
fn mutate(value: &mut Value, choices: &[usize], new: Value) {
    let Some((&choice, rest)) = choices.split_first() else {
        *value = new;
        return;
    };
    match value {
        Value::Object(map) if !map.is_empty() => {
            let key = map.keys().nth(choice % map.len()).unwrap().clone();
            mutate(map.get_mut(&key).unwrap(), rest, new);
        }
        Value::Array(items) if !items.is_empty() => {
            let n = items.len();
            mutate(&mut items[choice % n], rest, new);
        }
        _ => *value = new,
    }
}

/// Checks what the runtime relies on of accepted metadata, and uses it as a restore would.
fn use_as_restore(metadata: &CheckpointMetadata, dir: &Path) {
    for node in &metadata.nodes {
        assert_eq!(node.subtasks.len(), node.parallelism as usize, "{node:?}");
    }
    assert!(metadata.checkpoint_id.checked_add(1).is_some());
    let graph = graph(&dir.join("out"));
    for allow in [false, true] {
        let _ = cairn_core::restore::check(&graph, metadata, "m", allow);
    }
    for node in &metadata.nodes {
        let Some(current) = graph.nodes.iter().find(|n| n.uid == node.uid) else {
            continue;
        };
        // What each subtask would restore, at the graph's parallelism (maybe a rescale).
        let Ok(plan) =
            cairn_core::rescale::assign(node, current.parallelism, graph.max_parallelism)
        else {
            continue;
        };
        assert_eq!(plan.len(), current.parallelism as usize);
        for (index, restore) in plan.iter().enumerate() {
            let subtask = Subtask {
                job_name: "job",
                uid: &node.uid,
                index: index as u32,
                parallelism: current.parallelism,
            };
            match (&current.role, restore) {
                (Role::Source(source), SubtaskRestore::Source(position)) => {
                    let _ = source.connector.open(subtask, Some(position));
                }
                (Role::Sink(sink), SubtaskRestore::Sink(states)) => {
                    let _ = sink.connector.open(subtask, SinkStart::Restore(states));
                }
                _ => {}
            }
        }
    }
    assert_eq!(
        std::fs::read_to_string(dir.join("canary")).unwrap(),
        "untouched",
        "a restore reached outside its folder"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn metadata_never_panics_the_host(
        mutations in prop::collection::vec(
            (prop::collection::vec(any::<usize>(), 0..8), hostile_value()),
            1..4,
        )
    ) {
        let dir = scratch("metadata");
        let mut json = sample();
        for (choices, value) in mutations {
            mutate(&mut json, &choices, value);
        }
        if let Ok(metadata) = CheckpointMetadata::from_bytes(&with_checksum(&json), "m") {
            use_as_restore(&metadata, &dir);
        }
    }

    #[test]
    fn config_values_never_panic_and_durations_fit_a_clock(
        settings in prop::collection::vec((0usize..64, config_value()), 1..6)
    ) {
        let keys: Vec<&'static str> = ConfigLayers::default()
            .effective()
            .into_iter()
            .map(|(key, _, _)| key)
            .collect();
        let mut layers = ConfigLayers::default();
        let pairs: Vec<(&str, String)> =
            settings.iter().map(|(k, v)| (keys[k % keys.len()], v.clone())).collect();
        layers.layer(Origin::CommandLine, pairs).unwrap();
        if let Ok(config) = layers.resolve() {
            let now = Instant::now();
            let checkpoints = &config.checkpoints;
            for duration in [checkpoints.min_pause, checkpoints.timeout, config.call_timeout]
                .into_iter()
                .chain(checkpoints.interval)
            {
                prop_assert!(now.checked_add(duration).is_some(), "{duration:?}");
            }
            let mut restarts = Restarts::new(config.restart.clone());
            for i in 0..40u64 {
                if let cairn_core::restart::Decision::Restart { delay, .. } =
                    restarts.on_failure(now, Duration::from_millis(i * 997))
                {
                    prop_assert!(now.checked_add(delay).is_some(), "{delay:?}");
                }
            }
        }
    }

    #[test]
    fn config_files_never_panic(text in "([a-z.\\-]{0,30}(: ?)?[ -~]{0,20}\n?|- [ -~]{0,10}\n|  [a-z]{0,8}: [0-9]{0,3}\n){0,8}") {
        let dir = scratch("yaml");
        let path = dir.join("cairn.yaml");
        std::fs::write(&path, &text).unwrap();
        let mut layers = ConfigLayers::default();
        if layers.file(&path).is_ok() {
            let _ = layers.resolve();
        }
    }
}

/// Values for config keys: numbers of every size and sign, durations, sizes, words.
fn config_value() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<u64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| f.to_string()),
        prop_oneof![
            Just("inf"),
            Just("-inf"),
            Just("NaN"),
            Just("1e308"),
            Just("0"),
            Just("-1")
        ]
        .prop_map(str::to_owned),
        (
            any::<u64>(),
            prop_oneof![Just("ms"), Just("s"), Just("min"), Just("h"), Just("d")]
        )
            .prop_map(|(n, unit)| format!("{n} {unit}")),
        (
            any::<u64>(),
            prop_oneof![Just("b"), Just("kb"), Just("mb"), Just("gb"), Just("tb")]
        )
            .prop_map(|(n, unit)| format!("{n} {unit}")),
        prop_oneof![
            Just("fixed-delay"),
            Just("failure-rate"),
            Just("exponential-delay"),
            Just("none"),
            Just("EXACTLY_ONCE"),
            Just("RETAIN_ON_CANCELLATION"),
            Just("true"),
            Just("0.0.0.0"),
            Just("memory://x"),
        ]
        .prop_map(str::to_owned),
        "[ -~]{0,16}",
    ]
}

#[test]
fn the_sample_is_valid_metadata() {
    // Otherwise the properties above would only ever test refusals.
    let dir = scratch("sample");
    let metadata = CheckpointMetadata::from_bytes(&with_checksum(&sample()), "m").unwrap();
    use_as_restore(&metadata, &dir);
    let SubtaskState::Sink { connector, state } = &metadata.nodes[2].subtasks[0].state else {
        panic!("the sample's third node is a sink");
    };
    assert_eq!(connector, "file");
    let state = FileSinkState::decode(state).unwrap();
    assert_eq!(state.pending[0].committed, "part-out-0-3");
    assert_eq!(
        cairn_core::restore::check(&graph(&dir.join("out")), &metadata, "m", false).unwrap(),
        Vec::<String>::new()
    );
}
