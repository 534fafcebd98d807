"""EC2 without AWS, for the aws backend's tests: moto in server mode, and network
namespaces playing the instances it "launches".

``Vpc`` is the bootstrap's subnet (10.213.0.0/20) made real: a bridge in a hub
namespace, joined by a veth from the test's side holding 10.213.0.1, where moto listens
(so the presigned URLs composer makes reach it from the "instances" too). Only one test
may hold it at a time (a lock file: pytest-xdist's workers share the machine).

``Instances`` watches moto: every new instance of a composer run becomes a namespace
with the instance's private address, in which its user data runs as cloud-init runs it
(root, ``sh``), in a mount namespace of its own where:

- ``poweroff``, ``shutdown`` and ``systemctl`` are a stub that writes down its
  arguments (so the expiry guard and the agent's power-off are seen, and never reach
  this machine);
- ``hide`` is an empty tmpfs (an instance shares no files with composer).

An instance moto says is terminated has its processes killed and its namespace removed,
as EC2 would.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import fcntl
import logging
import os
import random
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

from tests.agent.support import cmdline, ip

HOST_ADDRESS = "10.213.0.1"
PREFIX = 20
REGION = "eu-west-1"
AMI = "ami-12345678"
_LOCK = Path("/tmp/.composer-tests-ec2.lock")  # not a composer-* leftover
_STUB = """#!/bin/sh
echo "$(basename "$0") $*" >> {log}
"""


@dataclasses.dataclass
class Vpc:
    """The stand-in VPC and the moto server in it."""

    hub: str
    veth: str
    moto_url: str
    server: object

    @classmethod
    @contextlib.contextmanager
    def running(cls):
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        from moto.server import ThreadedMotoServer

        with open(_LOCK, "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            tag = f"{random.getrandbits(24):06x}"
            hub, veth = f"ec2hub-{tag}", f"ec2v{tag}"
            ip("netns", "add", hub)
            try:
                ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", hub)
                ip("addr", "add", f"{HOST_ADDRESS}/{PREFIX}", "dev", veth)
                ip("link", "set", veth, "up")
                for command in (["link", "add", "br0", "type", "bridge"],
                                ["link", "set", "eth0", "master", "br0"],
                                ["link", "set", "eth0", "up"], ["link", "set", "br0", "up"],
                                ["link", "set", "lo", "up"]):
                    ip("-n", hub, *command)
                server = ThreadedMotoServer(ip_address=HOST_ADDRESS, port=0, verbose=False)
                server.start()
                host, port = server.get_host_and_port()
                # moto's state is the process's, whichever server serves it: start empty
                urllib.request.urlopen(urllib.request.Request(
                    f"http://{host}:{port}/moto-api/reset", data=b"", method="POST")).close()
                try:
                    yield cls(hub, veth, f"http://{host}:{port}", server)
                finally:
                    server.stop()
            finally:
                ip("netns", "delete", hub, check=False)
                ip("link", "delete", veth, check=False)

    def environment(self, **settings: str) -> dict[str, str]:
        """What a composer process needs to use this VPC's moto, composer's settings
        (``COMPOSER_AWS_<KEY>``) included; nothing that points at real AWS."""
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(("AWS_", "COMPOSER_AWS_"))}
        env.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                   AWS_ENDPOINT_URL=self.moto_url, AWS_EC2_METADATA_DISABLED="true",
                   AWS_CONFIG_FILE="/nonexistent", AWS_SHARED_CREDENTIALS_FILE="/nonexistent")
        settings = {"region": REGION, "ami": AMI, "reach": "private", **settings}
        env.update({f"COMPOSER_AWS_{k.upper()}": str(v) for k, v in settings.items()})
        return env

    def ec2(self):
        import boto3

        return boto3.client("ec2", region_name=REGION, endpoint_url=self.moto_url,
                            aws_access_key_id="testing", aws_secret_access_key="testing")


@dataclasses.dataclass
class Instance:
    id: str
    address: str
    namespace: str
    process: subprocess.Popen
    directory: Path


class Instances:
    """Plays every instance moto launches, until ``close``; see the module's docstring."""

    def __init__(self, vpc: Vpc, directory: Path, hide: Path | None = None) -> None:
        self.vpc, self.directory, self.hide = vpc, directory, hide
        self.stubs = directory / "stubs"
        self.stubs.mkdir(parents=True, exist_ok=True)
        if hide is not None:
            hide.mkdir(parents=True, exist_ok=True)
        self.calls = directory / "power-calls.log"
        for name in ("poweroff", "shutdown", "systemctl"):
            stub = self.stubs / name
            stub.write_text(_STUB.format(log=self.calls))
            stub.chmod(0o755)
        self.played: dict[str, Instance] = {}
        self.terminated: list[str] = []
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._ec2 = vpc.ec2()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.wait(0.3):
            try:
                self._step()
            except BaseException as exc:  # seen by the test through close()
                self.errors.append(exc)
                return

    def _step(self) -> None:
        reply = self._ec2.describe_instances(
            Filters=[{"Name": "tag-key", "Values": ["composer:run"]}])
        for item in (i for r in reply["Reservations"] for i in r["Instances"]):
            state, iid = item["State"]["Name"], item["InstanceId"]
            if state == "running" and iid not in self.played and iid not in self.terminated:
                self._boot(iid, item["PrivateIpAddress"])
            elif state in ("shutting-down", "terminated") and iid in self.played:
                self._end(self.played.pop(iid))
                self.terminated.append(iid)

    def _boot(self, iid: str, address: str) -> None:
        data = self._ec2.describe_instance_attribute(InstanceId=iid, Attribute="userData")
        script = base64.b64decode(data["UserData"]["Value"]).decode()
        index = len(self.played) + len(self.terminated)
        namespace = f"{self.vpc.hub}-i{index}"
        home = self.directory / iid
        home.mkdir()
        (home / "user-data").write_text(script)
        ip("netns", "add", namespace)
        ip("-n", self.vpc.hub, "link", "add", f"i{index}", "type", "veth", "peer", "name",
           "eth0", "netns", namespace)
        ip("-n", self.vpc.hub, "link", "set", f"i{index}", "master", "br0", "up")
        for command in (["link", "set", "lo", "up"],
                        ["addr", "add", f"{address}/{PREFIX}", "dev", "eth0"],
                        ["link", "set", "eth0", "up"]):
            ip("-n", namespace, *command)
        # the stub over systemctl catches poweroff/shutdown/halt by any path; set -e: no
        # user data runs unless every guard is in place
        guard = ("for f in /usr/bin/systemctl /usr/sbin/poweroff /usr/sbin/shutdown "
                 "/usr/sbin/halt /usr/sbin/reboot; do if [ -e \"$f\" ]; then "
                 f'mount --bind {self.stubs}/systemctl "$(readlink -f "$f")"; fi; done; ')
        hide = f"mount -t tmpfs ec2-test {self.hide}; " if self.hide else ""
        boot = (f"set -e; {guard}{hide}"
                f'[ "$(command -v poweroff)" = {self.stubs}/poweroff ]; exec sh {home}/user-data')
        env = {**os.environ, "PATH": f"{self.stubs}:{os.environ['PATH']}",
               "PYTHON": sys.executable, "COMPOSER_NODE_DIR": str(home / "node"),
               "COMPOSER_BOOT_LOG": str(home / "boot.log")}
        env = {k: v for k, v in env.items() if not k.startswith(("AWS_", "COMPOSER_AWS_"))}
        process = subprocess.Popen(
            ["ip", "netns", "exec", namespace, "unshare", "-m", "--propagation", "private",
             "sh", "-c", boot], env=env, stdin=subprocess.DEVNULL,
            stdout=open(home / "console.log", "wb"), stderr=subprocess.STDOUT,
            start_new_session=True)
        self.played[iid] = Instance(iid, address, namespace, process, home)

    def _end(self, instance: Instance) -> list[str]:
        """Kill what runs on ``instance`` and remove its namespace; return what had to be
        killed that was not the instance's own boot."""
        killed = []
        for pid in ip("netns", "pids", instance.namespace, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError):
                killed.append(cmdline(int(pid)))
                os.kill(int(pid), signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(instance.process.pid, signal.SIGKILL)
        instance.process.wait()
        ip("netns", "delete", instance.namespace, check=False)
        return killed

    def boot_log(self, iid: str) -> str:
        path = self.directory / iid / "boot.log"
        return path.read_text() if path.exists() else "(no boot log)"

    def wait_played(self, count: int, timeout: float = 60) -> list[Instance]:
        deadline = time.monotonic() + timeout
        while len(self.played) < count and time.monotonic() < deadline and not self.errors:
            time.sleep(0.1)
        if self.errors:
            raise self.errors[0]
        return list(self.played.values())

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)
        for instance in list(self.played.values()):
            self._end(instance)
        self.played.clear()
        if self.errors:
            raise self.errors[0]
