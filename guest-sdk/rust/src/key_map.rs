//! [`KeyMap`]: byte-string keys to encoded values, every entry back to back in one buffer in
//! the host's chunk encoding. No allocation per key, a small table (one offset per key), and
//! a key group's snapshot is a copy of its buffer. One per key group of a
//! [`KeyedState`](crate::KeyedState).

use std::hash::BuildHasher;
use std::ops::Range;

use cairn_wire::keyed;
use hashbrown::HashTable;

/// A map from byte strings to byte strings.
#[derive(Default)]
pub(crate) struct KeyMap {
    /// Entries in the chunk encoding (`varint key-len, key, varint value-len + 1, value`):
    /// the live ones, and `garbage` bytes of replaced or removed ones.
    entries: Vec<u8>,
    /// Where each live entry starts in `entries`.
    table: HashTable<usize>,
    hasher: foldhash::fast::RandomState,
    garbage: usize,
}

/// Where an entry's key and value are in the buffer.
struct Parts {
    key: Range<usize>,
    value: Range<usize>,
}

impl Parts {
    fn end(&self) -> usize {
        self.value.end
    }
}

/// A varint this map wrote, at `at`: its value and where the next field starts.
fn varint(entries: &[u8], at: usize) -> (usize, usize) {
    let first = entries[at];
    if first < 0x80 {
        return (usize::from(first), at + 1);
    }
    let (mut n, mut shift, mut i) = (0usize, 0, at);
    loop {
        let byte = entries[i];
        n |= usize::from(byte & 0x7f) << shift;
        i += 1;
        if byte < 0x80 {
            return (n, i);
        }
        shift += 7;
    }
}

/// The parts of the entry at `at` (one this map wrote, so well formed and not a tombstone).
fn parts(entries: &[u8], at: usize) -> Parts {
    let (key_len, key_start) = varint(entries, at);
    let key = key_start..key_start + key_len;
    let (tag, value_start) = varint(entries, key.end);
    Parts {
        key,
        value: value_start..value_start + tag - 1,
    }
}

fn key_at(entries: &[u8], at: usize) -> &[u8] {
    &entries[parts(entries, at).key]
}

impl KeyMap {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The value of `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<&[u8]> {
        let hash = self.hasher.hash_one(key);
        let at = *self
            .table
            .find(hash, |&at| key_at(&self.entries, at) == key)?;
        Some(&self.entries[parts(&self.entries, at).value])
    }

    /// Where the entry of `key` starts, added with value `default()` if it has none.
    pub(crate) fn find_or_insert<'v>(
        &mut self,
        key: &[u8],
        default: impl FnOnce() -> &'v [u8],
    ) -> usize {
        let hash = self.hasher.hash_one(key);
        let KeyMap {
            entries,
            table,
            hasher,
            ..
        } = self;
        let entry = table.entry(
            hash,
            |&at| key_at(entries, at) == key,
            |&at| hasher.hash_one(key_at(entries, at)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => *found.get(),
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let at = entries.len();
                keyed::put(entries, key, default());
                vacant.insert(at);
                at
            }
        }
    }

    /// The value of the entry at `at` (from [`find_or_insert`](Self::find_or_insert)).
    pub(crate) fn value_at(&self, at: usize) -> &[u8] {
        &self.entries[parts(&self.entries, at).value]
    }

    /// Replaces the value of the entry at `at`: in place when it has the same length, else
    /// by a new entry at the end (the old one becomes garbage).
    pub(crate) fn set_at(&mut self, at: usize, value: &[u8]) {
        let old = parts(&self.entries, at);
        if old.value.len() == value.len() {
            self.entries[old.value].copy_from_slice(value);
            return;
        }
        let key = old.key.clone();
        let hash = self.hasher.hash_one(&self.entries[key.clone()]);
        let moved = self.entries.len();
        self.entries.extend_from_within(at..key.end);
        keyed::put_value(&mut self.entries, value);
        let slot = self
            .table
            .find_mut(hash, |&slot| slot == at)
            .expect("an entry's offset is in the table");
        *slot = moved;
        self.collect(old.end() - at);
    }

    /// Sets the value of `key`.
    pub(crate) fn insert(&mut self, key: &[u8], value: &[u8]) {
        let at = self.find_or_insert(key, || value);
        self.set_at(at, value);
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let hash = self.hasher.hash_one(key);
        let entries = &self.entries;
        let at = match self
            .table
            .find_entry(hash, |&at| key_at(entries, at) == key)
        {
            Ok(found) => found.remove().0,
            Err(_) => return None,
        };
        let old = parts(&self.entries, at);
        let value = self.entries[old.value.clone()].to_vec();
        self.collect(old.end() - at);
        Some(value)
    }

    /// Room for `entries` more entries of `bytes` bytes in all.
    pub(crate) fn reserve(&mut self, entries: usize, bytes: usize) {
        self.entries.reserve(bytes);
        let KeyMap {
            entries: buffer,
            table,
            hasher,
            ..
        } = self;
        table.reserve(entries, |&at| hasher.hash_one(key_at(buffer, at)));
    }

    /// Every key and its value, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.table.iter().map(|&at| {
            let parts = parts(&self.entries, at);
            (&self.entries[parts.key], &self.entries[parts.value])
        })
    }

    /// The live entries in the chunk encoding, in no order: when it has no garbage, the
    /// buffer itself — lent, in a snapshot for the host, else copied.
    pub(crate) fn chunk(&self) -> Vec<u8> {
        if self.garbage == 0 {
            #[cfg(target_arch = "wasm32")]
            if crate::lend::is_lending() {
                // SAFETY: the chunk goes to the host as the snapshot's result; nothing
                // touches this map before the call's post-return has dropped it.
                return unsafe { crate::lend::lend(&self.entries) };
            }
            return self.entries.clone();
        }
        let mut chunk = Vec::with_capacity(self.entries.len() - self.garbage);
        for &at in &self.table {
            chunk.extend_from_slice(&self.entries[at..parts(&self.entries, at).end()]);
        }
        chunk
    }

    /// Counts `bytes` more of garbage, and compacts when it is most of the buffer.
    fn collect(&mut self, bytes: usize) {
        self.garbage += bytes;
        if self.garbage > self.entries.len() / 2 {
            let mut entries = Vec::with_capacity(self.entries.len() - self.garbage);
            for at in self.table.iter_mut() {
                let end = parts(&self.entries, *at).end();
                let moved = entries.len();
                entries.extend_from_slice(&self.entries[*at..end]);
                *at = moved;
            }
            self.entries = entries;
            self.garbage = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Inserts, in-place and moving updates and removes agree with std's HashMap,
        /// compactions included, and the chunk holds exactly the live entries.
        #[test]
        fn behaves_as_a_hash_map(ops in proptest::collection::vec(
            (0u8..3, proptest::collection::vec(0u8..4, 0..4), proptest::collection::vec(any::<u8>(), 0..3)),
            0..300)
        ) {
            let mut map = KeyMap::default();
            let mut model: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
            for (op, key, value) in ops {
                match op {
                    0 => {
                        map.insert(&key, &value);
                        model.insert(key, value);
                    }
                    1 => {
                        let at = map.find_or_insert(&key, || &[]);
                        let mut grown = map.value_at(at).to_vec();
                        grown.extend_from_slice(&value);
                        map.set_at(at, &grown);
                        model.entry(key).or_default().extend_from_slice(&value);
                    }
                    _ => prop_assert_eq!(map.remove(&key), model.remove(&key)),
                }
            }
            prop_assert_eq!(map.len(), model.len());
            for (key, value) in &model {
                prop_assert_eq!(map.get(key), Some(value.as_slice()));
            }
            let mut all: Vec<(Vec<u8>, Vec<u8>)> =
                map.iter().map(|(k, v)| (k.to_vec(), v.to_vec())).collect();
            all.sort();
            let mut expected: Vec<(Vec<u8>, Vec<u8>)> = model.into_iter().collect();
            expected.sort();
            let mut chunked: Vec<(Vec<u8>, Vec<u8>)> = keyed::entries(&map.chunk())
                .map(|e| e.map(|e| (e.key.to_vec(), e.value.unwrap().to_vec())))
                .collect::<Result<_, _>>()
                .unwrap();
            chunked.sort();
            prop_assert_eq!(&all, &expected);
            prop_assert_eq!(chunked, expected);
        }
    }
}
