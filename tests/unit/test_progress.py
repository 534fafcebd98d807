"""Progress: key=value lines off a terminal (CI logs, scripts), a live panel on one."""

from __future__ import annotations

import io
import shlex
from types import SimpleNamespace

from composer.progress import Progress
from composer.properties import PropertyTable


def _parse(line: str) -> tuple[str, dict[str, str]]:
    word, *pairs = shlex.split(line)
    return word, dict(pair.split("=", 1) for pair in pairs)


def _record(message: str, kind: str, condition: bool) -> dict:
    return {"antithesis_assert": {
        "id": message, "message": message, "condition": condition, "hit": True,
        "must_hit": True, "assert_type": kind, "display_type": kind.capitalize(),
        "location": {"file": "d", "function": "", "class": "", "begin_line": 1,
                     "begin_column": 0}}}


def _feed(progress: Progress) -> None:
    table = PropertyTable([_record("Never seen", "sometimes", False)["antithesis_assert"]
                           | {"hit": False}])
    table.add_timeline([_record("Writes survive", "always", True),
                        _record("A read 'failed' = \"ok\"", "always", False)])
    exploration = SimpleNamespace(timelines=1, table=table,
                                  corpus=SimpleNamespace(behaviours=42, entries=[1, 2, 3]))
    progress.timeline_started(1, SimpleNamespace(length=3.0, events=()))
    for entry in ({"what": "setup complete"}, {"what": "fault", "kind": "kill", "targets": ["a"]},
                  {"what": "fault", "kind": "pause", "targets": []},
                  {"what": "driver phase over"}):
        progress.event(entry)
    progress.timeline_done(1, SimpleNamespace(failed=True,
                                              violations=["A read 'failed' = \"ok\""]),
                           exploration)
    progress.note("shrinking a timeline of 5 events", stage="shrinking")
    progress.done()


def test_off_a_terminal_every_line_is_key_value_pairs():
    out = io.StringIO()
    _feed(Progress(60.0, stream=out))
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    word, done = _parse(lines[0])
    assert word == "progress"
    assert done["timeline"] == "1" and done["verdict"] == "fail"
    assert done["failed"] == "A read 'failed' = \"ok\""
    assert (done["passing"], done["failing"], done["unreached"]) == ("1", "1", "1")
    assert done["faults"] == "1"  # the pause hit nothing
    assert float(done["elapsed"]) + float(done["remaining"]) == 60.0
    assert (done["behaviours"], done["corpus"]) == ("42", "3")
    word, note = _parse(lines[1])
    assert word == "note" and note["stage"] == "shrinking"
    assert note["text"] == "shrinking a timeline of 5 events"


def test_quiet_prints_nothing_and_a_terminal_gets_the_live_panel():
    quiet = io.StringIO()
    _feed(Progress(60.0, stream=quiet, quiet=True))
    assert quiet.getvalue() == ""
    terminal = io.StringIO()
    progress = Progress(60.0, stream=terminal, live=True)
    _feed(progress)
    shown = terminal.getvalue()
    assert "faults" in shown and "kill 1" in shown and "unreached" in shown
    assert "42 behaviours" in shown and "3 timelines kept as seeds" in shown
    assert "note " in shown  # notes still get a line of their own


def _exploration(timelines: int) -> SimpleNamespace:
    return SimpleNamespace(timelines=timelines, table=PropertyTable(),
                           corpus=SimpleNamespace(behaviours=0, entries=[]))


def test_the_panel_shows_every_timeline_running_at_once_with_its_phase():
    progress = Progress(60.0, stream=io.StringIO(), quiet=True)
    for number in (4, 5, 6):
        progress.timeline_started(number, None)
    progress.event({"what": "setup complete"}, 5)
    progress.event({"what": "driver phase over"}, 6)
    progress.event({"what": "setup complete"})  # whose? three run: not guessed
    assert progress.running == {4: "setup", 5: "drivers", 6: "after drivers"}
    assert "3 running: 4 setup, 5 drivers, 6 after drivers" in _text(progress)
    progress.timeline_done(5, SimpleNamespace(failed=False, violations=[], result=None),
                           _exploration(1))
    progress.timeline_ended(6)
    assert "timeline 4: setup" in _text(progress)


def test_faults_of_a_timeline_whose_events_came_only_at_its_end_are_counted_once():
    progress = Progress(60.0, stream=io.StringIO(), quiet=True)
    kill = {"what": "fault", "kind": "kill", "targets": ["kv-1"]}
    progress.timeline_started(1, None)  # live events (threads): counted as they come
    progress.event(kill, 1)
    progress.timeline_done(1, SimpleNamespace(failed=False, violations=[],
                                              result=SimpleNamespace(log=[kill])),
                           _exploration(1))
    progress.timeline_started(2, None)  # a Ray task: its log arrives with its verdict
    progress.timeline_done(2, SimpleNamespace(failed=False, violations=[],
                                              result=SimpleNamespace(log=[kill, kill])),
                           _exploration(2))
    assert progress.faults["kill"] == 3


def _text(progress: Progress) -> str:
    from rich.console import Console

    console = Console(file=io.StringIO(), width=200)
    console.print(progress._panel())
    return console.file.getvalue()
