"""--duration as the whole budget: what fits, what is owed to re-runs, when shrinking
must stop. Times are relative to now, so nothing here waits."""

from __future__ import annotations

import time

from composer.budget import Budget


def test_the_first_timeline_always_runs_and_later_ones_only_if_they_fit():
    budget = Budget(duration=1.0, shrink=120, reruns=5, longest_timeline=20)
    assert budget.may_search(0)  # nothing ran yet: a 1 s budget still runs one
    budget.ran(3.0)
    assert not budget.may_search(0)  # the next would end 2 s late
    roomy = Budget(duration=60.0, shrink=120, reruns=5, longest_timeline=5)
    roomy.ran(3.0)
    assert roomy.may_search(0)
    assert not roomy.may_search(4)  # 4 failures owe 4 x 5 re-runs x 3 s = 60 s


def test_shrinking_stops_where_the_re_runs_of_every_failure_still_fit():
    budget = Budget(duration=100.0, shrink=120, reruns=5, longest_timeline=5)
    budget.ran(2.0)
    now = time.monotonic()
    # 100 s left, two failures owe 2 x 5 x 2 s = 20 s: shrinking may use about 80 s
    assert abs(budget.shrink_deadline(2) - (now + 80)) < 1
    generous = Budget(duration=1000.0, shrink=30, reruns=5, longest_timeline=5)
    generous.ran(2.0)
    assert abs(generous.shrink_deadline(1) - (time.monotonic() + 30)) < 1  # --shrink-budget


def test_in_a_tight_budget_shrinking_still_gets_half_of_what_is_left():
    """10 s left, one failure owing 5 re-runs of 2 s: re-runs alone would take it all
    (found by a user: `cut short: shrinking` with 6 s left); shrinking gets 5 s."""
    budget = Budget(duration=10.0, shrink=120, reruns=5, longest_timeline=5)
    budget.ran(2.0)
    assert abs(budget.shrink_deadline(1) - (time.monotonic() + 5)) < 1


def test_a_re_run_starts_only_if_it_ends_in_time():
    budget = Budget(duration=10.0, shrink=120, reruns=5, longest_timeline=5)
    budget.ran(4.0)
    assert budget.may_rerun()
    budget.ran(20.0)  # timelines got slower: a mean of 12 s no longer fits
    assert not budget.may_rerun()
    assert "budget 10s in all" in budget.describe()


def test_with_jobs_the_re_runs_owed_go_that_many_at_once():
    one = Budget(duration=60.0, shrink=120, reruns=5, longest_timeline=5)
    four = Budget(duration=60.0, shrink=120, reruns=5, longest_timeline=5, jobs=4)
    for budget in (one, four):
        budget.ran(3.0)
    assert one.owed(2) == 2 * 5 * 3.0
    assert four.owed(2) == 2 * 2 * 3.0  # 5 re-runs in batches of 4: two rounds
    assert not one.may_search(4) and four.may_search(4)
