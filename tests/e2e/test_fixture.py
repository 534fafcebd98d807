"""``composer up``/``down``: a live cluster as a directory of control scripts (cthulhu's).

Real services (examples/kvstore), real signals and network rules; each test brings its
fixture down, and checks nothing of it stays: no process, no directory."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.agent.support import alive
from tests.conftest import need, processes_with
from tests.e2e.test_docker_backend import _labelled

REPO = Path(__file__).resolve().parents[1].parent
EXAMPLES = REPO / "examples"


def composer(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "composer.cli", *args], capture_output=True,
                          text=True, timeout=timeout)


def control(path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(path), *args], capture_output=True, text=True, timeout=120)


@pytest.fixture
def kvstore(tmp_path: Path) -> Path:
    project = tmp_path / "kvstore"
    shutil.copytree(EXAMPLES / "kvstore", project, ignore=shutil.ignore_patterns(".composer"))
    return project


def up(project: Path, fixture: Path, cluster: str = "local") -> subprocess.CompletedProcess:
    result = composer("up", str(project), "--cluster", cluster, "--fixture", str(fixture))
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def test_up_lays_out_the_cluster_and_control_acts_on_the_right_node(kvstore, tmp_path):
    fixture = tmp_path / "kv"
    up(kvstore, fixture)
    try:
        topology = json.loads((fixture / "topology.json").read_text())
        addresses = {n["name"]: n["address"] for n in topology["nodes"]}
        for name, address in addresses.items():  # a name link and a directory per node
            assert os.readlink(fixture / name) == address
            assert (fixture / address / "control").is_file()
        kv2 = fixture / "kv-2"
        assert "--listen " + addresses["kv-2"] in (kv2 / "etc" / "command").read_text()
        assert "COMPOSER_NODE=kv-2" in (kv2 / "etc" / "environment").read_text().splitlines()
        pid = int((kv2 / "pid.txt").read_text())
        others = {n: int((fixture / n / "pid.txt").read_text()) for n in ("kv-1", "kv-3")}
        assert alive(pid) and all(alive(p) for p in others.values())
        killed = control(kv2 / "control", "kill")
        assert killed.returncode == 0, killed.stderr
        assert not alive(pid), "the kill killed that node's service"
        assert all(alive(p) for p in others.values()), "and no other"
        assert control(kv2 / "control", "status").stdout == "killed\n"
        started = control(kv2 / "control", "start")
        assert started.returncode == 0, started.stderr
        restarted = int((kv2 / "pid.txt").read_text())
        assert restarted != pid and alive(restarted), "pid.txt follows the restart"
        assert (kv2 / "data" / "kv.log").exists(), "data/ is the node's data directory"
        assert list((kv2 / "var").glob("service-2.*")), "var/ holds the restarted one's logs"
        ran = control(fixture / "client-1" / "control", "exec", "sh", "-c",
                      "echo $COMPOSER_NODE; exit 3")
        assert (ran.returncode, ran.stdout) == (3, "client-1\n")
        paused = control(fixture / "control", "pause", "kv-3")
        assert paused.returncode == 0 and control(fixture / "kv-3" / "control", "status"
                                                  ).stdout.startswith("paused")
        assert control(fixture / "kv-3" / "control", "resume").returncode == 0
    finally:
        down = composer("down", str(fixture))
    assert down.returncode == 0, down.stderr
    assert not fixture.exists()
    assert not processes_with(str(kvstore)), "no service outlives down"
    run_dir = down.stdout.split("recorded in ")[1].split()[0]
    summary = json.loads((Path(run_dir) / "summary.json").read_text())
    assert summary["exit_code"] == 0 and summary["backend"] == "local"
    assert composer("report", run_dir).returncode == 0


def test_bad_requests_say_what_is_wrong(kvstore, tmp_path):
    fixture = tmp_path / "kv"
    up(kvstore, fixture)
    try:
        again = composer("up", str(kvstore), "--fixture", str(fixture))
        assert again.returncode == 2 and "is already a fixture" in again.stderr, again.stderr
        for args, message in ((["bogus"], "unknown action 'bogus'"),
                              (["partition", "kv-1"], "usage: control partition"),
                              (["loss", "kv-9", "30"], "usage: control loss NODE PCT"),
                              (["loss", "kv-1", "lots"], "'lots' is not a number")):
            result = control(fixture / "control", *args)
            assert result.returncode == 2 and message in result.stderr, (args, result.stderr)
        driver = control(fixture / "client-1" / "control", "kill")
        assert driver.returncode == 2 and "runs no service" in driver.stderr
    finally:
        assert composer("down", str(fixture)).returncode == 0
    gone = composer("status", str(fixture))
    assert gone.returncode == 2 and "not a composer fixture" in gone.stderr


def test_a_setup_that_fails_says_why_and_leaves_nothing(kvstore, tmp_path):
    config = kvstore / "composer.toml"
    config.write_text(config.read_text().replace("python3 -m kvstore", "python3 -m nosuchmodule"))
    fixture = tmp_path / "kv"
    result = composer("up", str(kvstore), "--fixture", str(fixture), "--setup-timeout", "10s")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "up failed: setup failed: service kv-" in result.stderr, result.stderr
    assert "No module named nosuchmodule" in result.stderr, "the log's last lines"
    assert not fixture.exists()
    assert not processes_with(str(kvstore))


def test_a_conductor_killed_with_sigkill_leaves_nothing_gc_does_not_remove(kvstore, tmp_path):
    fixture = tmp_path / "kv"
    up(kvstore, fixture)
    pid = json.loads((fixture / ".composer-fixture").read_text())["pid"]
    services = [int((fixture / n / "pid.txt").read_text()) for n in ("kv-1", "kv-2", "kv-3")]
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 30  # the backend's reaper ends the services
    while any(alive(p) for p in services) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not any(alive(p) for p in services)
    gc = composer("gc")
    assert gc.returncode == 0 and f"fixture {fixture}" in gc.stdout, gc.stdout
    assert not fixture.exists()


def test_network_faults_from_control_cut_traffic_as_in_timelines(kvstore, tmp_path):
    need("netns", "partition")
    fixture = tmp_path / "kv"
    up(kvstore, fixture, "netns")
    kv1 = json.loads((fixture / "topology.json").read_text())["nodes"][0]["address"]
    probe = ["python3", "-c", "import socket, sys; socket.create_connection((sys.argv[1], 7000), "
             "timeout=1).close()", kv1]
    try:
        assert control(fixture / "kv-2" / "control", "exec", *probe).returncode == 0
        cut = control(fixture / "control", "partition", "kv-1", "kv-2,kv-3")
        assert cut.returncode == 0, cut.stderr
        assert control(fixture / "kv-2" / "control", "exec", *probe).returncode != 0
        assert control(fixture / "client-1" / "control", "exec", *probe).returncode == 0, \
            "drivers reach every node, as in timelines"
        assert "fault: partition" in control(fixture / "control", "status").stdout
        assert control(fixture / "control", "heal").returncode == 0
        assert control(fixture / "kv-2" / "control", "exec", *probe).returncode == 0
    finally:
        assert composer("down", str(fixture)).returncode == 0
    block = kv1.split(".")[2]  # 10.77.<block>.i names the run's namespaces
    namespaces = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert f"composer-{block}-" not in namespaces, namespaces
    assert not processes_with(str(kvstore))


@pytest.mark.parametrize("cluster", ["local", "netns"])
def test_the_bats_example_passes(cluster, tmp_path):
    if shutil.which("bats") is None:
        (pytest.fail if os.environ.get("COMPOSER_REQUIRE_NETWORK") else pytest.skip)(
            "bats is not installed (apt-get install bats)")
    if cluster == "netns":
        need("netns", "partition")
    project = tmp_path / "kvstore"
    shutil.copytree(EXAMPLES / "kvstore", project, ignore=shutil.ignore_patterns(".composer"))
    env = {**os.environ, "COMPOSER_CLUSTER": cluster,
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bats", str(project / "bats")], capture_output=True, text=True,
                            env=env, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "ok 2" in result.stdout


def test_up_and_down_on_docker_leave_no_container(kvstore, tmp_path):
    need("docker", "partition")
    fixture = tmp_path / "kv"
    up(kvstore, fixture, "docker")
    address = json.loads((fixture / "topology.json").read_text())["nodes"][0]["address"]
    block = int(address.split(".")[2])  # 10.78.<block>.i: the run's labels carry it
    try:
        pid = int((fixture / "kv-2" / "pid.txt").read_text())
        assert control(fixture / "kv-2" / "control", "kill").returncode == 0
        assert control(fixture / "kv-2" / "control", "start").returncode == 0
        assert int((fixture / "kv-2" / "pid.txt").read_text()) != pid
        assert control(fixture / "control", "partition", "kv-1", "kv-2,kv-3").returncode == 0
        put = control(fixture / "client-1" / "control", "exec", "python3",
                      str(kvstore / "bats" / "kv.py"), "put", "kv-1", "k", "v")
        assert put.returncode == 0 and '"replicas": 0' in put.stdout, put.stdout
    finally:
        assert composer("down", str(fixture)).returncode == 0
    assert not fixture.exists()
    assert _labelled(block) == [], "no container or network of the fixture stays"
