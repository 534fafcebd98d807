"""The shape of the ``composer`` command line: subcommands, flags, defaults and help.

Kept apart from ``composer.cli`` (what each subcommand does) so the help a user reads
is in one place. Imports config (durations), and clusters and compose for the names
they define.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from composer import __version__, clusters, compose, config
from composer.errors import ConfigError
from composer.checkers import CHECKERS
from composer.faults import FAULT_KINDS

__all__ = ["parser", "aws_setting"]


def _duration(text: str) -> float:
    try:
        return config.parse_duration(text, "duration")
    except ConfigError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _whole(minimum: int, maximum: int | None = None):
    """A whole-number argument type with bounds, so 0 or -1 is an error, not ignored."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if value < minimum or (maximum is not None and value > maximum):
            bounds = f"at least {minimum}" if maximum is None else f"{minimum} to {maximum}"
            raise argparse.ArgumentTypeError(f"{value} must be {bounds}")
        return value
    return parse


def aws_setting(text: str) -> tuple[str, object]:
    """--aws KEY=VALUE: a setting of the aws backend, a number where it is one."""
    key, equals, value = text.partition("=")
    if not equals or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r}: give KEY=VALUE, e.g. region=eu-west-1")
    for kind in (int, float):
        try:
            return key.strip(), kind(value)
        except ValueError:
            pass
    return key.strip(), value


def _jobs(text: str) -> int:
    """--jobs: a whole number from 1, or "auto" (one per CPU this process may use)."""
    if text == "auto":
        return max(1, len(os.sched_getaffinity(0)))
    return _whole(1, 1024)(text)


def _fault_kinds(text: str) -> tuple[str, ...]:
    """Comma-separated fault kinds, or "none"; an empty list is an error (ambiguous)."""
    if text.strip() == "none":
        return ()
    kinds = tuple(k.strip() for k in text.split(","))
    if not all(kinds):
        raise argparse.ArgumentTypeError(
            f"{text!r}: give comma-separated fault kinds ({', '.join(FAULT_KINDS)}) "
            "or 'none' for no faults")
    for kind in kinds:
        if kind not in FAULT_KINDS:
            raise argparse.ArgumentTypeError(
                f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
    return kinds


def parser() -> argparse.ArgumentParser:
    """Return the parser of ``composer``'s arguments."""
    parser = argparse.ArgumentParser(
        prog="composer",
        description="Property-based autonomous testing of distributed systems: discover driver "
        "commands, bring up a cluster, explore timelines of commands and faults (guided by "
        "what the system did), shrink failures and replay them.",
    )
    parser.add_argument("--version", action="version", version=f"composer {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def add_parser(name: str, **kwargs) -> argparse.ArgumentParser:
        p = sub.add_parser(name, **kwargs)
        # also after the subcommand; SUPPRESS keeps a --debug given before it
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                       help="show tracebacks on errors")
        return p

    def project_command(name: str, help: str) -> argparse.ArgumentParser:
        p = add_parser(name, help=help, description=help)
        p.add_argument("project", nargs="?", default=".", type=Path,
                       help="directory holding composer.toml, or a docker-compose file "
                       "(default: %(default)s)")
        p.add_argument("--compose", type=Path, metavar="FILE",
                       help="run a docker-compose project (Antithesis layout: images hold "
                       f"their commands under {compose.TEMPLATES_DIR}/<template>/) on its "
                       "containers")
        return p

    def cluster_option(p: argparse.ArgumentParser, default: str | None = "local") -> None:
        p.add_argument("--cluster", default=None, choices=clusters.BACKENDS,
                       help=f"cluster backend (default: {default or 'the replay' + chr(39) + 's'}"
                       "; docker for a compose file)")
        p.add_argument("--agents", type=Path, metavar="FILE",
                       help="for --cluster agents: the agents file listing running "
                       "composer-agent machines and the certificates to reach them")
        p.add_argument("--aws", type=aws_setting, action="append", metavar="KEY=VALUE",
                       help="for --cluster aws: a setting, e.g. region=eu-west-1 or "
                       "instance_type=t3.medium (over [aws] of composer.toml and "
                       "COMPOSER_AWS_*); repeat for more")

    def explore_options(p: argparse.ArgumentParser) -> None:
        p.add_argument("--timeline", type=_duration, metavar="DURATION",
                       help="longest driver phase (overrides [explore] timeline)")
        p.add_argument("--max-parallel", type=_whole(1, 256), metavar="N",
                       help="most parallel drivers at once (overrides [explore] max_parallel)")
        p.add_argument("--command-timeout", type=_duration, metavar="DURATION",
                       help="timeout of each command (overrides [explore] command_timeout)")
        p.add_argument("--setup-timeout", type=_duration, metavar="DURATION",
                       help="how long services may take to be ready and call setup_complete "
                       "(overrides [setup] timeout; default 120s)")
        p.add_argument("--faults", type=_fault_kinds, metavar="KINDS",
                       help="comma-separated fault kinds to draw, or 'none' "
                       "(overrides [explore] faults)")

    project_command("validate", "check composer.toml and the templates; list what was found")

    run = project_command("run", "run one random timeline and print its events and properties")
    cluster_option(run)
    run.add_argument("--seed", type=int, help="seed of the timeline (default: random, printed)")
    run.add_argument("--template", help="template to use (default: drawn from the seed)")
    explore_options(run)

    exp = project_command("explore", "generate timelines until the budget is spent; shrink, "
                          "re-run and save every failure as a replay")
    cluster_option(exp)
    exp.add_argument("--duration", type=_duration, default=600.0, metavar="DURATION",
                     help="the whole wall-clock budget, shrinking and re-runs included, e.g. "
                     "90s, 2m, 1h (default: 10m)")
    exp.add_argument("--seed", type=int,
                     help="fix every random choice of the search (a guided search then "
                     "repeats as far as the system behaves the same); saved failures are "
                     "not re-run first")
    exp.add_argument("--generator", choices=("guided", "random"), default="guided",
                     help="where timelines come from: guided (fresh draws and mutations of "
                     "timelines that showed new behaviour, steered by SDK guidance), or "
                     "uniform random draws, the baseline it is measured against "
                     "(default: %(default)s)")
    exp.add_argument("--reruns", type=_whole(0), default=5, metavar="N",
                     help="re-run each shrunk failure N times for its reproduction rate "
                     "(default: %(default)s)")
    exp.add_argument("--shrink-budget", type=_duration, default=120.0, metavar="DURATION",
                     help="at most this long shrinking each failure, within --duration "
                     "(default: 2m)")
    exp.add_argument("--jobs", type=_jobs, metavar="N",
                     help="run N timelines at once, each on a cluster of its own, fed by one "
                     "search; 'auto' for one per CPU (default: 1, or one per CPU of the Ray "
                     "cluster with --ray). --seed still draws the same timelines")
    exp.add_argument("--ray", metavar="ADDRESS",
                     help="run each timeline as a task on a Ray cluster (host:port, or auto "
                     "for the one 'ray start' made here): every worker builds the timeline's "
                     "--cluster on its own machine; needs pip install 'composer-dst[ray]'")
    exp.add_argument("--stop-on-failure", action="store_true",
                     help="stop searching once a failure has been found and shrunk")
    exp.add_argument("--quiet", action="store_true", help="no live progress")
    exp.add_argument("--json", action="store_true",
                     help="print summary.json on stdout instead of the tables; progress goes "
                     "to stderr as key=value lines")
    explore_options(exp)

    rep = add_parser("replay", help="re-run a saved failing timeline",
                         description="re-run a saved failing timeline and report how often "
                         "its property fails again")
    rep.add_argument("replay", type=Path, help="a file from .composer/replays/")
    rep.add_argument("--runs", type=_whole(1), default=1, metavar="N",
                     help="how many times to run it (default: %(default)s)")
    rep.add_argument("--project", type=Path,
                     help="project directory, if it moved since the replay was saved")
    cluster_option(rep, default=None)

    upp = project_command("up", "bring a project's services up and leave them running, "
                          "as a fixture directory with control scripts (cthulhu's)")
    cluster_option(upp)
    upp.add_argument("--fixture", type=Path, metavar="DIR",
                     help="the fixture directory to make (must not exist or be empty; "
                     "default: PROJECT/.composer/fixture)")
    upp.add_argument("--setup-timeout", type=_duration, metavar="DURATION",
                     help="how long services may take to be ready (overrides [setup] "
                     "timeout; default 120s)")
    for name, text in (("down", "heal, stop and remove a fixture; its run is kept and "
                        "reported"), ("status", "show a fixture's nodes, their states and "
                                      "the faults in force")):
        one = add_parser(name, help=text, description=text)
        one.add_argument("fixture", type=Path, metavar="DIR", help="the fixture directory")

    gc = add_parser("gc", help="remove what runs killed with SIGKILL left behind",
                   description="remove the network namespaces, hosts files, nftables tables, "
                   "cgroups, processes, containers, docker networks and volumes of composer "
                   "runs that are no longer alive, the directories of fixtures whose "
                   "conductor died, and on a Ray worker the project copies and "
                   "task directories of dead runs (runs still going are left alone); needs "
                   "root for what root created. With --cluster aws: terminate instead the "
                   "EC2 instances of runs that expired or whose composer died here")
    gc.add_argument("--cluster", choices=("aws",),
                    help="aws: collect EC2 instances of dead runs instead (needs boto3)")
    gc.add_argument("--region", help="with --cluster aws: the AWS region (default: AWS_REGION, "
                    "AWS_DEFAULT_REGION or the AWS profile's)")

    aws = add_parser("aws", help="make, show or remove the AWS resources of --cluster aws",
                     description="the account resources the aws backend launches into, all "
                     "tagged composer:bootstrap=NAME: a VPC, a public subnet, an internet "
                     "gateway and route table, a security group, an IAM role and instance "
                     "profile without permissions, and a bucket for the agent wheel. "
                     "Credentials are boto3's (AWS_PROFILE, AWS_ACCESS_KEY_ID, ~/.aws, SSO); "
                     "other settings come from COMPOSER_AWS_* variables")
    aws_actions = aws.add_subparsers(dest="action", metavar="ACTION", required=True)
    for action, text in (("bootstrap", "make what is missing (running it again makes nothing)"),
                         ("status", "show what exists and the instances of composer runs"),
                         ("teardown", "remove what bootstrap made; refused while instances "
                          "still run")):
        one = aws_actions.add_parser(action, help=text, description=text)
        one.add_argument("--region", help="the AWS region (default: AWS_REGION, "
                         "AWS_DEFAULT_REGION or the AWS profile's)")
        one.add_argument("--name", help="the bootstrap's name, to keep several apart "
                         "(default: composer, or COMPOSER_AWS_NAME)")

    chk = add_parser("check", help="judge a history file with one checker",
                     description="run a checker on a history: composer's JSONL (an SDK output "
                     "file or a timeline's history.jsonl), Jepsen EDN maps (history.edn) or "
                     "Jepsen log lines; exit 0 valid, 1 invalid, 4 unknown (out of time)")
    chk.add_argument("history", type=Path, metavar="HISTORY", help="the history file")
    chk.add_argument("--checker", required=True, choices=sorted(CHECKERS),
                     help="the checker")
    chk.add_argument("--model", choices=sorted({m for ms in CHECKERS.values() for m in ms}),
                     help="what linearizable checks against")
    chk.add_argument("--time-limit", type=_duration, default=60.0, metavar="DURATION",
                     help="give up with an unknown verdict after this long (default 60s)")
    chk.add_argument("--json", action="store_true", help="print the verdict as JSON")

    wkl = add_parser("workload", help="list the ready-made workloads, or add one to a template",
                     description="ready-made workloads (register, set, counter, bank, queue) "
                     "drive the system through your client adapter and record a history for "
                     "their checker")
    actions = wkl.add_subparsers(dest="action", metavar="ACTION", required=True)
    actions.add_parser("list", help="the workloads and their checkers")
    add = actions.add_parser("add", help="add a workload's driver and check to a template")
    add.add_argument("name", help="the workload (composer workload list)")
    add.add_argument("project", nargs="?", type=Path, default=Path("."),
                     help="project directory (default: here)")
    add.add_argument("--adapter", required=True, metavar="COMMAND",
                     help="your client adapter, run from the project directory")
    add.add_argument("--template", default="main", help="the template (default main)")
    add.add_argument("--force", action="store_true", help="replace an existing driver")

    rpt = add_parser("report", help="write a run's report.html and junit.xml again",
                         description="regenerate report.html (one self-contained file) and "
                         "junit.xml from a run directory's summary.json and files")
    rpt.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                     help="a run directory, e.g. .composer/runs/<id>")
    rpt.add_argument("--open", action="store_true", help="open the report in a browser")
    return parser
