"""Quality: the stale reads of examples/register are found only by the history checker
(its drivers are the ready-made register workload, asserting nothing), shrunk, drawn in
the report and replayed; the fixed twin passes with every check judged."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.quality.test_kvstore import composer, copy_example, summary

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "register"
PROPERTY = "Register operations are linearizable"


@pytest.fixture
def register(tmp_path: Path) -> Path:
    return copy_example(EXAMPLE, tmp_path)


def test_stale_reads_fail_the_linearizability_check(register):
    result = composer(register, "explore", "--duration", "2m", "--seed", "1",
                      "--stop-on-failure", "--reruns", "3", "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    finding = {f["property"]: f for f in summary(register)["findings"]}[PROPERTY]
    assert finding["reproduced"] >= 1, finding
    run = sorted((register / ".composer" / "runs").iterdir())[-1]
    report = (run / "report.html").read_text()
    assert "cannot be linearized" in report and "cannot follow" in report
    replay = composer(register, "replay", finding["replay"], "--runs", "3")
    assert replay.returncode == 1, replay.stdout + replay.stderr


def test_the_fixed_twin_is_linearizable(register):
    result = composer(register, "explore", "--duration", "90s", "--seed", "2", "--quiet",
                      env={"REGISTER_BUG": "0"})
    assert result.returncode == 0, result.stdout + result.stderr
    prop = next(p for p in summary(register)["properties"] if p["message"] == PROPERTY)
    assert prop["status"] == "pass" and prop["passes"] >= 3 and prop["unknowns"] == 0
