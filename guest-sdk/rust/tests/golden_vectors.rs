//! The packed-batch golden vectors, `wit/vectors/packed-batch.txt`, shared by every SDK's
//! tests. This SDK is the reference: the vectors are its encoding of the records below, and
//! `CAIRN_WRITE_VECTORS=1 cargo test -p cairn-sdk --test golden_vectors` rewrites the file
//! from them. Otherwise the file must be exactly what it would write, and every vector in it
//! must encode and decode here as in every other SDK. The format is in
//! `wit/vectors/README.md`.

use std::sync::OnceLock;

use cairn_sdk::{Emitter, PackedBatch};
use vectors_syntax::{bytes, hex};

mod vectors_syntax;

/// Marks "no timestamp" in a batch where other records have one.
const NO_TIMESTAMP: i64 = i64::MIN;

/// One record as the vectors give it: key (`None`: no key), value, timestamp.
type Rec = (Option<Vec<u8>>, Vec<u8>, Option<i64>);

fn keyless(value: impl AsRef<[u8]>, timestamp: Option<i64>) -> Rec {
    (None, value.as_ref().to_vec(), timestamp)
}

fn keyed(key: impl AsRef<[u8]>, value: impl AsRef<[u8]>, timestamp: Option<i64>) -> Rec {
    (
        Some(key.as_ref().to_vec()),
        value.as_ref().to_vec(),
        timestamp,
    )
}

/// The records of every vector, in the file's order.
fn vectors() -> Vec<(&'static str, Vec<Rec>)> {
    let many = (0..300i64)
        .map(|i| {
            let key = (i % 3 != 0).then(|| format!("key-{}", i % 17).into_bytes());
            let value = format!("value-{i};").repeat((i % 4) as usize).into_bytes();
            let timestamp = (i % 5 != 0).then_some(1_700_000_000_000 + 1000 * i);
            (key, value, timestamp)
        })
        .collect();
    vec![
        ("empty", vec![]),
        ("one-keyless-record", vec![keyless(b"hello", None)]),
        (
            "one-keyed-record",
            vec![keyed(b"user-42", b"clicked", None)],
        ),
        (
            "empty-key-is-no-key",
            vec![keyless(b"a", None), keyed(b"", b"b", None)],
        ),
        (
            "empty-values",
            vec![
                keyed(b"k", b"", None),
                keyless(b"", None),
                keyless(b"v", None),
            ],
        ),
        (
            "non-utf8-bytes",
            vec![
                keyed(b"\xff\xfe\x00", b"\x80\xc0\xff\x00\n", None),
                keyless(b"\xed\xa0\x80", None),
            ],
        ),
        (
            "multibyte-utf8",
            vec![
                keyed("日本".as_bytes(), "naïve 🚀 ½".as_bytes(), None),
                keyless("\u{10ffff}\u{80}\u{ffff}".as_bytes(), None),
            ],
        ),
        (
            "all-timestamped",
            vec![
                keyed(b"a", b"1", Some(1_700_000_000_000)),
                keyless(b"2", Some(0)),
            ],
        ),
        (
            "mixed-timestamps",
            vec![
                keyless(b"a", None),
                keyless(b"b", None),
                keyed(b"k", b"c", Some(42)),
                keyless(b"d", None),
                keyed(b"k", b"e", Some(0)),
            ],
        ),
        (
            "negative-timestamps",
            vec![
                keyless(b"a", Some(-1)),
                keyless(b"b", Some(-86_400_000)),
                keyless(b"c", Some(-62_135_596_800_000)),
            ],
        ),
        (
            "timestamps-at-2^53-1",
            vec![
                keyless(b"a", Some((1 << 53) - 1)),
                keyless(b"b", Some(-((1 << 53) - 1))),
            ],
        ),
        (
            "extreme-timestamps",
            vec![
                keyless(b"max", Some(i64::MAX)),
                keyless(b"none", None),
                keyless(b"min+1", Some(i64::MIN + 1)),
            ],
        ),
        ("many-records", many),
    ]
}

/// Encodings every decoder must refuse: (name, data, offsets, timestamps).
fn malformed() -> Vec<(&'static str, &'static str, Vec<u32>, Vec<i64>)> {
    vec![
        ("odd-offset-count", "ab", vec![1], vec![]),
        (
            "odd-offset-count-after-a-record",
            "abc",
            vec![1, 2, 3],
            vec![],
        ),
        ("offsets-decreasing", "abcd", vec![2, 1], vec![]),
        (
            "offsets-decreasing-across-records",
            "abcd",
            vec![1, 3, 2, 4],
            vec![],
        ),
        ("key-end-past-data", "ab", vec![3, 3], vec![]),
        ("value-end-past-data", "ab", vec![1, 3], vec![]),
        ("offsets-without-data", "", vec![0, 1], vec![]),
        ("more-timestamps-than-records", "ab", vec![1, 2], vec![1, 2]),
        (
            "fewer-timestamps-than-records",
            "ab",
            vec![1, 1, 2, 2],
            vec![5],
        ),
        ("timestamps-without-records", "", vec![], vec![7]),
    ]
}

/// This SDK's encoding of `records`, through the emitter's methods an operator would use.
fn encode(records: &[Rec]) -> PackedBatch {
    let mut out = Emitter::default();
    for (key, value, timestamp) in records {
        match (key, timestamp) {
            (None, None) => out.emit(value),
            (Some(key), None) => out.emit_keyed(key, value),
            (key, Some(t)) => out.emit_with_timestamp(key.as_deref().unwrap_or(b""), value, *t),
        }
    }
    out.take()
}

/// The records of `batch` as this SDK decodes them.
fn decode(batch: &PackedBatch) -> cairn_sdk::Result<Vec<Rec>> {
    Ok(batch
        .records(0)?
        .map(|r| {
            (
                r.key().map(<[u8]>::to_vec),
                r.value().to_vec(),
                r.timestamp(),
            )
        })
        .collect())
}

fn joined<T: ToString>(prefix: &str, items: &[T]) -> String {
    let mut line = prefix.to_owned();
    for item in items {
        line.push(' ');
        line.push_str(&item.to_string());
    }
    line
}

fn push_encoding(text: &mut String, batch: &PackedBatch) {
    text.push_str(&format!("data {}\n", hex(&batch.data)));
    text.push_str(&joined("offsets", &batch.offsets));
    text.push('\n');
    text.push_str(&joined("timestamps", &batch.timestamps));
    text.push_str("\nend\n");
}

/// The vectors file as this SDK's encoding of `vectors()` and `malformed()` makes it.
fn render() -> String {
    let mut text = String::from(
        "# Golden vectors of the packed-batch encoding (cairn:job/types.packed-batch); the\n\
         # format is in README.md beside this file. Generated by the Rust SDK, the reference:\n\
         #   CAIRN_WRITE_VECTORS=1 cargo test -p cairn-sdk --test golden_vectors\n\
         # Do not edit by hand.\n",
    );
    for (name, records) in vectors() {
        text.push_str(&format!("\nvector {name}\n"));
        for (key, value, timestamp) in &records {
            let key = key.as_deref().map_or_else(|| "none".to_owned(), hex);
            let timestamp = timestamp.map_or_else(|| "none".to_owned(), |t| t.to_string());
            text.push_str(&format!("record {key} {} {timestamp}\n", hex(value)));
        }
        push_encoding(&mut text, &encode(&records));
    }
    for (name, data, offsets, timestamps) in malformed() {
        text.push_str(&format!("\nmalformed {name}\n"));
        let batch = PackedBatch {
            data: data.as_bytes().to_vec(),
            offsets,
            timestamps,
        };
        assert!(
            decode(&batch).is_err(),
            "malformed vector {name} must be refused by the reference decoder"
        );
        push_encoding(&mut text, &batch);
    }
    text
}

const FILE: &str = "packed-batch.txt";

fn vectors_file() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    vectors_syntax::read(&TEXT, FILE, render)
}

#[test]
fn the_vectors_file_is_the_reference_encoding() {
    assert!(
        vectors_file() == render(),
        "{} is not the Rust SDK's encoding of the vectors in this test: regenerate it with \
         `CAIRN_WRITE_VECTORS=1 cargo test -p cairn-sdk --test golden_vectors` (and make every \
         SDK pass it), never by hand",
        vectors_syntax::path(FILE).display()
    );
}

// What follows reads the file as every other SDK's tests do.

struct Vector {
    name: String,
    /// `None` for a malformed encoding.
    records: Option<Vec<Rec>>,
    encoded: PackedBatch,
}

fn parse(text: &str) -> Vec<Vector> {
    let mut found = Vec::new();
    let mut current: Option<Vector> = None;
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut tokens = line.split(' ');
        let directive = tokens.next().unwrap_or_default();
        let rest: Vec<&str> = tokens.collect();
        if directive == "vector" || directive == "malformed" {
            assert!(current.is_none(), "{line}: the previous vector has no end");
            current = Some(Vector {
                name: rest.join(" "),
                records: (directive == "vector").then(Vec::new),
                encoded: PackedBatch::default(),
            });
            continue;
        }
        let vector = current.as_mut().expect("a line outside a vector");
        match directive {
            "record" => {
                let [key, value, timestamp] = rest[..] else {
                    panic!("{line}: a record is key, value, timestamp");
                };
                let key = (key != "none").then(|| bytes(key));
                let timestamp = (timestamp != "none").then(|| timestamp.parse().expect("an i64"));
                let records = vector
                    .records
                    .as_mut()
                    .expect("records in a malformed vector");
                records.push((key, bytes(value), timestamp));
            }
            "data" => vector.encoded.data = bytes(rest[0]),
            "offsets" => {
                vector.encoded.offsets = rest.iter().map(|t| t.parse().expect("a u32")).collect();
            }
            "timestamps" => {
                vector.encoded.timestamps =
                    rest.iter().map(|t| t.parse().expect("an i64")).collect();
            }
            "end" => found.extend(current.take()),
            _ => panic!("unknown line {line}"),
        }
    }
    assert!(current.is_none(), "the last vector has no end");
    found
}

fn read_vectors() -> Vec<Vector> {
    parse(vectors_file())
}

#[test]
fn every_vector_encodes_and_decodes_exactly() {
    let vectors = read_vectors();
    let mut checked = 0;
    for vector in &vectors {
        let Some(records) = &vector.records else {
            continue;
        };
        let name = &vector.name;
        assert_eq!(encode(records), vector.encoded, "encoding vector {name}");
        // The encoding does not tell an empty key from none: both read back as none.
        let expected: Vec<Rec> = records
            .iter()
            .map(|(key, value, timestamp)| {
                let key = key.clone().filter(|k| !k.is_empty());
                (key, value.clone(), *timestamp)
            })
            .collect();
        let decoded = decode(&vector.encoded).expect("a vector decodes");
        assert_eq!(decoded, expected, "decoding vector {name}");
        // Passing records on as they are gives the same batch.
        let mut copy = Emitter::default();
        for record in vector.encoded.records(0).expect("a vector decodes") {
            copy.push(&record);
        }
        assert_eq!(copy.take(), vector.encoded, "copying vector {name}");
        checked += 1;
    }
    assert!(checked >= 10, "only {checked} vectors found");
}

#[test]
fn every_malformed_encoding_is_refused() {
    let vectors = read_vectors();
    let malformed: Vec<_> = vectors.iter().filter(|v| v.records.is_none()).collect();
    assert!(malformed.len() >= 5, "only {} malformed", malformed.len());
    for vector in malformed {
        assert!(
            decode(&vector.encoded).is_err(),
            "malformed vector {} was accepted",
            vector.name
        );
    }
}

#[test]
fn no_timestamp_is_the_smallest_s64() {
    // The vectors write the marker as a number: every SDK must read it as "none".
    let batch = encode(&[keyless(b"a", None), keyless(b"b", Some(1))]);
    assert_eq!(batch.timestamps, vec![NO_TIMESTAMP, 1]);
}
