"""``composer check`` on history files in every format it reads: composer's JSONL, Jepsen
EDN maps and Jepsen log lines (Porcupine's etcd test data)."""

from __future__ import annotations

import json

import pytest

from composer import cli
from composer.history_formats import parse_edn, read_history

# Jepsen's log format, as in Porcupine's etcd histories: process, type, f, value
JEPSEN_LOG_VALID = """\
INFO  jepsen.util - 0	:invoke	:write	1
INFO  jepsen.util - 1	:invoke	:read	nil
INFO  jepsen.util - 0	:ok	:write	1
INFO  jepsen.util - 1	:ok	:read	1
INFO  jepsen.util - 2	:invoke	:cas	[1 4]
INFO  jepsen.util - 2	:ok	:cas	[1 4]
INFO  jepsen.util - 3	:invoke	:write	0
INFO  jepsen.util - 3	:info	:write	0
INFO  jepsen.util - 1	:invoke	:read	nil
INFO  jepsen.util - 1	:ok	:read	0
"""
JEPSEN_LOG_STALE = JEPSEN_LOG_VALID.replace(":ok	:read	0", ":ok	:read	1")


def check(tmp_path, text: str, *options: str, name="history.log") -> tuple[int, str]:
    path = tmp_path / name
    path.write_text(text)
    code = cli.main(["check", str(path), "--checker", "linearizable", *options])
    return code


def test_jepsen_log_lines_valid_and_stale(tmp_path, capsys):
    assert check(tmp_path, JEPSEN_LOG_VALID, "--model", "cas-register") == 0
    assert capsys.readouterr().out.startswith("VALID: 5 operations")
    assert check(tmp_path, JEPSEN_LOG_STALE, "--model", "cas-register") == 1
    out = capsys.readouterr().out
    assert out.startswith("INVALID:") and "p1 read -> ok 1" in out and "> p1 read" in out


def test_jepsen_edn_maps(tmp_path, capsys):
    edn = "\n".join([
        '{:type :invoke, :f :write, :value 3, :process 0, :time 10, :index 0}',
        '{:type :ok, :f :write, :value 3, :process 0, :time 20, :index 1}',
        '{:type :invoke, :f :read, :value nil, :process 1, :time 30, :index 2}',
        '{:type :ok, :f :read, :value 2, :process 1, :time 40, :index 3}',
    ])
    assert check(tmp_path, edn, "--model", "register", "--json", name="history.edn") == 1
    verdict = json.loads(capsys.readouterr().out)
    assert verdict["outcome"] == "invalid" and verdict["operations"] == 2
    assert verdict["blocked"]["output"] == 2


def test_composer_sdk_output_and_a_timelines_history_jsonl(tmp_path):
    records = [{"composer_op": {"process": "a", "type": t, "f": f, "key": "k", "value": v,
                                "time": n}}
               for n, (t, f, v) in enumerate([("invoke", "add", 1), ("ok", "add", 1),
                                              ("invoke", "read", None), ("ok", "read", [1])])]
    text = "\n".join(json.dumps(r) for r in [{"antithesis_sdk": {}}, *records])
    assert check(tmp_path, text, "--model", "set", name="sdk.jsonl") == 0
    paired = read_history(tmp_path / "sdk.jsonl")
    assert [o.type for o in paired.operations] == ["ok", "ok"] and paired.garbage == 1
    lines = [json.dumps({"index": 0, "process": "a", "type": "ok", "f": "write", "key": None,
                         "value": 5, "output": None, "call": 0, "ret": 1}),
             json.dumps({"index": 1, "process": "b", "type": "ok", "f": "read", "key": None,
                         "value": None, "output": 6, "call": 2, "ret": 3})]
    assert check(tmp_path, "\n".join(lines), "--model", "register", name="h.jsonl") == 1


def test_out_of_time_exits_4(tmp_path, capsys):
    ops = [f"INFO  jepsen.util - {p}\t:invoke\t:write\t{p}" for p in range(18)]
    ops += ["INFO  jepsen.util - 99\t:invoke\t:read\tnil", "INFO  jepsen.util - 99\t:ok\t:read\t77"]
    ops += [f"INFO  jepsen.util - {p}\t:ok\t:write\t{p}" for p in range(18)]
    assert check(tmp_path, "\n".join(ops), "--model", "register", "--time-limit", "1ms") == 4
    assert capsys.readouterr().out.startswith("UNKNOWN:")


@pytest.mark.parametrize("text, options, wanted", [
    ("hello world\n", ("--model", "register"), "not a history composer reads"),
    ("{:type :invoke :f}\n", ("--model", "register"), "history.log:1: not a Jepsen"),
    (JEPSEN_LOG_VALID, (), "needs --model"),
])
def test_bad_input_exits_2_saying_what_is_wrong(tmp_path, capsys, text, options, wanted):
    assert check(tmp_path, text, *options) == 2
    assert wanted in capsys.readouterr().err


def test_edn_values():
    assert parse_edn('{:a [1 2.5 "x\\"y"], :b nil, :c :kw, :d (true false)}') == {
        ":a": [1, 2.5, 'x"y'], ":b": None, ":c": "kw", ":d": [True, False]}
    with pytest.raises(ValueError):
        parse_edn("{:a [1 2}")
