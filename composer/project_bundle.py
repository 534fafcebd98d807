"""A project as a content-hashed archive, for machines that do not share this filesystem.

An exploration on a Ray cluster (``composer.ray_jobs``) sends the project directory once
per run as bytes named by their hash; a worker machine unpacks it once per hash (a
second run of an unchanged project reuses it) and points the parsed project at the
copy (``rebase``), so every command-line override made here holds there too. What a run
writes (``.composer``) and caches (``__pycache__``, ``.git``) stay home. A run removes
its copies at its end; ``composer gc`` removes those of runs whose head died (a task
holds its copy with a shared lock, so neither removes one in use). Imports nothing of
composer.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import io
import os
import shutil
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

__all__ = ["Bundle", "pack", "digest", "unpack", "in_use", "forget", "scratch",
           "collect", "collect_tasks", "after_run", "rebase", "BUNDLES"]

#: a worker machine's composer state, while tasks of some run use it
WORKER = Path(tempfile.gettempdir()) / ".composer-ray"
#: where worker machines keep unpacked projects, one directory per content hash
BUNDLES = WORKER / "bundles"
#: where tasks run their timelines on worker machines, one directory per task
TASKS = WORKER / "tasks"
_LEFT_HOME = {".composer", "__pycache__", ".git", ".pytest_cache"}

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Bundle:
    """A project directory's files as a gzipped tar, and its content hash."""

    digest: str
    data: bytes
    #: the directory it was packed from, on the machine that packed it
    root: Path


def pack(root: Path) -> Bundle:
    """Archive ``root`` (file modes kept, symbolic links as links); the digest covers
    every name, mode and content, so equal projects get equal digests."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", compresslevel=6) as tar:
        found = _digest(root, tar)
    return Bundle(found, buffer.getvalue(), root)


def digest(root: Path) -> str:
    """``pack(root).digest`` without building the archive: whether a copy elsewhere is
    still current costs one read of the files, not their compression."""
    return _digest(root, None)


def _digest(root: Path, tar: tarfile.TarFile | None) -> str:
    found = hashlib.sha256()
    with tarfile.open(fileobj=io.BytesIO(), mode="w") as scratch:  # gettarinfo only
        for path in sorted(_files(root)):
            relative = path.relative_to(root).as_posix()
            info = (tar or scratch).gettarinfo(str(path), arcname=relative)
            info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
            found.update(f"{relative}\0{info.mode}\0{info.linkname}\0".encode())
            if info.isfile():
                data = path.read_bytes()
                found.update(hashlib.sha256(data).digest())
                if tar is not None:
                    tar.addfile(info, io.BytesIO(data))
            elif tar is not None:
                tar.addfile(info)
    return found.hexdigest()[:24]


def _files(root: Path) -> list[Path]:
    found = []
    for directory, subdirs, files in os.walk(root):
        here = Path(directory)
        links = [d for d in subdirs if (here / d).is_symlink()]  # kept as links
        subdirs[:] = [d for d in subdirs if d not in _LEFT_HOME and d not in links]
        found += [here / name for name in links + files]
    return found


def unpack(bundle: Bundle, under: Path = BUNDLES) -> Path:
    """Return where ``bundle`` is unpacked on this machine, unpacking it the first time
    (into a temporary directory renamed into place, so concurrent workers never see half
    a project)."""
    target = under / bundle.digest
    if target.is_dir():
        return target
    partial = _make(lambda: Path(tempfile.mkdtemp(prefix=f".{bundle.digest}-", dir=under)),
                    under)
    try:
        with tarfile.open(fileobj=io.BytesIO(bundle.data), mode="r:gz") as tar:
            tar.extractall(partial, filter="tar")
        os.rename(partial, target)
    except OSError:
        if not target.is_dir():  # not another worker's rename winning the race
            raise
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return target


@contextlib.contextmanager
def in_use(digest: str, under: Path = BUNDLES) -> Iterator[None]:
    """Hold a bundle while a task uses it: ``forget`` and ``collect`` leave it alone."""
    with _make(lambda: open(under / f"{digest}.lock", "a"), under) as lock:
        fcntl.flock(lock, fcntl.LOCK_SH)
        yield


def forget(digest: str, under: Path = BUNDLES) -> bool:
    """Remove an unpacked bundle no task holds; return whether one was removed."""
    lock_path = under / f"{digest}.lock"
    if not (under / digest).is_dir():
        return False
    with open(lock_path, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a task of another run uses it; that run removes it
        shutil.rmtree(under / digest, ignore_errors=True)
        lock_path.unlink(missing_ok=True)
    _remove_if_empty(under)
    return True


@contextlib.contextmanager
def scratch(under: Path = TASKS) -> Iterator[Path]:
    """A task's own directory, locked while the task runs and removed after it: one a
    killed worker left is unlocked, and ``collect`` removes it."""
    directory = _make(lambda: Path(tempfile.mkdtemp(dir=under)), under)
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield directory
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        os.close(fd)
        _remove_if_empty(under)


def _make(make: Callable[[], T], under: Path) -> T:
    """``make()`` something in ``under``, creating it first: another task may remove
    ``under`` (empty) in between, so try again then."""
    for _ in range(10):
        under.mkdir(parents=True, exist_ok=True)
        try:
            return make()
        except FileNotFoundError:
            continue
    return make()


def _remove_if_empty(directory: Path) -> None:
    """Nothing stays in /tmp once no run uses it (a task making it again wins)."""
    for empty in (directory, directory.parent):
        try:
            empty.rmdir()
        except OSError:
            return


def collect(bundles: Path = BUNDLES, tasks: Path = TASKS) -> list[str]:
    """Remove every unpacked bundle and task directory no task holds (what a run whose
    head died, or a killed worker, left on a worker machine); return what was removed,
    for ``composer gc``."""
    removed = []
    if bundles.is_dir():
        removed += [f"unpacked project {path}" for path in sorted(bundles.iterdir())
                    if path.is_dir() and not path.name.startswith(".")
                    and forget(path.name, bundles)]
    return removed + collect_tasks(tasks)


def after_run(digest: str, bundles: Path = BUNDLES, tasks: Path = TASKS) -> None:
    """What a run removes from each worker machine at its end: its project copy, and
    the directories of its tasks whose worker was killed."""
    forget(digest, bundles)
    collect_tasks(tasks)


def collect_tasks(tasks: Path = TASKS) -> list[str]:
    """Remove the task directories no task holds; return what was removed."""
    removed = []
    for path in sorted(tasks.iterdir()) if tasks.is_dir() else []:
        fd = os.open(path, os.O_RDONLY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a task runs in it
        finally:
            os.close(fd)
        shutil.rmtree(path, ignore_errors=True)
        removed.append(f"task directory {path}")
    _remove_if_empty(tasks)
    return removed


def rebase(value: T, old: Path, new: Path) -> T:
    """``value`` (dataclasses, tuples, lists, dicts, paths) with every path at or under
    ``old`` moved to the same place under ``new``."""
    return _rebase(value, old, new)


def _rebase(value: Any, old: Path, new: Path) -> Any:
    if isinstance(value, Path):
        return new / value.relative_to(old) if value.is_relative_to(old) else value
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {f.name: _rebase(getattr(value, f.name), old, new)
                   for f in dataclasses.fields(value) if f.init}
        return dataclasses.replace(value, **changes)
    if isinstance(value, (tuple, list)):
        return type(value)(_rebase(v, old, new) for v in value)
    if isinstance(value, dict):
        return {k: _rebase(v, old, new) for k, v in value.items()}
    return value
