"""Shrinking with synthetic predicates: no processes, just which timelines "fail"."""

from __future__ import annotations

import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from composer.shrink import each, shrink
from composer.timeline import Fault, Start, Timeline

NODES = ("kv-1", "kv-2", "kv-3")
COMMANDS = ("parallel_driver_write", "parallel_driver_read", "anytime_poke")
FAR = 1e9  # a deadline that is never reached


def big_timeline(seed: int = 0, n: int = 30) -> Timeline:
    """Return ``n`` mixed events, including one Start of parallel_driver_write and one
    kill of kv-1 among other nodes, plus first/eventually/finally commands."""
    rng = random.Random(seed)
    events = []
    for i in range(n - 2):
        at = round(rng.uniform(0, 19), 1)
        if i % 2:
            events.append(Start(at, rng.choice(COMMANDS[1:]), "client-1", rng.randrange(2**31)))
        else:
            kind = rng.choice(["partition", "pause", "loss"])
            events.append(Fault(at, kind, tuple(rng.sample(NODES, rng.randint(1, 3))),
                                round(rng.uniform(0.1, 5), 1)))
    events.append(Start(round(rng.uniform(0, 19), 1), "parallel_driver_write", "client-1", 1))
    events.append(Fault(round(rng.uniform(0, 19), 1), "kill", NODES, 4.0))
    events.sort(key=lambda e: e.at)
    return Timeline(template="main", length=20.0, seed=3, first="first_setup",
                    events=tuple(events), eventually="eventually_check",
                    finally_="finally_verify")


def write_and_kill_kv1(t: Timeline) -> bool:
    starts = any(isinstance(e, Start) and e.command == "parallel_driver_write"
                 for e in t.events)
    kill = any(isinstance(e, Fault) and e.kind == "kill" and "kv-1" in e.targets
               for e in t.events)
    return starts and kill


def test_shrinks_to_exactly_the_two_events_that_matter():
    original = big_timeline()
    assert len(original.events) == 30 and write_and_kill_kv1(original)
    steps = []
    small = shrink(original, each(write_and_kill_kv1), FAR, on_step=steps.append)
    assert write_and_kill_kv1(small)
    assert len(small.events) == 2
    start, fault = sorted(small.events, key=lambda e: isinstance(e, Fault))
    assert isinstance(start, Start) and start.command == "parallel_driver_write"
    assert isinstance(fault, Fault) and fault.kind == "kill"
    assert fault.targets == ("kv-1",)
    assert fault.duration == 0.1  # halved as far as it goes
    assert small.first is None and small.eventually is None and small.finally_ is None
    assert small.length < original.length
    assert small.length > max(e.at for e in small.events)  # every event still in the phase
    assert small.template == original.template and small.seed == original.seed
    # each step reported, each strictly smaller than the one before
    assert steps and steps[-1] == small
    sizes = [original.size()] + [s.size() for s in steps]
    assert all(b < a for a, b in zip(sizes, sizes[1:]))


def test_keeps_what_the_failure_needs():
    def needs_finally_and_two_targets(t: Timeline) -> bool:
        return t.finally_ is not None and any(
            isinstance(e, Fault) and {"kv-1", "kv-2"} <= set(e.targets) for e in t.events)

    original = Timeline(template="main", length=10.0, seed=0, first="first_setup",
                        events=(Start(1.0, "anytime_poke", "client-1", 1),
                                Fault(2.0, "partition", NODES, 3.0)),
                        eventually="eventually_check", finally_="finally_verify")
    small = shrink(original, each(needs_finally_and_two_targets), FAR)
    assert small.finally_ == "finally_verify" and small.first is None
    assert small.eventually is None
    # one node fewer passes; a single node would not
    assert small.events == (Fault(2.0, "partition", ("kv-1", "kv-2"), 0.1),)
    assert small.length < 10.0


def test_removes_every_event_the_failure_does_not_need():
    for n in (1, 2, 3, 7):
        original = big_timeline(n=n + 2)
        original = Timeline(template="main", length=5.0, seed=0, first="first_setup",
                            events=original.events[:n])
        small = shrink(original, each(lambda t: t.first is not None), FAR)
        assert small.events == () and small.first == "first_setup"
        assert 1.0 <= small.length < original.length


def test_driver_phase_never_cut_before_an_event():
    original = Timeline(template="main", length=1.2, seed=0,
                        events=(Start(1.1, "parallel_driver_write", "client-1", 0),))

    def needs_write(t: Timeline) -> bool:
        return any(isinstance(e, Start) for e in t.events)

    small = shrink(original, each(needs_write), FAR)
    assert small == original  # 1.15 would round to 1.1, which would drop the start


def test_nothing_to_remove_returns_the_original():
    original = Timeline(template="main", length=1.0, seed=0,
                        events=(Start(0.0, "anytime_poke", "client-1", 1),))
    calls = []

    def fails(t):
        calls.append(t)
        return t == original

    assert shrink(original, each(fails), FAR) == original


def test_never_calls_fails_with_a_larger_candidate():
    original = big_timeline(seed=5)
    seen = []

    def fails(t):
        seen.append(t)
        return write_and_kill_kv1(t)

    shrink(original, each(fails), FAR)
    assert seen and all(t.size() < original.size() for t in seen)


def test_flaky_predicate():
    original = big_timeline(seed=1)
    for seed in range(20):
        rng = random.Random(seed)
        failed: list[Timeline] = []

        def flaky(t: Timeline) -> bool:
            result = write_and_kill_kv1(t) and rng.random() < 0.5
            if result:
                failed.append(t)
            return result

        small = shrink(original, each(flaky), FAR)
        assert small == original or small in failed
        assert small.size() <= original.size()
        assert write_and_kill_kv1(small)
        assert len(small.events) < len(original.events)  # some progress despite the noise


def test_deadline_is_respected():
    original = big_timeline(seed=2)
    calls = []

    def slow(t: Timeline) -> bool:
        calls.append(t)
        time.sleep(0.05)
        return write_and_kill_kv1(t)

    begin = time.monotonic()
    small = shrink(original, each(slow), begin + 0.3)
    elapsed = time.monotonic() - begin
    assert elapsed < 0.3 + 0.05 + 0.2  # at most one call past the deadline, plus slack
    assert 1 <= len(calls) <= 0.3 / 0.05 + 2
    assert small.size() <= original.size() and write_and_kill_kv1(small)


def test_past_deadline_returns_the_original_without_calling():
    original = big_timeline()
    calls = []
    assert shrink(original, each(lambda t: calls.append(t) or True), time.monotonic() - 1) == original
    assert calls == []


_events = st.lists(st.one_of(
    st.builds(Start, at=st.integers(0, 99).map(lambda n: n / 10), command=st.sampled_from(COMMANDS),
              node=st.just("client-1"), seed=st.integers(0, 9)),
    st.builds(Fault, at=st.integers(0, 99).map(lambda n: n / 10),
              kind=st.sampled_from(["kill", "partition"]),
              targets=st.lists(st.sampled_from(NODES), min_size=1, max_size=3, unique=True)
              .map(tuple), duration=st.integers(1, 50).map(lambda n: n / 10)),
), max_size=12).map(lambda es: tuple(sorted(es, key=lambda e: e.at)))

_timelines = st.builds(Timeline, template=st.just("main"), length=st.just(10.0),
                       seed=st.just(0), first=st.sampled_from([None, "first_setup"]),
                       events=_events, eventually=st.sampled_from([None, "eventually_check"]),
                       finally_=st.sampled_from([None, "finally_verify"]))


@settings(max_examples=100, deadline=None)
@given(_timelines, st.integers(0, 2**32 - 1), st.sampled_from(["kill", "write", "any", "always"]))
def test_result_never_larger_and_still_fails(timeline, seed, rule):
    rng = random.Random(seed)
    base = {
        "kill": lambda t: any(isinstance(e, Fault) and e.kind == "kill" for e in t.events),
        "write": lambda t: any(isinstance(e, Start) and e.command == COMMANDS[0]
                               for e in t.events),
        "any": lambda t: len(t.events) >= 1,
        "always": lambda t: True,
    }[rule]
    failed = {timeline}

    def fails(t: Timeline) -> bool:
        result = base(t) and rng.random() < 0.7
        if result:
            failed.add(t)
        return result

    small = shrink(timeline, each(fails), FAR)
    assert small in failed  # the original, or a candidate that failed at least once
    assert small.size() <= timeline.size()
    assert small.template == timeline.template and small.seed == timeline.seed
    assert small.length <= timeline.length
    assert all(0 <= e.at < small.length for e in small.events)
