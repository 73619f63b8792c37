//! The types both sides of the `cairn:job` contract (`wit/cairn-job.wit`) use: the host
//! (`cairn-core`, `cairn-wasm`) and the Rust guest SDK (`cairn-sdk`, which re-exports them).
//!
//! - [`batch`]: the packed-batch codec — [`PackedBatch`], built by an [`Emitter`], read as
//!   [`Records`]. The other SDKs implement the same encoding, checked against the golden
//!   vectors in `wit/vectors/`.
//! - [`graph`]: the job graph a job describes ([`JobGraph`], [`Node`], [`Partitioning`]) and
//!   its builder.
//! - [`operator`]: where an operator instance runs ([`Context`]) and its checkpointed
//!   [`Snapshot`].
//! - [`key_groups`]: how keys map to key groups and key groups to subtasks.
//! - [`keyed`]: the keyed-state chunk encoding, shared by the SDKs and the host.
//! - [`timers`]: timers per key ([`TimerQueue`]), fired in order and checkpointed per key
//!   group in the keyed-state chunk encoding.

pub mod batch;
mod error;
pub mod graph;
pub mod key_groups;
pub mod keyed;
pub mod operator;
pub mod timers;

pub use batch::{Emitter, PackedBatch, Record, Records, ValueWriter};
pub use error::{Error, Result};
pub use graph::{
    Input, JobGraph, KafkaUrl, Node, NodeKind, Partitioning, Sink, Source, Stream,
    WatermarkStrategy,
};
pub use key_groups::KeyGroupRange;
pub use operator::{Context, KeyedChunk, OperatorStateMode, Snapshot, ValueEncoding};
pub use timers::{TimeDomain, Timer, TimerQueue};
