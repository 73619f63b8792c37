// Word count in JavaScript: the same job, graph, arguments and output as the Rust
// `word-count`, and the same `count` state (version 3, keyed), so that a running job can be
// swapped between the Rust and the JavaScript code.
//
//   cairn run word-count-js.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]
//
// Emits `word<TAB>n` for the n-th occurrence of each word, so that the complete output is
// known from the input alone, keyed by the word (a Kafka output topic is keyed by word; files
// hold the values). `-` as input reads standard input; `-` as output writes to standard
// output; `--rate` paces reading the file, for watching a job run. `kafka://HOST:PORT/TOPIC`
// as input reads the topic from its earliest offset to the end it had when the job first
// started, then ends, as a file does; as output it writes the topic exactly-once.
//
// Words never leave UTF-8: both operators work on binary strings (one character per byte,
// see the SDK's `bytesToBinary`), which QuickJS slices, hashes and compares natively, and
// which sort by Unicode code point as Rust's strings do.

import {
  JobGraph,
  KeyedState,
  Operator,
  Partitioning,
  Sink,
  Source,
  binaryToText,
  bytesToBinary,
  codecs,
  exportJob,
  log,
  spaceOutWhitespace,
} from "cairn-sdk";

/**
 * Splits lines into words on Unicode whitespace, exactly as Rust's `char::is_whitespace`
 * (the White_Space property; JavaScript's `\s` differs: it has U+FEFF and lacks U+0085),
 * keyed by the word.
 */
class Split extends Operator {
  processBatch(batch, out) {
    // Lines must be UTF-8, as for Rust's split (the file source checks it, standard input
    // does not): checked for the whole batch at once, then line by line to name the culprit.
    try {
      binaryToText(batch.binary());
    } catch {
      for (const record of batch) record.valueString();
    }
    // Whitespace becomes spaces in the whole batch at once (native searches over the batch
    // rather than a regular expression per line), keeping every byte position.
    const text = bytesToBinary(spaceOutWhitespace(batch.data));
    for (const record of batch) {
      const words = text.substring(record.valueStart, record.valueEnd).split(" ");
      for (let i = 0; i < words.length; i++) {
        if (words[i] !== "") out.emitBinary(words[i], "");
      }
    }
  }
}

/**
 * Counts occurrences per word and emits the running count.
 *
 * Its state encodings, the contract every language's word count shares (see Rust's
 * `word_count::Count`), of which this one writes version 3 and reads 2 to 4:
 *
 * - version 2 (the word counts on `cairn:job@0.2.0`): operator-wide UTF-8 text, one
 *   `word<TAB>count<LF>` line per word, sorted by word.
 * - version 3 (this one, and Rust's `word-count`): keyed state — key: the word (UTF-8),
 *   value: its count, u64 little-endian; no operator-wide state.
 * - version 4 (Rust's `word-count-v2`): keyed state — key: the word, value: its count in
 *   decimal UTF-8 digits.
 *
 * Versions 2 and 4 are migrated into version 3 on restore. Version 1 (postcard, only in very
 * old Rust savepoints) is refused.
 */
class Count extends Operator {
  static STATE_VERSION = 3;

  /** Word (UTF-8 binary string) → count. */
  counts = new KeyedState(codecs.u64);
  /** Word counts migrated from an older encoding, and which: logged once restored. */
  #migrated = { count: 0, version: 0 };

  open() {
    const { count, version } = this.#migrated;
    if (version !== 0) log.info(`migrated ${count} word counts from state version ${version}`);
    this.#migrated = { count: 0, version: 0 };
  }

  process(record, out) {
    const n = this.counts.update(record, increment);
    const word = record.keyBinary();
    out.emitBinary(word, word + "\t" + n);
  }

  restoreKeyed(chunk, version) {
    if (version === 3) this.counts.restore(chunk);
    else if (version === 4) this.#migrate(this.counts.restore(chunk, (digits) => parseCount(digits, 4)), 4);
    else throw unknownVersion(version);
  }

  restore(data, version) {
    if (version !== 2) throw unknownVersion(version);
    const counts = parseV2(bytesToBinary(data));
    for (const [word, n] of counts) this.counts.setKey(word, n);
    this.#migrate(counts.size, 2);
  }

  #migrate(count, version) {
    this.#migrated = { count: this.#migrated.count + count, version };
  }
}

const increment = (n = 0) => n + 1;

function unknownVersion(version) {
  return new Error(`unknown state version ${version}: this count reads versions 2, 3 and 4`);
}

/** Reads version 2 state (as a binary string), as strictly as Rust's word counts. */
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
    counts.set(line.slice(0, tab), parseCount(line.slice(tab + 1), 2));
  }
  return counts;
}

/** A count in decimal digits (a binary string), as Rust's `u64::from_str` reads it. */
function parseCount(digits, version) {
  if (!/^\+?[0-9]+$/.test(digits) || Number(digits) > Number.MAX_SAFE_INTEGER) {
    throw new Error(`version ${version} state: invalid count ${JSON.stringify(digits)}`);
  }
  return Number(digits);
}

/**
 * The graph: `--input PATH|-|kafka://HOST:PORT/TOPIC`, `--output DIR|-|kafka://HOST:PORT/TOPIC`,
 * optional `--rate LINES_PER_S`.
 */
function describe(args) {
  const job = new JobGraph("word-count");
  job
    .source("lines", inputSource(args))
    .parallelism(1)
    .operator("split", "split", Partitioning.REBALANCE)
    .operator("count", "count", Partitioning.BY_KEY)
    .sink("out", outputSink(args), Partitioning.FORWARD);
  return job;
}

/** The source `--input` and `--rate` name. */
function inputSource(args) {
  const input = args.required("--input");
  const rate = args.value("--rate");
  const kafka = kafkaAddress("--input", input);
  if (kafka !== null) {
    if (rate !== undefined) throw new Error(`--rate paces a file input; it does not apply to ${input}`);
    return Source.kafka(...kafka).option("scan.bounded.mode", "latest-offset");
  }
  if (input === "-") return Source.stdin();
  const source = Source.file(input);
  if (rate !== undefined) source.option("rate", rate);
  return source;
}

/** The sink `--output` names. */
function outputSink(args) {
  const output = args.required("--output");
  const kafka = kafkaAddress("--output", output);
  if (kafka !== null) return Sink.kafka(...kafka).option("sink.delivery-guarantee", "exactly-once");
  return output === "-" ? Sink.stdout() : Sink.file(output);
}

/**
 * The bootstrap servers and topic of argument `name`'s value if it is a
 * `kafka://HOST:PORT/TOPIC` URL, `null` if it is not one; throws if it is malformed.
 * @returns {[string, string] | null}
 */
function kafkaAddress(name, value) {
  if (!value.startsWith("kafka://")) return null;
  const address = value.slice("kafka://".length);
  const slash = address.indexOf("/");
  const topic = address.slice(slash + 1);
  if (slash <= 0 || topic === "" || topic.includes("/")) {
    throw new Error(`invalid ${name} ${value}: expected kafka://HOST:PORT/TOPIC`);
  }
  return [address.slice(0, slash), topic];
}

export const job = exportJob({ describe, operators: { split: Split, count: Count } });
