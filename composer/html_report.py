"""``report.html``: one self-contained page per run, built from ``summary.json``.

Inline CSS and SVG only: no script, no network, no external font, so it opens from
``file://`` anywhere and can be attached to a CI run. Its size does not grow with the
number of timelines: the summary holds one entry per property and a few findings; only
the findings' own timeline directories are read (their ``run.json``, the failing SDK
record, the tail of the failing process's logs). Every user-written string is escaped.
Imports report, builtin_properties, failure_location, timeline, html_timeline and
html_search (the search section).
"""

from __future__ import annotations

import html
import json
import os
import shlex
from pathlib import Path
from typing import Any

from composer import html_search as hs
from composer import html_timeline as ht
from composer.report import replay_command
from composer.builtin_properties import is_builtin
from composer.failure_location import Failure, locate_failure, tail
from composer.timeline import Timeline

__all__ = ["write_report", "render"]

_VERDICTS = {0: ("pass", "all properties hold"), 1: ("fail", "a property failed"),
             2: ("fail", "usage or configuration error"), 3: ("fail", "infrastructure error"),
             130: ("unreached", "interrupted")}
_GROUPS = (("always", "Always", "must hold every time they are evaluated"),
           ("sometimes", "Sometimes", "must be true at least once"),
           ("reachability", "Reachability", "code that must, or must never, be reached"),
           ("builtin", "Built-in (composer)", "checked by composer for every timeline"))
_DETAILS_LIMIT = 4000
_LOG_LINES = 40

_CSS = """
:root{--pass:#2e7d32;--fail:#c62828;--unreached:#b26a00;--muted:#616161;--line:#e0e0e0}
*{box-sizing:border-box}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;
 color:#212121;background:#fafafa}
main{max-width:1200px;margin:0 auto;padding:16px 24px 48px}
h1{font-size:22px;margin:8px 0}h2{font-size:18px;margin:28px 0 8px;
 border-bottom:2px solid var(--line);padding-bottom:4px}h3{font-size:15px;margin:18px 0 6px}
code,pre,.mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:12px}
pre{background:#263238;color:#eceff1;padding:8px 10px;border-radius:4px;overflow-x:auto;
 white-space:pre-wrap;word-break:break-word;max-height:480px;overflow-y:auto}
dl.meta{display:grid;grid-template-columns:max-content 1fr;gap:2px 16px;margin:8px 0}
dl.meta dt{color:var(--muted)}dl.meta dd{margin:0;word-break:break-word}
.badge{display:inline-block;min-width:74px;text-align:center;padding:1px 8px;
 border-radius:10px;color:#fff;font-size:12px;font-weight:600;text-transform:uppercase}
.badge.pass{background:var(--pass)}.badge.fail{background:var(--fail)}
.badge.unreached{background:var(--unreached)}
.callout{border-left:5px solid var(--fail);background:#fff;padding:8px 14px;margin:12px 0;
 box-shadow:0 1px 2px rgba(0,0,0,.08)}.callout.warn{border-color:var(--unreached)}
.callout.ok{border-color:var(--pass)}.callout ul{margin:4px 0;padding-left:20px}
table{border-collapse:collapse;width:100%;background:#fff;margin:6px 0 10px}
th,td{text-align:left;padding:4px 8px;border-bottom:1px solid var(--line);vertical-align:top}
th{font-size:12px;color:var(--muted);font-weight:600}td.n,th.n{text-align:right;
 font-variant-numeric:tabular-nums}tr.fail td{background:#ffebee}
tr.unreached td{background:#fff8e1}.muted{color:var(--muted)}
section.finding{background:#fff;border:1px solid var(--line);border-top:4px solid
 var(--fail);padding:10px 16px;margin:14px 0;border-radius:4px}
.legend span{display:inline-block;margin:2px 12px 2px 0;font-size:12px}
.legend i{display:inline-block;width:12px;height:10px;margin-right:4px;border-radius:2px;
 vertical-align:baseline}
.bar{background:#90caf9;height:10px;border-radius:2px;display:inline-block;min-width:1px}
details>summary{cursor:pointer;color:#1565c0}svg.timeline{background:#fff;display:block}
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def write_report(run_dir: Path) -> Path:
    """Write ``run_dir/report.html`` from ``run_dir/summary.json``; return its path."""
    run_dir = Path(run_dir)
    summary = json.loads((run_dir / "summary.json").read_text())
    path = run_dir / "report.html"
    partial = path.with_name(".report.html.partial")
    partial.write_text(render(summary, run_dir), encoding="utf-8")
    os.replace(partial, path)
    return path


def render(summary: dict, run_dir: Path) -> str:
    """Return the whole page for ``summary`` (``run_dir`` holds the timeline files)."""
    props = [p for p in summary.get("properties") or [] if isinstance(p, dict)]
    findings = [f for f in summary.get("findings") or [] if isinstance(f, dict)]
    anchors = {str(f.get("property")): f"finding-{i}" for i, f in enumerate(findings, 1)}
    title = f"composer: {summary.get('project', '?')}"
    parts = [f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
             f'<meta name="viewport" content="width=device-width, initial-scale=1">'
             f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>",
             _header(summary), _callouts(props, anchors), _properties(props, anchors),
             _findings(findings, run_dir), hs.section(summary.get("search")),
             _utilization(summary.get("utilization")),
             "</main></body></html>\n"]
    return "\n".join(parts)


def _duration(seconds: Any) -> str:
    try:
        s = float(seconds)
    except (TypeError, ValueError):
        return "?"
    if s < 60:
        return f"{s:.1f} s"
    m, s = divmod(round(s), 60)
    return f"{m} min {s} s" if m < 60 else f"{m // 60} h {m % 60} min"


def _header(s: dict) -> str:
    code = s.get("exit_code")
    badge, verdict = _VERDICTS.get(code, ("fail", "unknown exit code"))
    if s.get("stopped_early"):
        verdict += "; stopped early (Ctrl-C): results so far"
    argv = shlex.join(["composer", *map(str, s.get("argv") or [])])
    rows = [("project", f"{_e(s.get('project', '?'))} <span class='muted mono'>"
                        f"{_e(s.get('project_dir', ''))}</span>"),
            ("backend", _e(s.get("backend", "?"))),
            ("duration", _e(_duration(s.get("elapsed_seconds")))),
            ("seed", _e(s.get("seed") if s.get("seed") is not None else "none (random)")),
            ("timelines", _e(s.get("timelines", "?"))),
            ("exit code", f'<span class="badge {badge}">{_e(code)}</span> {_e(verdict)}'),
            ("versions", _e(f"composer {s.get('composer', '?')}, Python {s.get('python', '?')},"
                            f" {s.get('platform', '?')}; summary v{s.get('version', '?')}")),
            ("command", f"<code>{_e(argv)}</code>")]
    if s.get("garbage_sdk_lines"):
        rows.append(("SDK output", f"{_e(s['garbage_sdk_lines'])} line(s) were not valid "
                                   f"records and were skipped"))
    return (f"<header><h1>{_e('composer run: ' + str(s.get('project', '?')))}</h1>"
            f'<dl class="meta">' + "".join(f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows)
            + "</dl></header>")


def _group(prop: dict) -> str:
    message = str(prop.get("message", ""))
    if is_builtin(message):
        return "builtin"
    kind = prop.get("assert_type")
    return kind if kind in ("always", "sometimes", "reachability") else "always"


def _link(prop: dict, anchors: dict[str, str]) -> str:
    key = str(prop.get("id") or prop.get("message"))
    text = _e(prop.get("message", key))
    anchor = anchors.get(key) or anchors.get(str(prop.get("message")))
    return f'<a href="#{anchor}">{text}</a>' if anchor else text


def _callouts(props: list[dict], anchors: dict[str, str]) -> str:
    failing = [p for p in props if p.get("status") == "fail"]
    unreached = [p for p in props if p.get("status") == "unreached"]
    passing = len(props) - len(failing) - len(unreached)
    out = [f'<p><b>{len(props)}</b> properties: <span class="badge fail">{len(failing)} fail'
           f'</span> <span class="badge unreached">{len(unreached)} unreached</span> '
           f'<span class="badge pass">{passing} pass</span></p>']
    if failing:
        out.append('<div class="callout"><b>Failing</b><ul>' + "".join(
            f"<li>{_e(p.get('display_type', ''))}: {_link(p, anchors)}</li>" for p in failing)
            + "</ul></div>")
    if unreached:
        out.append('<div class="callout warn"><b>Never reached</b> — must-hit properties no '
                   'timeline reached, so nothing was checked:<ul>' + "".join(
                       f"<li>{_e(p.get('display_type', ''))}: {_e(p.get('message', ''))}</li>"
                       for p in unreached) + "</ul></div>")
    if not failing and not unreached and props:
        out.append('<div class="callout ok">Every property holds.</div>')
    return "".join(out)


def _details(value: Any) -> str:
    text = json.dumps(value, indent=1, default=str)
    if len(text) > _DETAILS_LIMIT:
        text = text[:_DETAILS_LIMIT] + f"\n… ({len(text) - _DETAILS_LIMIT} more characters)"
    return f"<pre>{_e(text)}</pre>"


def _location(loc: Any) -> str:
    if not isinstance(loc, dict) or not loc.get("file") or loc.get("file") == "composer":
        return ""
    return f"{loc.get('file')}:{loc.get('begin_line', '?')}"


def _properties(props: list[dict], anchors: dict[str, str]) -> str:
    if not props:
        return "<h2>Properties</h2><p>No properties were declared or hit.</p>"
    order = {"fail": 0, "unreached": 1, "pass": 2}
    out = ["<h2>Properties</h2>"]
    for key, name, blurb in _GROUPS:
        group = sorted((p for p in props if _group(p) == key),
                       key=lambda p: (order.get(p.get("status"), 0), str(p.get("message"))))
        if not group:
            continue
        bad = sum(p.get("status") == "fail" for p in group)
        missing = sum(p.get("status") == "unreached" for p in group)
        out.append(f"<h3>{name} <span class='muted'>({len(group)}; {bad} failing, {missing} "
                   f"unreached) — {blurb}</span></h3><table><tr><th>status</th><th>type</th>"
                   f"<th>property</th><th class='n'>pass</th><th class='n'>fail</th>"
                   f"<th class='n'>timelines hit</th></tr>")
        for p in group:
            status = p.get("status") if p.get("status") in order else "fail"
            cell = _link(p, anchors)
            first = p.get("first_failure")
            where = _location(first.get("location")) if isinstance(first, dict) else ""
            if isinstance(first, dict) and (first.get("details") or where):
                what = "first false" if key == "sometimes" else "first failure"
                cell += (f"<details><summary>{what}{' at ' + _e(where) if where else ''}"
                         f"</summary>{_details(first.get('details'))}</details>")
            out.append(f"<tr class='{status}'><td><span class='badge {status}'>{status}</span>"
                       f"</td><td>{_e(p.get('display_type', ''))}</td><td>{cell}</td>"
                       f"<td class='n'>{_e(p.get('passes', 0))}</td><td class='n'>"
                       f"{_e(p.get('failures', 0))}</td><td class='n'>"
                       f"{_e(p.get('timelines_hit', 0))}</td></tr>")
        out.append("</table>")
    return "".join(out)


def _findings(findings: list[dict], run_dir: Path) -> str:
    if not findings:
        return ""
    out = ["<h2>Failing timelines</h2>"]
    for i, finding in enumerate(findings, 1):
        try:
            out.append(_finding(i, finding, run_dir))
        except Exception as exc:  # a damaged run dir must not cost the rest of the report
            out.append(f'<section class="finding" id="finding-{i}"><h3>'
                       f"{_e(finding.get('property'))}</h3><p>This finding could not be drawn:"
                       f" {_e(type(exc).__name__)}: {_e(exc)}</p></section>")
    return "".join(out)


def _timeline_dir(finding: dict, run_dir: Path) -> Path | None:
    """The finding's timeline directory, also when the run directory was moved."""
    recorded = Path(str(finding.get("directory") or ""))
    for candidate in (recorded, run_dir / "timelines" / recorded.name):
        if recorded.name and (candidate / "run.json").is_file():
            return candidate
    return None


def _href(path: Path, run_dir: Path) -> str:
    try:
        rel = os.path.relpath(path, run_dir)
    except ValueError:
        rel = str(path)
    return _e(Path(rel).as_posix())


def _finding(i: int, f: dict, run_dir: Path) -> str:
    prop = str(f.get("property"))
    plan = f.get("timeline") if isinstance(f.get("timeline"), dict) else {}
    out = [f'<section class="finding" id="finding-{i}"><h3>{_e(prop)}</h3><dl class="meta">']
    reruns, reproduced = f.get("reruns") or 0, f.get("reproduced") or 0
    rate = (f"{_e(reproduced)}/{_e(reruns)} re-runs ({100 * reproduced / reruns:.0f}%)"
            if reruns else "not re-run")
    rows = [("found after", _e(_duration(f.get("found_after_seconds")))),
            ("shrunk", f"{_e(f.get('first_timeline_size', '?'))} → "
                       f"{_e(f.get('shrunk_timeline_size', '?'))} events, template "
                       f"<code>{_e(plan.get('template', '?'))}</code>"),
            ("reproduced", rate)]
    if f.get("lineage"):
        rows.insert(1, ("found by", hs.lineage(f["lineage"])))
    if isinstance(f.get("cut_short"), list) and f["cut_short"]:
        rows.append(("cut short", "; ".join(_e(str(w)) for w in f["cut_short"])))
    if f.get("replay"):
        rows.append(("replay", f"<code>{_e(replay_command(Path(str(f['replay']))))}</code>"))
    directory = _timeline_dir(f, run_dir)
    run: dict = {}
    if directory is not None:
        run = json.loads((directory / "run.json").read_text())
        rows.append(("logs", f'<a href="{_href(directory, run_dir)}">'
                             f"{_e(directory)}</a>"))
    out += [f"<dt>{k}</dt><dd>{v}</dd>" for k, v in rows]
    out.append("</dl>")
    failure = locate_failure(directory, prop, run) if directory else None
    if directory is not None:
        chart = ht.chart_from_run(run, ht._t(plan.get("length")) or None)
        note = "as it ran (seconds since the timeline began)"
        if run.get("setup_error"):
            out.append(f"<p><b>setup failed:</b> {_e(run['setup_error'])}</p>")
    else:
        chart = ht.chart_from_plan(plan)
        note = ("as planned (seconds into the driver phase; its directory is gone, so "
                "command durations are unknown)")
    if failure is not None:
        for bar in chart.bars:
            bar.marked = bar.number is not None and bar.number == failure.invocation
        if failure.invocation is None:
            chart.marked_lane = failure.node
    out.append(f"<p class='muted'>Shrunk timeline {note}; hover for details.</p>")
    out.append(ht.svg(chart, f"timeline of the failing property {prop}"))
    out.append(_legend(chart))
    try:
        described = "\n".join(Timeline.from_json(plan).describe())
    except ValueError as exc:
        described = f"(not a timeline: {exc})"
    out.append(f"<details><summary>planned timeline</summary><pre>{_e(described)}</pre>"
               f"</details>")
    if run.get("log"):
        lines = "\n".join(json.dumps(e, default=str) for e in run["log"][:500])
        out.append(f"<details><summary>run log ({len(run['log'])} entries)</summary>"
                   f"<pre>{_e(lines)}</pre></details>")
    out.append(_failure(failure, directory, run_dir))
    out.append("</section>")
    return "".join(out)


def _legend(chart: ht.Chart) -> str:
    statuses = dict.fromkeys(b.status for b in chart.bars)
    kinds = dict.fromkeys(b.kind for b in chart.bands)
    items = [f'<span><i style="background:{ht.STATUS_COLOURS[s][0]}"></i>'
             f"{_e(ht.STATUS_COLOURS[s][1])}</span>" for s in statuses]
    items += [f'<span><i style="background:{ht.FAULT_COLOURS.get(k, "#616161")};opacity:.5">'
              f"</i>fault: {_e(k)}</span>" for k in kinds]
    if any(b.marked for b in chart.bars) or chart.marked_lane:
        items.append('<span><i style="background:#c62828"></i>failing assertion</span>')
    return f'<div class="legend">{"".join(items)}</div>'


def _failure(failure: Failure | None, directory: Path | None, run_dir: Path) -> str:
    if directory is None:
        return "<p class='muted'>The timeline's directory is gone: no records or logs.</p>"
    if failure is None:
        return ("<p class='muted'>No failing record of this property was found in the "
                "timeline's SDK output.</p>")
    record = failure.record
    where = _location(record.get("location"))
    out = [f"<h3>Failing assertion</h3><p>in <code>{_e(failure.file)}</code>"
           f"{' — ' + _e(failure.what) if failure.what else ''}"
           f"{' at <code>' + _e(where) + '</code>' if where else ''}</p>"]
    if record.get("details") is not None:
        out.append(_details(record.get("details")))
    for path in failure.logs:
        lines = tail(path, _LOG_LINES)
        if not lines:
            out.append(f"<p class='muted'>{_e(path.name)}: {'empty' if lines == [] else 'none'}"
                       f"</p>")
            continue
        name, body = _e(path.name), _e("\n".join(lines))
        out.append(f"<h3>Last {_LOG_LINES} lines of <a href='{_href(path, run_dir)}'>{name}"
                   f"</a></h3><pre>{body}</pre>")
    return "".join(out)


def _bars(counts: dict[str, int], header: str) -> str:
    if not counts:
        return "<p class='muted'>none</p>"
    top = max(counts.values()) or 1
    rows = "".join(f"<tr><td>{_e(k)}</td><td class='n'>{_e(v)}</td><td style='width:50%'>"
                   f"<span class='bar' style='width:{100 * v / top:.1f}%'></span></td></tr>"
                   for k, v in counts.items())
    return f"<table><tr><th>{header}</th><th class='n'>count</th><th></th></tr>{rows}</table>"


def _utilization(u: Any) -> str:
    out = ["<h2>Utilization</h2>"]
    if not isinstance(u, dict):
        return out[0] + "<p class='muted'>not recorded (this summary predates it)</p>"
    out.append(f"<p><b>{_e(u.get('timelines', 0))}</b> timelines run.</p>")
    never = [str(n) for n in u.get("never_completed") or []]
    if never:
        out.append('<div class="callout warn"><b>Commands that never ran to completion</b>'
                   "<ul>" + "".join(f"<li><code>{_e(n)}</code></li>" for n in never)
                   + "</ul></div>")
    out.append("<h3>Commands by kind (starts)</h3>")
    out.append(_bars(_counts(u.get("commands_by_kind")), "kind"))
    out.append("<h3>Faults injected by kind</h3>")
    out.append(_bars(_counts(u.get("faults")), "fault"))
    commands = u.get("commands") if isinstance(u.get("commands"), dict) else {}
    if commands:
        rows = []
        for name, c in commands.items():
            c = c if isinstance(c, dict) else {}
            started, done = c.get("started", 0), c.get("completed", 0)
            cls = " class='unreached'" if not done else ""
            rows.append(f"<tr{cls}><td><code>{_e(name)}</code></td><td>{_e(c.get('kind', '?'))}"
                        f"</td><td class='n'>{_e(started)}</td><td class='n'>{_e(done)}</td>"
                        "</tr>")
        out.append("<h3>Commands</h3><table><tr><th>command</th><th>kind</th><th class='n'>"
                   "started</th><th class='n'>ran to completion</th></tr>" + "".join(rows)
                   + "</table>")
    return "".join(out)


def _counts(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        return {}
    return {str(k): v for k, v in value.items() if isinstance(v, (int, float))}
