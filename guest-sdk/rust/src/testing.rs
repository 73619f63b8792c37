//! Drive an operator natively, as the host would (Flink's operator test harnesses): records
//! in by key, the watermark and the clock moved by hand, timers fired in order, side
//! outputs and counters kept for the test to read.
//!
//! ```
//! # use cairn_sdk::prelude::*;
//! # use cairn_sdk::testing::Harness;
//! # #[derive(Default, Serialize, Deserialize)] struct Echo;
//! # impl Operator for Echo {
//! #     fn process(&mut self, r: Record<'_>, out: &mut Emitter) -> Result<()> { out.push(&r); Ok(()) }
//! # }
//! # struct EchoJob;
//! # impl Job for EchoJob {
//! #     fn describe(_: &Args) -> Result<JobGraph> { Ok(JobGraph::new("echo")) }
//! #     fn operator(_: &str) -> Option<Box<dyn DynOperator>> { operator::<Echo>() }
//! # }
//! let mut harness = Harness::open::<EchoJob>("echo", &[]).unwrap();
//! let out = harness.process(&[("k", "v", Some(5))]).unwrap();
//! assert_eq!(out, [("k".to_owned(), "v".to_owned(), Some(5))]);
//! harness.advance_watermark(10).unwrap();
//! ```

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use cairn_wire::key_groups::key_group;
use cairn_wire::timers::{Timer, TimerQueue};

use crate::host::{self, Host, TimeDomain};
use crate::{
    Context, Emitter, Error, Job, KeyGroupRange, OperatorInstance, PackedBatch, Result, Snapshot,
};

/// The key groups of the harness's job: one subtask owns them all.
const MAX_PARALLELISM: u32 = 128;

/// A record as tests write and read them: key, value (UTF-8), timestamp.
pub type TestRecord = (String, String, Option<i64>);

/// What the harness's host keeps: the timers, time, and what the operator sent aside.
#[derive(Default)]
struct State {
    timers: TimerQueue,
    watermark: i64,
    now: i64,
    side_outputs: BTreeMap<String, Vec<TestRecord>>,
    counters: BTreeMap<String, u64>,
}

struct TestHost(Rc<RefCell<State>>);

impl Host for TestHost {
    fn register_timer(&mut self, domain: TimeDomain, key: &[u8], timestamp: i64) -> Result<()> {
        self.0
            .borrow_mut()
            .timers
            .register(domain, timer(key, timestamp));
        Ok(())
    }

    fn delete_timer(&mut self, domain: TimeDomain, key: &[u8], timestamp: i64) {
        self.0
            .borrow_mut()
            .timers
            .delete(domain, &timer(key, timestamp));
    }

    fn current_watermark(&self) -> i64 {
        self.0.borrow().watermark
    }

    fn current_processing_time(&self) -> i64 {
        self.0.borrow().now
    }

    fn emit_to(&mut self, side_output: &str, batch: PackedBatch) -> Result<()> {
        let records = records(&batch)?;
        let mut state = self.0.borrow_mut();
        state
            .side_outputs
            .entry(side_output.to_owned())
            .or_default()
            .extend(records);
        Ok(())
    }

    fn counter_add(&mut self, name: &str, delta: u64) -> Result<()> {
        *self
            .0
            .borrow_mut()
            .counters
            .entry(name.to_owned())
            .or_default() += delta;
        Ok(())
    }
}

fn timer(key: &[u8], timestamp: i64) -> Timer {
    Timer {
        timestamp,
        // Below max-parallelism.
        key_group: key_group(key, MAX_PARALLELISM) as u16,
        key: key.into(),
    }
}

fn records(batch: &PackedBatch) -> Result<Vec<TestRecord>> {
    batch
        .records(0)?
        .map(|r| {
            Ok((
                String::from_utf8_lossy(r.key().unwrap_or_default()).into_owned(),
                r.value_str()?.to_owned(),
                r.timestamp(),
            ))
        })
        .collect()
}

/// One operator subtask owning every key group, with a host of its own.
pub struct Harness {
    instance: OperatorInstance,
    state: Rc<RefCell<State>>,
}

impl Harness {
    /// Opens operator `name` of job `J` with node options `options`; no watermark yet, the
    /// clock at 0.
    pub fn open<J: Job>(name: &str, options: &[(&str, &str)]) -> Result<Self> {
        let ctx = Context {
            job_id: "0".repeat(32),
            operator_uid: name.to_owned(),
            subtask: 0,
            parallelism: 1,
            attempt: 0,
            options: options
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            max_parallelism: MAX_PARALLELISM,
            key_groups: KeyGroupRange::of_subtask(0, MAX_PARALLELISM, 1),
        };
        let state = Rc::new(RefCell::new(State {
            watermark: i64::MIN,
            ..State::default()
        }));
        let instance = in_host(&state, || OperatorInstance::open::<J>(ctx, name))?;
        Ok(Harness { instance, state })
    }

    /// Processes records of a by-key input (input 0); returns what the operator emitted.
    pub fn process(&mut self, records: &[(&str, &str, Option<i64>)]) -> Result<Vec<TestRecord>> {
        let mut batch = Emitter::default();
        let mut groups = Vec::with_capacity(records.len());
        for &(key, value, timestamp) in records {
            match timestamp {
                Some(t) => batch.emit_with_timestamp(key, value, t),
                None => batch.emit_keyed(key, value),
            }
            groups.push(key_group(key.as_bytes(), MAX_PARALLELISM) as u16);
        }
        let batch = batch.take();
        let out = in_host(&self.state, || self.instance.process(0, &batch, &groups))?;
        records_of(&out)
    }

    /// Moves the watermark to `watermark` (never back), firing the event-time timers it
    /// passes in order; returns what they emitted.
    pub fn advance_watermark(&mut self, watermark: i64) -> Result<Vec<TestRecord>> {
        {
            let mut state = self.state.borrow_mut();
            state.watermark = state.watermark.max(watermark);
        }
        self.fire(TimeDomain::EventTime)
    }

    /// Moves the clock to `now` (never back), firing the processing-time timers it passes.
    pub fn advance_processing_time(&mut self, now: i64) -> Result<Vec<TestRecord>> {
        {
            let mut state = self.state.borrow_mut();
            state.now = state.now.max(now);
        }
        self.fire(TimeDomain::ProcessingTime)
    }

    /// The end of input: the watermark to the end of time, then `finish`.
    pub fn finish(&mut self) -> Result<Vec<TestRecord>> {
        let mut out = self.advance_watermark(i64::MAX)?;
        let last = in_host(&self.state, || self.instance.finish())?;
        out.extend(records_of(&last)?);
        Ok(out)
    }

    fn fire(&mut self, domain: TimeDomain) -> Result<Vec<TestRecord>> {
        let mut out = Vec::new();
        loop {
            let due = {
                let mut state = self.state.borrow_mut();
                let until = match domain {
                    TimeDomain::EventTime => state.watermark,
                    TimeDomain::ProcessingTime => state.now,
                };
                state.timers.pop_due(domain, until, 1024)
            };
            if due.is_empty() {
                return Ok(out);
            }
            let mut batch = Emitter::default();
            for timer in &due {
                batch.emit_with_timestamp(&timer.key, b"", timer.timestamp);
            }
            let groups: Vec<u16> = due.iter().map(|t| t.key_group).collect();
            let batch = batch.take();
            let emitted = in_host(&self.state, || {
                self.instance.on_timers(domain, &batch, &groups)
            })?;
            out.extend(records_of(&emitted)?);
        }
    }

    /// The records sent to side output `name` so far, taken.
    pub fn side_output(&mut self, name: &str) -> Vec<TestRecord> {
        self.state
            .borrow_mut()
            .side_outputs
            .remove(name)
            .unwrap_or_default()
    }

    /// Counter `name` (0 if never counted).
    pub fn counter(&self, name: &str) -> u64 {
        self.state.borrow().counters.get(name).copied().unwrap_or(0)
    }

    /// How many timers are registered, both domains.
    pub fn timers(&self) -> usize {
        self.state.borrow().timers.len()
    }

    /// The operator's state, as a checkpoint would take it (timers aside: see
    /// [`restore_into`](Self::restore_into)).
    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.instance.snapshot()
    }

    /// A new harness for operator `name` of `J`, restored from this one's state and
    /// timers, with its watermark and clock: a restore from a checkpoint.
    pub fn restore_into<J: Job>(&mut self, name: &str, options: &[(&str, &str)]) -> Result<Self> {
        let snapshot = self.snapshot()?;
        let mut restored = Harness::open::<J>(name, options)?;
        {
            let source = self.state.borrow();
            let mut target = restored.state.borrow_mut();
            for chunk in source.timers.snapshot() {
                target.timers.restore(&chunk)?;
            }
            target.watermark = source.watermark;
            target.now = source.now;
        }
        in_host(&restored.state, || {
            restored
                .instance
                .restore_keyed(snapshot.version, &snapshot.keyed)?;
            restored
                .instance
                .restore(snapshot.version, &snapshot.operator_state)
        })?;
        Ok(restored)
    }
}

fn records_of(batch: &PackedBatch) -> Result<Vec<TestRecord>> {
    records(batch).map_err(|e| Error::msg(format!("the operator emitted a bad batch: {e}")))
}

/// Runs `f` with the harness's host installed, as the host lends its own during a call.
fn in_host<R>(state: &Rc<RefCell<State>>, f: impl FnOnce() -> R) -> R {
    let before = host::install(Some(Box::new(TestHost(state.clone()))));
    let result = f();
    host::install(before);
    result
}
