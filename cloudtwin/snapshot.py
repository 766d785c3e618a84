"""Save and restore a twin's state to a JSON file, atomically.

What is saved: every cloud (name, profile, projects, id counter) and every object of every region,
table by table (each service's state class lists its tables in ``TABLES``), including pending
transitions as "due in N seconds". What is not: tokens (clients log in again; keystoneauth does so on
a 401 by itself), fault rules (they are time-windowed; load a scenario again) and the event log.

The file is written to a temporary file in the same directory, fsynced, then renamed over the old
one: a crash mid-write leaves the previous snapshot intact.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from cloudtwin.twin import Twin

FORMAT = "cloudtwin-snapshot"
VERSION = 1


class SnapshotError(ValueError):
    pass


def dump(twin: "Twin") -> dict[str, Any]:
    now = time.monotonic()
    clouds = []
    for cloud in twin.clouds.values():
        regions: dict[str, Any] = {}
        for rname, region in cloud.regions.items():
            services: dict[str, Any] = {}
            for svc, state in region.services.items():
                tables: dict[str, list[dict[str, Any]]] = {}
                for attr in getattr(state, "TABLES", {}):
                    rows = []
                    for obj in getattr(state, attr).values():
                        row = dataclasses.asdict(obj)
                        row["due_in"] = (max(0.0, obj.due_at - now) if obj.due_at is not None else None)
                        for k in ("due_at", "transitions", "removed"):
                            row.pop(k, None)
                        rows.append(row)
                    tables[attr] = rows
                services[svc] = tables
            regions[rname] = services
        clouds.append({"name": cloud.name, "profile": cloud.profile.name, "ids": cloud._ids,
                       "projects": [p.name for p in cloud.projects.values()], "regions": regions})
    return {"format": FORMAT, "version": VERSION, "saved_at": time.time(), "seed": twin.seed, "clouds": clouds}


def save(twin: "Twin", path: str | os.PathLike[str]) -> dict[str, Any]:
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    doc = dump(twin)
    data = json.dumps(doc, separators=(",", ":")).encode()
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    try:
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass
    objects = sum(len(rows) for c in doc["clouds"] for r in c["regions"].values()
                  for t in r.values() for rows in t.values())
    return {"path": str(target), "bytes": len(data), "clouds": len(doc["clouds"]), "objects": objects}


def load(twin: "Twin", path: str | os.PathLike[str]) -> dict[str, Any]:
    """Replace the twin's clouds with the snapshot's. All or nothing: a bad file changes nothing."""
    try:
        doc = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise SnapshotError(f"snapshot {path} does not exist") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise SnapshotError(f"snapshot {path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise SnapshotError(f"{path} is not a Cloud-Twin snapshot")
    if doc.get("version") != VERSION:
        raise SnapshotError(f"{path}: snapshot version {doc.get('version')} is not supported (want {VERSION})")
    from cloudtwin.clouds import Cloud

    built: dict[str, Cloud] = {}
    pending: list[tuple[Any, Any, Any, str, float, Any]] = []
    try:
        for cdoc in doc["clouds"]:
            cloud = Cloud(twin, cdoc["name"], twin.profiles.get(cdoc["profile"]))
            for pname in cdoc.get("projects", []):
                cloud.project(pname, create=True)
            for rname, services in cdoc["regions"].items():
                region = cloud.regions.get(rname)
                if region is None:
                    raise SnapshotError(f"cloud {cloud.name}: region {rname} is not in profile {cloud.profile.name}")
                for svc, tables in services.items():
                    state = region.services.get(svc)
                    if state is None:
                        raise SnapshotError(f"cloud {cloud.name}: unknown service state '{svc}'")
                    for attr, rows in tables.items():
                        cls, kind = state.TABLES[attr]
                        table = getattr(state, attr)
                        table.clear()
                        for row in rows:
                            row = dict(row)
                            due_in = row.pop("due_in", None)
                            due_state = row.get("due_state")
                            obj = cls(**row)
                            table[obj.id] = obj
                            if due_state and due_in is not None and kind:
                                pending.append((obj, state, kind, due_state, due_in, region))
                    state.rebuild()
            cloud.skip_ids(int(cdoc.get("ids", 0)))
            built[cloud.name] = cloud
    except SnapshotError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise SnapshotError(f"{path}: malformed snapshot ({type(exc).__name__}: {exc})") from None
    for old in twin.clouds.values():
        old.reset()
    twin.clouds = built
    for cloud in built.values():
        twin.index_cloud(cloud)
    twin.tokens.clear()
    for obj, state, kind, due_state, due_in, region in pending:
        life = region.cloud.lifecycles[kind]
        placement = region.placement(getattr(obj, "availability_zone", "") or "", obj.project_id)
        twin.scheduler.schedule(obj, life, placement, due_state, due_in, "", state.on_enter_for(kind))
    objects = sum(len(rows) for c in doc["clouds"] for r in c["regions"].values()
                  for t in r.values() for rows in t.values())
    twin.events.record("twin.restored", detail={"path": str(path), "clouds": len(built), "objects": objects})
    return {"path": str(path), "clouds": len(built), "objects": objects, "pending_transitions": len(pending)}
