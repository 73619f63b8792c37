// windowed-count-js's graph and operators under Node.js, driven as the host drives them:
//   cd guest-sdk/js && npm test
// (or: node --import ./guest-sdk/js/node/register.js --test example-jobs/windowed-count-js/)

import assert from "node:assert/strict";
import { test } from "node:test";

import { LATE_RECORDS_DROPPED } from "cairn-sdk";
import { Harness } from "cairn-sdk/node/harness.js";
import { MALFORMED_LINES, job } from "./job.js";

const shape = (graph) =>
  graph.nodes.map((n) => [
    n.uid,
    n.kind.val,
    n.inputs.map((i) => [i.upstream, i.partitioning.tag, i.sideOutput]),
    n.parallelism,
    n.options,
    n.watermarks,
  ]);

test("describe builds Rust's windowed-count graph", () => {
  const graph = job.describe(["--input", "in.txt", "--output", "out", "--rate", "20", "--window", "500", "--max-delay", "100"]);
  assert.equal(graph.name, "windowed-count");
  assert.deepEqual(shape(graph), [
    ["lines", "file", [], 1, [["path", "in.txt"], ["rate", "20"]], null],
    ["stamp", "stamp", [["lines", "rebalance", null]], null, [], { maxOutOfOrdernessMs: 100, idleTimeoutMs: null }],
    ["count", "count", [["stamp", "by-key", null]], null, [["window", "500"], ["allowed-lateness", "0"]], null],
    ["out", "file", [["count", "forward", null]], null, [["path", "out"]], null],
  ]);
  const defaults = job.describe(["--input", "-", "--output", "-", "--idleness", "300", "--allowed-lateness", "50"]);
  assert.deepEqual(shape(defaults)[1][5], { maxOutOfOrdernessMs: 0, idleTimeoutMs: 300 });
  assert.deepEqual(shape(defaults)[2][4], [["window", "1000"], ["allowed-lateness", "50"]]);
  assert.deepEqual([defaults.nodes[0].kind, defaults.nodes[3].kind], [{ tag: "source", val: "stdin" }, { tag: "sink", val: "stdout" }]);

  const late = job.describe(["--input", "in.txt", "--output", "out", "--late-output", "late/"]);
  assert.deepEqual(shape(late).slice(2), [
    ["count", "count", [["stamp", "by-key", null]], null, [["window", "1000"], ["allowed-lateness", "0"], ["late-output", "late"]], null],
    ["out", "file", [["count", "forward", null]], null, [["path", "out"]], null],
    ["late-words", "late-words", [["count", "forward", "late"]], null, [], null],
    ["late-out", "file", [["late-words", "forward", null]], null, [["path", "late/"]], null],
  ]);

  const refused = (args) => (e) => typeof e === "string" && args(e);
  assert.throws(() => job.describe(["--input", "x", "--output", "y", "--window", "0"]), refused((e) => e === "--window: a window's size must be 1 ms or more, not 0"));
  assert.throws(() => job.describe(["--input", "x", "--output", "y", "--max-delay", "soon"]), refused((e) => e === 'invalid value "soon" for --max-delay: not a number of ms'));
  assert.throws(() => job.describe(["--output", "y"]), refused((e) => e === "missing required argument --input"));
});

/** What `stamp` makes of these lines: `word@timestamp`, and the malformed lines it counted. */
function stamp(lines) {
  const h = Harness.open(job, "stamp", { operatorUid: "stamp" });
  const words = h.process(lines.map((line) => ["", line]), { byKey: false });
  assert.ok(words.every((r) => r.value === ""));
  return { words: words.map((r) => `${r.key}@${r.timestamp}`), malformed: h.counter(MALFORMED_LINES) };
}

test("stamp splits each line's text as word-count does, with the line's timestamp", () => {
  assert.deepEqual(stamp(["1000\tthe cat  sat", "-5\t\tnaïve\u00a0日本\u3000x\ufeffy", " +7 \ta\u0085b"]), {
    words: ["the@1000", "cat@1000", "sat@1000", "naïve@-5", "日本@-5", "x\ufeffy@-5", "a@7", "b@7"],
    malformed: 0,
  });
});

test("stamp skips and counts malformed lines", () => {
  // -2^63 (the mark of "no timestamp") as Rust's twin refuses it, and beyond ±(2^53 - 1).
  const lines = ["no tab", "12x\tword", "\tword", "+\tword", "99999999999999999999\tword", "-9223372036854775808\tword", "1\u00a0\tok", "3\t"];
  assert.deepEqual(stamp(lines), { words: ["ok@1"], malformed: 6 });
});

test("count emits <window-start> <word> <count> per window, stamped with its last millisecond", () => {
  const h = Harness.open(job, "count", { operatorUid: "count", options: [["window", "1000"], ["allowed-lateness", "0"]] });
  h.process([
    { key: "a", value: "", timestamp: 1500 },
    { key: "b", value: "", timestamp: 999 },
    { key: "a", value: "", timestamp: 1000 },
    { key: "naïve", value: "", timestamp: -1 },
  ]);
  assert.deepEqual(h.advanceWatermark(999), [
    { key: "naïve", value: "-1000\tnaïve\t1", timestamp: -1 },
    { key: "b", value: "0\tb\t1", timestamp: 999 },
  ]);
  h.process([{ key: "b", value: "", timestamp: 5 }]);
  assert.equal(h.counter(LATE_RECORDS_DROPPED), 1);
  assert.deepEqual(h.finish(), [{ key: "a", value: "1000\ta\t2", timestamp: 1999 }]);
  assert.equal(h.timers, 0);
  assert.throws(
    () => Harness.open(job, "count", { options: [["window", "1s"]] }),
    (e) => e === 'open: option window: "1s" is not a number of ms',
  );
});

test("with --late-output, late words go to the side output, and late-words writes them", () => {
  const h = Harness.open(job, "count", { options: [["window", "1000"], ["late-output", "late"]] });
  h.advanceWatermark(5000);
  h.process([{ key: "w", value: "", timestamp: 10 }]);
  assert.equal(h.counter(LATE_RECORDS_DROPPED), 0);
  const late = h.sideOutput("late");
  assert.deepEqual(late, [{ key: "w", value: "", timestamp: 10 }]);
  const words = Harness.open(job, "late-words");
  assert.deepEqual(words.process(late, { byKey: false }), [{ key: "w", value: "10\tw", timestamp: null }]);
});
