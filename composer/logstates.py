"""What services logged, as templates (``[services.NAME] log_states = true``).

Mallory's state abstraction: a log line with its variable parts (addresses, numbers,
hex ids, quoted values) masked is a state the service went through, e.g. "<addr> steps
down in term <n>: <addr> campaigns". The templates a timeline's services logged are
behaviour features for the guided search, so a system without SDK assertions still
tells the search when it did something new. Imports only the standard library.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

__all__ = ["template", "logged_states"]

#: Bytes read per log file: a flooding service costs at most this much per timeline.
MAX_BYTES = 1 << 20
#: Characters kept of a template.
MAX_CHARS = 160

_MASKS = (
    (re.compile(r"\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)?"), "<time>"),
    (re.compile(r"\b\d\d:\d\d:\d\d(?:[.,]\d+)?\b"), "<time>"),
    (re.compile(r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b"), "<addr>"),
    (re.compile(r"\b[\w.-]+:\d{2,5}\b"), "<addr>"),
    (re.compile(r"\"[^\"]*\"|'[^']*'"), "<str>"),
    (re.compile(r"\b(?=[0-9a-f]*\d)[0-9a-f]{6,}\b", re.IGNORECASE), "<hex>"),
    (re.compile(r"(?<![\w-])[-+]?\d+(?:\.\d+)?\b"), "<n>"),  # not node-2's 2
)


def template(line: str) -> str:
    """Return ``line`` with its variable parts masked and its spaces collapsed."""
    for pattern, mask in _MASKS:
        line = pattern.sub(mask, line)
    return " ".join(line.split())[:MAX_CHARS]


def logged_states(directory: Path, nodes: Iterable[str]) -> set[str]:
    """Return the templates of every line the services on ``nodes`` logged (stdout and
    stderr of every start) in the timeline written to ``directory``."""
    states: set[str] = set()
    for node in nodes:
        for path in sorted((directory / "logs" / node).glob("service-*.std*")):
            try:
                with open(path, "rb") as fh:
                    data = fh.read(MAX_BYTES)
            except OSError:
                continue
            for line in data.decode(errors="replace").splitlines():
                shape = template(line)
                if shape:
                    states.add(shape)
    return states
