"""Glance v2 state: the cloud's profile images (public, active, same ids in every region) plus the images
users register in one region, with their data (on disk, through ``store.ImageStore``), members, tags and
import tasks.

An image's status follows Glance's state machine: ``queued`` -> ``saving`` -> ``active`` for a direct
upload, ``queued`` -> ``uploading`` (staged) -> ``importing`` -> ``active`` for an import, ``active`` <->
``deactivated``; a failed upload or import goes back to ``queued``. No HTTP here: the handlers render,
this module enforces visibility, ownership, protection and transitions.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, Iterator

from cloudtwin.errors import ApiError
from cloudtwin.ids import stable_id
from cloudtwin.resource import Resource
from cloudtwin.services.glance.catalog import SiteConfig, site
from cloudtwin.services.glance.metadefs import MetadefState

if TYPE_CHECKING:
    from cloudtwin.clouds import RegionState

VISIBILITIES = ("public", "private", "shared", "community")
DISK_FORMATS = ("ami", "ari", "aki", "vhd", "vhdx", "vmdk", "raw", "qcow2", "vdi", "iso", "ploop")
CONTAINER_FORMATS = ("ami", "ari", "aki", "bare", "ovf", "ova", "docker", "compressed")
MEMBER_STATUSES = ("pending", "accepted", "rejected")
# keys of a profile image entry that are image fields, not free-form properties
_FIELD_KEYS = {"id", "name", "status", "visibility", "protected", "os_hidden", "size", "virtual_size",
               "min_ram", "min_disk", "disk_format", "container_format", "tags", "owner", "checksum",
               "login_user"}
# attributes Glance computes: a client may not set them ("Attribute 'x' is read-only.")
READ_ONLY = {"id", "status", "size", "virtual_size", "checksum", "os_hash_algo", "os_hash_value",
             "created_at", "updated_at", "self", "file", "schema", "direct_url", "stores"}
# attributes Glance keeps to itself ("Attribute 'x' is reserved.")
RESERVED = {"location", "deleted", "deleted_at"}
RESERVED_PREFIX = "os_glance_"
# the image attributes that are not free-form properties
CORE = {"id", "name", "status", "visibility", "protected", "os_hidden", "owner", "size", "virtual_size",
        "min_ram", "min_disk", "disk_format", "container_format", "checksum", "os_hash_algo",
        "os_hash_value", "created_at", "updated_at", "tags", "self", "file", "schema", "locations",
        "direct_url", "stores"}


@dataclass
class Member:
    image_id: str
    member_id: str
    status: str = "pending"
    created_at: float = field(default_factory=time.time)
    updated_at: float = field(default_factory=time.time)


@dataclass(kw_only=True)
class Task(Resource):
    """An asynchronous Glance task: an import of an image's data (``/import``) or a ``POST /v2/tasks``."""
    type: str = "api_image_import"
    status: str = "pending"
    input: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    message: str = ""
    image_id: str | None = None
    request_id: str = ""
    user_id: str = ""
    expires_at: float | None = None


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
    stores: list[str] = field(default_factory=list)       # stores holding the data, in import order
    members: dict[str, Member] = field(default_factory=dict)
    importing_to: list[str] = field(default_factory=list)  # os_glance_importing_to_stores
    failed_import: list[str] = field(default_factory=list)  # os_glance_failed_import
    staged: bool = False
    import_started: bool = False  # an import ran: the os_glance_* import properties show from then on

    def visible_to(self, project_id: str, admin: bool = False) -> bool:
        """Glance's rule: public and community images for all; shared ones for their members too."""
        if admin or self.visibility in ("public", "community") or self.owner == project_id:
            return True
        return self.visibility == "shared" and project_id in self.members

    @property
    def has_data(self) -> bool:
        return bool(self.stores) and not self.builtin


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
        login_user=str(spec.get("login_user") or ""), stores=[site().default_store])
    img.state = img.status
    return img


def check_property_key(key: str) -> None:
    """403 for what a client may never set: read-only and reserved attributes, ``os_glance_*``."""
    if key in READ_ONLY:
        raise ApiError(403, f"Attribute '{key}' is read-only.")
    if key in RESERVED or key.startswith(RESERVED_PREFIX):
        raise ApiError(403, f"Attribute '{key}' is reserved.")


def check_formats(disk_format: str | None, container_format: str | None) -> None:
    if disk_format is not None and disk_format not in DISK_FORMATS:
        raise ApiError(400, f"Invalid value '{disk_format}' for parameter 'disk_format': "
                            f"Provided object does not match schema 'image'")
    if container_format is not None and container_format not in CONTAINER_FORMATS:
        raise ApiError(400, f"Invalid value '{container_format}' for parameter 'container_format': "
                            f"Provided object does not match schema 'image'")


class GlanceState:
    """One region's images: the profile's (built at start, never stored in snapshots) and users'."""

    TABLES: ClassVar[dict[str, tuple[type, str]]] = {"images": (Image, ""), "tasks": (Task, "")}

    def __init__(self, region: "RegionState") -> None:
        self.region = region
        self.site: SiteConfig = site()
        self.images: dict[str, Image] = {}
        self.tasks: dict[str, Task] = {}
        self.builtin: dict[str, Image] = {}
        self._metadefs: MetadefState | None = None
        for spec in region.cloud.profile.images:
            img = profile_image(region, spec)
            self.builtin[img.id] = img

    @property
    def metadefs(self) -> MetadefState:
        """The region's metadata definitions, loaded from the catalogue on first use."""
        if self._metadefs is None:
            admin = next(iter(self.builtin.values()), None)
            self._metadefs = MetadefState(admin.owner if admin else "")
        return self._metadefs

    @property
    def scope(self) -> str:
        """This region's directory under the image store (clouds and regions never share files)."""
        return f"{self.region.cloud.name}.{self.region.name}"

    # ---- the protocol every state class offers
    def rebuild(self) -> None:
        for img in self.images.values():
            img.removed = False

    def on_enter_for(self, kind: str) -> Any:
        return lambda obj, state, message: None

    def all_objects(self) -> Iterator[Resource]:
        return iter([*self.images.values(), *self.tasks.values()])

    def counts(self) -> dict[str, int]:
        return {"images": len(self.images)}

    # ---- queries
    def find(self, project_id: str, image_id: str, *, admin: bool = False) -> Image | None:
        """The image ``image_id`` if ``project_id`` may see it (Nova's boot path uses this)."""
        img = self.builtin.get(image_id) or self.images.get(image_id)
        if img is None or not img.visible_to(project_id, admin):
            return None
        return img

    def get(self, project_id: str, image_id: str, *, admin: bool = False) -> Image:
        img = self.find(project_id, image_id, admin=admin)
        if img is None:
            raise ApiError(404, f"No image found with ID {image_id}")
        return img

    def visible(self, project_id: str, *, admin: bool = False, member_status: str = "accepted") -> list[Image]:
        """Every image the project lists, newest first (Glance's default created_at desc, id desc):
        its own, public ones, and shared ones whose membership has ``member_status`` (``all``: any)."""
        out = []
        for img in [*self.builtin.values(), *self.images.values()]:
            if img.owner == project_id or img.visibility in ("public", "community"):
                out.append(img)
            elif img.visibility == "shared" and project_id in img.members:
                if member_status == "all" or img.members[project_id].status == member_status:
                    out.append(img)
            elif admin:
                out.append(img)
        out.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return out

    def owned(self, project_id: str, image_id: str, *, admin: bool = False, action: str = "modify") -> Image:
        """The image, if the caller may change it: its owner's project (or an admin)."""
        img = self.get(project_id, image_id, admin=admin)
        if img.builtin and not admin:
            raise ApiError(403, f"You are not permitted to {action} this image.")
        if img.owner != project_id and not admin:
            raise ApiError(403, f"You are not permitted to {action} this image.")
        return img

    # ---- changes
    def create(self, project_id: str, *, name: str | None, image_id: str | None = None,
               visibility: str = "shared", protected: bool = False, os_hidden: bool = False,
               min_ram: int = 0, min_disk: int = 0, disk_format: str | None = None,
               container_format: str | None = None, tags: list[str] | None = None,
               properties: dict[str, Any] | None = None, owner: str | None = None) -> Image:
        if visibility not in VISIBILITIES:
            raise ApiError(400, f"Invalid value '{visibility}' for parameter 'visibility'")
        check_formats(disk_format, container_format)
        if min_ram < 0 or min_disk < 0:
            raise ApiError(400, "Cannot set min_ram or min_disk to a negative value.")
        tags = list(dict.fromkeys(tags or []))
        self.check_quotas(tags, properties or {})
        if image_id is not None:
            try:
                uuid.UUID(image_id)
            except ValueError:
                raise ApiError(400, f"Invalid value '{image_id}' for parameter 'id'") from None
        new_id = image_id or self.region.cloud.new_id()
        if new_id in self.images or new_id in self.builtin:
            raise ApiError(409, f"Image with identifier {new_id} already exists!")
        img = Image(id=new_id, project_id=owner or project_id, name=name or "", status="queued",
                    visibility=visibility, protected=protected, os_hidden=os_hidden, owner=owner or project_id,
                    min_ram=min_ram, min_disk=min_disk, disk_format=disk_format,
                    container_format=container_format, tags=tags, properties=dict(properties or {}))
        img.state = img.status
        self.images[img.id] = img
        return img

    def check_quotas(self, tags: list[str], properties: dict[str, Any]) -> None:
        if len(tags) > self.site.tag_quota:
            raise ApiError(413, f"Maximum number of tags exceeded: {self.site.tag_quota}.")
        if len(properties) > self.site.property_quota:
            raise ApiError(413, f"Maximum number of image properties exceeded: {self.site.property_quota}.")
        for t in tags:
            if not isinstance(t, str) or len(t) > 255:
                raise ApiError(400, "Invalid tag: a tag is a string of at most 255 characters.")

    def delete(self, project_id: str, image_id: str, *, admin: bool = False) -> Image:
        img = self.owned(project_id, image_id, admin=admin, action="delete")
        if img.builtin:
            raise ApiError(403, "You are not permitted to delete this image.")
        if img.protected:
            raise ApiError(403, f"Image {image_id} is protected and cannot be deleted.")
        img.removed = True
        img.status = "deleted"
        del self.images[image_id]
        for task in self.tasks.values():
            if task.image_id == image_id and task.status in ("pending", "processing"):
                task.status, task.message = "failure", "The image was deleted during the import."
        self.region.twin.image_store.remove_all(self.scope, image_id, img.stores)
        return img

    def set_status(self, img: Image, status: str) -> None:
        img.status = img.state = status
        img.touch()

    # ---- data
    def begin_upload(self, img: Image) -> None:
        """``queued`` -> ``saving`` (a direct upload); anything else is a conflict."""
        if img.status == "deactivated":
            raise ApiError(403, "This operation is not allowed on a deactivated image.")
        if img.status != "queued":
            raise ApiError(409, f"Image status transition from {img.status} to saving is not allowed")
        self.set_status(img, "saving")

    def begin_stage(self, img: Image) -> None:
        if img.status != "queued":
            raise ApiError(409, f"Image status transition from {img.status} to uploading is not allowed")
        self.set_status(img, "uploading")

    def data_written(self, img: Image, size: int, checksum: str, os_hash_value: str,
                     stores: list[str]) -> None:
        """A finished upload or import: the image becomes ``active`` with its size and hashes."""
        img.size, img.checksum, img.os_hash_value = size, checksum, os_hash_value
        img.virtual_size = img.virtual_size or (size if img.disk_format in ("raw", "iso") else None)
        for s in stores:
            if s not in img.stores:
                img.stores.append(s)
        img.staged = False
        self.set_status(img, "active")

    def upload_failed(self, img: Image) -> None:
        """A broken or refused upload: back to ``queued``, as if nothing had been sent."""
        img.staged = False
        if img.id in self.images and img.status in ("saving", "uploading"):
            self.set_status(img, "queued")

    def staged(self, img: Image, size: int) -> None:
        img.staged = True
        img.properties["os_glance_stage_host"] = "twin"
        img.size = size

    def deactivate(self, img: Image) -> None:
        if img.status == "deactivated":
            return
        if img.status != "active":
            raise ApiError(403, f"Not allowed to deactivate image in status '{img.status}'")
        self.set_status(img, "deactivated")

    def reactivate(self, img: Image) -> None:
        if img.status == "active":
            return
        if img.status != "deactivated":
            raise ApiError(403, f"Not allowed to reactivate image in status '{img.status}'")
        self.set_status(img, "active")

    # ---- tags
    def add_tag(self, img: Image, tag: str) -> None:
        if len(tag) > 255:
            raise ApiError(400, "Invalid tag: a tag is a string of at most 255 characters.")
        if tag not in img.tags:
            if len(img.tags) >= self.site.tag_quota:
                raise ApiError(413, f"Maximum number of tags exceeded: {self.site.tag_quota}.")
            img.tags.append(tag)
        img.touch()

    def remove_tag(self, img: Image, tag: str) -> None:
        if tag not in img.tags:
            raise ApiError(404, f"Tag {tag} not found on image {img.id}.")
        img.tags.remove(tag)
        img.touch()

    # ---- members
    def add_member(self, project_id: str, image_id: str, member_id: str, *, admin: bool = False) -> Member:
        img = self.owned(project_id, image_id, admin=admin, action="share")
        if img.visibility != "shared":
            raise ApiError(403, f"Only shared images have members.")
        if member_id in img.members:
            raise ApiError(409, f"Member {member_id} already exists for image {image_id}.")
        if len(img.members) >= self.site.member_quota:
            raise ApiError(413, f"Maximum number of image members exceeded: {self.site.member_quota}.")
        member = Member(image_id, member_id)
        img.members[member_id] = member
        return member

    def members_of(self, project_id: str, image_id: str, *, admin: bool = False) -> list[Member]:
        img = self.get(project_id, image_id, admin=admin)
        if img.visibility != "shared":
            raise ApiError(403, "Only shared images have members.")
        if img.owner == project_id or admin:
            return sorted(img.members.values(), key=lambda m: m.created_at)
        return [img.members[project_id]] if project_id in img.members else []

    def member(self, project_id: str, image_id: str, member_id: str, *, admin: bool = False) -> Member:
        img = self.get(project_id, image_id, admin=admin)
        member = img.members.get(member_id)
        if member is None or (img.owner != project_id and member_id != project_id and not admin):
            raise ApiError(404, f"Member {member_id} not found for image {image_id}.")
        return member

    def set_member_status(self, project_id: str, image_id: str, member_id: str, status: str) -> Member:
        img = self.get(project_id, image_id)
        member = img.members.get(member_id)
        if member is None:
            raise ApiError(404, f"Member {member_id} not found for image {image_id}.")
        if member_id != project_id:
            raise ApiError(403, "You are not permitted to modify 'status' on this image member.")
        if status not in MEMBER_STATUSES:
            raise ApiError(400, f"Invalid status: {status}. Expected one of {', '.join(MEMBER_STATUSES)}.")
        member.status, member.updated_at = status, time.time()
        return member

    def remove_member(self, project_id: str, image_id: str, member_id: str, *, admin: bool = False) -> None:
        img = self.get(project_id, image_id, admin=admin)
        if member_id not in img.members:
            raise ApiError(404, f"Member {member_id} not found for image {image_id}.")
        if img.owner != project_id and not admin:
            raise ApiError(403, "You are not permitted to delete this image member.")
        del img.members[member_id]

    # ---- tasks
    def new_task(self, project_id: str, *, type_: str, input_: dict[str, Any], image_id: str | None,
                 request_id: str, user_id: str) -> Task:
        task = Task(id=str(uuid.uuid4()), project_id=project_id, type=type_, input=input_,
                    image_id=image_id, request_id=request_id, user_id=user_id)
        self.tasks[task.id] = task
        return task

    def finish_task(self, task: Task, status: str, message: str = "",
                    result: dict[str, Any] | None = None) -> None:
        task.status, task.message, task.result = status, message, result
        task.expires_at = time.time() + 48 * 3600
        task.touch()

    def task(self, project_id: str, task_id: str, *, admin: bool = False) -> Task:
        task = self.tasks.get(task_id)
        if task is None or (task.project_id != project_id and not admin):
            raise ApiError(404, f"Task with identifier {task_id} not found")
        return task
