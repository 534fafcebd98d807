"""Tests of ``composer.properties``: reading JSONL, judging timelines, aggregating."""

from __future__ import annotations

import json
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from composer import properties
from composer.properties import (
    Property,
    PropertyTable,
    guidance,
    read_records,
    setup_completed,
    assertion_id,
    hit_assertions,
    violations,
)

KINDS = {  # display_type -> (assert_type, must_hit)
    "Always": ("always", True),
    "AlwaysOrUnreachable": ("always", False),
    "Sometimes": ("sometimes", True),
    "Reachable": ("reachability", True),
    "Unreachable": ("reachability", False),
}


def hit(display: str, message: str, condition: bool | None = None, *, declared: bool = False, **extra) -> dict:
    """An ``antithesis_assert`` record as the official SDK writes it."""
    assert_type, must_hit = KINDS[display]
    if condition is None:
        condition = display != "Unreachable"
    inner = {"condition": condition, "must_hit": must_hit, "hit": not declared, "id": message,
             "message": message, "display_type": display, "assert_type": assert_type, **extra}
    return {"antithesis_assert": inner}


def status_after(*timelines: list[dict], catalog=()) -> dict[str, str]:
    table = PropertyTable(catalog)
    for records in timelines:
        table.add_timeline(records)
    return {p.id: p.status for p in table.properties()}


# --- read_records --------------------------------------------------------------------

def test_read_records_counts_garbage_and_keeps_the_rest(tmp_path):
    path = tmp_path / "sdk.jsonl"
    good = [{"antithesis_sdk": {}}, hit("Always", "a")]
    path.write_bytes(
        b"\n".join([json.dumps(good[0]).encode(), b"", b"   ", b"not json", b"[1, 2]", b"42",
                    b'"string"', b"\xff\xfe{}", json.dumps(good[1]).encode(), b'{"truncated": ']))
    assert read_records(path) == (good, 6)


def test_read_records_of_a_missing_file_is_empty(tmp_path):
    assert read_records(tmp_path / "absent.jsonl") == ([], 0)


# --- statuses ------------------------------------------------------------------------

@pytest.mark.parametrize("display,conditions,expected", [
    ("Always", [True, True], "pass"),
    ("Always", [True, False], "fail"),
    ("Always", [], "unreached"),
    ("AlwaysOrUnreachable", [False], "fail"),
    ("AlwaysOrUnreachable", [True], "pass"),
    ("AlwaysOrUnreachable", [], "pass"),
    ("Sometimes", [False, True], "pass"),
    ("Sometimes", [False, False], "fail"),
    ("Sometimes", [], "unreached"),
    ("Reachable", [True], "pass"),
    ("Reachable", [], "unreached"),
    ("Unreachable", [False], "fail"),
    ("Unreachable", [], "pass"),
])
def test_status_of_each_kind(display, conditions, expected):
    declared = [hit(display, "p", declared=True)]
    records = declared + [hit(display, "p", c) for c in conditions]
    table = PropertyTable()
    table.add_timeline(records)
    [prop] = table.properties()
    assert prop.status == expected
    assert prop.ok == (expected == "pass")
    assert (prop in table.failing()) == (expected != "pass")
    assert prop.timelines_hit == (1 if conditions else 0)


def test_counts_for_reachability_are_hits():
    table = PropertyTable()
    table.add_timeline([hit("Reachable", "r"), hit("Reachable", "r"), hit("Unreachable", "u")])
    by_id = {p.id: p for p in table.properties()}
    assert (by_id["r"].passes, by_id["r"].failures) == (2, 0)
    assert (by_id["u"].passes, by_id["u"].failures) == (0, 1)


def test_catalog_reports_never_hit_properties():
    catalog = [hit(d, f"never {d}", declared=True)["antithesis_assert"] for d in KINDS]
    catalog.append(hit("Sometimes", "wrapped form", declared=True))  # whole records work too
    statuses = status_after([hit("Always", "other")], catalog=catalog)
    assert statuses == {
        "never Always": "unreached", "never AlwaysOrUnreachable": "pass", "never Sometimes": "unreached",
        "never Reachable": "unreached", "never Unreachable": "pass", "wrapped form": "unreached",
        "other": "pass",
    }


def test_sometimes_is_judged_across_timelines():
    assert status_after([hit("Sometimes", "s", False)], [hit("Sometimes", "s", True)]) == {"s": "pass"}


def test_minimal_records_without_location_or_details_work():
    built_in = {"antithesis_assert": {"hit": True, "condition": False, "id": "Commands finish with zero exit code",
                                      "message": "Commands finish with zero exit code", "display_type": "Always",
                                      "assert_type": "always", "must_hit": True}}
    table = PropertyTable()
    table.add_timeline([built_in, {"antithesis_assert": {"message": "no id", "display_type": "Sometimes",
                                                         "condition": True}}])
    by_id = {p.id: p for p in table.properties()}
    assert by_id["Commands finish with zero exit code"].first_failure == {"details": None, "location": None}
    assert by_id["no id"].status == "pass"
    assert violations([built_in]) == ["Commands finish with zero exit code"]


def test_first_failure_keeps_the_first_failing_hit():
    loc = {"file": "d.py", "function": "f", "class": "", "begin_line": 3, "begin_column": 0}
    table = PropertyTable()
    table.add_timeline([hit("Always", "a", True), hit("Always", "a", False, details={"n": 1}, location=loc)])
    table.add_timeline([hit("Always", "a", False, details={"n": 2})])
    [prop] = table.properties()
    assert prop.first_failure == {"details": {"n": 1}, "location": loc}
    assert (prop.passes, prop.failures, prop.timelines_hit) == (1, 2, 2)


def test_other_records_are_ignored():
    other = [{"antithesis_sdk": {"sdk_version": "x"}}, {"antithesis_setup": {"status": "complete"}},
             {"leader_elected": {"term": 1}}, {"antithesis_error": {"code": 6001}},
             {"antithesis_assert": "not a dict"}, {"antithesis_guidance": {"hit": True}}]
    table = PropertyTable()
    table.add_timeline(other)
    assert table.properties() == [] and violations(other) == [] and guidance(other) == {}


def test_properties_sort_failing_first_then_by_kind_and_message():
    table = PropertyTable()
    table.add_timeline([hit("Sometimes", "b"), hit("Always", "z"), hit("Always", "y", False),
                        hit("Reachable", "a"), hit("Unreachable", "x")])
    assert [p.id for p in table.properties()] == ["y", "x", "z", "a", "b"]
    assert [p.id for p in table.failing()] == ["y", "x"]
    summary = json.loads(json.dumps(table.to_json()))
    assert [s["id"] for s in summary] == ["y", "x", "z", "a", "b"]
    assert summary[0] == {"id": "y", "message": "y", "display_type": "Always", "assert_type": "always",
                          "must_hit": True, "status": "fail", "ok": False, "passes": 0, "failures": 1,
                          "unknowns": 0, "timelines_hit": 1, "first_failure": {"details": None, "location": None}}


def test_property_defaults():
    prop = Property("i", "m", "Always", "always", True)
    assert (prop.passes, prop.failures, prop.timelines_hit, prop.first_failure, prop.status) == (
        0, 0, 0, None, "unreached")


# --- one timeline --------------------------------------------------------------------

def test_violations_are_safety_properties_only():
    records = [hit("Always", "a", False), hit("Always", "a", False), hit("AlwaysOrUnreachable", "o", False),
               hit("Sometimes", "s", False), hit("Reachable", "r"), hit("Unreachable", "u"),
               hit("Always", "ok", True), hit("Always", "declared", declared=True)]
    assert violations(records) == ["a", "o", "u"]


def test_setup_completed():
    assert setup_completed([{"antithesis_setup": {"status": "complete"}}])
    assert not setup_completed([{"antithesis_setup": {"status": "starting"}}, {"setup": {}}])


def numeric(gid: str, maximize: bool, left, right, hit_: bool = True) -> dict:
    return {"antithesis_guidance": {"guidance_type": "numeric", "id": gid, "message": gid, "maximize": maximize,
                                    "hit": hit_, "guidance_data": {"left": left, "right": right}}}


def test_guidance_is_larger_closer_to_the_flip():
    # always_greater_than (maximize False): closer to the flip as left - right shrinks
    assert guidance([numeric("gt", False, 10, 3), numeric("gt", False, 5, 3)]) == {"gt": -2.0}
    # always_less_than (maximize True): closer as left - right grows toward 0
    assert guidance([numeric("lt", True, 1, 9), numeric("lt", True, 7, 9)]) == {"lt": -2.0}
    # the best value wins whatever the order
    assert guidance([numeric("gt", False, 5, 3), numeric("gt", False, 10, 3)]) == {"gt": -2.0}


def test_guidance_of_booleans_counts_true_propositions():
    some = {"antithesis_guidance": {"guidance_type": "boolean", "id": "some", "maximize": False, "hit": True,
                                    "guidance_data": {"a": True, "b": True, "c": False}}}
    every = {"antithesis_guidance": {"guidance_type": "boolean", "id": "all", "maximize": True, "hit": True,
                                     "guidance_data": {"a": True, "b": False}}}
    assert guidance([some, every]) == {"some": -2.0, "all": 1.0}


def test_guidance_skips_declarations_and_bad_values():
    bad = [numeric("d", False, 1, 2, hit_=False), numeric("s", True, "x", 1), numeric("inf", True, 1e308, -1e308)]
    assert guidance(bad) == {}


# --- aggregation properties ----------------------------------------------------------

_ids = st.sampled_from(["a", "b", "c", "d", "e"])
_kind_of = {"a": "Always", "b": "AlwaysOrUnreachable", "c": "Sometimes", "d": "Reachable", "e": "Unreachable"}
_record = st.builds(lambda i, c, d: hit(_kind_of[i], i, c, declared=d), _ids, st.booleans(),
                    st.sampled_from([False, False, False, True]))
_timelines = st.lists(st.lists(_record, max_size=8), max_size=6)


def _summary(table: PropertyTable) -> list[tuple]:
    return [(p.id, p.status, p.passes, p.failures, p.timelines_hit) for p in table.properties()]


@given(_timelines, st.randoms(use_true_random=False))
def test_timeline_order_does_not_change_the_table(timelines, rnd: random.Random):
    forward, shuffled = PropertyTable(), PropertyTable()
    for records in timelines:
        forward.add_timeline(records)
    order = list(timelines)
    rnd.shuffle(order)
    for records in order:
        shuffled.add_timeline(records)
    assert _summary(forward) == _summary(shuffled)


@given(_timelines)
def test_table_counts_are_sums_over_timelines(timelines):
    table = PropertyTable()
    for records in timelines:
        table.add_timeline(records)
    for prop in table.properties():
        per_timeline = [[r for r in records if r["antithesis_assert"]["id"] == prop.id and r["antithesis_assert"]["hit"]]
                        for records in timelines]
        assert prop.passes + prop.failures == sum(map(len, per_timeline))
        assert prop.timelines_hit == sum(1 for rs in per_timeline if rs)
        assert (prop.id in {v for rs in timelines for v in violations(rs)}) == (
            prop.failures > 0 and prop.assert_type != "sometimes")
    assert {p.id for p in table.failing()} == {p.id for p in table.properties() if p.status != "pass"}


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=4),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=10,
)
_field = st.sampled_from(["id", "message", "hit", "condition", "must_hit", "display_type", "assert_type",
                          "guidance_type", "maximize", "guidance_data", "details", "location"])
_values = st.one_of(_json, st.sampled_from(list(KINDS) + ["always", "sometimes", "reachability", "numeric"]),
                    st.fixed_dictionaries({"left": _json, "right": _json}))
_malformed = st.dictionaries(
    st.sampled_from(["antithesis_assert", "antithesis_guidance", "antithesis_setup", "other"]),
    st.one_of(_json, st.dictionaries(_field, _values, max_size=8)),
    max_size=2,
)


@given(st.lists(_malformed, max_size=10))
def test_malformed_records_never_raise(records):
    table = PropertyTable(r.get("antithesis_assert", r) for r in records)
    table.add_timeline(records)
    json.dumps(table.to_json(), default=str)
    violations(records)
    setup_completed(records)
    assert all(isinstance(v, float) for v in guidance(records).values())


def test_hit_assertions_leave_out_declarations_and_malformed_records():
    def record(id, assert_type, display, condition, hit=True):
        return {"antithesis_assert": {"id": id, "message": id, "assert_type": assert_type,
                                      "display_type": display, "must_hit": True, "hit": hit,
                                      "condition": condition}}

    records = [
        record("true sometimes", "sometimes", "Sometimes", True),
        record("false sometimes", "sometimes", "Sometimes", False),
        record("reached", "reachability", "Reachable", True),
        record("declared only", "sometimes", "Sometimes", True, hit=False),
        record("an always", "always", "Always", True),
        {"antithesis_assert": {"id": "unreachable", "assert_type": "reachability",
                               "display_type": "Unreachable", "must_hit": False, "hit": True,
                               "condition": True}},
    ]
    records += [{"antithesis_assert": {"message": "by message only", "condition": True}},
                {"antithesis_assert": "not a dict"}, {"antithesis_guidance": {"id": "g"}}]
    assert [assertion_id(inner) for inner in hit_assertions(records)] == [
        "true sometimes", "false sometimes", "reached", "an always", "unreachable",
        "by message only"]


def test_a_verdict_out_of_time_is_unknown_neither_pass_nor_failure():
    # a history checker whose time limit ran out writes condition null, outcome unknown
    unknown = {"antithesis_assert": {"id": "lin", "message": "lin", "display_type": "Always",
                                     "assert_type": "always", "must_hit": True, "hit": True,
                                     "condition": None, "details": {"outcome": "unknown"}}}
    passed = json.loads(json.dumps(unknown))
    passed["antithesis_assert"].update(condition=True, details={"outcome": "valid"})
    assert properties.violations([unknown]) == []  # nothing to shrink
    table = properties.PropertyTable()
    table.add_timeline([unknown])
    table.add_timeline([passed])
    [prop] = table.properties()
    assert (prop.status, prop.ok, prop.passes, prop.failures, prop.unknowns) == (
        "unknown", False, 1, 0, 1)
    assert table.failing() == []  # not a failure: exit code 0, shown as unknown
    failed = json.loads(json.dumps(unknown))
    failed["antithesis_assert"].update(condition=False, details={"outcome": "invalid"})
    table.add_timeline([failed])
    assert prop.status == "fail" and table.failing() == [prop]
