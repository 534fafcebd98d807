"""Reads ``composer.toml``'s parsed TOML into ``composer.config``'s frozen dataclasses,
key by key: unknown keys (with the nearest known one), wrong types, unknown placeholders,
fault kinds, checkers and models are ``ConfigError``s naming the file and the key.
Imports ``composer.config``, ``composer.errors``, ``composer.faults`` and
``composer.checkers`` (their names, for validation).
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

from composer.checkers import default_name, model_problem
from composer.config import (DEFAULT_DRIVER_SERVICE, _NODE_PLACEHOLDERS, Check, Explore,
                             Project, Ready, Service, Setup, TemplateOptions, parse_duration)
from composer.errors import ConfigError
from composer.faults import FAULT_KINDS

__all__ = ["Reader"]

_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
#: what looks like a placeholder ("{word}", "{word.word}"), but not the shell's "${VAR}"
_LOOKS_LIKE_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z0-9_-]+)?)\}")
#: How ``typed`` names a TOML type in an error, with an example value.
_TYPES = {int: ("an integer", "3"), str: ("a string", '"..."'), bool: ("true or false", "true"),
          dict: ("a table", '{ KEY = "value" }')}


class Reader:
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
        top = ("project", "services", "setup", "explore", "template", "aws")
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
            aws=self.aws(data.get("aws", {})),
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

    def aws(self, raw: Any) -> tuple[tuple[str, Any], ...]:
        """``[aws]``: settings of the aws backend, checked as its flags are."""
        from composer.aws.settings import FIELDS, KEY_PAIR_NAMES, load

        try:
            if isinstance(raw, dict) and set(raw) & KEY_PAIR_NAMES:
                load(raw, environ={})  # says why there is no key pair
            table = self.table(raw, "aws", FIELDS)
            load(table, environ={})
        except ConfigError as exc:
            raise self.fail(str(exc)) from None
        return tuple(sorted(table.items()))

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
            self.table(table, f"template.{name}", ("check_exit_code", "checks"))
            check = self.typed(table, f"template.{name}", "check_exit_code", bool, True)
            checks = self.checks(table.get("checks", []), f"template.{name}.checks")
            options.append((name, TemplateOptions(check_exit_code=check, checks=checks)))
        return tuple(options)

    def checks(self, raw: Any, key: str) -> tuple[Check, ...]:
        """``[[template.NAME.checks]]`` tables: a known checker, a model where it needs
        one (and none where it does not), names unique within the template."""
        if not isinstance(raw, list):
            raise self.fail(f"{key} must be a list of tables: write [[{key}]]")
        found: list[Check] = []
        for i, table in enumerate(raw):
            where = f"{key}[{i}]"
            self.table(table, where, ("checker", "model", "name", "time_limit"))
            checker = self.typed(table, where, "checker", str, None)
            model = self.typed(table, where, "model", str, None)
            problem = model_problem(checker, model)
            if problem:
                raise self.fail(f"{where}: {problem}")
            name = self.typed(table, where, "name", str, default_name(checker, model))
            if any(c.name == name for c in found):
                raise self.fail(f"{where}.name={name!r}: another check has that name")
            limit = self.duration(table.get("time_limit", 60.0), f"{where}.time_limit")
            found.append(Check(checker, name, model, limit))
        return tuple(found)
