"""The exploration loop: draw timelines, run them, judge them, shrink failures, replay.

The only module where the search meets the runner: it runs what ``composer.search``
proposes, turns each result into a behaviour signature for the corpus, and tells the
search what was new. Timelines run on ``--jobs`` at once (``composer.jobs``); what fails
is shrunk, re-run and saved (``composer.findings``). Imports search, corpus, behaviour,
judging (and so the runner), jobs, findings, properties, catalog, timeline, templates,
config.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import json
import random
import shutil
import time
from collections.abc import Mapping
from pathlib import Path

from composer import catalog, findings, properties
from composer.behaviour import observe
from composer.budget import Budget
from composer.builtin_properties import builtin_catalog
from composer.config import Project
from composer.corpus import Corpus
from composer.errors import InfraError
from composer.faults import Capabilities
from composer.interrupts import interrupts_deferred
from composer.findings import Finding
from composer.jobs import Done, JobLost, Jobs, ThreadJobs
from composer.judging import Judged, run_and_judge
from composer.linecover import lines_run
from composer.logstates import logged_states
from composer.mutate import Space
from composer.search import Arm, Candidate, GuidedSearch, RandomSearch
from composer.templates import Template
from composer.timeline import Timeline
from composer.utilization import Utilization

__all__ = ["Exploration", "explore"]

#: Passing timeline directories kept per run (the most recent); failing ones are all kept.
KEEP_PASSING = 10


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
    #: timelines run at once (--jobs)
    jobs: int = 1
    #: timelines whose job was lost (a Ray worker or node died): number and why
    lost: list[tuple[int, str]] = dataclasses.field(default_factory=list)
    #: seconds the search itself took in this process (drawing and learning): what one
    #: head can feed, however many jobs run the timelines
    search_seconds: float = 0.0
    corpus: Corpus = dataclasses.field(default_factory=Corpus)
    #: each source of timelines (fresh draws, mutation operators) and how it did
    sources: dict[str, Arm] = dataclasses.field(default_factory=dict)


#: Timelines in a row whose job was lost before the exploration gives up (exit 3).
_LOST_IN_A_ROW = 10


@dataclasses.dataclass
class _Running:
    """A timeline handed to a job, until its result is recorded."""

    timeline: Timeline
    directory: Path
    candidate: Candidate | None


class _Explorer:
    def __init__(self, project: Project, templates: Mapping[str, Template], backend: str,
                 caps: Capabilities, run_dir: Path, duration: float, seed: int | None,
                 reruns: int, shrink_budget: float, stop_on_failure: bool, progress,
                 pool: Jobs[Judged]) -> None:
        self.project = project
        self.templates = templates
        self.backend = backend
        self.caps = caps
        self.run_dir = run_dir
        self.seed = seed
        self.reruns = reruns
        self.stop_on_failure = stop_on_failure
        self.progress = progress
        self.pool = pool
        self.budget = Budget(duration, shrink_budget, reruns, project.explore.timeline,
                             pool.jobs)
        self.t0 = self.budget.t0
        #: set by --stop-on-failure once the first failure is shrunk
        self.stopped = False
        declared = catalog.catalog([project.root])
        stays_up = any(s.runs_process and s.stays_up for s in project.services)
        for template in templates.values():
            options = project.options_for(template.name)
            declared += builtin_catalog(template, options.check_exit_code, stays_up,
                                        [check.name for check in options.checks])
        self.result = Exploration(run_dir, properties.PropertyTable(declared), {},
                                  jobs=pool.jobs)
        for template in templates.values():
            self.result.utilization.declare(template)
        self.closed: set[str] = set()
        self.passing_dirs: list[Path] = []
        self.space = Space(templates, caps, project.explore.timeline)
        #: nodes whose services' logs are behaviour ([services.NAME] log_states = true)
        self.logged_nodes = [n for s in project.services if s.log_states for n in s.node_names()]
        #: timeline number -> (origin, parent number), for the lineage of findings
        self.origins: dict[int, tuple[str, int | None]] = {}
        #: numbers given so far (a timeline gets its number, and directory, when it starts)
        self.numbers = 0
        self.running: dict[int, _Running] = {}
        self.lost_in_a_row = 0

    # -- timelines on the jobs -----------------------------------------------------------

    def _start(self, timeline: Timeline, candidate: Candidate | None) -> int:
        self.numbers += 1
        number = self.numbers
        directory = self.run_dir / "timelines" / f"{number:05d}"
        self.running[number] = _Running(timeline, directory, candidate)
        self.progress.timeline_started(number, timeline)
        return number

    def submit(self, timeline: Timeline, candidate: Candidate | None = None) -> int:
        """Start ``timeline`` on a free job; return its number."""
        number = self._start(timeline, candidate)
        self.pool.submit(number, timeline, self.running[number].directory)
        return number

    def collect(self) -> list[Done[Judged]]:
        """Wait until at least one started timeline has finished; raise what a job raised
        (the pool's exit stops the others), but a lost job is only counted."""
        finished = self.pool.wait()
        _raise_unless_lost(finished)
        return finished

    def run_now(self, timelines: list[Timeline]) -> list[Judged | None]:
        """Run ``timelines`` at once (nothing else running, a job for each) and record
        them; return their verdicts in order (None: its job was lost)."""
        numbers = [self._start(t, None) for t in timelines]
        finished = self.pool.run_all([(n, t, self.running[n].directory)
                                      for n, t in zip(numbers, timelines)])
        _raise_unless_lost(finished)
        return [self.record(done, None) for done in finished]

    def record(self, done: Done[Judged], search: RandomSearch | None) -> Judged | None:
        """Count a finished timeline: properties, findings, and (for a search's
        candidate) the corpus; a lost one only as lost (the search learns nothing)."""
        number = done.key
        assert isinstance(number, int)
        if done.value is None:
            self.running.pop(number)
            self.result.lost.append((number, str(done.error)))
            self.progress.timeline_ended(number)
            self.progress.note(f"timeline {number} lost its job ({done.error}): no verdict; "
                               "an infrastructure event, the search goes on")
            self.lost_in_a_row += 1
            if self.lost_in_a_row >= _LOST_IN_A_ROW:
                raise InfraError(f"{self.lost_in_a_row} timelines in a row lost their job "
                                 f"(the last: {done.error}): the cluster runs none; see "
                                 "its workers' logs")
            return None
        self.lost_in_a_row = 0
        judged, running = done.value, self.running.pop(number)
        timeline, directory = running.timeline, running.directory
        self.budget.ran(done.seconds)
        self.result.timelines += 1
        self.result.utilization.add(judged.result.log)
        self.result.garbage_lines += judged.garbage_lines
        self.result.table.add_timeline(judged.records)
        if running.candidate is not None and search is not None:
            began = time.monotonic()
            self.learn(number, running.candidate, judged, search)
            self.result.search_seconds += time.monotonic() - began
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
        """Run what ``search`` proposes on every job until the budget is spent; shrink
        what fails.

        The search learns from results in the order its candidates were drawn, and draws
        candidate k right after learning from result k - window, whichever job finishes
        first: so a seeded exploration draws the same timelines whatever order its jobs
        end in, as far as the system behaves the same (the baseline's draws, which learn
        nothing, are the same for any number of jobs). With one job the window is one
        (learn, then draw the next); with more it is twice the jobs, and drawn candidates
        wait for a free job, so a slow timeline holds back no job until the window is
        used up. A failure stops new starts until what runs has finished and the failure
        is shrunk."""
        self.result.generator = search.name
        self.result.sources = search.arms
        window = 1 if self.pool.jobs == 1 else 2 * self.pool.jobs
        drawn: collections.deque[Candidate] = collections.deque()
        unlearnt: collections.deque[int] = collections.deque()  # started, in draw order
        finished: dict[int, Done[Judged]] = {}
        draws = learnt = 0

        def draw() -> None:  # candidate k right after learning from result k - window
            nonlocal draws
            began = time.monotonic()
            while draws < learnt + window:
                drawn.append(search.next())
                draws += 1
            self.result.search_seconds += time.monotonic() - began

        draw()
        while True:
            searching = (not self.stopped and not self.unshrunk()
                         and self.budget.may_search(len(self.result.findings)))
            while searching and drawn and self.pool.free():
                candidate = drawn.popleft()
                unlearnt.append(self.submit(candidate.timeline, candidate))
            if not self.pool.running:
                if not self.unshrunk():
                    return
                self.shrink_new_findings()
                continue
            finished.update((done.key, done) for done in self.collect())
            while unlearnt and unlearnt[0] in finished:
                self.record(finished.pop(unlearnt.popleft()), search)
                learnt += 1
                draw()

    def unshrunk(self) -> bool:
        return any(p not in self.closed for p in self.result.findings)

    def shrink_new_findings(self) -> None:
        """Shrink every failure found since the last call, then stop treating it as new."""
        for finding in list(self.result.findings.values()):
            if finding.property in self.closed:
                continue
            self.closed.add(finding.property)
            finding.lineage = self.lineage(finding.number)
            self.progress.note(f"property failed: {finding.property!r}; shrinking a timeline "
                               f"of {len(finding.smallest.events)} events", stage="shrinking")
            # a candidate starts only if its confirmations end before the deadline
            deadline = (self.budget.shrink_deadline(len(self.result.findings))
                        - findings.CONFIRMATIONS * self.budget.per_timeline())
            findings.shrink_finding(finding, self.run_now, self.pool.jobs, deadline,
                                    lambda smaller: self.progress.note(
                                        f"shrunk to {len(smaller.events)} events, "
                                        f"{smaller.length:.1f}s"))
            if time.monotonic() >= deadline:
                finding.cut_short.append("shrinking: out of time (--duration or "
                                         "--shrink-budget)")
            self.progress.note(f"shrinking {finding.property!r} done", stage="exploring")
            if self.stop_on_failure:
                self.stopped = True

    # -- after the search ----------------------------------------------------------------------

    def reproduce(self, replays_dir: Path) -> None:
        """Re-run each finding's smallest timeline, as many at once as there are jobs."""
        for finding in self.result.findings.values():
            self.progress.note(f"re-running the shrunk timeline of {finding.property!r} "
                               f"{self.reruns} times", stage="re-running")
            findings.rerun(finding, self.pool, self.reruns, self.budget.may_rerun,
                           self.run_dir / "reruns")
            self.save(finding, replays_dir)

    def save(self, finding: Finding, replays_dir: Path) -> None:
        findings.save(finding, self.project.location, self.backend, replays_dir,
                      self.run_dir.name)


def _raise_unless_lost(finished: list[Done]) -> None:
    for done in finished:
        if done.error is not None and not isinstance(done.error, JobLost):
            raise done.error


def explore(project: Project, templates: Mapping[str, Template], backend: str,
            caps: Capabilities, run_dir: Path, *, duration: float, seed: int | None = None,
            generator: str = "guided", reruns: int = 5, shrink_budget: float = 120.0,
            stop_on_failure: bool = False, progress=None, jobs: int | None = None,
            ray: str | None = None) -> Exploration:
    """Explore timelines for ``duration`` seconds, ``jobs`` at once (default one, or one
    per CPU of the Ray cluster at ``ray``), each on a cluster of its own; shrink, re-run
    and save each failure."""
    from composer.progress import Progress

    progress = progress or Progress(duration)
    pool: Jobs[Judged]
    if ray is not None:
        from composer import ray_jobs

        connected = ray_jobs.connect(ray)
        jobs = jobs or ray_jobs.cluster_cpus(connected)
        progress.note(f"Ray cluster at {ray}: {jobs} timelines at once",
                      stage="exploring")
        pool = ray_jobs.RayJobs(connected, jobs, project, templates, backend)
    else:
        work = functools.partial(run_and_judge, project, templates, backend)
        pool = ThreadJobs(jobs or 1, work, lambda key, entry: progress.event(entry, key))
    with pool:
        explorer = _Explorer(project, templates, backend, caps, run_dir, duration, seed,
                             reruns, shrink_budget, stop_on_failure, progress, pool)
        return _explore(explorer, generator)


def _explore(explorer: _Explorer, generator: str) -> Exploration:
    progress, project = explorer.progress, explorer.project
    rng = random.Random(explorer.seed)
    corpus = explorer.result.corpus
    replays = project.root / ".composer" / "replays"
    if generator == "random":
        search: RandomSearch = RandomSearch(explorer.space, corpus, rng)
    else:  # a seeded exploration repeats; old failures would not
        saved = (findings.saved(replays, project.location, explorer.backend)
                 if explorer.seed is None else [])
        search = GuidedSearch(explorer.space, corpus, rng, saved)
    try:
        try:
            explorer.search(search)
            explorer.reproduce(replays)
        except KeyboardInterrupt:
            with interrupts_deferred():
                explorer.pool.close()  # every job's cluster down before saving
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
