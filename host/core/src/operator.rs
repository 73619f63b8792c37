//! The host's view of operator code: something that opens operator instances and feeds them
//! batches. Job components implement it through wasmtime (crate `cairn-wasm`); the benchmark's
//! native baseline implements it with the same operators compiled natively.

use std::time::Duration;

use cairn_wire::timers::TimeDomain;
use cairn_wire::{Context, KeyedChunk, PackedBatch, Snapshot};

use crate::timer_service::TimerService;

/// Why a call into operator code failed. Every variant is a task failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OperatorError {
    /// The operator returned an `err` result.
    #[error("the operator returned an error: {0}")]
    Failed(String),
    /// The guest trapped (a panic, an `unreachable`, an out-of-bounds access, …).
    #[error("guest trapped: {0}")]
    Trap(String),
    /// One call ran past `wasm.call-timeout`.
    #[error("guest call ran longer than wasm.call-timeout ({0:?}) and was interrupted")]
    Timeout(Duration),
    /// The guest tried to grow its memory beyond `wasm.memory-limit`.
    #[error("guest exceeded wasm.memory-limit ({})", indicatif::HumanBytes(*.0))]
    MemoryLimit(u64),
    /// The host could not run the guest (instantiation, resource limits of the host).
    #[error("{0}")]
    Host(String),
}

/// Opens operator instances; shared by every subtask thread of a job.
pub trait OperatorFactory: Send + Sync {
    /// Creates the instance of operator `name` for the subtask `ctx` describes.
    fn open(&self, ctx: &Context, name: &str) -> Result<Box<dyn OperatorInstance>, OperatorError>;
}

/// One running operator subtask. Lives on, and is called from, one thread. The calls are
/// those of `cairn:job@0.3.0`'s `operator` resource (see `wit/cairn-job.wit`), and timers:
/// the calls that emit may register and delete timers with the subtask's [`TimerService`].
pub trait OperatorInstance {
    /// `key_groups`: each record's key group on a by-key input, else empty.
    fn process(
        &mut self,
        input: u32,
        batch: PackedBatch,
        key_groups: &[u16],
        timers: &mut TimerService,
    ) -> Result<PackedBatch, OperatorError>;
    /// Timers of `domain` fired, in order: a record per timer (its key, no value, the
    /// timer's timestamp) and each one's key group. Only an operator that registered timers
    /// gets this call.
    fn on_timers(
        &mut self,
        domain: TimeDomain,
        fired: PackedBatch,
        key_groups: &[u16],
        timers: &mut TimerService,
    ) -> Result<PackedBatch, OperatorError> {
        let _ = (domain, fired, key_groups, timers);
        Err(OperatorError::Host(
            "timers fired for an operator that cannot have registered any".into(),
        ))
    }
    fn finish(&mut self, timers: &mut TimerService) -> Result<PackedBatch, OperatorError>;
    /// The operator's state for checkpoint `checkpoint`.
    fn snapshot(&mut self, checkpoint: u64) -> Result<Snapshot, OperatorError>;
    /// Adds keyed state of a snapshot (maybe other subtasks', another code version's),
    /// before [`restore`](Self::restore).
    fn restore_keyed(&mut self, version: u32, chunks: Vec<KeyedChunk>)
    -> Result<(), OperatorError>;
    /// Restores operator-wide state, last: the restore is complete. Before any `process`.
    fn restore(&mut self, version: u32, items: Vec<Vec<u8>>) -> Result<(), OperatorError>;
    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), OperatorError>;
}
