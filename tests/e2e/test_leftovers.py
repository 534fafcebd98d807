"""Nothing is left behind: many timelines in a row leave no namespace, veth, bridge,
nftables table, cgroup, process or hosts file; a composer killed with SIGKILL (and its
reaper with it) is cleaned up by ``composer gc``, which leaves live runs alone."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from composer import clusters
from composer.clusters import leftovers
from tests.conftest import need, processes_with

pytestmark = pytest.mark.slow


def _resources(block: int | None = None) -> list[str]:
    """Return every composer-named host resource (of ``block``, or of any run)."""
    prefix = f"composer-{block}-" if block else "composer-"
    found = []
    for directory in (Path("/run/netns"), Path("/etc/netns")):
        if directory.is_dir():
            found += [f"{directory}/{n}" for n in os.listdir(directory) if n.startswith(prefix)]
    run = Path("/run/composer")
    if run.is_dir():
        found += [str(run / n) for n in os.listdir(run) if block is None or n == str(block)]
    root = leftovers.cgroup_root()
    if root and (root / "composer").is_dir():
        found += [str(p) for p in (root / "composer").iterdir() if p.is_dir()
                  and (block is None or p.name == str(block))]
    tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    found += [t for t in tables.splitlines()
              if t.startswith(f"table ip composer_{block or ''}")]
    return found


def _of(found: list[str], blocks: set[int]) -> list[str]:
    """Keep the resources of ``blocks``."""
    return [f for f in found if any(f"composer-{b}-" in f or f.endswith(f"/{b}")
                                    or f.endswith(f"composer_{b}") for b in blocks)]


def _mine(found: list[str], blocks: set[int]) -> list[str]:
    """Keep the resources of ``blocks`` that no live run holds: tests in other workers
    run clusters at the same time and may have claimed a block this run released."""
    free = set()
    for block in blocks:
        holder = leftovers.claim(block)
        if holder is not None:
            free.add(block)
            holder.close()
    return _of(found, free)


def _project(project, timeline: str = "0.5s") -> str:
    """Write the test project; return the marker on its services' command lines (unique:
    tests run in parallel)."""
    marker = f"leftover-marker-{os.urandom(4).hex()}"
    project.config(f"""
        [services.db]
        replicas = 2
        command = "python3 -c 'import time; time.sleep(600)' {marker}"

        [explore]
        timeline = "{timeline}"
    """)
    project.command("parallel_driver_ok", "print('ok')\n")
    return marker


def _blocks_used(run_dir: Path) -> set[int]:
    """Return the address blocks the timelines of a run used, from their topology files."""
    blocks = set()
    for topology in run_dir.glob("timelines/*/topology.json"):
        address = topology.read_text().split('"address": "', 1)[1].split('"', 1)[0]
        blocks.add(int(address.split(".")[2]))
    return blocks


@pytest.mark.parametrize("backend", ["netns", "local"])
def test_fifty_timelines_in_a_row_leave_nothing_behind(project, backend):
    need(backend)
    marker = _project(project, timeline="0.3s")
    result = project.composer("explore", "--cluster", backend, "--duration", "75s", "--seed", "3",
                              "--quiet", timeout=600)
    assert result.code in (0, 1), result.output
    run = project.last_run()
    assert project.summary()["timelines"] >= 50, result.output
    blocks = _blocks_used(run)
    assert blocks
    assert _mine(_resources(), blocks) == []
    assert processes_with(marker) == []
    if backend == "netns":  # the default faults include packet faults: shapers ran
        assert processes_with("composer_agent.packet_shaper", orphans=True) == []
    assert not list(Path("/tmp").glob("composer-*"))


def test_gc_cleans_up_after_a_composer_killed_with_its_reaper(project, gc_alone):
    need("netns")
    marker = _project(project, timeline="30s")
    proc = _explore_until_services_run(project, marker)
    try:
        reaper = [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
                  and _parent(p) == proc.pid and b"composer.clusters.leftovers" in _cmdline(p)]
        assert reaper, "composer started no reaper"
        # the reaper first: killed after composer, it may see composer's end and start
        # its sweep in the moment between the two kills, leaving gc nothing to do
        for pid in [*reaper, proc.pid]:
            os.kill(pid, signal.SIGKILL)
        proc.wait()
    finally:
        proc.kill()
    blocks = _blocks_used(project.last_run())
    assert _of(_resources(), blocks), "SIGKILL left nothing for gc to do: the test is void"

    async def live_cluster():  # gc must leave a run that is still going alone
        cluster = clusters.create("netns", project.root / "live")
        await cluster.new_nodes(["kv-1"])
        return cluster

    live = asyncio.run(live_cluster())
    try:
        gc = project.composer("gc")
        assert gc.code == 0, gc.output
        assert "removed network namespace" in gc.stdout
        assert _mine(_resources(), blocks) == []
        assert processes_with(marker) == []
        assert _resources(live.block), "gc removed a live run's namespaces"
    finally:
        asyncio.run(live.cleanup())
    assert _resources(live.block) == []


def test_reaper_alone_cleans_up_after_composer_is_killed(project):
    need("netns")
    marker = _project(project, timeline="30s")
    proc = _explore_until_services_run(project, marker)
    blocks = _blocks_used(project.last_run())
    assert _of(_resources(), blocks)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 20
    while _mine(_resources(), blocks) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _mine(_resources(), blocks) == []
    assert processes_with(marker) == []


def test_a_packet_shaper_dies_with_a_composer_killed_mid_fault(project):
    need("netns", "latency")
    marker = _project(project, timeline="30s")
    proc = _explore_until_services_run(project, marker, faults="latency")
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not _shapers_of(proc.pid):
            time.sleep(0.1)
        shapers = _shapers_of(proc.pid)
        assert shapers, "no latency fault started a shaper within 60 s: the test is void"
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(Path(f"/proc/{p}").exists() for p in shapers):
        time.sleep(0.05)
    assert not [p for p in shapers if Path(f"/proc/{p}/cmdline").exists()
                and b"packet_shaper" in _cmdline(Path(f"/proc/{p}"))]


def _shapers_of(pid: int) -> list[int]:
    return [int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit()
            and _parent(p) == pid and b"composer_agent.packet_shaper" in _cmdline(p)]


def _explore_until_services_run(project, marker: str, faults: str = "none") -> subprocess.Popen:
    proc = subprocess.Popen(
        [sys.executable, "-m", "composer.cli", "explore", "--cluster", "netns", "--duration",
         "5m", "--faults", faults, "--quiet"], cwd=project.root, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while not processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    if not processes_with(marker):
        proc.kill()
        pytest.fail("the services never started")
    return proc


def _parent(proc: Path) -> int:
    try:
        return int((proc / "stat").read_text().split(") ", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return -1


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def test_a_forked_worker_has_its_own_reaper(tmp_path):
    # Workers forked from composer inherit its reaper; the namespaces and rules a worker
    # made must go when that worker dies, not wait for the parent (which here lives on:
    # this test process).
    need("netns")
    from composer.api import Cluster
    from composer.clusters.processes import REAPER

    REAPER.start()
    child = os.fork()
    if child == 0:  # the worker: make a node, then die without any cleanup
        try:
            cluster = Cluster("netns", workdir=tmp_path / "worker")
            cluster.new_node().start(["sleep", "300"])
            (tmp_path / "block").write_text(str(cluster._cluster.block))
        finally:
            os._exit(0)
    os.waitpid(child, 0)
    block = int((tmp_path / "block").read_text())
    assert _resources(block), "the worker made nothing: the test is void"
    deadline = time.monotonic() + 20
    while _resources(block) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = _resources(block)
    if left:  # do not leave them to the next test
        subprocess.run([sys.executable, "-m", "composer.clusters.leftovers", str(block)])
    assert left == []
