//! State bytes as stored: zstd-compressed, with an xxh3 checksum of the stored bytes verified
//! before anything is decompressed or handed to a guest. A whole blob ([`encode`], the state
//! of a `cairn:job@0.2.0` operator) or one segment of a state file ([`encode_parts`]).

use std::io::Read as _;
use std::io::Write;

use bytes::Bytes;

use super::StateError;

/// zstd level: 1 is the fastest and, on state, compresses nearly as well as the defaults.
const LEVEL: i32 = 1;
/// Raw bytes fed to the compressor per step: the compressed output is written on in pieces,
/// so a large state never has a whole compressed copy in memory.
pub const CHUNK: usize = 1 << 20;

/// Sizes and checksum of a stored blob.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlobInfo {
    pub raw_size: u64,
    pub stored_size: u64,
    pub checksum: u64,
}

/// Compresses `raw`, passing the compressed bytes to `sink` piece by piece.
pub fn encode(
    raw: &[u8],
    sink: impl FnMut(Bytes) -> Result<(), StateError>,
) -> Result<BlobInfo, StateError> {
    encode_parts([raw], sink)
}

/// Compresses the concatenation of `parts` as one zstd frame, passing the compressed bytes
/// to `sink` piece by piece: a state file's segment (a key group's chunk, the operator-wide
/// items with their framing) without first copying its parts together.
pub fn encode_parts<'a>(
    parts: impl IntoIterator<Item = &'a [u8]>,
    mut sink: impl FnMut(Bytes) -> Result<(), StateError>,
) -> Result<BlobInfo, StateError> {
    let corrupt = |e: std::io::Error| StateError::Corrupt {
        location: "zstd".into(),
        message: e.to_string(),
    };
    let parts: Vec<&[u8]> = parts.into_iter().collect();
    let raw_size: usize = parts.iter().map(|p| p.len()).sum();
    let mut encoder =
        zstd::stream::write::Encoder::new(Vec::with_capacity(CHUNK.min(raw_size) + 64), LEVEL)
            .map_err(corrupt)?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    if raw_size > 4 * CHUNK && threads > 1 {
        encoder.multithread(threads).map_err(corrupt)?;
    }
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    let mut stored = 0u64;
    let mut emit = |out: &mut Vec<u8>, sink: &mut dyn FnMut(Bytes) -> Result<(), StateError>| {
        if out.is_empty() {
            return Ok(());
        }
        let piece = Bytes::from(std::mem::replace(out, Vec::with_capacity(CHUNK)));
        hasher.update(&piece);
        stored += piece.len() as u64;
        sink(piece)
    };
    for chunk in parts.iter().flat_map(|part| part.chunks(CHUNK)) {
        encoder.write_all(chunk).map_err(corrupt)?;
        if encoder.get_ref().len() >= CHUNK {
            emit(encoder.get_mut(), &mut sink)?;
        }
    }
    let mut rest = encoder.finish().map_err(corrupt)?;
    emit(&mut rest, &mut sink)?;
    Ok(BlobInfo {
        raw_size: raw_size as u64,
        stored_size: stored,
        checksum: hasher.digest(),
    })
}

/// Checks a stored blob's size and checksum; `location` names it in errors.
pub fn verify(stored: &[u8], info: &BlobInfo, location: &str) -> Result<(), StateError> {
    if stored.len() as u64 != info.stored_size {
        return Err(StateError::Corrupt {
            location: location.to_owned(),
            message: format!(
                "{} bytes, expected {}: the file is truncated or replaced",
                stored.len(),
                info.stored_size
            ),
        });
    }
    if xxhash_rust::xxh3::xxh3_64(stored) != info.checksum {
        return Err(StateError::Checksum {
            location: location.to_owned(),
        });
    }
    Ok(())
}

/// Verifies and decompresses a stored blob; `location` names it in errors.
pub fn decode(stored: &[u8], info: &BlobInfo, location: &str) -> Result<Vec<u8>, StateError> {
    verify(stored, info, location)?;
    let corrupt = |e: std::io::Error| StateError::Corrupt {
        location: location.to_owned(),
        message: format!("cannot decompress: {e}"),
    };
    // Never inflate past the recorded size (one byte more shows a mismatch): a crafted
    // file must not decompress into all of memory.
    let mut raw = Vec::new();
    zstd::stream::read::Decoder::new(stored)
        .map_err(corrupt)?
        .take(info.raw_size.saturating_add(1))
        .read_to_end(&mut raw)
        .map_err(corrupt)?;
    if raw.len() as u64 != info.raw_size {
        return Err(StateError::Corrupt {
            location: location.to_owned(),
            message: format!(
                "{} bytes after decompression, expected {}",
                raw.len(),
                info.raw_size
            ),
        });
    }
    Ok(raw)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(raw: &[u8]) -> (Vec<u8>, BlobInfo) {
        let mut stored = Vec::new();
        let info = encode(raw, |piece| {
            stored.extend_from_slice(&piece);
            Ok(())
        })
        .unwrap();
        (stored, info)
    }

    #[test]
    fn encodes_in_pieces_and_decodes_exactly() {
        let raw: Vec<u8> = (0..6 * CHUNK as u64).map(|i| (i * 7 % 251) as u8).collect();
        let (stored, info) = round_trip(&raw);
        assert_eq!(info.raw_size, raw.len() as u64);
        assert_eq!(info.stored_size, stored.len() as u64);
        assert!(
            stored.len() < raw.len() / 10,
            "compresses: {}",
            stored.len()
        );
        assert_eq!(decode(&stored, &info, "x").unwrap(), raw);
        let (empty, info) = round_trip(&[]);
        assert_eq!(decode(&empty, &info, "x").unwrap(), Vec::<u8>::new());
    }

    #[test]
    fn any_flipped_byte_is_caught() {
        let raw = b"state of some operator ".repeat(100);
        let (stored, info) = round_trip(&raw);
        for i in [0, stored.len() / 2, stored.len() - 1] {
            let mut bad = stored.clone();
            bad[i] ^= 0x20;
            assert!(matches!(
                decode(&bad, &info, "f"),
                Err(StateError::Checksum { .. })
            ));
        }
        let err = decode(&stored[..stored.len() - 1], &info, "f").unwrap_err();
        assert!(err.to_string().contains("truncated"), "{err}");
    }
}
