"""Errors: how a failure in job code reaches the host."""


class Error(Exception):
    """An error whose message is shown as it is: the reason a job cannot start (from
    ``describe``) or a subtask failed (from an operator). Any other exception raised by job
    code is reported as ``Type: message (at file.py:line in function)``."""


def describe(error: BaseException) -> str:
    """The message an exception is reported to the host with."""
    if isinstance(error, Error):
        return str(error) or "error"
    name = type(error).__name__
    text = str(error)
    message = f"{name}: {text}" if text else name
    # Where it was raised: the innermost frame of job code (not of this SDK), read from the
    # traceback object alone (formatting a traceback would read source files).
    where = None
    tb = error.__traceback__
    while tb is not None:
        code = tb.tb_frame.f_code
        path = code.co_filename.replace("\\", "/")
        if where is None or "/cairn_sdk/" not in path:
            where = (path.rsplit("/", 1)[-1], tb.tb_lineno, code.co_name)
        tb = tb.tb_next
    if where is not None:
        message += " (at %s:%d in %s)" % where
    return message
