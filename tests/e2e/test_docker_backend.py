"""The docker backend end to end: containers as nodes (hostname, names, files inside,
the shared project), an exploration with process and network faults, and nothing
labelled left behind by a run or, after a dead run, by ``composer gc``."""

from __future__ import annotations

import asyncio
import json
import sys
import signal
import subprocess
import time
from pathlib import Path

import pytest

from composer import Cluster, clusters
from composer.clusters import leftovers
from tests.conftest import need
from tests.quality.test_kvstore import copy_example

REPO = Path(__file__).resolve().parents[2]


def _labelled(block: int | None = None) -> list[str]:
    label = leftovers.DOCKER_LABEL + (f"={block}" if block is not None else "")
    found = []
    for kind in (["ps", "-aq"], ["network", "ls", "-q"]):
        listing = subprocess.run(["docker", *kind, "--filter", f"label={label}"],
                                 capture_output=True, text=True)
        found += listing.stdout.split()
    return found


def test_containers_are_nodes_that_see_each_other_and_the_project(tmp_path):
    need("docker")
    with Cluster("docker", workdir=tmp_path / "cluster") as cluster:
        a, b = cluster.new_nodes(names=["db-1", "db-2"])
        block = cluster._cluster.block
        assert a.run(["hostname"]).stdout == b"db-1\n"
        assert b.run(["getent", "hosts", "db-1"]).stdout.split()[0].decode() == a.address
        a.send_file("/etc/composer-test", b"inside")  # a path only the container has
        assert a.run(["cat", "/etc/composer-test"]).stdout == b"inside"
        assert not Path("/etc/composer-test").exists()
        # composer's sources are mounted at the same path: the SDK imports
        assert a.run(["python3", "-c", "import composer_sdk as sdk; print(sdk.__file__)"],
                     env={"PYTHONPATH": str(REPO)}, check=True).stdout.startswith(str(REPO).encode())
        assert _labelled(block)
    assert _labelled(block) == []


def test_a_process_has_ended_only_when_its_command_in_the_container_has(tmp_path):
    """nsenter forks the command into the container and dies at once on SIGTERM; the
    wait must still last until the command itself has gone (here it closed its output
    first), or a service restarted at a heal would find its port taken by the old one."""
    need("docker")
    slow_exit = ("trap 'exec >/dev/null 2>&1; sleep 3; echo done > /tmp/exited; exit 0' TERM; echo ready; "
                 "while :; do sleep 0.1; done")
    with Cluster("docker", workdir=tmp_path / "cluster") as cluster:
        node = cluster.new_node()
        service = node.start(["sh", "-c", slow_exit])
        while service.stdout != b"ready\n":  # the trap is set
            time.sleep(0.02)
        service.signal(signal.SIGTERM)
        time.sleep(1)
        assert service.exit_code is None  # still in its trap
        service.wait(timeout=30)
        assert node.run(["cat", "/tmp/exited"]).stdout == b"done\n"
        assert node.run(["pgrep", "-f", "trap"]).exit_code == 1  # nothing left running


@pytest.mark.slow
def test_explore_on_docker_with_faults_leaves_nothing_labelled(tmp_path):
    need("docker", "partition")
    project = copy_example(REPO / "examples" / "kvstore", tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "composer.cli", "explore", str(project),
         "--cluster", "docker", "--duration", "30s", "--seed", "3",
         "--faults", "kill,pause,partition,loss", "--quiet"],
        capture_output=True, text=True, timeout=600, cwd=REPO)
    assert result.returncode in (0, 1), result.stdout + result.stderr  # 1: the planted bug
    run = sorted((project / ".composer" / "runs").iterdir())[-1]
    applied = {entry.get("kind") for path in run.glob("timelines/*/run.json")
               for entry in json.loads(path.read_text())["log"] if entry["what"] == "fault"}
    assert {"partition", "kill"} & applied, applied  # faults really were injected
    assert all(_claimed(b) for b in leftovers._docker_blocks())  # only live runs' containers


def test_gc_removes_the_containers_of_a_dead_run(tmp_path, gc_alone):
    need("docker")

    async def dead_run() -> int:
        cluster = clusters.create("docker", tmp_path)
        await cluster.new_nodes(["n-1", "n-2"])
        cluster._claim.close()  # the run dies without cleaning up: its claim goes
        cluster._claim = None
        return cluster.block

    block = asyncio.run(dead_run())
    assert len(_labelled(block)) == 3  # two containers and the network
    gc = subprocess.run([sys.executable, "-m", "composer.cli", "gc"],
                        capture_output=True, text=True, cwd=REPO, timeout=120)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert "docker container" in gc.stdout and "docker network" in gc.stdout
    assert _labelled(block) == []


def _claimed(block: int) -> bool:
    holder = leftovers.claim(block)
    if holder is None:
        return True  # a live run (another test worker) holds it
    holder.close()
    return False
