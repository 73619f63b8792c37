use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

/// How often the epoch advances; a call's deadline is counted in these ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Sandbox limits applied to every guest instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Most linear memory one instance may grow to, in bytes.
    pub memory: u64,
    /// Longest one guest call may run.
    pub call_timeout: Duration,
}

impl Limits {
    pub(crate) fn deadline_ticks(&self) -> u64 {
        (self.call_timeout.as_millis() / EPOCH_TICK.as_millis()).max(1) as u64
    }
}

/// The wasmtime engine, configured for Cairn, with the thread that advances its epoch so
/// that a guest stuck in a loop is interrupted at its deadline.
pub struct Engine {
    inner: wasmtime::Engine,
    ticker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
}

impl Engine {
    pub fn new() -> anyhow::Result<Self> {
        let mut config = wasmtime::Config::new();
        config.wasm_component_model(true);
        config.epoch_interruption(true);
        // `CAIRN_PERF_MAP=1` names guest functions for `perf` (in /tmp/perf-<pid>.map).
        if std::env::var_os("CAIRN_PERF_MAP").is_some_and(|v| v == "1") {
            config.profiler(wasmtime::ProfilingStrategy::PerfMap);
        }
        let inner = wasmtime::Engine::new(&config)?;
        let stop = Arc::new(AtomicBool::new(false));
        let ticker = {
            let engine = inner.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("cairn-epoch".into())
                .spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        std::thread::sleep(EPOCH_TICK);
                        engine.increment_epoch();
                    }
                })?
        };
        Ok(Engine {
            inner,
            ticker: Some(ticker),
            stop,
        })
    }

    pub(crate) fn wasmtime(&self) -> &wasmtime::Engine {
        &self.inner
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(ticker) = self.ticker.take() {
            let _ = ticker.join();
        }
    }
}
