#!/usr/bin/env python3
"""Time to the first failure, guided search against uniform random, on deep planted bugs.

    python3 tests/benchmarks/bench_search.py [--quick] [--seeds N] [--budget SECONDS]
        [--examples ledger,lease,leader,kvstore,pbstore] [--twins] [--one-at-a-time]

For each example and seed, ``composer explore --seed S --stop-on-failure`` runs once with
``--generator guided`` and once with ``--generator random`` (shrinking and re-runs off),
the two side by side by default so that both see the same machine load. Printed per
example: the median and spread of seconds to the first failure of the example's planted
property (a search that misses it within the budget counts as the budget, marked ``>=``;
one stopped by another property is marked ``*``), the ratio random/guided, distinct
behaviours seen in the first n timelines, where n is what both searches of a seed ran
(at most 100: a search that found the bug early ran fewer, and behaviours grow with
timelines), timelines per minute, and overhead seconds per timeline (wall clock beyond
the driver phases, so the two are compared at equal timeline lengths). ``--twins`` also
explores each example with its bug switched off for the budget: every property must hold
there (a failure is a false alarm, printed as such).

Asserts nothing about time (machines are shared): compare the ratios. Everything is
written under one temporary directory (examples are copied there), removed at the end,
also on Ctrl-C. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
GENERATORS = ("guided", "random")


@dataclass(frozen=True)
class Example:
    """A project with a planted bug: the property it breaks and how to switch it off."""

    name: str
    property: str
    bug_env: str
    cluster: str = "local"


EXAMPLES = {e.name: e for e in (
    Example("ledger", "Acknowledged appends survive a crash", "LEDGER_BUG"),
    Example("lease", "Acknowledged updates are never lost", "LEASE_BUG"),
    Example("leader", "Acknowledged writes survive leader changes", "LEADER_BUG"),
    Example("kvstore", "Acknowledged writes survive a primary crash", "KVSTORE_BUG"),
    Example("pbstore", "Acknowledged writes survive a network partition", "PBSTORE_BUG"),
)}


@dataclass
class Outcome:
    """One exploration: when (if) the planted property failed, and what the search saw."""

    seconds: float
    found: bool
    stopped_by: str
    timelines: int
    elapsed: float
    #: (timelines run, distinct behaviours so far) after each timeline
    behaviours: list[tuple[int, int]]
    failing: list[str]
    #: wall-clock seconds per timeline beyond its driver phase
    overhead: float


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def explore(example: Example, project: Path, generator: str, seed: int | None, budget: float,
            bug: bool) -> Outcome:
    """Run one exploration in a subprocess and read its summary."""
    env = {**os.environ, example.bug_env: "1" if bug else "0"}
    argv = [sys.executable, "-m", "composer.cli", "explore", str(project), "--json",
            "--quiet", "--cluster", example.cluster, "--generator", generator,
            "--duration", f"{budget:g}s", "--reruns", "0", "--shrink-budget", "0.01s"]
    if bug:
        argv.append("--stop-on-failure")
    if seed is not None:
        argv += ["--seed", str(seed)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=budget + 600)
    if done.returncode not in (0, 1):
        raise RuntimeError(f"{example.name} {generator} seed {seed}: exit {done.returncode}\n"
                           f"{done.stderr[-3000:]}")
    summary = json.loads(done.stdout)
    findings = {f["property"]: f for f in summary["findings"]}
    target = findings.get(example.property)
    others = sorted(p for p in findings if p != example.property)
    for name in others:  # the project is deleted after the run: say what failed now
        log(f"{example.name} {generator} seed {seed} stopped by {name!r}: "
            f"{failed_records(Path(findings[name]['directory']), name)}")
    return Outcome(
        seconds=target["found_after_seconds"] if target else budget,
        found=target is not None,
        stopped_by="" if target or not others else others[0],
        timelines=summary["timelines"], elapsed=summary["elapsed_seconds"],
        behaviours=[(point[1], point[2]) for point in summary["search"]["over_time"]],
        failing=sorted(findings),
        overhead=(summary["elapsed_seconds"] - summary["search"]["driver_seconds"])
        / max(1, summary["timelines"]))


def failed_records(directory: Path, prop: str) -> str:
    """The details of the records of ``prop`` that failed in a timeline's directory."""
    failed = []
    for path in [directory / "composer.jsonl", *sorted((directory / "sdk").glob("*.jsonl"))]:
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            continue
        for line in lines:
            try:
                inner = json.loads(line).get("antithesis_assert") or {}
            except (ValueError, AttributeError):
                continue
            if inner.get("message") == prop and inner.get("condition") is False:
                failed.append(json.dumps(inner.get("details"))[:500])
    return "; ".join(failed[:3]) or "no failing record found"


def behaviours_within(outcome: Outcome, n: int) -> int:
    """Distinct behaviours seen in the first ``n`` timelines."""
    return max((seen for timelines, seen in outcome.behaviours if timelines <= n), default=0)


def copy_example(name: str, tmp: Path, label: str) -> Path:
    target = tmp / f"{name}-{label}"
    shutil.copytree(REPO / "examples" / name, target,
                    ignore=shutil.ignore_patterns(".composer", "__pycache__"))
    return target


def median_and_spread(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):.0f} ({min(values):.0f}-{max(values):.0f})"


def cell(outcome: Outcome) -> str:
    mark = "" if outcome.found else (">=" if not outcome.stopped_by else "*")
    return f"{mark}{outcome.seconds:.0f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [title, line, "  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    out += ["  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                      for i, (c, w) in enumerate(zip(row, widths))) for row in rows]
    return "\n".join(out + [line])


def bench(examples: list[Example], seeds: int, budget: float, side_by_side: bool,
          tmp: Path) -> tuple[list[list[str]], list[list[str]]]:
    rows, per_seed = [], []
    same_n: dict[str, list[int]] = {}
    for example in examples:
        results: dict[str, list[Outcome]] = {g: [] for g in GENERATORS}
        same_n[example.name] = []
        for seed in range(1, seeds + 1):
            log(f"{example.name}: seed {seed}/{seeds}, budget {budget:g}s")
            projects = {g: copy_example(example.name, tmp, f"{g}-{seed}") for g in GENERATORS}
            with ThreadPoolExecutor(max_workers=2 if side_by_side else 1) as pool:
                futures = {g: pool.submit(explore, example, projects[g], g, seed, budget, True)
                           for g in GENERATORS}
                for generator, future in futures.items():
                    outcome = future.result()
                    results[generator].append(outcome)
                    log(f"{example.name} seed {seed} {generator}: {cell(outcome)} s, "
                        f"{outcome.timelines} timelines, failing {outcome.failing}")
            for project in projects.values():
                shutil.rmtree(project, ignore_errors=True)
            n = min(100, *(results[g][-1].timelines for g in GENERATORS))
            same_n[example.name].append(n)
            per_seed.append([example.name, str(seed)] + [cell(results[g][-1]) for g in GENERATORS]
                            + [str(n)] + [str(behaviours_within(results[g][-1], n))
                                          for g in GENERATORS])
        times = {g: [o.seconds for o in results[g]] for g in GENERATORS}
        guided, random_ = statistics.median(times["guided"]), statistics.median(times["random"])
        row = [example.name]
        for g in GENERATORS:
            found = sum(o.found for o in results[g])
            seen = [behaviours_within(o, n) for o, n in zip(results[g], same_n[example.name])]
            rate = [60 * o.timelines / o.elapsed for o in results[g] if o.elapsed]
            row += [median_and_spread(times[g]), f"{found}/{seeds}",
                    f"{statistics.median(seen):.0f}", f"{statistics.median(rate):.1f}",
                    f"{statistics.median(o.overhead for o in results[g]):.2f}"]
        row.append(f"{random_ / guided:.1f}x" if guided else "n/a")
        rows.append(row)
    return rows, per_seed


def twins(examples: list[Example], budget: float, tmp: Path) -> list[list[str]]:
    rows = []
    for example in examples:
        for generator in GENERATORS:
            log(f"{example.name} with its bug off: {generator} for {budget:g}s")
            project = copy_example(example.name, tmp, f"twin-{generator}")
            outcome = explore(example, project, generator, None, budget, False)
            shutil.rmtree(project, ignore_errors=True)
            rows.append([example.name, generator, str(outcome.timelines),
                         ", ".join(outcome.failing) or "none (as it must be)"])
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 seeds, 120 s budget")
    parser.add_argument("--seeds", type=int, help="seeds per example (default 5)")
    parser.add_argument("--budget", type=float, help="seconds per exploration (default 300)")
    parser.add_argument("--examples", default="ledger,lease,leader,kvstore",
                        help="comma-separated, from: " + ", ".join(EXAMPLES))
    parser.add_argument("--twins", action="store_true",
                        help="also explore each example with its bug off (false alarms)")
    parser.add_argument("--one-at-a-time", action="store_true",
                        help="run guided and random one after the other, not side by side")
    args = parser.parse_args(argv)
    seeds = args.seeds or (3 if args.quick else 5)
    budget = args.budget or (120.0 if args.quick else 300.0)
    unknown = [n for n in args.examples.split(",") if n not in EXAMPLES]
    if unknown:
        parser.error(f"unknown example(s) {unknown}; known: {', '.join(EXAMPLES)}")
    examples = [EXAMPLES[n] for n in args.examples.split(",")]
    tmp = Path(tempfile.mkdtemp(prefix="composer-bench-search-"))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        rows, per_seed = bench(examples, seeds, budget, not args.one_at_a_time, tmp)
        print(table(f"Seconds to the first failure of the planted property, {seeds} seeds, "
                    f"budget {budget:g}s (median (min-max); >= not found, * another "
                    f"property stopped the search)",
                    ["example", "guided s", "found", "behav@n", "tl/min", "overhead s",
                     "random s", "found", "behav@n", "tl/min", "overhead s",
                     "random/guided"], rows))
        print(table("Per seed (behaviours in the first n timelines, n = what both ran, "
                    "at most 100)", ["example", "seed", "guided s", "random s", "n",
                                     "guided behav", "random behav"], per_seed))
        if args.twins:
            print(table(f"Bug switched off, {budget:g}s each: failing properties",
                        ["example", "generator", "timelines", "failing"],
                        twins(examples, budget, tmp)))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
