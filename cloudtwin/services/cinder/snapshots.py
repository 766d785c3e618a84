"""Volume snapshots and backups: the copies Cinder keeps of a volume, each with its lifecycle
(``creating`` -> ``available`` -> ``deleting``), the volume's status while a backup runs
(``backing-up``) or a restore writes it (``restoring-backup``), and the rules that tie them to their
volume (no delete of a volume that has snapshots unless cascading, a volume from a snapshot at least
as large, an incremental backup only on top of a full one).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable

from cloudtwin.errors import ApiError
from cloudtwin.services.cinder.resources import BACKUP, SNAPSHOT, Backup, Snapshot, Volume

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState
    from cloudtwin.lifecycles import KindLifecycle

SNAPSHOT_STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "backing-up",
                     "unmanaging", "restoring")
BACKUP_STATUSES = ("creating", "available", "deleting", "error", "error_deleting", "restoring")


class SnapshotMethods:
    """A part of ``CinderState``, which provides volumes, quotas, ``status`` and the volume's ``_enter``."""

    region: "RegionState"
    volumes: dict[str, Volume]
    snapshots: dict[str, Snapshot]
    backups: dict[str, Backup]
    status: Callable[[Volume], str]
    _enter: Callable[[Volume, str], None]
    check_quota: Callable[..., None]

    def _life(self, kind: str) -> "KindLifecycle":
        return self.region.cloud.lifecycles[kind]

    def _enter_kind(self, obj: Any, kind: str, state: str) -> None:
        zone = self.volumes[obj.volume_id].availability_zone if obj.volume_id in self.volumes else ""
        self.region.twin.scheduler.enter(obj, self._life(kind), state,
                                         self.region.placement(zone, obj.project_id),
                                         self._on_snapshot_enter if kind == SNAPSHOT else self._on_backup_enter)

    def snapshot_status(self, s: Snapshot) -> str:
        return str(self._life(SNAPSHOT).attrs(s.state).get("status", s.state))

    def backup_status(self, b: Backup) -> str:
        return str(self._life(BACKUP).attrs(b.state).get("status", b.state))

    # ---- snapshots
    def snapshots_of(self, project_id: str | None) -> list[Snapshot]:
        items = [s for s in self.snapshots.values() if project_id is None or s.project_id == project_id]
        return sorted(items, key=lambda s: (s.created_at, s.id), reverse=True)

    def snapshots_of_volume(self, volume_id: str) -> list[Snapshot]:
        return [s for s in self.snapshots.values() if s.volume_id == volume_id]

    def get_snapshot(self, project_id: str | None, snapshot_id: str) -> Snapshot:
        s = self.snapshots.get(snapshot_id)
        if s is None or (project_id is not None and s.project_id != project_id):
            raise ApiError(404, f"Snapshot {snapshot_id} could not be found.")
        return s

    def create_snapshot(self, v: Volume, user_id: str, *, name: str | None, description: str | None,
                        force: bool, metadata: dict[str, str]) -> Snapshot:
        status = self.status(v)
        if status not in ("available", "in-use") or (status == "in-use" and not force):
            raise ApiError(400, f"Invalid volume: Volume {v.id} status must be available, but current status "
                                f"is: {status}.")
        self.check_snapshot_quota(v.project_id, v.size)
        s = Snapshot(id=self.region.cloud.new_id(), project_id=v.project_id, user_id=user_id, name=name or "",
                     volume_id=v.id, size=v.size, description=description, metadata=dict(metadata))
        self.snapshots[s.id] = s
        self._enter_kind(s, SNAPSHOT, "creating")
        return s

    def check_snapshot_quota(self, project_id: str, size: int) -> None:
        limit = self.quota("snapshots", project_id)  # type: ignore[attr-defined]
        used = sum(1 for s in self.snapshots.values() if s.project_id == project_id)
        if limit >= 0 and used + 1 > limit:
            raise ApiError(413, f"SnapshotLimitExceeded: Maximum number of snapshots allowed ({limit}) exceeded")
        self.check_quota(project_id, gigabytes=size)

    def delete_snapshot(self, s: Snapshot, *, force: bool = False) -> None:
        status = self.snapshot_status(s)
        if status == "deleting" and (not force or s.due_at is not None):
            return
        if not force and (status not in ("available", "error", "error_deleting") or s.group_snapshot_id):
            raise ApiError(400, f"Invalid snapshot: Snapshot status must be available or error and must not be "
                                f"part of a group, currently {status}.")
        if any(v.snapshot_id == s.id and self.status(v) == "creating" for v in self.volumes.values()):
            raise ApiError(400, f"Invalid snapshot: Snapshot {s.id} is in use by a volume being created.")
        self._enter_kind(s, SNAPSHOT, "deleting")
        s.touch()

    def reset_snapshot_status(self, s: Snapshot, status: str, progress: str | None = None) -> None:
        if status not in SNAPSHOT_STATUSES:
            raise ApiError(400, f"Invalid input received: Invalid status: {status}")
        self.region.twin.scheduler.cancel(s)
        s.state = status
        if progress is not None:
            s.progress = progress
        s.touch()

    def _on_snapshot_enter(self, s: Snapshot, state: str, message: str) -> None:
        if state == "DELETED":
            self.snapshots.pop(s.id, None)
            s.removed = True
            return
        if state == "available":
            s.progress = "100%"
        if state.startswith("error"):
            s.error = message
        s.touch()

    # ---- backups
    def backups_of(self, project_id: str | None) -> list[Backup]:
        items = [b for b in self.backups.values() if project_id is None or b.project_id == project_id]
        return sorted(items, key=lambda b: (b.created_at, b.id), reverse=True)

    def get_backup(self, project_id: str | None, backup_id: str) -> Backup:
        b = self.backups.get(backup_id)
        if b is None or (project_id is not None and b.project_id != project_id):
            raise ApiError(404, f"Backup {backup_id} could not be found.")
        return b

    def create_backup(self, v: Volume, user_id: str, *, name: str | None, description: str | None,
                      container: str | None, incremental: bool, force: bool, snapshot_id: str | None,
                      metadata: dict[str, str]) -> Backup:
        status = self.status(v)
        if status not in ("available", "in-use") or (status == "in-use" and not force):
            raise ApiError(400, f"Invalid volume: Volume to be backed up must be available or in-use, but the "
                                f"current status is \"{status}\".")
        if snapshot_id is not None:
            snap = self.get_snapshot(v.project_id, snapshot_id)
            if snap.volume_id != v.id or self.snapshot_status(snap) != "available":
                raise ApiError(400, f"Invalid snapshot: Snapshot {snapshot_id} must be available and of this "
                                    "volume.")
        parent = None
        if incremental:
            done = [b for b in self.backups.values() if b.volume_id == v.id and self.backup_status(b) == "available"]
            if not done:
                raise ApiError(400, "Invalid backup: No backups available to do an incremental backup.")
            parent = max(done, key=lambda b: b.data_timestamp)
        limit = self.quota("backups", v.project_id)  # type: ignore[attr-defined]
        if limit >= 0 and sum(1 for b in self.backups.values() if b.project_id == v.project_id) + 1 > limit:
            raise ApiError(413, f"BackupLimitExceeded: Maximum number of backups allowed ({limit}) exceeded")
        b = Backup(id=self.region.cloud.new_id(), project_id=v.project_id, user_id=user_id, name=name or "",
                   volume_id=v.id, size=v.size, description=description, availability_zone=v.availability_zone,
                   container=container or "volumebackups", snapshot_id=snapshot_id,
                   parent_id=parent.id if parent else None, is_incremental=parent is not None,
                   metadata=dict(metadata), data_timestamp=time.time(),
                   volume_metadata=dict(v.metadata))
        self.backups[b.id] = b
        self._enter_kind(b, BACKUP, "creating")
        self._enter(v, "backing-up_in_use" if status == "in-use" else "backing-up")
        return b

    def has_dependents(self, b: Backup) -> bool:
        return any(o.parent_id == b.id for o in self.backups.values())

    def delete_backup(self, b: Backup, *, force: bool = False) -> None:
        status = self.backup_status(b)
        if status == "deleting":
            return
        if not force and status not in ("available", "error"):
            raise ApiError(400, f"Invalid backup: Backup status must be available or error, currently {status}.")
        if self.has_dependents(b):
            raise ApiError(400, "Invalid backup: Incremental backups exist for this backup.")
        self._enter_kind(b, BACKUP, "deleting")
        b.touch()

    def restore_backup(self, b: Backup, target: Volume) -> None:
        if self.backup_status(b) != "available":
            raise ApiError(400, f"Invalid backup: Backup status must be available, currently "
                                f"{self.backup_status(b)}.")
        if self.status(target) != "available":
            raise ApiError(400, f"Invalid volume: Volume to be restored to must be available, currently "
                                f"{self.status(target)}.")
        if target.size < b.size:
            raise ApiError(400, f"Invalid volume: volume size {target.size} is smaller than backup size {b.size}.")
        b.restore_volume_id = target.id
        target.metadata = {**target.metadata, **b.volume_metadata}    # the backup carries the volume's metadata
        self._enter_kind(b, BACKUP, "restoring")
        self._enter(target, "restoring-backup")

    def reset_backup_status(self, b: Backup, status: str) -> None:
        if status not in ("available", "error"):
            raise ApiError(400, f"Invalid input received: Invalid backup status: {status}")
        self.region.twin.scheduler.cancel(b)
        b.state = status
        b.touch()

    def import_backup(self, project_id: str, user_id: str, record: dict[str, Any]) -> Backup:
        bid = str(record.get("id") or self.region.cloud.new_id())
        if bid in self.backups:
            raise ApiError(400, f"Invalid backup: Backup {bid} already exists.")
        b = Backup(id=bid, project_id=project_id, user_id=user_id, name=str(record.get("display_name") or ""),
                   description=record.get("display_description"), volume_id=str(record.get("volume_id", "")),
                   size=int(record.get("size", 1) or 1), availability_zone=str(record.get("availability_zone", "")),
                   container=record.get("container"), data_timestamp=time.time())
        self.backups[b.id] = b
        self._enter_kind(b, BACKUP, "available")
        return b

    def _on_backup_enter(self, b: Backup, state: str, message: str) -> None:
        if state == "DELETED":
            self.backups.pop(b.id, None)
            b.removed = True
            return
        if state.startswith("error"):
            b.fail_reason = message
        if state == "available":
            b.restore_volume_id = None
        b.touch()
