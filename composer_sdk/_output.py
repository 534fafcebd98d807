"""The JSONL writer behind every SDK record (private).

Owns: choosing the output file (``$COMPOSER_SDK_OUTPUT``, else
``$ANTITHESIS_SDK_LOCAL_OUTPUT``, else nothing), writing the ``antithesis_sdk``
version record once per process before anything else, serialising records the
way antithesis 0.4.0 does (``antithesis_error`` 6001 for details that do not
serialise, ``antithesis_warning`` 6002/6003/6004 once per process), and appending
each record as one whole line in one ``write`` on an ``O_APPEND`` descriptor, so
concurrent processes never interleave.

Nothing here raises into user code. Imports the standard library only; never
``composer``.
"""

from __future__ import annotations

import enum
import json
import os
import re
import sys
import threading
from collections.abc import Mapping
from typing import Any

SDK_VERSION = "0.4.0+composer.1"
"""The API this SDK mirrors (antithesis 0.4.0), marked as composer's build."""
PROTOCOL_VERSION = "1.1.0"
OUTPUT_ENV_VARS = ("COMPOSER_SDK_OUTPUT", "ANTITHESIS_SDK_LOCAL_OUTPUT")

_lock = threading.RLock()
_fd: int | None = None
_opened = False  # output resolved (successfully or not) in this process
_warned: set[int] = set()

_WARNINGS = {
    6002: 'Python SDK replaced non-finite numbers in details for "{}" '
    'with the strings "NaN", "Infinity" or "-Infinity"',
    6003: 'Python SDK emitted integers beyond ±2^53 in details for "{}"; '
    "consumers that parse JSON numbers as doubles will round them",
    6004: 'Python SDK skipped numeric guidance for "{}" because an operand was not finite',
}
_UNSAFE_INTEGER = 2**53
# An integer token of 16+ digits follows a space, "[" or "-" in json.dumps output.
_MAYBE_BIG_INT = re.compile(r"[ \[-][0-9]{16}")


class OnError(enum.Enum):
    """What to do with a record whose details do not serialise (as antithesis 0.4.0)."""

    OMIT_DETAILS = enum.auto()  # assertions, setup
    EMPTY_DETAILS = enum.auto()  # events
    DROP_RECORD = enum.auto()  # guidance


def enabled() -> bool:
    """Return whether records go anywhere, opening the output on first use."""
    if _opened:  # fast path, also the whole cost of an SDK call with no output configured
        return _fd is not None
    with _lock:
        if not _opened:
            _open()
        return _fd is not None


def _open() -> None:
    """Resolve and open the output file, then write the version record first.

    ``_opened`` is set last, so the lock-free fast path in ``enabled`` never sees
    a half-opened output.
    """
    global _fd, _opened
    path = next((os.environ[v] for v in OUTPUT_ENV_VARS if os.environ.get(v)), None)
    try:
        if path is not None:
            _fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
            version = {
                "antithesis_sdk": {
                    "language": {"name": "Python", "version": sys.version},
                    "sdk_version": SDK_VERSION,
                    "protocol_version": PROTOCOL_VERSION,
                }
            }
            _write_line(json.dumps(version))
    except OSError:
        _fd = None
    finally:
        _opened = True


def _write_line(text: str) -> None:
    """Append one line with one syscall; a failed write is dropped, never raised."""
    fd = _fd
    if fd is None:
        return
    data = text.encode("utf-8", "backslashreplace") + b"\n"
    try:
        while data:  # a regular file takes it whole; the loop only guards oddities
            data = data[os.write(fd, data) :]
    except OSError:
        pass


def write(text: str) -> None:
    """Write one already-serialised record line, if output is configured."""
    if enabled():
        _write_line(text)


def warn_once(code: int, context: str) -> None:
    """Emit an ``antithesis_warning`` the first time this process has cause to."""
    with _lock:
        if code in _warned:
            return
        _warned.add(code)
    message = _WARNINGS[code].format(context) + "; later occurrences in this process are not reported"
    write(_diagnostic("antithesis_warning", code, message, context))


def _diagnostic(kind: str, code: int, message: str, context: str) -> str:
    return json.dumps({kind: {"code": code, "message": message, "context": context}})


def details_object(details: Any) -> Mapping | None:
    """Keep mappings and None as they are; wrap any other value under ``value``."""
    if details is None or isinstance(details, Mapping):
        return details
    return {"value": details}


def _encode_mapping(value: Any) -> dict:
    if isinstance(value, Mapping):
        return dict(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def emit(
    record: dict[str, Any],
    container: dict[str, Any],
    key: str,
    context: str,
    on_error: OnError = OnError.OMIT_DETAILS,
) -> None:
    """Serialise ``record`` whose user data sits at ``container[key]`` and write it.

    Never raises: user mappings may raise anything while being read.
    """
    try:
        if not enabled():
            return
        _emit(record, container, key, context, on_error)
    except Exception:  # pragma: no cover - last line of defence for user code
        pass


def _emit(record: dict, container: dict, key: str, context: str, on_error: OnError) -> None:
    codes: set[int] = set()
    try:
        text = json.dumps(record, default=_encode_mapping)
        if key in container and ("NaN" in text or "Infinity" in text or _MAYBE_BIG_INT.search(text)):
            text, codes = _inspect(text)
    except Exception as error:  # noqa: BLE001 - user __iter__/__getitem__ can raise anything
        write(_diagnostic("antithesis_error", 6001, _failure(context, error), context))
        if on_error is OnError.DROP_RECORD or key not in container:
            return
        if on_error is OnError.OMIT_DETAILS:
            del container[key]
        else:
            container[key] = {}
        text = json.dumps(record, default=repr)
    for code in sorted(codes):
        warn_once(code, context)
    write(text)


def _inspect(text: str) -> tuple[str, set[int]]:
    """Re-read our own output to find non-finite floats and unsafe integers."""
    codes: set[int] = set()

    def parse_int(token: str) -> int:
        value = int(token)
        if abs(value) >= _UNSAFE_INTEGER:
            codes.add(6003)
        return value

    def parse_constant(name: str) -> str:
        codes.add(6002)
        return name

    parsed = json.loads(text, parse_int=parse_int, parse_constant=parse_constant)
    if 6002 in codes:
        text = json.dumps(parsed)
    return text, codes


def _failure(context: str, error: Exception) -> str:
    try:
        reason = str(error) or type(error).__name__
    except Exception:  # a user __str__ can raise anything
        reason = type(error).__name__
    return f'Python SDK failed to serialize details for "{context}": {reason}'


def _reset(close: bool = True) -> None:
    """Forget the output and per-process warnings (tests, and a forked child)."""
    global _fd, _opened, _lock
    if close and _fd is not None:
        try:
            os.close(_fd)
        except OSError:
            pass
    _fd, _opened = None, False
    _warned.clear()
    _lock = threading.RLock()


def _after_fork_in_child() -> None:
    """A forked child is a new process: it reopens the output and writes its own version record."""
    _reset(close=True)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
