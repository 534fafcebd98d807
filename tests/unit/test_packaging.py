"""Every package directory is installed: pyproject lists its packages (the workloads'
folder drivers/ is installed as composer_drivers, so find cannot be used)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_package_directory_is_listed_in_pyproject():
    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(tool["packages"])
    where = {name: ROOT / path for name, path in tool.get("package-dir", {}).items()}
    found = set()
    for top in ("composer", "composer_sdk", "composer_agent", "composer_drivers"):
        base = where.get(top, ROOT / top)
        for init in base.rglob("__init__.py"):
            parts = init.parent.relative_to(base).parts
            found.add(".".join((top, *parts)))
    assert found == listed, f"pyproject packages differ: missing {found - listed}, extra {listed - found}"
