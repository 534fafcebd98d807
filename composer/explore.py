"""The exploration loop: draw timelines, run them, judge them, shrink failures, replay.

The only module where the search meets the runner: it runs what ``composer.search``
proposes, turns each result into a behaviour signature for the corpus, and tells the
search what was new. Imports search, corpus, behaviour, runner, properties, catalog,
timeline, templates, config.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import random
import shutil
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from composer import catalog, properties
from composer.behaviour import observe
from composer.budget import Budget
from composer.builtin_properties import builtin_catalog, record_files
from composer.config import Project
from composer.corpus import Corpus
from composer.faults import Capabilities
from composer.interrupts import interrupts_deferred
from composer.linecover import lines_run
from composer.logstates import logged_states
from composer.mutate import Space
from composer.runner import TimelineResult, run_timeline
from composer.search import Arm, Candidate, GuidedSearch, RandomSearch
from composer.shrink import shrink
from composer.templates import Template
from composer.timeline import Replay, Timeline, load_replay, save_replay
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
    #: number of the first timeline that showed it
    number: int = 0
    reproduced: int = 0
    reruns: int = 0
    replay: Path | None = None
    #: the chain of timelines it was mutated from, newest first: (number, origin)
    lineage: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    #: what was cut short by the budget or an interrupt ("shrinking: ...", "re-runs: ...")
    cut_short: list[str] = dataclasses.field(default_factory=list)


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
    #: "guided" or "random"
    generator: str = "guided"
    corpus: Corpus = dataclasses.field(default_factory=Corpus)
    #: each source of timelines (fresh draws, mutation operators) and how it did
    sources: dict[str, Arm] = dataclasses.field(default_factory=dict)


#: How many runs in a row a smaller timeline must fail before the shrinker keeps it.
_SHRINK_CONFIRMATIONS = 2
#: Saved failures re-run first by a guided search without --seed, newest first.
_SAVED_FAILURES = 20


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
        self.budget = Budget(duration, shrink_budget, reruns, project.explore.timeline)
        self.t0 = self.budget.t0
        #: set by --stop-on-failure once the first failure is shrunk
        self.stopped = False
        declared = catalog.catalog([project.root])
        stays_up = any(s.runs_process and s.stays_up for s in project.services)
        for template in templates.values():
            options = project.options_for(template.name)
            declared += builtin_catalog(template, options.check_exit_code, stays_up,
                                        [check.name for check in options.checks])
        self.result = Exploration(run_dir, properties.PropertyTable(declared), {})
        for template in templates.values():
            self.result.utilization.declare(template)
        self.closed: set[str] = set()
        self.passing_dirs: list[Path] = []
        self.space = Space(templates, caps, project.explore.timeline)
        #: nodes whose services' logs are behaviour ([services.NAME] log_states = true)
        self.logged_nodes = [n for s in project.services if s.log_states for n in s.node_names()]
        #: timeline number -> (origin, parent number), for the lineage of findings
        self.origins: dict[int, tuple[str, int | None]] = {}

    # -- one timeline --------------------------------------------------------------------

    def execute(self, timeline: Timeline, candidate: Candidate | None = None,
                search: RandomSearch | None = None) -> Judged:
        """Run and judge one timeline; a search's candidate also feeds the corpus."""
        number = self.result.timelines + 1
        directory = self.run_dir / "timelines" / f"{number:05d}"
        self.progress.timeline_started(number, timeline)
        began = time.monotonic()
        judged = run_one(timeline, self.project, self.templates[timeline.template],
                         self.backend, directory, self.progress.event)
        self.budget.ran(time.monotonic() - began)
        self.result.timelines = number
        self.result.utilization.add(judged.result.log)
        self.result.garbage_lines += judged.garbage_lines
        self.result.table.add_timeline(judged.records)
        if candidate is not None and search is not None:
            self.learn(number, candidate, judged, search)
        for prop in judged.violations:
            finding = self.result.findings.get(prop)
            if finding is None:
                self.result.findings[prop] = Finding(prop, timeline, timeline, directory,
                                                     time.monotonic() - self.t0, number)
            elif prop not in self.closed and timeline.size() < finding.smallest.size():
                # until it is shrunk: from then on only a timeline that failed every time
                # it was tried replaces it (the shrinker's steps), not one lucky failure
                finding.smallest, finding.directory = timeline, directory
        if not judged.failed:
            self.passing_dirs.append(directory)
            if len(self.passing_dirs) > KEEP_PASSING:
                shutil.rmtree(self.passing_dirs.pop(0), ignore_errors=True)
        self.progress.timeline_done(number, judged, self.result)
        return judged

    def learn(self, number: int, candidate: Candidate, judged: Judged,
              search: RandomSearch) -> None:
        """Add the timeline's behaviour to the corpus and tell the search what was new."""
        result = judged.result
        behaviour = observe(judged.records, result.log, result.hits, result.phase_start,
                            lines_run(result.directory),
                            logged_states(result.directory, self.logged_nodes))
        self.origins[number] = (candidate.origin, candidate.parent)
        entry = self.result.corpus.consider(number, candidate.timeline, behaviour,
                                            candidate.origin, candidate.parent,
                                            time.monotonic() - self.t0)
        search.observe(candidate, entry)
        if entry is not None:  # kept: its timeline outlives the pruned directory
            corpus_dir = self.run_dir / "corpus"
            corpus_dir.mkdir(parents=True, exist_ok=True)
            (corpus_dir / f"{number:05d}.json").write_text(json.dumps({
                "timeline": candidate.timeline.to_json(), "origin": entry.origin,
                "parent": entry.parent, "why": entry.why, "new": list(entry.new),
                "improved": list(entry.improved)}, indent=2))

    def lineage(self, number: int) -> list[tuple[int, str]]:
        """Return the chain of timelines ``number`` was mutated from, itself first."""
        chain: list[tuple[int, str]] = []
        current: int | None = number
        while current is not None and current in self.origins and len(chain) < 1000:
            origin, parent = self.origins[current]
            chain.append((current, origin))
            current = parent
        return chain

    # -- the search ------------------------------------------------------------------------

    def search(self, search: RandomSearch) -> None:
        """Run what ``search`` proposes until the budget is spent; shrink what fails."""
        self.result.generator = search.name
        self.result.sources = search.arms
        while not self.stopped and self.budget.may_search(len(self.result.findings)):
            candidate = search.next()
            self.execute(candidate.timeline, candidate, search)
            self.shrink_new_findings()

    def saved_failures(self) -> list[Timeline]:
        """Timelines of this project's saved replays on this backend, newest first."""
        if self.seed is not None:  # a seeded exploration repeats; old files would not
            return []
        source = self.project.location
        found = []
        replays = self.project.root / ".composer" / "replays"
        for path in sorted(replays.glob("*.json"), key=_mtime, reverse=True):
            try:
                replay = load_replay(path)
            except ValueError:
                continue
            if replay.backend == self.backend and Path(replay.project) == Path(source):
                found.append(replay.timeline)
        return found[:_SAVED_FAILURES]

    def shrink_new_findings(self) -> None:
        """Shrink every failure found since the last call, then stop treating it as new."""
        for finding in list(self.result.findings.values()):
            if finding.property in self.closed:
                continue
            self.closed.add(finding.property)
            finding.lineage = self.lineage(finding.number)
            self.progress.note(f"property failed: {finding.property!r}; shrinking a timeline "
                               f"of {len(finding.smallest.events)} events", stage="shrinking")

            def fails(candidate: Timeline) -> bool:
                # Timing decides many failures: a candidate must fail every time it is
                # tried, or the shrinker drifts to a timeline that fails once in a while.
                return all(finding.property in self.execute(candidate).violations
                           for _ in range(_SHRINK_CONFIRMATIONS))

            def step(smaller: Timeline) -> None:
                finding.smallest = smaller
                finding.directory = self.run_dir / "timelines" / f"{self.result.timelines:05d}"
                self.progress.note(f"shrunk to {len(smaller.events)} events, "
                                   f"{smaller.length:.1f}s")

            # a candidate starts only if its confirmations end before the deadline
            deadline = (self.budget.shrink_deadline(len(self.result.findings))
                        - _SHRINK_CONFIRMATIONS * self.budget.per_timeline())
            shrink(finding.smallest, fails, deadline, step)
            if time.monotonic() >= deadline:
                finding.cut_short.append("shrinking: out of time (--duration or "
                                         "--shrink-budget)")
            self.progress.note(f"shrinking {finding.property!r} done", stage="exploring")
            if self.stop_on_failure:
                self.stopped = True

    # -- after the search ----------------------------------------------------------------------

    def reproduce(self, replays_dir: Path) -> None:
        for finding in self.result.findings.values():
            self.progress.note(f"re-running the shrunk timeline of {finding.property!r} "
                               f"{self.reruns} times", stage="re-running")
            for i in range(self.reruns):
                if not self.budget.may_rerun():
                    finding.cut_short.append(f"re-runs: {i} of {self.reruns} fit in --duration")
                    break
                directory = self.run_dir / "reruns" / f"{_slug(finding.property)}-{i + 1}"
                judged = run_one(finding.smallest, self.project,
                                 self.templates[finding.smallest.template], self.backend,
                                 directory)
                finding.reruns += 1
                finding.reproduced += finding.property in judged.violations
            self.save(finding, replays_dir)

    def save(self, finding: Finding, replays_dir: Path) -> None:
        """Save ``finding``'s smallest timeline as a replay (also when not re-run)."""
        finding.replay = save_replay(
            Replay(self.project.location,
                   self.backend, finding.property, finding.smallest,
                   f"{finding.reproduced}/{finding.reruns}" if finding.reruns
                   else "not re-run"),
            replays_dir, f"{self.run_dir.name}-{_slug(finding.property)}")


def _slug(text: str) -> str:
    slug = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return "-".join(filter(None, slug.split("-")))[:48] or "property"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def explore(project: Project, templates: Mapping[str, Template], backend: str,
            caps: Capabilities, run_dir: Path, *, duration: float, seed: int | None = None,
            generator: str = "guided", reruns: int = 5, shrink_budget: float = 120.0,
            stop_on_failure: bool = False, progress=None) -> Exploration:
    """Explore timelines for ``duration`` seconds; shrink, re-run and save each failure."""
    from composer.progress import Progress

    progress = progress or Progress(duration)
    explorer = _Explorer(project, templates, backend, caps, run_dir, duration, seed,
                         reruns, shrink_budget, stop_on_failure, progress)
    rng = random.Random(seed)
    corpus = explorer.result.corpus
    if generator == "random":
        search: RandomSearch = RandomSearch(explorer.space, corpus, rng)
    else:
        search = GuidedSearch(explorer.space, corpus, rng, explorer.saved_failures())
    replays = project.root / ".composer" / "replays"
    try:
        try:
            explorer.search(search)
            explorer.reproduce(replays)
        except KeyboardInterrupt:
            with interrupts_deferred():
                explorer.result.stopped_early = True
                progress.note("interrupted: saving what was found so far")
                for finding in explorer.result.findings.values():
                    if finding.replay is None:
                        finding.cut_short.append(
                            f"interrupted: saved as it was after {finding.reruns} re-run(s)")
                        explorer.save(finding, replays)
    finally:
        progress.done()  # the terminal gets its cursor back, whatever happened
    explorer.result.elapsed = time.monotonic() - explorer.t0
    return explorer.result
