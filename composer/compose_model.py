"""What a docker-compose file says, as frozen dataclasses: ``composer.compose`` reads and
validates a file into these; the compose cluster backend runs them. Imports only the
standard library.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

__all__ = ["Build", "Mount", "Healthcheck", "ComposeService", "ComposeFile"]


@dataclasses.dataclass(frozen=True)
class Build:
    context: Path
    dockerfile: str = "Dockerfile"
    args: tuple[tuple[str, str], ...] = ()


@dataclasses.dataclass(frozen=True)
class Mount:
    """A bind mount (``source`` an absolute host path) or a named volume of the run."""

    source: str
    target: str
    read_only: bool = False
    volume: bool = False


@dataclasses.dataclass(frozen=True)
class Healthcheck:
    """Docker's form: ``test`` is ``("CMD", ...)`` or ``("CMD-SHELL", "...")``. composer
    runs it until it passes, within ``[setup] timeout``: interval, timeout, retries and
    start_period are checked and not needed."""

    test: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class ComposeService:
    """One service: one container, named and reachable as ``name``."""

    name: str
    #: the image to run (for ``build``: the tag it is built as)
    image: str
    build: Build | None = None
    command: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    environment: tuple[tuple[str, str], ...] = ()
    mounts: tuple[Mount, ...] = ()
    #: (service, condition) pairs, condition one of service_started, service_healthy
    depends_on: tuple[tuple[str, str], ...] = ()
    healthcheck: Healthcheck | None = None
    hostname: str | None = None
    working_dir: str | None = None
    user: str | None = None
    init: bool = False
    labels: tuple[tuple[str, str], ...] = ()
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    privileged: bool = False


@dataclasses.dataclass(frozen=True)
class ComposeFile:
    path: Path
    name: str
    #: in start order: every service after those it depends on
    services: tuple[ComposeService, ...]
    #: named volumes (made per run, removed with it)
    volumes: tuple[str, ...] = ()
    #: keys that were ignored, with why (print them once)
    notes: tuple[str, ...] = ()

    def service(self, name: str) -> ComposeService:
        return next(s for s in self.services if s.name == name)
