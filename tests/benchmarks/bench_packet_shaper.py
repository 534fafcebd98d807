#!/usr/bin/env python3
"""Throughput and CPU of the user-space packet shaper (``composer_agent.packet_shaper``),
printed as a table (asserts nothing). Needs root, ip and iptables.

    python3 tests/benchmarks/bench_packet_shaper.py [--seconds 3] [--runs 3]

Two namespaces joined by a veth pair; the shaper runs in A with latency 0 (nothing to
do: every packet accepted at once) and with latency 20 ms (every packet held in the
heap and released when due). A UDP sender in A offers 64-byte datagrams at 1k, 10k and
50k packets/s and unpaced (as fast as one Python loop sends); a receiver in B counts
what arrives. Per point, the median of ``--runs`` runs of:

- delivered/s: datagrams B received per second of sending;
- shaped/s: packets the shaper released per second (the helper's own count). Beyond
  the 10000 packets the kernel holds for it, or a full netlink socket, the kernel lets
  packets through unshaped (fail open), so delivered/s may exceed shaped/s;
- helper CPU: the helper's utime+stime (/proc/PID/stat) over the interval, in % of one
  core, and in microseconds per shaped packet.

The sender's socket buffer is raised to 64 MB: held packets stay charged to it (as in
netem), and the default one holds only ~300, which alone caps latency 20 ms at ~14k/s.
The "none" rows are the same flood without the shaper (the sender's own limit). The
machine is shared and has few cores (sender, shaper and receiver compete): compare
rows of one run. Namespaces are removed at the end, also on Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import select
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from bench_local import fmt, log, median, table

REPO = Path(__file__).resolve().parents[2]
NS_A, NS_B = f"cbench{os.getpid()}a", f"cbench{os.getpid()}b"
DST = "10.98.1.2"
RATES = (1000, 10000, 50000, 0)  # 0: unpaced
CLK_TCK = os.sysconf("SC_CLK_TCK")

SENDER = """
    import socket, sys, time
    dst, rate, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    # held packets stay charged to this socket: the default buffer allows ~300 of them
    s.setsockopt(socket.SOL_SOCKET, getattr(socket, "SO_SNDBUFFORCE", 32), 64 << 20)
    data, sent = bytes(36), 0  # 64-byte IP packets
    start = time.perf_counter()
    while True:
        elapsed = time.perf_counter() - start
        if elapsed >= seconds:
            break
        due = int(rate * elapsed) + 1 if rate else sent + 256
        while sent < due:
            try:
                s.sendto(data, (dst, 9997))
            except OSError:
                pass
            sent += 1
        if rate:
            time.sleep(0.0005)
    print(sent, time.perf_counter() - start)
"""
RECEIVER = """
    import socket
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 << 20)
    s.bind(("0.0.0.0", 9997))
    s.settimeout(30)
    print("ready", flush=True)
    count = 0
    try:
        while True:
            s.recv(64)
            count += 1
            s.settimeout(0.5)
    except socket.timeout:
        pass
    print(count)
"""


def sh(*args: str) -> None:
    subprocess.run(args, check=True, capture_output=True)


def make_namespaces() -> None:
    for name in (NS_A, NS_B):
        sh("ip", "netns", "add", name)
        sh("ip", "-n", name, "link", "set", "lo", "up")
    sh("ip", "-n", NS_A, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", NS_B)
    sh("ip", "-n", NS_A, "addr", "add", "10.98.1.1/24", "dev", "v0")
    sh("ip", "-n", NS_B, "addr", "add", f"{DST}/24", "dev", "v1")
    sh("ip", "-n", NS_A, "link", "set", "v0", "up")
    sh("ip", "-n", NS_B, "link", "set", "v1", "up")


def in_ns(namespace: str, code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c",
                             textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, text=True)


class Shaper:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", NS_A, sys.executable, "-m", "composer_agent.packet_shaper",
             "--queue", "3"], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def send(self, obj: object) -> dict:
        self.proc.stdin.write(json.dumps(obj) + "\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 60)
        if not ready:
            raise RuntimeError("the shaper did not answer")
        return json.loads(self.proc.stdout.readline())

    def cpu(self) -> float:
        """Seconds of CPU the helper used so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLK_TCK

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def one_run(shaper: Shaper | None, rate: int, seconds: float) -> tuple[float, float, float, float]:
    """Return (delivered/s, shaped/s, helper CPU %, helper CPU us per shaped packet)."""
    receiver = in_ns(NS_B, RECEIVER)
    if receiver.stdout.readline().strip() != "ready":
        raise RuntimeError("receiver did not start")
    if shaper:
        before, cpu_before = shaper.send({"stats": True})["stats"], shaper.cpu()
    sender = in_ns(NS_A, SENDER, DST, str(rate), str(seconds))
    sent, elapsed = sender.communicate(timeout=seconds + 60)[0].split()
    time.sleep(0.1)  # let the held packets go (latency 20 ms)
    if shaper:
        after, cpu_after = shaper.send({"stats": True})["stats"], shaper.cpu()
    received = int(receiver.communicate(timeout=60)[0])
    duration = float(elapsed)
    if not shaper:
        return received / duration, float("nan"), float("nan"), float("nan")
    shaped = after["released"] - before["released"]
    cpu = cpu_after - cpu_before
    return (received / duration, shaped / duration, 100 * cpu / duration,
            1e6 * cpu / shaped if shaped else float("nan"))


def figure_throughput(seconds: float = 3.0, runs: int = 3) -> str:
    """Shape a UDP flood at several offered rates; return the table."""
    rows = []
    for label, rate in (("unpaced", 0),):
        runs_ = [one_run(None, rate, seconds) for _ in range(runs)]
        rows.append(["none", label, fmt(median([r[0] for r in runs_]), 0), "-", "-", "-"])
        log(f"no shaper, {label}: {rows[-1][2]} delivered/s")
    shaper = Shaper()
    try:
        for latency in (0, 20):
            answer = shaper.send({"default": {"latency": latency}})
            if "applied" not in answer:
                raise RuntimeError(f"shaper: {answer}")
            for rate in RATES:
                label = f"{rate:,}" if rate else "unpaced"
                results = [one_run(shaper, rate, seconds) for _ in range(runs)]
                row = [f"{latency} ms", label] + [
                    fmt(median([r[i] for r in results]), d) for i, d in ((0, 0), (1, 0), (2, 1), (3, 1))]
                rows.append(row)
                log(" | ".join(row))
    finally:
        shaper.close()
    return table(f"packet shaper, 64-byte UDP, {seconds:g} s per run, median of {runs} runs",
                 ["latency", "offered/s", "delivered/s", "shaped/s", "helper CPU %",
                  "CPU us/pkt"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("needs root", file=sys.stderr)
        return 1
    try:
        make_namespaces()
        print(figure_throughput(args.seconds, args.runs))
        return 0
    finally:
        for name in (NS_A, NS_B):
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


if __name__ == "__main__":
    sys.exit(main())
