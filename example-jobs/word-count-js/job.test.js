// word-count-js's operators under Node.js, driven as the host drives them:
//   cd guest-sdk/js && npm test
// (or: node --import ./guest-sdk/js/node/register.js --test example-jobs/word-count-js/)

import assert from "node:assert/strict";
import { test } from "node:test";

import { batch, context, records, values } from "cairn-sdk/node/harness.js";
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

test("count emits the running count per word, across batches", () => {
  const op = job.open(context({ operatorUid: "count" }), "count");
  const words = (list) => batch(list.map((w) => [w, ""]));
  assert.deepEqual(values(op.process(0, words(["b", "a", "b", "é"]))), ["b\t1", "a\t1", "b\t2", "é\t1"]);
  assert.deepEqual(values(op.process(0, words(["a", "🚀"]))), ["a\t2", "🚀\t1"]);
  assert.deepEqual(values(op.finish()), []);
});

test("count's state is version 2: word<TAB>count lines sorted by code point", () => {
  const op = job.open(context({ operatorUid: "count" }), "count");
  // U+FFFF sorts before U+1F600 by code point (and in UTF-8), after it in UTF-16.
  const list = ["b", "a", "b", "é", "\uffffb", "\u{1F600}a", "Ab", "ab", "c"];
  op.process(0, batch(list.map((w) => [w, ""])));
  const state = op.snapshot(7);
  assert.equal(state.version, 2);
  assert.equal(text(state.data), "Ab\t1\na\t1\nab\t1\nb\t2\nc\t1\né\t1\n\uffffb\t1\n\u{1F600}a\t1\n");

  // What Rust's word-count-v2 writes reads back, and counting goes on from it.
  const again = job.open(context({ operatorUid: "count" }), "count");
  again.restore({ version: 2, data: utf8("a\t2\nb\t3\nc\t1\né\t2\n") });
  assert.deepEqual(values(again.process(0, batch([["a", ""], ["é", ""], ["d", ""]]))), ["a\t3", "é\t3", "d\t1"]);
  assert.equal(text(again.snapshot(8).data), "a\t3\nb\t3\nc\t1\nd\t1\né\t3\n");
});

test("count refuses unknown state versions and damaged state", () => {
  const op = job.open(context({ operatorUid: "count" }), "count");
  for (const version of [1, 3]) {
    assert.throws(
      () => op.restore({ version, data: new Uint8Array(0) }),
      (e) => e === `unknown state version ${version}: this count reads version 2`,
    );
  }
  assert.throws(() => op.restore({ version: 2, data: utf8("a\tx\n") }), (e) => e.startsWith("version 2 state: invalid count"));
  assert.throws(() => op.restore({ version: 2, data: utf8("a 1\n") }), (e) => e === 'version 2 state: no tab in line "a 1"');
  assert.throws(() => op.restore({ version: 2, data: new Uint8Array([0x61, 0x09, 0x31, 0x0a, 0xff]) }), (e) => e === "version 2 state is not UTF-8");
});

test("split keeps no state", () => {
  const op = job.open(context({ operatorUid: "split" }), "split");
  op.process(0, batch([["", "a b"]]));
  assert.equal(op.snapshot(1).data.length, 0);
});
