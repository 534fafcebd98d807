"""The clustertest-style API (``composer.Cluster``) and its pytest plugin, on the host
backends: what a test author relies on, and nothing left behind."""

from __future__ import annotations

import os
import signal
import sys
import tempfile
import time
from pathlib import Path

import pytest

from composer import Cluster, CommandFailed
from composer.errors import ComposerError
from tests.conftest import need, processes_with

REPO = Path(__file__).resolve().parents[2]
BACKENDS = ["local", "netns", "agents"]
pytest_plugins = ["pytester"]


@pytest.fixture(params=BACKENDS)
def backend(request) -> str:
    if request.param == "netns":
        need("netns")
    return request.param


@pytest.fixture
def open_cluster(backend, request, tmp_path):
    """Return a function making a Cluster of the backend under test (agents: three
    agents in a namespace of the test's own, from the agents_file fixture)."""
    agents = request.getfixturevalue("agents_file") if backend == "agents" else None
    return lambda: Cluster(backend, workdir=tmp_path / "cluster", agents=agents)


def test_files_commands_stdin_signals_and_exit_codes(open_cluster, tmp_path):
    with open_cluster() as cluster:
        node = cluster.new_node()
        local = tmp_path / "local-file"
        local.write_bytes(os.urandom(3 * 1024 * 1024))
        node.send_file(node.root / "sub" / "copy", local, mode=0o600)
        assert node.read_file(node.root / "sub" / "copy") == local.read_bytes()
        assert (node.root / "sub" / "copy").stat().st_mode & 0o777 == 0o600
        node.send_file(node.root / "text", "héllo")
        assert node.read_file(node.root / "text") == "héllo".encode()
        with pytest.raises(FileNotFoundError):
            node.read_file(node.root / "missing")

        assert node.run(["cat"], input=b"x" * 500_000).stdout == b"x" * 500_000
        result = node.run(["sh", "-c", "echo out; echo err >&2; exit 3"])
        assert (result.exit_code, result.stdout, result.stderr) == (3, b"out\n", b"err\n")
        assert node.run(["pwd"]).stdout.decode().strip() == str(node.root)
        assert node.run(["sh", "-c", "echo $GREETING"], env={"GREETING": "hi"}).stdout == b"hi\n"
        with pytest.raises(CommandFailed, match="exited with 1"):
            node.run(["false"], check=True)

        stream = node.start(["cat"], stdin=True)
        stream.write(b"line 1\n")
        stream.write(b"line 2\n")
        stream.close_stdin()
        assert stream.wait(timeout=10) == 0 and stream.stdout == b"line 1\nline 2\n"

        handler = node.start([sys.executable, "-c", (
            "import signal, sys, time\n"
            "signal.signal(signal.SIGUSR1, lambda *_: (print('got it', flush=True), sys.exit(7)))\n"
            "print('ready', flush=True)\n"
            "time.sleep(60)\n")])
        _until(lambda: handler.stdout == b"ready\n")
        handler.signal(signal.SIGUSR1)
        assert handler.wait(timeout=10) == 7 and handler.stdout == b"ready\ngot it\n"
        sleeper = node.start(["sleep", "60"])
        assert sleeper.exit_code is None
        assert sleeper.stop(grace=5) == -signal.SIGTERM
        with pytest.raises(TimeoutError, match="killed it"):
            node.run(["sleep", "60"], timeout=0.5)


def test_nodes_reach_each_other_and_dial_reaches_a_node(open_cluster):
    with open_cluster() as cluster:
        a, b = cluster.new_nodes(2)
        assert [a.name, b.name] == ["node-1", "node-2"] and a.address != b.address
        server = a.start([sys.executable, "-c", (
            "import socket, sys\n"
            "with socket.create_server((sys.argv[1], 7000)) as s:\n"
            "    for _ in range(2):\n"
            "        conn, _ = s.accept()\n"
            "        while data := conn.recv(65536):\n"
            "            conn.sendall(data)\n"
            "        conn.close()\n"), a.address])
        sock = _until(lambda: _try_dial(a, 7000))
        for chunk in (b"one", b"two" * 10000):
            sock.sendall(chunk)
            got = b""
            while len(got) < len(chunk):
                got += sock.recv(65536)
            assert got == chunk
        sock.close()
        reply = b.run([sys.executable, "-c", (
            "import socket, sys\n"
            "c = socket.create_connection((sys.argv[1], 7000))\n"
            "c.sendall(b'from b'); c.shutdown(socket.SHUT_WR); print(c.recv(100).decode())\n"),
            a.address], check=True)
        assert reply.stdout == b"from b\n"
        assert server.wait(timeout=10) == 0
        with pytest.raises(OSError):
            a.dial(7999, timeout=2)


def test_cleanup_removes_every_process_and_node(backend, open_cluster):
    marker = f"composer-api-{os.getpid()}-{backend}"
    cluster = open_cluster()
    nodes = cluster.new_nodes(3)
    for node in nodes:
        node.start(["sh", "-c", f"sleep 300 # {marker}"])
    _until(lambda: len(processes_with(marker)) >= 3)
    cluster.cleanup()
    cluster.cleanup()  # twice is fine
    assert processes_with(marker) == []
    if backend == "netns":
        namespaces = os.listdir("/run/netns") if os.path.isdir("/run/netns") else []
        assert not [n for n in namespaces if n.endswith(tuple(f"-{x.name}" for x in nodes))
                    and n.startswith(f"composer-{cluster._cluster.block}-")]
    with pytest.raises(RuntimeError, match="cleaned up"):
        nodes[0].run(["true"])


def test_a_cluster_that_cannot_start_leaves_no_directory(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where mkdtemp makes its own
    with pytest.raises(ComposerError, match="agents file"):
        Cluster("agents")
    assert list(tmp_path.iterdir()) == []


def test_an_unknown_backend_names_the_ones_there_are(monkeypatch, tmp_path):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    with pytest.raises(ComposerError, match="choose one of local, netns, docker, agents"):
        Cluster("compose")  # a backend of compose files, not of the API
    assert list(tmp_path.iterdir()) == []


def test_bad_names_and_arguments_say_what_is_wrong(tmp_path):
    with Cluster("local", workdir=tmp_path) as cluster:
        with pytest.raises(ValueError, match="node name 'Bad_Name'"):
            cluster.new_node("Bad_Name")
        node = cluster.new_node("db")
        with pytest.raises(ValueError, match="unique"):
            cluster.new_node("db")
        with pytest.raises(TypeError, match=r"\['sh', '-c'"):
            node.run("echo hello")


def test_the_pytest_example_passes_with_the_plugin(backend, request, pytester):
    options = ["--composer-cluster", backend]
    if backend == "agents":
        options += ["--composer-agents", str(request.getfixturevalue("agents_file"))]
    pytester.copy_example(str(REPO / "examples" / "hello-pytest" / "test_hello.py"))
    result = pytester.runpytest_subprocess(*options, "-q")
    result.assert_outcomes(passed=2)


def test_plugin_options_and_markers(pytester):
    pytester.makepyfile(test_marked="""
        import pytest

        @pytest.mark.composer_backends("netns")
        def test_only_netns(cluster):
            pass

        def test_backend(composer_backend):
            assert composer_backend == "local"
    """)
    result = pytester.runpytest_subprocess("-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*runs on the netns backend(s), not local*"])
    result = pytester.runpytest_subprocess("--composer-cluster", "agents")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--composer-agents FILE*"])
    result = pytester.runpytest_subprocess("--composer-cluster", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*'local', 'netns', 'docker', 'agents'*"])


def _try_dial(node, port):
    try:
        return node.dial(port, timeout=1)
    except OSError:
        return None


def _until(condition, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"still not true after {timeout}s")
