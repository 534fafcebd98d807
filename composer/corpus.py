"""The corpus of a search: the timelines that showed something new, and why.

A timeline joins the corpus when its behaviour signature holds a feature no earlier
timeline showed, or when it set a new best for a guidance value (the SDKs' numeric and
boolean guidance, maximised or minimised as the Antithesis SDK documents). Parents for
mutation are picked with a weight that favours entries holding rarely seen features and
the current best of each guidance value, and that decays as an entry is picked. Like
AFL's favoured entries, a feature's rarity counts only for the cheapest kept timeline
that showed it (the shortest driver phase): long timelines show more and would otherwise
be picked most, and mutants of them run longest, which costs the search throughput.
Imports behaviour and timeline only.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import random

from composer.behaviour import Behaviour
from composer.timeline import Timeline

__all__ = ["Entry", "Corpus", "cost"]

#: How much being the best timeline for one guidance value adds to an entry's weight,
#: in units of "one feature no other timeline showed".
_CHAMPION_WEIGHT = 3.0
#: Seconds a timeline costs beyond its driver phase (setup, checks, teardown), roughly.
_OVERHEAD_SECONDS = 1.0


def cost(driver_seconds: float) -> float:
    """Roughly how many seconds a timeline with this driver phase takes to run."""
    return _OVERHEAD_SECONDS + driver_seconds


@dataclasses.dataclass
class Entry:
    """A kept timeline: where it came from and what it showed first."""

    number: int
    timeline: Timeline
    behaviour: Behaviour
    #: "fresh", "saved failure", or the mutations that made it ("fault after hit+move")
    origin: str
    #: the corpus entry it was mutated from
    parent: int | None
    #: seconds into the exploration
    elapsed: float
    #: features no earlier timeline showed
    new: tuple[str, ...]
    #: guidance ids whose best value it set
    improved: tuple[str, ...]
    picked: int = 0

    @property
    def why(self) -> str:
        """Why the entry was kept, in a few words."""
        parts = []
        if self.new:
            parts.append(f"{len(self.new)} new behaviour{'s' * (len(self.new) != 1)}")
        if self.improved:
            parts.append("new best guidance: " + ", ".join(self.improved))
        return "; ".join(parts)


class Corpus:
    """Every feature seen so far with how many timelines showed it, and the kept entries."""

    def __init__(self) -> None:
        self.entries: list[Entry] = []
        self.counts: collections.Counter[str] = collections.Counter()
        #: guidance id -> (best score, number of the timeline that reached it)
        self.best: dict[str, tuple[float, int]] = {}
        #: (elapsed s, timelines, behaviours, corpus size) after each timeline
        self.history: list[tuple[float, int, int, int]] = []
        #: planned driver-phase seconds of every timeline considered
        self.driver_seconds = 0.0
        self._by_number: dict[int, Entry] = {}
        #: feature -> the cheapest kept entry that showed it
        self._favoured: dict[str, Entry] = {}

    @property
    def behaviours(self) -> int:
        """How many distinct features the timelines have shown."""
        return len(self.counts)

    def consider(self, number: int, timeline: Timeline, behaviour: Behaviour, origin: str,
                 parent: int | None, elapsed: float) -> Entry | None:
        """Count ``behaviour``; keep the timeline (and return its entry) if it was new."""
        self.driver_seconds += timeline.length
        new = tuple(sorted(f for f in behaviour.features if f not in self.counts))
        self.counts.update(behaviour.features)
        improved = tuple(sorted(key for key, score in behaviour.guidance.items()
                                if key not in self.best or score > self.best[key][0]))
        for key in improved:
            self.best[key] = (behaviour.guidance[key], number)
        entry = None
        if new or improved:
            entry = Entry(number, timeline, behaviour, origin, parent, round(elapsed, 2),
                          new, improved)
            self.entries.append(entry)
            self._by_number[number] = entry
            for feature in behaviour.features:
                holder = self._favoured.get(feature)
                if holder is None or timeline.length < holder.timeline.length:
                    self._favoured[feature] = entry
        self.history.append((round(elapsed, 2), number, self.behaviours, len(self.entries)))
        return entry

    def get(self, number: int) -> Entry | None:
        return self._by_number.get(number)

    def weight(self, entry: Entry) -> float:
        """Rare features it is the cheapest holder of, and guidance records, weigh more;
        a long driver phase and each pick weigh it down."""
        rarity = sum(1.0 / self.counts[f] for f in entry.behaviour.features
                     if self._favoured.get(f) is entry)
        champion = sum(1 for _, number in self.best.values() if number == entry.number)
        return ((0.01 + rarity + _CHAMPION_WEIGHT * champion) / cost(entry.timeline.length)
                / math.sqrt(1 + entry.picked))

    def pick(self, rng: random.Random) -> Entry:
        """Return a parent for the next mutation (the corpus must not be empty)."""
        entry = rng.choices(self.entries, [self.weight(e) for e in self.entries])[0]
        entry.picked += 1
        return entry
