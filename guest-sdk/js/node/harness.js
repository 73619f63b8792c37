// Drives a job module's `job` export as the Cairn host does, from Node.js tests (run them
// with `node --import cairn-sdk/node/register.js --test`).

import { binaryToBytes, bytesToBinary, textToBinary } from "../src/bytes.js";

/**
 * A WIT `context` for `job.open`.
 * @param {Partial<import("../src/operator.js").WitContext>} [fields]
 */
export function context(fields = {}) {
  return {
    jobId: "0".repeat(32),
    operatorUid: "op",
    subtask: 0,
    parallelism: 1,
    attempt: 0,
    options: [],
    ...fields,
  };
}

/**
 * A packed batch of records given as `[key, value]` (strings, UTF-8) or `{ key, value,
 * timestamp }`.
 * @param {Array<[string, string] | { key?: string, value: string, timestamp?: number }>} records
 */
export function batch(records) {
  let data = "";
  const offsets = [];
  const timestamps = [];
  let anyTimestamp = false;
  for (const r of records) {
    const { key = "", value, timestamp } = Array.isArray(r) ? { key: r[0], value: r[1] } : r;
    data += textToBinary(key);
    offsets.push(data.length);
    data += textToBinary(value);
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
