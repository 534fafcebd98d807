"""``--duration`` as the whole wall-clock budget: search, shrinking and re-runs share it.

A CI job needs a bound. The search runs while a timeline still fits beside the re-runs
already owed to the failures found; each failure gets at most ``--shrink-budget`` of
shrinking, cut short so its re-runs still fit; re-runs stop when the next would overrun.
What a timeline costs is learnt as the exploration goes (the mean wall clock of those run
so far); with ``--jobs N`` the re-runs of a failure go N at once. Imports nothing of
composer.
"""

from __future__ import annotations

import math
import time

__all__ = ["Budget"]


class Budget:
    """The deadline of one exploration and what is owed out of it."""

    def __init__(self, duration: float, shrink: float, reruns: int,
                 longest_timeline: float, jobs: int = 1) -> None:
        self.t0 = time.monotonic()
        self.duration, self.shrink, self.reruns = duration, shrink, reruns
        self.jobs = jobs
        self.deadline = self.t0 + duration
        #: until a timeline has run: a mean drawn driver phase and a second of setup
        self._guess = longest_timeline / 2 + 1.0
        self._walls: list[float] = []

    def describe(self) -> str:
        """How the budget is split, for the start of the run."""
        return (f"budget {self.duration:g}s in all: searching, then for each failure "
                f"shrinking (at most {self.shrink:g}s) and {self.reruns} re-run(s), cut "
                f"short to end in time")

    def ran(self, wall: float) -> None:
        """Count one timeline that took ``wall`` seconds."""
        self._walls.append(wall)

    def per_timeline(self) -> float:
        return sum(self._walls) / len(self._walls) if self._walls else self._guess

    def owed(self, failures: int) -> float:
        """Seconds the re-runs of ``failures`` failures will take."""
        return failures * math.ceil(self.reruns / self.jobs) * self.per_timeline()

    def left(self) -> float:
        return self.deadline - time.monotonic()

    def may_search(self, failures: int) -> bool:
        """Whether another timeline fits before the re-runs owed (the first always runs)."""
        return not self._walls or self.left() >= self.per_timeline() + self.owed(failures)

    def shrink_deadline(self, failures: int) -> float:
        """When shrinking one failure must stop, leaving time for every failure's re-runs
        (``failures`` includes this one); in a tight budget shrinking still gets half of
        what is left (a small timeline is worth more than a reproduction rate), and the
        re-runs that no longer fit are cut."""
        now = time.monotonic()
        fair = max(self.deadline - self.owed(failures), now + (self.deadline - now) / 2)
        return min(now + self.shrink, fair)

    def may_rerun(self) -> bool:
        """Whether one more re-run ends before the deadline."""
        return self.left() >= self.per_timeline()
