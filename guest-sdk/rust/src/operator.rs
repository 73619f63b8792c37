//! Operators, jobs, and the per-subtask instance that drives an operator batch by batch.

use serde::{Serialize, de::DeserializeOwned};

use crate::{Args, Context, Emitter, Error, JobGraph, PackedBatch, Record, Result, State};

/// A stream operator. The struct is its state: serde serialises it for checkpoints, so mark
/// fields that are not state (caches, handles) `#[serde(skip)]` and set them in
/// [`open`](Operator::open).
pub trait Operator: Default + Serialize + DeserializeOwned + 'static {
    /// The version of this operator's state encoding, stored with every snapshot and handed
    /// back to [`restore`](Operator::restore). Raise it when the encoding changes, and teach
    /// `restore` to read (migrate) the older versions.
    const STATE_VERSION: u32 = 1;

    /// Called when the subtask starts, and again after its state was restored.
    fn open(&mut self, ctx: &Context) -> Result<()> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record, emitting any number of records to `out`.
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()>;

    /// All inputs have ended: emit any last records.
    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        let _ = out;
        Ok(())
    }

    /// The whole state, by default the struct in [postcard] encoding.
    fn snapshot(&self) -> Result<Vec<u8>> {
        postcard::to_allocvec(self).map_err(|e| Error::msg(format!("cannot encode state: {e}")))
    }

    /// Replaces the state with one from [`snapshot`](Operator::snapshot) — possibly written
    /// by other code, in encoding `version`. By default the struct is decoded from postcard,
    /// and only the operator's own [`STATE_VERSION`](Operator::STATE_VERSION) is accepted.
    fn restore(&mut self, state: &[u8], version: u32) -> Result<()> {
        if version != Self::STATE_VERSION {
            return Err(Error::msg(format!(
                "the state is in encoding version {version}, this operator reads version {}; \
                 implement Operator::restore to migrate it",
                Self::STATE_VERSION
            )));
        }
        *self = postcard::from_bytes(state)
            .map_err(|e| Error::msg(format!("cannot decode state: {e}")))?;
        Ok(())
    }

    /// A checkpoint this operator's state belongs to is durable everywhere.
    fn checkpoint_complete(&mut self, checkpoint_id: u64) {
        let _ = checkpoint_id;
    }
}

/// An [`Operator`] with its type erased, driven a whole batch per call.
pub trait DynOperator {
    fn open(&mut self, ctx: &Context) -> Result<()>;
    fn process_batch(&mut self, input: u32, batch: &PackedBatch, out: &mut Emitter) -> Result<()>;
    fn finish(&mut self, out: &mut Emitter) -> Result<()>;
    fn snapshot(&self) -> Result<State>;
    fn restore(&mut self, state: &State) -> Result<()>;
    fn checkpoint_complete(&mut self, checkpoint_id: u64);
}

impl<T: Operator> DynOperator for T {
    fn open(&mut self, ctx: &Context) -> Result<()> {
        Operator::open(self, ctx)
    }

    fn process_batch(&mut self, input: u32, batch: &PackedBatch, out: &mut Emitter) -> Result<()> {
        for record in batch.records(input)? {
            self.process(record, out)?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Emitter) -> Result<()> {
        Operator::finish(self, out)
    }

    fn snapshot(&self) -> Result<State> {
        Ok(State {
            version: T::STATE_VERSION,
            data: Operator::snapshot(self)?,
        })
    }

    fn restore(&mut self, state: &State) -> Result<()> {
        Operator::restore(self, &state.data, state.version)
    }

    fn checkpoint_complete(&mut self, checkpoint_id: u64) {
        Operator::checkpoint_complete(self, checkpoint_id)
    }
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

    pub fn process(&mut self, input: u32, batch: &PackedBatch) -> Result<PackedBatch> {
        self.operator.process_batch(input, batch, &mut self.out)?;
        Ok(self.out.take())
    }

    pub fn finish(&mut self) -> Result<PackedBatch> {
        self.operator.finish(&mut self.out)?;
        Ok(self.out.take())
    }

    pub fn snapshot(&self) -> Result<State> {
        self.operator.snapshot()
    }

    pub fn restore(&mut self, state: &State) -> Result<()> {
        self.operator.restore(state)?;
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
            .process(0, &batch(&[("a", "1"), ("b", "2"), ("a", "3")]))
            .unwrap();
        assert_eq!(values(&out), ["a=1", "b=2", "a=4"]);
        let state = first.snapshot().unwrap();

        let mut second = OperatorInstance::open::<SumJob>(ctx(), "sum").unwrap();
        second.restore(&state).unwrap();
        let out = second.process(0, &batch(&[("a", "10")])).unwrap();
        assert_eq!(values(&out), ["a=14"]);
    }

    #[test]
    fn errors_name_the_problem() {
        let err = OperatorInstance::open::<SumJob>(ctx(), "nope")
            .err()
            .unwrap();
        assert_eq!(err.message(), "this job has no operator named \"nope\"");
        let mut op = OperatorInstance::open::<SumJob>(ctx(), "sum").unwrap();
        let err = op.process(0, &batch(&[("a", "x")])).unwrap_err();
        assert_eq!(err.message(), "invalid digit found in string");
        let garbage = State {
            version: 1,
            data: vec![0xff, 0xff],
        };
        assert!(op.restore(&garbage).is_err());
        let newer = State {
            version: 2,
            data: op.snapshot().unwrap().data,
        };
        assert_eq!(
            op.restore(&newer).unwrap_err().message(),
            "the state is in encoding version 2, this operator reads version 1; \
             implement Operator::restore to migrate it"
        );
    }
}
