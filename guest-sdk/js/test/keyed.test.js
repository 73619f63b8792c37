// Keyed state under Node.js: the chunk encoding against the golden vectors
// (wit/vectors/keyed-chunk.txt, written by the Rust SDK), the value codecs, `KeyedState`,
// and operators keeping it across snapshots, restores and rescales.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Batch } from "../src/batch.js";
import { binaryToBytes, bytesToBinary, decodeText, encodeText, textToBinary } from "../src/bytes.js";
import { JobGraph } from "../src/graph.js";
import { KeyedState, chunkEntries, codecs, encodeChunk } from "../src/keyed.js";
import { Operator, exportJob } from "../src/operator.js";
import { batch, context, keyGroups, restore, values } from "../node/harness.js";
import { readVectorFile } from "../node/vector-file.js";
import { MAX_PARALLELISM } from "../node/keys.js";

const VECTORS = new URL("../../../wit/vectors/keyed-chunk.txt", import.meta.url);

/** `x` and hex digits, as a binary string. */
function parseBytes(token) {
  assert.ok(token.startsWith("x") && token.length % 2 === 1, `bytes are x and hex: ${token}`);
  return Buffer.from(token.slice(1), "hex").toString("latin1");
}

/** The vectors: `{ name, entries (null for a malformed one), chunk }`, bytes as binary strings. */
function readVectors() {
  return readVectorFile(
    VECTORS,
    (name, malformed) => ({ name, entries: malformed ? null : [], chunk: "" }),
    (current, directive, rest) => {
      if (directive === "entry") {
        current.entries.push([parseBytes(rest[0]), rest[1] === "tombstone" ? null : parseBytes(rest[1])]);
      } else if (directive === "chunk") {
        current.chunk = parseBytes(rest[0]);
      } else {
        return false;
      }
      return true;
    },
  );
}

const vectors = readVectors();
const valid = vectors.filter((v) => v.entries !== null);
const malformed = vectors.filter((v) => v.entries === null);

test("the keyed-chunk vectors file has vectors", () => {
  assert.ok(valid.length >= 8 && malformed.length >= 6, `${valid.length} vectors, ${malformed.length} malformed`);
});

for (const vector of valid) {
  test(`keyed-chunk vector ${vector.name}: encoded and decoded as the reference does`, () => {
    assert.equal(bytesToBinary(encodeChunk(vector.entries)), vector.chunk);
    assert.deepEqual(chunkEntries(binaryToBytes(vector.chunk)), vector.entries);
    // Keyed state restores the chunk and snapshots it again byte for byte (entries come out
    // in the order they went in), tombstones left out.
    const state = new KeyedState(codecs.bytes);
    state._open({ first: 7, last: 7 });
    state.restore({ keyGroup: 7, entries: binaryToBytes(vector.chunk) });
    const live = vector.entries.filter(([, value]) => value !== null);
    assert.equal(state.size, live.length);
    const again = state._snapshot();
    assert.deepEqual(again.map((c) => [c.keyGroup, bytesToBinary(c.entries)]), live.length === 0 ? [] : [[7, bytesToBinary(encodeChunk(live))]]);
  });
}

for (const vector of malformed) {
  test(`keyed-chunk malformed ${vector.name}: refused`, () => {
    assert.throws(() => chunkEntries(binaryToBytes(vector.chunk)), /^Error: malformed keyed chunk: /);
  });
}

test("value codecs encode as the value encodings say", () => {
  const le = (n, signed) => {
    const b = Buffer.alloc(8);
    if (signed) b.writeBigInt64LE(BigInt(n));
    else b.writeBigUInt64LE(BigInt(n));
    return b.toString("latin1");
  };
  for (const n of [0, 1, 255, 256, 2 ** 32 - 1, 2 ** 32, 2 ** 40 + 3, Number.MAX_SAFE_INTEGER]) {
    assert.equal(codecs.u64.encode(n), le(n, false), `u64 ${n}`);
    assert.equal(codecs.u64.decode(le(n, false)), n);
    for (const s of new Set([n, -n])) {
      assert.equal(codecs.s64.encode(s), le(s, true), `s64 ${s}`);
      assert.equal(codecs.s64.decode(le(s, true)), s);
    }
  }
  assert.throws(() => codecs.u64.decode(le(2n ** 53n, false)), /beyond 2\^53 - 1/);
  assert.throws(() => codecs.s64.decode(le(-(2n ** 53n), true)), /beyond 2\^53 - 1/);
  assert.throws(() => codecs.u64.decode("\x01\x02"), { message: "a u64 state value has 2 bytes, not 8" });
  assert.throws(() => codecs.u64.encode(-1), /a u64 state value must be an integer from 0 to 2\^53 - 1, not -1/);
  assert.throws(() => codecs.u64.encode(1.5), /not 1.5/);
  assert.throws(() => codecs.s64.encode("1"), /not "1"/);

  for (const x of [0, -0.5, 1e300, Infinity, Number.MIN_VALUE]) {
    const b = Buffer.alloc(8);
    b.writeDoubleLE(x);
    assert.equal(codecs.f64.encode(x), b.toString("latin1"));
    assert.equal(codecs.f64.decode(b.toString("latin1")), x);
  }
  assert.ok(Number.isNaN(codecs.f64.decode(codecs.f64.encode(NaN))));

  assert.equal(codecs.utf8.encode("naïve"), textToBinary("naïve"));
  assert.equal(codecs.utf8.decode(textToBinary("日本語")), "日本語");
  assert.deepEqual(codecs.bytes.decode(codecs.bytes.encode(new Uint8Array([0, 255]))), new Uint8Array([0, 255]));
  assert.equal(codecs.json.encode({ a: ["é"] }), textToBinary('{"a":["é"]}'));
  assert.deepEqual(codecs.json.decode(codecs.json.encode({ a: [1, null] })), { a: [1, null] });
  assert.throws(() => codecs.json.encode(() => 1), /must be JSON/);
  assert.deepEqual(
    Object.values(codecs).map((c) => c.encoding),
    ["u64-le", "s64-le", "f64-le", "utf8", "bytes", "json"],
  );
  assert.throws(() => new KeyedState({ encoding: "u32", encode: String, decode: String }), /a codec is one of/);
});

/** Records with these keys as an operator sees them on input `input`. */
function recordsOf(keys, byKey = true, input = 0) {
  const packed = batch(keys.map((k) => [k, ""]));
  const b = new Batch();
  b._reset(input, packed, byKey ? keyGroups(packed) : []);
  return b;
}

test("keyed state: a value per key of by-key records, one lookup to update", () => {
  const state = new KeyedState(codecs.u64);
  state._open({ first: 0, last: MAX_PARALLELISM - 1 });
  const b = recordsOf(["a", "b", "a", "é", "a"]);
  const seen = [];
  for (const record of b) seen.push(state.update(record, (n = 0) => n + 1));
  assert.deepEqual(seen, [1, 1, 2, 1, 3]);
  assert.equal(state.size, 3);
  assert.equal(state.get(b.at(0)), 3);
  assert.equal(b.at(0).keyGroup, keyGroups(batch([["a", ""]]))[0]);

  state.set(b.at(1), 10);
  assert.equal(state.get(b.at(1)), 10);
  assert.equal(state.delete(b.at(1)), true);
  assert.equal(state.delete(b.at(1)), false);
  assert.equal(state.get(b.at(1)), undefined);
  // update returning undefined removes the key; a freed slot is used again.
  assert.equal(state.update(b.at(3), () => undefined), undefined);
  assert.equal(state.size, 1);
  state.setKey("b", 5);
  state.setKey(encodeText("é"), 6);
  assert.equal(state._values.length, 3, "slots reused");
  assert.deepEqual([...state].sort(), [["a", 3], ["b", 5], [textToBinary("é"), 6]]);
  assert.deepEqual(Object.fromEntries(state.entries()), { a: 3, b: 5, [textToBinary("é")]: 6 });
});

test("keyed state: misuse is explained", () => {
  const state = new KeyedState(codecs.u64);
  state._open({ first: 0, last: 0 });
  const notByKey = recordsOf(["a"], false, 3).at(0);
  assert.equal(notByKey.keyGroup, null);
  for (const use of [() => state.get(notByKey), () => state.update(notByKey, (n = 0) => n + 1), () => state.set(notByKey, 1), () => state.delete(notByKey)]) {
    assert.throws(use, { message: "keyed state needs records of a by-key input; this one arrived on input 3, which is not partitioned by key" });
  }
  const keys = Array.from({ length: 1000 }, (_, i) => `k${i}`);
  const groupOf = (k) => keyGroups(batch([[k, ""]]))[0];
  const foreign = keys.find((k) => groupOf(k) !== 0);
  const group = groupOf(foreign);
  const notMine = `key group ${group} is not this subtask's (it owns 0..1): keyed state can only hold keys routed here by key`;
  assert.throws(() => state.setKey(foreign, 1), { message: notMine });
  assert.throws(() => state.restore({ keyGroup: group, entries: encodeChunk([["x", "\0".repeat(8)]]) }), { message: notMine });
  assert.throws(() => state.setKey("日本", 1), /convert text with textToBinary/);
  assert.throws(() => state.setKey(1, 1), /a binary string or a Uint8Array, not 1/);

  const mine = keys.find((k) => groupOf(k) === 0);
  assert.throws(() => state.setKey(mine, undefined), /cannot be undefined/);
  state.setKey(mine, -1);
  assert.throws(() => state._snapshot(), {
    message: `cannot encode the keyed state value of key ${JSON.stringify(mine)}: a u64 state value must be an integer from 0 to 2^53 - 1, not -1`,
  });
  assert.throws(() => new Batch()._reset(0, batch([["a", ""]]), [1, 2]), /malformed batch: key groups do not match records/);
});

/** Counts per key in keyed state, and a total in operator-wide state. */
class Count extends Operator {
  counts = new KeyedState(codecs.u64);
  total = 0;
  process(record, out) {
    const n = this.counts.update(record, (n = 0) => n + 1);
    this.total += 1;
    out.emit(`${record.keyString()}=${n}`);
  }
}

const countJob = exportJob({ describe: () => new JobGraph("count"), operators: { count: Count } });

/** Runs keys through a count subtask, on a by-key input. */
function count(op, keys) {
  const packed = batch(keys.map((k) => [k, ""]));
  return values(op.process(0, packed, keyGroups(packed)));
}

test("keyed state survives snapshot and restore, beside operator-wide state", () => {
  const first = countJob.open(context(), "count");
  assert.deepEqual(count(first, ["a", "b", "a", "日本"]), ["a=1", "b=1", "a=2", "日本=1"]);
  const snapshot = first.snapshot(1);
  assert.equal(snapshot.valueEncoding, "u64-le");
  assert.deepEqual(snapshot.operatorState.map(decodeText), ['{"total":4}'], "the keyed state is not in the item");
  const groups = keyGroups(batch(["a", "b", "日本"].map((k) => [k, ""])));
  assert.deepEqual(snapshot.keyed.map((c) => c.keyGroup).sort((x, y) => x - y), [...new Set(groups)].sort((x, y) => x - y));
  const entries = snapshot.keyed.flatMap((c) => chunkEntries(c.entries)).map(([k, v]) => [k, codecs.u64.decode(v)]);
  assert.deepEqual(entries.sort(), [["a", 2], ["b", 1], [textToBinary("日本"), 1]]);

  const second = countJob.open(context(), "count");
  restore(second, [snapshot]);
  assert.equal(second.operator.total, 4);
  assert.deepEqual(count(second, ["a", "日本", "c"]), ["a=3", "日本=2", "c=1"]);

  // Another version is refused by default, naming both.
  assert.throws(
    () => countJob.open(context(), "count").restoreKeyed(2, snapshot.keyed),
    (e) => e === "the state is in encoding version 2, this operator reads version 1; implement restore(data, version) (and restoreKeyed(chunk, version)) to migrate it",
  );
});

test("keyed state moves between subtasks by key group: two old subtasks into one, and back", () => {
  const keys = Array.from({ length: 200 }, (_, i) => `k${i % 50}`);
  const expected = new Map();
  for (const k of keys) expected.set(k, (expected.get(k) ?? 0) + 1);

  // Two subtasks, each fed the records of its key groups, as by-key routing does.
  const two = [0, 1].map((subtask) => countJob.open(context({ subtask, parallelism: 2 }), "count"));
  for (const op of two) {
    const { first, last } = op.ctx.keyGroups;
    count(op, keys.filter((k) => {
      const g = keyGroups(batch([[k, ""]]))[0];
      return g >= first && g <= last;
    }));
  }
  const snapshots = two.map((op) => op.snapshot(1));
  assert.ok(snapshots.every((s) => s.keyed.length > 0), "both subtasks have keys");

  const one = countJob.open(context(), "count");
  restore(one, snapshots);
  assert.deepEqual(new Map([...one.operator.counts]), expected);

  // And split again over three subtasks: each gets exactly its key groups' keys.
  const three = [0, 1, 2].map((subtask) => countJob.open(context({ subtask, parallelism: 3 }), "count"));
  for (const op of three) restore(op, [one.snapshot(2)]);
  assert.equal(three.reduce((n, op) => n + op.operator.counts.size, 0), expected.size);
  assert.deepEqual(new Map(three.flatMap((op) => [...op.operator.counts])), expected);
});

test("an operator keeps one keyed state", () => {
  class Two extends Operator {
    a = new KeyedState(codecs.u64);
    b = new KeyedState(codecs.utf8);
  }
  const job = exportJob({ describe: () => new JobGraph("x"), operators: { two: Two } });
  assert.throws(() => job.open(context(), "two"), (e) => e.startsWith("open: TypeError: Two has two KeyedState fields (a, b): an operator keeps one"));
});
