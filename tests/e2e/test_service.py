"""``composer.Service`` (ducktape's service model) on real processes of each API backend:
start waits for every node and names the one that is not up, a bounce keeps a node's data
unless ``clean=True``, ``run_parallel`` raises the first failure and stops the others, and
the pytest plugin puts every node's logs in the test's directory and in junit.xml."""

from __future__ import annotations

import os
import signal
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import composer
from composer.service import ServiceFailed, ServiceStopped, ServiceTimeout, run_parallel
from tests.conftest import need, processes_with

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["local", "netns", "docker", "agents"]
pytest_plugins = ["pytester"]

#: a node's program: counts its boots in its data directory, then tells each caller
#: "<boots> <pid>" on port 7000 until it is stopped
COUNTER = """
import os, socket, sys
address, data = sys.argv[1], sys.argv[2]
os.makedirs(data, exist_ok=True)
with open(os.path.join(data, "boots"), "a") as boots:
    boots.write("boot\\n")
count = len(open(os.path.join(data, "boots")).read().splitlines())
print(f"booted {count} times", flush=True)
with socket.create_server((address, 7000)) as server:
    while True:
        conn, _ = server.accept()
        conn.sendall(f"{count} {os.getpid()}\\n".encode())
        conn.close()
"""


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param in ("netns", "docker"):
        need(request.param)
    return request.param


@pytest.fixture
def cluster(backend, request, tmp_path):
    agents = request.getfixturevalue("agents_file") if backend == "agents" else None
    with composer.Cluster(backend, workdir=tmp_path / "cluster", agents=agents) as made:
        yield made


def ask(node: composer.Node) -> tuple[int, int]:
    """Return (boots, pid) from the counter on ``node``; ``OSError`` if it is not up."""
    with node.dial(7000, timeout=1) as sock:
        sock.settimeout(5)
        answer = b""
        while not answer.endswith(b"\n"):
            chunk = sock.recv(100)
            if not chunk:
                raise ConnectionResetError(f"{node.name} hung up after {answer!r}")
            answer += chunk
    boots, pid = answer.split()
    return int(boots), int(pid)


class Counter(composer.Service):
    num_nodes = 2
    logs = {"boots": "data/boots"}

    def start_node(self, node):
        self.start_process(node, ["python3", "-c", COUNTER, node.address,
                                  str(self.data_dir(node))])

    def alive(self, node):
        return ask(node)[0] > 0


def test_start_waits_for_every_node_and_a_bounce_keeps_data_unless_clean(cluster):
    counter = Counter(cluster, num_nodes=3)
    assert [n.name for n in counter.nodes] == ["counter-1", "counter-2", "counter-3"]
    counter.start()
    first = {n.name: ask(n) for n in counter.nodes}
    assert all(boots == 1 for boots, _ in first.values())

    one, two = counter.nodes[:2]
    counter.bounce(one)
    boots, pid = ask(one)
    assert boots == 2 and pid != first[one.name][1]  # a new process, the same data
    assert ask(two) == first[two.name]  # the others kept running
    counter.bounce(one, clean=True)
    assert ask(one)[0] == 1  # its data was wiped
    assert ask(two) == first[two.name]

    counter.stop()
    counter.stop()  # twice is fine
    with pytest.raises(OSError):
        ask(one)
    counter.clean()
    assert one.run(["test", "-e", str(counter.data_dir(one))]).exit_code == 1
    logs = cluster.workdir / "services" / "counter" / "counter-1"
    outputs = sorted(p.name for p in logs.iterdir())
    assert [f for f in outputs if f.endswith(".stdout")] and "boots" in outputs
    stdouts = [(logs / f).read_text() for f in outputs if f.endswith(".stdout")]
    assert stdouts == ["booted 1 times\n", "booted 2 times\n", "booted 1 times\n"]
    assert (logs / "boots").read_text() == "boot\n"  # copied after the clean bounce


def test_start_timeout_names_the_node_that_is_not_alive(cluster, backend):
    marker = f"composer-service-{os.getpid()}-{backend}-timeout"

    class HalfUp(Counter):
        def start_node(self, node):
            if self.idx(node) == 2:  # starts, but never listens
                self.start_process(node, ["sh", "-c", f"echo still loading >&2; sleep 300 # {marker}"])
            else:
                super().start_node(node)

    service = HalfUp(cluster, num_nodes=3, name="half")
    started = time.monotonic()
    with pytest.raises(ServiceTimeout) as failure:
        service.start(timeout_sec=2)
    assert time.monotonic() - started < 30
    message = str(failure.value)
    assert "half-2 not alive 2s into start()" in message and "half-1" not in message.split(
        "\n")[0] and "half-3" not in message.split("\n")[0]
    assert "still loading" in message and "start(timeout_sec=...)" in message
    service.stop()
    assert processes_with(marker) == []


def test_a_node_that_exits_while_starting_fails_at_once_with_its_stderr(cluster):
    class Broken(Counter):
        def start_node(self, node):
            if self.idx(node) == 2:
                self.start_process(node, ["sh", "-c", "echo bad config line 7 >&2; exit 3"])
            else:
                super().start_node(node)

    service = Broken(cluster)
    started = time.monotonic()
    with pytest.raises(ServiceFailed, match=r"(?s)broken-2: sh -c .* exited with 3 during "
                                            r"start\(\):\nbad config line 7"):
        service.start(timeout_sec=120)
    assert time.monotonic() - started < 30  # not after the timeout
    service.stop()
    assert all(p.exit_code is not None for n in service.nodes for p in service.processes(n))


def test_wait_raises_when_a_process_fails(cluster):
    class Reader(composer.Service):
        """Runs until its stdin closes, then exits with the code it read."""

        def start_node(self, node):
            self.start_process(node, ["sh", "-c", "read code; echo disk full >&2; exit $code"],
                               stdin=True)

    reader = Reader(cluster)
    reader.start()
    reader.processes(reader.nodes[0])[0].write(b"4\n")
    with pytest.raises(ServiceFailed, match=r"(?s)reader-1: .* exited with 4 before it was "
                                            r"stopped:\ndisk full"):
        reader.wait(timeout_sec=60)
    reader.stop()

    class Sleeper(composer.Service):
        def start_node(self, node):
            self.start_process(node, ["sleep", "300"])

    sleeper = Sleeper(cluster)
    sleeper.start()
    with pytest.raises(ServiceTimeout, match=r"sleeper-1 still running 0.5s into wait\(\); "
                                             r"pass wait\(timeout_sec=...\)"):
        sleeper.wait(timeout_sec=0.5)
    sleeper.stop()
    sleeper.wait(timeout_sec=5)  # stopped: nothing left to wait for


def test_run_parallel_raises_the_first_failure_and_stops_the_others(cluster, backend):
    marker = f"composer-service-{os.getpid()}-{backend}-parallel"

    class Sleeper(composer.Service):
        def start_node(self, node):
            self.start_process(node, ["sh", "-c", f"sleep 300 # {marker}"])

    class Failing(composer.Service):
        def start_node(self, node):
            self.start_process(node, ["sh", "-c", "echo disk full >&2; exit 4"])

    sleepers = Sleeper(cluster, num_nodes=2)
    failing = Failing(cluster)
    started = time.monotonic()
    with pytest.raises(ServiceFailed, match=r"(?s)failing-1: .* exited with 4.*disk full"):
        run_parallel(sleepers, failing, timeout_sec=300)
    assert time.monotonic() - started < 60  # the sleepers' run would take 300s
    assert processes_with(marker) == []
    codes = [p.exit_code for n in sleepers.nodes for p in sleepers.processes(n)]
    assert set(codes) <= {-signal.SIGTERM}  # stopped (a node not started yet never is)
    sleepers.start()  # usable again after run_parallel stopped it
    sleepers.stop()


def test_run_parallel_runs_every_service_to_its_end(cluster):
    class Finite(composer.Service):
        def start_node(self, node):
            self.start_process(node, ["sh", "-c", f"echo {self.name}"])

        def wait_node(self, node, timeout_sec):
            done = super().wait_node(node, timeout_sec)
            if done:
                self.results[node.name] = self.processes(node)[0].stdout.decode().strip()
            return done

    first, second = Finite(cluster, name="first"), Finite(cluster, num_nodes=2, name="second")
    run_parallel(first, second, timeout_sec=60)
    assert first.results == {"first-1": "first"}
    assert second.results == {"second-1": "second", "second-2": "second"}


def test_a_stopped_service_refuses_to_start_processes_for_run_parallel(cluster):
    service = Counter(cluster, num_nodes=1)
    service._cancelled = "another failed"  # what run_parallel sets before it stops one
    with pytest.raises(ServiceStopped, match="stopped by run_parallel: another failed"):
        service.start()
    assert service.processes(service.nodes[0]) == []


def test_misuse_says_what_to_do(tmp_path):
    with composer.Cluster("local", workdir=tmp_path) as cluster:
        with pytest.raises(ValueError, match=r"num_nodes=0; give a whole number"):
            Counter(cluster, num_nodes=0)
        with pytest.raises(ValueError, match=r"Counter\(cluster, num_nodes=3\)"):
            Counter(cluster, num_nodes=True)
        counter = Counter(cluster, num_nodes=1)
        with pytest.raises(ValueError, match=r"already has node\(s\) counter-1.*name='counter2'"):
            Counter(cluster, num_nodes=1)
        other = Counter(cluster, num_nodes=1, name="other")
        with pytest.raises(ValueError, match="is not a node of counter"):
            counter.bounce(other.nodes[0])
        with pytest.raises(composer.service.ServiceError, match="call start\\(\\) first"):
            counter.bounce(counter.nodes[0])
        counter.start()
        with pytest.raises(composer.service.ServiceError, match=r"counter-1 still run; stop\(\)"):
            counter.start()
        counter.stop()

        class Empty(composer.Service):
            num_nodes = 1

        with pytest.raises(NotImplementedError, match="must define start_node"):
            Empty(cluster).start()

        class Silent(composer.Service):
            num_nodes = 1

            def start_node(self, node):
                pass

        with pytest.raises(ServiceTimeout, match="started no process"):
            Silent(cluster).start(timeout_sec=0.2)

        class BadLogs(Counter):
            logs = {"a/b": "x"}

        with pytest.raises(ValueError, match="'a/b' is not a file name"):
            BadLogs(cluster)


def _options(backend, request, nodes: int = 3) -> list[str]:
    """The plugin's options for ``backend``; agents: ``nodes`` agents on addresses of
    their own that do not see this host's temporary directory."""
    options = ["--composer-cluster", backend]
    if backend == "agents":
        make = request.getfixturevalue("remote_agents_file")
        options += ["--composer-agents", str(make(nodes, request.getfixturevalue(
            "tmp_path_factory").mktemp("hidden")))]
    return options


def test_the_plugin_collects_logs_and_attaches_them_to_junit_on_failure(
        backend, request, pytester):
    marker = f"composer-service-{os.getpid()}-{backend}-plugin"
    pytester.makepyfile(test_logged=f"""
        import composer

        class Chatty(composer.Service):
            num_nodes = 2
            logs = {{"app.log": "app.log"}}

            def start_node(self, node):
                self.start_process(node, ["sh", "-c",
                    "echo hello from $0 > app.log; echo out $0; echo err $0 >&2; "
                    "sleep 300 # {marker}", node.name])

            def alive(self, node):
                return self.processes(node)[0].stderr.startswith(b"err")

        def test_fails(cluster):
            Chatty(cluster).start()  # left running: the plugin stops it
            assert False, "boom"

        def test_passes(cluster):
            service = Chatty(cluster, name="quiet")
            service.start()
            service.stop()
    """)
    junit = pytester.path / "junit.xml"
    result = pytester.runpytest_subprocess(*_options(backend, request), f"--junitxml={junit}")
    result.assert_outcomes(passed=1, failed=1)
    assert processes_with(marker) == []
    cases = {c.get("name"): c for c in ET.parse(junit).getroot().iter("testcase")}
    properties = {p.get("name"): p.get("value") for p in cases["test_fails"].iter("property")}
    assert sorted(properties) == [f"composer-log:chatty/chatty-{n}/{f}" for n in (1, 2)
                                  for f in ("1-sh.stderr", "1-sh.stdout", "app.log")]
    for name, value in properties.items():
        node = name.split("/")[1]
        expected = {"1-sh.stdout": f"out {node}\n", "1-sh.stderr": f"err {node}\n",
                    "app.log": f"hello from {node}\n"}[name.rsplit("/", 1)[1]]
        assert Path(value).read_text() == expected
        assert Path(value).parts[-5:-1] == ("test_fails0", "services", "chatty", node)
    assert list(cases["test_passes"].iter("property")) == []  # attached on failure only
    quiet, = pytester.path.glob("runpytest-0/test_passes0/services/quiet/quiet-1/1-sh.stdout")
    assert quiet.read_text() == "out quiet-1\n"  # a passing test's logs are kept too


def test_the_kvstore_services_example_passes(backend, request, pytester):
    example = REPO / "examples" / "kvstore-services"
    result = pytester.runpytest_subprocess(str(example), *_options(backend, request, 4),
                                           "-p", "no:cacheprovider", "-s")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*writes/s before *, during the *s bounce *, after *"])
