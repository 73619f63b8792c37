//! How big a batch grows before it is handed on: the same limits for sources and for
//! operator outputs, so that a channel's capacity bounds its memory.

use cairn_wire::Emitter;

/// A batch is handed on once it holds this many records…
pub const MAX_BATCH_RECORDS: usize = 1024;
/// …or this many bytes of keys and values.
pub const MAX_BATCH_BYTES: usize = 64 * 1024;

/// Whether a batch being built should be handed on.
pub fn batch_full(batch: &Emitter) -> bool {
    batch.len() >= MAX_BATCH_RECORDS || batch.size_bytes() >= MAX_BATCH_BYTES
}
