"""Where a failure was recorded, from the files the run record names."""

from __future__ import annotations

import json

from composer.failure_location import locate_failure


def _record(prop: str) -> str:
    return json.dumps({"antithesis_assert": {"id": prop, "message": prop, "condition": False,
                                             "display_type": "Always", "assert_type": "always",
                                             "must_hit": True, "hit": True}}) + "\n"


def test_the_run_record_names_the_sdk_file_and_logs_of_each_invocation(tmp_path):
    (tmp_path / "sdk").mkdir()
    (tmp_path / "sdk" / "client-run-7.jsonl").write_text(_record("p"))
    (tmp_path / "composer.jsonl").write_text("")
    run = {"invocations": [{"number": 7, "command": "parallel_driver_x", "node": "client-1",
                            "sdk": "client-run-7.jsonl",
                            "stdout": "/moved/away/logs/client-1/out-7.txt",
                            "stderr": "/moved/away/logs/client-1/err-7.txt"}], "log": []}
    failure = locate_failure(tmp_path, "p", run)
    assert failure is not None and failure.invocation == 7 and failure.node == "client-1"
    assert [p.relative_to(tmp_path).as_posix() for p in failure.logs] == [
        "logs/client-1/out-7.txt", "logs/client-1/err-7.txt"]  # found where the run is now
