"""Helpers of the agent tests: real agents in network namespaces made for one test.

A ``Namespace`` stands for a remote host: its own network stack, reached from the test
over a veth pair on a random /28 in 10.200-250.x.x (so parallel workers don't clash);
more addresses of it serve more agents, which then reach each other as hosts would.
An ``Agent`` is ``python -m composer_agent serve`` started in it with certificates from the test's
own CA. Both are removed by the fixtures in ``conftest.py``, which check that nothing
is left behind: no namespace, no veth, no process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import ipaddress
import os
import random
import select
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

from composer_agent.certs import Credentials

REPO = Path(__file__).resolve().parents[2]
PORT = 7800


def aio(test: Callable[..., Awaitable[None]]) -> Callable[..., None]:
    """Run an ``async def`` test with ``asyncio.run`` (there is no pytest-asyncio)."""

    @functools.wraps(test)
    def run(*args, **kwargs) -> None:
        asyncio.run(test(*args, **kwargs))

    return run


def ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


@dataclasses.dataclass
class Namespace:
    name: str
    veth: str
    host_address: str
    address: str
    spare: list[str]  # more addresses of the subnet, for more agents (add_address)

    @classmethod
    def create(cls) -> Namespace:
        """Make a namespace with loopback up and a veth pair to the root namespace."""
        rng = random.SystemRandom()
        used = ip("-4", "-o", "addr", "show").stdout
        for _ in range(100):
            # 10.213.0.0/20 is the aws tests' stand-in VPC (composer.aws.resources.SUBNET_CIDR)
            a = rng.choice([x for x in range(200, 251) if x != 213])
            b, c = rng.randint(0, 255), rng.randrange(0, 256, 16)
            net = ipaddress.ip_network(f"10.{a}.{b}.{c}/28")
            hosts = [str(h) for h in net.hosts()]
            if not any(f" {h}/" in used for h in hosts):
                break
        tag = f"{rng.getrandbits(32):08x}"
        namespace = cls(f"agtest-{tag}", f"agt{tag}", hosts[0], hosts[1], hosts[2:])
        ip("netns", "add", namespace.name)
        try:
            ip("link", "add", namespace.veth, "type", "veth", "peer", "name", "eth0",
               "netns", namespace.name)
            ip("addr", "add", f"{namespace.host_address}/28", "dev", namespace.veth)
            ip("link", "set", namespace.veth, "up")
            for command in (["link", "set", "lo", "up"],
                            ["addr", "add", f"{namespace.address}/28", "dev", "eth0"],
                            ["link", "set", "eth0", "up"]):
                ip("netns", "exec", namespace.name, "ip", *command)
        except BaseException:
            namespace.delete()
            raise
        return namespace

    def add_address(self) -> str:
        """Give the namespace one more address, for one more agent (one more "host")."""
        address = self.spare.pop(0)
        ip("netns", "exec", self.name, "ip", "addr", "add", f"{address}/28", "dev", "eth0")
        return address

    def pids(self) -> list[int]:
        """Return the live (not zombie) processes inside the namespace."""
        found = ip("netns", "pids", self.name, check=False).stdout.split()
        return [int(pid) for pid in found if alive(int(pid))]

    def delete(self) -> list[str]:
        """Kill what still runs inside, remove the namespace and veth; return leftovers
        (the processes that had to be killed, a veth or namespace that stayed)."""
        leaks = []
        for pid in self.pids():
            leaks.append(f"process {pid}: {cmdline(pid)}")
            os.kill(pid, signal.SIGKILL)
        ip("netns", "delete", self.name, check=False)
        if self.veth:
            ip("link", "delete", self.veth, check=False)  # normally gone with the namespace
        if Path(f"/run/netns/{self.name}").exists():
            leaks.append(f"namespace {self.name}")
        if self.veth and ip("link", "show", self.veth, check=False).returncode == 0:
            leaks.append(f"veth {self.veth}")
        return leaks


@dataclasses.dataclass
class Hosts:
    """Namespaces standing for separate machines on one network: each its own network
    stack (so each agent's rules are its own), all on a bridge that lives in the hub
    namespace (a ``Namespace``, whose veth to the test joins the bridge: the test
    reaches every host directly, and the host's firewall never sees their traffic)."""

    hub: Namespace
    hosts: list[Namespace]

    @classmethod
    def create(cls, count: int) -> Hosts:
        hub = Namespace.create()
        made = cls(hub, [])
        try:
            for command in (["link", "add", "br0", "type", "bridge"],
                            ["addr", "flush", "dev", "eth0"],
                            ["link", "set", "eth0", "master", "br0"],
                            ["link", "set", "br0", "up"]):
                ip("-n", hub.name, *command)
            for index in range(count):
                address = hub.spare.pop(0) if index else hub.address
                host = Namespace(f"{hub.name}-h{index}", "", hub.host_address, address, [])
                ip("netns", "add", host.name)
                made.hosts.append(host)
                ip("-n", hub.name, "link", "add", f"h{index}", "type", "veth", "peer",
                   "name", "eth0", "netns", host.name)
                ip("-n", hub.name, "link", "set", f"h{index}", "master", "br0", "up")
                for command in (["link", "set", "lo", "up"],
                                ["addr", "add", f"{address}/28", "dev", "eth0"],
                                ["link", "set", "eth0", "up"]):
                    ip("-n", host.name, *command)
        except BaseException:
            made.delete()
            raise
        return made

    def delete(self) -> list[str]:
        leaks = []
        for host in self.hosts:
            leaks += host.delete()
        return leaks + self.hub.delete()


@dataclasses.dataclass
class Agent:
    url: str
    process: subprocess.Popen
    namespace: Namespace
    stderr: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> int:
        """SIGTERM the agent and return its exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError(f"agent {self.pid} ignored SIGTERM for 15 s") from None
        finally:
            if self.process.stdout is not None:
                self.process.stdout.close()


def start_agent(namespace: Namespace, server: Credentials, stderr: Path, *,
                heartbeat_timeout: float = 120, root: Path | None = None,
                address: str | None = None,
                hide: Path | Sequence[Path] | None = None) -> Agent:
    """Run ``python -m composer_agent serve`` in ``namespace`` (on ``address``, default its first);
    return once it listens. ``hide`` (a directory, or several): the agent sees an empty
    private tmpfs there instead (a mount namespace of its own), as a machine that shares
    none of those files."""
    hides = [hide] if isinstance(hide, Path) else list(hide or ())
    mount = ["unshare", "-m", "--propagation", "private", "sh", "-c", " && ".join(
        f"mount -t tmpfs composer-test {shlex.quote(str(p))}" for p in hides)
        + ' && exec "$@"', "sh"] if hides else []
    argv = [*mount, "ip", "netns", "exec", namespace.name, sys.executable, "-m", "composer_agent", "serve",
            "--listen", f"{address or namespace.address}:{PORT}", "--ca", str(server.ca),
            "--cert", str(server.cert), "--key", str(server.key),
            "--heartbeat-timeout", str(heartbeat_timeout)]
    if root is not None:
        argv += ["--root", str(root)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with open(stderr, "wb") as errors:  # ip netns exec execs: the pid is the agent's
        process = subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                   stderr=errors)
    agent = Agent("", process, namespace, stderr)
    line = read_line(process, timeout=30)
    prefix = "composer-agent listening on "
    if not line.startswith(prefix):
        agent.stop()
        raise AssertionError(f"agent did not start: {line!r}\n{stderr.read_text()}")
    agent.url = line[len(prefix):].strip()
    return agent


def write_agents_file(path: Path, client: Credentials, agents: list[Agent]) -> Path:
    """Write the agents file listing ``agents``, with composer's ``client`` credentials."""
    path.write_text(f'ca = "{client.ca}"\ncert = "{client.cert}"\nkey = "{client.key}"\n'
                    + "".join(f'\n[[agents]]\nurl = "{a.url}"\n' for a in agents))
    return path


def read_line(process: subprocess.Popen, timeout: float) -> str:
    """Return the first line of ``process``'s stdout ('' if it ends or times out)."""
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        ready, _, _ = select.select([process.stdout], [], [], deadline - time.monotonic())
        if not ready:
            break
        byte = os.read(process.stdout.fileno(), 1)
        if not byte:
            break
        data += byte
    return data.decode(errors="replace")


def alive(pid: int) -> bool:
    """Return whether ``pid`` runs (a zombie, dead but not reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def peak_rss_mib(pid: int) -> float:
    """Return the peak resident memory of ``pid`` (VmHWM), in MiB."""
    status = Path(f"/proc/{pid}/status").read_text()
    line = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return "?"


async def eventually(condition: Callable[[], Awaitable[bool] | bool], timeout: float = 10,
                     what: str = "condition") -> None:
    """Poll ``condition`` until true; fail after ``timeout`` seconds (a bound, not a
    measure: tests assert no timing)."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"{what}: still false after {timeout} s")
        await asyncio.sleep(0.05)
