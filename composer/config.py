"""``composer.toml`` read into frozen dataclasses, validated key by key.

The model of a project; ``composer.config_reader`` validates the TOML key by key into
it. Imports only ``composer.errors`` here. Every problem is a ``ConfigError`` naming the
file and the key, so inner code can trust what it gets from here.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from composer.errors import ConfigError

__all__ = [
    "Check",
    "CONFIG_NAME",
    "PLACEHOLDER",
    "Project",
    "Service",
    "Ready",
    "Setup",
    "Explore",
    "TemplateOptions",
    "load",
    "parse_duration",
]

CONFIG_NAME = "composer.toml"
#: Name of the node added to run drivers when no service has ``drivers = true``.
DEFAULT_DRIVER_SERVICE = "client"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
#: the placeholders of a service command that name the node itself; {hosts.SERVICE} too
_NODE_PLACEHOLDERS = ("host", "name", "index", "data")
#: the placeholders composer fills in a service command
PLACEHOLDER = re.compile(r"\{(" + "|".join(_NODE_PLACEHOLDERS) + r"|hosts\.[A-Za-z0-9_-]+)\}")


@dataclasses.dataclass(frozen=True)
class Ready:
    """How composer knows a service node is ready: a TCP port accepts, or a command exits 0."""

    tcp: int | None = None
    command: str | None = None


@dataclasses.dataclass(frozen=True)
class Service:
    """One ``[services.NAME]`` table: ``replicas`` nodes running ``command``."""

    name: str
    #: number of nodes, named ``NAME-1`` .. ``NAME-N``; default 1
    replicas: int = 1
    #: shell command started on every node, with placeholders; None for driver-only nodes
    command: str | None = None
    #: readiness check; None means ready as soon as the process started
    ready: Ready | None = None
    #: extra environment for the service process
    env: tuple[tuple[str, str], ...] = ()
    #: drivers run on nodes of this service; default false
    drivers: bool = False
    #: trace the lines a Python service runs in the project's files, so the guided
    #: search sees its code paths; default false (tracing slows the service down)
    coverage: bool = False
    #: read what the service logs as templates (numbers, addresses masked), so the guided
    #: search sees the states it went through; default false
    log_states: bool = False
    #: the service runs until composer stops it: an exit on its own (no fault aimed at
    #: it) fails "Services stay up unless a fault stops them"; false for a one-shot job
    stays_up: bool = True
    #: the node is a container of this image whose own main process is the service (a
    #: compose file's services), so composer starts the node, not a command in it
    image: str | None = None
    #: faults may hit its nodes; false for the containers test commands run in
    takes_faults: bool = True
    #: services that must be ready before this one starts (compose ``service_healthy``)
    after_ready: tuple[str, ...] = ()

    def node_names(self) -> list[str]:
        """Return the names of this service's nodes, in order (an image's container is
        one node named as the service)."""
        if self.image is not None:
            return [self.name]
        return [f"{self.name}-{i}" for i in range(1, self.replicas + 1)]

    @property
    def runs_process(self) -> bool:
        """Whether its nodes run a service process (so process faults mean something)."""
        return self.command is not None or self.image is not None


@dataclasses.dataclass(frozen=True)
class Setup:
    """``[setup]``: what must happen before drivers start."""

    #: also wait for ``setup_complete`` from any process; default false
    sdk: bool = False
    #: seconds to wait for readiness (and setup_complete); default 120
    timeout: float = 120.0
    #: what to do when no process called setup_complete in time
    hint: str = ("call sdk.setup_complete() when the system is ready, raise "
                 "--setup-timeout, or set [setup] sdk = false")


@dataclasses.dataclass(frozen=True)
class Explore:
    """``[explore]``: the space Hypothesis draws timelines from."""

    #: longest driver phase, seconds; default 20
    timeline: float = 20.0
    #: most parallel_driver copies at once; default 4
    max_parallel: int = 4
    #: timeout of each command invocation, seconds; default 60
    command_timeout: float = 60.0
    #: fault kinds to draw; None (default) means all the backend supports
    faults: tuple[str, ...] | None = None


@dataclasses.dataclass(frozen=True)
class Check:
    """One ``[[template.NAME.checks]]``: a checker that judges the whole history the
    timeline's clients recorded, reported as an Always property called ``name``."""

    checker: str
    name: str
    #: what ``linearizable`` checks against (``checkers.models``); None for other checkers
    model: str | None = None
    #: seconds the checker may take before its verdict is unknown; default 60
    time_limit: float = 60.0


@dataclasses.dataclass(frozen=True)
class TemplateOptions:
    """``[template.NAME]``: per-template switches."""

    #: report "Commands finish with zero exit code"; default true
    check_exit_code: bool = True
    #: checkers run on the history after each timeline
    checks: tuple[Check, ...] = ()


@dataclasses.dataclass(frozen=True)
class Project:
    """A whole ``composer.toml``; ``root`` is the directory holding it."""

    name: str
    root: Path
    templates_dir: Path
    services: tuple[Service, ...]
    setup: Setup = Setup()
    explore: Explore = Explore()
    template_options: tuple[tuple[str, TemplateOptions], ...] = ()
    #: the file it was read from (composer.toml, or a compose file)
    source: Path | None = None
    #: the one backend this project runs on (a compose file: its own containers), with
    #: what that backend needs; None: any, chosen with --cluster
    backend: str | None = None
    backend_options: tuple[tuple[str, Any], ...] = ()
    #: the ``[aws]`` table: settings of the aws backend (``composer.aws.settings``), below
    #: ``--aws`` flags and above ``COMPOSER_AWS_*``
    aws: tuple[tuple[str, Any], ...] = ()

    def service(self, name: str) -> Service:
        """Return the service called ``name``."""
        return next(s for s in self.services if s.name == name)

    @property
    def location(self) -> Path:
        """What a replay names to find this project again: the file it was read from when
        that is not its directory's composer.toml (a compose file), else the directory."""
        if self.source is not None and self.source.name != CONFIG_NAME:
            return self.source
        return self.root

    @property
    def cluster_options(self) -> dict[str, Any]:
        """What the cluster backend needs beyond the run's directory (compose: the file)."""
        return dict(self.backend_options)

    def options_for(self, template: str) -> TemplateOptions:
        """Return the options of ``template`` (defaults when it has no table)."""
        return dict(self.template_options).get(template, TemplateOptions())

    def driver_nodes(self) -> list[str]:
        """Return the names of nodes drivers run on."""
        return [n for s in self.services if s.drivers for n in s.node_names()]

    def fault_targets(self) -> list[str]:
        """Return the nodes faults may hit: those running a service process that takes
        faults."""
        return [n for s in self.services if s.runs_process and s.takes_faults
                for n in s.node_names()]


def parse_duration(value: Any, key: str) -> float:
    """Return seconds from ``"20s"``, ``"2m"``, ``"1h"``, ``"500ms"`` or a number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{key}={value!r} is not a duration: use e.g. \"20s\", \"2m\" or 30")
    if isinstance(value, (int, float)):
        seconds = float(value)
    else:
        match = _DURATION.match(str(value))
        if not match:
            raise ConfigError(
                f"{key}={value!r} is not a duration: use a number with ms, s, m or h, e.g. \"20s\""
            )
        seconds = float(match.group(1)) * _UNITS[match.group(2)]
    if not math.isfinite(seconds):
        raise ConfigError(f"{key}={value!r} is not a finite duration: use e.g. \"20s\" or 30")
    if seconds <= 0:
        raise ConfigError(f"{key}={value!r} must be longer than zero: use e.g. \"20s\" or 30")
    return seconds


def load(path: Path | str) -> Project:
    """Read and validate ``composer.toml`` at ``path`` (the file or its directory)."""
    path = Path(path)
    if path.is_dir():
        path = path / CONFIG_NAME
    if not path.is_file():
        raise ConfigError(
            f"{path}: no such file. A project is a directory with a {CONFIG_NAME}; "
            "see examples/kvstore/composer.toml"
        )
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8-sig"))  # a BOM is no error
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: malformed TOML: {exc}") from None
    from composer.config_reader import Reader  # which builds this module's classes

    return Reader(path).project(data)
