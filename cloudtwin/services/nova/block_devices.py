"""A server's block devices: boot from volume and the volumes a create asks for, as Nova's compute
API plans them (``block_device_mapping_v2``) and asks Cinder to build and attach them.

No HTTP here: ``volumes.py`` parses the request into ``BlockDevice`` entries; this module checks them
against the region's state before anything is made, then creates and attaches the volumes.
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudtwin.errors import ApiError

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

ROOT_DEVICE = "/dev/vda"
SOURCE_TYPES = ("image", "volume", "snapshot", "blank")
DESTINATION_TYPES = ("local", "volume")


@dataclass(frozen=True)
class BlockDevice:
    """One entry of ``block_device_mapping_v2`` after type checks."""

    source_type: str
    destination_type: str
    uuid: str | None = None
    boot_index: int | None = None
    volume_size: int | None = None
    delete_on_termination: bool = False
    device_name: str | None = None
    volume_type: str | None = None

    @property
    def is_volume(self) -> bool:
        return self.destination_type == "volume"

    @property
    def is_root(self) -> bool:
        return self.boot_index == 0


def boots_from_volume(devices: list[BlockDevice]) -> bool:
    return any(d.is_root and d.is_volume for d in devices)


def root_image(devices: list[BlockDevice]) -> str | None:
    """The image a volume-backed root disk is built from, if any."""
    return next((d.uuid for d in devices if d.is_root and d.source_type == "image"), None)


def check(region: "RegionState", project_id: str, devices: list[BlockDevice], count: int) -> None:
    """Every refusal a create can meet for its block devices, before the first object is made."""
    if sum(1 for d in devices if d.is_root) > 1:
        raise ApiError(400, "Block Device Mapping is Invalid: Boot sequence for the instance and image/block "
                            "device mapping combination is not valid.")
    cinder = region.cinder
    volumes = gigabytes = 0
    named: set[str] = set()
    for d in devices:
        if d.device_name:
            if d.device_name in named:
                raise ApiError(400, f"Block Device Mapping is Invalid: Device name {d.device_name} is used twice.")
            named.add(d.device_name)
        if d.source_type != "blank" and not d.uuid:
            raise ApiError(400, f"Block Device Mapping is Invalid: Missing device UUID for source {d.source_type}.")
        if not d.is_volume:
            if d.source_type == "volume":
                raise ApiError(400, "Block Device Mapping is Invalid: Mapping volume to local is not supported.")
            continue
        if d.source_type == "snapshot":
            raise ApiError(400, f"Invalid snapshot: Snapshot {d.uuid} could not be found.")
        if d.source_type == "volume":
            if count > 1:
                raise ApiError(400, "Block Device Mapping is Invalid: Unable to launch multiple instances with "
                                    "a single configured volume.")
            try:
                v = cinder.get_volume(project_id, d.uuid)
            except ApiError:
                raise ApiError(400, f"Block Device Mapping is Invalid: failed to get volume {d.uuid}.") from None
            status = cinder.status(v)
            if status != "available" and not (v.multiattach and status == "in-use"):
                raise ApiError(400, f"Invalid volume: Volume {v.id} status must be available or downloading to "
                                    f"reserve, but the current status is {status}.")
            if d.is_root and not v.bootable:
                raise ApiError(400, f"Block Device {v.id} is not bootable.")
            continue
        size = d.volume_size
        if d.source_type == "image":
            image = region.glance.find(project_id, d.uuid)
            if image is None:
                raise ApiError(400, f"Image {d.uuid} could not be found.")
            if image.status != "active":
                raise ApiError(400, f"Image {image.id} is not active.")
            # Nova's _check_requested_image: the volume must hold the image and its min_disk (in bytes)
            minimum = max(int(image.min_disk or 0) * 1024 ** 3, int(image.size or 0))
            if size is not None and size * 1024 ** 3 < minimum:
                raise ApiError(400, f"Volume is smaller than the minimum size specified in image metadata. Volume "
                                    f"size is {size * 1024 ** 3} bytes, minimum size is {minimum} bytes.")
            size = size or max(1, -(-minimum // 1024 ** 3))
        elif not size:
            raise ApiError(400, "Block Device Mapping is Invalid: Blank volumes (source: 'blank', dest: 'volume') "
                                "need to have non-zero size.")
        if d.volume_type:
            try:
                cinder.find_type(d.volume_type)
            except ApiError:
                raise ApiError(400, f"Volume type {d.volume_type} could not be found.") from None
        volumes += count
        gigabytes += size * count
    if volumes:
        try:
            cinder.check_quota(project_id, volumes=volumes, gigabytes=gigabytes)
        except ApiError as err:
            raise ApiError(403, f"Volume resource quota exceeded: {err.message}") from None


def attach_all(region: "RegionState", server: Any, devices: list[BlockDevice]) -> None:
    """Create the server's volumes and attach every volume device (root first). They show
    ``attaching`` until the server turns ACTIVE. Run after ``check``; a failure here is rolled back by
    the caller with ``cinder.rollback_server``."""
    cinder = region.cinder
    used = {ROOT_DEVICE}
    for d in sorted((d for d in devices if d.is_volume), key=lambda d: (not d.is_root, d.boot_index is None)):
        device = ROOT_DEVICE if d.is_root else (d.device_name or next_device(used))
        used.add(device)
        made = d.source_type != "volume"
        if made:
            image = region.glance.find(server.project_id, d.uuid) if d.source_type == "image" else None
            v = cinder.create_volume(server.project_id, server.user_id, size=d.volume_size, image=image,
                                     volume_type=d.volume_type, zone=_volume_zone(region, server),
                                     name="", description="", state="boot_attaching")
        else:
            v = cinder.get_volume(server.project_id, d.uuid)
        cinder.attach_to_server(v, server.id, device, host=server.host, boot_index=d.boot_index, made_for_server=made,
                                delete_on_termination=d.delete_on_termination, boot=True)


def _volume_zone(region: "RegionState", server: Any) -> str:
    """Cinder's zone for a server's new volume: the server's, when Cinder has a zone of that name."""
    return server.availability_zone if server.availability_zone in region.zones else region.zones[0]


def next_device(used: set[str]) -> str:
    """The first free ``/dev/vdX`` after the root disk, as libvirt names them (vdb ... vdz, vdaa ...)."""
    letters = string.ascii_lowercase
    for n in range(1, 26 * 27):
        name = letters[n] if n < 26 else letters[n // 26 - 1] + letters[n % 26]
        device = f"/dev/vd{name}"
        if device not in used:
            return device
    raise ApiError(400, "No free device name is left on this instance.")
