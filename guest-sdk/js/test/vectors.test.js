// The packed-batch golden vectors (wit/vectors/packed-batch.txt, written by the Rust SDK):
// this SDK encodes and decodes every vector exactly as the reference does, and refuses every
// malformed encoding. The format is in wit/vectors/README.md.
//
// Timestamps are JavaScript numbers here, as the component bindings hand s64 values over:
// exact within ±(2^53 − 1). A vector with a timestamp beyond that cannot be represented,
// and its timestamps are skipped (its bytes and offsets are still checked).

import assert from "node:assert/strict";
import { test } from "node:test";

import { Batch, Emitter, NO_TIMESTAMP } from "../src/batch.js";
import { Operator, exportJob } from "../src/operator.js";
import { context } from "../node/harness.js";
import { readVectorFile } from "../node/vector-file.js";

const VECTORS = new URL("../../../wit/vectors/packed-batch.txt", import.meta.url);

/** @param {string} token `x` and hex digits */
function parseBytes(token) {
  assert.ok(token.startsWith("x") && token.length % 2 === 1, `bytes are x and hex: ${token}`);
  return new Uint8Array(Buffer.from(token.slice(1), "hex"));
}

/** An s64 in decimal, as a BigInt (exact) and as the number the SDK sees. */
function parseS64(token) {
  const exact = BigInt(token);
  return { exact, number: Number(exact) };
}

/**
 * The vectors: `{ name, records (null for a malformed one), data, offsets, timestamps }`,
 * records as `{ key (null: none), value, timestamp (null: none, else parseS64) }`.
 */
function readVectors() {
  return readVectorFile(
    VECTORS,
    (name, malformed) => ({
      name,
      records: malformed ? null : [],
      data: new Uint8Array(0),
      offsets: [],
      timestamps: [],
    }),
    (current, directive, rest) => {
      if (directive === "record") {
        const [key, value, timestamp] = rest;
        current.records.push({
          key: key === "none" ? null : parseBytes(key),
          value: parseBytes(value),
          timestamp: timestamp === "none" ? null : parseS64(timestamp),
        });
      } else if (directive === "data") {
        current.data = parseBytes(rest[0]);
      } else if (directive === "offsets") {
        current.offsets = rest.map(Number);
      } else if (directive === "timestamps") {
        current.timestamps = rest.map(parseS64);
      } else {
        return false;
      }
      return true;
    },
  );
}

const vectors = readVectors();
const valid = vectors.filter((v) => v.records !== null);
const malformed = vectors.filter((v) => v.records === null);

/** Whether every timestamp of the vector is a number the SDK holds exactly. */
function exactInJs(vector) {
  return vector.records.every((r) => r.timestamp === null || Number.isSafeInteger(r.timestamp.number));
}

/** The packed batch as the bindings would hand it over (timestamps as numbers). */
function packed(vector) {
  return {
    data: vector.data,
    offsets: [...vector.offsets],
    timestamps: vector.timestamps.map((t) => t.number),
  };
}

/** Compares a packed batch with the vector's encoding, timestamps only when exact. */
function assertEncoding(batch, vector, what) {
  assert.deepEqual([...batch.data], [...vector.data], `${what}: data`);
  assert.deepEqual([...batch.offsets], vector.offsets, `${what}: offsets`);
  if (exactInJs(vector)) {
    assert.deepEqual([...batch.timestamps], vector.timestamps.map((t) => t.number), `${what}: timestamps`);
  } else {
    assert.equal(batch.timestamps.length, vector.timestamps.length, `${what}: number of timestamps`);
  }
}

function isUtf8(bytes) {
  try {
    new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    return true;
  } catch {
    return false;
  }
}

test("the vectors file has vectors, and marks no timestamp with -2^63", () => {
  assert.ok(valid.length >= 10 && malformed.length >= 5, `${valid.length} vectors, ${malformed.length} malformed`);
  const mixed = valid.find((v) => v.name === "mixed-timestamps");
  assert.ok(mixed.timestamps.some((t) => t.exact === -(2n ** 63n) && t.number === NO_TIMESTAMP));
});

test("timestamps up to ±(2^53 - 1) are exact; the vectors beyond are the extreme ones", () => {
  assert.ok(exactInJs(valid.find((v) => v.name === "timestamps-at-2^53-1")));
  assert.deepEqual(
    valid.filter((v) => !exactInJs(v)).map((v) => v.name),
    ["extreme-timestamps"],
  );
});

for (const vector of valid) {
  test(`vector ${vector.name}: encoding gives the reference bytes`, () => {
    const out = new Emitter();
    for (const r of vector.records) {
      out.emitKeyed(r.key, r.value, r.timestamp?.number);
    }
    assert.equal(out.length, vector.records.length);
    assertEncoding(out._take(), vector, "emitKeyed");

    // Strings are encoded as UTF-8: the same bytes, where the vector's bytes are all text.
    if (vector.records.every((r) => (r.key === null || isUtf8(r.key)) && isUtf8(r.value))) {
      const decode = (bytes) => new TextDecoder().decode(bytes);
      const text = new Emitter();
      for (const r of vector.records) {
        text.emit(decode(r.value), { key: r.key === null ? null : decode(r.key), timestamp: r.timestamp?.number });
      }
      assertEncoding(text._take(), vector, "emit with strings");
    }
  });

  test(`vector ${vector.name}: decoding gives the records`, () => {
    const batch = new Batch();
    batch._reset(1, packed(vector));
    assert.equal(batch.length, vector.records.length);
    const exact = exactInJs(vector);
    let i = 0;
    for (const r of batch) {
      const expected = vector.records[i++];
      // The encoding does not tell an empty key from none: both read back as null.
      const key = expected.key === null || expected.key.length === 0 ? null : [...expected.key];
      assert.deepEqual(r.key === null ? null : [...r.key], key, `record ${i - 1}: key`);
      assert.deepEqual([...r.value], [...expected.value], `record ${i - 1}: value`);
      assert.equal(r.input, 1);
      if (exact) assert.equal(r.timestamp, expected.timestamp?.number ?? null, `record ${i - 1}: timestamp`);
    }
    assert.equal(i, vector.records.length);
  });

  test(`vector ${vector.name}: an operator passing records on returns the same batch`, () => {
    class Copy extends Operator {
      process(record, out) {
        out.push(record);
      }
    }
    const job = exportJob({ describe: () => null, operators: { copy: Copy } });
    const op = job.open(context(), "copy");
    assertEncoding(op.process(0, packed(vector)), vector, "copy");
  });
}

for (const vector of malformed) {
  test(`malformed ${vector.name}: refused`, () => {
    assert.throws(() => new Batch()._reset(0, packed(vector)), /malformed batch/);
  });
}
