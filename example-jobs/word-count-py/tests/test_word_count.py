"""word-count-py natively: `python3 -m unittest discover -s example-jobs/word-count-py/tests`."""

import os
import random
import sys
import unittest
import zlib

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "guest-sdk", "python"))

from cairn_sdk import Args, Context, Emitter, Error, KeyedChunk, OperatorInstance  # noqa: E402
from cairn_sdk import Snapshot, ValueEncoding  # noqa: E402
from cairn_sdk.keyed import entries, put  # noqa: E402
from word_count import WordCount, split_words  # noqa: E402

# Rust's char::is_whitespace (the White_Space property).
RUST_WHITESPACE = set(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000"
    + "".join(chr(c) for c in range(0x2000, 0x200B))
)


def rust_split(text):
    """str::split(char::is_whitespace), empty words dropped, written out char by char."""
    words, word = [], []
    for ch in text:
        if ch in RUST_WHITESPACE:
            words.append("".join(word))
            word = []
        else:
            word.append(ch)
    words.append("".join(word))
    return [w for w in words if w]


def lines(*texts):
    out = Emitter()
    for text in texts:
        out.emit(text)
    return out.take()


def key_group(key):
    """A stand-in for the host's keys.key-group (xxh3): any fixed function of the key does."""
    return zlib.crc32(key) % 128


def words(*ws):
    """A by-key batch of these words, and their key groups."""
    out = Emitter()
    for w in ws:
        out.emit(key=w)
    return out.take(), [key_group(w.encode()) for w in ws]


def values(batch):
    return [r.value_str() for r in batch.records()]


def op(name):
    return OperatorInstance.open(
        WordCount(), Context(operator_uid=name, key_group=key_group), name
    )


def counts_of(snapshot):
    """Word -> count of a version 3 snapshot's keyed state."""
    return {
        word.decode(): int.from_bytes(n, "little")
        for chunk in snapshot.keyed
        for word, n in entries(chunk.entries)
    }


class SplitTest(unittest.TestCase):
    def test_splits_exactly_like_rust(self):
        alphabet = (
            list(RUST_WHITESPACE) + list("\x1c\x1d\x1e\x1f\x00\u200b\ufeffabcé日") + ["a"] * 8
        )
        rng = random.Random(7)
        for _ in range(5000):
            text = "".join(rng.choice(alphabet) for _ in range(rng.randrange(12)))
            got = [w if isinstance(w, str) else w.decode() for w in split_words(text.encode())]
            self.assertEqual(got, rust_split(text), repr(text))

    def test_split_emits_keyed_words(self):
        out = op("split").process(0, lines("to be  or\tnot", "", "é\x1cé\u3000x"))
        self.assertEqual(
            [r.key_str() for r in out.records()], ["to", "be", "or", "not", "é\x1cé", "x"]
        )
        self.assertEqual({r.value for r in out.records()}, {b""})
        self.assertEqual(op("split").snapshot(), Snapshot(1), "split keeps no state")

    def test_split_refuses_bad_utf8(self):
        with self.assertRaisesRegex(Error, "not UTF-8"):
            op("split").process(0, lines(b"a \xff"))


class CountTest(unittest.TestCase):
    def test_counts_in_keyed_state_version_3(self):
        count = op("count")
        out = count.process(0, *words("b", "a", "b", "é"))
        self.assertEqual(values(out), ["b\t1", "a\t1", "b\t2", "é\t1"])
        self.assertEqual([r.key_str() for r in out.records()], ["b", "a", "b", "é"])
        count.process(0, *words("a", "b", "é", "c"))
        state = count.snapshot()
        self.assertEqual((state.version, state.operator_state), (3, []))
        self.assertEqual(state.value_encoding, ValueEncoding.U64_LE)
        self.assertEqual(counts_of(state), {"a": 2, "b": 3, "c": 1, "é": 2})
        self.assertEqual(
            sorted(c.key_group for c in state.keyed),
            sorted({key_group(w.encode()) for w in ["a", "b", "c", "é"]}),
        )

        again = op("count")
        again.restore_keyed(state.version, state.keyed)
        again.restore(state.version, state.operator_state)
        self.assertEqual(values(again.process(0, *words("c"))), ["c\t2"])

    def test_migrates_versions_2_and_4(self):
        # Version 2: word-count-v2's own test vector, as 0.2.0 jobs wrote it.
        count = op("count")
        count.restore(2, ["a\t2\nb\t3\nc\t1\né\t2\n".encode()])
        self.assertEqual(counts_of(count.snapshot()), {"a": 2, "b": 3, "c": 1, "é": 2})
        self.assertEqual(values(count.process(0, *words("b"))), ["b\t4"])

        parts = []
        put(parts, b"x", b"41")
        count = op("count")
        count.restore_keyed(4, [KeyedChunk(key_group(b"x"), b"".join(parts))])
        count.restore(4, [])
        self.assertEqual(values(count.process(0, *words("x"))), ["x\t42"])

    def test_refuses_other_versions_and_damage(self):
        count = op("count")
        with self.assertRaises(Error) as caught:
            count.restore(1, [b"\x01\x01a\x01"])
        self.assertEqual(
            str(caught.exception),
            "unknown state version 1: this count reads versions 2, 3 and 4",
        )
        for damaged in [b"a\tx\n", b"a\n", b"\xff\t1\n"]:
            with self.assertRaises(Error):
                op("count").restore(2, [damaged])
        parts = []
        put(parts, b"x", b"4x")
        with self.assertRaisesRegex(Error, "not digits"):
            op("count").restore_keyed(4, [KeyedChunk(key_group(b"x"), b"".join(parts))])


class GraphTest(unittest.TestCase):
    def test_graph_is_word_counts(self):
        job = WordCount().describe(Args(["--input", "in.txt", "--output", "out", "--rate", "9"]))
        self.assertEqual(job.name, "word-count")
        self.assertEqual(
            [(n.uid, n.kind, n.name, n.parallelism) for n in job.nodes],
            [
                ("lines", "source", "file", 1),
                ("split", "operator", "split", None),
                ("count", "operator", "count", None),
                ("out", "sink", "file", None),
            ],
        )
        self.assertEqual(job.nodes[0].options, [("path", "in.txt"), ("rate", "9")])
        self.assertEqual(
            [i.partitioning.value for n in job.nodes for i in n.inputs],
            ["rebalance", "by-key", "forward"],
        )
        std = WordCount().describe(Args(["--input", "-", "--output", "-"]))
        self.assertEqual([std.nodes[0].name, std.nodes[3].name], ["stdin", "stdout"])
        with self.assertRaisesRegex(Error, "missing required argument --output"):
            WordCount().describe(Args(["--input", "x"]))

    def test_kafka_urls(self):
        job = WordCount().describe(
            Args(["--input", "kafka://localhost:9092/lines", "--output=kafka://a:1,b:2/counts"])
        )
        source, sink = job.nodes[0], job.nodes[3]
        self.assertEqual((source.name, sink.name), ("kafka", "kafka"))
        self.assertEqual(
            source.options,
            [
                ("properties.bootstrap.servers", "localhost:9092"),
                ("topic", "lines"),
                ("scan.bounded.mode", "latest-offset"),
            ],
        )
        self.assertEqual(
            sink.options,
            [
                ("properties.bootstrap.servers", "a:1,b:2"),
                ("topic", "counts"),
                ("sink.delivery-guarantee", "exactly-once"),
            ],
        )
        for url in ["kafka://host:9092", "kafka://host:9092/", "kafka:///t", "kafka://h:1/t/u"]:
            for arg, other in [("--input", "--output"), ("--output", "--input")]:
                with self.assertRaises(Error) as caught:
                    WordCount().describe(Args([arg, url, other, "-"]))
                self.assertEqual(
                    str(caught.exception), f"invalid {arg} {url}: expected kafka://HOST:PORT/TOPIC"
                )
        with self.assertRaises(Error) as caught:
            WordCount().describe(Args(["--input", "kafka://h:1/t", "--rate", "5", "--output", "-"]))
        self.assertEqual(
            str(caught.exception), "--rate paces a file input; it does not apply to kafka://h:1/t"
        )


if __name__ == "__main__":
    unittest.main()
