"""Write Cairn jobs in Python.

A job is one WebAssembly component that describes its dataflow graph and implements the
operators that graph names. With this package a job is a :class:`Job` subclass, each operator
an :class:`Operator` subclass, and one ``Job = export_job(MyJob)`` line in the app module;
the WIT plumbing and the packed batch encoding stay out of sight::

    import cairn_sdk as cairn

    class Count(cairn.Operator):
        def __init__(self):
            self.counts = cairn.KeyedState(cairn.U64)   # a value per key, by key group

        def process(self, record, out):
            n = self.counts.get(record, 0) + 1
            self.counts.set(record, n)
            out.emit(b"%s\\t%d" % (record.key, n))

    class Counter(cairn.Job):
        operators = {"count": Count}

        def describe(self, args):
            job = cairn.JobGraph("counter")
            (job.source("in", cairn.Source.file(args.required("--input")))
                .operator("count", "count", cairn.Partitioning.BY_KEY)
                .sink("out", cairn.Sink.stdout(), cairn.Partitioning.FORWARD))
            return job

    Job = cairn.export_job(Counter)

Build it with componentize-py against ``wit/`` (world ``cairn-job``), with this folder on
the Python path; ``docs/guides/python.md`` shows how. Outside a component the same code
imports as an ordinary package, so operators can be tested with :class:`OperatorInstance`,
or with :class:`cairn_sdk.testing.Harness`, which also stands in for the host's timers, clocks,
side outputs and counters.

Event time: :mod:`cairn_sdk.host` registers timers (fired through
:meth:`Operator.on_timer`), reads the watermark and the clock, emits to side outputs and adds
to counters; :class:`Windowed` runs an :class:`Aggregate` over tumbling, sliding or session
:class:`Windows`; :class:`WatermarkStrategy` on a graph node makes the watermarks.
"""

from . import host, log
from .args import Args
from .batch import NO_TIMESTAMP, Emitter, PackedBatch, Record
from .error import Error
from .graph import Input, JobGraph, Node, Partitioning, Sink, Source, Stream, WatermarkStrategy
from .host import TimeDomain, Timer
from .keyed import (
    BYTES,
    F64,
    JSON,
    PICKLE,
    S64,
    U64,
    UTF8,
    Codec,
    KeyedChunk,
    KeyedState,
    ValueEncoding,
)
from .operator import Context, Job, Operator, OperatorInstance, OperatorStateMode, Snapshot
from .window import LATE_RECORDS_DROPPED, Aggregate, Window, Windowed, Windows

__all__ = [
    "Aggregate",
    "Args",
    "BYTES",
    "Codec",
    "Context",
    "Emitter",
    "Error",
    "F64",
    "Input",
    "JSON",
    "Job",
    "JobGraph",
    "KeyedChunk",
    "KeyedState",
    "LATE_RECORDS_DROPPED",
    "NO_TIMESTAMP",
    "Node",
    "Operator",
    "OperatorInstance",
    "OperatorStateMode",
    "PICKLE",
    "PackedBatch",
    "Partitioning",
    "Record",
    "S64",
    "Sink",
    "Snapshot",
    "Source",
    "Stream",
    "TimeDomain",
    "Timer",
    "U64",
    "UTF8",
    "ValueEncoding",
    "WatermarkStrategy",
    "Window",
    "Windowed",
    "Windows",
    "export_job",
    "host",
    "log",
]

try:
    # Present only inside a component built by componentize-py.
    import componentize_py_runtime  # noqa: F401

    from . import _guest
except ImportError:
    _guest = None  # type: ignore[assignment]


def export_job(job: type) -> type:
    """Exports ``job`` (a :class:`Job` subclass) as the component's ``cairn:job/job``
    interface. componentize-py looks for the name ``Job`` in the app module, so::

        Job = cairn_sdk.export_job(WordCount)

    Outside a component (tests) it returns ``job`` itself."""
    if _guest is None:
        return job
    return _guest.export(job)
