"""Live progress of a run on the terminal: one updating line on a TTY, plain lines otherwise.

Imports nothing from composer at module level; it is told what happened.
"""

from __future__ import annotations

import sys
import time
from typing import Any, TextIO

__all__ = ["Progress"]


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60:02d}:{seconds % 60:02d}"


class Progress:
    """Reports elapsed and remaining time, timelines run and failing properties."""

    def __init__(self, duration: float, stream: TextIO | None = None, quiet: bool = False) -> None:
        self.stream = stream or sys.stderr
        self.duration = duration
        self.quiet = quiet
        self.tty = self.stream.isatty()
        self.t0 = time.monotonic()
        self.failing: list[str] = []

    def _status(self, text: str) -> str:
        elapsed = time.monotonic() - self.t0
        return f"[{_clock(elapsed)} / {_clock(self.duration)}] {text}"

    def _line(self, text: str, transient: bool = False) -> None:
        if self.quiet:
            return
        if self.tty:
            self.stream.write("\r\033[K" + text + ("" if transient else "\n"))
        elif not transient:
            self.stream.write(text + "\n")
        self.stream.flush()

    def timeline_started(self, number: int, timeline: Any) -> None:
        self._line(self._status(
            f"timeline {number}: {timeline.length:.1f}s, {len(timeline.events)} events"
            f" · {len(self.failing)} failing"), transient=True)

    def timeline_done(self, number: int, judged: Any, exploration: Any) -> None:
        for prop in judged.violations:
            if prop not in self.failing:
                self.failing.append(prop)
        verdict = "FAIL " + ", ".join(judged.violations) if judged.failed else "pass"
        self._line(self._status(
            f"timeline {number} {verdict} · {exploration.timelines} run · "
            f"{len(self.failing)} failing"), transient=self.tty and not judged.failed)

    def note(self, text: str) -> None:
        self._line(self._status(text))

    def done(self) -> None:
        if self.tty and not self.quiet:
            self.stream.write("\r\033[K")
            self.stream.flush()
