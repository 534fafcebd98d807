"""``composer up``, ``down`` and ``status``: a live cluster as a directory (cthulhu's).

Imports the layout, the client and the conductor's registry. ``up`` claims the fixture
directory, starts the conductor (``composer.conductor``) in a session of its own, and
returns once the cluster is ready, saying where everything is; or, when setup fails,
with the reason, removing what it made. ``down`` and ``status`` talk to the conductor
like ``DIR/control`` does. ``collect`` (for ``composer gc``) removes the directories of
fixtures whose conductor died.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from composer import fixture_client
from composer.errors import ConfigError, ExitCode, InfraError
from composer.fixture_layout import FixtureLayout

__all__ = ["up", "down", "status", "collect"]

#: how long ``up`` waits beyond the setup timeout (building the cluster, recording)
_MARGIN_SECONDS = 120.0


def up(args: argparse.Namespace, project) -> int:
    """Run ``composer up``: return once the fixture is ready (0), or why not."""
    directory = (args.fixture or project.root / ".composer" / "fixture").resolve()
    layout = FixtureLayout(directory)
    layout.claim(state="launching", project=str(project.root))
    argv = [sys.executable, "-m", "composer.conductor", str(directory), str(project.root),
            "--cluster", args.cluster]
    if getattr(args, "agents", None):
        argv += ["--agents", str(args.agents.resolve())]
    if getattr(args, "setup_timeout", None):
        argv += ["--setup-timeout", str(args.setup_timeout)]
    margin = _MARGIN_SECONDS
    if args.cluster == "aws":  # the conductor launches; the instances boot first
        from composer import aws

        flags = dict(args.aws or ())  # the conductor reads [aws] itself
        margin += aws.load(dict(project.aws) | flags).boot_timeout
        argv += [f"--aws={key}={value}" for key, value in flags.items()]
    with open(directory / ".conductor-start.log", "wb") as early:
        conductor = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=early,
                                     stderr=subprocess.STDOUT, start_new_session=True)
    layout.update(pid=conductor.pid)
    print(f"bringing {project.name!r} up on {args.cluster} (fixture {directory}) ...",
          flush=True)
    deadline = time.monotonic() + project.setup.timeout + margin
    try:
        while True:
            state = layout.read()
            if state.get("state") == "ready":
                break
            code = conductor.poll()
            if code is not None or state.get("state") == "failed":
                return _failed(layout, conductor, state)
            if time.monotonic() > deadline:
                conductor.terminate()
                conductor.wait()
                shutil.rmtree(directory, ignore_errors=True)
                raise InfraError(f"the fixture was not ready after "
                                 f"{project.setup.timeout + margin:g}s; see "
                                 f"{state.get('run_dir', directory)}/conductor.log")
            time.sleep(0.05)
    except KeyboardInterrupt:
        conductor.terminate()
        conductor.wait()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    (directory / ".conductor-start.log").unlink(missing_ok=True)
    code, out, _ = fixture_client.request(directory, None, ["status"])
    print(out, end="")
    print(f"ready: {directory}\n"
          f"  {directory}/<node>/control start|stop|kill|pause|resume|restart|status|exec ...\n"
          f"  {directory}/control partition A B | loss NODE PCT | heal | status | down\n"
          f"  composer down {directory}     (the run is recorded in {state['run_dir']})")
    return ExitCode.OK


def _failed(layout: FixtureLayout, conductor: subprocess.Popen, state: dict) -> int:
    """The conductor failed before the fixture was ready: say why, remove what it made."""
    code = conductor.wait()
    state = layout.read()
    reason = state.get("reason") or "the conductor ended before the cluster was ready"
    log = Path(state["run_dir"]) / "conductor.log" if state.get("run_dir") else (
        layout.directory / ".conductor-start.log")
    tail = log.read_text(errors="replace").strip().splitlines()[-15:] if log.exists() else []
    print(f"composer: up failed: {reason}", file=sys.stderr)
    if tail and not state.get("reason"):
        print("  " + "\n  ".join(tail), file=sys.stderr)
    if state.get("run_dir"):
        print(f"composer: the attempt is recorded in {state['run_dir']}", file=sys.stderr)
    shutil.rmtree(layout.directory, ignore_errors=True)
    return code if code in (ExitCode.PROPERTY_FAILED, ExitCode.USAGE) else ExitCode.INFRA


def down(args: argparse.Namespace) -> int:
    """Run ``composer down DIR``."""
    _check_fixture(args.fixture)
    return fixture_client.down(args.fixture.resolve())


def status(args: argparse.Namespace) -> int:
    """Run ``composer status DIR``."""
    _check_fixture(args.fixture)
    code, out, err = fixture_client.request(args.fixture.resolve(), None, ["status"])
    sys.stdout.write(out)
    sys.stderr.write(err)
    return code


def _check_fixture(directory: Path) -> None:
    if not (directory / fixture_client.MARKER).is_file():
        raise ConfigError(f"{directory}: not a composer fixture (no {fixture_client.MARKER}); "
                          "composer up PROJECT --fixture DIR makes one")


def collect() -> list[str]:
    """Remove the fixture directories (and sockets) of conductors that are gone."""
    from composer.conductor import REGISTRY

    removed = []
    for entry in sorted(REGISTRY.glob("*.json")) if REGISTRY.is_dir() else []:
        try:
            facts = json.loads(entry.read_text())
            pid, directory = int(facts["pid"]), Path(facts["fixture"])
        except (OSError, ValueError, KeyError):
            continue
        if fixture_client._alive(pid):
            continue
        marker = FixtureLayout(directory).read()
        if marker.get("pid") == pid:
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(f"fixture {directory} (conductor {pid} is gone)")
        entry.unlink(missing_ok=True)
        (REGISTRY / f"{pid}.sock").unlink(missing_ok=True)
    return removed

