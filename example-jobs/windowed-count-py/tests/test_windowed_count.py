"""windowed-count-py natively:
`python3 -m unittest discover -s example-jobs/windowed-count-py/tests`."""

import os
import random
import sys
import unittest

HERE = os.path.dirname(__file__)
sys.path.insert(0, os.path.join(HERE, ".."))
sys.path.insert(0, os.path.join(HERE, "..", "..", "word-count-py"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "guest-sdk", "python"))

from cairn_sdk import LATE_RECORDS_DROPPED, Args, Error, Partitioning  # noqa: E402
from cairn_sdk import WatermarkStrategy  # noqa: E402
from cairn_sdk.testing import Harness  # noqa: E402
from windowed_count import MALFORMED_LINES, WindowedCount, parse_timestamp  # noqa: E402


def describe(*args):
    return WindowedCount().describe(Args(list(args)))


class DescribeTest(unittest.TestCase):
    def test_the_graph_is_rusts(self):
        job = describe(
            "--input",
            "in.txt",
            "--output",
            "out/",
            "--window",
            "500",
            "--max-delay",
            "200",
            "--idleness",
            "50",
            "--allowed-lateness",
            "7",
            "--rate",
            "100",
        )
        nodes = {node.uid: node for node in job.nodes}
        self.assertEqual(list(nodes), ["lines", "stamp", "count", "out"])
        self.assertEqual(nodes["lines"].parallelism, 1)
        self.assertEqual(nodes["lines"].options, [("path", "in.txt"), ("rate", "100")])
        self.assertEqual(nodes["stamp"].inputs[0].partitioning, Partitioning.REBALANCE)
        self.assertEqual(nodes["stamp"].watermarks, WatermarkStrategy(200, 50))
        self.assertEqual(nodes["count"].inputs[0].partitioning, Partitioning.BY_KEY)
        self.assertEqual(nodes["count"].options, [("window", "500"), ("allowed-lateness", "7")])
        self.assertIsNone(nodes["count"].watermarks)
        self.assertEqual(nodes["out"].inputs[0].partitioning, Partitioning.FORWARD)

    def test_late_output_is_the_counts_side_output_late_written_to_a_second_sink(self):
        job = describe("--input", "in.txt", "--output", "out/", "--late-output", "late/")
        nodes = {node.uid: node for node in job.nodes}
        self.assertEqual(nodes["count"].options[-1], ("late-output", "late"))
        self.assertEqual(nodes["stamp"].watermarks, WatermarkStrategy(0))
        (edge,) = nodes["late-words"].inputs
        self.assertEqual((edge.upstream, edge.side_output), ("count", "late"))
        self.assertEqual(nodes["late-out"].options, [("path", "late/")])
        self.assertIsNone(nodes["out"].inputs[0].side_output)

    def test_bad_arguments_are_named(self):
        with self.assertRaisesRegex(Error, "--window: a window's size must be 1 ms or more"):
            describe("--input", "i", "--output", "o", "--window", "0")
        with self.assertRaisesRegex(Error, "--max-delay -1: not a number of ms"):
            describe("--input", "i", "--output", "o", "--max-delay", "-1")


class StampTest(unittest.TestCase):
    def test_timestamps_parse_as_rusts_trim_and_parse(self):
        self.assertEqual(parse_timestamp(b" 12\x0b"), 12)
        self.assertEqual(parse_timestamp(b"+7"), 7)
        self.assertEqual(parse_timestamp("\u3000-5\u2029".encode()), -5)
        for bad in (
            b"",
            b"1_0",
            b"1.5",
            b"0x10",
            b"12a",
            b"9223372036854775808",
            "\u0663".encode(),
        ):
            self.assertIsNone(parse_timestamp(bad), bad)
        self.assertEqual(parse_timestamp(b"-9223372036854775807"), -(2**63) + 1)

    def test_words_take_their_lines_timestamp_and_malformed_lines_are_counted(self):
        h = Harness.open(WindowedCount(), "stamp")
        out = h.process(
            [
                ("", "5\ta b\u2003c", None),
                ("", "no tab", None),
                ("", "x\ty", None),
                ("", "7\t", None),
                ("", " 9 \tb\x1cc", None),
            ]
        )
        self.assertEqual(
            out,
            [(b"a", b"", 5), (b"b", b"", 5), (b"c", b"", 5), (b"b\x1cc", b"", 9)],
        )
        self.assertEqual(h.counter(MALFORMED_LINES), 2)


def counted(records):
    return sorted(v.decode() for _, v, _ in records)


class CountTest(unittest.TestCase):
    def test_each_window_emits_a_count_per_word_stamped_with_its_end(self):
        h = Harness.open(WindowedCount(), "count", [("window", "1000"), ("allowed-lateness", "0")])
        h.process([("a", "", 1500), ("b", "", 1999), ("a", "", 1000), ("a", "", -1)])
        out = h.advance_watermark(1999)
        self.assertEqual(
            sorted(out),
            [(b"a", b"-1000\ta\t1", -1), (b"a", b"1000\ta\t2", 1999), (b"b", b"1000\tb\t1", 1999)],
        )
        h.process([("a", "", 1200)])
        self.assertEqual(h.counter(LATE_RECORDS_DROPPED), 1)
        self.assertEqual(h.timers(), 0)
        self.assertEqual(h.snapshot().keyed, [])

    def test_late_words_go_to_the_side_output_then_to_their_own_lines(self):
        options = [("window", "1000"), ("allowed-lateness", "0"), ("late-output", "late")]
        h = Harness.open(WindowedCount(), "count", options)
        h.advance_watermark(5000)
        h.process([("w", "", 42)])
        (late,) = h.side_output("late")
        self.assertEqual(late, (b"w", b"", 42))
        self.assertEqual(h.counter(LATE_RECORDS_DROPPED), 0)
        words = Harness.open(WindowedCount(), "late-words")
        self.assertEqual(words.process([late]), [(b"w", b"42\tw", None)])

    def test_counts_match_an_oracle_over_out_of_order_lines(self):
        rng = random.Random(3)
        lines, expected = [], {}
        for i in range(3000):
            t = 1_765_000_000_000 + 5 * i - rng.randrange(501)
            words = [rng.choice(["a", "b", "c", "é"]) for _ in range(1 + rng.randrange(8))]
            lines.append(("", "%d\t%s" % (t, " ".join(words)), None))
            for w in words:
                key = "%d\t%s" % (t - t % 1000, w)
                expected[key] = expected.get(key, 0) + 1
        stamp = Harness.open(WindowedCount(), "stamp")
        count = Harness.open(WindowedCount(), "count", [("window", "1000")])
        out, highest = [], None
        for i in range(0, len(lines), 100):
            stamped = stamp.process(lines[i : i + 100])
            out += count.process(stamped)
            top = max(t for _, _, t in stamped)
            highest = top if highest is None else max(highest, top)
            out += count.advance_watermark(highest - 500 - 1)
        out += count.finish()
        self.assertEqual(counted(out), sorted("%s\t%d" % kv for kv in expected.items()))
        self.assertEqual(count.counter(LATE_RECORDS_DROPPED), 0)


if __name__ == "__main__":
    unittest.main()
