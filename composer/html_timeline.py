"""One failing timeline for ``report.html``: an inline SVG chart, the failing assertion, logs.

A chart has one lane per node; commands are bars from start to exit coloured by their
status, faults are bands over their targets' lanes. It is drawn from the timeline's
``run.json`` (real times, seconds since the timeline began) when its directory is still
there, else from the planned timeline (driver-phase times). This module places things
(``layout``); ``report_templates/_timeline.svg.j2`` holds the markup and escapes
everything user-written. Imports only ``html_templates`` of composer: ``html_report`` composes this with ``failure_location`` (the failing record and
its logs); the markup comes through ``html_templates``.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from composer.html_templates import environment

__all__ = ["Chart", "Drawing", "chart_from_run", "chart_from_plan", "svg", "layout",
           "STATUS_COLOURS", "FAULT_COLOURS"]

#: invocation status -> (fill colour, legend text)
STATUS_COLOURS = {
    "ok": ("#2e7d32", "exited 0"),
    "nonzero": ("#e65100", "exited non-zero"),
    "timeout": ("#6a1b9a", "timed out"),
    "killed": ("#78909c", "killed by composer"),
    "failed-to-start": ("#b71c1c", "failed to start"),
    "running": ("#1565c0", "still running"),
    "planned": ("#90a4ae", "planned start (duration unknown)"),
}
FAULT_COLOURS = {"kill": "#d32f2f", "stop": "#f57c00", "pause": "#c0a000", "partition": "#7b1fa2",
                 "loss": "#0277bd", "latency": "#00897b", "bandwidth": "#5d4037",
                 "reorder": "#00695c", "duplicate": "#4527a0", "corrupt": "#ad1457",
                 "clock": "#c2185b"}
_OTHER_FAULT = "#616161"
_MAX_LANES = 64


@dataclasses.dataclass
class Bar:
    lane: str
    start: float
    end: float
    label: str
    status: str  # a STATUS_COLOURS key
    title: str
    number: int | None = None
    marked: bool = False


@dataclasses.dataclass
class Band:
    lane: str
    start: float
    end: float
    kind: str
    title: str


@dataclasses.dataclass
class Chart:
    """What to draw; times in seconds from the chart's zero."""

    lanes: list[str]
    bars: list[Bar]
    bands: list[Band]
    #: vertical lines: (time, label)
    marks: list[tuple[float, str]]
    end: float
    #: "run" (real times from run.json) or "plan" (the planned timeline)
    source: str
    setup_end: float | None = None
    #: lane marked as holding the failure when no single command does (a SUT process)
    marked_lane: str | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class LaneBox:
    """A lane: its name (cut to 18 characters on the label) and vertical extent."""

    name: str
    short: str
    top: float
    height: float
    marked: bool


@dataclasses.dataclass(frozen=True, slots=True)
class BandBox:
    """A fault band: where, its colour and tooltip, and its label ("": too narrow)."""

    x: float
    top: float
    width: float
    height: float
    colour: str
    title: str
    label: str


@dataclasses.dataclass(frozen=True, slots=True)
class BarBox:
    """A command bar: where (``end``: x of its end), colour, tooltip, label cut to fit
    ("": none), and whether it is planned (dashed) or the failing command (marked)."""

    x: float
    y: float
    width: float
    height: float
    end: float
    colour: str
    title: str
    label: str
    planned: bool
    marked: bool


@dataclasses.dataclass
class Drawing:
    """A chart placed on the SVG canvas (user units), as ``_timeline.svg.j2`` draws it."""

    title: str
    width: int
    height: float
    #: top of the lanes (below the axis labels) and bottom of the last lane
    top: float
    bottom: float
    #: width of the lane labels on the left, and right end of the plot
    label_width: int
    right: int
    #: the grey setup band: x, width, end (seconds); None when setup is not drawn
    setup: dict[str, float] | None = None
    #: axis ticks: (x, seconds)
    ticks: list[tuple[float, float]] = dataclasses.field(default_factory=list)
    lanes: list[LaneBox] = dataclasses.field(default_factory=list)
    bands: list[BandBox] = dataclasses.field(default_factory=list)
    bars: list[BarBox] = dataclasses.field(default_factory=list)
    #: vertical lines: (x, seconds, label)
    marks: list[tuple[float, float, str]] = dataclasses.field(default_factory=list)
    #: lanes past _MAX_LANES, not drawn
    more_lanes: int = 0


def _status(inv: dict) -> str:
    status = inv.get("status")
    if status == "exited":
        return "ok" if inv.get("exit_code") == 0 else "nonzero"
    return status if status in STATUS_COLOURS else "running"


def _t(value: Any, default: float = 0.0) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return default
    return number if math.isfinite(number) and number >= 0 else default


def chart_from_run(run: dict, length: float | None = None) -> Chart:
    """Build a chart from a ``run.json`` document (real times)."""
    log = [e for e in run.get("log") or [] if isinstance(e, dict)]
    invocations = [i for i in run.get("invocations") or [] if isinstance(i, dict)]
    end = max([_t(e.get("t")) for e in log] + [_t(i.get("started")) for i in invocations]
              + [0.0])
    lanes: dict[str, None] = {}
    setup_end = None
    marks: list[tuple[float, str]] = []
    for entry in log:
        what = entry.get("what")
        if what == "setup complete":
            setup_end = _t(entry.get("t"))
            lanes.update((str(n), None) for n in entry.get("nodes") or {})
        elif what == "driver phase over":
            over = _t(entry.get("t"))
            marks.append((over, "driver phase over"))
            if length:
                marks.append((max(0.0, over - length), "driver phase"))
        elif what in ("setup failed", "restart", "restart failed"):
            marks.append((_t(entry.get("t")), str(what)))
        elif what == "service exited":  # on its own: no fault held it
            marks.append((_t(entry.get("t")), f"{entry.get('node')} exited "
                          f"{entry.get('exit_code')}"))
    exits = {e.get("number"): e for e in log if e.get("what") == "exit"}
    bars = []
    for inv in invocations:
        node = str(inv.get("node"))
        lanes.setdefault(node, None)
        start = _t(inv.get("started"))
        exited = exits.get(inv.get("number"))
        stop = _t(exited.get("t"), end) if exited else end
        status = _status(inv)
        bars.append(Bar(node, start, max(stop, start), str(inv.get("command")), status,
                        f"#{inv.get('number')} {inv.get('command')} on {node}: "
                        f"{inv.get('status')} (exit code {inv.get('exit_code')}), "
                        f"{start:.2f}s to {stop:.2f}s", inv.get("number")))
    bands = _fault_bands(log, end)
    for band in bands:
        lanes.setdefault(band.lane, None)
    return Chart(list(lanes), bars, bands, sorted(marks), end, "run", setup_end)


def _fault_bands(log: list[dict], end: float) -> list[Band]:
    """Pair each fault's targets with the heal that ended it (process heals name no kind)."""
    open_: list[tuple[dict, str]] = []  # (fault entry, target) not yet healed
    bands: list[Band] = []

    def band(entry: dict, target: str, stop: float) -> Band:
        kind = str(entry.get("kind"))
        extra = " ".join(f"{k} {entry[k]}" for k in ("shape", "amount") if k in entry)
        start = _t(entry.get("t"))
        return Band(target, start, max(stop, start), kind,
                    f"{kind} {extra} on {target}: {start:.2f}s to {stop:.2f}s".replace("  ", " "))

    for entry in log:
        what = entry.get("what")
        if what == "fault":
            open_ += [(entry, str(t)) for t in entry.get("targets") or []]
        elif what == "heal":
            for target in entry.get("targets") or []:
                for i, (fault, name) in enumerate(open_):
                    if name == str(target) and entry.get("kind") in (None, fault.get("kind")):
                        bands.append(band(fault, name, _t(entry.get("t"), end)))
                        del open_[i]
                        break
    bands += [band(fault, name, end) for fault, name in open_]  # healed at teardown
    return bands


def chart_from_plan(timeline: dict) -> Chart:
    """Build a chart from a planned timeline (``Timeline.to_json``): driver-phase times."""
    length = _t(timeline.get("length"))
    events = [e for e in timeline.get("events") or [] if isinstance(e, dict)]
    lanes: dict[str, None] = {}
    bars, bands = [], []
    for event in events:
        at = _t(event.get("at"))
        if event.get("type") == "start":
            node = str(event.get("node"))
            lanes.setdefault(node, None)
            bars.append(Bar(node, at, max(at, length), str(event.get("command")), "planned",
                            f"{event.get('command')} on {node} starts at {at:.2f}s "
                            f"(seed {event.get('seed')}); how long it ran is unknown"))
        elif event.get("type") == "fault" and not event.get("after"):
            # (a fault waiting for a state has no planned time: the text lists it)
            stop = at + _t(event.get("duration"))
            for target in event.get("targets") or []:
                lanes.setdefault(str(target), None)
                bands.append(Band(str(target), at, stop, str(event.get("kind")),
                                  f"{event.get('kind')} on {target}: {at:.2f}s to {stop:.2f}s"))
    end = max([length] + [b.end for b in bands])
    marks = [(length, "driver phase over")]
    return Chart(list(lanes) or ["(no events)"], bars, bands, marks, end, "plan")


# -- drawing -----------------------------------------------------------------------------

_W, _LABEL, _PAD, _ROW, _AXIS = 1000, 130, 16, 18, 34


def _step(end: float) -> float:
    for step in (0.1, 0.2, 0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 1800, 3600):
        if end / step <= 10:
            return step
    return end / 10


def _rows(bars: list[Bar]) -> dict[int, int]:
    """Greedy packing of one lane's bars into rows: id(bar) -> row."""
    ends: list[float] = []
    placed = {}
    for bar in sorted(bars, key=lambda b: (b.start, b.end)):
        row = next((r for r, e in enumerate(ends) if e <= bar.start), len(ends))
        if row == len(ends):
            ends.append(bar.end)
        else:
            ends[row] = bar.end
        placed[id(bar)] = row
    return placed


def svg(chart: Chart, title: str) -> str:
    """Return the chart as one inline ``<svg>`` element (no scripts, no external refs)."""
    return environment().get_template("_timeline.svg.j2").render(svg=layout(chart, title))


def layout(chart: Chart, title: str) -> Drawing:
    """Place everything ``svg`` draws: the chart's geometry, apart from its markup (which
    ``report_templates/_timeline.svg.j2`` holds), so ``html_report`` can include it."""
    lanes = chart.lanes[:_MAX_LANES]
    step = _step(chart.end * 1.03 if chart.end > 0 else 1.0)
    span = math.ceil(chart.end * 1.03 / step) * step or step  # room for the end marker
    plot = _W - _LABEL - _PAD

    def x(t: float) -> float:
        return round(_LABEL + min(max(t, 0.0), span) / span * plot, 1)

    by_lane: dict[str, list[Bar]] = {lane: [] for lane in lanes}
    for bar in chart.bars:
        if bar.lane in by_lane:
            by_lane[bar.lane].append(bar)
    rows = {lane: _rows(bars) for lane, bars in by_lane.items()}
    tops, y = {}, _AXIS
    for lane in lanes:
        count = max([r + 1 for r in rows[lane].values()] + [1])
        tops[lane] = (y, count * _ROW + 8)
        y += count * _ROW + 8
    drawing = Drawing(title, _W, y + 8, _AXIS, y, _LABEL, _W - _PAD)
    if chart.setup_end:
        drawing.setup = {"x": x(0), "width": x(chart.setup_end) - x(0), "end": chart.setup_end}
    drawing.ticks = [(x(i * step), i * step) for i in range(int(span / step + 1e-9) + 1)]
    drawing.lanes = [LaneBox(lane, lane[:18], *tops[lane], lane == chart.marked_lane)
                     for lane in lanes]
    for band in chart.bands:
        if band.lane not in tops:
            continue
        top, h = tops[band.lane]
        width = max(x(band.end) - x(band.start), 2)
        drawing.bands.append(BandBox(x(band.start), top, width, h,
                                     FAULT_COLOURS.get(band.kind, _OTHER_FAULT), band.title,
                                     band.kind[:int(width // 6)] if width > 28 else ""))
    for lane, bars in by_lane.items():
        top = tops[lane][0]
        for bar in bars:
            width = max(x(bar.end) - x(bar.start), 3)
            chars = int(width // 6.2) - 1
            label = bar.label if len(bar.label) <= chars else bar.label[:chars - 1] + "…"
            drawing.bars.append(BarBox(
                x(bar.start), top + 4 + rows[lane][id(bar)] * _ROW, width, _ROW - 4, x(bar.end),
                STATUS_COLOURS[bar.status][0], bar.title, label if chars >= 3 else "",
                bar.status == "planned", bar.marked))
    drawing.marks = [(x(t), t, label) for t, label in chart.marks]
    drawing.more_lanes = max(len(chart.lanes) - _MAX_LANES, 0)
    return drawing

