"""The background process that holds a fixture's cluster up, from ``composer up`` to
``down``: ``python -m composer.conductor DIR PROJECT --cluster B``.

Imports the project loading, the runner, judging, the fixture's layout and actions. The
fixture is a run of one timeline whose driver phase is the user's shell
(``run_timeline(..., hold=...)``): setup as for every timeline (services ready,
``setup_complete``), then the fixture directory is written and a Unix socket answers
the ``control`` scripts until ``down``, SIGTERM or SIGINT; then faults are healed, the
cluster is torn down as after a timeline and the run is recorded like ``composer run``'s
(``composer report`` and ``check`` work on it). If the conductor is SIGKILLed, the
backend's reaper removes the cluster and ``composer gc`` the fixture directory.

Its progress is in the marker (``state``: starting, ready, failed, down), which
``composer up`` polls; its output goes to ``conductor.log`` in the run's directory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import random
import signal
import sys
import tempfile
import time
from pathlib import Path

from composer.cli_parser import aws_setting
from composer.errors import ComposerError, ExitCode
from composer.fixture_layout import FixtureLayout

__all__ = ["main", "REGISTRY"]

#: where live conductors are listed (one ``<pid>.json`` and ``<pid>.sock`` each), for gc
REGISTRY = Path(tempfile.gettempdir()) / ".composer-fixtures"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m composer.conductor")
    parser.add_argument("fixture", type=Path)
    parser.add_argument("project", type=Path)
    parser.add_argument("--cluster", default="local")
    parser.add_argument("--agents", type=Path)
    parser.add_argument("--setup-timeout", type=float)
    parser.add_argument("--aws", action="append", type=aws_setting, default=[])
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupted)  # up gave up: clean up as for Ctrl-C
    layout = FixtureLayout(args.fixture)
    REGISTRY.mkdir(mode=0o700, exist_ok=True)
    entry = REGISTRY / f"{os.getpid()}.json"
    entry.write_text(json.dumps({"fixture": str(layout.directory), "pid": os.getpid()}))
    try:
        return _conduct(args, layout)
    except ComposerError as exc:
        layout.update(state="failed", reason=str(exc))
        print(f"composer: error: {exc}", file=sys.stderr, flush=True)
        return int(exc.exit_code)
    except BaseException as exc:
        layout.update(state="failed", reason=f"internal error: {exc!r}")
        raise
    finally:
        for path in (entry, REGISTRY / f"{os.getpid()}.sock"):
            path.unlink(missing_ok=True)


def _conduct(args: argparse.Namespace, layout: FixtureLayout) -> int:
    with contextlib.ExitStack() as resources:  # an aws fleet, when there is one
        return _conduct_with(args, layout, resources)


def _conduct_with(args: argparse.Namespace, layout: FixtureLayout,
                  resources: contextlib.ExitStack) -> int:
    import dataclasses

    from composer import clusters, project_source, single_run, templates
    from composer.judging import judge
    from composer.runner import run_timeline
    from composer.timeline import Timeline

    project, found = project_source.load(args.project, args.cluster)
    backend = project.backend or args.cluster
    project = project_source.with_agents(project, backend, args.agents)
    if backend == "aws":  # instances for the fixture's life, terminated after down
        from composer import aws_command

        project = aws_command.fleet_for(argparse.Namespace(
            resources=resources, aws=args.aws, duration=float("inf")), project)
    if args.setup_timeout:
        project = dataclasses.replace(project, setup=dataclasses.replace(
            project.setup, timeout=args.setup_timeout))
    template = next(iter(found.values()), None) or templates.Template(
        "fixture", project.templates_dir, ())
    run_dir = project.root / ".composer" / "runs" / (
        f"{time.strftime('%Y%m%d-%H%M%S')}-fixture-{os.urandom(2).hex()}")
    (run_dir / "timelines").mkdir(parents=True)
    log = open(run_dir / "conductor.log", "a", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    layout.update(pid=os.getpid(), socket=str(REGISTRY / f"{os.getpid()}.sock"),
                  project=str(project.root), run_dir=str(run_dir), backend=backend,
                  state="starting")
    seed = random.randrange(2**31)
    timeline = Timeline(template.name, length=0.0, seed=seed)
    hold = _Holder(layout, backend, clusters.limitations(backend))
    result = asyncio.run(run_timeline(timeline, project, template, backend,
                                      run_dir / "timelines" / "00001", hold=hold))
    judged = judge(result)
    _, report = single_run.save(run_dir, judged, project=project, backend=backend, seed=seed,
                                argv=["up", str(args.project), "--cluster", backend])
    if result.setup_error:
        layout.update(state="failed", reason=f"setup failed: {result.setup_error}")
        return ExitCode.PROPERTY_FAILED
    layout.update(state="down", report=str(report))
    return ExitCode.PROPERTY_FAILED if judged.failed else ExitCode.OK


class _Holder:
    """The fixture's driver phase: lay the directory out, answer ``control`` until down."""

    def __init__(self, layout: FixtureLayout, backend: str, limitations: dict[str, str]) -> None:
        self.layout, self.backend, self.limitations = layout, backend, limitations

    async def __call__(self, run) -> None:
        from composer.fixture_actions import FixtureControl

        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(number, stop.set)
        control = FixtureControl(run, self.layout, run.cluster.capabilities, self.limitations)
        self.layout.write(run.nodes, run.services, run.env.topology,
                          run.record.directory / "logs")
        path = self.layout.read()["socket"]

        async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            try:
                request = json.loads(await reader.readline())
                args = [str(a) for a in request.get("args", [])]
                if request.get("node") is None and args == ["down"]:
                    code, out, err = 0, (f"tearing down; the run is recorded in "
                                         f"{self.layout.read().get('run_dir')}\n"), ""
                    stop.set()
                else:
                    code, out, err = await control.handle(request.get("node"), args)
            except (ValueError, AttributeError) as exc:
                code, out, err = 2, "", f"not a control request: {exc}\n"
            except ComposerError as exc:
                code, out, err = int(exc.exit_code), "", f"{exc}\n"
            writer.write((json.dumps({"code": code, "out": out, "err": err}) + "\n").encode())
            try:
                await writer.drain()
            finally:
                writer.close()

        server = await asyncio.start_unix_server(answer, path=path)
        os.chmod(path, 0o600)
        self.layout.update(state="ready")
        print(f"fixture ready at {self.layout.directory}", flush=True)
        try:
            await stop.wait()
        finally:
            server.close()
            self.layout.update(state="stopping")


def _interrupted(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(main())
