//! Write Cairn jobs in plain Rust.
//!
//! A job is one WebAssembly component that describes its dataflow graph and implements the
//! operators that graph names. With this crate a job is a type implementing [`Job`], each
//! operator a struct implementing [`Operator`], and one [`export_job!`] line; the WIT plumbing
//! and the packed batch encoding stay out of sight.
//!
//! ```
//! use cairn_sdk::prelude::*;
//!
//! #[derive(Default, Serialize, Deserialize)]
//! struct Count { counts: KeyedState<u64> }
//!
//! impl Operator for Count {
//!     fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
//!         Some(&mut self.counts)
//!     }
//!
//!     fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
//!         let mut n = self.counts.get_or_default(&record)?;
//!         *n += 1;
//!         out.emit_fmt(format_args!("{}\t{n}", record.key_str()?));
//!         Ok(())
//!     }
//! }
//! ```
//!
//! State per key lives in a [`KeyedState`] (Flink's `ValueState`): the host stores it by key
//! group, so a job can change its parallelism across a savepoint. Operator-wide state is the
//! operator struct itself, serialised with serde ([postcard] encoding) whenever the host
//! takes a checkpoint; override [`Operator::snapshot`] and [`Operator::restore`] for an
//! encoding of your own.
//!
//! Build jobs for `wasm32-wasip2`: `cargo build --target wasm32-wasip2 --release`. On other
//! targets the same code compiles as an ordinary library (without the component exports), so
//! operators can be unit-tested and benchmarked natively.

mod args;
pub mod host;
mod key_map;
pub mod keyed;
#[cfg(target_arch = "wasm32")]
mod lend;
pub mod log;
mod operator;
#[cfg(not(target_arch = "wasm32"))]
pub mod testing;
pub mod window;

#[cfg(target_arch = "wasm32")]
#[doc(hidden)]
pub mod __guest;

/// A job's allocator in a component: the system one, except that it lets snapshots lend
/// keyed state to the host without a copy (see `lend.rs`). A job that sets its own
/// `#[global_allocator]` does not link.
#[cfg(target_arch = "wasm32")]
#[global_allocator]
static ALLOCATOR: lend::LendingAllocator = lend::LendingAllocator;

pub use args::Args;
// The wire types are the host's too (crate `cairn-wire`); the SDK re-exports them.
pub use cairn_wire::key_groups;
pub use cairn_wire::{
    Context, Emitter, Error, Input, JobGraph, KafkaUrl, KeyGroupRange, KeyedChunk, Node, NodeKind,
    OperatorStateMode, PackedBatch, Partitioning, Record, Records, Result, Sink, Snapshot, Source,
    Stream, ValueEncoding, ValueWriter, WatermarkStrategy,
};
pub use keyed::{KeyedState, KeyedStore, StateValue, ValueMut};
pub use operator::{DynOperator, Job, Operator, OperatorInstance, operator};

/// Everything a job author needs, in one `use`.
pub mod prelude {
    pub use crate::host::{TimeDomain, Timer};
    pub use crate::window::{Aggregate, Window, Windowed, Windows};
    pub use crate::{
        Args, Context, DynOperator, Emitter, Error, Job, JobGraph, KeyedState, KeyedStore,
        Operator, Partitioning, Record, Result, Sink, Source, WatermarkStrategy, operator,
    };
    pub use serde::{Deserialize, Serialize};
}

/// Exports a [`Job`] implementation as the component's `cairn:job/job` interface.
///
/// Use it once per job crate, at the crate root. It expands to nothing on targets other
/// than `wasm32`, so the crate still builds natively for tests and benchmarks.
#[macro_export]
macro_rules! export_job {
    ($job:ty) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            struct CairnJobExport;

            impl $crate::__guest::Guest for CairnJobExport {
                type Operator = $crate::__guest::GuestOperator;

                fn describe(
                    args: ::std::vec::Vec<::std::string::String>,
                ) -> ::std::result::Result<$crate::__guest::WitJobGraph, ::std::string::String>
                {
                    $crate::__guest::describe::<$job>(args)
                }

                fn open(
                    ctx: $crate::__guest::WitContext,
                    name: ::std::string::String,
                ) -> ::std::result::Result<$crate::__guest::WitOperator, ::std::string::String>
                {
                    $crate::__guest::open::<$job>(ctx, name)
                }
            }

    $crate::__guest::export!(CairnJobExport with_types_in $crate::__guest::bindings);
        };
    };
}
