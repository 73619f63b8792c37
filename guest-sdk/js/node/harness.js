// Drives a job module's `job` export as the Cairn host does, from Node.js tests (run them
// with `node --import cairn-sdk/node/register.js --test`).

import { binaryToBytes, bytesToBinary, textToBinary } from "../src/bytes.js";
import { TestHost, install } from "./host.js";
import { MAX_PARALLELISM, keyGroup } from "./keys.js";

/**
 * A WIT `context` for `job.open`: by default subtask 0 of 1. Its `keyGroups` are those the
 * host gives `subtask` of `parallelism`, of `MAX_PARALLELISM` (128) key groups, the number
 * the `cairn:job/keys` stand-in hashes for.
 * @param {Partial<import("../src/operator.js").WitContext>} [fields]
 */
export function context(fields = {}) {
  const { subtask = 0, parallelism = 1 } = fields;
  // Subtask i owns the key groups g with g * p / max = i: from ceil(i * max / p).
  const start = (i) => Math.ceil((i * MAX_PARALLELISM) / parallelism);
  return {
    jobId: "0".repeat(32),
    operatorUid: "op",
    subtask,
    parallelism,
    attempt: 0,
    options: [],
    maxParallelism: MAX_PARALLELISM,
    keyGroups: { first: start(subtask), last: start(subtask + 1) - 1 },
    ...fields,
  };
}

/**
 * The key groups of a packed batch's records, as the host hands them to an operator with
 * the batch on a by-key input (with the stand-in's hash, see ./keys.js):
 * `op.process(0, packed, keyGroups(packed))`.
 * @param {{ data: Uint8Array, offsets: ArrayLike<number> }} packed
 * @returns {number[]}
 */
export function keyGroups(packed) {
  const groups = [];
  let start = 0;
  for (let i = 0; i < packed.offsets.length; i += 2) {
    groups.push(keyGroup(packed.data.subarray(start, packed.offsets[i])));
    start = packed.offsets[i + 1];
  }
  return groups;
}

/**
 * Restores snapshots into an opened operator as the host does: the keyed chunks of its key
 * groups, then every operator-wide item (as in union mode, or split onto this one subtask),
 * in the version of the first snapshot.
 * @param {{ ctx: { keyGroups: { first: number, last: number } }, restoreKeyed: Function, restore: Function }} op
 * @param {{ version: number, operatorState: Uint8Array[], keyed: { keyGroup: number, entries: Uint8Array }[] }[]} snapshots
 */
export function restore(op, snapshots) {
  const { first, last } = op.ctx.keyGroups;
  const version = snapshots[0].version;
  const chunks = snapshots.flatMap((s) => s.keyed).filter((c) => c.keyGroup >= first && c.keyGroup <= last);
  if (chunks.length !== 0) op.restoreKeyed(version, chunks);
  op.restore(version, snapshots.flatMap((s) => s.operatorState));
}

/**
 * A packed batch of records given as `[key, value]` (strings, UTF-8) or `{ key, value,
 * timestamp }`; with `binary`, keys and values are binary strings (one character per byte).
 * @param {Array<[string, string] | { key?: string, value: string, timestamp?: number }>} records
 * @param {{ binary?: boolean }} [options]
 */
export function batch(records, { binary = false } = {}) {
  const encode = binary ? (s) => s : textToBinary;
  let data = "";
  const offsets = [];
  const timestamps = [];
  let anyTimestamp = false;
  for (const r of records) {
    const { key = "", value, timestamp } = Array.isArray(r) ? { key: r[0], value: r[1] } : r;
    data += encode(key);
    offsets.push(data.length);
    data += encode(value);
    offsets.push(data.length);
    timestamps.push(timestamp ?? -(2 ** 63));
    anyTimestamp ||= timestamp !== undefined;
  }
  return { data: binaryToBytes(data), offsets, timestamps: anyTimestamp ? timestamps : [] };
}

/**
 * The records of a packed batch as `{ key, value, timestamp }`, key and value decoded as
 * UTF-8 (`key` null when empty, `timestamp` null when none).
 * @param {{ data: Uint8Array, offsets: ArrayLike<number>, timestamps: ArrayLike<number> }} packed
 */
export function records(packed) {
  const binary = bytesToBinary(packed.data);
  const decode = (s) => new TextDecoder("utf-8", { fatal: true }).decode(Buffer.from(s, "latin1"));
  const out = [];
  let start = 0;
  for (let i = 0; i < packed.offsets.length; i += 2) {
    const keyEnd = packed.offsets[i];
    const end = packed.offsets[i + 1];
    const t = packed.timestamps.length ? packed.timestamps[i / 2] : -(2 ** 63);
    out.push({
      key: keyEnd > start ? decode(binary.slice(start, keyEnd)) : null,
      value: decode(binary.slice(keyEnd, end)),
      timestamp: t === -(2 ** 63) ? null : t,
    });
    start = end;
  }
  return out;
}

/**
 * The values of a packed batch, decoded as UTF-8.
 * @param {{ data: Uint8Array, offsets: ArrayLike<number>, timestamps: ArrayLike<number> }} packed
 */
export function values(packed) {
  return records(packed).map((r) => r.value);
}

/** The end of event time: the watermark once every input has ended (2^63 - 1 as a number). */
export const MAX_WATERMARK = 2 ** 63;

/**
 * One operator subtask driven as the host drives it (Flink's operator test harnesses), with
 * a test host (./host.js) for its timers, side outputs and counters: records in (by key by
 * default), the watermark and the clock moved by hand, fired timers handed to `onTimer` in
 * the host's order and batches, side outputs and counters kept for the test to read.
 * Records in and out are as `batch` and `records` have them.
 *
 * ```js
 * const h = Harness.open(job, "count", { options: [["window", "10"]] });
 * h.process([{ key: "a", value: "", timestamp: 1 }]);
 * assert.deepEqual(h.advanceWatermark(9), [{ key: "a", value: "0\ta\t1", timestamp: 9 }]);
 * ```
 */
export class Harness {
  /**
   * Opens operator `name` of `job` (a module's `job` export) with the context `fields`
   * (as `context(fields)`); no watermark yet, the clock at 0.
   * @param {{ open: Function }} job
   * @param {string} name
   * @param {Parameters<typeof context>[0]} [fields]
   */
  static open(job, name, fields = {}) {
    const ctx = context(fields);
    const host = new TestHost(ctx.keyGroups);
    return new Harness(job, name, fields, host, within(host, () => job.open(ctx, name)));
  }

  /** @internal */
  constructor(job, name, fields, host, operator) {
    this.job = job;
    this.name = name;
    this.fields = fields;
    /** The test host: its timers, watermark, clock, side outputs and counters. @type {TestHost} */
    this.host = host;
    /** The operator instance, as `job.open` returned it. */
    this.operator = operator;
  }

  /**
   * Hands the operator a batch of `records` on input `input`, as from a by-key input (each
   * record with its key group) unless `byKey` is false; returns what it emitted.
   * @param {Parameters<typeof batch>[0]} given
   * @param {{ input?: number, byKey?: boolean }} [options]
   */
  process(given, { input = 0, byKey = true } = {}) {
    const packed = batch(given);
    const groups = byKey ? keyGroups(packed) : [];
    return records(this.#call(() => this.operator.process(input, packed, groups)));
  }

  /**
   * Moves the watermark to `watermark` (never back), firing the event-time timers it passes
   * in order; returns what they emitted.
   * @param {number} watermark
   */
  advanceWatermark(watermark) {
    this.host.watermark = Math.max(this.host.watermark, watermark);
    return this.#fire("event-time", () => this.host.watermark);
  }

  /**
   * Moves the clock to `now` (never back), firing the processing-time timers it passes.
   * @param {number} now
   */
  advanceProcessingTime(now) {
    this.host.now = Math.max(this.host.now, now);
    return this.#fire("processing-time", () => this.host.now);
  }

  /** The end of input: the watermark to the end of event time, then `finish`. */
  finish() {
    const out = this.advanceWatermark(MAX_WATERMARK);
    return out.concat(records(this.#call(() => this.operator.finish())));
  }

  /** The number of registered timers, both domains. */
  get timers() {
    return this.host.size;
  }

  /**
   * Counter `name` (0 if never counted).
   * @param {string} name
   */
  counter(name) {
    return this.host.counters.get(name) ?? 0;
  }

  /**
   * The records sent to side output `name` so far, taken.
   * @param {string} name
   */
  sideOutput(name) {
    const batches = this.host.sideOutputs.get(name) ?? [];
    this.host.sideOutputs.delete(name);
    return batches.flatMap(records);
  }

  /** The operator's state, as a checkpoint takes it (the timers are the host's). */
  snapshot() {
    return within(this.host, () => this.operator.snapshot(1));
  }

  /**
   * A new instance of the operator with this one's state, timers, watermark and clock: a
   * restore from a checkpoint (at the same parallelism unless `fields` say otherwise; then
   * only the timers of its key groups follow).
   * @param {Parameters<typeof context>[0]} [fields]
   */
  restoreInto(fields = this.fields) {
    const state = this.snapshot();
    const restored = Harness.open(this.job, this.name, fields);
    const { first, last } = restored.host.keyGroups;
    for (const [domain, timers] of this.host.timers) {
      for (const [id, timer] of timers) {
        if (timer.group >= first && timer.group <= last) restored.host.timers.get(domain).set(id, timer);
      }
    }
    restored.host.watermark = this.host.watermark;
    restored.host.now = this.host.now;
    within(restored.host, () => restore(restored.operator, [state]));
    return restored;
  }

  /** Fires the due timers of `domain`, batch by batch, until none is due. */
  #fire(domain, until) {
    const out = [];
    for (let due = this.host.due(domain, until()); due.length !== 0; due = this.host.due(domain, until())) {
      const timers = batch(due.map((t) => ({ key: t.binary, value: "", timestamp: t.timestamp })), { binary: true });
      const groups = due.map((t) => t.group);
      out.push(...records(this.#call(() => this.operator.onTimer(domain, timers, groups))));
    }
    return out;
  }

  /** Runs an operator call that may use timers, side outputs and counters (process, onTimer, finish). */
  #call(fn) {
    return within(this.host, () => {
      this.host.calling = true;
      try {
        return fn();
      } finally {
        this.host.calling = false;
      }
    });
  }
}

/** Runs `fn` with `host` installed. */
function within(host, fn) {
  const before = install(host);
  try {
    return fn();
  } finally {
    install(before);
  }
}
