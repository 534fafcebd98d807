"""What an exploration keeps as a finding's shrunk timeline: only one that failed every
time it was tried. Failures depend on timing, so a smaller timeline that failed once and
then passed must not become the replay (it reproduced 0 of 5 times in CI)."""

from __future__ import annotations

import collections
import io

import composer.explore
from composer import config, templates
from composer.explore import explore
from composer.judging import Judged
from composer.faults import Capabilities
from composer.progress import Progress
from composer.runner import TimelineResult

CAPS = Capabilities(faults=frozenset({"kill"}), fault_targets=("db-1",),
                    driver_nodes=("client-1",), max_parallel=4)


def test_a_shrunk_timeline_is_one_that_failed_every_time_it_was_tried(project, monkeypatch,
                                                                       tmp_path):
    project.config("""
        [services.db]
        replicas = 1
        command = "sleep 600"

        [explore]
        timeline = "5s"
        """)
    project.command("parallel_driver_write", "print('written')")
    loaded = config.load(project.root)
    found = templates.discover(loaded.templates_dir)
    tries: collections.Counter = collections.Counter()

    async def run_and_judge(project, templates, backend, timeline, directory, on_event):
        """Three events or more always fail; fewer fail on their first try only."""
        directory.mkdir(parents=True, exist_ok=True)
        tries[timeline] += 1
        fails = len(timeline.events) >= 3 or tries[timeline] == 1
        result = TimelineResult(timeline, directory, True, None, [], 0.01)
        return Judged(result, [], 0, ["P"] if fails else [])

    monkeypatch.setattr(composer.explore, "run_and_judge", run_and_judge)
    result = explore(loaded, found, "local", CAPS, tmp_path / "run", duration=60, seed=3,
                     reruns=2, shrink_budget=30, stop_on_failure=True,
                     progress=Progress(60, io.StringIO(), quiet=True))
    finding = result.findings["P"]
    assert len(finding.first.events) >= 3
    assert len(finding.smallest.events) == 3, finding.smallest
    assert finding.reproduced == finding.reruns == 2
