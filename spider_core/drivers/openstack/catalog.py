"""Catalogue handlers: images (Glance), VM specs (Nova flavors), regions and zones (Keystone, Nova).

Also the lookups the VM handler needs (image and flavor by name or id), cached for a minute per
connection: catalogues change rarely and a VM create should not list them every time.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from spider_core.drivers.base import ImageHandler, RegionZoneHandler, VMSpecHandler
from spider_core.drivers.openstack.mapping import image_arch, image_distribution, image_platform
from spider_core.calllog import RT_IMAGE, RT_REGIONZONE, RT_SPEC
from spider_core.drivers.openstack.session import OpenStackNotFound, OsSession
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, ImageInfo, KeyValue, RegionZoneInfo, VMSpecInfo, ZoneInfo, ZoneStatus

CATALOG_TTL = 60.0


# ---- images -------------------------------------------------------------------------------------

def image_info(img: dict[str, Any]) -> ImageInfo:
    size = img.get("min_disk") or 0
    if not size and img.get("size"):
        size = max(1, round(int(img["size"]) / 1024 ** 3))
    kvs = [KeyValue(k, str(img[k])) for k in ("visibility", "disk_format", "os_distro", "os_version", "owner")
           if img.get(k)]
    return ImageInfo(iid=IID(img.get("name") or img["id"], img["id"]), name=img.get("name") or img["id"],
                     os_architecture=image_arch(img), os_platform=image_platform(img),
                     os_distribution=image_distribution(img), os_disk_type="default",
                     os_disk_size_gb=str(size) if size else "-1",
                     image_status="Available" if img.get("status") == "active" else "Unavailable",
                     key_values=kvs)


async def all_images(s: OsSession, label: str = "") -> list[dict[str, Any]]:
    return await s.memo("images", CATALOG_TTL,
                        lambda: s.list_all(RT_IMAGE, label, "image", "/images?limit=1000", "images"))


async def find_image(s: OsSession, name_or_id: str, label: str = "") -> dict[str, Any]:
    """The image with this id or name (an exact name match; ids win)."""
    if not name_or_id:
        raise OpenStackNotFound("image name is empty: no image to find")
    for img in await all_images(s, label):
        if img.get("id") == name_or_id:
            return img
    matches = [i for i in await all_images(s, label) if i.get("name") == name_or_id]
    if not matches:  # maybe newer than the cached list
        s.forget("images")
        out = await s.call(RT_IMAGE, label or name_or_id, "image", "GET", f"/images?name={quote(name_or_id)}")
        matches = [i for i in out.get("images", []) if i.get("name") == name_or_id]
        if not matches and len(name_or_id) == 36:
            try:
                return await s.call(RT_IMAGE, label or name_or_id, "image", "GET", f"/images/{name_or_id}")
            except DriverNotFound:
                pass
    if not matches:
        raise OpenStackNotFound(f"image '{name_or_id}' does not exist")
    matches.sort(key=lambda i: (i.get("status") != "active", i.get("created_at", "")))
    return matches[0]


class OsImageHandler(ImageHandler):
    def __init__(self, session: OsSession) -> None:
        self.s = session

    async def list_image(self) -> list[ImageInfo]:
        return [image_info(i) for i in await all_images(self.s) if i.get("status", "active") == "active"]

    async def get_image(self, iid: IID) -> ImageInfo:
        return image_info(await find_image(self.s, iid.system_id or iid.name_id, iid.name_id))

    async def check_windows_image(self, iid: IID) -> bool:
        return (await self.get_image(iid)).os_platform == "Windows"


# ---- flavors ------------------------------------------------------------------------------------

def spec_info(region: str, f: dict[str, Any]) -> VMSpecInfo:
    kvs = [KeyValue("FlavorId", str(f.get("id", "")))]
    if f.get("OS-FLV-EXT-DATA:ephemeral"):
        kvs.append(KeyValue("EphemeralGB", str(f["OS-FLV-EXT-DATA:ephemeral"])))
    return VMSpecInfo(region=region, name=f.get("name") or str(f.get("id", "")),
                      vcpu_count=str(f.get("vcpus", "-1")), mem_size_mib=str(f.get("ram", "-1")),
                      disk_size_gb=str(f.get("disk", "-1")), key_values=kvs)


async def all_flavors(s: OsSession, label: str = "") -> list[dict[str, Any]]:
    return await s.memo("flavors", CATALOG_TTL,
                        lambda: s.list_all(RT_SPEC, label, "compute", "/flavors/detail?is_public=None", "flavors"))


async def find_flavor(s: OsSession, name_or_id: str, label: str = "") -> dict[str, Any]:
    flavors = await all_flavors(s, label)
    for pass_ in (0, 1):
        for f in flavors:
            if str(f.get("id")) == name_or_id or f.get("name") == name_or_id:
                return f
        if pass_ == 0:
            s.forget("flavors")
            flavors = await all_flavors(s, label)
    raise OpenStackNotFound(f"{name_or_id} VMSpec does not exist (no flavor with this name or id)")


class OsVmSpecHandler(VMSpecHandler):
    def __init__(self, session: OsSession) -> None:
        self.s = session

    async def list_vm_spec(self) -> list[VMSpecInfo]:
        return [spec_info(self.s.region, f) for f in await all_flavors(self.s)]

    async def get_vm_spec(self, name: str) -> VMSpecInfo:
        return spec_info(self.s.region, await find_flavor(self.s, name, name))

    async def list_org_vm_spec(self) -> Any:
        return {"flavors": await all_flavors(self.s)}

    async def get_org_vm_spec(self, name: str) -> Any:
        return {"flavor": await find_flavor(self.s, name, name)}


# ---- regions and zones --------------------------------------------------------------------------

def zone_info(z: dict[str, Any]) -> ZoneInfo:
    name = z.get("zoneName", "")
    available = (z.get("zoneState") or {}).get("available")
    status = ZoneStatus.NOT_SUPPORTED.value if available is None else \
        (ZoneStatus.AVAILABLE.value if available else ZoneStatus.UNAVAILABLE.value)
    return ZoneInfo(name=name, display_name=name, csp_display_name=name, status=status)


class OsRegionZoneHandler(RegionZoneHandler):
    def __init__(self, session: OsSession) -> None:
        self.s = session

    async def _zones_raw(self) -> list[dict[str, Any]]:
        out = await self.s.call(RT_REGIONZONE, self.s.region, "compute", "GET", "/os-availability-zone")
        return out.get("availabilityZoneInfo", [])

    async def _regions_raw(self) -> list[dict[str, Any]]:
        try:
            return (await self.s.call(RT_REGIONZONE, "", "identity", "GET", "/regions")).get("regions", [])
        except DriverError:  # a non-admin user may not list regions: use the token catalog's
            regions = await self.s.catalog_regions()
            return [{"id": r, "description": ""} for r in regions]

    @staticmethod
    def _region_names(regions: list[dict[str, Any]]) -> list[str]:
        return [str(r.get("id", "")) for r in regions if r.get("id")]

    def _is_own(self, name: str, names: list[str]) -> bool:
        """The connection's region; a region key the cloud does not list (Cloud-Twin's ``default``
        alias) is the cloud's first region."""
        own = self.s.region if self.s.region in names else (names[0] if names else "")
        return name == own or name == self.s.region

    async def _region(self, name: str, zones: list[ZoneInfo] | None) -> RegionZoneInfo:
        return RegionZoneInfo(name=name, display_name=name, csp_display_name=name, zones=zones or [])

    async def list_region_zone(self) -> list[RegionZoneInfo]:
        names = self._region_names(await self._regions_raw())
        own = [zone_info(z) for z in await self._zones_raw()]
        # other regions' zones need their own compute endpoint: report them for this region only
        return [await self._region(n, own if self._is_own(n, names) else []) for n in names]

    async def get_region_zone(self, name: str) -> RegionZoneInfo:
        names = self._region_names(await self._regions_raw())
        if name not in names and name != self.s.region:
            raise OpenStackNotFound(f"{name} region does not exist")
        zones = [zone_info(z) for z in await self._zones_raw()] if self._is_own(name, names) else []
        return await self._region(name, zones)

    async def list_org_region(self) -> Any:
        return {"regions": await self._regions_raw()}

    async def list_org_zone(self) -> Any:
        return {"availabilityZoneInfo": await self._zones_raw()}
