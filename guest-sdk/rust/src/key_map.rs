//! [`KeyMap`]: byte-string keys to encoded values, every entry back to back in one buffer in
//! the host's chunk encoding. No allocation per key, a small table (one offset per key), and
//! a key group's snapshot is a copy of its buffer. One per key group of a
//! [`KeyedState`](crate::KeyedState).

use std::hash::BuildHasher;
use std::ops::Range;

use cairn_wire::keyed;
use hashbrown::HashTable;

use crate::Result;

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

/// Whether the entry at `at` has key `key`: the probe of every lookup, so keys under 128
/// bytes (one length byte) are compared without parsing the entry.
#[inline]
fn has_key(entries: &[u8], at: usize, key: &[u8]) -> bool {
    let first = entries[at];
    if first < 0x80 {
        let start = at + 1;
        return usize::from(first) == key.len() && same(&entries[start..start + key.len()], key);
    }
    key_at(entries, at) == key
}

/// `a == b` for slices of the same length, keys of 8 to 16 bytes compared as two words: in
/// a guest, `==` on slices is a call to a byte-by-byte `memcmp`.
#[inline]
fn same(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if (8..=16).contains(&n) {
        let word = |s: &[u8], at: usize| {
            let mut word = [0; 8];
            word.copy_from_slice(&s[at..at + 8]);
            u64::from_ne_bytes(word)
        };
        // The two words overlap when the key is shorter than 16 bytes.
        return word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8);
    }
    a == b
}

/// Where an entry is: its start, and its value's bytes.
pub(crate) struct Slot {
    entry: usize,
    value: Range<usize>,
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
            .find(hash, |&at| has_key(&self.entries, at, key))?;
        Some(&self.entries[parts(&self.entries, at).value])
    }

    /// The entry of `key`, added with value `default()` if it has none.
    pub(crate) fn find_or_insert<'v>(
        &mut self,
        key: &[u8],
        default: impl FnOnce() -> &'v [u8],
    ) -> Slot {
        let hash = self.hasher.hash_one(key);
        let KeyMap {
            entries,
            table,
            hasher,
            ..
        } = self;
        let entry = table.entry(
            hash,
            |&at| has_key(entries, at, key),
            |&at| hasher.hash_one(key_at(entries, at)),
        );
        match entry {
            hashbrown::hash_table::Entry::Occupied(found) => {
                let at = *found.get();
                Slot {
                    entry: at,
                    value: parts(entries, at).value,
                }
            }
            hashbrown::hash_table::Entry::Vacant(vacant) => {
                let at = entries.len();
                let value = default();
                keyed::put(entries, key, value);
                vacant.insert(at);
                Slot {
                    entry: at,
                    value: entries.len() - value.len()..entries.len(),
                }
            }
        }
    }

    /// The value of an entry [`find_or_insert`](Self::find_or_insert) found.
    pub(crate) fn value(&self, slot: &Slot) -> &[u8] {
        &self.entries[slot.value.clone()]
    }

    /// Replaces the value of an entry [`find_or_insert`](Self::find_or_insert) found (the
    /// map unchanged since): in place when it has the same length, else by a new entry at
    /// the end (the old one becomes garbage).
    pub(crate) fn set(&mut self, slot: &Slot, value: &[u8]) {
        if slot.value.len() == value.len() {
            self.entries[slot.value.clone()].copy_from_slice(value);
            return;
        }
        let (at, old) = (slot.entry, parts(&self.entries, slot.entry));
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
        let slot = self.find_or_insert(key, || value);
        self.set(&slot, value);
    }

    /// Removes `key`; returns its value.
    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<Vec<u8>> {
        let hash = self.hasher.hash_one(key);
        let entries = &self.entries;
        let at = match self.table.find_entry(hash, |&at| has_key(entries, at, key)) {
            Ok(found) => found.remove().0,
            Err(_) => return None,
        };
        let old = parts(&self.entries, at);
        let value = self.entries[old.value.clone()].to_vec();
        self.collect(old.end() - at);
        Some(value)
    }

    /// Restores a chunk into this map if it is empty and the chunk is as the host hands
    /// chunks back — sorted by key, no tombstones: the chunk becomes the map's buffer and
    /// each entry is indexed once, without a probe. `check` validates each value. Returns
    /// `false`, the map untouched, for any other chunk.
    pub(crate) fn adopt(
        &mut self,
        chunk: &[u8],
        mut check: impl FnMut(&[u8]) -> Result<()>,
    ) -> Result<bool> {
        if !self.is_empty() {
            return Ok(false);
        }
        let mut starts = Vec::new();
        let mut entries = keyed::entries(chunk);
        let mut previous: Option<&[u8]> = None;
        loop {
            let at = entries.position();
            let Some(entry) = entries.next() else { break };
            let entry = entry?;
            let Some(value) = entry.value else {
                return Ok(false);
            };
            if previous.is_some_and(|previous| previous >= entry.key) {
                return Ok(false);
            }
            check(value)?;
            previous = Some(entry.key);
            starts.push(at);
        }
        self.entries = chunk.to_vec();
        self.garbage = 0;
        let KeyMap {
            entries,
            table,
            hasher,
            ..
        } = self;
        *table = HashTable::with_capacity(starts.len());
        for at in starts {
            let hash = hasher.hash_one(key_at(entries, at));
            table.insert_unique(hash, at, |&at| hasher.hash_one(key_at(entries, at)));
        }
        Ok(true)
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

    /// The live entries in the chunk encoding without a copy: the buffer itself, lent
    /// (see [`lend`](crate::lend::lend)), when it has no garbage; else a compacted copy.
    ///
    /// # Safety
    ///
    /// Until the returned `Vec` is dropped, this map must not change, and the `Vec` must not
    /// be grown, shrunk or written to.
    #[cfg(target_arch = "wasm32")]
    pub(crate) unsafe fn lend(&self) -> Vec<u8> {
        if self.garbage == 0 {
            // SAFETY: the caller's promise.
            return unsafe { crate::lend::lend(&self.entries) };
        }
        self.chunk()
    }

    /// The live entries in the chunk encoding, in no order.
    pub(crate) fn chunk(&self) -> Vec<u8> {
        if self.garbage == 0 {
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

    #[test]
    fn a_sorted_chunk_is_adopted_and_any_other_is_not() {
        let mut chunk = Vec::new();
        for (key, value) in [(&b"a"[..], &b"1"[..]), (b"b", b"22"), (b"c", b"")] {
            keyed::put(&mut chunk, key, value);
        }
        let mut map = KeyMap::default();
        assert!(map.adopt(&chunk, |_| Ok(())).unwrap());
        assert_eq!((map.len(), map.get(b"b")), (3, Some(&b"22"[..])));
        assert!(
            !map.adopt(&chunk, |_| Ok(())).unwrap(),
            "not into a map with keys"
        );

        let mut unsorted = Vec::new();
        keyed::put(&mut unsorted, b"b", b"");
        keyed::put(&mut unsorted, b"a", b"");
        let mut tombstone = Vec::new();
        keyed::put_tombstone(&mut tombstone, b"a");
        for chunk in [unsorted, tombstone] {
            let mut map = KeyMap::default();
            assert!(!map.adopt(&chunk, |_| Ok(())).unwrap());
            assert!(map.is_empty());
        }
        let refused = KeyMap::default().adopt(&chunk, |_| Err(crate::Error::msg("bad value")));
        assert_eq!(refused.unwrap_err().message(), "bad value");
    }

    #[test]
    fn short_keys_compare_as_words() {
        for n in 0..20 {
            let a: Vec<u8> = (0..n as u8).collect();
            assert!(same(&a, &a.clone()));
            for i in 0..n {
                let mut b = a.clone();
                b[i] ^= 1;
                assert!(!same(&a, &b), "{n} bytes, byte {i} differs");
            }
        }
    }

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
                        let slot = map.find_or_insert(&key, || &[]);
                        let mut grown = map.value(&slot).to_vec();
                        grown.extend_from_slice(&value);
                        map.set(&slot, &grown);
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
