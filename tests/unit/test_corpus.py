"""The corpus keeps timelines that showed something new, and favours rare ones as parents."""

from __future__ import annotations

import collections
import random

from composer.behaviour import Behaviour
from composer.corpus import Corpus
from composer.timeline import Timeline

T = Timeline(template="main", length=1.0, seed=0)


def seen(*features: str, **guidance: float) -> Behaviour:
    return Behaviour(frozenset(features), guidance)


def test_keeps_only_timelines_with_new_features():
    corpus = Corpus()
    first = corpus.consider(1, T, seen("a", "b"), "fresh", None, 1.0)
    assert first is not None and first.new == ("a", "b") and first.why == "2 new behaviours"
    assert corpus.consider(2, T, seen("a"), "move", 1, 2.0) is None
    third = corpus.consider(3, T, seen("a", "c"), "move", 1, 3.0)
    assert third is not None and third.new == ("c",) and third.parent == 1
    assert corpus.behaviours == 3
    assert [e.number for e in corpus.entries] == [1, 3]
    assert corpus.get(3) is third and corpus.get(2) is None
    assert corpus.history == [(1.0, 1, 2, 1), (2.0, 2, 2, 1), (3.0, 3, 3, 2)]


def test_a_new_best_guidance_value_is_kept_even_without_new_features():
    corpus = Corpus()
    corpus.consider(1, T, seen("a", lag=1.0), "fresh", None, 0)
    assert corpus.consider(2, T, seen("a", lag=0.5), "fresh", None, 0) is None
    better = corpus.consider(3, T, seen("a", lag=4.0), "move", 1, 0)
    assert better is not None and better.improved == ("lag",)
    assert better.why == "new best guidance: lag"
    assert corpus.best["lag"] == (4.0, 3)


def test_rare_features_and_guidance_champions_are_picked_more():
    corpus = Corpus()
    corpus.consider(1, T, seen("common"), "fresh", None, 0)
    for n in range(2, 30):
        corpus.consider(n, T, seen("common"), "fresh", None, 0)
    corpus.consider(30, T, seen("common", "rare"), "fresh", None, 0)
    corpus.consider(31, T, seen("common", "other", score=5.0), "fresh", None, 0)
    picks = collections.Counter(corpus.pick(random.Random(s)).number for s in range(300))
    assert picks[30] > 3 * picks[1] and picks[31] > picks[30]


def test_each_pick_weighs_an_entry_down():
    corpus = Corpus()
    corpus.consider(1, T, seen("a"), "fresh", None, 0)
    entry = corpus.entries[0]
    before = corpus.weight(entry)
    corpus.pick(random.Random(0))
    assert entry.picked == 1 and corpus.weight(entry) < before


def test_the_shortest_timeline_showing_a_feature_is_its_favoured_parent():
    """A long timeline shows as much and more, but its mutants cost more to run: the
    short one that showed the same rare feature is picked far more often."""
    corpus = Corpus()
    long = Timeline(template="main", length=10.0, seed=0)
    corpus.consider(1, long, seen("common", "rare", "long only"), "fresh", None, 0)
    corpus.consider(2, T, seen("common", "rare", "short only"), "fresh", None, 0)
    long_entry, short_entry = corpus.entries
    assert corpus.weight(short_entry) > 3 * corpus.weight(long_entry)
    picks = collections.Counter(corpus.pick(random.Random(s)).number for s in range(300))
    assert picks[2] > 2 * picks[1] > 0
