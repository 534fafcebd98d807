"""The set, counter, bank and queue checkers on hand-made histories with known verdicts,
including info operations, failed ones and empty histories."""

from __future__ import annotations

import pytest

from composer import checkers
from composer.history import History, Operation


def op(f, value=None, output=None, call=0, ret=1, kind="ok", process=0):
    return Operation(call * 100 + process, process, kind, f, None, value, output, call,
                     None if kind == "info" else ret)


def judge(name, *ops):
    return checkers.judge(name, History(list(ops)))


@pytest.mark.parametrize("name", ["set", "counter", "bank", "queue"])
def test_an_empty_history_is_valid(name):
    assert judge(name).outcome == "valid"


def test_set_lost_unexpected_stale_and_never_read():
    ok = judge("set", op("add", 1, call=0, ret=1), op("add", 2, call=0, ret=1),
               op("read", output=(1, 2), call=2, ret=3))
    assert ok.valid and ok.details["acknowledged"] == 2
    lost = judge("set", op("add", 1, call=0, ret=1), op("read", output=(1,), call=2, ret=3),
                 op("read", output=(), call=4, ret=5))
    assert not lost.valid and lost.details["lost"] == [1] and "lost" in lost.explanation
    unexpected = judge("set", op("read", output=(7,), call=0, ret=1))
    assert not unexpected.valid and unexpected.details["unexpected"] == [7]
    stale = judge("set", op("add", 1, call=0, ret=1), op("read", output=(), call=2, ret=3),
                  op("read", output=(1,), call=4, ret=5))
    assert stale.valid and stale.details["stale"] == [1]
    # an info add may show up or not; a failed one never counts as acknowledged
    maybe = judge("set", op("add", 5, kind="info"), op("add", 6, kind="fail"),
                  op("read", output=(5,), call=2, ret=3))
    assert maybe.valid and maybe.details["never_read"] == 0


def test_counter_reads_within_the_bounds_of_the_adds():
    adds = [op("add", 1, call=0, ret=1), op("add", 2, call=2, ret=3, process=1),
            op("add", 10, call=4, kind="info", process=2)]
    assert judge("counter", *adds, op("read", output=3, call=3.5, ret=3.6)).valid
    assert judge("counter", *adds, op("read", output=13, call=5, ret=6)).valid  # info took effect
    assert judge("counter", *adds, op("read", output=2, call=2.5, ret=3.5)).valid  # concurrent
    low = judge("counter", *adds, op("read", output=0, call=5, ret=6))
    assert not low.valid and low.details["wrong"][0]["low"] == 3
    assert not judge("counter", *adds, op("read", output=14, call=5, ret=6)).valid
    assert not judge("counter", op("add", -1)).valid  # decrements are not this checker's


def test_bank_totals_and_negative_balances():
    def read(balances, call):
        return op("read", output=tuple(sorted(balances.items())), call=call, ret=call + 1)
    transfer = op("transfer", {"from": "a", "to": "b", "amount": 5}, call=0, ret=1)
    assert judge("bank", transfer, read({"a": 5, "b": 5}, 2), read({"a": 0, "b": 10}, 4)).valid
    made = judge("bank", read({"a": 5, "b": 5}, 2), read({"a": 5, "b": 10}, 4))
    assert not made.valid and made.details["wrong_totals"][0]["total"] == 15
    negative = judge("bank", read({"a": 15, "b": -5}, 2))
    assert not negative.valid and negative.details["negative"][0]["accounts"] == ["b"]


def test_queue_lost_duplicated_unexpected():
    enq = [op("enqueue", v, call=v, ret=v + 0.5) for v in (1, 2, 3)]
    deq = [op("dequeue", output=v, call=10 + v, ret=10.5 + v, process=1) for v in (1, 2, 3)]
    assert judge("queue", *enq, *deq).valid
    lost = judge("queue", *enq, *deq[:2])
    assert not lost.valid and lost.details["lost"] == [3]
    twice = judge("queue", *enq, *deq, op("dequeue", output=2, call=20, ret=21))
    assert not twice.valid and twice.details["duplicated"] == [2]
    unexpected = judge("queue", *enq, *deq, op("dequeue", output=9, call=20, ret=21))
    assert not unexpected.valid and unexpected.details["unexpected"] == [9]
    # an info enqueue need not come out; dequeuing from an empty queue answers nothing
    assert judge("queue", op("enqueue", 4, kind="info"), op("dequeue", output=None)).valid


# --- append (Elle-style list-append) ------------------------------------------------------


def txn(index, steps, read=None, kind="ok", call=None, ret=None):
    """A transaction: ``steps`` as invoked, ``read`` the completion's micro-operations."""
    value = tuple(tuple(s) for s in steps)
    out = tuple(tuple(s) for s in read) if read is not None else None
    call = index * 10 if call is None else call
    return Operation(index, index, kind, "txn", None, value, out, call,
                     None if kind == "info" else (call + 5 if ret is None else ret))


def r(key, elements):
    return ("r", key, None if elements is None else tuple(elements))


def test_append_serial_history_is_valid():
    ops = [txn(0, [("append", "x", 1)]), txn(1, [("append", "x", 2), r("y", None)],
                                              [("append", "x", 2), r("y", [])]),
           txn(2, [r("x", None)], [r("x", [1, 2])])]
    verdict = judge("append", *ops)
    assert verdict.valid, verdict.explanation


def test_append_g1a_g1b_and_incompatible_orders():
    aborted = judge("append", txn(0, [("append", "x", 1)], kind="fail"),
                    txn(1, [r("x", None)], [r("x", [1])]))
    assert not aborted.valid and "G1a" in aborted.details["anomalies"]
    intermediate = judge("append", txn(0, [("append", "x", 1), ("append", "x", 2)]),
                         txn(1, [r("x", None)], [r("x", [1])]))
    assert "G1b" in intermediate.details["anomalies"]
    forked = judge("append", txn(0, [("append", "x", 1)]), txn(1, [("append", "x", 2)]),
                   txn(2, [r("x", None)], [r("x", [1])]), txn(3, [r("x", None)], [r("x", [2])]))
    assert "incompatible order" in forked.details["anomalies"]


def test_append_cycles_g0_g1c_g_single_g2():
    # G0: T0 and T1 both append to x and y, in opposite orders
    g0 = judge("append", txn(0, [("append", "x", 1), ("append", "y", 2)]),
               txn(1, [("append", "x", 2), ("append", "y", 1)]),
               txn(2, [r("x", None), r("y", None)], [r("x", [1, 2]), r("y", [1, 2])]))
    assert "G0" in g0.details["anomalies"], g0.details
    # G1c: each reads the other's append (a wr cycle)
    g1c = judge("append", txn(0, [("append", "x", 1), r("y", None)],
                              [("append", "x", 1), r("y", [1])]),
                txn(1, [("append", "y", 1), r("x", None)], [("append", "y", 1), r("x", [1])]))
    assert "G1c" in g1c.details["anomalies"], g1c.details
    # G-single (read skew): T1 sees T0's x but not its y (y's order known from T2)
    single = judge("append", txn(0, [("append", "x", 1), ("append", "y", 1)]),
                   txn(1, [r("x", None), r("y", None)], [r("x", [1]), r("y", [])]),
                   txn(2, [r("y", None)], [r("y", [1])]))
    assert "G-single" in single.details["anomalies"], single.details
    # G2 (write skew): each reads the empty key the other appends to
    g2 = judge("append", txn(0, [r("x", None), ("append", "y", 1)], [r("x", []), ("append", "y", 1)]),
               txn(1, [r("y", None), ("append", "x", 1)], [r("y", []), ("append", "x", 1)]),
               txn(2, [r("x", None), r("y", None)], [r("x", [1]), r("y", [1])]))
    assert "G2" in g2.details["anomalies"], g2.details
    assert "-rw->" in g2.details["anomalies"]["G2"][0]


# --- rw-register (Elle-style register transactions) --------------------------------------


def test_rw_register_serial_history_is_valid():
    ops = [txn(0, [("w", "x", 1), ("w", "y", 1)]),
           txn(1, [("r", "x", None), ("w", "x", 2)], [("r", "x", 1), ("w", "x", 2)]),
           txn(2, [("r", "x", None), ("r", "y", None)], [("r", "x", 2), ("r", "y", 1)])]
    verdict = judge("rw-register", *ops)
    assert verdict.valid, verdict.explanation


def test_rw_register_g1a_g1b():
    aborted = judge("rw-register", txn(0, [("w", "x", 1)], kind="fail"),
                    txn(1, [("r", "x", None)], [("r", "x", 1)]))
    assert "G1a" in aborted.details["anomalies"]
    intermediate = judge("rw-register", txn(0, [("w", "x", 1), ("w", "x", 2)]),
                         txn(1, [("r", "x", None)], [("r", "x", 1)]))
    assert "G1b" in intermediate.details["anomalies"]


def test_rw_register_cycles_g1c_g_single_g2():
    g1c = judge("rw-register", txn(0, [("w", "x", 1), ("r", "y", None)],
                                   [("w", "x", 1), ("r", "y", 1)]),
                txn(1, [("w", "y", 1), ("r", "x", None)], [("w", "y", 1), ("r", "x", 1)]))
    assert "G1c" in g1c.details["anomalies"], g1c.details
    # read skew: T1 sees T0's x but the initial y, though T0 wrote y too
    single = judge("rw-register", txn(0, [("w", "x", 1), ("w", "y", 1)]),
                   txn(1, [("r", "x", None), ("r", "y", None)], [("r", "x", 1), ("r", "y", None)]))
    assert "G-single" in single.details["anomalies"], single.details
    # write skew: each reads the initial value of the key the other writes
    g2 = judge("rw-register", txn(0, [("r", "x", None), ("w", "y", 1)], [("r", "x", None), ("w", "y", 1)]),
               txn(1, [("r", "y", None), ("w", "x", 1)], [("r", "y", None), ("w", "x", 1)]))
    assert "G2" in g2.details["anomalies"], g2.details
