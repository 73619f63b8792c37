// word-count-js's operators under Node.js, driven as the host drives them:
//   cd guest-sdk/js && npm test
// (or: node --import ./guest-sdk/js/node/register.js --test example-jobs/word-count-js/)

import assert from "node:assert/strict";
import { test } from "node:test";

import { chunkEntries, codecs, encodeChunk } from "cairn-sdk";
import { batch, context, keyGroups, records, restore, values } from "cairn-sdk/node/harness.js";
import { messages } from "cairn-sdk/node/log.js";
import { job } from "./job.js";

const textEncoder = new TextEncoder();
const utf8 = (text) => textEncoder.encode(text);
const text = (bytes) => new TextDecoder("utf-8", { fatal: true }).decode(bytes);

/** The words `split` keys for these lines. */
function split(lines) {
  const op = job.open(context({ operatorUid: "split" }), "split");
  const out = records(op.process(0, batch(lines.map((line) => ["", line]))));
  assert.ok(out.every((r) => r.value === ""));
  return out.map((r) => r.key);
}

test("describe builds Rust's word-count graph", () => {
  const graph = job.describe(["--input", "in.txt", "--output", "out", "--rate", "20"]);
  assert.equal(graph.name, "word-count");
  assert.deepEqual(
    graph.nodes.map((n) => [n.uid, n.kind, n.inputs.map((i) => [i.upstream, i.partitioning.tag]), n.parallelism, n.options]),
    [
      ["lines", { tag: "source", val: "file" }, [], 1, [["path", "in.txt"], ["rate", "20"]]],
      ["split", { tag: "operator", val: "split" }, [["lines", "rebalance"]], null, []],
      ["count", { tag: "operator", val: "count" }, [["split", "by-key"]], null, []],
      ["out", { tag: "sink", val: "file" }, [["count", "forward"]], null, [["path", "out"]]],
    ],
  );
  const stdio = job.describe(["--input", "-", "--output", "-", "--rate", "5"]);
  assert.deepEqual(stdio.nodes[0].kind, { tag: "source", val: "stdin" });
  assert.deepEqual(stdio.nodes[0].options, []);
  assert.deepEqual(stdio.nodes[3].kind, { tag: "sink", val: "stdout" });
  assert.throws(() => job.describe(["--output", "out"]), (e) => e === "missing required argument --input");
});

test("describe reads and writes kafka:// topics, and refuses malformed ones", () => {
  const graph = job.describe(["--input", "kafka://localhost:9092/lines", "--output=kafka://a:1,b:2/counts"]);
  const [source, sink] = [graph.nodes[0], graph.nodes[3]];
  assert.deepEqual([source.kind, sink.kind], [{ tag: "source", val: "kafka" }, { tag: "sink", val: "kafka" }]);
  assert.deepEqual(source.options, [
    ["properties.bootstrap.servers", "localhost:9092"],
    ["topic", "lines"],
    ["scan.bounded.mode", "latest-offset"],
  ]);
  assert.deepEqual(sink.options, [
    ["properties.bootstrap.servers", "a:1,b:2"],
    ["topic", "counts"],
    ["sink.delivery-guarantee", "exactly-once"],
  ]);
  for (const url of ["kafka://host:9092", "kafka://host:9092/", "kafka:///t", "kafka://h:1/t/u"]) {
    for (const [arg, other] of [["--input", "--output"], ["--output", "--input"]]) {
      const expected = `invalid ${arg} ${url}: expected kafka://HOST:PORT/TOPIC`;
      assert.throws(() => job.describe([arg, url, other, "-"]), (e) => e === expected);
    }
  }
  assert.throws(
    () => job.describe(["--input", "kafka://h:1/t", "--rate", "5", "--output", "-"]),
    (e) => e === "--rate paces a file input; it does not apply to kafka://h:1/t",
  );
});

test("split separates words at Unicode whitespace, as Rust's char::is_whitespace", () => {
  const whitespace = [
    "\t", "\n", "\v", "\f", "\r", " ", "\u0085", "\u00a0", "\u1680", "\u2000", "\u2005", "\u200a",
    "\u2028", "\u2029", "\u202f", "\u205f", "\u3000",
  ];
  for (const space of whitespace) {
    assert.deepEqual(split([`a${space}b${space}${space}c${space}`]), ["a", "b", "c"], JSON.stringify(space));
  }
  // Near misses that other languages' split functions take for whitespace stay in words.
  const notWhitespace = ["\u001c", "\u001d", "\u001e", "\u001f", "\ufeff", "\u200b", "\u180e", "\u2060", "\u00ad"];
  for (const glue of notWhitespace) {
    assert.deepEqual(split([`x${glue}y z`]), [`x${glue}y`, "z"], JSON.stringify(glue));
  }
  // Characters sharing whitespace's first UTF-8 bytes are not split either.
  assert.deepEqual(split(["\u00a9\u1681\u200b\u2030\u205e\u3001 naïve 日本語 🚀rocket", "", "   "]), [
    "\u00a9\u1681\u200b\u2030\u205e\u3001",
    "naïve",
    "日本語",
    "🚀rocket",
  ]);
});

test("split refuses lines that are not UTF-8, as Rust's does", () => {
  const op = job.open(context({ operatorUid: "split" }), "split");
  const data = new Uint8Array([...utf8("ok line"), 0xff, 0xfe, ...utf8(" bad")]);
  assert.throws(() => op.process(0, { data, offsets: [0, 7, 7, 13], timestamps: [] }), (e) => e === "the record's value is not UTF-8");
});

/** Words as the count subtask gets them: keyed, on a by-key input. */
function words(list) {
  const packed = batch(list.map((w) => [w, ""]));
  return [packed, keyGroups(packed)];
}

/** The counts in a snapshot's keyed state, decoded with `value`, sorted by word. */
function keyedCounts(snapshot, value) {
  const counts = snapshot.keyed.flatMap((chunk) => chunkEntries(chunk.entries).map(([word, n]) => [word, value(n)]));
  return counts.sort(([a], [b]) => (a < b ? -1 : 1));
}

const groupOf = (word) => keyGroups(batch([[word, ""]]))[0];
const u64 = (n) => Buffer.from(new BigUint64Array([BigInt(n)]).buffer).toString("latin1");
const binary = (word) => Buffer.from(word).toString("latin1");

test("count emits the running count per word, across batches", () => {
  const op = job.open(context({ operatorUid: "count" }), "count");
  assert.deepEqual(values(op.process(0, ...words(["b", "a", "b", "é"]))), ["b\t1", "a\t1", "b\t2", "é\t1"]);
  const keyed = records(op.process(0, ...words(["a", "🚀"])));
  assert.deepEqual(keyed.map((r) => [r.key, r.value]), [["a", "a\t2"], ["🚀", "🚀\t1"]]);
  assert.deepEqual(values(op.finish()), []);
});

test("count's state is version 3: keyed, the word and its count as u64 little-endian", () => {
  const op = job.open(context({ operatorUid: "count" }), "count");
  op.process(0, ...words(["b", "a", "b", "é", "\u{1F600}a"]));
  const state = op.snapshot(7);
  assert.equal(state.version, 3);
  assert.equal(state.valueEncoding, "u64-le");
  assert.deepEqual(state.operatorState, []);
  for (const chunk of state.keyed) {
    for (const [word] of chunkEntries(chunk.entries)) assert.equal(groupOf(text(Buffer.from(word, "latin1"))), chunk.keyGroup);
  }
  assert.deepEqual(keyedCounts(state, (n) => n), [["a", u64(1)], ["b", u64(2)], [binary("é"), u64(1)], [binary("\u{1F600}a"), u64(1)]]);

  const again = job.open(context({ operatorUid: "count" }), "count");
  restore(again, [state]);
  assert.deepEqual(values(again.process(0, ...words(["b", "é", "d"]))), ["b\t3", "é\t2", "d\t1"]);
});

test("count migrates version 2 (operator-wide word<TAB>count lines) into keyed state, and logs it once", () => {
  const op = job.open(context({ operatorUid: "count" }), "count");
  messages.length = 0;
  op.restore(2, [utf8("a\t2\nb\t3\r\nc\t1\né\t+2\n")]);
  assert.deepEqual(messages, [["info", "migrated 4 word counts from state version 2"]]);
  assert.deepEqual(values(op.process(0, ...words(["a", "é", "d"]))), ["a\t3", "é\t3", "d\t1"]);
  const state = op.snapshot(8);
  assert.equal(state.version, 3);
  assert.deepEqual(keyedCounts(state, codecs.u64.decode), [["a", 3], ["b", 3], ["c", 1], ["d", 1], [binary("é"), 3]]);
  op.restore(3, []);
  assert.equal(messages.length, 1, "logged once");
});

test("count migrates version 4 (keyed, decimal counts: Rust's word-count-v2) into version 3", () => {
  const chunksOf = (counts) => {
    const byGroup = new Map();
    for (const [word, n] of counts) {
      const group = groupOf(word);
      byGroup.set(group, [...(byGroup.get(group) ?? []), [binary(word), String(n)]]);
    }
    return [...byGroup].map(([keyGroup, entries]) => ({ keyGroup, entries: encodeChunk(entries) }));
  };
  const op = job.open(context({ operatorUid: "count" }), "count");
  messages.length = 0;
  const chunks = chunksOf([["a", 2], ["é", 10], ["🚀", 1]]);
  op.restoreKeyed(4, chunks.slice(0, 1));
  op.restoreKeyed(4, chunks.slice(1));
  op.restore(4, []);
  assert.deepEqual(messages, [["info", "migrated 3 word counts from state version 4"]]);
  assert.deepEqual(values(op.process(0, ...words(["a", "é", "🚀"]))), ["a\t3", "é\t11", "🚀\t2"]);
  assert.deepEqual(keyedCounts(op.snapshot(1), codecs.u64.decode), [["a", 3], [binary("é"), 11], [binary("🚀"), 2]]);

  assert.throws(
    () => job.open(context({ operatorUid: "count" }), "count").restoreKeyed(4, chunksOf([["a", "x1"]])),
    (e) => e === 'version 4 state: invalid count "x1"',
  );
});

test("count refuses unknown state versions and damaged state", () => {
  const op = job.open(context({ operatorUid: "count" }), "count");
  for (const version of [1, 5]) {
    const refused = (e) => e === `unknown state version ${version}: this count reads versions 2, 3 and 4`;
    assert.throws(() => op.restore(version, [utf8("x")]), refused);
    assert.throws(() => op.restoreKeyed(version, [{ keyGroup: 0, entries: new Uint8Array(0) }]), refused);
  }
  assert.throws(() => op.restore(2, [utf8("a\tx\n")]), (e) => e.startsWith("version 2 state: invalid count"));
  assert.throws(() => op.restore(2, [utf8("a 1\n")]), (e) => e === 'version 2 state: no tab in line "a 1"');
  assert.throws(() => op.restore(2, [new Uint8Array([0x61, 0x09, 0x31, 0x0a, 0xff])]), (e) => e === "version 2 state is not UTF-8");
  assert.throws(() => op.restoreKeyed(3, [{ keyGroup: 0, entries: encodeChunk([["a", "\x01"]]) }]), (e) => e === "a u64 state value has 1 bytes, not 8");
});

test("split keeps no state", () => {
  const op = job.open(context({ operatorUid: "split" }), "split");
  op.process(0, batch([["", "a b"]]));
  const state = op.snapshot(1);
  assert.deepEqual([state.operatorState, state.keyed], [[], []]);
});
