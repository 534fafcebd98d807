"""Utilization counts what every timeline exercised, including commands that never ran."""

from pathlib import Path

from composer.templates import Command, Template
from composer.utilization import Utilization


def test_commands_and_faults_are_counted_across_timelines():
    template = Template("main", Path("/t"), (
        Command("parallel_driver_put", "parallel_driver", Path("/t/p")),
        Command("finally_count", "finally", Path("/t/f")),
        Command("anytime_check", "anytime", Path("/t/a"))))
    used = Utilization()
    used.declare(template)
    used.add([{"what": "start", "command": "parallel_driver_put"},
              {"what": "fault", "kind": "kill", "targets": ["db-1"]},
              {"what": "fault", "kind": "pause", "targets": []},  # skipped: hit nothing
              {"what": "exit", "command": "parallel_driver_put", "status": "exited"},
              {"what": "start", "command": "parallel_driver_put"},
              {"what": "exit", "command": "parallel_driver_put", "status": "timeout"}])
    used.add([{"what": "start", "command": "anytime_check"},
              {"what": "exit", "command": "anytime_check", "status": "killed"},
              {"what": "fault", "kind": "kill", "targets": ["db-2"]}])
    assert used.to_json() == {
        "timelines": 2,
        "commands": {
            "anytime_check": {"kind": "anytime", "started": 1, "completed": 0},
            "finally_count": {"kind": "finally", "started": 0, "completed": 0},
            "parallel_driver_put": {"kind": "parallel_driver", "started": 2, "completed": 1}},
        "commands_by_kind": {"anytime": 1, "parallel_driver": 2},
        "faults": {"kill": 2},
        "never_completed": ["anytime_check", "finally_count"],
    }
