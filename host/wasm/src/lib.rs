//! The WebAssembly side of the host: one [`Engine`] per process, components loaded (and
//! cached compiled) from job files, and one sandboxed [`Guest`] instance per subtask. A
//! [`JobComponent`] is the core's `OperatorFactory`; [`swap`] prepares new code for a running
//! job. The WIT contract is `wit/cairn-job.wit` (`cairn:job@0.4.0`); components built against
//! the previous ones, `wit/v0.3.0/` and `wit/v0.2.0/`, still run ([`Contract`]).

mod component;
mod engine;
mod guest;
mod stdio;
pub mod swap;

/// `cairn:job@0.4.0`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "cairn-job",
        // A bad side output or counter name fails the call that used it.
        imports: {
            "cairn:job/outputs.emit": trappable,
            "cairn:job/metrics.counter-add": trappable,
        },
    });
}

/// `cairn:job@0.3.0`, frozen: its components keep running, without event time.
mod bindings_v3 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.3.0",
        world: "cairn-job",
    });
}

/// `cairn:job@0.2.0`, frozen: its components keep running, without keyed state.
mod bindings_v2 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.2.0",
        world: "cairn-job",
    });
}

pub use component::{DescribeError, JobComponent, LoadError};
pub use engine::{Engine, Limits};
pub use guest::{Guest, GuestError, GuestOperator};

/// The versions of the job contract this host runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Contract {
    /// `cairn:job@0.4.0`: event time (watermark strategies, timers), side outputs and
    /// counters.
    V0_4,
    /// `cairn:job@0.3.0`: keyed state by key group; rescalable.
    V0_3,
    /// `cairn:job@0.2.0`: state as one blob per subtask; restored only at the same
    /// parallelism.
    V0_2,
}

impl Contract {
    /// Newest first.
    pub const ALL: [Contract; 3] = [Contract::V0_4, Contract::V0_3, Contract::V0_2];

    /// Every version's job interface, quoted: "`…`, `…` and `…`".
    pub fn known() -> String {
        let names: Vec<String> = Self::ALL
            .iter()
            .map(|c| format!("`{}`", c.interface()))
            .collect();
        match names.split_last() {
            Some((last, rest)) if !rest.is_empty() => format!("{} and {last}", rest.join(", ")),
            _ => names.concat(),
        }
    }

    /// The interface a job component of this version exports.
    pub fn interface(self) -> &'static str {
        match self {
            Contract::V0_4 => "cairn:job/job@0.4.0",
            Contract::V0_3 => "cairn:job/job@0.3.0",
            Contract::V0_2 => "cairn:job/job@0.2.0",
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Contract::V0_4 => "cairn:job@0.4.0",
            Contract::V0_3 => "cairn:job@0.3.0",
            Contract::V0_2 => "cairn:job@0.2.0",
        })
    }
}
