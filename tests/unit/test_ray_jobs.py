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


def test_a_driver_ended_under_composer_is_exit_3_not_a_property_failure(capsys):
    """Ray ends its driver with exit 1 when it loses the cluster; composer's 1 means a
    property failed, so the exploration runs in a child that reports its own code."""
    import os

    assert ray_jobs.in_child(lambda: 1) == 1  # a property failed: reported, kept
    assert ray_jobs.in_child(lambda: 0) == 0
    assert ray_jobs.in_child(lambda: os._exit(1)) == 3  # as Ray's QuickExit does
    assert "ended without finishing (exit status 1)" in capsys.readouterr().err
