// Operators, and the component export that drives them batch by batch.

import { Args } from "./args.js";
import { Batch, Emitter, Record } from "./batch.js";
import { decodeText, encodeText } from "./bytes.js";
import { graphToWit } from "./graph.js";
import { Timer, _newCall } from "./host.js";
import { keyedStateOf } from "./keyed.js";

/** Where an operator instance runs. */
export class Context {
  /** @param {WitContext} ctx */
  constructor(ctx) {
    /** 32 lowercase hex characters. @type {string} */
    this.jobId = ctx.jobId;
    /** @type {string} */
    this.operatorUid = ctx.operatorUid;
    /** 0-based index of this subtask among the node's subtasks. @type {number} */
    this.subtask = ctx.subtask;
    /** @type {number} */
    this.parallelism = ctx.parallelism;
    /** 0 on the first run; counts up on every restart of the job. @type {number} */
    this.attempt = ctx.attempt;
    /** The options of this operator's node, as the graph set them. @type {[string, string][]} */
    this.options = ctx.options;
    /** The number of key groups (`pipeline.max-parallelism`), fixed for the life of a job. @type {number} */
    this.maxParallelism = ctx.maxParallelism;
    /**
     * The key groups this subtask owns, `first` to `last` included: every record of a by-key
     * input is in one of them, and so is every key of its keyed state.
     * @type {{ first: number, last: number }}
     */
    this.keyGroups = ctx.keyGroups;
  }

  /**
   * The value of option `name` of this operator's node (the last one set wins).
   * @param {string} name
   * @returns {string | undefined}
   */
  option(name) {
    for (let i = this.options.length - 1; i >= 0; i--) {
      if (this.options[i][0] === name) return this.options[i][1];
    }
    return undefined;
  }
}

/**
 * The WIT `context` record, as the bindings pass it.
 * @typedef {object} WitContext
 * @property {string} jobId
 * @property {string} operatorUid
 * @property {number} subtask
 * @property {number} parallelism
 * @property {number} attempt
 * @property {[string, string][]} options
 * @property {number} maxParallelism
 * @property {{ first: number, last: number }} keyGroups
 */

/**
 * A keyed-state chunk: the entries of one key group, in the chunk encoding.
 * @typedef {object} KeyedChunk
 * @property {number} keyGroup
 * @property {Uint8Array} entries
 */

/**
 * A stream operator: extend this class and implement `process`. Its state has two parts:
 *
 * - keyed state, a value per key: a `KeyedState` field (at most one). The host stores it by
 *   key group, so the job can change parallelism across a savepoint, and `cairn state` can
 *   show it.
 * - operator-wide state, small and not per key: by default the operator's other own
 *   enumerable properties (`this.total = 0`), as JSON, with Maps, Sets, BigInts and
 *   Uint8Arrays kept as such. Private fields (`#cache`) are not state: set them in `open`,
 *   which runs again after a restore. For an encoding of your own, override `snapshot` and
 *   `restore`.
 *
 * `static STATE_VERSION` covers both parts.
 */
export class Operator {
  /**
   * The version of this operator's state encoding (both parts), stored with every snapshot
   * and handed back on restore. Raise it when an encoding changes, and teach `restore` and
   * `restoreKeyed` to read (migrate) the older versions.
   * @type {number}
   */
  static STATE_VERSION = 1;

  /**
   * How operator-wide state is shared out when the parallelism changes: `"split"` (each old
   * subtask's state goes to one new subtask; some get none) or `"union"` (every new subtask
   * gets every old subtask's state, one `restore` call each).
   * @type {"split" | "union"}
   */
  static OPERATOR_STATE_MODE = "split";

  /**
   * Called when the subtask starts, and again after its state was restored.
   * @param {Context} ctx
   */
  open(ctx) {}

  /**
   * Processes one record, emitting any number of records to `out`.
   * @param {Record} record The same object for every record of a batch: keep its data, not it.
   * @param {Emitter} out
   */
  process(record, out) {
    throw new Error(`${this.constructor.name} implements neither process(record, out) nor processBatch(batch, out)`);
  }

  /**
   * Processes a whole batch. By default calls `process` for each record; override it to work
   * on the batch at once (see `Batch`).
   * @param {Batch} batch
   * @param {Emitter} out
   */
  processBatch(batch, out) {
    // batch.at(i), inlined: this loop runs once per record.
    const offsets = batch._offsets;
    const record = batch._cursor;
    const n = offsets.length;
    let start = 0;
    for (let i = 0; i < n; i += 2) {
      record.index = i >> 1;
      record._key = null;
      record.keyStart = start;
      record.valueStart = offsets[i];
      record.valueEnd = start = offsets[i + 1];
      this.process(record, out);
    }
  }

  /**
   * A timer this operator registered (`registerTimer`) fired. The key's keyed state is at
   * hand through `timer.record`, as for a record of a by-key input. Emits any number of
   * records to `out`.
   * @param {Timer} timer The same object for every timer of a call: keep its data, not it.
   * @param {Emitter} out
   */
  onTimer(timer, out) {
    throw new Error(
      `a timer fired (key ${JSON.stringify(timer.record.keyBinary())}, ${timer.domain} ${timer.timestamp}), ` +
        `but ${this.constructor.name} does not implement onTimer(timer, out)`,
    );
  }

  /**
   * All inputs have ended, and every event-time timer has fired: emit any last records.
   * @param {Emitter} out
   */
  finish(out) {}

  /**
   * The operator-wide state. An empty result means none. By default: the own enumerable
   * properties but the keyed state, as JSON (see the class comment); none if there are none.
   * @returns {Uint8Array | string} A string is stored as its UTF-8 bytes.
   */
  snapshot() {
    const json = JSON.stringify(this, jsonReplacer);
    return json === "{}" ? new Uint8Array(0) : encodeText(json);
  }

  /**
   * Restores operator-wide state from `snapshot` — possibly written by other code (an older
   * version of this job, or another language), in encoding `version`. After a rescale it is
   * called once for each old subtask's state this subtask gets (see `OPERATOR_STATE_MODE`),
   * or not at all; keyed state is restored before. By default only the operator's own
   * `STATE_VERSION` is accepted, decoded as the default `snapshot` encodes it.
   * @param {Uint8Array} data
   * @param {number} version
   */
  restore(data, version) {
    checkVersion(this, version);
    let state;
    try {
      state = JSON.parse(decodeText(data), jsonReviver);
    } catch (e) {
      throw new Error(`cannot decode state: ${e instanceof Error ? e.message : e}`);
    }
    Object.assign(this, state);
  }

  /**
   * Restores one key group's keyed state, written in encoding `version`, before `restore`.
   * By default the chunk goes to the `KeyedState` field when `version` is the operator's
   * own; override it to migrate an older encoding (`chunkEntries` reads a chunk, and
   * `keyedState.restore(chunk, decode)` takes it with a decoder of your own).
   * @param {KeyedChunk} chunk
   * @param {number} version
   */
  restoreKeyed(chunk, version) {
    checkVersion(this, version);
    const keyed = keyedStateOf(this);
    if (keyed === null) {
      throw new Error("the state has keyed state for this operator, which keeps none (it has no KeyedState field)");
    }
    keyed.restore(chunk);
  }

  /**
   * A checkpoint this operator's state belongs to is durable everywhere.
   * @param {number} checkpointId
   */
  checkpointComplete(checkpointId) {}
}

/** Refuses state in an encoding the operator does not know. */
function checkVersion(operator, version) {
  const own = /** @type {typeof Operator} */ (operator.constructor).STATE_VERSION;
  if (version !== own) {
    throw new Error(
      `the state is in encoding version ${version}, this operator reads version ${own}; ` +
        "implement restore(data, version) (and restoreKeyed(chunk, version)) to migrate it",
    );
  }
}

function jsonReplacer(key, value) {
  if (value instanceof Map) return { $map: [...value] };
  if (value instanceof Set) return { $set: [...value] };
  if (typeof value === "bigint") return { $bigint: value.toString() };
  if (value instanceof Uint8Array) return { $bytes: value.toBase64() };
  return value;
}

function jsonReviver(key, value) {
  if (value !== null && typeof value === "object" && !Array.isArray(value)) {
    const keys = Object.keys(value);
    if (keys.length === 1) {
      switch (keys[0]) {
        case "$map":
          return new Map(value.$map);
        case "$set":
          return new Set(value.$set);
        case "$bigint":
          return BigInt(value.$bigint);
        case "$bytes":
          return Uint8Array.fromBase64(value.$bytes);
      }
    }
  }
  return value;
}

/**
 * The message an exception becomes in the WIT `err` string: the message and, for errors
 * other than a plain `Error`, where it was thrown.
 * @param {string} what
 * @param {unknown} e
 */
export function failure(what, e) {
  if (!(e instanceof Error)) return `${what}${String(e)}`;
  // A plain Error is a message meant for the user; other kinds (TypeError, RangeError, …)
  // are bugs, and where they happened helps.
  if (e.name === "Error") return `${what}${e.message}`;
  const frames = String(e.stack ?? "")
    .split("\n")
    .map((line) => sourceFrame(line.trim()))
    .filter((line) => line.startsWith("at ") && !line.includes("cairn-sdk/"))
    .slice(0, 5);
  return `${what}${e.name}: ${e.message}${frames.length ? `\n    ${frames.join("\n    ")}` : ""}`;
}

/**
 * A stack frame with its position in the bundle replaced by the module and line it came
 * from, as the build recorded them (see build.js).
 * @param {string} frame
 */
function sourceFrame(frame) {
  const map = globalThis[Symbol.for("cairn.sourceLines")];
  if (!map) return frame;
  return frame.replace(/\(([^()]*):(\d+):(\d+)\)$/, (whole, file, line, column) => {
    const segments = (map.lines.split(";")[Number(line) - 1] ?? "").split(",").map(Number);
    let found = -1;
    for (let i = 0; i + 2 < segments.length && segments[i] < Number(column); i += 3) found = i;
    return found < 0 ? whole : `(${map.sources.split("\n")[segments[found + 1]]}:${segments[found + 2]})`;
  });
}

/**
 * One running operator subtask: the WIT `operator` resource.
 * @internal
 */
class OperatorInstance {
  /**
   * @param {Operator} operator
   * @param {Context} ctx
   */
  constructor(operator, ctx) {
    this.operator = operator;
    this.ctx = ctx;
    this.keyed = keyedStateOf(operator);
    this.keyed?._open(ctx.keyGroups);
    this.batch = new Batch();
    /** The fired timers of an `onTimer` call. */
    this.timers = new Batch();
    this.out = new Emitter();
  }

  /**
   * @param {number} input
   * @param {import("./batch.js").PackedBatch} packed
   * @param {ArrayLike<number>} keyGroups Each record's key group on a by-key input, else empty.
   */
  process(input, packed, keyGroups) {
    const out = this.out;
    _newCall();
    try {
      this.batch._reset(input, packed, keyGroups);
      this.operator.processBatch(this.batch, out);
    } catch (e) {
      this.out = new Emitter();
      throw failure("", e);
    }
    return out._take();
  }

  /**
   * Timers of `domain` fired: a record per timer (its key and timestamp, no value), and each
   * one's key group.
   * @param {import("./host.js").TimeDomain} domain
   * @param {import("./batch.js").PackedBatch} packed
   * @param {ArrayLike<number>} keyGroups
   */
  onTimer(domain, packed, keyGroups) {
    const out = this.out;
    _newCall();
    try {
      const timers = this.timers;
      timers._reset(0, packed, keyGroups);
      const timer = new Timer(domain, timers._cursor);
      for (let i = 0; i < timers.length; i++) {
        timers.at(i);
        this.operator.onTimer(timer, out);
      }
    } catch (e) {
      this.out = new Emitter();
      throw failure("", e);
    }
    return out._take();
  }

  /** @param {number} checkpointId */
  snapshot(checkpointId) {
    let item;
    let keyed = [];
    try {
      item = this.operator.snapshot();
      if (typeof item === "string") item = encodeText(item);
      else if (item === undefined || item === null) item = new Uint8Array(0);
      else if (!(item instanceof Uint8Array)) {
        throw new TypeError(`snapshot() must return a Uint8Array or a string, not ${typeof item}`);
      }
      if (this.keyed !== null) keyed = this.keyed._snapshot();
    } catch (e) {
      throw failure("snapshot: ", e);
    }
    const Class = /** @type {typeof Operator} */ (this.operator.constructor);
    return {
      version: Class.STATE_VERSION,
      operatorState: item.length === 0 ? [] : [item],
      operatorStateMode: Class.OPERATOR_STATE_MODE,
      keyed,
      valueEncoding: this.keyed?.codec.encoding ?? "bytes",
    };
  }

  /**
   * @param {number} version
   * @param {KeyedChunk[]} chunks
   */
  restoreKeyed(version, chunks) {
    try {
      for (const chunk of chunks) this.operator.restoreKeyed(chunk, version);
    } catch (e) {
      throw failure("", e);
    }
  }

  /**
   * The restore is complete: operator-wide state last, then the operator opens again.
   * @param {number} version
   * @param {Uint8Array[]} items
   */
  restore(version, items) {
    try {
      for (const item of items) this.operator.restore(item, version);
      this.operator.open(this.ctx);
    } catch (e) {
      throw failure("", e);
    }
  }

  /** @param {number} checkpointId */
  checkpointComplete(checkpointId) {
    try {
      this.operator.checkpointComplete(checkpointId);
    } catch (e) {
      // The WIT function cannot fail; a trap would kill the subtask for a notification.
      logError(failure(`checkpointComplete(${checkpointId}) failed: `, e));
    }
  }

  finish() {
    _newCall();
    try {
      this.operator.finish(this.out);
    } catch (e) {
      this.out = new Emitter();
      throw failure("finish: ", e);
    }
    return this.out._take();
  }
}

let logError = (/** @type {string} */ message) => {};

/** @internal Lets `index.js` route errors the WIT cannot return into the log. */
export function _setErrorLog(fn) {
  logError = fn;
}

/**
 * What a job module exports: its graph and its operators.
 * @typedef {object} JobDefinition
 * @property {(args: Args) => import("./graph.js").JobGraph} describe The job graph for the
 *   arguments after `--` on `cairn run`. An exception is shown to the user as the reason the
 *   job could not start.
 * @property {{ [name: string]: new () => Operator }} operators The operator classes, by the
 *   names the graph's operator nodes use.
 */

/**
 * Turns a job definition into the component's `cairn:job/job` export. Use it once, in the
 * job's entry module: `export const job = exportJob({ describe, operators: { split: Split } })`
 * (the export must be named `job`).
 * @param {JobDefinition} definition
 */
export function exportJob(definition) {
  const { describe, operators } = definition;
  if (typeof describe !== "function") throw new TypeError("exportJob: describe must be a function");
  if (typeof operators !== "object" || operators === null) {
    throw new TypeError("exportJob: operators must be an object of operator classes by name");
  }
  return {
    /** @param {string[]} args */
    describe(args) {
      try {
        return graphToWit(describe(new Args(args)));
      } catch (e) {
        throw failure("", e);
      }
    },
    /**
     * @param {WitContext} witContext
     * @param {string} name
     */
    open(witContext, name) {
      const OperatorClass = Object.hasOwn(operators, name) ? operators[name] : undefined;
      if (typeof OperatorClass !== "function") {
        throw `this job has no operator named ${JSON.stringify(name)} (it has ${Object.keys(operators).map((n) => JSON.stringify(n)).join(", ") || "none"})`;
      }
      const ctx = new Context(witContext);
      try {
        const operator = new OperatorClass();
        if (typeof operator.processBatch !== "function") {
          throw new TypeError(`operator ${JSON.stringify(name)} (${OperatorClass.name}) does not extend Operator`);
        }
        const { STATE_VERSION: version, OPERATOR_STATE_MODE: mode } = OperatorClass;
        if (!Number.isInteger(version) || version < 0 || version > 0xffffffff) {
          throw new TypeError(`${OperatorClass.name}.STATE_VERSION must be an integer from 0 to 2^32-1, not ${version}`);
        }
        if (mode !== "split" && mode !== "union") {
          throw new TypeError(`${OperatorClass.name}.OPERATOR_STATE_MODE must be "split" or "union", not ${JSON.stringify(mode)}`);
        }
        const instance = new OperatorInstance(operator, ctx);
        operator.open(ctx);
        return instance;
      } catch (e) {
        throw failure("open: ", e);
      }
    },
    Operator: OperatorInstance,
  };
}

