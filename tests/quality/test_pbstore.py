"""Quality: composer finds the partition-only bug of examples/pbstore on the netns
backend, shrinks it to a timeline with a partition and replays it; with network faults
disabled the same exploration finds nothing.

These explorations take minutes; they are marked slow and run in parallel in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need
from tests.quality.test_kvstore import composer, copy_example, summary

pytestmark = pytest.mark.slow

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "pbstore"
PROPERTY = "Acknowledged writes survive a network partition"


@pytest.fixture
def pbstore(tmp_path: Path) -> Path:
    return copy_example(EXAMPLE, tmp_path)


def test_partition_bug_is_found_on_netns_shrunk_and_replayed(pbstore):
    need("netns", "partition")
    result = composer(pbstore, "explore", "--cluster", "netns", "--duration", "5m", "--seed", "1",
                      "--stop-on-failure", "--reruns", "5", "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"Failing property: {PROPERTY}" in result.stdout
    finding = {f["property"]: f for f in summary(pbstore)["findings"]}[PROPERTY]
    kinds = [e.get("kind") for e in finding["timeline"]["events"]]
    # a network fault: a partition, or loss heavy enough to time replication out too
    assert {"partition", "loss"} & set(kinds), finding["timeline"]
    assert finding["shrunk_timeline_size"] <= finding["first_timeline_size"]
    assert finding["reproduced"] >= 1, finding
    replay = composer(pbstore, "replay", finding["replay"], "--runs", "5")
    assert replay.returncode == 1, replay.stdout + replay.stderr


def test_without_network_faults_the_bug_is_not_found(pbstore):
    need("netns")
    result = composer(pbstore, "explore", "--cluster", "netns", "--duration", "2m", "--seed", "1",
                      "--faults", "kill,stop,pause,clock", "--quiet")
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary(pbstore)["findings"] == []
