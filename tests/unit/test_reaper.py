"""One reaper per composer process, also when jobs in threads first need it at once: a
second reaper would drop the first one's pipe, and a reaper whose pipe closes kills and
sweeps what it was told about while the run still uses it."""

from __future__ import annotations

import threading
import time

from composer.clusters import processes


class _SlowPopen:
    """Stands for the reaper process; takes a moment to start, as a Python does."""

    started = 0

    def __init__(self, *args, **kwargs) -> None:
        time.sleep(0.05)
        type(self).started += 1
        self.stdin = self

    def write(self, data: bytes) -> None:
        pass

    def flush(self) -> None:
        pass


def test_jobs_that_start_the_reaper_at_once_start_one(monkeypatch):
    monkeypatch.setattr(processes.subprocess, "Popen", _SlowPopen)
    reaper = processes.Reaper()
    ready = threading.Barrier(8)

    def job(block: int) -> None:
        ready.wait()
        reaper.tell("sweep", block)

    threads = [threading.Thread(target=job, args=(b,)) for b in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert _SlowPopen.started == 1
