"""Volume attachments: what Nova asks of Cinder (attach, detach, boot volumes, a server gone) and
Cinder's own attachments API (reserve, connect, complete, delete).

The state machine is the volume's: available -> attaching -> in-use -> detaching -> available. Nova's
steps go through timed stages; the attachments API's steps are the client's, so they take effect at
once, as in Cinder. An attachment's ``attach_status`` follows its volume.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from cloudtwin.errors import ApiError
from cloudtwin.services.cinder.resources import Attachment, Volume

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

ATTACH_MODES = ("rw", "ro")


def _reserve_refused(v_id: str, status: str) -> ApiError:
    return ApiError(400, f"Invalid volume: Volume {v_id} status must be available or downloading to reserve, "
                         f"but the current status is {status}.")


class AttachmentMethods:
    """A part of ``CinderState``, which provides the tables, ``status``, ``_enter`` and ``_remove``."""

    region: "RegionState"
    volumes: dict[str, Volume]
    attachments: dict[str, Attachment]
    _att_by_volume: dict[str, dict[str, Attachment]]
    _att_by_server: dict[str, dict[str, Attachment]]

    # ---- indexes and queries
    def _index_attachment(self, a: Attachment) -> None:
        self._att_by_volume.setdefault(a.volume_id, {})[a.id] = a
        if a.server_id:
            self._att_by_server.setdefault(a.server_id, {})[a.id] = a

    def _drop_attachment(self, a: Attachment) -> None:
        if self.attachments.pop(a.id, None) is None:
            return
        a.removed = True
        self._att_by_volume.get(a.volume_id, {}).pop(a.id, None)
        if a.server_id:
            self._att_by_server.get(a.server_id, {}).pop(a.id, None)

    def attachments_of_volume(self, volume_id: str) -> list[Attachment]:
        return sorted(self._att_by_volume.get(volume_id, {}).values(), key=lambda a: (a.created_at, a.id))

    def attachments_of_server(self, server_id: str, *, bdm_only: bool = True) -> list[Attachment]:
        """A server's attachments, root device first, then by device name."""
        items = [a for a in self._att_by_server.get(server_id, {}).values() if a.bdm or not bdm_only]
        return sorted(items, key=lambda a: (a.boot_index != 0, a.device, a.created_at))

    def attachments_of_project(self, project_id: str) -> list[Attachment]:
        return sorted((a for a in self.attachments.values() if a.project_id == project_id),
                      key=lambda a: (a.created_at, a.id), reverse=True)

    def get_attachment(self, project_id: str, attachment_id: str) -> Attachment:
        a = self.attachments.get(attachment_id)
        if a is None or a.project_id != project_id:
            raise ApiError(404, f"Volume attachment could not be found with filter: attachment_id = {attachment_id}.")
        return a

    def _new_attachment(self, v: Volume, server_id: str | None, **fields: Any) -> Attachment:
        a = Attachment(id=self.region.cloud.new_id(), project_id=v.project_id, volume_id=v.id,
                       server_id=server_id, **fields)
        self.attachments[a.id] = a
        self._index_attachment(a)
        return a

    def _check_reservable(self, v: Volume) -> None:
        status = self.status(v)
        if status == "available" or (v.multiattach and status in ("in-use", "reserved")):
            return
        raise _reserve_refused(v.id, status)

    # ---- what Nova asks
    def attach_to_server(self, v: Volume, server_id: str, device: str, *, host: str | None = None,
                         boot_index: int | None = None, delete_on_termination: bool = False,
                         made_for_server: bool = False, boot: bool = False) -> Attachment:
        """Attach ``v`` to a server as ``device``. ``boot``: the server is being built, so the volume
        waits (attaching) until the server turns ACTIVE; otherwise it goes in-use after a stage."""
        if v.state != "boot_attaching":
            if any(a.server_id == server_id for a in self._att_by_volume.get(v.id, {}).values()):
                raise ApiError(400, f"Invalid volume: volume {v.id} is already attached to instance {server_id}.")
            self._check_reservable(v)
            self._enter(v, "boot_attaching" if boot else self.life.actions["attach"].enter)
        v.touch()
        return self._new_attachment(v, server_id, host_name=host, device=device, attach_status="attaching", bdm=True,
                                    boot_index=boot_index, delete_on_termination=delete_on_termination,
                                    made_for_server=made_for_server)

    def server_active(self, server_id: str) -> None:
        """The server booted: its boot-time volumes are in use."""
        for a in self.attachments_of_server(server_id):
            v = self.volumes.get(a.volume_id)
            if v is not None and v.state == "boot_attaching":
                self._enter(v, "in-use")
                self._attachments_attached(v)

    def detach_from_server(self, server_id: str, volume_id: str) -> Attachment:
        a = next((a for a in self.attachments_of_server(server_id) if a.volume_id == volume_id), None)
        if a is None:
            raise ApiError(404, f"Volume {volume_id} is not attached to the instance {server_id}")
        if a.boot_index == 0:
            raise ApiError(400, "Cannot detach a root device volume")
        v = self.volumes[a.volume_id]
        if self.status(v) != "in-use" or a.attach_status != "attached":
            raise ApiError(400, "Invalid volume: Unable to detach volume. Volume status must be 'in-use' and "
                                "attach_status must be 'attached' to detach.")
        a.attach_status = "detaching"
        a.touch()
        self._enter(v, self.life.actions["detach"].enter)
        v.touch()
        return a

    def server_gone(self, server_id: str) -> None:
        """The server was deleted: volumes it was told to take along go, the others are detached."""
        for a in self.attachments_of_server(server_id, bdm_only=False):
            v = self.volumes.get(a.volume_id)
            if v is None:
                self._drop_attachment(a)
                continue
            if a.delete_on_termination:
                self._drop_attachment(a)
                self.region.twin.scheduler.cancel(v)
                self._enter(v, "deleting")
            else:
                a.attach_status = "detaching"
                self._enter(v, "detaching")
            v.touch()

    def rollback_server(self, server_id: str) -> None:
        """A create that failed half way: undo its volumes now (made ones vanish, others are free)."""
        for a in self.attachments_of_server(server_id, bdm_only=False):
            self._drop_attachment(a)
            v = self.volumes.get(a.volume_id)
            if v is None:
                continue
            if a.made_for_server:
                self._remove(v)
            elif not self._att_by_volume.get(v.id):
                self.region.twin.scheduler.cancel(v)
                self._enter(v, "available")

    # ---- Cinder's attachments API (microversion 3.27 and later)
    def create_attachment(self, v: Volume, server_id: str | None, connector: dict[str, Any] | None,
                          mode: str = "rw") -> Attachment:
        if mode not in ATTACH_MODES:
            raise ApiError(400, f"Invalid input received: Invalid attach mode {mode}.")
        if mode == "rw" and v.readonly:
            raise ApiError(400, f"Invalid volume: Volume {v.id} is read-only: attach it with mode 'ro'.")
        self._check_reservable(v)
        a = self._new_attachment(v, server_id, attach_mode=mode, attach_status="reserved")
        if connector is None:
            if self.status(v) != "in-use":
                self._enter(v, "reserved")
        else:
            self.connect_attachment(a, connector)
        v.touch()
        return a

    def connect_attachment(self, a: Attachment, connector: dict[str, Any]) -> None:
        if a.attach_status not in ("reserved", "attaching"):
            raise ApiError(400, f"Invalid volume: attachment {a.id} is {a.attach_status}; only a reserved "
                                "attachment takes a connector.")
        v = self.volumes[a.volume_id]
        a.connector = dict(connector)
        a.attach_status = "attaching"
        a.touch()
        if self.status(v) != "in-use":
            self._enter(v, "attaching_held")

    def complete_attachment(self, a: Attachment) -> None:
        if a.attach_status == "attached":
            return
        if a.attach_status != "attaching":
            raise ApiError(400, f"Invalid volume: attachment {a.id} has no connection yet (status "
                                f"{a.attach_status}); update it with a connector first.")
        v = self.volumes[a.volume_id]
        self._enter(v, "in-use")
        self._attachments_attached(v)

    def delete_attachment(self, a: Attachment) -> None:
        v = self.volumes.get(a.volume_id)
        self._drop_attachment(a)
        if v is not None and not self._att_by_volume.get(v.id):
            self.region.twin.scheduler.cancel(v)
            self._enter(v, "available")
            v.touch()

    def connection_info(self, a: Attachment) -> dict[str, Any]:
        """What a connected attachment tells its host (an iSCSI target, as the LVM backend gives)."""
        if a.connector is None:
            return {}
        return {"driver_volume_type": "iscsi",
                "data": {"target_discovered": False, "target_iqn": f"iqn.2010-10.org.openstack:volume-{a.volume_id}",
                         "target_portal": "127.0.0.1:3260", "target_lun": 1, "volume_id": a.volume_id,
                         "access_mode": a.attach_mode, "encrypted": False},
                "attachment_id": a.id}

    # ---- the volume actions of the attach flow before the attachments API (os-reserve, os-attach, ...)
    def reserve(self, v: Volume) -> None:
        self._check_reservable(v)
        if self.status(v) == "available":
            self._enter(v, "attaching_held")    # os-reserve: Cinder's reserve_volume shows 'attaching'
        v.touch()

    def unreserve(self, v: Volume) -> None:
        if v.state in ("reserved", "attaching_held") and not self._att_by_volume.get(v.id):
            self._enter(v, "available")
        v.touch()

    def attach_legacy(self, v: Volume, server_id: str | None, mountpoint: str, mode: str = "rw") -> Attachment:
        """``os-attach``: the host is already connected, so the volume is in use at once."""
        if mode not in ATTACH_MODES:
            raise ApiError(400, f"Invalid input received: Invalid attach mode {mode}.")
        status = self.status(v)
        if status not in ("available", "reserved", "attaching") and not (v.multiattach and status == "in-use"):
            raise ApiError(400, f"Invalid volume: Volume {v.id} status must be available or reserved to attach, "
                                f"currently {status}.")
        a = self._new_attachment(v, server_id, device=mountpoint, attach_mode=mode, attach_status="attaching")
        self._enter(v, "in-use")
        self._attachments_attached(v)
        return a

    def _named_attachments(self, v: Volume, attachment_id: str | None) -> list[Attachment]:
        """The volume's attachments, or only the one named (404 when it is not the volume's)."""
        found = self.attachments_of_volume(v.id)
        if attachment_id:
            found = [a for a in found if a.id == attachment_id]
            if not found:
                raise ApiError(404, f"Volume attachment could not be found with filter: attachment_id = "
                                    f"{attachment_id}.")
        return found

    def force_detach(self, v: Volume, attachment_id: str | None) -> None:
        """Admin os-force_detach: drop the attachment (or all) whatever the state; the volume is free."""
        found = self._named_attachments(v, attachment_id)
        for a in found:
            self._drop_attachment(a)
        if not self._att_by_volume.get(v.id):
            self.region.twin.scheduler.cancel(v)
            self._enter(v, "available")
        v.touch()

    def detach_legacy(self, v: Volume, attachment_id: str | None) -> None:
        found = self._named_attachments(v, attachment_id)
        if not attachment_id and len(found) > 1:
            raise ApiError(400, "Invalid volume: Volume has more than one attachment: an attachment_id is needed.")
        if not found:          # nothing to detach: Cinder only makes sure the volume is free
            if self.status(v) in ("in-use", "detaching"):
                self.region.twin.scheduler.cancel(v)
                self._enter(v, "available")
            return
        for a in found:
            self._drop_attachment(a)
        if not self._att_by_volume.get(v.id):
            self.region.twin.scheduler.cancel(v)
            self._enter(v, "available")
        v.touch()

    def begin_detaching(self, v: Volume) -> None:
        if self.status(v) != "in-use":
            raise ApiError(400, f"Invalid volume: Volume {v.id} status must be in-use to begin detaching, "
                                f"currently {self.status(v)}.")
        self._enter(v, "detaching_held")
        v.touch()

    def roll_detaching(self, v: Volume) -> None:
        if v.state == "detaching_held":
            self._enter(v, "in-use")
        v.touch()

    # ---- followed from the volume's lifecycle
    def _attachments_attached(self, v: Volume) -> None:
        now = time.time()
        for a in self._att_by_volume.get(v.id, {}).values():
            if a.attach_status == "attaching":
                a.attach_status = "attached"
                a.attached_at = now
                a.touch()

    def _attachments_detached(self, v: Volume) -> None:
        for a in list(self._att_by_volume.get(v.id, {}).values()):
            if a.attach_status == "detaching":
                self._drop_attachment(a)
