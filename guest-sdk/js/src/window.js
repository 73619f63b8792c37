// Windows over event time: Flink's `WindowOperator` with its `EventTimeTrigger`, for an
// incremental aggregate per key and window (the Rust SDK's `window` module, in JavaScript).
//
// - Each record goes to its windows (`Windows.tumbling`, `sliding`, `session`) and is added
//   to each one's accumulator: a window keeps one accumulator per key, never the records.
// - A window fires (its result is emitted, stamped with the window's last millisecond) once
//   the watermark passes its end, by an event-time timer per key and window end.
// - With `allowedLateness`, a window's state is kept that much longer, and each record
//   arriving within it fires the window again with the updated result (Flink's late
//   firing). Then the state is freed.
// - A record all of whose windows are past that is late: it is dropped and counted in the
//   subtask's `numLateRecordsDropped` counter, or, with `lateRecordsTo(name)`, sent to that
//   side output instead (Flink's `sideOutputLateData`). A session window merges with the
//   key's open windows first (as Flink's): a record whose own window is past that but meets
//   an open window is merged into it, not late.
// - Timers are never deleted: a timer is a key and a timestamp, which windows of the same
//   key may share. One left by a window that merged away fires nothing: a timer fires the
//   windows whose last millisecond it is, and frees those whose time is up.
//
// State is the per-key list of open windows and their accumulators, kept in keyed state: it
// is checkpointed per key group beside the timers, so windows rescale.

import { Emitter } from "./batch.js";
import { binaryToText, textToBinary } from "./bytes.js";
import { isSideOutputName } from "./graph.js";
import { TimeDomain, counterAdd, currentWatermark, emitTo, registerTimer } from "./host.js";
import { KeyedState } from "./keyed.js";
import { Operator } from "./operator.js";

/** Flink's metric of records dropped for being late. */
export const LATE_RECORDS_DROPPED = "numLateRecordsDropped";

/** A window of event time: `start` included, `end` excluded, in milliseconds. */
export class Window {
  /**
   * @param {number} start
   * @param {number} end
   */
  constructor(start, end) {
    /** @type {number} */
    this.start = start;
    /** @type {number} */
    this.end = end;
  }

  /**
   * Its last millisecond: the watermark must reach it for the window to fire, and its results
   * carry it as their timestamp.
   */
  get maxTimestamp() {
    return this.end - 1;
  }

  /** @internal Whether the two overlap or touch (session windows merge then, as in Flink). */
  _meets(other) {
    return this.start <= other.end && other.start <= this.end;
  }

  /** @internal Whether `other` lies within this window. */
  _covers(other) {
    return this.start <= other.start && other.end <= this.end;
  }

  /** @internal The smallest window covering both. */
  _cover(other) {
    return new Window(Math.min(this.start, other.start), Math.max(this.end, other.end));
  }
}

/** Windows ordered by start, then end. */
function compareWindows(a, b) {
  return a.start - b.start || a.end - b.end;
}

/** Milliseconds of a window's size, slide or gap. */
function positiveMs(ms, what) {
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new RangeError(`a window's ${what} must be 1 ms or more, not ${String(ms)}`);
  return ms;
}

/** Flink's `ts - ts mod size`, with the remainder of Euclidean division (never negative). */
function windowStart(timestamp, size) {
  return timestamp - (((timestamp % size) + size) % size);
}

/** The smallest timestamp (-2^63, s64's): a window reaching below it starts there. */
const MIN_TIMESTAMP = -(2n ** 63n);
/** The largest timestamp (2^63 - 1): a window reaching beyond it ends there. */
const MAX_TIMESTAMP = 2n ** 63n - 1n;

/** `n` within the timestamps (Rust's saturating arithmetic on i64). */
function saturate(n) {
  return n < MIN_TIMESTAMP ? MIN_TIMESTAMP : n > MAX_TIMESTAMP ? MAX_TIMESTAMP : n;
}

const float = new DataView(new ArrayBuffer(8));

/**
 * Integer `n` as a number, rounded down (`up` false) or up (beyond ±2^53 numbers skip
 * integers: a window's bounds are rounded outward, so that it still holds its timestamps).
 * @param {bigint} n
 * @param {boolean} up
 */
function toNumber(n, up) {
  const near = Number(n);
  const exact = BigInt(near);
  if (exact === n || exact > n === up) return near;
  // The next number down or up: |near| > 2^53, so its bits step by one number at a time.
  float.setFloat64(0, near);
  const bits = float.getBigInt64(0);
  float.setBigInt64(0, near > 0 === up ? bits + 1n : bits - 1n);
  return float.getFloat64(0);
}

/**
 * The windows of `kind` a record at `timestamp` belongs to, where numbers are not exact
 * (beyond ±2^53): computed as the Rust SDK does on s64, saturating at the smallest and the
 * largest timestamp, then as numbers rounded outward; windows that become equal are one.
 * @param {"tumbling" | "sliding" | "session"} kind
 * @param {number} timestamp
 * @param {number} size
 * @param {number} slide
 * @returns {Window[]}
 */
function wideWindows(kind, timestamp, size, slide) {
  const t = saturate(BigInt(timestamp));
  const [bigSize, bigSlide] = [BigInt(size), BigInt(slide)];
  const startOf = (m) => saturate(t - (((t % m) + m) % m));
  const starts = [];
  if (kind === "tumbling") starts.push(startOf(bigSize));
  else if (kind === "session") starts.push(t);
  else {
    const first = saturate(t - bigSize);
    for (let start = startOf(bigSlide); ; start -= bigSlide) {
      starts.push(start);
      if (start - bigSlide <= first) break;
    }
  }
  const windows = [];
  for (const start of starts) {
    const window = new Window(toNumber(start, false), toNumber(saturate(start + bigSize), true));
    const last = windows[windows.length - 1];
    if (last === undefined || compareWindows(last, window) !== 0) windows.push(window);
  }
  return windows;
}

/** A window kind, its allowed lateness, and where late records go. */
export class Windows {
  /**
   * @internal Use `Windows.tumbling`, `sliding` or `session`.
   * @param {"tumbling" | "sliding" | "session"} kind
   * @param {number} size The size; the gap of session windows.
   * @param {number} slide
   */
  constructor(kind, size, slide) {
    /** @type {"tumbling" | "sliding" | "session"} */
    this.kind = kind;
    /** @internal */ this._size = size;
    /** @internal */ this._slide = slide;
    /** Milliseconds a window is kept past its end. @type {number} */
    this.allowedLatenessMs = 0;
    /** The side output late records go to; null: dropped and counted. @type {string | null} */
    this.lateOutput = null;
  }

  /**
   * Flink's `TumblingEventTimeWindows.of(size)`: `[t - t mod size, … + size)`.
   * @param {number} sizeMs
   */
  static tumbling(sizeMs) {
    const size = positiveMs(sizeMs, "size");
    return new Windows("tumbling", size, size);
  }

  /**
   * Flink's `SlidingEventTimeWindows.of(size, slide)`: a record is in `size / slide` windows.
   * @param {number} sizeMs
   * @param {number} slideMs
   */
  static sliding(sizeMs, slideMs) {
    const size = positiveMs(sizeMs, "size");
    const slide = positiveMs(slideMs, "slide");
    if (slide > size) {
      throw new RangeError(`a sliding window's slide (${slide} ms) cannot be longer than its size (${size} ms)`);
    }
    return new Windows("sliding", size, slide);
  }

  /**
   * Flink's `EventTimeSessionWindows.withGap(gap)`: a window per burst of records less than
   * `gap` apart. Needs the operator's `merge`.
   * @param {number} gapMs
   */
  static session(gapMs) {
    const gap = positiveMs(gapMs, "gap");
    return new Windows("session", gap, gap);
  }

  /**
   * Flink's `allowedLateness`: keeps each window `ms` past its end, firing it again for every
   * record that arrives in that time. Default 0.
   * @param {number} ms
   * @returns {this}
   */
  allowedLateness(ms) {
    if (!Number.isSafeInteger(ms) || ms < 0) throw new RangeError(`the allowed lateness is a non-negative integer (ms), not ${String(ms)}`);
    this.allowedLatenessMs = ms;
    return this;
  }

  /**
   * Flink's `sideOutputLateData`: late records go to side output `name` as they came,
   * instead of being dropped.
   * @param {string} name 1 to 64 characters.
   * @returns {this}
   */
  lateRecordsTo(name) {
    if (!isSideOutputName(name)) throw new TypeError(`a side output's name is 1 to 64 characters, not ${JSON.stringify(name)}`);
    this.lateOutput = name;
    return this;
  }

  /**
   * The windows a record at `timestamp` belongs to.
   * @param {number} timestamp
   * @returns {Window[]}
   */
  assign(timestamp) {
    if (!Number.isInteger(timestamp)) throw new TypeError(`a timestamp is an integer (ms), not ${String(timestamp)}`);
    const size = this._size;
    const slide = this._slide;
    // Within ±2^53 numbers are exact; beyond, the windows are worked out on integers.
    if (!Number.isSafeInteger(timestamp - size) || !Number.isSafeInteger(timestamp + size)) {
      return wideWindows(this.kind, timestamp, size, slide);
    }
    switch (this.kind) {
      case "tumbling": {
        const start = windowStart(timestamp, size);
        return [new Window(start, start + size)];
      }
      case "sliding": {
        // The latest window holding `timestamp` first; always at least that one.
        const windows = [];
        const first = timestamp - size;
        for (let start = windowStart(timestamp, slide); ; start -= slide) {
          windows.push(new Window(start, start + size));
          if (start - slide <= first) break;
        }
        return windows;
      }
      default:
        return [new Window(timestamp, timestamp + size)];
    }
  }

  /**
   * When the state of `window` is freed: its last millisecond plus the allowed lateness.
   * @param {Window} window
   */
  cleanupTime(window) {
    return window.maxTimestamp + this.allowedLatenessMs;
  }

  /**
   * Whether `window` is past its allowed lateness at `watermark` (Flink's `isWindowLate`).
   * @param {Window} window
   * @param {number} watermark
   */
  isLate(window, watermark) {
    return this.cleanupTime(window) <= watermark;
  }
}

/**
 * One open window of a key and its accumulator.
 * @template A
 * @typedef {object} Pane
 * @property {Window} window
 * @property {A} acc
 */

/**
 * The keyed state of a window operator: per key, its open windows and their accumulators,
 * ordered by window, as UTF-8 JSON `[[start, end, acc], …]` (accumulators must be JSON).
 */
const panesCodec = Object.freeze({
  encoding: "json",
  /** @param {Pane<unknown>[]} panes */
  encode(panes) {
    const text = JSON.stringify(panes.map(({ window, acc }) => [window.start, window.end, acc]));
    return textToBinary(text);
  },
  /** @param {string} binary */
  decode(binary) {
    const panes = JSON.parse(binaryToText(binary));
    if (!Array.isArray(panes)) throw new Error("a key's windows are not a JSON array");
    return panes.map((pane) => {
      if (!Array.isArray(pane) || pane.length !== 3 || !Number.isInteger(pane[0]) || !Number.isInteger(pane[1])) {
        throw new Error(`a key's window is not [start, end, accumulator]: ${JSON.stringify(pane)}`);
      }
      return { window: new Window(pane[0], pane[1]), acc: pane[2] };
    });
  },
});

/**
 * A window operator for an incremental aggregate (Flink's `AggregateFunction` with a
 * `ProcessWindowFunction` for the result), on a by-key input whose records carry
 * timestamps. Extend it and implement:
 *
 * - `windows(ctx)`: the window kind, from the node's options (set in `describe`);
 * - `createAccumulator()`: a window's accumulator before its first record;
 * - `add(acc, record)`: the accumulator with `record` added (return it);
 * - `merge(acc, other)`: two accumulators as one, for session windows;
 * - `emit(key, window, acc, out)`: the window's result for `key` (a binary string); every
 *   record emitted gets the window's last millisecond as its timestamp.
 *
 * Its keyed state is the open windows of each key (`panes`: the operator's `KeyedState`):
 * accumulators are checkpointed as JSON. An `open` of your own calls `super.open(ctx)`.
 * @template A
 */
export class WindowOperator extends Operator {
  /** The open windows of each key: `Pane<A>[]`, ordered by window. */
  panes = new KeyedState(panesCodec);
  /** @type {Windows | null} */
  #windows = null;

  /**
   * The windows, from the operator's context.
   * @param {import("./operator.js").Context} ctx
   * @returns {Windows}
   */
  windows(ctx) {
    throw new Error(`${this.constructor.name} implements no windows(ctx)`);
  }

  /**
   * A window's accumulator before its first record.
   * @returns {A}
   */
  createAccumulator() {
    throw new Error(`${this.constructor.name} implements no createAccumulator()`);
  }

  /**
   * Adds a record to a window's accumulator.
   * @param {A} acc
   * @param {import("./batch.js").Record} record
   * @returns {A} The accumulator with the record in it.
   */
  add(acc, record) {
    throw new Error(`${this.constructor.name} implements no add(acc, record)`);
  }

  /**
   * Merges two windows' accumulators when session windows merge.
   * @param {A} acc
   * @param {A} other
   * @returns {A}
   */
  merge(acc, other) {
    throw new Error(`session windows merge accumulators: ${this.constructor.name} implements no merge(acc, other)`);
  }

  /**
   * Emits the result of `window` for `key`.
   * @param {string} key The key, a binary string (`binaryToText` for its text).
   * @param {Window} window
   * @param {A} acc
   * @param {Emitter} out
   */
  emit(key, window, acc, out) {
    throw new Error(`${this.constructor.name} implements no emit(key, window, acc, out)`);
  }

  /** @param {import("./operator.js").Context} ctx */
  open(ctx) {
    const windows = this.windows(ctx);
    if (!(windows instanceof Windows)) throw new TypeError(`${this.constructor.name}.windows(ctx) must return Windows`);
    this.#windows = windows;
  }

  /** @returns {Windows} */
  #opened() {
    if (this.#windows === null) throw new Error(`${this.constructor.name} was not opened: an open(ctx) of its own must call super.open(ctx)`);
    return this.#windows;
  }

  /**
   * @param {import("./batch.js").Record} record
   * @param {Emitter} out
   */
  process(record, out) {
    const timestamp = record.timestamp;
    if (timestamp === null) {
      throw new Error(
        "a record without a timestamp reached an event-time window: give its source a timestamp per record (and a watermark strategy)",
      );
    }
    const windows = this.#opened();
    const watermark = currentWatermark();
    const key = record.key;
    const keyBinary = record.keyBinary();
    const known = this.panes.get(record);
    const panes = known ?? [];
    let added = false;
    // As Flink, a session window merges with the key's open ones before its lateness is
    // judged: a record whose own window is late still counts when it meets an open one.
    for (const window of windows.assign(timestamp)) {
      const { index, created } = windows.kind === "session" ? this.#mergeInto(panes, window) : this.#openPane(panes, window);
      const pane = panes[index];
      if (windows.isLate(pane.window, watermark)) {
        // Only a new window can be late: an open one's cleanup timer would have fired
        // before the watermark got here.
        panes.splice(index, 1);
        continue;
      }
      added = true;
      pane.acc = this.add(pane.acc, record);
      // A window's timers are registered once, when it opens: registering them again for
      // each record (as Flink does) would change nothing, the host keeping one per key and time.
      if (created) this.#register(key, pane.window, watermark);
      if (pane.window.maxTimestamp <= watermark) {
        // Within the allowed lateness of a window that fired: fire it again.
        this.#fire(keyBinary, pane, out);
      }
    }
    if (!added) {
      // None of its windows is open: the key's windows are as they were.
      this.#late(record, windows);
      return;
    }
    // The panes are changed in place: only a key's first ones need storing.
    if (known === undefined) this.panes.set(record, panes);
  }

  /**
   * @param {import("./host.js").Timer} timer
   * @param {Emitter} out
   */
  onTimer(timer, out) {
    if (timer.domain !== TimeDomain.EVENT_TIME) return;
    const record = timer.record;
    const panes = this.panes.get(record);
    if (panes === undefined) return;
    const at = timer.timestamp;
    const key = record.keyBinary();
    for (const pane of panes) {
      if (pane.window.maxTimestamp === at) this.#fire(key, pane, out);
    }
    const windows = this.#opened();
    const open = panes.filter((pane) => windows.cleanupTime(pane.window) > at);
    if (open.length === 0) this.panes.delete(record);
    else if (open.length !== panes.length) this.panes.set(record, open);
  }

  /** Emits `pane`'s result for `key`, stamped with the window's last millisecond. */
  #fire(key, pane, out) {
    const first = out.length;
    this.emit(key, pane.window, pane.acc, out);
    out._stampFrom(first, pane.window.maxTimestamp);
  }

  /**
   * The timers `window` needs for `key` at `watermark`: when it fires (unless the watermark
   * is past that: it fired, and must not fire twice), and when its state goes. Timers are
   * never deleted: a timer is a key and a timestamp, which other windows of the key may
   * share, and one whose window merged away finds nothing to do (`onTimer` fires only the
   * windows ending there and frees only those whose time is up).
   */
  #register(key, window, watermark) {
    const fire = window.maxTimestamp;
    const cleanup = this.#opened().cleanupTime(window);
    if (fire > watermark) registerTimer(TimeDomain.EVENT_TIME, key, fire);
    if (cleanup !== fire) registerTimer(TimeDomain.EVENT_TIME, key, cleanup);
  }

  /**
   * The pane of `window` in `panes` (ordered by window), added with a new accumulator if
   * there is none; its index, and whether it is new (its timers are not set).
   * @param {Pane<A>[]} panes
   * @param {Window} window
   * @returns {{ index: number, created: boolean }}
   */
  #openPane(panes, window) {
    const index = insertionPoint(panes, window);
    if (index < panes.length && compareWindows(panes[index].window, window) === 0) return { index, created: false };
    panes.splice(index, 0, { window, acc: this.createAccumulator() });
    return { index, created: true };
  }

  /**
   * Merges session window `window` with every pane it meets, directly or through others,
   * into one pane; its index, and whether its window is new. (Panes never meet each other,
   * so the merged window is an old one only when `window` lies within it.) The merged
   * accumulator is the first absorbed one with the others merged into it (a new one when
   * none is absorbed). The caller registers a new window's timers.
   * @param {Pane<A>[]} panes
   * @param {Window} window
   * @returns {{ index: number, created: boolean }}
   */
  #mergeInto(panes, window) {
    let merged = window;
    let acc;
    let absorbed = false;
    let created = true;
    for (let i = panes.findIndex((p) => p.window._meets(merged)); i >= 0; i = panes.findIndex((p) => p.window._meets(merged))) {
      const [pane] = panes.splice(i, 1);
      created &&= !pane.window._covers(merged);
      merged = merged._cover(pane.window);
      acc = absorbed ? this.merge(acc, pane.acc) : pane.acc;
      absorbed = true;
    }
    const index = insertionPoint(panes, merged);
    panes.splice(index, 0, { window: merged, acc: absorbed ? acc : this.createAccumulator() });
    return { index, created };
  }

  /** A record behind every window it could be in: dropped and counted, or sent on. */
  #late(record, windows) {
    if (windows.lateOutput === null) {
      counterAdd(LATE_RECORDS_DROPPED, 1);
      return;
    }
    const late = new Emitter();
    late.push(record);
    emitTo(windows.lateOutput, late);
  }
}

/** The index of the first pane whose window is not before `window`. */
function insertionPoint(panes, window) {
  let lo = 0;
  let hi = panes.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (compareWindows(panes[mid].window, window) < 0) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}
