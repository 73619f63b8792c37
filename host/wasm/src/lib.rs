//! The WebAssembly side of the host: one [`Engine`] per process, components loaded (and
//! cached compiled) from job files, and one sandboxed [`Guest`] instance per subtask. A
//! [`JobComponent`] is the core's `OperatorFactory`; [`swap`] prepares new code for a running
//! job. The WIT contract is `wit/cairn-job.wit` (`cairn:job@0.3.0`); components built against
//! the previous one, `wit/v0.2.0/cairn-job.wit`, still run ([`Contract`]).

mod component;
mod engine;
mod guest;
mod stdio;
pub mod swap;

/// `cairn:job@0.3.0`.
mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
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
    /// `cairn:job@0.3.0`: keyed state by key group; rescalable.
    V0_3,
    /// `cairn:job@0.2.0`: state as one blob per subtask; restored only at the same
    /// parallelism.
    V0_2,
}

impl Contract {
    /// Newest first.
    pub const ALL: [Contract; 2] = [Contract::V0_3, Contract::V0_2];

    /// The interface a job component of this version exports.
    pub fn interface(self) -> &'static str {
        match self {
            Contract::V0_3 => "cairn:job/job@0.3.0",
            Contract::V0_2 => "cairn:job/job@0.2.0",
        }
    }
}

impl std::fmt::Display for Contract {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Contract::V0_3 => "cairn:job@0.3.0",
            Contract::V0_2 => "cairn:job@0.2.0",
        })
    }
}
