//! Operators, jobs, and the per-subtask instance that drives an operator batch by batch.

use serde::{Serialize, de::DeserializeOwned};

use crate::host::{TimeDomain, Timer};
use crate::keyed::KeyedStore;
use crate::{
    Args, Context, Emitter, Error, JobGraph, KeyedChunk, OperatorStateMode, PackedBatch, Record,
    Result, Snapshot,
};

/// A stream operator. Its state has two parts:
///
/// - keyed state, a value per key: a [`KeyedState`](crate::KeyedState) field that
///   [`keyed_state`](Operator::keyed_state) returns. The host stores it by key group, so the
///   job can change parallelism across a savepoint, and `cairn state` can show it.
/// - operator-wide state, small and not per key: the struct itself, which serde serialises
///   (a `KeyedState` field as nothing). Mark fields that are not state (caches, handles)
///   `#[serde(skip)]` and set them in [`open`](Operator::open).
pub trait Operator: Default + Serialize + DeserializeOwned + 'static {
    /// The version of this operator's state encoding (both parts), stored with every
    /// snapshot and handed back on restore. Raise it when an encoding changes, and teach
    /// [`restore`](Operator::restore) and [`restore_keyed`](Operator::restore_keyed) to read
    /// (migrate) the older versions.
    const STATE_VERSION: u32 = 1;

    /// How operator-wide state is shared out when the parallelism changes: `Split` (each
    /// old subtask's state goes to one new subtask; some get none) or `Union` (every new
    /// subtask gets every old subtask's state, one [`restore`](Operator::restore) call each).
    const OPERATOR_STATE_MODE: OperatorStateMode = OperatorStateMode::Split;

    /// The operator's keyed state, if it keeps some: `Some(&mut self.field)`.
    fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
        None
    }

    /// Called when the subtask starts, and again after its state was restored.
    fn open(&mut self, ctx: &Context) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record, emitting any number of records to `out`.
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()>;

    /// A timer this operator registered ([`register_timer`](crate::host::register_timer))
    /// fired: its key's keyed state is at hand through [`Timer::record`]. Emits any number
    /// of records to `out`.
    fn on_timer(&mut self, timer: Timer<'_>, out: &mut Emitter) -> Result<()> {
        let _ = out;
        Err(Error::msg(format!(
            "a timer fired (key {:?}, {:?} {}), but this operator does not implement \
             Operator::on_timer",
            String::from_utf8_lossy(timer.key()),
            timer.domain(),
            timer.timestamp()
        )))
    }

    /// All inputs have ended, and every event-time timer has fired: emit any last records.
    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        let _ = out;
        Ok(())
    }

    /// The operator-wide state, by default the struct in [postcard] encoding; empty bytes
    /// mean none.
    fn snapshot(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::msg(format!("cannot encode state: {e}")))
    }

    /// Restores operator-wide state from [`snapshot`](Operator::snapshot) — possibly written
    /// by other code, in encoding `version`; after a rescale, called once for each old
    /// subtask's state this subtask gets (see
    /// [`OPERATOR_STATE_MODE`](Operator::OPERATOR_STATE_MODE)), or not at all. Keyed state is
    /// restored before. By default the struct is decoded from postcard (keeping the keyed
    /// state), and only the operator's own [`STATE_VERSION`](Operator::STATE_VERSION) is
    /// accepted.
    fn restore(&mut self, state: &[u8], version: u32) -> Result<()> {
        check_version::<Self>(version)?;
        let mut restored: Self = postcard::from_bytes(state)
            .map_err(|e| Error::msg(format!("cannot decode state: {e}")))?;
        if let (Some(restored), Some(keyed)) = (restored.keyed_state(), self.keyed_state()) {
            restored.take_from(keyed);
        }
        *self = restored;
        Ok(())
    }

    /// Restores one key group's keyed state, written in encoding `version`, before
    /// [`restore`](Operator::restore). By default the chunk goes to
    /// [`keyed_state`](Operator::keyed_state) when `version` is the operator's own.
    fn restore_keyed(&mut self, chunk: &KeyedChunk, version: u32) -> Result<()> {
        check_version::<Self>(version)?;
        match self.keyed_state() {
            Some(store) => store.restore(chunk),
            None => Err(Error::msg(
                "the state has keyed state for this operator, which keeps none \
                 (Operator::keyed_state returns None)",
            )),
        }
    }

    /// A checkpoint this operator's state belongs to is durable everywhere.
    fn checkpoint_complete(&mut self, checkpoint_id: u64) {
        let _ = checkpoint_id;
    }
}

/// Refuses state in an encoding `T` does not know.
fn check_version<T: Operator>(version: u32) -> Result<()> {
    if version == T::STATE_VERSION {
        return Ok(());
    }
    Err(Error::msg(format!(
        "the state is in encoding version {version}, this operator reads version {}; \
         implement Operator::restore (and restore_keyed) to migrate it",
        T::STATE_VERSION
    )))
}

/// An [`Operator`] with its type erased, driven a whole batch per call.
pub trait DynOperator {
    fn open(&mut self, ctx: &Context) -> Result<()>;
    /// `key_groups`: each record's key group on a by-key input, else empty.
    fn process_batch(
        &mut self,
        input: u32,
        batch: &PackedBatch,
        key_groups: &[u16],
        out: &mut Emitter,
    ) -> Result<()>;
    /// Timers of `domain` fired: a record per timer (its key and timestamp) and each one's
    /// key group.
    fn on_timers(
        &mut self,
        domain: TimeDomain,
        timers: &PackedBatch,
        key_groups: &[u16],
        out: &mut Emitter,
    ) -> Result<()>;
    fn finish(&mut self, out: &mut Emitter) -> Result<()>;
    fn keyed_store(&mut self) -> Option<&mut dyn KeyedStore>;
    /// Both parts of the state, as the host stores them.
    fn snapshot_state(&mut self) -> Result<Snapshot>;
    /// [`snapshot_state`](Self::snapshot_state) for the host, the keyed state lent where
    /// its store can (see [`KeyedStore::lend`]).
    ///
    /// # Safety
    ///
    /// As [`KeyedStore::lend`]: the snapshot goes straight to the host, and the operator is
    /// not touched before it is dropped.
    #[doc(hidden)]
    unsafe fn snapshot_for_host(&mut self) -> Result<Snapshot>;
    fn restore_keyed_chunks(&mut self, version: u32, chunks: &[KeyedChunk]) -> Result<()>;
    fn restore_items(&mut self, version: u32, items: &[Vec<u8>]) -> Result<()>;
    fn checkpoint_complete(&mut self, checkpoint_id: u64);
}

impl<T: Operator> DynOperator for T {
    fn open(&mut self, ctx: &Context) -> Result<()> {
        Operator::open(self, ctx)
    }

    fn process_batch(
        &mut self,
        input: u32,
        batch: &PackedBatch,
        key_groups: &[u16],
        out: &mut Emitter,
    ) -> Result<()> {
        for record in batch.records_in_key_groups(input, key_groups)? {
            self.process(record, out)?;
        }
        Ok(())
    }

    fn on_timers(
        &mut self,
        domain: TimeDomain,
        timers: &PackedBatch,
        key_groups: &[u16],
        out: &mut Emitter,
    ) -> Result<()> {
        for record in timers.records_in_key_groups(0, key_groups)? {
            self.on_timer(Timer::new(domain, record)?, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        Operator::finish(self, out)
    }

    fn keyed_store(&mut self) -> Option<&mut dyn KeyedStore> {
        self.keyed_state()
    }

    fn snapshot_state(&mut self) -> Result<Snapshot> {
        snapshot_with(self, |store| store.snapshot())
    }

    unsafe fn snapshot_for_host(&mut self) -> Result<Snapshot> {
        // SAFETY: the caller's promise is `lend`'s.
        snapshot_with(self, |store| {
            unsafe { store.lend() }.unwrap_or_else(|| store.snapshot())
        })
    }

    fn restore_keyed_chunks(&mut self, version: u32, chunks: &[KeyedChunk]) -> Result<()> {
        chunks
            .iter()
            .try_for_each(|chunk| Operator::restore_keyed(self, chunk, version))
    }

    fn restore_items(&mut self, version: u32, items: &[Vec<u8>]) -> Result<()> {
        items
            .iter()
            .try_for_each(|item| Operator::restore(self, item, version))
    }

    fn checkpoint_complete(&mut self, checkpoint_id: u64) {
        Operator::checkpoint_complete(self, checkpoint_id)
    }
}

/// Both parts of `operator`'s state, its keyed state's chunks taken by `chunks`.
fn snapshot_with<T: Operator>(
    operator: &mut T,
    chunks: impl FnOnce(&dyn KeyedStore) -> Vec<KeyedChunk>,
) -> Result<Snapshot> {
    let item = Operator::snapshot(operator)?;
    let (keyed, value_encoding) = match operator.keyed_state() {
        Some(store) => (chunks(store), store.value_encoding()),
        None => (Vec::new(), Default::default()),
    };
    Ok(Snapshot {
        version: T::STATE_VERSION,
        operator_state: if item.is_empty() {
            Vec::new()
        } else {
            vec![item]
        },
        mode: T::OPERATOR_STATE_MODE,
        keyed,
        value_encoding,
    })
}

/// A new, boxed instance of operator `T`, for [`Job::operator`].
pub fn operator<T: Operator>() -> Option<Box<dyn DynOperator>> {
    Some(Box::new(T::default()))
}

/// A job: its graph, and the operators that graph names.
pub trait Job {
    /// The job graph for these arguments. An error is shown to the user.
    fn describe(args: &Args) -> Result<JobGraph>;

    /// A new instance of the operator called `name` in the graph, or `None` for a name this
    /// job does not know: `match name { "count" => operator::<Count>(), _ => None }`.
    fn operator(name: &str) -> Option<Box<dyn DynOperator>>;
}

/// One running operator subtask: the operator plus its context and output buffer. The
/// component export drives it, and so can native code (tests, benchmarks).
pub struct OperatorInstance {
    operator: Box<dyn DynOperator>,
    ctx: Context,
    out: Emitter,
}

impl OperatorInstance {
    /// Creates and opens operator `name` of job `J`.
    pub fn open<J: Job>(ctx: Context, name: &str) -> Result<Self> {
        let mut operator = J::operator(name)
            .ok_or_else(|| Error::msg(format!("this job has no operator named {name:?}")))?;
        if let Some(store) = operator.keyed_store() {
            store.open(ctx.key_groups, ctx.max_parallelism);
        }
        operator.open(&ctx)?;
        Ok(OperatorInstance {
            operator,
            ctx,
            out: Emitter::default(),
        })
    }

    pub fn context(&self) -> &Context {
        &self.ctx
    }

    /// Processes a batch of input `input`; `key_groups` has each record's key group on a
    /// by-key input, and is empty on others.
    pub fn process(
        &mut self,
        input: u32,
        batch: &PackedBatch,
        key_groups: &[u16],
    ) -> Result<PackedBatch> {
        self.operator
            .process_batch(input, batch, key_groups, &mut self.out)?;
        Ok(self.out.take())
    }

    /// Timers of `domain` fired: a record per timer, key groups as for a by-key input.
    pub fn on_timers(
        &mut self,
        domain: TimeDomain,
        timers: &PackedBatch,
        key_groups: &[u16],
    ) -> Result<PackedBatch> {
        self.operator
            .on_timers(domain, timers, key_groups, &mut self.out)?;
        Ok(self.out.take())
    }

    pub fn finish(&mut self) -> Result<PackedBatch> {
        self.operator.finish(&mut self.out)?;
        Ok(self.out.take())
    }

    pub fn snapshot(&mut self) -> Result<Snapshot> {
        self.operator.snapshot_state()
    }

    /// [`snapshot`](Self::snapshot) for the host: keyed state lent, not copied.
    ///
    /// # Safety
    ///
    /// As [`KeyedStore::lend`]: the snapshot goes straight to the host, and this instance
    /// is not touched before it is dropped.
    #[cfg(target_arch = "wasm32")]
    pub(crate) unsafe fn snapshot_for_host(&mut self) -> Result<Snapshot> {
        // SAFETY: the caller's promise.
        unsafe { self.operator.snapshot_for_host() }
    }

    /// Adds keyed state, before [`restore`](Self::restore).
    pub fn restore_keyed(&mut self, version: u32, chunks: &[KeyedChunk]) -> Result<()> {
        self.operator.restore_keyed_chunks(version, chunks)
    }

    /// Restores operator-wide state, last, and opens the operator again.
    pub fn restore(&mut self, version: u32, items: &[Vec<u8>]) -> Result<()> {
        self.operator.restore_items(version, items)?;
        self.operator.open(&self.ctx)
    }

    pub fn checkpoint_complete(&mut self, checkpoint_id: u64) {
        self.operator.checkpoint_complete(checkpoint_id)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::*;

    #[derive(Default, Serialize, Deserialize)]
    struct Sum {
        sums: BTreeMap<String, u64>,
        #[serde(skip)]
        opened: u32,
    }

    impl Operator for Sum {
        fn open(&mut self, _ctx: &Context) -> Result<()> {
            self.opened += 1;
            Ok(())
        }

        fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
            let key = record.key_str()?;
            let sum = self.sums.entry(key.to_owned()).or_default();
            *sum += record.value_str()?.parse::<u64>()?;
            out.emit_fmt(format_args!("{key}={sum}"));
            Ok(())
        }
    }

    struct SumJob;

    impl Job for SumJob {
        fn describe(_args: &Args) -> Result<JobGraph> {
            Ok(JobGraph::new("sum"))
        }

        fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
            match name {
                "sum" => operator::<Sum>(),
                _ => None,
            }
        }
    }

    fn ctx() -> Context {
        Context {
            job_id: "0".repeat(32),
            operator_uid: "sum".into(),
            subtask: 0,
            parallelism: 1,
            attempt: 0,
            options: vec![("limit".into(), "1".into()), ("limit".into(), "2".into())],
            max_parallelism: 128,
            key_groups: crate::KeyGroupRange {
                first: 0,
                last: 127,
            },
        }
    }

    fn batch(records: &[(&str, &str)]) -> PackedBatch {
        let mut out = Emitter::default();
        for (k, v) in records {
            out.emit_keyed(k, v);
        }
        out.take()
    }

    fn values(batch: &PackedBatch) -> Vec<String> {
        batch
            .records(0)
            .unwrap()
            .map(|r| r.value_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn state_survives_snapshot_and_restore() {
        let mut first = OperatorInstance::open::<SumJob>(ctx(), "sum").unwrap();
        assert_eq!(first.context().option("limit"), Some("2"));
        assert_eq!(first.context().option("other"), None);
        let out = first
            .process(0, &batch(&[("a", "1"), ("b", "2"), ("a", "3")]), &[])
            .unwrap();
        assert_eq!(values(&out), ["a=1", "b=2", "a=4"]);
        let state = first.snapshot().unwrap();

        let mut second = OperatorInstance::open::<SumJob>(ctx(), "sum").unwrap();
        assert!(state.keyed.is_empty());
        second
            .restore(state.version, &state.operator_state)
            .unwrap();
        let out = second.process(0, &batch(&[("a", "10")]), &[]).unwrap();
        assert_eq!(values(&out), ["a=14"]);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = OperatorInstance::open::<SumJob>(ctx(), "nope")
            .err()
            .unwrap();
        assert_eq!(err.message(), "this job has no operator named \"nope\"");
        let mut op = OperatorInstance::open::<SumJob>(ctx(), "sum").unwrap();
        let err = op.process(0, &batch(&[("a", "x")]), &[]).unwrap_err();
        assert_eq!(err.message(), "invalid digit found in string");
        assert!(op.restore(1, &[vec![0xff, 0xff]]).is_err());
        let items = op.snapshot().unwrap().operator_state;
        assert_eq!(
            op.restore(2, &items).unwrap_err().message(),
            "the state is in encoding version 2, this operator reads version 1; \
             implement Operator::restore (and restore_keyed) to migrate it"
        );
        let chunk = KeyedChunk {
            key_group: 0,
            entries: Vec::new(),
        };
        assert!(
            op.restore_keyed(1, &[chunk])
                .unwrap_err()
                .message()
                .contains("keeps none")
        );
    }
}
