"""A run's instances serving composer's agent: launched, given the run's certificates,
heard from, kept alive, and terminated on every way out (``Fleet``).

Imports ``composer.aws.{agent_wheel,user_data,instances,resources,session,cost}``,
``composer_agent.{certs,client}`` and the standard library. The fleet's product is an
agents file (``composer.clusters.agents``) naming the instances; the ``agents`` backend
runs timelines on them as on any machines. Steps, in order:

1. the agent wheel is put in the bootstrap's bucket (once per content) and presigned;
2. one ``RunInstances`` launches every node with the boot script (``user_data``);
3. once they run, their addresses are known: a CA for the run and one server
   certificate naming every node's addresses are minted here, and put where the boot
   script looks for them (presigned, polled), so no key is ever in the user data;
4. composer waits for each agent's first heartbeat, then beats every few seconds from a
   thread of its own for the life of the fleet (between timelines too): when composer
   dies, the agents power their machines off and EC2 terminates them.

``close`` (also on KeyboardInterrupt, SIGTERM as one, or any error in between)
terminates the instances and deletes the certificates from the bucket and the disk.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from composer.aws import agent_wheel, gc, instances, resources, user_data
from composer.aws.cost import estimate_cost
from composer.aws.session import Aws, aws_errors, connect
from composer.aws.settings import AwsSettings
from composer.errors import ConfigError, InfraError

__all__ = ["Fleet", "FLEETS", "collect"]

#: where fleets keep their run's keys and agents file, one directory each
FLEETS = Path(tempfile.gettempdir()) / ".composer-aws"


class Fleet:
    """``count`` instances of one run, each serving an agent; a context manager."""

    def __init__(self, settings: AwsSettings, count: int, *, say: Callable[[str], None] = print,
                 run_id: str | None = None, hours: float | None = None,
                 poll: float = 2.0) -> None:
        self.settings, self.count, self.say = settings, count, say
        self.run_id = run_id or f"composer-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        self.hours = hours if hours is not None else settings.max_hours
        self.poll = poll
        #: the run's CA, certificates and agents file (removed at close; after a SIGKILL,
        #: by ``collect``: the name starts with this process's id)
        FLEETS.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.directory = Path(tempfile.mkdtemp(prefix=f"{os.getpid()}-", dir=FLEETS))
        self.agents_file = self.directory / "agents.toml"
        self.instances: list[instances.Instance] = []
        self._aws: Aws | None = None
        self._bucket: str | None = None
        self._beating: threading.Event | None = None
        self._beater: threading.Thread | None = None

    @property
    def credentials_key(self) -> str:
        return f"runs/{self.run_id}/credentials.json"

    def __enter__(self) -> Fleet:
        try:
            self.start()
        except BaseException:
            try:
                self.close()
            except Exception as exc:  # the reason it did not start matters more
                self.say(f"also: {exc}")
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start(self) -> None:
        """Launch, certify and hear from every instance; return with the agents file written."""
        settings = self.settings
        with aws_errors():
            self._aws = aws = connect(settings)
            bucket = settings.bucket or resources.find(aws, settings.name).bucket
            if bucket is None:
                raise ConfigError(f"no bucket of bootstrap {settings.name!r} in {aws.region}: "
                                  f"run composer aws bootstrap --region {aws.region} --name "
                                  f"{settings.name} first (or set COMPOSER_AWS_BUCKET)")
            wheel = agent_wheel.build()
            if agent_wheel.upload(aws, bucket, wheel):
                self.say(f"put the agent ({len(wheel.data) // 1024} KiB) in s3://{bucket}")
            script = user_data.script(
                agent_wheel.presign(aws, bucket, wheel.key, settings.max_hours), wheel.digest,
                agent_wheel.presign(aws, bucket, self.credentials_key, settings.max_hours),
                port=resources.AGENT_PORT, heartbeat_timeout=settings.heartbeat_timeout)
            self.say(f"launching {self.count} {settings.instance_type} instance(s) in "
                     f"{aws.region} for run {self.run_id}: "
                     f"{estimate_cost(settings, self.count, self.hours)}")
            self.instances = instances.launch(settings, self.run_id, self.count, script,
                                              aws=aws, poll=self.poll)
            self._certify(aws, bucket)
        self.say(f"{self.count} instance(s) running; waiting for their agents")
        asyncio.run(_first_heartbeats(self.agents_file, settings.boot_timeout, self.poll))
        self._beating = threading.Event()
        self._beater = threading.Thread(target=_beat_until, name="composer-aws-heartbeats",
                                        args=(self.agents_file, settings.heartbeat_timeout,
                                              self._beating), daemon=True)
        self._beater.start()
        self.say(f"{self.count} agent(s) ready")

    def _certify(self, aws: Aws, bucket: str) -> None:
        """Mint the run's CA and certificates now that the addresses are known; publish
        the agents' and write the agents file."""
        from composer_agent.certs import Authority

        hosts = sorted({a for i in self.instances
                        for a in (i.private_address, i.public_address) if a})
        hours = self.settings.max_hours + 1
        authority = Authority.create(self.directory, hours=hours)
        server = authority.issue(self.directory, "server", server=True, hosts=hosts, hours=hours)
        authority.issue(self.directory, "client", server=False, hours=hours)
        bundle = {"ca.pem": authority.cert.read_text(), "server.pem": server.cert.read_text(),
                  "server.key": server.key.read_text()}
        self._bucket = bucket  # from here on, close deletes them
        aws.s3.put_object(Bucket=bucket, Key=self.credentials_key,
                          Body=json.dumps(bundle).encode(), ContentType="application/json")
        lines = ['ca = "ca.pem"', 'cert = "client.pem"', 'key = "client.key"']
        for instance in self.instances:
            dial = (instance.public_address if self.settings.reach == "public"
                    else instance.private_address)
            if not dial or not instance.private_address:
                raise InfraError(f"instance {instance.id} has no {self.settings.reach} address"
                                 + (": the subnet gives none; set reach=private and run "
                                    "composer inside the VPC" if self.settings.reach == "public"
                                    else ""))
            lines += ["", "[[agents]]", f'url = "https://{dial}:{resources.AGENT_PORT}"',
                      f'address = "{instance.private_address}"']
        self.agents_file.write_text("\n".join(lines) + "\n")

    def close(self) -> None:
        """Stop beating, terminate the instances, delete the certificates; safe twice."""
        from composer.interrupts import interrupts_deferred

        with interrupts_deferred():  # a second Ctrl-C must not leave instances running
            if self._beating is not None:
                self._beating.set()
                self._beater.join(10)
                self._beating = None
            errors = []
            if self._aws is not None:
                try:
                    ids = instances.terminate(self.settings, self.run_id, aws=self._aws,
                                              poll=self.poll)
                    if ids:
                        self.say(f"terminated {len(ids)} instance(s) of run {self.run_id}")
                except Exception as exc:
                    errors.append(exc)
                if self._bucket is not None:
                    try:
                        with aws_errors():
                            self._aws.s3.delete_object(Bucket=self._bucket,
                                                       Key=self.credentials_key)
                    except Exception as exc:
                        errors.append(exc)
                self._aws = None
            shutil.rmtree(self.directory, ignore_errors=True)
            if errors:
                raise InfraError(f"aws cleanup of run {self.run_id}: {errors[0]}; "
                                 "composer gc --cluster aws terminates what is left")


def _clients(agents_file: Path) -> list:
    from composer.clusters.agents import load_agents_file
    from composer_agent.client import AgentClient
    from composer_agent.tls import Credentials

    listed = load_agents_file(agents_file)
    credentials = Credentials(listed.ca, listed.cert, listed.key)
    return [AgentClient(url, credentials, timeout=10) for url in listed.urls]


async def _first_heartbeats(agents_file: Path, timeout: float, poll: float) -> None:
    """Return once every agent answered a heartbeat; ``InfraError`` after ``timeout``."""
    clients = _clients(agents_file)
    deadline = time.monotonic() + timeout

    async def heard(client) -> None:
        while True:
            try:
                await client.heartbeat()
                return
            except Exception as exc:
                if time.monotonic() > deadline:
                    raise InfraError(f"the agent at {client.url} did not answer within "
                                     f"{timeout:g}s of launch ({exc}); its boot log is "
                                     f"{user_data.BOOT_LOG} on the instance") from None
            await asyncio.sleep(poll)

    try:
        await asyncio.gather(*(heard(c) for c in clients))
    finally:
        await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)


def _beat_until(agents_file: Path, timeout: float, stop: threading.Event) -> None:
    """Heartbeat every agent every sixth of their ``timeout`` until ``stop`` is set."""

    async def beat() -> None:
        clients = _clients(agents_file)
        try:
            while not stop.is_set():
                await asyncio.gather(*(c.heartbeat() for c in clients), return_exceptions=True)
                await asyncio.get_running_loop().run_in_executor(
                    None, stop.wait, timeout / 6)
        finally:
            await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)

    asyncio.run(beat())


def collect() -> list[str]:
    """Remove the directories (the run's keys) of fleets whose composer died."""
    removed = []
    for directory in sorted(FLEETS.iterdir()) if FLEETS.is_dir() else []:
        pid = directory.name.split("-", 1)[0]
        if pid.isdigit() and not gc.composer_alive(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(f"aws run keys {directory} (composer {pid} is gone)")
    return removed
