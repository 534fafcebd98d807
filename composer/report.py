"""Results of a run: ``summary.json`` in the run directory, and the terminal summary.

Imports properties, timeline and explore's result types; nothing runs here.
"""

from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Any, TextIO

from composer import __version__

__all__ = ["SUMMARY_VERSION", "write_summary", "search_json", "print_properties",
           "print_findings", "replay_command"]

#: Version of the summary.json schema; bumped on any incompatible change.
SUMMARY_VERSION = 3
#: Most points of the behaviours-over-time series kept in summary.json.
_SERIES_POINTS = 400
#: Most features listed per kept timeline (the count is always given).
_NEW_LISTED = 20


def replay_command(path: Path) -> str:
    """Return the shell command that replays ``path``, relative to the working directory."""
    shown = os.path.relpath(path)
    if shown.startswith(".."):
        shown = str(path)
    return f"composer replay {shown} --runs 10"


def write_summary(run_dir: Path, *, project: Any, backend: str, seed: int | None,
                  exploration: Any, exit_code: int, argv: list[str]) -> Path:
    """Write ``summary.json`` for an exploration and return its path."""
    findings = []
    for finding in exploration.findings.values():
        findings.append({
            "property": finding.property,
            "found_after_seconds": round(finding.found_after, 2),
            "first_timeline_size": len(finding.first.events),
            "shrunk_timeline_size": len(finding.smallest.events),
            "timeline": finding.smallest.to_json(),
            "directory": str(finding.directory),
            "reproduced": finding.reproduced,
            "reruns": finding.reruns,
            "replay": str(finding.replay) if finding.replay else None,
            "first_timeline": finding.number,
            "lineage": [{"timeline": n, "origin": o} for n, o in finding.lineage],
            "cut_short": list(finding.cut_short),
        })
    summary = {
        "version": SUMMARY_VERSION,
        "composer": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "argv": argv,
        "project": project.name,
        "project_dir": str(project.root),
        "backend": backend,
        "seed": seed,
        "elapsed_seconds": round(exploration.elapsed, 2),
        "timelines": exploration.timelines,
        "garbage_sdk_lines": exploration.garbage_lines,
        "stopped_early": exploration.stopped_early,
        "lost_timelines": [{"timeline": n, "why": why} for n, why in exploration.lost],
        "exit_code": exit_code,
        "properties": exploration.table.to_json(),
        "findings": findings,
        "utilization": exploration.utilization.to_json(),
        "search": search_json(exploration),
    }
    path = run_dir / "summary.json"
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2) + "\n")
    return path


def search_json(exploration: Any) -> dict[str, Any]:
    """The search's side of a run: behaviours over time, sources, kept timelines."""
    corpus = exploration.corpus
    history = corpus.history
    step = max(1, -(-len(history) // _SERIES_POINTS))
    series = history[::step]
    if history and series[-1] != history[-1]:
        series.append(history[-1])
    return {
        "generator": exploration.generator,
        "jobs": exploration.jobs,
        "seconds": round(exploration.search_seconds, 3),
        "behaviours": corpus.behaviours,
        "kept": len(corpus.entries),
        "driver_seconds": round(corpus.driver_seconds, 2),
        "over_time": [list(point) for point in series],
        "sources": [{"source": name, "tries": arm.total_tries, "finds": arm.total_finds}
                    for name, arm in exploration.sources.items()],
        "corpus": [{"timeline": e.number, "origin": e.origin, "parent": e.parent,
                    "elapsed_seconds": e.elapsed, "why": e.why, "new_count": len(e.new),
                    "new": list(e.new[:_NEW_LISTED]), "improved": list(e.improved)}
                   for e in corpus.entries],
    }


def print_properties(props: list[Any], out: TextIO, one_timeline: bool = False) -> None:
    """Print one line per property: status, type, pass and fail counts, message.
    ``one_timeline``: a Sometimes property not met in it is UNMET, not FAIL (one timeline
    need not show everything; an exploration must)."""
    if not props:
        out.write("No properties were declared or hit.\n")
        return
    out.write(f"  {'STATUS':<10}{'TYPE':<20}{'PASS':>6}{'FAIL':>6}  PROPERTY\n")
    unmet = False
    for prop in props:
        status = prop.status.upper()
        if one_timeline and prop.assert_type == "sometimes" and status == "FAIL":
            status, unmet = "UNMET", True
        out.write(f"  {status:<10}{prop.display_type:<20}{prop.passes:>6}"
                  f"{prop.failures:>6}  {prop.message}\n")
    if any(p.status == "unknown" for p in props):
        out.write("  (UNKNOWN: a checker ran out of time on a history that showed no "
                  "violation; raise its time_limit)\n")
    if unmet:
        out.write("  (UNMET: a Sometimes property this one timeline did not show; only an "
                  "exploration fails it)\n")


def print_findings(findings: dict, out: TextIO) -> None:
    """Print each failing property's shrunk timeline, reproduction rate and replay command."""
    for finding in findings.values():
        first, small = finding.first, finding.smallest
        out.write(f"\nFailing property: {finding.property}\n")
        out.write(f"  found after {finding.found_after:.0f}s in a timeline of "
                  f"{len(first.events)} events; shrunk to {len(small.events)} events "
                  f"({small.length:.1f}s driver phase, template {small.template!r}):\n")
        for line in small.describe():
            out.write(f"  {line}\n")
        if finding.reruns:
            out.write(f"  reproduced in {finding.reproduced}/{finding.reruns} re-runs\n")
        for what in finding.cut_short:
            out.write(f"  cut short: {what}\n")
        out.write(f"  logs: {finding.directory}\n")
        if finding.replay:
            out.write(f"  replay: {replay_command(finding.replay)}\n")
