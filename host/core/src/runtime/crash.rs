//! A test hook at the two-phase commit's narrowest window: the process dies after a
//! checkpoint's `_metadata` is durable and before a sink commits it, which a restore must
//! repair (commit again what the checkpoint prepared). Killing the process from outside
//! cannot hit that window reliably; the end-to-end tests set this instead.

use std::sync::OnceLock;

/// The environment variable: a checkpoint id. When a sink subtask is about to commit that
/// checkpoint, the process aborts, as if killed with `kill -9`.
pub const CRASH_BEFORE_COMMIT: &str = "CAIRN_TEST_CRASH_BEFORE_COMMIT";

/// Aborts the process if the hook names `checkpoint`.
pub(crate) fn before_commit(checkpoint: u64) {
    static AT: OnceLock<Option<u64>> = OnceLock::new();
    let at = AT.get_or_init(|| {
        std::env::var(CRASH_BEFORE_COMMIT)
            .ok()
            .and_then(|v| v.trim().parse().ok())
    });
    if *at == Some(checkpoint) {
        eprintln!("{CRASH_BEFORE_COMMIT}: aborting before committing checkpoint {checkpoint}");
        std::process::abort();
    }
}
