//! Keyed running sum: emits `key<TAB>sum` for every record, keyed by its key.
//!
//! `cairn run keyed-sum.wasm -- --records 10000000 --keys 100000 [--rate R] [--output DIR]`
//! sums the generator source (`--records 0` runs unbounded; without `--output` results go
//! to the blackhole sink). `--input kafka://HOST:PORT/TOPIC` sums a topic's records instead
//! (keyed, 8-byte little-endian values; up to the end it had at the start, as word-count
//! reads one), and `--output kafka://HOST:PORT/TOPIC` writes a topic exactly-once; options
//! after `?` override those defaults.

use cairn_sdk::prelude::*;

/// Adds each record's value (a little-endian u64) to its key's sum, kept in keyed state
/// (version 2: key → sum, u64 little-endian; version 1 was a serde map).
#[derive(Default, Serialize, Deserialize)]
pub struct Sum {
    sums: KeyedState<u64>,
}

impl Operator for Sum {
    const STATE_VERSION: u32 = 2;

    fn keyed_state(&mut self) -> Option<&mut dyn KeyedStore> {
        Some(&mut self.sums)
    }

    fn process(&mut self, record: Record<'_>, out: &mut Emitter) -> Result<()> {
        let value: [u8; 8] = record
            .value()
            .try_into()
            .map_err(|_| Error::msg("keyed-sum expects 8-byte values"))?;
        let mut sum = self.sums.get_or_default(&record)?;
        *sum = sum.wrapping_add(u64::from_le_bytes(value));
        let sum = *sum;
        let key = record.key().unwrap_or_default();
        out.emit_keyed_parts(key, |v| {
            v.bytes(key).byte(b'\t').u64(sum);
        });
        Ok(())
    }
}

pub struct KeyedSum;

impl Job for KeyedSum {
    fn describe(args: &Args) -> Result<JobGraph> {
        let records = args.parse_or("--records", 10_000_000u64)?;
        let keys = args.parse_or("--keys", 100_000u64)?;
        let rate = args.parse_or("--rate", 0u64)?;
        let sink = match (args.kafka("--output")?, args.value("--output")) {
            (Some(kafka), _) => kafka.sink(&[("sink.delivery-guarantee", "exactly-once")]),
            (None, Some(dir)) => Sink::file(dir),
            (None, None) => Sink::blackhole(),
        };
        let source = match (args.kafka("--input")?, args.value("--input")) {
            (Some(kafka), _) => kafka.source(&[("scan.bounded.mode", "latest-offset")]),
            (None, Some(other)) => {
                return Err(Error::msg(format!(
                    "--input {other}: keyed-sum reads a kafka://HOST:PORT/TOPIC address (or the \
                     generator, without --input)"
                )));
            }
            (None, None) => Source::generator(records, keys).option("rate", rate.to_string()),
        };
        let mut job = JobGraph::new("keyed-sum");
        job.source("numbers", source)
            .operator("sum", "sum", Partitioning::ByKey)
            .sink("out", sink, Partitioning::Forward);
        Ok(job)
    }

    fn operator(name: &str) -> Option<Box<dyn DynOperator>> {
        match name {
            "sum" => operator::<Sum>(),
            _ => None,
        }
    }
}

cairn_sdk::export_job!(KeyedSum);
