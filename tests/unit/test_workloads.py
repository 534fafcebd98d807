"""The ready-made workloads: the client speaks to adapters that answer, fail, stay
silent, answer garbage or die, and records what it saw; `composer workload add` puts one
into a template."""

from __future__ import annotations

import os
import sys
import textwrap

import pytest
from composer_drivers import workload
from composer_drivers.generators import WORKLOADS

from composer import checkers, cli, config, history

ADAPTER = textwrap.dedent("""\
    import json, os, sys, time
    mode, marker = sys.argv[1], sys.argv[2]
    state = {}
    for n, line in enumerate(sys.stdin):
        request = json.loads(line)
        bad = n == 2 and not os.path.exists(marker)  # the first adapter misbehaves once
        if bad:
            open(marker, "w").close()
        if bad and mode == "silent":
            time.sleep(30)
        if bad and mode == "garbage":
            print("hello", flush=True); continue
        if bad and mode == "dies":
            sys.exit(1)
        if request["f"] == "read":
            answer = {"type": "ok", "value": state.get(request["key"])}
        elif request["f"] == "write":
            state[request["key"]] = request["value"]; answer = {"type": "ok"}
        else:
            answer = {"type": "fail", "error": "no cas here"}
        print(json.dumps(answer), flush=True)
""")


LISTS = textwrap.dedent("""\
    import json, sys
    lists = {}
    stale = sys.argv[1] == "stale"
    snapshot = {}
    for line in sys.stdin:
        request = json.loads(line)
        done = []
        for kind, key, value in request["value"]:
            if kind == "append":
                lists.setdefault(key, []).append(value)
                done.append([kind, key, value])
            else:  # a stale adapter reads what a key held two transactions ago
                done.append([kind, key, list((snapshot if stale else lists).get(key, []))])
        snapshot = {k: list(v) for k, v in lists.items()} if not stale or len(done) % 2 else snapshot
        print(json.dumps({"type": "ok", "value": done}), flush=True)
""")


def run_workload(tmp_path, monkeypatch, mode: str, ops: int = 6, name: str = "register",
                 source: str = ADAPTER) -> history.History:
    adapter = tmp_path / "adapter.py"
    adapter.write_text(source)
    out = tmp_path / "sdk.jsonl"
    monkeypatch.setenv("COMPOSER_SDK_OUTPUT", str(out))
    monkeypatch.setenv("COMPOSER_SEED", "7")
    import composer_sdk._output as output
    monkeypatch.setattr(output, "_opened", False)
    monkeypatch.setattr(output, "_fd", None)
    assert workload.main([name, "--adapter", f"{sys.executable} {adapter} {mode} {tmp_path / 'marker'}",
                          "--ops", str(ops), "--timeout", "0.5", "--pause", "0"]) == 0
    if output._fd is not None:
        os.close(output._fd)
    events, garbage = history.read_events([out])
    return history.pair(events, garbage)


@pytest.mark.parametrize("mode", ["silent", "garbage", "dies"])
def test_an_adapter_that_misbehaves_makes_its_operation_info_and_is_started_again(
        tmp_path, monkeypatch, mode):
    recorded = run_workload(tmp_path, monkeypatch, mode)
    assert [op.type for op in recorded.operations][2] == "info"
    assert len(recorded.operations) == 6 and recorded.garbage == 0
    assert all(op.type in ("ok", "fail") for op in recorded.operations[3:])  # a new adapter
    processes = [op.process for op in recorded.operations]
    assert processes[3] != processes[2]  # after info, a new client process


def test_a_well_behaved_adapter_gives_a_linearizable_history(tmp_path, monkeypatch):
    recorded = run_workload(tmp_path, monkeypatch, "good", ops=40)
    assert {op.type for op in recorded.operations} <= {"ok", "fail"}
    assert checkers.judge("linearizable", recorded, "cas-register").outcome == "valid"


def test_operations_repeat_with_the_seed():
    for name, spec in WORKLOADS.items():
        import random
        one = [spec.next_request(random.Random(3), 5, n) for n in range(20)]
        two = [spec.next_request(random.Random(3), 5, n) for n in range(20)]
        assert one == two, name
        assert spec.checker in checkers.CHECKERS


def test_workload_add_writes_a_driver_and_its_check(tmp_path, capsys):
    (tmp_path / "composer.toml").write_text('[project]\nname = "p"\n')
    (tmp_path / "drivers" / "main").mkdir(parents=True)
    assert cli.main(["workload", "add", "set", str(tmp_path), "--adapter", "bin/my adapter"]) == 0
    driver = tmp_path / "drivers" / "main" / "parallel_driver_set"
    assert os.access(driver, os.X_OK)
    assert "composer_drivers.workload set --adapter 'bin/my adapter'" in driver.read_text()
    [check] = config.load(tmp_path).options_for("main").checks
    assert (check.checker, check.name) == ("set", "Acknowledged set elements are never lost")
    assert "does not exist yet" in capsys.readouterr().out
    assert cli.main(["workload", "add", "set", str(tmp_path), "--adapter", "x"]) == 2
    assert "exists; remove it or pass --force" in capsys.readouterr().err
    assert cli.main(["workload", "add", "set", str(tmp_path), "--adapter", "x", "--force"]) == 0
    assert len(config.load(tmp_path).options_for("main").checks) == 1  # not twice


def test_workload_add_leaves_a_broken_config_as_it_was(tmp_path, capsys):
    text = '[project]\nname = "p"\n[template.main]\nchecks = 3\n'
    (tmp_path / "composer.toml").write_text(text)
    assert cli.main(["workload", "add", "queue", str(tmp_path), "--adapter", "a"]) == 2
    assert (tmp_path / "composer.toml").read_text() == text


def test_append_transactions_of_a_serial_store_are_serializable_and_stale_reads_are_not(
        tmp_path, monkeypatch):
    serial = run_workload(tmp_path, monkeypatch, "serial", ops=60, name="append", source=LISTS)
    assert checkers.judge("append", serial).outcome == "valid"
    (tmp_path / "sdk.jsonl").unlink()
    stale = run_workload(tmp_path, monkeypatch, "stale", ops=60, name="append", source=LISTS)
    verdict = checkers.judge("append", stale)
    assert verdict.outcome == "invalid", verdict.explanation
