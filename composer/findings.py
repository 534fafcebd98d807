"""A failing property's aftercare: its shrunk timeline, its re-runs and its replay file.

A timeline fails on timing as much as on its events, so a smaller candidate counts only
when it failed every time it was tried (``CONFIRMATIONS`` runs in a row), and the shrunk
timeline is re-run for a reproduction rate before it is saved; saved ones are read back
for the next exploration to try first. With ``--jobs N``, candidates and their
confirmations, and re-runs, go N at once. Imports shrink, timeline, jobs and judging.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path

from composer.jobs import JobLost, Jobs
from composer.judging import Judged
from composer.shrink import shrink
from composer.timeline import Replay, Timeline, load_replay, save_replay

__all__ = ["CONFIRMATIONS", "Finding", "shrink_finding", "rerun", "save", "saved", "slug"]

#: How many runs in a row a smaller timeline must fail before the shrinker keeps it.
CONFIRMATIONS = 2
#: Saved failures a guided search re-runs first, newest first.
SAVED = 20


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


def shrink_finding(finding: Finding,
                   run_now: Callable[[list[Timeline]], list[Judged | None]],
                   jobs: int, deadline: float,
                   on_step: Callable[[Timeline], None] | None = None) -> None:
    """Shrink ``finding.smallest`` until ``deadline``; ``run_now`` runs up to ``jobs``
    timelines at once and returns their verdicts in order (None: no verdict, its job was
    lost; the candidate is passed over)."""
    kept: list[Path] = []  # where the candidate kept last failed

    def first_failing(batch: list[Timeline]) -> int | None:
        # Timing decides many failures: a candidate must fail every time it is tried,
        # or the shrinker drifts to a timeline that fails once in a while. One job tries
        # again only what failed; more run a candidate's confirmations side by side.
        alive, tried, failed_in = list(range(len(batch))), 0, {}
        at_once = max(1, jobs // len(batch))
        while alive and tried < CONFIRMATIONS:
            times = min(at_once, CONFIRMATIONS - tried)
            runs = [i for i in alive for _ in range(times)]
            for i, judged in zip(runs, run_now([batch[i] for i in runs])):
                if judged is not None and finding.property in judged.violations:
                    failed_in[i] = judged.result.directory
                elif i in alive:
                    alive.remove(i)
            tried += times
        if not alive:
            return None
        kept[:] = [failed_in[alive[0]]]
        return alive[0]

    def step(smaller: Timeline) -> None:
        finding.smallest, finding.directory = smaller, kept[0]
        if on_step:
            on_step(smaller)

    shrink(finding.smallest, first_failing, deadline, step,
           width=max(1, jobs // CONFIRMATIONS))


def rerun(finding: Finding, pool: Jobs[Judged], times: int,
          may_rerun: Callable[[], bool], directory: Path) -> None:
    """Re-run ``finding.smallest`` up to ``times`` times in all, as many at once as
    ``pool`` has jobs, while ``may_rerun()``; count how often it failed again (a re-run
    whose job was lost is not counted)."""
    while finding.reruns < times:
        if not may_rerun():
            finding.cut_short.append(f"re-runs: {finding.reruns} of {times} fit in --duration")
            return
        batch = range(finding.reruns, min(times, finding.reruns + pool.jobs))
        name = slug(finding.property)
        for done in pool.run_all([(("rerun", name, i), finding.smallest,
                                   directory / f"{name}-{i + 1}") for i in batch]):
            if isinstance(done.error, JobLost):
                continue
            if done.error is not None:
                raise done.error
            assert done.value is not None
            finding.reruns += 1
            finding.reproduced += finding.property in done.value.violations


def save(finding: Finding, project: str, backend: str, replays_dir: Path,
         run_name: str) -> None:
    """Save ``finding``'s smallest timeline as a replay (also when not re-run)."""
    finding.replay = save_replay(
        Replay(project, backend, finding.property, finding.smallest,
               f"{finding.reproduced}/{finding.reruns}" if finding.reruns else "not re-run"),
        replays_dir, f"{run_name}-{slug(finding.property)}")


def saved(replays_dir: Path, project: Path, backend: str) -> list[Timeline]:
    """The timelines of ``project``'s saved replays on ``backend``, newest first (a
    guided search without --seed re-runs them first: a seeded one repeats, old files
    would not)."""
    found = []
    for path in sorted(replays_dir.glob("*.json"), key=_mtime, reverse=True):
        try:
            replay = load_replay(path)
        except ValueError:
            continue
        if replay.backend == backend and Path(replay.project) == Path(project):
            found.append(replay.timeline)
    return found[:SAVED]


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def slug(text: str) -> str:
    """``text`` as a short file-name part."""
    words = "".join(c if c.isalnum() else "-" for c in text.lower()).strip("-")
    return "-".join(filter(None, words.split("-")))[:48] or "property"
