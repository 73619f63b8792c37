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
 * import { JobGraph, Operator, Partitioning, Sink, Source, exportJob } from "cairn-sdk";
 *
 * class Count extends Operator {
 *   counts = new Map();
 *   process(record, out) {
 *     const word = record.keyString();
 *     const n = (this.counts.get(word) ?? 0) + 1;
 *     this.counts.set(word, n);
 *     out.emit(`${word}\t${n}`);
 *   }
 * }
 * ```
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
export { JobGraph, Partitioning, Sink, Source, Stream } from "./graph.js";
export { Context, Operator, exportJob } from "./operator.js";
export { log };
