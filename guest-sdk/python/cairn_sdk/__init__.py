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
imports as an ordinary package, so operators can be tested with :class:`OperatorInstance`.
"""

from . import log
from .args import Args
from .batch import NO_TIMESTAMP, Emitter, PackedBatch, Record
from .error import Error
from .graph import Input, JobGraph, Node, Partitioning, Sink, Source, Stream
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

__all__ = [
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
    "U64",
    "UTF8",
    "ValueEncoding",
    "export_job",
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
