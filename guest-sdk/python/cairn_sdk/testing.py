"""Drive an operator natively, as the host would (Flink's operator test harnesses): records
in by key, the watermark and the clock moved by hand, timers fired in order, side outputs
and counters kept for the test to read::

    from cairn_sdk.testing import Harness

    h = Harness.open(MyJob(), "count", options=[("window", "10")])
    assert h.process([("a", "", 1), ("a", "", 5)]) == []
    assert h.advance_watermark(9) == [(b"a", b"0\\ta\\t2", 9)]
    assert h.finish() == [] and h.timers() == 0

Records go in as ``(key, value, timestamp)`` (``str`` or ``bytes``; timestamp ``None`` for
none) on input 0, as from a ``BY_KEY`` input, and come out as ``(key, value, timestamp)``
with ``bytes`` keys and values.
"""

import zlib
from typing import Dict, List, Optional, Sequence, Set, Tuple, Union

from . import host
from .batch import NO_TIMESTAMP, Emitter, PackedBatch
from .host import TimeDomain
from .operator import Context, Job, OperatorInstance, Snapshot

#: The number of key groups of the harness's job: its one subtask owns them all.
MAX_PARALLELISM = 128

#: How many timers one ``on-timer`` call gets at most (the host's batches are bounded too).
TIMERS_PER_CALL = 1024

Text = Union[str, bytes]
TestRecord = Tuple[bytes, bytes, Optional[int]]


def key_group(key: bytes) -> int:
    """The harness's stand-in for the host's key groups (xxh3): any fixed function of the key
    does."""
    return zlib.crc32(key) % MAX_PARALLELISM


def _bytes(text: Text) -> bytes:
    return text.encode() if isinstance(text, str) else bytes(text)


def _records(batch: PackedBatch) -> List[TestRecord]:
    return [(r.key, r.value, r.timestamp) for r in batch.records()]


class _TestHost(host.Host):
    """What the harness's host keeps: the timers, time, and what the operator sent aside."""

    def __init__(self) -> None:
        # Per domain, the timers as (timestamp, key): the order they fire in.
        self.timers: Dict[TimeDomain, Set[Tuple[int, bytes]]] = {d: set() for d in TimeDomain}
        self.watermark = NO_TIMESTAMP
        self.now = 0
        self.side_outputs: Dict[str, List[TestRecord]] = {}
        self.counters: Dict[str, int] = {}

    def register_timer(self, domain: TimeDomain, key: bytes, timestamp: int) -> None:
        self.timers[domain].add((timestamp, bytes(key)))

    def delete_timer(self, domain: TimeDomain, key: bytes, timestamp: int) -> None:
        self.timers[domain].discard((timestamp, bytes(key)))

    def current_watermark(self) -> int:
        return self.watermark

    def current_processing_time(self) -> int:
        return self.now

    def emit_to(self, side_output: str, batch: PackedBatch) -> None:
        self.side_outputs.setdefault(side_output, []).extend(_records(batch))

    def counter_add(self, name: str, delta: int) -> None:
        self.counters[name] = self.counters.get(name, 0) + delta

    def pop_due(self, domain: TimeDomain, until: int) -> List[Tuple[int, bytes]]:
        """The first timers (at most :data:`TIMERS_PER_CALL`) due at ``until``, taken."""
        timers = self.timers[domain]
        due = sorted(t for t in timers if t[0] <= until)[:TIMERS_PER_CALL]
        timers.difference_update(due)
        return due


class Harness:
    """One operator subtask owning every key group, with a host of its own: no watermark
    yet, the clock at 0."""

    def __init__(self, instance: OperatorInstance, test_host: _TestHost) -> None:
        self.instance = instance
        self._host = test_host

    @staticmethod
    def open(job: Job, name: str, options: Sequence[Tuple[str, str]] = ()) -> "Harness":
        """Opens operator ``name`` of ``job`` with node options ``options``."""
        ctx = Context(
            operator_uid=name,
            options=list(options),
            max_parallelism=MAX_PARALLELISM,
            key_groups=range(MAX_PARALLELISM),
            key_group=key_group,
        )
        test_host = _TestHost()
        before = host.install(test_host)
        try:
            instance = OperatorInstance.open(job, ctx, name)
        finally:
            host.install(before)
        return Harness(instance, test_host)

    def _call(self, call, *args):  # type: ignore[no-untyped-def]
        """Runs ``call`` with the harness's host installed, as the host lends its own during
        a call."""
        before = host.install(self._host)
        try:
            return call(*args)
        finally:
            host.install(before)

    def process(self, records: Sequence[Tuple[Text, Text, Optional[int]]]) -> List[TestRecord]:
        """Processes records of a by-key input (input 0); returns what the operator
        emitted."""
        batch = Emitter()
        groups = []
        for key, value, timestamp in records:
            key = _bytes(key)
            batch.emit(_bytes(value), key, timestamp)
            groups.append(key_group(key))
        return _records(self._call(self.instance.process, 0, batch.take(), groups))

    def advance_watermark(self, watermark: int) -> List[TestRecord]:
        """Moves the watermark to ``watermark`` (never back), firing the event-time timers it
        passes in order; returns what they emitted."""
        self._host.watermark = max(self._host.watermark, watermark)
        return self._fire(TimeDomain.EVENT_TIME, self._host.watermark)

    def advance_processing_time(self, now: int) -> List[TestRecord]:
        """Moves the clock to ``now`` (never back), firing the processing-time timers it
        passes."""
        self._host.now = max(self._host.now, now)
        return self._fire(TimeDomain.PROCESSING_TIME, self._host.now)

    def finish(self) -> List[TestRecord]:
        """The end of input: the watermark to the end of time, then ``finish``."""
        out = self.advance_watermark(2**63 - 1)
        out.extend(_records(self._call(self.instance.finish)))
        return out

    def _fire(self, domain: TimeDomain, until: int) -> List[TestRecord]:
        out: List[TestRecord] = []
        while True:
            due = self._host.pop_due(domain, until)
            if not due:
                return out
            batch = Emitter()
            for timestamp, key in due:
                batch.emit(b"", key, timestamp)
            groups = [key_group(key) for _, key in due]
            out.extend(_records(self._call(self.instance.on_timer, domain, batch.take(), groups)))

    def side_output(self, name: str) -> List[TestRecord]:
        """The records sent to side output ``name`` so far, taken."""
        return self._host.side_outputs.pop(name, [])

    def counter(self, name: str) -> int:
        """Counter ``name`` (0 if never counted)."""
        return self._host.counters.get(name, 0)

    def timers(self) -> int:
        """How many timers are registered, both domains."""
        return sum(map(len, self._host.timers.values()))

    def snapshot(self) -> Snapshot:
        """The operator's state, as a checkpoint would take it (timers aside: see
        :meth:`restore_into`)."""
        return self._call(self.instance.snapshot)

    def restore_into(
        self, job: Job, name: str, options: Sequence[Tuple[str, str]] = ()
    ) -> "Harness":
        """A new harness for operator ``name`` of ``job``, restored from this one's state and
        timers, with its watermark and clock: a restore from a checkpoint."""
        snapshot = self.snapshot()
        restored = Harness.open(job, name, options)
        target, source = restored._host, self._host
        target.timers = {d: set(timers) for d, timers in source.timers.items()}
        target.watermark, target.now = source.watermark, source.now
        restored._call(restored.instance.restore_keyed, snapshot.version, snapshot.keyed)
        restored._call(restored.instance.restore, snapshot.version, snapshot.operator_state)
        return restored
