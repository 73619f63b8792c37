//! The keyed-state chunk encoding (`cairn:job/types.keyed-chunk`): the entries of one key
//! group, each a key and its value — or a tombstone, in a delta.
//!
//! ```text
//! entries = entry*
//! entry   = varint(len(key)) key varint(tag) value
//! tag     = 0 (a tombstone: no value) | len(value) + 1
//! varint  = unsigned LEB128, at most 5 bytes
//! ```
//!
//! Guests write entries in any order ([`put`]); the host stores them sorted by key
//! ([`sort`]), so that it can split, merge and dump keyed state without the job's code. The
//! other SDKs implement the same encoding, checked against `wit/vectors/keyed-chunk.txt`.

use crate::{Error, Result};

/// The longest varint: 5 bytes hold any u32.
const MAX_VARINT: usize = 5;

/// One entry of a chunk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Entry<'a> {
    pub key: &'a [u8],
    /// `None`: a tombstone (the key was deleted).
    pub value: Option<&'a [u8]>,
}

/// Appends the entry `key` → `value` to `chunk`.
pub fn put(chunk: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    put_key(chunk, key);
    put_value(chunk, value);
}

/// Appends the start of an entry: the key's length and the key. Its value ([`put_value`]) or
/// tombstone follows.
pub fn put_key(chunk: &mut Vec<u8>, key: &[u8]) {
    put_varint(chunk, len32(key));
    chunk.extend_from_slice(key);
}

/// Appends the end of an entry whose key [`put_key`] appended: the value's tag and bytes.
pub fn put_value(chunk: &mut Vec<u8>, value: &[u8]) {
    put_varint(chunk, len32(value) + 1);
    chunk.extend_from_slice(value);
}

/// What comes before a value of `value_len` bytes in the entry of `key`: the key's length,
/// the key and the tag. `framing(key, value.len())` then `value` is `put(key, value)`.
pub fn framing(key: &[u8], value_len: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(key.len() + 2 * MAX_VARINT);
    put_key(&mut frame, key);
    put_varint(&mut frame, len32_of(value_len) + 1);
    frame
}

/// Appends a tombstone for `key` to `chunk`.
pub fn put_tombstone(chunk: &mut Vec<u8>, key: &[u8]) {
    put_key(chunk, key);
    chunk.push(0);
}

fn len32(bytes: &[u8]) -> u32 {
    len32_of(bytes.len())
}

fn len32_of(len: usize) -> u32 {
    // A key or value of 4 GiB cannot exist in a 32-bit guest's memory, nor fit a tag.
    u32::try_from(len)
        .ok()
        .filter(|&n| n < u32::MAX)
        .expect("keyed state keys and values are below 4 GiB")
}

fn put_varint(out: &mut Vec<u8>, mut n: u32) {
    while n >= 0x80 {
        out.push((n as u8) | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// Reads a varint at `*pos`, moving past it.
fn varint(data: &[u8], pos: &mut usize) -> Result<u32> {
    let mut n: u32 = 0;
    for i in 0..MAX_VARINT {
        let Some(&byte) = data.get(*pos) else {
            return Err(Error::msg("malformed keyed chunk: it ends inside a length"));
        };
        *pos += 1;
        let bits = u32::from(byte & 0x7f);
        if i == MAX_VARINT - 1 && bits > 0x0f {
            return Err(Error::msg(
                "malformed keyed chunk: a length is over 32 bits",
            ));
        }
        n |= bits << (7 * i);
        if byte & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(Error::msg(
        "malformed keyed chunk: a length is over 5 bytes",
    ))
}

/// The entries of a chunk, in their order; an error ends the iteration.
pub fn entries(chunk: &[u8]) -> Entries<'_> {
    Entries {
        data: chunk,
        pos: 0,
    }
}

/// Iterator over a chunk's entries; see [`entries`].
pub struct Entries<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Entries<'a> {
    /// Where the next entry starts in the chunk (its length once all are read).
    pub fn position(&self) -> usize {
        self.pos
    }

    fn entry(&mut self) -> Result<Entry<'a>> {
        let key = self.bytes()?;
        let tag = varint(self.data, &mut self.pos)?;
        let value = match tag {
            0 => None,
            n => Some(self.take(n as usize - 1)?),
        };
        Ok(Entry { key, value })
    }

    fn bytes(&mut self) -> Result<&'a [u8]> {
        let len = varint(self.data, &mut self.pos)? as usize;
        self.take(len)
    }

    fn take(&mut self, len: usize) -> Result<&'a [u8]> {
        let end = self
            .pos
            .checked_add(len)
            .filter(|&end| end <= self.data.len())
            .ok_or_else(|| Error::msg("malformed keyed chunk: an entry runs past its end"))?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<Entry<'a>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.pos >= self.data.len() {
            return None;
        }
        let entry = self.entry();
        if entry.is_err() {
            self.pos = self.data.len();
        }
        Some(entry)
    }
}

/// A chunk sorted by key: its bytes and how many entries it has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sorted {
    pub chunk: Vec<u8>,
    pub entries: u64,
}

/// `chunk` (a snapshot's, in any order) with its entries sorted by key, bytewise. Refuses a
/// key that occurs twice and, unless `tombstones`, a tombstone.
pub fn sort(chunk: &[u8], tombstones: bool) -> Result<Sorted> {
    // (key start, key length, entry start, entry end): sorting moves 16 bytes an entry.
    let mut spans: Vec<[u32; 4]> = Vec::new();
    let mut it = entries(chunk);
    loop {
        let start = it.pos;
        let Some(entry) = it.next() else { break };
        let entry = entry?;
        if entry.value.is_none() && !tombstones {
            return Err(Error::msg(format!(
                "keyed state has a tombstone (for key {}) in a full snapshot",
                shown(entry.key)
            )));
        }
        let key_start = entry.key.as_ptr() as usize - chunk.as_ptr() as usize;
        // Offsets fit u32: a chunk comes from one 32-bit guest's memory.
        spans.push([
            key_start as u32,
            entry.key.len() as u32,
            start as u32,
            it.pos as u32,
        ]);
    }
    let key = |span: &[u32; 4]| &chunk[span[0] as usize..(span[0] + span[1]) as usize];
    spans.sort_unstable_by(|a, b| key(a).cmp(key(b)));
    if let Some(pair) = spans.windows(2).find(|w| key(&w[0]) == key(&w[1])) {
        return Err(Error::msg(format!(
            "keyed state has key {} twice in one key group",
            shown(key(&pair[0]))
        )));
    }
    let mut sorted = Vec::with_capacity(chunk.len());
    for span in &spans {
        sorted.extend_from_slice(&chunk[span[2] as usize..span[3] as usize]);
    }
    Ok(Sorted {
        chunk: sorted,
        entries: spans.len() as u64,
    })
}

/// A key for messages: quoted text when it is printable UTF-8, else `0x` and hex.
pub fn shown(key: &[u8]) -> String {
    match printable(key) {
        Some(text) => format!("'{text}'"),
        None => hex(key),
    }
}

/// The bytes as text, if they are UTF-8 without control characters.
pub fn printable(bytes: &[u8]) -> Option<&str> {
    std::str::from_utf8(bytes)
        .ok()
        .filter(|text| !text.chars().any(char::is_control))
}

/// `0x` and the bytes in lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut hex = String::with_capacity(2 + 2 * bytes.len());
    hex.push_str("0x");
    for byte in bytes {
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte >> 4)]));
        hex.push(char::from(b"0123456789abcdef"[usize::from(byte & 15)]));
    }
    hex
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn collect(chunk: &[u8]) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        entries(chunk)
            .map(|e| {
                let e = e.unwrap();
                (e.key.to_vec(), e.value.map(<[u8]>::to_vec))
            })
            .collect()
    }

    #[test]
    fn entries_read_back_what_was_put() {
        let mut chunk = Vec::new();
        put(&mut chunk, b"b", b"2");
        put_tombstone(&mut chunk, b"gone");
        put(&mut chunk, b"", b"");
        put(&mut chunk, b"long", &[7; 300]);
        assert_eq!(
            collect(&chunk),
            vec![
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"gone".to_vec(), None),
                (vec![], Some(vec![])),
                (b"long".to_vec(), Some(vec![7; 300])),
            ]
        );
        // Lengths of 300 take two varint bytes: 0xad 0x02 (301 = 300 + 1).
        let tail = &chunk[chunk.len() - 303..chunk.len() - 300];
        assert_eq!(tail, [b'g', 0xad, 0x02]);
    }

    #[test]
    fn framing_then_the_value_is_the_entry() {
        let value = vec![9; 200];
        let mut entry = framing(b"key", value.len());
        entry.extend_from_slice(&value);
        let mut put_entry = Vec::new();
        put(&mut put_entry, b"key", &value);
        assert_eq!(entry, put_entry);
    }

    #[test]
    fn malformed_chunks_are_refused() {
        for bad in [
            &[0x01][..],                           // a key of 1 byte, missing
            &[0x00, 0x05, 1, 2],                   // a value of 4 bytes, 2 there
            &[0x80],                               // a varint cut short
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0x01], // over 5 bytes
            &[0xff, 0xff, 0xff, 0xff, 0x1f],       // over 32 bits
        ] {
            let results: Vec<_> = entries(bad).collect();
            assert!(results.last().unwrap().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sort_orders_by_key_and_refuses_duplicates_and_tombstones() {
        let mut chunk = Vec::new();
        for key in ["pear", "apple", "fig", "a"] {
            put(&mut chunk, key.as_bytes(), key.len().to_string().as_bytes());
        }
        let sorted = sort(&chunk, false).unwrap();
        assert_eq!(sorted.entries, 4);
        let keys: Vec<Vec<u8>> = collect(&sorted.chunk).into_iter().map(|e| e.0).collect();
        assert_eq!(keys, [&b"a"[..], b"apple", b"fig", b"pear"]);
        put(&mut chunk, b"fig", b"again");
        let err = sort(&chunk, false).unwrap_err();
        assert_eq!(
            err.message(),
            "keyed state has key 'fig' twice in one key group"
        );
        let mut deleted = Vec::new();
        put_tombstone(&mut deleted, &[0xff, 0]);
        let err = sort(&deleted, false).unwrap_err();
        assert!(
            err.message().contains("tombstone (for key 0xff00)"),
            "{err}"
        );
        assert_eq!(sort(&deleted, true).unwrap().entries, 1);
    }

    proptest! {
        #[test]
        fn sorting_keeps_every_entry(
            map in proptest::collection::btree_map(
                proptest::collection::vec(any::<u8>(), 0..20),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
                0..60,
            ),
            seed in any::<u64>(),
        ) {
            let mut shuffled: Vec<_> = map.iter().collect();
            // A deterministic shuffle: order by a hash of the key and the seed.
            shuffled.sort_by_key(|(k, _)| crate::key_groups::key_group(
                &[&seed.to_le_bytes()[..], k].concat(), u32::MAX));
            let mut chunk = Vec::new();
            for (key, value) in shuffled {
                match value {
                    Some(v) => put(&mut chunk, key, v),
                    None => put_tombstone(&mut chunk, key),
                }
            }
            let sorted = sort(&chunk, true).unwrap();
            prop_assert_eq!(sorted.entries as usize, map.len());
            let expected: Vec<_> = map.into_iter().collect();
            prop_assert_eq!(collect(&sorted.chunk), expected);
        }
    }
}
