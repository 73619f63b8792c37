// Windowed word count in JavaScript: the twin of the Rust `windowed-count`, the event-time
// oracle job (same arguments, graph and output). Counts each word per tumbling window of
// event time, so its complete output is known from the input alone.
//
//   cairn run windowed-count-js.wasm -p 4 -- --input events.txt --output out/ \
//       --window 1000 --max-delay 500 [--rate LINES_PER_S] [--allowed-lateness MS] \
//       [--late-output DIR] [--idleness MS]
//
// Input lines are `<epoch-ms><TAB><text>`; each word of the text (split on whitespace as
// word-count-js splits it) takes the line's timestamp as its event time; a line that is not
// that is skipped and counted in `numMalformedLines`. Watermarks trail the highest timestamp
// by `--max-delay` (Flink's bounded out-of-orderness). Each window of `--window` ms
// (starting at `ts - ts mod window`) emits one line `<window-start><TAB><word><TAB><count>`
// per word once the watermark passes its end, keyed by the word, stamped with the window's
// last millisecond. A record whose window's end (less 1 ms) plus `--allowed-lateness`
// (default 0) is at or behind the watermark when it arrives is late: dropped and counted in
// `numLateRecordsDropped`, or with `--late-output DIR` written there as
// `<timestamp><TAB><word>`. `--input` is a file
// or `-` (standard input), `--output` a folder or `-` (standard output). `--idleness MS`
// marks a stamping subtask idle after MS without records (Flink's `withIdleness`).
//
// Words stay UTF-8 bytes throughout (binary strings, as in word-count-js).

import {
  JobGraph,
  Operator,
  Partitioning,
  Sink,
  Source,
  WatermarkStrategy,
  WindowOperator,
  Windows,
  binaryToText,
  bytesToBinary,
  counterAdd,
  exportJob,
  spaceOutWhitespace,
} from "cairn-sdk";

/** A line of input that is not `<epoch-ms><TAB><text>`: skipped, and counted. */
export const MALFORMED_LINES = "numMalformedLines";

/** The window counts' side output of late records. */
const LATE = "late";

/** Rust's `str::trim` then `i64::from_str`, on a timestamp whose whitespace is spaces. */
const TIMESTAMP = /^ *([+-]?[0-9]+) *$/;

/**
 * Parses `<epoch-ms><TAB><text>` lines into their words, keyed by the word, each with the
 * line's timestamp. Timestamps are JavaScript numbers: beyond ±(2^53 - 1) ms (285,000 years)
 * a line counts as malformed, where Rust's twin reads up to ±2^63.
 */
class Stamp extends Operator {
  processBatch(batch, out) {
    // Lines must be UTF-8 (the file source checks it, standard input does not): checked for
    // the whole batch at once, then line by line to name the culprit.
    try {
      binaryToText(batch.binary());
    } catch {
      for (const record of batch) record.valueString();
    }
    const binary = batch.binary();
    // Whitespace becomes spaces in the whole batch at once, keeping every byte position: the
    // tab is looked for in `binary`, the timestamp and the words in `text`.
    const text = bytesToBinary(spaceOutWhitespace(batch.data));
    let malformed = 0;
    for (const record of batch) {
      const tab = binary.indexOf("\t", record.valueStart);
      const digits = tab >= 0 && tab < record.valueEnd ? TIMESTAMP.exec(text.substring(record.valueStart, tab)) : null;
      const timestamp = digits === null ? NaN : Number(digits[1]);
      if (!Number.isSafeInteger(timestamp)) {
        malformed++;
        continue;
      }
      const words = text.substring(tab + 1, record.valueEnd).split(" ");
      for (let i = 0; i < words.length; i++) {
        if (words[i] !== "") out.emitBinary(words[i], "", timestamp);
      }
    }
    counterAdd(MALFORMED_LINES, malformed);
  }
}

/**
 * Counts a word's records per window. Its state (version 1): per word, its open windows and
 * their counts, `[[start, end, count], …]` as JSON (the SDK's window state).
 */
class WordsPerWindow extends WindowOperator {
  windows(ctx) {
    const ms = (key) => {
      const value = ctx.option(key) ?? "0";
      if (!/^[0-9]+$/.test(value) || !Number.isSafeInteger(Number(value))) {
        throw new Error(`option ${key}: ${JSON.stringify(value)} is not a number of ms`);
      }
      return Number(value);
    };
    const windows = Windows.tumbling(ms("window")).allowedLateness(ms("allowed-lateness"));
    const late = ctx.option("late-output");
    return late === undefined ? windows : windows.lateRecordsTo(late);
  }

  createAccumulator() {
    return 0;
  }

  add(count) {
    return count + 1;
  }

  emit(word, window, count, out) {
    out.emitBinary(word, window.start + "\t" + word + "\t" + count);
  }
}

/** Late words, as `<timestamp><TAB><word>` (the side output's records are the words as stamped). */
class LateWords extends Operator {
  process(record, out) {
    const word = record.keyBinary();
    out.emitBinary(word, (record.timestamp ?? 0) + "\t" + word);
  }
}

/** Argument `name` as a number of milliseconds (u64, as Rust's twin parses it), or `fallback`. */
function ms(args, name, fallback) {
  const raw = args.value(name);
  if (raw === undefined) return fallback;
  if (!/^\+?[0-9]+$/.test(raw) || !Number.isSafeInteger(Number(raw))) {
    throw new Error(`invalid value ${JSON.stringify(raw)} for ${name}: not a number of ms`);
  }
  return Number(raw);
}

/**
 * The graph: `--input PATH|-`, `--output DIR|-`, optional `--rate LINES_PER_S`, `--window
 * MS` (1000), `--max-delay MS` (0), `--idleness MS`, `--allowed-lateness MS` (0),
 * `--late-output DIR`.
 */
function describe(args) {
  const window = ms(args, "--window", 1000);
  try {
    Windows.tumbling(window);
  } catch (e) {
    throw new Error(`--window: ${e.message}`);
  }
  let strategy = WatermarkStrategy.boundedOutOfOrderness(ms(args, "--max-delay", 0));
  if (args.value("--idleness") !== undefined) strategy = strategy.withIdleness(ms(args, "--idleness", 0));
  const lateness = ms(args, "--allowed-lateness", 0);
  const lateOutput = args.value("--late-output");

  const job = new JobGraph("windowed-count");
  const count = job
    .source("lines", inputSource(args))
    .parallelism(1)
    .operator("stamp", "stamp", Partitioning.REBALANCE)
    .watermarks(strategy)
    .operator("count", "count", Partitioning.BY_KEY)
    .option("window", window)
    .option("allowed-lateness", lateness);
  if (lateOutput !== undefined) count.option("late-output", LATE);
  count.sink("out", outputSink(args), Partitioning.FORWARD);
  if (lateOutput !== undefined) {
    count
      .sideOutput(LATE)
      .operator("late-words", "late-words", Partitioning.FORWARD)
      .sink("late-out", Sink.file(lateOutput), Partitioning.FORWARD);
  }
  return job;
}

/** The source `--input` and `--rate` name. */
function inputSource(args) {
  const input = args.required("--input");
  if (input === "-") return Source.stdin();
  const source = Source.file(input);
  const rate = args.value("--rate");
  if (rate !== undefined) source.option("rate", rate);
  return source;
}

/** The sink `--output` names. */
function outputSink(args) {
  const output = args.required("--output");
  return output === "-" ? Sink.stdout() : Sink.file(output);
}

export const job = exportJob({ describe, operators: { stamp: Stamp, count: WordsPerWindow, "late-words": LateWords } });
