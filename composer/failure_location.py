"""Where a failing property shows in a timeline's directory: its first failing record,
the process that wrote it, and that process's log files.

The report shows this for each finding; it reads only files (SDK records, composer's own
``composer.jsonl``, ``run.json``), so a run directory copied elsewhere still works.
Imports builtin_properties (which files hold records) and properties (which record
counts against its property): the verdict has one source.
"""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
from collections.abc import Iterator
from pathlib import Path

from composer.builtin_properties import record_files
from composer.properties import counts_against

__all__ = ["Failure", "locate_failure", "tail"]

_TAIL_BYTES = 64 * 1024


@dataclasses.dataclass
class Failure:
    """The first record that failed the property in a timeline directory."""

    file: str  # relative to the timeline directory
    record: dict  # the inner antithesis_assert dict
    invocation: int | None = None
    node: str | None = None
    #: the log files of the process that made the record
    logs: list[Path] = dataclasses.field(default_factory=list)
    what: str = ""  # a few words: which process


def _candidates(data: mmap.mmap, prop: str) -> Iterator[bytes]:
    """Lines that may hold a record of ``prop``, in file order.

    A message of plain printable ASCII is written as it is by every JSON encoder: only
    lines holding it are parsed. Any other may be escaped (Go's encoder writes < as
    \\u003c, Python's é as \\u00e9): then every line is.
    """
    if not prop.isascii() or any(c in prop for c in "<>&'/\\\"") or not prop.isprintable():
        yield from iter(data.readline, b"")
        return
    needle = prop.encode()
    starts: set[int] = set()
    at = data.find(needle)
    while at != -1:
        starts.add(data.rfind(b"\n", 0, at) + 1)
        at = data.find(needle, at + len(needle))
    for begin in sorted(starts):
        stop = data.find(b"\n", begin)
        yield data[begin:stop if stop != -1 else len(data)]


def _first_failing(path: Path, prop: str) -> dict | None:
    try:
        with open(path, "rb") as fh:
            if os.fstat(fh.fileno()).st_size == 0:
                return None
            with mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as data:
                for raw in _candidates(data, prop):
                    try:
                        value = json.loads(raw)
                    except ValueError:
                        continue
                    inner = value.get("antithesis_assert") if isinstance(value, dict) else None
                    if (isinstance(inner, dict) and counts_against(inner)
                            and prop in (inner.get("id"), inner.get("message"))):
                        return inner
    except (OSError, ValueError):
        return None
    return None


def _files(inv: dict) -> tuple[str, str, str]:
    """The names of an invocation's SDK file and logs, as its run record gives them (a
    record written before it named them: as composer named them then)."""
    if inv.get("sdk"):
        return (str(inv["sdk"]), Path(str(inv.get("stdout"))).name,
                Path(str(inv.get("stderr"))).name)
    label = f"{int(inv.get('number') or 0):04d}-{inv.get('command')}"
    return f"{label}.jsonl", f"{label}.stdout", f"{label}.stderr"


def locate_failure(directory: Path, prop: str, run: dict) -> Failure | None:
    """Find the first record failing ``prop`` in ``directory`` and the process that wrote it.

    The run record names each invocation's SDK file and logs; service processes write
    ``sdk/<node>-service-<k>.jsonl``; built-in properties are in ``composer.jsonl``,
    whose zero-exit records name the invocation.
    """
    invocations = {i.get("number"): i for i in run.get("invocations") or [] if isinstance(i, dict)}
    by_sdk = {_files(i)[0]: i for i in invocations.values()}
    nodes = sorted({str(i.get("node")) for i in invocations.values()}
                   | {str(n) for e in run.get("log") or [] if isinstance(e, dict)
                      for n in (e.get("nodes") or {})}, key=len, reverse=True)
    for path in record_files(directory):
        inner = _first_failing(path, prop)
        if inner is None:
            continue
        failure = Failure(str(path.relative_to(directory)), inner)
        if path.name == "composer.jsonl":  # zero exit: its details name the invocation
            details = inner.get("details") if isinstance(inner.get("details"), dict) else {}
            number = details.get("number")
            if number is None:  # a run record older than the number in these details
                stem = Path(str(details.get("stdout", ""))).stem
                number = int(stem[:4]) if stem[:4].isdigit() and stem[4:5] == "-" else None
            inv = invocations.get(number)
            failure.what = "composer (built-in property)"
        else:
            inv = by_sdk.get(path.name)
        if inv is None and path.name != "composer.jsonl":  # a service process's records
            node = next((n for n in nodes if path.stem.startswith(n + "-")), None)
            if node is not None:
                label = path.stem[len(node) + 1:]
                failure.node, failure.what = node, f"{label} on {node}"
                failure.logs = [directory / "logs" / node / f"{label}.{s}"
                                for s in ("stdout", "stderr")]
        if inv is not None:
            number, node = inv.get("number"), str(inv.get("node"))
            failure.invocation, failure.node = number, node
            failure.what = f"#{number} {inv.get('command')} on {node}"
            # the files the run record names, found in this directory (the run may have moved)
            failure.logs = [directory / "logs" / node / name for name in _files(inv)[1:]]
        return failure
    return None


def tail(path: Path, lines: int = 40) -> list[str] | None:
    """The last ``lines`` lines of a text file (reading at most 64 KiB); None if missing."""
    try:
        with open(path, "rb") as fh:
            fh.seek(0, 2)
            size = fh.tell()
            fh.seek(max(0, size - _TAIL_BYTES))
            data = fh.read()
    except OSError:
        return None
    text = data.decode("utf-8", errors="replace").splitlines()
    if size > _TAIL_BYTES and text:
        text = text[1:]  # the first line read is probably cut
    return text[-lines:]
