"""Tests of the ``sdk`` package: records written, dedupe, concurrency, randomness.

Each behaviour that depends on process state runs in a fresh subprocess with the
output variables set, as a driver would; pure serialisation is also fuzzed in-process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # the SDK is importable from the repository root, as drivers see it
    sys.path.insert(0, str(ROOT))

import composer_sdk as sdk  # noqa: E402
from composer_sdk import _output, _tracking  # noqa: E402

_OUTPUT_VARS = ("COMPOSER_SDK_OUTPUT", "ANTITHESIS_SDK_LOCAL_OUTPUT", "COMPOSER_SEED")


def run(code: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter that imports the SDK from the repository."""
    full_env = {k: v for k, v in os.environ.items() if k not in _OUTPUT_VARS}
    full_env["PYTHONPATH"] = os.pathsep.join([str(ROOT), full_env.get("PYTHONPATH", "")])
    full_env.update(env)
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], cwd=tmp_path, env=full_env,
        capture_output=True, text=True, timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc


def records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def asserts(recs: list[dict]) -> list[dict]:
    return [r["antithesis_assert"] for r in recs if "antithesis_assert" in r]


BASIC = [
    ("always(True, 'm')", "Always", "always", True, True),
    ("always(False, 'm')", "Always", "always", True, False),
    ("always_or_unreachable(False, 'm')", "AlwaysOrUnreachable", "always", False, False),
    ("sometimes(True, 'm')", "Sometimes", "sometimes", True, True),
    ("reachable('m')", "Reachable", "reachability", True, True),
    ("unreachable('m')", "Unreachable", "reachability", False, False),
    ("always_greater_than(2, 1, 'm')", "Always", "always", True, True),
    ("always_greater_than_or_equal_to(1, 2, 'm')", "Always", "always", True, False),
    ("always_less_than(1, 2, 'm')", "Always", "always", True, True),
    ("always_less_than_or_equal_to(3, 2, 'm')", "Always", "always", True, False),
    ("sometimes_greater_than(2, 1, 'm')", "Sometimes", "sometimes", True, True),
    ("sometimes_greater_than_or_equal_to(1, 2, 'm')", "Sometimes", "sometimes", True, False),
    ("sometimes_less_than(1, 2, 'm')", "Sometimes", "sometimes", True, True),
    ("sometimes_less_than_or_equal_to(3, 2, 'm')", "Sometimes", "sometimes", True, False),
    ("always_some({'a': False, 'b': True}, 'm')", "Always", "always", True, True),
    ("sometimes_all({'a': False, 'b': True}, 'm')", "Sometimes", "sometimes", True, False),
]


@pytest.mark.parametrize("call,display,assert_type,must_hit,condition", BASIC)
def test_each_assertion_writes_its_record(tmp_path, call, display, assert_type, must_hit, condition):
    out = tmp_path / "sdk.jsonl"
    run(f"import composer_sdk as sdk\nsdk.{call}\n", tmp_path, COMPOSER_SDK_OUTPUT=str(out))
    recs = records(out)
    assert list(recs[0]) == ["antithesis_sdk"]
    assert recs[0]["antithesis_sdk"]["protocol_version"] == "1.1.0"
    [rec] = asserts(recs)
    assert rec == {**rec, "hit": True, "must_hit": must_hit, "assert_type": assert_type,
                   "display_type": display, "message": "m", "id": "m", "condition": condition}
    assert rec["location"] == {"file": "<string>", "function": "<module>", "class": "",
                               "begin_line": 2, "begin_column": 0}


def test_lifecycle_records_and_module_imports(tmp_path):
    out = tmp_path / "sdk.jsonl"
    run("""
        import composer_sdk as sdk
        from composer_sdk.assertions import always
        from composer_sdk.lifecycle import setup_complete, send_event
        always(True, "via submodule", {"n": 1})
        setup_complete({"nodes": 3})
        sdk.setup_complete()
        send_event("leader_elected", {"term": 2})
        sdk.send_event("bare")
    """, tmp_path, COMPOSER_SDK_OUTPUT=str(out))
    recs = records(out)
    assert asserts(recs)[0]["details"] == {"n": 1}
    assert recs[2:] == [
        {"antithesis_setup": {"status": "complete", "details": {"nodes": 3}}},
        {"antithesis_setup": {"status": "complete"}},
        {"leader_elected": {"term": 2}},
        {"bare": {}},
    ]


def test_antithesis_variable_alone_is_honoured(tmp_path):
    out = tmp_path / "local.jsonl"
    run("import composer_sdk as sdk; sdk.reachable('here')", tmp_path, ANTITHESIS_SDK_LOCAL_OUTPUT=str(out))
    assert [r["message"] for r in asserts(records(out))] == ["here"]


def test_composer_variable_wins_over_antithesis_one(tmp_path):
    ours, theirs = tmp_path / "ours.jsonl", tmp_path / "theirs.jsonl"
    run("import composer_sdk as sdk; sdk.reachable('here')", tmp_path,
        COMPOSER_SDK_OUTPUT=str(ours), ANTITHESIS_SDK_LOCAL_OUTPUT=str(theirs))
    assert ours.exists() and not theirs.exists()


def test_no_output_configured_is_a_silent_no_op(tmp_path):
    proc = run("""
        import composer_sdk as sdk
        sdk.always(False, "m"); sdk.sometimes_all({"a": 1}, "b"); sdk.setup_complete()
        sdk.send_event("e", {"x": object()}); sdk.get_random()
    """, tmp_path)
    assert proc.stdout == "" and proc.stderr == ""
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_does_not_crash(tmp_path):
    run("import composer_sdk as sdk; sdk.always(False, 'm'); sdk.setup_complete()", tmp_path,
        COMPOSER_SDK_OUTPUT=str(tmp_path / "missing-dir" / "sdk.jsonl"))


def test_first_pass_and_first_fail_only_per_message(tmp_path):
    out = tmp_path / "sdk.jsonl"
    run("""
        import composer_sdk as sdk
        for i in range(100):
            sdk.always(i % 3 != 0, "flaky", {"i": i})
            sdk.sometimes(i > 50, "late", {"i": i})
            sdk.reachable("loop")
            sdk.always_less_than(i, 1000, "bounded")
    """, tmp_path, COMPOSER_SDK_OUTPUT=str(out))
    recs = records(out)
    assert sum("antithesis_sdk" in r for r in recs) == 1
    seen = [(a["message"], a["condition"], a["details"]["i"] if "i" in a.get("details", {}) else None)
            for a in asserts(recs)]
    assert seen == [("flaky", False, 0), ("late", False, 0), ("loop", True, None),
                    ("bounded", True, None), ("flaky", True, 1), ("late", True, 51)]


def test_numeric_guidance_is_written_only_when_it_improves(tmp_path):
    out = tmp_path / "sdk.jsonl"
    run("""
        import composer_sdk as sdk
        for left in [10, 8, 9, 5, 7, 6]:
            sdk.always_greater_than(left, 3, "gt")      # minimise left - right
        for left in [1, 4, 2, 6]:
            sdk.sometimes_greater_than(left, 9, "sgt")  # maximise left - right
        sdk.always_less_than(float("nan"), 3, "nan")
    """, tmp_path, COMPOSER_SDK_OUTPUT=str(out))
    recs = records(out)
    guidance = [(g["id"], g["maximize"], g["guidance_data"]["left"])
                for r in recs if (g := r.get("antithesis_guidance"))]
    assert guidance == [("gt", False, 10), ("gt", False, 8), ("gt", False, 5),
                        ("sgt", True, 1), ("sgt", True, 4), ("sgt", True, 6)]
    assert {"code": 6004, "context": "nan"}.items() <= recs[-1]["antithesis_warning"].items()


def test_unserialisable_details_never_raise(tmp_path):
    out = tmp_path / "sdk.jsonl"
    run("""
        import collections.abc, composer_sdk as sdk
        class Exploding(collections.abc.Mapping):
            def __getitem__(self, k): raise RuntimeError("boom")
            def __iter__(self): raise RuntimeError("boom")
            def __len__(self): return 1
        class BadStr(Exception):
            def __str__(self): raise ValueError
        sdk.always(True, "obj", {"o": object()})
        sdk.always(True, "explodes", Exploding())
        sdk.sometimes(True, "nan", {"x": float("nan"), "big": 2**64})
        sdk.send_event("ev", {"s": {1, 2}})
        sdk.setup_complete({(1, 2): "tuple key"})
        sdk.always_greater_than("b", "a", "strings")  # comparable, but not numbers
        sdk.sometimes(True, "scalar", "just a string")
        print("survived")
    """, tmp_path, COMPOSER_SDK_OUTPUT=str(out))
    recs = records(out)
    errors = [r["antithesis_error"]["context"] for r in recs if "antithesis_error" in r]
    assert errors == ["obj", "explodes", "ev", "setup_complete"]
    by_id = {a["id"]: a for a in asserts(recs)}
    assert "details" not in by_id["obj"] and "details" not in by_id["explodes"]
    assert by_id["nan"]["details"] == {"x": "NaN", "big": 2**64}
    assert by_id["scalar"]["details"] == {"value": "just a string"}
    assert {"ev": {}} in recs and {"antithesis_setup": {"status": "complete"}} in recs


def test_concurrent_writers_leave_every_line_whole(tmp_path):
    out = tmp_path / "sdk.jsonl"
    code = """
        import os, threading, composer_sdk as sdk
        pid = os.getpid()
        pad = "x" * 300
        def work(t):
            for i in range(125):
                sdk.always(True, f"{pid}-{t}-{i}", {"pad": pad})
        threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
        [t.start() for t in threads]; [t.join() for t in threads]
    """
    env = {k: v for k, v in os.environ.items() if k not in _OUTPUT_VARS}
    env.update(PYTHONPATH=str(ROOT), COMPOSER_SDK_OUTPUT=str(out))
    procs = [subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)], env=env) for _ in range(8)]
    assert all(p.wait(timeout=60) == 0 for p in procs)
    lines = out.read_bytes().split(b"\n")
    assert lines[-1] == b""
    recs = [json.loads(line) for line in lines[:-1]]  # raises on any torn line
    assert sum("antithesis_sdk" in r for r in recs) == 8
    messages = [a["message"] for a in asserts(recs)]
    assert len(messages) == len(set(messages)) == 8 * 500


def test_forked_child_is_its_own_process(tmp_path):
    out = tmp_path / "sdk.jsonl"
    run("""
        import os, composer_sdk as sdk
        sdk.always(True, "both")
        pid = os.fork()
        if pid == 0:
            sdk.always(True, "both"); os._exit(0)
        os.waitpid(pid, 0)
    """, tmp_path, COMPOSER_SDK_OUTPUT=str(out))
    recs = records(out)
    assert [next(iter(r)) for r in recs] == ["antithesis_sdk", "antithesis_assert"] * 2


RANDOM_CODE = """
    import composer_sdk as sdk
    print([sdk.get_random() for _ in range(20)], [sdk.random_choice("abcdefg") for _ in range(20)])
"""


def test_random_is_deterministic_under_composer_seed(tmp_path):
    first = run(RANDOM_CODE, tmp_path, COMPOSER_SEED="42").stdout
    assert run(RANDOM_CODE, tmp_path, COMPOSER_SEED="42").stdout == first
    assert run(RANDOM_CODE, tmp_path, COMPOSER_SEED="43").stdout != first
    assert run(RANDOM_CODE, tmp_path).stdout != run(RANDOM_CODE, tmp_path).stdout
    values = eval(first.split("] [")[0] + "]")
    assert all(0 <= v < 2**64 for v in values)


@given(things=st.lists(st.integers(), min_size=1, max_size=20))
def test_random_choice_picks_an_element(things):
    assert sdk.random_choice(things) in things


def test_random_choice_of_nothing_raises_index_error():
    with pytest.raises(IndexError):
        sdk.random_choice([])


_json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))
_weird = st.one_of(_json_leaf, st.builds(object), st.sets(st.integers(), max_size=2),
                   st.tuples(st.integers()), st.binary(max_size=3))
_details = st.recursive(
    _weird, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                    st.dictionaries(st.one_of(st.text(max_size=3), st.integers()), inner, max_size=3)),
    max_leaves=8,
)


@settings(max_examples=200, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(details=_details, condition=st.booleans(), message=st.text(max_size=10))
def test_any_details_give_valid_json_lines_and_never_raise(tmp_path, monkeypatch, details, condition, message):
    out = tmp_path / "fuzz.jsonl"
    out.unlink(missing_ok=True)
    monkeypatch.setenv("COMPOSER_SDK_OUTPUT", str(out))
    _output._reset()
    _tracking._reset()
    try:
        sdk.always(condition, message, details)
        sdk.send_event(message or "e", details)
        sdk.setup_complete(details)
        sdk.always_less_than(1, 2, message, details)
    finally:
        _output._reset()
    for line in out.read_text().splitlines():
        assert isinstance(json.loads(line, parse_constant=_strict), dict)


def _strict(token: str):
    raise AssertionError(f"non-standard JSON token {token} written")
