#!/usr/bin/env python3
"""Figures of the node agent, printed as tables (asserts nothing about time).

    python3 tests/benchmarks/bench_agent.py [--quick] [--only 123]

1. exec round trip of ``true`` through the agent (one client, mutual TLS), median and
   p99 ms, against ``ssh`` to an sshd on loopback in the same run: a new connection per
   command (what a script calling ssh pays) and a multiplexed one (ControlMaster).
   Target: at least 3x faster than ssh.
2. file transfer throughput through the agent (put and get, 200 MB), MB/s, against
   ``scp`` to the same sshd.
3. agents started in parallel: time until 20 agents answer a heartbeat, against 1.

Needs openssh-server and openssh-client (``apt-get install openssh-server``) for the
baselines; without them those rows say so. Everything runs on loopback and under one
temporary directory, removed at the end, also on Ctrl-C. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench_local import fmt, log, median, run_figures, table

from composer_agent.certs import Authority
from composer_agent.client import AgentClient

SSHD = shutil.which("sshd") or ("/usr/sbin/sshd" if os.path.exists("/usr/sbin/sshd") else None)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Agents:
    """Agents on 127.0.0.1, each on a port of its own, killed on exit."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        authority = Authority.create(tmp / "ca")
        self.server = authority.issue(tmp / "server", "agent", server=True, hosts=["127.0.0.1"])
        self.client = authority.issue(tmp / "client", "bench", server=False)
        self.procs: list[subprocess.Popen] = []

    def spawn(self) -> tuple[subprocess.Popen, str]:
        port = free_port()
        root = self.tmp / f"root-{port}"
        root.mkdir()
        proc = subprocess.Popen(
            [sys.executable, "-m", "composer_agent", "serve", "--listen", f"127.0.0.1:{port}",
             "--ca", str(self.server.ca), "--cert", str(self.server.cert),
             "--key", str(self.server.key), "--root", str(root), "--heartbeat-timeout", "120"],
            stdout=subprocess.PIPE, text=True)
        self.procs.append(proc)
        return proc, f"https://127.0.0.1:{port}"

    def start(self) -> str:
        proc, url = self.spawn()
        if "listening" not in (proc.stdout.readline() if proc.stdout else ""):
            raise RuntimeError("the agent did not start")
        return url

    def close(self) -> None:
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
            proc.kill()
        self.procs.clear()


class Sshd:
    """An sshd on 127.0.0.1 with keys of its own, as the baseline. As root it logs in a
    throwaway user whose shell is /bin/sh, so no rc file of this machine's users (pyenv
    in root's .bashrc costs 100 ms) weighs on ssh; the user is deleted at the end."""

    def __init__(self, tmp: Path) -> None:
        self.dir = tmp / "ssh"
        self.dir.mkdir()
        self.port = free_port()
        self.user = os.environ.get("USER", "root")
        if os.geteuid() == 0 and shutil.which("useradd"):
            self.user = f"cbench{os.getpid()}"
            subprocess.run(["useradd", "--no-create-home", "--home-dir", str(self.dir),
                            "--shell", "/bin/sh", "--password", "*", self.user], check=True)
            shutil.chown(self.dir, self.user)
        try:
            self._start()
        except BaseException:
            self.close()
            raise

    def _start(self) -> None:
        for name in ("host", "user"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(self.dir / name)], check=True)
        shutil.copy(self.dir / "user.pub", self.dir / "authorized_keys")
        config = self.dir / "sshd_config"
        config.write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {self.dir / 'host'}\n"
            f"AuthorizedKeysFile {self.dir / 'authorized_keys'}\nPermitRootLogin yes\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {self.dir / 'sshd.pid'}\nSubsystem sftp internal-sftp\n")
        Path("/run/sshd").mkdir(exist_ok=True)  # sshd's privilege separation directory
        self.proc = subprocess.Popen([SSHD, "-D", "-f", str(config), "-E", str(self.dir / "log")])
        self.options = ["-i", str(self.dir / "user"), "-o", "StrictHostKeyChecking=no",
                        "-o", "UserKnownHostsFile=/dev/null", "-o", "BatchMode=yes",
                        "-o", "LogLevel=ERROR"]
        deadline = time.monotonic() + 10
        while self.ssh(["true"]).returncode != 0:
            if time.monotonic() > deadline:
                raise RuntimeError(f"sshd did not start: {(self.dir / 'log').read_text()}")
            time.sleep(0.1)

    def ssh(self, argv: list[str], *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(["ssh", *self.options, *extra, "-p", str(self.port),
                               f"{self.user}@127.0.0.1", *argv],
                              capture_output=True)

    def scp(self, source: str, destination: str) -> None:
        subprocess.run(["scp", "-q", *self.options, "-P", str(self.port), source, destination],
                       check=True)

    def remote(self, path: Path) -> str:
        return f"{self.user}@127.0.0.1:{path}"

    def close(self) -> None:
        if getattr(self, "proc", None) is not None:
            self.proc.terminate()
            self.proc.wait(10)
        if self.user.startswith("cbench"):
            subprocess.run(["userdel", self.user], capture_output=True)


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100)[98] if len(values) >= 2 else float("nan")


def timed(function, runs: int) -> list[float]:
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        function()
        samples.append((time.perf_counter() - started) * 1000)
    return samples


def figure_exec(tmp: Path, quick: bool) -> str:
    runs = 30 if quick else 200
    agents = Agents(tmp / "exec")
    rows = []
    try:
        url = agents.start()

        async def through_agent() -> list[float]:
            async with AgentClient(url, agents.client) as client:
                await client.heartbeat()
                samples = []
                for _ in range(runs + 5):
                    started = time.perf_counter()
                    process = await client.start(["true"])
                    assert await process.wait() == 0
                    samples.append((time.perf_counter() - started) * 1000)
                return samples[5:]  # the first calls warm the connection up

        log(f"figure 1: {runs} x true through the agent")
        agent = asyncio.run(through_agent())
        rows.append(["agent (one client)", fmt(median(agent), 2), fmt(p99(agent), 2), "1.00x"])
        if SSHD and shutil.which("ssh"):
            sshd = Sshd(tmp / "exec")
            try:
                log(f"figure 1: {runs // 4} x ssh true, a connection each")
                plain = timed(lambda: sshd.ssh(["true"]), max(10, runs // 4))
                control = ["-o", "ControlMaster=auto", "-o",
                           f"ControlPath={tmp / 'exec' / 'ssh' / 'mux'}", "-o", "ControlPersist=60"]
                sshd.ssh(["true"], *control)
                log(f"figure 1: {runs} x ssh true over ControlMaster")
                muxed = timed(lambda: sshd.ssh(["true"], *control), runs)
                sshd.ssh(["-O", "exit"], *control)
            finally:
                sshd.close()
            for name, samples in (("ssh, new connection (baseline)", plain),
                                  ("ssh, ControlMaster", muxed)):
                rows.append([name, fmt(median(samples), 2), fmt(p99(samples), 2),
                             f"agent {median(samples) / median(agent):.1f}x faster"])
        else:
            rows.append(["ssh", "n/a", "n/a", "install openssh-server for the baseline"])
    finally:
        agents.close()
    return table(f"1. exec round trip of `true`, ms ({runs} runs; target: agent 3x faster "
                 "than ssh)", ["path", "median ms", "p99 ms", "ratio"], rows)


def figure_files(tmp: Path, quick: bool) -> str:
    size = (50 if quick else 200) * 1024 * 1024
    runs = 1 if quick else 3
    work = tmp / "files"
    work.mkdir(mode=0o755)
    source = work / "source"
    with open(source, "wb") as out:
        for _ in range(size // (1 << 20)):
            out.write(os.urandom(1 << 20))
    agents = Agents(work)
    rows = []
    try:
        url = agents.start()

        async def through_agent() -> tuple[list[float], list[float]]:
            puts, gets = [], []
            async with AgentClient(url, agents.client) as client:
                for i in range(runs):
                    started = time.perf_counter()
                    await client.put_file(str(work / f"put-{i}"), source)
                    puts.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    await client.get_file(str(work / f"put-{i}"), work / f"got-{i}")
                    gets.append(time.perf_counter() - started)
                    (work / f"put-{i}").unlink()
                    (work / f"got-{i}").unlink()
            return puts, gets

        log(f"figure 2: {runs} x {size >> 20} MB up and down through the agent")
        puts, gets = asyncio.run(through_agent())
        mb = size / 1e6
        agent_put, agent_get = mb / median(puts), mb / median(gets)
        rows += [["agent put", fmt(agent_put), ""], ["agent get", fmt(agent_get), ""]]
        if SSHD and shutil.which("scp"):
            sshd = Sshd(work)
            try:
                log(f"figure 2: {runs} x {size >> 20} MB up and down with scp")
                up = timed(lambda: sshd.scp(str(source), sshd.remote(sshd.dir / "scp-up")), runs)
                down = timed(lambda: sshd.scp(sshd.remote(source), str(work / "scp-down")), runs)
            finally:
                sshd.close()
            scp_up, scp_down = mb / (median(up) / 1000), mb / (median(down) / 1000)
            rows += [["scp up (baseline)", fmt(scp_up), f"agent {agent_put / scp_up:.2f}x"],
                     ["scp down (baseline)", fmt(scp_down), f"agent {agent_get / scp_down:.2f}x"]]
        else:
            rows.append(["scp", "n/a", "install openssh-server for the baseline"])
    finally:
        agents.close()
    return table(f"2. file transfer, {size >> 20} MB over loopback, MB/s (median of {runs})",
                 ["path", "MB/s", "ratio"], rows)


def figure_parallel(tmp: Path, quick: bool) -> str:
    runs = 2 if quick else 5
    rows, medians = [], {}
    for count in (1, 20):
        samples = []
        for run in range(runs):
            agents = Agents(tmp / f"parallel-{count}-{run}")
            try:
                log(f"figure 3: {count} agents at once, run {run + 1}/{runs}")
                started = time.perf_counter()
                urls = [agents.spawn()[1] for _ in range(count)]

                async def all_answer() -> None:
                    async def one(url: str) -> None:
                        async with AgentClient(url, agents.client, timeout=5) as client:
                            while True:
                                try:
                                    await client.heartbeat()
                                    return
                                except Exception:
                                    await asyncio.sleep(0.02)
                    await asyncio.gather(*(one(u) for u in urls))

                asyncio.run(all_answer())
                samples.append((time.perf_counter() - started) * 1000)
            finally:
                agents.close()
        medians[count] = median(samples)
        rows.append([f"{count} agent{'s' if count > 1 else ''}", fmt(medians[count]),
                     f"{medians[count] / medians[1]:.1f}x" if count > 1 else "1.0x (baseline)"])
    return table(f"3. agents started in parallel until all answer a heartbeat, ms (median of "
                 f"{runs}; {os.cpu_count()} cores)", ["agents", "ms", "vs 1 agent"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, smaller files")
    parser.add_argument("--only", default="123", help="figures to run, e.g. 13 (default: all)")
    args = parser.parse_args(argv)
    figures = {"1": figure_exec, "2": figure_files, "3": figure_parallel}
    bound = {n: functools.partial(f, quick=args.quick) for n, f in figures.items()}
    return run_figures("agent", bound, args.only, args.quick)


if __name__ == "__main__":
    sys.exit(main())
