"""The packed-batch golden vectors (wit/vectors/packed-batch.txt, written by the Rust SDK):
this SDK encodes and decodes every vector exactly as the reference does, and refuses every
malformed encoding. The format is in wit/vectors/README.md."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from cairn_sdk import NO_TIMESTAMP, Emitter, Error, PackedBatch, Record  # noqa: E402
from vector_file import parse_bytes, read_vector_file  # noqa: E402

VECTORS = os.path.join(
    os.path.dirname(__file__), "..", "..", "..", "wit", "vectors", "packed-batch.txt"
)


def read_vectors(path=VECTORS):
    """The vectors as dicts: name, records (None for a malformed one: (key or None, value,
    timestamp or None) tuples), data, offsets, timestamps."""

    def start(name, malformed):
        records = None if malformed else []
        return {"name": name, "records": records, "data": b"", "offsets": [], "timestamps": []}

    def directive(current, name, rest):
        if name == "record":
            key, value, timestamp = rest
            current["records"].append(
                (
                    None if key == "none" else parse_bytes(key),
                    parse_bytes(value),
                    None if timestamp == "none" else int(timestamp),
                )
            )
        elif name == "data":
            current["data"] = parse_bytes(rest[0])
        elif name in ("offsets", "timestamps"):
            current[name] = [int(t) for t in rest]
        else:
            return False
        return True

    return read_vector_file(path, start, directive)


def is_utf8(b):
    try:
        b.decode()
        return True
    except UnicodeDecodeError:
        return False


class GoldenVectorsTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.vectors = read_vectors()
        cls.valid = [v for v in cls.vectors if v["records"] is not None]
        cls.malformed = [v for v in cls.vectors if v["records"] is None]

    def encoded(self, vector):
        return PackedBatch(vector["data"], vector["offsets"], vector["timestamps"])

    def test_the_file_has_vectors(self):
        self.assertGreaterEqual(len(self.valid), 10)
        self.assertGreaterEqual(len(self.malformed), 5)

    def test_encoding_gives_the_reference_bytes(self):
        for vector in self.valid:
            with self.subTest(vector["name"]):
                out = Emitter()
                for key, value, timestamp in vector["records"]:
                    out.emit(value, key=b"" if key is None else key, timestamp=timestamp)
                self.assertEqual(len(out), len(vector["records"]))
                self.assertEqual(out.take(), self.encoded(vector))

    def test_encoding_text_gives_the_same_bytes(self):
        # str keys and values are encoded as UTF-8 (a vector whose bytes all are UTF-8).
        for vector in self.valid:
            parts = [p for key, value, _ in vector["records"] for p in (key or b"", value)]
            if not all(map(is_utf8, parts)):
                continue
            with self.subTest(vector["name"]):
                out = Emitter()
                for key, value, timestamp in vector["records"]:
                    text_key = "" if key is None else key.decode()
                    out.emit(value.decode(), key=text_key, timestamp=timestamp)
                self.assertEqual(out.take(), self.encoded(vector))

    def test_decoding_gives_the_records(self):
        for vector in self.valid:
            with self.subTest(vector["name"]):
                # A record without a key has key b"": the encoding does not tell an empty
                # key from none.
                expected = [
                    Record(key or b"", value, timestamp, 3)
                    for key, value, timestamp in vector["records"]
                ]
                self.assertEqual(list(self.encoded(vector).records(3)), expected)

    def test_passing_records_on_gives_the_same_batch(self):
        for vector in self.valid:
            with self.subTest(vector["name"]):
                batch = self.encoded(vector)
                self.assertEqual(PackedBatch.of(list(batch.records())), batch)

    def test_no_timestamp_marker_is_the_smallest_s64(self):
        mixed = next(v for v in self.valid if v["name"] == "mixed-timestamps")
        self.assertIn(NO_TIMESTAMP, mixed["timestamps"])
        self.assertEqual(NO_TIMESTAMP, -(2**63))

    def test_malformed_encodings_are_refused(self):
        for vector in self.malformed:
            with self.subTest(vector["name"]):
                with self.assertRaisesRegex(Error, "malformed batch"):
                    list(self.encoded(vector).records())


if __name__ == "__main__":
    unittest.main()
