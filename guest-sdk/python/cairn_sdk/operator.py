"""Operators, jobs, and the per-subtask instance that drives an operator batch by batch."""

import pickle
from enum import Enum
from itertools import repeat
from typing import Callable, ClassVar, Dict, List, Optional, Sequence, Tuple, Type

from .args import Args
from .batch import NO_TIMESTAMP, Emitter, PackedBatch, Record, check
from .error import Error
from .graph import JobGraph
from . import host
from .host import TimeDomain, Timer
from .keyed import KeyedChunk, KeyedState, ValueEncoding, keyed_state_of, subtask_key_groups

#: ``pipeline.max-parallelism``'s default: the number of key groups.
DEFAULT_MAX_PARALLELISM = 128


def _no_host_key_group(key: bytes) -> int:
    raise Error(
        "a key's key group comes from the host: outside a component, give the Context a "
        "key_group function"
    )


class Context:
    """Where an operator instance runs."""

    __slots__ = (
        "job_id",
        "operator_uid",
        "subtask",
        "parallelism",
        "attempt",
        "options",
        "max_parallelism",
        "key_groups",
        "key_group",
    )

    def __init__(
        self,
        job_id: str = "0" * 32,
        operator_uid: str = "",
        subtask: int = 0,
        parallelism: int = 1,
        attempt: int = 0,
        options: Optional[List[Tuple[str, str]]] = None,
        max_parallelism: int = DEFAULT_MAX_PARALLELISM,
        key_groups: Optional[range] = None,
        key_group: Callable[[bytes], int] = _no_host_key_group,
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
        #: The number of key groups (``pipeline.max-parallelism``), fixed for a job's life.
        self.max_parallelism = max_parallelism
        #: The key groups this subtask owns (a ``range``): every record of a by-key input
        #: has its key in one of them, and so must every key of its keyed state.
        self.key_groups = (
            subtask_key_groups(subtask, parallelism, max_parallelism)
            if key_groups is None
            else key_groups
        )
        #: ``key_group(key)``: the key group of a key in this job (the host computes it;
        #: natively, tests pass a stand-in).
        self.key_group = key_group

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
            f"attempt={self.attempt}, options={self.options!r}, "
            f"max_parallelism={self.max_parallelism}, key_groups={self.key_groups!r})"
        )


class OperatorStateMode(Enum):
    """How operator-wide state is shared out when the parallelism changes (Flink's operator
    state redistribution)."""

    #: Each old subtask's state goes to one new subtask (in order, contiguous runs); some
    #: subtasks get none (Flink's ``getListState``).
    SPLIT = "split"
    #: Every new subtask gets the state of every old subtask (Flink's ``getUnionListState``).
    UNION = "union"


class Snapshot:
    """An operator subtask's state as it is checkpointed: ``version`` (of the encoding of
    both parts), ``operator_state`` (operator-wide items: ``[]`` or the one
    :meth:`Operator.snapshot` returned), ``mode`` (:class:`OperatorStateMode`), ``keyed``
    (one :class:`KeyedChunk` per key group with keys) and ``value_encoding``. No items and
    no chunks mean no state."""

    __slots__ = ("version", "operator_state", "mode", "keyed", "value_encoding")

    def __init__(
        self,
        version: int,
        operator_state: Sequence[bytes] = (),
        mode: OperatorStateMode = OperatorStateMode.SPLIT,
        keyed: Sequence[KeyedChunk] = (),
        value_encoding: ValueEncoding = ValueEncoding.BYTES,
    ) -> None:
        self.version = version
        self.operator_state = list(operator_state)
        self.mode = mode
        self.keyed = list(keyed)
        self.value_encoding = value_encoding

    def _fields(self) -> tuple:
        return (self.version, self.operator_state, self.mode, self.keyed, self.value_encoding)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Snapshot):
            return NotImplemented
        return self._fields() == other._fields()

    def __repr__(self) -> str:
        return (
            f"Snapshot(version={self.version}, operator_state={self.operator_state!r}, "
            f"mode={self.mode}, keyed={self.keyed!r}, value_encoding={self.value_encoding})"
        )


class Operator:
    """A stream operator: subclass it and implement :meth:`process`.

    One instance runs per subtask. Its state has two parts:

    - keyed state, a value per key: a :class:`~cairn_sdk.KeyedState` attribute (at most
      one). The host stores it by key group, so the job can change parallelism across a
      savepoint, and ``cairn state`` can show it.
    - operator-wide state, small and not per key: by default the other attributes whose
      names do not start with ``_``, pickled whenever the host takes a checkpoint. Keep what
      is not state (caches, compiled patterns) in ``_private`` attributes, set in
      :meth:`open`.

    For an encoding of your own — one other code (or another language) can read — override
    :meth:`snapshot` and :meth:`restore` (and :meth:`restore_keyed` to migrate keyed state),
    and number the encoding with :attr:`STATE_VERSION`.
    """

    #: The version of this operator's state encoding (both parts), stored with every
    #: snapshot and handed back on restore. Raise it when an encoding changes, and teach
    #: :meth:`restore` and :meth:`restore_keyed` to read (migrate) the older versions.
    STATE_VERSION = 1

    #: How operator-wide state is shared out when the parallelism changes.
    OPERATOR_STATE_MODE = OperatorStateMode.SPLIT

    def open(self, ctx: Context) -> None:
        """Called when the subtask starts, and again after its state was restored."""

    def process(self, record: Record, out: Emitter) -> None:
        """Processes one record, emitting any number of records to ``out``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement process")

    def on_timer(self, timer: Timer, out: Emitter) -> None:
        """A timer this operator registered (:func:`cairn_sdk.host.register_timer`) fired:
        ``timer`` has its ``domain``, ``key`` and ``timestamp``, and reaches the key's keyed
        state as a record does (``self.state.get(timer)``). Emits any number of records."""
        raise Error(
            f"a timer fired (key {timer.key!r}, {timer.domain.value} {timer.timestamp}), but "
            f"{type(self).__name__} does not implement Operator.on_timer"
        )

    def finish(self, out: Emitter) -> None:
        """All inputs have ended (bounded input), and every event-time timer has fired: emit
        any last records."""

    def snapshot(self) -> bytes:
        """The operator-wide state. By default the public attributes but the keyed state,
        pickled; ``b""`` (none) when there are none."""
        state = {
            k: v
            for k, v in vars(self).items()
            if not k.startswith("_") and not isinstance(v, KeyedState)
        }
        if not state:
            return b""
        return pickle.dumps(state, protocol=4)

    def restore(self, data: bytes, version: int) -> None:
        """Restores operator-wide state from :meth:`snapshot` — possibly written by other
        code, in encoding ``version``; after a rescale, called once for each old subtask's
        state this subtask gets (see :attr:`OPERATOR_STATE_MODE`), or not at all. Keyed
        state is restored before. By default only this operator's own
        :attr:`STATE_VERSION` is accepted, and the pickled attributes are set back."""
        self._check_version(version, "restore")
        state = pickle.loads(data)
        if not isinstance(state, dict):
            raise Error(
                f"cannot decode state: expected pickled attributes, got {type(state).__name__}"
            )
        vars(self).update(state)

    def restore_keyed(self, chunk: KeyedChunk, version: int) -> None:
        """Restores one key group's keyed state, written in encoding ``version``, before
        :meth:`restore`. By default the chunk goes to the operator's
        :class:`~cairn_sdk.KeyedState` when ``version`` is its own
        :attr:`STATE_VERSION`."""
        self._check_version(version, "restore_keyed")
        state = keyed_state_of(self)
        if state is None:
            raise Error(
                f"the state has keyed state (key group {chunk.key_group}), but "
                f"{type(self).__name__} has no KeyedState attribute to restore it into"
            )
        state.restore(chunk)

    def _check_version(self, version: int, method: str) -> None:
        if version != self.STATE_VERSION:
            raise Error(
                f"the state is in encoding version {version}, {type(self).__name__} reads "
                f"version {self.STATE_VERSION}; override Operator.{method} to migrate it"
            )

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
        out = op.process(0, PackedBatch.of([Record(b"a", b"")]), key_groups=[7])
    """

    __slots__ = ("operator", "context", "_keyed", "_out", "_process")

    def __init__(self, operator: Operator, context: Context) -> None:
        self.operator = operator
        self.context = context
        self._keyed = keyed_state_of(operator)
        if self._keyed is not None:
            self._keyed.open(context.key_groups, context.key_group)
        self._out = Emitter()
        self._process = operator.process

    @staticmethod
    def open(job: Job, context: Context, name: str) -> "OperatorInstance":
        """Creates and opens operator ``name`` of ``job``."""
        operator = job.operator(name)
        if operator is None:
            raise Error(f"this job has no operator named {name!r}")
        instance = OperatorInstance(operator, context)
        operator.open(context)
        return instance

    def process(
        self, input: int, batch: PackedBatch, key_groups: Sequence[int] = ()
    ) -> PackedBatch:
        """Processes a batch (anything with ``data``, ``offsets`` and ``timestamps``) that
        arrived on input ``input``; returns what the operator emitted. On a by-key input
        ``key_groups`` has each record's key group (the host's ``keys.key-group``); on
        others it is empty."""
        check(batch)
        host.new_call()
        if key_groups and 2 * len(key_groups) != len(batch.offsets):
            raise Error("malformed batch: key groups do not match records")
        data = batch.data
        offsets = iter(batch.offsets)
        times = (
            [None if t == NO_TIMESTAMP else t for t in batch.timestamps]
            if batch.timestamps
            else repeat(None)
        )
        groups = key_groups or repeat(None)
        process = self._process
        out = self._out
        start = 0
        # One loop per batch, no call per record but the operator's own.
        for (key_end, value_end), t, g in zip(zip(offsets, offsets), times, groups):
            process(Record(data[start:key_end], data[key_end:value_end], t, input, g), out)
            start = value_end
        return out.take()

    def on_timer(
        self, domain: TimeDomain, timers: PackedBatch, key_groups: Sequence[int]
    ) -> PackedBatch:
        """Timers of ``domain`` fired, in firing order: ``timers`` has a record per timer (its
        key and timestamp, no value) and ``key_groups`` each one's key group. Calls the
        operator's :meth:`Operator.on_timer` once per timer; returns what it emitted."""
        check(timers)
        n = len(timers.offsets) // 2
        if len(key_groups) != n or len(timers.timestamps) != n:
            raise Error("malformed timers: each needs a timestamp and a key group")
        host.new_call()
        data = timers.data
        offsets = iter(timers.offsets)
        on_timer = self.operator.on_timer
        out = self._out
        start = 0
        for (key_end, value_end), t, g in zip(zip(offsets, offsets), timers.timestamps, key_groups):
            if t == NO_TIMESTAMP:
                raise Error("the host fired a timer without a timestamp")
            on_timer(Timer(domain, data[start:key_end], t, g), out)
            start = value_end
        return out.take()

    def finish(self) -> PackedBatch:
        host.new_call()
        self.operator.finish(self._out)
        return self._out.take()

    def snapshot(self) -> Snapshot:
        """Both parts of the state, as the host stores them."""
        operator = self.operator
        data = operator.snapshot()
        if data is None:
            data = b""
        elif type(data) is not bytes:
            if not isinstance(data, (bytearray, memoryview)):
                raise Error(
                    f"{type(operator).__name__}.snapshot returned "
                    f"{type(data).__name__}, not bytes"
                )
            data = bytes(data)
        keyed = self._keyed
        return Snapshot(
            type(operator).STATE_VERSION,
            [data] if data else [],
            type(operator).OPERATOR_STATE_MODE,
            keyed.snapshot() if keyed is not None else [],
            keyed.codec.encoding if keyed is not None else ValueEncoding.BYTES,
        )

    def restore_keyed(self, version: int, chunks: Sequence[KeyedChunk]) -> None:
        """Adds keyed state, before :meth:`restore`."""
        for chunk in chunks:
            self.operator.restore_keyed(chunk, version)

    def restore(self, version: int, operator_state: Sequence[bytes]) -> None:
        """Restores operator-wide state, last, and opens the operator again."""
        for item in operator_state:
            self.operator.restore(item, version)
        self.operator.open(self.context)

    def checkpoint_complete(self, checkpoint_id: int) -> None:
        self.operator.checkpoint_complete(checkpoint_id)
