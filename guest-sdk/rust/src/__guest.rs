//! The component side: WIT bindings and the adapter from them to [`Job`] and [`Operator`].
//! Used only through [`export_job!`](crate::export_job); not part of the public API.

use std::cell::RefCell;

use crate::host::TimeDomain;
use crate::{
    Args, Context, Job, JobGraph, KeyGroupRange, KeyedChunk, NodeKind, OperatorInstance,
    OperatorStateMode, PackedBatch, Partitioning, ValueEncoding,
};

pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "cairn-job",
        pub_export_macro: true,
        export_macro_name: "export",
        default_bindings_module: "cairn_sdk::__guest::bindings",
    });
}

use bindings::cairn::job::log as wit_log;
use bindings::cairn::job::time as wit_time;
use bindings::cairn::job::types as wit;
pub use bindings::export;
pub use bindings::exports::cairn::job::job::{
    Guest, GuestOperator as WitGuestOperator, Operator as WitOperator,
};
pub use wit::{Context as WitContext, JobGraph as WitJobGraph};

pub fn log(level: crate::log::Level, message: &str) {
    use crate::log::Level;
    let level = match level {
        Level::Trace => wit_log::Level::Trace,
        Level::Debug => wit_log::Level::Debug,
        Level::Info => wit_log::Level::Info,
        Level::Warn => wit_log::Level::Warn,
        Level::Error => wit_log::Level::Error,
    };
    wit_log::log(level, message);
}

pub fn describe<J: Job>(args: Vec<String>) -> Result<WitJobGraph, String> {
    Ok(graph_to_wit(J::describe(&Args::new(args))?))
}

pub fn open<J: Job>(ctx: WitContext, name: String) -> Result<WitOperator, String> {
    let ctx = Context {
        job_id: ctx.job_id,
        operator_uid: ctx.operator_uid,
        subtask: ctx.subtask,
        parallelism: ctx.parallelism,
        attempt: ctx.attempt,
        options: ctx.options,
        max_parallelism: ctx.max_parallelism,
        key_groups: KeyGroupRange {
            first: ctx.key_groups.first,
            last: ctx.key_groups.last,
        },
    };
    let instance = OperatorInstance::open::<J>(ctx, &name)?;
    Ok(WitOperator::new(GuestOperator(RefCell::new(instance))))
}

/// The `operator` resource: calls come one at a time, the RefCell only satisfies `&self`.
pub struct GuestOperator(RefCell<OperatorInstance>);

impl WitGuestOperator for GuestOperator {
    fn process(
        &self,
        input: u32,
        batch: wit::PackedBatch,
        key_groups: Vec<u16>,
    ) -> Result<wit::PackedBatch, String> {
        crate::host::new_call();
        let out = self
            .0
            .borrow_mut()
            .process(input, &from_wit(batch), &key_groups)?;
        Ok(to_wit(out))
    }

    fn on_timer(
        &self,
        domain: wit_time::TimeDomain,
        timers: wit::PackedBatch,
        key_groups: Vec<u16>,
    ) -> Result<wit::PackedBatch, String> {
        crate::host::new_call();
        let domain = match domain {
            wit_time::TimeDomain::EventTime => TimeDomain::EventTime,
            wit_time::TimeDomain::ProcessingTime => TimeDomain::ProcessingTime,
        };
        let out = self
            .0
            .borrow_mut()
            .on_timers(domain, &from_wit(timers), &key_groups)?;
        Ok(to_wit(out))
    }

    fn snapshot(&self, _checkpoint_id: u64) -> Result<wit::Snapshot, String> {
        // SAFETY: the snapshot goes straight to the host as this call's result, and nothing
        // runs in this instance before the call's post-return has dropped it.
        let snapshot = unsafe { self.0.borrow_mut().snapshot_for_host() }?;
        Ok(wit::Snapshot {
            version: snapshot.version,
            operator_state: snapshot.operator_state,
            operator_state_mode: match snapshot.mode {
                OperatorStateMode::Split => wit::OperatorStateMode::Split,
                OperatorStateMode::Union => wit::OperatorStateMode::Union,
                OperatorStateMode::Whole => {
                    return Err("OperatorStateMode::Whole is the host's, not an operator's".into());
                }
            },
            keyed: snapshot
                .keyed
                .into_iter()
                .map(|c| wit::KeyedChunk {
                    key_group: c.key_group,
                    entries: c.entries,
                })
                .collect(),
            value_encoding: match snapshot.value_encoding {
                ValueEncoding::Bytes => wit::ValueEncoding::Bytes,
                ValueEncoding::Utf8 => wit::ValueEncoding::Utf8,
                ValueEncoding::U64Le => wit::ValueEncoding::U64Le,
                ValueEncoding::S64Le => wit::ValueEncoding::S64Le,
                ValueEncoding::F64Le => wit::ValueEncoding::F64Le,
                ValueEncoding::Json => wit::ValueEncoding::Json,
            },
        })
    }

    fn restore_keyed(&self, version: u32, chunks: Vec<wit::KeyedChunk>) -> Result<(), String> {
        let chunks: Vec<KeyedChunk> = chunks
            .into_iter()
            .map(|c| KeyedChunk {
                key_group: c.key_group,
                entries: c.entries,
            })
            .collect();
        Ok(self.0.borrow_mut().restore_keyed(version, &chunks)?)
    }

    fn restore(&self, version: u32, operator_state: Vec<Vec<u8>>) -> Result<(), String> {
        Ok(self.0.borrow_mut().restore(version, &operator_state)?)
    }

    fn checkpoint_complete(&self, checkpoint_id: u64) {
        self.0.borrow_mut().checkpoint_complete(checkpoint_id)
    }

    fn finish(&self) -> Result<wit::PackedBatch, String> {
        crate::host::new_call();
        Ok(to_wit(self.0.borrow_mut().finish()?))
    }
}

fn from_wit(batch: wit::PackedBatch) -> PackedBatch {
    PackedBatch {
        data: batch.data,
        offsets: batch.offsets,
        timestamps: batch.timestamps,
    }
}

pub(crate) fn to_wit(batch: PackedBatch) -> wit::PackedBatch {
    wit::PackedBatch {
        data: batch.data,
        offsets: batch.offsets,
        timestamps: batch.timestamps,
    }
}

fn graph_to_wit(graph: JobGraph) -> WitJobGraph {
    WitJobGraph {
        name: graph.name,
        nodes: graph
            .nodes
            .into_iter()
            .map(|node| wit::Node {
                uid: node.uid,
                kind: match node.kind {
                    NodeKind::Source(c) => wit::NodeKind::Source(c),
                    NodeKind::Operator(n) => wit::NodeKind::Operator(n),
                    NodeKind::Sink(c) => wit::NodeKind::Sink(c),
                },
                inputs: node
                    .inputs
                    .into_iter()
                    .map(|input| wit::Input {
                        upstream: input.upstream,
                        partitioning: match input.partitioning {
                            Partitioning::Forward => wit::Partitioning::Forward,
                            Partitioning::Rebalance => wit::Partitioning::Rebalance,
                            Partitioning::ByKey => wit::Partitioning::ByKey,
                            Partitioning::Broadcast => wit::Partitioning::Broadcast,
                        },
                        side_output: input.side_output,
                    })
                    .collect(),
                parallelism: node.parallelism,
                options: node.options,
                watermarks: node.watermarks.map(|w| wit::WatermarkStrategy {
                    max_out_of_orderness_ms: w.max_out_of_orderness_ms,
                    idle_timeout_ms: w.idle_timeout_ms,
                }),
            })
            .collect(),
        config: graph.config,
    }
}
