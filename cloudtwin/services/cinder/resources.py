"""Cinder's stored objects: volumes, attachments and volume types (no behaviour here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudtwin.resource import Resource

KIND = "volume"
GIB = 1024 ** 3


@dataclass(kw_only=True)
class Volume(Resource):
    name: str | None = None                     # Cinder tells "no name" (null) from "" (Nova's boot volumes)
    user_id: str = ""
    size: int = 1                               # GiB
    availability_zone: str = ""
    description: str | None = None
    volume_type: str = ""                       # the type's name
    metadata: dict[str, str] = field(default_factory=dict)
    bootable: bool = False
    image_metadata: dict[str, Any] = field(default_factory=dict)   # volume_image_metadata, from an image
    source_volid: str | None = None
    snapshot_id: str | None = None
    multiattach: bool = False
    encrypted: bool = False
    readonly: bool = False
    error: str = ""                             # why it last entered an error state (events, not the API)


@dataclass(kw_only=True)
class Attachment(Resource):
    """One attachment of a volume: made by Nova (a block device mapping of a server) or through
    Cinder's attachments API. ``attach_status`` follows the volume: reserved, attaching, attached,
    detaching."""

    volume_id: str
    server_id: str | None = None
    host_name: str | None = None                # the compute host of the server it is attached to
    device: str = ""
    attach_status: str = "reserved"
    attach_mode: str = "rw"
    connector: dict[str, Any] | None = None
    attached_at: float | None = None
    bdm: bool = False                           # Nova knows it (os-volume_attachments, volumes_attached)
    boot_index: int | None = None
    delete_on_termination: bool = False
    made_for_server: bool = False               # Nova created the volume for this server's boot


@dataclass(frozen=True)
class VolumeType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    extra_specs: dict[str, str] = field(default_factory=dict)
