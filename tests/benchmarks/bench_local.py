#!/usr/bin/env python3
"""Figures of the ``local`` backend, printed as tables (asserts nothing about time).

    python3 tests/benchmarks/bench_local.py [--quick] [--seeds N] [--budget SECONDS]

1. node start to ready (1, 10, 50 nodes of a minimal TCP listener), median ms, per node
2. timeline overhead: setup + teardown of the 3-node examples/kvstore, empty driver phase
3. timelines per minute during ``explore`` of examples/kvstore (5 s timelines)
4. time to find the planted kvstore bug, the guided search against plain random, over N seeds,
   and the shrunk timeline size against the unshrunk one

Every figure is a median of several runs; ratios are against the named baseline of the
same run, because these machines are shared and noisy: compare runs on one machine
only. Progress goes to stderr, the tables to stdout. Everything is written under one
temporary directory (removed at the end, also on Ctrl-C and SIGTERM), and the example
project is copied there, so nothing is written into the repository. Not collected by
pytest (the file is not named test_*.py).
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import shutil
import signal
import statistics
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

from composer import config, templates
from composer.clusters.local import LocalCluster
from composer.explore import explore
from composer.progress import Progress
from composer.runner import run_timeline
from composer.services import Environment, ServiceNode
from composer.timeline import Timeline

REPO = Path(__file__).resolve().parents[2]
KVSTORE = REPO / "examples" / "kvstore"
#: the property the planted bug breaks (examples/kvstore/drivers/main/eventually_*)
BUG = "Acknowledged writes survive a primary crash"
OVERHEAD_TARGET_MS = 1000.0

# A TCP listener on {host}:7000 that accepts and closes connections forever.
LISTENER = ("python3 -c \"import socket, sys; s=socket.create_server((sys.argv[1], 7000)); "
            "[s.accept()[0].close() for _ in iter(int, 1)]\" {host}")


def log(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", file=sys.stderr, flush=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def fmt(value: float, digits: int = 1) -> str:
    return "n/a" if value != value else f"{value:,.{digits}f}"


def table(title: str, header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(str(r[i])) for r in [header] + rows) for i in range(len(header))]
    line = "  ".join("-" * w for w in widths)
    out = [title, line, "  ".join(h.ljust(w) for h, w in zip(header, widths)), line]
    for row in rows:
        out.append("  ".join(str(c).rjust(w) if i else str(c).ljust(w)
                             for i, (c, w) in enumerate(zip(row, widths))))
    out.append(line)
    return "\n".join(out)


def copy_kvstore(tmp: Path, name: str) -> config.Project:
    """Copy examples/kvstore (without its .composer) so runs and replays stay in ``tmp``."""
    target = tmp / name
    shutil.copytree(KVSTORE, target, ignore=shutil.ignore_patterns(".composer", "__pycache__"))
    return config.load(target)


# -- 1. node start to ready ------------------------------------------------------------

def listener_project(tmp: Path, nodes: int) -> config.Project:
    root = tmp / f"listeners-{nodes}"
    root.mkdir()
    (root / "composer.toml").write_text(
        "[project]\nname = \"bench-listeners\"\n\n"
        f"[services.srv]\nreplicas = {nodes}\ncommand = '{LISTENER}'\nready = {{ tcp = 7000 }}\n"
    )
    return config.load(root)


class ForeignListener(Exception):
    """Something outside this cluster answered on one of its addresses."""


async def accepts(address: str, port: int) -> bool:
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(address, port), 0.5)
    except (OSError, asyncio.TimeoutError):
        return False
    writer.close()
    return True


async def start_to_ready(project: config.Project, directory: Path) -> float:
    """Return ms from the first ServiceNode.start() to every wait_ready passing."""
    cluster = LocalCluster(directory)
    try:
        names = [n for s in project.services for n in s.node_names()]
        nodes = {n.name: n for n in await cluster.new_nodes(names)}
        env = Environment(project, nodes, directory, seed=0)
        services = [ServiceNode(nodes[name], s, i, env, directory)
                    for s in project.services if s.command
                    for i, name in enumerate(s.node_names(), start=1)]
        # A process that outlived its own cluster's claim on this block would pass our
        # readiness checks for us: check first, so such a run is reported, not timed.
        busy = [s.node.address for s in services if await accepts(s.node.address, 7000)]
        if busy:
            raise ForeignListener(f"already listening before start: {', '.join(busy)}:7000")
        t0 = time.perf_counter()
        for service in services:
            await service.start()
        deadline = time.monotonic() + project.setup.timeout
        await asyncio.gather(*(s.wait_ready(deadline) for s in services))
        ms = (time.perf_counter() - t0) * 1000
        await asyncio.sleep(0.05)
        gone = [s.name for s in services if s.process and s.process.returncode is not None]
        if gone:
            raise ForeignListener(f"ready but exited (port taken?): {', '.join(gone)}")
        return ms
    finally:
        await cluster.cleanup()


def figure_nodes(tmp: Path, quick: bool) -> tuple[str, dict]:
    sizes = {1: 3 if quick else 11, 10: 3 if quick else 7, 50: 3 if quick else 5}
    results: dict[int, list[float]] = {}
    for nodes, runs in sizes.items():
        project = listener_project(tmp, nodes)
        results[nodes] = []
        for run in range(runs + 1):  # run 0 warms caches and is not counted
            log(f"figure 1: {nodes} node(s), run {run}/{runs}{' (warm-up)' if not run else ''}")
            for attempt in range(1, 4):
                directory = tmp / f"nodes-{nodes}-{run}-{attempt}"
                try:
                    ms = asyncio.run(start_to_ready(project, directory))
                    break
                except ForeignListener as exc:
                    log(f"figure 1: {nodes} node(s), run {run}: not timed, a process outside "
                        f"this cluster answered ({exc}); trying again")
                finally:
                    shutil.rmtree(directory, ignore_errors=True)
            else:
                raise RuntimeError("figure 1: foreign listeners on 3 blocks in a row")
            if run:
                results[nodes].append(ms)
    base = median(results[1])
    rows = []
    for nodes, values in results.items():
        m = median(values)
        rows.append([f"{nodes} node{'s' if nodes > 1 else ''}", str(len(values)), fmt(m),
                     f"{fmt(min(values))}..{fmt(max(values))}", fmt(m / nodes),
                     f"{m / base:.2f}x"])
    text = table("1. local node start to ready (ServiceNode.start .. every wait_ready; "
                 "TCP listener, ready = { tcp = 7000 })",
                 ["nodes", "runs", "median ms", "min..max ms", "ms per node",
                  "vs 1 node"], rows)
    return text, {n: median(v) for n, v in results.items()}


# -- 2. timeline overhead ----------------------------------------------------------------

def figure_overhead(tmp: Path, quick: bool) -> tuple[str, float]:
    project = copy_kvstore(tmp, "kvstore-overhead")
    template = templates.discover(project.templates_dir)["main"]
    timeline = Timeline(template="main", length=0.0, seed=0)
    runs = 3 if quick else 7
    wall: list[float] = []
    for run in range(runs + 1):  # run 0 warms caches and is not counted
        log(f"figure 2: empty kvstore timeline, run {run}/{runs}"
            f"{' (warm-up)' if not run else ''}")
        directory = tmp / f"overhead-{run}"
        t0 = time.perf_counter()
        result = asyncio.run(run_timeline(timeline, project, template, "local", directory))
        ms = (time.perf_counter() - t0) * 1000
        if not result.setup_ok:
            raise SystemExit(f"figure 2: kvstore setup failed: {result.setup_error}")
        shutil.rmtree(directory, ignore_errors=True)
        if run:
            wall.append(ms)
    m = median(wall)
    text = table("2. timeline overhead: setup + teardown of examples/kvstore (3 kv nodes), "
                 "empty driver phase",
                 ["figure", "runs", "median ms", "min..max ms", "target ms", "vs target"],
                 [["run_timeline", str(len(wall)), fmt(m),
                   f"{fmt(min(wall))}..{fmt(max(wall))}", fmt(OVERHEAD_TARGET_MS, 0),
                   f"{m / OVERHEAD_TARGET_MS:.2f}x ({'under' if m < OVERHEAD_TARGET_MS else 'OVER'})"]])
    return text, m


# -- explore helpers -----------------------------------------------------------------------

def capabilities(project: config.Project):
    from composer.cli import _capabilities

    return _capabilities(project, "local")


def run_explore(project: config.Project, run_dir: Path, **kwargs):
    found = templates.discover(project.templates_dir)
    if "stop_on_failure" in kwargs and \
            "stop_on_failure" not in inspect.signature(explore).parameters:
        log("note: this composer's explore() has no stop_on_failure; searching to the budget")
        kwargs.pop("stop_on_failure")
    result = explore(project, found, "local", capabilities(project), run_dir,
                     progress=Progress(kwargs["duration"], quiet=True), **kwargs)
    if result.stopped_early:
        raise KeyboardInterrupt
    return result


# -- 3. timelines per minute -------------------------------------------------------------

def figure_rate(tmp: Path, quick: bool) -> tuple[str, float]:
    project = copy_kvstore(tmp, "kvstore-rate")
    duration = 20.0 if quick else 60.0
    rates: dict[str, float] = {}
    rows = []
    for generator in ("guided", "random"):
        log(f"figure 3: explore kvstore with {generator} for {duration:g}s (shrinking off)")
        # shrink_budget=0: finding the planted bug must not turn the search into shrinking
        result = run_explore(project, tmp / f"rate-{generator}", duration=duration, seed=1,
                             generator=generator, reruns=0, shrink_budget=0.0)
        shutil.rmtree(tmp / f"rate-{generator}", ignore_errors=True)
        minutes = result.elapsed / 60
        rates[generator] = result.timelines / minutes if minutes else float("nan")
        rows.append([generator + (" (baseline)" if generator == "random" else ""),
                     fmt(rates[generator]), "",
                     f"{result.timelines} timelines in {result.elapsed:.1f}s "
                     f"(duration {duration:g}s, seed 1)"])
    rows[0][2] = f"{rates['guided'] / rates['random']:.2f}x"
    rows[1][2] = "1.00x"
    text = table(f"3. timelines per minute, explore examples/kvstore, timelines up to "
                 f"{project.explore.timeline:g}s",
                 ["generator", "timelines/min", "vs random", "note"], rows)
    return text, rates["guided"]


# -- 4. time to find the planted bug --------------------------------------------------------

def failed_commands(finding) -> str:
    """Return which commands of the finding's timeline failed, with their stderr's end."""
    import json

    try:
        run = json.loads((finding.directory / "run.json").read_text())
    except (OSError, ValueError):
        return ""
    lines = []
    for inv in run.get("invocations", []):
        if inv.get("status") == "exited" and inv.get("exit_code") == 0:
            continue
        if inv.get("status") == "killed":
            continue
        stderr = Path(inv["stdout"]).with_suffix(".stderr")
        try:
            tail = stderr.read_text(errors="replace").strip().splitlines()[-3:]
        except OSError:
            tail = []
        lines.append(f"\n    {inv['command']} on {inv['node']}: {inv['status']}, exit code "
                     f"{inv['exit_code']}" + "".join(f"\n      {t}" for t in tail))
    if run.get("setup_error"):
        lines.append(f"\n    setup failed: {run['setup_error']}")
    return "".join(lines)


def figure_find(tmp: Path, quick: bool, seeds: int, budget: float,
                shrink_budget: float) -> str:
    project = copy_kvstore(tmp, "kvstore-find")
    # per generator: (seconds, found it, what stopped the search early or "")
    found: dict[str, list[tuple[float, bool, str]]] = {"guided": [], "random": []}
    sizes: dict[str, list[tuple[int, int]]] = {"guided": [], "random": []}
    for seed in range(1, seeds + 1):
        for generator in ("guided", "random"):
            log(f"figure 4: {generator}, seed {seed}/{seeds}, budget {budget:g}s")
            run_dir = tmp / f"find-{generator}-{seed}"
            result = run_explore(project, run_dir, duration=budget, seed=seed,
                                 generator=generator, reruns=0, shrink_budget=shrink_budget,
                                 stop_on_failure=True)
            finding = result.findings.get(BUG)
            others = [f for p, f in result.findings.items() if p != BUG]
            for other in others:
                log(f"figure 4: {generator}, seed {seed}: another property failed after "
                    f"{other.found_after:.1f}s: {other.property!r}{failed_commands(other)}")
            if finding is None:
                # stop_on_failure ends the search at any finding, so another property may
                # have cut it short: it still counts as the budget, marked as such
                stopped = others[0].property if others and result.elapsed < budget else ""
                found[generator].append((budget, False, stopped))
                log(f"figure 4: {generator}, seed {seed}: not found in {result.elapsed:.0f}s "
                    f"({result.timelines} timelines"
                    f"{'; stopped early by ' + repr(stopped) if stopped else ''})")
            else:
                found[generator].append((min(finding.found_after, budget), True, ""))
                sizes[generator].append((len(finding.first.events),
                                         len(finding.smallest.events)))
                log(f"figure 4: {generator}, seed {seed}: found after "
                    f"{finding.found_after:.1f}s, shrunk {len(finding.first.events)} -> "
                    f"{len(finding.smallest.events)} events ({result.timelines} timelines)")
            shutil.rmtree(run_dir, ignore_errors=True)

    def summary(generator: str) -> tuple[float, str, str]:
        values = found[generator]
        m = median([v for v, _, _ in values])
        hits = sum(ok for _, ok, _ in values)
        stopped = sum(bool(why) for _, _, why in values)
        # a miss counts as the budget, so the median is a lower bound once misses reach it
        # (the middle one, or the upper of the two middle ones, is a miss)
        mark = "" if sorted(values)[len(values) // 2][1] else ">="
        each = ", ".join(f"{'' if ok else '>='}{v:.0f}{'*' if why else ''}"
                         for v, ok, why in values)
        note = f"{hits}/{len(values)} found; per seed: {each}"
        if stopped:
            note += f"; * = {stopped} stopped early by another failing property"
        return m, f"{mark}{fmt(m)}", note

    hm, hs, hn = summary("guided")
    rm, rs, rn = summary("random")
    ratio = rm / hm if hm else float("nan")
    # a lower bound on random's time makes the ratio a lower bound; on guided's, an
    # upper bound; on both, neither
    bound = {(True, False): ">=", (False, True): "<=", (True, True): "~"}.get(
        (rs.startswith(">="), hs.startswith(">=")), "")
    rows = [["guided", hs, "1.00x", hn],
            ["random (baseline)", rs, f"{bound}{ratio:.2f}x",
             f"{rn}; ratio random/guided"]]
    text = table(f"4. seconds to find {BUG!r} (median over {seeds} seed{'s' if seeds > 1 else ''}, budget {budget:g}s "
                 "each; a miss counts as the budget and is marked >=)",
                 ["generator", "median s", "vs guided", "note"], rows)
    shrink_rows = []
    for generator, pairs in sizes.items():
        if not pairs:
            shrink_rows.append([generator, "-", "-", "-", "no finding"])
            continue
        first = median([a for a, _ in pairs])
        small = median([b for _, b in pairs])
        shrink_rows.append([generator, fmt(first), fmt(small),
                            f"{small / first:.2f}x" if first else "n/a",
                            ", ".join(f"{a}->{b}" for a, b in pairs)])
    text += "\n\n" + table("4b. shrunk timeline size (events of Finding.smallest vs "
                           f"Finding.first; shrink budget {shrink_budget:g} s)",
                           ["generator", "unshrunk (median)", "shrunk (median)",
                            "shrunk/unshrunk", "per finding"], shrink_rows)
    return text


# -- main ---------------------------------------------------------------------------------

def _sigterm(signum, frame) -> None:
    raise KeyboardInterrupt


def run_figures(name: str, figures: dict[str, Callable[[Path], str]], only: str,
                quick: bool) -> int:
    """Run the figures numbered in ``only``, each given one temporary directory (removed
    at the end, also on Ctrl-C or SIGTERM); print their tables; return 1 if one failed."""
    signal.signal(signal.SIGTERM, _sigterm)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix=f"composer-bench-{name}-"))
    tmp.chmod(0o711)  # a baseline running as another user may need to reach its files
    out: list[str] = []
    failed = 0
    try:
        log(f"{'quick' if quick else 'full'} run; files under {tmp}")
        for number, figure in figures.items():
            if number not in only:
                continue
            try:
                out.append(figure(tmp))
            except Exception:  # one broken figure must not lose the others
                failed += 1
                log(f"figure {number} failed:\n{traceback.format_exc()}")
                out.append(f"{number}. FAILED: {traceback.format_exc().splitlines()[-1]} "
                           "(traceback on stderr)")
    except KeyboardInterrupt:
        log("interrupted: printing the figures measured so far")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"composer {name} benchmarks ({'quick' if quick else 'full'} run, "
          f"{time.strftime('%Y-%m-%d %H:%M')}, {time.monotonic() - started:.0f}s; "
          "shared machine: compare ratios, not absolute times)\n")
    print("\n\n".join(out))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true",
                        help="fewer runs, shorter explorations (a few minutes)")
    parser.add_argument("--seeds", type=int, default=None,
                        help="seeds of figure 4 (default 5; --quick 2)")
    parser.add_argument("--budget", type=float, default=None,
                        help="seconds each figure-4 search may take before it counts as a "
                             "miss (default 300; --quick 120)")
    parser.add_argument("--shrink-budget", type=float, default=None,
                        help="seconds figure 4 may shrink a finding (default 120; --quick 30)")
    parser.add_argument("--only", default="1234",
                        help="figures to run, e.g. 12 (default: all)")
    args = parser.parse_args(argv)
    seeds = args.seeds or (2 if args.quick else 5)
    budget = args.budget or (120.0 if args.quick else 300.0)
    shrink_budget = args.shrink_budget if args.shrink_budget is not None else (
        30.0 if args.quick else 120.0)
    return run_figures("local", {
        "1": lambda tmp: figure_nodes(tmp, args.quick)[0],
        "2": lambda tmp: figure_overhead(tmp, args.quick)[0],
        "3": lambda tmp: figure_rate(tmp, args.quick)[0],
        "4": lambda tmp: figure_find(tmp, args.quick, seeds, budget, shrink_budget),
    }, args.only, args.quick)


if __name__ == "__main__":
    sys.exit(main())
