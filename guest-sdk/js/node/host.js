// Stands in for the component's `cairn:job/timers`, `cairn:job/outputs` and
// `cairn:job/metrics` imports under Node.js: the host of the `Harness` (./harness.js) that
// drives the operator, installed around each of its calls. It keeps the timers (fired in
// the host's order: timestamp, then key), the watermark and the clock as the test moves
// them, and what the operator sent to side outputs and counters. Outside a harness's call
// there is no host: timers, side outputs and counters fail, the watermark is -2^63 and the
// clock 0. As Cairn's host, it takes timers, side outputs and counters only during the
// operator's process, onTimer and finish calls: in its other calls (open, snapshot,
// restore) they fail too, deleting a timer does nothing and the watermark is -2^63.

import { bytesToBinary } from "../src/bytes.js";
import { keyGroup } from "./keys.js";

/** The watermark before the first. */
export const MIN_WATERMARK = -(2 ** 63);

/** A timer: its key (bytes, and as a binary string), key group and timestamp. */
class PendingTimer {
  constructor(key, group, timestamp) {
    this.key = key;
    this.binary = bytesToBinary(key);
    this.group = group;
    this.timestamp = timestamp;
  }

  get id() {
    return `${this.timestamp}:${this.binary}`;
  }
}

/** The host's side of one operator subtask under test. */
export class TestHost {
  /** @param {{ first: number, last: number }} keyGroups The subtask's. */
  constructor(keyGroups) {
    this.keyGroups = keyGroups;
    /** Registered timers per domain, by timestamp and key. @type {Map<string, Map<string, PendingTimer>>} */
    this.timers = new Map([
      ["event-time", new Map()],
      ["processing-time", new Map()],
    ]);
    this.watermark = MIN_WATERMARK;
    this.now = 0;
    /** Packed batches sent to each side output. @type {Map<string, object[]>} */
    this.sideOutputs = new Map();
    /** @type {Map<string, number>} */
    this.counters = new Map();
    /** Whether a process, onTimer or finish call is under way. */
    this.calling = false;
  }

  register(domain, key, timestamp) {
    const group = keyGroup(key);
    const { first, last } = this.keyGroups;
    if (group < first || group > last) {
      throw `a timer for key ${JSON.stringify(bytesToBinary(key))} (key group ${group}) is not this subtask's to keep (key groups ${first}..=${last}): timers are for the keys of records from a by-key input`;
    }
    const timer = new PendingTimer(Uint8Array.from(key), group, timestamp);
    this.#domain(domain).set(timer.id, timer);
  }

  delete(domain, key, timestamp) {
    this.#domain(domain).delete(new PendingTimer(key, 0, timestamp).id);
  }

  /** The number of registered timers, both domains. */
  get size() {
    let n = 0;
    for (const timers of this.timers.values()) n += timers.size;
    return n;
  }

  /**
   * Removes and returns the timers of `domain` due at `until`, in firing order.
   * @returns {PendingTimer[]}
   */
  due(domain, until) {
    const timers = this.#domain(domain);
    const due = [...timers.values()].filter((t) => t.timestamp <= until);
    due.sort((a, b) => a.timestamp - b.timestamp || (a.binary < b.binary ? -1 : a.binary > b.binary ? 1 : 0));
    for (const timer of due) timers.delete(timer.id);
    return due;
  }

  #domain(domain) {
    const timers = this.timers.get(domain);
    if (timers === undefined) throw new TypeError(`unknown time domain ${JSON.stringify(domain)}`);
    return timers;
  }
}

/** @type {TestHost | null} */
let current = null;

/**
 * Makes `host` the host of the calls that follow (null: none); returns the one before.
 * @param {TestHost | null} host
 */
export function install(host) {
  const before = current;
  current = host;
  return before;
}

function host() {
  if (current === null) throw "no host: timers, side outputs and counters need one (drive the operator with a Harness)";
  if (!current.calling) throw OUTSIDE_A_CALL;
  return current;
}

/** What an operator is told when it uses timers, side outputs or counters in another call (Cairn's words). */
const OUTSIDE_A_CALL = "timers, side outputs and counters are for the operator's process, on-timer and finish calls only";

/** The host during a process, onTimer or finish call, or null. */
function calling() {
  return current?.calling ? current : null;
}

// The imports, by their WIT names.

export function register(domain, key, timestamp) {
  host().register(domain, key, timestamp);
}

function deleteTimer(domain, key, timestamp) {
  calling()?.delete(domain, key, timestamp);
}

export { deleteTimer as delete };

export function currentWatermark() {
  return calling()?.watermark ?? MIN_WATERMARK;
}

export function currentProcessingTime() {
  return current?.now ?? 0;
}

export function emit(name, batch) {
  const outputs = host().sideOutputs;
  if (!outputs.has(name)) outputs.set(name, []);
  outputs.get(name).push(batch);
}

export function counterAdd(name, delta) {
  const counters = host().counters;
  counters.set(name, (counters.get(name) ?? 0) + delta);
}
