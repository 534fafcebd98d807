"""``composer.toml`` read into frozen dataclasses, validated key by key.

Imports only ``composer.errors`` and ``composer.faults`` (the fault kinds). Every problem is a ``ConfigError`` naming the file and
the key, so inner code can trust what it gets from here.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import re
import tomllib
from pathlib import Path
from typing import Any

from composer.errors import ConfigError
from composer.faults import FAULT_KINDS

__all__ = [
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
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
#: the placeholders of a service command that name the node itself; {hosts.SERVICE} too
_NODE_PLACEHOLDERS = ("host", "name", "index", "data")
#: the placeholders composer fills in a service command
PLACEHOLDER = re.compile(r"\{(" + "|".join(_NODE_PLACEHOLDERS) + r"|hosts\.[A-Za-z0-9_-]+)\}")
#: what looks like a placeholder ("{word}", "{word.word}"), but not the shell's "${VAR}"
_LOOKS_LIKE_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)?)\}")
#: How ``typed`` names a TOML type in an error, with an example value.
_TYPES = {int: ("an integer", "3"), str: ("a string", '"..."'), bool: ("true or false", "true"),
          dict: ("a table", '{ KEY = "value" }')}


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
class TemplateOptions:
    """``[template.NAME]``: per-template switches."""

    #: report "Commands finish with zero exit code"; default true
    check_exit_code: bool = True


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
    return _Validator(path).project(data)


class _Validator:
    """Turns the parsed TOML into a ``Project``; every error names ``self.path`` and the key."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {message}")

    def table(self, value: Any, key: str, allowed: tuple[str, ...]) -> dict:
        """Return ``value`` after checking it is a table with only ``allowed`` keys."""
        if not isinstance(value, dict):
            raise self.fail(f"[{key}] must be a table")
        for name in value:
            if name not in allowed:
                hint = difflib.get_close_matches(name, allowed, n=1)
                fix = f"did you mean {hint[0]!r}?" if hint else f"allowed keys: {', '.join(allowed)}"
                raise self.fail(f"unknown key {key}.{name}: {fix}")
        return value

    def duration(self, value: Any, key: str) -> float:
        try:
            return parse_duration(value, key)
        except ConfigError as exc:
            raise self.fail(str(exc)) from None

    def typed(self, table: dict, key: str, name: str, kind: type, default: Any) -> Any:
        value = table.get(name, default)
        if value is default:
            return value
        if kind is int and isinstance(value, bool) or not isinstance(value, kind):
            what, example = _TYPES[kind]
            raise self.fail(f"{key}.{name}={value!r} must be {what}, e.g. {name} = {example}")
        return value

    def project(self, data: dict) -> Project:
        top = ("project", "services", "setup", "explore", "template")
        for name in data:
            if name not in top:
                hint = difflib.get_close_matches(name, top, n=1)
                fix = f"did you mean [{hint[0]}]?" if hint else f"allowed tables: {', '.join(top)}"
                raise self.fail(f"unknown table [{name}]: {fix}")
        proj = self.table(data.get("project", {}), "project", ("name", "templates"))
        root = self.path.parent.resolve()
        name = self.typed(proj, "project", "name", str, root.name)
        templates = self.typed(proj, "project", "templates", str, "drivers")
        services = self.services(data.get("services", {}))
        return Project(
            name=name,
            root=root,
            source=self.path.resolve(),
            templates_dir=(root / templates),
            services=services,
            setup=self.setup(data),
            explore=self.explore(data),
            template_options=self.template_options(data.get("template", {})),
        )

    def services(self, raw: Any) -> tuple[Service, ...]:
        if not isinstance(raw, dict):
            raise self.fail("[services] must be a table of [services.NAME] tables")
        services = [self.service(name, table) for name, table in raw.items()]
        if not any(s.drivers for s in services):
            if any(s.name == DEFAULT_DRIVER_SERVICE for s in services):
                raise self.fail(
                    f"no service has drivers = true, and the default driver service name "
                    f"{DEFAULT_DRIVER_SERVICE!r} is taken: set drivers = true on one service"
                )
            services.append(Service(name=DEFAULT_DRIVER_SERVICE, drivers=True))
        for service in services:
            self.placeholders(service, [s.name for s in services])
        return tuple(services)

    def service(self, name: str, raw: Any) -> Service:
        key = f"services.{name}"
        if not _NAME.match(name):
            raise self.fail(f"[{key}]: service names are lower-case letters, digits, - and _")
        table = self.table(raw, key, ("replicas", "command", "ready", "env", "drivers",
                                      "coverage", "log_states", "stays_up"))
        replicas = self.typed(table, key, "replicas", int, 1)
        if not 1 <= replicas <= 250:
            raise self.fail(f"{key}.replicas={replicas} must be between 1 and 250")
        command = self.typed(table, key, "command", str, None)
        env = self.typed(table, key, "env", dict, {})
        for var, value in env.items():
            if not isinstance(value, (str, int, float, bool)):
                raise self.fail(f"{key}.env.{var}={value!r} must be a string")
        coverage = self.typed(table, key, "coverage", bool, False)
        if coverage and command is None:
            raise self.fail(f"{key}.coverage = true but {key}.command is not set: coverage "
                            f"traces the service's Python process; set a command or remove it")
        log_states = self.typed(table, key, "log_states", bool, False)
        if log_states and command is None:
            raise self.fail(f"{key}.log_states = true but {key}.command is not set: only a "
                            f"service's own process logs; set a command or remove it")
        return Service(
            name=name,
            replicas=replicas,
            command=command,
            ready=self.ready(key, table.get("ready"), command),
            env=tuple((k, str(v)) for k, v in env.items()),
            drivers=self.typed(table, key, "drivers", bool, False),
            coverage=coverage,
            log_states=log_states,
            stays_up=self.typed(table, key, "stays_up", bool, True),
        )

    def placeholders(self, service: Service, names: list[str]) -> None:
        """Every ``{...}`` in a service command must be a placeholder composer fills."""
        known = [*_NODE_PLACEHOLDERS, *(f"hosts.{n}" for n in names)]
        for match in _LOOKS_LIKE_PLACEHOLDER.finditer(service.command or ""):
            if match.group(1) not in known:
                hint = difflib.get_close_matches(match.group(1), known, n=1)
                raise self.fail(
                    f"services.{service.name}.command: unknown placeholder {match.group(0)}"
                    + (f"; did you mean {{{hint[0]}}}?" if hint else "")
                    + f" Known: {', '.join('{' + k + '}' for k in known)} ({{index}} counts "
                    "from 1; the shell's ${VAR} is left alone)")

    def ready(self, key: str, raw: Any, command: str | None) -> Ready | None:
        if raw is None:
            return None
        if command is None:
            raise self.fail(f"{key}.ready is set but {key}.command is not, so nothing is waited "
                            f"for: set {key}.command or remove {key}.ready")
        if not isinstance(raw, dict) or len(raw) != 1 or not ({"tcp", "command"} & raw.keys()):
            raise self.fail(f"{key}.ready={raw!r} must be {{ tcp = PORT }} or {{ command = \"...\" }}")
        if "tcp" in raw:
            port = raw["tcp"]
            if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
                raise self.fail(f"{key}.ready.tcp={port!r} must be a port number 1-65535")
            return Ready(tcp=port)
        if not isinstance(raw["command"], str):
            raise self.fail(f"{key}.ready.command must be a string")
        return Ready(command=raw["command"])

    def setup(self, data: dict) -> Setup:
        table = self.table(data.get("setup", {}), "setup", ("sdk", "timeout"))
        timeout = self.duration(table["timeout"], "setup.timeout") if "timeout" in table else 120.0
        return Setup(sdk=self.typed(table, "setup", "sdk", bool, False), timeout=timeout)

    def explore(self, data: dict) -> Explore:
        table = self.table(data.get("explore", {}), "explore", ("timeline", "max_parallel", "command_timeout", "faults"))
        default = Explore()
        max_parallel = self.typed(table, "explore", "max_parallel", int, default.max_parallel)
        if not 1 <= max_parallel <= 256:
            raise self.fail(f"explore.max_parallel={max_parallel} must be between 1 and 256")
        faults = table.get("faults")
        if faults is not None:
            if not isinstance(faults, list) or not all(isinstance(f, str) for f in faults):
                raise self.fail(f"explore.faults={faults!r} must be a list of fault kinds")
            for kind in faults:
                if kind not in FAULT_KINDS:
                    raise self.fail(
                        f"explore.faults: unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}"
                    )
            faults = tuple(faults)
        return Explore(
            timeline=self.duration(table.get("timeline", default.timeline), "explore.timeline"),
            max_parallel=max_parallel,
            command_timeout=self.duration(
                table.get("command_timeout", default.command_timeout), "explore.command_timeout"
            ),
            faults=faults,
        )

    def template_options(self, raw: Any) -> tuple[tuple[str, TemplateOptions], ...]:
        if not isinstance(raw, dict):
            raise self.fail("[template] must be a table of [template.NAME] tables")
        options = []
        for name, table in raw.items():
            self.table(table, f"template.{name}", ("check_exit_code",))
            check = self.typed(table, f"template.{name}", "check_exit_code", bool, True)
            options.append((name, TemplateOptions(check_exit_code=check)))
        return tuple(options)
