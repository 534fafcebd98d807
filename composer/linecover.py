"""The lines Python services ran in a timeline (``[services.NAME] coverage = true``).

``linecover_site/sitecustomize.py`` writes them while the services run; this reads them
back as behaviour features for the guided search. Imports only the standard library.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["lines_run"]


def lines_run(directory: Path) -> set[str]:
    """Return every ``path.py:LINE`` any traced process of the timeline ran."""
    lines: set[str] = set()
    for path in (directory / "coverage").glob("*.lines"):
        try:
            lines.update(line for line in path.read_text(errors="replace").splitlines() if line)
        except OSError:
            continue
    return lines
