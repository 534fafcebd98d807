"""The hit watcher timestamps each assertion outcome the first time a process writes it,
reads only whole lines, and ignores what is not an assertion."""

from __future__ import annotations

import json
import time

from composer.hits import HitWatcher


def assertion(id: str, condition: bool = True, hit: bool = True) -> str:
    return json.dumps({"antithesis_assert": {"id": id, "message": id, "condition": condition,
                                             "hit": hit}}) + "\n"


def test_first_hit_of_each_outcome_per_file_with_its_time(tmp_path):
    origin = time.monotonic()
    watcher = HitWatcher(tmp_path, origin)
    watcher.poll()  # nothing yet, no error
    (tmp_path / "kv-1-service-1.jsonl").write_text(assertion("window open"))
    watcher.poll()
    with open(tmp_path / "kv-1-service-1.jsonl", "a") as fh:
        fh.write(assertion("window open") + assertion("window open", False))
    (tmp_path / "0002-parallel_driver_put.jsonl").write_text(assertion("window open"))
    watcher.poll()
    seen = [(h.id, h.passed, h.source) for h in watcher.hits]
    assert seen[0] == ("window open", True, "kv-1-service-1")
    assert sorted(seen[1:]) == [("window open", False, "kv-1-service-1"),
                                ("window open", True, "0002-parallel_driver_put")]
    assert all(0 <= h.at <= time.monotonic() - origin + 0.001 for h in watcher.hits)
    assert watcher.hits[0].at <= watcher.hits[1].at


def test_a_half_written_line_waits_for_its_end(tmp_path):
    watcher = HitWatcher(tmp_path, time.monotonic())
    line = assertion("late")
    path = tmp_path / "a.jsonl"
    path.write_text(line[:10])
    watcher.poll()
    assert watcher.hits == []
    with open(path, "a") as fh:
        fh.write(line[10:])
    watcher.poll()
    assert [h.id for h in watcher.hits] == ["late"]


def test_declarations_garbage_and_other_records_are_not_hits(tmp_path):
    (tmp_path / "a.jsonl").write_text(
        assertion("declared", hit=False) + "not json\n[1, 2]\n"
        + json.dumps({"antithesis_guidance": {"id": "g"}}) + "\n"
        + json.dumps({"antithesis_assert": {"condition": True}}) + "\n"
        + json.dumps({"antithesis_assert": "text"}) + "\n" + assertion("real"))
    watcher = HitWatcher(tmp_path, time.monotonic())
    watcher.poll()
    assert [h.id for h in watcher.hits] == ["real"]
