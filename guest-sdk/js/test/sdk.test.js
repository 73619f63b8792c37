// The SDK under Node.js: the packed batch encoding, text and binary strings, arguments, the
// graph builder, operators' default operator-wide state and errors. Keyed state is in
// keyed.test.js.

import assert from "node:assert/strict";
import { test } from "node:test";

import { Args } from "../src/args.js";
import { Batch, Emitter, NO_TIMESTAMP } from "../src/batch.js";
import { binaryToBytes, binaryToText, bytesToBinary, decodeText, encodeText, textToBinary } from "../src/bytes.js";
import { JobGraph, Partitioning, Sink, Source, graphToWit } from "../src/graph.js";
import { Operator, exportJob } from "../src/operator.js";
import { batch, context, records, values } from "../node/harness.js";

/** Reads a packed batch back through `Batch`, as an operator sees it. */
function readBack(packed, input = 0) {
  const b = new Batch();
  b._reset(input, { ...packed, offsets: [...packed.offsets] });
  // One Record object moves along the batch: read it as it goes.
  const read = [];
  for (const r of b) {
    read.push({
      input: r.input,
      key: r.key === null ? null : decodeText(r.key),
      keyString: r.keyString(),
      value: r.valueString(),
      valueBinary: r.valueBinary(),
      timestamp: r.timestamp,
    });
  }
  return read;
}

test("text survives UTF-8 and binary strings, invalid UTF-8 and lone surrogates do not", () => {
  for (const text of ["", "plain", "naïve 日本語 🚀", "\u0000\u007f\u0080\uffff\u{10ffff}"]) {
    assert.equal(decodeText(encodeText(text)), text);
    assert.equal(binaryToText(textToBinary(text)), text);
    assert.deepEqual([...encodeText(text)], [...Buffer.from(text, "utf8")]);
  }
  const bytes = new Uint8Array([0, 1, 127, 128, 200, 255]);
  assert.deepEqual(binaryToBytes(bytesToBinary(bytes)), bytes);
  assert.throws(() => decodeText(new Uint8Array([0xc3])), /not valid UTF-8/);
  assert.throws(() => decodeText(new Uint8Array([0xed, 0xa0, 0x80])), /not valid UTF-8/);
  assert.throws(() => encodeText("a\ud800b"), /lone surrogate/);
});

test("emitted records read back in order", () => {
  const out = new Emitter();
  out.emitKeyed("k1", "v1");
  out.emit("plain");
  out.emit(`w\t${3}`);
  out.emitKeyed("", "");
  out.emit(new Uint8Array([0xc3, 0xa9]), { key: "é" });
  out.emitBinary("\xc3\xa9", "b\xc3\xa9");
  assert.equal(out.length, 6);
  const packed = out._take();
  assert.equal(out.length, 0);
  assert.deepEqual(packed.timestamps, []);
  assert.deepEqual(
    readBack(packed, 2).map(({ key, value, input, timestamp }) => [key, value, input, timestamp]),
    [
      ["k1", "v1", 2, null],
      [null, "plain", 2, null],
      [null, "w\t3", 2, null],
      [null, "", 2, null],
      ["é", "é", 2, null],
      ["é", "bé", 2, null],
    ],
  );
  // Copies are exact, bytes and all.
  const copy = new Emitter();
  const b = new Batch();
  b._reset(0, packed);
  for (const r of b) copy.push(r);
  const again = copy._take();
  assert.deepEqual([...again.data], [...packed.data]);
  assert.deepEqual([...again.offsets], [...packed.offsets]);
});

test("text is encoded once the batch has non-ASCII text, binary parts are left alone", () => {
  const out = new Emitter();
  out.emitBinary("", "\xff\xfe");
  out.emit("日本");
  out.emit(new Uint8Array([0xe2, 0x82, 0xac]));
  out.emitKeyed("🚀", "x");
  const packed = out._take();
  assert.deepEqual([...packed.data.subarray(0, 2)], [0xff, 0xfe]);
  const rest = { data: packed.data.subarray(2), offsets: [...packed.offsets].slice(2).map((o) => o - 2), timestamps: [] };
  assert.deepEqual(values(rest), ["日本", "€", "x"]);
  assert.deepEqual(records(rest)[2].key, "🚀");
});

test("timestamps are back-filled", () => {
  const out = new Emitter();
  out.emit("a");
  out.emit("b", { key: "k", timestamp: 42 });
  out.emit("c");
  out.emitBinary("", "d", 0);
  const packed = out._take();
  assert.deepEqual(packed.timestamps, [NO_TIMESTAMP, 42, NO_TIMESTAMP, 0]);
  assert.deepEqual(readBack(packed).map((r) => r.timestamp), [null, 42, null, 0]);
  assert.throws(() => out.emit("x", { timestamp: 1.5 }), /integer/);
  assert.throws(() => out.emit(42), /string or a Uint8Array, not number/);
});

test("records decode as text together, or one by one when one is not UTF-8 or has U+FFFF", () => {
  const good = batch([["é", "naïve"], ["", "日本語 🚀"], ["k", "\uffff"]]);
  assert.deepEqual(readBack(good).map((r) => [r.keyString, r.value]), [["é", "naïve"], ["", "日本語 🚀"], ["k", "\uffff"]]);
  const bytes = new Uint8Array([...encodeText("é"), 0xff, ...encodeText("ok")]);
  const b = new Batch();
  b._reset(0, { data: bytes, offsets: [0, 2, 2, 3, 3, 5], timestamps: [] });
  assert.equal(b.at(0).valueString(), "é");
  assert.throws(() => b.at(1).valueString(), /the record's value is not UTF-8/);
  assert.equal(b.at(2).valueString(), "ok");
});

test("malformed batches are refused", () => {
  const b = new Batch();
  const data = new Uint8Array([97, 98]);
  assert.throws(() => b._reset(0, { data, offsets: [1], timestamps: [] }), /odd number/);
  assert.throws(() => b._reset(0, { data, offsets: [1, 3], timestamps: [] }), /out of range/);
  assert.throws(() => b._reset(0, { data, offsets: [2, 1], timestamps: [] }), /out of order/);
  assert.throws(() => b._reset(0, { data, offsets: [1, 2], timestamps: [1, 2] }), /timestamps/);
});

test("args: both option forms, the last one wins", () => {
  const a = new Args(["--input", "a.txt", "--output=out", "--input=b.txt", "--flag"]);
  assert.equal(a.value("--input"), "b.txt");
  assert.equal(a.value("--output"), "out");
  assert.equal(a.value("--missing"), undefined);
  assert.equal(a.value("--in"), undefined);
  assert.deepEqual(a.values("--input"), ["a.txt", "b.txt"]);
  assert.equal(a.list.length, 5);
  assert.ok(a.flag("--flag"));
  assert.throws(() => new Args([]).required("--input"), { message: "missing required argument --input" });
  const n = new Args(["--records", "12x", "--keys", "7"]);
  assert.throws(() => n.number("--records", 0), { message: 'invalid value "12x" for --records: not a number' });
  assert.equal(n.number("--keys", 1), 7);
  assert.equal(n.number("--other", 3), 3);
});

test("the graph builder chains inputs", () => {
  const job = new JobGraph("wc");
  job.config("parallelism.default", 2);
  job
    .source("lines", Source.file("in.txt").option("rate", 10))
    .parallelism(1)
    .operator("split", "split", Partitioning.REBALANCE)
    .operator("count", "count", Partitioning.BY_KEY)
    .option("limit", "3")
    .sink("out", Sink.file("out"), Partitioning.FORWARD);
  assert.deepEqual(graphToWit(job), {
    name: "wc",
    nodes: [
      { uid: "lines", kind: { tag: "source", val: "file" }, inputs: [], parallelism: 1, options: [["path", "in.txt"], ["rate", "10"]], watermarks: null },
      { uid: "split", kind: { tag: "operator", val: "split" }, inputs: [{ upstream: "lines", partitioning: { tag: "rebalance" }, sideOutput: null }], parallelism: null, options: [], watermarks: null },
      { uid: "count", kind: { tag: "operator", val: "count" }, inputs: [{ upstream: "split", partitioning: { tag: "by-key" }, sideOutput: null }], parallelism: null, options: [["limit", "3"]], watermarks: null },
      { uid: "out", kind: { tag: "sink", val: "file" }, inputs: [{ upstream: "count", partitioning: { tag: "forward" }, sideOutput: null }], parallelism: null, options: [["path", "out"]], watermarks: null },
    ],
    config: [["parallelism.default", "2"]],
  });
  const bad = new JobGraph("bad");
  bad.source("s", Source.generator(0, 1)).operator("o", "o", "sideways");
  assert.throws(() => graphToWit(bad), /node "o": partitioning must be one of forward, rebalance, by-key, broadcast, not "sideways"/);
});

test("Kafka nodes carry the option names of Flink's Kafka connector", () => {
  const job = new JobGraph("k");
  job
    .source("in", Source.kafka("a:9092,b:9092", "lines").option("scan.bounded.mode", "latest-offset"))
    .sink("out", Sink.kafka("a:9092", "counts"), Partitioning.FORWARD);
  const [source, sink] = graphToWit(job).nodes;
  assert.deepEqual(source.kind, { tag: "source", val: "kafka" });
  assert.deepEqual(source.options, [
    ["properties.bootstrap.servers", "a:9092,b:9092"],
    ["topic", "lines"],
    ["scan.bounded.mode", "latest-offset"],
  ]);
  assert.deepEqual(sink.kind, { tag: "sink", val: "kafka" });
  assert.deepEqual(sink.options, [
    ["properties.bootstrap.servers", "a:9092"],
    ["topic", "counts"],
  ]);
});

class Sum extends Operator {
  sums = new Map();
  seen = new Set();
  total = 0n;
  last = new Uint8Array(0);
  #opened = 0;
  open(ctx) {
    this.#opened += 1;
    this.limit = ctx.option("limit");
  }
  process(record, out) {
    const key = record.keyString();
    const n = Number(record.valueString());
    if (!Number.isInteger(n)) throw new Error(`not a number: ${record.valueString()}`);
    const sum = (this.sums.get(key) ?? 0) + n;
    this.sums.set(key, sum);
    this.seen.add(key);
    this.total += BigInt(n);
    this.last = record.value;
    out.emit(`${key}=${sum}`);
  }
  get opened() {
    return this.#opened;
  }
}

const sumJob = exportJob({ describe: () => new JobGraph("sum"), operators: { sum: Sum } });
const sumContext = context({ operatorUid: "sum", options: [["limit", "1"], ["limit", "2"]] });

test("the default state is the operator's own fields, and survives snapshot and restore", () => {
  const first = sumJob.open(sumContext, "sum");
  assert.equal(first.operator.limit, "2");
  assert.deepEqual(values(first.process(0, batch([["a", "1"], ["b", "2"], ["a", "3"]]))), ["a=1", "b=2", "a=4"]);
  const state = first.snapshot(1);
  assert.equal(state.version, 1);
  assert.equal(state.operatorStateMode, "split");
  assert.equal(state.operatorState.length, 1, "one item: the JSON of the fields");
  assert.deepEqual(state.keyed, []);

  const second = sumJob.open(sumContext, "sum");
  second.restore(state.version, state.operatorState);
  assert.equal(second.operator.opened, 2, "open runs again after restore");
  assert.deepEqual(values(second.process(0, batch([["a", "10"]]))), ["a=14"]);
  assert.deepEqual([...second.operator.seen], ["a", "b"]);
  assert.equal(second.operator.total, 16n);
  assert.deepEqual([...second.operator.last], [...encodeText("10")]);
});

test("errors name the problem", () => {
  assert.throws(() => sumJob.open(sumContext, "nope"), (e) => e === 'this job has no operator named "nope" (it has "sum")');
  const op = sumJob.open(sumContext, "sum");
  assert.throws(() => op.process(0, batch([["a", "x"]])), (e) => e === "not a number: x");
  // The failed batch's partial output is dropped.
  assert.deepEqual(values(op.process(0, batch([["a", "1"]]))), ["a=1"]);
  assert.throws(() => op.restore(1, [new Uint8Array([0xff, 0xff])]), (e) => e.startsWith("cannot decode state: "));
  assert.throws(
    () => op.restore(2, op.snapshot(1).operatorState),
    (e) => e === "the state is in encoding version 2, this operator reads version 1; implement restore(data, version) (and restoreKeyed(chunk, version)) to migrate it",
  );
  assert.throws(
    () => op.restoreKeyed(1, [{ keyGroup: 0, entries: new Uint8Array(0) }]),
    (e) => e === "the state has keyed state for this operator, which keeps none (it has no KeyedState field)",
  );
  const bug = exportJob({
    describe: () => null,
    operators: {
      bug: class extends Operator {
        process(record) {
          return record.nothing.there;
        }
      },
    },
  });
  assert.throws(() => bug.describe([]), (e) => e === "TypeError: describe(args) must return a JobGraph, not object" || e.startsWith("TypeError: describe(args) must return a JobGraph"));
  assert.throws(() => bug.open(context(), "bug").process(0, batch([["", "v"]])), (e) => e.startsWith("TypeError: ") && e.includes("\n    at "));
  class NotAnOperator {}
  const plain = exportJob({ describe: () => new JobGraph("x"), operators: { plain: NotAnOperator } });
  assert.throws(() => plain.open(context(), "plain"), (e) => e.includes("does not extend Operator"));
  class Sideways extends Operator {
    static OPERATOR_STATE_MODE = "sideways";
  }
  class Negative extends Operator {
    static STATE_VERSION = -1;
  }
  const misdeclared = exportJob({ describe: () => new JobGraph("x"), operators: { sideways: Sideways, negative: Negative } });
  assert.throws(() => misdeclared.open(context(), "sideways"), (e) => e.startsWith('open: TypeError: Sideways.OPERATOR_STATE_MODE must be "split" or "union", not "sideways"'));
  assert.throws(() => misdeclared.open(context(), "negative"), (e) => e.startsWith("open: TypeError: Negative.STATE_VERSION must be an integer from 0 to 2^32-1, not -1"));
});

test("operator-wide state is restored once per item, in union mode too", () => {
  class Total extends Operator {
    static OPERATOR_STATE_MODE = "union";
    total = 0;
    restore(data, version) {
      this.total += Number(decodeText(data));
    }
    snapshot() {
      return String(this.total);
    }
  }
  const job = exportJob({ describe: () => new JobGraph("x"), operators: { total: Total } });
  const op = job.open(context(), "total");
  assert.equal(op.snapshot(1).operatorStateMode, "union");
  op.restore(1, [encodeText("2"), encodeText("40")]);
  assert.equal(op.operator.total, 42);
  assert.deepEqual(op.snapshot(2).operatorState.map(decodeText), ["42"]);
});

test("an operator without state snapshots nothing", () => {
  class Stateless extends Operator {
    process(record, out) {
      out.push(record);
    }
  }
  const job = exportJob({ describe: () => new JobGraph("x"), operators: { s: Stateless } });
  const op = job.open(context(), "s");
  assert.deepEqual(records(op.process(0, batch([{ key: "k", value: "v", timestamp: 5 }]))), [{ key: "k", value: "v", timestamp: 5 }]);
  assert.deepEqual(op.snapshot(1), { version: 1, operatorState: [], operatorStateMode: "split", keyed: [], valueEncoding: "bytes" });
  assert.deepEqual(values(op.finish()), []);
});
