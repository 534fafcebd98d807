"""The runner on hand-written timelines: faults and heals land where the timeline says,
ANTITHESIS_STOP_FAULTS pauses them, eventually_ sees every node restarted, and finally_
runs only when every command completed on its own."""

from __future__ import annotations

import asyncio
import json
import shlex
import subprocess

from composer import config, templates
from composer.runner import run_timeline
from composer.timeline import Fault, Start, Timeline, Trigger
from tests.conftest import need

CONFIG = """
[services.db]
replicas = 2
command = "python3 -c 'import socket, sys, time; s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind((sys.argv[1], 7000)); s.listen(); time.sleep(600)' {host}"
ready = { tcp = 7000 }

[explore]
command_timeout = "2s"
"""

PROBE = """
import os, socket, sys
up = []
for host in os.environ["COMPOSER_HOSTS_DB"].split(","):
    try:
        socket.create_connection((host, 7000), timeout=0.5).close()
        up.append(host)
    except OSError:
        pass
print(len(up))
"""


def _run(project, timeline: Timeline, config_text: str = CONFIG):
    project.config(config_text)
    loaded = config.load(project.root)
    template = templates.discover(loaded.templates_dir)["main"]
    directory = project.root / "out"
    result = asyncio.run(run_timeline(timeline, loaded, template, "local", directory))
    run = json.loads((directory / "run.json").read_text())
    return result, run


def _stdout(run, command: str) -> list[str]:
    return [open(i["stdout"]).read().strip() for i in run["invocations"] if i["command"] == command]


def test_kill_fault_takes_a_node_down_until_its_heal(project):
    project.command("serial_driver_probe", PROBE)
    timeline = Timeline("main", length=2.0, seed=1, events=(
        Fault(0.0, "kill", ("db-1",), 1.0),
        Start(0.3, "serial_driver_probe", "client-1", 1),
        Start(1.6, "serial_driver_probe", "client-1", 2),
    ))
    result, run = _run(project, timeline)
    assert result.setup_ok
    assert _stdout(run, "serial_driver_probe") == ["1", "2"]
    whats = [entry["what"] for entry in run["log"]]
    assert whats.index("fault") < whats.index("heal")


def test_stop_faults_command_pauses_faults(project):
    project.command("first_calm", "#!/bin/sh\n\"$ANTITHESIS_STOP_FAULTS\" 30\n")
    project.command("serial_driver_probe", PROBE)
    timeline = Timeline("main", length=1.5, seed=1, first="first_calm", events=(
        Fault(0.0, "kill", ("db-1", "db-2"), 1.0),
        Start(0.3, "serial_driver_probe", "client-1", 1),
    ))
    _, run = _run(project, timeline)
    assert _stdout(run, "serial_driver_probe") == ["2"]
    assert any(e.get("reason", "").startswith("faults paused") for e in run["log"])


def test_eventually_runs_after_drivers_are_killed_and_nodes_restarted(project):
    project.command("parallel_driver_forever", "import time; time.sleep(60)")
    project.command("eventually_probe", PROBE)
    timeline = Timeline("main", length=1.0, seed=1, eventually="eventually_probe", events=(
        Start(0.0, "parallel_driver_forever", "client-1", 1),
        Fault(0.1, "kill", ("db-1", "db-2"), 30.0),
    ))
    _, run = _run(project, timeline)
    statuses = {i["command"]: i["status"] for i in run["invocations"]}
    assert statuses == {"parallel_driver_forever": "killed", "eventually_probe": "exited"}
    assert _stdout(run, "eventually_probe") == ["2"]


def test_finally_is_skipped_when_a_command_timed_out(project):
    project.command("parallel_driver_hang", "import time; time.sleep(60)")
    project.command("finally_check", "print('ran')")
    timeline = Timeline("main", length=0.5, seed=1, finally_="finally_check", events=(
        Start(0.0, "parallel_driver_hang", "client-1", 1),
    ))
    _, run = _run(project, timeline)
    assert [i["command"] for i in run["invocations"]] == ["parallel_driver_hang"]
    assert run["invocations"][0]["status"] == "timeout"
    records = [json.loads(line) for line in (project.root / "out" / "composer.jsonl").open()]
    zero_exit = [r["antithesis_assert"] for r in records
                 if r["antithesis_assert"]["id"] == "Commands finish with zero exit code"]
    assert [z["condition"] for z in zero_exit] == [False]


def test_finally_runs_when_everything_completed(project):
    project.command("parallel_driver_quick", "print('quick')")
    project.command("finally_check", "print('ran')")
    timeline = Timeline("main", length=0.5, seed=1, finally_="finally_check", events=(
        Start(0.0, "parallel_driver_quick", "client-1", 1),
        Fault(0.0, "pause", ("db-1",), 5.0),
    ))
    _, run = _run(project, timeline)
    assert _stdout(run, "finally_check") == ["ran"]


STUBBORN = CONFIG.replace("import socket, sys, time;", "import signal, socket, sys, time; "
                          "signal.signal(signal.SIGTERM, signal.SIG_IGN);")


def test_a_stop_still_waiting_for_its_exit_is_healed_by_a_restart(project):
    """A service that ignores SIGTERM is still exiting when the driver phase ends: the
    heal must kill and restart it, not leave the node down."""
    project.command("parallel_driver_quick", "print('quick')")
    project.command("finally_probe", PROBE)
    project.config(STUBBORN)
    loaded = config.load(project.root)
    template = templates.discover(loaded.templates_dir)["main"]
    timeline = Timeline("main", length=1.0, seed=1, finally_="finally_probe", events=(
        Start(0.0, "parallel_driver_quick", "client-1", 1),
        Fault(0.2, "stop", ("db-1",), 30.0),
    ))
    asyncio.run(run_timeline(timeline, loaded, template, "local", project.root / "out"))
    run = json.loads((project.root / "out" / "run.json").read_text())
    assert _stdout(run, "finally_probe") == ["2"]



def test_a_stop_of_a_service_ignoring_sigterm_comes_and_heals_at_its_planned_times(project):
    """The 5 s grace wait of a stop runs beside the schedule: the fault is in the log at
    its planned 1.0 s, the heal at 2.0 s, a kill on another node at its own 1.5 s
    (before the fix: the stop logged at 6 s, healed at 7 s); each says when it was
    planned."""
    project.command("serial_driver_probe", PROBE)
    timeline = Timeline("main", length=3.0, seed=1, events=(
        Fault(1.0, "stop", ("db-1",), 1.0),
        Fault(1.5, "kill", ("db-2",), 0.5),
        Start(1.7, "serial_driver_probe", "client-1", 1),
    ))
    _, run = _run(project, timeline, STUBBORN)
    phase = run["driver_phase_start"]
    faults = {e["kind"]: e for e in run["log"] if e["what"] == "fault"}
    heals = {e["targets"][0]: e for e in run["log"] if e["what"] == "heal"}
    assert faults["stop"]["planned_t"] == round(phase + 1.0, 3)
    assert faults["kill"]["planned_t"] == round(phase + 1.5, 3)
    assert heals["db-1"]["planned_t"] == round(phase + 2.0, 3)
    # a stop that waited out its grace would log at phase + 6 s, its heal at phase + 7 s
    assert faults["stop"]["t"] < phase + 3.0
    assert faults["stop"]["t"] < heals["db-1"]["t"] < phase + 4.0
    # at 1.7 s db-2 is down; db-1, ignoring SIGTERM, still serves in its grace time
    assert _stdout(run, "serial_driver_probe") == ["1"]


CLOCK_SERVICE = """
[services.db]
replicas = 2
command = "python3 -c 'import socket, sys, threading, time; s = socket.create_server((sys.argv[1], 7000)); threading.Thread(target=lambda: [c.sendall(str(time.time()).encode()) or c.close() for c, _ in iter(s.accept, None)], daemon=True).start(); [time.sleep(0.01) for _ in iter(int, 1)]' {host}"
ready = { tcp = 7000 }
"""

CLOCK_PROBE = """
import os, socket, time
for host in os.environ["COMPOSER_HOSTS_DB"].split(","):
    with socket.create_connection((host, 7000), timeout=2) as conn:
        print(round(float(conn.recv(64)) - time.time()), end=" ")
"""


def test_clock_fault_moves_the_service_clock_until_its_heal(project):
    need("local", "clock")
    project.command("serial_driver_clock", CLOCK_PROBE)
    project.command("eventually_clock", CLOCK_PROBE)
    timeline = Timeline("main", length=3.0, seed=1, eventually="eventually_clock", events=(
        Fault(0.0, "clock", ("db-2",), 4.0, amount=-3600),
        Fault(0.1, "clock", ("db-2",), 3.0, amount=30),
        Start(1.0, "serial_driver_clock", "client-1", 2),
    ))
    project.config(CLOCK_SERVICE)
    loaded = config.load(project.root)
    template = templates.discover(loaded.templates_dir)["main"]
    result = asyncio.run(run_timeline(timeline, loaded, template, "local", project.root / "out"))
    run = json.loads((project.root / "out" / "run.json").read_text())
    assert result.setup_ok
    # offsets of overlapping faults add up; the driver's own clock is never moved; the
    # service kept sleeping in a loop throughout (libfaketime 0.9.10 broke time.sleep)
    assert _stdout(run, "serial_driver_clock") == ["0 -3570"]
    assert _stdout(run, "eventually_clock") == ["0 0"]  # healed before eventually_


CONNECTS = """
import os, socket
ok = 0
for host in os.environ["COMPOSER_HOSTS_DB"].split(",") * 10:
    try:
        socket.create_connection((host, 7000), timeout=0.3).close()
        ok += 1
    except OSError:
        pass
print(ok)
"""


def test_network_faults_healed_together_leave_no_rule_behind(project):
    """Faults still in force at the end of the driver phase are healed at once; the
    network must then be whole, whichever heal's rules reach the kernel last."""
    need("local", "loss")
    project.command("eventually_connects", CONNECTS)
    project.command("anytime_nothing", "pass")
    events = tuple(Fault(0.1 * i, kind, (f"db-{1 + i % 2}",), 5.0, amount=90 if kind == "loss" else None,
                         shape="isolate" if kind == "partition" else None)
                   for i, kind in enumerate(["loss", "partition", "loss", "partition"] * 2))
    timeline = Timeline("main", length=1.0, seed=1, eventually="eventually_connects", events=events)
    result, run = _run(project, timeline)
    assert result.setup_ok
    assert _stdout(run, "eventually_connects") == ["20"]



def test_hits_written_during_setup_are_stamped_before_the_driver_phase(project):
    """A service's moment at start-up is not a moment of the driver phase: stamped at the
    phase's start, the search would aim faults at time 0 for a state long gone."""
    project.config(CONFIG)
    record = ('{"antithesis_assert": {"id": "started", "message": "started", '
              '"condition": true, "hit": true, "must_hit": true, "assert_type": "sometimes", '
              '"display_type": "Sometimes"}}')
    service = ("import os, socket, sys, time; "
               f"open(os.environ['ANTITHESIS_SDK_LOCAL_OUTPUT'], 'a').write({record!r} + chr(10)); "
               "time.sleep(0.3); s = socket.socket(); "
               "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
               "s.bind((sys.argv[1], 7000)); s.listen(); time.sleep(600)")
    config_text = CONFIG.replace(CONFIG.split("command = ")[1].split("\n")[0],
                                 json.dumps(f"python3 -c {shlex.quote(service)} {{host}}"))
    project.command("parallel_driver_idle", "import time; time.sleep(0.2)")
    timeline = Timeline("main", length=0.5, seed=1, events=(
        Start(0.0, "parallel_driver_idle", "client-1", 1),))
    _, run = _run(project, timeline, config_text)
    started = [h for h in run["hits"] if h["id"] == "started"]
    assert len(started) == 2  # one per db node
    assert all(h["at"] < run["driver_phase_start"] for h in started), (started, run)


def test_a_fault_with_a_trigger_waits_for_its_state_and_one_whose_state_never_shows_is_skipped(
        project):
    """A focused fault aims at a state, not a time: it comes right after the state first
    shows in this run, however late; a state that never shows means no fault at all."""
    record = ('{"antithesis_assert": {"id": "poked", "message": "poked", '
              '"condition": true, "hit": true, "must_hit": true, "assert_type": "sometimes", '
              '"display_type": "Sometimes"}}')
    service = ("import os, socket, sys; s = socket.socket(); "
               "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
               "s.bind((sys.argv[1], 7000)); s.listen(); "
               "out = os.environ['ANTITHESIS_SDK_LOCAL_OUTPUT']; "
               "[open(out, 'a').write(" + repr(record) + " + chr(10)) "
               "for c in iter(lambda: s.accept()[0], None) if c.recv(4) == b'poke']")
    config_text = CONFIG.replace(CONFIG.split("command = ")[1].split("\n")[0],
                                 json.dumps(f"python3 -c {shlex.quote(service)} {{host}}"))
    project.command("parallel_driver_poke", (
        "import os, socket\n"
        "host = os.environ['COMPOSER_HOSTS_DB'].split(',')[0]\n"
        "socket.create_connection((host, 7000)).sendall(b'poke')\n"))
    timeline = Timeline("main", length=2.0, seed=1, events=(
        Fault(0.1, "kill", ("db-1",), 0.5, after=Trigger("poked", True, "db-1")),
        Fault(0.0, "pause", ("db-2",), 0.5, after=Trigger("poked", True, "db-2")),
        Start(0.8, "parallel_driver_poke", "client-1", 1),
    ))
    result, run = _run(project, timeline, config_text)
    assert result.setup_ok
    phase = run["driver_phase_start"]
    (poked,) = [h for h in run["hits"] if h["id"] == "poked"]
    (fault,) = [e for e in run["log"] if e["what"] == "fault"]
    assert fault["kind"] == "kill" and fault["targets"] == ["db-1"]
    assert poked["at"] > phase + 0.8 and fault["t"] >= poked["at"] + 0.1, (poked, fault, phase)
    (skipped,) = [e for e in run["log"] if e["what"] == "skip"]
    assert skipped["fault"] == "pause" and "never showed" in skipped["reason"], skipped


def test_a_waiting_serial_driver_holds_back_no_later_parallel_driver(project):
    """The serial driver waits for the running parallel one; the parallel driver planned
    after it starts at its own time beside the first, and the serial one once both ended."""
    project.command("parallel_driver_slow", "import time; time.sleep(1.2)")
    project.command("serial_driver_alone", "print('alone')")
    timeline = Timeline("main", length=4.0, seed=1, events=(
        Start(0.0, "parallel_driver_slow", "client-1", 1),
        Start(0.2, "serial_driver_alone", "client-1", 2),
        Start(0.5, "parallel_driver_slow", "client-1", 3),
    ))
    _, run = _run(project, timeline)
    started = {i["seed"]: i["started"] - run["driver_phase_start"] for i in run["invocations"]}
    assert started[3] < 1.0, started  # it did not wait for the serial driver
    assert started[2] > started[3] + 1.2, started  # which ran alone, after both
    assert _stdout(run, "serial_driver_alone") == ["alone"]


def test_a_driver_that_exits_0_leaving_a_child_on_its_stdout_exited_0(project):
    """Its own exit decides (before the fix: judged timed out after command_timeout, so
    "Commands finish with zero exit code" failed); the child is killed and noted."""
    project.command("parallel_driver_forks",
                    "#!/bin/sh\nsleep 333 &\necho forked\nexit 0\n")
    timeline = Timeline("main", length=0.5, seed=1, events=(
        Start(0.0, "parallel_driver_forks", "client-1", 1),))
    _, run = _run(project, timeline)
    [inv] = run["invocations"]
    assert (inv["status"], inv["exit_code"]) == ("exited", 0)
    assert _stdout(run, "parallel_driver_forks") == ["forked"]
    assert [e["command"] for e in run["log"] if e["what"] == "leftovers killed"] == [
        "parallel_driver_forks"]
    records = [json.loads(line)["antithesis_assert"] for line in
               (project.root / "out" / "composer.jsonl").read_text().splitlines()]
    assert all(r["condition"] for r in records if r["id"] == "Commands finish with zero "
               "exit code")
    assert not subprocess.run(["pgrep", "-f", "sleep 333"], capture_output=True).stdout


CRASHING = """
[services.db]
replicas = 2
command = "python3 -c 'import socket, sys, time; s = socket.create_server((sys.argv[1], 7000)); time.sleep(0.3 if sys.argv[2] == \\"db-1\\" else 600); sys.exit(7)' {host} {name}"
ready = { tcp = 7000 }
"""


def _services_up(project) -> list[dict]:
    lines = (project.root / "out" / "composer.jsonl").read_text().splitlines()
    return [r for r in (json.loads(line)["antithesis_assert"] for line in lines)
            if r["id"] == "Services stay up unless a fault stops them"]


def test_a_service_that_exits_on_its_own_fails_services_stay_up(project):
    """db-1 exits 7 on its own; no fault was aimed at it (before the fix: nothing said
    so). A kill aimed at it afterwards is skipped, not applied; db-2 is killed by a
    fault and restarted, which is no crash."""
    project.command("serial_driver_wait", "import time; time.sleep(0.5)")
    timeline = Timeline("main", length=1.5, seed=1, events=(
        Start(0.0, "serial_driver_wait", "client-1", 1),
        Fault(1.0, "kill", ("db-1", "db-2"), 0.2),
    ))
    _, run = _run(project, timeline, CRASHING)
    assert [(e["node"], e["exit_code"]) for e in run["log"] if e["what"] == "service exited"
            ] == [("db-1", 7)]
    [fault] = [e for e in run["log"] if e["what"] == "fault"]
    assert fault["targets"] == ["db-2"]
    [skip] = [e for e in run["log"] if e["what"] == "skip"]
    assert skip["targets"] == ["db-1"] and "exited" in skip["reason"]
    [record] = _services_up(project)
    assert not record["condition"] and record["details"]["node"] == "db-1"
    assert record["details"]["exit_code"] == 7


def test_services_that_stay_up_pass_and_stays_up_false_lets_one_exit(project):
    project.command("serial_driver_wait", "import time; time.sleep(0.5)")
    timeline = Timeline("main", length=1.0, seed=1, events=(
        Fault(0.1, "kill", ("db-2",), 0.2),))
    _, run = _run(project, timeline)  # killed by a fault, restarted: no crash
    assert [r["condition"] for r in _services_up(project)] == [True]
    (project.root / "out").rename(project.root / "first")
    _, run = _run(project, timeline, CRASHING.replace('ready =', 'stays_up = false\nready ='))
    assert _services_up(project) == []
    assert not [e for e in run["log"] if e["what"] == "service exited"]
