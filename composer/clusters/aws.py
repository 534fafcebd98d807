"""The ``aws`` backend: the ``agents`` backend on EC2 instances composer launches.

Imports ``composer.clusters.agents`` and ``composer.aws`` (boto3 once it launches). A
command (``composer explore --cluster aws``) launches one fleet for the whole run before
its first timeline (``composer.aws_command.fleet_for``) and hands every timeline's
cluster the fleet's agents file: such a cluster is exactly an agents cluster. Made
without one (the Python API, ``pytest --composer-cluster aws``), the cluster launches its
own fleet for the nodes it is asked for, in one ``RunInstances``, and terminates it at
cleanup. Settings come from ``COMPOSER_AWS_*`` and the ``aws`` option (a mapping).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from composer.clusters.agents import AgentNode, AgentsCluster, load_agents_file
from composer.errors import InfraError

__all__ = ["AwsCluster"]


class AwsCluster(AgentsCluster):
    """Nodes on EC2 instances: a run's fleet, or one launched for this cluster."""

    makes_agents = True

    def __init__(self, workdir: Path, agents: Path | None = None, shared: Sequence[Path] = (),
                 aws: Mapping[str, object] | None = None) -> None:
        super().__init__(workdir, agents, shared)
        self._settings = dict(aws or {})
        self._fleet = None

    async def new_nodes(self, names: Sequence[str]) -> list[AgentNode]:
        if self._file is None:
            self._file = load_agents_file(await asyncio.to_thread(self._launch, len(names)))
        elif self._fleet is not None:
            raise InfraError("the aws backend launches a cluster's nodes at once: ask for "
                             f"them in one call (already have {len(self._file.urls)})")
        return await super().new_nodes(names)

    def _launch(self, count: int) -> Path:
        from composer import aws
        from composer.aws.fleet import Fleet

        fleet = Fleet(aws.load(self._settings), count,
                      say=lambda line: print(f"composer: aws: {line}", file=sys.stderr))
        self._fleet = fleet  # cleanup terminates it, whatever happens next
        fleet.start()
        return fleet.agents_file

    async def cleanup(self) -> None:
        try:
            await super().cleanup()
        finally:
            if self._fleet is not None:
                fleet, self._fleet = self._fleet, None
                fleet.close()
