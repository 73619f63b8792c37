//! Word count that fails on purpose, for fault-tolerance tests: the same arguments and
//! output as word-count, plus
//!
//! `--fail-mode trap|error|loop|oom --fail-at N --fail-attempts K`
//!
//! Each counter subtask fails, in the given way, when it sees its N-th record, as long as
//! the job's attempt number (0 on the first run) is below K.

use cairn_sdk::KeyedChunk;
use cairn_sdk::prelude::*;
use word_count::{Count, Split};

/// How the counter fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FailMode {
    /// Panics: the instance traps.
    Trap,
    /// Returns an `err` result.
    Error,
    /// Never returns: only the host's call deadline stops it.
    Loop,
    /// Allocates until the host's memory limit stops it.
    Oom,
}

impl std::str::FromStr for FailMode {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "trap" => Ok(FailMode::Trap),
            "error" => Ok(FailMode::Error),
            "loop" => Ok(FailMode::Loop),
            "oom" => Ok(FailMode::Oom),
            other => Err(Error::msg(format!(
                "unknown fail mode {other:?} (trap, error, loop or oom)"
            ))),
        }
    }
}

/// Word-count's counter, with a fault to inject.
#[derive(Default, Serialize, Deserialize)]
pub struct FlakyCount {
    count: Count,
    /// Records seen by this instance (not state: it restarts with the instance).
    #[serde(skip)]
    seen: u64,
    #[serde(skip)]
    fault: Option<(FailMode, u64)>,
}

impl Operator for FlakyCount {
    const STATE_VERSION: u32 = Count::STATE_VERSION;

    fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
        self.count.keyed_state()
    }

    fn restore_keyed(&mut self, chunk: &KeyedChunk, version: u32) -> Result<()> {
        self.count.restore_keyed(chunk, version)
    }

    fn open(&mut self, ctx: &Context) -> Result<()> {
        let option = |name| {
            ctx.option(name)
                .ok_or_else(|| Error::msg(format!("missing option {name}")))
        };
        let attempts: u32 = option("fail-attempts")?.parse()?;
        self.fault = if ctx.attempt < attempts {
            Some((option("fail-mode")?.parse()?, option("fail-at")?.parse()?))
        } else {
            None
        };
        Ok(())
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        self.seen += 1;
        if let Some((mode, at)) = self.fault
            && self.seen == at
        {
            fail(mode, at)?;
        }
        self.count.process(record, out)
    }
}

fn fail(mode: FailMode, at: u64) -> Result<()> {
    match mode {
        FailMode::Trap => panic!("flaky: injected trap at record {at}"),
        FailMode::Error => Err(Error::msg(format!("flaky: injected error at record {at}"))),
        FailMode::Loop => loop {
            std::hint::black_box(at);
        },
        FailMode::Oom => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1; 16 << 20]);
                std::hint::black_box(&hoard);
            }
        }
    }
}

pub struct Flaky;

impl Job for Flaky {
    fn describe(args: &Args) -> Result<JobGraph> {
        let mode: FailMode = args.required("--fail-mode")?.parse()?;
        let at: u64 = args.parse_or("--fail-at", 1)?;
        let attempts: u32 = args.parse_or("--fail-attempts", 1)?;
        let mut job = JobGraph::new("flaky");
        job.source("lines", word_count::input(args)?)
            .parallelism(1)
            .operator("split", "split", Partitioning::Rebalance)
            .operator("count", "flaky-count", Partitioning::ByKey)
            .option("fail-mode", format!("{mode:?}").to_lowercase())
            .option("fail-at", at.to_string())
            .option("fail-attempts", attempts.to_string())
            .sink("out", word_count::output(args)?, Partitioning::Forward);
        Ok(job)
    }

    fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
        match name {
            "split" => operator::<Split>(),
            "flaky-count" => operator::<FlakyCount>(),
            _ => None,
        }
    }
}

cairn_sdk::export_job!(Flaky);
