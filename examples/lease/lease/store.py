"""The store: one shared board (a list of job ids) that workers post to and tidy.

Two ways to change the board: ``append`` adds one item (atomic here, in the store),
``write`` replaces the whole list (a worker's read-modify-write: its tidy pass).

The state (``items``, a ``version`` counting changes, and ``fence``, the highest fencing
token seen) is saved to ``state.json`` (a temporary file renamed into place) before any
answer, so a SIGKILL never loses an acknowledged write.

Fencing: a request may carry the ``token`` of the lease its worker holds. The store
remembers the highest token it has seen, on reads and writes, and refuses (409) any
request with a lower one: a worker whose lease expired cannot write over the work of
the worker that got the lease after it. Requests without a token are not checked;
that is how the planted bug's workers talk to it (see ``worker.py``).
"""

from __future__ import annotations

import json
import os
import threading
from typing import Any


class Store:
    """The shared list, its version and its fence, saved on every change."""

    def __init__(self, data_dir: str) -> None:
        self.path = os.path.join(data_dir, "state.json")
        self._lock = threading.Lock()
        try:
            with open(self.path) as file:
                state = json.load(file)
        except FileNotFoundError:
            state = {"items": [], "version": 0, "fence": 0}
        self.items: list[str] = state["items"]
        self.version: int = state["version"]
        self.fence: int = state["fence"]

    def _save(self) -> None:
        temporary = self.path + ".tmp"
        with open(temporary, "w") as file:
            json.dump({"items": self.items, "version": self.version, "fence": self.fence}, file)
        os.replace(temporary, self.path)

    def _fenced(self, token: Any) -> dict[str, Any] | None:
        """Refusal for a token older than the fence, else None (raises the fence; caller
        holds the lock and saves)."""
        if token is None:
            return None
        if int(token) < self.fence:
            return {"error": "stale fencing token", "token": token, "fence": self.fence}
        self.fence = int(token)
        return None

    def read(self, body: Any) -> tuple[int, Any]:
        with self._lock:
            fence = self.fence
            refusal = self._fenced(body.get("token"))
            if refusal:
                return 409, refusal
            if self.fence != fence:
                self._save()
            return 200, {"items": list(self.items), "version": self.version}

    def append(self, body: Any) -> tuple[int, Any]:
        with self._lock:
            refusal = self._fenced(body.get("token"))
            if refusal:
                return 409, refusal
            self.items.append(str(body["item"]))
            self.version += 1
            self._save()
            return 200, {"ok": True, "version": self.version, "length": len(self.items)}

    def write(self, body: Any) -> tuple[int, Any]:
        with self._lock:
            refusal = self._fenced(body.get("token"))
            if refusal:
                return 409, refusal
            self.items = [str(i) for i in body["items"]]
            self.version += 1
            self._save()
            return 200, {"ok": True, "version": self.version}

    def dump(self, body: Any) -> tuple[int, Any]:
        """The list for checkers: no token, no fence."""
        with self._lock:
            return 200, {"items": list(self.items), "version": self.version,
                         "fence": self.fence}

    def health(self, body: Any) -> tuple[int, Any]:
        with self._lock:
            return 200, {"role": "store", "items": len(self.items), "version": self.version}

    def routes(self) -> dict:
        return {("POST", "/read"): self.read, ("POST", "/append"): self.append,
                ("POST", "/write"): self.write,
                ("GET", "/items"): self.dump, ("GET", "/health"): self.health}
