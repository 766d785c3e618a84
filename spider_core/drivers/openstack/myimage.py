"""MyImage handler: Nova ``createImage`` of a server into Glance (CB-Spider's OpenStack driver); the
image is found again by its id, listed as this project's snapshot images, deleted in Glance."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_MYIMAGE
from spider_core.drivers.base import MyImageHandler
from spider_core.drivers.openstack.session import OpenStackError, OpenStackNotFound, OsSession, wait_until
from spider_core.errors import DriverError
from spider_core.model import IID, KeyValue, MyImageInfo

SOURCE_KEY = "instance_uuid"  # what Nova records on a snapshot image
CREATE_TIMEOUT = 600.0


def _status(img: dict[str, Any]) -> str:
    return "Available" if img.get("status") == "active" else "Unavailable"


class OsMyImageHandler(MyImageHandler):
    def __init__(self, session: OsSession, *, poll_interval: float = 0.2) -> None:
        self.s = session
        self.poll_interval = poll_interval

    def _info(self, img: dict[str, Any]) -> MyImageInfo:
        source = str(img.get(SOURCE_KEY) or img.get("spider_source_vm") or "")
        return MyImageInfo(iid=IID(img.get("name") or "", img["id"]), source_vm=IID("", source) if source else IID(),
                           status=_status(img), created_time=str(img.get("created_at", "") or ""),
                           key_values=[KeyValue("Status", str(img.get("status", ""))),
                                       KeyValue("Visibility", str(img.get("visibility", "")))])

    async def _image(self, iid: IID) -> dict[str, Any]:
        image_id = iid.system_id or iid.name_id
        try:
            return await self.s.call(RT_MYIMAGE, iid.name_id or image_id, "image", "GET", f"/images/{image_id}")
        except OpenStackNotFound:
            raise OpenStackNotFound(f"ImageNotFound: Image {image_id} could not be found.") from None

    async def snapshot_vm(self, req: MyImageInfo) -> MyImageInfo:
        vm_id = req.source_vm.system_id
        meta = {kv.key[:255]: kv.value[:255] for kv in req.tags if kv.key}
        meta["spider_source_vm"] = vm_id
        out = await self.s.call(RT_MYIMAGE, req.iid.name_id, "compute", "POST", f"/servers/{vm_id}/action",
                                {"createImage": {"name": req.iid.name_id, "metadata": meta}},
                                api="POST compute/servers/action:createImage",
                                headers={"OpenStack-API-Version": "compute 2.45", "X-OpenStack-Nova-API-Version": "2.45"})
        image_id = (out or {}).get("image_id")
        if not image_id:
            raise DriverError(f"createImage of {vm_id} answered no image_id (Nova before microversion 2.45)")

        async def active() -> dict[str, Any] | None:
            img = await self._image(IID(req.iid.name_id, image_id))
            if img.get("status") in ("killed", "deleted", "deactivated"):
                raise OpenStackError(f"image {image_id} of VM {vm_id} went to {img.get('status')}",
                                     error_type="ImageError")
            return img if img.get("status") == "active" else None

        img = await wait_until(active, timeout=CREATE_TIMEOUT, interval=self.poll_interval,
                               what=f"the image of VM {vm_id} to become active")
        info = self._info(img)
        info.iid = IID(req.iid.name_id, image_id)
        info.tags = list(req.tags)
        return info

    async def _mine(self) -> list[dict[str, Any]]:
        project = await self.s.project_id()
        images = await self.s.list_all(RT_MYIMAGE, "", "image", f"/images?owner={project}", "images")
        return [i for i in images if i.get("image_type") == "snapshot" or i.get(SOURCE_KEY)
                or i.get("spider_source_vm")]

    async def list_my_image(self) -> list[MyImageInfo]:
        return [self._info(i) for i in await self._mine()]

    async def get_my_image(self, iid: IID) -> MyImageInfo:
        return self._info(await self._image(iid))

    async def check_windows_image(self, iid: IID) -> bool:
        img = await self._image(iid)
        return str(img.get("os_type", "")).lower() == "windows"

    async def delete_my_image(self, iid: IID) -> bool:
        await self._image(iid)
        await self.s.call(RT_MYIMAGE, iid.name_id, "image", "DELETE", f"/images/{iid.system_id}")
        return True

    async def list_iid(self) -> list[IID]:
        return [IID(i.get("name") or "", i["id"]) for i in await self._mine()]
