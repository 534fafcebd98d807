"""The user-space packet shaper on real traffic between two network namespaces.

Namespace A (10.99.X.1) and B (10.99.X.2 and .3) are joined by a veth pair; the shaper
runs in A, so it shapes what A sends. Every figure is measured (ping round trips, UDP
sequence numbers, a TCP transfer's hash, the receiver's checksum errors). Needs root,
ip, iptables and ping; the namespaces are deleted however the tests end.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import signal
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
QUEUE = 7
X = os.getpid() % 200 + 20  # addresses live inside private namespaces: clashes are harmless
A_ADDR, B_ADDR, B_ADDR2 = f"10.99.{X}.1", f"10.99.{X}.2", f"10.99.{X}.3"
MISSING = [tool for tool in ("ip", "iptables", "ping") if not shutil.which(tool)]

pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (network namespaces, iptables)"),
    pytest.mark.skipif(bool(MISSING), reason=f"needs {', '.join(MISSING)}"),
]


def sh(*args: str, check: bool = True) -> str:
    done = subprocess.run(args, capture_output=True, text=True, timeout=60)
    if check and done.returncode:
        raise RuntimeError(f"{' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


@pytest.fixture(scope="module")
def ns():
    names = (f"cshape{os.getpid()}a", f"cshape{os.getpid()}b")
    try:
        try:
            for name in names:
                sh("ip", "netns", "add", name)
                sh("ip", "-n", name, "link", "set", "lo", "up")
            a, b = names
            sh("ip", "-n", a, "link", "add", "v0", "type", "veth", "peer", "name", "v1", "netns", b)
            sh("ip", "-n", a, "addr", "add", f"{A_ADDR}/24", "dev", "v0")
            sh("ip", "-n", b, "addr", "add", f"{B_ADDR}/24", "dev", "v1")
            sh("ip", "-n", b, "addr", "add", f"{B_ADDR2}/24", "dev", "v1")
            sh("ip", "-n", a, "link", "set", "v0", "up")
            sh("ip", "-n", b, "link", "set", "v1", "up")
        except (RuntimeError, OSError) as e:
            pytest.skip(f"cannot build the test namespaces: {e}")
        yield names
    finally:
        for name in names:
            subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Helper:
    """One packet_shaper process in namespace ``ns``, driven over its stdin and stdout."""

    def __init__(self, ns: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, "-m", "composer_agent.packet_shaper",
             "--queue", str(QUEUE), *args],
            cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)

    def send(self, obj: object) -> dict:
        line = obj if isinstance(obj, str) else json.dumps(obj)
        self.proc.stdin.write(line.encode() + b"\n")
        self.proc.stdin.flush()
        ready, _, _ = select.select([self.proc.stdout], [], [], 30)
        assert ready, "the shaper did not answer within 30 s"
        answer = self.proc.stdout.readline()
        if not answer:
            raise RuntimeError(f"the shaper exited: {self.proc.stderr.read().decode()}")
        return json.loads(answer)

    def configure(self, obj: object) -> None:
        answer = self.send(obj)
        if "NFQUEUE is not available" in answer.get("error", ""):
            pytest.skip(answer["error"])
        assert "applied" in answer, answer

    def stats(self) -> dict:
        return self.send({"stats": True})["stats"]

    def close(self) -> int:
        """Close stdin (the shaper's cue to stop) and return its exit code."""
        if not self.proc.stdin.closed:
            self.proc.stdin.close()
        return self.proc.wait(timeout=30)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=30)


@pytest.fixture
def helpers(ns):
    started: list[Helper] = []

    def start(*args: str) -> Helper:
        helper = Helper(ns[0], *args)
        started.append(helper)
        return helper

    yield start
    for helper in started:
        helper.kill()


def ping(ns: tuple[str, str], address: str = B_ADDR, count: int = 5) -> list[float]:
    """Round trips in ms of ``count`` pings from A to ``address``."""
    out = sh("ip", "netns", "exec", ns[0], "ping", "-n", "-c", str(count), "-i", "0.2", "-W", "3",
             address, check=False)
    return [float(t) for t in re.findall(r"time=([\d.]+) ms", out)]


@pytest.fixture(scope="module")
def baseline(ns) -> float:
    """The largest unshaped round trip, ms."""
    return max(ping(ns, count=5))


def run_in(namespace: str, code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c",
                             textwrap.dedent(code), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_ready(proc: subprocess.Popen) -> None:
    ready, _, _ = select.select([proc.stdout], [], [], 30)
    assert ready and proc.stdout.readline().strip() == "ready", proc.stderr.read()


UDP_RECEIVER = """
    import json, socket, sys
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    s.bind(("0.0.0.0", 9999))
    s.settimeout(10)
    print("ready", flush=True)
    got = []
    try:
        while len(got) < 2000:
            got.append(int(s.recv(64)))
            s.settimeout(1.0)
    except socket.timeout:
        pass
    print(json.dumps(got))
"""
UDP_SENDER = """
    import socket, sys, time
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for i in range(int(sys.argv[2])):
        s.sendto(str(i).encode(), (sys.argv[1], 9999))
        time.sleep(0.002)
"""


def udp_sequence(ns: tuple[str, str], count: int = 200) -> list[int]:
    """Send ``count`` numbered datagrams from A to B; return the numbers in arrival order."""
    receiver = run_in(ns[1], UDP_RECEIVER)
    try:
        wait_ready(receiver)
        sender = run_in(ns[0], UDP_SENDER, B_ADDR, str(count))
        assert sender.wait(timeout=60) == 0, sender.stderr.read()
        out, err = receiver.communicate(timeout=60)
        assert receiver.returncode == 0, err
        return json.loads(out)
    finally:
        receiver.kill()


def overtaken(numbers: list[int]) -> int:
    """How many datagrams arrived after one sent later (first copies only)."""
    seen, late, highest = set(), 0, -1
    for n in numbers:
        if n in seen:
            continue
        seen.add(n)
        late += n < highest
        highest = max(highest, n)
    return late


def test_latency_raises_round_trips_and_empty_config_restores(ns, baseline, helpers):
    helper = helpers()
    helper.configure({"default": {"latency": 200}})
    slow = ping(ns)
    assert len(slow) == 5
    assert all(160 <= t - baseline <= 240 for t in slow), slow
    helper.configure({})
    fast = ping(ns)
    assert len(fast) == 5 and max(fast) < baseline + 20, fast
    assert helper.close() == 0


def test_jitter_spreads_round_trips(ns, baseline, helpers):
    helper = helpers()
    helper.configure({"default": {"latency": 100, "jitter": 40}})
    rtts = ping(ns, count=20)
    assert len(rtts) == 20
    assert all(60 - 5 <= t <= 140 + baseline + 10 for t in rtts), rtts
    assert statistics.stdev(rtts) > 5, rtts  # uniform(-40, 40) has a stdev of 23 ms
    assert max(rtts) - min(rtts) > 20, rtts


def test_reorder_and_duplicate_in_udp_sequence(ns, helpers):
    helper = helpers()
    helper.configure({"default": {"reorder": 30, "duplicate": 20}})
    got = udp_sequence(ns)
    assert set(got) == set(range(200))
    duplicates = len(got) - 200
    assert 10 <= duplicates <= 80, duplicates  # 40 expected
    assert overtaken(got) >= 10, got  # ~60 held back 10 ms, each overtaken by ~5
    stats = helper.stats()
    assert stats["duplicated"] == duplicates and stats["held"] == 0, stats

    helper.configure({"default": {"latency": 50, "reorder": 25}})  # the chosen skip the delay
    got = udp_sequence(ns)
    assert sorted(got) == list(range(200)), "no loss and no duplicates"
    assert overtaken(got) >= 10, got

    helper.configure({})
    got = udp_sequence(ns)
    assert got == list(range(200)), "in order without reorder"


TCP_SERVER = """
    import hashlib, socket
    server = socket.create_server(("0.0.0.0", 9998))
    server.settimeout(60)
    print("ready", flush=True)
    conn, _ = server.accept()
    conn.settimeout(60)
    digest, size = hashlib.sha256(), 0
    while chunk := conn.recv(1 << 16):
        digest.update(chunk)
        size += len(chunk)
    print(size, digest.hexdigest())
"""
TCP_CLIENT = """
    import random, socket, sys
    data = random.Random(7).randbytes(2 << 20)
    with socket.create_connection((sys.argv[1], 9998), timeout=60) as conn:
        conn.sendall(data)
"""


def tcp_checksum_errors(namespace: str) -> int:
    lines = [line.split() for line in sh("ip", "netns", "exec", namespace, "cat",
                                         "/proc/net/snmp").splitlines() if line.startswith("Tcp:")]
    return int(lines[1][lines[0].index("InCsumErrors")])


def test_tcp_transfer_survives_corruption(ns, helpers):
    import hashlib
    import random
    expected = hashlib.sha256(random.Random(7).randbytes(2 << 20)).hexdigest()
    helper = helpers()
    helper.configure({"default": {"corrupt": 10}})
    errors_before = tcp_checksum_errors(ns[1])
    server = run_in(ns[1], TCP_SERVER)
    try:
        wait_ready(server)
        client = run_in(ns[0], TCP_CLIENT, B_ADDR)
        assert client.wait(timeout=300) == 0, client.stderr.read()
        out, err = server.communicate(timeout=60)
    finally:
        server.kill()
    assert out.split() == [str(2 << 20), expected], err
    stats = helper.stats()
    assert stats["corrupted"] > 0, stats
    # the receiver caught the flipped bits (most land in TCP segments; a few may hit
    # a header field that makes the packet miss the socket altogether)
    assert tcp_checksum_errors(ns[1]) - errors_before > stats["corrupted"] // 2, stats


def test_exempt_address_is_not_delayed(ns, baseline, helpers):
    helper = helpers("--exempt", B_ADDR2)
    helper.configure({"default": {"latency": 200}})
    exempt = ping(ns, B_ADDR2)
    shaped = ping(ns, B_ADDR)
    assert len(exempt) == 5 and max(exempt) < baseline + 20, exempt
    assert all(160 <= t - baseline <= 240 for t in shaped), shaped


def test_rules_pick_shape_by_destination(ns, baseline, helpers):
    helper = helpers()
    helper.configure({"default": {}, "rules": [{"subnet": f"{B_ADDR2}/32", "latency": 150},
                                               {"subnet": f"10.99.{X}.0/24", "latency": 60}]})
    first = ping(ns, B_ADDR2)
    second = ping(ns, B_ADDR)
    assert all(120 <= t - baseline <= 180 for t in first), first
    assert all(48 <= t - baseline <= 72 for t in second), second


TCP_CONNECT = """
    import socket, sys
    try:
        socket.create_connection((sys.argv[1], 9), timeout=3).close()
        print("connected")
    except ConnectionRefusedError:
        print("refused")
    except OSError as e:
        print(type(e).__name__)
"""


def connect(ns: tuple[str, str], address: str) -> str:
    """How a TCP connect from A to ``address`` (port 9: nobody listens) ends: refused
    (B's reset, or a REJECT), or a timeout (dropped)."""
    out, _ = run_in(ns[0], TCP_CONNECT, address).communicate(timeout=30)
    return out.strip()


def test_filters_drop_or_reject_by_subnet_first_match_wins(ns, helpers):
    helper = helpers()
    assert connect(ns, B_ADDR) == connect(ns, B_ADDR2) == "refused"  # B's own reset
    helper.configure({"default": {"filter": "drop"},
                      "rules": [{"subnet": f"{B_ADDR2}/32", "filter": "accept"}]})
    assert connect(ns, B_ADDR) == "TimeoutError" and connect(ns, B_ADDR2) == "refused"
    assert ping(ns, B_ADDR, count=2) == [] and len(ping(ns, B_ADDR2, count=2)) == 2
    helper.configure({"default": {}, "rules": [{"subnet": f"{B_ADDR2}/32", "filter": "accept"},
                                               {"subnet": f"10.99.{X}.0/24", "filter": "reject"}]})
    assert ping(ns, B_ADDR, count=2) == [] and len(ping(ns, B_ADDR2, count=2)) == 2
    rules = sh("ip", "netns", "exec", ns[0], "iptables", "-S")
    assert f"-A COMPOSER_REJECT_{QUEUE} -d 10.99.{X}.0/24 -j REJECT" in rules, rules
    helper.configure({})
    assert len(ping(ns, B_ADDR, count=2)) == 2
    assert helper.close() == 0
    assert "COMPOSER_" not in sh("ip", "netns", "exec", ns[0], "iptables", "-S")


def test_sigkill_bypasses_and_eof_removes_chain(ns, baseline, helpers):
    killed = helpers()
    killed.configure({"default": {"latency": 200}})
    assert min(ping(ns, count=3)) - baseline >= 160
    killed.proc.send_signal(signal.SIGKILL)
    killed.proc.wait(timeout=30)
    after = ping(ns)
    assert len(after) == 5 and max(after) < baseline + 20, after  # queue bypass: no shaper, no loss

    helper = helpers()  # replaces the chain the killed one left
    helper.configure({"default": {"latency": 100}})
    rules = sh("ip", "netns", "exec", ns[0], "iptables", "-t", "mangle", "-S")
    assert rules.count(f"-j COMPOSER_SHAPE_{QUEUE}") == 1, rules
    assert f"--queue-num {QUEUE} --queue-bypass" in rules, rules
    assert helper.close() == 0
    rules = sh("ip", "netns", "exec", ns[0], "iptables", "-t", "mangle", "-S")
    assert "COMPOSER_SHAPE" not in rules, rules
    assert max(ping(ns, count=3)) < baseline + 20


def test_sigterm_releases_held_packets_and_removes_chain(ns, helpers):
    helper = helpers()
    helper.configure({"default": {"latency": 2000}})
    pinger = subprocess.Popen(["ip", "netns", "exec", ns[0], "ping", "-n", "-c", "1", "-W", "5",
                               B_ADDR], stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while helper.stats()["held"] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)  # poll until the echo request is held
    helper.proc.send_signal(signal.SIGTERM)
    assert helper.proc.wait(timeout=30) == 0
    out, _ = pinger.communicate(timeout=30)
    rtt = float(re.findall(r"time=([\d.]+) ms", out)[0])
    assert rtt < 1500, out  # released at exit, not after 2 s, nor dropped
    rules = sh("ip", "netns", "exec", ns[0], "iptables", "-t", "mangle", "-S")
    assert "COMPOSER_SHAPE" not in rules, rules


def test_bad_line_names_the_field_and_keeps_config(ns, baseline, helpers):
    helper = helpers()
    helper.configure({"default": {"latency": 100}})
    assert "default.loss" in helper.send({"default": {"loss": "lots"}})["error"]
    assert "default.corrupt" in helper.send({"default": {"corrupt": 101}})["error"]
    assert "rules[0].subnet" in helper.send({"rules": [{"subnet": "10.1.2.300/24"}]})["error"]
    assert "rules[1].jitter" in helper.send(
        {"rules": [{"subnet": "10.0.0.0/8"}, {"subnet": "10.1.0.0/16", "jitter": -1}]})["error"]
    assert "default.latncy" in helper.send({"default": {"latncy": 5}})["error"]
    answer = helper.send("not json")
    assert "not JSON" in answer["error"] and answer["line"] == 7, answer
    assert helper.send({"default": {"latency": 100}}) == {"applied": 8}
    rtts = ping(ns, count=3)
    assert all(80 <= t - baseline <= 120 for t in rtts), rtts


def test_loss_drops_silently(ns, helpers):
    helper = helpers()
    helper.configure({"default": {"loss": 30}})
    got = udp_sequence(ns)  # the sender would fail on EPERM if dropped in OUTPUT
    assert 100 <= len(got) <= 180, len(got)  # 140 expected
    stats = helper.stats()
    assert stats["dropped"] == 200 - len(got) and stats["received"] == 200, stats


def test_second_helper_on_a_bound_queue_fails_clearly(ns, helpers):
    first = helpers()
    first.configure({})
    second = helpers()
    ready, _, _ = select.select([second.proc.stdout], [], [], 30)  # it fails before reading
    assert ready
    answer = json.loads(second.proc.stdout.readline())
    assert f"binding queue {QUEUE}" in answer["error"], answer
    assert "bound by another process" in answer["error"], answer
    assert second.proc.wait(timeout=30) == 1
    rules = sh("ip", "netns", "exec", ns[0], "iptables", "-t", "mangle", "-S")
    assert rules.count(f"-j COMPOSER_SHAPE_{QUEUE}") == 1, "the first one's chain is intact"
