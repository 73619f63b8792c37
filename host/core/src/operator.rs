//! The host's view of operator code: something that opens operator instances and feeds them
//! batches. Job components implement it through wasmtime (crate `cairn-wasm`); the benchmark's
//! native baseline implements it with the same operators compiled natively.

use std::time::Duration;

use cairn_wire::{Context, PackedBatch, State};

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

/// One running operator subtask. Lives on, and is called from, one thread.
pub trait OperatorInstance {
    fn process(&mut self, input: u32, batch: PackedBatch) -> Result<PackedBatch, OperatorError>;
    fn finish(&mut self) -> Result<PackedBatch, OperatorError>;
    /// The operator's whole state for checkpoint `checkpoint` (empty data: no state).
    fn snapshot(&mut self, checkpoint: u64) -> Result<State, OperatorError>;
    /// Replaces the state with a snapshot's (maybe another code version's), before any
    /// `process`.
    fn restore(&mut self, state: State) -> Result<(), OperatorError>;
    fn checkpoint_complete(&mut self, checkpoint: u64) -> Result<(), OperatorError>;
}
