"""Logging into the host's log, tagged by the host with the subtask that wrote it.

Inside a component records go through the ``cairn:job/log`` import; elsewhere (tests) to
standard error. ``CAIRN_LOG`` on the host filters them (default: info and up)::

    from cairn_sdk import log
    log.info("read %d lines", n)

``print`` works too: the host logs what a guest writes to stdout and stderr.
"""

import enum
import sys


class Level(enum.IntEnum):
    """Severity of a log record."""

    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4


try:
    # Only inside a component built by componentize-py; resolved when the app is built.
    import componentize_py_runtime  # noqa: F401
    from wit_world.imports import log as _wit_log

    _LEVELS = {level: _wit_log.Level(level.value) for level in Level}

    def _write(level: Level, message: str) -> None:
        _wit_log.log(_LEVELS[level], message)

except ImportError:

    def _write(level: Level, message: str) -> None:
        print(f"[{level.name}] {message}", file=sys.stderr)


def log(level: Level, message: str, *args: object) -> None:
    """Writes one log record; ``message % args`` when ``args`` are given."""
    if args:
        message = message % args
    _write(level, str(message))


def trace(message: str, *args: object) -> None:
    log(Level.TRACE, message, *args)


def debug(message: str, *args: object) -> None:
    log(Level.DEBUG, message, *args)


def info(message: str, *args: object) -> None:
    log(Level.INFO, message, *args)


def warn(message: str, *args: object) -> None:
    log(Level.WARN, message, *args)


def error(message: str, *args: object) -> None:
    log(Level.ERROR, message, *args)
