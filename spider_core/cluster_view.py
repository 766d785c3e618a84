"""The cluster's locks and replicas as ``/spider/splockinfo`` and ``/spider/metrics`` show them.

Read from the shared MetaDB (``splocks``, ``splock_waiters``, ``replicas``), so any replica answers
for all of them: which replica holds each key, for which request, since when, and who waits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from spider_core.splock import INFO_FAMILIES

if TYPE_CHECKING:
    from spider_core.services.context import Spider

_MEMBERS = {"vpc": ("vpc", "subnet")}


async def cluster_view(sp: "Spider") -> dict[str, Any]:
    store, lease = sp.replica.store, sp.replica.lease
    holders, waiters = await store.lock_rows()
    keys: dict[tuple[str, str, str], dict[str, Any]] = {}

    def entry(row: tuple) -> dict[str, Any]:
        key = (row[0], row[1], row[2])
        found = keys.get(key)
        if found is None:
            found = keys[key] = {"family": row[0], "connection": row[1], "name": row[2], "holders": [], "waiters": []}
        return found

    for row in holders:
        entry(row)["holders"].append(_who(row, "held_for_ms"))
    for row in waiters:
        entry(row)["waiters"].append(_who(row, "waited_for_ms"))
    replicas = [{"id": r[0], "url": r[1], "last_seen_s": round(r[2], 3), "alive": bool(r[3])}
                for r in await store.replicas(lease)]
    return {"replica": sp.replica.id, "lease_s": lease, "replicas": replicas, "locks": list(keys.values())}


def _who(row: tuple, age_key: str) -> dict[str, Any]:
    return {"replica": row[3], "mode": "write" if row[4] else "read", "request": row[5],
            age_key: round(row[6] * 1000.0, 3)}


def info_strings(view: dict[str, Any]) -> list[str]:
    """CB-Spider's four ``/splockinfo`` strings, cluster-wide: ``(conn:name, replica:count)`` per holder replica."""
    out = []
    for family, lock_name in INFO_FAMILIES:
        parts = [f"<{lock_name}> "]
        for entry in view["locks"]:
            if entry["family"] not in _MEMBERS.get(family, (family,)):
                continue
            per_replica: dict[str, int] = {}
            for who in entry["holders"] + entry["waiters"]:
                per_replica[who["replica"]] = per_replica.get(who["replica"], 0) + 1
            for replica, count in per_replica.items():
                parts.append(f"({entry['connection']}:{entry['name']}, {replica}:{count}) ")
        out.append("".join(parts))
    return out
