"""The "Search" section of ``report.html``, from summary.json's ``search`` (version 3).

It owns that section: a line chart of distinct behaviours and kept timelines over time
(inline SVG: no script, no external resource), a one-line summary, the table of sources
(fresh draws, mutation operators) by what they found, and the collapsible list of kept
timelines; and the "found by" lineage text of a finding. It draws only what the summary
says: it imports the standard library alone, and must not import ``html_report`` (which
composes it) nor the search, the corpus or anything that runs timelines. Every string
from the summary is HTML-escaped here, numbers included. The page stays bounded: the
series is downsampled in the summary, and at most 500 kept timelines are listed.
"""

from __future__ import annotations

import html
import math
from typing import Any

__all__ = ["section", "chart", "lineage"]

#: chart size and margins (left and right hold the two value axes), SVG user units
_W, _H, _L, _R, _T, _B = 960, 260, 60, 60, 14, 42
_BEHAVIOURS, _KEPT, _GRID = "#1565c0", "#ef6c00", "#e0e0e0"
#: most kept timelines listed, and most new features shown for each
_CORPUS_ROWS, _FEATURES = 500, 8
#: most steps of a lineage shown in full (the rest are counted)
_LINEAGE = 12


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


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


def chart(points: list[tuple[float, float, float, float]]) -> str:
    """An SVG line chart of behaviours (left axis) and kept timelines (right axis)."""
    if not points:
        return "<p class='muted'>No timeline of the search finished: nothing to draw.</p>"
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

    out = [f'<svg class="search" role="img" viewBox="0 0 {_W} {_H}" width="100%" '
           f'preserveAspectRatio="xMinYMin meet" style="background:#fff;display:block;'
           f'max-width:{_W}px" font-size="11" font-family="system-ui,sans-serif">'
           f"<title>{_e(f'Distinct behaviours and kept timelines over {_clock(t_max)}')}"
           f"</title>"]
    for v in b_ticks:  # grid and left axis
        out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{y(v, b_ticks):.1f}" '
                   f'y2="{y(v, b_ticks):.1f}" stroke="{_GRID}"/><text x="{_L - 6}" '
                   f'y="{y(v, b_ticks) + 4:.1f}" text-anchor="end" fill="{_BEHAVIOURS}">'
                   f"{_label(v)}</text>")
    for v in k_ticks:  # right axis
        out.append(f'<text x="{_W - _R + 6}" y="{y(v, k_ticks) + 4:.1f}" fill="{_KEPT}">'
                   f"{_label(v)}</text>")
    for v in x_ticks:
        out.append(f'<line x1="{x(v * div):.1f}" x2="{x(v * div):.1f}" y1="{_T + height}" '
                   f'y2="{_T + height + 4}" stroke="#616161"/><text x="{x(v * div):.1f}" '
                   f'y="{_T + height + 16}" text-anchor="middle">{_label(v)}</text>')
    out.append(f'<line x1="{_L}" x2="{_W - _R}" y1="{_T + height}" y2="{_T + height}" '
               f'stroke="#616161"/><text x="{_L + width / 2}" y="{_H - 6}" '
               f'text-anchor="middle" fill="#616161">elapsed ({unit})</text>'
               f'<text transform="translate(14 {_T + height / 2}) rotate(-90)" '
               f'text-anchor="middle" fill="{_BEHAVIOURS}">distinct behaviours</text>'
               f'<text transform="translate({_W - 10} {_T + height / 2}) rotate(90)" '
               f'text-anchor="middle" fill="{_KEPT}">timelines kept</text>')
    for index, ticks, colour, dash in ((2, b_ticks, _BEHAVIOURS, ""),
                                       (3, k_ticks, _KEPT, ' stroke-dasharray="6 3"')):
        line = " ".join(f"{x(p[0]):.1f},{y(p[index], ticks):.1f}" for p in points)
        last = points[-1]
        out.append(f'<polyline class="{"behaviours" if index == 2 else "kept"}" '
                   f'fill="none" stroke="{colour}" stroke-width="2"{dash} points="{line}"/>'
                   f'<circle cx="{x(last[0]):.1f}" cy="{y(last[index], ticks):.1f}" r="3" '
                   f'fill="{colour}"/>')
    out.append("</svg>")
    out.append(f'<div class="legend"><span><i style="background:{_BEHAVIOURS}"></i>distinct '
               f'behaviours (left axis)</span><span><i style="background:{_KEPT}"></i>'
               f"timelines kept as seeds (right axis, dashed)</span></div>")
    return "".join(out)


def section(search: Any) -> str:
    """The whole "Search" section for summary.json's ``search`` (absent before version 3)."""
    out = ["<h2>Search</h2>"]
    if not isinstance(search, dict):
        return out[0] + "<p class='muted'>not recorded (this summary predates it)</p>"
    points = _points(search.get("over_time"))
    generator = str(search.get("generator", "?"))
    run = f" of {_count(points[-1][1])} run" if points else ""
    seeds = ("showed something new (the random baseline mutates none)"
             if generator == "random" else "kept as seeds for mutation")
    out.append(f"<p>Generator <b>{_e(generator)}</b>: <b>{_count(search.get('behaviours'))}"
               f"</b> distinct behaviours seen; <b>{_count(search.get('kept'))}</b> timelines"
               f"{run} {seeds}.</p>")
    out.append(chart(points))
    out.append(_sources(search.get("sources")))
    out.append(_corpus(search.get("corpus")))
    return "".join(out)


def _sources(value: Any) -> str:
    sources = [s for s in value if isinstance(s, dict)] if isinstance(value, list) else []
    if not sources:
        return "<h3>Sources</h3><p class='muted'>none recorded</p>"
    sources.sort(key=lambda s: (-_count(s.get("finds")), -_count(s.get("tries")),
                                str(s.get("source"))))
    top = max(_count(s.get("finds")) for s in sources) or 1
    rows = []
    for s in sources:
        tries, finds = _count(s.get("tries")), _count(s.get("finds"))
        rate = f"{100 * finds / tries:.1f}%" if tries else "—"
        bar = f"<span class='bar' style='width:{100 * finds / top:.1f}%'></span>" if finds else ""
        rows.append(f"<tr><td>{_e(s.get('source', '?'))}</td><td class='n'>{tries}</td>"
                    f"<td class='n'>{finds}</td><td class='n'>{rate}</td><td style='width:40%'>"
                    f"{bar}</td></tr>")
    return ("<h3>Sources <span class='muted'>— where timelines came from, and how many "
            "showed something new</span></h3><table><tr><th>source</th><th class='n'>tries"
            "</th><th class='n'>finds</th><th class='n'>find rate</th><th></th></tr>"
            + "".join(rows) + "</table>")


def _features(entry: dict) -> str:
    new = [str(f) for f in entry.get("new") or []] if isinstance(entry.get("new"), list) else []
    total = max(_count(entry.get("new_count")), len(new))
    if not total:
        return "<span class='muted'>none</span>"
    shown = "".join(f"<li><code>{_e(f)}</code></li>" for f in new[:_FEATURES])
    more = f"<li class='muted'>… and {total - min(len(new), _FEATURES)} more</li>" \
        if total > min(len(new), _FEATURES) else ""
    return f"<details><summary>{total} new</summary><ul>{shown}{more}</ul></details>"


def _corpus(value: Any) -> str:
    entries = [c for c in value if isinstance(c, dict)] if isinstance(value, list) else []
    if not entries:
        return "<p class='muted'>No timeline was kept.</p>"
    rows = []
    for c in entries[:_CORPUS_ROWS]:
        parent = c.get("parent")
        elapsed = _num(c.get("elapsed_seconds"))
        rows.append(f"<tr><td class='n'>{_e(c.get('timeline', '?'))}</td><td class='n'>"
                    f"{_e(_clock(elapsed) if elapsed is not None else '?')}</td><td>"
                    f"{_e(c.get('origin', '?'))}</td><td class='n'>"
                    f"{_e('—' if parent is None else parent)}</td><td>{_e(c.get('why', ''))}"
                    f"</td><td>{_features(c)}</td></tr>")
    more = (f"<p class='muted'>… and {len(entries) - _CORPUS_ROWS} more (summary.json and the"
            f" run's corpus/ directory hold them all)</p>" if len(entries) > _CORPUS_ROWS
            else "")
    return (f"<details><summary>Kept timelines ({len(entries)})</summary><table><tr>"
            f"<th class='n'>timeline</th><th class='n'>kept after</th><th>origin</th>"
            f"<th class='n'>parent</th><th>why</th><th>new behaviours</th></tr>"
            + "".join(rows) + f"</table>{more}</details>")


def lineage(chain: Any) -> str:
    """``timeline 42 (fault after hit+move) ← 17 (lengthen) ← 3 (fresh)``, escaped;
    empty when there is no lineage."""
    steps = [f"{_e(s.get('timeline', '?'))} ({_e(s.get('origin', '?'))})"
             for s in (chain if isinstance(chain, list) else []) if isinstance(s, dict)]
    if len(steps) > _LINEAGE:
        steps[_LINEAGE - 1:-1] = [f"… {len(steps) - _LINEAGE} more"]
    return "timeline " + " ← ".join(steps) if steps else ""
