"""Shrinking a failing timeline: fewer events, narrower faults, a shorter driver phase.

Imports only ``composer.timeline``. Each test costs seconds and fails only some of the
time, so this shrinker works on the timeline itself (as Hypothesis's shrink passes do on
choice sequences) and keeps a candidate only when ``fails`` says so (the explorer asks
for two failures in a row): a candidate that does not reproduce is simply passed over. Passes, cheapest and most effective first:
delete chunks of events (halves, quarters, ... single events), drop the first /
eventually / finally commands, narrow each fault to one target (or one node fewer),
halve fault durations,
cut the driver phase short after its last event.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator

from composer.timeline import Fault, Timeline

__all__ = ["shrink"]


def shrink(timeline: Timeline, fails: Callable[[Timeline], bool], deadline: float,
           on_step: Callable[[Timeline], None] | None = None) -> Timeline:
    """Return the smallest timeline found before ``deadline`` for which ``fails`` held."""
    current = timeline
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        for candidate in _candidates(current):
            if time.monotonic() >= deadline:
                break
            if candidate.size() >= current.size():
                continue
            if fails(candidate):
                current = candidate
                improved = True
                if on_step:
                    on_step(current)
                break
    return current


def _candidates(t: Timeline) -> Iterator[Timeline]:
    events = list(t.events)
    chunk = max(1, len(events) // 2)  # down to single events, so one event can go too
    while chunk >= 1:
        for start in range(0, len(events), chunk):
            yield dataclasses.replace(t, events=tuple(events[:start] + events[start + chunk:]))
        chunk //= 2
    for field in ("first", "finally_", "eventually"):
        if getattr(t, field):
            yield dataclasses.replace(t, **{field: None})
    for i, event in enumerate(events):
        if not isinstance(event, Fault):
            continue
        narrower = [(target,) for target in event.targets] if len(event.targets) > 1 else []
        if len(event.targets) > 2:  # one node fewer, when no single node is enough
            narrower += [tuple(t for t in event.targets if t != target) for target in event.targets]
        variants = [dataclasses.replace(event, targets=targets) for targets in narrower]
        if event.duration > 0.1:
            variants.append(dataclasses.replace(event, duration=max(0.1, round(event.duration / 2, 1))))
        for variant in variants:
            yield dataclasses.replace(t, events=tuple(events[:i] + [variant] + events[i + 1:]))
    last = max((e.at for e in events), default=0.0)
    for length in (round(last + 0.1, 1), round((last + t.length) / 2, 1)):
        if 1.0 <= length < t.length and length > last:  # every event stays in the phase
            yield dataclasses.replace(t, length=length)
