"""What one timeline did, as a set of features a search can compare across timelines.

A *behaviour signature*: which assertions were evaluated with which outcome (and by how
many processes, in AFL's power-of-two buckets), which faults were applied to which nodes
(and which of them came within a second after an assertion first fired: Mallory's
"state x fault"), each command's exit status, the guidance values the SDKs reported,
and (opt-in) the lines of code the services ran.
A timeline whose signature holds a feature no earlier timeline had showed something new.

Imports properties (record shapes) and hits; never the runner or a cluster.
"""

from __future__ import annotations

import collections
import dataclasses
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from composer import properties
from composer.hits import Hit

__all__ = ["Moment", "Behaviour", "observe", "bucket", "fault_after", "within"]

#: A fault this soon after an assertion first fired counts as hitting that state.
_AFTER = (0.25, 0.5, 1.0)


@dataclasses.dataclass(frozen=True)
class Moment:
    """An assertion outcome first seen inside the driver phase: when, what, on which node."""

    #: seconds into the driver phase
    at: float
    id: str
    #: the service node whose process reported it; None for commands
    node: str | None
    #: the outcome: the assertion's condition held
    passed: bool = True

    @property
    def feature(self) -> str:
        """The feature that says this outcome was seen at all."""
        return f"assert {'pass' if self.passed else 'fail'} {self.id}"

    @property
    def label(self) -> str:
        """The state it names: the assertion, marked when its condition did not hold."""
        return self.id if self.passed else f"{self.id} (false)"


def within(gap: float) -> float | None:
    """The smallest window (seconds after a moment) that a fault ``gap`` s later is in."""
    return next((limit for limit in _AFTER if 0 <= gap <= limit), None)


def fault_after(kind: str, on_node: bool, limit: float, moment: Moment) -> str:
    """The feature: a fault of ``kind`` came within ``limit`` s after ``moment`` (on the
    node that reported it, if ``on_node``)."""
    where = " on its node" if on_node else ""
    return f"fault {kind}{where} within {limit:g}s after {moment.label}"


@dataclasses.dataclass(frozen=True)
class Behaviour:
    """The signature of one timeline."""

    features: frozenset[str]
    #: guidance id -> best score in this timeline (larger is closer to flipping it)
    guidance: Mapping[str, float]
    #: first hits inside the driver phase, in time order
    moments: tuple[Moment, ...] = ()
    #: seconds into the driver phase at which commands actually started
    starts: tuple[float, ...] = ()


def bucket(count: int) -> str:
    """Return AFL's hit-count bucket of ``count``: 1, 2, 3, 4-7, 8-15, 16-31, 32-127, 128+."""
    for high, name in ((1, "1"), (2, "2"), (3, "3"), (7, "4-7"), (15, "8-15"), (31, "16-31"),
                       (127, "32-127")):
        if count <= high:
            return name
    return "128+"


def observe(records: Iterable[dict], log: Sequence[Mapping[str, Any]],
            hits: Sequence[Hit] = (), phase_start: float | None = None,
            lines: Iterable[str] = (), logged: Iterable[str] = ()) -> Behaviour:
    """Return the signature of a timeline from its records, run log, first hits, the
    lines its traced services ran and the templates of what its services logged."""
    records = list(records)
    features: set[str] = {f"line {line}" for line in lines} | {f"log {t}" for t in logged}
    outcomes = collections.Counter(
        (properties.assertion_id(inner), "pass" if inner.get("condition") else "fail")
        for inner in properties.hit_assertions(records))
    for (key, outcome), count in outcomes.items():
        features.add(f"assert {outcome} {key}")  # = Moment.feature
        features.add(f"assert {outcome} {key} x{bucket(count)}")
    moments = _moments(hits, phase_start)
    starts = []
    for entry in log:
        what = entry.get("what")
        at = _phase_time(entry.get("t"), phase_start)
        if what == "fault" and entry.get("targets"):
            features |= _fault_features(entry, at, moments)
        elif what == "exit":
            features.add(f"exit {entry.get('command')} {entry.get('status')} "
                         f"{entry.get('exit_code')}")
        elif what == "start" and at is not None:
            starts.append(at)
        elif what == "setup failed":
            features.add("setup failed")
    return Behaviour(frozenset(features), properties.guidance(records), moments,
                     tuple(starts))


def _phase_time(t: Any, phase_start: float | None) -> float | None:
    if phase_start is None or not isinstance(t, (int, float)):
        return None
    return round(t - phase_start, 3)


def _moments(hits: Sequence[Hit], phase_start: float | None) -> tuple[Moment, ...]:
    found: dict[tuple[str, bool, str | None], Moment] = {}
    for hit in sorted(hits, key=lambda h: h.at):
        at = _phase_time(hit.at, phase_start)
        if at is None or at <= 0:  # setup's and first_'s, polled just before the phase
            continue
        found.setdefault((hit.id, hit.passed, hit.node),
                         Moment(at, hit.id, hit.node, hit.passed))
    return tuple(found.values())


def _fault_features(entry: Mapping[str, Any], at: float | None,
                    moments: Sequence[Moment]) -> set[str]:
    kind = entry.get("kind")
    targets = entry.get("targets") or []
    features = {f"fault {kind} {target}" for target in targets}
    if entry.get("shape"):
        features.add(f"fault {kind} {entry['shape']}")
    if at is None:
        return features
    for moment in moments:
        limit = within(at - moment.at)
        if limit is not None:
            features.add(fault_after(kind, moment.node in targets, limit, moment))
    return features
