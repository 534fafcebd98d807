"""``report.html``: one self-contained page per run, built from ``summary.json``.

Inline CSS and SVG only: no script, no network, no external font, so it opens from
``file://`` anywhere and can be attached to a CI run. Its size does not grow with the
number of timelines: the summary holds one entry per property and a few findings; only
the findings' own timeline directories are read (their ``run.json``, the failing SDK
record, the tail of the failing process's logs). This module decides what is shown
(verdicts, groups, truncation, the failure location) as plain data; the markup is in
``report_templates/report.html.j2``, rendered with autoescape, so every user-written
string is escaped there. Imports report, builtin_properties, failure_location, timeline,
html_timeline (the chart and the template environment) and html_search (the search
section).
"""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

from composer import html_history as hh
from composer import html_search as hs
from composer import html_timeline as ht
from composer.html_templates import environment
from composer.report import replay_command
from composer.builtin_properties import is_builtin
from composer.failure_location import Failure, locate_failure, tail
from composer.timeline import Timeline

__all__ = ["write_report", "render"]

_VERDICTS = {0: ("pass", "all properties hold"), 1: ("fail", "a property failed"),
             2: ("fail", "usage or configuration error"), 3: ("fail", "infrastructure error"),
             130: ("unreached", "interrupted")}
_GROUPS = (("always", "Always", "must hold every time they are evaluated"),
           ("sometimes", "Sometimes", "must be true at least once"),
           ("reachability", "Reachability", "code that must, or must never, be reached"),
           ("builtin", "Built-in (composer)", "checked by composer for every timeline"))
_DETAILS_LIMIT = 4000
_LOG_LINES = 40
_RUN_LOG = 500
_FAILING = "#c62828"


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from ``run_dir/summary.json``; return its path."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    path = run_dir / "report.html"
    partial = path.with_name(".report.html.partial")
    partial.write_text(render(summary, run_dir), encoding="utf-8")
    os.replace(partial, path)
    return path


def render(summary: dict, run_dir: Path) -> str:
    """Return the whole page for ``summary`` (``run_dir`` holds the timeline files)."""
    props = [p for p in summary.get("properties") or [] if isinstance(p, dict)]
    findings = [f for f in summary.get("findings") or [] if isinstance(f, dict)]
    anchors = {str(f.get("property")): f"finding-{i}" for i, f in enumerate(findings, 1)}
    by_status: dict[str, list[dict]] = {}
    for p in props:
        by_status.setdefault(str(p.get("status")), []).append(p)

    def named(status: str) -> list[dict]:
        return [{"type": p.get("display_type", ""), "text": p.get("message", "")}
                for p in by_status.get(status, [])]

    return environment().get_template("report.html.j2").render(
        title=f"composer: {summary.get('project', '?')}", header=_header(summary),
        properties=len(props),
        passing=len(props) - sum(len(by_status.get(s, [])) for s in ("fail", "unreached",
                                                                       "unknown")),
        failing=[_link(p, anchors) for p in by_status.get("fail", [])],
        unreached=named("unreached"), unknown=named("unknown"),
        groups=_groups(props, anchors),
        findings=[_finding_or_error(i, f, run_dir) for i, f in enumerate(findings, 1)],
        search=hs.section_data(summary.get("search")),
        utilization=_utilization(summary.get("utilization")),
        log_lines=_LOG_LINES)


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "?"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(round(s), 60)
    return f"{m} min {s} s" if m < 60 else f"{m // 60} h {m % 60} min"


def _header(s: dict) -> dict[str, Any]:
    """The run's verdict and identity (project, backend, seed, versions, command line)."""
    code = s.get("exit_code")
    badge, verdict = _VERDICTS.get(code, ("fail", "unknown exit code"))
    if s.get("stopped_early"):
        verdict += "; stopped early (Ctrl-C): results so far"
    return {"project": s.get("project", "?"), "project_dir": s.get("project_dir", ""),
            "backend": s.get("backend", "?"), "duration": _duration(s.get("elapsed_seconds")),
            "seed": s.get("seed") if s.get("seed") is not None else "none (random)",
            "timelines": s.get("timelines", "?"), "code": code, "badge": badge,
            "verdict": verdict,
            "versions": f"composer {s.get('composer', '?')}, Python {s.get('python', '?')}, "
                        f"{s.get('platform', '?')}; summary v{s.get('version', '?')}",
            "argv": shlex.join(["composer", *map(str, s.get("argv") or [])]),
            "garbage": s.get("garbage_sdk_lines") or None,
            "jobs": _jobs(s.get("search")),
            "lost": [t for t in s.get("lost_timelines") or [] if isinstance(t, dict)]}


def _jobs(search: Any) -> int:
    jobs = search.get("jobs") if isinstance(search, dict) else None
    return jobs if isinstance(jobs, int) and jobs > 0 else 1


def _group(prop: dict) -> str:
    message = str(prop.get("message", ""))
    if is_builtin(message):
        return "builtin"
    kind = prop.get("assert_type")
    return kind if kind in ("always", "sometimes", "reachability") else "always"


def _link(prop: dict, anchors: dict[str, str]) -> dict[str, Any]:
    """A property's type and message, and its finding's anchor (None: no finding)."""
    key = str(prop.get("id") or prop.get("message"))
    return {"type": prop.get("display_type", ""), "text": prop.get("message", key),
            "anchor": anchors.get(key) or anchors.get(str(prop.get("message")))}


def _details(value: Any) -> str:
    text = json.dumps(value, indent=1, default=str)
    if len(text) > _DETAILS_LIMIT:
        text = text[:_DETAILS_LIMIT] + f"\n… ({len(text) - _DETAILS_LIMIT} more characters)"
    return text


def _location(loc: Any) -> str:
    if not isinstance(loc, dict) or not loc.get("file") or loc.get("file") == "composer":
        return ""
    return f"{loc.get('file')}:{loc.get('begin_line', '?')}"


def _groups(props: list[dict], anchors: dict[str, str]) -> list[dict[str, Any]]:
    """The properties table, one group per kind: failing first, then unreached, passing."""
    order = {"fail": 0, "unreached": 1, "unknown": 2, "pass": 3}
    groups = []
    for key, name, blurb in _GROUPS:
        group = sorted((p for p in props if _group(p) == key),
                       key=lambda p: (order.get(p.get("status"), 0), str(p.get("message"))))
        if not group:
            continue
        rows = []
        for p in group:
            first = p.get("first_failure")
            where = _location(first.get("location")) if isinstance(first, dict) else ""
            shown = isinstance(first, dict) and (first.get("details") or where)
            rows.append({
                "status": p.get("status") if p.get("status") in order else "fail",
                "link": _link(p, anchors), "passes": p.get("passes", 0),
                "failures": p.get("failures", 0), "hit": p.get("timelines_hit", 0),
                "first": {"what": "first false" if key == "sometimes" else "first failure",
                          "where": where, "details": _details(first.get("details"))}
                if shown else None})
        groups.append({"name": name, "blurb": blurb, "rows": rows,
                       "failing": sum(p.get("status") == "fail" for p in group),
                       "unreached": sum(p.get("status") == "unreached" for p in group)})
    return groups


def _finding_or_error(i: int, finding: dict, run_dir: Path) -> dict[str, Any]:
    try:
        return _finding(i, finding, run_dir)
    except Exception as exc:  # a damaged run dir must not cost the rest of the report
        return {"number": i, "property": str(finding.get("property")),
                "broken": f"{type(exc).__name__}: {exc}"}


def _timeline_dir(finding: dict, run_dir: Path) -> Path | None:
    """The finding's timeline directory, also when the run directory was moved."""
    recorded = Path(str(finding.get("directory") or ""))
    for candidate in (recorded, run_dir / "timelines" / recorded.name):
        if recorded.name and (candidate / "run.json").is_file():
            return candidate
    return None


def _href(path: Path, run_dir: Path) -> str:
    try:
        rel = os.path.relpath(path, run_dir)
    except ValueError:
        rel = str(path)
    return Path(rel).as_posix()


def _finding(i: int, f: dict, run_dir: Path) -> dict[str, Any]:
    """One failing timeline: how it was found, its chart, its plan, log and failure."""
    prop = str(f.get("property"))
    plan = f.get("timeline") if isinstance(f.get("timeline"), dict) else {}
    reruns, reproduced = f.get("reruns") or 0, f.get("reproduced") or 0
    directory = _timeline_dir(f, run_dir)
    run: dict = json.loads((directory / "run.json").read_text()) if directory else {}
    failure = locate_failure(directory, prop, run) if directory else None
    if directory is not None:
        chart = ht.chart_from_run(run, ht._t(plan.get("length")) or None)
    else:
        chart = ht.chart_from_plan(plan)
    if failure is not None:
        for bar in chart.bars:
            bar.marked = bar.number is not None and bar.number == failure.invocation
        if failure.invocation is None:
            chart.marked_lane = failure.node
    try:
        described = "\n".join(Timeline.from_json(plan).describe())
    except ValueError as exc:
        described = f"(not a timeline: {exc})"
    log = run.get("log")
    return {
        "number": i, "property": prop, "broken": None,
        "found_after": _duration(f.get("found_after_seconds")),
        "found_by": hs.lineage_steps(f["lineage"]) if f.get("lineage") else None,
        "first_size": f.get("first_timeline_size", "?"),
        "shrunk_size": f.get("shrunk_timeline_size", "?"), "template": plan.get("template", "?"),
        "reruns": reruns, "reproduced": reproduced,
        "rate": 100 * reproduced / reruns if reruns else None,
        "cut_short": [str(w) for w in f["cut_short"]]
        if isinstance(f.get("cut_short"), list) else [],
        "replay": replay_command(Path(str(f["replay"]))) if f.get("replay") else None,
        "directory": str(directory) if directory is not None else None,
        "href": _href(directory, run_dir) if directory is not None else None,
        "setup_error": run.get("setup_error") or None,
        "svg": ht.layout(chart, f"timeline of the failing property {prop}"),
        "legend": _legend(chart), "described": described,
        "log": {"count": len(log), "text": "\n".join(json.dumps(e, default=str)
                                                     for e in log[:_RUN_LOG])} if log else None,
        "failure": _failure(failure, run_dir) if directory is not None else None}


def _legend(chart: ht.Chart) -> list[tuple[str, str, bool]]:
    """(colour, text, faded) of what the chart shows: statuses, faults, the failure."""
    statuses = dict.fromkeys(b.status for b in chart.bars)
    kinds = dict.fromkeys(b.kind for b in chart.bands)
    items = [(*ht.STATUS_COLOURS[s], False) for s in statuses]
    items += [(ht.FAULT_COLOURS.get(k, "#616161"), f"fault: {k}", True) for k in kinds]
    if any(b.marked for b in chart.bars) or chart.marked_lane:
        items.append((_FAILING, "failing assertion", False))
    return items


def _failure(failure: Failure | None, run_dir: Path) -> dict[str, Any] | None:
    """The failing record (where, its details) and the tails of its process's logs."""
    if failure is None:
        return None
    record = failure.record
    logs = []
    for path in failure.logs:
        lines = tail(path, _LOG_LINES)
        logs.append({"name": path.name, "href": _href(path, run_dir),
                     "text": "\n".join(lines) if lines else None,
                     "missing": "empty" if lines == [] else "none"})
    details = record.get("details")
    placed = hh.window(details) if isinstance(details, dict) else None
    return {"file": failure.file, "what": failure.what, "where": _location(record.get("location")),
            "details": _details(details) if details is not None else None, "logs": logs,
            "history": placed}


def _bars(counts: dict[str, int]) -> list[tuple[str, int, float]]:
    """(name, count, bar width in % of the largest) for a counts table."""
    top = max(counts.values(), default=0) or 1
    return [(k, v, 100 * v / top) for k, v in counts.items()]


def _utilization(u: Any) -> dict[str, Any] | None:
    """What ran and what was injected (None: the summary predates it)."""
    if not isinstance(u, dict):
        return None
    commands = u.get("commands") if isinstance(u.get("commands"), dict) else {}
    rows = []
    for name, c in commands.items():
        c = c if isinstance(c, dict) else {}
        rows.append({"name": name, "kind": c.get("kind", "?"), "started": c.get("started", 0),
                     "done": c.get("completed", 0)})
    return {"timelines": u.get("timelines", 0),
            "never": [str(n) for n in u.get("never_completed") or []],
            "kinds": _bars(_counts(u.get("commands_by_kind"))),
            "faults": _bars(_counts(u.get("faults"))), "commands": rows}


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, (int, float))}
