"""The architecture seams of STYLE.md, checked by parsing every import with ``ast``.

Imports inside functions and under ``TYPE_CHECKING`` count too: a seam is about what a
module knows, not only about what it loads at import time.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def imports(source: str, module: str) -> set[str]:
    """Return every module ``source`` (the code of ``module``) imports, fully qualified.

    ``from a import b`` yields both ``a`` and ``a.b`` (b may be a module); relative
    imports are resolved against ``module``'s package.
    """
    found: set[str] = set()
    package = module.rsplit(".", 1)[0] if "." in module else ""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{base}.{node.module}" if node.module else base
            else:
                base = node.module or ""
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return found


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts[-1:] = []
        return ".".join(parts) + ".__init__"  # so relative imports resolve in the package
    return ".".join(parts)


def sources(*patterns: str) -> dict[str, set[str]]:
    """Return {path relative to the repo: imports} for the files matching ``patterns``."""
    result = {}
    for pattern in patterns:
        for path in sorted(ROOT.glob(pattern)):
            result[str(path.relative_to(ROOT))] = imports(path.read_text(), _module_name(path))
    return result


def touches(found: set[str], *names: str) -> set[str]:
    """Return the imports in ``found`` that are ``names`` or inside them."""
    return {m for m in found if any(m == n or m.startswith(n + ".") for n in names)}


ALL = sources("composer/**/*.py", "composer_agent/**/*.py", "composer_sdk/**/*.py")


# --- the parser itself -------------------------------------------------------------


def test_imports_parser():
    code = """
import os, hypothesis.strategies as st
from hypothesis import given
from composer import schedule
from composer.clusters.base import Node
from . import _output
from .assertions import always
from .. import sibling
def later():
    import composer.explore
if TYPE_CHECKING:
    from composer.properties import Property
"""
    found = imports(code, "sdk.sub.module")
    assert {"os", "hypothesis.strategies", "hypothesis", "hypothesis.given", "composer",
            "composer.schedule", "composer.clusters.base", "composer.clusters.base.Node",
            "sdk.sub._output", "sdk.sub.assertions", "sdk.sub.assertions.always",
            "sdk.sibling", "composer.explore", "composer.properties"} <= found
    assert touches(found, "composer.schedule") == {"composer.schedule"}
    assert touches({"hypothesis_extra"}, "hypothesis") == set()
    assert imports("from . import x", "sdk.__init__") >= {"sdk", "sdk.x"}


def test_the_tree_is_where_the_seams_expect_it():
    assert "composer/schedule.py" in ALL and "composer/explore.py" in ALL
    assert "composer/properties.py" in ALL
    assert any(path.startswith("composer/clusters/") for path in ALL)
    assert any(path.startswith("composer_sdk/") for path in ALL)


# --- the seams ---------------------------------------------------------------------

BACKENDS = {p: m for p, m in ALL.items() if p.startswith(("composer/clusters/", "composer_agent/"))}


@pytest.mark.parametrize("path", sorted(BACKENDS))
def test_backends_know_nothing_of_hypothesis(path):
    bad = touches(BACKENDS[path], "hypothesis", "composer.schedule", "composer.explore",
                  "composer.properties")
    assert not bad, f"{path} imports {sorted(bad)}: backends see only capabilities and processes"


def test_only_schedule_imports_hypothesis_strategies():
    users = {path for path, found in ALL.items() if touches(found, "hypothesis.strategies")}
    assert users == {"composer/schedule.py"}


def test_only_explore_meets_the_search_and_the_runner():
    search = ("hypothesis", "composer.search", "composer.mutate", "composer.corpus",
              "composer.schedule")
    both = {path for path, found in ALL.items()
            if touches(found, *search) and touches(found, "composer.runner")}
    assert both <= {"composer/explore.py"}, (
        f"{sorted(both - {'composer/explore.py'})} import both the search and the runner")


@pytest.mark.parametrize("path", ["composer/search.py", "composer/mutate.py",
                                  "composer/corpus.py", "composer/behaviour.py",
                                  "composer/hits.py"])
def test_the_search_never_sees_a_cluster(path):
    bad = touches(ALL[path], "composer.runner", "composer.clusters", "composer.services",
                  "composer.explore", "hypothesis")
    assert not bad, f"{path} imports {sorted(bad)}: the search sees timelines and signatures"


@pytest.mark.parametrize("path", sorted(p for p in ALL if p.startswith("composer_sdk/")))
def test_sdk_imports_only_the_standard_library(path):
    for name in ALL[path]:
        top = name.split(".")[0]
        assert top == "composer_sdk" or top in sys.stdlib_module_names or top == "__future__", (
            f"{path} imports {name}: the SDK runs in every driver and SUT, stdlib only")


def test_properties_know_only_record_shapes():
    found = touches(ALL["composer/properties.py"], "composer", "composer_sdk")
    assert found <= {"composer_sdk.assertions", "composer_sdk.assertions.ASSERTION_KINDS"}, found


def test_faults_and_errors_import_only_the_standard_library():
    for path in ("composer/faults.py", "composer/errors.py"):
        for name in ALL[path]:
            top = name.split(".")[0]
            assert top in sys.stdlib_module_names or top == "__future__", f"{path}: {name}"


@pytest.mark.parametrize("path, allowed", [
    ("composer/config.py", {"composer.errors", "composer.config_reader"}),
    ("composer/config_reader.py", {"composer.config", "composer.errors", "composer.faults",
                                   "composer.checkers", "composer.aws.settings"}),
    ("composer/run_record.py", set()),
    ("composer/compose_model.py", set()),
    ("composer/budget.py", set()),
    ("composer/interrupts.py", set()),
    ("composer/builtin_properties.py", {"composer.templates", "composer_sdk.assertions"}),
    ("composer/invocations.py", {"composer.builtin_properties", "composer.clusters.base",
                                 "composer.errors", "composer.run_record",
                                 "composer.services", "composer.templates"}),
    ("composer/driver_phase.py", {"composer.invocations", "composer.run_record",
                                  "composer.templates", "composer.timeline"}),
    ("composer/html_report.py", {"composer.html_search", "composer.html_timeline",
                                 "composer.report", "composer.builtin_properties", "composer.failure_location",
                                 "composer.timeline", "composer.html_templates",
                                 "composer.html_history"}),
    ("composer/html_timeline.py", {"composer.html_templates"}),
    ("composer/html_templates.py", set()),
    ("composer/html_history.py", {"composer.html_templates"}),
    ("composer/failure_location.py", {"composer.builtin_properties", "composer.properties"}),
    ("composer/templates.py", {"composer.config", "composer.errors"}),
    ("composer/timeline.py", {"composer.faults"}),
    ("composer/shrink.py", {"composer.timeline"}),
    ("composer/schedule.py", {"composer.timeline", "composer.templates", "composer.faults"}),
    ("composer/hits.py", set()),
    ("composer/behaviour.py", {"composer.properties", "composer.hits"}),
    ("composer/corpus.py", {"composer.behaviour", "composer.timeline"}),
])
def test_inner_modules_import_only_what_style_allows(path, allowed):
    found = touches(ALL[path], "composer") - {"composer"}
    extra = {m for m in found if not any(m == a or m.startswith(a + ".") for a in allowed)}
    assert not extra, f"{path} imports {sorted(extra)}; allowed: {sorted(allowed)}"


def test_compose_reaches_the_core_only_as_a_project_source_and_a_backend():
    # A compose file is read into a Project (project_source) and run by its backend; the
    # runner, services, templates, schedule and cli see typed Project fields, no branch.
    knows = {path for path, found in ALL.items()
             if touches(found, "composer.compose", "composer.clusters.compose")}
    assert knows <= {"composer/project_source.py", "composer/cli_parser.py",
                     "composer/compose.py", "composer/clusters/compose.py",
                     "composer/clusters/__init__.py"}, sorted(knows)


@pytest.mark.parametrize("path", sorted(p for p in ALL if p.startswith("composer_agent/")))
def test_the_agent_knows_nothing_of_the_conductor(path):
    bad = touches(ALL[path], "composer")
    assert not bad, f"{path} imports {sorted(bad)}: the agent runs alone on remote machines"


def test_composer_runs_from_a_source_tree_without_its_workloads_installed():
    # composer_drivers lives in drivers/ and only an install names it: no composer module
    # may import it at import time (`python3 -m composer.cli` from a checkout failed)
    for path, found in ALL.items():
        if path.startswith("composer/") and path != "composer/workload_command.py":
            assert not touches(found, "composer_drivers"), path
