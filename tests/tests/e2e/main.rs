//! The end-to-end tests: the real `cairn` binary on real files, stores and jobs.
//!
//! One test binary, a module per area: the harness runs every test of every area from one
//! pool of threads (most of their time is spent waiting on `cairn` processes), and the helper
//! library is linked once rather than once per file.
//!
//! Tests of different modules run at the same time, so job ids are unique across all of
//! them: runs outside a `Session` share this machine's registry, where a job id is locked.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod bad_input;
mod checkpoints;
mod connectors;
mod event_time;
mod flink_cli;
mod kafka;
mod languages;
mod observability;
mod reliability;
mod rescale;
mod rest_security;
mod restarts;
mod savepoints;
mod stores;
mod word_count;
