"""The schedule draws only what the template and the capability set allow, and the
Hypothesis strategy and the random generator draw from the same space."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer import schedule
from composer.faults import ALL_FAULTS, AMOUNTS, PARTITION_SHAPES, Capabilities, network_of
from composer.templates import KINDS, Command, Template
from composer.timeline import Fault, Start, Timeline

DRIVERS = ("parallel_driver", "serial_driver", "singleton_driver", "anytime")


def template(name: str, *commands: str) -> Template:
    root = Path("/project/drivers") / name
    return Template(name=name, path=root, commands=tuple(
        Command(name=c, kind=next(k for k in KINDS if c.startswith(k + "_")), path=root / c)
        for c in sorted(commands)))


FULL = template("full", "first_a", "first_b", "parallel_driver_write", "parallel_driver_cas",
                "serial_driver_read", "anytime_poke", "eventually_check", "eventually_wait",
                "finally_verify")
SINGLE = template("single", "singleton_driver_migrate", "singleton_driver_resize",
                  "parallel_driver_write", "serial_driver_read", "anytime_poke", "first_a")
ONLY_SINGLE = template("only_single", "singleton_driver_migrate")
ONLY_ANYTIME = template("only_anytime", "anytime_poke", "eventually_check")
FINALLY_ONLY = template("finally_only", "serial_driver_read", "finally_verify")

CAPS = Capabilities(
    faults=frozenset({"partition", "kill", "pause"}),
    fault_targets=("kv-1", "kv-2", "kv-3"),
    driver_nodes=("client-1", "client-2"),
    max_parallel=4,
)
ALL_CAPS = Capabilities(faults=ALL_FAULTS, fault_targets=("kv-1", "kv-2", "kv-3", "db-1"),
                        driver_nodes=("client-1",), max_parallel=2)
NO_FAULTS = Capabilities(faults=frozenset(), fault_targets=("kv-1",),
                         driver_nodes=("client-1",), max_parallel=1)
NO_TARGETS = Capabilities(faults=frozenset({"kill", "partition"}), fault_targets=(),
                          driver_nodes=("client-1", "client-2"), max_parallel=4)

TEMPLATE_SETS = [
    {"full": FULL},
    {"single": SINGLE},
    {"only_single": ONLY_SINGLE},
    {"only_anytime": ONLY_ANYTIME},
    {"finally_only": FINALLY_ONLY},
    {t.name: t for t in (FULL, SINGLE, ONLY_SINGLE, ONLY_ANYTIME, FINALLY_ONLY)},
]
CAPS_SETS = [CAPS, ALL_CAPS, NO_FAULTS, NO_TARGETS]
LENGTHS = [0.1, 0.5, 0.95, 1.0, 2.5, 10.0, 20.0, 120.0]


def check(t: Timeline, templates: dict[str, Template], caps: Capabilities,
          max_length: float) -> None:
    """Assert every invariant of a drawn timeline."""
    assert t.template in templates
    tpl = templates[t.template]
    names = {kind: {c.name for c in tpl.of_kind(kind)} for kind in KINDS}
    kind_of = {c.name: c.kind for c in tpl.commands}
    # the driver phase
    assert 0 < t.length <= max_length + 1e-9
    assert 0 <= t.seed < 2**31
    assert list(t.events) == sorted(t.events, key=lambda e: e.at)
    assert len(t.events) <= schedule.max_events(max_length) + 1
    for event in t.events:
        assert 0 <= event.at < t.length
        if isinstance(event, Start):
            assert kind_of.get(event.command) in DRIVERS, event
            assert event.node in caps.driver_nodes
            assert 0 <= event.seed < 2**31
        else:
            assert isinstance(event, Fault)
            assert event.kind in caps.faults
            assert event.targets, "a fault hits at least one node"
            assert set(event.targets) <= set(caps.fault_targets)
            assert len(set(event.targets)) == len(event.targets)
            assert 0 < event.duration <= schedule.MAX_FAULT_SECONDS
            if event.kind == "partition":
                assert event.shape in PARTITION_SHAPES and event.amount is None
                assert len(caps.fault_targets) >= 2, "a partition needs two nodes"
                # every drawn partition cuts something
                assert network_of([event], caps.fault_targets).blocked, event
            else:
                assert event.shape is None
                assert event.amount == (None if event.kind not in AMOUNTS else event.amount)
                if event.kind in AMOUNTS:
                    assert event.amount in AMOUNTS[event.kind]
    # singletons: at most one, and then the timeline's only driver
    started = [kind_of[e.command] for e in t.events if isinstance(e, Start)]
    if "singleton_driver" in started:
        assert started.count("singleton_driver") == 1
        assert not {"parallel_driver", "serial_driver"} & set(started)
    if names["singleton_driver"] and not (names["parallel_driver"] | names["serial_driver"]):
        assert started.count("singleton_driver") == 1
    # before and after the driver phase
    assert t.first in names["first"] if names["first"] else t.first is None
    assert t.finally_ in names["finally"] if names["finally"] else t.finally_ is None
    if names["eventually"]:
        assert t.eventually in names["eventually"] or (t.eventually is None and names["finally"])
    else:
        assert t.eventually is None
    if not caps.faults or not caps.fault_targets:
        assert not any(isinstance(e, Fault) for e in t.events)


scenario = st.tuples(st.sampled_from(TEMPLATE_SETS), st.sampled_from(CAPS_SETS),
                     st.sampled_from(LENGTHS) | st.floats(0.1, 60.0))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(st.data(), scenario)
def test_hypothesis_timelines_stay_in_the_space(data, case):
    templates, caps, max_length = case
    timeline = data.draw(schedule.timelines(templates, caps, max_length))
    check(timeline, templates, caps, max_length)


@settings(max_examples=200)
@given(schedule.timelines({"full": FULL}, CAPS, 20.0))
def test_only_allowed_faults_on_fault_targets(timeline):
    for event in timeline.events:
        if isinstance(event, Fault):
            assert event.kind in {"partition", "kill", "pause"}
            assert set(event.targets) <= {"kv-1", "kv-2", "kv-3"}
        else:
            assert event.node in {"client-1", "client-2"}
            assert event.command in {"parallel_driver_write", "parallel_driver_cas",
                                     "serial_driver_read", "anytime_poke"}


@settings(max_examples=100)
@given(schedule.timelines({"full": FULL}, NO_FAULTS, 20.0))
def test_no_faults_without_capabilities(timeline):
    assert all(isinstance(e, Start) for e in timeline.events)


@settings(max_examples=100)
@given(schedule.timelines({"full": FULL}, CAPS.restricted(("clock", "kill")), 20.0))
def test_restricted_capabilities_draw_only_the_intersection(timeline):
    assert {e.kind for e in timeline.events if isinstance(e, Fault)} <= {"kill"}


def test_restricted():
    assert CAPS.restricted(None) is CAPS
    assert CAPS.restricted(("kill", "clock")).faults == frozenset({"kill"})
    assert CAPS.restricted(()).faults == frozenset()
    assert CAPS.restricted(("kill",)).fault_targets == CAPS.fault_targets


@settings(max_examples=200)
@given(schedule.timelines({"single": SINGLE}, CAPS, 10.0))
def test_singleton_is_the_only_driver(timeline):
    kinds = [SINGLE.command(e.command).kind for e in timeline.events if isinstance(e, Start)]
    if "singleton_driver" in kinds:
        assert kinds.count("singleton_driver") == 1
        assert set(kinds) <= {"singleton_driver", "anytime"}


@pytest.mark.parametrize("max_length", [0.1, 0.5, 1.0, 3.3, 20.0])
def test_length_never_exceeds_max_length(max_length):
    for seed in range(200):
        t = schedule.random_timeline(random.Random(seed), {"full": FULL}, CAPS, max_length)
        assert t.length <= max_length
        assert all(0 <= e.at < t.length for e in t.events)


# --- random_timeline --------------------------------------------------------------


@pytest.mark.parametrize("templates", TEMPLATE_SETS, ids=lambda t: "+".join(t))
@pytest.mark.parametrize("caps", CAPS_SETS, ids=["caps", "all", "nofaults", "notargets"])
def test_random_timelines_stay_in_the_space(templates, caps):
    for seed in range(150):
        max_length = LENGTHS[seed % len(LENGTHS)]
        check(schedule.random_timeline(random.Random(seed), templates, caps, max_length),
              templates, caps, max_length)


def test_random_timeline_is_deterministic():
    templates = {t.name: t for t in (FULL, SINGLE, ONLY_ANYTIME)}
    for seed in range(100):
        a = schedule.random_timeline(random.Random(seed), templates, ALL_CAPS, 20.0)
        b = schedule.random_timeline(random.Random(seed), templates, ALL_CAPS, 20.0)
        assert a == b
    distinct = {schedule.random_timeline(random.Random(s), templates, ALL_CAPS, 20.0)
                for s in range(50)}
    assert len(distinct) == 50


def test_random_timelines_cover_the_space():
    templates = {"full": FULL, "single": SINGLE}
    seen: dict[str, set] = {k: set() for k in ("template", "command", "node", "fault", "target",
                                                "first", "eventually", "finally", "singleton")}
    for seed in range(400):
        t = schedule.random_timeline(random.Random(seed), templates, ALL_CAPS, 10.0)
        seen["template"].add(t.template)
        seen["first"].add(t.first)
        seen["eventually"].add((t.template, t.eventually))
        seen["finally"].add(t.finally_)
        for e in t.events:
            if isinstance(e, Start):
                seen["command"].add(e.command)
                seen["node"].add(e.node)
            else:
                seen["fault"].add(e.kind)
                seen["target"].update(e.targets)
        if t.template == "single":
            seen["singleton"].add(any(e.command.startswith("singleton_") for e in t.events
                                      if isinstance(e, Start)))
    assert seen["template"] == {"full", "single"}
    assert seen["command"] == {c.name for c in FULL.commands + SINGLE.commands
                               if c.kind in DRIVERS}
    assert seen["node"] == set(ALL_CAPS.driver_nodes)
    assert seen["fault"] == ALL_FAULTS
    assert seen["target"] == set(ALL_CAPS.fault_targets)
    assert seen["first"] == {"first_a", "first_b"}
    # a template's eventually command always runs (then finally, if everything completed)
    assert seen["eventually"] == {("full", "eventually_check"), ("full", "eventually_wait"),
                                  ("single", None)}
    assert seen["finally"] == {"finally_verify", None}
    assert seen["singleton"] == {True, False}  # with and without the singleton


def test_hypothesis_and_random_agree_on_the_space():
    """Whatever Hypothesis can draw, random draws too, over the same invariants."""
    templates = {"single": SINGLE}
    hyp: set = set()

    @settings(max_examples=150, database=None)
    @given(schedule.timelines(templates, CAPS, 5.0))
    def collect(t):
        check(t, templates, CAPS, 5.0)
        hyp.add(_shape(t))

    collect()
    rnd = {_shape(schedule.random_timeline(random.Random(s), templates, CAPS, 5.0))
           for s in range(400)}
    # the coarse shapes (which command kinds and fault kinds occur) match
    assert {s for s in hyp if s[0]} and {s for s in hyp if not s[0]}
    assert {s[0] for s in hyp} == {s[0] for s in rnd}
    assert set().union(*(s[1] for s in hyp)) == set().union(*(s[1] for s in rnd))


def _shape(t: Timeline) -> tuple[bool, frozenset]:
    singleton = any(isinstance(e, Start) and e.command.startswith("singleton_")
                    for e in t.events)
    return singleton, frozenset(e.kind for e in t.events if isinstance(e, Fault))


ONE_TARGET = Capabilities(faults=frozenset({"partition", "kill"}), fault_targets=("kv-1",),
                          driver_nodes=("client-1",), max_parallel=2)


@settings(max_examples=100)
@given(schedule.timelines({"full": FULL}, ONE_TARGET, 20.0))
def test_no_partition_with_a_single_fault_target(timeline):
    assert {e.kind for e in timeline.events if isinstance(e, Fault)} <= {"kill"}


def test_random_timelines_draw_every_partition_shape_and_amount():
    rng = random.Random(5)
    faults = [e for _ in range(300)
              for e in schedule.random_timeline(rng, {"full": FULL}, ALL_CAPS, 20.0).events
              if isinstance(e, Fault)]
    assert {f.shape for f in faults if f.kind == "partition"} == set(PARTITION_SHAPES)
    for kind, amounts in AMOUNTS.items():
        assert {f.amount for f in faults if f.kind == kind} == set(amounts), kind
