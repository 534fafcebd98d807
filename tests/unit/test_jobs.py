"""The job pool under ``explore --jobs``: works run at once in threads of their own, their
results and events come back to the caller's thread, and closing the pool cancels what
runs and waits for its cleanup (a timeline's teardown), whatever happens."""

from __future__ import annotations

import asyncio
import threading
import time
from pathlib import Path

import pytest

from composer.jobs import ThreadJobs


async def _sleep_then_echo(item, directory: Path, on_event):
    on_event({"what": "started", "thread": threading.current_thread().name})
    await asyncio.sleep(item)
    return item


def test_run_all_returns_results_in_the_order_given_though_they_end_in_another():
    with ThreadJobs(3, _sleep_then_echo) as pool:
        began = time.monotonic()
        done = pool.run_all([("a", 0.3, Path()), ("b", 0.2, Path()), ("c", 0.01, Path())])
        elapsed = time.monotonic() - began
    assert [d.key for d in done] == ["a", "b", "c"]
    assert [d.value for d in done] == [0.3, 0.2, 0.01]
    assert all(d.error is None and d.seconds > 0 for d in done)
    assert elapsed < 0.5 + 0.2 + 0.01, "the three ran one after another, not at once"


def test_events_reach_the_waiting_thread_with_their_job():
    seen = []

    def on_event(key, entry):
        seen.append((key, entry["thread"], threading.current_thread() is threading.main_thread()))

    with ThreadJobs(2, _sleep_then_echo, on_event) as pool:
        pool.run_all([(1, 0.0, Path()), (2, 0.0, Path())])
    assert sorted(key for key, _, _ in seen) == [1, 2]
    assert all(on_main for _, _, on_main in seen)
    assert {thread for _, thread, _ in seen} == {"composer-job-1", "composer-job-2"}


def test_a_job_that_raises_comes_back_as_its_error_and_the_others_go_on():
    async def work(item, directory, on_event):
        await asyncio.sleep(item)
        if item == 0:
            raise RuntimeError("cluster gone")
        return item

    with ThreadJobs(2, work) as pool:
        done = pool.run_all([("bad", 0, Path()), ("good", 0.1, Path())])
    assert isinstance(done[0].error, RuntimeError) and done[0].value is None
    assert done[1].value == 0.1 and done[1].error is None


def test_no_more_works_than_jobs_and_no_key_twice():
    with ThreadJobs(1, _sleep_then_echo) as pool:
        pool.submit("one", 0.2, Path())
        with pytest.raises(RuntimeError):
            pool.submit("two", 0.0, Path())
        assert pool.free() == 0
        assert [d.key for d in pool.wait()] == ["one"]
        assert pool.free() == 1


def test_closing_cancels_what_runs_and_waits_for_its_cleanup():
    cleaned = []

    async def work(item, directory, on_event):
        try:
            await asyncio.sleep(600)
        finally:
            await asyncio.sleep(0.2)  # a teardown that takes a while
            cleaned.append(item)

    began = time.monotonic()
    with ThreadJobs(3, work) as pool:
        for key in range(3):
            pool.submit(key, key, Path())
        time.sleep(0.2)
    assert sorted(cleaned) == [0, 1, 2], "close returned before every teardown was over"
    assert time.monotonic() - began < 60
    assert not [t for t in threading.enumerate() if t.name.startswith("composer-job-")]


def test_a_job_submitted_as_the_pool_closes_never_starts_its_work():
    started = []

    async def work(item, directory, on_event):
        started.append(item)

    pool = ThreadJobs(1, work)
    pool.close()
    pool.submit("late", None, Path())
    assert isinstance(pool.wait()[0].error, asyncio.CancelledError)
    assert started == []


def test_wait_with_nothing_running_returns_at_once():
    with ThreadJobs(2, _sleep_then_echo) as pool:
        assert pool.wait() == []
        pool.submit("slow", 5, Path())
        assert pool.wait(timeout=0.3) == []
