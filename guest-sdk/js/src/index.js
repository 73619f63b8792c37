/**
 * Write Cairn jobs in JavaScript.
 *
 * A job is one WebAssembly component that describes its dataflow graph and implements the
 * operators that graph names. With this module a job is a `describe(args)` function returning
 * a `JobGraph`, one class extending `Operator` per operator, and one
 * `export const job = exportJob({ describe, operators })`; the WIT plumbing and the packed
 * batch encoding stay out of sight.
 *
 * ```js
 * import { JobGraph, KeyedState, Operator, Partitioning, Sink, Source, codecs, exportJob } from "cairn-sdk";
 *
 * class Count extends Operator {
 *   counts = new KeyedState(codecs.u64); // a count per key, checkpointed by key group
 *   process(record, out) {
 *     const n = this.counts.update(record, (n = 0) => n + 1);
 *     out.emit(`${record.keyString()}\t${n}`);
 *   }
 * }
 * ```
 *
 * Event time: `WatermarkStrategy` on a node of the graph, timers (`registerTimer`, an
 * operator's `onTimer`), and windows (`WindowOperator`, `Windows`).
 *
 * Build a job with `node guest-sdk/js/build.js job.js -o job.wasm` (QuickJS, through
 * componentize-qjs, the QuickJS backend of jco); see docs/guides/javascript.md.
 *
 * @module cairn-sdk
 */

import * as log from "./log.js";
import { _setErrorLog } from "./operator.js";

_setErrorLog(log.error);

export { Args } from "./args.js";
export { Batch, Emitter, NO_TIMESTAMP, Record } from "./batch.js";
export {
  binaryToBytes,
  binaryToText,
  bytesToBinary,
  decodeText,
  encodeText,
  textToBinary,
} from "./bytes.js";
export { JobGraph, Partitioning, Sink, Source, Stream, WatermarkStrategy } from "./graph.js";
export {
  TimeDomain,
  Timer,
  counterAdd,
  currentProcessingTime,
  currentWatermark,
  deleteTimer,
  emitTo,
  registerTimer,
} from "./host.js";
export { KeyedState, chunkEntries, codecs, encodeChunk } from "./keyed.js";
export { Context, Operator, exportJob } from "./operator.js";
export { spaceOutWhitespace } from "./whitespace.js";
export { LATE_RECORDS_DROPPED, Window, WindowOperator, Windows } from "./window.js";
export { log };
