// What an operator asks of the host during its calls (`process`, `onTimer`, `finish`):
// timers per key (Flink's `TimerService`), the clocks, side outputs (Flink's `OutputTag`) and
// counters of its own. These are the component's `cairn:job/timers`, `cairn:job/outputs` and
// `cairn:job/metrics` imports; under Node.js, the test host of `node/host.js`. Outside those
// calls the host refuses timers, side outputs and counters (deleting a timer does nothing,
// and the watermark is -2^63).

import { emit as hostEmit } from "cairn:job/outputs@0.4.0";
import { counterAdd as hostCounterAdd } from "cairn:job/metrics@0.4.0";
import {
  currentProcessingTime as hostProcessingTime,
  currentWatermark as hostWatermark,
  delete as hostDelete,
  register as hostRegister,
} from "cairn:job/timers@0.4.0";

import { Emitter } from "./batch.js";
import { binaryToBytes } from "./bytes.js";
import { isSideOutputName } from "./graph.js";

/**
 * The two clocks timers follow (Flink's `TimeDomain`).
 * @readonly
 * @enum {string}
 */
export const TimeDomain = Object.freeze({
  /** The operator's input watermark: the lowest over its inputs' (idle ones aside). */
  EVENT_TIME: "event-time",
  /** The wall clock, milliseconds since the Unix epoch. */
  PROCESSING_TIME: "processing-time",
});

const DOMAINS = new Set(Object.values(TimeDomain));

/**
 * A timer that fired, as `Operator.onTimer(timer, out)` gets it: its domain, its timestamp,
 * and its key. `record` is the timer as a record of its key (no value, its timestamp) from
 * a by-key input: `KeyedState`'s `get(timer.record)`, `update`, `set` and `delete` reach the
 * key's state with it.
 */
export class Timer {
  /**
   * @param {TimeDomain} domain
   * @param {import("./batch.js").Record} record The host's record of the timer.
   */
  constructor(domain, record) {
    /** @type {TimeDomain} */
    this.domain = domain;
    /** The timer as a record of its key. @type {import("./batch.js").Record} */
    this.record = record;
  }

  /** When it was set for, in milliseconds. @returns {number} */
  get timestamp() {
    const timestamp = this.record.timestamp;
    if (timestamp === null) throw new Error("the host fired a timer without a timestamp");
    return timestamp;
  }

  /** The key it was registered for (empty for the empty key). @returns {Uint8Array} */
  get key() {
    return this.record.key ?? new Uint8Array(0);
  }

  /** The key as a binary string (one character per byte), as `record.keyBinary()`. */
  keyBinary() {
    return this.record.keyBinary();
  }

  /** The key as UTF-8 text. @throws {Error} when it is not UTF-8 */
  keyString() {
    return this.record.keyString();
  }
}

/**
 * Registers a timer for `key` at `timestamp` (ms) in `domain`: the operator's `onTimer` gets
 * it once the watermark (event time) or the clock (processing time) reaches it. Once per
 * key, domain and timestamp, however often it is registered. Only during `process`,
 * `onTimer` and `finish` (elsewhere the host refuses it).
 * @param {TimeDomain} domain
 * @param {Uint8Array | string | null} key The key of a record this subtask got from a by-key
 *   input (`record.key`, or `record.keyBinary()`, a binary string); null is the empty key.
 * @param {number} timestamp
 * @throws {Error} when the key is not in this subtask's key groups
 */
export function registerTimer(domain, key, timestamp) {
  try {
    hostRegister(checkDomain(domain), keyBytes(key), checkTimestamp(timestamp));
  } catch (e) {
    // The host's `err` is a string: an Error, so that it names the problem as one.
    throw e instanceof Error ? e : new Error(`cannot register a timer: ${e}`);
  }
}

/**
 * Deletes the timer of `key` at `timestamp` in `domain`, if there is one.
 * @param {TimeDomain} domain
 * @param {Uint8Array | string | null} key As for `registerTimer`.
 * @param {number} timestamp
 */
export function deleteTimer(domain, key, timestamp) {
  hostDelete(checkDomain(domain), keyBytes(key), checkTimestamp(timestamp));
}

/** The watermark as the host gave it during this call (it moves only between calls), or null. */
let watermark = /** @type {number | null} */ (null);

/**
 * The operator's input watermark (ms): -2^63 before the first, 2^63 (beyond every timestamp)
 * once every input has ended.
 * @returns {number}
 */
export function currentWatermark() {
  if (watermark === null) watermark = hostWatermark();
  return watermark;
}

/** @internal A call from the host begins: the watermark may have moved since the last one. */
export function _newCall() {
  watermark = null;
}

/**
 * The wall clock, in milliseconds since the Unix epoch.
 * @returns {number}
 */
export function currentProcessingTime() {
  return hostProcessingTime();
}

/**
 * Emits the records of `records` to side output `name` (Flink's `OutputTag`), leaving it
 * empty: the nodes whose input reads that side output get them (`stream.sideOutput(name)`
 * in the graph), after what the call returns. Only during `process`, `onTimer` and `finish`
 * (elsewhere the host refuses it).
 * @param {string} name 1 to 64 characters.
 * @param {Emitter} records
 */
export function emitTo(name, records) {
  if (!isSideOutputName(name)) throw new TypeError(`a side output's name is 1 to 64 characters, not ${JSON.stringify(name)}`);
  if (!(records instanceof Emitter)) throw new TypeError("emitTo(name, records): records is an Emitter");
  if (records.length === 0) return;
  hostEmit(name, records._take());
}

const COUNTER_NAME = /^[A-Za-z0-9_]{1,64}$/;

/**
 * Adds `delta` to this subtask's counter `name` (in `/metrics` and Flink's vertex metrics),
 * for example `numLateRecordsDropped`. Only during `process`, `onTimer` and `finish`
 * (elsewhere the host refuses it).
 * @param {string} name 1 to 64 ASCII letters, digits or `_`.
 * @param {number} [delta] A non-negative integer; 1 by default.
 */
export function counterAdd(name, delta = 1) {
  if (typeof name !== "string" || !COUNTER_NAME.test(name)) {
    throw new TypeError(`a counter's name is 1 to 64 ASCII letters, digits or _, not ${JSON.stringify(name)}`);
  }
  if (!Number.isSafeInteger(delta) || delta < 0) {
    throw new TypeError(`a counter grows by a non-negative integer, not ${String(delta)}`);
  }
  if (delta !== 0) hostCounterAdd(name, delta);
}

function checkDomain(domain) {
  if (!DOMAINS.has(domain)) {
    throw new TypeError(`a time domain is TimeDomain.EVENT_TIME or TimeDomain.PROCESSING_TIME, not ${JSON.stringify(domain)}`);
  }
  return domain;
}

function checkTimestamp(timestamp) {
  if (!Number.isInteger(timestamp)) throw new TypeError(`a timer's timestamp is an integer (ms), not ${String(timestamp)}`);
  return timestamp;
}

/** @param {Uint8Array | string | null} key */
function keyBytes(key) {
  if (key === null) return new Uint8Array(0);
  if (key instanceof Uint8Array) return key;
  if (typeof key === "string") {
    if (/[^\x00-\xff]/.test(key)) {
      throw new TypeError(`a timer's key is bytes or a binary string (one character per byte); convert text with textToBinary: ${JSON.stringify(key)}`);
    }
    return binaryToBytes(key);
  }
  throw new TypeError(`a timer's key is a Uint8Array or a binary string, not ${typeof key}`);
}
