"""The properties composer asserts itself, as SDK-shaped records.

A run writes them to ``composer.jsonl`` beside the SDK files of its processes, so the
property table, the report and the search read them like any other assertion. Imports
templates only: the runner writes these records, the report names them, and neither
imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from composer_sdk.assertions import ASSERTION_KINDS

from composer.templates import Template

__all__ = ["SETUP", "ZERO_EXIT", "SERVICES_UP", "COMPLETION_PREFIX", "completion_id", "assertion",
           "builtin_catalog", "record_files", "is_builtin"]

SETUP = "Setup completes"
ZERO_EXIT = "Commands finish with zero exit code"
SERVICES_UP = "Services stay up unless a fault stops them"
#: what every "ran to completion" property's id starts with; the command's name follows
COMPLETION_PREFIX = "Every command ran to completion at least once ("


def completion_id(command: str) -> str:
    """Return the id of the built-in "ran to completion" property of ``command``."""
    return f"{COMPLETION_PREFIX}{command})"


def is_builtin(message: str) -> bool:
    """Whether an assertion message names one of composer's own properties."""
    return message in (SETUP, ZERO_EXIT, SERVICES_UP) or message.startswith(COMPLETION_PREFIX)


def assertion(id: str, display: str, condition: bool | None, hit: bool = True,
              details: dict | None = None) -> dict:
    """Return one ``antithesis_assert`` record of a built-in property."""
    kind, must_hit = ASSERTION_KINDS[display]
    record = {"hit": hit, "must_hit": must_hit, "assert_type": kind, "display_type": display,
              "message": id, "condition": condition, "id": id,
              "location": {"class": "", "function": "", "file": "composer", "begin_line": 0,
                           "begin_column": 0}}
    if details is not None:
        record["details"] = details
    return {"antithesis_assert": record}


def builtin_catalog(template: Template, check_exit_code: bool = True,
                    services_up: bool = False, checks: Sequence[str] = ()) -> list[dict]:
    """Return declarations of the built-in properties, so unreached ones are reported;
    ``services_up``: some service must stay up; ``checks``: the names of the template's
    history checks."""
    records = [assertion(SETUP, "Always", False, hit=False)]
    if check_exit_code:
        records.append(assertion(ZERO_EXIT, "Always", False, hit=False))
    if services_up:
        records.append(assertion(SERVICES_UP, "Always", False, hit=False))
    records += [assertion(completion_id(c.name), "Sometimes", False, hit=False)
                for c in template.commands]
    records += [assertion(name, "Always", False, hit=False) for name in checks]
    return [r["antithesis_assert"] for r in records]


def record_files(directory: Path) -> list[Path]:
    """Return every JSONL file of SDK-shaped records a timeline run wrote."""
    return sorted((directory / "sdk").glob("*.jsonl")) + [directory / "composer.jsonl"]
