"""Word count in Python: the same job, graph and output as the Rust ``word-count`` — it emits
``word<TAB>n`` for the n-th occurrence of each word, so its complete output is known from the
input alone.

``cairn run word-count-py.wasm -p 4 -- --input text.txt --output out/ [--rate LINES_PER_S]``
(``-`` as input reads standard input; ``-`` as output writes to standard output; ``--rate``
paces reading the file.)

Words are split on Unicode whitespace exactly as Rust's ``char::is_whitespace`` does, empty
words dropped. The ``count`` operator's state is version 2 of word count's cross-language
encoding (see ``example-jobs/word-count-v2``): UTF-8 text, one ``word<TAB>count<LF>`` line
per word, sorted by word — so Rust's ``word-count-v2`` resumes from this job's checkpoints
and savepoints, and this job from its.
"""

import re

import cairn_sdk as cairn
from cairn_sdk import Args, Error, JobGraph, Operator, Partitioning, Sink, Source

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
    """Counts occurrences per word and emits the running count."""

    #: UTF-8 text, one ``word<TAB>count<LF>`` line per word, sorted by word.
    STATE_VERSION = 2

    def __init__(self):
        # Word (UTF-8 bytes, as the key arrives) -> count.
        self.counts = {}
        # Every word: sorted as of the last snapshot, then the words new since. Not state
        # (it starts with _): it only saves sorting all words at every checkpoint.
        self._words = []

    def process(self, record, out):
        word = record.key
        n = self.counts.get(word, 0) + 1
        self.counts[word] = n
        if n == 1:
            self._words.append(word)
        out.emit(b"%s\t%d" % (word, n))

    def snapshot(self):
        words = self._words
        # A sorted run and a few new words: Python's sort merges them in about linear time.
        # Sorting UTF-8 bytes sorts by code point, as Rust sorts its strings.
        words.sort()
        counts = self.counts
        return b"".join([b"%s\t%d\n" % (word, counts[word]) for word in words])

    def restore(self, data, version):
        if version != 2:
            raise Error(
                f"unknown state version {version}: this count reads version 2 "
                "(word<TAB>count lines, as word-count-v2 writes them)"
            )
        try:
            data.decode()
        except UnicodeDecodeError as e:
            raise Error(f"version 2 state is not UTF-8: {e}") from None
        counts = {}
        for line in data.split(b"\n"):
            if not line:
                continue
            word, tab, n = line.partition(b"\t")
            if not tab or not n.isdigit():
                raise Error(f"version 2 state: bad line {line.decode()!r}")
            counts[word] = int(n)
        self.counts = counts
        self._words = list(counts)


def input_source(args: Args) -> Source:
    """The source ``--input PATH|-`` and ``--rate LINES_PER_S`` name."""
    path = args.required("--input")
    if path == "-":
        return Source.stdin()
    source = Source.file(path)
    rate = args.value("--rate")
    if rate is not None:
        source.option("rate", rate)
    return source


def output_sink(args: Args) -> Sink:
    """The sink ``--output DIR|-`` names."""
    path = args.required("--output")
    return Sink.stdout() if path == "-" else Sink.file(path)


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
