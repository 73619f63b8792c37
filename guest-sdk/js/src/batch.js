// Records in, records out: the packed batch encoding of `cairn:job/types.packed-batch`,
// hidden behind `Record` (one record of an incoming batch) and `Emitter` (the outgoing one).
//
// Record `i` of a packed batch is described by `offsets[2i]` (end of its key) and
// `offsets[2i+1]` (end of its value) in `data`; its key starts where the previous record's
// value ended. `timestamps` is empty or has one entry per record, -2^63 marking "none".

import { binaryToBytes, binaryToText, bytesToBinary, hasNonAscii, isAscii } from "./bytes.js";

/** The s64 a packed batch uses for "this record has no timestamp". */
export const NO_TIMESTAMP = -(2 ** 63);

/**
 * The WIT `packed-batch` record, as the component bindings pass it.
 * @typedef {object} PackedBatch
 * @property {Uint8Array} data Every key and value, back to back.
 * @property {number[]} offsets Two end offsets per record: key end, value end.
 * @property {number[]} timestamps None, or one per record (-2^63: none).
 */

const NON_ASCII = /[\x80-\xff]/;

/**
 * An incoming batch of records, for operators that work on a whole batch at once
 * (`processBatch(batch, out)`); `process(record, out)` sees its records one by one.
 *
 * Keys and values are byte ranges of `data`: record `r`'s key is
 * `[r.keyStart, r.valueStart)` and its value `[r.valueStart, r.valueEnd)`. `binary()` is
 * `data` as one binary string with the same positions, so one native string operation can
 * work on every record's bytes at once (QuickJS pays per call, not per byte, for those).
 */
export class Batch {
  constructor() {
    /** The index of the input (in the node's `inputs`) the batch arrived on. @type {number} */
    this.input = 0;
    /** Every key and value, back to back. @type {Uint8Array} */
    this.data = new Uint8Array(0);
    /** @internal */ this._offsets = /** @type {number[]} */ ([]);
    /** @internal */ this._timestamps = /** @type {number[]} */ ([]);
    /** @internal Each record's key group on a by-key input; empty on others. */
    this._keyGroups = /** @type {ArrayLike<number>} */ ([]);
    /** @internal */ this._binary = /** @type {string | null} */ (null);
    /** @internal */ this._nonAscii = /** @type {boolean | null} */ (null);
    /** @internal Every key and value as text, decoded at once (false: one by one). */
    this._texts = /** @type {string[] | false | null} */ (null);
    /** @internal */ this._cursor = new Record(this);
  }

  /**
   * @internal Points this batch at a new packed batch, after checking its encoding (so
   * that a record's ranges are always within `data`).
   * @param {number} input
   * @param {PackedBatch} batch
   * @param {ArrayLike<number>} [keyGroups] Each record's key group on a by-key input, else empty.
   */
  _reset(input, batch, keyGroups = []) {
    const { data, offsets, timestamps } = batch;
    const n = offsets.length;
    if (n % 2 !== 0) throw new Error("malformed batch: odd number of offsets");
    if (timestamps.length !== 0 && timestamps.length * 2 !== n) {
      throw new Error("malformed batch: timestamps do not match records");
    }
    if (keyGroups.length !== 0 && keyGroups.length * 2 !== n) {
      throw new Error("malformed batch: key groups do not match records");
    }
    let previous = 0;
    for (let i = 0; i < n; i++) {
      const end = offsets[i];
      if (end < previous) throw new Error("malformed batch: offsets out of order");
      previous = end;
    }
    if (previous > data.length) throw new Error("malformed batch: offsets out of range");
    this.input = input;
    this.data = data;
    this._offsets = offsets;
    this._timestamps = timestamps;
    this._keyGroups = keyGroups;
    this._binary = null;
    this._nonAscii = null;
    this._texts = null;
  }

  /** Number of records. */
  get length() {
    return this._offsets.length >> 1;
  }

  /**
   * Record `index` (0-based). The batch has one `Record` object that `at` and iteration
   * move from record to record: keep what you need from it, not the record itself.
   * @param {number} index
   * @returns {Record}
   */
  at(index) {
    const offsets = this._offsets;
    const r = this._cursor;
    r.index = index;
    r._key = null;
    r.keyStart = index === 0 ? 0 : offsets[2 * index - 1];
    r.valueStart = offsets[2 * index];
    r.valueEnd = offsets[2 * index + 1];
    return r;
  }

  /** The records, in order (one `Record` object, moved along). */
  *[Symbol.iterator]() {
    const n = this.length;
    for (let i = 0; i < n; i++) yield this.at(i);
  }

  /**
   * `data` as a binary string (one character per byte), made once per batch.
   * @returns {string}
   */
  binary() {
    if (this._binary === null) this._binary = bytesToBinary(this.data);
    return this._binary;
  }

  /** @internal Whether `data` has a byte of 0x80 or more. */
  _hasNonAscii() {
    if (this._nonAscii === null) this._nonAscii = hasNonAscii(this.binary());
    return this._nonAscii;
  }

  /**
   * @internal Key (`2i`) or value (`2i + 1`) of record `i` as text. The first call decodes
   * every key and value of the batch in one native call, as a call costs more than the bytes
   * it decodes; one by one when that fails (invalid UTF-8, which the one at fault then
   * reports, or U+FFFF in the data, which the joint decoding uses as separator).
   * @param {number} j
   * @returns {string | null} null: decode it alone
   */
  _textAt(j) {
    let texts = this._texts;
    if (texts === null) {
      const binary = this.binary();
      const offsets = this._offsets;
      const n = offsets.length;
      const parts = new Array(n);
      let start = 0;
      for (let k = 0; k < n; k++) {
        const end = offsets[k];
        parts[k] = binary.substring(start, end);
        start = end;
      }
      texts = false;
      try {
        const decoded = decodeURIComponent(escape(parts.join("\xef\xbf\xbf"))).split("\uffff");
        if (decoded.length === n) texts = decoded;
      } catch {
        // Invalid UTF-8 somewhere: decoded one by one, the record at fault says so.
      }
      this._texts = texts;
    }
    return texts === false ? null : texts[j];
  }
}

/**
 * One record of an incoming batch.
 *
 * `process(record, out)` gets the same `Record` object for every record of a batch, moved
 * along: keep what you need from it (`key`, `value`, the strings), not the record itself.
 * `key` and `value` are views into the batch's data and stay valid.
 */
export class Record {
  /** @param {Batch} batch */
  constructor(batch) {
    /** The batch this record is in. @type {Batch} */
    this.batch = batch;
    /** The record's index in its batch. @type {number} */
    this.index = 0;
    /** Where the key starts in `batch.data` (and `batch.binary()`). @type {number} */
    this.keyStart = 0;
    /** Where the key ends and the value starts. @type {number} */
    this.valueStart = 0;
    /** Where the value ends. @type {number} */
    this.valueEnd = 0;
    /** @internal `keyBinary()`, once made for this record (keyed state and the operator both want it). */
    this._key = /** @type {string | null} */ (null);
  }

  /** The index of the input (in the node's `inputs`) the record arrived on. */
  get input() {
    return this.batch.input;
  }

  /**
   * The record's key group (`hash(key) mod max-parallelism`, one of the subtask's) when it
   * arrived on a by-key input, else `null`.
   * @returns {number | null}
   */
  get keyGroup() {
    const keyGroups = this.batch._keyGroups;
    return keyGroups.length === 0 ? null : keyGroups[this.index];
  }

  /**
   * The key's bytes, or `null` for a record without a key (an empty key).
   * @returns {Uint8Array | null}
   */
  get key() {
    return this.valueStart > this.keyStart ? this.batch.data.subarray(this.keyStart, this.valueStart) : null;
  }

  /**
   * The value's bytes.
   * @returns {Uint8Array}
   */
  get value() {
    return this.batch.data.subarray(this.valueStart, this.valueEnd);
  }

  /**
   * Milliseconds since the Unix epoch, or `null` for a record without a timestamp.
   * @returns {number | null}
   */
  get timestamp() {
    const timestamps = this.batch._timestamps;
    const t = timestamps.length === 0 ? NO_TIMESTAMP : timestamps[this.index];
    return t === NO_TIMESTAMP ? null : t;
  }

  /**
   * The key as UTF-8 text ("" for a record without a key).
   * @returns {string}
   * @throws {Error} when the key is not UTF-8
   */
  keyString() {
    return this._text(this.keyStart, this.valueStart, 2 * this.index, "key");
  }

  /**
   * The value as UTF-8 text.
   * @returns {string}
   * @throws {Error} when the value is not UTF-8
   */
  valueString() {
    return this._text(this.valueStart, this.valueEnd, 2 * this.index + 1, "value");
  }

  /**
   * The key's bytes as a binary string (one character per byte): the cheapest form to use as
   * a map key or to emit again with `out.emitBinary`.
   * @returns {string}
   */
  keyBinary() {
    let key = this._key;
    if (key === null) {
      const batch = this.batch;
      key = this._key = (batch._binary ?? batch.binary()).substring(this.keyStart, this.valueStart);
    }
    return key;
  }

  /**
   * The value's bytes as a binary string (one character per byte).
   * @returns {string}
   */
  valueBinary() {
    const batch = this.batch;
    return (batch._binary ?? batch.binary()).substring(this.valueStart, this.valueEnd);
  }

  /** @internal */
  _text(start, end, j, what) {
    const batch = this.batch;
    if (batch._nonAscii ?? batch._hasNonAscii()) {
      const text = batch._textAt(j);
      if (text !== null) return text;
    }
    const binary = (batch._binary ?? batch.binary()).substring(start, end);
    if (!NON_ASCII.test(binary)) return binary;
    try {
      return binaryToText(binary);
    } catch {
      throw new Error(`the record's ${what} is not UTF-8`);
    }
  }
}

/**
 * Collects the records an operator emits during one call into one packed batch.
 *
 * Keys and values are strings (encoded as UTF-8) or `Uint8Array`s (taken as they are); an
 * empty or absent key means "no key". A timestamp is milliseconds since the Unix epoch.
 */
export class Emitter {
  constructor() {
    /** @internal Key and value of every record so far, as binary strings or text. */
    this._parts = /** @type {string[]} */ ([]);
    /** @internal Whether a part is already binary (bytes): index → true. Null: no text part. */
    this._isBinary = /** @type {boolean[] | null} */ (null);
    /** @internal Whether any part may be text with characters above U+007F. */
    this._text = false;
    /** @internal */ this._timestamps = /** @type {number[] | null} */ (null);
  }

  /**
   * Emits a record.
   * @param {string | Uint8Array} value
   * @param {{ key?: string | Uint8Array | null, timestamp?: number | null }} [options]
   *   `key`: `by-key` partitioning downstream routes on it. `timestamp`: milliseconds since
   *   the Unix epoch.
   */
  emit(value, options) {
    if (options === undefined) {
      this._add("", value, undefined);
    } else {
      this._add(options.key ?? "", value, options.timestamp ?? undefined);
    }
  }

  /**
   * Emits a keyed record: `out.emitKeyed(word, "")` is `out.emit("", { key: word })` without
   * the options object.
   * @param {string | Uint8Array | null} key
   * @param {string | Uint8Array} value
   * @param {number | null} [timestamp]
   */
  emitKeyed(key, value, timestamp) {
    this._add(key ?? "", value, timestamp);
  }

  /**
   * Emits a record whose key and value are binary strings (one character per byte, as
   * `record.keyBinary()` returns them), copied as they are: the fastest way to pass bytes on.
   * @param {string} key "" for none.
   * @param {string} value
   * @param {number | null} [timestamp]
   */
  emitBinary(key, value, timestamp) {
    const parts = this._parts;
    if (this._isBinary !== null) {
      this._isBinary[parts.length] = true;
      this._isBinary[parts.length + 1] = true;
    }
    parts.push(key, value);
    if (timestamp != null || this._timestamps !== null) this._timestamp(timestamp);
  }

  /**
   * Emits a copy of `record`: its key, value and timestamp.
   * @param {Record} record
   */
  push(record) {
    this.emitBinary(record.keyBinary(), record.valueBinary(), record.timestamp ?? undefined);
  }

  /** Number of records emitted so far. */
  get length() {
    return this._parts.length >> 1;
  }

  /** Bytes of keys and values emitted so far (UTF-8 text counted as one byte a character). */
  get size() {
    let size = 0;
    for (const part of this._parts) size += part.length;
    return size;
  }

  /** @internal */
  _add(key, value, timestamp) {
    const parts = this._parts;
    const i = parts.length;
    const k = this._part(key, i);
    const v = this._part(value, i + 1);
    parts.push(k, v);
    if (timestamp != null || this._timestamps !== null) this._timestamp(timestamp);
  }

  /**
   * @internal Part `i` as a string: text stays as it is until `_take` (most is ASCII, which
   * needs no encoding), bytes become a binary string and are marked as such once there is
   * text to tell them from.
   */
  _part(x, i) {
    if (typeof x === "string") {
      if (!this._text && x.length !== 0) {
        this._text = true;
        this._isBinary = new Array(i).fill(true);
      }
      return x;
    }
    if (x instanceof Uint8Array) {
      if (this._isBinary !== null) this._isBinary[i] = true;
      return bytesToBinary(x);
    }
    throw new TypeError(`a key or value must be a string or a Uint8Array, not ${describe(x)}`);
  }

  /** @internal */
  _timestamp(timestamp) {
    if (timestamp != null && (typeof timestamp !== "number" || !Number.isInteger(timestamp))) {
      throw new TypeError(`a timestamp must be an integer (milliseconds), not ${describe(timestamp)}`);
    }
    if (this._timestamps === null) {
      // The first timestamp back-fills "none" for the records before it.
      this._timestamps = new Array(this.length - 1).fill(NO_TIMESTAMP);
    }
    this._timestamps.push(timestamp ?? NO_TIMESTAMP);
  }

  /**
   * @internal Gives every record from index `first` on the timestamp `timestamp` (a window
   * stamps its results with its last millisecond).
   * @param {number} first
   * @param {number} timestamp
   */
  _stampFrom(first, timestamp) {
    const n = this.length;
    if (first >= n) return;
    if (this._timestamps === null) this._timestamps = new Array(n).fill(NO_TIMESTAMP);
    this._timestamps.fill(timestamp, first, n);
  }

  /**
   * @internal Takes the records emitted so far as a packed batch, leaving the emitter empty.
   * @returns {PackedBatch}
   */
  _take() {
    const parts = this._parts;
    const n = parts.length;
    const timestamps = this._timestamps ?? [];
    const offsets = new Uint32Array(n);
    let binary = parts.join("");
    if (this._text && !isAscii(binary)) {
      encodeTextParts(parts, /** @type {boolean[]} */ (this._isBinary));
      binary = parts.join("");
    }
    let end = 0;
    for (let i = 0; i < n; i++) {
      end += parts[i].length;
      offsets[i] = end;
    }
    this._parts = [];
    this._isBinary = null;
    this._text = false;
    this._timestamps = null;
    return { data: binaryToBytes(binary), offsets, timestamps };
  }
}

/** Joins the text parts of a batch for encoding them in one call: U+FFFF, 3 bytes in UTF-8. */
const SEPARATOR = "\uffff";
const SEPARATOR_UTF8 = "\xef\xbf\xbf";

/**
 * Replaces the text parts (those not marked binary) by their UTF-8 encoding as binary
 * strings. One native call for all of them, as a call costs more than the characters it
 * converts; part by part when a part contains the separator itself.
 * @param {string[]} parts
 * @param {boolean[]} isBinary
 */
function encodeTextParts(parts, isBinary) {
  const n = parts.length;
  const text = [];
  for (let i = 0; i < n; i++) {
    if (isBinary[i] !== true) text.push(parts[i]);
  }
  let encoded = null;
  try {
    encoded = unescape(encodeURIComponent(text.join(SEPARATOR))).split(SEPARATOR_UTF8);
  } catch {
    // A lone surrogate somewhere: found, and named, part by part below.
  }
  if (encoded === null || encoded.length !== text.length) {
    for (let i = 0; i < n; i++) {
      if (isBinary[i] !== true && !isAscii(parts[i])) parts[i] = encodePart(parts[i]);
    }
    return;
  }
  for (let i = 0, j = 0; i < n; i++) {
    if (isBinary[i] !== true) parts[i] = encoded[j++];
  }
}

function encodePart(text) {
  try {
    return unescape(encodeURIComponent(text));
  } catch {
    throw new TypeError(`an emitted string is not valid Unicode (lone surrogate): ${JSON.stringify(text)}`);
  }
}

function describe(x) {
  if (x === null) return "null";
  if (typeof x === "object") return x.constructor?.name ?? "an object";
  return typeof x;
}
