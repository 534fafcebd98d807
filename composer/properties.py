"""SDK records turned into property verdicts.

Owns: reading SDK JSONL (protocol 1.1.0, from our ``sdk`` or any official Antithesis
SDK), judging one timeline (``violations``, ``guidance``, ``setup_completed``), and
aggregating assertions across the timelines of one exploration (``PropertyTable``).
Built-in properties arrive as ordinary ``antithesis_assert`` records from the runner.

Knows only record shapes: imports nothing from composer, and nothing outside the
standard library.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from composer_sdk.assertions import ASSERTION_KINDS

__all__ = [
    "Property",
    "PropertyTable",
    "assertion_id",
    "guidance",
    "counts_against",
    "is_unknown",
    "hit_assertions",
    "read_records",
    "setup_completed",
    "violations",
]



def read_records(path: Path) -> tuple[list[dict], int]:
    """Parse a JSONL file; return (records, garbage_line_count).

    Blank lines are ignored; garbage, truncated and non-object lines are counted and
    skipped, because a killed process may leave half a line. A missing file is
    ``([], 0)``: a timeline whose processes wrote nothing.
    """
    records: list[dict] = []
    garbage = 0
    try:
        fh = open(path, "rb")
    except (FileNotFoundError, NotADirectoryError):
        return [], 0
    with fh:
        for raw in fh:
            if not raw.strip():
                continue
            try:
                value = json.loads(raw.decode("utf-8"))
            except (UnicodeDecodeError, ValueError, RecursionError):
                garbage += 1
                continue
            if isinstance(value, dict):
                records.append(value)
            else:
                garbage += 1
    return records, garbage


def _asserts(records: Iterable[dict]) -> Iterable[dict]:
    """The inner dicts of well-formed ``antithesis_assert`` records."""
    for record in records:
        inner = record.get("antithesis_assert") if isinstance(record, dict) else None
        if isinstance(inner, dict) and (isinstance(inner.get("id"), str) or isinstance(inner.get("message"), str)):
            yield inner


def _key(inner: dict) -> str:
    key = inner.get("id")
    return key if isinstance(key, str) and key else str(inner.get("message", ""))


#: The id a property is known by: the record's ``id``, else its ``message``.
assertion_id = _key


def hit_assertions(records: Iterable[dict]) -> Iterable[dict]:
    """The inner dicts of well-formed assertion records that were hit (not declarations)."""
    return (inner for inner in _asserts(records) if _is_hit(inner))


def _kind(inner: dict) -> tuple[str, str, bool]:
    """(display_type, assert_type, must_hit), trusting display_type when it is known."""
    display = inner.get("display_type")
    if isinstance(display, str) and display in ASSERTION_KINDS:
        return (display, *ASSERTION_KINDS[display])
    assert_type = inner.get("assert_type")
    if assert_type not in ("always", "sometimes", "reachability"):
        assert_type = "always"  # unknown: judge it strictly
    must_hit = bool(inner.get("must_hit", True))
    for name, kind in ASSERTION_KINDS.items():
        if kind == (assert_type, must_hit):
            return name, assert_type, must_hit
    return "Sometimes", assert_type, must_hit  # a sometimes declared optional: judged the same


def _is_hit(inner: dict) -> bool:
    return inner.get("hit", True) is not False


def is_unknown(inner: dict) -> bool:
    """Whether a record says its property could not be judged: a checker whose time ran
    out writes ``condition: null`` with ``details.outcome == "unknown"``. Neither a pass
    nor a failure: shown as unknown, never shrunk."""
    details = inner.get("details")
    return (inner.get("condition") is None and isinstance(details, dict)
            and details.get("outcome") == "unknown")


def _fails(inner: dict, assert_type: str, must_hit: bool) -> bool:
    """Whether this hit counts against the property (unreachable: any hit)."""
    if assert_type == "reachability":
        return not must_hit
    return not inner.get("condition")


def counts_against(inner: dict) -> bool:
    """Whether one assertion record is a hit that counts against its property (an
    ``always`` evaluated false, an ``unreachable`` reached, a ``sometimes`` false)."""
    return _is_hit(inner) and not is_unknown(inner) and _fails(inner, *_kind(inner)[1:])


def violations(records: Iterable[dict]) -> list[str]:
    """Ids of safety properties violated in these records (one timeline), first seen first.

    Only ``always``-type assertions with a false condition and hit ``unreachable``
    ones fail a single timeline; ``sometimes``/``reachable`` are judged over the
    whole exploration by ``PropertyTable``.
    """
    found: dict[str, None] = {}
    for inner in _asserts(records):
        if counts_against(inner) and _kind(inner)[1] != "sometimes":
            found.setdefault(_key(inner))
    return list(found)


def guidance(records: Iterable[dict]) -> dict[str, float]:
    """Per guidance id, how close the run came to flipping it: larger is closer.

    For the guided search (``composer.corpus``). Numeric records carry ``left``/``right``; the
    official SDKs set ``maximize`` when a larger ``left - right`` is closer to the
    flip, so the score is the gap, negated when minimising. Boolean records score
    the number of true propositions the same way. The best score per id wins;
    non-finite scores are dropped (``target`` refuses them).
    """
    best: dict[str, float] = {}
    for record in records:
        inner = record.get("antithesis_guidance") if isinstance(record, dict) else None
        if not isinstance(inner, dict) or inner.get("hit") is False:
            continue
        data = inner.get("guidance_data")
        key = inner.get("id") or inner.get("message")
        if not isinstance(data, dict) or not isinstance(key, str):
            continue
        try:
            if inner.get("guidance_type") == "boolean":
                value = float(sum(1 for v in data.values() if v is True))
            else:
                value = float(data["left"]) - float(data["right"])
        except (KeyError, TypeError, ValueError, OverflowError):
            continue
        score = value if inner.get("maximize") else -value
        if math.isfinite(score) and (key not in best or score > best[key]):
            best[key] = score
    return best


def setup_completed(records: Iterable[dict]) -> bool:
    """Whether any process declared ``setup_complete`` in these records."""
    return any(
        isinstance(r, dict) and isinstance(r.get("antithesis_setup"), dict)
        and r["antithesis_setup"].get("status") == "complete"
        for r in records
    )


@dataclass
class Property:
    """One assertion, aggregated over every timeline added to a ``PropertyTable``."""

    id: str
    message: str
    display_type: str
    assert_type: str
    must_hit: bool
    passes: int = 0
    failures: int = 0
    #: hits that could not be judged (a checker out of time)
    unknowns: int = 0
    timelines_hit: int = 0
    first_failure: dict | None = field(default=None)

    @property
    def status(self) -> str:
        """``pass``, ``fail``, ``unreached`` (a must-hit property never reached) or
        ``unknown`` (not failed, but not judged every time it was hit)."""
        hits = self.passes + self.failures
        if self.assert_type == "sometimes":
            return "pass" if self.passes else "fail" if self.failures else "unreached"
        if self.failures:
            return "fail"
        if self.unknowns:
            return "unknown"
        if not hits and self.must_hit:
            return "unreached"
        return "pass"

    @property
    def ok(self) -> bool:
        """Whether the property holds; an unreached must-hit property does not."""
        return self.status == "pass"


class PropertyTable:
    """Aggregates properties across many timelines of one exploration.

    Catalog entries and ``hit: false`` declarations register properties, so a
    ``sometimes``/``reachable``/``always`` that is never hit is still reported.
    """

    def __init__(self, catalog: Iterable[dict] = ()) -> None:
        self._props: dict[str, Property] = {}
        for entry in catalog:
            inner = entry.get("antithesis_assert", entry) if isinstance(entry, dict) else None
            if isinstance(inner, dict):
                for declared in _asserts([{"antithesis_assert": inner}]):
                    self._register(declared)

    def _register(self, inner: dict) -> Property:
        key = _key(inner)
        prop = self._props.get(key)
        if prop is None:
            display, assert_type, must_hit = _kind(inner)
            message = inner.get("message")
            prop = self._props[key] = Property(
                key, message if isinstance(message, str) else key, display, assert_type, must_hit
            )
        return prop

    def add_timeline(self, records: Iterable[dict]) -> None:
        """Add the records of one timeline (SDK output plus built-in properties)."""
        hit_here: set[str] = set()
        for inner in _asserts(records):
            prop = self._register(inner)
            if not _is_hit(inner):
                continue
            hit_here.add(prop.id)
            if is_unknown(inner):
                prop.unknowns += 1
            elif _fails(inner, prop.assert_type, prop.must_hit):
                prop.failures += 1
                if prop.first_failure is None:
                    prop.first_failure = {
                        "details": inner.get("details"),
                        "location": inner.get("location"),
                    }
            else:
                prop.passes += 1
        for key in hit_here:
            self._props[key].timelines_hit += 1

    def properties(self) -> list[Property]:
        """Every property: failing first, then by display_type and message."""
        return sorted(self._props.values(), key=lambda p: (p.ok, p.display_type, p.message, p.id))

    def failing(self) -> list[Property]:
        """Properties that fail, including must-hit ones never reached (not the unknown:
        nothing showed them false)."""
        return [p for p in self.properties() if p.status in ("fail", "unreached")]

    def to_json(self) -> list[dict]:
        """The table as plain data, for ``summary.json``."""
        return [
            {
                "id": p.id,
                "message": p.message,
                "display_type": p.display_type,
                "assert_type": p.assert_type,
                "must_hit": p.must_hit,
                "status": p.status,
                "ok": p.ok,
                "passes": p.passes,
                "failures": p.failures,
                "unknowns": p.unknowns,
                "timelines_hit": p.timelines_hit,
                "first_failure": p.first_failure,
            }
            for p in self.properties()
        ]
