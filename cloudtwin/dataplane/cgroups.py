"""One cgroup per data-plane VM: membership, freezing and killing on the unified (v2) hierarchy, the
flavor's vCPUs and RAM as limits.

Two host layouts exist. On a pure cgroup v2 host (``/sys/fs/cgroup/cgroup.controllers``) everything is
v2: ``cpu.max`` and ``memory.max`` on the VM's group. On a hybrid host (v1 controllers, v2 mounted at
``/sys/fs/cgroup/unified`` with none of them), v2 still provides ``cgroup.freeze``, ``cgroup.kill`` and
``cpu.stat``, while the limits go to the v1 ``cpu`` and ``memory`` hierarchies; the VM's processes join
all three. Either way the tree is ``cloudtwin/<prefix>/vm<N>`` in each hierarchy, so a dead twin's
groups are found by prefix and removed.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("cloudtwin.dataplane")

ROOT = Path(os.environ.get("CLOUDTWIN_CGROUP_ROOT", "/sys/fs/cgroup"))
TOP = "cloudtwin"
CPU_PERIOD_US = 100_000


@dataclass(frozen=True)
class Layout:
    """Where each job is done on this host."""

    unified: Path                  # v2: membership, freeze, kill, cpu.stat
    cpu: Path | None               # where cpu limits go (== unified on pure v2)
    memory: Path | None            # where memory limits go (== unified on pure v2)
    pure_v2: bool

    @property
    def hierarchies(self) -> list[Path]:
        out = [self.unified]
        for p in (self.cpu, self.memory):
            if p is not None and p not in out:
                out.append(p)
        return out


def detect(root: Path = ROOT) -> Layout | None:
    """The host's cgroup layout, or None when no writable v2 hierarchy exists."""
    if (root / "cgroup.controllers").exists():
        controllers = (root / "cgroup.controllers").read_text().split()
        return Layout(root, root if "cpu" in controllers else None, root if "memory" in controllers else None, True)
    unified = root / "unified"
    if not (unified / "cgroup.procs").exists():
        return None
    cpu = next((root / n for n in ("cpu", "cpu,cpuacct") if (root / n / "cgroup.procs").exists()), None)
    memory = root / "memory" if (root / "memory" / "cgroup.procs").exists() else None
    return Layout(unified, cpu, memory, False)


def _write(path: Path, value: str) -> bool:
    try:
        path.write_text(value)
        return True
    except OSError as exc:
        log.debug("cgroup: writing %s to %s failed: %s", value, path, exc)
        return False


def _enable_controllers(layout: Layout, group: Path) -> None:
    """On pure v2, a group's children get cpu and memory only if every ancestor delegates them."""
    if not layout.pure_v2:
        return
    chain = []
    p = group
    while p != layout.unified and layout.unified in p.parents:
        chain.append(p.parent)
        p = p.parent
    for parent in reversed(chain):
        _write(parent / "cgroup.subtree_control", "+cpu +memory")


class VmCgroup:
    """The cgroups of one VM (``cloudtwin/<prefix>/<name>`` in every hierarchy the layout uses)."""

    def __init__(self, layout: Layout, prefix: str, name: str) -> None:
        self.layout = layout
        self.rel = Path(TOP) / prefix / name
        self.dirs = [h / self.rel for h in layout.hierarchies]

    @property
    def unified(self) -> Path:
        return self.layout.unified / self.rel

    def create(self, vcpus: int, ram_mib: int) -> None:
        for d in self.dirs:
            d.mkdir(parents=True, exist_ok=True)
        _enable_controllers(self.layout, self.unified)
        if vcpus > 0 and self.layout.cpu is not None:
            quota = vcpus * CPU_PERIOD_US
            if self.layout.pure_v2:
                _write(self.layout.cpu / self.rel / "cpu.max", f"{quota} {CPU_PERIOD_US}")
            else:
                _write(self.layout.cpu / self.rel / "cpu.cfs_period_us", str(CPU_PERIOD_US))
                _write(self.layout.cpu / self.rel / "cpu.cfs_quota_us", str(quota))
        if ram_mib > 0 and self.layout.memory is not None:
            limit = str(ram_mib * 1024 * 1024)
            name = "memory.max" if self.layout.pure_v2 else "memory.limit_in_bytes"
            _write(self.layout.memory / self.rel / name, limit)

    def procs_files(self) -> list[str]:
        """The files a process writes its pid to, to join every hierarchy."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def pids(self) -> list[int]:
        try:
            return [int(x) for x in (self.unified / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def freeze(self, frozen: bool = True) -> None:
        _write(self.unified / "cgroup.freeze", "1" if frozen else "0")

    def frozen(self) -> bool:
        try:
            return "frozen 1" in (self.unified / "cgroup.events").read_text()
        except OSError:
            return False

    def kill(self, timeout: float = 2.0) -> bool:
        """Kill every process of the VM (thawing first: a frozen process dies only once thawed).
        True when the group is empty afterwards."""
        self.freeze(False)
        if not _write(self.unified / "cgroup.kill", "1"):
            for pid in self.pids():
                try:
                    os.kill(pid, 9)
                except OSError:
                    pass
        end = time.monotonic() + timeout
        while self.pids():
            if time.monotonic() > end:
                return False
            time.sleep(0.01)
        return True

    def remove(self) -> None:
        self.kill()
        for d in self.dirs:
            try:
                d.rmdir()
            except OSError:
                pass

    def memory_bytes(self) -> int | None:
        if self.layout.memory is None:
            return None
        name = "memory.current" if self.layout.pure_v2 else "memory.usage_in_bytes"
        try:
            return int((self.layout.memory / self.rel / name).read_text())
        except (OSError, ValueError):
            return None

    def cpu_usec(self) -> int | None:
        try:
            for line in (self.unified / "cpu.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "usage_usec":
                    return int(value)
        except (OSError, ValueError):
            return None
        return None


def remove_prefix(layout: Layout | None, prefix: str) -> int:
    """Kill and remove every VM group of ``prefix`` (a dead twin's, or our own at stop)."""
    if layout is None:
        return 0
    removed = 0
    base = Path(TOP) / prefix
    names = set()
    for h in layout.hierarchies:
        if (h / base).is_dir():
            names.update(p.name for p in (h / base).iterdir() if p.is_dir())
    for name in sorted(names):
        VmCgroup(layout, prefix, name).remove()
        removed += 1
    for h in layout.hierarchies:
        try:
            (h / base).rmdir()
        except OSError:
            pass
    return removed


def prefixes(layout: Layout | None) -> set[str]:
    if layout is None:
        return set()
    out: set[str] = set()
    for h in layout.hierarchies:
        top = h / TOP
        if top.is_dir():
            out.update(p.name for p in top.iterdir() if p.is_dir())
    return out
