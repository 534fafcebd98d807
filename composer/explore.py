"""The exploration loop: draw timelines, run them, judge them, shrink failures, replay.

The only module where Hypothesis meets the runner; every Hypothesis setting composer
relies on is set here explicitly, so a user's ``CI`` profile cannot change behaviour.
Imports schedule, runner, properties, catalog, timeline, templates, config.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity, given, settings
from hypothesis.database import DirectoryBasedExampleDatabase

from composer import catalog, properties, schedule
from composer.config import Project
from composer.faults import Capabilities
from composer.shrink import shrink
from composer.runner import TimelineResult, builtin_catalog, record_files, run_timeline
from composer.templates import Template
from composer.timeline import Replay, Timeline, save_replay
from composer.utilization import Utilization

__all__ = ["Judged", "Finding", "Exploration", "judge", "run_one", "explore"]

#: Passing timeline directories kept per run (the most recent); failing ones are all kept.
KEEP_PASSING = 10


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


@dataclasses.dataclass
class Finding:
    """A failing property with the smallest timeline that showed it."""

    property: str
    first: Timeline
    smallest: Timeline
    directory: Path
    found_after: float
    reproduced: int = 0
    reruns: int = 0
    replay: Path | None = None


@dataclasses.dataclass
class Exploration:
    """Everything an exploration produced."""

    run_dir: Path
    table: properties.PropertyTable
    findings: dict[str, Finding]
    timelines: int = 0
    garbage_lines: int = 0
    elapsed: float = 0.0
    stopped_early: bool = False
    utilization: Utilization = dataclasses.field(default_factory=Utilization)


#: How many runs in a row a smaller timeline must fail before the shrinker keeps it.
_SHRINK_CONFIRMATIONS = 2


class _BudgetSpent(BaseException):
    """Raised through Hypothesis (not an Exception, so never a test failure) to stop it."""


class _PropertyFailed(Exception):
    """Tells Hypothesis a timeline failed, so it stops and saves it in its database."""


class _Explorer:
    def __init__(self, project: Project, templates: Mapping[str, Template], backend: str,
                 caps: Capabilities, run_dir: Path, duration: float, seed: int | None,
                 reruns: int, shrink_budget: float, stop_on_failure: bool, progress) -> None:
        self.project = project
        self.templates = templates
        self.backend = backend
        self.caps = caps
        self.run_dir = run_dir
        self.seed = seed
        self.reruns = reruns
        self.stop_on_failure = stop_on_failure
        self.progress = progress
        self.t0 = time.monotonic()
        self.deadline = self.t0 + duration
        self.shrink_budget = shrink_budget
        declared = catalog.catalog([project.root])
        for template in templates.values():
            declared += builtin_catalog(template, project.options_for(template.name).check_exit_code)
        self.result = Exploration(run_dir, properties.PropertyTable(declared), {})
        for template in templates.values():
            self.result.utilization.declare(template)
        self.closed: set[str] = set()
        self.passing_dirs: list[Path] = []

    # -- one timeline --------------------------------------------------------------------

    def execute(self, timeline: Timeline) -> Judged:
        number = self.result.timelines + 1
        directory = self.run_dir / "timelines" / f"{number:05d}"
        self.progress.timeline_started(number, timeline)
        judged = run_one(timeline, self.project, self.templates[timeline.template],
                         self.backend, directory, self.progress.event)
        self.result.timelines = number
        self.result.utilization.add(judged.result.log)
        self.result.garbage_lines += judged.garbage_lines
        self.result.table.add_timeline(judged.records)
        for prop in judged.violations:
            finding = self.result.findings.get(prop)
            if finding is None:
                self.result.findings[prop] = Finding(prop, timeline, timeline, directory,
                                                     time.monotonic() - self.t0)
            elif timeline.size() < finding.smallest.size():
                finding.smallest, finding.directory = timeline, directory
        if not judged.failed:
            self.passing_dirs.append(directory)
            if len(self.passing_dirs) > KEEP_PASSING:
                shutil.rmtree(self.passing_dirs.pop(0), ignore_errors=True)
        self.progress.timeline_done(number, judged, self.result)
        return judged

    # -- the Hypothesis loop ---------------------------------------------------------------

    def hypothesis_body(self, timeline: Timeline) -> None:
        if time.monotonic() >= self.deadline:
            raise _BudgetSpent
        judged = self.execute(timeline)
        for label, value in properties.guidance(judged.records).items():
            hypothesis.target(value, label=label)
        hypothesis.target(float(len(properties.sometimes_satisfied(judged.records))),
                          label="sometimes assertions satisfied")
        new = [p for p in judged.violations if p not in self.closed]
        if new:
            raise _PropertyFailed(new[0])

    def hypothesis_test(self, database: DirectoryBasedExampleDatabase | None,
                        round: int) -> Callable:
        """Return the @given test over timelines with every setting composer relies on."""
        strategy = schedule.timelines(self.templates, self.caps, self.project.explore.timeline)
        test = settings(
            database=database,
            # Rounds of 9: below 10 Hypothesis neither draws deliberately tiny examples first
            # nor hill-climbs its targets by re-running near-identical timelines, both
            # wasteful when one example costs seconds (measured: 178 distinct timelines in
            # 200 calls, against 85 with rounds of 40 and hill-climbing).
            max_examples=9,
            deadline=None,
            derandomize=False,
            # composer shrinks with composer.shrink: each test costs seconds, not microseconds
            phases=(Phase.explicit, Phase.reuse, Phase.generate),
            suppress_health_check=list(HealthCheck),
            report_multiple_bugs=False,
            verbosity=Verbosity.quiet,
            print_blob=False,
        )(given(strategy)(self.hypothesis_body))
        if self.seed is None:
            return test
        # Each round its own seed: the same seed again would draw the same timelines again.
        return hypothesis.seed(self.seed * 1_000_003 + round)(test)

    def search_with_hypothesis(self) -> None:
        # The example database replays earlier failures first. Only the first search uses
        # it: later ones would find those failures closed and delete them from it.
        database = None
        if self.seed is None:
            database = DirectoryBasedExampleDatabase(
                str(self.project.root / ".composer" / "hypothesis" / self.backend))
        round = 0
        while time.monotonic() < self.deadline:
            round += 1
            try:
                self.hypothesis_test(database, round)()
            except _BudgetSpent:
                pass
            except Exception:  # the failure Hypothesis found, or Flaky: our records hold it
                pass
            database = None
            self.shrink_new_findings()

    def shrink_new_findings(self) -> None:
        """Shrink every failure found since the last call, then stop treating it as new."""
        for finding in list(self.result.findings.values()):
            if finding.property in self.closed:
                continue
            self.closed.add(finding.property)
            self.progress.note(f"property failed: {finding.property!r}; shrinking a timeline "
                               f"of {len(finding.smallest.events)} events", stage="shrinking")

            def fails(candidate: Timeline) -> bool:
                # Timing decides many failures: a candidate must fail every time it is
                # tried, or the shrinker drifts to a timeline that fails once in a while.
                return all(finding.property in self.execute(candidate).violations
                           for _ in range(_SHRINK_CONFIRMATIONS))

            shrink(finding.smallest, fails, time.monotonic() + self.shrink_budget,
                   lambda t: self.progress.note(
                       f"shrunk to {len(t.events)} events, {t.length:.1f}s"))
            self.progress.note(f"shrinking {finding.property!r} done", stage="exploring")
            if self.stop_on_failure:
                self.deadline = time.monotonic()

    def search_at_random(self) -> None:
        rng = random.Random(self.seed)
        while time.monotonic() < self.deadline:
            self.execute(schedule.random_timeline(rng, self.templates, self.caps,
                                                  self.project.explore.timeline))
            self.shrink_new_findings()

    # -- after the search ----------------------------------------------------------------------

    def reproduce(self, replays_dir: Path) -> None:
        for finding in self.result.findings.values():
            self.progress.note(f"re-running the shrunk timeline of {finding.property!r} "
                               f"{self.reruns} times", stage="re-running")
            for i in range(self.reruns):
                directory = self.run_dir / "reruns" / f"{_slug(finding.property)}-{i + 1}"
                judged = run_one(finding.smallest, self.project,
                                 self.templates[finding.smallest.template], self.backend,
                                 directory)
                finding.reruns += 1
                finding.reproduced += finding.property in judged.violations
            finding.replay = save_replay(
                Replay(self.project.source if self.project.compose else self.project.root,
                       self.backend, finding.property, finding.smallest,
                       f"{finding.reproduced}/{finding.reruns}"),
                replays_dir, f"{self.run_dir.name}-{_slug(finding.property)}")


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return "-".join(filter(None, slug.split("-")))[:48] or "property"


def explore(project: Project, templates: Mapping[str, Template], backend: str,
            caps: Capabilities, run_dir: Path, *, duration: float, seed: int | None = None,
            generator: str = "hypothesis", reruns: int = 5, shrink_budget: float = 120.0,
            stop_on_failure: bool = False, progress=None) -> Exploration:
    """Explore timelines for ``duration`` seconds; shrink, re-run and save each failure."""
    from composer.progress import Progress

    progress = progress or Progress(duration)
    explorer = _Explorer(project, templates, backend, caps, run_dir, duration, seed,
                         reruns, shrink_budget, stop_on_failure, progress)
    try:
        try:
            if generator == "random":
                explorer.search_at_random()
            else:
                explorer.search_with_hypothesis()
        except KeyboardInterrupt:
            explorer.result.stopped_early = True
            progress.note("interrupted: reporting what was found so far")
        if not explorer.result.stopped_early:
            explorer.reproduce(project.root / ".composer" / "replays")
    finally:
        progress.done()  # the terminal gets its cursor back, whatever happened
    explorer.result.elapsed = time.monotonic() - explorer.t0
    return explorer.result
