"""The composer node image (docker/Dockerfile): the tools and packages a node needs.

Needs a Docker engine (``docker/setup-engine`` as root) and the image
``$COMPOSER_NODE_IMAGE`` (default composer-node:latest, made by ``docker/build-node``).
Without an engine every test is skipped, unless COMPOSER_REQUIRE_DOCKER is set, which
turns the skip into a failure. Only the slow test builds the image, and only when it is
missing; the others skip (or, with COMPOSER_REQUIRE_DOCKER, fail) without it, so run
docker/build-node before the suite. The tests share one xdist group, meant to run the
build before the checks on one worker under --dist loadgroup (but pytest-xdist 3.8 does
not group under pytest 9.2, whose Item.nodeid no longer reads the _nodeid xdist sets).

Every container made here carries the label composer.test=1 and one naming this session;
it is removed in a ``finally``, and the module's teardown checks none is left.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
IMAGE = os.environ.get("COMPOSER_NODE_IMAGE", "composer-node:latest")
SESSION = uuid.uuid4().hex[:12]
LABELS = ["--label", "composer.test=1", "--label", f"composer.test.session={SESSION}"]

pytestmark = pytest.mark.xdist_group("docker-image")


def docker(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout)
    if check and result.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}:\n"
                             f"{result.stdout}{result.stderr}")
    return result


def unavailable(reason: str) -> None:
    """Skip, or fail when COMPOSER_REQUIRE_DOCKER says docker tests must run."""
    if os.environ.get("COMPOSER_REQUIRE_DOCKER"):
        pytest.fail(f"{reason} (COMPOSER_REQUIRE_DOCKER is set)")
    pytest.skip(reason)


def engine_problem() -> str | None:
    if shutil.which("docker") is None:
        return "no docker command (run docker/setup-engine as root)"
    try:
        info = subprocess.run(["docker", "info"], capture_output=True, text=True, timeout=30)
    except subprocess.TimeoutExpired:
        return "'docker info' did not answer within 30 s"
    if info.returncode != 0:
        last = (info.stderr.strip().splitlines() or ["?"])[-1]
        return f"no Docker engine answers 'docker info' ({last}); run docker/setup-engine as root"
    return None


def image_exists() -> bool:
    return docker("image", "inspect", IMAGE, check=False).returncode == 0


@pytest.fixture(scope="module")
def engine() -> Iterator[None]:
    problem = engine_problem()
    if problem:
        unavailable(problem)
    yield
    left = docker("ps", "-aq", "--filter", f"label=composer.test.session={SESSION}",
                  check=False).stdout.split()
    if left:
        docker("rm", "-f", *left, check=False)
    assert not left, f"containers left behind by this module: {left}"


@pytest.fixture(scope="module")
def image(engine: None) -> str:
    if not image_exists():
        unavailable(f"image {IMAGE} is missing: build it with docker/build-node "
                    "(or run the slow test_build_node_image)")
    return IMAGE


@pytest.fixture(scope="module")
def container(image: str) -> Iterator[str]:
    """One running node container, removed at the end of the module."""
    name = f"composer-test-{SESSION}"
    try:
        docker("run", "-d", "--name", name, *LABELS, image)
        yield name
    finally:
        docker("rm", "-f", name, check=False)


def run_in(container: str, *argv: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return docker("exec", container, *argv, timeout=timeout, check=False)


@pytest.mark.slow
def test_build_node_image(engine: None) -> None:
    """docker/build-node builds the image when it is missing (offline if need be)."""
    if image_exists():
        pytest.skip(f"{IMAGE} exists; not rebuilding it (remove it to test the build)")
    build = subprocess.run([str(REPO / "docker" / "build-node")], capture_output=True,
                           text=True, timeout=1800,
                           env={**os.environ, "COMPOSER_NODE_IMAGE": IMAGE})
    assert build.returncode == 0, build.stdout[-4000:] + build.stderr[-4000:]
    assert image_exists()


def test_container_runs_idle(container: str) -> None:
    state = docker("inspect", "--format", "{{.State.Running}} {{json .Config.Cmd}}",
                   container).stdout.split(maxsplit=1)
    assert state[0] == "true"
    assert "sleep" in state[1]


def test_tools_are_present(container: str) -> None:
    tools = ["python3", "nft", "ip", "tc", "faketime", "gcc", "ps", "nsenter"]
    found = run_in(container, "sh", "-c",
                   'for t in "$@"; do command -v "$t" >/dev/null || echo "$t"; done', "sh",
                   *tools)
    assert found.returncode == 0, found.stderr
    assert found.stdout.split() == [], f"missing in {IMAGE}: {found.stdout.split()}"
    libfaketime = run_in(container, "sh", "-c", "ls /usr/lib/*/faketime/libfaketime.so.1")
    assert libfaketime.returncode == 0, libfaketime.stderr
    for argv in (["nft", "--version"], ["ip", "-V"], ["tc", "-V"]):
        ran = run_in(container, *argv)
        assert ran.returncode == 0, f"{argv}: {ran.stdout}{ran.stderr}"


def test_sdk_and_agent_import(container: str) -> None:
    ran = run_in(container, "python3", "-c",
                 "import composer_sdk as sdk, composer_agent, composer_agent.server, aiohttp, antithesis.assertions; "
                 "print(aiohttp.__version__)")
    assert ran.returncode == 0, ran.stderr
    major, minor = map(int, ran.stdout.strip().split(".")[:2])
    assert (major, minor) >= (3, 9), f"aiohttp {ran.stdout.strip()}: the agent needs 3.9+"


def test_agent_serve_help(container: str) -> None:
    ran = run_in(container, "python3", "-m", "composer_agent", "serve", "--help")
    assert ran.returncode == 0, ran.stderr
    assert "--listen" in ran.stdout


def test_clock_fix_builds(container: str) -> None:
    """libfaketime and the compiler work: clock faults are possible on this node."""
    ran = run_in(container, "python3", "-c",
                 "from composer_agent import clock; print(clock.missing())")
    assert ran.returncode == 0, ran.stderr
    assert ran.stdout.strip() == "None", ran.stdout


def test_agent_in_container_answers_host(container: str, tmp_path: Path) -> None:
    """A real agent in the container, heartbeat and a process from the host's client."""
    pytest.importorskip("cryptography")
    from composer_agent.certs import Authority
    from composer_agent.client import AgentClient

    address = docker("inspect", "--format",
                     "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                     container).stdout.split()[0]
    authority = Authority.create(tmp_path / "ca")
    server = authority.issue(tmp_path / "server", "server", server=True, hosts=[address])
    client = authority.issue(tmp_path / "client", "client", server=False)
    docker("exec", container, "mkdir", "-p", "/run/agent-certs")
    for path in (server.ca, server.cert, server.key):
        docker("cp", str(path), f"{container}:/run/agent-certs/{Path(path).name}")
    docker("exec", "-d", container, "sh", "-c",
           f"exec python3 -m composer_agent serve --listen {address}:7800 "
           "--ca /run/agent-certs/ca.pem --cert /run/agent-certs/server.pem "
           "--key /run/agent-certs/server.key --heartbeat-timeout 60 "
           ">/run/agent.log 2>&1")

    async def talk() -> tuple[dict, int, bytes]:
        deadline = time.monotonic() + 30
        async with AgentClient(f"https://{address}:7800", client, timeout=10) as agent:
            while True:
                try:
                    beat = await agent.heartbeat()
                    break
                except Exception:
                    if time.monotonic() > deadline:
                        raise
                    await asyncio.sleep(0.2)
            process = await agent.start(["sh", "-c", "echo hello from $(hostname)"])
            code = await asyncio.wait_for(process.wait(), 30)
            return beat, code, process.stdout_bytes

    try:
        beat, code, output = asyncio.run(talk())
    except BaseException:
        log = run_in(container, "cat", "/run/agent.log")
        print(f"agent log:\n{log.stdout}{log.stderr}")
        raise
    hostname = run_in(container, "hostname").stdout.strip()
    assert beat["ok"] and beat["hostname"] == hostname
    assert "clock" in beat["faults"]
    assert code == 0
    assert output.decode().strip() == f"hello from {hostname}"
