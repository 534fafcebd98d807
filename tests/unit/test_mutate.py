"""Mutations stay inside the timeline space, and each does what its name says."""

from __future__ import annotations

import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from composer import schedule
from composer.behaviour import Behaviour, Moment
from composer.mutate import OPERATORS, Known, Space, mutate
from composer.timeline import Fault, Start, Timeline, Trigger
from tests.unit.test_schedule import ALL_CAPS, CAPS, FULL, SINGLE, check

SPACES = [Space({"full": FULL}, CAPS, 5.0), Space({"single": SINGLE}, ALL_CAPS, 10.0),
          Space({"full": FULL, "single": SINGLE}, ALL_CAPS, 2.0)]
NOTHING = Known(Behaviour(frozenset(), {}))


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], database=None)
@given(st.data(), st.sampled_from(SPACES), st.sampled_from(sorted(OPERATORS)),
       st.integers(0, 2**32))
def test_every_mutation_stays_in_the_space(data, space, operator, seed):
    rng = random.Random(seed)
    parent = data.draw(schedule.timelines(space.templates, space.caps, space.max_length))
    other = schedule.random_timeline(rng, space.templates, space.caps, space.max_length)
    moments = tuple(Moment(round(rng.uniform(0, parent.length + 1), 2), "m",
                           rng.choice([None, *space.caps.fault_targets])) for _ in range(2))
    seen = Behaviour(frozenset(), {}, moments, (0.1, 0.7))
    made = mutate(rng, space, operator, parent, Known(seen, other))
    if made is None:
        return
    mutant, applied = made
    assert applied.split("+")[0] == operator
    assert mutant != parent
    assert space.fits(mutant)
    check(mutant, space.templates, space.caps, space.max_length)


def test_swarm_and_random_timelines_fit_and_foreign_ones_do_not():
    space = SPACES[2]
    for seed in range(200):
        for draw in (schedule.random_timeline, schedule.swarm_timeline):
            assert space.fits(draw(random.Random(seed), space.templates, space.caps, 2.0))
    good = Timeline("full", 2.0, 1, events=(Start(0.5, "parallel_driver_write", "client-1", 3),
                                           Fault(1.0, "kill", ("kv-1",), 1.0)))
    assert space.fits(good)
    import dataclasses
    bad = [
        dataclasses.replace(good, template="gone"),
        dataclasses.replace(good, length=2.5),
        dataclasses.replace(good, events=(Start(2.0, "parallel_driver_write", "client-1", 3),)),
        dataclasses.replace(good, events=(Start(0.1, "nope", "client-1", 3),)),
        dataclasses.replace(good, events=(Start(0.1, "parallel_driver_write", "kv-1", 3),)),
        dataclasses.replace(good, events=(Fault(0.1, "kill", ("db-9",), 1.0),)),
        dataclasses.replace(good, events=(Fault(0.1, "kill", (), 1.0),)),
        dataclasses.replace(good, events=(Fault(0.1, "kill", ("kv-1",), 60.0),)),
        dataclasses.replace(good, events=tuple(reversed(good.events))),
        Timeline("single", 2.0, 1, events=(
            Start(0.1, "singleton_driver_migrate", "client-1", 1),
            Start(0.2, "parallel_driver_write", "client-1", 1))),
        Timeline("single", 2.0, 1, events=(
            Start(0.1, "singleton_driver_migrate", "client-1", 1),
            Start(0.2, "singleton_driver_resize", "client-1", 1))),
        Timeline("full", 2.0, 1, events=(  # waits for a state of a node not in the cluster
            Fault(0.1, "kill", ("kv-1",), 1.0, after=Trigger("snapshot", True, "nope")),)),
    ]
    assert space.fits(Timeline("full", 2.0, 1, events=(
        Fault(0.1, "kill", ("kv-1",), 1.0, after=Trigger("snapshot", True, "kv-1")),)))
    for timeline in bad:
        assert not space.fits(timeline), timeline
    assert not Space({"full": FULL}, CAPS.restricted(("pause",)), 2.0).fits(good)


def test_a_fault_after_a_moment_lands_just_after_it_on_the_node_that_reported_it():
    space = Space({"full": FULL}, CAPS.restricted(("kill", "pause")), 5.0)
    parent = Timeline("full", 5.0, 1, events=(Start(0.0, "parallel_driver_write", "client-1", 7),))
    seen = Behaviour(frozenset(), {}, (Moment(2.0, "snapshot started", "kv-2"),))
    on_node = triggered = 0
    for seed in range(100):
        made = mutate(random.Random(seed), space, "fault after hit", parent, Known(seen))
        if made is None:  # a stacked mutation undid the first (deleted the fault)
            continue
        mutant, applied = made
        if not any(isinstance(e, Fault) for e in mutant.events):
            continue
        fault = next(e for e in mutant.events if isinstance(e, Fault))
        if applied == "fault after hit":
            if fault.after is None:  # at the moment's time in the parent's run
                assert 2.0 <= fault.at <= 2.8
            else:  # waiting for the state, wherever it comes in the run
                assert fault.after == Trigger("snapshot started", True, "kv-2")
                assert 0.0 <= fault.at <= 0.8
                triggered += 1
            assert fault.kind in ("kill", "pause")
            on_node += fault.targets == ("kv-2",)
        assert space.fits(mutant)
        assert mutant.events[0] == parent.events[0] or "move" in applied or "delete" in applied
    assert on_node > 40 and 30 < triggered < 90


def test_a_calm_fault_after_a_moment_keeps_the_past_and_drops_later_faults():
    """The faults before the moment led to it and stay; the ones after it would act on
    the state the new fault finds, so half the time they are left out."""
    space = Space({"full": FULL}, CAPS.restricted(("kill", "pause")), 5.0)
    before = Fault(0.5, "pause", ("kv-1",), 1.0)
    after = Fault(3.0, "kill", ("kv-3",), 1.0)
    write = Start(2.5, "parallel_driver_write", "client-1", 7)
    parent = Timeline("full", 5.0, 1, events=(before, write, after))
    seen = Behaviour(frozenset(), {}, (Moment(2.0, "snapshot started", "kv-2"),))
    kept_later = calm = 0
    for seed in range(200):
        made = mutate(random.Random(seed), space, "fault after hit", parent, Known(seen))
        if made is None or made[1] != "fault after hit":
            continue
        events = set(made[0].events)
        assert {before, write} <= events and len(events - set(parent.events)) == 1
        kept_later += after in events
        calm += after not in events
    assert calm > 40 and kept_later > 40, (calm, kept_later)


def test_service_moments_and_rarely_seen_outcomes_are_chosen_more():
    space = Space({"full": FULL}, CAPS.restricted(("kill",)), 5.0)
    parent = Timeline("full", 5.0, 1)
    common, rare, driver = (Moment(1.0, "common", "kv-1"), Moment(3.0, "rare", "kv-1"),
                            Moment(2.0, "from a driver", None))
    known = Known(Behaviour(frozenset(), {}, (common, rare, driver)), None,
                  lambda m: {"common": 50, "rare": 1, "from a driver": 1}[m.id])
    placed = [next(e.at for e in t.events)
              for t, ops in filter(None, (mutate(random.Random(s), space, "fault after hit",
                                                 parent, known) for s in range(300)))
              if ops == "fault after hit"]
    near = {label: sum(1 for at in placed if m.at <= at <= m.at + 0.8)
            for label, m in (("common", common), ("rare", rare), ("driver", driver))}
    assert near["rare"] > 2 * near["driver"] > 0 and near["driver"] > near["common"], near


def test_a_moment_after_the_phase_lengthens_it_to_hold_the_fault():
    space = Space({"full": FULL}, CAPS.restricted(("kill",)), 8.0)
    parent = Timeline("full", 3.0, 1, events=(Start(0.0, "parallel_driver_write", "client-1", 7),))
    seen = Behaviour(frozenset(), {}, (Moment(4.0, "late", "kv-1"),))
    rng = random.Random(1)
    results = [mutate(rng, space, "fault after hit", parent, Known(seen)) for _ in range(30)]
    lengthened = [m for m, ops in filter(None, results) if ops == "fault after hit"]
    assert lengthened and all(m.length > 4.0 for m in lengthened)


def test_a_lasting_fault_holds_and_a_calm_one_ends_the_phase_soon_after_it_heals():
    """A focused fault (lasting) comes with a writer started just before it; without the
    parent's later faults (calm) the phase ends AFTER_HEAL s after the fault heals and the
    parent's later starts go with it, with them it keeps the parent's whole phase."""
    from composer.mutate import AFTER_HEAL, LASTING, WORKLOAD_LEAD, insert_fault

    space = Space({"full": FULL}, CAPS.restricted(("kill",)), 10.0)
    late = Start(9.0, "serial_driver_read", "client-1", 3)
    parent = Timeline("full", 10.0, 1, events=(Start(0.0, "parallel_driver_write", "client-1", 7),
                                               Fault(8.0, "kill", ("kv-3",), 1.0), late))
    moment = Moment(2.0, "snapshot started", "kv-2")
    for seed in range(20):
        for calm in (moment.at, None):
            made = insert_fault(random.Random(seed), space, parent, 2.1, "kv-2", "kill", calm,
                                moment, lasting=True, workload=True)
            assert made is not None and space.fits(made)
            (fault,) = [e for e in made.events if isinstance(e, Fault) and e.after]
            assert LASTING <= fault.duration and fault.targets == ("kv-2",)
            (writer,) = [e for e in made.events if e not in parent.events and isinstance(e, Start)]
            assert writer.at == round(2.1 - WORKLOAD_LEAD, 2)
            if calm is None:
                assert made.length == 10.0 and late in made.events
            else:
                assert made.length == round(min(10.0, 2.1 + fault.duration + AFTER_HEAL), 1)
                assert late not in made.events and len(made.events) == 3


def test_splice_needs_another_timeline_of_the_same_template():
    space = SPACES[2]
    rng = random.Random(0)
    a = schedule.random_timeline(rng, {"full": FULL}, ALL_CAPS, 2.0)
    b = schedule.random_timeline(rng, {"single": SINGLE}, ALL_CAPS, 2.0)
    assert OPERATORS["splice"](rng, space, a, Known(NOTHING.seen, b)) is None
    assert OPERATORS["splice"](rng, space, a, NOTHING) is None
    same = schedule.random_timeline(rng, {"full": FULL}, ALL_CAPS, 2.0)
    spliced = OPERATORS["splice"](random.Random(3), space, a, Known(NOTHING.seen, same))
    assert spliced is not None and set(spliced.events) <= set(a.events) | set(same.events)


@pytest.mark.parametrize("operator", sorted(OPERATORS))
def test_operators_refuse_what_they_cannot_do(operator):
    space = Space({"full": FULL}, CAPS.restricted(()), 5.0)  # no fault kinds at all
    empty = Timeline("full", 1.0, 1)
    result = OPERATORS[operator](random.Random(0), space, empty, Known(NOTHING.seen, empty))
    if operator in ("add command", "lengthen"):
        assert result is not None and space.fits(result)
    else:
        assert result is None
