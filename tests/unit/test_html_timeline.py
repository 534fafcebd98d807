"""The planned-timeline chart (a pruned timeline's) draws only what has a planned time."""

from __future__ import annotations

from composer.html_timeline import chart_from_plan
from composer.timeline import Fault, Timeline, Trigger


def test_a_fault_waiting_for_a_state_is_not_drawn_at_its_delay():
    timeline = Timeline("main", 5.0, 1, events=(
        Fault(0.1, "kill", ("kv-1",), 1.0, after=Trigger("snapshot started", True, "kv-1")),
        Fault(2.0, "pause", ("kv-2",), 1.0)))
    chart = chart_from_plan(timeline.to_json())
    assert [(b.lane, b.start, b.end) for b in chart.bands] == [("kv-2", 2.0, 3.0)]


def test_a_service_that_exited_on_its_own_is_marked_on_the_chart():
    from composer.html_timeline import chart_from_run, svg

    run = {"log": [{"t": 0.2, "what": "setup complete", "nodes": {"db-1": "127.0.0.1"}},
                   {"t": 1.3, "what": "service exited", "node": "db-1", "exit_code": 7}],
           "invocations": []}
    chart = chart_from_run(run)
    assert (1.3, "db-1 exited 7") in chart.marks
    assert "db-1 exited 7" in svg(chart, "t")
