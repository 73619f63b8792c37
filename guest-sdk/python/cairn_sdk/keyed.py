"""Keyed state: a value per key, as Flink's ``ValueState`` — the state of "this record's key".

The SDK keeps it per key group and hands it to the host, which stores, splits and merges it
by key group (so the job can change parallelism across a savepoint) and shows it without the
job's code (``cairn state``)::

    class Count(cairn.Operator):
        def __init__(self):
            self.counts = cairn.KeyedState(cairn.U64)

        def process(self, record, out):
            n = self.counts.get(record, 0) + 1
            self.counts.set(record, n)
            out.emit(b"%s\\t%d" % (record.key, n))

An operator keeps at most one :class:`KeyedState` attribute; it is found by its type, and
left out of the operator-wide state. Its records must come from a ``BY_KEY`` input: the host
tells each record's key group (``record.key_group``).
"""

import json
import pickle
import struct
from enum import Enum
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from .error import Error


class ValueEncoding(Enum):
    """How keyed state values are encoded, so that ``cairn state`` can show them."""

    BYTES = "bytes"
    UTF8 = "utf8"
    U64_LE = "u64-le"
    S64_LE = "s64-le"
    F64_LE = "f64-le"
    JSON = "json"


class Codec:
    """How a :class:`KeyedState` encodes its values in a checkpoint: ``encode(value) ->
    bytes``, ``decode(bytes) -> value``, and the :class:`ValueEncoding` tools show them as.
    Use one of :data:`U64`, :data:`S64`, :data:`F64`, :data:`UTF8`, :data:`BYTES`,
    :data:`JSON`, :data:`PICKLE`, or make your own."""

    __slots__ = ("name", "encoding", "encode", "decode")

    def __init__(
        self,
        name: str,
        encoding: ValueEncoding,
        encode: Callable[[Any], bytes],
        decode: Callable[[bytes], Any],
    ) -> None:
        self.name = name
        self.encoding = encoding
        self.encode = encode
        self.decode = decode

    def __repr__(self) -> str:
        return f"Codec({self.name!r}, {self.encoding})"


def _fixed(name: str, fmt: str) -> Codec:
    packer = struct.Struct(fmt)

    def decode(data: bytes) -> Any:
        if len(data) != packer.size:
            raise Error(f"a {name} state value has {len(data)} bytes, not {packer.size}")
        return packer.unpack(data)[0]

    def encode(value: Any) -> bytes:
        try:
            return packer.pack(value)
        except struct.error as e:
            raise Error(f"cannot keep {value!r} as a {name} state value: {e}") from None

    encoding = {"u64": ValueEncoding.U64_LE, "s64": ValueEncoding.S64_LE}.get(
        name, ValueEncoding.F64_LE
    )
    return Codec(name, encoding, encode, decode)


def _utf8_decode(data: bytes) -> str:
    try:
        return data.decode()
    except UnicodeDecodeError as e:
        raise Error(f"a utf8 state value is not UTF-8: {e}") from None


#: An ``int`` in 0..2**64, 8 bytes little-endian.
U64 = _fixed("u64", "<Q")
#: An ``int`` in -2**63..2**63, 8 bytes little-endian.
S64 = _fixed("s64", "<q")
#: A ``float``, 8 bytes little-endian IEEE 754.
F64 = _fixed("f64", "<d")
#: A ``str``, as UTF-8.
UTF8 = Codec("utf8", ValueEncoding.UTF8, str.encode, _utf8_decode)
#: ``bytes`` as they are.
BYTES = Codec("bytes", ValueEncoding.BYTES, bytes, bytes)
#: Anything :mod:`json` encodes, as compact UTF-8 JSON (readable by other languages).
JSON = Codec(
    "json",
    ValueEncoding.JSON,
    lambda value: json.dumps(value, separators=(",", ":")).encode(),
    json.loads,
)
#: Any picklable value (only Python reads it back; tools show bytes).
PICKLE = Codec(
    "pickle", ValueEncoding.BYTES, lambda value: pickle.dumps(value, protocol=4), pickle.loads
)


class KeyedChunk:
    """The keyed state of one key group, in the host's chunk encoding (see :func:`entries`)."""

    __slots__ = ("key_group", "entries")

    def __init__(self, key_group: int, entries: bytes) -> None:
        self.key_group = key_group
        self.entries = entries

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, KeyedChunk):
            return NotImplemented
        return (self.key_group, self.entries) == (other.key_group, other.entries)

    def __repr__(self) -> str:
        return f"KeyedChunk(key_group={self.key_group}, entries={self.entries!r})"


# The chunk encoding (cairn:job/types.keyed-chunk): entry* where
#   entry = varint(len(key)) key varint(tag); tag 0 a tombstone, n + 1 a value of n bytes.
# Lengths below 128 (nearly every key and value) are one byte: precomputed.
_SHORT = [bytes((n,)) for n in range(128)]
_VARINT_MAX = 2**32


def _varint(n: int) -> bytes:
    if n < 128:
        return _SHORT[n]
    if n >= _VARINT_MAX:
        raise Error(f"a keyed state key or value of {n} bytes is too long (at most 4 GiB)")
    out = bytearray()
    while n >= 128:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def put(out: List[bytes], key: bytes, value: bytes) -> None:
    """Appends an entry to ``out``, the parts of a chunk (``b"".join(out)`` is the chunk)."""
    out += (_varint(len(key)), key, _varint(len(value) + 1), value)


def put_tombstone(out: List[bytes], key: bytes) -> None:
    """Appends a tombstone (the key was deleted) to ``out``."""
    out += (_varint(len(key)), key, b"\x00")


def _read_varint(data: bytes, i: int) -> Tuple[int, int]:
    n = shift = 0
    for _ in range(5):
        if i >= len(data):
            raise Error("malformed keyed chunk: it ends inside a length")
        byte = data[i]
        i += 1
        n |= (byte & 0x7F) << shift
        if byte < 0x80:
            if n >= _VARINT_MAX:
                raise Error("malformed keyed chunk: a length of 2^32 or more")
            return n, i
        shift += 7
    raise Error("malformed keyed chunk: a length of more than 5 bytes")


def entries(data: bytes) -> Iterator[Tuple[bytes, Optional[bytes]]]:
    """The entries of a chunk, in order: ``(key, value)``, ``value`` ``None`` for a
    tombstone. Raises :class:`Error` on a malformed chunk."""
    i, end = 0, len(data)
    while i < end:
        key_len, i = _read_varint(data, i)
        key_end = i + key_len
        if key_end > end:
            raise Error("malformed keyed chunk: a key runs past the end")
        key = data[i:key_end]
        tag, i = _read_varint(data, key_end)
        if tag == 0:
            yield key, None
            continue
        value_end = i + tag - 1
        if value_end > end:
            raise Error("malformed keyed chunk: a value runs past the end")
        yield key, data[i:value_end]
        i = value_end


def subtask_key_groups(subtask: int, parallelism: int, max_parallelism: int) -> range:
    """The key groups subtask ``subtask`` of ``parallelism`` owns: ``g`` with
    ``g * parallelism // max_parallelism == subtask`` (contiguous, as in Flink)."""
    first = -(-subtask * max_parallelism // parallelism)
    end = -(-(subtask + 1) * max_parallelism // parallelism)
    return range(first, end)


class KeyedState:
    """A value per key, kept per key group: the state of the current record's key.

    ``get``, ``set`` and ``remove`` take the record (from a ``BY_KEY`` input) whose key's
    value they read or write; ``set_key`` writes a key given as bytes (for migrating state
    that older code kept otherwise). ``codec`` encodes the values in checkpoints
    (:data:`PICKLE` by default: any picklable value)."""

    __slots__ = ("codec", "_groups", "_key_group")

    def __init__(self, codec: Codec = PICKLE) -> None:
        if not isinstance(codec, Codec):
            raise TypeError(f"KeyedState needs a cairn_sdk Codec, got {codec!r}")
        self.codec = codec
        # Key group -> {key: value}, for the subtask's key groups only.
        self._groups: Dict[int, Dict[bytes, Any]] = {}
        self._key_group: Optional[Callable[[bytes], int]] = None

    def open(self, key_groups: range, key_group: Callable[[bytes], int]) -> None:
        """Called by the SDK before anything else: the subtask's key groups, and the
        function giving a key's key group."""
        self._groups = {g: self._groups.get(g, {}) for g in key_groups}
        self._key_group = key_group

    def _group(self, record: Any) -> Dict[bytes, Any]:
        try:
            return self._groups[record.key_group]
        except KeyError:
            raise self._not_here(record.key_group, getattr(record, "input", "?")) from None

    def _not_here(self, group: Optional[int], input: Any) -> Error:
        if group is None:
            return Error(
                "keyed state needs records of a by-key input; this one arrived on input "
                f"{input}, which is not partitioned by key"
            )
        owned = sorted(self._groups)
        span = f"{owned[0]}..={owned[-1]}" if owned else "none: the state is not open"
        return Error(
            f"key group {group} is not this subtask's (it owns {span}): keyed state can only "
            "hold keys routed here by key"
        )

    def get(self, record: Any, default: Any = None) -> Any:
        """The value of the record's key, or ``default``."""
        try:
            return self._groups[record.key_group].get(record.key, default)
        except KeyError:
            raise self._not_here(record.key_group, record.input) from None

    def set(self, record: Any, value: Any) -> None:
        """Sets the value of the record's key."""
        try:
            self._groups[record.key_group][record.key] = value
        except KeyError:
            raise self._not_here(record.key_group, record.input) from None

    def remove(self, record: Any) -> Any:
        """Removes the record's key's value; returns it (``None`` if it had none)."""
        return self._group(record).pop(record.key, None)

    def set_key(self, key: bytes, value: Any) -> None:
        """Sets the value of ``key``, which must be in this subtask's key groups."""
        if self._key_group is None:
            raise Error("keyed state is not open yet: set_key works from restore on")
        group = self._key_group(key)
        try:
            self._groups[group][bytes(key)] = value
        except KeyError:
            raise self._not_here(group, None) from None

    def items(self) -> Iterator[Tuple[bytes, Any]]:
        """Every key and its value, key group by key group."""
        for group in self._groups.values():
            yield from group.items()

    def __len__(self) -> int:
        return sum(map(len, self._groups.values()))

    def snapshot(self) -> List[KeyedChunk]:
        """One chunk per key group with keys, in one pass over each."""
        encode = self.codec.encode
        chunks = []
        for key_group, values in self._groups.items():
            if not values:
                continue
            parts: List[bytes] = []
            for key, value in values.items():
                put(parts, key, encode(value))
            chunks.append(KeyedChunk(key_group, b"".join(parts)))
        return chunks

    def restore(self, chunk: KeyedChunk) -> None:
        """Adds a chunk written by :meth:`snapshot` (in this state's codec)."""
        values = self._groups.get(chunk.key_group)
        if values is None:
            raise self._not_here(chunk.key_group, None)
        decode = self.codec.decode
        for key, value in entries(chunk.entries):
            if value is None:
                values.pop(key, None)
            else:
                values[key] = decode(value)

    def __repr__(self) -> str:
        return f"KeyedState({self.codec.name}, {len(self)} keys)"


def keyed_state_of(operator: object) -> Optional[KeyedState]:
    """The operator's :class:`KeyedState` attribute, if it has one; an error if several."""
    found = [(name, v) for name, v in vars(operator).items() if isinstance(v, KeyedState)]
    if len(found) > 1:
        names = ", ".join(name for name, _ in found)
        raise Error(
            f"{type(operator).__name__} has {len(found)} KeyedState attributes ({names}): an "
            "operator keeps one (make its values tuples or dicts to keep more per key)"
        )
    return found[0][1] if found else None
