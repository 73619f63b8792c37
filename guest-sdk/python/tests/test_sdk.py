"""The SDK natively: `python3 -m unittest discover -s guest-sdk/python/tests` (Python 3.9+)."""

import os
import sys
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

import cairn_sdk as cairn  # noqa: E402
from cairn_sdk import (  # noqa: E402
    NO_TIMESTAMP,
    Args,
    Context,
    Emitter,
    Error,
    Input,
    JobGraph,
    Operator,
    OperatorInstance,
    PackedBatch,
    Partitioning,
    Record,
    Sink,
    Snapshot,
    Source,
)
from cairn_sdk.error import describe  # noqa: E402


class BatchTest(unittest.TestCase):
    def test_emitted_records_read_back_in_order(self):
        out = Emitter()
        out.emit("v1", key="k1")
        out.emit(b"plain")
        out.emit(b"w\t3")
        out.emit(b"", key=b"")
        self.assertEqual(len(out), 4)
        batch = out.take()
        self.assertEqual(len(out), 0)
        self.assertEqual(batch.data, b"k1v1plainw\t3")
        self.assertEqual(batch.offsets, [2, 4, 4, 9, 9, 12, 12, 12])
        self.assertEqual(batch.timestamps, [])
        records = list(batch.records(2))
        self.assertEqual(records[0], Record(b"k1", b"v1", None, 2))
        self.assertEqual(records[0].key_str(), "k1")
        self.assertEqual(records[1].key, b"")
        self.assertEqual(records[2].value_str(), "w\t3")
        self.assertEqual(records[3], Record(b"", b"", None, 2))

    def test_timestamps_are_back_filled_and_round_trip(self):
        out = Emitter()
        out.emit("a")
        out.emit("b", key="k", timestamp=42)
        out.emit("c")
        batch = out.take()
        self.assertEqual(batch.timestamps, [NO_TIMESTAMP, 42, NO_TIMESTAMP])
        self.assertEqual([r.timestamp for r in batch.records()], [None, 42, None])
        copy = PackedBatch.of(list(batch.records()))
        self.assertEqual(copy, batch)

    def test_bytes_like_and_unicode(self):
        out = Emitter()
        out.emit(memoryview(b"mv"), key=bytearray(b"ba"))
        out.emit("é", key="ü")
        records = list(out.take().records())
        self.assertEqual(records[0].key, b"ba")
        self.assertEqual(records[0].value, b"mv")
        self.assertEqual(records[1].key_str(), "ü")
        self.assertEqual(records[1].value, "é".encode())

    def test_bad_input_is_refused_with_a_message(self):
        out = Emitter()
        with self.assertRaisesRegex(Error, "timestamp 1.5 is not an int"):
            out.emit("x", timestamp=1.5)
        with self.assertRaisesRegex(Error, "timestamp .* is not an int"):
            out.emit("x", timestamp=NO_TIMESTAMP)
        out.emit(12)
        with self.assertRaisesRegex(Error, r"^emitted a key or value of type int \(12\): keys"):
            out.take()
        self.assertEqual(len(out), 0)
        with self.assertRaisesRegex(Error, "value is not UTF-8"):
            Record(b"", b"\xff").value_str()

    def test_malformed_batches_are_refused(self):
        for batch, message in [
            (PackedBatch(b"ab", [1]), "odd number of offsets"),
            (PackedBatch(b"ab", [1, 3]), "out of range"),
            (PackedBatch(b"ab", [1, 2], [1, 2]), "timestamps"),
        ]:
            with self.assertRaisesRegex(Error, message):
                list(batch.records())


class Sum(Operator):
    def __init__(self):
        self.sums = {}
        self._opened = 0

    def open(self, ctx):
        self._opened += 1
        self._limit = ctx.option("limit")

    def process(self, record, out):
        key = record.key_str()
        total = self.sums.get(key, 0) + int(record.value_str())
        self.sums[key] = total
        out.emit(f"{key}={total}")


class Stateless(Operator):
    def process(self, record, out):
        out.push(record)


class Flush(Operator):
    def __init__(self):
        self.seen = 0
        self.completed = []

    def process(self, record, out):
        self.seen += 1

    def finish(self, out):
        out.emit(str(self.seen))

    def checkpoint_complete(self, checkpoint_id):
        self.completed.append(checkpoint_id)


class SumJob(cairn.Job):
    operators = {"sum": Sum, "stateless": Stateless, "flush": Flush}

    def describe(self, args):
        return JobGraph("sum")


def ctx():
    return Context(operator_uid="sum", options=[("limit", "1"), ("limit", "2")])


def keyed(*records):
    out = Emitter()
    for key, value in records:
        out.emit(value, key=key)
    return out.take()


def values(batch):
    return [r.value_str() for r in batch.records()]


class OperatorTest(unittest.TestCase):
    def test_state_survives_snapshot_and_restore(self):
        first = OperatorInstance.open(SumJob(), ctx(), "sum")
        self.assertEqual(first.context.option("limit"), "2")
        self.assertIsNone(first.context.option("other"))
        out = first.process(0, keyed(("a", "1"), ("b", "2"), ("a", "3")))
        self.assertEqual(values(out), ["a=1", "b=2", "a=4"])
        state = first.snapshot()
        self.assertEqual((state.version, len(state.operator_state), state.keyed), (1, 1, []))

        second = OperatorInstance.open(SumJob(), ctx(), "sum")
        second.restore(state.version, state.operator_state)
        self.assertEqual(second.operator._opened, 2, "open runs again after restore")
        self.assertEqual(values(second.process(0, keyed(("a", "10")))), ["a=14"])

    def test_stateless_operators_have_no_state(self):
        op = OperatorInstance.open(SumJob(), ctx(), "stateless")
        batch = keyed(("k", "v"))
        self.assertEqual(op.process(0, batch), batch)
        self.assertEqual(op.snapshot(), Snapshot(1))

    def test_finish_and_checkpoint_complete(self):
        op = OperatorInstance.open(SumJob(), ctx(), "flush")
        self.assertEqual(op.process(0, keyed(("a", ""), ("b", ""))), PackedBatch())
        op.checkpoint_complete(7)
        self.assertEqual(op.operator.completed, [7])
        self.assertEqual(values(op.finish()), ["2"])

    def test_errors_name_the_problem(self):
        with self.assertRaises(Error) as caught:
            OperatorInstance.open(SumJob(), ctx(), "nope")
        self.assertEqual(describe(caught.exception), "this job has no operator named 'nope'")

        op = OperatorInstance.open(SumJob(), ctx(), "sum")
        try:
            op.process(0, keyed(("a", "x")))
            self.fail("no error")
        except ValueError as e:  # not assertRaises: it drops the traceback
            message = describe(e)
        self.assertTrue(
            message.startswith(
                "ValueError: invalid literal for int() with base 10: 'x' (at test_sdk.py:"
            ),
            message,
        )
        self.assertTrue(message.endswith(" in process)"), message)

        with self.assertRaises(Error) as caught:
            op.restore(2, op.snapshot().operator_state)
        self.assertEqual(
            str(caught.exception),
            "the state is in encoding version 2, Sum reads version 1; "
            "override Operator.restore to migrate it",
        )
        with self.assertRaises(Exception):
            op.restore(1, [b"\xff\xff"])

    def test_describe_has_no_location_for_sdk_errors(self):
        self.assertEqual(describe(Error("plain")), "plain")
        self.assertEqual(describe(KeyError("k")), "KeyError: 'k'")
        self.assertEqual(describe(RuntimeError()), "RuntimeError")


class GraphTest(unittest.TestCase):
    def test_pipeline_builder_chains_inputs(self):
        job = JobGraph("wc").config("parallelism.default", 2)
        (
            job.source("lines", Source.file("in.txt"))
            .parallelism(1)
            .operator("split", "split", Partitioning.REBALANCE)
            .operator("count", "count", Partitioning.BY_KEY)
            .option("k", "v")
            .sink("out", Sink.file("out"), Partitioning.FORWARD)
        )
        self.assertEqual([n.uid for n in job.nodes], ["lines", "split", "count", "out"])
        lines, split, count, out = job.nodes
        self.assertEqual((lines.kind, lines.name, lines.parallelism), ("source", "file", 1))
        self.assertEqual(lines.options, [("path", "in.txt")])
        self.assertEqual((count.kind, count.name), ("operator", "count"))
        self.assertEqual(count.inputs, [Input("split", Partitioning.BY_KEY)])
        self.assertEqual(count.options, [("k", "v")])
        self.assertEqual((out.kind, out.name, out.options), ("sink", "file", [("path", "out")]))
        self.assertEqual(job.config_entries, [("parallelism.default", "2")])
        gen = Source.generator(10, 3).option("rate", 5)
        self.assertEqual(gen.options, [("count", "10"), ("keys", "3"), ("rate", "5")])

    def test_kafka_nodes_carry_flink_option_names(self):
        job = JobGraph("k")
        bounded = Source.kafka("a:9092,b:9092", "lines").option("scan.bounded.mode", "latest-offset")
        job.source("in", bounded).sink("out", Sink.kafka("a:9092", "counts"), Partitioning.FORWARD)
        source, sink = job.nodes
        self.assertEqual((source.kind, source.name), ("source", "kafka"))
        self.assertEqual(
            source.options,
            [
                ("properties.bootstrap.servers", "a:9092,b:9092"),
                ("topic", "lines"),
                ("scan.bounded.mode", "latest-offset"),
            ],
        )
        self.assertEqual((sink.kind, sink.name), ("sink", "kafka"))
        self.assertEqual(
            sink.options, [("properties.bootstrap.servers", "a:9092"), ("topic", "counts")]
        )


class ArgsTest(unittest.TestCase):
    def test_both_option_forms_and_last_wins(self):
        a = Args(["--input", "a.txt", "--output=out", "--input=b.txt"])
        self.assertEqual(a.value("--input"), "b.txt")
        self.assertEqual(a.value("--output"), "out")
        self.assertIsNone(a.value("--missing"))
        self.assertEqual(a.value("--missing", "d"), "d")
        self.assertIsNone(a.value("--in"))
        self.assertEqual(a.values("--input"), ["a.txt", "b.txt"])
        self.assertEqual(len(a), 4)

    def test_required_and_parsed_values_report_the_option(self):
        a = Args(["--records", "12x", "--rate", "2.5"])
        with self.assertRaises(Error) as caught:
            a.required("--input")
        self.assertEqual(str(caught.exception), "missing required argument --input")
        with self.assertRaisesRegex(Error, "^invalid value '12x' for --records"):
            a.parse_or("--records", 0)
        self.assertEqual(a.parse_or("--keys", 7), 7)
        self.assertEqual(a.parse_or("--rate", 1.0), 2.5)


class ExportTest(unittest.TestCase):
    def test_export_job_is_the_job_outside_a_component(self):
        self.assertIs(cairn.export_job(SumJob), SumJob)


if __name__ == "__main__":
    unittest.main()
