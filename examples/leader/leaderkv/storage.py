"""What a leaderkv node keeps on disk, and how it talks to its peers.

Everything a node promises is written before it is acted on, so a SIGKILL (composer's
``kill`` fault) loses nothing: the term and vote in ``state.json`` (replaced whole),
the log in ``log.jsonl`` (appended one ``write`` at a time; a truncation rewrites it
aside and renames). The page cache survives a killed process, so no fsync is needed.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
import time
from typing import Any

Entry = dict[str, Any]  # {"term": int, "key": str, "value": str}


class Timeout(Exception):
    """The peer did not answer in time: packets dropped (partition) or peer paused."""


class Down(Exception):
    """The peer refused or reset the connection: its process is not running."""


def call(address: str, method: str, path: str, body: Any = None,
         timeout: float = 1.0) -> tuple[int, Any]:
    """Send one JSON request; return (status, answer) or raise ``Timeout`` / ``Down``.

    A fresh connection each time: a peer that was paused or cut off never leaves a
    half-used connection behind.
    """
    host, port = address.rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=timeout)
    data = None if body is None else json.dumps(body).encode()
    try:
        connection.request(method, path, body=data,
                           headers={"Content-Type": "application/json"} if data else {})
        response = connection.getresponse()
        return response.status, json.loads(response.read() or b"null")
    except TimeoutError as error:
        raise Timeout(f"{method} {address}{path}: timed out") from error
    except (OSError, http.client.HTTPException, ValueError) as error:
        raise Down(f"{method} {address}{path}: {error}") from error
    finally:
        connection.close()


def log(message: str) -> None:
    """One line on stderr, which composer keeps per process."""
    sys.stderr.write(f"leaderkv {time.strftime('%H:%M:%S')} {message}\n")  # one write: whole
    sys.stderr.flush()


_never = threading.Event()


def nap(seconds: float) -> None:
    """Sleep. Not ``time.sleep``: under libfaketime (clock faults) it can fail with
    EINVAL, while waiting on an event works."""
    _never.wait(seconds)


class State:
    """The current term and whom this node voted for in it (Raft's persistent pair)."""

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            with open(path) as file:
                saved = json.load(file)
        except FileNotFoundError:
            saved = {"term": 0, "voted_for": None}
        self.term: int = int(saved["term"])
        self.voted_for: str | None = saved["voted_for"]

    def save(self, term: int, voted_for: str | None) -> None:
        """Persist, then use: a vote must never be forgotten by a restart."""
        aside = self.path + ".new"
        with open(aside, "w") as file:
            json.dump({"term": term, "voted_for": voted_for}, file)
        os.replace(aside, self.path)
        self.term, self.voted_for = term, voted_for


class Log:
    """The replicated log: a list of entries, index 1 first, mirrored in a JSONL file.

    A SIGKILL can at worst leave a torn last line (never acknowledged): loading drops it.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries: list[Entry] = self._load(path)
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    @staticmethod
    def _load(path: str) -> list[Entry]:
        try:
            with open(path, "rb") as file:
                raw = file.read()
        except FileNotFoundError:
            return []
        entries: list[Entry] = []
        good = 0
        for line in raw.splitlines(keepends=True):
            try:
                if not line.endswith(b"\n"):
                    raise ValueError("torn last line")
                entries.append(json.loads(line))
            except ValueError:
                break
            good += len(line)
        if good < len(raw):
            os.truncate(path, good)
        return entries

    def __len__(self) -> int:
        return len(self.entries)

    def term_at(self, index: int) -> int:
        """The term of entry ``index`` (1-based); 0 for index 0, the empty prefix."""
        return self.entries[index - 1]["term"] if index > 0 else 0

    @property
    def last_term(self) -> int:
        return self.term_at(len(self.entries))

    def append(self, entries: list[Entry]) -> None:
        os.write(self._fd, "".join(json.dumps(e) + "\n" for e in entries).encode())
        self.entries.extend(entries)

    def truncate(self, length: int) -> None:
        """Keep the first ``length`` entries: rewrite aside, rename, reopen."""
        kept = self.entries[:length]
        aside = self.path + ".new"
        with open(aside, "w") as file:
            file.write("".join(json.dumps(e) + "\n" for e in kept))
        os.replace(aside, self.path)
        os.close(self._fd)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.entries = kept

    def data(self) -> dict[str, str]:
        """The key-value map the log spells out (later entries win)."""
        return {e["key"]: e["value"] for e in self.entries}
