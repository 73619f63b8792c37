//! The component side: WIT bindings and the adapter from them to [`Job`] and [`Operator`].
//! Used only through [`export_job!`](crate::export_job); not part of the public API.

use std::cell::RefCell;

use crate::{Args, Context, Job, JobGraph, NodeKind, OperatorInstance, PackedBatch, Partitioning};

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
    let graph = J::describe(&Args::new(args))?;
    Ok(graph_to_wit(graph))
}

pub fn open<J: Job>(ctx: WitContext, name: String) -> Result<WitOperator, String> {
    let ctx = Context {
        job_id: ctx.job_id,
        operator_uid: ctx.operator_uid,
        subtask: ctx.subtask,
        parallelism: ctx.parallelism,
        attempt: ctx.attempt,
        options: ctx.options,
    };
    let instance = OperatorInstance::open::<J>(ctx, &name)?;
    Ok(WitOperator::new(GuestOperator(RefCell::new(instance))))
}

/// The `operator` resource: calls come one at a time, the RefCell only satisfies `&self`.
pub struct GuestOperator(RefCell<OperatorInstance>);

impl WitGuestOperator for GuestOperator {
    fn process(&self, input: u32, batch: wit::PackedBatch) -> Result<wit::PackedBatch, String> {
        let out = self.0.borrow_mut().process(input, &from_wit(batch))?;
        Ok(to_wit(out))
    }

    fn snapshot(&self, _checkpoint_id: u64) -> Result<wit::State, String> {
        let state = self.0.borrow().snapshot()?;
        Ok(wit::State {
            version: state.version,
            data: state.data,
        })
    }

    fn restore(&self, state: wit::State) -> Result<(), String> {
        let state = crate::State {
            version: state.version,
            data: state.data,
        };
        Ok(self.0.borrow_mut().restore(&state)?)
    }

    fn checkpoint_complete(&self, checkpoint_id: u64) {
        self.0.borrow_mut().checkpoint_complete(checkpoint_id)
    }

    fn finish(&self) -> Result<wit::PackedBatch, String> {
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

fn to_wit(batch: PackedBatch) -> wit::PackedBatch {
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
                    })
                    .collect(),
                parallelism: node.parallelism,
                options: node.options,
            })
            .collect(),
        config: graph.config,
    }
}
