"""The agent's WebSocket wire protocols, written down once for both sides.

Imports the standard library only.

Exec (``GET /v1/exec``), one process per WebSocket:

1. The client sends a text frame, the request: ``{"argv": [str, ...], "env": {str: str}
   | null, "env_add": {str: str} | null, "cwd": str | null, "stdin": bool, "detach":
   bool, "clock": str | null}``. ``env`` replaces the agent's environment; null keeps
   it. ``env_add`` is set over that. ``stdin`` true: the process reads what the client
   sends (else /dev/null). ``clock``: a file on the node holding a wall-clock offset in
   seconds; the process runs under libfaketime reading it (``agent.clock``).
   Only ``argv`` is required; unknown keys are refused.
2. The agent starts the process in a new session (its own process group) and answers
   ``{"started": pid}``; if it cannot, ``{"error": "..."}`` and closes.
3. Detached (``"detach": true``): the agent closes the WebSocket; the process runs on
   with stdout and stderr in ``<root>/logs/<pid>.stdout`` and ``.stderr``. Stop here.
4. While it runs, the agent sends binary frames: one stream byte (``STDOUT`` 1,
   ``STDERR`` 2) then the data, forwarded with backpressure. The client may send binary
   frames (stdin data), ``{"close_stdin": true}`` and ``{"signal": N}`` (to the group).
5. When the process exits and its output is drained, the agent sends ``{"exit":
   returncode, "seconds": run_time}`` (returncode negative: killed by that signal, as
   with ``subprocess.Popen``) and closes.

Failure rule: if the WebSocket closes before step 5, the agent kills the process group;
the process dies with its connection.

Dial (``GET /v1/dial?port=N&host=H``), one TCP connection per WebSocket:

1. The agent connects to H:N (H defaults to 127.0.0.1: a port on the agent's node).
2. It answers ``{"dialed": "H:N"}``, or ``{"error": "..."}`` and closes.
3. Both ways, binary frames carry the bytes of the connection.
4. TCP end of file: the agent closes the WebSocket. WebSocket closed: the agent closes
   the TCP connection.
"""

from __future__ import annotations

__all__ = ["VERSION", "STDOUT", "STDERR", "CHUNK", "EXEC_KEYS"]

#: The protocol version the heartbeat reports; bumped on incompatible change.
VERSION = 1
#: Stream bytes that start each output frame of an exec WebSocket.
STDOUT = 1
STDERR = 2
#: Bytes read at once from a file, pipe or socket before they are forwarded.
CHUNK = 64 * 1024
#: The keys of the exec request (step 1), with their default values.
EXEC_KEYS = {"argv": None, "env": None, "env_add": None, "cwd": None, "stdin": False,
             "detach": False, "clock": None}
