"""The "Search" section of ``report.html``, from summary.json's ``search`` (version 3).

It owns that section: a line chart of distinct behaviours and kept timelines over time
(inline SVG: no script, no external resource), a one-line summary, the table of sources
(fresh draws, mutation operators) by what they found, and the collapsible list of kept
timelines; and the "found by" lineage text of a finding. It draws only what the summary
says: it imports the standard library and the report's template environment
(``html_templates``) alone, and must not import ``html_report`` (which composes it) nor
the search, the corpus or anything that runs timelines. Here is what is shown (scales,
positions, truncation); ``report_templates/_search*.j2`` hold the markup, where every
string from the summary is autoescaped, numbers included. The page stays bounded: the
series is downsampled in the summary, and at most 500 kept timelines are listed.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

from composer.html_templates import environment

__all__ = ["section", "chart", "lineage", "section_data", "chart_data", "lineage_steps"]

#: chart size and margins (left and right hold the two value axes), SVG user units
_W, _H, _L, _R, _T, _B = 960, 260, 60, 60, 14, 42
_BEHAVIOURS, _KEPT, _GRID = "#1565c0", "#ef6c00", "#e0e0e0"
#: most kept timelines listed, and most new features shown for each
_CORPUS_ROWS, _FEATURES = 500, 8
#: most steps of a lineage shown in full (the rest are counted)
_LINEAGE = 12


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _count(value: Any) -> int:
    number = _num(value)
    return int(number) if number is not None and number >= 0 else 0


def _clock(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.1f} s"
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s:02d} s" if m < 60 else f"{m // 60} h {m % 60:02d} min"


def _points(value: Any) -> list[tuple[float, float, float, float]]:
    """The well-formed [elapsed, timelines, behaviours, kept] points, in order."""
    out = []
    for point in value if isinstance(value, list) else []:
        if isinstance(point, list) and len(point) >= 4:
            numbers = [_num(v) for v in point[:4]]
            if all(n is not None and n >= 0 for n in numbers):
                out.append(tuple(numbers))  # type: ignore[arg-type]
    return out


def _ticks(top: float, integer: bool) -> list[float]:
    """0 and round steps (1, 2, 2.5 or 5 times a power of ten) up to at least ``top``."""
    top = top if top > 0 else 1.0
    raw = top / 5
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    if integer:
        step = max(1.0, float(math.ceil(step)))
    return [i * step for i in range(math.ceil(top / step - 1e-9) + 1)]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e6 else f"{value:.3g}"


def chart_data(points: list[tuple[float, float, float, float]]) -> dict[str, Any] | None:
    """Scales and positions of the behaviours chart (None: nothing to draw)."""
    if not points:
        return None
    t_max = max(p[0] for p in points)
    unit, div = ("h", 3600.0) if t_max >= 3 * 3600 else ("min", 60.0) if t_max >= 180 \
        else ("s", 1.0)
    x_ticks = _ticks(t_max / div, False)
    b_ticks = _ticks(max(p[2] for p in points), True)
    k_ticks = _ticks(max(p[3] for p in points), True)
    width, height = _W - _L - _R, _H - _T - _B

    def x(t: float) -> float:
        return _L + t / div / x_ticks[-1] * width

    def y(v: float, ticks: list[float]) -> float:
        return _T + height - v / ticks[-1] * height

    # a polyline's points as SVG writes them ("x,y x,y ..."): one string, not a loop of
    # hundreds of format calls in the template
    lines = [{"name": name, "colour": colour, "dashed": index == 3,
              "points": " ".join(f"{x(p[0]):.1f},{y(p[index], ticks):.1f}" for p in points),
              "last": (x(points[-1][0]), y(points[-1][index], ticks))}
             for name, index, ticks, colour in (("behaviours", 2, b_ticks, _BEHAVIOURS),
                                                ("kept", 3, k_ticks, _KEPT))]
    return {"title": f"Distinct behaviours and kept timelines over {_clock(t_max)}",
            "width": _W, "height": _H, "left": _L, "right": _W - _R, "top": _T,
            "bottom": _T + height, "middle": (_L + width / 2, _T + height / 2),
            "unit": unit, "behaviours": _BEHAVIOURS, "kept": _KEPT, "grid": _GRID,
            "left_ticks": [(y(v, b_ticks), _label(v)) for v in b_ticks],
            "right_ticks": [(y(v, k_ticks), _label(v)) for v in k_ticks],
            "x_ticks": [(x(v * div), _label(v)) for v in x_ticks], "lines": lines}


def chart(points: list[tuple[float, float, float, float]]) -> str:
    """An SVG line chart of behaviours (left axis) and kept timelines (right axis)."""
    return environment().get_template("_search_chart.html.j2").render(
        chart=chart_data(points))


def section_data(search: Any) -> dict[str, Any] | None:
    """What the "Search" section shows (None: the summary predates it)."""
    if not isinstance(search, dict):
        return None
    points = _points(search.get("over_time"))
    return {"generator": str(search.get("generator", "?")),
            "behaviours": _count(search.get("behaviours")), "kept": _count(search.get("kept")),
            "run": _count(points[-1][1]) if points else None, "chart": chart_data(points),
            "sources": _sources(search.get("sources")), **_corpus(search.get("corpus"))}


def section(search: Any) -> str:
    """The whole "Search" section for summary.json's ``search`` (absent before version 3)."""
    return environment().get_template("_search.html.j2").render(search=section_data(search))


def _sources(value: Any) -> list[dict[str, Any]]:
    """Sources by finds, then tries: tries, finds, find rate (%) and bar width (%)."""
    sources = [s for s in value if isinstance(s, dict)] if isinstance(value, list) else []
    sources.sort(key=lambda s: (-_count(s.get("finds")), -_count(s.get("tries")),
                                str(s.get("source"))))
    top = max([_count(s.get("finds")) for s in sources] + [0]) or 1
    rows = []
    for s in sources:
        tries, finds = _count(s.get("tries")), _count(s.get("finds"))
        rows.append({"source": s.get("source", "?"), "tries": tries, "finds": finds,
                     "rate": 100 * finds / tries if tries else None,
                     "bar": 100 * finds / top if finds else None})
    return rows


@dataclasses.dataclass(frozen=True, slots=True)
class Kept:
    """A kept timeline's row: ``shown`` its first _FEATURES new behaviours (of ``total``),
    ``more`` how many of them are not shown."""

    timeline: Any
    kept_after: str
    origin: Any
    parent: Any
    why: Any
    total: int
    shown: list[str]
    more: int


def _corpus(value: Any) -> dict[str, Any]:
    """The kept timelines listed (at most _CORPUS_ROWS), their count and how many are not."""
    entries = [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []
    rows = []
    for c in entries[:_CORPUS_ROWS]:
        parent = c.get("parent")
        elapsed = _num(c.get("elapsed_seconds"))
        new = [str(f) for f in c.get("new") or []] if isinstance(c.get("new"), list) else []
        total = max(_count(c.get("new_count")), len(new))
        rows.append(Kept(c.get("timeline", "?"), _clock(elapsed) if elapsed is not None else "?",
                         c.get("origin", "?"), "—" if parent is None else parent,
                         c.get("why", ""), total, new[:_FEATURES],
                         total - min(len(new), _FEATURES)))
    return {"corpus": rows, "corpus_total": len(entries),
            "corpus_more": max(len(entries) - _CORPUS_ROWS, 0)}


def lineage_steps(chain: Any) -> list[str]:
    """``["42 (fault after hit+move)", "17 (lengthen)", "3 (fresh)"]`` (plain text), long
    chains cut to _LINEAGE steps with the cut ones counted; empty without a lineage."""
    steps = [f"{s.get('timeline', '?')} ({s.get('origin', '?')})"
             for s in (chain if isinstance(chain, list) else []) if isinstance(s, dict)]
    if len(steps) > _LINEAGE:
        steps[_LINEAGE - 1:-1] = [f"… {len(steps) - _LINEAGE} more"]
    return steps


def lineage(chain: Any) -> str:
    """``timeline 42 (fault after hit+move) ← 17 (lengthen) ← 3 (fresh)``, escaped;
    empty when there is no lineage."""
    return environment().get_template("_lineage.html.j2").render(steps=lineage_steps(chain))
