"""The space of timelines: what may be drawn, and the draws over it.

The only module that imports ``hypothesis.strategies``. It sees templates and a frozen
``Capabilities``, never a cluster. Every generator shares one description of a timeline
(``_timeline``), so all draw from the same space: ``random_timeline`` uniformly (the
baseline), ``swarm_timeline`` with a drawn subset of the template's commands and of the
fault kinds (swarm testing: timelines then differ in kind, not only in order), and the
Hypothesis strategy ``timelines`` (property tests over the space). ``fits`` says whether
a timeline is inside the space, so mutations (``composer.mutate``) can stay inside it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping, Sequence
from typing import Protocol, TypeVar

from hypothesis import strategies as st

from composer.faults import AMOUNTS, PARTITION_SHAPES, Capabilities
from composer.templates import Command, Template
from composer.timeline import Event, Fault, Start, Timeline

__all__ = ["timelines", "random_timeline", "swarm_timeline", "draw_fault", "draw_start",
           "fault_kinds", "startable", "fits", "max_events", "MAX_FAULT_SECONDS"]

T = TypeVar("T")
#: Longest fault Hypothesis draws, seconds.
MAX_FAULT_SECONDS = 5.0
_SEED_MAX = 2**31 - 1


class _Draw(Protocol):
    """The few choices a timeline is made of; implemented by Hypothesis and by random."""

    def integer(self, low: int, high: int) -> int: ...
    def choice(self, options: Sequence[T]) -> T: ...
    def subset(self, options: Sequence[T]) -> list[T]: ...
    def items(self, element: Callable[[_Draw], T], max_size: int) -> list[T]: ...


class _HypothesisDraw:
    def __init__(self, draw: Callable) -> None:
        self.draw = draw

    def integer(self, low: int, high: int) -> int:
        return self.draw(st.integers(low, high))

    def choice(self, options: Sequence[T]) -> T:
        return self.draw(st.sampled_from(options))

    def subset(self, options: Sequence[T]) -> list[T]:
        # A coin per option: st.lists would mostly pick one, so faults would rarely span nodes.
        chosen = [option for option in options if self.draw(st.booleans())]
        return chosen or [self.draw(st.sampled_from(options))]

    def items(self, element: Callable[[_Draw], T], max_size: int) -> list[T]:
        # A drawn count, not st.lists: its average of about five items is too few for
        # timelines, and composer.shrink (not Hypothesis) deletes what is not needed.
        # Counted down from max_size: Hypothesis favours the low end of a range.
        count = max_size + 1 - self.integer(1, max_size)
        return [element(self) for _ in range(count)]


class _RandomDraw:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def integer(self, low: int, high: int) -> int:
        return self.rng.randint(low, high)

    def choice(self, options: Sequence[T]) -> T:
        return self.rng.choice(list(options))

    def subset(self, options: Sequence[T]) -> list[T]:
        chosen = self.rng.sample(list(options), self.rng.randint(1, len(options)))
        return sorted(chosen, key=list(options).index)

    def items(self, element: Callable[[_Draw], T], max_size: int) -> list[T]:
        return [element(self) for _ in range(self.rng.randint(1, max_size))]


def max_events(max_length: float) -> int:
    """Return the most events a timeline of ``max_length`` seconds may hold."""
    return max(4, min(60, int(4 * max_length)))


def fault_kinds(caps: Capabilities) -> list[str]:
    """Return the fault kinds a timeline may hold (a partition needs two targets)."""
    kinds = sorted(caps.faults) if caps.fault_targets else []
    if len(caps.fault_targets) < 2 and "partition" in kinds:
        kinds.remove("partition")
    return kinds


def startable(template: Template, timeline: Timeline | None = None) -> list[Command]:
    """Return the commands a driver phase may start more of: with a singleton driver in
    ``timeline``, anytime commands only."""
    anytime = template.of_kind("anytime")
    if timeline is not None and any(
            isinstance(e, Start) and template.command(e.command).kind == "singleton_driver"
            for e in timeline.events):
        return anytime
    return template.of_kind("parallel_driver", "serial_driver") + anytime


def _timeline(d: _Draw, templates: Mapping[str, Template], caps: Capabilities,
              max_length: float, swarm: bool = False) -> Timeline:
    template = templates[d.choice(sorted(templates))]
    # At least 1 s, unless max_length is shorter; never longer than max_length (0.1 s steps).
    top = max(1, int(max_length * 10))
    tenths = d.integer(min(10, top), top)
    first = template.of_kind("first")
    singletons = template.of_kind("singleton_driver")
    repeated = template.of_kind("parallel_driver", "serial_driver")
    anytime = template.of_kind("anytime")
    events: list[Event] = []
    commands = repeated + anytime
    if singletons and (not repeated or d.integer(0, 1)):
        commands = anytime
        singleton = d.choice(singletons)
        events.append(Start(d.integer(0, tenths - 1) / 10, singleton.name,
                            _node(d, singleton, caps), d.integer(0, _SEED_MAX)))
    faults = fault_kinds(caps)
    one_in = 3  # one event in three is a fault
    if swarm:  # a coin per command and per fault kind (one command stays), and a fault rate
        commands = ([c for c in commands if d.integer(0, 1)]
                    or [d.choice(commands)] * bool(commands))
        faults = [k for k in faults if d.integer(0, 1)]
        one_in = d.integer(2, 6)

    def event(d: _Draw) -> Event:
        at = d.integer(0, tenths - 1) / 10
        if faults and (not commands or d.integer(1, one_in) == one_in):
            return _fault(d, at, d.choice(faults), caps.fault_targets)
        command = d.choice(commands)
        return Start(at, command.name, _node(d, command, caps), d.integer(0, _SEED_MAX))

    if commands or faults:
        events += d.items(event, max_events(max_length))
    eventually = template.of_kind("eventually")
    finally_ = template.of_kind("finally")
    chosen = d.choice(eventually) if eventually else None
    return Timeline(
        template=template.name,
        length=tenths / 10,
        seed=d.integer(0, _SEED_MAX),
        first=d.choice(first).name if first else None,
        events=tuple(sorted(events, key=lambda e: e.at)),
        eventually=chosen.name if chosen else None,
        finally_=d.choice(finally_).name if finally_ else None,
    )


def _fault(d: _Draw, at: float, kind: str, nodes: Sequence[str]) -> Fault:
    shape = None
    if kind == "partition":  # drawn only with two nodes or more
        shape = d.choice([s for s in PARTITION_SHAPES if s != "bridge" or len(nodes) > 2])
    targets = [d.choice(nodes)] if shape == "bridge" else d.subset(nodes)
    if shape in ("halves", "one-way") and len(targets) == len(nodes):
        targets.pop()  # all on one side would cut nothing
    return Fault(at, kind, tuple(targets), d.integer(1, int(MAX_FAULT_SECONDS * 10)) / 10,
                 shape=shape, amount=d.choice(AMOUNTS[kind]) if kind in AMOUNTS else None)


def timelines(templates: Mapping[str, Template], caps: Capabilities,
              max_length: float) -> st.SearchStrategy[Timeline]:
    """Return a strategy of timelines over ``templates`` no longer than ``max_length`` s."""
    return st.composite(lambda draw: _timeline(_HypothesisDraw(draw), templates, caps,
                                               max_length))()


def random_timeline(rng: random.Random, templates: Mapping[str, Template],
                    caps: Capabilities, max_length: float) -> Timeline:
    """Return one timeline drawn uniformly at random from the same space."""
    return _timeline(_RandomDraw(rng), templates, caps, max_length)


def swarm_timeline(rng: random.Random, templates: Mapping[str, Template],
                   caps: Capabilities, max_length: float) -> Timeline:
    """Return one timeline that uses a random subset of the commands and fault kinds."""
    return _timeline(_RandomDraw(rng), templates, caps, max_length, swarm=True)


def draw_fault(rng: random.Random, at: float, kind: str, caps: Capabilities) -> Fault:
    """Return a fault of ``kind`` at ``at`` with drawn targets, duration, shape, amount."""
    return _fault(_RandomDraw(rng), at, kind, caps.fault_targets)


def draw_start(rng: random.Random, at: float, command: Command, caps: Capabilities) -> Start:
    """Return a start of ``command`` at ``at`` on a drawn driver node with a drawn seed."""
    d = _RandomDraw(rng)
    return Start(at, command.name, _node(d, command, caps), d.integer(0, _SEED_MAX))


def fits(timeline: Timeline, templates: Mapping[str, Template], caps: Capabilities,
         max_length: float) -> bool:
    """Whether ``timeline`` lies in the space the draws above cover."""
    template = templates.get(timeline.template)
    if template is None or not 0 < timeline.length <= max_length + 1e-9:
        return False
    if len(timeline.events) > max_events(max_length) + 1:
        return False
    if list(timeline.events) != sorted(timeline.events, key=lambda e: e.at):
        return False
    kinds = set(fault_kinds(caps))
    names = {c.name: c for c in template.commands}
    singletons = 0
    for event in timeline.events:
        if not 0 <= event.at < timeline.length:
            return False
        if isinstance(event, Fault):
            if (event.kind not in kinds or not event.targets
                    or len(set(event.targets)) != len(event.targets)
                    or not set(event.targets) <= set(caps.fault_targets)
                    or not 0 < event.duration <= MAX_FAULT_SECONDS
                    or (event.after is not None
                        and event.after.node not in (None, *caps.fault_targets))):
                return False
            continue
        command = names.get(event.command)
        if command is None or command.kind not in _STARTABLE:
            return False
        if event.node not in ((command.node,) if command.node else caps.driver_nodes):
            return False
        singletons += command.kind == "singleton_driver"
    allowed = {c.name for c in startable(template, timeline)} | (
        {c.name for c in template.of_kind("singleton_driver")} if singletons == 1 else set())
    return singletons <= 1 and all(e.command in allowed for e in timeline.events
                                   if isinstance(e, Start))


_STARTABLE = ("parallel_driver", "serial_driver", "singleton_driver", "anytime")


def _node(d: _Draw, command: Command, caps: Capabilities) -> str:
    """The node a command runs on: its own (compose), else a drawn driver node."""
    return command.node or d.choice(caps.driver_nodes)
