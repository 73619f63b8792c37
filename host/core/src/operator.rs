//! The host's view of operator code: something that opens operator instances and feeds them
//! batches. Job components implement it through wasmtime (crate `cairn-wasm`); the benchmark's
//! native baseline implements it with the same operators compiled natively.

use std::time::Duration;

use cairn_wire::timers::TimeDomain;
use cairn_wire::{Context, KeyedChunk, PackedBatch, Snapshot};

use crate::timer_service::TimerService;

/// The longest side output or counter name.
pub const MAX_NAME: usize = 64;

/// Whether `name` can name a side output: 1 to [`MAX_NAME`] characters.
pub fn is_side_output_name(name: &str) -> bool {
    !name.is_empty() && name.chars().count() <= MAX_NAME
}

/// What an operator's call may do besides returning records (Flink's
/// `ProcessFunction.Context`): use its timers, emit to side outputs, add to its counters.
/// The subtask keeps one; the runtime routes what a call emitted and counted after it.
#[derive(Debug)]
pub struct CallContext {
    pub timers: TimerService,
    side_outputs: Vec<(String, PackedBatch)>,
    counters: Vec<(String, u64)>,
}

/// Adds `delta` to counter `name` of `counters`, appending it if it is new.
pub(crate) fn add_count(counters: &mut Vec<(String, u64)>, name: String, delta: u64) {
    match counters.iter_mut().find(|(n, _)| *n == name) {
        Some((_, total)) => *total = total.saturating_add(delta),
        None => counters.push((name, delta)),
    }
}

/// A side output or counter name that is empty or too long, or a counter name with other
/// characters than ASCII letters, digits and `_` (what a Prometheus name takes as it is).
#[derive(Debug, thiserror::Error)]
#[error(
    "{what} name {name:?} is not allowed: names are 1 to {MAX_NAME} characters{rule}",
    rule = if *.what == "counter" { " (ASCII letters, digits and `_`)" } else { "" }
)]
pub struct BadName {
    what: &'static str,
    name: String,
}

impl CallContext {
    pub fn new(timers: TimerService) -> Self {
        CallContext {
            timers,
            side_outputs: Vec::new(),
            counters: Vec::new(),
        }
    }

    /// Emits `batch` to side output `name`.
    pub fn emit_side(&mut self, name: String, batch: PackedBatch) -> Result<(), BadName> {
        if !is_side_output_name(&name) {
            return Err(BadName {
                what: "side output",
                name,
            });
        }
        if !batch.is_empty() {
            self.side_outputs.push((name, batch));
        }
        Ok(())
    }

    /// Adds `delta` to counter `name`.
    pub fn count(&mut self, name: String, delta: u64) -> Result<(), BadName> {
        let allowed = |c: char| c.is_ascii_alphanumeric() || c == '_';
        if name.is_empty() || name.len() > MAX_NAME || !name.chars().all(allowed) {
            return Err(BadName {
                what: "counter",
                name,
            });
        }
        add_count(&mut self.counters, name, delta);
        Ok(())
    }

    /// What the calls since the last take emitted to side outputs, in order.
    pub fn take_side_outputs(&mut self) -> Vec<(String, PackedBatch)> {
        std::mem::take(&mut self.side_outputs)
    }

    /// What the calls since the last take added to each counter.
    pub fn take_counters(&mut self) -> Vec<(String, u64)> {
        std::mem::take(&mut self.counters)
    }
}

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
/// those of `cairn:job@0.4.0`'s `operator` resource (see `wit/cairn-job.wit`); the calls that
/// emit get the subtask's [`CallContext`] (timers, side outputs, counters).
pub trait OperatorInstance {
    /// `key_groups`: each record's key group on a by-key input, else empty.
    fn process(
        &mut self,
        input: u32,
        batch: PackedBatch,
        key_groups: &[u16],
        ctx: &mut CallContext,
    ) -> Result<PackedBatch, OperatorError>;
    /// Timers of `domain` fired, in order: a record per timer (its key, no value, the
    /// timer's timestamp) and each one's key group. Only an operator that registered timers
    /// gets this call.
    fn on_timers(
        &mut self,
        domain: TimeDomain,
        fired: PackedBatch,
        key_groups: &[u16],
        ctx: &mut CallContext,
    ) -> Result<PackedBatch, OperatorError> {
        let _ = (domain, fired, key_groups, ctx);
        Err(OperatorError::Host(
            "timers fired for an operator that cannot have registered any".into(),
        ))
    }
    fn finish(&mut self, ctx: &mut CallContext) -> Result<PackedBatch, OperatorError>;
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
