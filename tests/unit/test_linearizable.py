"""The linearizability checker on hand-made histories with known verdicts, and its
properties over generated ones (Hypothesis)."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer.checkers import linearizable
from composer.checkers.models import INCONSISTENT, MODELS
from composer.history import Event, Operation, pair


def op(process, f, value, output=None, call=0, ret=10, kind="ok", key=None, index=None):
    return Operation(index if index is not None else call * 1000 + process, process, kind,
                     f, key, value, output, call, None if kind == "info" else ret)


def history(*ops):
    from composer.history import History
    return History(list(ops))


def verdict(h, model="register", **kw):
    return linearizable.check(h, model, **kw)


# --- hand-made histories --------------------------------------------------------------


def test_an_empty_history_is_linearizable():
    assert verdict(history()).outcome == "valid"


def test_sequential_write_then_read_of_it_is_valid_and_a_stale_read_is_not():
    assert verdict(history(op(0, "write", 1, call=0, ret=1),
                           op(1, "read", None, 1, call=2, ret=3))).outcome == "valid"
    bad = verdict(history(op(0, "write", 1, call=0, ret=1),
                          op(0, "write", 2, call=2, ret=3),
                          op(1, "read", None, 1, call=4, ret=5)))
    assert bad.outcome == "invalid"
    assert bad.details["blocked"]["f"] == "read" and bad.details["blocked"]["output"] == 1
    assert bad.details["prefix_length"] == 2 and bad.details["state"] == "2"
    assert "cannot take effect" in bad.explanation


def test_concurrent_operations_may_take_effect_in_either_order():
    # the read overlaps both writes: it may see either
    for seen in (1, 2):
        assert verdict(history(op(0, "write", 1, call=0, ret=10),
                               op(1, "write", 2, call=0, ret=10),
                               op(2, "read", None, seen, call=5, ret=20))).outcome == "valid"


def test_operations_at_the_same_instant_count_as_concurrent():
    # a read completing at the instant a write is invoked may still follow it
    assert verdict(history(op(0, "write", 1, call=5, ret=6),
                           op(1, "read", None, 1, call=0, ret=5))).outcome == "valid"


def test_a_read_of_a_value_never_written_is_invalid():
    assert verdict(history(op(0, "write", 1, call=0, ret=1),
                           op(1, "read", None, 7, call=2, ret=3))).outcome == "invalid"


def test_an_info_write_may_take_effect_late_or_never():
    crashed = op(0, "write", 5, call=0, kind="info")
    assert verdict(history(crashed, op(1, "read", None, None, call=1, ret=2),
                           op(1, "read", None, 5, call=10, ret=11))).outcome == "valid"
    assert verdict(history(crashed, op(1, "read", None, None, call=10, ret=11))
                   ).outcome == "valid"  # never took effect
    # but not before it was invoked
    early = history(op(1, "read", None, 5, call=0, ret=1),
                    op(0, "write", 5, call=2, kind="info"))
    assert verdict(early).outcome == "invalid"


def test_failed_operations_did_not_happen():
    assert verdict(history(op(0, "write", 3, call=0, ret=1, kind="fail"),
                           op(1, "read", None, 3, call=2, ret=3))).outcome == "invalid"


def test_cas_register():
    ok = history(op(0, "write", 1, call=0, ret=1), op(1, "cas", (1, 2), call=2, ret=3),
                 op(2, "read", None, 2, call=4, ret=5))
    assert verdict(ok, "cas-register").outcome == "valid"
    bad = history(op(0, "write", 1, call=0, ret=1), op(1, "cas", (3, 2), call=2, ret=3))
    assert verdict(bad, "cas-register").outcome == "invalid"


def test_an_info_write_stays_when_a_kept_info_cas_expected_its_value():
    """Found by the sequential-history property: pruning dropped the crashed write of 1
    (no completed operation read 1), though the crashed cas 1 -> 0 it enabled was kept
    for the read of 0, and the valid history was judged invalid."""
    h = history(op(0, "write", 1, call=30, ret=None, kind="info"),
                op(0, "cas", (1, 0), call=40, ret=None, kind="info"),
                op(0, "read", None, 0, call=50, ret=50))
    assert verdict(h, "cas-register").outcome == "valid"


def test_set_queue_and_mutex_models():
    assert verdict(history(op(0, "add", 1, call=0, ret=1), op(1, "add", 2, call=0, ret=1),
                           op(2, "read", None, (2, 1), call=2, ret=3)), "set").valid
    assert not verdict(history(op(0, "add", 1, call=0, ret=1),
                               op(2, "read", None, (), call=2, ret=3)), "set").valid
    assert verdict(history(op(0, "enqueue", 1, call=0, ret=1),
                           op(0, "enqueue", 2, call=2, ret=3),
                           op(1, "dequeue", None, 1, call=4, ret=5)), "queue").valid
    assert not verdict(history(op(0, "enqueue", 1, call=0, ret=1),
                               op(0, "enqueue", 2, call=2, ret=3),
                               op(1, "dequeue", None, 2, call=4, ret=5)), "queue").valid
    assert verdict(history(op(0, "acquire", None, call=0, ret=1),
                           op(0, "release", None, call=2, ret=3),
                           op(1, "acquire", None, call=4, ret=5)), "mutex").valid
    assert not verdict(history(op(0, "acquire", None, call=0, ret=1),
                               op(1, "acquire", None, call=2, ret=3)), "mutex").valid


def test_keys_are_checked_apart():
    h = history(op(0, "write", 1, key="a", call=0, ret=1),
                op(1, "write", 2, key="b", call=0, ret=1),
                op(2, "read", None, 1, key="a", call=2, ret=3),
                op(2, "read", None, 1, key="b", call=4, ret=5))
    bad = verdict(h)
    assert bad.outcome == "invalid" and bad.details["key"] == "b"


def test_an_unknown_function_or_model_is_named():
    assert verdict(history(op(0, "frobnicate", 1))).outcome == "unknown"
    with pytest.raises(ValueError, match="cas-register"):
        verdict(history(), "nope")


def test_a_search_out_of_time_is_unknown_never_valid():
    # many concurrent writes and reads that no order explains force a long search
    ops = [op(p, "write", p, call=0, ret=100, index=p) for p in range(18)]
    ops += [op(100 + p, "read", None, 99, call=0, ret=100, index=100 + p) for p in range(2)]
    result = verdict(history(*ops), time_limit=0.0)  # 2**18 write orders to rule out
    assert result.outcome == "unknown" and result.valid is None
    assert "time limit" in result.explanation


# --- pairing records into operations --------------------------------------------------


def test_unfinished_invocations_become_info_and_fail_stays_fail():
    events = [Event(1, "invoke", "write", None, 1, 0), Event(2, "invoke", "write", None, 2, 1),
              Event(2, "fail", "write", None, 2, 2), Event(3, "ok", "read", None, 1, 3),
              Event(1, "invoke", "read", None, None, 4), Event(1, "ok", "read", None, 1, 5)]
    h = pair(events)
    assert [(o.process, o.f, o.type, o.ret) for o in h.operations] == [
        (1, "write", "info", None), (2, "write", "fail", 2), (1, "read", "ok", 5)]
    assert h.unmatched == 1


# --- properties -----------------------------------------------------------------------


@st.composite
def sequential_histories(draw, model_name: str):
    """Operations run one at a time against the model, then given overlapping intervals
    around their instants: always linearizable (each took effect at its instant)."""
    spec = MODELS[model_name]
    state = spec.initial
    ops = []
    count = draw(st.integers(0, 25))
    for n in range(count):
        f = draw(st.sampled_from(spec.functions))
        value = draw(st.integers(0, 3))
        if f == "cas":
            value = (draw(st.sampled_from([state, 0, 1])), value)
        if f in ("read", "dequeue", "acquire", "release"):
            value = None
        probe = Operation(n, 0, "info", f, None, value, None, 0, None)
        after = spec.step(state, probe)
        if after is INCONSISTENT:
            continue
        output = {"read": state if model_name != "set" else tuple(sorted(state)),
                  "dequeue": state[0] if model_name == "queue" and state else None
                  }.get(f)
        instant = 10 * n
        kind = draw(st.sampled_from(["ok", "ok", "ok", "info"]))
        ops.append(Operation(n, draw(st.integers(0, 4)), kind, f, None, value,
                             output if kind == "ok" else None,
                             instant - draw(st.integers(0, 30)),
                             None if kind == "info" else instant + draw(st.integers(0, 30))))
        state = after
    return ops


@pytest.mark.parametrize("model_name", sorted(MODELS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_histories_of_a_sequential_execution_are_always_linearizable(model_name, data):
    ops = data.draw(sequential_histories(model_name))
    assert verdict(history(*ops), model_name).outcome == "valid"


@settings(max_examples=60, deadline=None)
@given(ops=sequential_histories("register"), at=st.integers(0, 300))
def test_a_read_of_a_value_never_written_is_always_invalid(ops, at):
    bad = op(9, "read", None, 77, call=at, ret=at + 5, index=10_000)
    assert verdict(history(*ops, bad)).outcome == "invalid"


@settings(max_examples=60, deadline=None)
@given(ops=sequential_histories("cas-register"), seed=st.integers(0, 2**16),
       stale=st.booleans())
def test_the_verdict_does_not_depend_on_the_order_of_processes(ops, seed, stale):
    if stale:  # sometimes a history with a violation
        ops = ops + [op(9, "read", None, 55, call=500, ret=505, index=10_000)]
    rng = random.Random(seed)
    names = list({o.process for o in ops})
    renamed = dict(zip(names, rng.sample(names, len(names))))
    shuffled = [Operation(o.index, renamed[o.process], o.type, o.f, o.key, o.value,
                          o.output, o.call, o.ret) for o in rng.sample(ops, len(ops))]
    first = verdict(history(*ops), "cas-register").outcome
    assert verdict(history(*shuffled), "cas-register").outcome == first


def test_large_histories_are_checked_in_parallel_with_the_same_verdict(monkeypatch):
    rng = random.Random(3)
    ops = []
    for key in range(4):
        state = None
        for n in range(300):
            if rng.random() < 0.5:
                state = rng.randint(0, 5)
                ops.append(op(n % 5, "write", state, key=key, call=10 * n, ret=10 * n + 3,
                              index=len(ops)))
            else:
                ops.append(op(n % 5, "read", None, state, key=key, call=10 * n,
                              ret=10 * n + 3, index=len(ops)))
    ops.append(op(7, "read", None, 99, key=2, call=10_000, ret=10_005, index=len(ops)))
    monkeypatch.setattr(linearizable, "PARALLEL_FROM", 100)
    parallel = verdict(history(*ops), jobs=2)
    monkeypatch.setattr(linearizable, "PARALLEL_FROM", 10**9)
    alone = verdict(history(*ops), jobs=1)
    assert parallel.outcome == alone.outcome == "invalid"
    assert parallel.details["key"] == alone.details["key"] == 2


def test_info_writes_no_one_saw_cost_nothing():
    # 25 timed-out writes whose values no read returned, then a stale read: without
    # dropping them the search would rule out 2**25 orders before saying invalid
    crashed = [op(10 + p, "write", 100 + p, call=0, kind="info", index=10 + p)
               for p in range(25)]
    h = history(*crashed, op(0, "write", 1, call=0, ret=1, index=0),
                op(0, "write", 2, call=2, ret=3, index=1),
                op(1, "read", None, 1, call=4, ret=5, index=2))
    assert verdict(h, time_limit=5.0).outcome == "invalid"
    seen = history(*crashed, op(1, "read", None, 107, call=4, ret=5, index=2))
    assert verdict(seen, time_limit=5.0).outcome == "valid"  # that one took effect
