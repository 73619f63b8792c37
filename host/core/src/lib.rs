//! Cairn's engine: everything that runs a job except the Wasm runtime (crate `cairn-wasm`,
//! behind [`operator::OperatorFactory`]) and the servers (the `cairn` binary).
//!
//! Where things live:
//! - [`config`]: Flink-named keys, layered sources, the typed [`config::Config`].
//! - [`graph`]: the job's graph validated into a [`graph::Graph`].
//! - [`runtime`]: subtask threads and channels, barrier alignment (`runtime::inputs`), the
//!   checkpoint coordinator (`runtime::coordinator`), metrics.
//! - [`state`]: checkpoint storage (any `object_store` backend), state files, `_metadata`.
//! - [`restore`], [`savepoint`]: which checkpoint a run starts from; savepoint folders.
//! - [`restart`]: Flink's restart strategies, as a pure decision.
//! - [`supervisor`]: a job across attempts — restarts, what each restores, told to a
//!   [`supervisor::Watcher`] (the control plane).
//! - [`connectors`]: host-native sources and sinks, with their positions and two-phase commit.
//! - [`lock`]: the locks that keep two runs off one job id or folder.

pub mod batch;
pub mod clock;
pub mod config;
pub mod connectors;
pub mod graph;
pub mod lock;
pub mod names;
pub mod operator;
pub mod rescale;
pub mod restart;
pub mod restore;
pub mod runtime;
pub mod savepoint;
pub mod state;
pub mod supervisor;
pub mod timer_service;
