"""Shared fixtures: ``project`` writes a composer project into a temporary directory and
runs the real ``composer`` command on it (modelled on pytest's pytester)."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


@dataclasses.dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


class Project:
    """A composer project under construction in ``root``."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def config(self, text: str) -> Path:
        path = self.root / "composer.toml"
        path.write_text(textwrap.dedent(text))
        return path

    def command(self, name: str, body: str, template: str = "main",
                executable: bool = True) -> Path:
        """Write a command; a body without a shebang becomes a Python 3 script."""
        body = textwrap.dedent(body).lstrip("\n")
        if not body.startswith("#!"):
            body = "#!/usr/bin/env python3\n" + body
        path = self.root / "drivers" / template / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(body)
        path.chmod(0o755 if executable else 0o644)
        return path

    def composer(self, *args: str, timeout: float = 300, env: dict | None = None) -> Result:
        """Run the composer command in a subprocess, in the project directory."""
        proc = subprocess.run(
            [sys.executable, "-m", "composer.cli", *args], cwd=self.root, text=True,
            capture_output=True, timeout=timeout, env={**os.environ, **(env or {})},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def summary(self) -> dict:
        """Return the summary.json of the most recent run."""
        runs = sorted((self.root / ".composer" / "runs").iterdir())
        return json.loads((runs[-1] / "summary.json").read_text())

    def last_run(self) -> Path:
        return sorted((self.root / ".composer" / "runs").iterdir())[-1]


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)


def processes_with(marker: str, orphans: bool = False) -> list[str]:
    """Return the command lines of live processes whose command line contains ``marker``
    (``orphans``: only those whose parent died, adopted by init)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            state, parent = (entry / "stat").read_text().split(") ", 1)[1].split()[:2]
        except (OSError, IndexError, ValueError):
            continue
        if marker in cmdline and state != "Z" and (not orphans or parent == "1"):
            found.append(cmdline)
    return found


def need(backend: str, kind: str | None = None) -> None:
    """Skip unless ``backend`` runs here (and applies ``kind`` faults); with
    COMPOSER_REQUIRE_NETWORK set (tests/run as root) fail instead, so CI never passes a
    network test by skipping it."""
    from composer import clusters
    from composer.errors import ConfigError

    try:
        missing = kind is not None and kind not in clusters.capabilities(backend)
        reason = clusters.limitations(backend).get(kind or "", "") if missing else ""
    except ConfigError as exc:
        missing, reason = True, str(exc)
    if not missing:
        return
    required = "COMPOSER_REQUIRE_DOCKER" if backend in ("docker", "compose") else "COMPOSER_REQUIRE_NETWORK"
    if os.environ.get(required):
        pytest.fail(f"{backend} {kind or ''}: {reason} ({required} is set)")
    pytest.skip(f"{backend} {kind or ''}: {reason}")


@pytest.fixture
def gc_alone():
    """Hold a lock that every test leaving a dead run for ``composer gc`` takes: ``gc``
    sweeps every dead run, so two such tests on two workers would clean up each other's
    and one would find "nothing to remove"."""
    import fcntl

    with open("/tmp/.composer-tests-gc.lock", "w") as lock:  # not a composer-* leftover
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield
