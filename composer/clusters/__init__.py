"""Cluster backends behind one interface (``composer.clusters.base``).

``create(backend, workdir)`` is the only way the rest of composer gets a cluster.
"""

from __future__ import annotations

from pathlib import Path

from composer.clusters.base import Cluster
from composer.errors import ConfigError

__all__ = ["BACKENDS", "Cluster", "capabilities", "create"]

#: Backends a user can name with --cluster, in the order of the design.
BACKENDS = ("local", "netns", "docker", "aws")


def _backend(backend: str) -> type:
    if backend == "local":
        from composer.clusters.local import LocalCluster

        return LocalCluster
    if backend in BACKENDS:
        raise ConfigError(
            f"--cluster {backend}: this backend is not available yet in this version; use --cluster local"
        )
    raise ConfigError(f"--cluster {backend!r}: unknown backend; choose one of {', '.join(BACKENDS)}")


def capabilities(backend: str) -> frozenset[str]:
    """Return the fault kinds ``backend`` can apply on this machine."""
    return _backend(backend).capabilities


def create(backend: str, workdir: Path) -> Cluster:
    """Return a new, empty cluster of ``backend`` keeping its files under ``workdir``."""
    return _backend(backend)(workdir)
