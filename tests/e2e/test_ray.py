"""``explore --ray``: a local Ray cluster of a head and a worker node (started here with
``ray start``, one CPU each, stopped at the end) runs an exploration that finds
kvstore's planted bug; a Ray worker killed mid-timeline is an infrastructure event for
that timeline, and the run goes on and leaves nothing behind. Ray is skipped only where
it is not installed, never in CI (the test extra installs it)."""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from composer import project_bundle
from tests.conftest import processes_with
from tests.e2e.test_leftovers import _project

if not os.environ.get("CI"):
    pytest.importorskip("ray", reason="Ray is not installed: pip install 'composer-dst[ray]'")

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).parent / "ray")
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
PLANTED = "Acknowledged writes survive a primary crash"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def ray_cluster():
    """host:port of a head and one worker node on this machine, one CPU each, on
    loopback; a fresh one per test (a test may kill its workers, and pytest may tear a
    module's fixture down between tests that other modules' tests interleave)."""
    # one Ray cluster on this machine at a time, whichever xdist worker asks: `ray stop`
    # stops every Ray here (xdist_group does not group under pytest 9.2)
    lock = open("/tmp/.composer-tests-ray.lock", "a")
    fcntl.flock(lock, fcntl.LOCK_EX)
    port = _free_port()
    address = f"127.0.0.1:{port}"
    try:
        for extra in (["--head", f"--port={port}", "--include-dashboard=false"],
                      [f"--address={address}"]):
            subprocess.run([RAY, "start", *extra, "--num-cpus=1", "--disable-usage-stats",
                            "--node-ip-address=127.0.0.1"],
                           env=ENV, check=True, capture_output=True, timeout=120)
        yield address
    finally:
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=120)
        deadline = time.monotonic() + 30
        while _ray_processes() and time.monotonic() < deadline:
            time.sleep(0.2)
        lock.close()


def _ray_processes() -> list[int]:
    """pids of this machine's Ray processes (workers are named ray::...)."""
    return [pid for pid, cmdline in _processes() if cmdline.startswith(b"ray::")
            or b"/ray/core/src/ray/" in cmdline or b"raylet" in cmdline]


def _processes() -> list[tuple[int, bytes]]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                found.append((int(entry.name), (entry / "cmdline").read_bytes()))
            except OSError:
                pass
    return found


def _explore(root: Path, address: str, *args: str, timeout: float = 600):
    return subprocess.run(
        [sys.executable, "-m", "composer.cli", "explore", str(root), "--ray", address,
         "--json", *args], env=ENV, capture_output=True, text=True, timeout=timeout)


def test_a_ray_cluster_finds_kvstore_bug(tmp_path, ray_cluster):
    root = tmp_path / "kvstore"
    shutil.copytree(REPO / "examples" / "kvstore", root,
                    ignore=shutil.ignore_patterns(".composer", "__pycache__"))
    for seed in (2, 1, 3):  # finding the bug depends on timing: another seed if missed
        proc = _explore(root, ray_cluster, "--duration", "150s", "--stop-on-failure",
                        "--seed", str(seed), "--shrink-budget", "20s", "--reruns", "2")
        assert proc.returncode in (0, 1), proc.stdout + proc.stderr
        summary = json.loads(proc.stdout)
        if summary["findings"]:
            break
    assert [f["property"] for f in summary["findings"]] == [PLANTED], proc.stderr
    assert summary["search"]["jobs"] == 2, "one job per CPU of the Ray cluster"
    assert summary["lost_timelines"] == []
    finding = summary["findings"][0]
    assert finding["reruns"] == 2
    # the failing timeline's files came back from the worker as if it had run here
    directory = Path(finding["directory"])
    assert (directory / "run.json").is_file() and list((directory / "sdk").iterdir())
    assert Path(finding["replay"]).is_file()
    assert not list(project_bundle.BUNDLES.glob("*")), "a worker kept the project"


def _task_workers() -> list[int]:
    """pids of Ray worker processes running a timeline now (Ray names them after it)."""
    return [pid for pid, cmdline in _processes() if cmdline.startswith(b"ray::run_on_worker")]


def test_a_worker_killed_mid_timeline_is_an_infrastructure_event(project, ray_cluster):
    marker = _project(project, timeline="3s")
    proc = subprocess.Popen(
        [sys.executable, "-m", "composer.cli", "explore", "--ray", ray_cluster, "--json",
         "--duration", "40s", "--faults", "none"], cwd=project.root, env=ENV,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not (_task_workers() and processes_with(marker)) and time.monotonic() < deadline:
            time.sleep(0.1)
        workers = _task_workers()
        assert workers, "no timeline ever ran on a Ray worker"
        os.kill(workers[0], signal.SIGKILL)
        out, err = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    summary = json.loads(out)
    assert len(summary["lost_timelines"]) >= 1, err
    assert "lost its job" in err
    assert summary["timelines"] > len(summary["lost_timelines"]), "the search did not go on"
    deadline = time.monotonic() + 30
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == [], "the killed worker's services outlived it"
    assert not list(project_bundle.TASKS.glob("*")), "the killed task's directory"
    assert not list(project_bundle.BUNDLES.glob("*")), "a worker kept the project"


def _two_long_timelines_on_ray(project, address: str) -> tuple[subprocess.Popen, str]:
    marker = _project(project, timeline="30s")
    proc = subprocess.Popen(
        [sys.executable, "-m", "composer.cli", "explore", "--ray", address, "--quiet",
         "--duration", "5m", "--faults", "none"], cwd=project.root, env=ENV,
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while len(processes_with(marker)) < 4 and time.monotonic() < deadline:
        time.sleep(0.1)  # two timelines' services, on the head node and the worker
    if len(processes_with(marker)) < 4:
        proc.kill()
        pytest.fail("two timelines never ran at once")
    return proc, marker


def test_ctrl_c_tears_down_every_task(project, ray_cluster):
    proc, marker = _two_long_timelines_on_ray(project, ray_cluster)
    proc.send_signal(signal.SIGINT)
    try:
        assert proc.wait(timeout=120) == 130, proc.stderr.read()
    finally:
        proc.kill()
    assert processes_with(marker) == [], "Ctrl-C returned before the tasks tore down"
    assert json.loads((project.last_run() / "summary.json").read_text())["stopped_early"]


def test_a_head_killed_mid_timeline_leaves_nothing_running_on_the_workers(project,
                                                                          ray_cluster):
    proc, marker = _two_long_timelines_on_ray(project, ray_cluster)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_with(marker) == [], "a dead head's timelines kept running on Ray"
    deadline = time.monotonic() + 30
    while _task_workers() and time.monotonic() < deadline:
        time.sleep(0.2)  # Ray kills a dead driver's workers on its own schedule
    assert not _task_workers(), "Ray kept a dead head's tasks running"
    gc = subprocess.run([sys.executable, "-m", "composer.cli", "gc"], env=ENV,
                        capture_output=True, text=True, timeout=120)
    assert gc.returncode == 0 and "unpacked project" in gc.stdout, gc.stdout + gc.stderr
    assert not list(project_bundle.BUNDLES.glob("*"))


def test_a_ray_cluster_gone_mid_run_is_an_infrastructure_error(project, ray_cluster):
    marker = _project(project, timeline="30s")
    proc = subprocess.Popen(
        [sys.executable, "-m", "composer.cli", "explore", "--ray", ray_cluster, "--quiet",
         "--duration", "5m", "--faults", "none"], cwd=project.root,
        env={**ENV, "RAY_gcs_rpc_server_reconnect_timeout_s": "3"},
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while not processes_with(marker) and time.monotonic() < deadline:
            time.sleep(0.1)
        subprocess.run([RAY, "stop", "--force"], env=ENV, capture_output=True, timeout=120)
        code = proc.wait(timeout=180)
    finally:
        proc.kill()
    assert code == 3, proc.stderr.read()
    # the cluster took its tasks down with it: what they held on this machine is gc's
    gc = subprocess.run([sys.executable, "-m", "composer.cli", "gc"], env=ENV,
                        capture_output=True, text=True, timeout=120)
    assert gc.returncode == 0, gc.stdout + gc.stderr
    assert not project_bundle.WORKER.exists(), gc.stdout


def test_no_ray_cluster_at_the_address_is_a_clear_error(project):
    project.config('[services.db]\nreplicas = 1\ncommand = "sleep 60"\n')
    project.command("parallel_driver_ok", "print('ok')\n")
    proc = _explore(project.root, f"127.0.0.1:{_free_port()}", "--duration", "5s",
                    timeout=180)
    assert proc.returncode == 3, proc.stdout + proc.stderr
    assert "no Ray cluster answered" in proc.stderr and "ray start --head" in proc.stderr
