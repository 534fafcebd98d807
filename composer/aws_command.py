"""``composer aws bootstrap|status|teardown`` and ``composer gc --cluster aws``.

Imports ``composer.aws`` (which needs boto3 only once it talks to AWS) and
``composer.errors``. Kept out of ``composer.cli`` so the command's module stays small;
errors are raised as ``ComposerError`` and ``composer.cli`` prints them as one line.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys

from composer.errors import ConfigError, ExitCode

__all__ = ["run", "gc", "fleet_for"]


def _settings(args: argparse.Namespace):
    from composer import aws

    return aws.load({"region": getattr(args, "region", None),
                     "name": getattr(args, "name", None)})


def run(args: argparse.Namespace) -> int:
    """Run ``composer aws ACTION``; return the exit code."""
    from composer import aws

    settings = _settings(args)
    if args.action == "bootstrap":
        made = aws.bootstrap(settings, say=print)
        print(f"bootstrap {settings.name!r} ready: subnet {made.subnet}, security group "
              f"{made.security_group}, instance profile {made.instance_profile}, bucket "
              f"{made.bucket}")
        print(f"a run at the caps: "
              f"{aws.estimate_cost(settings, settings.max_instances, settings.max_hours)}")
    elif args.action == "status":
        for line in aws.status(settings).lines():
            print(line)
    elif args.action == "teardown":
        removed = aws.teardown(settings, say=print)
        print(f"{len(removed)} resource(s) removed" if removed else "nothing to remove")
    return ExitCode.OK


def gc(args: argparse.Namespace) -> int:
    """Run ``composer gc --cluster aws``: terminate the instances of dead runs."""
    from composer import aws

    if args.cluster != "aws":
        raise ConfigError("--region is for --cluster aws: composer gc --cluster aws "
                          f"--region {args.region}")
    from composer.aws.fleet import collect as fleet_keys

    removed = aws.collect(_settings(args)) + fleet_keys()
    for what in removed:
        print(f"removed {what}")
    print(f"{len(removed)} leftover(s) removed" if removed else "nothing to remove")
    return ExitCode.OK



def fleet_for(args: argparse.Namespace, project):
    """Launch the fleet of ``composer run|explore|replay --cluster aws`` (one agent per
    node, times --jobs), held until the command ends; return ``project`` pointed at it."""
    from composer import aws
    from composer.aws.fleet import Fleet

    if getattr(args, "ray", None):
        raise ConfigError("--cluster aws with --ray: each Ray worker builds its own cluster, "
                          "and launching instances from workers is not supported; use "
                          "--jobs N to run N timelines at once on one fleet")
    settings = aws.load({**dict(project.aws), **dict(getattr(args, "aws", None) or ())})
    nodes = sum(len(s.node_names()) for s in project.services)
    jobs = getattr(args, "jobs", None) or 1
    hours = getattr(args, "duration", 600.0) / 3600 + 0.25  # and booting, shrinking's tail
    fleet = args.resources.enter_context(Fleet(
        settings, nodes * jobs, hours=hours,
        say=lambda line: print(f"composer: aws: {line}", file=sys.stderr, flush=True)))
    return dataclasses.replace(project, backend_options=(("agents", fleet.agents_file),))
