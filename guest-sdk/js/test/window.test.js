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
  assert.throws(() => Windows.tumbling(10).lateRecordsTo("x".repeat(65)), /a side output's name is 1 to 64 characters/);
  assert.throws(() => Windows.tumbling(10).assign(1.5), /a timestamp is an integer \(ms\), not 1.5/);
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
  assert.equal(h.timers, 0, "every timer fired");

  // A record whose window lies within an open one changes no window, nor its timers.
  const within = harness({ kind: "session", gap: "10" });
  within.process(at(["a", 1], ["a", 5]));
  assert.equal(within.timers, 2, "[1,11)'s at 10 stays (timers are never deleted); [1,15): fired and freed at 14");
  within.process(at(["a", 3]));
  assert.equal(within.timers, 2);
  assert.deepEqual(shown(within.finish()), ["a 1-15:3 @14"]);
  assert.equal(within.timers, 0);
});

test("merging sessions keeps the timers other windows share", () => {
  // A merged-away session window's timers may be another window's too: they stay, and
  // every window still fires once and is freed.
  const h = harness({ kind: "session", gap: "3", lateness: "8" });
  // [0,3) fires at 2 and goes at 10; [8,11) fires at 10; 2 merges [0,3) into [0,5).
  h.process(at(["a", 0], ["a", 8]));
  h.process(at(["a", 2]));
  assert.deepEqual(shown(h.advanceWatermark(4)), ["a 0-5:2 @4"]);
  assert.deepEqual(shown(h.advanceWatermark(10)), ["a 8-11:1 @10"]);
  h.advanceWatermark(18);
  assert.deepEqual(h.snapshot().keyed, [], "both windows freed");
  assert.equal(h.timers, 0);
});

test("a late session record that meets an open window is merged in", () => {
  // As Flink, a session window merges before its lateness is judged: a record whose own
  // window is late still counts when that window meets an open one.
  const h = harness({ kind: "session", gap: "10" });
  h.process(at(["a", 100]));
  h.advanceWatermark(105);
  h.process(at(["a", 95], ["a", 80]));
  assert.equal(h.counter(LATE_RECORDS_DROPPED), 1, "80's window meets none");
  assert.deepEqual(shown(h.finish()), ["a 95-110:2 @109"]);

  // A late record's window that meets none leaves the key's windows as they were.
  const sent = harness({ kind: "session", gap: "10", late: "late" });
  sent.process(at(["a", 100]));
  sent.advanceWatermark(105);
  sent.process(at(["a", 80, "behind"]));
  assert.deepEqual(sent.sideOutput("late"), [{ key: "a", value: "behind", timestamp: 80 }]);
  assert.deepEqual(shown(sent.finish()), ["a 100-110:1 @109"]);
});

test("merged accumulators start from the first absorbed one", () => {
  // Accumulators that say how many were made for them: a fresh one merged in would show.
  class Collect extends Count {
    createAccumulator() {
      return { values: [], made: 1 };
    }
    add(acc, record) {
      return { values: [...acc.values, record.valueString()], made: acc.made };
    }
    merge(acc, other) {
      return { values: [...acc.values, ...other.values], made: acc.made + other.made };
    }
    emit(key, window, acc, out) {
      out.emitKeyed(binaryToText(key), `${window.start}-${window.end}:${acc.values.join(",")} of ${acc.made}`);
    }
  }
  const collect = exportJob({ describe: () => new JobGraph("collect"), operators: { count: Collect } });
  const h = Harness.open(collect, "count", { operatorUid: "count", options: [["kind", "session"], ["gap", "3"]] });
  h.process(at(["a", 1, "x"], ["a", 6, "y"]));
  h.process(at(["a", 4, "z"]));
  assert.deepEqual(shown(h.finish()), ["a 1-9:x,y,z of 2 @8"], "no fresh accumulator merged in");
});

test("windows near the smallest timestamp do not overflow", () => {
  // -2^63 + 1 is -2^63 as a number; -2^63 + 1024 the next number up.
  const MIN = -(2 ** 63);
  for (const min of [MIN + 1, MIN + 1024]) {
    assert.equal(starts(Windows.tumbling(10), min)[0][0], MIN);
    for (const windows of [Windows.tumbling(10), Windows.sliding(10, 5), Windows.sliding(5000, 100), Windows.session(3)]) {
      const assigned = starts(windows, min);
      assert.ok(assigned.length > 0 && assigned.every(([s, e]) => s >= MIN && s <= min && min < e), `${windows.kind} at ${min}: ${assigned}`);
    }
  }
  // Numbers skip integers beyond ±2^53: windows still hold their timestamp, equal ones are
  // one, and a slide finer than the numbers ends.
  for (const t of [2 ** 62, -(2 ** 60) - 2048, 2 ** 53 + 2, -(2 ** 53) - 2]) {
    for (const windows of [Windows.tumbling(10), Windows.sliding(1000, 100), Windows.sliding(10, 1), Windows.session(7)]) {
      const assigned = starts(windows, t);
      assert.ok(assigned.length > 0 && assigned.every(([s, e]) => s <= t && t < e), `${windows.kind} at ${t}: ${assigned}`);
      assert.equal(new Set(assigned.map(String)).size, assigned.length, "no window twice");
    }
  }
  const top = 2 ** 53;
  assert.deepEqual(starts(Windows.sliding(10, 5), top - 12), [[top - 12, top - 2], [top - 17, top - 7]]);
  assert.deepEqual(starts(Windows.sliding(10, 5), top - 3), [[top - 7, top + 4], [top - 12, top - 2]], "2^53 + 3 rounded up");

  // A record there is counted and fires.
  const h = harness({ kind: "sliding", size: "10", slide: "5" });
  h.process(at(["a", MIN + 1024]));
  assert.equal(h.counter(LATE_RECORDS_DROPPED), 0);
  assert.equal(h.finish().length, 1, "its windows are one number-wise");
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
