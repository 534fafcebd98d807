"""Mutations of a kept timeline, guided by what that timeline did when it ran.

Each operator returns a new timeline inside the same space as fresh draws
(``schedule.fits``), so shrinking, replay files and ``--seed`` work unchanged, or None
when it does not apply. Operators keep the parent's seeds, so the part of the timeline
a mutation leaves alone tends to behave as it did: a fault inserted just after the
moment an assertion first fired lands near that moment again. Imports schedule,
behaviour, faults, templates and timeline; never the runner.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Callable, Mapping

from composer import schedule
from composer.behaviour import Behaviour, Moment
from composer.faults import AMOUNTS, Capabilities
from composer.templates import Template
from composer.timeline import Event, Fault, Start, Timeline, Trigger

__all__ = ["Space", "Known", "OPERATORS", "mutate", "insert_fault"]

#: Seconds after a moment (an assertion's first hit) or a command start to place a fault.
_SOON = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)
#: Shortest lasting fault, seconds.
LASTING = 1.0
#: Seconds a lasting fault's phase goes on after the fault heals (in the parent's time;
#: the state it waits for may come a little later in the new run).
AFTER_HEAL = 1.0
#: Seconds before a fault that a driver started with it starts (a process takes a moment
#: to start).
WORKLOAD_LEAD = 0.2


@dataclasses.dataclass(frozen=True)
class Space:
    """What a mutated timeline must fit: the templates, capabilities and longest phase."""

    templates: Mapping[str, Template]
    caps: Capabilities
    max_length: float

    def fits(self, timeline: Timeline) -> bool:
        return schedule.fits(timeline, self.templates, self.caps, self.max_length)


@dataclasses.dataclass(frozen=True)
class Known:
    """What a mutation may use besides the timeline: how the parent behaved when it ran,
    another kept timeline (for splicing), and how often each moment's outcome was seen."""

    seen: Behaviour
    other: Timeline | None = None
    #: how many timelines showed this moment's assertion outcome (1 if unknown)
    seen_in: Callable[[Moment], int] = lambda moment: 1


Operator = Callable[[random.Random, Space, Timeline, Known], "Timeline | None"]


def _with(t: Timeline, events: list[Event], length: float | None = None) -> Timeline:
    return dataclasses.replace(t, events=tuple(sorted(events, key=lambda e: e.at)),
                               length=t.length if length is None else length)


def insert_fault(rng: random.Random, space: Space, t: Timeline, at: float,
                 node: str | None, kind: str | None = None,
                 calm_after: float | None = None,
                 after: Moment | None = None, lasting: bool = False,
                 workload: bool = False) -> Timeline | None:
    """Return ``t`` with a fault (of ``kind``, else a drawn one) at ``at``, aimed at
    ``node`` (isolated, for a partition) most of the time when it is a fault target.

    With ``calm_after``, the faults ``t`` had from that time on are left out: what came
    before (and led to the moment the fault aims at) stays, and the new fault acts alone
    on the state it finds, as Mallory injects one fault into an observed state. With
    ``after``, the fault waits for that moment's state and comes ``at - after.at`` s
    after it, wherever the state falls in the run. A ``lasting`` fault lasts at least
    LASTING seconds and the phase holds it: a partition or pause of a tenth of a second
    after a state tells little (a new leader elected on the other side, a lease run out
    both take longer); a calm one's phase ends AFTER_HEAL s after it heals (what the
    parent did later would spend time on another state; the checks come after the
    phase). With ``workload``, a parallel driver starts just before the fault
    (when the template has one): a fault tells little while nothing asks the system to
    work through it, which is why Jepsen's clients run through every nemesis.
    """
    kinds = schedule.fault_kinds(space.caps)
    if not kinds or (kind is not None and kind not in kinds):
        return None
    at = round(max(0.0, at), 2)
    fault = schedule.draw_fault(rng, at, kind or rng.choice(kinds), space.caps)
    if node in space.caps.fault_targets and (kind is not None or rng.random() < 0.75):
        shape = "isolate" if fault.kind == "partition" else None
        fault = dataclasses.replace(fault, targets=(node,), shape=shape)
    if lasting:
        fault = dataclasses.replace(fault, duration=round(rng.uniform(
            LASTING, schedule.MAX_FAULT_SECONDS), 1))
    if after is not None:
        fault = dataclasses.replace(fault, at=round(max(0.0, at - after.at), 2),
                                    after=Trigger(after.id, after.passed, after.node))
    events = [e for e in t.events if calm_after is None or not isinstance(e, Fault)
              or e.at < calm_after]
    length = t.length
    if at >= length:  # the moment came late: lengthen the phase to hold the fault
        length = round(min(space.max_length, at + rng.uniform(0.3, 1.5)), 1)
        if at >= length:
            return None
    if lasting:
        held = round(min(space.max_length, at + fault.duration + AFTER_HEAL), 1)
        if calm_after is None:
            length = max(length, held)
        else:  # nothing the parent did later is left: end soon after the fault heals
            length = held
            events = [e for e in events if e.at < length]
    added: list[Event] = [fault]
    drivers = [c for c in schedule.startable(space.templates[t.template], t)
               if c.kind == "parallel_driver"] if workload else []
    if drivers:
        start = round(min(max(0.0, at - WORKLOAD_LEAD), length - 0.01), 2)
        added.append(schedule.draw_start(rng, start, rng.choice(drivers), space.caps))
    return _trim(rng, space, _with(t, [*events, *added], length), t)


def _trim(rng: random.Random, space: Space, timeline: Timeline, parent: Timeline) -> Timeline:
    """Drop events ``parent`` already had until ``timeline`` holds no more than the space
    allows (what a mutation added stays)."""
    cap = schedule.max_events(space.max_length)
    while len(timeline.events) > cap:
        old = [e for e in timeline.events if e in parent.events] or list(timeline.events)
        events = list(timeline.events)
        events.remove(rng.choice(old))
        timeline = _with(timeline, events)
    return timeline


def fault_after_moment(rng, space, t, known):
    """Insert a fault just after an assertion first fired, on the node that fired it,
    half the time with the parent's later faults left out, and mostly waiting for that
    state (a trigger) rather than at the time it came in the parent's run.

    Moments reported by a service (the system's own state), conditions that held (a
    state reached, not one merely checked) and rarely seen outcomes are chosen more often:
    a state few timelines reach is where a fault is most telling.
    """
    if not known.seen.moments:
        return None
    moments = known.seen.moments
    moment = rng.choices(moments, [(3.0 if m.node else 1.0) * (1.0 if m.passed else 0.3)
                                   / max(1, known.seen_in(m)) for m in moments])[0]
    return insert_fault(rng, space, t, moment.at + rng.choice(_SOON), moment.node,
                        calm_after=moment.at if rng.random() < 0.5 else None,
                        after=moment if rng.random() < 0.75 else None)


def fault_near_start(rng, space, t, known):
    """Insert a fault just before or after a command started."""
    starts = list(known.seen.starts) or [e.at for e in t.events if isinstance(e, Start)]
    if not starts:
        return None
    at = rng.choice(starts) + rng.choice((-0.2, -0.1) + _SOON)
    return insert_fault(rng, space, t, at, None)


def move(rng, space, t, known):
    """Move one event earlier or later."""
    if not t.events:
        return None
    events = list(t.events)
    i = rng.randrange(len(events))
    at = min(t.length - 0.01, max(0.0, events[i].at + rng.gauss(0, 0.5)))
    events[i] = dataclasses.replace(events[i], at=round(at, 2))
    return _with(t, events)


def _change_a_fault(rng: random.Random, t: Timeline,
                    change: Callable[[Fault], Fault]) -> Timeline | None:
    """Replace one fault of ``t``, chosen at random, by ``change(fault)``."""
    faults = [i for i, e in enumerate(t.events) if isinstance(e, Fault)]
    if not faults:
        return None
    i = rng.choice(faults)
    events = list(t.events)
    events[i] = change(events[i])
    return _with(t, events)


def retarget(rng, space, t, known):
    """Aim one fault at other nodes (and, for a partition, another shape)."""
    def change(old: Fault) -> Fault:
        drawn = schedule.draw_fault(rng, old.at, old.kind, space.caps)
        return dataclasses.replace(old, targets=drawn.targets, shape=drawn.shape)
    return _change_a_fault(rng, t, change)


def change_kind(rng, space, t, known):
    """Turn one fault into another kind, keeping its time, duration and targets."""
    kinds = schedule.fault_kinds(space.caps)
    if len(kinds) < 2:
        return None

    def change(old: Fault) -> Fault:
        kind = rng.choice([k for k in kinds if k != old.kind])
        new = schedule.draw_fault(rng, old.at, kind, space.caps)
        if kind != "partition":
            new = dataclasses.replace(new, targets=old.targets)
        return dataclasses.replace(new, duration=old.duration)
    return _change_a_fault(rng, t, change)


def change_amount(rng, space, t, known):
    """Halve or double one fault's duration, or draw its amount anew."""
    def change(old: Fault) -> Fault:
        if old.kind in AMOUNTS and rng.random() < 0.5:
            return dataclasses.replace(old, amount=rng.choice(AMOUNTS[old.kind]))
        duration = old.duration * rng.choice((0.5, 2.0))
        return dataclasses.replace(old, duration=round(
            min(schedule.MAX_FAULT_SECONDS, max(0.1, duration)), 1))
    return _change_a_fault(rng, t, change)


def delete(rng, space, t, known):
    """Remove one event."""
    if len(t.events) < 2:
        return None
    events = list(t.events)
    del events[rng.randrange(len(events))]
    return _with(t, events)


def add_command(rng, space, t, known):
    """Start one more command at a random time."""
    commands = schedule.startable(space.templates[t.template], t)
    if not commands:
        return None
    at = round(rng.uniform(0, t.length - 0.01), 2)
    return _with(t, [*t.events, schedule.draw_start(rng, at, rng.choice(commands), space.caps)])


def lengthen(rng, space, t, known):
    """Make the driver phase longer and start a command or two in the added time."""
    length = round(min(space.max_length, t.length * rng.uniform(1.2, 2.0)), 1)
    commands = schedule.startable(space.templates[t.template], t)
    if length <= t.length:
        return None
    events = list(t.events)
    for _ in range(rng.randint(0, 2) if commands else 0):
        at = round(rng.uniform(t.length, length - 0.01), 2)
        events.append(schedule.draw_start(rng, at, rng.choice(commands), space.caps))
    return _with(t, events, length)


def splice(rng, space, t, known):
    """Keep this timeline's events before a cut and another kept timeline's after it."""
    other = known.other
    if other is None or other.template != t.template or other == t:
        return None
    cut = rng.uniform(0, t.length)
    events = [e for e in t.events if e.at < cut]
    events += [e for e in other.events if cut <= e.at < t.length]
    return _with(t, events)


#: name -> operator; the names appear in progress, summary.json and the report.
OPERATORS: dict[str, Operator] = {
    "fault after hit": fault_after_moment,
    "fault near start": fault_near_start,
    "move": move,
    "retarget": retarget,
    "change kind": change_kind,
    "change amount": change_amount,
    "delete": delete,
    "add command": add_command,
    "lengthen": lengthen,
    "splice": splice,
}


def mutate(rng: random.Random, space: Space, first: str, parent: Timeline,
           known: Known) -> tuple[Timeline, str] | None:
    """Apply operator ``first`` and up to two random others to ``parent``.

    Return the mutant and the operators applied ("fault after hit+move"), or None if
    ``first`` did not apply or the result left the space.
    """
    names = [first] + rng.choices(list(OPERATORS), k=rng.choice((0, 0, 0, 1, 1, 2)))
    timeline, applied = parent, []
    for name in names:
        mutant = OPERATORS[name](rng, space, timeline, known)
        if mutant is None:
            if name == first:
                return None
            continue
        timeline = mutant
        applied.append(name)
    timeline = _trim(rng, space, timeline, parent)
    if timeline == parent or not space.fits(timeline):
        return None
    return timeline, "+".join(applied)
