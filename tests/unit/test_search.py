"""Where timelines come from: saved failures first, fresh draws, and a mix of mutations
that follows what has been finding new behaviour; random stays blind."""

from __future__ import annotations

import collections
import random

from composer import schedule
from composer.behaviour import Behaviour
from composer.corpus import Corpus
from composer.mutate import Space
from composer.search import GuidedSearch, RandomSearch
from composer.timeline import Timeline, Trigger
from tests.unit.test_schedule import CAPS, FULL

SPACE = Space({"full": FULL}, CAPS, 5.0)


def drive(search, corpus: Corpus, rounds: int, new_when=lambda candidate: True) -> list:
    """Run ``rounds`` candidates; each that ``new_when`` accepts shows a new feature."""
    candidates = []
    for number in range(1, rounds + 1):
        candidate = search.next()
        candidates.append(candidate)
        features = {f"feature {number}"} if new_when(candidate) else {"same"}
        entry = corpus.consider(number, candidate.timeline, Behaviour(frozenset(features), {}),
                                candidate.origin, candidate.parent, float(number))
        search.observe(candidate, entry)
    return candidates


def test_random_search_is_uniform_and_blind():
    runs = []
    for new_when in (lambda c: True, lambda c: False):
        corpus = Corpus()
        runs.append([c.timeline for c in drive(RandomSearch(SPACE, corpus, random.Random(4)),
                                               corpus, 20, new_when)])
    assert runs[0] == runs[1]
    rng = random.Random(4)
    assert runs[0] == [schedule.random_timeline(rng, SPACE.templates, SPACE.caps, 5.0)
                       for _ in range(20)]


def test_saved_failures_come_first_if_they_still_fit():
    good = schedule.random_timeline(random.Random(1), SPACE.templates, SPACE.caps, 5.0)
    gone = Timeline("no-such-template", 1.0, 0)
    corpus = Corpus()
    search = GuidedSearch(SPACE, corpus, random.Random(0), [gone, good])
    first, second = drive(search, corpus, 2)
    assert (first.timeline, first.origin, first.source) == (good, "saved failure", "saved")
    assert second.source != "saved" and second.parent in (None, 1)


def test_guided_search_repeats_given_the_same_seed_and_observations():
    runs = []
    for _ in range(2):
        corpus = Corpus()
        search = GuidedSearch(SPACE, corpus, random.Random(9))
        runs.append([(c.timeline, c.origin, c.parent)
                     for c in drive(search, corpus, 60, lambda c: len(c.timeline.events) % 3 == 0)])
    assert runs[0] == runs[1]
    origins = {origin.split("+")[0] for _, origin, _ in runs[0]}
    assert "fresh" in origins and len(origins) > 4  # mutations of several kinds were tried


def test_the_mix_follows_what_finds_new_behaviour():
    corpus = Corpus()
    search = GuidedSearch(SPACE, corpus, random.Random(3))
    candidates = drive(search, corpus, 400, lambda c: c.source == "move" or not corpus.entries)
    late = collections.Counter(c.source for c in candidates[200:])
    assert late["move"] > 100, late
    assert late["fresh"] >= 8, late  # the floor of fresh draws holds
    assert search.arms["move"].total_finds > 100


def test_mutants_name_their_parent_and_stay_in_the_space():
    corpus = Corpus()
    search = GuidedSearch(SPACE, corpus, random.Random(5))
    for candidate in drive(search, corpus, 100):
        assert SPACE.fits(candidate.timeline)
        if candidate.origin not in ("fresh", "swarm"):
            assert corpus.get(candidate.parent) is not None
            assert candidate.origin.split("+")[0] == candidate.source


def test_guidance_steers_the_search_towards_its_extreme():
    """Only a guidance value changes here (no new features after the first timeline):
    the guided search climbs it, the blind baseline does not."""

    def kills(timeline: Timeline) -> float:
        return float(sum(1 for e in timeline.events if getattr(e, "kind", None) == "kill"))

    best = {}
    for search_type in (GuidedSearch, RandomSearch):
        corpus = Corpus()
        search = search_type(SPACE, corpus, random.Random(2))
        for number in range(1, 301):
            candidate = search.next()
            seen = Behaviour(frozenset({"always the same"}), {"kills": kills(candidate.timeline)})
            search.observe(candidate, corpus.consider(number, candidate.timeline, seen,
                                                      candidate.origin, candidate.parent, 0.0))
        best[search_type.name] = corpus.best["kills"][0]
    assert best["guided"] >= best["random"] + 3, best


def _focus_run(covered=lambda number, candidate: set()):
    """200 timelines on a space of kills and pauses: timeline 1 alone reaches a rare state
    on kv-2, every timeline a common one on kv-1; ``covered`` adds features a timeline
    showed. Returns the corpus and the focused candidates in order."""
    from composer.behaviour import Moment

    space = Space({"full": FULL}, CAPS.restricted(("kill", "pause")), 5.0)
    corpus = Corpus()
    search = GuidedSearch(space, corpus, random.Random(1))
    window = Moment(2.0, "snapshot started", "kv-2")
    common = Moment(1.0, "request served", "kv-1")
    checked = Moment(0.5, "two writers in flight", "kv-1", passed=False)
    focused = []
    for number in range(1, 200):
        candidate = search.next()
        if candidate.source == "focus":
            focused.append((number, candidate))
        moments = (checked, common) + ((window,) if number == 1 else ())
        features = {common.feature, checked.feature} | (
            {window.feature} if number == 1 else set()) | (
            {f"other {number}"} if number % 2 else set()) | covered(number, candidate)
        seen = Behaviour(frozenset(features), {}, moments)
        search.observe(candidate, corpus.consider(number, candidate.timeline, seen,
                                                  candidate.origin, candidate.parent, 0.0))
    return corpus, focused


def _added(corpus: Corpus, candidate) -> list:
    return sorted(set(candidate.timeline.events) - set(corpus.get(candidate.parent).timeline.events),
                  key=lambda e: type(e).__name__)


def _added_fault(corpus: Corpus, candidate):
    from composer.timeline import Fault

    (added,) = [e for e in _added(corpus, candidate) if isinstance(e, Fault)]
    return added


def test_a_state_a_service_reported_gets_a_focused_round_of_faults_right_after_it():
    from composer.mutate import LASTING
    from composer.search import FOCUS_AFTER, FOCUS_DELAYS

    corpus, focused = _focus_run()
    assert all(number > FOCUS_AFTER for number, _ in focused)
    assert all(c.origin == "fault after hit" for _, c in focused)
    # long enough to play out (a new leader elected, a lease run out), inside the phase
    assert all(_added_fault(corpus, c).duration >= LASTING for _, c in focused)
    assert all(c.timeline.length >= 2.5 for _, c in focused)  # the states came at 1 s, 2 s
    # with the workload running through it: a parallel driver starts just before the fault
    # (at the time the state came in the parent's run, as near as the phase allows)
    for _, candidate in focused:
        fault, start = _added(corpus, candidate)
        assert FULL.command(start.command).kind == "parallel_driver", start
        moment_at = 2.0 if fault.targets == ("kv-2",) and candidate.parent == 1 else 1.0
        assert moment_at - 0.2 <= start.at <= moment_at + max(FOCUS_DELAYS), (start, fault)
    rare = [c for _, c in focused if c.parent == 1 and _added_fault(corpus, c).targets == ("kv-2",)]
    assert len(rare) == 2 * len(FOCUS_DELAYS), focused  # each kind at each delay
    # breadth first: each kind once after the rarest state, then after the common one,
    # and only then a second delay
    first = [_added_fault(corpus, c) for _, c in focused[:4]]
    assert [f.targets for f in first] == [("kv-2",)] * 2 + [("kv-1",)] * 2, first
    assert {f.kind for f in first[:2]} == {f.kind for f in first[2:]} == {"kill", "pause"}
    for candidate in rare:  # each waits for the state, wherever it comes in the run
        fault = _added_fault(corpus, candidate)
        assert fault.at in FOCUS_DELAYS and fault.after == Trigger("snapshot started", True, "kv-2")
    assert {_added_fault(corpus, c).kind for c in rare} == {"kill", "pause"}
    # a state every timeline reaches gets rounds too (a leader elected is still the state
    # to partition), on its node and after its time; an outcome that did not hold none
    common = [c for _, c in focused if c not in rare]
    assert common and all(_added_fault(corpus, c).targets == ("kv-1",) for c in common)
    assert all(_added_fault(corpus, c).at in FOCUS_DELAYS for c in common)
    assert all(_added_fault(corpus, c).after.id == "request served" for c in common)
    parents = [c.parent for c in common]  # a second round (another parent) after the first
    assert len(set(parents)) == 2 and parents == sorted(parents, key=parents.index), parents


def test_a_focused_fault_that_timelines_have_shown_is_not_run_again():
    """Once two timelines showed a kill on kv-2 right after the rare state, the round's
    other kills there are dropped; its pauses still run."""
    corpus, focused = _focus_run(lambda number, candidate: (
        {"fault kill on its node within 0.25s after snapshot started",
         "fault kill on its node within 0.5s after snapshot started"} if number in (2, 3)
        else set()))
    rare = [c for _, c in focused if _added_fault(corpus, c).targets == ("kv-2",)]
    assert {_added_fault(corpus, c).kind for c in rare} == {"pause"}, rare
    assert len(rare) == 3


def test_the_first_timelines_are_uniform_draws_like_the_baseline():
    """With a corpus of one or two entries mutations circle those; a short exploration
    must first see as much as the baseline would."""
    from composer.search import WARMUP

    corpus = Corpus()
    search = GuidedSearch(SPACE, corpus, random.Random(8))
    first = drive(search, corpus, WARMUP)
    assert [c.source for c in first] == ["fresh"] * WARMUP
    assert all(c.parent is None for c in first)


def test_the_uniform_draws_of_a_guided_search_are_the_baselines_own():
    """The k-th uniform draw of the guided search is the baseline's k-th timeline with
    the same seed: a bug a lucky early draw shows the baseline, guided sees too."""
    timelines = {}
    for search_type in (GuidedSearch, RandomSearch):
        corpus = Corpus()
        candidates = drive(search_type(SPACE, corpus, random.Random(8)), corpus, 80,
                           lambda c: c.source != "fresh" or len(corpus.entries) < 3)
        timelines[search_type.name] = [c.timeline for c in candidates
                                       if c.source in ("fresh", "random")]
    guided = timelines["guided"]
    assert 20 < len(guided) < 80
    assert guided == timelines["random"][:len(guided)]


def test_a_source_whose_timelines_run_longer_must_find_more_to_be_chosen():
    """Equal finds per timeline, but one source's timelines take twice the seconds: the
    bandit (finds per second) prefers the cheap one."""
    from composer.search import Candidate

    corpus = Corpus()
    search = GuidedSearch(SPACE, corpus, random.Random(6))
    number = 0
    for i in range(40):
        for source, length in (("move", 1.0), ("delete", 5.0)):
            number += 1
            timeline = Timeline("full", length, number)
            features = frozenset({f"new {number}"} if i % 2 else {"same"})
            entry = corpus.consider(number, timeline, Behaviour(features, {}), source, 1, 0.0)
            search.observe(Candidate(timeline, source, 1, source), entry)
    chosen = collections.Counter(search._choose() for _ in range(300))
    assert chosen["move"] > 3 * chosen["delete"], chosen


def test_faults_a_timeline_was_given_are_not_credited_as_what_it_found():
    """Every source that adds faults shows new "fault ..." features by construction (a
    focused round always would): only what the system did counts for the mix."""
    from composer.search import Candidate

    corpus = Corpus()
    search = GuidedSearch(SPACE, corpus, random.Random(6))
    number = 0
    for i in range(40):
        for source, feature in (("move", "assert pass state"), ("delete", "fault kill kv-1")):
            number += 1
            timeline = Timeline("full", 2.0, number)
            entry = corpus.consider(number, timeline,
                                    Behaviour(frozenset({f"{feature} {number}"}), {}),
                                    source, 1, 0.0)
            search.observe(Candidate(timeline, source, 1, source), entry)
    assert search.arms["move"].total_finds == 40 and search.arms["delete"].total_finds == 0
