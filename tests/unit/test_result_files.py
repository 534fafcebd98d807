"""summary.json validates against composer/summary.schema.json; junit.xml against the JUnit XSD.

Issue 6: CI systems read these files, so they are checked against the published schemas,
and the schema is checked to reject drift (a missing, mistyped or unknown field).
"""

from __future__ import annotations

import copy
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace

import jsonschema
import pytest
import xmlschema

import composer
from composer.behaviour import Behaviour
from composer.corpus import Corpus
from composer.explore import Exploration
from composer.findings import Finding
from composer.junit import write_junit
from composer.properties import PropertyTable
from composer.report import replay_command, write_summary
from composer.search import Arm
from composer.templates import Command, Template
from composer.timeline import Fault, Start, Timeline
from composer.utilization import Utilization

SCHEMA = json.loads((Path(composer.__file__).parent / "summary.schema.json").read_text())
XSD = xmlschema.XMLSchema(str(Path(__file__).parents[1] / "data" / "junit.xsd"))
KINDS = {"Always": ("always", True), "AlwaysOrUnreachable": ("always", False),
         "Sometimes": ("sometimes", True), "Reachable": ("reachability", True),
         "Unreachable": ("reachability", False)}
NASTY = 'bad <&>" \x01 value'  # needs escaping, and \x01 cannot be in XML 1.0 at all


def sdk(display: str, message: str, condition: bool = True, *, declared: bool = False,
        **extra) -> dict:
    """An ``antithesis_assert`` record as the official SDKs write it."""
    assert_type, must_hit = KINDS[display]
    return {"antithesis_assert": {
        "condition": condition, "must_hit": must_hit, "hit": not declared, "id": message,
        "message": message, "display_type": display, "assert_type": assert_type, **extra}}


def exploration(run_dir: Path, details: dict | None = None) -> Exploration:
    """Every kind of verdict: pass, fail, unreached must-hit, never-hit optional; one finding."""
    table = PropertyTable([sdk(d, m, declared=True) for d, m in (
        ("Sometimes", "leader elected"), ("Reachable", "snapshot taken"),
        ("Unreachable", "corrupt page read"), ("AlwaysOrUnreachable", "replica caught up"))])
    table.add_timeline([sdk("Always", "acked writes survive"),
                        sdk("Always", NASTY, False, details=details or {"key": "k1", "lost": 3},
                            location={"file": "check.py", "begin_line": 12}),
                        sdk("Sometimes", "quorum lost", False)])
    table.add_timeline([sdk("Always", "acked writes survive"), sdk("Unreachable", "split brain")])
    timeline = Timeline("main", 10.0, 7, first="first_setup", events=(
        Start(0.5, "parallel_driver_put", "client-1", 3),
        Fault(1.0, "partition", ("db-1", "db-2"), 2.0, shape="halves")),
        eventually="eventually_check")
    used = Utilization()
    used.declare(Template("main", Path("/t"), (
        Command("parallel_driver_put", "parallel_driver", Path("/t/p")),
        Command("eventually_check", "eventually", Path("/t/e")))))
    used.add([{"what": "start", "command": "parallel_driver_put"},
              {"what": "fault", "kind": "partition", "targets": ["db-1"]},
              {"what": "exit", "command": "parallel_driver_put", "status": "exited"}])
    corpus = Corpus()
    corpus.consider(1, timeline, Behaviour(frozenset({"assert pass acked", "fault kill db-1"}),
                                           {"queue depth": 2.0}), "fresh", None, 1.234)
    corpus.consider(2, timeline, Behaviour(frozenset({"assert fail " + NASTY}), {}),
                    "fault after hit+move", 1, 4.2)
    sources = {"fresh": Arm(), "fault after hit": Arm()}
    sources["fresh"].update(True)
    sources["fault after hit"].update(True)
    finding = Finding(NASTY, timeline, timeline, run_dir / "timelines" / "00002", 4.2, 2,
                      reproduced=3, reruns=5, replay=run_dir / "replays" / "bad.json",
                      lineage=[(2, "fault after hit+move"), (1, "fresh")])
    return Exploration(run_dir, table, {NASTY: finding}, timelines=2, elapsed=12.345,
                       utilization=used, corpus=corpus, sources=sources, jobs=3,
                       lost=[(3, "WorkerCrashedError: " + NASTY)], search_seconds=0.25)


def summary_of(run_dir: Path, **kwargs) -> dict:
    """What the real ``write_summary`` writes for ``exploration(...)``."""
    project = SimpleNamespace(name="kv", root=run_dir.parent)
    path = write_summary(run_dir, project=project, backend="local", seed=42,
                         exploration=exploration(run_dir, **kwargs), exit_code=1,
                         argv=["explore", "--seed", "42"])
    return json.loads(path.read_text())


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return tmp_path / "20260102-030405-beef"


# --- summary.json ------------------------------------------------------------------

def test_the_schema_is_a_valid_draft_2020_12_schema():
    jsonschema.Draft202012Validator.check_schema(SCHEMA)


def test_a_real_summary_validates(run_dir):
    summary = summary_of(run_dir)
    assert summary["version"] == 3 and "utilization" in summary
    assert summary["search"]["kept"] == 2 and len(summary["search"]["over_time"]) == 2
    assert summary["findings"][0]["lineage"][-1] == {"timeline": 1, "origin": "fresh"}
    jsonschema.Draft202012Validator(SCHEMA).validate(summary)


def test_a_summary_of_a_random_search_with_nothing_kept_validates(tmp_path):
    """The baseline: no corpus entries, a "random" source, a finding without a lineage."""
    run_dir = tmp_path / "run"
    summary = summary_of(run_dir)
    summary["search"].update(generator="random", behaviours=0, kept=0, over_time=[],
                             corpus=[], sources=[{"source": "random", "tries": 9, "finds": 0}])
    summary["findings"][0]["lineage"] = []
    jsonschema.Draft202012Validator(SCHEMA).validate(summary)


@pytest.mark.parametrize("break_it", [
    lambda s: s.pop("seed"),
    lambda s: s["properties"][0].pop("status"),
    lambda s: s["utilization"].pop("never_completed"),
    lambda s: s.update(timelines="2"),
    lambda s: s.update(version=2),
    lambda s: s["findings"][0].update(reruns=None),
    lambda s: s["utilization"]["commands"]["parallel_driver_put"].update(kind="driver"),
    lambda s: s.update(unknown_field=True),
    lambda s: s["properties"][0].update(extra=1),
    lambda s: s["findings"][0]["timeline"]["events"][0].update(color="red"),
    lambda s: s.pop("search"),
    lambda s: s["search"].pop("kept"),
    lambda s: s["search"].update(seeds=3),
    lambda s: s["search"].update(generator="hypothesis"),
    lambda s: s["search"]["over_time"][0].append(7),
    lambda s: s["search"]["over_time"].__setitem__(0, [1.0, 1, "2", 1]),
    lambda s: s["search"]["sources"][0].pop("finds"),
    lambda s: s["search"]["corpus"][0].update(picked=4),
    lambda s: s["search"]["corpus"][1].update(parent="1"),
    lambda s: s["findings"][0].pop("lineage"),
    lambda s: s["findings"][0].pop("first_timeline"),
    lambda s: s["findings"][0]["lineage"][0].update(parent=1),
], ids=["missing", "missing-nested", "missing-utilization", "wrong-type", "old-version",
        "wrong-type-nested", "bad-kind", "unknown", "unknown-nested", "unknown-event-field",
        "missing-search", "missing-in-search", "unknown-in-search", "bad-generator",
        "long-point", "bad-point", "missing-in-source", "unknown-in-corpus",
        "bad-parent", "missing-lineage", "missing-first-timeline", "unknown-in-lineage"])
def test_the_schema_rejects_drift(run_dir, break_it):
    summary = summary_of(run_dir)
    broken = copy.deepcopy(summary)
    break_it(broken)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.Draft202012Validator(SCHEMA).validate(broken)


def test_every_field_is_documented():
    def visit(node: dict, where: str) -> None:
        for name, sub in node.get("properties", {}).items():
            assert "description" in sub or "$ref" in sub, f"{where}.{name} has no description"
            visit(sub, f"{where}.{name}")
        for name, sub in node.get("$defs", {}).items():
            visit(sub, f"$defs.{name}")
        for sub in [*node.get("oneOf", []), *node.get("prefixItems", []), node.get("items"),
                    node.get("additionalProperties")]:
            if isinstance(sub, dict):
                visit(sub, where)
    visit(SCHEMA, "$")


# --- junit.xml ---------------------------------------------------------------------

def cases(path: Path) -> dict[str, ET.Element]:
    return {case.get("name"): case for case in ET.parse(path).getroot().iter("testcase")}


def test_junit_validates_against_the_xsd_and_counts_failures(run_dir):
    path = write_junit(run_dir, summary_of(run_dir))
    assert path == run_dir / "junit.xml"
    XSD.validate(str(path))
    suite = ET.parse(path).getroot()
    assert suite.tag == "testsuite" and suite.get("name") == "composer: kv"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"),
            suite.get("skipped")) == ("8", "5", "0", "0")
    assert suite.get("time") == "12.350" and suite.get("timestamp") == "2026-01-02T03:04:05"
    assert {p.get("name"): p.get("value") for p in suite.iter("property")} == {
        "backend": "local", "seed": "42", "composer": composer.__version__}


def test_failing_and_unreached_properties_carry_failures_and_passing_ones_do_not(run_dir):
    found = cases(write_junit(run_dir, summary_of(run_dir)))
    failures = {name: case.find("failure") for name, case in found.items()}
    for name in ("acked writes survive", "corrupt page read", "replica caught up"):
        assert failures[name] is None and len(found[name]) == 0, name
    for name in ("leader elected", "snapshot taken"):
        assert failures[name].attrib == {"type": "unreached", "message": "never reached"}
    assert failures["quorum lost"].attrib == {"type": "Sometimes",
                                              "message": "never true in 1 evaluation(s)"}
    assert failures["split brain"].attrib == {"type": "Unreachable",
                                              "message": "reached 1 time(s)"}
    assert found["split brain"].get("classname") == "kv.Unreachable"
    assert "first failure" not in failures["split brain"].text  # the SDK gave no details
    assert all(case.get("time") == "0" for case in found.values())


def test_a_failure_tells_counts_details_the_shrunk_timeline_and_how_to_replay(run_dir):
    summary = summary_of(run_dir)
    bad = cases(write_junit(run_dir, summary))[NASTY.replace("\x01", "")]
    failure = bad.find("failure")
    assert failure.attrib == {"type": "Always", "message": "false in 1 of 1 evaluation(s)"}
    body = failure.text
    assert body.startswith('Always "bad <&>"  value": 0 passed, 1 failed, hit in 1 timeline(s)')
    assert "0 passed, 1 failed" in body and '"lost": 3' in body and "check.py" in body
    assert "start     parallel_driver_put on client-1 (seed 3)" in body
    assert "partition" in body and "first_setup" in body and "eventually_check" in body
    assert "reproduced in 3/5 re-runs" in body
    assert replay_command(Path(summary["findings"][0]["replay"])) in body


def test_awkward_characters_round_trip_and_illegal_ones_are_dropped(run_dir):
    path = write_junit(run_dir, summary_of(run_dir))
    XSD.validate(str(path))
    assert b"\x01" not in path.read_bytes()
    assert 'bad <&>"  value' in cases(path)


def test_huge_failure_details_are_truncated(run_dir):
    summary = summary_of(run_dir, details={"log": "x" * 100_000})
    body = cases(write_junit(run_dir, summary))[NASTY.replace("\x01", "")].find("failure").text
    assert "(truncated)" in body and len(body) < 10_000


def test_no_timestamp_when_the_run_directory_does_not_say(tmp_path):
    run_dir = tmp_path / "somewhere"
    path = write_junit(run_dir, summary_of(run_dir))
    XSD.validate(str(path))
    assert "timestamp" not in ET.parse(path).getroot().attrib
