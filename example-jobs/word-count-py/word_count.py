"""Word count in Python: the same job, graph and output as the Rust ``word-count`` — it emits
``word<TAB>n`` for the n-th occurrence of each word, so its complete output is known from the
input alone.

``cairn run word-count-py.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]``
(``-`` as input reads standard input; ``-`` as output writes to standard output; ``--rate``
paces reading the file.) ``kafka://HOST:PORT/TOPIC`` as input reads the topic from its
earliest offset to the end it had when the job first started, then ends, as a file does; as
output it writes the topic exactly-once. Each output record is keyed by its word (a Kafka
output topic is keyed by word; files hold the values).

Words are split on Unicode whitespace exactly as Rust's ``char::is_whitespace`` does, empty
words dropped. The ``count`` operator keeps word count's cross-language state encodings (see
``Count`` in ``example-jobs/word-count``), so the word counts of every language resume each
other's checkpoints and savepoints, at any parallelism.
"""

import re
from typing import Optional, Tuple

import cairn_sdk as cairn
from cairn_sdk import (
    U64,
    Args,
    Error,
    JobGraph,
    KeyedState,
    Operator,
    Partitioning,
    Sink,
    Source,
    log,
)
from cairn_sdk.keyed import entries

# Rust's White_Space characters. Python's str.split() splits on these and on four more,
# U+001C..U+001F (separators in Python, not whitespace in Rust).
_RUST_WHITESPACE = re.compile("[\t-\r \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+")
_PYTHON_ONLY_WHITESPACE = re.compile("[\x1c-\x1f]")


def split_words(line: bytes) -> list:
    """The words of a UTF-8 line, split as Rust's ``str::split(char::is_whitespace)`` with
    empty words dropped: ``bytes`` for an ASCII line (the common case, no decoding),
    ``str`` otherwise."""
    if line.isascii():
        # bytes.split() splits on exactly Rust's ASCII whitespace: \t \n \v \f \r and space.
        return line.split()
    try:
        text = line.decode()
    except UnicodeDecodeError as e:
        raise Error(f"value is not UTF-8: {e}") from None
    if _PYTHON_ONLY_WHITESPACE.search(text) is None:
        return text.split()
    return [word for word in _RUST_WHITESPACE.split(text) if word]


class Split(Operator):
    """Splits lines into words, keyed by the word. No state."""

    def process(self, record, out):
        for word in split_words(record.value):
            out.emit(key=word)


class Count(Operator):
    """Counts occurrences per word and emits the running count.

    Its state is version 3 of word count's encodings: keyed state, key the word (UTF-8),
    value its count (u64 little-endian). It reads versions 2 (operator-wide UTF-8 text, one
    ``word<TAB>count<LF>`` line per word: what this job wrote before keyed state) and 4
    (keyed, the count in decimal digits: Rust's ``word-count-v2``) too, moving them into keyed
    state; version 1 (Rust's postcard) it refuses.
    """

    STATE_VERSION = 3
    _READS = "versions 2, 3 and 4"

    def __init__(self):
        self.counts = KeyedState(U64)
        # Counts migrated from an older encoding, and which: logged once restored.
        self._migrated = None

    def open(self, ctx):
        if self._migrated is not None:
            n, version = self._migrated
            log.info("migrated %d word counts from state version %d", n, version)
            self._migrated = None

    def process(self, record, out):
        counts = self.counts
        n = counts.get(record, 0) + 1
        counts.set(record, n)
        out.emit(b"%s\t%d" % (record.key, n), key=record.key)

    def restore(self, data, version):
        if version != 2:
            raise self._unknown(version)
        try:
            data.decode()
        except UnicodeDecodeError as e:
            raise Error(f"version 2 state is not UTF-8: {e}") from None
        for line in data.split(b"\n"):
            if not line:
                continue
            word, tab, n = line.partition(b"\t")
            if not tab or not n.isdigit():
                raise Error(f"version 2 state: bad line {line.decode()!r}")
            self._migrate(word, int(n), 2)

    def restore_keyed(self, chunk, version):
        if version == 3:
            self.counts.restore(chunk)
        elif version == 4:
            for word, n in entries(chunk.entries):
                if n is None or not n.isdigit():
                    raise Error(f"version 4 state: the count of {word!r} is {n!r}, not digits")
                self._migrate(word, int(n), 4)
        else:
            raise self._unknown(version)

    def _migrate(self, word, n, version):
        self.counts.set_key(word, n)
        done = self._migrated[0] if self._migrated else 0
        self._migrated = (done + 1, version)

    def _unknown(self, version):
        return Error(f"unknown state version {version}: this count reads {self._READS}")


def input_source(args: Args) -> Source:
    """The source ``--input PATH|-|kafka://HOST:PORT/TOPIC`` and ``--rate LINES_PER_S``
    name."""
    path = args.required("--input")
    rate = args.value("--rate")
    kafka = kafka_address("--input", path)
    if kafka is not None:
        if rate is not None:
            raise Error(f"--rate paces a file input; it does not apply to {path}")
        return Source.kafka(*kafka).option("scan.bounded.mode", "latest-offset")
    if path == "-":
        return Source.stdin()
    source = Source.file(path)
    if rate is not None:
        source.option("rate", rate)
    return source


def output_sink(args: Args) -> Sink:
    """The sink ``--output DIR|-|kafka://HOST:PORT/TOPIC`` names."""
    path = args.required("--output")
    kafka = kafka_address("--output", path)
    if kafka is not None:
        return Sink.kafka(*kafka).option("sink.delivery-guarantee", "exactly-once")
    return Sink.stdout() if path == "-" else Sink.file(path)


def kafka_address(name: str, value: str) -> Optional[Tuple[str, str]]:
    """The bootstrap servers and topic of argument ``name``'s value if it is a
    ``kafka://HOST:PORT/TOPIC`` URL, ``None`` if it is not one; an error if it is malformed."""
    if not value.startswith("kafka://"):
        return None
    servers, _, topic = value[len("kafka://") :].partition("/")
    if not servers or not topic or "/" in topic:
        raise Error(f"invalid {name} {value}: expected kafka://HOST:PORT/TOPIC")
    return servers, topic


class WordCount(cairn.Job):
    operators = {"split": Split, "count": Count}

    def describe(self, args):
        source, sink = input_source(args), output_sink(args)
        job = JobGraph("word-count")
        (
            job.source("lines", source)
            .parallelism(1)
            .operator("split", "split", Partitioning.REBALANCE)
            .operator("count", "count", Partitioning.BY_KEY)
            .sink("out", sink, Partitioning.FORWARD)
        )
        return job


Job = cairn.export_job(WordCount)
