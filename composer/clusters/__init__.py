"""Cluster backends behind one interface (``composer.clusters.base``).

``create(backend, workdir)`` is the only way the rest of composer gets a cluster.
"""

from __future__ import annotations

from pathlib import Path

from composer.clusters.base import Cluster
from composer.errors import ConfigError

__all__ = ["BACKENDS", "API_BACKENDS", "Cluster", "capabilities", "limitations", "create"]

#: Backends a user can name with --cluster, in the order of the design.
BACKENDS = ("local", "netns", "docker", "agents", "aws")
#: Backends the Python API and the pytest plugin offer: the same.
API_BACKENDS = BACKENDS


def _backend(backend: str) -> type:
    if backend == "local":
        from composer.clusters.local import LocalCluster

        return LocalCluster
    if backend == "netns":
        from composer.clusters.netns import NetnsCluster

        return NetnsCluster
    if backend == "docker":
        from composer.clusters.docker import DockerCluster

        return DockerCluster
    if backend == "compose":  # a compose file's containers: composer explore FILE.yml
        from composer.clusters.compose import ComposeCluster

        return ComposeCluster
    if backend == "agents":  # for the Python API; explore needs the project on each node
        from composer.clusters.agents import AgentsCluster

        return AgentsCluster
    if backend == "aws":  # agents on EC2 instances composer launches
        from composer.clusters.aws import AwsCluster

        return AwsCluster
    raise ConfigError(f"--cluster {backend!r}: unknown backend; choose one of {', '.join(BACKENDS)}")


def capabilities(backend: str, **options: object) -> frozenset[str]:
    """Return the fault kinds ``backend`` can apply on this machine (``agents``: on the
    machines its agents file lists, asked; ``aws``: on a run's fleet, the same); ``ConfigError`` if it cannot run here."""
    if backend in ("agents", "aws") and options.get("agents") is not None:
        return _backend(backend).asked(options["agents"])
    return _backend(backend).supported()


def limitations(backend: str) -> dict[str, str]:
    """Return, for each fault kind ``backend`` cannot apply here, the reason."""
    return _backend(backend).limitations()


def create(backend: str, workdir: Path, **options: object) -> Cluster:
    """Return a new, empty cluster of ``backend`` keeping its files under ``workdir``;
    ``options`` go to the backend (``agents``: the agents file; ``compose``: the
    ``ComposeFile``)."""
    return _backend(backend)(workdir, **options)
