"""``junit.xml`` from a run's summary, so CI systems show failing properties natively.

One ``<testsuite>`` per run and one ``<testcase>`` per property, valid against the Jenkins
xUnit plugin's junit-10.xsd (tests/data/junit.xsd). Built from the summary dict alone
(``composer.report.write_summary``, version 2), so it can be regenerated from any
``summary.json``. Imports report and timeline; nothing runs here.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from composer.report import replay_command
from composer.timeline import Timeline

__all__ = ["write_junit"]

#: Characters XML 1.0 cannot carry at all, not even escaped (controls, lone surrogates).
_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: How much of a property's first failure details goes in the failure body.
_DETAILS_LIMIT = 4096
#: The run directory's name starts with its local start time (``cli._run_dir``).
_RUN_STAMP = re.compile(r"(\d{4})(\d{2})(\d{2})-(\d{2})(\d{2})(\d{2})")


def _clean(value: Any) -> str:
    """``value`` as text XML 1.0 can hold; ElementTree escapes the rest."""
    return _ILLEGAL.sub("", str(value))


def _finding_lines(finding: dict[str, Any]) -> list[str]:
    """The shrunk timeline, its reproduction rate and how to replay it."""
    lines = [f"shrunk timeline ({finding['shrunk_timeline_size']} events; found after "
             f"{finding['found_after_seconds']:g}s in a timeline of "
             f"{finding['first_timeline_size']} events):"]
    try:
        lines += Timeline.from_json(finding["timeline"]).describe()
    except ValueError as exc:  # a hand-edited summary: say so rather than fail the report
        lines.append(f"  (unreadable timeline: {exc})")
    if finding.get("reruns"):
        lines.append(f"reproduced in {finding['reproduced']}/{finding['reruns']} re-runs")
    lines.append(f"logs: {finding['directory']}")
    if finding.get("replay"):
        lines.append(f"replay: {replay_command(Path(finding['replay']))}")
    return lines


def _name(prop: dict[str, Any]) -> str:
    """The property as a person reads it: type, message, and id if it differs."""
    named = f'{prop["display_type"]} "{prop["message"]}"'
    return named if prop["id"] == prop["message"] else f'{named} (id "{prop["id"]}")'


def _verdict(prop: dict[str, Any]) -> str:
    """One line on why a hit property fails, worded for its kind."""
    if prop["assert_type"] == "sometimes":
        return f"never true in {prop['failures']} evaluation(s)"
    if prop["assert_type"] == "reachability":
        return f"reached {prop['failures']} time(s)"
    return f"false in {prop['failures']} of {prop['passes'] + prop['failures']} evaluation(s)"


def _failure_body(prop: dict[str, Any], finding: dict[str, Any] | None) -> str:
    """Counts, the first failure's details (truncated) and the finding, if any."""
    lines = [f"{_name(prop)}: {prop['passes']} passed, {prop['failures']} failed, "
             f"hit in {prop['timelines_hit']} timeline(s)"]
    first = prop.get("first_failure") or {}
    if any(value is not None for value in first.values()):
        details = json.dumps(first, indent=2, default=str)
        if len(details) > _DETAILS_LIMIT:
            details = details[:_DETAILS_LIMIT] + "\n... (truncated)"
        lines += ["first failure:", details]
    if finding is not None:
        lines += _finding_lines(finding)
    return "\n".join(lines) + "\n"


def _testcase(suite: ET.Element, prop: dict[str, Any], project: str,
              finding: dict[str, Any] | None) -> bool:
    """Add one property's testcase; return whether it failed."""
    case = ET.SubElement(suite, "testcase", classname=_clean(f"{project}.{prop['display_type']}"),
                         name=_clean(prop["message"]), time="0")
    if prop["status"] == "fail":
        failure = ET.SubElement(case, "failure", type=_clean(prop["display_type"]),
                                message=_verdict(prop))
        failure.text = _clean(_failure_body(prop, finding))
        return True
    if prop["status"] == "unknown":  # a checker ran out of time: not a pass, no failure
        skipped = ET.SubElement(case, "skipped", message="unknown: not judged in time")
        skipped.text = _clean(f"{_name(prop)} could not be judged in {prop.get('unknowns', 0)} "
                              "timeline(s) (a checker's time limit ran out) and none showed "
                              "it false.\n")
        return False
    if prop["status"] == "unreached":  # only must-hit properties are ever unreached
        failure = ET.SubElement(case, "failure", type="unreached", message="never reached")
        failure.text = _clean(f"{_name(prop)} was never reached in any timeline; "
                              f"it must be, so the run fails.\n")
        return True
    return False


def write_junit(run_dir: Path, summary: dict[str, Any]) -> Path:
    """Write ``run_dir/junit.xml`` from a version-2 summary dict and return its path."""
    project = summary["project"]
    findings = {f["property"]: f for f in summary.get("findings", [])}
    suite = ET.Element("testsuite", name=_clean(f"composer: {project}"))
    props = ET.SubElement(suite, "properties")
    seed = summary.get("seed")
    for name, value in (("backend", summary.get("backend")),
                        ("seed", "none" if seed is None else seed),
                        ("composer", summary.get("composer"))):
        ET.SubElement(props, "property", name=name, value=_clean(value))
    failed = sum(_testcase(suite, p, project, findings.get(p["id"])) for p in summary["properties"])
    suite.set("tests", str(len(summary["properties"])))
    suite.set("failures", str(failed))
    suite.set("errors", "0")
    suite.set("skipped", "0")
    suite.set("time", f"{max(float(summary.get('elapsed_seconds') or 0), 0.0):.3f}")
    if stamp := _RUN_STAMP.match(run_dir.name):
        y, mo, d, h, mi, s = stamp.groups()
        suite.set("timestamp", f"{y}-{mo}-{d}T{h}:{mi}:{s}")
    ET.indent(suite)
    path = run_dir / "junit.xml"
    run_dir.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(suite).write(path, encoding="utf-8", xml_declaration=True)
    return path
