"""The one-line error a user sees for a failed input or a refused option: the path and the cause, no traceback."""

from __future__ import annotations


def error_line(path, error: BaseException) -> str:
    """`<path>: <cause>` on one line, without command prefix; a message that already names the path is kept."""
    if isinstance(error, OSError) and error.strerror:
        # str() of an OSError reads "[Errno 13] Permission denied: '<file>'"; name the file it was about
        where = error.filename if error.filename not in (None, "") else path
        return f"{where}: {error.strerror}" if where not in (None, "") else error.strerror
    text = str(error).strip()
    message = text.splitlines()[0] if text else type(error).__name__
    if path in (None, "") or str(path) in message:
        return message
    return f"{path}: {message}"
