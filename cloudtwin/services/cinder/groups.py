"""Generic volume groups: group types (admin), groups of volumes of the group's volume types, group
snapshots (a snapshot of each member volume at once) and groups made from a group or a group snapshot.

Cinder's rules: a volume joins a group only if its type is one of the group's and it is in no other
group; a volume in a group cannot be deleted on its own; a group with volumes is deleted only with
``delete-volumes``; a snapshot of a group snapshot goes only with it; a group type in use stays.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from cloudtwin.errors import ApiError
from cloudtwin.ids import stable_id
from cloudtwin.services.cinder.resources import (GROUP, GROUP_SNAPSHOT, SNAPSHOT, Group, GroupSnapshot, GroupType,
                                                 Snapshot, Volume, VolumeType)

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

DEFAULT_GROUP_TYPE = "default_group_type"
GROUP_STATUSES = ("creating", "available", "updating", "deleting", "error", "error_deleting")
GROUP_SNAPSHOT_STATUSES = ("creating", "available", "deleting", "error", "error_deleting")


def build_group_types(cloud_name: str) -> dict[str, GroupType]:
    """Cinder's database starts with one group type, ``default_group_type`` (for migrated consistency groups)."""
    gid = stable_id("group_type", cloud_name, DEFAULT_GROUP_TYPE)
    return {gid: GroupType(id=gid, name=DEFAULT_GROUP_TYPE, description="Default group type",
                           group_specs={"consistent_group_snapshot_enabled": "<is> False"}, builtin=True)}


def _check_name(name: Any, what: str) -> None:
    if not isinstance(name, str) or not name.strip() or len(name) > 255:
        raise ApiError(400, f"Invalid input received: {what} name must be a string of 1 to 255 characters.")


def _check_description(description: Any) -> None:
    if description is not None and (not isinstance(description, str) or len(description) > 255):
        raise ApiError(400, "Invalid input received: description must be a string of at most 255 characters.")


class GroupMethods:
    """A part of ``CinderState``."""

    region: "RegionState"
    volumes: dict[str, Volume]
    snapshots: dict[str, Snapshot]
    types: dict[str, VolumeType]
    groups: dict[str, Group]
    group_snapshots: dict[str, GroupSnapshot]
    group_types: dict[str, GroupType]
    status: Callable[[Volume], str]
    snapshot_status: Callable[[Snapshot], str]
    create_volume: Callable[..., Volume]
    delete_volume: Callable[..., None]
    delete_snapshot: Callable[..., None]
    _enter_kind: Callable[[Any, str, str], None]

    # ---- group types
    def get_group_type(self, ref: str, *, project_id: str | None = None) -> GroupType:
        """A group type by id (or name); a private one only for an admin (``project_id`` None)."""
        gt = self.group_types.get(ref) or next((t for t in self.group_types.values() if t.name == ref), None)
        if gt is None or (project_id is not None and not gt.is_public):
            raise ApiError(404, f"Group type {ref} could not be found.")
        return gt

    def visible_group_types(self, admin: bool, is_public: bool | None) -> list[GroupType]:
        out = []
        for t in self.group_types.values():
            if is_public is None and admin:
                out.append(t)
            elif t.is_public and is_public is not False:
                out.append(t)
            elif not t.is_public and is_public is not True and admin:
                out.append(t)
        return sorted(out, key=lambda t: t.name)

    def create_group_type(self, name: Any, description: Any, is_public: bool,
                          group_specs: dict[str, str]) -> GroupType:
        _check_name(name, "group type")
        _check_description(description)
        if any(t.name == name for t in self.group_types.values()):
            raise ApiError(409, f"Group Type {name} already exists.")
        gt = GroupType(id=self.region.cloud.new_id(), name=name, description=description, is_public=is_public,
                       group_specs=dict(group_specs))
        self.group_types[gt.id] = gt
        return gt

    def update_group_type(self, gt: GroupType, *, name: Any = None, description: Any = ...,
                          is_public: bool | None = None) -> None:
        if name is None and description is ... and is_public is None:
            raise ApiError(400, "Specify group type name, description or a combination thereof.")
        if name is not None:
            _check_name(name, "group type")
            if any(t.name == name and t.id != gt.id for t in self.group_types.values()):
                raise ApiError(409, f"Group Type {name} already exists.")
            if gt.builtin and name != gt.name:
                raise ApiError(400, "Invalid input received: the default group type cannot be renamed.")
            gt.name = name
        if description is not ...:
            _check_description(description)
            gt.description = description
        if is_public is not None:
            gt.is_public = is_public

    def delete_group_type(self, gt: GroupType) -> None:
        if gt.builtin:
            raise ApiError(400, "Invalid group type: Default group type can not be deleted.")
        if any(g.group_type_id == gt.id for g in self.groups.values()):
            raise ApiError(400, f"Target group type is still in use. Group Type {gt.id} deletion is not allowed "
                                "with groups present with the type.")
        del self.group_types[gt.id]

    # ---- groups
    def group_status(self, g: Group) -> str:
        return str(self.region.cloud.lifecycles[GROUP].attrs(g.state).get("status", g.state))

    def group_snapshot_status(self, gs: GroupSnapshot) -> str:
        return str(self.region.cloud.lifecycles[GROUP_SNAPSHOT].attrs(gs.state).get("status", gs.state))

    def groups_of(self, project_id: str | None) -> list[Group]:
        items = [g for g in self.groups.values() if project_id is None or g.project_id == project_id]
        return sorted(items, key=lambda g: (g.created_at, g.id), reverse=True)

    def get_group(self, project_id: str | None, group_id: str) -> Group:
        g = self.groups.get(group_id)
        if g is None or (project_id is not None and g.project_id != project_id):
            raise ApiError(404, f"Group {group_id} could not be found.")
        return g

    def group_volumes(self, g: Group) -> list[Volume]:
        return [v for v in self.volumes.values() if v.group_id == g.id]

    def _resolve_types(self, refs: Any) -> list[str]:
        if not isinstance(refs, list) or not refs or not all(isinstance(r, str) for r in refs):
            raise ApiError(400, "Invalid input received: volume_types must be a non-empty list of volume type ids "
                                "or names.")
        out = []
        for ref in refs:
            vt = self.types.get(ref) or next((t for t in self.types.values() if t.name == ref), None)
            if vt is None:
                raise ApiError(404, f"Volume type {ref} could not be found.")
            out.append(vt.id)
        return out

    def create_group(self, project_id: str, *, group_type: Any, volume_types: Any, name: str | None,
                     description: str | None, zone: str) -> Group:
        if not isinstance(group_type, str) or not group_type:
            raise ApiError(400, "Invalid input received: group_type must be provided to create group.")
        gt = self.get_group_type(group_type)
        g = Group(id=self.region.cloud.new_id(), project_id=project_id, name=name or "", description=description,
                  group_type_id=gt.id, volume_type_ids=self._resolve_types(volume_types), availability_zone=zone)
        self.groups[g.id] = g
        self._enter_group(g, "creating")
        return g

    def check_volume_joins(self, g: Group, vtype: VolumeType) -> None:
        """A volume created into ``g``: the group must be available and take the volume's type."""
        status = self.group_status(g)
        if status != "available":
            raise ApiError(400, f"Invalid group: Group {g.id} status must be available, but current status is: "
                                f"{status}.")
        if vtype.id not in g.volume_type_ids:
            raise ApiError(400, f"Invalid input received: Invalid volume_type provided: {vtype.id}. Group {g.id} "
                                "does not support this volume type.")

    def update_group(self, g: Group, *, name: Any = None, description: Any = ..., add: list[str],
                     remove: list[str]) -> None:
        if name is None and description is ... and not add and not remove:
            raise ApiError(400, "Invalid input received: Name, description, add_volumes, and remove_volumes can "
                                "not be all empty in the request body.")
        status = self.group_status(g)
        if (add or remove) and status != "available":
            raise ApiError(400, f"Invalid group: Group {g.id} status must be available, but current status is: "
                                f"{status}.")
        joining = [self._joinable(g, vid) for vid in add]
        leaving = []
        for vid in remove:
            v = self.volumes.get(vid)
            if v is None or v.group_id != g.id:
                raise ApiError(400, f"Invalid volume: Cannot remove volume {vid} from group {g.id} because it is "
                                    "not in the group.")
            leaving.append(v)
        if name is not None:
            g.name = str(name)
        if description is not ...:
            g.description = description
        for v in joining:
            v.group_id = g.id
            v.touch()
        for v in leaving:
            v.group_id = None
            v.touch()
        g.touch()
        if add or remove:
            self._enter_group(g, "updating")

    def _joinable(self, g: Group, vid: str) -> Volume:
        v = self.volumes.get(vid)
        if v is None or v.project_id != g.project_id:
            raise ApiError(400, f"Invalid volume: Cannot add volume {vid} to group {g.id} because volume cannot "
                                "be found.")
        if v.group_id is not None:
            raise ApiError(400, f"Invalid volume: Cannot add volume {vid} to group {g.id} because it is already "
                                f"in group {v.group_id}.")
        vtype = next((t for t in self.types.values() if t.name == v.volume_type), None)
        if vtype is None or vtype.id not in g.volume_type_ids:
            raise ApiError(400, f"Invalid volume: Cannot add volume {vid} to group {g.id} because volume type "
                                f"{v.volume_type} is not supported by the group.")
        if self.status(v) not in ("available", "in-use"):
            raise ApiError(400, f"Invalid volume: Cannot add volume {vid} to group {g.id} because volume is in an "
                                f"invalid state: {self.status(v)}. Valid states are: ('available', 'in-use').")
        return v

    def delete_group(self, g: Group, *, delete_volumes: bool) -> None:
        status = self.group_status(g)
        if status not in ("available", "error"):
            raise ApiError(400, f"Invalid group: Group status must be available or error, but current status is: "
                                f"{status}")
        if any(gs.group_id == g.id for gs in self.group_snapshots.values()):
            raise ApiError(400, "Invalid group: Group has existing snapshots.")
        members = self.group_volumes(g)
        if members and not delete_volumes:
            raise ApiError(400, "Invalid group: Group has volumes: delete them first or set delete-volumes.")
        for v in members:
            if self.status(v) == "in-use" or self.snapshots_of_volume(v.id):  # type: ignore[attr-defined]
                raise ApiError(400, f"Invalid volume: Volume {v.id} in the group is attached or has snapshots.")
        for v in members:
            v.group_id = None
            self.delete_volume(v)
        self._enter_group(g, "deleting")
        g.touch()

    def reset_group_status(self, g: Group, status: Any) -> None:
        if status not in GROUP_STATUSES:
            raise ApiError(400, f"Invalid input received: Invalid group status: {status}")
        self.region.twin.scheduler.cancel(g)
        g.state = status
        g.touch()

    def create_group_from_source(self, project_id: str, user_id: str, *, source: Group | None,
                                 group_snapshot: GroupSnapshot | None, name: str | None,
                                 description: str | None) -> Group:
        """A new group with a copy of each source volume (or a volume from each member snapshot)."""
        origin = source if source is not None else self.groups.get(group_snapshot.group_id if group_snapshot else "")
        if origin is None:
            raise ApiError(400, "Invalid input received: the source group of the group snapshot is gone.")
        g = Group(id=self.region.cloud.new_id(), project_id=project_id, name=name or "", description=description,
                  group_type_id=origin.group_type_id, volume_type_ids=list(origin.volume_type_ids),
                  availability_zone=origin.availability_zone,
                  group_snapshot_id=group_snapshot.id if group_snapshot else None,
                  source_group_id=source.id if source else None)
        if source is not None:
            for v in self.group_volumes(source):
                if self.status(v) not in ("available", "in-use"):
                    raise ApiError(400, f"Invalid volume: Volume {v.id} of the source group is {self.status(v)}.")
        self.groups[g.id] = g
        if source is not None:
            for v in self.group_volumes(source):
                copy = self.create_volume(project_id, user_id, size=v.size, name=v.name, description=v.description,
                                          volume_type=v.volume_type, zone=v.availability_zone, source_volid=v.id)
                copy.group_id = g.id
        else:
            assert group_snapshot is not None
            for s in self.snapshots.values():
                if s.group_snapshot_id == group_snapshot.id:
                    v = self.volumes.get(s.volume_id)
                    copy = self.create_volume(project_id, user_id, size=s.size, name=s.name,
                                              volume_type=v.volume_type if v else None, snapshot=s)
                    copy.group_id = g.id
        self._enter_group(g, "creating")
        return g

    # ---- group snapshots
    def group_snapshots_of(self, project_id: str | None) -> list[GroupSnapshot]:
        items = [s for s in self.group_snapshots.values() if project_id is None or s.project_id == project_id]
        return sorted(items, key=lambda s: (s.created_at, s.id), reverse=True)

    def get_group_snapshot(self, project_id: str | None, gs_id: str) -> GroupSnapshot:
        gs = self.group_snapshots.get(gs_id)
        if gs is None or (project_id is not None and gs.project_id != project_id):
            raise ApiError(404, f"GroupSnapshot {gs_id} could not be found.")
        return gs

    def create_group_snapshot(self, g: Group, user_id: str, *, name: str | None,
                              description: str | None) -> GroupSnapshot:
        status = self.group_status(g)
        if status != "available":
            raise ApiError(400, f"Invalid group: Group {g.id} status must be available, but current status is: "
                                f"{status}.")
        members = self.group_volumes(g)
        busy = [v.id for v in members if self.status(v) not in ("available", "in-use")]
        if busy:
            raise ApiError(400, f"Invalid volume: Volumes {', '.join(busy)} of group {g.id} are busy.")
        gs = GroupSnapshot(id=self.region.cloud.new_id(), project_id=g.project_id, name=name or "",
                           description=description, group_id=g.id, group_type_id=g.group_type_id)
        self.group_snapshots[gs.id] = gs
        for v in members:
            s = Snapshot(id=self.region.cloud.new_id(), project_id=v.project_id, user_id=user_id,
                         name=f"snapshot-{gs.id}", volume_id=v.id, size=v.size, group_snapshot_id=gs.id)
            self.snapshots[s.id] = s
            self._enter_kind(s, SNAPSHOT, "creating")
        self._enter_group_snapshot(gs, "creating")
        return gs

    def delete_group_snapshot(self, gs: GroupSnapshot) -> None:
        status = self.group_snapshot_status(gs)
        if status not in ("available", "error"):
            raise ApiError(400, f"Invalid GroupSnapshot: GroupSnapshot status must be available or error, and no "
                                f"Group can be currently using it as source for its creation. Status: {status}")
        if any(g.group_snapshot_id == gs.id and self.group_status(g) == "creating" for g in self.groups.values()):
            raise ApiError(400, "Invalid GroupSnapshot: a group is being created from it.")
        for s in [s for s in self.snapshots.values() if s.group_snapshot_id == gs.id]:
            self.delete_snapshot(s, force=True)
        self._enter_group_snapshot(gs, "deleting")
        gs.touch()

    def reset_group_snapshot_status(self, gs: GroupSnapshot, status: Any) -> None:
        if status not in GROUP_SNAPSHOT_STATUSES:
            raise ApiError(400, f"Invalid input received: Invalid group snapshot status: {status}")
        self.region.twin.scheduler.cancel(gs)
        gs.state = status
        gs.touch()

    # ---- lifecycle
    def _enter_group(self, g: Group, state: str) -> None:
        self.region.twin.scheduler.enter(g, self.region.cloud.lifecycles[GROUP], state,
                                         self.region.placement(g.availability_zone, g.project_id),
                                         self._on_group_enter)

    def _enter_group_snapshot(self, gs: GroupSnapshot, state: str) -> None:
        g = self.groups.get(gs.group_id)
        self.region.twin.scheduler.enter(gs, self.region.cloud.lifecycles[GROUP_SNAPSHOT], state,
                                         self.region.placement(g.availability_zone if g else "", gs.project_id),
                                         self._on_group_snapshot_enter)

    def _on_group_enter(self, g: Group, state: str, message: str) -> None:
        if state == "DELETED":
            self.groups.pop(g.id, None)
            g.removed = True
            return
        if state.startswith("error"):
            g.error = message
        g.touch()

    def _on_group_snapshot_enter(self, gs: GroupSnapshot, state: str, message: str) -> None:
        if state == "DELETED":
            self.group_snapshots.pop(gs.id, None)
            gs.removed = True
            return
        if state.startswith("error"):
            gs.error = message
        gs.touch()
