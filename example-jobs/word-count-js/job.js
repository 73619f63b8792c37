// Word count in JavaScript: the same job, graph, arguments and output as the Rust
// `word-count`, and the same `count` state as `word-count-v2` (state version 2), so that a
// running job can be swapped between the Rust and the JavaScript code in either direction.
//
//   cairn run word-count-js.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
//
// Emits `word<TAB>n` for the n-th occurrence of each word, so that the complete output is
// known from the input alone. `-` as input reads standard input; `-` as output writes to
// standard output; `--rate` paces reading the file.

import { JobGraph, Operator, Partitioning, Sink, Source, exportJob, log } from "cairn-sdk";

/** Splits lines into words on Unicode whitespace (as Rust's `char::is_whitespace`). */
class Split extends Operator {
  process(record, out) {
    for (const word of record.valueString().split(WHITESPACE)) {
      if (word !== "") out.emitKeyed(word, "");
    }
  }
}

// The White_Space property, which Rust's `char::is_whitespace` is. JavaScript's `\s` is
// not: it has U+FEFF and lacks U+0085.
const WHITESPACE = /[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Counts occurrences per word and emits the running count. */
class Count extends Operator {
  static STATE_VERSION = 2;

  counts = new Map();

  process(record, out) {
    const word = record.keyString();
    const n = (this.counts.get(word) ?? 0) + 1;
    this.counts.set(word, n);
    out.emit(`${word}\t${n}`);
  }

  snapshot() {
    return "";
  }

  restore(data, version) {}
}

function describe(args) {
  const input = args.required("--input");
  const output = args.required("--output");
  const rate = args.value("--rate");
  let source = input === "-" ? Source.stdin() : Source.file(input);
  if (rate !== undefined && input !== "-") source = source.option("rate", rate);
  const sink = output === "-" ? Sink.stdout() : Sink.file(output);

  const job = new JobGraph("word-count");
  job
    .source("lines", source)
    .parallelism(1)
    .operator("split", "split", Partitioning.REBALANCE)
    .operator("count", "count", Partitioning.BY_KEY)
    .sink("out", sink, Partitioning.FORWARD);
  return job;
}

export const job = exportJob({ describe, operators: { split: Split, count: Count } });
