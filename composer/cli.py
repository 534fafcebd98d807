"""The ``composer`` command: ``main(argv) -> int``; exceptions become exit codes 0/1/2/3.

Subcommands: validate, run, explore, replay. Errors print one line (a traceback only
with ``--debug``).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import random
import signal
import sys
import time
import traceback
from pathlib import Path

from composer import (aws_command, check_command, cli_parser, clusters, config,
                      fixture_command, project_source, single_run, templates, workload_command)
from composer.errors import ComposerError, ConfigError, ExitCode
from composer.faults import Capabilities

__all__ = ["main"]


#: the exit code of a run stopped by Ctrl-C or SIGTERM (128 + SIGINT, as shells report it)
_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> int:
    """Run the ``composer`` command with ``argv``; return the exit code."""
    args = cli_parser.parser().parse_args(argv)
    if getattr(args, "ray", None):  # Ray may end its driver: not as a property failure
        from composer.ray_jobs import in_child

        return in_child(lambda: _handle(args))
    return _handle(args)


def _handle(args: argparse.Namespace) -> int:
    handler = {"validate": _validate, "run": _run, "explore": _explore, "replay": _replay,
               "gc": _gc, "report": _report, "check": check_command.run,
               "workload": workload_command.run, "aws": aws_command.run, "up": _up,
               "down": fixture_command.down, "status": fixture_command.status}
    previous = signal.signal(signal.SIGTERM, _sigterm)
    code = int(ExitCode.INFRA)
    try:
        with contextlib.ExitStack() as args.resources:  # what the run holds: an aws fleet
            code = int(handler[args.command](args))
    except ComposerError as exc:
        if args.debug:
            traceback.print_exc()
        print(f"composer: error: {exc}", file=sys.stderr)
        code = int(exc.exit_code)
    except KeyboardInterrupt:
        print("composer: interrupted; every process was stopped", file=sys.stderr)
        code = _INTERRUPTED
    except Exception as exc:  # a bug of composer's: never exit 1, which means "a property failed"
        if args.debug:
            traceback.print_exc()
        print(f"composer: internal error: {exc!r}; this is a bug in composer: run again with "
              "--debug for the traceback and report it", file=sys.stderr)
        code = int(ExitCode.INFRA)
    finally:
        signal.signal(signal.SIGTERM, previous)
    if code == _INTERRUPTED:  # one more Ctrl-C while exiting must not turn 130 into a kill
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    return code


def _sigterm(signum, frame) -> None:
    """Treat SIGTERM as Ctrl-C, through asyncio's SIGINT handler when a loop runs; when
    SIGINT is ignored (``composer ... &`` in a script) or default, raise it here."""
    handler = signal.getsignal(signal.SIGINT)
    if not callable(handler):
        raise KeyboardInterrupt
    handler(signal.SIGINT, frame)


def _load(args: argparse.Namespace, launch: bool = True
          ) -> tuple[config.Project, dict[str, templates.Template]]:
    """The project as the flags amend it; ``--cluster aws``: with a fleet launched for
    the command (``launch``; ``up`` leaves that to its conductor)."""
    project, found = project_source.load(
        getattr(args, "compose", None) or args.project, getattr(args, "cluster", None),
        compose_file=bool(getattr(args, "compose", None)),
        say=lambda line: print(f"composer: {line}", file=sys.stderr))
    if project.backend is not None and hasattr(args, "cluster"):
        args.cluster = project.backend
    elif args.command in ("run", "explore", "up"):
        args.cluster = args.cluster or "local"
    project = project_source.with_agents(project, getattr(args, "cluster", None),
                                         getattr(args, "agents", None))
    if getattr(args, "cluster", None) == "aws":
        project = aws_command.fleet_for(args, project) if launch else project
    elif getattr(args, "aws", None):
        raise ConfigError("--aws sets up the aws backend: use it with --cluster aws")
    overrides = {}
    if getattr(args, "timeline", None):
        overrides["timeline"] = args.timeline
    if getattr(args, "max_parallel", None) is not None:
        overrides["max_parallel"] = args.max_parallel
    if getattr(args, "command_timeout", None):
        overrides["command_timeout"] = args.command_timeout
    if getattr(args, "faults", None) is not None:
        overrides["faults"] = args.faults
    if overrides:
        project = dataclasses.replace(
            project, explore=dataclasses.replace(project.explore, **overrides))
    if getattr(args, "setup_timeout", None):
        project = dataclasses.replace(
            project, setup=dataclasses.replace(project.setup, timeout=args.setup_timeout))
    unknown = [name for name, _ in project.template_options if name not in found]
    if unknown:
        raise ConfigError(f"{project.source}: [template.{unknown[0]}] names no template; "
                          f"the templates are {', '.join(found)} (in {project.templates_dir})")
    return project, found


def _capabilities(project: config.Project, backend: str) -> Capabilities:
    supported = clusters.capabilities(backend, **project.cluster_options)
    wanted = project.explore.faults
    if wanted:
        why = clusters.limitations(backend)
        for kind in sorted(set(wanted) - supported):
            print(f"composer: note: the {backend} backend cannot apply {kind} faults here "
                  f"({why.get(kind, 'not supported')}); they are not drawn", file=sys.stderr)
    return Capabilities(
        faults=supported,
        fault_targets=tuple(project.fault_targets()),
        driver_nodes=tuple(project.driver_nodes()),
        max_parallel=project.explore.max_parallel,
    ).restricted(wanted)


def _run_dir(project: config.Project) -> Path:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    run_dir = project.root / ".composer" / "runs" / f"{stamp}-{os.urandom(2).hex()}"
    run_dir.mkdir(parents=True)
    return run_dir


def _validate(args: argparse.Namespace) -> int:
    project, found = _load(args)
    print(f"project {project.name!r} ({project.source})")
    for service in project.services:
        what = (f"container of {service.image}" if service.image
                else service.command or "(drivers only)")
        print(f"  service {service.name}: {service.replicas} node(s): {what}")
    for template in found.values():
        print(f"template {template.name!r} ({template.path})")
        for command in template.commands:
            print(f"  {command.kind:<17} {command.name}")
        for check in project.options_for(template.name).checks:
            model = f" ({check.model})" if check.model else ""
            print(f"  {'check':<17} {check.name}: {check.checker}{model}")
    print("ok")
    return ExitCode.OK


def _print_event(entry: dict) -> None:
    fields = " ".join(f"{k}={v}" for k, v in entry.items() if k not in ("t", "what"))
    print(f"  {entry['t']:7.2f}s  {entry['what']:<15} {fields}", flush=True)


def _run(args: argparse.Namespace) -> int:
    from composer import schedule
    from composer.judging import run_one

    project, found = _load(args)
    seed = args.seed if args.seed is not None else random.randrange(2**31)
    if args.template:
        if args.template not in found:
            raise ConfigError(f"--template {args.template!r}: no such template; have "
                              f"{', '.join(found)}")
        found = {args.template: found[args.template]}
    caps = _capabilities(project, args.cluster)
    timeline = schedule.random_timeline(random.Random(seed), found, caps,
                                        project.explore.timeline)
    run_dir = _run_dir(project)
    print(f"timeline (seed {seed}, template {timeline.template!r}):")
    print("\n".join(timeline.describe()))
    print("events:")
    judged = run_one(timeline, project, found[timeline.template], args.cluster,
                     run_dir / "timelines" / "00001", _print_event)
    # the same files as an exploration's, so `composer report RUN_DIR` works on it too
    table, report = single_run.save(run_dir, judged, project=project, backend=args.cluster,
                                    seed=seed, argv=sys.argv[1:])
    print("properties:")
    from composer.report import print_properties

    print_properties(table.properties(), sys.stdout, one_timeline=True)
    if judged.garbage_lines:
        print(f"note: {judged.garbage_lines} SDK output line(s) were not valid records; skipped")
    if judged.result.setup_error:
        print(f"setup failed: {judged.result.setup_error}")
    code = ExitCode.PROPERTY_FAILED if judged.failed else ExitCode.OK
    print(f"run directory: {run_dir}\nreport: {report}")
    if judged.failed:
        print(f"FAILED: {', '.join(judged.violations)}")
    return code


def _explore(args: argparse.Namespace) -> int:
    from composer.budget import Budget
    from composer.explore import explore
    from composer.interrupts import interrupts_deferred
    from composer.progress import Progress
    from composer.report import print_findings, print_properties, write_summary

    project, found = _load(args)
    caps = _capabilities(project, args.cluster)
    run_dir = _run_dir(project)
    out = sys.stderr if args.json else sys.stdout
    jobs = f", {args.jobs} timelines at once" if (args.jobs or 1) > 1 else ""
    if args.ray:
        jobs += f", as tasks of the Ray cluster at {args.ray}"
    print(f"exploring {project.name!r} on {args.cluster}{jobs} for {args.duration:g}s "
          f"(templates: {', '.join(found)}; faults: "
          f"{', '.join(sorted(caps.faults)) if caps.fault_targets and caps.faults else 'none'}); "
          f"{Budget(args.duration, args.shrink_budget, args.reruns, 0).describe()}",
          file=out, flush=True)
    progress = Progress(args.duration, quiet=args.quiet, live=False if args.json else None)
    # with --json, stdout is the summary alone, whatever a library prints meanwhile (Ray's
    # raylet reports a lost worker on the driver's stdout)
    with contextlib.redirect_stdout(sys.stderr) if args.json else contextlib.nullcontext():
        result = explore(project, found, args.cluster, caps, run_dir, duration=args.duration,
                         seed=args.seed, generator=args.generator, reruns=args.reruns,
                         shrink_budget=args.shrink_budget,
                         stop_on_failure=args.stop_on_failure, progress=progress,
                         jobs=args.jobs, ray=args.ray)
    failing = result.table.failing()
    code = ExitCode.PROPERTY_FAILED if (failing or result.findings) else ExitCode.OK
    if result.stopped_early:
        code = _INTERRUPTED
    with interrupts_deferred():
        summary = write_summary(run_dir, project=project, backend=args.cluster,
                                seed=args.seed, exploration=result, exit_code=int(code),
                                argv=sys.argv[1:])
        try:
            report: Path | str = single_run.write_results(run_dir)
        except Exception as exc:  # a report bug must not cost the run its verdict
            print(f"composer: warning: could not write the report: {exc!r}; see "
                  f"composer --debug report {run_dir}", file=sys.stderr)
            report = "not written (see the warning above)"
    if args.json:
        print(summary.read_text(), end="")
        return code
    print(f"\n{result.timelines} timelines in {result.elapsed:.0f}s")
    print_properties(result.table.properties(), sys.stdout)
    print_findings(result.findings, sys.stdout)
    if result.garbage_lines:
        print(f"note: {result.garbage_lines} SDK output line(s) were not valid records; skipped")
    print(f"\nsummary: {summary}\nreport:  {report}")
    return code


def _replay(args: argparse.Namespace) -> int:
    from composer.progress import Progress
    from composer.timeline import Fault, load_replay

    try:
        replay = load_replay(args.replay)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    args.project = args.project or replay.project
    if args.cluster is None and replay.backend == "aws":  # launched before loading
        args.cluster = "aws"
    project, found = _load(args)
    if replay.timeline.template not in found:
        raise ConfigError(f"{args.replay}: template {replay.timeline.template!r} is no longer in "
                          f"{project.templates_dir}")
    _check_replay_fits(args.replay, replay.timeline, project, found[replay.timeline.template])
    backend = args.cluster or replay.backend
    needed = {e.kind for e in replay.timeline.events if isinstance(e, Fault)}
    missing = needed - clusters.capabilities(backend, **project.cluster_options)
    if missing:
        why = clusters.limitations(backend)
        raise ConfigError(f"{args.replay}: the {backend} backend cannot apply "
                          + "; ".join(f"{k} faults ({why.get(k, 'not supported')})"
                                      for k in sorted(missing))
                          + f"; replay it on {replay.backend} (--cluster {replay.backend})")
    run_dir = _run_dir(project)
    print(f"replaying {args.replay} ({replay.property!r}) {args.runs} time(s) on {backend}:")
    print("\n".join(replay.timeline.describe()))
    # a live panel on a terminal; otherwise the lines below are the progress
    progress = Progress(None, quiet=not sys.stderr.isatty(), stage="replaying")
    try:
        reproduced = _replay_runs(args.runs, replay, project, found, backend, run_dir, progress)
    finally:
        progress.done()
    print(f"reproduced {reproduced}/{args.runs}; logs in {run_dir}")
    return ExitCode.PROPERTY_FAILED if reproduced else ExitCode.OK


def _check_replay_fits(path: Path, timeline, project: config.Project, template) -> None:
    """``ConfigError`` naming the nodes and commands of a replay its project no longer has."""
    from composer.timeline import Fault, Start

    nodes = {n for s in project.services for n in s.node_names()}
    named = set()
    commands = {c for c in (timeline.first, timeline.eventually, timeline.finally_) if c}
    for event in timeline.events:
        if isinstance(event, Start):
            named.add(event.node)
            commands.add(event.command)
        elif isinstance(event, Fault):
            named.update(event.targets)
            if event.after is not None and event.after.node is not None:
                named.add(event.after.node)
    missing = sorted(named - nodes)
    gone = sorted(commands - {c.name for c in template.commands})
    if missing or gone:
        what = ([f"node(s) {', '.join(missing)} (it has {', '.join(sorted(nodes))})"]
                if missing else []) + ([f"command(s) {', '.join(gone)} in template "
                                        f"{template.name!r}"] if gone else [])
        raise ConfigError(f"{path}: the replay names {' and '.join(what)} that "
                          f"{project.source} no longer has; it was saved against another "
                          "version of the project: restore that, or explore again")


def _replay_runs(runs: int, replay, project: config.Project, found, backend: str,
                 run_dir: Path, progress) -> int:
    """Run the replay's timeline ``runs`` times; return how often its property failed."""
    from composer.judging import run_one

    reproduced = 0
    for i in range(1, runs + 1):
        progress.timeline_started(i, replay.timeline)
        judged = run_one(replay.timeline, project, found[replay.timeline.template], backend,
                         run_dir / "timelines" / f"{i:05d}", progress.event)
        progress.timeline_ended(i)
        hit = replay.property in judged.violations
        reproduced += hit
        verdict = "reproduced" if hit else ("failed: " + ", ".join(judged.violations)
                                            if judged.failed else "passed")
        print(f"  run {i}: {verdict}", flush=True)
    return reproduced


def _report(args: argparse.Namespace) -> int:
    from composer.report import SUMMARY_VERSION

    path = args.run_dir / "summary.json"
    if not path.is_file():
        raise ConfigError(f"{args.run_dir}: no summary.json here; give a run directory such "
                          "as .composer/runs/<id> (written by composer explore or run)")
    try:
        summary = json.loads(path.read_text(errors="replace"))
    except ValueError as exc:
        raise ConfigError(f"{path}: not JSON ({exc}); the run was cut off while writing "
                          "it: run composer explore again") from None
    version = summary.get("version") if isinstance(summary, dict) else None
    if not isinstance(version, int) or not 1 <= version <= SUMMARY_VERSION:
        raise ConfigError(f"{path}: not a composer summary of a version this composer reads "
                          f"(version {version!r}; reads 1 to {SUMMARY_VERSION})")
    try:
        report = single_run.write_results(args.run_dir)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ConfigError(f"{path}: a field composer needs is missing or malformed "
                          f"({exc!r}); run composer explore again") from None
    print(f"report: {report}\njunit:  {args.run_dir / 'junit.xml'}")
    if args.open:
        import webbrowser

        try:
            webbrowser.get().open(report.resolve().as_uri())
        except webbrowser.Error:
            print(f"composer: no browser found here; open {report} yourself", file=sys.stderr)
    return ExitCode.OK


def _up(args: argparse.Namespace) -> int:
    project, _ = _load(args, launch=False)  # the conductor holds the instances
    return fixture_command.up(args, project)


def _gc(args: argparse.Namespace) -> int:
    from composer import project_bundle
    from composer.clusters import leftovers

    if args.cluster or args.region:
        return aws_command.gc(args)
    from composer.aws.fleet import collect as fleet_keys

    removed = (leftovers.collect() + project_bundle.collect() + fixture_command.collect()
               + fleet_keys())
    for what in removed:
        print(f"removed {what}")
    print(f"{len(removed)} leftover(s) removed" if removed else "nothing to remove")
    return ExitCode.OK


if __name__ == "__main__":
    sys.exit(main())
