// Word count in JavaScript: the same job, graph, arguments and output as the Rust
// `word-count`, and the same `count` state as `word-count-v2` (state version 2), so that a
// running job can be swapped between the Rust and the JavaScript code.
//
//   cairn run word-count-js.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
//
// Emits `word<TAB>n` for the n-th occurrence of each word, so that the complete output is
// known from the input alone. `-` as input reads standard input; `-` as output writes to
// standard output; `--rate` paces reading the file, for watching a job run.
//
// Words never leave UTF-8: both operators work on binary strings (one character per byte,
// see the SDK's `bytesToBinary`), which QuickJS slices, hashes and compares natively, and
// which sort by Unicode code point as Rust's strings do.

import { JobGraph, Operator, Partitioning, Sink, Source, binaryToBytes, binaryToText, bytesToBinary, exportJob, log } from "cairn-sdk";

/**
 * Splits lines into words on Unicode whitespace, exactly as Rust's `char::is_whitespace`
 * (the White_Space property; JavaScript's `\s` differs: it has U+FEFF and lacks U+0085),
 * keyed by the word.
 */
class Split extends Operator {
  processBatch(batch, out) {
    // Whitespace becomes spaces in the whole batch at once (a few native string calls per
    // batch rather than a regular expression per line), keeping every byte position.
    const text = spaceOutWhitespace(batch.binary());
    for (const record of batch) {
      const words = text.substring(record.valueStart, record.valueEnd).split(" ");
      for (let i = 0; i < words.length; i++) {
        if (words[i] !== "") out.emitBinary(words[i], "");
      }
    }
  }
}

/** Unicode's White_Space characters other than the space, in UTF-8, by their first byte. */
const WHITESPACE = [
  ["\t", ["\t"]],
  ["\n", ["\n"]],
  ["\v", ["\v"]],
  ["\f", ["\f"]],
  ["\r", ["\r"]],
  ["\xc2", ["\xc2\x85", "\xc2\xa0"]], // U+0085, U+00A0
  ["\xe1", ["\xe1\x9a\x80"]], // U+1680
  // U+2000-U+200A, U+2028, U+2029, U+202F, U+205F
  ["\xe2", [..."\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\xa8\xa9\xaf"].map((b) => "\xe2\x80" + b).concat("\xe2\x81\x9f")],
  ["\xe3", ["\xe3\x80\x80"]], // U+3000
];

/** `binary` (UTF-8) with every whitespace character replaced by as many spaces as it has bytes. */
function spaceOutWhitespace(binary) {
  for (const [first, sequences] of WHITESPACE) {
    if (!binary.includes(first)) continue;
    for (const sequence of sequences) {
      if (binary.includes(sequence)) binary = binary.replaceAll(sequence, " ".repeat(sequence.length));
    }
  }
  return binary;
}

/**
 * Counts occurrences per word and emits the running count.
 *
 * State version 2 (shared with Rust's `word-count-v2`): UTF-8 text, one `word<TAB>count<LF>`
 * line per word, sorted by word (by code point, which is UTF-8 byte order).
 */
class Count extends Operator {
  static STATE_VERSION = 2;

  /** Word (UTF-8 binary string) → count. */
  counts = new Map();

  process(record, out) {
    const word = record.keyBinary();
    const n = (this.counts.get(word) ?? 0) + 1;
    this.counts.set(word, n);
    out.emitBinary("", word + "\t" + n);
  }

  snapshot() {
    const words = [...this.counts.keys()].sort();
    const lines = new Array(words.length);
    for (let i = 0; i < words.length; i++) lines[i] = words[i] + "\t" + this.counts.get(words[i]) + "\n";
    return binaryToBytes(lines.join(""));
  }

  restore(data, version) {
    if (version !== 2) {
      throw new Error(`unknown state version ${version}: this count reads version 2`);
    }
    this.counts = parseV2(bytesToBinary(data));
    log.info(`restored ${this.counts.size} word counts from state version 2`);
  }
}

/** Reads version 2 state (as a binary string), as strictly as Rust's `word-count-v2`. */
function parseV2(binary) {
  try {
    binaryToText(binary);
  } catch {
    throw new Error("version 2 state is not UTF-8");
  }
  const counts = new Map();
  const lines = binary.split("\n");
  if (lines[lines.length - 1] === "") lines.pop();
  for (let line of lines) {
    if (line.endsWith("\r")) line = line.slice(0, -1);
    const tab = line.indexOf("\t");
    if (tab < 0) throw new Error(`version 2 state: no tab in line ${JSON.stringify(binaryToText(line))}`);
    const n = line.slice(tab + 1);
    if (!/^\+?[0-9]+$/.test(n) || Number(n) > Number.MAX_SAFE_INTEGER) {
      throw new Error(`version 2 state: invalid count ${JSON.stringify(binaryToText(n))}`);
    }
    counts.set(line.slice(0, tab), Number(n));
  }
  return counts;
}

/** The graph: `--input PATH|-`, `--output DIR|-`, optional `--rate LINES_PER_S`. */
function describe(args) {
  const input = args.required("--input");
  const output = args.required("--output");
  const rate = args.value("--rate");
  let source = Source.stdin();
  if (input !== "-") {
    source = Source.file(input);
    if (rate !== undefined) source.option("rate", rate);
  }
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
