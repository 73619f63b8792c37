"""Records in and out: the packed batch encoding of ``cairn:job/types.packed-batch``.

A batch crosses the component boundary as one byte buffer holding every key and value, the
``2n`` end offsets of the ``n`` records' keys and values, and no or ``n`` timestamps. The SDK
decodes it into :class:`Record` objects on the way in and packs what an operator emits with
an :class:`Emitter` on the way out, so operators never see the encoding.
"""

from itertools import accumulate
from typing import Iterator, List, Optional, Union

from .error import Error

#: Marks a record without a timestamp in a batch where others have one (the smallest s64).
NO_TIMESTAMP = -(2**63)

#: What :meth:`Emitter.emit` takes for a key or value: bytes (or any bytes-like object), or
#: ``str``, encoded as UTF-8.
BytesOrStr = Union[bytes, bytearray, memoryview, str]


class Record:
    """One record: ``key`` and ``value`` as ``bytes``, ``timestamp`` in milliseconds since the
    Unix epoch or ``None``, ``input``, the index (in the node's inputs) of the input it
    arrived on, and ``key_group``, its key's key group when that input is partitioned by key
    (else ``None``). A record without a key has ``key == b""``.
    """

    __slots__ = ("key", "value", "timestamp", "input", "key_group")

    def __init__(
        self,
        key: bytes,
        value: bytes,
        timestamp: Optional[int] = None,
        input: int = 0,
        key_group: Optional[int] = None,
    ) -> None:
        self.key = key
        self.value = value
        self.timestamp = timestamp
        self.input = input
        self.key_group = key_group

    def key_str(self) -> str:
        """The key as text (UTF-8); ``""`` for a record without a key."""
        try:
            return self.key.decode()
        except UnicodeDecodeError as e:
            raise Error(f"key is not UTF-8: {e}") from None

    def value_str(self) -> str:
        """The value as text (UTF-8)."""
        try:
            return self.value.decode()
        except UnicodeDecodeError as e:
            raise Error(f"value is not UTF-8: {e}") from None

    def __repr__(self) -> str:
        return (
            f"Record(key={self.key!r}, value={self.value!r}, "
            f"timestamp={self.timestamp!r}, input={self.input!r}, "
            f"key_group={self.key_group!r})"
        )

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Record):
            return NotImplemented
        return (self.key, self.value, self.timestamp, self.input, self.key_group) == (
            other.key,
            other.value,
            other.timestamp,
            other.input,
            other.key_group,
        )


class PackedBatch:
    """A batch in the wire encoding: ``data`` (every key and value), ``offsets`` (``2n`` end
    offsets: key, value, key, value, ...) and ``timestamps`` (empty, or one per record with
    :data:`NO_TIMESTAMP` for none). Operators see it only in tests, through
    :class:`~cairn_sdk.OperatorInstance`."""

    __slots__ = ("data", "offsets", "timestamps")

    def __init__(
        self,
        data: bytes = b"",
        offsets: Optional[List[int]] = None,
        timestamps: Optional[List[int]] = None,
    ) -> None:
        self.data = data
        self.offsets = [] if offsets is None else offsets
        self.timestamps = [] if timestamps is None else timestamps

    @staticmethod
    def of(records: "List[Record]") -> "PackedBatch":
        """Packs records (for tests): ``PackedBatch.of([Record(b"k", b"v")])``."""
        out = Emitter()
        for record in records:
            out.push(record)
        return out.take()

    def __len__(self) -> int:
        return len(self.offsets) // 2

    def records(self, input: int = 0) -> Iterator[Record]:
        """The records, in order, tagged with ``input``. Checks the encoding first."""
        check(self)
        return iter_records(self, input)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PackedBatch):
            return NotImplemented
        return (self.data, self.offsets, self.timestamps) == (
            other.data,
            other.offsets,
            other.timestamps,
        )

    def __repr__(self) -> str:
        return f"PackedBatch({list(self.records())!r})"


def check(batch: PackedBatch) -> None:
    """Checks a batch's encoding, as every SDK does (the malformed vectors of
    wit/vectors/packed-batch.txt): an even number of offsets, in order and within ``data``,
    and no or one timestamp per record."""
    offsets = batch.offsets
    n = len(offsets)
    if n & 1:
        raise Error("malformed batch: odd number of offsets")
    if batch.timestamps and 2 * len(batch.timestamps) != n:
        raise Error("malformed batch: timestamps do not match records")
    if n:
        # Sorting a sorted list is one pass in C: the cheapest check of every offset's order.
        ordered = offsets if type(offsets) is list else list(offsets)
        if ordered != sorted(ordered):
            raise Error("malformed batch: offsets out of order")
        if ordered[0] < 0 or ordered[-1] > len(batch.data):
            raise Error("malformed batch: offsets out of range")


def iter_records(batch: PackedBatch, input: int) -> Iterator[Record]:
    data = batch.data
    offsets = iter(batch.offsets)
    start = 0
    if batch.timestamps:
        for (key_end, value_end), t in zip(zip(offsets, offsets), batch.timestamps):
            yield Record(
                data[start:key_end],
                data[key_end:value_end],
                None if t == NO_TIMESTAMP else t,
                input,
            )
            start = value_end
    else:
        for key_end, value_end in zip(offsets, offsets):
            yield Record(data[start:key_end], data[key_end:value_end], None, input)
            start = value_end


class Emitter:
    """Collects the records an operator emits, packed into the one buffer returned to the
    host for the whole batch."""

    # Keys and values are kept as a flat list (key, value, key, value, ...) and packed once
    # per batch, in take(): the offsets are the running sum of their lengths.
    __slots__ = ("_parts", "_timestamps")

    def __init__(self) -> None:
        self._parts: List[bytes] = []
        self._timestamps: List[int] = []

    def emit(
        self,
        value: BytesOrStr = b"",
        key: BytesOrStr = b"",
        timestamp: Optional[int] = None,
    ) -> None:
        """Emits a record. ``key`` routes it under ``by-key`` partitioning downstream (empty:
        no key); ``timestamp`` is in milliseconds since the Unix epoch. ``str`` keys and
        values are encoded as UTF-8; anything else must be bytes-like."""
        parts = self._parts
        parts.append(key.encode() if type(key) is str else key)  # type: ignore[union-attr,arg-type]
        parts.append(value.encode() if type(value) is str else value)  # type: ignore[union-attr,arg-type]
        if timestamp is not None or self._timestamps:
            self._add_timestamp(timestamp)

    def push(self, record: Record) -> None:
        """Emits a record as it is, with its key and timestamp."""
        self.emit(record.value, record.key, record.timestamp)

    def _add_timestamp(self, timestamp: Optional[int]) -> None:
        timestamps = self._timestamps
        if timestamp is None:
            timestamps.append(NO_TIMESTAMP)
            return
        if type(timestamp) is not int or not NO_TIMESTAMP < timestamp < 2**63:
            del self._parts[-2:]
            raise Error(
                f"timestamp {timestamp!r} is not an int of milliseconds in the s64 range "
                '(the smallest s64 marks "no timestamp")'
            )
        # The first timestamp of a batch back-fills "none" for the records before it.
        missing = len(self._parts) // 2 - 1 - len(timestamps)
        if missing:
            timestamps.extend([NO_TIMESTAMP] * missing)
        timestamps.append(timestamp)

    def set_timestamps_from(self, first: int, timestamp: int) -> None:
        """Gives the records emitted since the ``first`` (an earlier ``len(out)``) the
        timestamp ``timestamp``: how a window stamps its results with its last
        millisecond."""
        if type(timestamp) is not int or not NO_TIMESTAMP < timestamp < 2**63:
            raise Error(f"timestamp {timestamp!r} is not an int of milliseconds in the s64 range")
        n = len(self._parts) // 2
        if first >= n:
            return
        timestamps = self._timestamps
        if len(timestamps) < n:
            timestamps.extend([NO_TIMESTAMP] * (n - len(timestamps)))
        timestamps[first:] = [timestamp] * (n - first)

    def __len__(self) -> int:
        """Number of records emitted so far."""
        return len(self._parts) // 2

    def size_bytes(self) -> int:
        """Bytes of keys and values emitted so far."""
        return sum(map(len, self._parts))

    def take(self) -> PackedBatch:
        """Takes the records emitted so far, leaving the emitter empty."""
        parts = self._parts
        timestamps = self._timestamps
        self._parts = []
        self._timestamps = []
        try:
            data = b"".join(parts)
        except TypeError:
            bad = next(p for p in parts if not isinstance(p, (bytes, bytearray, memoryview)))
            raise Error(
                f"emitted a key or value of type {type(bad).__name__} ({bad!r:.40}): "
                "keys and values must be bytes or str"
            ) from None
        if len(data) >= 1 << 32:
            raise Error("emitted batch larger than 4 GiB")
        offsets = list(accumulate(map(len, parts)))
        if len(offsets) and offsets[-1] != len(data):
            # Only multi-byte memoryviews measure other than in bytes.
            offsets = list(accumulate(len(bytes(p)) for p in parts))
        return PackedBatch(data, offsets, timestamps)
