"""The aws backend end to end without AWS: moto in server mode is EC2, S3 and IAM, and
network namespaces play the instances it launches (``tests/e2e/ec2.py``), running the
very user data composer wrote. So the whole path is real but the cloud: the agent wheel
fetched from a presigned URL, the run's certificates minted after launch, the agent
served and reached with them, timelines run on it, and every instance terminated on
every way out: success, an error, Ctrl-C."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("boto3", reason="pip install 'composer-dst[test]' for the aws tests")
pytest.importorskip("moto.server", reason="pip install 'moto[server]' for the aws tests")

from composer import aws  # noqa: E402
from composer.aws.fleet import FLEETS, Fleet  # noqa: E402
from composer.clusters.agents import load_agents_file  # noqa: E402
from composer_agent.client import AgentClient, AgentError  # noqa: E402
from composer_agent.tls import Credentials  # noqa: E402
from tests.conftest import need  # noqa: E402
from tests.e2e.ec2 import Instances, Vpc  # noqa: E402
from tests.quality.test_kvstore import PROPERTY  # noqa: E402

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def vpc(monkeypatch):
    need("netns")
    with Vpc.running() as made:
        for key, value in made.environment().items():
            if key.startswith(("AWS_", "COMPOSER_AWS_")):
                monkeypatch.setenv(key, value)
        aws.bootstrap(aws.load(), say=lambda line: None)
        yield made


@pytest.fixture
def instances(vpc, tmp_path):
    played = Instances(vpc, tmp_path / "ec2", hide=tmp_path / "far")
    yield played
    played.close()


def _states(vpc: Vpc) -> dict[str, str]:
    reply = vpc.ec2().describe_instances(Filters=[{"Name": "tag-key", "Values": ["composer:run"]}])
    return {i["InstanceId"]: i["State"]["Name"] for r in reply["Reservations"] for i in r["Instances"]}


def _objects(settings: aws.AwsSettings) -> list[str]:
    conn = aws.connect(settings)
    bucket = aws.resources.bucket_name(conn, settings.name)
    return [o["Key"] for o in conn.s3.list_objects_v2(Bucket=bucket).get("Contents", [])]


async def _run_on(agents_file: Path) -> list[tuple[str, str]]:
    """Run ``ip -4 -o addr show eth0`` through each agent; return (address, output)."""
    listed = load_agents_file(agents_file)
    found = []
    for url, address in zip(listed.urls, listed.addresses):
        async with AgentClient(url, Credentials(listed.ca, listed.cert, listed.key)) as client:
            process = await client.start(["ip", "-4", "-o", "addr", "show", "eth0"], env=None,
                                         cwd="/")
            assert await process.wait() == 0
            found.append((address, process.stdout_bytes.decode()))
    return found


def test_the_user_data_fetches_the_agent_and_serves_with_the_runs_certificates(
        vpc, instances, tmp_path):
    settings = aws.load({"boot_timeout": 120})
    said: list[str] = []
    with Fleet(settings, 2, say=said.append, poll=0.5) as fleet:
        played = {i.address: i for i in instances.wait_played(2)}
        ran = asyncio.run(_run_on(fleet.agents_file))
        assert sorted(a for a, _ in ran) == sorted(played)
        for address, output in ran:  # the command ran on that instance, not here
            assert f"inet {address}/20" in output, (address, output)
        for instance in played.values():
            log = instances.boot_log(instance.id)
            assert "fetching the agent" in log and "serving on port 7800" in log, log
            assert (instance.directory / "node" / "lib" / "composer_agent").is_dir()
            assert "credentials.json" not in os.listdir(instance.directory / "node" / "certs")
        stranger = tmp_path / "stranger"  # a client of another CA is refused
        subprocess.run([sys.executable, "-m", "composer_agent", "certs", str(stranger),
                        "--hosts", "x"], check=True, capture_output=True)

        async def as_stranger() -> None:
            listed = load_agents_file(fleet.agents_file)
            async with AgentClient(listed.urls[0], Credentials(
                    listed.ca, stranger / "client.pem", stranger / "client.key")) as client:
                await client.heartbeat()

        with pytest.raises((AgentError, OSError)):
            asyncio.run(as_stranger())
        assert any(k.startswith("runs/") for k in _objects(settings))
        directory = fleet.directory
    assert set(_states(vpc).values()) == {"terminated"}
    assert not directory.exists(), "the run's keys stay on disk"
    assert not [k for k in _objects(settings) if k.startswith("runs/")], "credentials left in S3"
    assert [k for k in _objects(settings) if k.startswith("agent/")], "the wheel is kept"
    calls = instances.calls.read_text()
    assert calls.count("shutdown -P +") == 2, calls  # each armed its power-off at expiry
    assert any("launching 2 t3.small" in line and "$" in line for line in said), said


def _composer(vpc: Vpc, *args: str, **kwargs) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "composer.cli", *args], cwd=REPO,
                            env=vpc.environment(**kwargs.pop("settings", {})),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def test_ctrl_c_while_instances_boot_terminates_them(vpc, tmp_path):
    """No instance plays here: composer waits for agents that never answer, and is
    interrupted then; what it launched must be terminated and its keys deleted."""
    project = tmp_path / "kvstore"
    subprocess.run(["cp", "-r", str(REPO / "examples" / "kvstore"), str(project)], check=True)
    process = _composer(vpc, "explore", str(project), "--cluster", "aws", "--duration", "5m",
                        "--quiet")
    lines = []
    for line in process.stderr:
        lines.append(line)
        if "waiting for their agents" in line:
            break
    assert _states(vpc) and set(_states(vpc).values()) == {"running"}, lines
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=120)
    assert process.returncode == 130, "".join(lines) + err
    assert set(_states(vpc).values()) == {"terminated"}, err
    assert "terminated 4 instance(s)" in err, err
    assert not [k for k in _objects(aws.load()) if k.startswith("runs/")]


def test_agents_that_never_answer_fail_the_run_as_infrastructure_and_are_terminated(
        vpc, tmp_path):
    project = tmp_path / "kvstore"
    subprocess.run(["cp", "-r", str(REPO / "examples" / "kvstore"), str(project)], check=True)
    process = _composer(vpc, "run", str(project), "--cluster", "aws",
                        "--aws", "boot_timeout=3", "--aws", "instance_type=t3.micro")
    out, err = process.communicate(timeout=120)
    assert process.returncode == 3, out + err
    assert "did not answer within 3s of launch" in err and "boot log" in err, err
    assert "t3.micro" in err
    assert set(_states(vpc).values()) == {"terminated"}


@pytest.mark.slow
def test_explore_on_aws_finds_kvstores_bug_and_leaves_nothing(vpc, instances, tmp_path):
    """Two timelines at once on one fleet: each holds agents of its own."""
    hidden = tmp_path / "far"  # the instances see an empty tmpfs here
    project = hidden / "kvstore"
    hidden.mkdir(exist_ok=True)  # the instances fixture made it
    subprocess.run(["cp", "-r", str(REPO / "examples" / "kvstore"), str(project)], check=True)
    process = _composer(vpc, "explore", str(project), "--cluster", "aws", "--duration", "5m",
                        "--seed", "1", "--stop-on-failure", "--reruns", "1", "--jobs", "2",
                        "--shrink-budget", "30s", "--quiet")
    out, err = process.communicate(timeout=600)
    assert process.returncode == 1, out[-4000:] + err[-3000:]
    assert "launching 8 t3.small instance(s)" in err, err  # 4 nodes, 2 timelines at once
    run = sorted((project / ".composer" / "runs").iterdir())[-1]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["backend"] == "aws"
    assert PROPERTY in {f["property"] for f in summary["findings"]}, out[-3000:]
    assert set(_states(vpc).values()) == {"terminated"}
    deadline = time.monotonic() + 10  # the watcher removes what moto says is terminated
    while instances.played and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not instances.played, list(instances.played)


def test_pytest_on_aws_launches_a_fleet_per_cluster_and_terminates_it(vpc, instances):
    """``pytest examples/hello-pytest --composer-cluster aws``: each test's cluster is
    launched for its nodes (one RunInstances) and terminated when the test ends."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist",
         str(REPO / "examples" / "hello-pytest"), "--composer-cluster", "aws"],
        cwd=REPO, env=vpc.environment(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    out, _ = process.communicate(timeout=300)
    assert process.returncode == 0, out[-4000:]
    assert "2 passed" in out, out[-2000:]
    states = _states(vpc)
    assert len(states) == 3 and set(states.values()) == {"terminated"}, states


def test_instances_of_a_killed_composer_power_off_and_gc_terminates_them(vpc, instances,
                                                                          tmp_path):
    """composer SIGKILLed mid-run: no cleanup of its own runs. Its agents hear no
    heartbeat, power their machines off (which terminates them on EC2), and ``composer gc
    --cluster aws`` terminates what is left of the dead run."""
    hidden = tmp_path / "far"
    project = hidden / "kvstore"
    subprocess.run(["cp", "-r", str(REPO / "examples" / "kvstore"), str(project)], check=True)
    process = _composer(vpc, "explore", str(project), "--cluster", "aws", "--duration", "5m",
                        "--quiet", "--aws", "heartbeat_timeout=3")
    for line in process.stderr:
        if "agent(s) ready" in line:
            break
    played = instances.wait_played(4)
    process.kill()
    process.communicate()
    deadline = time.monotonic() + 60  # each: the agent's power-off, then its script's
    while time.monotonic() < deadline and instances.calls.read_text().count("poweroff") < 8:
        time.sleep(0.2)
    assert instances.calls.read_text().count("poweroff") == 8, instances.calls.read_text()
    for instance in played:
        log = instances.boot_log(instance.id)
        assert "heartbeat lost" in log and "composer-agent: powering off" in log, log
    assert set(_states(vpc).values()) == {"running"}  # moto has no power to lose
    gc = subprocess.run([sys.executable, "-m", "composer.cli", "gc", "--cluster", "aws"],
                        env=vpc.environment(), capture_output=True, text=True, timeout=120)
    assert gc.returncode == 0, gc.stderr
    assert set(_states(vpc).values()) == {"terminated"}, gc.stdout
    assert not list(FLEETS.glob(f"{process.pid}-*")), "the dead run's keys stay on disk"


def test_a_fixture_on_aws_holds_its_instances_until_down(vpc, instances, tmp_path):
    """``composer up --cluster aws``: the conductor launches the fleet, the fixture's
    controls act through the agents, ``down`` terminates the instances."""
    project = tmp_path / "far" / "kvstore"
    subprocess.run(["cp", "-r", str(REPO / "examples" / "kvstore"), str(project)], check=True)
    fixture = tmp_path / "fixture"
    up = _composer(vpc, "up", str(project), "--cluster", "aws", "--fixture", str(fixture),
                   "--aws", "instance_type=t3.micro")
    out, err = up.communicate(timeout=300)
    assert up.returncode == 0, out + err
    assert set(_states(vpc).values()) == {"running"} and len(_states(vpc)) == 4
    types = {i["InstanceType"] for r in vpc.ec2().describe_instances()["Reservations"]
             for i in r["Instances"]}
    assert types == {"t3.micro"}, "up's --aws reached the conductor"
    control = fixture / "kv-2" / "control"
    pid = (fixture / "kv-2" / "pid.txt").read_text()
    for action in ("kill", "start"):
        done = subprocess.run([str(control), action], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr
    assert (fixture / "kv-2" / "pid.txt").read_text() != pid
    down = _composer(vpc, "down", str(fixture))
    out, err = down.communicate(timeout=300)
    assert down.returncode == 0, out + err
    assert set(_states(vpc).values()) == {"terminated"}
    assert not fixture.exists()
