"""Cinder's deployment, as the scheduler and the admin APIs see it: one cinder-volume host with one
backend (and pool) per ``volume_backend_name`` of the profile's volume types, a scheduler and a backup
service per zone. The scheduler places a volume on the first backend whose capabilities satisfy its
type's extra specs; when none does the volume goes to ``error`` with a user message, as in Cinder."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cloudtwin.services.cinder.resources import Message, Volume, VolumeType

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

HOST = "twin-volume"
VENDOR = "Open Source"
PROTOCOL = "iSCSI"
CAPACITY_GB = 10_000
MESSAGE_TTL = 30 * 24 * 3600
NO_VALID_HOST = ("VOLUME_000002", "schedule allocate volume:Could not find any available weighted backend.")


@dataclass
class Service:
    binary: str
    host: str
    zone: str
    disabled: bool = False
    disabled_reason: str | None = None
    frozen: bool = False


def backend_names(region: "RegionState") -> list[str]:
    names = []
    for spec in region.cloud.profile.volume_types:
        name = (spec.get("extra_specs") or {}).get("volume_backend_name")
        if name and name not in names:
            names.append(str(name))
    return names or ["lvmdriver-1"]


def capabilities(backend: str) -> dict[str, Any]:
    return {"volume_backend_name": backend, "vendor_name": VENDOR, "storage_protocol": PROTOCOL,
            "driver_version": "3.0.0", "pool_name": backend, "total_capacity_gb": CAPACITY_GB,
            "free_capacity_gb": CAPACITY_GB, "reserved_percentage": 0, "multiattach": True,
            "thin_provisioning_support": True, "QoS_support": False, "timestamp": None}


def pick_backend(region: "RegionState", vtype: VolumeType) -> str | None:
    """The first backend whose capabilities match the type's scheduler-relevant extra specs."""
    for backend in backend_names(region):
        caps = capabilities(backend)
        if all(str(caps.get(k)).lower() == str(v).lower() for k, v in vtype.extra_specs.items()
               if k in ("volume_backend_name", "vendor_name", "storage_protocol")):
            return backend
    return None


def services(region: "RegionState", state: dict[str, Service]) -> list[Service]:
    """The region's services (made on first use, so an admin's enable/disable sticks)."""
    if not state:
        zone = region.zones[0]
        for svc in [Service("cinder-scheduler", HOST, zone), Service("cinder-backup", HOST, zone)] + \
                [Service("cinder-volume", f"{HOST}@{b}", zone) for b in backend_names(region)]:
            state[f"{svc.binary}/{svc.host}"] = svc
    return list(state.values())


def no_valid_host(region: "RegionState", v: Volume, request_id: str) -> Message:
    event, text = NO_VALID_HOST
    now = time.time()
    return Message(id=region.cloud.new_id(), project_id=v.project_id, request_id=request_id,
                   resource_type="VOLUME", resource_uuid=v.id, event_id=event, user_message=text,
                   created_at=now, expires_at=now + MESSAGE_TTL)
