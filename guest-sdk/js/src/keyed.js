// Keyed state: a value per key, as Flink's `ValueState` — the state of "this record's key".
// The SDK keeps it by key group and hands it to the host, which stores, splits and merges it
// by key group (so the job can rescale) and can show it without the job's code.
//
// Keys are binary strings (one character per byte, as `record.keyBinary()` slices them out of
// the batch): QuickJS hashes and compares them natively, so a key costs no conversion.

import { keyGroup as hostKeyGroup } from "cairn:job/keys@0.4.0";
import { binaryToBytes, binaryToText, bytesToBinary, textToBinary } from "./bytes.js";

// ---------------------------------------------------------------------------------------
// The chunk encoding of `cairn:job/types.keyed-chunk`:
//   entry = varint(len(key)) key varint(tag) value;  tag 0: tombstone, n + 1: n value bytes
// varints are unsigned LEB128 of at most 5 bytes and below 2^32. Chunks are built and read
// as binary strings: one native conversion per chunk, none per entry.

/** The one-byte varints, made once: an entry's lengths are nearly always below 128. */
const SMALL = Array.from({ length: 0x80 }, (_, n) => String.fromCharCode(n));

/** `n` (below 2^32) as an unsigned LEB128 varint, in a binary string. */
function varint(n) {
  if (n < 0x80) return SMALL[n];
  let out = "";
  while (n >= 0x80) {
    out += String.fromCharCode((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  return out + String.fromCharCode(n);
}

/**
 * Appends one entry to `parts` (joined into a chunk later).
 * @param {string[]} parts
 * @param {string} key A binary string.
 * @param {string | null} value A binary string, or null for a tombstone.
 */
function pushEntry(parts, key, value) {
  const keyLength = key.length < 0x80 ? SMALL[key.length] : varint(key.length);
  if (value === null) parts.push(keyLength, key, "\0");
  else parts.push(keyLength, key, value.length < 0x7f ? SMALL[value.length + 1] : varint(value.length + 1), value);
}

/**
 * Calls `visit(key, value)` for each entry of a chunk, in order: binary strings, `value` null
 * for a tombstone.
 * @param {Uint8Array} entries
 * @param {(key: string, value: string | null) => void} visit
 * @throws {Error} "malformed keyed chunk: …" at the first entry that breaks the encoding
 */
function decodeEntries(entries, visit) {
  const s = bytesToBinary(entries);
  const end = s.length;
  let p = 0;
  const readVarint = () => {
    let value = 0;
    for (let shift = 0; ; shift += 7) {
      if (p === end) throw new Error("malformed keyed chunk: a varint is cut short");
      const byte = s.charCodeAt(p++);
      if (shift === 28) {
        if (byte >= 0x80) throw new Error("malformed keyed chunk: a varint is longer than 5 bytes");
        if (byte > 0x0f) throw new Error("malformed keyed chunk: a varint is over 32 bits");
      }
      value += (byte & 0x7f) * 2 ** shift;
      if (byte < 0x80) return value;
    }
  };
  // One-byte varints, nearly all of them, are read inline.
  while (p < end) {
    let keyLength = s.charCodeAt(p);
    if (keyLength < 0x80) p++;
    else keyLength = readVarint();
    if (keyLength > end - p) throw new Error("malformed keyed chunk: a key runs past the end");
    const key = s.substring(p, p + keyLength);
    p += keyLength;
    let tag = s.charCodeAt(p); // NaN past the end: readVarint says it is cut short
    if (tag < 0x80) p++;
    else tag = readVarint();
    if (tag === 0) {
      visit(key, null);
      continue;
    }
    if (tag - 1 > end - p) throw new Error("malformed keyed chunk: a value runs past the end");
    visit(key, s.substring(p, p + tag - 1));
    p += tag - 1;
  }
}

/**
 * The entries of a keyed chunk, in order, as `[key, value]` binary strings (`value` null for
 * a tombstone): for reading chunks of another encoding version in a migration.
 * @param {Uint8Array} entries A chunk's `entries`.
 * @returns {[string, string | null][]}
 * @throws {Error} when the chunk is malformed
 */
export function chunkEntries(entries) {
  const out = [];
  decodeEntries(entries, (key, value) => out.push([key, value]));
  return out;
}

/**
 * Encodes entries as a keyed chunk's `entries`.
 * @param {Iterable<[string, string | null]>} entries `[key, value]` binary strings, `value`
 *   null for a tombstone.
 * @returns {Uint8Array}
 */
export function encodeChunk(entries) {
  const parts = [];
  for (const [key, value] of entries) pushEntry(parts, key, value);
  return binaryToBytes(parts.join(""));
}

// ---------------------------------------------------------------------------------------
// Value codecs.

/**
 * How keyed state values are encoded in a checkpoint, and which `value-encoding` tools such
 * as `cairn state` show them as.
 * @template V
 * @typedef {object} ValueCodec
 * @property {"bytes" | "utf8" | "u64-le" | "s64-le" | "f64-le" | "json"} encoding
 * @property {(value: V) => string} encode The value's bytes, as a binary string.
 * @property {(binary: string) => V} decode
 */

const ENCODINGS = ["bytes", "utf8", "u64-le", "s64-le", "f64-le", "json"];
const TWO_TO_32 = 2 ** 32;

/** An integer within ±(2^53 - 1) as 8 bytes little-endian (two's complement). */
function encodeInt64(n, min, what) {
  if (!Number.isSafeInteger(n) || n < min) {
    throw new TypeError(`a ${what} state value must be an integer from ${min === 0 ? 0 : "-(2^53 - 1)"} to 2^53 - 1, not ${show(n)}`);
  }
  const lo = n >>> 0;
  const hi = Math.floor(n / TWO_TO_32) >>> 0;
  return String.fromCharCode(lo & 255, (lo >>> 8) & 255, (lo >>> 16) & 255, lo >>> 24, hi & 255, (hi >>> 8) & 255, (hi >>> 16) & 255, hi >>> 24);
}

function checkLength(binary, what) {
  if (binary.length !== 8) throw new Error(`a ${what} state value has ${binary.length} bytes, not 8`);
}

/** 8 bytes little-endian as a number, which must be exact (within ±(2^53 - 1)). */
function decodeInt64(b, signed, what) {
  checkLength(b, what);
  const lo = (b.charCodeAt(0) | (b.charCodeAt(1) << 8) | (b.charCodeAt(2) << 16) | (b.charCodeAt(3) << 24)) >>> 0;
  const hi = b.charCodeAt(4) | (b.charCodeAt(5) << 8) | (b.charCodeAt(6) << 16) | (b.charCodeAt(7) << 24);
  const n = (signed ? hi : hi >>> 0) * TWO_TO_32 + lo;
  if (!Number.isSafeInteger(n)) {
    throw new RangeError(`a ${what} state value is beyond 2^53 - 1 in magnitude, more than a JavaScript number holds exactly`);
  }
  return n;
}

const float = new DataView(new ArrayBuffer(8));

/**
 * The value codecs for `new KeyedState(codec)`. Numbers are JavaScript numbers: `u64` and
 * `s64` hold integers within ±(2^53 - 1) (an encoded value beyond that is refused on
 * restore rather than rounded).
 */
export const codecs = Object.freeze({
  /** @type {ValueCodec<number>} Non-negative integers, 8 bytes little-endian. */
  u64: Object.freeze({
    encoding: "u64-le",
    encode: (n) => encodeInt64(n, 0, "u64"),
    decode: (b) => decodeInt64(b, false, "u64"),
  }),
  /** @type {ValueCodec<number>} Integers, 8 bytes little-endian, two's complement. */
  s64: Object.freeze({
    encoding: "s64-le",
    encode: (n) => encodeInt64(n, -Number.MAX_SAFE_INTEGER, "s64"),
    decode: (b) => decodeInt64(b, true, "s64"),
  }),
  /** @type {ValueCodec<number>} IEEE 754 doubles, 8 bytes little-endian. */
  f64: Object.freeze({
    encoding: "f64-le",
    encode(x) {
      if (typeof x !== "number") throw new TypeError(`an f64 state value must be a number, not ${show(x)}`);
      float.setFloat64(0, x, true);
      return String.fromCharCode(float.getUint8(0), float.getUint8(1), float.getUint8(2), float.getUint8(3), float.getUint8(4), float.getUint8(5), float.getUint8(6), float.getUint8(7));
    },
    decode(b) {
      checkLength(b, "f64");
      for (let i = 0; i < 8; i++) float.setUint8(i, b.charCodeAt(i));
      return float.getFloat64(0, true);
    },
  }),
  /** @type {ValueCodec<string>} Text, as UTF-8. */
  utf8: Object.freeze({
    encoding: "utf8",
    encode(text) {
      if (typeof text !== "string") throw new TypeError(`a utf8 state value must be a string, not ${show(text)}`);
      return textToBinary(text);
    },
    decode: binaryToText,
  }),
  /** @type {ValueCodec<Uint8Array>} Bytes as they are. */
  bytes: Object.freeze({
    encoding: "bytes",
    encode(bytes) {
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`a bytes state value must be a Uint8Array, not ${show(bytes)}`);
      return bytesToBinary(bytes);
    },
    decode: binaryToBytes,
  }),
  /** @type {ValueCodec<unknown>} Anything `JSON.stringify` takes, as UTF-8 JSON. */
  json: Object.freeze({
    encoding: "json",
    encode(value) {
      const text = JSON.stringify(value);
      if (text === undefined) throw new TypeError(`a json state value must be JSON, not ${show(value)}`);
      return textToBinary(text);
    },
    decode: (b) => JSON.parse(binaryToText(b)),
  }),
});

// ---------------------------------------------------------------------------------------
// The state.

/**
 * A value per key, kept by key group: one per operator, as a field of it
 * (`counts = new KeyedState(codecs.u64)`), which the SDK finds, opens with the subtask's key
 * groups, checkpoints and restores. Not part of the operator's operator-wide state.
 *
 * Records of a by-key input address the value of their key (`get`, `update`, `set`,
 * `delete`); `setKey` and iteration address keys directly. Keys are binary strings (one
 * character per byte; `textToBinary`/`binaryToText` convert text).
 *
 * A value is never `undefined`: `get` returns `undefined` for "no value".
 * @template V
 */
export class KeyedState {
  /** @param {ValueCodec<V>} codec How values are checkpointed: one of `codecs`, or your own. */
  constructor(codec) {
    if (codec === null || typeof codec !== "object" || typeof codec.encode !== "function" || typeof codec.decode !== "function" || !ENCODINGS.includes(codec.encoding)) {
      throw new TypeError(`new KeyedState(codec): a codec is one of codecs.u64, s64, f64, utf8, bytes, json, or { encoding: ${ENCODINGS.map((e) => JSON.stringify(e)).join(" | ")}, encode, decode }`);
    }
    /** @type {ValueCodec<V>} */
    this.codec = codec;
    // Values live in slots, so that the map is looked up once for a read-modify-write:
    // key → slot, and per slot its value and key group; freed slots are reused.
    /** @internal @type {Map<string, number>} */ this._slots = new Map();
    /** @internal @type {V[]} */ this._values = [];
    /** @internal @type {number[]} */ this._groups = [];
    /** @internal @type {number[]} */ this._free = [];
    /** @internal The key groups of this subtask: first to last, both included. */
    this._first = 0;
    /** @internal */ this._last = -1;
  }

  /**
   * @internal Called by the SDK when the subtask opens: the key groups it owns.
   * @param {{ first: number, last: number }} keyGroups
   */
  _open(keyGroups) {
    this._first = keyGroups.first;
    this._last = keyGroups.last;
  }

  /** The number of keys. */
  get size() {
    return this._slots.size;
  }

  /**
   * The value of the record's key, or `undefined`.
   * @param {import("./batch.js").Record} record A record of a by-key input.
   * @returns {V | undefined}
   */
  get(record) {
    const slot = this._slots.get(recordKey(record));
    return slot === undefined ? undefined : this._values[slot];
  }

  /**
   * Replaces the value of the record's key with `fn(value)` (`value` is `undefined` when the
   * key has none; `fn` returning `undefined` removes it), looking the key up once:
   * `counts.update(record, (n = 0) => n + 1)`.
   * @param {import("./batch.js").Record} record A record of a by-key input.
   * @param {(value: V | undefined) => V | undefined} fn
   * @returns {V | undefined} The new value.
   */
  update(record, fn) {
    const key = recordKey(record);
    const slot = this._slots.get(key);
    if (slot === undefined) {
      const value = fn(undefined);
      if (value !== undefined) {
        const group = record.batch._keyGroups[record.index];
        this._checkGroup(group);
        this._insert(key, group, value);
      }
      return value;
    }
    const value = fn(this._values[slot]);
    if (value === undefined) this._remove(key, slot);
    else this._values[slot] = value;
    return value;
  }

  /**
   * Sets the value of the record's key.
   * @param {import("./batch.js").Record} record A record of a by-key input.
   * @param {V} value
   */
  set(record, value) {
    const key = recordKey(record);
    const group = record.batch._keyGroups[record.index];
    this._checkGroup(group);
    this._set(key, group, value);
  }

  /**
   * Removes the value of the record's key.
   * @param {import("./batch.js").Record} record A record of a by-key input.
   * @returns {boolean} Whether it had one.
   */
  delete(record) {
    const key = recordKey(record);
    const slot = this._slots.get(key);
    if (slot === undefined) return false;
    this._remove(key, slot);
    return true;
  }

  /**
   * Sets the value of `key`, which must be in this subtask's key groups: for migrating state
   * that older code kept otherwise.
   * @param {string | Uint8Array} key A binary string, or bytes.
   * @param {V} value
   * @throws {Error} when the key's key group is not this subtask's
   */
  setKey(key, value) {
    let binary = key;
    let bytes = key;
    if (typeof key === "string") {
      if (/[^\x00-\xff]/.test(key)) {
        throw new TypeError(`setKey: a key is a binary string (one character per byte) or a Uint8Array; convert text with textToBinary: ${JSON.stringify(key)}`);
      }
      bytes = binaryToBytes(key);
    } else if (key instanceof Uint8Array) {
      binary = bytesToBinary(key);
    } else {
      throw new TypeError(`setKey: a key is a binary string or a Uint8Array, not ${show(key)}`);
    }
    const group = hostKeyGroup(bytes);
    this._checkGroup(group);
    this._set(binary, group, value);
  }

  /**
   * Every key (a binary string) and its value.
   * @returns {Generator<[string, V]>}
   */
  *entries() {
    for (const [key, slot] of this._slots) yield [key, this._values[slot]];
  }

  [Symbol.iterator]() {
    return this.entries();
  }

  /**
   * Adds a chunk of a snapshot (`restoreKeyed`'s `chunk`): its entries become values of its
   * key group, decoded with the codec, or with `decode` for a chunk of another encoding (a
   * migration).
   * @param {{ keyGroup: number, entries: Uint8Array }} chunk
   * @param {(binary: string) => V} [decode]
   * @returns {number} The number of values added.
   */
  restore(chunk, decode = this.codec.decode) {
    const group = chunk.keyGroup;
    this._checkGroup(group);
    let added = 0;
    decodeEntries(chunk.entries, (key, value) => {
      if (value === null) return;
      this._set(key, group, decode(value));
      added++;
    });
    return added;
  }

  /**
   * @internal One chunk per key group that has values, each written in one pass.
   * @returns {{ keyGroup: number, entries: Uint8Array }[]}
   */
  _snapshot() {
    const encode = this.codec.encode;
    const values = this._values;
    const groups = this._groups;
    const first = this._first;
    /** @type {string[][]} parts of each key group's chunk, by key group - first */
    const parts = [];
    for (const [key, slot] of this._slots) {
      let value;
      try {
        value = encode(values[slot]);
      } catch (e) {
        throw new Error(`cannot encode the keyed state value of key ${JSON.stringify(key)}: ${e instanceof Error ? e.message : e}`);
      }
      const i = groups[slot] - first;
      pushEntry(parts[i] ?? (parts[i] = []), key, value);
    }
    const chunks = [];
    for (let i = 0; i < parts.length; i++) {
      if (parts[i] !== undefined) chunks.push({ keyGroup: first + i, entries: binaryToBytes(parts[i].join("")) });
    }
    return chunks;
  }

  /** @internal Sets a key of `group`, which the caller checked is this subtask's. */
  _set(key, group, value) {
    if (value === undefined) throw new TypeError("a keyed state value cannot be undefined (delete the key instead)");
    const slot = this._slots.get(key);
    if (slot === undefined) this._insert(key, group, value);
    else this._values[slot] = value;
  }

  /** @internal A new key, of a key group the caller checked. */
  _insert(key, group, value) {
    const slot = this._free.length !== 0 ? /** @type {number} */ (this._free.pop()) : this._values.length;
    this._slots.set(key, slot);
    this._values[slot] = value;
    this._groups[slot] = group;
  }

  /** @internal */
  _remove(key, slot) {
    this._slots.delete(key);
    this._values[slot] = /** @type {V} */ (/** @type {unknown} */ (undefined));
    this._free.push(slot);
  }

  /** @internal */
  _checkGroup(group) {
    if (!(group >= this._first && group <= this._last)) {
      throw new Error(
        `key group ${group} is not this subtask's (it owns ${this._first}..${this._last + 1}): ` +
          "keyed state can only hold keys routed here by key",
      );
    }
  }

  /** Not operator-wide state: left out of the default JSON snapshot. */
  toJSON() {
    return undefined;
  }
}

/** The record's key, a binary string; the record must come from a by-key input. */
function recordKey(record) {
  if (record.batch._keyGroups.length === 0) {
    throw new Error(`keyed state needs records of a by-key input; this one arrived on input ${record.input}, which is not partitioned by key`);
  }
  return record.keyBinary();
}

/**
 * @internal The keyed state of an operator: its field holding a `KeyedState`, or null.
 * @param {object} operator
 * @returns {KeyedState<unknown> | null}
 */
export function keyedStateOf(operator) {
  let found = null;
  for (const [name, value] of Object.entries(operator)) {
    if (!(value instanceof KeyedState)) continue;
    if (found !== null) {
      throw new TypeError(`${operator.constructor.name} has two KeyedState fields (${found[0]}, ${name}): an operator keeps one`);
    }
    found = [name, value];
  }
  return found === null ? null : found[1];
}

function show(x) {
  if (typeof x === "string") return JSON.stringify(x);
  if (x === null || typeof x !== "object") return String(x);
  return x.constructor?.name ?? "an object";
}
