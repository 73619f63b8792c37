//! What an operator asks of the host during its calls (`process`, `on_timer`, `finish`):
//! timers per key (Flink's `TimerService`), the clocks, side outputs (Flink's `OutputTag`)
//! and counters of its own.
//!
//! In a component these are the host's `cairn:job@0.4.0` imports. Compiled natively (unit
//! tests, benchmarks) there is no host: whoever drives the operator installs one with
//! [`install`] — [`testing::Harness`](crate::testing::Harness) does — and without one the
//! calls fail (or, for the clocks, say that no time has passed).

pub use cairn_wire::timers::TimeDomain;

use crate::{Error, PackedBatch, Record, Result};

/// A timer that fired, as [`Operator::on_timer`](crate::Operator::on_timer) gets it.
#[derive(Debug, Clone, Copy)]
pub struct Timer<'a> {
    domain: TimeDomain,
    timestamp: i64,
    record: Record<'a>,
}

impl<'a> Timer<'a> {
    /// `record` is the host's record of the timer: its key, and its timestamp.
    pub(crate) fn new(domain: TimeDomain, record: Record<'a>) -> Result<Self> {
        let timestamp = record
            .timestamp()
            .ok_or_else(|| Error::msg("the host fired a timer without a timestamp"))?;
        Ok(Timer {
            domain,
            timestamp,
            record,
        })
    }

    pub fn domain(&self) -> TimeDomain {
        self.domain
    }

    /// When it was set for, in milliseconds.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }

    /// The key it was registered for.
    pub fn key(&self) -> &'a [u8] {
        self.record.key().unwrap_or_default()
    }

    /// The timer as a record of its key (no value, its timestamp): what
    /// [`KeyedState`](crate::KeyedState) takes to reach the key's state.
    pub fn record(&self) -> &Record<'a> {
        &self.record
    }
}

/// Registers a timer for `key` at `timestamp` (milliseconds) in `domain`: the operator's
/// [`on_timer`](crate::Operator::on_timer) gets it once the watermark (event time) or the
/// clock (processing time) reaches it. Once per key, domain and timestamp, however often it
/// is registered. `key` must be the key of a record this subtask got from a by-key input.
pub fn register_timer(domain: TimeDomain, key: &[u8], timestamp: i64) -> Result<()> {
    imp::register_timer(domain, key, timestamp)
}

/// Deletes the timer of `key` at `timestamp` in `domain`, if there is one.
pub fn delete_timer(domain: TimeDomain, key: &[u8], timestamp: i64) {
    imp::delete_timer(domain, key, timestamp)
}

/// The operator's input watermark, in milliseconds: `i64::MIN` before the first, `i64::MAX`
/// once every input has ended.
pub fn current_watermark() -> i64 {
    imp::current_watermark()
}

/// The wall clock, in milliseconds since the Unix epoch.
pub fn current_processing_time() -> i64 {
    imp::current_processing_time()
}

/// Emits `batch` to side output `name`: the nodes reading that side output get it.
pub fn emit_to(side_output: &str, batch: PackedBatch) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    imp::emit_to(side_output, batch)
}

/// Adds `delta` to this subtask's counter `name` (shown in `/metrics` and Flink's vertex
/// metrics). Names are 1 to 64 ASCII letters, digits or `_`.
pub fn counter_add(name: &str, delta: u64) -> Result<()> {
    imp::counter_add(name, delta)
}

/// The host's side of [`register_timer`] and the other calls, for operators compiled
/// natively: [`install`] one to drive an operator outside a component.
#[cfg(not(target_arch = "wasm32"))]
pub trait Host {
    fn register_timer(&mut self, domain: TimeDomain, key: &[u8], timestamp: i64) -> Result<()>;
    fn delete_timer(&mut self, domain: TimeDomain, key: &[u8], timestamp: i64);
    fn current_watermark(&self) -> i64;
    fn current_processing_time(&self) -> i64;
    fn emit_to(&mut self, side_output: &str, batch: PackedBatch) -> Result<()>;
    fn counter_add(&mut self, name: &str, delta: u64) -> Result<()>;
}

/// Makes `host` this thread's host (`None`: none), returning the one before.
#[cfg(not(target_arch = "wasm32"))]
pub fn install(host: Option<Box<dyn Host>>) -> Option<Box<dyn Host>> {
    imp::HOST.with(|slot| std::mem::replace(&mut *slot.borrow_mut(), host))
}

#[cfg(target_arch = "wasm32")]
pub(crate) use imp::new_call;

#[cfg(target_arch = "wasm32")]
mod imp {
    use super::*;
    use crate::__guest::bindings::cairn::job::{metrics, outputs, time, timers};

    fn domain(domain: TimeDomain) -> time::TimeDomain {
        match domain {
            TimeDomain::EventTime => time::TimeDomain::EventTime,
            TimeDomain::ProcessingTime => time::TimeDomain::ProcessingTime,
        }
    }

    pub(super) fn register_timer(d: TimeDomain, key: &[u8], timestamp: i64) -> Result<()> {
        timers::register(domain(d), key, timestamp).map_err(Error::msg)
    }

    pub(super) fn delete_timer(d: TimeDomain, key: &[u8], timestamp: i64) {
        timers::delete(domain(d), key, timestamp)
    }

    thread_local! {
        /// The watermark as the host gave it during this call: it moves only between calls.
        static WATERMARK: std::cell::Cell<Option<i64>> = const { std::cell::Cell::new(None) };
    }

    pub(super) fn current_watermark() -> i64 {
        WATERMARK.with(|cached| {
            cached.get().unwrap_or_else(|| {
                let watermark = timers::current_watermark();
                cached.set(Some(watermark));
                watermark
            })
        })
    }

    /// A call from the host begins: the watermark may have moved since the last one.
    pub(crate) fn new_call() {
        WATERMARK.with(|cached| cached.set(None));
    }

    pub(super) fn current_processing_time() -> i64 {
        timers::current_processing_time()
    }

    pub(super) fn emit_to(side_output: &str, batch: PackedBatch) -> Result<()> {
        outputs::emit(side_output, &crate::__guest::to_wit(batch));
        Ok(())
    }

    pub(super) fn counter_add(name: &str, delta: u64) -> Result<()> {
        metrics::counter_add(name, delta);
        Ok(())
    }
}

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use std::cell::RefCell;

    use super::*;

    thread_local! {
        pub(super) static HOST: RefCell<Option<Box<dyn Host>>> = const { RefCell::new(None) };
    }

    fn with<R>(f: impl FnOnce(&mut dyn Host) -> R) -> Option<R> {
        HOST.with(|slot| {
            let mut host = slot.borrow_mut();
            host.as_mut().map(|host| f(host.as_mut()))
        })
    }

    fn no_host() -> Error {
        Error::msg(
            "no host: timers, side outputs and counters need one (cairn runs the job as a \
             component; natively, cairn_sdk::host::install or cairn_sdk::testing::Harness)",
        )
    }

    pub(super) fn register_timer(d: TimeDomain, key: &[u8], timestamp: i64) -> Result<()> {
        with(|host| host.register_timer(d, key, timestamp)).unwrap_or_else(|| Err(no_host()))
    }

    pub(super) fn delete_timer(d: TimeDomain, key: &[u8], timestamp: i64) {
        with(|host| host.delete_timer(d, key, timestamp));
    }

    pub(super) fn current_watermark() -> i64 {
        with(|host| host.current_watermark()).unwrap_or(i64::MIN)
    }

    pub(super) fn current_processing_time() -> i64 {
        with(|host| host.current_processing_time()).unwrap_or(0)
    }

    pub(super) fn emit_to(side_output: &str, batch: PackedBatch) -> Result<()> {
        with(|host| host.emit_to(side_output, batch)).unwrap_or_else(|| Err(no_host()))
    }

    pub(super) fn counter_add(name: &str, delta: u64) -> Result<()> {
        with(|host| host.counter_add(name, delta)).unwrap_or_else(|| Err(no_host()))
    }
}
