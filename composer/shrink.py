"""Shrinking a failing timeline: fewer events, narrower faults, a shorter driver phase.

Imports only ``composer.timeline``. Each test costs seconds and fails only some of the
time, so this shrinker works on the timeline itself (as Hypothesis's shrink passes do on
choice sequences) and keeps a candidate only when ``fails`` says so (the explorer asks
for two failures in a row): a candidate that does not reproduce is simply passed over. Passes, cheapest and most effective first:
delete chunks of events (halves, quarters, ... single events), drop the first /
eventually / finally commands, narrow each fault to one target (or one node fewer),
halve fault durations,
cut the driver phase short after its last event. With ``width`` above one, candidates are
tried that many at a time (``--jobs``): the first of a batch that fails, in the order a
one-at-a-time shrinker would have tried them, is kept, so the path does not depend on
which run ends first.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterator

from composer.timeline import Fault, Timeline

__all__ = ["shrink", "each"]


def shrink(timeline: Timeline, first_failing: Callable[[list[Timeline]], int | None],
           deadline: float, on_step: Callable[[Timeline], None] | None = None,
           width: int = 1) -> Timeline:
    """Return the smallest timeline found before ``deadline`` that failed.

    ``first_failing`` tries a batch of at most ``width`` candidates and returns the index
    of the first one that failed, or None."""
    current = timeline
    improved = True
    while improved and time.monotonic() < deadline:
        improved = False
        smaller = (c for c in _candidates(current) if c.size() < current.size())
        while time.monotonic() < deadline:
            batch = list(itertools.islice(smaller, width))
            if not batch:
                break
            failed = first_failing(batch)
            if failed is not None:
                current = batch[failed]
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


def each(fails: Callable[[Timeline], bool]) -> Callable[[list[Timeline]], int | None]:
    """A batch tester from a one-timeline test: the first in the batch for which
    ``fails`` holds, trying them in order and stopping there."""
    def first_failing(batch: list[Timeline]) -> int | None:
        return next((i for i, candidate in enumerate(batch) if fails(candidate)), None)
    return first_failing
