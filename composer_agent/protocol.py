"""The agent's WebSocket wire protocols, written down once for both sides.

Imports the standard library only.

Exec session (``GET /v1/session``): one WebSocket per client carries many processes,
each named by an id the client picks (an unsigned 32-bit number, unique per session).
Text frames are JSON objects with that ``"id"``; binary frames start with ``HEADER``
(the id, big-endian, then one stream byte: ``STDIN`` 0, ``STDOUT`` 1, ``STDERR`` 2) and
carry the data after it. The client opens the session on its first start, and a new
one after it closed (the processes of the old one are gone then: see the failure rule).

1. To start a process the client sends ``{"id": N, "start": request}``, the request
   being ``{"argv": [str, ...], "env": {str: str} | null, "env_add": {str: str} | null,
   "cwd": str | null, "stdin": bool, "detach": bool, "clock": str | null}``. ``env``
   replaces the agent's environment; null keeps it. ``env_add`` is set over that.
   ``stdin`` true: the process reads what the client sends (else /dev/null). ``clock``:
   a file on the node holding a wall-clock offset in seconds; the process runs under
   libfaketime reading it (``composer_agent.clock``). Only ``argv`` is required; unknown keys are
   refused.
2. The agent starts the process in a new session (its own process group) and answers
   ``{"id": N, "started": pid}``; if it cannot, ``{"id": N, "error": "..."}``. A client
   that stopped waiting for the answer sends ``{"id": N, "signal": 9}`` when it comes.
3. Detached (``"detach": true``): that is all; the process runs on, outliving the
   session, with stdout and stderr in ``<root>/logs/<pid>.stdout`` and ``.stderr``.
4. While an attached process runs, the agent sends its output as binary frames
   (``STDOUT``/``STDERR``), each pipe forwarded by a pump of its own that reads the next
   chunk only once the previous one is on the socket. The client must take output
   frames as they come, without waiting on anything (it writes them to files or
   memory), so one process's output never holds up another's for longer than the
   socket takes to carry it.
5. The client may send stdin data (binary, ``STDIN``), ``{"id": N, "close_stdin":
   true}`` (after the data sent before it) and ``{"id": N, "signal": S}`` (to the
   group, at once: after the data sent before it has reached the agent, not
   necessarily the process).
6. Stdin credit: the client keeps at most ``WINDOW`` bytes of a process's stdin
   unacknowledged. The agent answers ``{"id": N, "ack": bytes}`` once bytes are in the
   pipe (or dropped: stdin closed, or the process gone), so a process that does not
   read its stdin stalls only its own writer, and the agent holds at most ``WINDOW``
   bytes for it. A client that exceeds the window loses the session.
7. When the process exits and its output is drained (a pipe still held open by a
   grandchild is dropped after a short grace), the agent sends ``{"id": N, "exit":
   returncode, "seconds": run_time}`` (returncode negative: killed by that signal, as
   with ``subprocess.Popen``); the id is free again, and later frames with it are
   ignored.

Failure rule: when the session's WebSocket closes, the agent kills the process group of
every attached process of that session that has not exited; they die with their
connection. A text message the agent cannot parse is answered with ``{"error":
"..."}`` (with the id when it has one) and otherwise ignored; a binary frame that is
not stdin, or stdin beyond the credit, ends the session (after an ``{"error": ...}``).

Dial (``GET /v1/dial?port=N&host=H``), one TCP connection per WebSocket:

1. The agent connects to H:N (H defaults to 127.0.0.1: a port on the agent's node).
2. It answers ``{"dialed": "H:N"}``, or ``{"error": "..."}`` and closes.
3. Both ways, binary frames carry the bytes of the connection.
4. TCP end of file: the agent closes the WebSocket. WebSocket closed: the agent closes
   the TCP connection.
"""

from __future__ import annotations

import struct

__all__ = ["VERSION", "STDIN", "STDOUT", "STDERR", "HEADER", "CHUNK", "WINDOW",
           "EXEC_KEYS", "check_request"]

#: The protocol version the heartbeat reports; bumped on incompatible change.
VERSION = 2
#: Stream bytes of the binary frames of an exec session.
STDIN = 0
STDOUT = 1
STDERR = 2
#: What starts each binary frame of an exec session: the process id, the stream byte.
HEADER = struct.Struct(">IB")
#: Bytes read at once from a file, pipe or socket before they are forwarded.
CHUNK = 64 * 1024
#: Bytes of one process's stdin the client may send before the agent acknowledges them.
WINDOW = 4 * CHUNK
#: The keys of the exec request (step 1), with their default values.
EXEC_KEYS = {"argv": None, "env": None, "env_add": None, "cwd": None, "stdin": False,
             "detach": False, "clock": None}


def check_request(spec: object) -> dict:
    """Return the exec request ``spec`` (step 1) with defaults filled in; raise
    ValueError saying what is wrong."""
    if not isinstance(spec, dict):
        raise ValueError("the request must be a JSON object")
    unknown = set(spec) - set(EXEC_KEYS)
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}; known: {sorted(EXEC_KEYS)}")
    spec = {**EXEC_KEYS, **spec}
    argv = spec["argv"]
    if not (isinstance(argv, list) and argv and all(isinstance(a, str) for a in argv)):
        raise ValueError(f"argv={argv!r}: give a non-empty list of strings")
    for key in ("env", "env_add"):
        if spec[key] is not None and not (isinstance(spec[key], dict) and all(
                isinstance(k, str) and isinstance(v, str) for k, v in spec[key].items())):
            raise ValueError(f"{key} must map strings to strings, or be null")
    for key in ("cwd", "clock"):
        if spec[key] is not None and not isinstance(spec[key], str):
            raise ValueError(f"{key}={spec[key]!r}: give a path, or null")
    for key in ("stdin", "detach"):
        if not isinstance(spec[key], bool):
            raise ValueError(f"{key}={spec[key]!r}: give true or false")
    if spec["stdin"] and spec["detach"]:
        raise ValueError("a detached process cannot read stdin from the client")
    return spec
