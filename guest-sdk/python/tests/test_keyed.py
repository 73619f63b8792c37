"""Keyed state natively: the chunk encoding against the golden vectors
(wit/vectors/keyed-chunk.txt, written by the Rust SDK), and KeyedState through snapshot,
restore and a change of parallelism."""

import os
import sys
import unittest
import zlib

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import cairn_sdk as cairn  # noqa: E402
from cairn_sdk import (  # noqa: E402
    F64,
    JSON,
    S64,
    U64,
    UTF8,
    Context,
    Emitter,
    Error,
    KeyedChunk,
    KeyedState,
    Operator,
    OperatorInstance,
    OperatorStateMode,
    ValueEncoding,
)
from cairn_sdk.keyed import entries, put, put_tombstone  # noqa: E402
from vector_file import parse_bytes, read_vector_file  # noqa: E402

VECTORS = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "wit", "vectors", "keyed-chunk.txt"
)
MAX_PARALLELISM = 16


def key_group(key):
    """A stand-in for the host's xxh3-based keys.key-group: any fixed function of the key
    does for these tests."""
    return zlib.crc32(key) % MAX_PARALLELISM


def read_vectors(path=VECTORS):
    """(name, entries or None for a malformed chunk, chunk bytes) for every vector."""

    def directive(current, name, rest):
        if name == "entry":
            key, value = rest
            value = None if value == "tombstone" else parse_bytes(value)
            current[1].append((parse_bytes(key), value))
        elif name == "chunk":
            current[2] = parse_bytes(rest[0])
        else:
            return False
        return True

    def start(name, malformed):
        return [name, None if malformed else [], None]

    return [tuple(item) for item in read_vector_file(path, start, directive)]


class ChunkVectorsTest(unittest.TestCase):
    def test_every_vector_encodes_and_decodes_as_the_reference(self):
        vectors = [v for v in read_vectors() if v[1] is not None]
        self.assertGreaterEqual(len(vectors), 8)
        for name, expected, chunk in vectors:
            with self.subTest(name):
                parts = []
                for key, value in expected:
                    if value is None:
                        put_tombstone(parts, key)
                    else:
                        put(parts, key, value)
                self.assertEqual(b"".join(parts), chunk)
                self.assertEqual(list(entries(chunk)), expected)

    def test_every_malformed_chunk_is_refused(self):
        malformed = [v for v in read_vectors() if v[1] is None]
        self.assertGreaterEqual(len(malformed), 6)
        for name, _, chunk in malformed:
            with self.subTest(name), self.assertRaisesRegex(Error, "malformed keyed chunk"):
                list(entries(chunk))


class Count(Operator):
    STATE_VERSION = 7

    def __init__(self):
        self.counts = KeyedState(U64)
        self.batches = 0

    def process(self, record, out):
        n = self.counts.get(record, 0) + 1
        self.counts.set(record, n)
        if record.value == b"forget":
            self.counts.remove(record)
        out.emit(b"%s=%d" % (record.key, n))


class Union(Operator):
    OPERATOR_STATE_MODE = OperatorStateMode.UNION

    def __init__(self):
        self.seen = []

    def process(self, record, out):
        self.seen.append(record.value)


class TwoStates(Operator):
    def __init__(self):
        self.a = KeyedState()
        self.b = KeyedState()


class Counts(cairn.Job):
    operators = {"count": Count, "union": Union, "two": TwoStates}


def context(subtask=0, parallelism=1):
    return Context(
        operator_uid="count",
        subtask=subtask,
        parallelism=parallelism,
        max_parallelism=MAX_PARALLELISM,
        key_group=key_group,
    )


def open_count(subtask=0, parallelism=1, name="count"):
    return OperatorInstance.open(Counts(), context(subtask, parallelism), name)


def by_key(*keys, value=b""):
    """A batch of records with these keys, and their key groups."""
    out = Emitter()
    for key in keys:
        out.emit(value, key=key)
    return out.take(), [key_group(k.encode()) for k in keys]


def owned(keys, subtask, parallelism):
    groups = context(subtask, parallelism).key_groups
    return [k for k in keys if key_group(k.encode()) in groups]


class KeyedStateTest(unittest.TestCase):
    def test_counts_survive_snapshot_and_restore_by_key_group(self):
        count = open_count()
        batch, groups = by_key("a", "b", "a", "é")
        out = count.process(0, batch, groups)
        self.assertEqual(
            [r.value for r in out.records()], [b"a=1", b"b=1", b"a=2", "é=1".encode()]
        )

        state = count.snapshot()
        self.assertEqual((state.version, state.value_encoding), (7, ValueEncoding.U64_LE))
        self.assertEqual(len(state.operator_state), 1, "batches is operator-wide state")
        self.assertEqual(
            sorted(c.key_group for c in state.keyed),
            sorted({key_group(k) for k in [b"a", b"b", "é".encode()]}),
        )
        a = next(c for c in state.keyed if c.key_group == key_group(b"a"))
        self.assertIn((b"a", (2).to_bytes(8, "little")), list(entries(a.entries)))

        again = open_count()
        again.restore_keyed(state.version, state.keyed)
        again.restore(state.version, state.operator_state)
        out = again.process(0, *by_key("a", "b", "c"))
        self.assertEqual([r.value for r in out.records()], [b"a=3", b"b=2", b"c=1"])

    def test_state_moves_to_any_parallelism_and_back(self):
        keys = [f"k{i}" for i in range(300)]
        before = {}
        # Three old subtasks, each counting its own keys; key k{i} seen i % 5 + 1 times.
        snapshots = []
        for subtask in range(3):
            count = open_count(subtask, 3)
            for key in owned(keys, subtask, 3):
                n = int(key[1:]) % 5 + 1
                count.process(0, *by_key(*[key] * n))
                before[key.encode()] = n
            snapshots.append(count.snapshot())
        chunks = [c for s in snapshots for c in s.keyed]
        self.assertEqual(len({c.key_group for c in chunks}), len(chunks), "one chunk a group")

        for parallelism in (1, 2, 5, MAX_PARALLELISM):
            after = {}
            for subtask in range(parallelism):
                count = open_count(subtask, parallelism)
                mine = count.context.key_groups
                count.restore_keyed(7, [c for c in chunks if c.key_group in mine])
                count.restore(7, [])
                after.update(count.operator.counts.items())
            self.assertEqual(after, before, f"at parallelism {parallelism}")

    def test_remove_and_values_of_every_codec(self):
        count = open_count()
        count.process(0, *by_key("x", "y"))
        count.process(0, *by_key("x", value=b"forget"))
        self.assertEqual(dict(count.operator.counts.items()), {b"y": 1})
        self.assertEqual(len(count.operator.counts), 1)
        values = [(U64, 2**64 - 1), (S64, -5), (F64, 0.25), (UTF8, "é"), (JSON, {"a": [1]})]
        for codec, value in values:
            with self.subTest(codec.name):
                self.assertEqual(codec.decode(codec.encode(value)), value)
        with self.assertRaisesRegex(Error, "as a u64 state value"):
            U64.encode(-1)
        with self.assertRaisesRegex(Error, "has 3 bytes, not 8"):
            U64.decode(b"abc")

    def test_errors_name_the_problem(self):
        count = open_count(0, 2)
        with self.assertRaises(Error) as caught:
            count.process(3, by_key("a")[0])
        self.assertEqual(
            str(caught.exception),
            "keyed state needs records of a by-key input; this one arrived on input 3, which "
            "is not partitioned by key",
        )
        with self.assertRaisesRegex(Error, r"key group 15 is not this subtask's \(it owns 0..=7\)"):
            count.process(0, by_key("a")[0], [15])
        with self.assertRaisesRegex(Error, "key groups do not match records"):
            count.process(0, by_key("a")[0], [1, 2])
        with self.assertRaisesRegex(Error, "override Operator.restore_keyed to migrate it"):
            count.restore_keyed(6, [KeyedChunk(0, b"")])
        with self.assertRaisesRegex(Error, "2 KeyedState attributes \\(a, b\\)"):
            open_count(name="two")

    def test_set_key_puts_a_key_in_its_key_group(self):
        count = open_count(0, 2)
        mine = [k for k in (b"p", b"q", b"r", b"s") if key_group(k) < 8]
        other = next(k for k in (b"p", b"q", b"r", b"s") if key_group(k) >= 8)
        for key in mine:
            count.operator.counts.set_key(key, 9)
        self.assertEqual(
            sorted(c.key_group for c in count.snapshot().keyed),
            sorted({key_group(k) for k in mine}),
        )
        with self.assertRaisesRegex(Error, "is not this subtask's"):
            count.operator.counts.set_key(other, 1)

    def test_operator_state_mode_is_in_the_snapshot(self):
        union = OperatorInstance.open(Counts(), context(), "union")
        union.process(0, by_key("a", value=b"v")[0])
        state = union.snapshot()
        self.assertEqual((state.mode, state.keyed), (OperatorStateMode.UNION, []))
        # A union restore hands every old subtask's item to each new subtask.
        merged = OperatorInstance.open(Counts(), context(), "union")
        merged.restore(1, state.operator_state * 2)
        self.assertEqual(merged.operator.seen, [b"v"])


if __name__ == "__main__":
    unittest.main()
