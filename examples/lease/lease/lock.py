"""The lock service: one lease at a time, each grant with a fresh fencing token.

A lease lasts LEASE_TTL seconds (measured on this process's monotonic clock, which a
SIGSTOP does not stop) unless released earlier. Tokens grow by one per grant and are
saved before the grant is answered, so they keep growing across restarts. After a
restart the service grants nothing for LEASE_TTL: a lease its previous incarnation
granted may still be held.
"""

from __future__ import annotations

import os
import threading
import time
from typing import Any

from .common import log

LEASE_TTL = 1.0  # seconds a lease lasts unless released


class LockService:
    """The lease's holder, its token and its expiry; the token counter on disk."""

    def __init__(self, data_dir: str) -> None:
        self.token_path = os.path.join(data_dir, "token")
        self._lock = threading.Lock()
        self.token = self._load_token()
        self.holder: str | None = None
        self.holder_token = 0
        self.expires = 0.0
        # a restart (tokens were granted before) waits out any lease still held
        self.grace_until = time.monotonic() + LEASE_TTL if self.token else 0.0

    def _load_token(self) -> int:
        try:
            with open(self.token_path) as file:
                return int(file.read())
        except (FileNotFoundError, ValueError):
            return 0

    def _save_token(self) -> None:
        temporary = self.token_path + ".tmp"
        with open(temporary, "w") as file:
            file.write(str(self.token))
        os.replace(temporary, self.token_path)

    def acquire(self, body: Any) -> tuple[int, Any]:
        """Grant the lease to ``owner`` if it is free (or expired, or already theirs)."""
        owner = str(body["owner"])
        with self._lock:
            now = time.monotonic()
            if now < self.grace_until:
                return 200, {"granted": False, "holder": None,
                             "retry_in": self.grace_until - now}
            if self.holder not in (None, owner) and now < self.expires:
                return 200, {"granted": False, "holder": self.holder,
                             "retry_in": self.expires - now}
            if self.holder not in (None, owner):
                log(f"lease of {self.holder} (token {self.holder_token}) expired; "
                    f"granting it to {owner}")
            self.token += 1
            self._save_token()
            self.holder, self.holder_token, self.expires = owner, self.token, now + LEASE_TTL
            return 200, {"granted": True, "token": self.token, "ttl": LEASE_TTL}

    def release(self, body: Any) -> tuple[int, Any]:
        """End the lease early, if ``owner`` still holds it with ``token``."""
        with self._lock:
            mine = self.holder == body.get("owner") and self.holder_token == body.get("token")
            if mine:
                self.holder = None
            return 200, {"released": mine}

    def health(self, body: Any) -> tuple[int, Any]:
        with self._lock:
            held = self.holder is not None and time.monotonic() < self.expires
            return 200, {"role": "lock", "holder": self.holder if held else None,
                         "token": self.token}

    def routes(self) -> dict:
        return {("POST", "/acquire"): self.acquire, ("POST", "/release"): self.release,
                ("GET", "/health"): self.health}
