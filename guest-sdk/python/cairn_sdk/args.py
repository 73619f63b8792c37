"""The job's arguments: everything after ``--`` on ``cairn run``."""

from typing import Callable, List, Optional, Sequence, TypeVar

from .error import Error

T = TypeVar("T")


class Args:
    """Options are ``--name VALUE`` or ``--name=VALUE``; anything else is positional. When an
    option is given more than once, the last one wins (:meth:`values` has them all)."""

    def __init__(self, args: Sequence[str]) -> None:
        self._args = list(args)

    def all(self) -> List[str]:
        """All arguments, as given."""
        return list(self._args)

    def values(self, name: str) -> List[str]:
        """Every value of option ``name`` (for example ``"--input"``), in order."""
        found = []
        args = iter(self._args)
        prefix = name + "="
        for arg in args:
            if arg == name:
                value = next(args, None)
                if value is not None:
                    found.append(value)
            elif arg.startswith(prefix):
                found.append(arg[len(prefix) :])
        return found

    def value(self, name: str, default: Optional[str] = None) -> Optional[str]:
        """The value of option ``name``, or ``default`` when it is absent."""
        found = self.values(name)
        return found[-1] if found else default

    def required(self, name: str) -> str:
        """The value of a required option; raises :class:`Error` naming it when absent."""
        value = self.value(name)
        if value is None:
            raise Error(f"missing required argument {name}")
        return value

    def parse_or(self, name: str, default: T, parse: Optional[Callable[[str], T]] = None) -> T:
        """The value of option ``name`` converted by ``parse`` (by default the type of
        ``default``: ``args.parse_or("--records", 0)`` gives an ``int``), or ``default`` when
        it is absent. A value ``parse`` rejects raises :class:`Error` naming the option."""
        raw = self.value(name)
        if raw is None:
            return default
        convert = parse if parse is not None else type(default)
        try:
            return convert(raw)  # type: ignore[call-arg]
        except (TypeError, ValueError) as e:
            raise Error(f"invalid value {raw!r} for {name}: {e}") from None

    def __len__(self) -> int:
        return len(self._args)

    def __iter__(self):  # type: ignore[no-untyped-def]
        return iter(self._args)

    def __repr__(self) -> str:
        return f"Args({self._args!r})"
