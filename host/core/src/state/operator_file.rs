//! An operator subtask's state file ([`OperatorStateFile`] in `_metadata`): its snapshot as
//! independently compressed segments — the operator-wide items, then one chunk per key group
//! sorted by key — written in one pass off the processing path, and read back by range:
//! a restore fetches only the key groups its subtask owns now.
//!
//! The items segment holds the items in the chunk encoding, as entries with empty keys.

use bytes::Bytes;
use cairn_wire::key_groups::key_group;
use cairn_wire::{KeyGroupRange, KeyedChunk, OperatorStateMode, Snapshot, keyed, timers};

use super::blob;
use super::metadata::{ChunkSegment, ItemMode, ItemsSegment, OperatorStateFile, Segment};
use super::{StateError, StateStore};

/// The most stored bytes one ranged read fetches: restores stream a large state in pieces.
pub const READ_BATCH: u64 = 32 << 20;

/// Where a snapshot's file goes and what it must satisfy.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Relative to the checkpoint folder.
    pub path: String,
    /// The key groups of the subtask: every chunk must be one of them.
    pub key_groups: KeyGroupRange,
    pub max_parallelism: u32,
}

/// Sorts, checks and compresses `snapshot` and the subtask's `timers` (one chunk per key
/// group, `cairn_wire::timers`' encoding) segment by segment, passing the stored bytes to
/// `sink` in file order. A chunk outside the subtask's key groups, a key in the wrong key
/// group's chunk, a key twice or a malformed chunk is refused: the guest's SDK is broken.
pub fn write(
    snapshot: &Snapshot,
    timers: &[KeyedChunk],
    layout: &Layout,
    sink: &mut dyn FnMut(Bytes) -> Result<(), StateError>,
) -> Result<OperatorStateFile, StateError> {
    let refused = |message: String| StateError::Corrupt {
        location: format!("the snapshot of {}", layout.path),
        message,
    };
    let mode = match snapshot.mode {
        OperatorStateMode::Split => ItemMode::Split,
        OperatorStateMode::Union => ItemMode::Union,
        OperatorStateMode::Whole => {
            return Err(refused(
                "a whole-blob state is stored as one file, not in segments".into(),
            ));
        }
    };
    let mut offset = 0;
    // Each segment is one zstd frame, streamed to `sink` in pieces: nothing is compressed
    // whole in memory, however large an item or a chunk.
    let mut put = |parts: &[&[u8]]| -> Result<Segment, StateError> {
        let info = blob::encode_parts(parts.iter().copied(), &mut *sink)?;
        let segment = Segment::new(offset, info);
        offset += info.stored_size;
        Ok(segment)
    };
    let operator_state = if snapshot.operator_state.is_empty() {
        None
    } else {
        // Items are entries with empty keys: each item's framing, then the item itself.
        let framing: Vec<Vec<u8>> = snapshot
            .operator_state
            .iter()
            .map(|item| keyed::framing(b"", item.len()))
            .collect();
        let parts: Vec<&[u8]> = framing
            .iter()
            .zip(&snapshot.operator_state)
            .flat_map(|(frame, item)| [frame.as_slice(), item.as_slice()])
            .collect();
        Some(ItemsSegment {
            items: snapshot.operator_state.len() as u64,
            segment: put(&parts)?,
        })
    };
    let chunks = store_chunks(
        &snapshot.keyed,
        "state",
        |key| Some(key),
        layout,
        &refused,
        &mut put,
    )?;
    let timers = store_chunks(
        timers,
        "timers",
        timers::user_key,
        layout,
        &refused,
        &mut put,
    )?;
    Ok(OperatorStateFile {
        path: layout.path.clone(),
        version: snapshot.version,
        mode,
        value_encoding: snapshot.value_encoding.name().to_owned(),
        key_groups: layout.key_groups.into(),
        operator_state,
        chunks,
        timers,
    })
}

/// Compresses the parts of one segment into the file, returning where it is.
type PutSegment<'a> = dyn FnMut(&[&[u8]]) -> Result<Segment, StateError> + 'a;

/// Sorts and checks `chunks` — each key group once and the subtask's, each key (`key_of` an
/// entry's key) in its chunk's key group, each once — and stores each non-empty one as a
/// segment, in key-group order.
fn store_chunks(
    chunks: &[KeyedChunk],
    what: &str,
    key_of: fn(&[u8]) -> Option<&[u8]>,
    layout: &Layout,
    refused: &dyn Fn(String) -> StateError,
    put: &mut PutSegment<'_>,
) -> Result<Vec<ChunkSegment>, StateError> {
    let mut order: Vec<&KeyedChunk> = chunks.iter().collect();
    order.sort_unstable_by_key(|chunk| chunk.key_group);
    let mut stored = Vec::with_capacity(order.len());
    for (i, chunk) in order.iter().enumerate() {
        let group = u32::from(chunk.key_group);
        if !layout.key_groups.contains(group) {
            return Err(refused(format!(
                "its {what} have key group {group}, outside the subtask's {}",
                layout.key_groups
            )));
        }
        if i > 0 && order[i - 1].key_group == chunk.key_group {
            return Err(refused(format!("its {what} have key group {group} twice")));
        }
        let sorted = keyed::sort(&chunk.entries, false)
            .map_err(|e| refused(format!("{what} of key group {group}: {e}")))?;
        for entry in keyed::entries(&sorted.chunk) {
            let entry = entry.map_err(|e| refused(e.to_string()))?.key;
            let key = key_of(entry).ok_or_else(|| {
                refused(format!("{what}: malformed entry {}", keyed::shown(entry)))
            })?;
            let owner = key_group(key, layout.max_parallelism);
            if owner != group {
                return Err(refused(format!(
                    "key {} is in key group {group}'s {what}, but belongs to key group {owner}",
                    keyed::shown(key)
                )));
            }
        }
        if sorted.entries == 0 {
            continue;
        }
        stored.push(ChunkSegment {
            key_group: group,
            entries: sorted.entries,
            segment: put(&[&sorted.chunk])?,
        });
    }
    Ok(stored)
}

/// The operator-wide items of `file`.
pub async fn read_items(
    folder: &StateStore,
    file: &OperatorStateFile,
) -> Result<Vec<Vec<u8>>, StateError> {
    let Some(items) = &file.operator_state else {
        return Ok(Vec::new());
    };
    let stored = folder.get_range(&file.path, items.segment.range()).await?;
    let raw = decode(folder, &file.path, &items.segment, &stored)?;
    keyed::entries(&raw)
        .map(|entry| {
            entry
                .map(|e| e.value.unwrap_or_default().to_vec())
                .map_err(|e| StateError::Corrupt {
                    location: folder.url_of(&file.path),
                    message: e.to_string(),
                })
        })
        .collect()
}

/// The chunks (a file's `chunks` or `timers`) whose key groups are in `range`, in batches of
/// at most [`READ_BATCH`] stored bytes (one ranged read each): what a restore hands a
/// subtask.
pub fn batches(chunks: &[ChunkSegment], range: KeyGroupRange) -> Vec<Vec<ChunkSegment>> {
    let mut batches: Vec<Vec<ChunkSegment>> = Vec::new();
    let mut size = 0;
    for chunk in chunks.iter().filter(|c| range.contains(c.key_group)) {
        match batches.last_mut() {
            Some(batch) if size + chunk.segment.stored_size <= READ_BATCH => {
                size += chunk.segment.stored_size;
                batch.push(chunk.clone());
            }
            _ => {
                size = chunk.segment.stored_size;
                batches.push(vec![chunk.clone()]);
            }
        }
    }
    batches
}

/// Reads one batch of [`batches`] (consecutive chunks of `path`) with one ranged read, each
/// chunk verified and decompressed.
pub async fn read_chunks(
    folder: &StateStore,
    path: &str,
    batch: &[ChunkSegment],
) -> Result<Vec<KeyedChunk>, StateError> {
    let (Some(first), Some(last)) = (batch.first(), batch.last()) else {
        return Ok(Vec::new());
    };
    let start = first.segment.offset;
    let stored = folder
        .get_range(path, start..last.segment.range().end)
        .await?;
    batch
        .iter()
        .map(|chunk| {
            let at = (chunk.segment.offset - start) as usize;
            let bytes = stored
                .get(at..at + chunk.segment.stored_size as usize)
                .ok_or_else(|| StateError::Corrupt {
                    location: folder.url_of(path),
                    message: "the file is shorter than its segments".into(),
                })?;
            Ok(KeyedChunk {
                // Validated: key groups are below max-parallelism (at most 2^15).
                key_group: chunk.key_group as u16,
                entries: decode(folder, path, &chunk.segment, bytes)?,
            })
        })
        .collect()
}

fn decode(
    folder: &StateStore,
    path: &str,
    segment: &Segment,
    stored: &[u8],
) -> Result<Vec<u8>, StateError> {
    let location = format!("{} (bytes {:?})", folder.url_of(path), segment.range());
    let info = segment.info().ok_or_else(|| StateError::Corrupt {
        location: location.clone(),
        message: "its checksum in _metadata is not valid hex".into(),
    })?;
    blob::decode(stored, &info, &location)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cairn_wire::ValueEncoding;

    const MAX: u32 = 16;

    /// A snapshot of `keys` (value: the key reversed) for the key groups of `range`.
    fn snapshot(keys: &[&str], range: KeyGroupRange) -> Snapshot {
        let mut chunks: Vec<KeyedChunk> = Vec::new();
        for key in keys {
            let group = key_group(key.as_bytes(), MAX) as u16;
            if !range.contains(u32::from(group)) {
                continue;
            }
            let index = match chunks.iter().position(|c| c.key_group == group) {
                Some(i) => i,
                None => {
                    chunks.push(KeyedChunk {
                        key_group: group,
                        entries: Vec::new(),
                    });
                    chunks.len() - 1
                }
            };
            let value: Vec<u8> = key.bytes().rev().collect();
            keyed::put(&mut chunks[index].entries, key.as_bytes(), &value);
        }
        Snapshot {
            version: 7,
            operator_state: vec![b"offset=3".to_vec(), vec![]],
            mode: OperatorStateMode::Union,
            keyed: chunks,
            value_encoding: ValueEncoding::Utf8,
        }
    }

    fn stored(
        snapshot: &Snapshot,
        layout: &Layout,
    ) -> Result<(Vec<u8>, OperatorStateFile), StateError> {
        stored_with_timers(snapshot, &[], layout)
    }

    fn stored_with_timers(
        snapshot: &Snapshot,
        timers: &[KeyedChunk],
        layout: &Layout,
    ) -> Result<(Vec<u8>, OperatorStateFile), StateError> {
        let mut bytes = Vec::new();
        let file = write(snapshot, timers, layout, &mut |piece| {
            bytes.extend_from_slice(&piece);
            Ok(())
        })?;
        Ok((bytes, file))
    }

    #[tokio::test]
    async fn a_file_reads_back_by_key_group_range() {
        let keys: Vec<String> = (0..200).map(|i| format!("key-{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let range = KeyGroupRange {
            first: 0,
            last: MAX - 1,
        };
        let layout = Layout {
            path: "count/0.state".into(),
            key_groups: range,
            max_parallelism: MAX,
        };
        let snapshot = snapshot(&keys, range);
        let (bytes, file) = stored(&snapshot, &layout).unwrap();
        assert_eq!(file.size(), bytes.len() as u64);
        assert_eq!(file.value_encoding, "utf8");
        assert_eq!(file.chunks.iter().map(|c| c.entries).sum::<u64>(), 200);
        let store = StateStore::open("memory://operator-file", &Default::default()).unwrap();
        store
            .put("count/0.state", Bytes::from(bytes))
            .await
            .unwrap();
        assert_eq!(
            read_items(&store, &file).await.unwrap(),
            [b"offset=3".to_vec(), vec![]]
        );
        // Half the key groups, as a new subtask of parallelism 2 would read them.
        let half = KeyGroupRange { first: 8, last: 15 };
        let mut seen = Vec::new();
        for batch in batches(&file.chunks, half) {
            for chunk in read_chunks(&store, &file.path, &batch).await.unwrap() {
                assert!(half.contains(u32::from(chunk.key_group)));
                let entries: Vec<_> = keyed::entries(&chunk.entries).map(Result::unwrap).collect();
                assert!(entries.windows(2).all(|w| w[0].key < w[1].key), "sorted");
                for entry in entries {
                    let key = std::str::from_utf8(entry.key).unwrap().to_owned();
                    let value: Vec<u8> = key.bytes().rev().collect();
                    assert_eq!(entry.value, Some(&value[..]));
                    seen.push(key);
                }
            }
        }
        let mut expected: Vec<&str> = keys
            .iter()
            .copied()
            .filter(|k| half.contains(key_group(k.as_bytes(), MAX)))
            .collect();
        expected.sort_unstable();
        seen.sort_unstable();
        assert_eq!(seen, expected);
    }

    #[test]
    fn a_broken_snapshot_is_refused() {
        let range = KeyGroupRange { first: 0, last: 7 };
        let layout = Layout {
            path: "count/0.state".into(),
            key_groups: range,
            max_parallelism: MAX,
        };
        // A key group the subtask does not own.
        let all = KeyGroupRange {
            first: 0,
            last: MAX - 1,
        };
        let keys: Vec<String> = (0..50).map(|i| format!("k{i}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let err = stored(&snapshot(&keys, all), &layout).unwrap_err();
        assert!(
            err.to_string().contains("outside the subtask's 0..=7"),
            "{err}"
        );
        // A key in another key group's chunk.
        let mut wrong = snapshot(&keys, range);
        let moved = wrong.keyed.pop().unwrap();
        wrong.keyed[0].entries.extend_from_slice(&moved.entries);
        let err = stored(&wrong, &layout).unwrap_err();
        assert!(err.to_string().contains("belongs to key group"), "{err}");
    }

    /// Timers are stored after the chunks, per key group, checked like them, and read back
    /// by key-group range.
    #[tokio::test]
    async fn timers_are_stored_per_key_group_after_the_state() {
        use cairn_wire::timers::{TimeDomain, Timer, TimerQueue};
        let range = KeyGroupRange { first: 0, last: 7 };
        let layout = Layout {
            path: "count/0.state".into(),
            key_groups: range,
            max_parallelism: MAX,
        };
        let keys: Vec<String> = (0..100)
            .map(|i| format!("k{i}"))
            .filter(|k| range.contains(key_group(k.as_bytes(), MAX)))
            .collect();
        let mut queue = TimerQueue::default();
        for (i, key) in keys.iter().enumerate() {
            let timer = |timestamp| Timer {
                timestamp,
                key_group: key_group(key.as_bytes(), MAX) as u16,
                key: key.as_bytes().into(),
            };
            queue.register(TimeDomain::EventTime, timer(i as i64));
            queue.register(TimeDomain::ProcessingTime, timer(-(i as i64)));
        }
        let key_refs: Vec<&str> = keys.iter().map(String::as_str).collect();
        let snapshot = snapshot(&key_refs, range);
        let (bytes, file) = stored_with_timers(&snapshot, &queue.snapshot(), &layout).unwrap();
        assert_eq!(file.size(), bytes.len() as u64);
        assert_eq!(
            file.timers.iter().map(|t| t.entries).sum::<u64>(),
            2 * keys.len() as u64
        );
        let last_chunk = file.chunks.last().unwrap().segment.range().end;
        assert!(file.timers.iter().all(|t| t.segment.offset >= last_chunk));
        let store = StateStore::open("memory://operator-file-timers", &Default::default()).unwrap();
        store
            .put("count/0.state", Bytes::from(bytes))
            .await
            .unwrap();
        let mut restored = TimerQueue::default();
        for batch in batches(&file.timers, range) {
            for chunk in read_chunks(&store, &file.path, &batch).await.unwrap() {
                restored.restore(&chunk).unwrap();
            }
        }
        assert_eq!(restored, queue);

        // A timer of a key another subtask owns is refused.
        let mut foreign = TimerQueue::default();
        let key = (0..)
            .map(|i| format!("x{i}"))
            .find(|k| !range.contains(key_group(k.as_bytes(), MAX)))
            .unwrap();
        foreign.register(
            TimeDomain::EventTime,
            Timer {
                timestamp: 1,
                key_group: 3,
                key: key.as_bytes().into(),
            },
        );
        let err = stored_with_timers(&snapshot, &foreign.snapshot(), &layout).unwrap_err();
        assert!(err.to_string().contains("key group 3's timers"), "{err}");
    }
}
