"""Quality: composer finds the planted bug of examples/kvstore, shrinks it to a handful of
events and saves a replay that reproduces it; without the bug the same run passes.

These explorations take minutes; they are marked slow and run in parallel in CI."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "kvstore"
PROPERTY = "Acknowledged writes survive a primary crash"


def copy_example(example: Path, tmp_path: Path) -> Path:
    """Copy an example without its results, so runs and replays stay in ``tmp_path``."""
    copy = tmp_path / example.name
    shutil.copytree(example, copy, ignore=shutil.ignore_patterns(".composer", "__pycache__"))
    return copy


@pytest.fixture
def kvstore(tmp_path: Path) -> Path:
    return copy_example(EXAMPLE, tmp_path)


def composer(project: Path, *args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "composer.cli", *args], cwd=project, text=True,
                          capture_output=True, timeout=1200, env={**os.environ, **(env or {})})


def summary(project: Path) -> dict:
    run = sorted((project / ".composer" / "runs").iterdir())[-1]
    return json.loads((run / "summary.json").read_text())


def test_planted_bug_is_found_shrunk_and_replayed(kvstore):
    # shrinking's default 120 s once ran out under CI's load at 8 events (found at 78 s):
    # each candidate is confirmed by re-runs, which a busy machine makes slow
    result = composer(kvstore, "explore", "--duration", "7m", "--seed", "1", "--stop-on-failure",
                      "--reruns", "5", "--shrink-budget", "240s", "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Failing property: {PROPERTY}" in result.stdout
    findings = {f["property"]: f for f in summary(kvstore)["findings"]}
    finding = findings[PROPERTY]
    assert finding["shrunk_timeline_size"] <= 5, finding
    kinds = [e.get("kind") or e["command"] for e in finding["timeline"]["events"]]
    assert "kill" in kinds, kinds
    assert finding["reproduced"] >= 1, finding
    replay = composer(kvstore, "replay", finding["replay"], "--runs", "5")
    assert replay.returncode == 1, replay.stdout + replay.stderr
    assert "reproduced" in replay.stdout


def test_without_the_bug_the_exploration_passes(kvstore):
    result = composer(kvstore, "explore", "--duration", "2m", "--seed", "1", "--quiet",
                      env={"KVSTORE_BUG": "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary(kvstore)["findings"] == []
