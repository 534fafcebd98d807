"""``explore --jobs``: one search feeding several jobs draws, for a seed, the same
timelines whatever order the jobs end in (the baseline's are the same for any number of
jobs); a failure is shrunk with its candidates run side by side, and the re-runs go N
at once.

The runs are fakes (each timeline's behaviour is a function of its events, its wall
clock random), so the search, not the system, is what is compared."""

from __future__ import annotations

import asyncio
import io
import random
import threading

import pytest

import composer.explore
from composer import config, templates
from composer.explore import explore
from composer.errors import InfraError
from composer.faults import Capabilities
from composer.jobs import JobLost
from composer.judging import Judged
from composer.progress import Progress
from composer.runner import TimelineResult
from composer.timeline import Fault, Start

CAPS = Capabilities(faults=frozenset({"kill", "stop"}), fault_targets=("db-1", "db-2"),
                    driver_nodes=("client-1",), max_parallel=4)


@pytest.fixture
def loaded(project):
    project.config("""
        [services.db]
        replicas = 2
        command = "sleep 600"

        [explore]
        timeline = "5s"
        """)
    for name in ("parallel_driver_a", "parallel_driver_b", "serial_driver_c"):
        project.command(name, "print('ok')")
    loaded = config.load(project.root)
    return loaded, templates.discover(loaded.templates_dir)


def _fake_runs(monkeypatch, fails=lambda timeline: False):
    """Make every timeline a fake run: exits that depend on its events (so the guided
    search has behaviour to learn from), a random wall clock (so jobs end out of order);
    return the timelines run, by number, the most that ran at once, and the order in
    which they ended."""
    ran: dict[int, object] = {}
    ended: list[int] = []
    running, most = [0], [0]
    lock = threading.Lock()
    jitter = random.Random()

    async def run_and_judge(project, found, backend, timeline, directory, on_event):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            await asyncio.sleep(jitter.uniform(0.0, 0.02))
            directory.mkdir(parents=True, exist_ok=True)
            log = [{"t": 1.0 + e.at, "what": "exit", "command": e.command,
                    "status": "exited", "exit_code": (e.seed + int(e.at * 10)) % 200}
                   for e in timeline.events if isinstance(e, Start)]
            log += [{"t": 1.0 + e.at, "what": "fault", "kind": e.kind,
                     "targets": list(e.targets)}
                    for e in timeline.events if isinstance(e, Fault)]
            if directory.name.isdigit():  # not a re-run
                ran[int(directory.name)] = timeline
                ended.append(int(directory.name))
            result = TimelineResult(timeline, directory, True, None, log, 0.01,
                                    phase_start=1.0)
            return Judged(result, [], 0, ["P"] if fails(timeline) else [])
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(composer.explore, "run_and_judge", run_and_judge)
    return ran, most, ended


def _explore(loaded, tmp_path, jobs: int, seed: int, name: str = "run", **options):
    project, found = loaded
    options = {"duration": 4, "reruns": 0, "shrink_budget": 30, **options}
    return explore(project, found, "local", CAPS, tmp_path / f"{name}-{jobs}-{seed}",
                   seed=seed, jobs=jobs, progress=Progress(60, io.StringIO(), quiet=True),
                   **options)


@pytest.mark.parametrize("generator", ["guided", "random"])
def test_a_seed_draws_the_same_timelines_whatever_order_the_jobs_end_in(
        loaded, tmp_path, monkeypatch, generator):
    first, _, ended_first = _fake_runs(monkeypatch)
    _explore(loaded, tmp_path, 3, seed=7, generator=generator)
    second, most, ended_second = _fake_runs(monkeypatch)
    result = _explore(loaded, tmp_path, 3, seed=7, generator=generator, name="again")
    assert most[0] == 3, "three jobs never ran at once"
    common = min(len(first), len(second))
    assert common >= 40, (len(first), len(second))
    assert ended_first[:common] != ended_second[:common], "the same order: the test is void"
    assert [first[n] for n in range(1, common + 1)] == [second[n] for n in range(1, common + 1)]
    assert result.jobs == 3 and result.timelines == len(second)
    if generator == "guided":
        assert any(e.parent is not None for e in result.corpus.entries
                   if e.number <= common), (
            "no mutation among the timelines compared: the test would not see a search "
            "that learns in completion order")


def test_the_baseline_draws_the_same_timelines_with_any_number_of_jobs(loaded, tmp_path,
                                                                       monkeypatch):
    one, _, _ = _fake_runs(monkeypatch)
    _explore(loaded, tmp_path, 1, seed=7, generator="random")
    three, _, _ = _fake_runs(monkeypatch)
    _explore(loaded, tmp_path, 3, seed=7, generator="random")
    common = min(len(one), len(three))
    assert common >= 40
    assert [one[n] for n in range(1, common + 1)] == [three[n] for n in range(1, common + 1)]


def test_another_seed_draws_other_timelines(loaded, tmp_path, monkeypatch):
    first, _, _ = _fake_runs(monkeypatch)
    _explore(loaded, tmp_path, 2, seed=7)
    second, _, _ = _fake_runs(monkeypatch)
    _explore(loaded, tmp_path, 2, seed=8)
    assert [first[n] for n in range(1, 11)] != [second[n] for n in range(1, 11)]


def test_with_jobs_a_failure_is_shrunk_and_re_run_side_by_side(loaded, tmp_path,
                                                                monkeypatch):
    def two_kills(timeline):
        return sum(isinstance(e, Fault) and e.kind == "kill" for e in timeline.events) >= 2

    ran, most, _ = _fake_runs(monkeypatch, two_kills)
    result = _explore(loaded, tmp_path, 4, seed=3, duration=30, reruns=5,
                      stop_on_failure=True)
    finding = result.findings["P"]
    assert most[0] == 4
    kills = [e for e in finding.smallest.events if isinstance(e, Fault)]
    assert len(finding.smallest.events) == 2 and len(kills) == 2, finding.smallest
    assert finding.reproduced == finding.reruns == 5
    assert two_kills(ran[int(finding.directory.name)])
    assert (tmp_path / "run-4-3" / "reruns").is_dir()


def test_a_lost_job_costs_its_timeline_only_and_a_cluster_that_runs_none_is_an_error(
        loaded, tmp_path, monkeypatch):
    ran, _, _ = _fake_runs(monkeypatch)
    fake = composer.explore.run_and_judge

    async def every_third_lost(project, found, backend, timeline, directory, on_event):
        if directory.name.isdigit() and int(directory.name) % 3 == 0:
            raise JobLost("WorkerCrashedError: the worker died")
        return await fake(project, found, backend, timeline, directory, on_event)

    monkeypatch.setattr(composer.explore, "run_and_judge", every_third_lost)
    result = _explore(loaded, tmp_path, 2, seed=5, duration=2)
    assert result.lost and all(n % 3 == 0 for n, _ in result.lost)
    assert result.lost[0][1] == "WorkerCrashedError: the worker died"
    assert result.timelines == len(ran) and result.timelines >= 2 * len(result.lost) - 2

    async def all_lost(*args):
        raise JobLost("NodeDiedError: gone")

    monkeypatch.setattr(composer.explore, "run_and_judge", all_lost)
    with pytest.raises(InfraError, match="10 timelines in a row lost their job"):
        _explore(loaded, tmp_path, 2, seed=6, duration=30)
