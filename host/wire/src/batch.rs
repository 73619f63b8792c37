use std::fmt::{self, Write as _};

use crate::{Error, Result};

/// Marks a record without a timestamp in a batch where others have one.
pub const NO_TIMESTAMP: i64 = i64::MIN;

/// A batch of records in the wire encoding of `cairn:job/types.packed-batch`: one buffer for
/// every key and value, `2n` end offsets, and no or `n` timestamps.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedBatch {
    pub data: Vec<u8>,
    pub offsets: Vec<u32>,
    pub timestamps: Vec<i64>,
}

impl PackedBatch {
    /// Number of records.
    pub fn len(&self) -> usize {
        self.offsets.len() / 2
    }

    pub fn is_empty(&self) -> bool {
        self.offsets.is_empty()
    }

    /// Checks the encoding once, so that iteration can slice without failing, and returns
    /// an iterator over the records, tagged with the input they arrived on.
    pub fn records(&self, input: u32) -> Result<Records<'_>> {
        self.records_in_key_groups(input, &[])
    }

    /// Like [`records`](Self::records), for a batch of a by-key input: `key_groups` has each
    /// record's key group (or is empty, on other inputs).
    pub fn records_in_key_groups<'a>(
        &'a self,
        input: u32,
        key_groups: &'a [u16],
    ) -> Result<Records<'a>> {
        let n = self.len();
        if !key_groups.is_empty() && key_groups.len() != n {
            return Err(Error::msg(
                "malformed batch: key groups do not match records",
            ));
        }
        if !self.offsets.len().is_multiple_of(2) {
            return Err(Error::msg("malformed batch: odd number of offsets"));
        }
        if !self.timestamps.is_empty() && self.timestamps.len() != n {
            return Err(Error::msg(
                "malformed batch: timestamps do not match records",
            ));
        }
        let mut previous = 0;
        for &end in &self.offsets {
            if end < previous || end as usize > self.data.len() {
                return Err(Error::msg("malformed batch: offsets out of order or range"));
            }
            previous = end;
        }
        Ok(Records {
            batch: self,
            input,
            key_groups,
            next: 0,
        })
    }
}

/// One record of a batch, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Record<'a> {
    input: u32,
    key: &'a [u8],
    value: &'a [u8],
    timestamp: Option<i64>,
    key_group: Option<u16>,
}

impl<'a> Record<'a> {
    /// The index of the input (in the node's `inputs`) this record arrived on.
    pub fn input(&self) -> u32 {
        self.input
    }

    /// The key; `None` for a record without one.
    pub fn key(&self) -> Option<&'a [u8]> {
        (!self.key.is_empty()).then_some(self.key)
    }

    /// The key as UTF-8 text (empty for a record without a key).
    pub fn key_str(&self) -> Result<&'a str> {
        std::str::from_utf8(self.key).map_err(|e| Error::msg(format!("key is not UTF-8: {e}")))
    }

    pub fn value(&self) -> &'a [u8] {
        self.value
    }

    /// The value as UTF-8 text.
    pub fn value_str(&self) -> Result<&'a str> {
        std::str::from_utf8(self.value).map_err(|e| Error::msg(format!("value is not UTF-8: {e}")))
    }

    /// Milliseconds since the Unix epoch, if the record has a timestamp.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// The key group of the record's key, as the host computed it: known on by-key inputs
    /// only.
    pub fn key_group(&self) -> Option<u16> {
        self.key_group
    }
}

/// The records of a [`PackedBatch`], in order.
pub struct Records<'a> {
    batch: &'a PackedBatch,
    input: u32,
    key_groups: &'a [u16],
    next: usize,
}

impl<'a> Iterator for Records<'a> {
    type Item = Record<'a>;

    fn next(&mut self) -> Option<Record<'a>> {
        let i = self.next;
        let offsets = &self.batch.offsets;
        if 2 * i + 1 >= offsets.len() {
            return None;
        }
        self.next += 1;
        let start = if i == 0 {
            0
        } else {
            offsets[2 * i - 1] as usize
        };
        let key_end = offsets[2 * i] as usize;
        let value_end = offsets[2 * i + 1] as usize;
        let timestamp = self
            .batch
            .timestamps
            .get(i)
            .copied()
            .filter(|&t| t != NO_TIMESTAMP);
        Some(Record {
            input: self.input,
            key: &self.batch.data[start..key_end],
            value: &self.batch.data[key_end..value_end],
            timestamp,
            key_group: self.key_groups.get(i).copied(),
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.batch.len() - self.next;
        (left, Some(left))
    }
}

/// Collects the records an operator emits into the batch returned to the host.
#[derive(Debug, Default)]
pub struct Emitter {
    batch: PackedBatch,
}

impl Emitter {
    /// Emits a record without a key.
    pub fn emit(&mut self, value: impl AsRef<[u8]>) {
        self.emit_keyed([], value);
    }

    /// Emits a keyed record: `by-key` partitioning downstream routes on `key`.
    pub fn emit_keyed(&mut self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) {
        self.push_key(key.as_ref());
        self.batch.data.extend_from_slice(value.as_ref());
        self.end_value(None);
    }

    /// Emits a keyless record whose value is formatted in place, without an intermediate
    /// `String`: `out.emit_fmt(format_args!("{word}\t{n}"))`.
    pub fn emit_fmt(&mut self, value: fmt::Arguments<'_>) {
        self.push_key(&[]);
        // Writing into a Vec<u8> through this adapter cannot fail.
        let _ = ByteWriter(&mut self.batch.data).write_fmt(value);
        self.end_value(None);
    }

    /// Emits a keyless record whose value is written in pieces, straight into the batch —
    /// faster than [`emit_fmt`](Self::emit_fmt) where `core::fmt`'s machinery dominates
    /// (text and integers): `out.emit_parts(|v| { v.str(word).byte(b'\t').u64(n); })`.
    pub fn emit_parts(&mut self, write: impl FnOnce(&mut ValueWriter<'_>)) {
        self.emit_keyed_parts([], write);
    }

    /// Emits a keyed record whose value is written in pieces, as
    /// [`emit_parts`](Self::emit_parts) does:
    /// `out.emit_keyed_parts(word, |v| { v.str(word).byte(b'\t').u64(n); })`.
    pub fn emit_keyed_parts(
        &mut self,
        key: impl AsRef<[u8]>,
        write: impl FnOnce(&mut ValueWriter<'_>),
    ) {
        self.push_key(key.as_ref());
        write(&mut ValueWriter(&mut self.batch.data));
        self.end_value(None);
    }

    /// Emits a keyed record carrying a timestamp (milliseconds since the Unix epoch).
    pub fn emit_with_timestamp(
        &mut self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        timestamp: i64,
    ) {
        self.push_key(key.as_ref());
        self.batch.data.extend_from_slice(value.as_ref());
        self.end_value(Some(timestamp));
    }

    /// Copies a record, with its key and timestamp, as it is.
    pub fn push(&mut self, record: &Record<'_>) {
        self.push_key(record.key);
        self.batch.data.extend_from_slice(record.value);
        self.end_value(record.timestamp);
    }

    /// Gives the records emitted from the `first`-th on (counting from 0 since the last
    /// [`take`](Self::take)) the timestamp `timestamp`, whatever they had: what a window
    /// does to its results (Flink stamps them with the window's last millisecond).
    pub fn set_timestamps_from(&mut self, first: usize, timestamp: i64) {
        let n = self.batch.len();
        if first >= n {
            return;
        }
        self.batch.timestamps.resize(n, NO_TIMESTAMP);
        self.batch.timestamps[first..].fill(timestamp);
    }

    /// Bytes of keys and values emitted so far.
    pub fn size_bytes(&self) -> usize {
        self.batch.data.len()
    }

    /// Number of records emitted so far.
    pub fn len(&self) -> usize {
        self.batch.len()
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }

    /// Takes the records emitted so far, leaving the emitter empty with room for as many.
    pub fn take(&mut self) -> PackedBatch {
        let batch = PackedBatch {
            data: Vec::with_capacity(self.batch.data.len()),
            offsets: Vec::with_capacity(self.batch.offsets.len()),
            timestamps: Vec::new(),
        };
        std::mem::replace(&mut self.batch, batch)
    }

    #[inline]
    fn push_key(&mut self, key: &[u8]) {
        self.batch.data.extend_from_slice(key);
        self.batch.offsets.push(end_offset(&self.batch.data));
    }

    #[inline]
    fn end_value(&mut self, timestamp: Option<i64>) {
        self.batch.offsets.push(end_offset(&self.batch.data));
        let n = self.batch.len();
        match timestamp {
            Some(t) => {
                // The first timestamp in a batch back-fills "none" for the records before it.
                self.batch.timestamps.resize(n - 1, NO_TIMESTAMP);
                self.batch.timestamps.push(t);
            }
            None if !self.batch.timestamps.is_empty() => self.batch.timestamps.push(NO_TIMESTAMP),
            None => {}
        }
    }
}

fn end_offset(data: &[u8]) -> u32 {
    // A batch is bounded far below 4 GiB by the host's memory limit; crossing it is a bug.
    u32::try_from(data.len()).expect("batch larger than 4 GiB")
}

/// Appends the pieces of one record's value; see [`Emitter::emit_parts`].
pub struct ValueWriter<'a>(&'a mut Vec<u8>);

impl ValueWriter<'_> {
    #[inline]
    pub fn bytes(&mut self, bytes: &[u8]) -> &mut Self {
        self.0.extend_from_slice(bytes);
        self
    }

    #[inline]
    pub fn str(&mut self, text: &str) -> &mut Self {
        self.bytes(text.as_bytes())
    }

    #[inline]
    pub fn byte(&mut self, byte: u8) -> &mut Self {
        self.0.push(byte);
        self
    }

    /// The number in decimal.
    #[inline]
    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.bytes(itoa::Buffer::new().format(n).as_bytes())
    }

    /// The number in decimal.
    #[inline]
    pub fn i64(&mut self, n: i64) -> &mut Self {
        self.bytes(itoa::Buffer::new().format(n).as_bytes())
    }
}

struct ByteWriter<'a>(&'a mut Vec<u8>);

impl fmt::Write for ByteWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0.extend_from_slice(s.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emitted_records_read_back_in_order() {
        let mut out = Emitter::default();
        out.emit_keyed("k1", "v1");
        out.emit("plain");
        out.emit_fmt(format_args!("{}\t{}", "w", 3));
        out.emit_parts(|v| {
            v.str("w").byte(b'\t').u64(3).bytes(b" ").i64(-4);
        });
        out.emit_keyed("", "");
        out.emit_keyed_parts("w", |v| {
            v.str("w").byte(b'\t').u64(4);
        });
        let batch = out.take();
        assert!(out.is_empty());
        let records: Vec<_> = batch.records(2).unwrap().collect();
        assert_eq!(records.len(), 6);
        assert_eq!(records[0].key(), Some(&b"k1"[..]));
        assert_eq!(records[0].value_str().unwrap(), "v1");
        assert_eq!(records[1].key(), None);
        assert_eq!(records[2].value(), b"w\t3");
        assert_eq!(records[3].value(), b"w\t3 -4");
        assert_eq!(records[3].key(), None);
        assert_eq!(records[4].value(), b"");
        assert_eq!(records[5].key(), Some(&b"w"[..]));
        assert_eq!(records[5].value(), b"w\t4");
        assert!(
            records
                .iter()
                .all(|r| r.input() == 2 && r.timestamp().is_none())
        );
        assert!(batch.timestamps.is_empty());

        let mut copy = Emitter::default();
        records.iter().for_each(|r| copy.push(r));
        assert_eq!(copy.size_bytes(), batch.data.len());
        assert_eq!(copy.take(), batch);
    }

    #[test]
    fn timestamps_are_back_filled() {
        let mut out = Emitter::default();
        out.emit("a");
        out.emit_with_timestamp("k", "b", 42);
        out.emit("c");
        let batch = out.take();
        let ts: Vec<_> = batch.records(0).unwrap().map(|r| r.timestamp()).collect();
        assert_eq!(ts, vec![None, Some(42), None]);
        let mut copy = Emitter::default();
        batch.records(0).unwrap().for_each(|r| copy.push(&r));
        assert_eq!(copy.take(), batch);
    }

    #[test]
    fn records_are_stamped_from_a_mark_on() {
        let mut out = Emitter::default();
        out.emit("a");
        out.set_timestamps_from(1, 7);
        out.emit_with_timestamp("k", "b", 42);
        out.emit("c");
        out.set_timestamps_from(1, 9);
        let batch = out.take();
        let ts: Vec<_> = batch.records(0).unwrap().map(|r| r.timestamp()).collect();
        assert_eq!(ts, vec![None, Some(9), Some(9)]);
    }

    proptest::proptest! {
        #[test]
        fn any_records_round_trip(
            records in proptest::collection::vec(
                (
                    proptest::collection::vec(proptest::num::u8::ANY, 0..12),
                    proptest::collection::vec(proptest::num::u8::ANY, 0..40),
                    proptest::option::of((i64::MIN + 1)..i64::MAX),
                ),
                0..200,
            )
        ) {
            let mut out = Emitter::default();
            for (key, value, timestamp) in &records {
                match timestamp {
                    Some(t) => out.emit_with_timestamp(key, value, *t),
                    None => out.emit_keyed(key, value),
                }
            }
            let batch = out.take();
            proptest::prop_assert_eq!(batch.len(), records.len());
            let read: Vec<_> = batch
                .records(0)
                .unwrap()
                .map(|r| (r.key().unwrap_or_default().to_vec(), r.value().to_vec(), r.timestamp()))
                .collect();
            proptest::prop_assert_eq!(read, records);
        }
    }

    #[test]
    fn malformed_batches_are_refused() {
        let odd = PackedBatch {
            data: b"ab".to_vec(),
            offsets: vec![1],
            timestamps: vec![],
        };
        assert!(odd.records(0).is_err());
        let out_of_range = PackedBatch {
            data: b"ab".to_vec(),
            offsets: vec![1, 3],
            timestamps: vec![],
        };
        assert!(out_of_range.records(0).is_err());
        let backwards = PackedBatch {
            data: b"ab".to_vec(),
            offsets: vec![2, 1],
            timestamps: vec![],
        };
        assert!(backwards.records(0).is_err());
        let bad_ts = PackedBatch {
            data: b"ab".to_vec(),
            offsets: vec![1, 2],
            timestamps: vec![1, 2],
        };
        assert!(bad_ts.records(0).is_err());
    }
}
