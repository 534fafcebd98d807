"""Histories from files, for ``composer check``: composer's own JSONL (an SDK output file
with ``composer_op`` records, or a timeline's paired ``history.jsonl``), Jepsen's EDN
history (one ``{:type :invoke, :f :write, :value 3, :process 0, :time 1}`` map per
line, as ``history.edn``, and Porcupine's test data), and Jepsen's log lines
(``INFO  jepsen.util - 2	:invoke	:read	nil``, Porcupine's etcd logs, where the line's
position is its time). Imports ``composer.history``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from composer.history import RECORD, Event, History, Operation, event, freeze, pair

__all__ = ["read_history", "parse_edn"]

_LOG_LINE = re.compile(r"^.*?(\d+)\t:(invoke|ok|fail|info)\t:([\w-]+)\t(.*)$")
_TOKEN = re.compile(r'\s*(?:([{}\[\]()])|("(?:[^"\\]|\\.)*")|([^\s,{}\[\]()"]+))[\s,]*')


def read_history(path: Path) -> History:
    """Read the history in ``path`` whatever its format; ``ValueError`` saying what
    could not be read, and where."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise ValueError(f"{path}: {exc.strerror or exc}") from None
    sample = next((line.strip() for line in lines if line.strip()), "")
    if not sample:
        return History([])
    if sample.startswith("{\""):
        return _json_lines(path, lines)
    if sample.startswith("{"):
        return _edn_lines(path, lines)
    if _LOG_LINE.match(sample):
        return _log_lines(lines)
    raise ValueError(f"{path}: not a history composer reads (composer's JSONL, Jepsen EDN "
                     f"maps or Jepsen log lines); it starts {sample[:60]!r}")


def _json_lines(path: Path, lines: list[str]) -> History:
    paired: list[Operation] = []
    events: list[Event] = []
    garbage = 0
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if RECORD in data:
                events.append(event({"time": number, **data[RECORD]}))
            elif "call" in data:  # a timeline's history.jsonl: operations already paired
                paired.append(Operation.from_json(data))
            else:
                garbage += 1
        except (ValueError, KeyError, TypeError):
            garbage += 1
    if paired and events:
        raise ValueError(f"{path}: holds both paired operations and composer_op records")
    if paired:
        return History(paired, garbage)
    events.sort(key=lambda e: e.time)
    return pair(events, garbage)


def _edn_lines(path: Path, lines: list[str]) -> History:
    events: list[Event] = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = parse_edn(line)
            kind = data[":type"]
            events.append(Event(freeze(data[":process"]), kind, data[":f"],
                                freeze(data.get(":key")), freeze(data.get(":value")),
                                int(data.get(":time", number)), data.get(":error")))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{path}:{number}: not a Jepsen history map ({exc})") from None
    events.sort(key=lambda e: e.time)
    return pair(e for e in events if e.type in ("invoke", "ok", "fail", "info"))


def _log_lines(lines: list[str]) -> History:
    events = []
    for number, line in enumerate(lines):
        match = _LOG_LINE.match(line)
        if match is None:
            continue
        process, kind, f, value = match.groups()
        events.append(Event(int(process), kind, f, None, freeze(parse_edn(value)), number))
    return pair(events)


def parse_edn(text: str) -> Any:
    """Parse one EDN value: maps (keyword keys stay ``":name"`` strings), vectors, lists,
    keywords (``:ok`` -> ``"ok"`` as values), integers, floats, strings, nil, booleans."""
    tokens = [m for m in _TOKEN.finditer(text)]
    if not tokens or tokens[-1].end() < len(text.rstrip()):
        raise ValueError(f"cannot read {text[:40]!r}")
    value, end = _value(tokens, 0)
    if end != len(tokens):
        raise ValueError(f"more than one value in {text[:40]!r}")
    return value


def _value(tokens: list[re.Match], i: int) -> tuple[Any, int]:
    if i >= len(tokens):
        raise ValueError("unexpected end")
    bracket, string, atom = tokens[i].groups()
    if bracket in ("{", "[", "("):
        close = {"{": "}", "[": "]", "(": ")"}[bracket]
        items, i = [], i + 1
        while i < len(tokens) and tokens[i].group(1) != close:
            item, i = _value(tokens, i)
            items.append(item)
        if i >= len(tokens):
            raise ValueError(f"unclosed {bracket}")
        if bracket == "{":
            if len(items) % 2:
                raise ValueError("a map with an odd number of forms")
            return {_key(k): v for k, v in zip(items[::2], items[1::2])}, i + 1
        return items, i + 1
    if bracket is not None:
        raise ValueError(f"unexpected {bracket}")
    if string is not None:
        return json.loads(string), i + 1
    return _atom(atom), i + 1


def _key(key: Any) -> Any:
    return f":{key}" if isinstance(key, str) and not key.startswith(":") and key else key


def _atom(atom: str) -> Any:
    if atom == "nil":
        return None
    if atom in ("true", "false"):
        return atom == "true"
    if atom.startswith(":"):
        return atom[1:]
    try:
        return int(atom.rstrip("N"))
    except ValueError:
        pass
    try:
        return float(atom.rstrip("M"))
    except ValueError:
        return atom
