"""A template's checks, run on the history its timeline's clients recorded.

After a timeline, every ``composer_op`` record its processes wrote is merged into one
history (``composer.history``), each ``[[template.NAME.checks]]`` checker judges it, and
the verdict becomes an Always assertion record named after the check (condition null
when the verdict is unknown), so shrinking, re-runs, replay and the report treat a
checker's failure like any other. The history and the verdicts are kept beside the
timeline's files (``history.jsonl``, ``checks.json``) for ``composer check`` and the
report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from composer import checkers, history
from composer.builtin_properties import assertion
from composer.config import Check

__all__ = ["run_checks"]


def run_checks(checks: Sequence[Check], directory: Path) -> list[dict]:
    """Judge the history of the timeline in ``directory`` with each check; return the
    assertion records (their details hold each verdict). CPU-bound: callers in an event
    loop run it in a thread."""
    if not checks:
        return []
    events, garbage = history.read_events(sorted((directory / "sdk").glob("*.jsonl")))
    judged = history.pair(events, garbage)
    with (directory / "history.jsonl").open("w") as out:
        for op in judged.operations:
            out.write(json.dumps(op.to_json(), default=str) + "\n")
    records, verdicts = [], {}
    for check in checks:
        verdict = checkers.judge(check.checker, judged, check.model, check.time_limit)
        details = {"checker": check.checker, **verdict.as_json(),
                   "operations": len(judged.operations)}
        if judged.garbage or judged.unmatched:
            details["unreadable"] = {"malformed": judged.garbage,
                                     "unmatched completions": judged.unmatched}
        records.append(assertion(check.name, "Always", verdict.valid, details=details))
        verdicts[check.name] = details
    (directory / "checks.json").write_text(json.dumps(verdicts, indent=2, default=str))
    return records

