//! [`KeyMap`]: byte-string keys to values, the keys stored back to back in one buffer — no
//! allocation per key, and a snapshot walks contiguous memory. One per key group of a
//! [`KeyedState`](crate::KeyedState).

use std::hash::BuildHasher;

use hashbrown::HashTable;
use hashbrown::hash_table::Entry;

/// Where a key is in the buffer, and its value.
struct Slot<V> {
    at: u32,
    len: u32,
    value: V,
}

impl<V> Slot<V> {
    fn key<'a>(&self, keys: &'a [u8]) -> &'a [u8] {
        &keys[self.at as usize..(self.at + self.len) as usize]
    }
}

/// A map from byte strings to `V`.
pub(crate) struct KeyMap<V> {
    keys: Vec<u8>,
    table: HashTable<Slot<V>>,
    hasher: foldhash::fast::RandomState,
    /// Bytes of `keys` whose key was removed: compacted away when they are most of it.
    garbage: usize,
}

impl<V> Default for KeyMap<V> {
    fn default() -> Self {
        KeyMap {
            keys: Vec::new(),
            table: HashTable::new(),
            hasher: Default::default(),
            garbage: 0,
        }
    }
}

impl<V> KeyMap<V> {
    pub(crate) fn len(&self) -> usize {
        self.table.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// The bytes of all keys.
    pub(crate) fn key_bytes(&self) -> usize {
        self.keys.len() - self.garbage
    }

    pub(crate) fn get(&self, key: &[u8]) -> Option<&V> {
        let hash = self.hasher.hash_one(key);
        self.table
            .find(hash, |s| s.key(&self.keys) == key)
            .map(|s| &s.value)
    }

    /// The value of `key`, made with `make` if it has none.
    pub(crate) fn get_or_insert_with(&mut self, key: &[u8], make: impl FnOnce() -> V) -> &mut V {
        let hash = self.hasher.hash_one(key);
        let KeyMap {
            keys,
            table,
            hasher,
            ..
        } = self;
        let entry = table.entry(
            hash,
            |s| s.key(keys) == key,
            |s| hasher.hash_one(s.key(keys)),
        );
        match entry {
            Entry::Occupied(slot) => &mut slot.into_mut().value,
            Entry::Vacant(vacant) => {
                let at = append(keys, key);
                let slot = Slot {
                    at,
                    len: key.len() as u32,
                    value: make(),
                };
                &mut vacant.insert(slot).into_mut().value
            }
        }
    }

    /// Sets the value of `key`.
    pub(crate) fn insert(&mut self, key: &[u8], value: V) {
        let mut value = Some(value);
        let slot = self.get_or_insert_with(key, || value.take().expect("taken once"));
        if let Some(value) = value {
            *slot = value;
        }
    }

    /// Adds `key`, which the map does not have (a restored chunk's keys are unique).
    pub(crate) fn insert_new(&mut self, key: &[u8], value: V) {
        let hash = self.hasher.hash_one(key);
        let at = append(&mut self.keys, key);
        let KeyMap {
            keys,
            table,
            hasher,
            ..
        } = self;
        let slot = Slot {
            at,
            len: key.len() as u32,
            value,
        };
        table.insert_unique(hash, slot, |s| hasher.hash_one(s.key(keys)));
    }

    pub(crate) fn remove(&mut self, key: &[u8]) -> Option<V> {
        let hash = self.hasher.hash_one(key);
        let keys = &self.keys;
        let slot = match self.table.find_entry(hash, |s| s.key(keys) == key) {
            Ok(found) => found.remove().0,
            Err(_) => return None,
        };
        self.garbage += slot.len as usize;
        if self.garbage > self.keys.len() / 2 {
            self.compact();
        }
        Some(slot.value)
    }

    /// Room for `entries` more keys of `key_bytes` bytes in all.
    pub(crate) fn reserve(&mut self, entries: usize, key_bytes: usize) {
        self.keys.reserve(key_bytes);
        let KeyMap {
            keys,
            table,
            hasher,
            ..
        } = self;
        table.reserve(entries, |s| hasher.hash_one(s.key(keys)));
    }

    /// Every key and its value, in no order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (&[u8], &V)> {
        self.table.iter().map(|s| (s.key(&self.keys), &s.value))
    }

    /// Drops the bytes of removed keys: moves every key to a fresh buffer.
    fn compact(&mut self) {
        let mut keys = Vec::with_capacity(self.key_bytes());
        for slot in self.table.iter_mut() {
            let at = keys.len() as u32;
            keys.extend_from_slice(slot.key(&self.keys));
            slot.at = at;
        }
        self.keys = keys;
        self.garbage = 0;
    }
}

/// Appends `key` to `keys`; returns where it starts.
fn append(keys: &mut Vec<u8>, key: &[u8]) -> u32 {
    // A guest's memory is 32-bit: offsets into one buffer of it fit u32.
    let at = keys.len() as u32;
    keys.extend_from_slice(key);
    at
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Inserts, updates and removes agree with std's HashMap, compactions included.
        #[test]
        fn behaves_as_a_hash_map(ops in proptest::collection::vec(
            (0u8..3, proptest::collection::vec(0u8..4, 0..4), any::<u32>()), 0..300)
        ) {
            let mut map = KeyMap::default();
            let mut model: HashMap<Vec<u8>, u32> = HashMap::new();
            for (op, key, value) in ops {
                match op {
                    0 => {
                        map.insert(&key, value);
                        model.insert(key, value);
                    }
                    1 => {
                        *map.get_or_insert_with(&key, || 0) += value % 7;
                        *model.entry(key).or_insert(0) += value % 7;
                    }
                    _ => prop_assert_eq!(map.remove(&key), model.remove(&key)),
                }
            }
            prop_assert_eq!(map.len(), model.len());
            let mut all: Vec<(Vec<u8>, u32)> = map.iter().map(|(k, v)| (k.to_vec(), *v)).collect();
            all.sort();
            let mut expected: Vec<(Vec<u8>, u32)> = model.into_iter().collect();
            expected.sort();
            prop_assert_eq!(all, expected);
        }
    }
}
