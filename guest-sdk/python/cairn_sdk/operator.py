"""Operators, jobs, and the per-subtask instance that drives an operator batch by batch."""

import pickle
from typing import ClassVar, Dict, List, Optional, Tuple, Type

from .args import Args
from .batch import NO_TIMESTAMP, Emitter, PackedBatch, Record, check
from .error import Error
from .graph import JobGraph


class Context:
    """Where an operator instance runs."""

    __slots__ = ("job_id", "operator_uid", "subtask", "parallelism", "attempt", "options")

    def __init__(
        self,
        job_id: str = "0" * 32,
        operator_uid: str = "",
        subtask: int = 0,
        parallelism: int = 1,
        attempt: int = 0,
        options: Optional[List[Tuple[str, str]]] = None,
    ) -> None:
        #: 32 lowercase hex characters.
        self.job_id = job_id
        self.operator_uid = operator_uid
        #: 0-based index of this subtask among its node's subtasks.
        self.subtask = subtask
        self.parallelism = parallelism
        #: 0 on the first run; counts up on every restart of the job.
        self.attempt = attempt
        #: The options of this operator's node, as the graph set them.
        self.options: List[Tuple[str, str]] = [] if options is None else list(options)

    def option(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of option ``name`` of this operator's node (the last one set wins)."""
        for key, value in reversed(self.options):
            if key == name:
                return value
        return default

    def __repr__(self) -> str:
        return (
            f"Context(job_id={self.job_id!r}, operator_uid={self.operator_uid!r}, "
            f"subtask={self.subtask}, parallelism={self.parallelism}, "
            f"attempt={self.attempt}, options={self.options!r})"
        )


class State:
    """An operator's state as it is checkpointed: the bytes, and the version of their
    encoding. Empty ``data`` means no state (nothing is stored, nothing restored)."""

    __slots__ = ("version", "data")

    def __init__(self, version: int, data: bytes) -> None:
        self.version = version
        self.data = data

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, State):
            return NotImplemented
        return (self.version, self.data) == (other.version, other.data)

    def __repr__(self) -> str:
        return f"State(version={self.version}, data={self.data!r})"


class Operator:
    """A stream operator: subclass it and implement :meth:`process`.

    One instance runs per subtask. By default its state is its attributes: those whose names
    do not start with ``_``, pickled whenever the host takes a checkpoint. Keep what is not
    state (caches, compiled patterns) in ``_private`` attributes, set in :meth:`open`. For a
    state encoding of your own — one other code (or another language) can read — override
    :meth:`snapshot` and :meth:`restore`, and number the encoding with
    :attr:`STATE_VERSION`.
    """

    #: The version of this operator's state encoding, stored with every snapshot and handed
    #: back to :meth:`restore`. Raise it when the encoding changes, and teach ``restore`` to
    #: read (migrate) the older versions.
    STATE_VERSION = 1

    def open(self, ctx: Context) -> None:
        """Called when the subtask starts, and again after its state was restored."""

    def process(self, record: Record, out: Emitter) -> None:
        """Processes one record, emitting any number of records to ``out``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement process")

    def finish(self, out: Emitter) -> None:
        """All inputs have ended (bounded input): emit any last records."""

    def snapshot(self) -> bytes:
        """The whole state. By default the public attributes, pickled; ``b""`` (no state)
        when there are none."""
        state = {k: v for k, v in vars(self).items() if not k.startswith("_")}
        if not state:
            return b""
        return pickle.dumps(state, protocol=4)

    def restore(self, data: bytes, version: int) -> None:
        """Replaces the state with one from :meth:`snapshot` — possibly written by other
        code, in encoding ``version``. By default only this operator's own
        :attr:`STATE_VERSION` is accepted, and the pickled attributes are set back."""
        if version != self.STATE_VERSION:
            raise Error(
                f"the state is in encoding version {version}, {type(self).__name__} reads "
                f"version {self.STATE_VERSION}; override Operator.restore to migrate it"
            )
        state = pickle.loads(data)
        if not isinstance(state, dict):
            raise Error(
                f"cannot decode state: expected pickled attributes, got {type(state).__name__}"
            )
        vars(self).update(state)

    def checkpoint_complete(self, checkpoint_id: int) -> None:
        """A checkpoint this operator's state belongs to is durable everywhere."""


class Job:
    """A job: its graph, and the operators that graph names. Subclass it, implement
    :meth:`describe`, list the operators in :attr:`operators`, and export it from the app
    module with ``Job = cairn_sdk.export_job(MyJob)``."""

    #: Operator classes by the name the graph gives them (``.operator(uid, name, ...)``).
    operators: ClassVar[Dict[str, Type[Operator]]] = {}

    def describe(self, args: Args) -> JobGraph:
        """The job graph for these arguments. An exception is shown to the user as the reason
        the job could not start."""
        raise NotImplementedError(f"{type(self).__name__} does not implement describe")

    def operator(self, name: str) -> Optional[Operator]:
        """A new instance of the operator called ``name``, or ``None`` for a name this job
        does not know. By default from :attr:`operators`."""
        cls = self.operators.get(name)
        return None if cls is None else cls()


class OperatorInstance:
    """One running operator subtask: the operator, its context and its output buffer. The
    component export drives it, and so can tests, natively::

        op = OperatorInstance.open(WordCount(), Context(operator_uid="count"), "count")
        out = op.process(0, PackedBatch.of([Record(b"a", b"")]))
    """

    __slots__ = ("operator", "context", "_out", "_process")

    def __init__(self, operator: Operator, context: Context) -> None:
        self.operator = operator
        self.context = context
        self._out = Emitter()
        self._process = operator.process

    @staticmethod
    def open(job: Job, context: Context, name: str) -> "OperatorInstance":
        """Creates and opens operator ``name`` of ``job``."""
        operator = job.operator(name)
        if operator is None:
            raise Error(f"this job has no operator named {name!r}")
        operator.open(context)
        return OperatorInstance(operator, context)

    def process(self, input: int, batch: PackedBatch) -> PackedBatch:
        """Processes a batch (anything with ``data``, ``offsets`` and ``timestamps``) that
        arrived on input ``input``; returns what the operator emitted."""
        check(batch)
        data = batch.data
        offsets = iter(batch.offsets)
        process = self._process
        out = self._out
        start = 0
        # One loop per batch, no call per record but the operator's own.
        if batch.timestamps:
            for (key_end, value_end), t in zip(zip(offsets, offsets), batch.timestamps):
                process(
                    Record(
                        data[start:key_end],
                        data[key_end:value_end],
                        None if t == NO_TIMESTAMP else t,
                        input,
                    ),
                    out,
                )
                start = value_end
        else:
            for key_end, value_end in zip(offsets, offsets):
                process(Record(data[start:key_end], data[key_end:value_end], None, input), out)
                start = value_end
        return out.take()

    def finish(self) -> PackedBatch:
        self.operator.finish(self._out)
        return self._out.take()

    def snapshot(self) -> State:
        data = self.operator.snapshot()
        if data is None:
            data = b""
        elif type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise Error(
                    f"{type(self.operator).__name__}.snapshot returned "
                    f"{type(data).__name__}, not bytes"
                )
            data = bytes(data)
        return State(type(self.operator).STATE_VERSION, data)

    def restore(self, state: State) -> None:
        self.operator.restore(state.data, state.version)
        self.operator.open(self.context)

    def checkpoint_complete(self, checkpoint_id: int) -> None:
        self.operator.checkpoint_complete(checkpoint_id)
