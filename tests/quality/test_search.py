"""Quality: the guided search finds each deep planted bug within its budget on a fixed
seed, and with the bug switched off (the fixed twin) nothing fails.

The deep bugs need a combination a uniform timeline rarely draws (a crash inside a
short window that opens only after many acknowledged operations; a partition of the
node that is leader at that moment with writes on both sides; a pause that outlasts a
lease inside a critical section). tests/benchmarks/bench_search.py measures how much
sooner the guided search finds them than random. These explorations take minutes; they
are marked slow and run in parallel in CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import need
from tests.quality.test_kvstore import composer, copy_example, summary

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

#: example -> (the property its bug breaks, the variable switching it off, fault kind it
#: needs beyond process faults, budget of the guided search)
DEEP = {
    "ledger": ("Acknowledged appends survive a crash", "LEDGER_BUG", None, "6m"),
    # found at 69 s on seed 1 with a core kept busy, yet CI's load once ran 54 timelines
    # (356 s) without it: its window depends on timing; the budget holds the slow case
    "leader": ("Acknowledged writes survive leader changes", "LEADER_BUG", "partition", "10m"),
    "lease": ("Acknowledged updates are never lost", "LEASE_BUG", None, "6m"),
}
#: The deep bugs the guided search finds within its budget today: since focused faults
#: wait for their state, each within about two minutes on every benchmarked seed.
FOUND = ["ledger", "leader", "lease"]
#: A twin that never reaches its bug's window proves nothing (and says so: the window's
#: reachable property is unreached, exit 1). Under CI load 90 s ran 16 ledger timelines
#: and none appended the 50 entries a snapshot needs, so its twin snapshots every 20.
TWIN_ENV = {"ledger": {"LEDGER_SNAPSHOT_EVERY": "20"}}


@pytest.mark.parametrize("name", FOUND)
def test_the_guided_search_finds_the_deep_bug(name, tmp_path):
    prop, _, kind, budget = DEEP[name]
    if kind:
        need("local", kind)
    project = copy_example(EXAMPLES / name, tmp_path)
    result = composer(project, "explore", "--duration", budget, "--seed", "1",
                      "--stop-on-failure", "--reruns", "2", "--shrink-budget", "60s", "--quiet")
    assert result.returncode == 1, result.stdout + result.stderr
    findings = {f["property"]: f for f in summary(project)["findings"]}
    assert prop in findings, (sorted(findings), result.stdout[-3000:])
    finding = findings[prop]
    assert finding["lineage"] and finding["lineage"][0]["timeline"] == finding["first_timeline"]
    assert finding["replay"] and Path(finding["replay"]).is_file()


@pytest.mark.parametrize("name", sorted(DEEP))
def test_the_fixed_twin_never_fails(name, tmp_path):
    _, switch, kind, _ = DEEP[name]
    if kind:
        need("local", kind)
    project = copy_example(EXAMPLES / name, tmp_path)
    result = composer(project, "explore", "--duration", "90s", "--seed", "2", "--quiet",
                      env={switch: "0", **TWIN_ENV.get(name, {})})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert summary(project)["findings"] == []
