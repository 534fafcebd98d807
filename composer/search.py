"""Where the next timeline comes from: the guided search and the uniform baseline.

``GuidedSearch`` first re-runs saved failures (what Hypothesis's example database did
before), then starts as the baseline does (a few uniform draws, so a short run sees as
much as random would), then mixes uniform draws (the baseline's own sequence, at least
FRESH_FLOOR of the timelines), swarm draws (that leave out some commands and fault
kinds), focused rounds and mutations of corpus entries. Which to use next is a bandit:
Thompson sampling over how often each source has recently made the system do something
new per second spent (the faults a timeline was given do not count), first between
uniform, swarm, focus and mutation, then between the mutation operators. A focused round
(as AFL runs deterministic stages on a new queue entry, and Mallory injects a fault into
an observed state) takes a state a service reported, on the node that reported it, and
runs its timeline again with each fault kind at a few delays right after it (waiting for
the state in the new run, wherever it falls), lasting a second or more, with a parallel
driver started just before it (the system at work through the fault), with or without
the faults it had after it (without them the phase ends a second after the fault
heals), until timelines have shown each such fault there; rarer states first. A state's
first try of each kind is not left to the bandit: it runs before any choice but the
uniform floor, as AFL runs its deterministic stages before havoc. ``RandomSearch`` is
the baseline: uniform draws over the same space, blind to feedback. Both are
deterministic given their seed and what the timelines showed. Imports schedule, mutate,
corpus.
"""

from __future__ import annotations

import collections
import dataclasses
import random
from collections.abc import Iterable

from composer import schedule
from composer.corpus import Corpus, Entry, cost
from composer.behaviour import Moment, fault_after, within
from composer.mutate import OPERATORS, Known, Space, insert_fault, mutate
from composer.timeline import Timeline

__all__ = ["Candidate", "GuidedSearch", "RandomSearch"]

#: The first timelines are uniform draws, as the baseline's are: with a corpus of one or
#: two entries, mutations only circle those, and short runs need breadth first.
WARMUP = 3
#: Share of later timelines that are uniform draws whatever the bandit says: a bug that
#: no feedback leads to is still found at least this share as fast as the baseline would.
FRESH_FLOOR = 0.3
#: Per observation, older successes and tries of a source count this much less.
DECAY = 0.97
#: What the mix believes before it has seen anything, as (finds, tries): faults placed
#: at moments the system marked, or around command starts, are where distributed bugs
#: hide (Mallory's finding), so those start ahead; experience soon outweighs this.
PRIORS = {"focus": (4.0, 2.0), "fault after hit": (2.0, 2.0), "fault near start": (1.0, 1.5)}
#: Focused rounds start after the uniform warm-up (the corpus knows which states are
#: rare by then).
FOCUS_AFTER = WARMUP
#: Seconds after the moment at which a focused round places its faults; the first is
#: every kind's first try (just after the state, after what caused it has finished, e.g.
#: an acknowledgement sent), the others come in a drawn order.
FOCUS_DELAYS = (0.1, 0.0, 0.3)
#: Most timelines in one focused round, and focused rounds per state and node.
FOCUS_ROUND = 9
FOCUS_ROUNDS = 2
#: A focused timeline is dropped once this many timelines showed what it aims at (that
#: fault on that node within its window after that state).
FOCUS_COVERED = 2


@dataclasses.dataclass(frozen=True)
class Candidate:
    """A timeline to run, with where it came from."""

    timeline: Timeline
    #: "fresh", "swarm", "random", "saved failure" or the mutation operators applied
    origin: str
    #: the corpus entry it was mutated from
    parent: int | None = None
    #: the source credited with what it finds: "fresh", "swarm", "saved", "focus" or an
    #: operator's name
    source: str = "fresh"


@dataclasses.dataclass
class Arm:
    """How a source has done recently (decayed counts)."""

    tries: float = 0.0
    finds: float = 0.0
    total_tries: int = 0
    total_finds: int = 0

    def update(self, found: bool, cost: float = 1.0, counted: bool = True) -> None:
        """Count one try that cost ``cost`` (1 = an average uniform draw's length);
        ``counted=False`` for a pick that did not apply (an operator with nothing to
        work on): the mix learns from it, the totals shown to the user do not count it."""
        self.tries = self.tries * DECAY + cost
        self.finds = self.finds * DECAY + found
        self.total_tries += counted
        self.total_finds += found


@dataclasses.dataclass(frozen=True)
class Aim:
    """A focused candidate waiting to run."""

    candidate: Candidate
    #: the state it aims a fault at
    state: Moment
    #: the feature a timeline shows when that fault came right after that state
    shows: str
    #: (round, row): first rounds before second ones, and in a round every fault kind
    #: once before any kind at a second delay
    order: tuple[int, int]


class RandomSearch:
    """Uniform draws over the whole space; what it finds changes nothing."""

    name = "random"

    def __init__(self, space: Space, corpus: Corpus, rng: random.Random) -> None:
        self.space, self.corpus, self.rng = space, corpus, rng
        self.arms = {"random": Arm()}

    def next(self) -> Candidate:
        return Candidate(schedule.random_timeline(self.rng, self.space.templates,
                                                  self.space.caps, self.space.max_length),
                         "random", source="random")

    def observe(self, candidate: Candidate, entry: Entry | None) -> None:
        self.arms["random"].update(entry is not None)


class GuidedSearch(RandomSearch):
    """Saved failures first, a few uniform draws, then uniform and swarm draws, focused
    rounds and corpus mutations in a learnt mix."""

    name = "guided"

    def __init__(self, space: Space, corpus: Corpus, rng: random.Random,
                 saved: Iterable[Timeline] = ()) -> None:
        #: the uniform draws come from their own generator, started where the baseline's
        #: starts: the k-th uniform draw of a guided search is the baseline's k-th
        #: timeline, so whatever a lucky early draw finds for the baseline, the guided
        #: search finds too (a few timelines later at most), and the two compare per seed
        self.uniform = random.Random()
        self.uniform.setstate(rng.getstate())
        super().__init__(space, corpus, random.Random(rng.getrandbits(64)))
        self.saved = [t for t in saved if space.fits(t)]
        self.arms = {"fresh": Arm(), "swarm": Arm(), "focus": Arm(),
                     **{name: Arm() for name in OPERATORS}}
        for name, (finds, tries) in PRIORS.items():
            self.arms[name].finds, self.arms[name].tries = finds, tries
        if self.saved:
            self.arms["saved"] = Arm()
        #: every mutation operator together: the first choice is between a uniform draw,
        #: a swarm draw, a focused round and a mutation (whose operator is the second), so
        #: a dozen operators do not crowd out the three other sources
        self.mutation = Arm()
        #: focused candidates waiting
        self.focus: list[Aim] = []
        self.rounds: collections.Counter = collections.Counter()
        self.timelines = 0
        #: what an average uniform draw costs to run (its driver phase is 1 s to max_length)
        self._average_cost = cost((1 + space.max_length) / 2)

    def next(self) -> Candidate:
        if self.saved:
            return Candidate(self.saved.pop(0), "saved failure", source="saved")
        if self.timelines < WARMUP or not self.corpus.entries:
            return self._fresh("fresh")
        if self.rng.random() < FRESH_FLOOR:
            source = "fresh"
        elif self._focus_waits() and any(aim.order == (0, 0) for aim in self.focus):
            source = "focus"  # a state's first try of each fault kind: before any choice
        else:
            source = self._choose()
        if source == "focus":
            return self._focused()
        if source in ("fresh", "swarm"):
            return self._fresh(source)
        for _ in range(5):  # an operator may not apply to the parent drawn
            parent = self.corpus.pick(self.rng)
            other = self.corpus.pick(self.rng).timeline if source == "splice" else None
            known = Known(parent.behaviour, other,
                          lambda moment: self.corpus.counts[moment.feature])
            made = mutate(self.rng, self.space, source, parent.timeline, known)
            if made is not None:
                return Candidate(made[0], made[1], parent.number, source)
        self.arms[source].update(False, counted=False)
        self.mutation.update(False, counted=False)
        return self._fresh("fresh")

    def _fresh(self, source: str) -> Candidate:
        """A uniform draw ("fresh") or a swarm draw ("swarm")."""
        if source == "swarm":
            draw, rng = schedule.swarm_timeline, self.rng
        else:
            draw, rng = schedule.random_timeline, self.uniform
        return Candidate(draw(rng, self.space.templates, self.space.caps,
                              self.space.max_length), source, source=source)

    def _focus_waits(self) -> bool:
        """Whether a focused candidate waits whose fault right after its state timelines
        have not shown yet (the others are dropped)."""
        if self.timelines < FOCUS_AFTER:
            return False
        self.focus = [aim for aim in self.focus
                      if self.corpus.counts[aim.shows] < FOCUS_COVERED]
        return bool(self.focus)

    def _focused(self) -> Candidate:
        """The next focused candidate: breadth first (every fault kind right after every
        state once before any at a second delay, and every state's first round before any
        second), the rarest state first."""
        counts = self.corpus.counts
        first = min(range(len(self.focus)),
                    key=lambda i: (self.focus[i].order, counts[self.focus[i].state.feature]))
        return self.focus.pop(first).candidate

    def _plan_focus(self, entry: Entry) -> None:
        """Queue a focused round for each state a service of a new entry reported: each
        fault kind at a few delays right after it, on that node (Mallory's state x fault),
        every kind before a second delay of any, every other one without later faults.
        Common states get rounds too (a leader elected in every timeline is still the
        state to partition); rarer ones are served first."""
        kinds = schedule.fault_kinds(self.space.caps)
        for moment in entry.behaviour.moments:
            key = (moment.feature, moment.node)
            rounds = self.rounds[key]
            if moment.node is None or not moment.passed or rounds >= FOCUS_ROUNDS:
                continue
            self.rounds[key] += 1
            later = FOCUS_DELAYS[1:]
            delays = {kind: [FOCUS_DELAYS[0], *self.rng.sample(later, len(later))]
                      for kind in kinds}
            order = self.rng.sample(kinds, len(kinds))
            grid = [(kind, delays[kind][i]) for i in range(len(FOCUS_DELAYS)) for kind in order]
            for i, (kind, delay) in enumerate(grid[:FOCUS_ROUND]):
                shows = fault_after(kind, True, within(delay), moment)
                if self.corpus.counts[shows] >= FOCUS_COVERED:
                    continue
                calm = moment.at if i < len(kinds) or i % 2 == 0 else None
                mutant = insert_fault(self.rng, self.space, entry.timeline,
                                      moment.at + delay, moment.node, kind, calm, moment,
                                      lasting=True, workload=True)
                if mutant is not None and self.space.fits(mutant):
                    candidate = Candidate(mutant, "fault after hit", entry.number, "focus")
                    self.focus.append(Aim(candidate, moment, shows, (rounds, i // len(kinds))))

    def _choose(self) -> str:
        """Thompson sampling: each source's recent rate of finds per unit of cost, drawn
        from its Gamma posterior (a Poisson rate with a Gamma(1, 1) prior)."""
        groups = {name: self.arms[name] for name in ("fresh", "swarm", "focus")
                  if name != "focus" or self._focus_waits()}
        group = self._thompson({**groups, "mutation": self.mutation})
        if group != "mutation":
            return group
        return self._thompson({name: self.arms[name] for name in OPERATORS})

    def _thompson(self, arms: dict[str, Arm]) -> str:
        draws = {name: self.rng.gammavariate(arm.finds + 1, 1.0) / (arm.tries + 1)
                 for name, arm in arms.items()}
        return max(draws, key=draws.__getitem__)

    def observe(self, candidate: Candidate, entry: Entry | None) -> None:
        self.timelines += 1
        # relative to an average uniform draw: a source whose timelines run twice as long
        # must find twice as often to be chosen as often
        relative = cost(candidate.timeline.length) / self._average_cost
        found = _found(entry)
        self.arms[candidate.source].update(found, relative)
        if candidate.source in OPERATORS:
            self.mutation.update(found, relative)
        if entry is not None:
            self._plan_focus(entry)


def _found(entry: Entry | None) -> bool:
    """Whether a timeline showed the system doing something new: a new feature other than
    the faults it was given and where they landed (every source that adds faults shows
    those by construction; a focused round would always look successful), or a new best
    guidance value."""
    return entry is not None and (bool(entry.improved)
                                  or any(not f.startswith("fault ") for f in entry.new))
