"""The project sent to Ray workers: named by its content, without what runs wrote,
unpacked once per machine, and the parsed project pointed at the copy."""

from __future__ import annotations

import dataclasses
import os
import threading
from pathlib import Path

from composer import config, project_bundle, templates


def _project(root: Path) -> Path:
    (root / "drivers" / "main").mkdir(parents=True)
    driver = root / "drivers" / "main" / "parallel_driver_put"
    driver.write_text("#!/bin/sh\necho put\n")
    driver.chmod(0o755)
    (root / "composer.toml").write_text('[services.kv]\nreplicas = 2\ncommand = "sleep 60"\n')
    (root / ".composer" / "runs").mkdir(parents=True)
    (root / ".composer" / "runs" / "big.log").write_text("x" * 100_000)
    (root / "__pycache__").mkdir()
    (root / "link").symlink_to("drivers")
    return root


def test_equal_projects_get_equal_digests_and_a_change_another(tmp_path):
    one = _project(tmp_path / "one")
    two = _project(tmp_path / "two")
    os.utime(two / "composer.toml", (1, 1))  # times are not content
    assert project_bundle.pack(one).digest == project_bundle.pack(two).digest
    (two / "drivers" / "main" / "parallel_driver_put").chmod(0o644)
    assert project_bundle.pack(one).digest != project_bundle.pack(two).digest
    # a copy is checked with the digest alone, without building the archive
    assert [project_bundle.digest(p) for p in (one, two)] == [
        project_bundle.pack(p).digest for p in (one, two)]


def test_unpacked_it_is_the_project_without_what_runs_wrote(tmp_path):
    bundle = project_bundle.pack(_project(tmp_path / "p"))
    assert len(bundle.data) < 10_000, "the run directory was packed"
    root = project_bundle.unpack(bundle, tmp_path / "cache")
    assert root.name == bundle.digest
    assert (root / "drivers" / "main" / "parallel_driver_put").read_text() == "#!/bin/sh\necho put\n"
    assert os.access(root / "drivers" / "main" / "parallel_driver_put", os.X_OK)
    assert (root / "link").is_symlink() and os.readlink(root / "link") == "drivers"
    assert not (root / ".composer").exists() and not (root / "__pycache__").exists()


def test_workers_unpacking_at_once_share_one_copy(tmp_path):
    bundle = project_bundle.pack(_project(tmp_path / "p"))
    found: list[Path] = []
    threads = [threading.Thread(target=lambda: found.append(
        project_bundle.unpack(bundle, tmp_path / "cache"))) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 6 and len(set(found)) == 1
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [bundle.digest]
    assert project_bundle.forget(bundle.digest, tmp_path / "cache")
    assert not (tmp_path / "cache").exists()


def test_the_parsed_project_is_pointed_at_the_copy(tmp_path):
    root = _project(tmp_path / "p")
    loaded = config.load(root)
    found = templates.discover(loaded.templates_dir)
    copy = tmp_path / "copy"
    moved = project_bundle.rebase(loaded, root, copy)
    moved_templates = project_bundle.rebase(found, root, copy)
    assert moved.root == copy and moved.templates_dir == copy / "drivers"
    assert moved.services == loaded.services and moved.name == loaded.name
    command = moved_templates["main"].commands[0]
    assert command.path == copy / "drivers" / "main" / "parallel_driver_put"
    outside = dataclasses.replace(loaded, source=Path("/elsewhere/composer.toml"))
    assert project_bundle.rebase(outside, root, copy).source == Path("/elsewhere/composer.toml")


def test_gc_removes_copies_and_task_directories_no_task_holds(tmp_path):
    bundles, tasks = tmp_path / "bundles", tmp_path / "tasks"
    held = project_bundle.pack(_project(tmp_path / "held"))
    left = project_bundle.pack(_project(tmp_path / "left"))
    (tmp_path / "left" / "composer.toml").write_text("# changed\n")
    left = project_bundle.pack(tmp_path / "left")
    for bundle in (held, left):
        project_bundle.unpack(bundle, bundles)
    (tasks / "killed-worker").mkdir(parents=True)  # a task directory nobody holds
    with project_bundle.in_use(held.digest, bundles), \
            project_bundle.scratch(tasks) as running:
        (running / "run.json").write_text("{}")
        removed = project_bundle.collect(bundles, tasks)
        assert sorted(removed) == [f"task directory {tasks / 'killed-worker'}",
                                   f"unpacked project {bundles / left.digest}"]
        assert (bundles / held.digest).is_dir() and running.is_dir()
        assert not project_bundle.forget(held.digest, bundles), "removed while in use"
    assert not running.exists(), "a task's directory outlived it"
    assert project_bundle.collect(bundles, tasks) == [f"unpacked project {bundles / held.digest}"]
    assert not bundles.exists() and not tasks.exists(), "empty directories stayed in /tmp"

