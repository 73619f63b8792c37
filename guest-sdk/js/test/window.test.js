// Event-time windows under Node.js, driven by a Harness as the host drives them (the Rust
// SDK's window tests, in JavaScript): assignment, firing, lateness, freeing, restores.

import assert from "node:assert/strict";
import { test } from "node:test";

import { JobGraph, LATE_RECORDS_DROPPED, Window, WindowOperator, Windows, binaryToText, exportJob } from "cairn-sdk";
import { Harness } from "cairn-sdk/node/harness.js";

/** Counts records per key and window; the window kind from the node's options. */
class Count extends WindowOperator {
  windows(ctx) {
    const n = (key) => Number(ctx.option(key) ?? "0");
    const kind = ctx.option("kind");
    const windows =
      kind === "sliding" ? Windows.sliding(n("size"), n("slide")) : kind === "session" ? Windows.session(n("gap")) : Windows.tumbling(n("size"));
    windows.allowedLateness(n("lateness"));
    const late = ctx.option("late");
    return late === undefined ? windows : windows.lateRecordsTo(late);
  }

  createAccumulator() {
    return 0;
  }

  add(count) {
    return count + 1;
  }

  merge(count, other) {
    return count + other;
  }

  emit(key, window, count, out) {
    out.emitKeyed(binaryToText(key), `${window.start}-${window.end}:${count}`);
  }
}

const job = exportJob({ describe: () => new JobGraph("count"), operators: { count: Count } });

/** @param {Record<string, string>} options */
function harness(options) {
  return Harness.open(job, "count", { operatorUid: "count", options: Object.entries(options) });
}

/** Records at the given timestamps, keyed. */
const at = (...records) => records.map(([key, timestamp, value = ""]) => ({ key, value, timestamp }));

const shown = (records) => records.map((r) => `${r.key} ${r.value} @${r.timestamp}`);

const starts = (windows, timestamp) => windows.assign(timestamp).map((w) => [w.start, w.end]);

test("windows are assigned as Flink assigns them", () => {
  const tumbling = Windows.tumbling(10);
  assert.deepEqual(starts(tumbling, 0), [[0, 10]]);
  assert.deepEqual(starts(tumbling, 19), [[10, 20]]);
  assert.deepEqual(starts(tumbling, -1), [[-10, 0]], "Euclidean: before the epoch too");
  assert.deepEqual(starts(Windows.sliding(10, 5), 12), [[10, 20], [5, 15]]);
  assert.deepEqual(starts(Windows.sliding(10, 5), 10), [[10, 20], [5, 15]]);
  assert.deepEqual(starts(Windows.session(3), 7), [[7, 10]]);
  assert.throws(() => Windows.sliding(5, 10), /slide \(10 ms\) cannot be longer than its size \(5 ms\)/);
  assert.throws(() => Windows.tumbling(0), /a window's size must be 1 ms or more, not 0/);
  assert.throws(() => Windows.tumbling(10).allowedLateness(-1), /allowed lateness/);
});

test("lateness is measured from a window's last millisecond", () => {
  const w = new Window(0, 10);
  assert.equal(w.maxTimestamp, 9);
  const windows = Windows.tumbling(10);
  assert.ok(!windows.isLate(w, 8));
  assert.ok(windows.isLate(w, 9));
  const lenient = Windows.tumbling(10).allowedLateness(5);
  assert.ok(!lenient.isLate(w, 13));
  assert.ok(lenient.isLate(w, 14));
});

test("a tumbling window fires once the watermark passes its end, and is freed", () => {
  const h = harness({ size: "10" });
  assert.deepEqual(h.process(at(["a", 1], ["a", 5], ["b", 12])), []);
  assert.equal(h.timers, 2, "one per window: firing and cleanup coincide without lateness");
  assert.deepEqual(h.advanceWatermark(8), []);
  assert.deepEqual(shown(h.advanceWatermark(9)), ["a 0-10:2 @9"]);
  assert.equal(h.operator.operator.panes.size, 1, "a's state is gone");
  assert.deepEqual(shown(h.finish()), ["b 10-20:1 @19"]);
  assert.equal(h.timers, 0);
  assert.deepEqual(h.snapshot().keyed, [], "every window freed");
});

test("late records are counted, or sent to the side output", () => {
  const h = harness({ size: "10" });
  h.process(at(["a", 1, "x"]));
  h.advanceWatermark(9);
  assert.deepEqual(h.process(at(["a", 3, "late"], ["a", 10, "on time"])), []);
  assert.equal(h.counter(LATE_RECORDS_DROPPED), 1);
  assert.deepEqual(shown(h.finish()), ["a 10-20:1 @19"]);

  const sent = harness({ size: "10", late: "late" });
  sent.advanceWatermark(20);
  sent.process(at(["a", 3, "behind"]));
  assert.equal(sent.counter(LATE_RECORDS_DROPPED), 0);
  assert.deepEqual(sent.sideOutput("late"), [{ key: "a", value: "behind", timestamp: 3 }]);
  assert.deepEqual(sent.sideOutput("late"), [], "taken");
});

test("within the allowed lateness a window fires again, then goes", () => {
  const h = harness({ size: "10", lateness: "5" });
  h.process(at(["a", 1]));
  assert.equal(h.timers, 2, "firing at 9, cleanup at 14");
  assert.deepEqual(shown(h.advanceWatermark(9)), ["a 0-10:1 @9"]);
  // Late, but within 5 ms of the window's end: fired again at once, updated.
  assert.deepEqual(shown(h.process(at(["a", 2]))), ["a 0-10:2 @9"]);
  assert.equal(h.timers, 1, "no second firing timer for a window that fired");
  assert.deepEqual(h.advanceWatermark(13), []);
  h.advanceWatermark(14);
  assert.equal(h.timers, 0);
  assert.deepEqual(h.snapshot().keyed, [], "the key's state removed with its last window");
  h.process(at(["a", 3]));
  assert.equal(h.counter(LATE_RECORDS_DROPPED), 1);
});

test("a record counts in each sliding window it falls in", () => {
  const h = harness({ kind: "sliding", size: "10", slide: "5" });
  h.process(at(["a", 7], ["a", 12]));
  assert.deepEqual(shown(h.finish()), ["a 0-10:1 @9", "a 5-15:2 @14", "a 10-20:1 @19"]);
});

test("session windows merge records closer than the gap", () => {
  const h = harness({ kind: "session", gap: "3" });
  h.process(at(["a", 1], ["a", 6], ["b", 1]));
  // [1,4) and [6,9): a record at 4 bridges them into [1,9).
  h.process(at(["a", 4], ["a", 20]));
  assert.deepEqual(shown(h.finish()), ["b 1-4:1 @3", "a 1-9:3 @8", "a 20-23:1 @22"]);
  assert.equal(h.timers, 0, "the merged-away windows' timers were deleted");

  // A record whose window lies within an open one changes no window, nor its timers.
  const within = harness({ kind: "session", gap: "10" });
  within.process(at(["a", 1], ["a", 5]));
  assert.equal(within.timers, 1, "[1,15): fired and freed at 14");
  within.process(at(["a", 3]));
  assert.equal(within.timers, 1);
  assert.deepEqual(shown(within.finish()), ["a 1-15:3 @14"]);
});

test("windows and their timers survive a restore, at another parallelism too", () => {
  const h = harness({ size: "10" });
  h.process(at(["a", 1], ["b", 11]));
  const state = h.snapshot();
  assert.equal(state.valueEncoding, "json");
  const restored = h.restoreInto();
  restored.process(at(["a", 2]));
  assert.deepEqual(shown(restored.finish()), ["a 0-10:2 @9", "b 10-20:1 @19"]);

  // Split over two subtasks: each gets its keys' windows and timers.
  const out = [];
  for (const subtask of [0, 1]) {
    const half = h.restoreInto({ operatorUid: "count", options: [["size", "10"]], subtask, parallelism: 2 });
    out.push(...shown(half.finish()));
  }
  assert.deepEqual(out.sort(), ["a 0-10:1 @9", "b 10-20:1 @19"]);
});

test("a record without a timestamp, or an operator not opened, is an error naming it", () => {
  const h = harness({ size: "10" });
  assert.throws(() => h.process([{ key: "a", value: "" }]), (e) => e.startsWith("a record without a timestamp reached an event-time window"));
  class Reopened extends Count {
    open() {}
  }
  const forgot = exportJob({ describe: () => new JobGraph("x"), operators: { count: Reopened } });
  assert.throws(
    () => Harness.open(forgot, "count").process(at(["a", 1])),
    (e) => e === "Reopened was not opened: an open(ctx) of its own must call super.open(ctx)",
  );
});

test("tumbling counts match an oracle, whatever the order and the watermark's steps", () => {
  // A small deterministic generator (xorshift), for repeatable cases.
  let seed = 0x2545f491;
  const random = (n) => {
    seed ^= seed << 13;
    seed ^= seed >>> 17;
    seed ^= seed << 5;
    return (seed >>> 0) % n;
  };
  for (let round = 0; round < 50; round++) {
    const bound = random(30);
    const step = 1 + random(19);
    // Timestamps within `bound` of an increasing sequence: never more than `bound` behind
    // the highest before them.
    const stamped = Array.from({ length: random(200) }, (_, i) => [`k${random(5)}`, i * 3 + (random(200) % (bound + 1))]);
    const expected = new Map();
    for (const [k, t] of stamped) expected.set(`${k} ${t - (t % 10)}`, (expected.get(`${k} ${t - (t % 10)}`) ?? 0) + 1);
    const h = harness({ size: "10" });
    const got = new Map();
    const collect = (records) => {
      for (const { key, value } of records) {
        const [window, n] = value.split(":");
        const id = `${key} ${window.split("-")[0]}`;
        assert.ok(!got.has(id), `${id} fired twice`);
        got.set(id, Number(n));
      }
    };
    let highest = -Infinity;
    for (let i = 0; i < stamped.length; i += step) {
      const chunk = stamped.slice(i, i + step);
      collect(h.process(at(...chunk)));
      highest = Math.max(highest, ...chunk.map(([, t]) => t));
      collect(h.advanceWatermark(highest - bound - 1));
    }
    collect(h.finish());
    assert.equal(h.counter(LATE_RECORDS_DROPPED), 0);
    assert.deepEqual(new Map([...got].sort()), new Map([...expected].sort()));
    assert.equal(h.timers, 0);
  }
});
