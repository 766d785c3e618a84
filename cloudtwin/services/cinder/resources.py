"""Cinder's stored objects: volumes, attachments, snapshots, backups, transfers, volume types, QoS specs
and user messages (no behaviour here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudtwin.resource import Resource

KIND = "volume"
SNAPSHOT = "snapshot"
BACKUP = "backup"
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
    readonly_set: bool = False                  # os-update_readonly_flag ran: metadata shows "readonly"
    migration_status: str | None = None
    host: str | None = None                     # host@backend#pool the scheduler chose (None: none fit)
    group_id: str | None = None                 # the generic volume group it belongs to
    extending_attached: bool = False            # an in-use extend runs: Nova hears of it when it ends
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


@dataclass
class VolumeType:
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    extra_specs: dict[str, str] = field(default_factory=dict)
    access: list[str] = field(default_factory=list)      # projects of a private type
    qos_specs_id: str | None = None
    encryption: dict[str, Any] | None = None
    builtin: bool = False                               # from the profile


@dataclass(kw_only=True)
class Snapshot(Resource):
    volume_id: str
    user_id: str = ""
    size: int = 1
    description: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)
    progress: str = "0%"
    error: str = ""
    group_snapshot_id: str | None = None        # taken as a member of this group snapshot


@dataclass(kw_only=True)
class Backup(Resource):
    volume_id: str
    user_id: str = ""
    size: int = 1
    description: str | None = None
    availability_zone: str = ""
    container: str | None = None
    snapshot_id: str | None = None
    parent_id: str | None = None                # the backup an incremental one builds on
    is_incremental: bool = False
    metadata: dict[str, str] = field(default_factory=dict)
    data_timestamp: float = 0.0
    fail_reason: str | None = None
    restore_volume_id: str | None = None        # the volume a running restore writes to
    volume_metadata: dict[str, str] = field(default_factory=dict)   # the volume's, restored with the data


@dataclass(kw_only=True)
class Transfer(Resource):
    volume_id: str
    auth_key: str = ""
    salt: str = ""
    crypt_hash: str = ""
    source_project_id: str = ""
    destination_project_id: str | None = None
    accepted: bool = False
    no_snapshots: bool = False


@dataclass(kw_only=True)
class QosSpec(Resource):
    consumer: str = "back-end"
    specs: dict[str, str] = field(default_factory=dict)


@dataclass(kw_only=True)
class Message(Resource):
    """A user message (3.3): why an asynchronous request failed."""
    request_id: str = ""
    resource_type: str = "VOLUME"
    resource_uuid: str | None = None
    event_id: str = ""
    message_level: str = "ERROR"
    user_message: str = ""
    expires_at: float = 0.0


GROUP = "group"
GROUP_SNAPSHOT = "group_snapshot"


@dataclass
class GroupType:
    """A generic volume group type (3.11): what a group's backend must offer, in ``group_specs``."""
    id: str
    name: str
    description: str | None = None
    is_public: bool = True
    group_specs: dict[str, str] = field(default_factory=dict)
    builtin: bool = False                               # Cinder's default_group_type


@dataclass(kw_only=True)
class Group(Resource):
    """A generic volume group (3.13): volumes of the listed types, snapshotted and cloned together."""
    group_type_id: str
    volume_type_ids: list[str] = field(default_factory=list)
    description: str | None = None
    availability_zone: str = ""
    group_snapshot_id: str | None = None        # made from this group snapshot
    source_group_id: str | None = None          # made as a copy of this group
    error: str = ""


@dataclass(kw_only=True)
class GroupSnapshot(Resource):
    """A snapshot of every volume of a group at once (3.14); its member snapshots name it."""
    group_id: str
    group_type_id: str
    description: str | None = None
    error: str = ""


@dataclass(kw_only=True)
class Leftover(Resource):
    """Storage a backend still holds that Cinder no longer manages (after os-unmanage): an LVM logical
    volume named ``volume-<id>`` or ``_snapshot-<id>`` on a backend, which os-volume-manage or
    os-snapshot-manage can take back. ``name`` is the backend's name of it (its ``source-name``)."""
    host: str                                   # host@backend#pool
    size: int = 1
    volume_id: str | None = None                # a snapshot's volume
    is_snapshot: bool = False
