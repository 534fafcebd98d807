"""One timeline run and judged: its records read, the safety properties it violated.

Shared by ``composer run``, ``replay`` and every job of an exploration. Imports runner,
properties and builtin_properties (where the records are).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path

from composer import properties
from composer.builtin_properties import record_files
from composer.config import Project
from composer.runner import TimelineResult, run_timeline
from composer.templates import Template
from composer.timeline import Timeline

__all__ = ["Judged", "judge", "run_one", "run_and_judge"]


@dataclasses.dataclass
class Judged:
    """A timeline result with its verdicts."""

    result: TimelineResult
    records: list[dict]
    garbage_lines: int
    violations: list[str]

    @property
    def failed(self) -> bool:
        return bool(self.violations)


def judge(result: TimelineResult) -> Judged:
    """Read a timeline's records and find the safety properties it violated."""
    records: list[dict] = []
    garbage = 0
    for path in record_files(result.directory):
        found, bad = properties.read_records(path)
        records += found
        garbage += bad
    return Judged(result, records, garbage, properties.violations(records))


def run_one(timeline: Timeline, project: Project, template: Template, backend: str,
            directory: Path, on_event: Callable | None = None) -> Judged:
    """Run one timeline to completion (blocking) and judge it."""
    result = asyncio.run(run_timeline(timeline, project, template, backend, directory,
                                      on_event))
    return judge(result)


async def run_and_judge(project: Project, templates: Mapping[str, Template], backend: str,
                        timeline: Timeline, directory: Path,
                        on_event: Callable | None = None) -> Judged:
    """What an exploration's job does: run one timeline on a cluster of its own, judge it."""
    return judge(await run_timeline(timeline, project, templates[timeline.template],
                                    backend, directory, on_event))
