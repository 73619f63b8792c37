//! What each subtask of a node restores from a checkpoint, at the node's parallelism now —
//! the same as when the checkpoint was taken, or another. Flink's rules:
//!
//! - keyed state follows its key groups: a new subtask reads the chunks of the key groups it
//!   owns now, from whichever old subtasks' files hold them;
//! - operator-wide items are shared out by their mode: `split` hands each new subtask a
//!   contiguous run of all old items (at an unchanged parallelism: its own), `union` every
//!   item to every subtask;
//! - a sink subtask takes over what old subtasks `k` with `k mod parallelism = i` prepared,
//!   so that each is committed exactly once;
//! - a source keeps its splits at an unchanged parallelism; at another, every new subtask
//!   gets the positions of all old ones and takes its own splits' (Flink's union list
//!   state) — for the sources whose splits do not depend on the parallelism (the caller
//!   checks: [`SourceConnector::redistributes`](crate::connectors::SourceConnector));
//! - whole-blob operator state (of a `cairn:job@0.2.0` component) only restores at an
//!   unchanged parallelism.
//!
//! Pure: it plans from `_metadata` alone; the runtime reads what the plan names.

use std::ops::Range;

use cairn_wire::KeyGroupRange;

use crate::state::metadata::{
    ChunkSegment, ItemMode, NodeState, OperatorStateFile, SinkState, SourcePosition, StateFile,
    SubtaskState,
};
use crate::state::operator_file;

/// What one subtask restores.
#[derive(Debug, Clone, PartialEq)]
pub enum SubtaskRestore {
    /// Nothing: the subtask starts empty.
    Nothing,
    Source(SourcePosition),
    /// What old sink subtasks prepared, by their index.
    Sink(Vec<(u32, SinkState)>),
    /// A `cairn:job@0.2.0` operator's blob.
    Whole(StateFile),
    Keyed(KeyedRestore),
}

/// The reads that restore one subtask of a `cairn:job@0.3.0` operator.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedRestore {
    /// The state encoding version the old subtasks wrote.
    pub version: u32,
    /// Operator-wide items: from each file, the items of `range` (in item order).
    pub items: Vec<(OperatorStateFile, Range<u64>)>,
    /// Keyed chunks: batches of consecutive chunks of one file, each read at once.
    pub chunks: Vec<(String, Vec<ChunkSegment>)>,
    /// Timers, per key group as the keyed chunks, batched alike.
    pub timers: Vec<(String, Vec<ChunkSegment>)>,
}

/// The batches of `files`' chunks or timers (`of`) in key groups `range`, each with its
/// file's path.
fn reads(
    files: &[&OperatorStateFile],
    of: fn(&OperatorStateFile) -> &[ChunkSegment],
    range: KeyGroupRange,
) -> Vec<(String, Vec<ChunkSegment>)> {
    files
        .iter()
        .filter(|f| KeyGroupRange::from(f.key_groups).overlaps(&range))
        .flat_map(|f| {
            operator_file::batches(of(f), range)
                .into_iter()
                .map(|batch| (f.path.clone(), batch))
        })
        .collect()
}

/// Why a node's state cannot be restored at its parallelism now.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(
        "its state was written by a cairn:job@0.2.0 component (or a Cairn before keyed \
         state) as one blob per subtask, which cannot be split or merged: restore it at \
         parallelism {checkpointed} (this job runs it at {now}), or rebuild the job with an \
         SDK for cairn:job@0.3.0 and take a savepoint at {checkpointed} first"
    )]
    Whole { checkpointed: u32, now: u32 },
    #[error(
        "the {connector} source was checkpointed at parallelism {checkpointed} and cannot move \
         its splits to parallelism {now}; run it at {checkpointed}"
    )]
    Source {
        connector: String,
        checkpointed: u32,
        now: u32,
    },
    #[error("its subtasks wrote state in different encoding versions ({0} and {1})")]
    Versions(u32, u32),
}

/// The watermark subtask `subtask` of `node`, now at `parallelism`, starts from: its own at
/// an unchanged parallelism; else the lowest of all old subtasks' (none if one had none) —
/// the only floor no new subtask's records or timers can be behind, since every key group's
/// timers at or below it have fired.
pub fn watermark(node: &NodeState, subtask: usize, parallelism: u32) -> Option<i64> {
    if node.parallelism == parallelism {
        return node.subtasks.get(subtask)?.watermark;
    }
    node.subtasks
        .iter()
        .map(|s| s.watermark)
        .collect::<Option<Vec<i64>>>()?
        .into_iter()
        .min()
}

/// What each of the `parallelism` subtasks of `node` restores (`max_parallelism` key groups).
pub fn assign(
    node: &NodeState,
    parallelism: u32,
    max_parallelism: u32,
) -> Result<Vec<SubtaskRestore>, Refusal> {
    let states = || node.subtasks.iter().map(|s| &s.state);
    if node.parallelism == parallelism {
        // Each subtask its own, but union items: every subtask gets all of them, always.
        let files: Vec<&OperatorStateFile> = states()
            .filter_map(|s| match s {
                SubtaskState::KeyedOperator { state } => Some(state),
                _ => None,
            })
            .collect();
        return Ok(states()
            .enumerate()
            .map(|(i, state)| match (own(i as u32, state), state) {
                (SubtaskRestore::Keyed(mut keyed), SubtaskState::KeyedOperator { state })
                    if state.mode == ItemMode::Union =>
                {
                    keyed.items = items_for(&files, i as u32, parallelism);
                    SubtaskRestore::Keyed(keyed)
                }
                (own, _) => own,
            })
            .collect());
    }
    // The parallelism changed: each kind of state moves by its own rule.
    let mut sinks: Vec<Vec<(u32, SinkState)>> = vec![Vec::new(); parallelism as usize];
    let mut files: Vec<&OperatorStateFile> = Vec::new();
    let mut positions: Option<SourcePosition> = None;
    for (old, state) in states().enumerate() {
        match state {
            SubtaskState::Source { position, .. } => match &mut positions {
                None => positions = Some(position.clone()),
                Some(all) if all.version == position.version => {
                    all.splits.extend(position.splits.iter().cloned());
                }
                Some(all) => return Err(Refusal::Versions(all.version, position.version)),
            },
            SubtaskState::Operator { file: Some(_) } => {
                return Err(Refusal::Whole {
                    checkpointed: node.parallelism,
                    now: parallelism,
                });
            }
            SubtaskState::Operator { file: None } => {}
            SubtaskState::Sink { state, .. } => {
                sinks[old % parallelism as usize].push((old as u32, state.clone()));
            }
            SubtaskState::KeyedOperator { state } => files.push(state),
        }
    }
    if let Some(all) = positions {
        return Ok(vec![SubtaskRestore::Source(all); parallelism as usize]);
    }
    if node
        .subtasks
        .iter()
        .any(|s| matches!(s.state, SubtaskState::Sink { .. }))
    {
        return Ok(sinks.into_iter().map(SubtaskRestore::Sink).collect());
    }
    if files.is_empty() {
        return Ok(vec![SubtaskRestore::Nothing; parallelism as usize]);
    }
    let version = files[0].version;
    if let Some(other) = files.iter().find(|f| f.version != version) {
        return Err(Refusal::Versions(version, other.version));
    }
    Ok((0..parallelism)
        .map(|subtask| {
            let range = KeyGroupRange::of_subtask(subtask, max_parallelism, parallelism);
            SubtaskRestore::Keyed(KeyedRestore {
                version,
                items: items_for(&files, subtask, parallelism),
                chunks: reads(&files, |f| &f.chunks, range),
                timers: reads(&files, |f| &f.timers, range),
            })
        })
        .collect())
}

/// A subtask's own state back, at an unchanged parallelism.
fn own(subtask: u32, state: &SubtaskState) -> SubtaskRestore {
    match state {
        SubtaskState::Source { position, .. } => SubtaskRestore::Source(position.clone()),
        SubtaskState::Sink { state, .. } => SubtaskRestore::Sink(vec![(subtask, state.clone())]),
        SubtaskState::Operator { file: Some(file) } => SubtaskRestore::Whole(file.clone()),
        SubtaskState::Operator { file: None } => SubtaskRestore::Nothing,
        SubtaskState::KeyedOperator { state } => SubtaskRestore::Keyed(KeyedRestore {
            version: state.version,
            items: state
                .operator_state
                .as_ref()
                .map(|items| (state.clone(), 0..items.items))
                .into_iter()
                .collect(),
            chunks: reads(&[state], |f| &f.chunks, state.key_groups.into()),
            timers: reads(&[state], |f| &f.timers, state.key_groups.into()),
        }),
    }
}

/// The operator-wide items new subtask `subtask` of `parallelism` gets from `files` (the
/// old subtasks', in order), by each file's mode.
fn items_for(
    files: &[&OperatorStateFile],
    subtask: u32,
    parallelism: u32,
) -> Vec<(OperatorStateFile, Range<u64>)> {
    let count = |f: &OperatorStateFile| f.operator_state.as_ref().map_or(0, |i| i.items);
    let total: u64 = files.iter().map(|f| count(f)).sum();
    // Split: this subtask's share of all items, [total * i / p, total * (i + 1) / p).
    let share = |i: u32| total * u64::from(i) / u64::from(parallelism);
    let wanted = share(subtask)..share(subtask + 1);
    let mut start = 0;
    let mut out = Vec::new();
    for file in files {
        let n = count(file);
        let range = match file.mode {
            ItemMode::Union => 0..n,
            ItemMode::Split => {
                wanted.start.clamp(start, start + n) - start
                    ..wanted.end.clamp(start, start + n) - start
            }
        };
        start += n;
        if !range.is_empty() {
            out.push(((*file).clone(), range));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::metadata::{
        ItemsSegment, KeyGroups, Segment, SnapshotStats, SubtaskSnapshot,
    };
    use proptest::prelude::*;

    const MAX: u32 = 32;

    fn segment(offset: u64, size: u64) -> Segment {
        Segment {
            offset,
            stored_size: size,
            raw_size: size,
            checksum: "0000000000000000".into(),
        }
    }

    /// The file of old subtask `i` of `p`, with state in the key groups `groups` (of its
    /// own) and `items` items.
    fn file(i: u32, p: u32, groups: &[u32], items: u64, mode: ItemMode) -> OperatorStateFile {
        let range = KeyGroupRange::of_subtask(i, MAX, p);
        let mut offset = 0;
        let operator_state = (items > 0).then(|| {
            offset = 10;
            ItemsSegment {
                items,
                segment: segment(0, 10),
            }
        });
        let chunks: Vec<ChunkSegment> = groups
            .iter()
            .filter(|g| range.contains(**g))
            .map(|&key_group| {
                offset += 5;
                ChunkSegment {
                    key_group,
                    entries: 1,
                    segment: segment(offset - 5, 5),
                }
            })
            .collect();
        OperatorStateFile {
            path: format!("count/{i}.state"),
            version: 3,
            mode,
            value_encoding: "u64-le".into(),
            key_groups: KeyGroups::from(range),
            operator_state,
            // Timers in the same key groups (the planner reads only their key groups).
            timers: chunks.clone(),
            chunks,
        }
    }

    fn node(p: u32, groups: &[u32], items: u64, mode: ItemMode) -> NodeState {
        NodeState {
            uid: "count".into(),
            parallelism: p,
            subtasks: (0..p)
                .map(|i| SubtaskSnapshot {
                    state: SubtaskState::KeyedOperator {
                        state: file(i, p, groups, items, mode),
                    },
                    stats: SnapshotStats::default(),
                    watermark: None,
                })
                .collect(),
        }
    }

    fn keyed(restore: &SubtaskRestore) -> &KeyedRestore {
        match restore {
            SubtaskRestore::Keyed(k) => k,
            other => panic!("not keyed: {other:?}"),
        }
    }

    /// The key groups a subtask's plan reads; its timers' must be the same.
    fn groups_read(restore: &KeyedRestore) -> Vec<u32> {
        let groups = |reads: &[(String, Vec<ChunkSegment>)]| -> Vec<u32> {
            reads
                .iter()
                .flat_map(|(_, batch)| batch.iter().map(|c| c.key_group))
                .collect()
        };
        assert_eq!(groups(&restore.timers), groups(&restore.chunks));
        groups(&restore.chunks)
    }

    proptest! {
        /// Keyed state and timers split into key groups at one parallelism and merged at any
        /// other: every key group with state is read exactly once, by the subtask that owns
        /// it.
        #[test]
        fn key_groups_move_to_their_new_owner(
            groups in proptest::collection::btree_set(0..MAX, 0..MAX as usize),
            old in 1..=MAX,
            new in 1..=MAX,
        ) {
            let groups: Vec<u32> = groups.into_iter().collect();
            let plan = assign(&node(old, &groups, 0, ItemMode::Split), new, MAX).unwrap();
            prop_assert_eq!(plan.len(), new as usize);
            let mut all = Vec::new();
            for (subtask, restore) in plan.iter().enumerate() {
                let range = KeyGroupRange::of_subtask(subtask as u32, MAX, new);
                let read = groups_read(keyed(restore));
                prop_assert!(read.iter().all(|g| range.contains(*g)));
                all.extend(read);
            }
            all.sort_unstable();
            prop_assert_eq!(all, groups);
        }

        /// Split items: all of them, once, in order; union: all of them to everyone.
        #[test]
        fn items_are_shared_out_by_mode(old in 1..=8u32, new in 1..=8u32, items in 0..5u64) {
            let plan = assign(&node(old, &[], items, ItemMode::Split), new, MAX).unwrap();
            let taken: Vec<(String, u64)> = plan
                .iter()
                .flat_map(|r| keyed(r).items.iter())
                .flat_map(|(f, range)| range.clone().map(|i| (f.path.clone(), i)))
                .collect();
            let expected: Vec<(String, u64)> = (0..old)
                .flat_map(|s| (0..items).map(move |i| (format!("count/{s}.state"), i)))
                .collect();
            prop_assert_eq!(taken, expected);
            let union = assign(&node(old, &[], items, ItemMode::Union), new, MAX).unwrap();
            for restore in &union {
                let n: u64 = keyed(restore).items.iter().map(|(_, r)| r.end - r.start).sum();
                prop_assert_eq!(n, u64::from(old) * items);
            }
        }
    }

    #[test]
    fn an_unchanged_parallelism_gives_each_subtask_its_own() {
        let plan = assign(&node(3, &[0, 5, 31], 2, ItemMode::Split), 3, MAX).unwrap();
        assert_eq!(groups_read(keyed(&plan[0])), [0, 5]);
        assert_eq!(groups_read(keyed(&plan[2])), [31]);
        let items = &keyed(&plan[1]).items;
        assert_eq!(items.len(), 1);
        assert_eq!(
            (items[0].0.path.as_str(), items[0].1.clone()),
            ("count/1.state", 0..2)
        );
    }

    #[test]
    fn sinks_take_over_old_subtasks_round_robin() {
        let sink = |i: u32| SubtaskSnapshot {
            state: SubtaskState::Sink {
                connector: "file".into(),
                state: SinkState {
                    version: 1,
                    data: vec![i as u8],
                },
            },
            stats: SnapshotStats::default(),
            watermark: None,
        };
        let node = NodeState {
            uid: "out".into(),
            parallelism: 5,
            subtasks: (0..5).map(sink).collect(),
        };
        let plan = assign(&node, 2, MAX).unwrap();
        let old = |r: &SubtaskRestore| match r {
            SubtaskRestore::Sink(states) => states.iter().map(|(i, _)| *i).collect::<Vec<_>>(),
            other => panic!("{other:?}"),
        };
        assert_eq!(old(&plan[0]), [0, 2, 4]);
        assert_eq!(old(&plan[1]), [1, 3]);
        let up = assign(&node, 7, MAX).unwrap();
        assert_eq!(old(&up[4]), [4]);
        assert_eq!(old(&up[6]), Vec::<u32>::new());
    }

    #[test]
    fn sources_get_every_position_and_whole_state_keeps_its_parallelism() {
        let source = |split: &str| SubtaskSnapshot {
            state: SubtaskState::Source {
                connector: "generator".into(),
                position: SourcePosition {
                    version: 2,
                    splits: vec![crate::state::metadata::SplitPosition {
                        split: split.into(),
                        position: b"{}".to_vec(),
                    }],
                },
            },
            stats: SnapshotStats::default(),
            watermark: None,
        };
        let node = NodeState {
            uid: "numbers".into(),
            parallelism: 2,
            subtasks: vec![source("0"), source("1")],
        };
        let plan = assign(&node, 3, MAX).unwrap();
        assert_eq!(plan.len(), 3);
        for restore in &plan {
            let SubtaskRestore::Source(position) = restore else {
                panic!("{restore:?}");
            };
            let splits: Vec<&str> = position.splits.iter().map(|s| s.split.as_str()).collect();
            assert_eq!(splits, ["0", "1"]);
        }
        let whole = NodeState {
            uid: "count".into(),
            parallelism: 2,
            subtasks: vec![
                SubtaskSnapshot {
                    state: SubtaskState::Operator {
                        file: Some(StateFile {
                            path: "count/0.zst".into(),
                            raw_size: 1,
                            stored_size: 1,
                            checksum: "0000000000000000".into(),
                            version: 1,
                        }),
                    },
                    stats: SnapshotStats::default(),
                    watermark: None,
                };
                2
            ],
        };
        assert_eq!(
            assign(&whole, 3, MAX).unwrap_err(),
            Refusal::Whole {
                checkpointed: 2,
                now: 3
            }
        );
        assert!(matches!(
            assign(&whole, 2, MAX).unwrap()[1],
            SubtaskRestore::Whole(_)
        ));
    }

    #[test]
    fn watermarks_restore_as_they_were_or_at_the_lowest() {
        let node = |watermarks: &[Option<i64>]| NodeState {
            uid: "count".into(),
            parallelism: watermarks.len() as u32,
            subtasks: watermarks
                .iter()
                .map(|&watermark| SubtaskSnapshot {
                    state: SubtaskState::Operator { file: None },
                    stats: SnapshotStats::default(),
                    watermark,
                })
                .collect(),
        };
        let two = node(&[Some(50), Some(30)]);
        assert_eq!(watermark(&two, 0, 2), Some(50));
        assert_eq!(watermark(&two, 1, 2), Some(30));
        assert_eq!(watermark(&two, 2, 3), Some(30));
        assert_eq!(watermark(&two, 0, 1), Some(30));
        assert_eq!(watermark(&node(&[Some(50), None]), 0, 3), None);
        assert_eq!(watermark(&node(&[Some(50), None]), 0, 2), Some(50));
    }
}
