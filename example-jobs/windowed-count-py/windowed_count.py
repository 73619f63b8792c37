"""Windowed word count in Python, the twin of Rust's ``windowed-count`` (the event-time oracle
job): the same arguments, graph and output. It counts each word per tumbling window of event
time, so its complete output is known from the input alone.

``cairn run windowed-count-py.wasm -p 4 -- --input events.txt --output out/ --window 1000
--max-delay 500 [--rate LINES_PER_S] [--allowed-lateness MS] [--late-output DIR]
[--idleness MS]``

Input lines are ``<epoch-ms><TAB><text>``; each word of the text (split on whitespace as
word-count-py splits it) takes the line's timestamp as its event time; a line that is not
``<epoch-ms><TAB><text>`` is skipped and counted in ``numMalformedLines``. Watermarks trail
the highest timestamp by ``--max-delay`` (Flink's bounded out-of-orderness; ``--idleness MS``
marks a stamping subtask idle after MS without records). Each window of ``--window`` ms
(starting at ``ts - ts mod window``) emits one line ``<window-start><TAB><word><TAB><count>``
per word once the watermark passes its end. A record behind the watermark by more than
``--allowed-lateness`` (default 0) when it arrives is late: dropped and counted in
``numLateRecordsDropped``, or with ``--late-output DIR`` written there as
``<timestamp><TAB><word>``, through the count's side output ``late``. ``--input`` and
``--output`` take what word-count-py's take (a file, ``-``, ``kafka://…``).
"""

import re

import cairn_sdk as cairn
from cairn_sdk import (
    Aggregate,
    Error,
    JobGraph,
    Operator,
    Partitioning,
    Sink,
    WatermarkStrategy,
    Windowed,
    Windows,
    host,
)
from word_count import input_source, output_sink, split_words

#: A line of input that is not ``<epoch-ms><TAB><text>``: skipped, and counted.
MALFORMED_LINES = "numMalformedLines"

#: The window counts' side output of late records.
LATE = "late"

# What Rust's `str::parse::<i64>` and `::<u64>` accept: an optional sign, then ASCII digits.
_I64 = re.compile(rb"[+-]?[0-9]+")
_U64 = re.compile(r"\+?[0-9]+")
_I64_MIN, _I64_MAX = -(2**63), 2**63 - 1
# Rust's White_Space characters, which its `str::trim` strips.
_RUST_WHITESPACE = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000" + "".join(
    map(chr, range(0x2000, 0x200B))
)


def parse_timestamp(field: bytes):
    """The timestamp field of a line as Rust's ``ms.trim().parse::<i64>()`` reads it, or
    ``None``."""
    if field.isascii():
        # bytes.strip() strips exactly Rust's ASCII whitespace: \t \n \v \f \r and space.
        field = field.strip()
    else:
        field = field.decode().strip(_RUST_WHITESPACE).encode()
    if _I64.fullmatch(field) is None:
        return None
    ms = int(field)
    return ms if _I64_MIN <= ms <= _I64_MAX else None


class Stamp(Operator):
    """Parses ``<epoch-ms><TAB><text>`` lines into their words, keyed by the word, each with
    the line's timestamp. No state."""

    def process(self, record, out):
        line = record.value
        if not line.isascii():
            record.value_str()  # a line that is not UTF-8 fails, as it does in Rust
        field, tab, text = line.partition(b"\t")
        timestamp = parse_timestamp(field) if tab else None
        if timestamp is None:
            host.counter_add(MALFORMED_LINES, 1)
            return
        emit = out.emit
        for word in split_words(text):
            emit(b"", word, timestamp)


class WordsPerWindow(Aggregate):
    """Counts a word's records per window; the windows from the node's options."""

    def windows(self, ctx):
        def ms(key):
            value = ctx.option(key, "0")
            if _U64.fullmatch(value) is None or int(value) >= 2**64:
                raise Error(f"option {key}: {value!r} is not a number of ms")
            return int(value)

        windows = Windows.tumbling(ms("window")).allowed_lateness(ms("allowed-lateness"))
        late = ctx.option("late-output")
        return windows if late is None else windows.late_records_to(late)

    def create_accumulator(self):
        return 0

    def add(self, count, record):
        return count + 1

    def emit(self, word, window, count, out):
        out.emit(b"%d\t%s\t%d" % (window.start, word, count), word)


class LateWords(Operator):
    """Late words, as ``<timestamp><TAB><word>`` (the side output's records are the words as
    stamped)."""

    def process(self, record, out):
        timestamp = 0 if record.timestamp is None else record.timestamp
        out.emit(b"%d\t%s" % (timestamp, record.key), record.key)


def ms_arg(args, name, default=None):
    """Argument ``name``, a number of ms (``default`` when absent)."""
    value = args.value(name)
    if value is None:
        return default
    if _U64.fullmatch(value) is None or int(value) >= 2**64:
        raise Error(f"{name} {value}: not a number of ms")
    return int(value)


class WindowedCount(cairn.Job):
    operators = {
        "stamp": Stamp,
        "count": Windowed.of(WordsPerWindow),
        "late-words": LateWords,
    }

    def describe(self, args):
        source, sink = input_source(args), output_sink(args)
        window = ms_arg(args, "--window", 1000)
        try:
            Windows.tumbling(window)
        except Error as e:
            raise Error(f"--window: {e}") from None
        strategy = WatermarkStrategy.bounded_out_of_orderness(ms_arg(args, "--max-delay", 0))
        idleness = ms_arg(args, "--idleness")
        if idleness is not None:
            strategy = strategy.with_idleness(idleness)
        lateness = ms_arg(args, "--allowed-lateness", 0)
        late_output = args.value("--late-output")

        job = JobGraph("windowed-count")
        count = (
            job.source("lines", source)
            .parallelism(1)
            .operator("stamp", "stamp", Partitioning.REBALANCE)
            .watermarks(strategy)
            .operator("count", "count", Partitioning.BY_KEY)
            .option("window", window)
            .option("allowed-lateness", lateness)
        )
        if late_output is not None:
            count.option("late-output", LATE)
        count.sink("out", sink, Partitioning.FORWARD)
        if late_output is not None:
            (
                job.stream("count")
                .side_output(LATE)
                .operator("late-words", "late-words", Partitioning.FORWARD)
                .sink("late-out", Sink.file(late_output), Partitioning.FORWARD)
            )
        return job


Job = cairn.export_job(WindowedCount)
