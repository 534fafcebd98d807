"""Timelines as plain data: what runs when, which faults hit which nodes; and replay files.

Imports only ``composer.faults`` and the standard library. A timeline round-trips through JSON exactly, so a
replay file repeats the same timeline on any machine.
"""

from __future__ import annotations

import dataclasses
import json
import time
from pathlib import Path
from typing import Any

from composer.faults import describe_fault

__all__ = ["Start", "Trigger", "Fault", "Event", "Timeline", "Replay", "save_replay",
           "load_replay"]

FORMAT_VERSION = 1


@dataclasses.dataclass(frozen=True)
class Start:
    """Start ``command`` on driver node ``node`` at ``at`` seconds into the driver phase."""

    at: float
    command: str
    node: str
    seed: int


@dataclasses.dataclass(frozen=True)
class Trigger:
    """A state a fault waits for: the first time this timeline's driver phase shows an
    assertion outcome (``id`` with its condition ``passed``), reported by a process on
    ``node`` (None: any process). A fault placed just after a state lands there in every
    run, however the state's time varies from run to run."""

    id: str
    passed: bool = True
    node: str | None = None

    def describe(self) -> str:
        where = f" on {self.node}" if self.node else ""
        return f"after {self.id!r}{'' if self.passed else ' (false)'}{where}"


@dataclasses.dataclass(frozen=True)
class Fault:
    """Apply a fault of ``kind`` to ``targets`` at ``at`` seconds (with ``after``: ``at``
    seconds after that state first showed, and not at all if it never does); heal it
    ``duration`` later."""

    at: float
    kind: str
    targets: tuple[str, ...]
    duration: float
    #: how a partition cuts (``composer.faults.PARTITION_SHAPES``); None for other kinds
    shape: str | None = None
    #: loss, reorder, duplicate, corrupt %, bandwidth kbit/s, latency ms or clock offset s;
    #: None for other kinds
    amount: float | None = None
    after: Trigger | None = None


Event = Start | Fault


@dataclasses.dataclass(frozen=True)
class Timeline:
    """One test: the first command, timed driver-phase events, then eventually or finally."""

    template: str
    #: length of the driver phase, seconds
    length: float
    #: seed of the first, eventually and finally commands
    seed: int
    first: str | None = None
    events: tuple[Event, ...] = ()
    eventually: str | None = None
    finally_: str | None = None

    def size(self) -> tuple[float, ...]:
        """Return a key that orders timelines by how small they are to read."""
        faults = [e for e in self.events if isinstance(e, Fault)]
        return (
            len(self.events),
            sum(1 for c in (self.first, self.eventually, self.finally_) if c),
            sum(len(f.targets) for f in faults),
            sum(f.duration for f in faults),
            self.length,
        )

    def to_json(self) -> dict[str, Any]:
        """Return this timeline as JSON-ready data."""
        return {
            "version": FORMAT_VERSION,
            "template": self.template,
            "length": self.length,
            "seed": self.seed,
            "first": self.first,
            "events": [_event_json(e) for e in self.events],
            "eventually": self.eventually,
            "finally": self.finally_,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Timeline:
        """Rebuild a timeline from ``to_json`` output; ``ValueError`` if it is not one."""
        try:
            if data.get("version") != FORMAT_VERSION:
                raise ValueError(f"unsupported timeline version {data.get('version')!r}")
            return cls(
                template=_name(data["template"], "template"),
                length=float(data["length"]),
                seed=int(data["seed"]),
                first=_name(data.get("first"), "first", optional=True),
                events=tuple(_event_from_json(e) for e in data.get("events", [])),
                eventually=_name(data.get("eventually"), "eventually", optional=True),
                finally_=_name(data.get("finally"), "finally", optional=True),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"not a timeline: {exc!r}") from None

    def describe(self) -> list[str]:
        """Return one human-readable line per step, in order."""
        lines = []
        if self.first:
            lines.append(f"  setup      first     {self.first}")
        for event in self.events:
            if isinstance(event, Start):
                lines.append(
                    f"  {event.at:7.2f}s  start     {event.command} on {event.node} (seed {event.seed})"
                )
            else:
                kind, _, rest = describe_fault(event).partition(" ")
                when = f"{event.at:7.2f}s" if event.after is None else f"{event.at:+6.2f}s"
                after = "" if event.after is None else f" ({event.after.describe()})"
                lines.append(f"  {when}  {kind:<9} {rest} for {event.duration:.2f}s{after}")
        lines.append(f"  {self.length:7.2f}s  end of driver phase")
        if self.eventually:
            lines.append(f"  after      eventually {self.eventually}")
        if self.finally_:
            lines.append(f"  after      finally   {self.finally_}")
        return lines


def _event_json(event: Event) -> dict[str, Any]:
    data = dataclasses.asdict(event)
    data["type"] = "start" if isinstance(event, Start) else "fault"
    if isinstance(event, Fault):
        data["targets"] = list(event.targets)
        for key in ("shape", "amount", "after"):
            if data[key] is None:
                del data[key]
    return data


def _name(value: Any, key: str, optional: bool = False) -> str | None:
    """Return ``value`` if it is a string (or None when ``optional``); else ``ValueError``."""
    if isinstance(value, str) or (optional and value is None):
        return value
    raise ValueError(f"{key}={value!r} must be a {'string or null' if optional else 'string'}")


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{key}={value!r} must be a number")
    return value


def _event_from_json(data: dict[str, Any]) -> Event:
    kind = data.get("type")
    if kind == "start":
        return Start(float(data["at"]), _name(data["command"], "command"),
                     _name(data["node"], "node"), int(data["seed"]))
    if kind == "fault":
        if not isinstance(data["targets"], list):
            raise ValueError(f"fault targets={data['targets']!r} must be a list of node names")
        return Fault(
            float(data["at"]), _name(data["kind"], "kind"),
            tuple(_name(t, "target") for t in data["targets"]), float(data["duration"]),
            shape=_name(data.get("shape"), "shape", optional=True),
            amount=None if data.get("amount") is None else _number(data["amount"], "amount"),
            after=None if data.get("after") is None else _trigger(data["after"]),
        )
    raise ValueError(f"unknown event type {kind!r}")


def _trigger(data: Any) -> Trigger:
    if not isinstance(data, dict) or not isinstance(data.get("passed", True), bool):
        raise ValueError(f"fault after={data!r} must be {{id, passed, node}}")
    return Trigger(_name(data.get("id"), "after.id"), data.get("passed", True),
                   _name(data.get("node"), "after.node", optional=True))


@dataclasses.dataclass(frozen=True)
class Replay:
    """A saved failing timeline: what to run, where, and which property it broke."""

    project: Path
    backend: str
    property: str
    timeline: Timeline
    reproduced: str = ""


def save_replay(replay: Replay, directory: Path, name: str) -> Path:
    """Write ``replay`` to ``directory/name.json`` and return the path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    data = {
        "version": FORMAT_VERSION,
        "project": str(replay.project),
        "backend": replay.backend,
        "property": replay.property,
        "reproduced": replay.reproduced,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "timeline": replay.timeline.to_json(),
    }
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def load_replay(path: Path) -> Replay:
    """Read a replay file; ``ValueError`` naming the file if it is not one."""
    try:
        data = json.loads(path.read_text())
        if data.get("version") != FORMAT_VERSION:
            raise ValueError(f"version {data.get('version')!r}; this composer reads version "
                             f"{FORMAT_VERSION}")
        return Replay(
            project=Path(data["project"]),
            backend=str(data["backend"]),
            property=str(data["property"]),
            timeline=Timeline.from_json(data["timeline"]),
            reproduced=str(data.get("reproduced", "")),
        )
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"{path}: not a composer replay file ({exc})") from None
