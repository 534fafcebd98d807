"""One timeline on the local backend: setup, prefix rules, timeouts, logs, SDK records,
and nothing left running afterwards."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import pytest

from tests.conftest import need, processes_with

SERVICE = """
    [project]
    name = "svc"

    [services.web]
    replicas = 2
    command = "python3 -m http.server 7001 --bind {{host}} --directory {{data}}"
    ready = {{ tcp = 7001 }}

    [setup]
    timeout = "{timeout}"

    [explore]
    timeline = "1s"
    command_timeout = "{command_timeout}"
"""


def config(project, timeout="20s", command_timeout="10s", extra=""):
    project.config(SERVICE.format(timeout=timeout, command_timeout=command_timeout) + extra)


def invocations(project) -> list[dict]:
    run = project.last_run() / "timelines" / "00001" / "run.json"
    return json.loads(run.read_text())["invocations"]


def test_run_starts_services_runs_drivers_and_reports_properties(project):
    config(project)
    project.command("first_hello", """
        import os, composer_sdk as sdk, urllib.request
        for host in os.environ["COMPOSER_HOSTS_WEB"].split(","):
            urllib.request.urlopen(f"http://{host}:7001/", timeout=5).read()
        sdk.reachable("every web node answered")
        print("node", os.environ["COMPOSER_NODE"], "data", os.environ["COMPOSER_DATA"])
    """)
    project.command("parallel_driver_get", "import composer_sdk as sdk; sdk.always(True, 'driver ran')")
    result = project.composer("run", "--seed", "1")
    assert result.code == 0, result.output
    assert "setup complete" in result.stdout
    assert "PASS      Reachable" in result.stdout and "every web node answered" in result.stdout
    (first,) = [i for i in invocations(project) if i["command"] == "first_hello"]
    assert first["exit_code"] == 0
    stdout = open(first["stdout"]).read()
    assert "node client-1" in stdout


def test_same_seed_gives_the_same_timeline(project):
    config(project)
    project.command("parallel_driver_a", "print(1)")
    project.command("serial_driver_b", "print(1)")
    one = project.composer("run", "--seed", "42").stdout.split("events:")[0]
    two = project.composer("run", "--seed", "42").stdout.split("events:")[0]
    assert one == two and "seed 42" in one


def test_run_shows_an_unmet_sometimes_as_unmet_and_writes_what_report_reads(project):
    """Before: FAIL rows for a Sometimes property one timeline did not show, yet exit 0,
    and `composer report` refused the run's directory (no summary.json)."""
    config(project)
    project.command("parallel_driver_a", "import composer_sdk as sdk; sdk.sometimes(False, 'Rarely true')")
    result = project.composer("run", "--seed", "1")
    assert result.code == 0, result.output
    assert "UNMET     Sometimes" in result.stdout and "Rarely true" in result.stdout
    assert "\n  FAIL" not in result.stdout
    run_dir = project.last_run()
    assert (run_dir / "report.html").is_file() and (run_dir / "summary.json").is_file()
    (run_dir / "report.html").unlink()
    again = project.composer("report", str(run_dir))
    assert again.code == 0, again.output
    assert "Rarely true" in (run_dir / "report.html").read_text()


def test_service_that_exits_at_once_fails_setup_with_its_log(project):
    project.config("""
        [services.db]
        command = "python3 -c 'import sys; print(\\"no config file\\", file=sys.stderr); sys.exit(3)'"
        ready = { tcp = 7000 }
    """)
    project.command("parallel_driver_x", "print(1)")
    result = project.composer("run", "--seed", "1")
    assert result.code == 1, result.output
    assert "service db-1 exited with code 3 before it was ready" in result.stdout
    assert "no config file" in result.stdout
    assert "FAIL      Always" in result.stdout and "Setup completes" in result.stdout


def test_readiness_that_never_passes_times_out_clearly(project):
    project.config("""
        [services.db]
        command = "sleep 60"
        ready = { tcp = 7000 }

        [setup]
        timeout = "1s"
    """)
    project.command("parallel_driver_x", "print(1)")
    started = time.monotonic()
    result = project.composer("run", "--seed", "1")
    assert result.code == 1
    assert "not ready in time: tcp port 7000 never succeeded" in result.stdout
    assert "[setup] timeout" in result.stdout
    assert time.monotonic() - started < 30


def test_hung_driver_is_killed_at_its_timeout_and_recorded(project):
    marker = f"hung-{uuid.uuid4().hex}"
    config(project, command_timeout="1s")
    project.command("singleton_driver_hang", f"""
        import time
        time.sleep(600)  # {marker}
    """)
    result = project.composer("run", "--seed", "3", "--timeline", "1s")
    assert result.code == 1, result.output
    assert "status=timeout" in result.stdout
    assert "Commands finish with zero exit code" in result.stdout
    (hang,) = invocations(project)
    assert hang["status"] == "timeout"
    assert processes_with(marker) == []


def test_flooding_driver_has_its_log_capped_and_the_run_goes_on(project):
    config(project)
    project.command("singleton_driver_flood", """
        import sys
        chunk = "x" * 1024 * 1024
        for _ in range(40):
            sys.stdout.write(chunk)
    """)
    # finally_ runs only once the flood completed on its own: no end of phase cuts it short
    project.command("finally_after", "print('still here')")
    result = project.composer("run", "--seed", "5", "--faults", "none")
    assert result.code == 0, result.output
    flood = [i for i in invocations(project) if i["command"] == "singleton_driver_flood"]
    assert flood and flood[0]["status"] == "exited", result.output
    size = os.path.getsize(flood[0]["stdout"])
    assert 10 * 1024 * 1024 <= size < 11 * 1024 * 1024
    assert open(flood[0]["stdout"]).read().endswith("truncated after 10485760 bytes]\n")
    assert "command=finally_after" in result.stdout


def test_garbage_sdk_lines_are_counted_and_skipped(project):
    config(project)
    project.command("first_garbage", """
        import os, composer_sdk as sdk
        sdk.always(True, "before garbage")
        with open(os.environ["COMPOSER_SDK_OUTPUT"], "a") as out:
            out.write("not json\\n{\\"truncated\\": \\n[1, 2]\\n")
        sdk.always(True, "after garbage")
    """)
    project.command("parallel_driver_x", "print(1)")
    result = project.composer("run", "--seed", "1")
    assert result.code == 0, result.output
    assert "3 SDK output line(s) were not valid records" in result.stdout
    assert "before garbage" in result.stdout and "after garbage" in result.stdout


def test_prefix_rules_hold_in_every_timeline(project):
    """serial drivers run alone, parallel ones at most max_parallel at once, eventually
    after drivers were stopped, finally last and only when everything completed."""
    config(project, extra="max_parallel = 2\n")
    log = project.root / "intervals.log"
    body = f"""
        import os, sys, time
        start = time.time()
        time.sleep(0.15)
        with open({str(log)!r}, "a") as out:
            out.write(f"{{os.path.basename(sys.argv[0])}} {{start}} {{time.time()}}\\n")
    """
    for name in ("parallel_driver_p", "serial_driver_s", "anytime_a", "finally_f",
                 "eventually_e"):
        project.command(name, body)
    for seed in range(6):
        log.unlink(missing_ok=True)
        result = project.composer("run", "--seed", str(seed), "--timeline", "2s")
        assert result.code == 0, result.output
        spans = [line.split() for line in log.read_text().splitlines()]
        spans = [(name, float(a), float(b)) for name, a, b in spans]
        drivers = [s for s in spans if "driver" in s[0]]
        for name, a, b in drivers:
            overlapping = [o for o in drivers if o[1] < b and a < o[2] and (o[1], o[2]) != (a, b)]
            if name.startswith("serial"):
                assert overlapping == [], (seed, name, overlapping)
            else:
                assert all(o[0].startswith("parallel") for o in overlapping), (seed, overlapping)
                assert len(overlapping) <= 1, (seed, overlapping)
        ends = {s[0]: s for s in spans if s[0] in ("finally_f", "eventually_e")}
        assert "eventually_e" in ends, (seed, spans)
        others = [s for s in spans if s[0] not in ends]
        for end in ends.values():
            assert all(s[2] <= end[1] for s in others), (seed, spans)
        if "finally_f" in ends:
            assert ends["eventually_e"][2] <= ends["finally_f"][1], (seed, spans)


def _sleeping_services(project, command: str) -> None:
    """Two service nodes running ``command``, in a project with long timelines."""
    project.config(f"""
        [services.svc]
        replicas = 2
        command = "{command}"

        [explore]
        timeline = "30s"
    """)


@pytest.mark.parametrize("backend", ["local", "netns"])
def test_ctrl_c_stops_every_process_and_removes_every_namespace(project, backend):
    need(backend)
    marker = f"ctrlc-{uuid.uuid4().hex}"
    _sleeping_services(project, f"python3 -c 'import time; time.sleep(300)' {marker}")
    project.command("parallel_driver_sleep", f"#!/bin/sh\nexec python3 -c 'import time; time.sleep(300)' {marker}-driver\n")
    proc = subprocess.Popen([sys.executable, "-m", "composer.cli", "explore", "--duration", "2m",
                             "--cluster", backend],
                            cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(processes_with(marker)) < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(processes_with(marker)) >= 2
    topology = next(project.last_run().glob("timelines/*/topology.json")).read_text()
    block = topology.split('"address": "', 1)[1].split(".")[2]
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    assert processes_with(marker) == []
    if os.path.isdir("/run/netns"):
        assert not [n for n in os.listdir("/run/netns") if n.startswith(f"composer-{block}-")]


def test_sigkill_of_composer_leaves_no_service_running(project):
    marker = f"sigkill-{uuid.uuid4().hex}"
    _sleeping_services(project, f"true && python3 -c 'import time; time.sleep(300)' {marker}")
    project.command("parallel_driver_sleep", "#!/bin/sh\nsleep 1\n")
    proc = subprocess.Popen([sys.executable, "-m", "composer.cli", "run", "--seed", "1"],
                            cwd=project.root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                            text=True)
    for line in proc.stdout:  # crash mid-timeline: once every service is up
        if "setup complete" in line:
            break
    deadline = time.monotonic() + 30
    while len(processes_with(marker)) < 4 and time.monotonic() < deadline:
        time.sleep(0.05)  # two services, a shell and its python each
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 10
    while processes_with(marker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_with(marker) == []
