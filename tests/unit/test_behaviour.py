"""A timeline's behaviour signature: what a search compares to tell new from seen."""

from __future__ import annotations

import pytest

from composer.behaviour import bucket, observe
from composer.hits import Hit


def assertion(id: str, condition: bool = True, hit: bool = True) -> dict:
    return {"antithesis_assert": {"id": id, "message": id, "condition": condition, "hit": hit,
                                  "assert_type": "always", "display_type": "Always",
                                  "must_hit": True}}


@pytest.mark.parametrize("count, name", [(1, "1"), (2, "2"), (3, "3"), (4, "4-7"), (7, "4-7"),
                                         (8, "8-15"), (31, "16-31"), (127, "32-127"),
                                         (128, "128+"), (10**6, "128+")])
def test_buckets_are_afls(count, name):
    assert bucket(count) == name


def test_assertion_outcomes_and_how_many_processes_hit_them():
    records = [assertion("a"), assertion("a"), assertion("a", False), assertion("b"),
               assertion("declared", hit=False)]
    features = observe(records, []).features
    assert {"assert pass a", "assert pass a x2", "assert fail a", "assert fail a x1",
            "assert pass b", "assert pass b x1"} == features


def test_faults_exits_and_setup_failures_are_features():
    log = [{"t": 1.0, "what": "fault", "kind": "kill", "targets": ["kv-1", "kv-2"]},
           {"t": 1.2, "what": "fault", "kind": "kill", "targets": []},  # hit nothing
           {"t": 1.5, "what": "fault", "kind": "partition", "targets": ["kv-3"],
            "shape": "isolate"},
           {"t": 2.0, "what": "exit", "command": "parallel_driver_put", "status": "exited",
            "exit_code": 0},
           {"t": 2.1, "what": "exit", "command": "serial_driver_get", "status": "timeout",
            "exit_code": -9},
           {"t": 2.2, "what": "setup failed", "reason": "x"}]
    assert observe([], log).features == {
        "fault kill kv-1", "fault kill kv-2", "fault partition kv-3",
        "fault partition isolate", "exit parallel_driver_put exited 0",
        "exit serial_driver_get timeout -9", "setup failed"}


def test_a_fault_soon_after_a_first_hit_is_its_own_feature():
    hits = [Hit(2.0, "snapshot started", True, "ledger-1-service-1"),
            Hit(2.1, "write acknowledged", True, "0003-parallel_driver_append"),
            Hit(0.5, "before the phase", True, "ledger-1-service-1")]
    log = [{"t": 1.0, "what": "start", "command": "c"},
           {"t": 2.3, "what": "fault", "kind": "kill", "targets": ["ledger-1"]},
           {"t": 4.0, "what": "fault", "kind": "pause", "targets": ["ledger-1"]}]
    seen = observe([], log, hits, phase_start=1.0)
    assert [(m.at, m.id, m.node) for m in seen.moments] == [
        (1.0, "snapshot started", "ledger-1"), (1.1, "write acknowledged", None)]
    assert seen.starts == (0.0,)
    assert "fault kill on its node within 0.5s after snapshot started" in seen.features
    assert "fault kill within 0.25s after write acknowledged" in seen.features
    assert not any("pause" in f and "after" in f for f in seen.features)  # 2 s later
    assert not any("before the phase" in f for f in seen.features)


def test_a_fault_after_an_outcome_that_did_not_hold_names_it_apart():
    """"Two writers in flight" evaluated false (the first, lone write) is not the state
    "two writers in flight": a kill after the one must not count as a kill after the other."""
    hits = [Hit(1.2, "two writers in flight", False, "kv-1-service-1")]
    log = [{"t": 1.3, "what": "fault", "kind": "kill", "targets": ["kv-1"]}]
    seen = observe([], log, hits, phase_start=1.0)
    assert "fault kill on its node within 0.25s after two writers in flight (false)" in seen.features
    assert "fault kill on its node within 0.25s after two writers in flight" not in seen.features


def test_guidance_is_carried_with_the_best_score():
    records = [{"antithesis_guidance": {"id": "lag", "guidance_type": "numeric",
                                        "maximize": True,
                                        "guidance_data": {"left": v, "right": 0}}}
               for v in (3, 9, 5)]
    assert observe(records, []).guidance == {"lag": 9.0}


def test_log_lines_become_templates_with_their_variable_parts_masked():
    from composer.logstates import template

    assert template("leaderkv 11:05:16 127.0.117.1:7200 steps down in term 12: "
                    "127.0.117.2:7200 campaigns") == \
        "leaderkv <time> <addr> steps down in term <n>: <addr> campaigns"
    assert template("2026-12-06T11:05:16.123Z  wrote   key 'w-17' (id 9f3a2c4d1e) in 0.25 s") == \
        "<time> wrote key <str> (id <hex>) in <n> s"
    assert template("node-2 is leader") == "node-2 is leader"  # names stay apart
    assert template("") == "" and len(template("x" * 1000)) == 160


def test_logged_states_are_features_of_the_nodes_asked_for(tmp_path):
    from composer.behaviour import observe
    from composer.logstates import logged_states

    for node, text in (("kv-1", "served 3 requests\nserved 4 requests\n"),
                       ("kv-2", b"\xff\xfe binary junk 12\n"), ("client-1", "driver 5\n")):
        (tmp_path / "logs" / node).mkdir(parents=True)
        path = tmp_path / "logs" / node / "service-1.stderr"
        path.write_bytes(text if isinstance(text, bytes) else text.encode())
    states = logged_states(tmp_path, ["kv-1", "kv-2", "gone-1"])
    assert states == {"served <n> requests", "\ufffd\ufffd binary junk <n>"}
    features = observe([], [], logged=states).features
    assert "log served <n> requests" in features
