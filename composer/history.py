"""Histories: what the clients of a timeline saw, as Jepsen records it.

A driver writes one ``composer_op`` record per event (``invoke``, then ``ok``, ``fail`` or
``info``) through ``composer_sdk.history`` or any SDK's ``send_event``; this module merges
the records of every process of a timeline into one history ordered by time and pairs each
invocation with its completion into an ``Operation``. An invocation never completed is
``info`` (it may or may not have taken effect); so is one whose process invoked again
before completing it. Imports the standard library and the SDK's record name.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from composer_sdk.history import RECORD

__all__ = ["Event", "Operation", "History", "RECORD", "freeze", "event", "read_events",
           "pair"]
_TYPES = ("invoke", "ok", "fail", "info")


def freeze(value: Any) -> Any:
    """A JSON value as a hashable one: lists become tuples, objects sorted tuples of pairs."""
    if isinstance(value, list):
        return tuple(freeze(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, freeze(v)) for k, v in value.items()))
    return value


@dataclasses.dataclass(frozen=True)
class Event:
    """One record: a process invoking ``f``, or that invocation's completion."""

    process: Any
    type: str
    f: str
    key: Any = None
    value: Any = None
    #: nanoseconds on the driver's clock (or the position in an imported log)
    time: int = 0
    error: str | None = None


@dataclasses.dataclass(frozen=True)
class Operation:
    """An invocation and its completion: ``ok`` (took effect, ``output`` is what it
    returned), ``fail`` (certainly did not) or ``info`` (may have, any time after ``call``;
    ``ret`` is None)."""

    index: int
    process: Any
    type: str
    f: str
    key: Any
    value: Any
    output: Any
    call: int
    ret: int | None
    error: str | None = None

    def describe(self) -> str:
        """The operation as a person reads it: ``p3 write k=1 3 -> ok``."""
        key = "" if self.key is None else f" {self.key!r}"
        shown = f" {self.value!r}" if self.value is not None else ""
        out = f" {self.output!r}" if self.type == "ok" and self.output is not None else ""
        who = f"p{self.process}" if isinstance(self.process, int) else str(self.process)
        return f"{who} {self.f}{key}{shown} -> {self.type}{out}"

    def to_json(self) -> dict[str, Any]:
        """The operation as a line of a timeline's ``history.jsonl``."""
        data = dataclasses.asdict(self)
        if data["error"] is None:
            del data["error"]
        return data

    @classmethod
    def from_json(cls, data: dict) -> Operation:
        """Read ``to_json``'s form back (``KeyError``/``ValueError``/``TypeError`` if not)."""
        return cls(int(data["index"]), freeze(data["process"]), data["type"], data["f"],
                   freeze(data.get("key")), freeze(data.get("value")),
                   freeze(data.get("output")), int(data["call"]),
                   None if data.get("ret") is None else int(data["ret"]), data.get("error"))


@dataclasses.dataclass
class History:
    """The paired operations of one history, and what could not be read."""

    operations: list[Operation]
    #: records that were not history events (missing fields, unknown type)
    garbage: int = 0
    #: completions that matched no open invocation
    unmatched: int = 0


def read_events(paths: Iterable[Path]) -> tuple[list[Event], int]:
    """Return the ``composer_op`` events of the JSONL files at ``paths`` in time order
    (a stable sort: a process's own events keep their order), and how many
    ``composer_op`` records were malformed."""
    events: list[Event] = []
    garbage = 0
    for path in paths:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            if f'"{RECORD}"' not in line:
                continue
            try:
                data = json.loads(line)
            except ValueError:
                garbage += 1
                continue
            if not isinstance(data, dict) or RECORD not in data:
                continue  # another record naming it (the SDK's warning about big numbers)
            try:
                events.append(event(data[RECORD]))
            except (ValueError, KeyError, TypeError):
                garbage += 1
    events.sort(key=lambda e: e.time)
    return events, garbage


def event(record: dict) -> Event:
    """One ``composer_op`` record's event (``ValueError``, ``KeyError`` or ``TypeError``
    when it is not one)."""
    kind = record["type"]
    if kind not in _TYPES or not isinstance(record["f"], str):
        raise ValueError(f"not a history event: {record!r}")
    time = record.get("time", 0)
    if not isinstance(time, (int, float)) or isinstance(time, bool):
        raise ValueError(f"time {time!r}")
    error = record.get("error")
    return Event(freeze(record["process"]), kind, record["f"], freeze(record.get("key")),
                 freeze(record.get("value")), int(time),
                 None if error is None else str(error))


def pair(events: Iterable[Event], garbage: int = 0) -> History:
    """Pair each invocation with its process's next completion; what stays open is
    ``info``. Operations are numbered by invocation order."""
    open_: dict[Any, tuple[int, Event]] = {}
    done: dict[int, Operation] = {}
    unmatched = 0
    count = 0

    def close(number: int, invoke: Event, kind: str, output: Any, ret: int | None,
              error: str | None) -> None:
        done[number] = Operation(number, invoke.process, kind, invoke.f, invoke.key,
                                 invoke.value, output, invoke.time, ret, error)

    for event in events:
        if event.type == "invoke":
            if event.process in open_:  # invoked again: the first never completed
                number, invoke = open_.pop(event.process)
                close(number, invoke, "info", None, None, "no completion")
            open_[event.process] = (count, event)
            count += 1
            continue
        if event.process not in open_:
            unmatched += 1
            continue
        number, invoke = open_.pop(event.process)
        if event.type == "info":
            close(number, invoke, "info", None, None, event.error)
        else:
            output = event.value if event.type == "ok" else None
            close(number, invoke, event.type, output, max(event.time, invoke.time),
                  event.error)
    for number, invoke in open_.values():
        close(number, invoke, "info", None, None, "no completion")
    return History([done[n] for n in sorted(done)], garbage, unmatched)
