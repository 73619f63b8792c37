//! Keyed state: a value per key, as Flink's `ValueState` — the state of "this record's key".
//! The SDK keeps it per key group and hands it to the host, which stores, splits and merges
//! it by key group (so the job can rescale) and can show it without the job's code.
//!
//! ```
//! use cairn_sdk::prelude::*;
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Count { counts: KeyedState<u64> }
//!
//! impl Operator for Count {
//!     fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
//!         Some(&mut self.counts)
//!     }
//!
//!     fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
//!         let mut n = self.counts.get_or_default(&record)?;
//!         *n += 1;
//!         out.emit_fmt(format_args!("{}\t{n}", record.key_str()?));
//!         Ok(())
//!     }
//! }
//! ```

use std::any::Any;
use std::fmt;
use std::marker::PhantomData;
use std::ops::{Deref, DerefMut};

use cairn_wire::key_groups::key_group;
use cairn_wire::{KeyGroupRange, KeyedChunk, ValueEncoding, keyed};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::key_map::{KeyMap, Slot};
use crate::{Error, Record, Result};

/// The chunk encoding: for reading chunks of another encoding version in a migration, and
/// for a [`KeyedStore`] of your own.
pub use cairn_wire::keyed::{Entry, entries, put, put_tombstone};

/// A value kept in keyed state: how it is encoded in a checkpoint. Implemented for the
/// integer, float, text and byte types; implement it for a type of your own (and say which
/// [`ValueEncoding`] tools should show it as).
pub trait StateValue: Sized + 'static {
    const ENCODING: ValueEncoding;
    fn encode(&self, out: &mut Vec<u8>);
    fn decode(bytes: &[u8]) -> Result<Self>;
}

#[inline]
fn fixed<const N: usize>(bytes: &[u8], what: &str) -> Result<[u8; N]> {
    bytes.try_into().map_err(|_| {
        Error::msg(format!(
            "a {what} state value has {} bytes, not {N}",
            bytes.len()
        ))
    })
}

impl StateValue for u64 {
    const ENCODING: ValueEncoding = ValueEncoding::U64Le;
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(u64::from_le_bytes(fixed(bytes, "u64")?))
    }
}

impl StateValue for i64 {
    const ENCODING: ValueEncoding = ValueEncoding::S64Le;
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(i64::from_le_bytes(fixed(bytes, "i64")?))
    }
}

impl StateValue for f64 {
    const ENCODING: ValueEncoding = ValueEncoding::F64Le;
    #[inline]
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.to_le_bytes());
    }
    #[inline]
    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(f64::from_le_bytes(fixed(bytes, "f64")?))
    }
}

impl StateValue for String {
    const ENCODING: ValueEncoding = ValueEncoding::Utf8;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self.as_bytes());
    }
    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(std::str::from_utf8(bytes)?.to_owned())
    }
}

impl StateValue for Vec<u8> {
    const ENCODING: ValueEncoding = ValueEncoding::Bytes;
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(self);
    }
    fn decode(bytes: &[u8]) -> Result<Self> {
        Ok(bytes.to_vec())
    }
}

/// Keyed state as the SDK drives it: what [`Operator::keyed_state`](crate::Operator::keyed_state)
/// returns. [`KeyedState`] implements it.
pub trait KeyedStore {
    /// Called once, when the subtask opens: the key groups it owns.
    fn open(&mut self, key_groups: KeyGroupRange, max_parallelism: u32);
    /// One chunk per key group that has state.
    fn snapshot(&self) -> Vec<KeyedChunk>;
    /// [`snapshot`](Self::snapshot) without a copy, where the store can: the chunks' buffers
    /// are the store's own, lent (in a component, the SDK hands them straight to the host).
    /// `None`: it cannot, and the SDK calls `snapshot`.
    ///
    /// # Safety
    ///
    /// Until every chunk is dropped, the store must not change, and no chunk may be grown,
    /// shrunk or written to.
    #[doc(hidden)]
    unsafe fn lend(&self) -> Option<Vec<KeyedChunk>> {
        None
    }
    /// Adds a chunk of a snapshot in this store's own value encoding.
    fn restore(&mut self, chunk: &KeyedChunk) -> Result<()>;
    fn value_encoding(&self) -> ValueEncoding;
    /// Takes over `other`'s contents (a store of the same type), leaving it empty.
    fn take_from(&mut self, other: &mut dyn KeyedStore);
    fn as_any_mut(&mut self) -> &mut dyn Any;
}

/// A value of type `V` per key, kept per key group. Records of a by-key input address the
/// state of their key ([`get`](Self::get), [`get_or_default`](Self::get_or_default), …);
/// [`insert_key`](Self::insert_key) and [`iter`](Self::iter) address keys directly.
///
/// Values are kept encoded (as [`StateValue::encode`] writes them), each key group's entries
/// back to back in the host's chunk encoding: a snapshot copies them out, no per-entry work.
/// It is checkpointed by the host, not with serde: as a field of an operator struct it
/// serialises as nothing.
pub struct KeyedState<V> {
    first: u32,
    max_parallelism: u32,
    /// One map per owned key group, by `key_group - first`.
    groups: Vec<KeyMap>,
    /// A value being encoded: reused, so that an update allocates nothing.
    scratch: Vec<u8>,
    values: PhantomData<fn() -> V>,
}

impl<V> Default for KeyedState<V> {
    fn default() -> Self {
        KeyedState {
            first: 0,
            max_parallelism: 0,
            groups: Vec::new(),
            scratch: Vec::new(),
            values: PhantomData,
        }
    }
}

impl<V> Serialize for KeyedState<V> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.serialize_unit()
    }
}

impl<'de, V> Deserialize<'de> for KeyedState<V> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        <()>::deserialize(deserializer)?;
        Ok(KeyedState::default())
    }
}

/// The value of one key, borrowed from a [`KeyedState`] for update: it derefs to the value,
/// and writes it back when dropped.
pub struct ValueMut<'a, V: StateValue> {
    map: &'a mut KeyMap,
    scratch: &'a mut Vec<u8>,
    slot: Slot,
    value: V,
}

impl<V: StateValue> Deref for ValueMut<'_, V> {
    type Target = V;
    fn deref(&self) -> &V {
        &self.value
    }
}

impl<V: StateValue> DerefMut for ValueMut<'_, V> {
    fn deref_mut(&mut self) -> &mut V {
        &mut self.value
    }
}

impl<V: StateValue + fmt::Debug> fmt::Debug for ValueMut<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<V: StateValue + fmt::Display> fmt::Display for ValueMut<'_, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.value.fmt(f)
    }
}

impl<V: StateValue> Drop for ValueMut<'_, V> {
    fn drop(&mut self) {
        self.scratch.clear();
        self.value.encode(self.scratch);
        self.map.set(&self.slot, self.scratch);
    }
}

/// Decodes a value this state stored: it was encoded by `V::encode`, or checked with
/// `V::decode` when restored.
fn stored<V: StateValue>(bytes: &[u8]) -> V {
    V::decode(bytes).unwrap_or_else(|e| {
        panic!("StateValue::decode refused a value its encode wrote or it accepted before: {e}")
    })
}

impl<V: StateValue> KeyedState<V> {
    /// The map of key group `group`, if this subtask owns it.
    fn group(&self, group: u32) -> Option<&KeyMap> {
        self.groups.get(group.checked_sub(self.first)? as usize)
    }

    /// The index in `groups` of key group `group`, which this subtask must own.
    fn group_index(&self, group: u32) -> Result<usize> {
        let (first, count) = (self.first, self.groups.len());
        group
            .checked_sub(first)
            .map(|i| i as usize)
            .filter(|&i| i < count)
            .ok_or_else(|| {
                Error::msg(format!(
                    "key group {group} is not this subtask's (it owns {first}..{}): keyed \
                     state can only hold keys routed here by key",
                    first as usize + count
                ))
            })
    }

    fn group_mut(&mut self, group: u32) -> Result<&mut KeyMap> {
        let i = self.group_index(group)?;
        Ok(&mut self.groups[i])
    }

    /// The key group of a record, which must have arrived on a by-key input.
    fn record_group(record: &Record<'_>) -> Result<u32> {
        record.key_group().map(u32::from).ok_or_else(|| {
            Error::msg(format!(
                "keyed state needs records of a by-key input; this one arrived on input {}, \
                 which is not partitioned by key",
                record.input()
            ))
        })
    }

    /// The value of the record's key.
    pub fn get(&self, record: &Record<'_>) -> Result<Option<V>> {
        let group = Self::record_group(record)?;
        Ok(self
            .group(group)
            .and_then(|map| map.get(record.key().unwrap_or_default()))
            .map(stored))
    }

    /// The value of the record's key, created with `V::default()` if it has none, for
    /// update: `*state.get_or_default(&record)? += 1`.
    pub fn get_or_default(&mut self, record: &Record<'_>) -> Result<ValueMut<'_, V>>
    where
        V: Default,
    {
        let i = self.group_index(Self::record_group(record)?)?;
        let key = record.key().unwrap_or_default();
        let (map, scratch) = (&mut self.groups[i], &mut self.scratch);
        let slot = map.find_or_insert(key, || {
            scratch.clear();
            V::default().encode(scratch);
            scratch
        });
        let value = stored(map.value(&slot));
        Ok(ValueMut {
            map,
            scratch,
            slot,
            value,
        })
    }

    /// Sets the value of the record's key.
    pub fn insert(&mut self, record: &Record<'_>, value: V) -> Result<()> {
        let group = Self::record_group(record)?;
        self.insert_in(group, record.key().unwrap_or_default(), &value)
    }

    /// Removes the record's key's value.
    pub fn remove(&mut self, record: &Record<'_>) -> Result<Option<V>> {
        let group = Self::record_group(record)?;
        let key = record.key().unwrap_or_default();
        Ok(self.group_mut(group)?.remove(key).map(|v| stored(&v)))
    }

    /// Sets the value of `key`, which must be in this subtask's key groups: for migrating
    /// state kept otherwise by older code.
    pub fn insert_key(&mut self, key: &[u8], value: V) -> Result<()> {
        let group = key_group(key, self.max_parallelism.max(1));
        self.insert_in(group, key, &value)
    }

    fn insert_in(&mut self, group: u32, key: &[u8], value: &V) -> Result<()> {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        value.encode(&mut scratch);
        let inserted = self.group_mut(group).map(|map| map.insert(key, &scratch));
        self.scratch = scratch;
        inserted
    }

    /// Every key and its value, key group by key group.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], V)> {
        self.groups
            .iter()
            .flat_map(|map| map.iter().map(|(k, v)| (k, stored(v))))
    }

    /// One chunk per key group that has state, its entries by `entries`.
    fn chunks(&self, entries: impl Fn(&KeyMap) -> Vec<u8>) -> Vec<KeyedChunk> {
        self.groups
            .iter()
            .enumerate()
            .filter(|(_, map)| !map.is_empty())
            .map(|(i, map)| KeyedChunk {
                // Key groups are below max-parallelism, at most 2^15.
                key_group: (self.first + i as u32) as u16,
                entries: entries(map),
            })
            .collect()
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.groups.iter().map(KeyMap::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.groups.iter().all(KeyMap::is_empty)
    }
}

impl<V: StateValue> KeyedStore for KeyedState<V> {
    fn open(&mut self, key_groups: KeyGroupRange, max_parallelism: u32) {
        self.first = key_groups.first;
        self.max_parallelism = max_parallelism;
        let count = key_groups.last + 1 - key_groups.first;
        self.groups = (0..count).map(|_| KeyMap::default()).collect();
    }

    fn snapshot(&self) -> Vec<KeyedChunk> {
        self.chunks(KeyMap::chunk)
    }

    #[cfg(target_arch = "wasm32")]
    unsafe fn lend(&self) -> Option<Vec<KeyedChunk>> {
        // SAFETY: the caller's promise is `KeyMap::lend`'s.
        Some(self.chunks(|map| unsafe { map.lend() }))
    }

    fn restore(&mut self, chunk: &KeyedChunk) -> Result<()> {
        let map = self.group_mut(u32::from(chunk.key_group))?;
        if map.adopt(&chunk.entries, |value| V::decode(value).map(drop))? {
            return Ok(());
        }
        // Not a chunk as the host hands them back (a delta, or more state for a key group
        // that has some): entry by entry. Counted first, so that the map is allocated once.
        let count = keyed::entries(&chunk.entries).count();
        map.reserve(count, chunk.entries.len());
        for entry in keyed::entries(&chunk.entries) {
            let entry = entry?;
            match entry.value {
                Some(value) => {
                    V::decode(value)?;
                    map.insert(entry.key, value);
                }
                None => {
                    map.remove(entry.key);
                }
            }
        }
        Ok(())
    }
    fn value_encoding(&self) -> ValueEncoding {
        V::ENCODING
    }

    fn take_from(&mut self, other: &mut dyn KeyedStore) {
        if let Some(other) = other.as_any_mut().downcast_mut::<Self>() {
            std::mem::swap(self, other);
        }
    }

    fn as_any_mut(&mut self) -> &mut dyn Any {
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Emitter, PackedBatch};

    const MAX: u32 = 8;

    /// A batch of `keys` with the key groups the host would give them.
    fn batch(keys: &[&str]) -> (PackedBatch, Vec<u16>) {
        let mut out = Emitter::default();
        for key in keys {
            out.emit_keyed(key, []);
        }
        let groups = keys
            .iter()
            .map(|k| key_group(k.as_bytes(), MAX) as u16)
            .collect();
        (out.take(), groups)
    }

    fn counted(state: &mut KeyedState<u64>, keys: &[&str]) {
        let (batch, groups) = batch(keys);
        for record in batch.records_in_key_groups(0, &groups).unwrap() {
            *state.get_or_default(&record).unwrap() += 1;
        }
    }

    #[test]
    fn state_is_per_key_and_moves_between_subtasks_by_key_group() {
        let all = KeyGroupRange {
            first: 0,
            last: MAX - 1,
        };
        let mut one = KeyedState::<u64>::default();
        one.open(all, MAX);
        counted(&mut one, &["a", "b", "a", "c", "a"]);
        assert_eq!(one.len(), 3);
        // Split across two subtasks, as a restore at parallelism 2 would.
        let chunks = one.snapshot();
        let mut two: Vec<KeyedState<u64>> = (0..2)
            .map(|i| {
                let mut s = KeyedState::default();
                s.open(KeyGroupRange::of_subtask(i, MAX, 2), MAX);
                s
            })
            .collect();
        for chunk in &chunks {
            let owner =
                cairn_wire::key_groups::subtask_for_key_group(u32::from(chunk.key_group), MAX, 2);
            two[owner as usize].restore(chunk).unwrap();
        }
        let mut merged: Vec<(Vec<u8>, u64)> = two
            .iter()
            .flat_map(|s| s.iter().map(|(k, v)| (k.to_vec(), v)))
            .collect();
        merged.sort();
        assert_eq!(
            merged,
            [(b"a".to_vec(), 3), (b"b".to_vec(), 1), (b"c".to_vec(), 1)]
        );
    }

    #[test]
    fn misuse_is_explained() {
        let mut state = KeyedState::<u64>::default();
        state.open(KeyGroupRange { first: 0, last: 0 }, MAX);
        let (batch, _) = batch(&["a"]);
        let record = batch.records(3).unwrap().next().unwrap();
        let err = state.get_or_default(&record).unwrap_err();
        assert!(err.message().contains("arrived on input 3"), "{err}");
        let foreign = (0..100)
            .map(|i| format!("k{i}"))
            .find(|k| key_group(k.as_bytes(), MAX) != 0)
            .unwrap();
        let err = state.insert_key(foreign.as_bytes(), 1).unwrap_err();
        assert!(err.message().contains("not this subtask's"), "{err}");
        assert_eq!(
            u64::decode(&[1, 2]).unwrap_err().message(),
            "a u64 state value has 2 bytes, not 8"
        );
    }
}
