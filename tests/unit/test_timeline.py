"""Timelines are data: they round-trip through JSON exactly, replay files too, garbage
is a ValueError, ``size`` orders by readability, ``describe`` shows every step."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from composer import schedule
from composer.faults import Capabilities
from composer.templates import KINDS, Command, Template
from composer.timeline import Fault, Replay, Start, Timeline, Trigger, load_replay, save_replay


def _template(name: str, *commands: str) -> Template:
    root = Path("/project/drivers") / name
    return Template(name=name, path=root, commands=tuple(
        Command(name=c, kind=next(k for k in KINDS if c.startswith(k + "_")), path=root / c)
        for c in sorted(commands)))


TEMPLATES = {
    "main": _template("main", "first_setup", "parallel_driver_write", "serial_driver_read",
                      "anytime_poke", "eventually_check", "finally_verify"),
    "solo": _template("solo", "singleton_driver_migrate", "anytime_poke"),
}
CAPS = Capabilities(
    faults=frozenset({"partition", "kill", "pause", "clock", "loss"}),
    fault_targets=("kv-1", "kv-2", "kv-3"),
    driver_nodes=("client-1", "client-2"),
    max_parallel=4,
)

scheduled = schedule.timelines(TEMPLATES, CAPS, max_length=10.0)

# Arbitrary timelines, beyond what the schedule draws: any finite float, any text.
_floats = st.floats(allow_nan=False, allow_infinity=False)
_text = st.text()
_events = st.one_of(
    st.builds(Start, at=_floats, command=_text, node=_text, seed=st.integers()),
    st.builds(Fault, at=_floats, kind=_text, targets=st.lists(_text).map(tuple),
              duration=_floats, shape=st.none() | _text,
              amount=st.none() | st.integers(-10**6, 10**6) | _floats,
              after=st.none() | st.builds(Trigger, id=_text, passed=st.booleans(),
                                          node=st.none() | _text)),
)
arbitrary = st.builds(
    Timeline, template=_text, length=_floats, seed=st.integers(),
    first=st.none() | _text, events=st.lists(_events, max_size=8).map(tuple),
    eventually=st.none() | _text, finally_=st.none() | _text,
)

EXAMPLE = Timeline(
    template="main", length=8.0, seed=42, first="first_setup",
    events=(
        Start(0.0, "parallel_driver_write", "client-1", 7),
        Fault(1.5, "partition", ("kv-1", "kv-2"), 2.0),
        Start(2.5, "serial_driver_read", "client-2", 8),
        Fault(3.0, "kill", ("kv-3",), 1.0),
        Fault(3.5, "partition", ("kv-2",), 1.0, shape="one-way"),
        Fault(4.0, "clock", ("kv-1", "kv-3"), 2.5, amount=-300),
    ),
    eventually="eventually_check", finally_="finally_verify",
)


def test_the_template_fixture_is_sensible():
    kinds = {c.name: c.kind for c in TEMPLATES["main"].commands}
    assert kinds == {"first_setup": "first", "parallel_driver_write": "parallel_driver",
                     "serial_driver_read": "serial_driver", "anytime_poke": "anytime",
                     "eventually_check": "eventually", "finally_verify": "finally"}
    assert TEMPLATES["solo"].command("singleton_driver_migrate").kind == "singleton_driver"


# --- JSON round trip --------------------------------------------------------------


@settings(max_examples=200)
@given(scheduled)
def test_scheduled_timelines_round_trip_exactly(timeline):
    text = json.dumps(timeline.to_json())
    again = Timeline.from_json(json.loads(text))
    assert again == timeline
    assert json.dumps(again.to_json()) == text
    assert all(type(e.targets) is tuple for e in again.events if isinstance(e, Fault))


@settings(max_examples=200)
@given(arbitrary)
def test_arbitrary_timelines_round_trip_exactly(timeline):
    assert Timeline.from_json(json.loads(json.dumps(timeline.to_json()))) == timeline


def test_json_shape():
    data = EXAMPLE.to_json()
    assert data["version"] == 1
    assert data["template"] == "main" and data["finally"] == "finally_verify"
    assert data["events"][0] == {"type": "start", "at": 0.0, "command": "parallel_driver_write",
                                 "node": "client-1", "seed": 7}
    assert data["events"][1] == {"type": "fault", "at": 1.5, "kind": "partition",
                                 "targets": ["kv-1", "kv-2"], "duration": 2.0}
    assert data["events"][4] == {"type": "fault", "at": 3.5, "kind": "partition",
                                 "targets": ["kv-2"], "duration": 1.0, "shape": "one-way"}
    assert data["events"][5] == {"type": "fault", "at": 4.0, "kind": "clock",
                                 "targets": ["kv-1", "kv-3"], "duration": 2.5, "amount": -300}
    json.dumps(data)  # JSON-ready as is


GOOD = EXAMPLE.to_json()


def _with(**changes):
    return {**GOOD, **changes}


def _event(i, **changes):
    events = [dict(e) for e in GOOD["events"]]
    events[i].update(changes)
    return _with(events=events)


@pytest.mark.parametrize("garbage", [
    None, [], "timeline", 3, {}, {"version": 1},
    _with(version=2), _with(version=None), {k: v for k, v in GOOD.items() if k != "version"},
    {k: v for k, v in GOOD.items() if k != "template"},
    {k: v for k, v in GOOD.items() if k != "length"},
    {k: v for k, v in GOOD.items() if k != "seed"},
    _with(length="long"), _with(seed="x"), _with(length=None),
    _with(events=3), _with(events=["x"]), _with(events=[None]), _with(events={"a": 1}),
    _event(0, type="explode"), _event(0, type=None), _event(0, at="soon"),
    _event(1, targets=None), _event(1, targets="kv-1"), _event(1, targets=3),
    _with(events=[{"type": "start", "at": 0}]),
    _with(events=[{"type": "fault", "at": 0, "kind": "kill"}]),
    _with(first=3), _with(eventually=["x"]), _with(finally_=None, **{"finally": {}}),
    _with(template=3), _with(template=None), _event(0, command=3), _event(0, node=None),
    _event(1, kind=1), _event(1, targets=[1, 2]),
    _event(1, shape=3), _event(1, amount="lots"), _event(1, amount=True), _event(1, amount=[1]),
    _event(1, after="snapshot"), _event(1, after={"id": 3}), _event(1, after={"node": "kv-1"}),
    _event(1, after={"id": "a", "passed": "yes"}), _event(1, after={"id": "a", "node": 5}),
])
def test_from_json_rejects_garbage(garbage):
    with pytest.raises(ValueError):
        Timeline.from_json(garbage)


# --- replay files -----------------------------------------------------------------


def test_replay_round_trip(tmp_path):
    replay = Replay(project=tmp_path / "kvstore", backend="local",
                    property="Reads see the latest write", timeline=EXAMPLE,
                    reproduced="3/5")
    path = save_replay(replay, tmp_path / ".composer" / "replays", "reads-latest")
    assert path == tmp_path / ".composer" / "replays" / "reads-latest.json"
    assert load_replay(path) == replay
    data = json.loads(path.read_text())
    assert data["version"] == 1 and data["timeline"] == EXAMPLE.to_json()


@settings(max_examples=25)
@given(timeline=scheduled)
def test_replay_round_trip_any_timeline(tmp_path_factory, timeline):
    directory = tmp_path_factory.mktemp("replays")
    replay = Replay(project=Path("/p"), backend="netns", property="p", timeline=timeline)
    assert load_replay(save_replay(replay, directory, "r")) == replay


@pytest.mark.parametrize("content", [
    "", "not json", "[]", "{}", '{"project": "/p"}', "null",
    json.dumps({"project": "/p", "backend": "local", "property": "p", "timeline": {}}),
    json.dumps({"project": "/p", "backend": "local", "property": "p",
                "timeline": {**GOOD, "version": 99}}),
    json.dumps({"project": "/p", "backend": "local", "property": "p", "timeline": "x"}),
])
def test_corrupt_replay(tmp_path, content):
    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(ValueError) as info:
        load_replay(path)
    assert str(path) in str(info.value)
    assert "replay" in str(info.value)


def test_replay_not_utf8_or_missing(tmp_path):
    path = tmp_path / "binary.json"
    path.write_bytes(b"\xff\xfe\x00\x01")
    with pytest.raises(ValueError, match="binary.json"):
        load_replay(path)
    with pytest.raises(ValueError, match="missing.json"):
        load_replay(tmp_path / "missing.json")


# --- size and describe ------------------------------------------------------------


def test_size_orders_by_how_small_a_timeline_is_to_read():
    t = EXAMPLE
    fewer_events = dataclasses.replace(t, events=t.events[:3])
    no_first = dataclasses.replace(t, first=None)
    narrower = dataclasses.replace(
        t, events=(t.events[0], dataclasses.replace(t.events[1], targets=("kv-1",)))
        + t.events[2:])
    shorter_fault = dataclasses.replace(
        t, events=(t.events[0], dataclasses.replace(t.events[1], duration=0.5)) + t.events[2:])
    shorter = dataclasses.replace(t, length=4.0)
    for smaller in (fewer_events, no_first, narrower, shorter_fault, shorter):
        assert smaller.size() < t.size()
    # event count matters more than anything else
    assert dataclasses.replace(fewer_events, length=100.0, first="x").size() < t.size()
    assert t.size() == t.size()
    empty = Timeline(template="main", length=1.0, seed=0)
    assert empty.size() < fewer_events.size()


@given(scheduled)
def test_size_never_grows_when_an_event_is_removed(timeline):
    for i in range(len(timeline.events)):
        smaller = dataclasses.replace(timeline, events=timeline.events[:i] + timeline.events[i + 1:])
        assert smaller.size() < timeline.size()


def test_a_fault_waiting_for_a_state_says_so_in_json_and_in_words():
    fault = Fault(0.15, "kill", ("kv-2",), 1.0, after=Trigger("snapshot started", True, "kv-2"))
    timeline = dataclasses.replace(EXAMPLE, events=(fault,))
    assert timeline.to_json()["events"][0]["after"] == {
        "id": "snapshot started", "passed": True, "node": "kv-2"}
    assert Timeline.from_json(json.loads(json.dumps(timeline.to_json()))) == timeline
    (line,) = [line for line in timeline.describe() if "kill" in line]
    assert "+0.15s" in line and "after 'snapshot started' on kv-2" in line, line
    failed = dataclasses.replace(fault, after=Trigger("two writers", False, None))
    assert "after 'two writers' (false))" in "".join(
        dataclasses.replace(EXAMPLE, events=(failed,)).describe())


def test_describe_example():
    text = "\n".join(EXAMPLE.describe())
    for word in ("first_setup", "parallel_driver_write on client-1", "seed 7", "partition",
                 "kv-1,kv-2", "2.00s", "serial_driver_read on client-2", "kill", "kv-3",
                 "8.00s", "eventually_check", "finally_verify", "partition one-way kv-2 for 1.00s",
                 "clock     -300s kv-1,kv-3 for 2.50s"):
        assert word in text
    lines = EXAMPLE.describe()
    assert "first_setup" in lines[0] and "finally_verify" in lines[-1]


@given(scheduled)
def test_describe_mentions_every_event(timeline):
    lines = timeline.describe()
    steps = [timeline.first, timeline.eventually, timeline.finally_]
    assert len(lines) == len(timeline.events) + 1 + sum(1 for s in steps if s)
    event_lines = lines[1 if timeline.first else 0:][:len(timeline.events)]
    for line, event in zip(event_lines, timeline.events):
        assert f"{event.at:.2f}s" in line
        if isinstance(event, Start):
            assert event.command in line and event.node in line and str(event.seed) in line
        else:
            assert event.kind in line and ",".join(event.targets) in line
            assert f"for {event.duration:.2f}s" in line
            if event.shape:
                assert event.shape in line
            if event.amount is not None:
                assert f"{abs(event.amount):g}" in line
    for step in steps:
        if step:
            assert any(step in line for line in lines)
