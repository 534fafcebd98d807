"""docker-compose files read into frozen dataclasses, validated key by key.

Imports ``composer.compose_model`` (the dataclasses, re-exported here),
``composer.config``, ``composer.errors``, PyYAML and the standard library; no engine. ``load(path)`` returns a ``ComposeFile``: its services in start order
(``depends_on`` first), with ``${VAR:-default}`` filled from the environment and the
``.env`` file beside it, paths made absolute. Every problem is a ``ConfigError`` naming
the file and the key; keys composer cannot honour are refused with the list of those it
can, and keys that make no sense on composer's private network are noted and ignored.
``project_of`` turns the file into a ``Project`` whose services are the containers.
"""

from __future__ import annotations

import graphlib
import os
import re
import shlex
from pathlib import Path
from typing import Any

from composer.compose_model import Build, ComposeFile, ComposeService, Healthcheck, Mount
from composer.config import Project, Ready, Service, Setup
from composer.errors import ConfigError

__all__ = ["TEMPLATES_DIR", "ComposeFile", "ComposeService", "Build", "Mount", "Healthcheck", "load",
           "project_of", "is_compose_file"]

#: Where Antithesis-style images keep their test templates.
TEMPLATES_DIR = "/opt/antithesis/test/v1"
_SERVICE_KEYS = ("image", "build", "command", "entrypoint", "environment", "volumes",
                 "networks", "depends_on", "healthcheck", "hostname", "working_dir", "user",
                 "init", "labels", "cap_add", "cap_drop", "privileged")
#: accepted and ignored, with the reason printed once
_IGNORED_KEYS = {
    "ports": "nodes live on composer's private network; nothing is published on the host",
    "expose": "every port is reachable on composer's private network",
    "restart": "composer restarts containers itself, after kill and stop faults",
    "container_name": "containers are named composer-<block>-<service>",
    "stop_grace_period": "composer gives a stopped service 5 s before SIGKILL",
    "logging": "logs are kept in the run directory",
    "tty": "containers run without a terminal",
    "stdin_open": "containers run without stdin",
}
_TOP_KEYS = ("services", "networks", "volumes", "name", "version")
_CONDITIONS = ("service_started", "service_healthy")
_GO_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_VARIABLE = re.compile(r"\$(?:(\$)|\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")
_SETUP_HINT = ("have a service's entrypoint call setup_complete() (antithesis.lifecycle) "
               "once the system is ready, or raise --setup-timeout")
_SERVICE_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")


def is_compose_file(path: Path) -> bool:
    """Whether ``path`` names a compose file rather than a composer project."""
    return path.suffix in (".yml", ".yaml") and not path.is_dir()


def load(path: Path | str) -> ComposeFile:
    """Read and validate the compose file at ``path``."""
    import yaml

    path = Path(path).resolve()
    if not path.is_file():
        raise ConfigError(f"{path}: no such compose file")
    try:
        data = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: malformed YAML: {exc}") from None
    return _Reader(path).compose(data)


def project_of(compose: ComposeFile, drivers: set[str]) -> Project:
    """The ``Project`` of ``compose``: one service per container, whose main process is the
    service; ``drivers`` names the services whose images hold test commands."""
    services = tuple(
        Service(name=s.name, ready=_ready(s.healthcheck), image=s.image,
                drivers=s.name in drivers, takes_faults=s.name not in drivers,
                after_ready=tuple(d for d, condition in s.depends_on
                                  if condition == "service_healthy"))
        for s in compose.services)
    return Project(name=compose.name, root=compose.path.parent, source=compose.path,
                   templates_dir=compose.path.parent / ".composer" / "compose",
                   services=services, setup=Setup(sdk=True, timeout=120.0, hint=_SETUP_HINT),
                   backend="compose", backend_options=(("compose", compose),))


def _ready(check: Healthcheck | None) -> Ready | None:
    """The healthcheck as composer's readiness command, run in the container until it
    passes. Not the engine's: a probe hanging in a paused container holds the engine's
    lock on it, and unpausing then waits for the probe's timeout."""
    if check is None:
        return None
    return Ready(command=check.test[1] if check.test[0] == "CMD-SHELL"
                 else shlex.join(check.test[1:]))


class _Reader:
    def __init__(self, path: Path) -> None:
        self.path = path
        self.env = {**_dotenv(path.parent / ".env"), **os.environ}
        self.notes: list[str] = []

    def fail(self, message: str) -> ConfigError:
        return ConfigError(f"{self.path}: {message}")

    def fill(self, value: Any, key: str) -> Any:
        """Interpolate ``${VAR}``, ``${VAR:-default}``, ``${VAR:?error}``, ``$VAR``, ``$$``."""
        if isinstance(value, dict):
            return {k: self.fill(v, f"{key}.{k}") for k, v in value.items()}
        if isinstance(value, list):
            return [self.fill(v, key) for v in value]
        if not isinstance(value, str):
            return value

        def sub(match: re.Match) -> str:
            dollar, name, op, word, bare = match.groups()
            if dollar:
                return "$"
            name = name or bare
            found = self.env.get(name)
            if op in (":-", "-"):
                return word if found is None or (op == ":-" and found == "") else found
            if op in (":?", "?") and (found is None or (op == ":?" and found == "")):
                raise self.fail(f"{key}: variable {name} is required: {word or 'not set'}")
            return found or ""

        return _VARIABLE.sub(sub, value)

    def compose(self, data: Any) -> ComposeFile:
        if not isinstance(data, dict) or not isinstance(data.get("services"), dict):
            raise self.fail("a compose file needs a top-level 'services:' mapping")
        for key in data:
            if key not in _TOP_KEYS and not str(key).startswith("x-"):
                raise self.fail(f"top-level key {key!r} is not supported by composer's compose "
                                f"mode (supported: {', '.join(_TOP_KEYS)}, x-*)")
        data = self.fill(data, "")
        name = str(data.get("name") or self.path.parent.name).lower()
        volumes = tuple(data.get("volumes") or {})
        services = {}
        for service_name, raw in data["services"].items():
            services[service_name] = self.service(str(service_name), raw, name, volumes)
        for service in services.values():
            for dependency, _ in service.depends_on:
                if dependency not in services:
                    raise self.fail(f"services.{service.name}.depends_on: no service "
                                    f"{dependency!r}")
                if (dependency, "service_healthy") in service.depends_on and \
                        services[dependency].healthcheck is None:
                    raise self.fail(f"services.{service.name}.depends_on.{dependency}: "
                                    f"condition service_healthy, but {dependency} has no "
                                    "healthcheck")
        return ComposeFile(self.path, name, _in_start_order(services, self.fail), volumes,
                           tuple(self.notes))

    def service(self, name: str, raw: Any, project: str, volumes: tuple[str, ...]
                ) -> ComposeService:
        key = f"services.{name}"
        if not _SERVICE_NAME.match(name):
            raise self.fail(f"{key}: service names are lower-case letters, digits, '.', '-' "
                            "and '_'")
        if not isinstance(raw, dict):
            raise self.fail(f"{key} must be a mapping")
        for field in raw:
            if field in _IGNORED_KEYS:
                self.notes.append(f"{key}.{field} ignored: {_IGNORED_KEYS[field]}")
            elif field not in _SERVICE_KEYS and not str(field).startswith("x-"):
                raise self.fail(f"{key}.{field} is not supported by composer's compose mode "
                                f"(supported: {', '.join(_SERVICE_KEYS)}; ignored: "
                                f"{', '.join(_IGNORED_KEYS)})")
        self.networks(f"{key}.networks", raw.get("networks"))
        build = self.build(key, raw.get("build"))
        image = raw.get("image") or (f"composer-{project}-{name}:latest" if build else None)
        if not isinstance(image, str):
            raise self.fail(f"{key} needs an image or a build")
        return ComposeService(
            name=name, image=image, build=build,
            command=self.argv(f"{key}.command", raw.get("command")),
            entrypoint=self.argv(f"{key}.entrypoint", raw.get("entrypoint")),
            environment=self.pairs(f"{key}.environment", raw.get("environment")),
            mounts=tuple(self.mount(f"{key}.volumes", v, volumes)
                         for v in self.listed(f"{key}.volumes", raw.get("volumes"))),
            depends_on=self.depends_on(f"{key}.depends_on", raw.get("depends_on")),
            healthcheck=self.healthcheck(f"{key}.healthcheck", raw.get("healthcheck")),
            hostname=self.text(f"{key}.hostname", raw.get("hostname")),
            working_dir=self.text(f"{key}.working_dir", raw.get("working_dir")),
            user=self.text(f"{key}.user", raw.get("user")),
            init=bool(raw.get("init", False)),
            labels=self.pairs(f"{key}.labels", raw.get("labels")),
            cap_add=tuple(map(str, self.listed(f"{key}.cap_add", raw.get("cap_add")))),
            cap_drop=tuple(map(str, self.listed(f"{key}.cap_drop", raw.get("cap_drop")))),
            privileged=bool(raw.get("privileged", False)),
        )

    def text(self, key: str, value: Any) -> str | None:
        if value is None:
            return None
        if not isinstance(value, (str, int)):
            raise self.fail(f"{key}={value!r} must be a string")
        return str(value)

    def listed(self, key: str, value: Any) -> list:
        if value is None:
            return []
        if not isinstance(value, list):
            raise self.fail(f"{key} must be a list")
        return value

    def argv(self, key: str, value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        if isinstance(value, str):
            try:
                return tuple(shlex.split(value))
            except ValueError as exc:
                raise self.fail(f"{key}: {exc}") from None
        if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
            return tuple(map(str, value))
        raise self.fail(f"{key} must be a string or a list of strings")

    def pairs(self, key: str, value: Any) -> tuple[tuple[str, str], ...]:
        """``KEY=value`` lists and mappings; a bare ``KEY`` takes this environment's value."""
        if value is None:
            return ()
        if isinstance(value, dict):
            items = [(str(k), "" if v is None else _scalar(v)) for k, v in value.items()]
        elif isinstance(value, list):
            items = []
            for entry in value:
                name, has, text = str(entry).partition("=")
                items.append((name, text if has else self.env.get(name, "")))
        else:
            raise self.fail(f"{key} must be a list of KEY=value or a mapping")
        return tuple(items)

    def build(self, key: str, value: Any) -> Build | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = {"context": value}
        if not isinstance(value, dict):
            raise self.fail(f"{key}.build must be a path or a mapping")
        for field in value:
            if field not in ("context", "dockerfile", "args"):
                raise self.fail(f"{key}.build.{field} is not supported (supported: context, "
                                "dockerfile, args)")
        context = (self.path.parent / str(value.get("context", "."))).resolve()
        if not context.is_dir():
            raise self.fail(f"{key}.build.context: {context} is not a directory")
        return Build(context, str(value.get("dockerfile", "Dockerfile")),
                     self.pairs(f"{key}.build.args", value.get("args")))

    def mount(self, key: str, value: Any, volumes: tuple[str, ...]) -> Mount:
        if isinstance(value, dict):
            kind, source, target = value.get("type", "volume"), value.get("source"), value.get("target")
            read_only = bool(value.get("read_only", False))
        elif isinstance(value, str):
            parts = value.split(":")
            if len(parts) == 1:
                raise self.fail(f"{key}: {value!r}: anonymous volumes are not supported; name "
                                "it (NAME:/path) or bind a directory (./dir:/path)")
            source, target = parts[0], parts[1]
            read_only = len(parts) > 2 and "ro" in parts[2].split(",")
            kind = "bind" if source.startswith((".", "/", "~")) else "volume"
        else:
            raise self.fail(f"{key}: {value!r} must be SOURCE:TARGET[:ro] or a mapping")
        if not source or not target:
            raise self.fail(f"{key}: {value!r} needs a source and a target")
        if kind == "bind":
            host = (self.path.parent / os.path.expanduser(str(source))).resolve()
            return Mount(str(host), str(target), read_only)
        if kind != "volume":
            raise self.fail(f"{key}: volume type {kind!r} is not supported (bind, volume)")
        if source not in volumes:
            raise self.fail(f"{key}: volume {source!r} is not declared under top-level volumes:")
        return Mount(str(source), str(target), read_only, volume=True)

    def depends_on(self, key: str, value: Any) -> tuple[tuple[str, str], ...]:
        if value is None:
            return ()
        if isinstance(value, list):
            return tuple((str(v), "service_started") for v in value)
        if not isinstance(value, dict):
            raise self.fail(f"{key} must be a list or a mapping")
        found = []
        for name, spec in value.items():
            condition = (spec or {}).get("condition", "service_started") if isinstance(spec, dict) else None
            if condition not in _CONDITIONS:
                raise self.fail(f"{key}.{name}: condition {condition!r} is not supported "
                                f"(supported: {', '.join(_CONDITIONS)})")
            found.append((str(name), condition))
        return tuple(found)

    def healthcheck(self, key: str, value: Any) -> Healthcheck | None:
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.fail(f"{key} must be a mapping")
        for field in value:
            if field not in ("test", "interval", "timeout", "retries", "start_period", "disable"):
                raise self.fail(f"{key}.{field} is not supported (supported: test, interval, "
                                "timeout, retries, start_period, disable)")
        test = value.get("test")
        if value.get("disable") or test in (["NONE"], ("NONE",)):
            return None
        if isinstance(test, str):
            test = ["CMD-SHELL", test]
        if not (isinstance(test, list) and test and test[0] in ("CMD", "CMD-SHELL")
                and len(test) > 1):
            raise self.fail(f"{key}.test must be a string, [\"CMD\", ...] or "
                            "[\"CMD-SHELL\", \"...\"]")
        retries = value.get("retries", 3)
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 1:
            raise self.fail(f"{key}.retries={retries!r} must be a positive integer")
        for field in ("interval", "timeout", "start_period"):
            self.go_duration(f"{key}.{field}", value.get(field, "0s"))
        return Healthcheck(tuple(map(str, test)))

    def go_duration(self, key: str, value: Any) -> float:
        """Compose durations: ``1m30s``, ``500ms``, ``10s`` (or a number of seconds)."""
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        text = str(value).strip()
        if text in ("0", ""):
            return 0.0
        parts = _GO_DURATION.findall(text)
        if not parts or "".join(n + u for n, u in parts) != text:
            raise self.fail(f"{key}={value!r} is not a duration: use e.g. 1s, 500ms, 1m30s")
        return sum(float(n) * _GO_UNITS[u] for n, u in parts)

    def networks(self, key: str, value: Any) -> None:
        """Every service joins composer's one private network; the names are accepted."""
        if value is not None and not isinstance(value, (list, dict)):
            raise self.fail(f"{key} must be a list or a mapping")
        if value and len(value) > 1:
            self.notes.append(f"{key}: all services share one private network (faults "
                              "decide who reaches whom)")


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _dotenv(path: Path) -> dict[str, str]:
    """``KEY=value`` lines of a ``.env`` file (quotes stripped); none if it is missing."""
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return {}
    found = {}
    for line in lines:
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            name, _, value = line.partition("=")
            found[name.strip()] = value.strip().strip("'\"")
    return found


def _in_start_order(services: dict[str, ComposeService], fail) -> tuple[ComposeService, ...]:
    """Services ordered so that each comes after those it depends on; cycles are errors."""
    graph = {name: [d for d, _ in s.depends_on] for name, s in services.items()}
    try:
        return tuple(services[n] for n in graphlib.TopologicalSorter(graph).static_order())
    except graphlib.CycleError as exc:
        raise fail(f"depends_on cycle: {' -> '.join(reversed(exc.args[1]))}") from None
