//! Word count, the oracle job: emits `word<TAB>n` for the n-th occurrence of each word, so
//! its complete output is known from the input alone.
//!
//! `cairn run word-count.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]`
//! (`-` as input reads standard input; `-` as output writes to standard output; `--rate`
//! paces reading the file, for watching a job run.)

use std::collections::HashMap;

use cairn_sdk::prelude::*;

/// Splits lines into words on Unicode whitespace, keyed by the word.
#[derive(Default, Serialize, Deserialize)]
pub struct Split;

impl Operator for Split {
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        for word in record.value_str()?.split(char::is_whitespace) {
            if !word.is_empty() {
                out.emit_keyed(word, []);
            }
        }
        Ok(())
    }
}

/// Counts occurrences per word and emits the running count.
#[derive(Default, Serialize, Deserialize)]
pub struct Count {
    counts: HashMap<String, u64>,
}

impl Operator for Count {
    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let word = record.key_str()?;
        let n = match self.counts.get_mut(word) {
            Some(n) => n,
            None => self.counts.entry(word.to_owned()).or_default(),
        };
        *n += 1;
        out.emit_parts(|v| {
            v.str(word).byte(b'\t').u64(*n);
        });
        Ok(())
    }
}

/// The source `--input PATH|-` and `--rate LINES_PER_S` name.
pub fn input(args: &Args) -> Result<Source> {
    Ok(match (args.required("--input")?, args.value("--rate")) {
        ("-", _) => Source::stdin(),
        (path, None) => Source::file(path),
        (path, Some(rate)) => Source::file(path).option("rate", rate),
    })
}

/// The sink `--output DIR|-` names.
pub fn output(args: &Args) -> Result<Sink> {
    Ok(match args.required("--output")? {
        "-" => Sink::stdout(),
        dir => Sink::file(dir),
    })
}

pub struct WordCount;

impl Job for WordCount {
    fn describe(args: &Args) -> Result<JobGraph> {
        let (source, sink) = (input(args)?, output(args)?);
        let mut job = JobGraph::new("word-count");
        job.source("lines", source)
            .parallelism(1)
            .operator("split", "split", Partitioning::Rebalance)
            .operator("count", "count", Partitioning::ByKey)
            .sink("out", sink, Partitioning::Forward);
        Ok(job)
    }

    fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
        match name {
            "split" => operator::<Split>(),
            "count" => operator::<Count>(),
            _ => None,
        }
    }
}

#[cfg(feature = "component")]
cairn_sdk::export_job!(WordCount);
