"""Glance v2 state: the cloud's profile images (public, active, same ids in every region) plus the
images users register in one region (metadata only: they stay ``queued`` until data is uploaded,
which this twin does not model).

No HTTP here: the handlers render, this module enforces visibility, ownership and protection.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

from cloudtwin.ids import stable_id
from cloudtwin.errors import ApiError
from cloudtwin.resource import Resource

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

VISIBILITIES = ("public", "private", "shared", "community")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
# keys of a profile image entry that are image fields, not free-form properties
_FIELD_KEYS = {"id", "name", "status", "visibility", "protected", "os_hidden", "size", "virtual_size",
               "min_ram", "min_disk", "disk_format", "container_format", "tags", "owner", "checksum",
               "login_user"}
# properties a user may not set at create (read-only or reserved by Glance)
RESERVED = {"id", "status", "owner", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
            "created_at", "updated_at", "self", "file", "schema", "location", "locations", "direct_url",
            "deleted", "deleted_at"}


@dataclass(kw_only=True)
class Image(Resource):
    status: str = "queued"
    visibility: str = "shared"
    protected: bool = False
    os_hidden: bool = False
    owner: str = ""
    size: int | None = None
    virtual_size: int | None = None
    min_ram: int = 0
    min_disk: int = 0
    disk_format: str | None = None
    container_format: str | None = None
    checksum: str | None = None
    os_hash_value: str | None = None
    tags: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)
    builtin: bool = False
    login_user: str = ""        # the image's default login user (twin VMs), from the profile

    def visible_to(self, project_id: str) -> bool:
        return self.visibility in ("public", "community") or self.owner == project_id


def profile_image(region: "RegionState", spec: dict[str, Any]) -> Image:
    """The ``Image`` of one profile entry; its id depends only on the cloud and the image name."""
    cloud = region.cloud
    name = spec["name"]
    admin = cloud.project(cloud.profile.projects[0] if cloud.profile.projects else "admin", create=True)
    size = spec.get("size")
    digest = hashlib.sha512(f"{cloud.name}/{name}".encode()).hexdigest()
    img = Image(
        id=str(spec.get("id") or stable_id("image", cloud.name, name)),
        project_id=admin.id if admin else "", name=name, created_at=cloud.created_at,
        updated_at=cloud.created_at, status=str(spec.get("status", "active")),
        visibility=str(spec.get("visibility", "public")), protected=bool(spec.get("protected", False)),
        os_hidden=bool(spec.get("os_hidden", False)), owner=admin.id if admin else "",
        size=int(size) if isinstance(size, int) else None,
        virtual_size=spec.get("virtual_size"), min_ram=int(spec.get("min_ram", 0) or 0),
        min_disk=int(spec.get("min_disk", 0) or 0), disk_format=str(spec.get("disk_format", "qcow2")),
        container_format=str(spec.get("container_format", "bare")),
        checksum=hashlib.md5(digest.encode()).hexdigest(), os_hash_value=digest,
        tags=list(spec.get("tags") or []),
        properties={k: v for k, v in spec.items() if k not in _FIELD_KEYS}, builtin=True,
        login_user=str(spec.get("login_user") or ""))
    img.state = img.status
    return img


class GlanceState:
    """One region's images: the profile's (built at start, never stored in snapshots) and users'."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {"images": (Image, "")}

    def __init__(self, region: "RegionState") -> None:
        self.region = region
        self.images: dict[str, Image] = {}
        self.builtin: dict[str, Image] = {}
        for spec in region.cloud.profile.images:
            img = profile_image(region, spec)
            self.builtin[img.id] = img

    # ---- the protocol every state class offers
    def rebuild(self) -> None:
        for img in self.images.values():
            img.removed = False

    def on_enter_for(self, kind: str) -> Any:
        return lambda obj, state, message: None

    def all_objects(self) -> Iterator[Resource]:
        return iter(list(self.images.values()))

    def counts(self) -> dict[str, int]:
        return {"images": len(self.images)}

    # ---- queries
    def find(self, project_id: str, image_id: str) -> Image | None:
        """The image ``image_id`` if ``project_id`` may see it (Nova's boot path uses this)."""
        img = self.builtin.get(image_id) or self.images.get(image_id)
        if img is None or not img.visible_to(project_id):
            return None
        return img

    def get(self, project_id: str, image_id: str) -> Image:
        img = self.find(project_id, image_id)
        if img is None:
            raise ApiError(404, f"No image found with ID {image_id}")
        return img

    def visible(self, project_id: str) -> list[Image]:
        """Every image the project may list, newest first (Glance's default created_at desc, id desc)."""
        out = [i for i in self.builtin.values() if i.visible_to(project_id)]
        out += [i for i in self.images.values() if i.visible_to(project_id)]
        out.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return out

    # ---- changes
    def create(self, project_id: str, *, name: str | None, image_id: str | None = None,
               visibility: str = "shared", protected: bool = False, os_hidden: bool = False,
               min_ram: int = 0, min_disk: int = 0, disk_format: str | None = None,
               container_format: str | None = None, tags: list[str] | None = None,
               properties: dict[str, Any] | None = None) -> Image:
        if visibility not in VISIBILITIES:
            raise ApiError(400, f"Invalid visibility value: {visibility}")
        if disk_format is not None and disk_format not in DISK_FORMATS:
            raise ApiError(400, f"Invalid value '{disk_format}' for 'disk_format'")
        if container_format is not None and container_format not in CONTAINER_FORMATS:
            raise ApiError(400, f"Invalid value '{container_format}' for 'container_format'")
        if min_ram < 0 or min_disk < 0:
            raise ApiError(400, "Cannot set min_ram or min_disk to a negative value.")
        new_id = image_id or self.region.cloud.new_id()
        if new_id in self.images or new_id in self.builtin:
            raise ApiError(409, f"Image with identifier {new_id} already exists!")
        img = Image(id=new_id, project_id=project_id, name=name or "", status="queued",
                    visibility=visibility, protected=protected, os_hidden=os_hidden, owner=project_id,
                    min_ram=min_ram, min_disk=min_disk, disk_format=disk_format,
                    container_format=container_format, tags=list(dict.fromkeys(tags or [])),
                    properties=dict(properties or {}))
        img.state = img.status
        self.images[img.id] = img
        return img

    def set_status(self, image_id: str, status: str, *, size: int | None = None) -> None:
        """Nova's snapshot upload moving an image along (``saving``, then ``active`` with its size);
        an image deleted meanwhile is left alone."""
        img = self.images.get(image_id)
        if img is None:
            return
        img.status = img.state = status
        if size is not None:
            img.size = img.virtual_size = size
            digest = hashlib.sha512(f"{img.id}/{size}".encode()).hexdigest()
            img.checksum, img.os_hash_value = hashlib.md5(digest.encode()).hexdigest(), digest
        img.touch()

    def delete(self, project_id: str, image_id: str) -> None:
        img = self.get(project_id, image_id)
        if img.builtin or img.owner != project_id:
            raise ApiError(403, "You are not permitted to delete this image.")
        if img.protected:
            raise ApiError(403, f"Image {image_id} is protected and cannot be deleted.")
        img.removed = True
        del self.images[image_id]
