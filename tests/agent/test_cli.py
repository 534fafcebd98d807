"""The ``composer-agent`` command, run as a real subprocess (``python -m composer_agent``)."""

from __future__ import annotations

import os
import signal
import socket
import stat
import subprocess
import sys

import pytest
from cryptography import x509

from composer_agent.certs import Credentials
from composer_agent.client import AgentClient
from tests.agent.support import REPO, aio, read_line


def composer_agent(*args: str, timeout: float = 30) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "composer_agent", *args], cwd=REPO, text=True,
                          capture_output=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": str(REPO)})


@pytest.fixture
def made(tmp_path):
    """A directory that ``composer-agent certs`` filled, for the loopback address."""
    result = composer_agent("certs", str(tmp_path / "certs"), "--hosts", "127.0.0.1,localhost")
    assert result.returncode == 0, result.stderr
    return tmp_path / "certs"


def _serve_args(directory, listen="127.0.0.1:0"):
    return ["serve", "--listen", listen, "--ca", str(directory / "ca.pem"),
            "--cert", str(directory / "server.pem"), "--key", str(directory / "server.key")]


def test_certs_writes_private_keys_and_says_how_to_serve(tmp_path):
    result = composer_agent("certs", str(tmp_path / "c"), "--hosts", "10.0.0.2, node-a")
    assert result.returncode == 0, result.stderr
    names = sorted(os.listdir(tmp_path / "c"))
    assert names == ["ca.key", "ca.pem", "client.key", "client.pem", "server.key",
                     "server.pem"]
    for name in names:
        mode = stat.S_IMODE((tmp_path / "c" / name).stat().st_mode)
        assert mode == 0o600 if name.endswith(".key") else mode & 0o077 != 0o077
        assert f"wrote {tmp_path / 'c' / name}" in result.stdout
    assert "serve with: composer-agent serve --listen 10.0.0.2:7800" in result.stdout
    cert = x509.load_pem_x509_certificate((tmp_path / "c" / "server.pem").read_bytes())
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert [str(a) for a in names.get_values_for_type(x509.IPAddress)] == ["10.0.0.2"]
    assert names.get_values_for_type(x509.DNSName) == ["node-a"]

    again = composer_agent("certs", str(tmp_path / "c"), "--hosts", "10.0.0.2")
    assert again.returncode == 2 and "ca.pem exists" in again.stderr


def test_serve_with_a_missing_certificate_exits_2(made):
    args = _serve_args(made)
    args[args.index("--cert") + 1] = str(made / "nope.pem")
    result = composer_agent(*args)
    assert result.returncode == 2
    assert f"--cert {made / 'nope.pem'}: no such file" in result.stderr
    assert "Traceback" not in result.stderr


def test_serve_with_a_bad_key_exits_2(made):
    (made / "server.key").write_text("not a key\n")
    result = composer_agent(*_serve_args(made))
    assert result.returncode == 2 and "cannot load them for TLS" in result.stderr


def test_serve_on_a_port_in_use_exits_2(made):
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        result = composer_agent(*_serve_args(made, f"127.0.0.1:{port}"))
    assert result.returncode == 2
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("listen", ["7800", "host:", "127.0.0.1:99999", ":7800"])
def test_serve_with_a_bad_listen_address_exits_2(made, listen):
    result = composer_agent(*_serve_args(made, listen))
    assert result.returncode == 2 and "--listen" in result.stderr


def test_help_says_what_each_command_does():
    for args in ([], ["serve"], ["certs"]):
        result = composer_agent(*args, "--help")
        assert result.returncode == 0
    assert "heartbeat" in composer_agent("serve", "--help").stdout
    assert composer_agent().returncode == 2


@aio
async def test_certs_then_serve_on_loopback(made, tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "composer_agent", *_serve_args(made),
                                "--root", str(tmp_path / "root")],
                               cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        line = read_line(process, timeout=30)
        assert line.startswith("composer-agent listening on https://127.0.0.1:"), line
        client = Credentials(made / "ca.pem", made / "client.pem", made / "client.key")
        async with AgentClient(line.split()[-1], client) as agent:
            beat = await agent.heartbeat()
        assert beat["pid"] == process.pid and beat["root"] == str(tmp_path / "root")
    finally:
        process.send_signal(signal.SIGTERM)
        stdout, stderr = process.communicate(timeout=15)
    assert process.returncode == 0, stderr
