//! The WebAssembly side of the host: one [`Engine`] per process, components loaded (and
//! cached compiled) from job files, and one sandboxed [`Guest`] instance per subtask. A
//! [`JobComponent`] is the core's `OperatorFactory`; [`swap`] prepares new code for a running
//! job. The WIT contract is `wit/cairn-job.wit`.

mod component;
mod engine;
mod guest;
mod stdio;
pub mod swap;

mod bindings {
    wasmtime::component::bindgen!({
        path: "../../wit",
        world: "cairn-job",
    });
}

pub use component::{DescribeError, JobComponent, LoadError};
pub use engine::{Engine, Limits};
pub use guest::{Guest, GuestError, GuestOperator};

/// The WIT interface a job component must export, with the version this host speaks.
pub const JOB_INTERFACE: &str = "cairn:job/job@0.2.0";
