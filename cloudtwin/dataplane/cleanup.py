"""Nothing a data plane made may outlive its twin.

Each running twin registers ``/run/cloudtwin/<prefix>.json`` (owner pid and that process's start time,
so a recycled pid is not mistaken for the owner) *before* it creates any namespace. A stopping twin
deletes its namespaces and its file; a twin that died without stopping (SIGKILL, a crash) leaves both,
and the next twin's start, or ``spider twin --dataplane-cleanup``, removes every namespace whose prefix
has no live owner. Deleting a namespace deletes the veth ends, bridges and nft tables inside it, and
a veth dies with either end. A twin's machines leave a tmpfs (``/run/cloudtwin/<prefix>``) and
cgroups (``cloudtwin/<prefix>``): their processes died with the twin (see ``machines``), the cleanup
kills any left and removes both.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Any

from cloudtwin.dataplane.netns import (PREFIX_RE, delete_host_links_sync, delete_namespaces_sync, list_namespaces,
                                       owner_prefix)

log = logging.getLogger("cloudtwin.dataplane")
REGISTRY_DIR = Path(os.environ.get("CLOUDTWIN_RUN_DIR", "/run/cloudtwin"))


def process_start(pid: int) -> str | None:
    """Field 22 of ``/proc/<pid>/stat`` (start time in clock ticks), None when the process is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return stat.rsplit(")", 1)[-1].split()[19]


def register(prefix: str) -> Path:
    REGISTRY_DIR.mkdir(parents=True, exist_ok=True)
    path = REGISTRY_DIR / f"{prefix}.json"
    tmp = path.with_suffix(".tmp")
    pid = os.getpid()
    tmp.write_text(json.dumps({"prefix": prefix, "pid": pid, "pid_start": process_start(pid),
                               "started_at": time.time()}))
    tmp.replace(path)
    return path


def unregister(prefix: str) -> None:
    try:
        (REGISTRY_DIR / f"{prefix}.json").unlink()
    except FileNotFoundError:
        pass


def registrations() -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if not REGISTRY_DIR.is_dir():
        return out
    for path in REGISTRY_DIR.glob("*.json"):
        try:
            doc = json.loads(path.read_text())
        except (OSError, ValueError):
            doc = {}
        prefix = path.stem
        if PREFIX_RE.match(prefix):
            out[prefix] = doc if isinstance(doc, dict) else {}
    return out


def owner_alive(doc: dict[str, Any]) -> bool:
    pid = doc.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    started = process_start(pid)
    return started is not None and (doc.get("pid_start") is None or started == doc.get("pid_start"))


def live_prefixes() -> set[str]:
    return {p for p, doc in registrations().items() if owner_alive(doc)}


def prefixes_in_use() -> set[str]:
    """Registered prefixes plus those of existing namespaces and machine leftovers (a new prefix must
    avoid all of them)."""
    from cloudtwin.dataplane import machines

    found = {p for p in map(owner_prefix, list_namespaces()) if p}
    return found | set(registrations()) | machines.stale_prefixes(REGISTRY_DIR)


def namespaces_of(prefix: str) -> list[str]:
    """The fabric namespace first: deleting it removes every bridge and fabric-side veth at once."""
    names = [n for n in list_namespaces() if owner_prefix(n) == prefix]
    return sorted(names, key=lambda n: (not n.endswith("-fab"), n))


def remove_prefix(prefix: str) -> int:
    """Everything of ``prefix``: its machines (processes, cgroups, tmpfs) first, then its namespaces."""
    from cloudtwin.dataplane import cgroups, machines

    machines.remove_prefix(cgroups.detect(), REGISTRY_DIR, prefix)
    delete_host_links_sync(prefix)
    names = namespaces_of(prefix)
    delete_namespaces_sync(names)
    unregister(prefix)
    return len(names)


def cleanup_stale(keep: set[str] | None = None) -> dict[str, Any]:
    """Remove the objects of every prefix without a live owner (dead pid, or no registry file at all)."""
    seen = prefixes_in_use()
    # read the owners *after* the namespaces: a twin registers before it makes its first namespace, so
    # every prefix seen above whose owner is alive is in this second read
    live = live_prefixes() | (keep or set())
    stale = {p for p in seen if p not in live}
    removed = {p: remove_prefix(p) for p in sorted(stale)}
    if removed:
        log.warning("data plane: removed %d namespaces left by dead twins (%s)", sum(removed.values()),
                    ", ".join(sorted(removed)))
    return {"prefixes": sorted(removed), "namespaces": sum(removed.values()), "live": sorted(live - (keep or set()))}
