"""``sdk`` against the official ``antithesis`` 0.4.0 package, call for call.

Each scenario runs once under the official SDK and once under ours (through the
official module layout and through the flat ``import composer_sdk as sdk``), each in its own
interpreter writing its own file. Both files must read the same way through
``composer.properties`` and match record for record, apart from the SDK's own
version strings. The code runs through ``python -c``, so both report the same
call-site locations too.
"""

from __future__ import annotations

import inspect
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from composer.properties import PropertyTable, guidance, read_records, setup_completed, violations

antithesis = pytest.importorskip("antithesis.assertions")
ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import composer_sdk as sdk  # noqa: E402

PUBLIC = {
    "assertions": [
        "always", "always_or_unreachable", "sometimes", "reachable", "unreachable",
        "always_greater_than", "always_greater_than_or_equal_to", "always_less_than",
        "always_less_than_or_equal_to", "sometimes_greater_than", "sometimes_greater_than_or_equal_to",
        "sometimes_less_than", "sometimes_less_than_or_equal_to", "always_some", "sometimes_all", "assert_raw",
    ],
    "lifecycle": ["setup_complete", "send_event"],
    "random": ["get_random", "random_choice"],
}

PRELUDES = {  # one line each, so line numbers agree
    "official": "from antithesis import assertions as A, lifecycle as L, random as R",
    "modules": "from composer_sdk import assertions as A, lifecycle as L, random as R",
    "flat": "import composer_sdk as A, composer_sdk as L, composer_sdk as R",
}

NUMERIC = ["always_greater_than", "always_greater_than_or_equal_to", "always_less_than",
           "always_less_than_or_equal_to", "sometimes_greater_than", "sometimes_greater_than_or_equal_to",
           "sometimes_less_than", "sometimes_less_than_or_equal_to"]

SCENARIOS = {
    "always": """
        for i in range(5):
            A.always(i != 3, "a", {"i": i})
        A.always(True, "b")
        class C:
            def m(self): A.always(False, "b", {"in": "method"})
        C().m()
    """,
    "always_or_unreachable": 'A.always_or_unreachable(True, "o"); A.always_or_unreachable(False, "o", {"x": [1]})',
    "sometimes": """
        for i in range(4):
            A.sometimes(i == 2, "s", {"i": i})
        A.sometimes(False, "never true")
    """,
    "reachable": 'A.reachable("r"); A.reachable("r", {"again": True})',
    "unreachable": 'A.unreachable("u", {"why": "bug"}); A.unreachable("u")',
    **{name: f"""
        for left in [5, 1, 9, 3, 3, -2, 7]:
            A.{name}(left, 3, "{name}", {{"step": left}})
        A.{name}(2.5, 2, "{name} float")
        A.{name}(float("inf"), 2, "{name} inf")
    """ for name in NUMERIC},
    "always_some": """
        A.always_some({"a": True, "b": False}, "some")
        A.always_some({"a": False, "b": False}, "some", {"d": 1})
        A.always_some({"a": False, "b": False}, "some")
    """,
    "sometimes_all": """
        A.sometimes_all({"a": True, "b": False}, "all")
        A.sometimes_all({"a": True, "b": True}, "all", {"d": 1})
    """,
    "assert_raw": """
        A.assert_raw(False, "raw", None, "f.py", "fn", "K", 7, 2, False, True, "sometimes", "Sometimes", "raw")
        A.assert_raw(True, "raw", {"d": 1}, "f.py", "fn", "K", 7, 2, True, True, "sometimes", "Sometimes", "raw")
    """,
    "setup_complete": 'L.setup_complete(); L.setup_complete({"nodes": 3}); L.setup_complete("ready")',
    "send_event": 'L.send_event("started"); L.send_event("leader", {"term": 2}); L.send_event("n", 5)',
    "random": """
        v = R.get_random(); assert 0 <= v < 2**64
        assert R.random_choice(["x", "y"]) in ("x", "y")
        assert R.random_choice([1]) == 1
    """,
    "awkward details": """
        import collections.abc
        class Exploding(collections.abc.Mapping):
            def __getitem__(self, k): raise RuntimeError("boom")
            def __iter__(self): raise RuntimeError("boom")
            def __len__(self): return 1
        A.always(True, "obj", {"o": object()})
        A.always(False, "explodes", Exploding())
        A.sometimes(True, "nan", {"x": float("nan"), "y": float("-inf")})
        A.sometimes(False, "nan", {"x": float("nan")})
        A.reachable("big", {"n": 2**70, "m": -(2**60)})
        A.always_greater_than(10**20, 1, "big guidance")
        L.send_event("bad event", {"s": {1}})
        L.setup_complete({(1, 2): "tuple key"})
        A.always(True, "nested", {"a": {"b": [1, 2.5, None, "s"]}, "u": "\\u00e9"})
    """,
}


def run_scenario(flavour: str, code: str, out: Path) -> None:
    variable = "ANTITHESIS_SDK_LOCAL_OUTPUT" if flavour == "official" else "COMPOSER_SDK_OUTPUT"
    env = {k: v for k, v in os.environ.items()
           if k not in ("ANTITHESIS_SDK_LOCAL_OUTPUT", "COMPOSER_SDK_OUTPUT", "ANTITHESIS_OUTPUT_DIR",
                        "ANTITHESIS_ASSERTION_CATALOG")}
    env.update({variable: str(out), "PYTHONPATH": os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])})
    source = PRELUDES[flavour] + "\n" + textwrap.dedent(code).strip() + "\n"
    proc = subprocess.run([sys.executable, "-c", source], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def normalised(records: list[dict]) -> list[dict]:
    """Drop what legitimately differs: the SDK's version and the interpreter string.

    The official SDK writes its version record on import; ours on the first record,
    so a process that writes nothing leaves no file. A lone version record is nothing.
    """
    if records and all("antithesis_sdk" in r for r in records):
        return []
    result = []
    for record in records:
        if "antithesis_sdk" in record:
            record = {"antithesis_sdk": {**record["antithesis_sdk"], "sdk_version": "*",
                                         "language": {**record["antithesis_sdk"]["language"], "version": "*"}}}
        result.append(record)
    return result


def reading(records: list[dict]) -> dict:
    table = PropertyTable()
    table.add_timeline(records)
    return {
        "table": table.to_json(),
        "violations": violations(records),
        "guidance": guidance(records),
        "setup": setup_completed(records),
        "events": [k for r in records for k in r if not k.startswith("antithesis_")],
    }


@pytest.mark.parametrize("flavour", ["modules", "flat"])
@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_same_records_and_same_reading(tmp_path, scenario, flavour):
    official, ours = tmp_path / "official.jsonl", tmp_path / "ours.jsonl"
    run_scenario("official", SCENARIOS[scenario], official)
    run_scenario(flavour, SCENARIOS[scenario], ours)
    theirs_records, theirs_garbage = read_records(official)
    our_records, our_garbage = read_records(ours)
    assert theirs_garbage == our_garbage == 0
    assert len(theirs_records) > 1 or scenario == "random"
    assert reading(our_records) == reading(theirs_records)
    assert normalised(our_records) == normalised(theirs_records)
    if our_records:
        assert our_records[0]["antithesis_sdk"]["protocol_version"] == "1.1.0"


def test_every_public_function_has_a_scenario():
    covered = " ".join(SCENARIOS.values())
    missing = [n for names in PUBLIC.values() for n in names if f".{n}(" not in covered]
    assert missing == []


@pytest.mark.parametrize("module,name", [(m, n) for m, names in PUBLIC.items() for n in names])
def test_same_signature(module, name):
    official = getattr(pytest.importorskip(f"antithesis.{module}"), name)
    mirrored = getattr(getattr(sdk, module), name)
    assert getattr(sdk, name) is mirrored
    assert name in sdk.__all__

    def shape(fn):
        return [(p.name, p.kind, p.default) for p in inspect.signature(fn).parameters.values()]

    assert shape(mirrored) == shape(official)


def test_antithesis_random_class_is_mirrored():
    official = pytest.importorskip("antithesis.random").AntithesisRandom
    assert issubclass(sdk.AntithesisRandom, type(official()).__mro__[1])
    value = sdk.AntithesisRandom().random()
    assert 0.0 <= value < 1.0
