#!/usr/bin/env python3
"""Figures of ``report.html``, printed as a table (asserts nothing about time).

    python3 tests/benchmarks/bench_report.py [--runs N]

Time of ``composer.html_report.write_report`` (median of N runs, default 5) and the size
of the page, on synthetic run directories as ``explore`` leaves them: a summary.json of
100 and of 10,000 timelines (30 properties, 3 findings whose shrunk timelines have 20
events and a lineage of up to 8 mutations; utilization counts scaled to the number of
timelines; a search block made by ``composer.report.search_json`` itself, so its
behaviours-over-time series is downsampled to ~400 points as in a real run, with 30 and
300 kept timelines of 20 listed features each) and, for each finding, a timeline
directory with a real-looking run.json, SDK files of a few hundred records and logs of a
few thousand lines. A stress row (300 properties, 10 findings of 200 events each, 2,000
kept timelines: more than the page lists) shows how the page grows with what it draws,
not with timelines. Target for 10,000 timelines: under 2 s and under 5 MB. Everything is
written under one temporary directory, removed at the end. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

from bench_local import fmt, log, median, run_figures, table

from composer.html_report import write_report
from composer.report import search_json
from composer.builtin_properties import SETUP, ZERO_EXIT, completion_id

TARGET_MS, TARGET_BYTES = 2000.0, 5 * 1024 * 1024
NODES = ["kv-1", "kv-2", "kv-3", "client-1"]
COMMANDS = {"first_check_ready": "first", "parallel_driver_put": "parallel_driver",
            "parallel_driver_cas": "parallel_driver", "serial_driver_get": "serial_driver",
            "anytime_health": "anytime", "anytime_scan": "anytime",
            "eventually_check": "eventually", "finally_converge": "finally"}
DRIVERS = [c for c, k in COMMANDS.items() if k in ("parallel_driver", "serial_driver", "anytime")]


def _prop(rng: random.Random, message: str, display: str, timelines: int,
          status: str = "pass") -> dict:
    kind = {"Always": "always", "AlwaysOrUnreachable": "always", "Sometimes": "sometimes",
            "Reachable": "reachability", "Unreachable": "reachability"}[display]
    hit = 0 if status == "unreached" else rng.randint(timelines // 3, timelines)
    failures = rng.randint(1, max(1, hit // 50)) if status == "fail" else 0
    passes = rng.randint(hit, 4 * hit) if status != "unreached" else 0
    return {"id": message, "message": message, "display_type": display, "assert_type": kind,
            "must_hit": display not in ("AlwaysOrUnreachable", "Unreachable"),
            "status": status, "ok": status == "pass", "passes": passes, "failures": failures,
            "timelines_hit": hit, "first_failure": {
                "details": {"key": f"k-{rng.randrange(10**6)}", "expected": list(range(12)),
                            "got": list(range(11)), "node": "kv-1"},
                "location": {"file": "/srv/project/drivers/main/eventually_check",
                             "function": "main", "class": "", "begin_line": 40,
                             "begin_column": 0}} if failures else None}


def properties(rng: random.Random, count: int, timelines: int, failing: int) -> list[dict]:
    """``count`` properties: ``failing`` Always ones fail, two must-hit are unreached."""
    builtin = [SETUP, ZERO_EXIT] + [completion_id(c) for c in COMMANDS]
    props = [_prop(rng, m, "Always" if m in (SETUP, ZERO_EXIT) else "Sometimes", timelines)
             for m in builtin]
    displays = ["Always"] * 6 + ["AlwaysOrUnreachable", "Sometimes", "Sometimes", "Sometimes",
                                 "Reachable", "Unreachable"]
    for i in range(count - len(builtin)):
        display = displays[i % len(displays)]
        status = "fail" if i < failing else "unreached" if i in (failing, failing + 7) else "pass"
        if status == "fail":
            display = "Always"
        props.append(_prop(rng, f"Property {i}: acknowledged writes of kind {i} survive",
                           display, timelines, status))
    return props


def _timeline(rng: random.Random, events: int) -> dict:
    length = 20.0
    out = []
    for _ in range(events):
        at = round(rng.uniform(0, length), 2)
        if rng.random() < 0.7:
            out.append({"type": "start", "at": at, "command": rng.choice(DRIVERS),
                        "node": "client-1", "seed": rng.randrange(2**31)})
        else:
            out.append({"type": "fault", "at": at, "kind": rng.choice(["kill", "pause", "stop",
                                                                        "partition", "loss"]),
                        "targets": rng.sample(NODES[:3], rng.randint(1, 2)),
                        "duration": round(rng.uniform(0.5, 5), 2)})
    out.sort(key=lambda e: e["at"])
    return {"version": 1, "template": "main", "length": length, "seed": rng.randrange(2**31),
            "first": "first_check_ready", "events": out, "eventually": "eventually_check",
            "finally": None}


def timeline_dir(rng: random.Random, directory: Path, timeline: dict, prop: str) -> None:
    """run.json, SDK records and logs of one failing timeline, as the runner writes them."""
    setup, log_, invocations = 1.2, [], []
    log_.append({"t": setup, "what": "setup complete",
                 "nodes": {n: f"127.0.9.{i}" for i, n in enumerate(NODES, 1)}})
    starts = [("first_check_ready", setup, 0.3)] + [
        (e["command"], setup + 0.5 + e["at"], rng.uniform(0.1, 8)) for e in timeline["events"]
        if e["type"] == "start"] + [("eventually_check", setup + 21, 1.5)]
    for number, (command, t, took) in enumerate(starts, 1):
        status = "killed" if t + took > setup + 20.5 and command != "eventually_check" else "exited"
        invocations.append({"number": number, "command": command, "kind": COMMANDS[command],
                            "node": "client-1", "seed": rng.randrange(2**31), "status": status,
                            "exit_code": 0 if status == "exited" else -9, "started": round(t, 3),
                            "stdout": str(directory / "logs" / "client-1" /
                                          f"{number:04d}-{command}.stdout")})
        log_.append({"t": round(t, 3), "what": "start", "command": command, "node": "client-1",
                     "number": number})
        log_.append({"t": round(min(t + took, setup + 20.6) if status == "killed" else t + took,
                                3), "what": "exit", "command": command, "number": number,
                     "status": status, "exit_code": invocations[-1]["exit_code"]})
    for e in timeline["events"]:
        if e["type"] == "fault":
            t = setup + 0.5 + e["at"]
            log_.append({"t": round(t, 3), "what": "fault", "kind": e["kind"],
                         "targets": e["targets"]})
            log_.append({"t": round(t + e["duration"], 3), "what": "heal", "kind": e["kind"],
                         "targets": e["targets"]})
    log_.append({"t": setup + 20.5, "what": "driver phase over"})
    log_.sort(key=lambda e: e["t"])
    (directory / "sdk").mkdir(parents=True)
    for inv in invocations:
        label = f"{inv['number']:04d}-{inv['command']}"
        records = [{"antithesis_assert": {
            "id": f"Property {rng.randrange(30)}: acknowledged writes", "condition": True,
            "hit": True, "must_hit": True, "display_type": "Always", "assert_type": "always",
            "details": {"i": i}}} for i in range(300)]
        if inv["command"] == "eventually_check":
            records.append({"antithesis_assert": {"id": prop, "message": prop, "condition": False,
                                                  "hit": True, "must_hit": True,
                                                  "display_type": "Always",
                                                  "assert_type": "always",
                                                  "details": {"lost": ["w-1", "w-2"]}}})
        (directory / "sdk" / f"{label}.jsonl").write_text(
            "".join(json.dumps(r) + "\n" for r in records))
        logs = directory / "logs" / "client-1"
        logs.mkdir(parents=True, exist_ok=True)
        (logs / f"{label}.stdout").write_text("".join(
            f"{i:05d} put k-{i} -> 127.0.9.1:7000 ok (acknowledged)\n" for i in range(3000)))
        (logs / f"{label}.stderr").write_text("warning: retrying\n" * 200)
    (directory / "composer.jsonl").write_text("")
    (directory / "run.json").write_text(json.dumps(
        {"setup_error": None, "invocations": invocations, "log": log_}, indent=2))
    (directory / "timeline.json").write_text(json.dumps(timeline, indent=2))


def utilization(rng: random.Random, timelines: int) -> dict:
    commands = {}
    for name, kind in COMMANDS.items():
        started = timelines * (3 if kind == "parallel_driver" else 1) * rng.randint(1, 3)
        commands[name] = {"kind": kind, "started": started,
                          "completed": 0 if name == "anytime_scan" else started // 2}
    by_kind: dict[str, int] = {}
    for c in commands.values():
        by_kind[c["kind"]] = by_kind.get(c["kind"], 0) + c["started"]
    return {"timelines": timelines, "commands": commands, "commands_by_kind": by_kind,
            "faults": {k: timelines * rng.randint(1, 4) for k in ("kill", "loss", "partition",
                                                                   "pause", "stop")},
            "never_completed": ["anytime_scan"]}


OPERATORS = ["fault after hit", "fault near start", "move", "retarget", "change kind",
             "change amount", "delete", "add command", "lengthen", "splice"]


def search(rng: random.Random, timelines: int, kept: int) -> dict:
    """The summary's search block of a guided search of ``timelines`` that kept ``kept``:
    behaviours grow quickly, then slowly; kept timelines are spread over the run."""
    keep: set[int] = set()
    while len(keep) < min(kept, timelines):  # log-uniform: most early on
        keep.add(max(1, round(timelines ** rng.random())))
    entries, history, behaviours = [], [], 0
    for number in range(1, timelines + 1):
        elapsed = round(number * 3.6, 2)
        if number in keep:
            count = rng.randint(1, 60) if entries else 80
            behaviours += count
            origin = "fresh" if not entries or rng.random() < 0.3 else "+".join(
                rng.sample(OPERATORS, rng.randint(1, 3)))
            new = tuple(sorted(f"fault {rng.choice(['kill', 'pause', 'partition'])} kv-"
                               f"{rng.randint(1, 3)} within 0.{rng.randint(1, 8)}s after "
                               f"Property {rng.randrange(30)}: acknowledged writes x{i}"
                               for i in range(count)))
            entries.append(SimpleNamespace(
                number=number, origin=origin, elapsed=elapsed, new=new,
                parent=None if origin == "fresh" else rng.choice(entries).number,
                improved=("replica lag",) if rng.random() < 0.1 else (),
                why=f"{count} new behaviours"))
        history.append((elapsed, number, behaviours, len(entries)))
    sources = {}
    for name in ["fresh", *OPERATORS]:
        tries = rng.randint(timelines // 30, timelines // 6)
        sources[name] = SimpleNamespace(total_tries=tries, total_finds=rng.randint(0, kept // 5))
    corpus = SimpleNamespace(history=history, behaviours=behaviours, entries=entries,
                             driver_seconds=0.0)
    return search_json(SimpleNamespace(generator="guided", corpus=corpus, sources=sources))


def lineage(rng: random.Random, corpus: list[dict], first: int) -> list[dict]:
    """A failing timeline mutated from a kept one, back to a fresh draw."""
    by_number = {c["timeline"]: c for c in corpus}
    chain = [{"timeline": first, "origin": "+".join(rng.sample(OPERATORS, 2))}]
    entry = rng.choice(corpus)
    while entry is not None and len(chain) < 9:
        chain.append({"timeline": entry["timeline"], "origin": entry["origin"]})
        entry = by_number.get(entry["parent"])
    return chain


def run_dir(tmp: Path, timelines: int, n_props: int, n_findings: int, events: int,
            kept: int) -> Path:
    rng = random.Random(timelines * 1000 + n_props)
    root = tmp / f"run-{timelines}-{n_props}-{n_findings}"
    props = properties(rng, n_props, timelines, n_findings)
    failing = [p["message"] for p in props if p["status"] == "fail"]
    findings = []
    searched = search(rng, timelines, kept)
    for i, prop in enumerate(failing):
        timeline = _timeline(rng, events)
        directory = root / "timelines" / f"{rng.randrange(1, timelines):05d}-{i}"
        timeline_dir(rng, directory, timeline, prop)
        findings.append({"property": prop, "found_after_seconds": 812.4,
                         "first_timeline_size": events * 3, "shrunk_timeline_size": events,
                         "timeline": timeline, "directory": str(directory), "reproduced": 7,
                         "reruns": 10, "replay": str(tmp / "replays" / f"{i}.json"),
                         "first_timeline": (first := rng.randrange(1, timelines)),
                         "lineage": lineage(rng, searched["corpus"], first)})
    summary = {"version": 3, "composer": "0.1.0", "python": "3.11.7", "platform": "Linux",
               "argv": ["explore", ".", "--duration", "10h"], "project": "bench",
               "project_dir": str(tmp), "backend": "local", "seed": None,
               "elapsed_seconds": timelines * 3.6, "timelines": timelines,
               "garbage_sdk_lines": 0, "stopped_early": False, "exit_code": 1,
               "properties": props, "findings": findings,
               "utilization": utilization(rng, timelines), "search": searched}
    (root / "summary.json").write_text(json.dumps(summary, indent=2))
    return root


def figure_report(tmp: Path, runs: int) -> str:
    rows = []
    for timelines, n_props, n_findings, events, kept, target in (
            (100, 30, 3, 20, 30, "-"), (10_000, 30, 3, 20, 300, "< 2 s, < 5 MB"),
            (10_000, 300, 10, 200, 2000, "- (stress)")):
        directory = run_dir(tmp, timelines, n_props, n_findings, events, kept)
        points = len(json.loads((directory / "summary.json").read_text())["search"]["over_time"])
        times = []
        for _ in range(runs):
            t0 = time.perf_counter()
            page = write_report(directory)
            times.append((time.perf_counter() - t0) * 1000)
        ms, size, text = median(times), page.stat().st_size, page.read_text()
        part = len(text[text.index("<h2>Search</h2>"):text.index("<h2>Utilization</h2>")]
                   .encode())
        log(f"{timelines} timelines, {n_props} properties: {ms:.1f} ms, {size} bytes")
        rows.append([f"{timelines:,}", str(n_props), f"{n_findings} x {events} events",
                     f"{kept:,} / {points}", fmt(ms), fmt(size / 1024), fmt(part / 1024),
                     target,
                     f"{ms / TARGET_MS:.3f} / {size / TARGET_BYTES:.3f}" if target[0] == "<"
                     else "-"])
    return table(f"1. write_report: median of {runs} runs, page size",
                 ["timelines", "properties", "findings", "kept / points", "median ms",
                  "size KB", "of it Search KB", "target",
                  "ratio to target (time / size)"], rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs per point (default 5)")
    args = parser.parse_args(argv)
    return run_figures("report", {"1": lambda tmp: figure_report(tmp, args.runs)}, "1", False)


if __name__ == "__main__":
    sys.exit(main())
