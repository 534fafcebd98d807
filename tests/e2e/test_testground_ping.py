"""examples/testground-ping, Testground's canonical test: runners meet through the sync
service, shape their own links with configure_network, and every ping round trip is at
least the latency asked for; with shaping skipped the same assertion fails."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need
from tests.quality.test_kvstore import composer, copy_example

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "testground-ping"
PROPERTY = "Every round trip is at least the configured latency"


def _run(tmp_path: Path, backend: str, **env: str):
    project = copy_example(EXAMPLE, tmp_path)
    return composer(project, "run", "--cluster", backend, "--seed", "1",
                    "--faults", "kill,partition", env=env)


@pytest.mark.parametrize("backend", ["netns", "docker"])
def test_every_round_trip_is_at_least_the_latency_each_runner_asked_for(tmp_path, backend):
    need(backend, "latency")
    result = _run(tmp_path, backend)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    rows = [line.split() for line in result.stdout.splitlines() if line.endswith(PROPERTY)]
    assert rows and rows[0][0] == "PASS" and int(rows[0][2]) >= 3, rows  # once per runner at least
    assert "configure network node=runner-1 seq=1 link=latency 1000ms" in result.stdout


def test_without_shaping_the_round_trip_assertion_fails(tmp_path):
    need("netns", "latency")
    result = _run(tmp_path, "netns", PING_SHAPE="0")
    assert result.returncode == 1, result.stdout[-4000:] + result.stderr[-2000:]
    assert f"FAILED: {PROPERTY}" in result.stdout
