"""``os-volume_upload_image``: Cinder copies a volume into a new Glance image. The twin keeps no volume
bytes, so the image holds the volume's size of zeros (a sparse file in Glance's store), with the
checksum and hash of those bytes; the image is made and activated through Glance's model, and the
volume shows ``uploading`` meanwhile, as in Cinder."""

from __future__ import annotations

import asyncio
import hashlib
import os
from typing import Any

from cloudtwin.errors import ApiError
from cloudtwin.routing import Call
from cloudtwin.services.cinder.models import CinderState
from cloudtwin.services.cinder.resources import GIB, Volume
from cloudtwin.services.glance.models import CONTAINER_FORMATS, DISK_FORMATS

_BACKGROUND: set[asyncio.Task[None]] = set()
_ZERO_CHUNK = bytes(1024 * 1024)


def upload_to_image(call: Call, c: CinderState, v: Volume, arg: dict[str, Any]) -> dict[str, Any]:
    status = c.status(v)
    force = bool(arg.get("force", False))
    if status not in ("available", "in-use") or (status == "in-use" and not force):
        raise ApiError(400, f"Invalid volume: Volume {v.id} status must be available or in-use (with force), "
                            f"currently {status}.")
    name = arg.get("image_name")
    if not isinstance(name, str) or not name or len(name) > 255:
        raise ApiError(400, "Invalid input received: image_name is a string of 1 to 255 characters.")
    disk_format = arg.get("disk_format", "raw")
    container_format = arg.get("container_format", "bare")
    if disk_format not in DISK_FORMATS or container_format not in CONTAINER_FORMATS:
        raise ApiError(400, f"Invalid input received: Invalid disk_format {disk_format} or container_format "
                            f"{container_format}.")
    visibility = arg.get("visibility", "private")
    protected = bool(arg.get("protected", False))
    assert call.region is not None
    glance = call.region.glance
    props = {k: str(val) for k, val in v.image_metadata.items()
             if k not in ("image_id", "image_name", "checksum", "size", "disk_format", "container_format",
                          "min_disk", "min_ram")}
    img = glance.create(v.project_id, name=name, visibility=visibility, protected=protected,
                        disk_format=disk_format, container_format=container_format,
                        min_disk=v.size, properties=props)
    glance.begin_upload(img)
    c._enter(v, "uploading_in_use" if status == "in-use" else "uploading")
    job = asyncio.get_running_loop().create_task(_write_zeros(call, glance, img, v.size * GIB))
    _BACKGROUND.add(job)
    job.add_done_callback(_BACKGROUND.discard)
    vt = next((t for t in c.types.values() if t.name == v.volume_type), None)
    return {"id": v.id, "updated_at": None, "status": "uploading", "display_description": v.description,
            "size": v.size, "image_id": img.id, "image_name": name, "container_format": container_format,
            "disk_format": disk_format, "protected": protected, "visibility": visibility,
            "volume_type": ({"id": vt.id, "name": vt.name, "description": vt.description,
                             "is_public": vt.is_public, "extra_specs": dict(vt.extra_specs)} if vt else None)}


async def _write_zeros(call: Call, glance: Any, img: Any, size: int) -> None:
    store = call.twin.image_store
    path = store.path(glance.scope, glance.site.default_store, img.id)
    try:
        digest = await asyncio.to_thread(_sparse_zeros, str(path), size)
    except OSError:
        glance.upload_failed(img)
        return
    if img.id not in glance.images:
        store.remove(glance.scope, glance.site.default_store, img.id)
        return
    glance.data_written(img, size, digest[0], digest[1], [glance.site.default_store])


def _sparse_zeros(path: str, size: int) -> tuple[str, str]:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as fh:
        fh.truncate(size)
    md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha512()
    left = size
    while left > 0:
        chunk = _ZERO_CHUNK if left >= len(_ZERO_CHUNK) else bytes(left)
        md5.update(chunk)
        sha.update(chunk)
        left -= len(chunk)
    return md5.hexdigest(), sha.hexdigest()
