"""Timelines at once: each job runs one timeline on a cluster of its own, in a thread.

A timeline is mostly waiting (on processes, sockets and timers) inside its own asyncio
loop, and each cluster holds its own address block (``composer.clusters.leftovers``), so
N loops in N threads run N timelines with nothing pickled and no second interpreter.
The explorer stays in the calling thread: results and runner events come back through
one queue that only it reads, so the search, the corpus and the live panel are touched
by one thread. Stopping cancels every job's timeline, whose teardown then runs as it
does for Ctrl-C with one job, and waits for it: nothing outlives ``close``. Imports
run_record (for the event callback's type) and interrupts only.
"""

from __future__ import annotations

import asyncio
import dataclasses
import queue
import threading
import time
from collections.abc import Awaitable, Callable, Hashable
from pathlib import Path
from typing import Any, Generic, TypeVar

from composer.interrupts import interrupts_deferred
from composer.run_record import OnEvent

__all__ = ["Done", "JobLost", "Jobs", "ThreadJobs", "Work"]

T = TypeVar("T")
#: what a job does: run ``timeline`` writing to ``directory``, telling ``on_event``
Work = Callable[[Any, Path, OnEvent], Awaitable[T]]
#: how often a waiting caller looks up (Ctrl-C is seen at once either way)
_POLL_SECONDS = 0.25


class JobLost(Exception):
    """The machine or process running a job went away (a Ray worker or node died): that
    timeline has no verdict, which is an infrastructure event, not a property failure."""


@dataclasses.dataclass
class Done(Generic[T]):
    """A finished job: what its work returned, or what it raised, and how long it took."""

    key: Hashable
    value: T | None = None
    error: BaseException | None = None
    seconds: float = 0.0


class Jobs(Generic[T]):
    """Where an exploration's timelines run, ``jobs`` at once: threads here
    (``ThreadJobs``), or Ray tasks (``composer.ray_jobs``). A context manager: leaving
    the block, on any path, stops what still runs and waits for its cleanup."""

    jobs: int

    def __enter__(self) -> Jobs[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def running(self) -> int:
        """Jobs started whose result has not been collected yet."""
        raise NotImplementedError

    def free(self) -> int:
        return self.jobs - self.running

    def submit(self, key: Hashable, item: Any, directory: Path) -> None:
        """Start the work on ``item`` as job ``key`` (a job must be free, the key new)."""
        raise NotImplementedError

    def wait(self, timeout: float | None = None) -> list[Done[T]]:
        """Return the jobs that finished, waiting until one has (or ``timeout`` passed)."""
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def run_all(self, items: list[tuple[Hashable, Any, Path]]) -> list[Done[T]]:
        """Run every (key, item, directory) at once, nothing else running and a free job
        for each; return their results in the order given."""
        if self.running or len(items) > self.jobs:
            raise RuntimeError(f"{len(items)} works at once need as many idle jobs")
        for key, item, directory in items:
            self.submit(key, item, directory)
        results: dict[Hashable, Done[T]] = {}
        while len(results) < len(items):
            results.update((done.key, done) for done in self.wait())
        return [results[key] for key, _, _ in items]


class ThreadJobs(Jobs[T]):
    """Up to ``jobs`` works at once, each in a thread with its own event loop; closing
    cancels what still runs and waits until each job's own cleanup is over."""

    def __init__(self, jobs: int, work: Work,
                 on_event: Callable[[Hashable, dict], None] | None = None) -> None:
        if jobs < 1:
            raise ValueError(f"jobs must be at least 1, not {jobs}")
        self.jobs = jobs
        self._work = work
        self._on_event = on_event
        self._messages: queue.SimpleQueue = queue.SimpleQueue()
        self._lock = threading.Lock()
        #: key -> its thread, and its loop and task once running
        self._threads: dict[Hashable, threading.Thread] = {}
        self._tasks: dict[Hashable, tuple[asyncio.AbstractEventLoop, asyncio.Task]] = {}
        self._stopping = False

    @property
    def running(self) -> int:
        return len(self._threads)

    def submit(self, key: Hashable, item: Any, directory: Path) -> None:
        if self.free() <= 0 or key in self._threads:
            raise RuntimeError(f"no free job, or job {key!r} runs already")
        thread = threading.Thread(target=self._job, args=(key, item, directory),
                                  name=f"composer-job-{key}", daemon=True)
        self._threads[key] = thread
        thread.start()

    def wait(self, timeout: float | None = None) -> list[Done[T]]:
        """Return the jobs that finished, waiting until one has (or ``timeout`` passed);
        runner events that came meanwhile go to ``on_event`` first, in this thread."""
        finished: list[Done[T]] = []
        waited = 0.0
        while not finished and self._threads:
            try:
                message = self._messages.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                waited += _POLL_SECONDS
                if timeout is not None and waited >= timeout:
                    break
                continue
            while True:  # everything already there, without waiting again
                if isinstance(message, Done):
                    self._threads.pop(message.key).join()
                    finished.append(message)
                elif self._on_event is not None:
                    self._on_event(*message)
                try:
                    message = self._messages.get_nowait()
                except queue.Empty:
                    break
        return finished

    def close(self) -> None:
        """Cancel every job still running and wait until each has cleaned up; a second
        Ctrl-C meanwhile only says that composer is finishing."""
        with interrupts_deferred():
            with self._lock:
                self._stopping = True
                for loop, task in self._tasks.values():
                    loop.call_soon_threadsafe(task.cancel)
            for thread in list(self._threads.values()):
                thread.join()
            self._threads.clear()

    # -- in the job's thread -----------------------------------------------------------

    def _job(self, key: Hashable, item: Any, directory: Path) -> None:
        began = time.monotonic()
        try:
            done = Done(key, value=asyncio.run(self._main(key, item, directory)))
        except BaseException as exc:  # the caller decides; a thread cannot raise to it
            done = Done(key, error=exc)
        finally:
            with self._lock:
                self._tasks.pop(key, None)
        done.seconds = time.monotonic() - began
        self._messages.put(done)

    async def _main(self, key: Hashable, item: Any, directory: Path) -> T:
        task = asyncio.current_task()
        assert task is not None
        with self._lock:
            if self._stopping:
                raise asyncio.CancelledError
            self._tasks[key] = (asyncio.get_running_loop(), task)

        def event(entry: dict) -> None:
            self._messages.put((key, entry))

        return await self._work(item, directory, event)
