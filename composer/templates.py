"""Test templates: directories of executable commands named by prefix (Antithesis layout).

Imports only ``composer.errors``. ``discover`` finds every template below a project's
templates directory and validates it; every error names the file and the fix.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
from pathlib import Path

from composer.errors import TemplateError

__all__ = ["KINDS", "Command", "Template", "discover"]

#: Command kinds, named by their file prefix without the trailing underscore.
KINDS = (
    "first",
    "parallel_driver",
    "serial_driver",
    "singleton_driver",
    "anytime",
    "eventually",
    "finally",
)
_PREFIXES = tuple(f"{kind}_" for kind in KINDS)
#: Entries a template may hold that are never run.
_IGNORED = ("helper_",)
_IGNORED_NAMES = ("__pycache__",)
_DRIVER_KINDS = ("parallel_driver", "serial_driver", "singleton_driver", "anytime")


@dataclasses.dataclass(frozen=True)
class Command:
    """One executable of a template; ``name`` is its file name, unique within the template."""

    name: str
    kind: str
    path: Path
    #: the node it must run on (compose: the container holding it); None: any driver node
    node: str | None = None


@dataclasses.dataclass(frozen=True)
class Template:
    """A validated template: its commands sorted by name."""

    name: str
    path: Path
    commands: tuple[Command, ...]

    def of_kind(self, *kinds: str) -> list[Command]:
        """Return the commands of the given kinds, sorted by name."""
        return [c for c in self.commands if c.kind in kinds]

    def command(self, name: str) -> Command:
        """Return the command called ``name``; ``TemplateError`` if there is none."""
        for command in self.commands:
            if command.name == name:
                return command
        raise TemplateError(f"template {self.name!r} has no command {name!r} ({self.path})")


def discover(templates_dir: Path) -> dict[str, Template]:
    """Find and validate every template below ``templates_dir`` (one subdirectory each)."""
    if not templates_dir.is_dir():
        raise TemplateError(
            f"{templates_dir}: no templates directory. Put executable commands in "
            f"{templates_dir}/<template>/, e.g. {templates_dir}/main/parallel_driver_write"
        )
    templates = {}
    for entry in sorted(templates_dir.iterdir()):
        if entry.name.startswith(".") or entry.name in _IGNORED_NAMES:
            continue
        if not entry.is_dir():
            raise TemplateError(
                f"{entry}: commands live in a template directory, not directly in "
                f"{templates_dir.name}/: move it to {templates_dir}/main/{entry.name}"
            )
        templates[entry.name] = _template(entry)
    if not templates:
        raise TemplateError(
            f"{templates_dir}: no template found. Create {templates_dir}/main/ with at least "
            "one executable parallel_driver_*, serial_driver_*, singleton_driver_* or anytime_* command"
        )
    return templates


def _template(path: Path) -> Template:
    commands = []
    for entry in sorted(path.iterdir()):
        name = entry.name
        if name.startswith(".") or name in _IGNORED_NAMES or name.startswith(_IGNORED):
            continue
        if entry.is_dir():
            raise TemplateError(
                f"{entry}: a directory in a template must be named helper_*: "
                f"rename it to helper_{name}"
            )
        kind = _kind(entry)
        if entry.is_symlink() and not entry.exists():
            raise TemplateError(f"{entry}: a broken symbolic link (to {os.readlink(entry)}): "
                                "point it at an existing command or remove it")
        if not os.access(entry, os.X_OK):
            raise TemplateError(f"{entry}: command is not executable: run chmod +x {entry}")
        commands.append(Command(name=name, kind=kind, path=entry.resolve()))
    if not any(c.kind in _DRIVER_KINDS for c in commands):
        raise TemplateError(
            f"{path}: template {path.name!r} has no driver or anytime command: add an executable "
            "parallel_driver_*, serial_driver_*, singleton_driver_* or anytime_* file"
        )
    return Template(name=path.name, path=path.resolve(), commands=tuple(commands))


def _kind(entry: Path) -> str:
    name = entry.name
    for kind, prefix in zip(KINDS, _PREFIXES):
        if name.startswith(prefix) and len(name) > len(prefix):
            return kind
    if name in _PREFIXES or name + "_" in _PREFIXES:
        raise TemplateError(f"{entry}: add a name after the prefix, e.g. {name.rstrip('_')}_check")
    fix = _suggest(name)
    raise TemplateError(
        f"{entry}: unknown command prefix. Template files must start with one of "
        f"{', '.join(_PREFIXES + _IGNORED)} (helper_ files are never run).{fix}"
    )


def _suggest(name: str) -> str:
    """Return " Did you mean X?" for a misspelt prefix, comparing word by word."""
    parts = name.split("_")
    best, best_ratio = "", 0.0
    for prefix in _PREFIXES + _IGNORED:
        words = prefix.rstrip("_").split("_")
        if len(parts) <= len(words):
            continue
        ratio = difflib.SequenceMatcher(None, "_".join(parts[: len(words)]), "_".join(words)).ratio()
        if ratio > best_ratio:
            best, best_ratio = prefix + "_".join(parts[len(words):]), ratio
    return f" Did you mean {best}?" if best_ratio >= 0.75 else ""
