"""Names of everything a run creates on this host, and removal of what dead runs left.

Imports only ``composer.errors`` and the standard library. A run of the ``local`` or
``netns`` backend claims an address block X (1..254) for its lifetime, with an abstract
Unix socket that the kernel releases when the process dies, and names all it creates
after X:

- ``local``: the nftables table ``ip composer_X`` and the cgroups ``<cgroup2>/composer/X/*``;
- ``netns``: the namespaces ``composer-X-*``, ``/etc/netns/composer-X-*`` (hosts files)
  and ``/run/composer/X/`` (hostname namespaces).

A block whose claim can be taken belongs to no live run, so whatever carries its number
is a leftover: a new run sweeps its own block before use, the reaper sweeps the blocks
of a composer that died, and ``composer gc`` sweeps every unclaimed block.
``python -m composer.clusters.leftovers X ...`` sweeps the given blocks.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from composer.errors import InfraError

__all__ = ["claim", "claim_free_block", "netns_name", "nft_table", "uts_dir", "hosts_dir",
           "cgroup_root", "sweep", "sweep_docker", "collect", "DOCKER_LABEL"]

_NETNS_DIR = Path("/run/netns")
_ETC_NETNS = Path("/etc/netns")
_RUN_DIR = Path("/run/composer")
_MNT_DETACH = 2
_libc = ctypes.CDLL(None, use_errno=True)


def netns_name(block: int, node: str) -> str:
    """Return the name of ``node``'s network namespace (``hub``: the bridge's)."""
    return f"composer-{block}-{node}"


def nft_table(block: int) -> str:
    return f"composer_{block}"


def uts_dir(block: int) -> Path:
    return _RUN_DIR / str(block)


def hosts_dir(block: int, node: str) -> Path:
    """Return the directory whose ``hosts`` ``ip netns exec`` mounts on /etc/hosts."""
    return _ETC_NETNS / netns_name(block, node)


def cgroup_root() -> Path | None:
    """Return where the cgroup2 hierarchy is mounted, or None if it is not."""
    try:
        mounts = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return None
    for line in mounts:
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            return Path(fields[0].split()[4])
    return None


def claim(block: int) -> socket.socket | None:
    """Take the claim on ``block`` if no live process holds it; None otherwise."""
    holder = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        holder.bind(f"\0composer-block-{block}")
    except OSError:
        holder.close()
        return None
    return holder


class _Turns:
    """Where the next claim starts looking: blocks are taken in turn from a random start,
    so consecutive clusters of one exploration do not reuse an address whose old
    connections linger in TIME_WAIT."""

    def __init__(self) -> None:
        self.cursor = random.randrange(254)

    def order(self) -> list[int]:
        return [(self.cursor + i) % 254 + 1 for i in range(254)]

    def taken(self, block: int) -> None:
        self.cursor = block % 254


_TURNS = _Turns()


def claim_free_block() -> tuple[socket.socket, int]:
    """Claim a free block, swept of any leftovers; return (claim, block). Blocks a dead
    run left resources in come last: they are ``composer gc``'s to report."""
    turn = _TURNS.order()
    dirty = _blocks_with_resources(tables=False)
    for block in [b for b in turn if b not in dirty] + [b for b in turn if b in dirty]:
        holder = claim(block)
        if holder is not None:
            _TURNS.taken(block)
            sweep(block, tables=False)
            return holder, block
    raise InfraError("all 254 address blocks are in use by other composer runs")


def _blocks_with_resources(tables: bool = True) -> set[int]:
    found = set()
    pattern = re.compile(r"composer-(\d+)-")
    for directory in (_NETNS_DIR, _ETC_NETNS):
        with contextlib.suppress(OSError):
            found |= {int(m.group(1)) for n in os.listdir(directory) if (m := pattern.match(n))}
    with contextlib.suppress(OSError):
        found |= {int(n) for n in os.listdir(_RUN_DIR) if n.isdigit()}
    root = cgroup_root()
    if root is not None:
        with contextlib.suppress(OSError):
            found |= {int(n) for n in os.listdir(root / "composer") if n.isdigit()}
    if tables:  # listing them runs nft and docker
        found |= set(_nft_blocks()) | _docker_blocks()
    return found


def _nft_blocks() -> list[int]:
    if not shutil.which("nft"):
        return []
    listing = subprocess.run(["nft", "list", "tables", "ip"], capture_output=True, text=True)
    return [int(m.group(1)) for m in re.finditer(r"^table ip composer_(\d+)$", listing.stdout, re.M)]


def sweep(block: int, tables: bool = True) -> list[str]:
    """Kill and remove everything named after ``block``; return what was removed.

    The caller must hold the block's claim. ``tables=False`` skips listing nftables
    tables and docker containers (a new cluster replaces its table atomically anyway,
    and the docker backend removes its containers itself).
    """
    removed = []
    prefix = netns_name(block, "")
    with contextlib.suppress(OSError):
        for name in sorted(n for n in os.listdir(_NETNS_DIR) if n.startswith(prefix)):
            pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
            _kill(int(p) for p in pids.stdout.split())
            subprocess.run(["ip", "netns", "delete", name], capture_output=True)
            removed.append(f"network namespace {name}")
    with contextlib.suppress(OSError):
        for name in sorted(n for n in os.listdir(_ETC_NETNS) if n.startswith(prefix)):
            shutil.rmtree(_ETC_NETNS / name, ignore_errors=True)
            removed.append(f"hosts file {_ETC_NETNS / name}")
    uts = uts_dir(block)
    if uts.exists():
        for path in uts.iterdir():
            _libc.umount2(str(path).encode(), _MNT_DETACH)
        shutil.rmtree(uts, ignore_errors=True)
        removed.append(f"hostname namespaces {uts}")
    root = cgroup_root()
    if root is not None and (root / "composer" / str(block)).is_dir():
        groups = root / "composer" / str(block)
        for node in sorted(p for p in groups.iterdir() if p.is_dir()):
            _empty_cgroup(node)
        with contextlib.suppress(OSError):
            groups.rmdir()
        removed.append(f"cgroups {groups}")
    if tables and block in _nft_blocks():
        subprocess.run(["nft", "delete", "table", "ip", nft_table(block)], capture_output=True)
        removed.append(f"nftables table ip {nft_table(block)}")
    if tables:
        removed += sweep_docker(block)
    return removed


#: The label every container and network of the docker backend carries: its block.
DOCKER_LABEL = "composer.block"


def _docker(*args: str) -> list[str]:
    """Run the docker CLI; return its output lines ([] without docker or an engine)."""
    if not shutil.which("docker"):
        return []
    try:
        listing = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=60)
    except subprocess.TimeoutExpired:
        return []
    return listing.stdout.split() if listing.returncode == 0 else []


def sweep_docker(block: int) -> list[str]:
    """Remove the containers, networks and volumes labelled with ``block``; return what
    went."""
    label = f"label={DOCKER_LABEL}={block}"
    removed = []
    containers = _docker("ps", "-aq", "--filter", label)
    if containers:
        _docker("rm", "-f", "-v", *containers)
        removed += [f"docker container {c}" for c in containers]
    networks = _docker("network", "ls", "-q", "--filter", label)
    if networks:
        _docker("network", "rm", *networks)
        removed += [f"docker network {n}" for n in networks]
    volumes = _docker("volume", "ls", "-q", "--filter", label)
    if volumes:
        _docker("volume", "rm", "-f", *volumes)
        removed += [f"docker volume {v}" for v in volumes]
    return removed


def _docker_blocks() -> set[int]:
    found = set()
    for kind in (["ps", "-a"], ["network", "ls"], ["volume", "ls"]):
        for value in _docker(*kind, "--filter", f"label={DOCKER_LABEL}",
                             "--format", f'{{{{.Label "{DOCKER_LABEL}"}}}}'):
            if value.isdigit():
                found.add(int(value))
    return found


def _kill(pids) -> None:
    for pid in pids:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)


def _empty_cgroup(path: Path) -> None:
    """Kill every process in the cgroup ``path`` and remove it."""
    for _ in range(100):
        try:
            pids = [int(p) for p in (path / "cgroup.procs").read_text().split()]
        except OSError:
            return
        _kill(pids)
        try:
            path.rmdir()
            return
        except OSError:
            time.sleep(0.01)  # killed processes leave the cgroup once reaped


def collect() -> list[str]:
    """Sweep every block that has resources but no live run; return what was removed."""
    removed = []
    for block in sorted(_blocks_with_resources()):
        holder = claim(block)
        if holder is None:
            continue  # a live run owns it
        try:
            removed += sweep(block)
        finally:
            holder.close()
    return removed


def _main(blocks: list[str]) -> None:
    for block in map(int, blocks):
        holder = claim(block)
        if holder is not None:
            sweep(block)
            holder.close()


if __name__ == "__main__":
    _main(sys.argv[1:])
