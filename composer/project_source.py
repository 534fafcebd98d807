"""Where a project comes from: a directory with ``composer.toml``, or a docker-compose
file whose images hold the test commands.

The command line asks for a project by path and gets a ``Project`` and its templates
either way; only this module knows that a compose file's images must be built and read
before its templates are known, and that it runs on its own backend.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from composer import compose, config, templates
from composer.errors import ConfigError

__all__ = ["load", "with_agents"]


def load(path: Path, cluster: str | None = None, *, compose_file: bool = False,
         say: Callable[[str], None] = print
         ) -> tuple[config.Project, dict[str, templates.Template]]:
    """Read the project at ``path`` (a compose file when ``compose_file`` or when its
    name says so) and find its templates; ``cluster`` is the backend the user asked for,
    checked against one the project must run on."""
    if not (compose_file or compose.is_compose_file(path)):
        project = config.load(path)
        return project, templates.discover(project.templates_dir)
    if cluster not in (None, "docker", "compose"):
        raise ConfigError(f"{path}: a compose file runs on its own containers; drop "
                          f"--cluster {cluster}")
    from composer.clusters.compose import prepare  # the docker SDK: only for compose files

    read = compose.load(path)
    for note in read.notes:
        say(f"note: {note}")
    found, holders = prepare(read, read.path.parent / ".composer" / "compose", say=say)
    return compose.project_of(read, holders), found


def with_agents(project: config.Project, cluster: str | None, agents: Path | None
                ) -> config.Project:
    """Point ``--cluster agents`` at its agents file; either without the other is a
    usage error."""
    if agents is not None and cluster not in ("agents", None):
        raise ConfigError(f"--agents names the machines of --cluster agents, not of "
                          f"--cluster {cluster}")
    if cluster != "agents" and agents is None:
        return project
    if agents is None:
        raise ConfigError("--cluster agents needs --agents FILE: the running agents and the "
                          "certificates to reach them (composer-agent certs makes them; see "
                          "the README, \"Remote machines\")")
    return dataclasses.replace(project, backend_options=(("agents", agents.resolve()),))
