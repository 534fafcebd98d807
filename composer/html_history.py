"""The window of a linearizability failure in ``report.html``: the operations around the
one that cannot take effect, as bars per client process on a time axis (inline SVG).

The longest linearizable order found is numbered on its last operations, the blocked
operation is red, the others grey; an ``info`` operation (never completed) runs to the
right edge. Placement only: ``report_templates/_history.svg.j2`` holds the markup and
escapes the operations' text. Imports only the standard library.
"""

from __future__ import annotations

import dataclasses
from typing import Any


__all__ = ["HistoryWindow", "window"]

_WIDTH, _LABEL, _LANE, _TOP = 900, 130, 26, 24
#: most processes drawn; more are counted under the chart
_MAX_LANES = 24


@dataclasses.dataclass(frozen=True)
class OpBox:
    x: float
    y: float
    width: float
    colour: str
    title: str
    label: str
    open_ended: bool


@dataclasses.dataclass
class HistoryWindow:
    """The window placed on the canvas, as ``_history.svg.j2`` draws it."""

    height: float
    lanes: list[tuple[str, float]]
    ops: list[OpBox]
    ticks: list[tuple[float, str]]
    state: str
    blocked: str
    more_lanes: int = 0
    width: int = _WIDTH
    label_width: int = _LABEL


def window(details: dict[str, Any]) -> HistoryWindow | None:
    """Place the ``window`` of a linearizable checker's details; None without one."""
    ops = [op for op in details.get("window") or [] if isinstance(op, dict)
           and isinstance(op.get("call"), (int, float))]
    blocked = details.get("blocked") if isinstance(details.get("blocked"), dict) else None
    if not ops or blocked is None:
        return None
    start = min(op["call"] for op in ops)
    end = max([op["ret"] for op in ops if isinstance(op.get("ret"), (int, float))]
              + [op["call"] for op in ops])
    span = max(end - start, 1)
    scale = (_WIDTH - _LABEL - 20) / (span * 1.1)
    processes = list(dict.fromkeys(str(op.get("process")) for op in ops))
    drawn = processes[:_MAX_LANES]
    lane_y = {p: _TOP + i * _LANE for i, p in enumerate(drawn)}
    order = {op.get("index"): n for n, op in enumerate(details.get("prefix") or [], 1)
             if isinstance(op, dict)}
    shown_from = int(details.get("prefix_length") or len(order)) - len(order)
    boxes = []
    for op in ops:
        process = str(op.get("process"))
        if process not in lane_y:
            continue
        x = _LABEL + (op["call"] - start) * scale
        ret = op.get("ret")
        right = _WIDTH - 10 if not isinstance(ret, (int, float)) else (
            _LABEL + (ret - start) * scale)
        is_blocked = op.get("index") == blocked.get("index")
        number = order.get(op.get("index"))
        colour = "#c62828" if is_blocked else "#2e7d32" if number else "#9e9e9e"
        label = "cannot follow" if is_blocked else f"#{shown_from + number}" if number else ""
        boxes.append(OpBox(x, lane_y[process] + 3, max(right - x, 3), colour,
                           str(op.get("text", "")), label, not isinstance(ret, (int, float))))
    ticks = [(_LABEL + i * span * 1.1 / 4 * scale, _since(i * span * 1.1 / 4, span))
             for i in range(5)]
    return HistoryWindow(_TOP + len(drawn) * _LANE + 10, [(p, lane_y[p]) for p in drawn],
                         boxes, ticks, str(details.get("state", "")),
                         str(blocked.get("text", "")), len(processes) - len(drawn))


def _since(ns: float, span: float) -> str:
    """A tick's time after the window's start, in the unit that suits the span."""
    for unit, size in (("s", 1e9), ("ms", 1e6), ("µs", 1e3)):
        if span >= 4 * size:
            return f"+{ns / size:.3g} {unit}"
    return f"+{ns:.0f} ns"

