"""Windows over event time: Flink's ``WindowOperator`` with its ``EventTimeTrigger``, for an
incremental aggregate per key and window.

A job subclasses :class:`Aggregate` (the window kind from the node's options, an
accumulator per key and window, what to emit for it) and names ``Windowed.of(MyAggregate)``
as an operator on a ``BY_KEY`` input that carries timestamps and watermarks::

    class WordsPerWindow(cairn.Aggregate):
        def windows(self, ctx):
            return cairn.Windows.tumbling(int(ctx.option("window", "1000")))

        def create_accumulator(self):
            return 0

        def add(self, count, record):
            return count + 1

        def emit(self, key, window, count, out):
            out.emit(b"%d\\t%s\\t%d" % (window.start, key, count), key=key)

    class Job(cairn.Job):
        operators = {"count": cairn.Windowed.of(WordsPerWindow)}

- Each record goes to its windows (:meth:`Windows.tumbling`, :meth:`Windows.sliding`,
  :meth:`Windows.session`) and is added to each one's accumulator: a window keeps one
  accumulator per key, never the records.
- A window fires (its result is emitted, stamped with the window's last millisecond) once
  the watermark passes its end, by an event-time timer per key and window end.
- With :meth:`~Windows.allowed_lateness`, a window's state is kept that much longer, and each
  record arriving within it fires the window again with the updated result (Flink's late
  firing). Then the state is freed.
- A record all of whose windows are past that is late: it is dropped and counted in the
  subtask's ``numLateRecordsDropped`` counter, or, with :meth:`~Windows.late_records_to`,
  sent to that side output instead (Flink's ``sideOutputLateData``).

State is the per-key list of open windows and their accumulators, kept in a
:class:`~cairn_sdk.KeyedState`: it is checkpointed per key group beside the timers, so
windows rescale.
"""

import pickle
from typing import Any, ClassVar, List, NamedTuple, Optional, Tuple, Type

from . import host
from .batch import Emitter, PackedBatch, Record
from .error import Error
from .host import TimeDomain, Timer
from .keyed import Codec, KeyedState, ValueEncoding
from .operator import Context, Operator

#: Flink's metric of records dropped for being late.
LATE_RECORDS_DROPPED = "numLateRecordsDropped"

_S64_MIN, _S64_MAX = -(2**63), 2**63 - 1


class Window(NamedTuple):
    """A window of event time: ``start`` included, ``end`` excluded, in milliseconds.
    Ordered by start, then end."""

    start: int
    end: int

    @property
    def max_timestamp(self) -> int:
        """Its last millisecond: the watermark must reach it for the window to fire, and its
        results carry it as their timestamp."""
        return self.end - 1

    def meets(self, other: "Window") -> bool:
        """Whether the two overlap or touch (session windows merge then, as in Flink)."""
        return self.start <= other.end and other.start <= self.end

    def covers(self, other: "Window") -> bool:
        """Whether ``other`` lies within this window."""
        return self.start <= other.start and other.end <= self.end

    def cover(self, other: "Window") -> "Window":
        """The smallest window holding both."""
        return Window(min(self.start, other.start), max(self.end, other.end))


def _ms(value: int, what: str) -> int:
    if type(value) is not int or not 0 < value <= _S64_MAX:
        raise Error(f"a window's {what} must be 1 ms or more, not {value!r}")
    return value


class Windows:
    """A window kind, its allowed lateness, and where late records go. Make one with
    :meth:`tumbling`, :meth:`sliding` or :meth:`session`."""

    __slots__ = ("kind", "size", "slide", "allowed_lateness_ms", "late_output")

    def __init__(
        self,
        kind: str,
        size: int,
        slide: int,
        allowed_lateness_ms: int = 0,
        late_output: Optional[str] = None,
    ) -> None:
        #: ``"tumbling"``, ``"sliding"`` or ``"session"``.
        self.kind = kind
        #: The windows' length (a session's gap).
        self.size = size
        #: How far apart windows start (tumbling: ``size``; a session: unused, ``size``).
        self.slide = slide
        self.allowed_lateness_ms = allowed_lateness_ms
        #: The side output late records go to; ``None``: dropped and counted.
        self.late_output = late_output

    @staticmethod
    def tumbling(size_ms: int) -> "Windows":
        """Flink's ``TumblingEventTimeWindows.of(size)``: ``[t - t mod size, … + size)``."""
        size = _ms(size_ms, "size")
        return Windows("tumbling", size, size)

    @staticmethod
    def sliding(size_ms: int, slide_ms: int) -> "Windows":
        """Flink's ``SlidingEventTimeWindows.of(size, slide)``: a record is in the
        ``size / slide`` windows starting every ``slide`` that hold it."""
        size, slide = _ms(size_ms, "size"), _ms(slide_ms, "slide")
        if slide > size:
            raise Error(
                f"a sliding window's slide ({slide} ms) cannot be longer than its size "
                f"({size} ms)"
            )
        return Windows("sliding", size, slide)

    @staticmethod
    def session(gap_ms: int) -> "Windows":
        """Flink's ``EventTimeSessionWindows.withGap(gap)``: a window per burst of records
        less than ``gap`` apart. Needs :meth:`Aggregate.merge`."""
        gap = _ms(gap_ms, "gap")
        return Windows("session", gap, gap)

    def allowed_lateness(self, ms: int) -> "Windows":
        """Flink's ``allowedLateness``: keeps each window ``ms`` past its end, firing it again
        for every record that arrives in that time. Default 0."""
        if type(ms) is not int or ms < 0:
            raise Error(f"a window's allowed lateness must be 0 ms or more, not {ms!r}")
        return Windows(self.kind, self.size, self.slide, min(ms, _S64_MAX), self.late_output)

    def late_records_to(self, name: str) -> "Windows":
        """Flink's ``sideOutputLateData``: late records go to side output ``name`` as they
        came, instead of being dropped."""
        return Windows(self.kind, self.size, self.slide, self.allowed_lateness_ms, name)

    def assign(self, timestamp: int) -> List[Window]:
        """The windows a record at ``timestamp`` belongs to (Python's ``%`` is Euclidean for
        a positive divisor, as Flink's window start is). A window reaching below the
        smallest timestamp starts there."""
        size = self.size
        if self.kind == "session":
            return [Window(timestamp, min(timestamp + size, _S64_MAX))]
        slide = self.slide
        start = timestamp - timestamp % slide
        if slide == size:
            start = max(start, _S64_MIN)
            return [Window(start, min(start + size, _S64_MAX))]
        windows = []
        while start > timestamp - size:
            if start <= _S64_MIN:
                windows.append(Window(_S64_MIN, _S64_MIN + size))
                break
            windows.append(Window(start, min(start + size, _S64_MAX)))
            start -= slide
        return windows

    def cleanup_time(self, window: Window) -> int:
        """When the state of ``window`` is freed: its last millisecond plus the allowed
        lateness."""
        return min(window.end - 1 + self.allowed_lateness_ms, _S64_MAX)

    def is_late(self, window: Window, watermark: int) -> bool:
        """Whether ``window`` is past its allowed lateness at ``watermark`` (Flink's
        ``isWindowLate``)."""
        return min(window.end - 1 + self.allowed_lateness_ms, _S64_MAX) <= watermark

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Windows):
            return NotImplemented
        return self._fields() == other._fields()

    def _fields(self) -> tuple:
        return (self.kind, self.size, self.slide, self.allowed_lateness_ms, self.late_output)

    def __repr__(self) -> str:
        late = "" if self.late_output is None else f", late_records_to={self.late_output!r}"
        return (
            f"Windows({self.kind}, size={self.size}, slide={self.slide}, "
            f"allowed_lateness={self.allowed_lateness_ms}{late})"
        )


class Aggregate:
    """An aggregate per key and window, computed incrementally (Flink's
    ``AggregateFunction`` with a ``ProcessWindowFunction`` for the result). Subclass it:
    the accumulators are any picklable values."""

    def windows(self, ctx: Context) -> Windows:
        """The windows, from the operator's context (its node's options, set in
        ``describe``)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement windows")

    def create_accumulator(self) -> Any:
        """A new window's accumulator."""
        raise NotImplementedError(f"{type(self).__name__} does not implement create_accumulator")

    def add(self, acc: Any, record: Record) -> Any:
        """Adds a record to a window's accumulator; returns the accumulator (the same one,
        changed, or a new one)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement add")

    def merge(self, acc: Any, other: Any) -> Any:
        """Merges ``other`` into ``acc`` when session windows merge; returns the result."""
        raise Error(f"session windows merge accumulators: implement {type(self).__name__}.merge")

    def emit(self, key: bytes, window: Window, acc: Any, out: Emitter) -> None:
        """Emits the result of ``window`` for ``key`` (every record emitted gets the window's
        last millisecond as its timestamp)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement emit")


def _encode_panes(panes: List[list]) -> bytes:
    return pickle.dumps([(w.start, w.end, acc) for w, acc in panes], protocol=4)


def _decode_panes(data: bytes) -> List[list]:
    try:
        return [[Window(start, end), acc] for start, end, acc in pickle.loads(data)]
    except Exception as e:
        raise Error(f"cannot decode a key's windows: {type(e).__name__}: {e}") from None


#: A key's open windows in keyed state: pickled ``(start, end, accumulator)`` triples, in
#: window order.
PANES = Codec("panes", ValueEncoding.BYTES, _encode_panes, _decode_panes)


class Windowed(Operator):
    """The window operator for an :class:`Aggregate`: name ``Windowed.of(MyAggregate)`` in
    :attr:`Job.operators <cairn_sdk.Job.operators>`, on a ``BY_KEY`` input.

    Its keyed state is, per key, the list of its open windows and their accumulators,
    ``[window, acc]`` pairs ordered by window."""

    #: The aggregate class (set by :meth:`of`).
    aggregate: ClassVar[Type[Aggregate]]

    @classmethod
    def of(cls, aggregate: Type[Aggregate]) -> Type["Windowed"]:
        """The window operator class for ``aggregate`` (an :class:`Aggregate` subclass)."""
        if not (isinstance(aggregate, type) and issubclass(aggregate, Aggregate)):
            raise TypeError(f"Windowed.of needs a cairn_sdk.Aggregate subclass, got {aggregate!r}")
        name = f"Windowed[{aggregate.__name__}]"
        return type(name, (cls,), {"aggregate": aggregate, "__qualname__": name})

    def __init__(self) -> None:
        aggregate = getattr(type(self), "aggregate", None)
        if aggregate is None:
            raise Error("name the window operator as Windowed.of(MyAggregate)")
        self.panes = KeyedState(PANES)
        self._aggregate: Aggregate = aggregate()
        self._windows: Optional[Windows] = None

    def open(self, ctx: Context) -> None:
        windows = self._aggregate.windows(ctx)
        if not isinstance(windows, Windows):
            raise Error(
                f"{type(self._aggregate).__name__}.windows returned {windows!r}, not Windows"
            )
        self._windows = windows

    def process(self, record: Record, out: Emitter) -> None:
        timestamp = record.timestamp
        if timestamp is None:
            raise Error(
                "a record without a timestamp reached an event-time window: give its source a "
                "timestamp per record (and a watermark strategy)"
            )
        windows = self._windows
        if windows is None:
            raise Error("the window operator was not opened")
        watermark = host.current_watermark()
        panes = self.panes.get(record)
        opened = panes is None
        if opened:
            panes = []
        key = record.key
        add = self._aggregate.add
        cleanup_time = windows.cleanup_time
        merge = windows.kind == "session"
        added = False
        for window in windows.assign(timestamp):
            i, new = self._merge_into(panes, window) if merge else self._pane(panes, window)
            pane = panes[i]
            window = pane[0]
            if cleanup_time(window) <= watermark:
                # Only a new window can be late: an open one's cleanup timer would have fired
                # before the watermark got here.
                del panes[i]
                continue
            added = True
            pane[1] = add(pane[1], record)
            if new:
                self._register(key, window, watermark)
            if window.end - 1 <= watermark:
                # Within the allowed lateness of a window that fired: fire it again.
                self._fire(key, window, pane[1], out)
        if not added:
            self._late(record, windows)
        elif opened:
            self.panes.set(record, panes)

    def on_timer(self, timer: Timer, out: Emitter) -> None:
        if timer.domain is not TimeDomain.EVENT_TIME:
            return
        panes = self.panes.get(timer)
        if panes is None:
            return
        at = timer.timestamp
        cleanup_time = self._windows.cleanup_time  # type: ignore[union-attr]
        kept = []
        for pane in panes:
            window = pane[0]
            if window.end - 1 == at:
                self._fire(timer.key, window, pane[1], out)
            if cleanup_time(window) > at:
                kept.append(pane)
        if not kept:
            self.panes.remove(timer)
        elif len(kept) != len(panes):
            panes[:] = kept

    def _pane(self, panes: List[list], window: Window) -> Tuple[int, bool]:
        """The index of the pane of ``window`` in ``panes`` (ordered by window), added if it
        is not there, and whether it is new (its timers are not set)."""
        i = 0
        for pane in panes:
            w = pane[0]
            if w == window:
                return i, False
            if w > window:
                break
            i += 1
        panes.insert(i, [window, self._aggregate.create_accumulator()])
        return i, True

    def _merge_into(self, panes: List[list], window: Window) -> Tuple[int, bool]:
        """Merges session window ``window`` with every window of ``panes`` it meets,
        directly or through others, into one pane; returns its index and whether it is a new
        window. (Windows in ``panes`` never meet each other, so the merged window is an old
        one only when ``window`` lies within it.) As in Flink, a session merges before its
        lateness is judged: a record whose own window is late counts in an open one it
        meets."""
        aggregate = self._aggregate
        merged = window
        accs = []
        new = True
        rest = panes[:]
        while True:
            i = next((i for i, pane in enumerate(rest) if pane[0].meets(merged)), None)
            if i is None:
                break
            w, other = rest.pop(i)
            new = new and not w.covers(merged)
            merged = merged.cover(w)
            accs.append(other)
        if accs:
            acc = accs[0]
            for other in accs[1:]:
                acc = aggregate.merge(acc, other)
        else:
            acc = aggregate.create_accumulator()
        i = 0
        while i < len(rest) and rest[i][0] < merged:
            i += 1
        rest.insert(i, [merged, acc])
        panes[:] = rest
        return i, new

    def _register(self, key: bytes, window: Window, watermark: int) -> None:
        """Registers the timers a new ``window`` of ``key`` needs at ``watermark``: when it
        fires (unless the watermark is past that: it fires at once) and when its state goes
        (the same timer without allowed lateness). Timers are never deleted: a timer is a
        key and a timestamp, which other windows of the key may share, and one whose window
        merged away finds nothing to do."""
        max_timestamp = window.end - 1
        cleanup = self._windows.cleanup_time(window)  # type: ignore[union-attr]
        if watermark < max_timestamp < cleanup:
            host.register_timer(TimeDomain.EVENT_TIME, key, max_timestamp)
        host.register_timer(TimeDomain.EVENT_TIME, key, cleanup)

    def _fire(self, key: bytes, window: Window, acc: Any, out: Emitter) -> None:
        """Emits ``window``'s result for ``key``, stamped with the window's last
        millisecond."""
        first = len(out)
        self._aggregate.emit(key, window, acc, out)
        out.set_timestamps_from(first, window.end - 1)

    def _late(self, record: Record, windows: Windows) -> None:
        """A record behind every window it could be in: sent on, or dropped and counted."""
        if windows.late_output is not None:
            host.emit_to(windows.late_output, PackedBatch.of([record]))
        else:
            host.counter_add(LATE_RECORDS_DROPPED, 1)
