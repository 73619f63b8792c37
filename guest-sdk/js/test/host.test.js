// What an operator asks of the host under Node.js: timers registered, deleted and fired
// through onTimer (with the key's keyed state at hand), the clocks, side outputs, counters;
// and the graph's watermark strategies and side-output inputs.

import assert from "node:assert/strict";
import { test } from "node:test";

import {
  Emitter,
  JobGraph,
  KeyedState,
  Operator,
  Partitioning,
  Sink,
  Source,
  TimeDomain,
  WatermarkStrategy,
  codecs,
  counterAdd,
  currentProcessingTime,
  currentWatermark,
  deleteTimer,
  emitTo,
  exportJob,
  registerTimer,
} from "cairn-sdk";
import { graphToWit } from "../src/graph.js";
import { Harness } from "cairn-sdk/node/harness.js";

/**
 * Counts records per key and emits the count when the key's timer fires: `delay` after
 * the record in event time, or at the clock's `now + delay` in processing time; a value
 * "cancel" deletes the event-time timer. Every record also counts in counter `seen` and
 * goes to side output `copies`.
 */
class Timeout extends Operator {
  counts = new KeyedState(codecs.u64);

  process(record, out) {
    this.counts.update(record, (n = 0) => n + 1);
    const delay = 10;
    if (record.valueString() === "cancel") {
      deleteTimer(TimeDomain.EVENT_TIME, record.key, record.timestamp + delay);
    } else if (record.valueString() === "clock") {
      registerTimer(TimeDomain.PROCESSING_TIME, record.keyBinary(), currentProcessingTime() + delay);
    } else {
      registerTimer(TimeDomain.EVENT_TIME, record.key, record.timestamp + delay);
    }
    counterAdd("seen");
    const copy = new Emitter();
    copy.push(record);
    emitTo("copies", copy);
  }

  onTimer(timer, out) {
    const n = this.counts.get(timer.record);
    this.counts.delete(timer.record);
    out.emitKeyed(timer.keyString(), `${timer.domain} ${timer.timestamp} ${n} wm=${currentWatermark()}`);
  }
}

const job = exportJob({ describe: () => new JobGraph("t"), operators: { timeout: Timeout, plain: class Plain extends Operator {} } });

test("timers fire in order of timestamp then key, with the key's state at hand", () => {
  const h = Harness.open(job, "timeout");
  h.process([
    { key: "b", value: "", timestamp: 5 },
    { key: "a", value: "", timestamp: 5 },
    { key: "c", value: "", timestamp: 1 },
    { key: "a", value: "", timestamp: 5 }, // the same timer again: one
  ]);
  assert.equal(h.timers, 3);
  assert.deepEqual(h.advanceWatermark(10), []);
  assert.deepEqual(
    h.advanceWatermark(15).map((r) => `${r.key}: ${r.value}`),
    ["c: event-time 11 1 wm=15", "a: event-time 15 2 wm=15", "b: event-time 15 1 wm=15"],
  );
  assert.equal(h.timers, 0);
  assert.deepEqual(h.snapshot().keyed, [], "onTimer deleted every key's state");
  assert.equal(h.counter("seen"), 4);
  assert.deepEqual(
    h.sideOutput("copies").map((r) => r.key),
    ["b", "a", "c", "a"],
  );
});

test("deleted timers do not fire; processing-time timers follow the clock", () => {
  const h = Harness.open(job, "timeout");
  h.process([
    { key: "a", value: "", timestamp: 0 },
    { key: "a", value: "cancel", timestamp: 0 },
    { key: "b", value: "clock", timestamp: 0 },
  ]);
  assert.equal(h.timers, 1);
  assert.deepEqual(h.advanceWatermark(100), []);
  assert.deepEqual(h.advanceProcessingTime(9), []);
  assert.deepEqual(h.advanceProcessingTime(10).map((r) => r.value), [`processing-time 10 1 wm=100`]);
});

test("timers and their keys' state survive a restore", () => {
  const h = Harness.open(job, "timeout");
  h.process([{ key: "a", value: "", timestamp: 0 }]);
  const restored = h.restoreInto();
  assert.deepEqual(restored.finish().map((r) => r.value), [`event-time 10 1 wm=${2 ** 63}`]);
});

test("misuse is an error naming it", () => {
  const plain = Harness.open(job, "plain");
  plain.host.register("event-time", new Uint8Array([97]), 3);
  assert.throws(
    () => plain.advanceWatermark(3),
    (e) => e === 'a timer fired (key "a", event-time 3), but Plain does not implement onTimer(timer, out)',
  );
  assert.throws(() => registerTimer("sometime", "a", 1), /a time domain is TimeDomain.EVENT_TIME or TimeDomain.PROCESSING_TIME, not "sometime"/);
  assert.throws(() => registerTimer(TimeDomain.EVENT_TIME, "a", 1.5), /integer/);
  assert.throws(() => registerTimer(TimeDomain.EVENT_TIME, "日", 1), /binary string/);
  assert.throws(() => registerTimer(TimeDomain.EVENT_TIME, "a", 1), /^Error: cannot register a timer: no host/);
  assert.throws(() => counterAdd("bad name"), /a counter's name is 1 to 64 ASCII letters, digits or _/);
  assert.throws(() => counterAdd("dotted.name"), /a counter's name is 1 to 64 ASCII letters, digits or _, not "dotted.name"/);
  assert.throws(() => counterAdd("n".repeat(65)), /a counter's name/);
  assert.throws(() => counterAdd(""), /a counter's name/);
  assert.throws(() => emitTo("", new Emitter()), /a side output's name is 1 to 64 characters, not ""/);
  assert.throws(() => emitTo("x".repeat(65), new Emitter()), /a side output's name is 1 to 64 characters/);
  assert.throws(() => counterAdd("n", -1), /non-negative integer/);
  assert.throws(() => emitTo("late", [1]), /records is an Emitter/);
});

test("names as the host takes them: counters of letters, digits and _, side outputs of 1 to 64 characters", () => {
  class Named extends Operator {
    process(record, out) {
      counterAdd("n_0".repeat(21) + "x");
      const copy = new Emitter();
      copy.push(record);
      // 64 characters, 192 bytes of UTF-8.
      emitTo("日".repeat(64), copy);
    }
  }
  const named = exportJob({ describe: () => new JobGraph("x"), operators: { n: Named } });
  const h = Harness.open(named, "n");
  h.process([{ key: "k", value: "" }]);
  assert.equal(h.counter("n_0".repeat(21) + "x"), 1);
  assert.equal(h.sideOutput("日".repeat(64)).length, 1);
  const job = new JobGraph("late");
  job.source("in", Source.stdin()).sideOutput("").sink("out", Sink.stdout(), Partitioning.FORWARD);
  assert.throws(() => graphToWit(job), /a side output's name is 1 to 64 characters, not ""/);
});

test("timers, side outputs and counters are for process, onTimer and finish only", () => {
  /** Uses the host in `open` or `snapshot`, as its option says. */
  class Eager extends Operator {
    open(ctx) {
      this.when = ctx.option("when");
      if (this.when === "open") this.use();
    }
    snapshot() {
      if (this.when === "snapshot") this.use();
      return new Uint8Array(0);
    }
    use() {
      deleteTimer(TimeDomain.EVENT_TIME, "k", 1); // does nothing
      assert.equal(currentWatermark(), -(2 ** 63));
      registerTimer(TimeDomain.EVENT_TIME, "k", 1);
    }
  }
  const eager = exportJob({ describe: () => new JobGraph("x"), operators: { e: Eager } });
  const outside = /timers, side outputs and counters are for the operator's process, on-timer and finish calls only/;
  assert.throws(() => Harness.open(eager, "e", { options: [["when", "open"]] }), outside);
  const h = Harness.open(eager, "e", { options: [["when", "snapshot"]] });
  h.advanceWatermark(10);
  assert.throws(() => h.snapshot(), outside);
});

test("a key outside the subtask's key groups cannot have a timer", () => {
  class Foreign extends Operator {
    process(record) {
      registerTimer(TimeDomain.EVENT_TIME, "some other key", 1);
    }
  }
  const foreign = exportJob({ describe: () => new JobGraph("x"), operators: { f: Foreign } });
  const refusals = [];
  for (const subtask of [0, 1, 2, 3]) {
    try {
      Harness.open(foreign, "f", { subtask, parallelism: 4 }).process([{ key: "k", value: "", timestamp: 0 }]);
    } catch (e) {
      refusals.push(e);
    }
  }
  // Of 4 subtasks, the 3 that do not own the key's group refuse it.
  assert.equal(refusals.length, 3);
  for (const e of refusals) {
    assert.match(e, /^cannot register a timer: a timer for key "some other key" \(key group \d+\) is not this subtask's to keep/);
  }
});

test("nodes carry watermark strategies, and side outputs are inputs of their own", () => {
  const job = new JobGraph("late");
  const count = job
    .source("in", Source.file("in.txt"))
    .watermarks(WatermarkStrategy.boundedOutOfOrderness(500).withIdleness(2000))
    .operator("count", "count", Partitioning.BY_KEY)
    .watermarks(WatermarkStrategy.monotonousTimestamps());
  count.sink("out", Sink.file("out"), Partitioning.FORWARD);
  job.stream("count").sideOutput("late").sink("late-out", Sink.file("late"), Partitioning.FORWARD);
  assert.equal(job.stream("nothing"), null);
  const nodes = graphToWit(job).nodes;
  assert.deepEqual(
    nodes.map((n) => n.watermarks),
    [{ maxOutOfOrdernessMs: 500, idleTimeoutMs: 2000 }, { maxOutOfOrdernessMs: 0, idleTimeoutMs: null }, null, null],
  );
  assert.deepEqual(
    nodes.slice(2).map((n) => n.inputs),
    [
      [{ upstream: "count", partitioning: { tag: "forward" }, sideOutput: null }],
      [{ upstream: "count", partitioning: { tag: "forward" }, sideOutput: "late" }],
    ],
  );
  assert.throws(() => WatermarkStrategy.boundedOutOfOrderness(-1), /non-negative integer/);
  const sunk = new JobGraph("x");
  sunk.source("in", Source.stdin()).sink("out", Sink.stdout(), Partitioning.FORWARD);
  sunk.nodes[1].watermarks = WatermarkStrategy.monotonousTimestamps();
  assert.throws(() => graphToWit(sunk), /node "out": a sink makes no watermarks/);
});
