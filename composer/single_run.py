"""The files of a run of one timeline (``composer run``, a fixture's ``composer up``):
the same summary.json, junit.xml and report.html as an exploration's, so ``composer
report`` and ``composer check`` work on it too.

Imports properties, explore (``Exploration``, the summary's shape), report, junit and
html_report.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from composer.errors import ExitCode

__all__ = ["save", "write_results"]


def save(run_dir: Path, judged: Any, *, project: Any, backend: str, seed: int | None,
         argv: Sequence[str]) -> tuple[Any, Path]:
    """Write the run's summary, junit.xml and report; return (its property table, the
    report's path)."""
    from composer import properties
    from composer.explore import Exploration
    from composer.interrupts import interrupts_deferred
    from composer.report import write_summary

    table = properties.PropertyTable()
    table.add_timeline(judged.records)
    code = ExitCode.PROPERTY_FAILED if judged.failed else ExitCode.OK
    run = Exploration(run_dir, table, {}, timelines=1, elapsed=judged.result.elapsed,
                      generator="random")
    run.utilization.add(judged.result.log)
    with interrupts_deferred():
        write_summary(run_dir, project=project, backend=backend, seed=seed, exploration=run,
                      exit_code=int(code), argv=list(argv))
        return table, write_results(run_dir)


def write_results(run_dir: Path) -> Path:
    """Write junit.xml and report.html from the run's summary.json; return the report."""
    from composer.html_report import write_report
    from composer.junit import write_junit

    write_junit(run_dir, json.loads((run_dir / "summary.json").read_text()))
    return write_report(run_dir)
