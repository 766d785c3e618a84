"""Server operations that take more than one lifecycle action: snapshots and backups into Glance,
rebuild, resize and cold migration (with confirm and revert), live migration, evacuation, rescue,
shelve and unshelve, state reset. Each checks the server's state, records a migration where Nova
does, and starts the action's stages (``stages.yaml``); what happens when a stage is reached (the
image turns active, the flavor and host change) is ``on_enter``. No HTTP here.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from cloudtwin.errors import ApiError
from cloudtwin.services.nova.records import Migration

if TYPE_CHECKING:
    from cloudtwin.services.nova.models import Flavor, NovaState, Server

SNAPSHOT_SIZE = 21430272      # bytes of a snapshot whose base image has no size


# ---- snapshots and backups ---------------------------------------------------------------------------

def _glance(nova: "NovaState") -> Any:
    return nova.region.glance


def _snapshot_image(nova: "NovaState", s: "Server", user_id: str, name: str, kind: str,
                    extra: dict[str, Any]) -> Any:
    glance = _glance(nova)
    base = glance.builtin.get(s.image_id) or glance.images.get(s.image_id) if s.image_id else None
    props: dict[str, Any] = {}
    if base is not None:
        props.update({k: v for k, v in base.properties.items() if k not in ("login_user",)})
    props.update({"image_type": kind, "instance_uuid": s.id, "base_image_ref": s.image_id or "",
                  "user_id": user_id, "image_location": "snapshot", "image_state": "available",
                  "owner_project_name": _project_name(nova, s.project_id)})
    props.update(extra)
    if not s.image_id:        # volume-backed: the image only carries the block device mapping
        props["bdm_v2"] = "True"
        props["root_device_name"] = "/dev/vda"
    img = glance.create(s.project_id, name=name, visibility="private",
                        min_disk=max(getattr(base, "min_disk", 0) or 0, s.disk),
                        min_ram=getattr(base, "min_ram", 0) or 0,
                        disk_format=getattr(base, "disk_format", None) or "qcow2", container_format="bare",
                        properties=props)
    img.login_user = getattr(base, "login_user", "") or ""
    return img


def _project_name(nova: "NovaState", project_id: str) -> str:
    proj = nova.region.cloud.project(project_id)
    return proj.name if proj is not None else project_id


def create_image(nova: "NovaState", s: "Server", user_id: str, name: str,
                 metadata: dict[str, str] | None = None) -> Any:
    """``createImage``: a private Glance image of the server (queued, saving, then active)."""
    nova.check_action(s, "createImage")
    img = _snapshot_image(nova, s, user_id, name, "snapshot", dict(metadata or {}))
    s.pending_images.append(img.id)
    nova.action(s, "createImage")
    return img


def create_backup(nova: "NovaState", s: "Server", user_id: str, name: str, backup_type: str, rotation: int,
                  metadata: dict[str, str] | None = None) -> Any:
    """``createBackup``: like a snapshot, then only the ``rotation`` newest backups of that type stay."""
    nova.check_action(s, "createBackup")
    img = None
    if rotation > 0:
        img = _snapshot_image(nova, s, user_id, name, "backup", {"backup_type": backup_type, **(metadata or {})})
        s.pending_images.append(img.id)
    glance = _glance(nova)
    backups = sorted((i for i in glance.images.values()
                      if i.properties.get("image_type") == "backup" and i.properties.get("instance_uuid") == s.id
                      and i.properties.get("backup_type") == backup_type),
                     key=lambda i: (i.created_at, i.id), reverse=True)
    for old in backups[rotation:]:
        glance.delete(old.owner, old.id, admin=True)
    nova.action(s, "createBackup")
    return img


def _pending(nova: "NovaState", s: "Server") -> list[Any]:
    """The snapshots of ``s`` still in Glance (one deleted meanwhile is left alone)."""
    glance = _glance(nova)
    return [glance.images[iid] for iid in s.pending_images if iid in glance.images]


def _images_saving(nova: "NovaState", s: "Server") -> None:
    for img in _pending(nova, s):
        if img.status == "queued":
            _glance(nova).begin_upload(img)


def _images_done(nova: "NovaState", s: "Server") -> None:
    glance = _glance(nova)
    base = glance.builtin.get(s.image_id) or glance.images.get(s.image_id) if s.image_id else None
    size = getattr(base, "size", None) or SNAPSHOT_SIZE if s.image_id else 0
    for img in _pending(nova, s):
        digest = hashlib.sha512(f"{img.id}/{size}".encode()).hexdigest()
        glance.data_written(img, size, hashlib.md5(digest.encode()).hexdigest(), digest, [])
    s.pending_images.clear()


# ---- rebuild, rescue ---------------------------------------------------------------------------------

def rebuild(nova: "NovaState", s: "Server", image_id: str, *, name: str | None = None,
            metadata: dict[str, str] | None = None, key_name: Any = ..., user_data: Any = ...,
            description: Any = ..., access_ipv4: str | None = None, access_ipv6: str | None = None) -> None:
    nova.check_action(s, "rebuild")
    image = _glance(nova).find(s.project_id, image_id)
    if image is None:
        raise ApiError(400, f"Image {image_id} could not be found.")
    if image.status != "active":
        raise ApiError(400, f"Image {image.id} is not active.")
    flavor = nova.flavors.get(s.flavor_id)
    if flavor is not None and flavor.disk and image.min_disk > flavor.disk and s.image_id:
        raise ApiError(400, "Flavor's disk is too small for requested image.")
    if key_name is not ... and key_name is not None and \
            (s.user_id, s.project_id, key_name) not in nova.keypair_index():
        raise ApiError(400, "Invalid key_name provided.")
    if s.image_id:
        s.image_id = image.id
    if metadata is not None:
        s.metadata = dict(metadata)
    if key_name is not ...:
        s.key_name = key_name
    if user_data is not ...:
        s.user_data = user_data
    nova.update_server(s, name=name, description=description, access_ipv4=access_ipv4, access_ipv6=access_ipv6)
    nova.action(s, "rebuild")


def rescue(nova: "NovaState", s: "Server", image_id: str | None) -> None:
    nova.check_action(s, "rescue")
    if image_id and _glance(nova).find(s.project_id, image_id) is None:
        raise ApiError(400, f"Image {image_id} could not be found.")
    nova.action(s, "rescue")


# ---- moves -------------------------------------------------------------------------------------------

def _migration(nova: "NovaState", s: "Server", user_id: str, kind: str, dest: str,
               new_flavor: "Flavor | None" = None, status: str = "pre-migrating") -> Migration:
    m = nova.new_migration(s, user_id, kind, dest, new_flavor.id if new_flavor else s.flavor_id, status)
    s.migration_id = m.id
    return m


def _dest(nova: "NovaState", s: "Server", *, host: str | None = None, same_host_ok: bool = False) -> str:
    """A host for ``s`` in its zone, other than its own (or its own, for a resize, if no other fits)."""
    hosts = nova.hosts
    if host is not None:
        if host not in hosts.hosts:
            raise ApiError(400, f"Compute host {host} could not be found.")
        if host == s.host:
            raise ApiError(400, f"The target host can't be the same one.")
    try:
        return nova.place(s.availability_zone, s.project_id, group_of=s.id, exclude=[s.host], host=host)
    except ApiError:
        if same_host_ok and host is None:
            return nova.place(s.availability_zone, s.project_id, group_of=s.id)
        raise


def resize(nova: "NovaState", s: "Server", flavor: "Flavor", user_id: str) -> Migration:
    nova.check_action(s, "resize")
    if flavor.id == s.flavor_id:
        raise ApiError(400, "When resizing, instances must change flavor!")
    if flavor.disabled:
        raise ApiError(400, f"Flavor {flavor.id} is disabled.")
    if s.image_id and flavor.disk < s.disk:
        raise ApiError(400, "Resize error: Unable to resize disk down.")
    nova.check_quota_delta(s.project_id, flavor.vcpus - s.vcpus, flavor.ram - s.ram)
    dest = _dest(nova, s, same_host_ok=True)
    m = _migration(nova, s, user_id, "resize", dest, flavor)
    nova.action(s, "resize")
    return m


def migrate(nova: "NovaState", s: "Server", user_id: str, host: str | None = None) -> Migration:
    nova.check_action(s, "migrate")
    dest = _dest(nova, s, host=host)
    m = _migration(nova, s, user_id, "migration", dest)
    nova.action(s, "migrate")
    return m


def live_migrate(nova: "NovaState", s: "Server", user_id: str, host: str | None = None) -> Migration:
    nova.check_action(s, "os-migrateLive")
    dest = _dest(nova, s, host=host)
    m = _migration(nova, s, user_id, "live-migration", dest, status="queued")
    nova.action(s, "os-migrateLive")
    return m


def evacuate(nova: "NovaState", s: "Server", user_id: str, host: str | None = None) -> Migration:
    nova.check_action(s, "evacuate")
    src = nova.hosts.hosts.get(s.host)
    if src is not None and src.up:
        raise ApiError(400, f"Compute service of {s.host} is still in use.")
    dest = _dest(nova, s, host=host)
    m = _migration(nova, s, user_id, "evacuation", dest, status="accepted")
    nova.action(s, "evacuate")
    return m


def confirm_resize(nova: "NovaState", s: "Server") -> None:
    m = nova.migrations.get(s.migration_id or "")
    if s.state != "VERIFY_RESIZE" or m is None:
        raise ApiError(400, f"Instance has not been resized.") if s.state != "VERIFY_RESIZE" else \
            ApiError(404, f"Migration for instance {s.id} could not be found.")
    m.status = "confirming"
    nova.action(s, "confirmResize")


def revert_resize(nova: "NovaState", s: "Server") -> None:
    m = nova.migrations.get(s.migration_id or "")
    if s.state != "VERIFY_RESIZE" or m is None:
        raise ApiError(400, f"Instance has not been resized.")
    nova.check_action(s, "revertResize")
    if m.old_flavor_id != s.flavor_id:
        nova.change_flavor(s, m.old_flavor_id, *m.old_flavor)
    s.host = m.source_compute
    m.status = "reverting"
    nova.action(s, "revertResize")


# ---- shelve --------------------------------------------------------------------------------------------

def shelve(nova: "NovaState", s: "Server", user_id: str) -> None:
    nova.check_action(s, "shelve")
    if s.image_id:
        img = _snapshot_image(nova, s, user_id, f"{s.name}-shelved", "snapshot", {})
        s.pending_images.append(img.id)
        s.shelved_image = img.id
    nova.action(s, "shelve")


def unshelve(nova: "NovaState", s: "Server", zone: str | None = None, host: str | None = None) -> None:
    nova.check_action(s, "unshelve")
    if (zone or host) and s.state != "SHELVED_OFFLOADED":
        raise ApiError(409, f"The availability_zone or host parameter can only be given for a server in "
                            f"SHELVED_OFFLOADED state.")
    if zone:
        if zone not in nova.hosts.zones():
            raise ApiError(400, f"The requested availability zone is not available")
        nova.move_zone(s, zone)
    if host:
        if host not in nova.hosts.hosts:
            raise ApiError(400, f"Compute host {host} could not be found.")
        s.unshelve_host = host
    nova.action(s, "unshelve")


# ---- what a stage does when it is reached --------------------------------------------------------------

def on_enter(nova: "NovaState", s: "Server", state: str, previous: str) -> None:
    """Side effects of ``s`` reaching ``state`` (from ``previous``), before listeners hear of it."""
    m = nova.migrations.get(s.migration_id or "")
    if state in ("IMAGE_UPLOADING", "SHELVE_UPLOADING", "BACKING_UP"):
        _images_saving(nova, s)
    elif state == "SHELVED":
        _images_done(nova, s)
    elif state == "SHELVED_OFFLOADED":
        s.host = ""
    elif state == "RESIZE_MIGRATING" and m is not None:
        m.status = "migrating"
    elif state == "RESIZE_FINISH" and m is not None:
        m.status = "post-migrating"
    elif state == "VERIFY_RESIZE" and m is not None:
        new = nova.flavors.get(m.new_flavor_id)
        if new is not None and new.id != s.flavor_id:
            nova.change_flavor(s, new.id, new.vcpus, new.ram, new.disk)
        s.host = m.dest_compute
        m.status = "finished"
    elif state == "LIVE_MIGRATING" and m is not None:
        m.status = "running"
    if state == "ERROR" and m is not None:
        m.status = "error"
        s.migration_id = None


def on_settle(nova: "NovaState", s: "Server", previous: str) -> None:
    """``s`` reached a stable state after ``previous``: finish what the operation started."""
    _images_done(nova, s)
    m = nova.migrations.get(s.migration_id or "")
    if previous == "UNSHELVING":
        host = s.unshelve_host
        s.unshelve_host = None
        s.host = host if host else nova.place(s.availability_zone, s.project_id, group_of=s.id)
        if s.shelved_image:
            img = _glance(nova).images.get(s.shelved_image)
            if img is not None:
                _glance(nova).delete(img.owner, img.id, admin=True)
            s.shelved_image = None
    if m is None:
        return
    if previous == "CONFIRMING_RESIZE":
        m.status = "confirmed"
    elif previous == "REVERTING_RESIZE":
        m.status = "reverted"
    elif previous in ("LIVE_MIGRATING", "REBUILD_EVACUATING"):
        s.host = m.dest_compute
        m.status = "completed" if previous == "LIVE_MIGRATING" else "done"
    else:
        return
    m.touch()
    s.migration_id = None


def reset_state(nova: "NovaState", s: "Server", state: str) -> None:
    """``os-resetState``: ``active`` or ``error``, at once, whatever was going on."""
    target = {"active": "ACTIVE", "error": "ERROR"}[state]
    nova.force_state(s, target)
    if target == "ERROR":
        s.fault = None
