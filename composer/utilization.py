"""What an exploration exercised: commands started and completed, faults injected.

Imports ``composer.templates`` only. Counted from every timeline's event log as it ends,
because passing timeline directories are pruned: the report cannot count them later.
"""

from __future__ import annotations

import collections
import dataclasses
from typing import Any

from composer.templates import Template

__all__ = ["Utilization"]


@dataclasses.dataclass
class Utilization:
    timelines: int = 0
    kinds: dict[str, str] = dataclasses.field(default_factory=dict)
    started: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    completed: collections.Counter = dataclasses.field(default_factory=collections.Counter)
    faults: collections.Counter = dataclasses.field(default_factory=collections.Counter)

    def declare(self, template: Template) -> None:
        """Know ``template``'s commands, so one that never started is listed too."""
        self.kinds.update((c.name, c.kind) for c in template.commands)

    def add(self, log: list[dict[str, Any]]) -> None:
        """Count one timeline's run log (``run.json``'s "log")."""
        self.timelines += 1
        for entry in log:
            if entry["what"] == "start":
                self.started[entry["command"]] += 1
            elif entry["what"] == "exit" and entry.get("status") == "exited":
                self.completed[entry["command"]] += 1
            elif entry["what"] == "fault" and entry.get("targets"):
                self.faults[entry["kind"]] += 1

    def to_json(self) -> dict[str, Any]:
        """The ``utilization`` block of summary.json (see composer/summary.schema.json)."""
        by_kind: collections.Counter = collections.Counter()
        for name, count in self.started.items():
            by_kind[self.kinds.get(name, "unknown")] += count
        names = sorted(set(self.kinds) | set(self.started))
        return {
            "timelines": self.timelines,
            "commands": {n: {"kind": self.kinds.get(n, "unknown"), "started": self.started[n],
                             "completed": self.completed[n]} for n in names},
            "commands_by_kind": dict(sorted(by_kind.items())),
            "faults": dict(sorted(self.faults.items())),
            "never_completed": [n for n in names if not self.completed[n]],
        }
