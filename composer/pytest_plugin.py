"""pytest plugin: a ``cluster`` fixture on the backend named by ``--composer-cluster``.

Registered through the ``pytest11`` entry point, so installing composer is enough:

    def test_hello(cluster):
        node = cluster.new_node()
        ...

    pytest --composer-cluster netns          # or local (the default), docker, or agents:
    pytest --composer-cluster agents --composer-agents agents.toml
    pytest --composer-cluster aws            # EC2; settings from COMPOSER_AWS_*

A test that only makes sense on some backends says so with
``@pytest.mark.composer_backends("netns", "agents")`` and is skipped elsewhere. Every
node of a test is removed after it, passed or failed; its processes' output stays in
the test's ``tmp_path`` under ``cluster/logs``.

Services (``composer.Service``) made on the fixture's cluster and still running at the
end are stopped, and the logs of every node of every service are copied into
``tmp_path/services/<service>/<node>/``. When the test fails, each of those files is
attached to its junit.xml entry as a property ``composer-log:<service>/<node>/<file>``
whose value is the file's path.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from composer.api import Cluster
from composer.clusters import API_BACKENDS as _BACKENDS


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("composer", "composer clusters")
    group.addoption("--composer-cluster", choices=_BACKENDS, default=None,
                    help="backend of the cluster fixture (default: the composer_cluster "
                         "ini value, else local)")
    group.addoption("--composer-agents", type=Path, default=None, metavar="FILE",
                    help="the agents file (TOML or JSON) of --composer-cluster agents")
    parser.addini("composer_cluster", "default backend of the cluster fixture", default="local")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "composer_backends(*names): run the test only on these cluster backends")
    backend = _backend(config)
    if backend not in _BACKENDS:
        raise pytest.UsageError(f"composer_cluster = {backend!r}: choose one of "
                                f"{', '.join(_BACKENDS)}")
    if backend == "agents" and config.getoption("composer_agents") is None:
        raise pytest.UsageError("--composer-cluster agents needs --composer-agents FILE, "
                                "the list of running agents")


#: set on an item once one of its phases (setup, call) failed
_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Any:
    """Note a failed phase, for the ``cluster`` fixture to attach logs at teardown."""
    report = yield
    if report.failed:
        item.stash[_FAILED] = True
    return report


def _backend(config: pytest.Config) -> str:
    return config.getoption("composer_cluster") or config.getini("composer_cluster")


@pytest.fixture
def composer_backend(request: pytest.FixtureRequest) -> str:
    """The backend the ``cluster`` fixture uses in this run."""
    backend = _backend(request.config)
    marker = request.node.get_closest_marker("composer_backends")
    if marker is not None and backend not in marker.args:
        pytest.skip(f"runs on the {', '.join(marker.args)} backend(s), not {backend}")
    return backend


@pytest.fixture
def cluster(composer_backend: str, tmp_path: Path,
            request: pytest.FixtureRequest) -> Iterator[Cluster]:
    """An empty cluster; add nodes with ``new_node()``; everything goes after the test,
    once the logs of its services are in ``tmp_path/services``."""
    from composer import service_logs

    with Cluster(composer_backend, workdir=tmp_path / "cluster",
                 agents=request.config.getoption("composer_agents")) as made:
        root = tmp_path / "services"
        service_logs.set_root(made, root)
        try:
            yield made
        finally:
            files, errors = service_logs.finish(made)
            if request.node.stash.get(_FAILED, False):
                for file in files:
                    request.node.user_properties.append(
                        (f"composer-log:{file.relative_to(root)}", str(file)))
    if errors:
        raise errors[0] if len(errors) == 1 else ExceptionGroup(
            "stopping the services of the cluster fixture failed", errors)
