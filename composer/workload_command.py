"""``composer workload list`` and ``composer workload add NAME --adapter CMD``: put a
ready-made workload (``composer_drivers``) into a template without copying files by hand.

``add`` writes one executable driver, ``<templates>/<template>/parallel_driver_<name>``,
that runs the workload's client against the user's adapter (each parallel copy is one
client), and appends the workload's ``[[template.<template>.checks]]`` table to
``composer.toml``; the file is read again, and left as it was if that fails.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

import sys

from composer import checkers, config
from composer.errors import ConfigError, ExitCode

__all__ = ["run"]

_SHIM = """#!/bin/sh
# composer's ready-made {name} workload: {describe}.
# One client per copy, talking to the system through the adapter below (JSON lines on
# stdin and stdout; see composer's README). Written by `composer workload add`; edit the
# adapter or the options (composer-workload --help) freely.
exec python3 -m composer_drivers.workload {name} --adapter {adapter} "$@"
"""


def _workloads() -> dict:
    """The workloads, imported when asked for: composer itself never needs them, and a
    source tree run without installing finds them through its import_paths link."""
    try:
        from composer_drivers.generators import WORKLOADS
    except ImportError:
        sys.path.append(str(Path(__file__).resolve().parent / "import_paths"))
        from composer_drivers.generators import WORKLOADS
    return WORKLOADS


def run(args: argparse.Namespace) -> int:
    """List the workloads, or add one to a project's template."""
    WORKLOADS = _workloads()
    if args.action == "list":
        for workload in WORKLOADS.values():
            model = f" (model {workload.model})" if workload.model else ""
            print(f"{workload.name:<10} {workload.describe}; checker {workload.checker}{model}")
        return ExitCode.OK
    if args.name not in WORKLOADS:
        raise ConfigError(f"no workload {args.name!r}; choose one of {', '.join(WORKLOADS)}")
    workload = WORKLOADS[args.name]
    project = config.load(args.project)
    template_dir = project.templates_dir / args.template
    driver = template_dir / f"parallel_driver_{workload.name}"
    if driver.exists() and not args.force:
        raise ConfigError(f"{driver} exists; remove it or pass --force")
    name = workload.check_name or checkers.default_name(workload.checker, workload.model)
    existing = [c.name for c in project.options_for(args.template).checks]
    source = project.source or project.root / config.CONFIG_NAME
    before = source.read_text(encoding="utf-8-sig")
    if name not in existing:
        table = [f"\n[[template.{args.template}.checks]]   # composer workload add {workload.name}",
                 f'checker = "{workload.checker}"']
        if workload.model:
            table.append(f'model = "{workload.model}"')
        if workload.check_name:
            table.append(f'name = "{workload.check_name}"')
        source.write_text(before.rstrip("\n") + "\n" + "\n".join(table) + "\n", encoding="utf-8")
        try:
            config.load(source)
        except ConfigError:
            source.write_text(before, encoding="utf-8")
            raise
    template_dir.mkdir(parents=True, exist_ok=True)
    driver.write_text(_SHIM.format(name=workload.name, describe=workload.describe,
                                   adapter=shlex.quote(args.adapter)))
    driver.chmod(0o755)
    print(f"added {driver} and the check {name!r} to {source}")
    adapter = args.project / shlex.split(args.adapter)[0]
    if not adapter.exists() and not Path(shlex.split(args.adapter)[0]).is_absolute():
        print(f"note: {adapter} does not exist yet: write the adapter (JSON lines on stdin "
              "and stdout, see README: Histories and checkers)")
    return ExitCode.OK
