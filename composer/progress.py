"""Live progress of a run: a rich panel on a terminal, ``key=value`` lines otherwise.

Imports nothing from composer; it is told what happened (``timeline_started``, each
runner event, ``timeline_done``, notes), for any number of timelines running at once
(``--jobs``), always from one thread. Lines are for CI logs and scripts: every line
is ``progress`` or ``note`` followed by ``key=value`` pairs (values quoted as a POSIX
shell would), so ``shlex.split`` parses them.
"""

from __future__ import annotations

import collections
import shlex
import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]

#: Runner events that move a timeline to its next phase.
_PHASES = {"setup complete": "drivers", "driver phase over": "after drivers",
           "setup failed": "setup failed", "restart": "restarting"}


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Elapsed and remaining time, timelines run, the current one's phase, faults injected,
    behaviours found, and properties passing, failing and unreached."""

    def __init__(self, duration: float | None, stream: TextIO | None = None,
                 quiet: bool = False, live: bool | None = None,
                 stage: str = "exploring") -> None:
        self.stream = stream or sys.stderr
        self.duration = duration
        self.quiet = quiet
        self.t0 = time.monotonic()
        self.timelines = 0
        #: timelines running now -> their phase
        self.running: dict[int, str] = {}
        #: running timelines whose events come as they happen (not so for Ray tasks)
        self._live_events: set[int] = set()
        self.stage = stage
        self.faults: collections.Counter = collections.Counter()
        self.counts = {"pass": 0, "fail": 0, "unreached": 0}
        self.failing: list[str] = []
        #: distinct behaviours the search has seen, and timelines it kept as seeds
        self.behaviours = 0
        self.corpus = 0
        self._live = None
        if not quiet and (self.stream.isatty() if live is None else live):
            self._start_live()

    # -- what happened -----------------------------------------------------------------

    def timeline_started(self, number: int, timeline: Any) -> None:
        self.running[number] = "setup"
        self._refresh()

    def event(self, entry: dict[str, Any], number: int | None = None) -> None:
        """One runner event (``run.json`` log entry) of timeline ``number`` (default: the
        one running); events of runs that are not timelines (re-runs) are not shown."""
        if number is None and len(self.running) == 1:
            number = next(iter(self.running))
        if number not in self.running:
            return
        self._live_events.add(number)
        self._count_fault(entry)
        what = entry.get("what")
        phase = self.running[number] = _PHASES.get(what, self.running[number])
        if what == "start" and phase == "after drivers":
            self.running[number] = entry.get("command", phase)  # eventually_ or finally_
        self._refresh()

    def timeline_ended(self, number: int) -> None:
        """Timeline ``number`` is no longer running (``timeline_done`` says so too)."""
        self.running.pop(number, None)
        self._live_events.discard(number)
        self._refresh()

    def timeline_done(self, number: int, judged: Any, exploration: Any) -> None:
        self.timelines = exploration.timelines
        self.running.pop(number, None)
        if number not in self._live_events:  # its faults are known only now
            for entry in judged.result.log:
                self._count_fault(entry)
        self._live_events.discard(number)
        statuses = collections.Counter(p.status for p in exploration.table.properties())
        self.counts = {k: statuses.get(k, 0) for k in self.counts}
        corpus = getattr(exploration, "corpus", None)
        if corpus is not None:
            self.behaviours, self.corpus = corpus.behaviours, len(corpus.entries)
        for prop in judged.violations:
            if prop not in self.failing:
                self.failing.append(prop)
        verdict = "fail" if judged.failed else "pass"
        self._line("progress", timeline=number, verdict=verdict,
                   failed=",".join(judged.violations) or None, **self._state())
        self._refresh()

    def _count_fault(self, entry: dict[str, Any]) -> None:
        if entry.get("what") == "fault" and entry.get("targets"):
            self.faults[entry.get("kind", "?")] += 1

    def note(self, text: str, stage: str | None = None) -> None:
        """Something worth a line of its own; ``stage`` names what composer does now."""
        if stage:
            self.stage = stage
        self._line("note", elapsed=round(self._elapsed(), 1), stage=self.stage, text=text)
        self._refresh()

    def done(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None

    # -- output ------------------------------------------------------------------------

    def _elapsed(self) -> float:
        return time.monotonic() - self.t0

    def _state(self) -> dict[str, Any]:
        remaining = None if self.duration is None else max(0.0, self.duration - self._elapsed())
        return {"elapsed": round(self._elapsed(), 1),
                "remaining": None if remaining is None else round(remaining, 1),
                "timelines": self.timelines, "stage": self.stage,
                "faults": sum(self.faults.values()),
                "passing": self.counts["pass"], "failing": self.counts["fail"],
                "unreached": self.counts["unreached"],
                "behaviours": self.behaviours, "corpus": self.corpus}

    def _line(self, word: str, **fields: Any) -> None:
        if self.quiet:
            return
        text = " ".join([word] + [f"{k}={shlex.quote(str(v))}" for k, v in fields.items()
                                  if v is not None])
        if self._live is not None:
            if word == "note" or fields.get("verdict") == "fail":
                self._live.console.print(text, highlight=False, markup=False, soft_wrap=True)
            return
        self.stream.write(text + "\n")
        self.stream.flush()

    def _start_live(self) -> None:
        from rich.console import Console
        from rich.live import Live

        # printing goes above the panel, but output sent to a file stays in that file
        self._live = Live(get_renderable=self._panel,
                          console=Console(file=self.stream, force_terminal=True),
                          refresh_per_second=4, transient=True,
                          redirect_stdout=sys.stdout.isatty(), redirect_stderr=False)
        self._live.start()

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def _panel(self):
        from rich.progress_bar import ProgressBar
        from rich.table import Table

        grid = Table.grid(padding=(0, 2))
        elapsed = self._elapsed()
        clock = f"{_clock(elapsed)} / {_clock(self.duration)}" if self.duration else _clock(elapsed)
        bar = ProgressBar(total=self.duration or 1, completed=min(elapsed, self.duration or 0),
                          width=30)
        grid.add_row("[bold]composer[/]", bar, clock, self.stage)
        running = dict(self.running)  # the panel refreshes from a thread of its own
        if not running:
            current = "between timelines"
        elif len(running) == 1:
            current = "timeline {}: {}".format(*next(iter(running.items())))
        else:
            current = f"{len(running)} running: " + ", ".join(
                f"{number} {phase}" for number, phase in sorted(running.items()))
        grid.add_row("timelines", str(self.timelines), current, "")
        faults = ", ".join(f"{k} {n}" for k, n in sorted(self.faults.items())) or "none yet"
        grid.add_row("faults", str(sum(self.faults.values())), faults, "")
        if self.behaviours:
            grid.add_row("search", f"{self.behaviours} behaviours",
                         f"{self.corpus} timelines kept as seeds", "")
        if not any(self.counts.values()):  # nothing judged yet (or a replay)
            return grid
        grid.add_row("properties",
                     f"[green]{self.counts['pass']} passing[/]",
                     f"[red]{self.counts['fail']} failing[/]",
                     f"[yellow]{self.counts['unreached']} unreached[/]")
        return grid
