"""Unmanage and manage: Cinder forgets a volume or snapshot while its backend keeps the storage (a
``Leftover`` named as the LVM driver names it), and an admin takes existing storage back under a new
id (os-volume-manage, os-snapshot-manage, and the 3.8 ``manageable_*`` lists of what a backend holds).

Cinder asks the driver for the reference's size when it manages; the twin knows its backends, so an
unknown reference is refused at once (Cinder's ManageExistingInvalidReference) instead of ending in
``error_managing``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from cloudtwin.errors import ApiError
from cloudtwin.services.cinder import backends
from cloudtwin.services.cinder.resources import SNAPSHOT, Leftover, Snapshot, Volume

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

REF_KEYS = ("source-name", "source-id")


def volume_ref(volume_id: str) -> str:
    return f"volume-{volume_id}"


def snapshot_ref(snapshot_id: str) -> str:
    return f"_snapshot-{snapshot_id}"


def _pool_host(host: str) -> str:
    """``host@backend`` or ``host@backend#pool`` -> ``host@backend#pool`` (one pool per backend here)."""
    base, _, pool = host.partition("#")
    return f"{base}#{pool or base.partition('@')[2]}"


class ManageMethods:
    """A part of ``CinderState``."""

    region: "RegionState"
    volumes: dict[str, Volume]
    snapshots: dict[str, Snapshot]
    leftovers: dict[str, Leftover]
    status: Callable[[Volume], str]
    snapshot_status: Callable[[Snapshot], str]
    create_volume: Callable[..., Volume]
    delete_volume: Callable[..., None]
    _enter_kind: Callable[[Any, str, str], None]

    def _check_host(self, host: Any) -> str:
        if not isinstance(host, str) or "@" not in host:
            raise ApiError(400, "Invalid input received: host must be a cinder-volume host (host@backend#pool).")
        base, _, backend = host.partition("#")[0].partition("@")
        if base != backends.HOST or backend not in backends.backend_names(self.region):
            raise ApiError(404, f"Service {host} could not be found.")
        return _pool_host(host)

    def _leftover(self, ref: Any, host: str | None, *, snapshot: bool) -> Leftover:
        if not isinstance(ref, dict) or not any(isinstance(ref.get(k), str) for k in REF_KEYS):
            raise ApiError(400, "Invalid input received: ref must be an object with 'source-name' or 'source-id'.")
        name = next(str(ref[k]) for k in REF_KEYS if isinstance(ref.get(k), str))
        found = next((lo for lo in self.leftovers.values() if lo.name == name and lo.is_snapshot == snapshot
                      and (host is None or lo.host == host)), None)
        if found is None:
            raise ApiError(400, f"Manage existing volume failed due to invalid backend reference {ref}: the "
                                "backend holds no such volume.")
        return found

    def _keep(self, name: str, host: str, size: int, project_id: str, *, volume_id: str | None = None,
              snapshot: bool = False) -> None:
        lo = Leftover(id=self.region.cloud.new_id(), project_id=project_id, name=name, host=host, size=size,
                      volume_id=volume_id, is_snapshot=snapshot)
        self.leftovers[lo.id] = lo

    # ---- volumes
    def unmanage_volume(self, v: Volume) -> None:
        """Cinder's delete checks, then the volume leaves Cinder and its storage stays on the backend."""
        self.delete_volume(v, unmanage=True)
        if v.host:
            self._keep(volume_ref(v.id), _pool_host(v.host), v.size, v.project_id)

    def manage_volume(self, project_id: str, user_id: str, *, host: Any, ref: Any, name: str | None,
                      description: str | None, volume_type: str | None, zone: str | None,
                      metadata: dict[str, str], bootable: bool) -> Volume:
        pool_host = self._check_host(host)
        found = self._leftover(ref, pool_host, snapshot=False)
        v = self.create_volume(project_id, user_id, size=found.size, name=name, description=description,
                               volume_type=volume_type, zone=zone, metadata=metadata, state="managing")
        v.host = pool_host
        v.bootable = bootable
        del self.leftovers[found.id]
        return v

    def manageable_volumes(self, host: Any) -> list[dict[str, Any]]:
        """What a backend holds: leftovers (safe to manage) and Cinder's own volumes (not)."""
        pool_host = self._check_host(host)
        out = [{"reference": {"source-name": lo.name}, "size": lo.size, "safe_to_manage": True,
                "reason_not_safe": None, "cinder_id": None, "extra_info": None}
               for lo in self.leftovers.values() if not lo.is_snapshot and lo.host == pool_host]
        out += [{"reference": {"source-name": volume_ref(v.id)}, "size": v.size, "safe_to_manage": False,
                 "reason_not_safe": "already managed", "cinder_id": v.id, "extra_info": None}
                for v in self.volumes.values() if v.host and _pool_host(v.host) == pool_host]
        return sorted(out, key=lambda item: item["reference"]["source-name"])

    # ---- snapshots
    def unmanage_snapshot(self, s: Snapshot) -> None:
        status = self.snapshot_status(s)
        if status not in ("available", "error"):
            raise ApiError(400, f"Invalid snapshot: Snapshot status must be available or error, currently {status}.")
        if s.group_snapshot_id:
            raise ApiError(400, "Invalid snapshot: a snapshot of a group snapshot cannot be unmanaged.")
        v = self.volumes.get(s.volume_id)
        host = _pool_host(v.host) if v is not None and v.host else ""
        self._keep(snapshot_ref(s.id), host, s.size, s.project_id, volume_id=s.volume_id, snapshot=True)
        self._enter_kind(s, SNAPSHOT, "unmanaging")
        s.touch()

    def manage_snapshot(self, v: Volume, user_id: str, *, ref: Any, name: str | None, description: str | None,
                        metadata: dict[str, str]) -> Snapshot:
        found = self._leftover(ref, _pool_host(v.host) if v.host else None, snapshot=True)
        s = Snapshot(id=self.region.cloud.new_id(), project_id=v.project_id, user_id=user_id, name=name or "",
                     volume_id=v.id, size=found.size, description=description, metadata=dict(metadata))
        self.snapshots[s.id] = s
        del self.leftovers[found.id]
        self._enter_kind(s, SNAPSHOT, "creating")
        return s

    def manageable_snapshots(self, host: Any) -> list[dict[str, Any]]:
        pool_host = self._check_host(host)
        out = [{"reference": {"source-name": lo.name}, "size": lo.size, "safe_to_manage": True,
                "reason_not_safe": None, "cinder_id": None, "extra_info": None,
                "source_reference": {"source-name": volume_ref(lo.volume_id or "")}}
               for lo in self.leftovers.values() if lo.is_snapshot and lo.host == pool_host]
        for s in self.snapshots.values():
            v = self.volumes.get(s.volume_id)
            if v is not None and v.host and _pool_host(v.host) == pool_host:
                out.append({"reference": {"source-name": snapshot_ref(s.id)}, "size": s.size,
                            "safe_to_manage": False, "reason_not_safe": "already managed", "cinder_id": s.id,
                            "extra_info": None, "source_reference": {"source-name": volume_ref(v.id)}})
        return sorted(out, key=lambda item: item["reference"]["source-name"])
