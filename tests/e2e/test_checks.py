"""History checks end to end: drivers record what they saw with composer_sdk.history, the
template's [[checks]] judge the merged history after the timeline, and the verdict is a
property like any other (exit code, summary, report, the timeline's files)."""

from __future__ import annotations

import json

CONFIG = """
    [project]
    name = "hist"

    [explore]
    timeline = "1s"

    [[template.main.checks]]
    checker = "linearizable"
    model = "register"
    name = "Register operations are linearizable"
    time_limit = "{limit}"
"""


def _clients(project, body: str) -> None:
    """The clients run as the first command (to its end, before the driver phase); a
    template needs a driver too."""
    project.command("first_clients", body)
    project.command("anytime_idle", "pass")


def _timeline_dir(project):
    return project.last_run() / "timelines" / "00001"


def _summary(project) -> dict:
    return json.loads((project.last_run() / "summary.json").read_text())


def _property(project, name: str) -> dict:
    return next(p for p in _summary(project)["properties"] if p["message"] == name)


def test_a_stale_read_fails_the_check_though_no_driver_asserts_anything(project):
    project.config(CONFIG.format(limit="30s"))
    _clients(project, """
        from composer_sdk import history
        history.invoke("write", "x", 1).ok()
        history.invoke("write", "x", 2).ok()
        history.invoke("read", "x").ok(1)  # a stale value: 2 was acknowledged before
    """)
    result = project.composer("run", "--seed", "1")
    assert result.code == 1, result.output
    assert "FAIL" in result.stdout and "Register operations are linearizable" in result.stdout
    prop = _property(project, "Register operations are linearizable")
    assert prop["status"] == "fail"
    details = prop["first_failure"]["details"]
    assert details["outcome"] == "invalid" and details["blocked"]["output"] == 1
    assert details["state"] == "2" and details["operations"] == 3
    timeline = _timeline_dir(project)
    assert len((timeline / "history.jsonl").read_text().splitlines()) == 3
    assert json.loads((timeline / "checks.json").read_text())[
        "Register operations are linearizable"]["outcome"] == "invalid"
    [note] = [e for e in json.loads((timeline / "run.json").read_text())["log"]
              if e["what"] == "check"]
    assert note["outcome"] == "invalid" and "cannot take effect" in note["explanation"]


def test_concurrent_clients_that_saw_a_register_pass(project):
    project.config(CONFIG.format(limit="30s"))
    project.command("parallel_driver_client", """
        import os, fcntl, composer_sdk as sdk
        from composer_sdk import history
        path = os.path.join(os.environ["COMPOSER_DATA"], "..", "register")
        for n in range(20):
            value = sdk.get_random() % 5
            with open(path, "a+") as f:  # a register under a lock: linearizable
                fcntl.flock(f, fcntl.LOCK_EX)
                if n % 2:
                    op = history.invoke("write", "x", value)
                    f.seek(0); f.truncate(); f.write(str(value)); f.flush()
                    op.ok()
                else:
                    op = history.invoke("read", "x")
                    f.seek(0); text = f.read()
                    op.ok(int(text) if text else None)
    """)
    result = project.composer("run", "--seed", "3")
    assert result.code == 0, result.output
    prop = _property(project, "Register operations are linearizable")
    assert prop["status"] == "pass" and prop["passes"] == 1


def test_a_check_out_of_time_is_unknown_not_a_pass_and_not_a_failure(project):
    project.config(CONFIG.format(limit="1ms"))
    _clients(project, """
        import threading
        from composer_sdk import history
        ops = []
        def write(i):  # each thread is its own client process
            ops.append(history.invoke("write", "x", i))
        threads = [threading.Thread(target=write, args=(i,)) for i in range(18)]
        [t.start() for t in threads]; [t.join() for t in threads]
        read = history.invoke("read", "x")
        [op.ok() for op in ops]
        read.ok(99)  # never written: invalid, but only after ruling out 2**18 orders
    """)
    result = project.composer("run", "--seed", "1")
    assert result.code == 0, result.output
    assert "UNKNOWN" in result.stdout
    prop = _property(project, "Register operations are linearizable")
    assert (prop["status"], prop["ok"], prop["unknowns"]) == ("unknown", False, 1)
    junit = (project.last_run() / "junit.xml").read_text()
    assert "<skipped" in junit and "not judged in time" in junit
    report = (project.last_run() / "report.html").read_text()
    assert "badge unknown" in report


def test_the_report_draws_the_window_that_cannot_be_linearized(project):
    project.config(CONFIG.format(limit="30s"))
    _clients(project, """
        from composer_sdk import history
        history.invoke("write", "x", "<b>1</b>").ok()
        history.invoke("read", "x").ok("<script>")  # never written
    """)
    result = project.composer("explore", "--seed", "1", "--duration", "60s",
                              "--stop-on-failure", "--reruns", "1")
    assert result.code == 1, result.output
    report = (project.last_run() / "report.html").read_text()
    assert "cannot be linearized" in report and "cannot follow" in report
    assert "<script>" not in report and "&lt;script&gt;" in report  # user text escaped
    assert report.count('fill="#c62828"') == 1  # the one blocked operation


def test_workloads_import_with_the_nodes_own_python(project):
    # a container's python3 has no editable install: composer's PYTHONPATH must bring
    # composer_drivers (before the fix: ModuleNotFoundError on docker)
    import shutil
    system = shutil.which("python3", path="/usr/bin")
    if system is None:
        import pytest
        pytest.skip("no /usr/bin/python3")
    project.config(CONFIG.format(limit="30s"))
    _clients(project, f"#!/bin/sh\nexec {system} -m composer_drivers.workload --help\n")
    result = project.composer("run", "--seed", "1")
    assert result.code == 0, result.output
