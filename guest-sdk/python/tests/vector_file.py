"""The golden vector files' shared syntax (wit/vectors/README.md): items from `vector NAME` or
`malformed NAME` to `end`, one directive a line, `#` comments. Each test reads its own
directives into the items."""


def parse_bytes(token):
    """`x` and hex digits."""
    if not token.startswith("x"):
        raise ValueError(f"bytes are x followed by hex, not {token!r}")
    return bytes.fromhex(token[1:])


def read_vector_file(path, start, directive):
    """The items of the vector file at `path`: `start(name, malformed)` makes an item,
    `directive(item, name, tokens)` reads one of its lines and returns False for a
    directive it does not know."""
    items, current = [], None
    with open(path, encoding="ascii") as f:
        for line in f.read().split("\n"):
            if not line or line.startswith("#"):
                continue
            name, *rest = line.split(" ")
            if name in ("vector", "malformed"):
                assert current is None, f"{line}: the previous vector has no end"
                current = start(" ".join(rest), name == "malformed")
            elif name == "end":
                items.append(current)
                current = None
            elif not directive(current, name, rest):
                raise ValueError(f"unknown line {line!r}")
    assert current is None, "the last vector has no end"
    return items
