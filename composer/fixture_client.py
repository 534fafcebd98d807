"""A fixture's ``control`` script: asks the fixture's conductor to act, prints its answer.

Standard library only, and imports nothing of composer: ``composer up`` copies this file
into the fixture as ``DIR/control`` (each node's ``DIR/<address>/control`` calls it with
``--node``), so a shell test pays one small Python start-up per call. The conductor
listens on a Unix socket named in ``DIR/.composer-fixture``; one request is one JSON line
``{"node": NAME or null, "args": [...]}``, one answer ``{"code", "out", "err"}``.
``down`` also waits for the conductor to finish tearing the cluster down, then removes
the fixture directory (``composer down DIR`` runs this same code).
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
import time
from pathlib import Path

MARKER = ".composer-fixture"
#: how long ``down`` waits for the conductor to tear the cluster down
DOWN_SECONDS = 300.0


def request(directory: Path, node: str | None, args: list[str],
            timeout: float | None = None) -> tuple[int, str, str]:
    """Send one request to the conductor of the fixture in ``directory``; return its
    (exit code, stdout, stderr). Code 3 with a reason when the conductor is gone."""
    try:
        marker = json.loads((directory / MARKER).read_text())
    except (OSError, ValueError):
        return 2, "", (f"{directory}: not a composer fixture (no {MARKER}); make one with "
                       "composer up PROJECT --fixture DIR\n")
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn:
            conn.settimeout(timeout)
            conn.connect(marker["socket"])
            conn.sendall((json.dumps({"node": node, "args": args}) + "\n").encode())
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    break
                data += chunk
    except OSError as exc:
        return 3, "", (f"{directory}: its conductor (pid {marker.get('pid')}) does not answer "
                       f"({exc.strerror or exc}); composer down {directory} removes the "
                       "fixture, composer gc what its cluster left\n")
    try:
        answer = json.loads(data)
    except ValueError:
        return 3, "", f"{directory}: the conductor ended before answering\n"
    return int(answer["code"]), answer.get("out", ""), answer.get("err", "")


def down(directory: Path) -> int:
    """Tear the fixture down: the conductor heals, stops everything, records the run and
    exits; then the directory goes. Return the exit code."""
    code, out, err = request(directory, None, ["down"])
    sys.stdout.write(out)
    sys.stderr.write(err)
    if code == 2:
        return code
    try:
        pid = int(json.loads((directory / MARKER).read_text()).get("pid") or 0)
    except (OSError, ValueError):
        pid = 0
    deadline = time.monotonic() + DOWN_SECONDS
    while pid and _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if pid and _alive(pid):
        sys.stderr.write(f"{directory}: the conductor (pid {pid}) is still tearing down after "
                         f"{DOWN_SECONDS:g}s; left it running\n")
        return 3
    shutil.rmtree(directory, ignore_errors=True)
    return 0 if code in (0, 3) else code


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def main(argv: list[str] | None = None, directory: Path | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    directory = directory or Path(__file__).resolve().parent
    node = None
    if args[:1] == ["--node"] and len(args) > 1:
        node, args = args[1], args[2:]
    if not args or args[0] in ("-h", "--help", "help"):
        request_args = ["help"]
    else:
        request_args = args
    if node is None and request_args == ["down"]:
        return down(directory)
    code, out, err = request(directory, node, request_args)
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


if __name__ == "__main__":
    sys.exit(main())
