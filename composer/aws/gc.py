"""Terminating what dead runs left on AWS: ``collect`` (``composer gc --cluster aws``).

Imports ``composer.aws.{instances,session,settings}``. A run is dead when its expiry
has passed (or its expiry tag is unreadable), or when it was launched from this machine
(``composer:host``) by a process (``composer:pid``) that no longer exists here. A run
launched elsewhere and not yet expired is left alone: only its own machine can tell
whether it is alive. A pid reused by another process keeps its run alive until the
expiry, at most ``max_hours`` (the instances power themselves off then anyway).
"""

from __future__ import annotations

import datetime
import os
import socket
from collections import defaultdict

from composer.aws.instances import Tagged, composer_instances, terminate_ids
from composer.aws.session import Aws, aws_errors, connect
from composer.aws.settings import AwsSettings

__all__ = ["collect", "why_dead"]


def collect(settings: AwsSettings, *, aws: Aws | None = None,
            now: datetime.datetime | None = None) -> list[str]:
    """Terminate the instances of dead runs in the settings' region; return one line
    per instance saying what was removed and why."""
    now = now or datetime.datetime.now(datetime.timezone.utc)
    with aws_errors():
        aws = aws or connect(settings)
        runs: dict[str, list[Tagged]] = defaultdict(list)
        for tagged in composer_instances(aws):
            runs[tagged.run].append(tagged)
        removed, ids = [], []
        for run, members in sorted(runs.items()):
            reasons = {why_dead(t, now) for t in members} - {None}
            if not reasons:
                continue
            why = sorted(reasons)[0]
            for tagged in members:
                ids.append(tagged.id)
                removed.append(f"aws instance {tagged.id} ({tagged.state}) of run {run}: {why}")
        terminate_ids(aws, ids, timeout=0)
    return removed


def why_dead(tagged: Tagged, now: datetime.datetime) -> str | None:
    """Return why ``tagged``'s run is dead, or None when it may be alive."""
    if tagged.expires is None:
        return "its composer:expires tag is missing or unreadable"
    if tagged.expires <= now:
        return f"expired at {tagged.expires:%Y-%m-%dT%H:%M:%SZ}"
    if tagged.host == socket.gethostname() and tagged.pid is not None \
            and not composer_alive(tagged.pid):
        return f"its composer (pid {tagged.pid} on {tagged.host}) is gone"
    return None


def composer_alive(pid: int) -> bool:
    """Whether process ``pid`` runs on this machine (another user's counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True
