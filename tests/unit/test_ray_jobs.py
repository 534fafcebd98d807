"""--ray where Ray is missing or nothing answers: a clear error, before any timeline."""

from __future__ import annotations

import socket
import sys

import pytest

from composer import ray_jobs
from composer.errors import ConfigError, InfraError


def test_without_ray_installed_ray_is_a_clear_usage_error(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'composer-dst\[ray\]'"):
        ray_jobs.connect("auto")


def test_nothing_listening_at_the_address_fails_at_once():
    pytest.importorskip("ray")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # closed again: nothing listens there
    with pytest.raises(InfraError, match="no Ray cluster answered.*ray start --head"):
        ray_jobs.connect(f"127.0.0.1:{port}")
