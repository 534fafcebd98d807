"""Where the logs of ``composer.Service`` nodes go, and which services a cluster has.

Owns a cluster's log root (the pytest plugin sets it to the test's directory, else it is
``<cluster workdir>/services``), copying one node's logs there, and the services made on
each cluster, so that whoever ends a test (the pytest plugin) can stop those still
running and collect every log while the nodes still exist: a remote node's files are
gone once the cluster is cleaned up. Imports ``composer.api`` for types only; never
``composer.service`` (which imports this module).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from composer.api import Cluster, Node, Process

__all__ = ["set_root", "directory", "register", "collect", "finish"]

#: the attribute of a Cluster holding its ``_Registry``: kept on the cluster, so it goes
#: with it (a module-level map from clusters to their services would keep both alive)
_ATTRIBUTE = "_composer_services"


@dataclasses.dataclass
class _Registry:
    root: Path | None = None
    services: list[Any] = dataclasses.field(default_factory=list)


def _registry(cluster: Cluster) -> _Registry:
    found = cluster.__dict__.get(_ATTRIBUTE)
    if found is None:
        found = cluster.__dict__[_ATTRIBUTE] = _Registry()
    return found


def set_root(cluster: Cluster, root: Path) -> None:
    """Collect the logs of ``cluster``'s services into ``root/<service>/<node>/``."""
    _registry(cluster).root = Path(root)


def directory(cluster: Cluster, service: str, node: str) -> Path:
    """Return where the logs of ``node`` of ``service`` go."""
    root = _registry(cluster).root or cluster.workdir / "services"
    return root / service / node


def register(cluster: Cluster, service: Any) -> None:
    """Remember ``service`` as one of ``cluster``'s, for ``finish``."""
    _registry(cluster).services.append(service)


def collect(node: Node, into: Path, processes: Sequence[Process],
            files: Mapping[str, Path]) -> list[Path]:
    """Copy each process's stdout and stderr (``<n>-<program>.stdout``) and each of
    ``files`` (name -> path on the node; missing ones are skipped) into ``into``; return
    the files written. Once the cluster is gone, only what this host kept is copied."""
    into.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def write(name: str, data: bytes) -> None:
        (into / name).write_bytes(data)
        written.append(into / name)

    for number, process in enumerate(processes, 1):
        label = f"{number}-{Path(process.argv[0]).name}"
        write(f"{label}.stdout", process.stdout)
        write(f"{label}.stderr", process.stderr)
    for name, path in files.items():
        try:
            write(name, node.read_file(path))
        except (FileNotFoundError, IsADirectoryError, RuntimeError):
            continue  # not written (yet), or the cluster was cleaned up
    return written


def finish(cluster: Cluster) -> tuple[list[Path], list[BaseException]]:
    """Stop every service of ``cluster`` that still runs (last made first) and collect
    the logs of all of them; return the log files and every error met on the way."""
    files: list[Path] = []
    errors: list[BaseException] = []
    services, _registry(cluster).services = _registry(cluster).services, []
    for service in reversed(services):
        try:
            service.stop()
        except Exception as exc:  # stop and collect the rest anyway
            errors.append(exc)
        try:
            files += service.collect_logs()
        except Exception as exc:
            errors.append(exc)
    return files, errors
