// Drives a job module's `job` export as the Cairn host does, from Node.js tests (run them
// with `node --import cairn-sdk/node/register.js --test`).

import { binaryToBytes, bytesToBinary, textToBinary } from "../src/bytes.js";
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
