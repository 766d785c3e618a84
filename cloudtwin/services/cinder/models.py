"""Cinder v3 state for one region: volumes with their lifecycle, volume types (from the profile) and
quotas. Attachments, the part Nova drives, are in ``attachments.py``.

No HTTP here: handlers parse and render; this module enforces Cinder's rules and raises ``ApiError``
with Cinder's messages. Nothing here imports Nova: Nova calls in (boot from volume, attach, server
gone), as the real Nova calls Cinder's API.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Iterator

from cloudtwin.ids import stable_id
from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource
from cloudtwin.services.cinder import backends
from cloudtwin.services.cinder.attachments import AttachmentMethods
from cloudtwin.services.cinder.groups import GroupMethods, build_group_types
from cloudtwin.services.cinder.manage import ManageMethods
from cloudtwin.services.cinder.resources import (BACKUP, GIB, GROUP, GROUP_SNAPSHOT, KIND, SNAPSHOT, Attachment,
                                                 Backup, Group, GroupSnapshot, GroupType, Leftover, Message, QosSpec, Snapshot,
                                                 Transfer, Volume, VolumeType)
from cloudtwin.services.cinder.snapshots import SnapshotMethods
from cloudtwin.services.cinder.transfers import TransferMethods
from cloudtwin.services.cinder.types import TypeMethods

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState
    from cloudtwin.lifecycles import KindLifecycle

# the statuses a plain delete accepts, in the words of Cinder's refusal
DELETE_REFUSED = ("Invalid volume: Volume status must be available or error or error_restoring or error_extending "
                  "or error_managing and must not be migrating, attached, belong to a group, have snapshots or be "
                  "disassociated from snapshots after volume transfer.")
QUOTA_NAMES = ("volumes", "gigabytes", "snapshots", "backups", "backup_gigabytes", "per_volume_gigabytes", "groups")
QUOTA_DEFAULTS = {"volumes": 10, "gigabytes": 1000, "snapshots": 10, "backups": 10, "backup_gigabytes": 1000,
                  "per_volume_gigabytes": -1, "groups": 10}


def build_volume_types(cloud_name: str, specs: tuple[dict[str, Any], ...]) -> dict[str, VolumeType]:
    out: dict[str, VolumeType] = {}
    for spec in specs:
        vid = str(spec.get("id") or stable_id("volume_type", cloud_name, spec["name"]))
        out[vid] = VolumeType(id=vid, name=str(spec["name"]), description=spec.get("description"),
                              is_public=bool(spec.get("is_public", True)),
                              extra_specs={str(k): str(v) for k, v in (spec.get("extra_specs") or {}).items()},
                              builtin=True)
    return out


class CinderState(AttachmentMethods, SnapshotMethods, TransferMethods, TypeMethods, GroupMethods, ManageMethods):
    """One region's block storage."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {
        "volumes": (Volume, KIND), "attachments": (Attachment, ""), "snapshots": (Snapshot, SNAPSHOT),
        "backups": (Backup, BACKUP), "transfers": (Transfer, ""), "qos_specs": (QosSpec, ""),
        "messages": (Message, ""), "groups": (Group, GROUP), "group_snapshots": (GroupSnapshot, GROUP_SNAPSHOT),
        "leftovers": (Leftover, "")}

    def __init__(self, region: "RegionState") -> None:
        self.region = region
        self.volumes: dict[str, Volume] = {}
        self.attachments: dict[str, Attachment] = {}
        self.snapshots: dict[str, Snapshot] = {}
        self.backups: dict[str, Backup] = {}
        self.transfers: dict[str, Transfer] = {}
        self.qos_specs: dict[str, QosSpec] = {}
        self.messages: dict[str, Message] = {}
        self.groups: dict[str, Group] = {}
        self.group_snapshots: dict[str, GroupSnapshot] = {}
        self.leftovers: dict[str, Leftover] = {}                # unmanaged storage the backends still hold
        self.group_types: dict[str, GroupType] = build_group_types(region.cloud.name)
        self.project_quotas: dict[str, dict[str, int]] = {}     # os-quota-sets overrides per project
        self.class_quotas: dict[str, int] = {}                  # os-quota-class-sets/default overrides
        self.services: dict[str, backends.Service] = {}
        self.types: dict[str, VolumeType] = build_volume_types(region.cloud.name, region.cloud.profile.volume_types)
        self._by_project: dict[str, dict[str, Volume]] = {}
        self._usage: dict[str, list[int]] = {}                 # project -> [volumes, gigabytes]
        self._att_by_volume: dict[str, dict[str, Attachment]] = {}
        self._att_by_server: dict[str, dict[str, Attachment]] = {}

    # ---- the protocol every state class offers
    @property
    def life(self) -> "KindLifecycle":
        return self.region.cloud.lifecycles[KIND]

    def rebuild(self) -> None:
        self._by_project.clear()
        self._usage.clear()
        self._att_by_volume.clear()
        self._att_by_server.clear()
        for v in sorted(self.volumes.values(), key=lambda v: (v.created_at, v.id)):
            v.removed = False
            self._index(v)
        for a in self.attachments.values():
            a.removed = False
            self._index_attachment(a)

    def on_enter_for(self, kind: str) -> Callable[[Any, str, str], None]:
        if kind == KIND:
            return self._on_volume_enter
        if kind == SNAPSHOT:
            return self._on_snapshot_enter
        if kind == BACKUP:
            return self._on_backup_enter
        if kind == GROUP:
            return self._on_group_enter
        if kind == GROUP_SNAPSHOT:
            return self._on_group_snapshot_enter
        return lambda obj, state, message: None

    def all_objects(self) -> Iterator[Resource]:
        for table in (self.volumes, self.attachments, self.snapshots, self.backups, self.transfers,
                      self.qos_specs, self.messages, self.groups, self.group_snapshots):
            yield from list(table.values())

    def counts(self) -> dict[str, int]:
        return {"volumes": len(self.volumes), "volume_attachments": len(self.attachments),
                "volume_snapshots": len(self.snapshots), "volume_backups": len(self.backups)}

    # ---- indexes
    def _index(self, v: Volume) -> None:
        self._by_project.setdefault(v.project_id, {})[v.id] = v
        u = self._usage.setdefault(v.project_id, [0, 0])
        u[0] += 1
        u[1] += v.size

    def _unindex(self, v: Volume) -> None:
        self._by_project.get(v.project_id, {}).pop(v.id, None)
        u = self._usage.get(v.project_id)
        if u is not None:
            u[0] -= 1
            u[1] -= v.size

    # ---- queries
    def volumes_of(self, project_id: str) -> list[Volume]:
        """The project's volumes, newest first (Cinder's default sort: created_at desc)."""
        return list(reversed(self._by_project.get(project_id, {}).values()))

    def all_volumes(self) -> list[Volume]:
        return sorted(self.volumes.values(), key=lambda v: (v.created_at, v.id), reverse=True)

    def get_volume(self, project_id: str | None, volume_id: str) -> Volume:
        """The volume, if ``project_id`` owns it (None: any project, for admin views)."""
        v = self.volumes.get(volume_id)
        if v is None or (project_id is not None and v.project_id != project_id):
            raise ApiError(404, f"Volume {volume_id} could not be found.")
        return v

    def status(self, v: Volume) -> str:
        return str(self.life.attrs(v.state).get("status", v.state))

    def usage(self, project_id: str) -> dict[str, int]:
        u = self._usage.get(project_id, [0, 0])
        snaps = [s for s in self.snapshots.values() if s.project_id == project_id]
        backups = [b for b in self.backups.values() if b.project_id == project_id]
        return {"volumes": u[0], "gigabytes": u[1] + sum(s.size for s in snaps), "snapshots": len(snaps),
                "backups": len(backups), "backup_gigabytes": sum(b.size for b in backups),
                "groups": sum(1 for g in self.groups.values() if g.project_id == project_id),
                "per_volume_gigabytes": 0}

    def default_quota(self, name: str) -> int:
        """The quota class ``default``: the profile's value unless an admin changed the class."""
        if name in self.class_quotas:
            return self.class_quotas[name]
        return int(self.region.cloud.profile.quotas.get(name, QUOTA_DEFAULTS.get(name, -1)))

    def quota(self, name: str, project_id: str | None = None) -> int:
        """A project's limit: its own override (os-quota-sets), else the default class."""
        if project_id is not None and name in self.project_quotas.get(project_id, {}):
            return self.project_quotas[project_id][name]
        return self.default_quota(name)

    def check_quota(self, project_id: str, *, volumes: int = 0, gigabytes: int = 0, size: int = 0) -> None:
        """Cinder's reservation check: 413 when a create or an extend would pass a project's quota."""
        per_volume = self.quota("per_volume_gigabytes", project_id)
        if size and per_volume >= 0 and size > per_volume:
            raise ApiError(413, f"VolumeSizeExceedsLimit: Requested volume size {size}G is larger than maximum "
                                f"allowed limit {per_volume}G.")
        used = self.usage(project_id)
        limit = self.quota("volumes", project_id)
        if volumes and limit >= 0 and used["volumes"] + volumes > limit:
            raise ApiError(413, f"VolumeLimitExceeded: Maximum number of volumes allowed ({limit}) exceeded for "
                                "quota 'volumes'.")
        limit = self.quota("gigabytes", project_id)
        if gigabytes and limit >= 0 and used["gigabytes"] + gigabytes > limit:
            raise ApiError(413, "VolumeSizeExceedsAvailableQuota: Requested volume or snapshot exceeds allowed "
                                f"gigabytes quota. Requested {gigabytes}G, quota is {limit}G and "
                                f"{used['gigabytes']}G has been consumed.")

    # ---- volume types
    def find_type(self, ref: str | None) -> VolumeType:
        """A type by id or name; None or "" is the profile's default type."""
        if not ref:
            ref = self.region.cloud.profile.default_volume_type
        vt = self.types.get(ref) or next((t for t in self.types.values() if t.name == ref), None)
        if vt is None:
            raise ApiError(404, f"Volume type with name {ref} could not be found.")
        return vt

    def get_type(self, type_id: str) -> VolumeType:
        vt = self.types.get(type_id)
        if vt is None:
            raise ApiError(404, f"Volume type {type_id} could not be found.")
        return vt

    # ---- zones
    def resolve_zone(self, requested: str | None) -> str:
        zones = self.region.zones
        if requested:
            if requested not in zones:
                raise ApiError(400, f"Invalid input received: Availability zone '{requested}' is invalid.")
            return requested
        return zones[0]

    # ---- volumes: changes
    def create_volume(self, project_id: str, user_id: str, *, size: int | None, name: str | None = None,
                      description: str | None = None, volume_type: str | None = None, zone: str | None = None,
                      metadata: dict[str, str] | None = None, image: Any = None, source_volid: str | None = None,
                      multiattach: bool = False, state: str | None = None,
                      snapshot: Snapshot | None = None, request_id: str = "") -> Volume:
        """Validate and create a volume; it starts ``creating`` (``creating_from_image`` from an image).

        ``image`` is a Glance image the caller resolved (Cinder asks Glance, the twin shares state).
        ``state`` lets Nova create a boot volume straight into its attach state."""
        source: Volume | None = None
        if source_volid is not None:
            source = self.get_volume(project_id, source_volid)
            if self.status(source) not in ("available", "in-use"):
                raise ApiError(400, f"Invalid volume: Source volume status must be available or in-use, "
                                    f"currently {self.status(source)}.")
            if size is None:
                size = source.size
            elif size < source.size:
                raise ApiError(400, f"Invalid input received: Volume size '{size}'GB cannot be smaller than "
                                    f"original volume size {source.size}GB. They must be >= original volume size.")
        if snapshot is not None:
            if self.snapshot_status(snapshot) != "available":
                raise ApiError(400, f"Invalid snapshot: Originating snapshot status must be one of 'available' "
                                    f"values")
            source_snap_vol = self.volumes.get(snapshot.volume_id)
            if size is None:
                size = snapshot.size
            elif size < snapshot.size:
                raise ApiError(400, f"Invalid input received: Volume size '{size}'GB cannot be smaller than the "
                                    f"snapshot size {snapshot.size}GB. They must be >= original snapshot size.")
            if source_snap_vol is not None and source is None:
                volume_type = volume_type or source_snap_vol.volume_type
                zone = zone or source_snap_vol.availability_zone
        if image is not None:
            min_size = max(int(getattr(image, "min_disk", 0) or 0), 1)
            image_gib = math.ceil((getattr(image, "size", None) or 0) / GIB)
            if size is None:
                size = max(min_size, image_gib)
            if image_gib > size:
                raise ApiError(400, f"Invalid input received: Size of specified image {image_gib} is larger than "
                                    f"volume size {size}.")
            if min_size > size:
                raise ApiError(400, f"Invalid input received: Image minDisk size {min_size} is larger than the "
                                    f"volume size {size}.")
        if size is None:
            raise ApiError(400, "Invalid input received: Size must be specified when creating a volume without a "
                                "source.")
        if size < 1:
            raise ApiError(400, f"Invalid input received: Volume size '{size}' must be an integer and greater than 0.")
        vtype = self.find_type(volume_type or (source.volume_type if source else None))
        chosen = self.resolve_zone(zone or (source.availability_zone if source else None))
        self.check_quota(project_id, volumes=1, gigabytes=size, size=size)
        v = Volume(id=self.region.cloud.new_id(), project_id=project_id, user_id=user_id, name=name,
                   size=size, availability_zone=chosen, description=description, volume_type=vtype.name,
                   metadata=dict(metadata or {}), source_volid=source.id if source else None,
                   snapshot_id=snapshot.id if snapshot else None,
                   multiattach=multiattach, bootable=bool(image is not None or (source and source.bootable)),
                   image_metadata=_image_metadata(image) if image is not None else
                   (dict(source.image_metadata) if source else {}))
        backend = backends.pick_backend(self.region, vtype)
        v.host = f"{backends.HOST}@{backend}#{backend}" if backend else None
        self.volumes[v.id] = v
        self._index(v)
        if backend is None:     # the scheduler found no backend: error, and a user message says why
            msg = backends.no_valid_host(self.region, v, request_id)
            self.messages[msg.id] = msg
            self._enter(v, "error")
            return v
        start = state or ("creating_from_image" if image is not None else "creating")
        self._enter(v, start)
        return v

    def update_volume(self, v: Volume, *, name: str | None = None, description: Any = ...,
                      metadata: dict[str, str] | None = None) -> Volume:
        if name is not None:
            v.name = name
        if description is not ...:
            v.description = description
        if metadata is not None:
            v.metadata = dict(metadata)
        v.touch()
        return v

    def delete_volume(self, v: Volume, *, force: bool = False, cascade: bool = False, unmanage: bool = False) -> None:
        """Start a delete. A plain delete refuses attached or busy volumes and volumes with snapshots;
        ``cascade`` deletes the snapshots along; ``force`` (admin os-force_delete) takes any state and
        drops the volume's attachments; ``unmanage`` (os-unmanage) checks as a plain delete does, then
        only Cinder forgets the volume."""
        if v.state in ("deleting", "unmanaging"):
            return
        if not force and (self._att_by_volume.get(v.id) or v.group_id is not None or self.status(v) not in
                          ("available", "error", "error_extending", "error_deleting", "error_restoring",
                           "error_managing")):
            raise ApiError(400, DELETE_REFUSED)
        snaps = self.snapshots_of_volume(v.id)
        if snaps and not cascade:
            raise ApiError(400, DELETE_REFUSED)
        for snap in snaps:
            self.delete_snapshot(snap, force=True)
        for a in list(self._att_by_volume.get(v.id, {}).values()):
            self._drop_attachment(a)
        self._enter(v, "unmanaging" if unmanage else "deleting")
        v.touch()

    def extend_volume(self, v: Volume, new_size: int, *, in_use_allowed: bool) -> None:
        status = self.status(v)
        if status == "in-use" and in_use_allowed:
            action = "extend_in_use"
        elif status == "available":
            action = "extend"
        else:
            want = "'available' or 'in-use'" if in_use_allowed else "'available'"
            raise ApiError(400, f"Invalid volume: Volume status must be {want} to extend, currently {status}.")
        if new_size <= v.size:
            raise ApiError(400, "Invalid input received: New size for extend must be greater than current size. "
                                f"(current: {v.size}, extended: {new_size}).")
        self.check_quota(v.project_id, gigabytes=new_size - v.size, size=new_size)
        u = self._usage.setdefault(v.project_id, [0, 0])
        u[1] += new_size - v.size
        v.size = new_size
        v.extending_attached = action == "extend_in_use"
        self._enter(v, self.life.actions[action].enter)
        v.touch()

    def retype_volume(self, v: Volume, vtype: VolumeType, policy: str) -> None:
        """os-retype: a type change the backend does in place (``never``) or with a migration."""
        status = self.status(v)
        if status not in ("available", "in-use"):
            raise ApiError(400, f"Invalid volume: Volume status must be available or in-use, currently {status}.")
        if vtype.name == v.volume_type:
            raise ApiError(400, "Invalid input received: New volume type must be different from the current one.")
        if self.snapshots_of_volume(v.id) and policy == "on-demand":
            raise ApiError(400, "Invalid volume: Volume must not have snapshots to be migrated.")
        backend = backends.pick_backend(self.region, vtype)
        if backend is None:
            raise ApiError(400, f"Invalid volume type: no backend satisfies volume type {vtype.name}.")
        new_host = f"{backends.HOST}@{backend}#{backend}"
        if new_host != v.host and policy == "never":
            raise ApiError(400, "Invalid input received: Retype needs a migration but migration_policy is never.")
        v.volume_type, v.host = vtype.name, new_host
        self._enter(v, "retyping_in_use" if status == "in-use" else "retyping")
        v.touch()

    def set_bootable(self, v: Volume, bootable: bool) -> None:
        v.bootable = bootable
        v.touch()

    def set_readonly(self, v: Volume, readonly: bool) -> None:
        v.readonly = readonly
        v.readonly_set = True
        v.touch()

    def reset_status(self, v: Volume, status: str) -> None:
        """Admin os-reset_status: put the volume in ``status`` without a transition."""
        states = [s for s, attrs in self.life.states.items() if attrs.get("status") == status]
        if not states:
            raise ApiError(400, f"Invalid input received: Invalid volume status: {status}")
        self.region.twin.scheduler.cancel(v)
        v.state = status if status in states else states[0]   # the status only: no stage runs from it
        v.touch()

    # ---- lifecycle
    def _enter(self, v: Volume, state: str) -> None:
        self.region.twin.scheduler.enter(v, self.life, state, self.region.placement(v.availability_zone, v.project_id),
                                         self._on_volume_enter)

    def _remove(self, v: Volume) -> None:
        if self.volumes.pop(v.id, None) is None:
            return
        self._unindex(v)
        v.removed = True
        self.region.twin.scheduler.cancel(v)
        for a in list(self._att_by_volume.get(v.id, {}).values()):
            self._drop_attachment(a)

    def _tell_nova_extended(self, v: Volume) -> None:
        """As cinder-volume does after extending an attached volume: a ``volume-extended`` external
        event to Nova for each server it is attached to (Nova's state, reached as its API would be)."""
        v.extending_attached = False
        nova = _nova_of(self.region)
        if nova is None:
            return
        for a in self._att_by_volume.get(v.id, {}).values():
            if a.server_id and a.attach_status == "attached":
                nova.volume_extended(a.server_id, v.user_id)

    def _on_volume_enter(self, v: Volume, state: str, message: str) -> None:
        if state == "DELETED":
            self._remove(v)
            return
        v.touch()
        if state == "in-use":
            self._attachments_attached(v)
            if v.extending_attached:
                self._tell_nova_extended(v)
        elif state == "available":
            self._attachments_detached(v)
        elif state.startswith("error"):
            v.error = message or "The volume operation failed."
            region = self.region
            region.twin.events.record("volume.error", cloud=region.cloud.name, region=region.name,
                                      zone=v.availability_zone or None,
                                      detail={"volume": v.id, "state": state, "message": v.error})


def _nova_of(region: "RegionState") -> Any:
    return region.services.get("nova")


def _image_metadata(image: Any) -> dict[str, Any]:
    """What Cinder copies from a Glance image into ``volume_image_metadata``."""
    out: dict[str, Any] = {"image_id": image.id, "image_name": image.name,
                           "min_disk": str(getattr(image, "min_disk", 0) or 0),
                           "min_ram": str(getattr(image, "min_ram", 0) or 0)}
    for attr in ("disk_format", "container_format", "checksum"):
        value = getattr(image, attr, None)
        if value:
            out[attr] = value
    if getattr(image, "size", None):
        out["size"] = str(image.size)
    for k, v in (getattr(image, "properties", None) or {}).items():
        out[str(k)] = str(v)
    return out
