"""What an operator asks of the host during its calls (``process``, ``on_timer``,
``finish``): timers per key (Flink's ``TimerService``), the clocks, side outputs (Flink's
``OutputTag``) and counters of its own::

    from cairn_sdk import host

    class Timeout(cairn.Operator):
        def process(self, record, out):
            host.register_timer(host.TimeDomain.PROCESSING_TIME, record.key,
                                host.current_processing_time() + 50)

        def on_timer(self, timer, out):
            out.emit(b"timed out", key=timer.key, timestamp=timer.timestamp)

In a component these are the host's ``cairn:job@0.4.0`` imports (``timers``, ``outputs``,
``metrics``). Natively (tests) there is no host: whoever drives the operator installs one
with :func:`install` — :class:`cairn_sdk.testing.Harness` does — and without one the calls
raise :class:`~cairn_sdk.Error` (the clocks say that no time has passed).
"""

from enum import Enum
from typing import Optional

from .batch import NO_TIMESTAMP, PackedBatch, Record
from .error import Error


class TimeDomain(Enum):
    """The two clocks timers follow (Flink's ``TimeDomain``); members named as the WIT
    bindings name theirs."""

    #: The operator's input watermark: the lowest over its inputs' (idle ones aside).
    EVENT_TIME = "event-time"
    #: The wall clock of the machine, milliseconds since the Unix epoch.
    PROCESSING_TIME = "processing-time"


class Timer(Record):
    """A timer that fired, as :meth:`Operator.on_timer <cairn_sdk.Operator.on_timer>` gets it:
    a record of its ``key`` (no value) at its ``timestamp``, with its key's ``key_group``, so
    that :class:`~cairn_sdk.KeyedState` reaches the key's state with it as with a record of a
    by-key input; and its ``domain``."""

    __slots__ = ("domain",)

    def __init__(self, domain: TimeDomain, key: bytes, timestamp: int, key_group: int) -> None:
        super().__init__(key, b"", timestamp, 0, key_group)
        self.domain = domain

    def __repr__(self) -> str:
        return (
            f"Timer({self.domain}, key={self.key!r}, timestamp={self.timestamp}, "
            f"key_group={self.key_group})"
        )


class Host:
    """The host's side of the calls below, for operators run natively: subclass it and
    :func:`install` an instance (:class:`cairn_sdk.testing.Harness` does)."""

    def register_timer(self, domain: TimeDomain, key: bytes, timestamp: int) -> None:
        raise _no_host()

    def delete_timer(self, domain: TimeDomain, key: bytes, timestamp: int) -> None:
        raise _no_host()

    def current_watermark(self) -> int:
        return NO_TIMESTAMP

    def current_processing_time(self) -> int:
        return 0

    def emit_to(self, side_output: str, batch: PackedBatch) -> None:
        raise _no_host()

    def counter_add(self, name: str, delta: int) -> None:
        raise _no_host()


def _no_host() -> Error:
    return Error(
        "no host: timers, side outputs and counters need one (cairn runs the job as a "
        "component; natively, cairn_sdk.host.install or cairn_sdk.testing.Harness)"
    )


# The host installed (None: none), and the one the calls below use: it, or a Host that
# refuses them.
_installed: Optional[Host] = None
_host: Host = Host()

# The watermark of the current call, once asked. The host advances an operator's watermark
# only between its calls, and a call to the host costs several microseconds in a component:
# a window operator asks for every record.
_watermark: Optional[int] = None


def new_call() -> None:
    """A call into the operator begins (:class:`~cairn_sdk.OperatorInstance` says so): the
    watermark may have moved since the last."""
    global _watermark
    _watermark = None


def install(host: Optional[Host]) -> Optional[Host]:
    """Makes ``host`` the host (``None``: none); returns the one before (``None`` if none)."""
    global _installed, _host, _watermark
    before = _installed
    _installed = host
    _host = Host() if host is None else host
    _watermark = None
    return before


def register_timer(domain: TimeDomain, key: bytes, timestamp: int) -> None:
    """Registers a timer for ``key`` at ``timestamp`` (ms) in ``domain``: the operator's
    ``on_timer`` gets it once the watermark (event time) or the clock (processing time)
    reaches it. Once per key, domain and timestamp, however often it is registered. ``key``
    must be the key of a record this subtask got from a by-key input."""
    _host.register_timer(domain, key, timestamp)


def delete_timer(domain: TimeDomain, key: bytes, timestamp: int) -> None:
    """Deletes the timer of ``key`` at ``timestamp`` in ``domain``, if there is one."""
    _host.delete_timer(domain, key, timestamp)


def current_watermark() -> int:
    """The operator's input watermark (ms): :data:`~cairn_sdk.NO_TIMESTAMP` (-2**63) before
    the first, 2**63 - 1 once every input has ended. It stays the same during a call."""
    global _watermark
    if _watermark is None:
        _watermark = _host.current_watermark()
    return _watermark


def current_processing_time() -> int:
    """The wall clock, in milliseconds since the Unix epoch."""
    return _host.current_processing_time()


def emit_to(side_output: str, batch: PackedBatch) -> None:
    """Emits ``batch`` (``PackedBatch.of(records)``, or an :class:`~cairn_sdk.Emitter`'s
    ``take()``) to side output ``side_output``: the nodes whose input names it receive it.
    Names are up to 64 characters."""
    if len(batch):
        _host.emit_to(side_output, batch)


def counter_add(name: str, delta: int = 1) -> None:
    """Adds ``delta`` to this subtask's counter ``name`` (in ``/metrics`` and Flink's vertex
    metrics). Names are up to 64 ASCII letters, digits, ``_`` or ``.``."""
    _host.counter_add(name, delta)
