//! Cairn: a WebAssembly-plugin job host for stream processing.
//!
//! Jobs are WebAssembly components (see `wit/cairn-job.wit`) that describe a dataflow graph
//! and implement its operators. The host validates the graph ([`graph`]), runs every node as
//! parallel subtasks connected by bounded channels ([`runtime`]), with each operator subtask
//! in its own sandboxed instance ([`wasm`]) and sources and sinks as host connectors
//! ([`connectors`]).

pub mod config;
pub mod connectors;
pub mod control;
pub mod graph;
pub mod lock;
pub mod operator;
pub mod prometheus;
pub mod registry;
pub mod rest;
pub mod restart;
pub mod restore;
pub mod runtime;
pub mod savepoint;
pub mod state;
pub mod swap;
pub mod wasm;
