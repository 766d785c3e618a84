"""MyImage handler: AMIs made from instances (create_image, describe_images of the account, deregister)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from spider_core.calllog import RT_MYIMAGE
from spider_core.drivers.aws.session import AwsSession, name_tag, tag_spec, user_tags
from spider_core.drivers.base import MyImageHandler
from spider_core.errors import DriverNotFound
from spider_core.model import IID, KeyValue, MyImageInfo

SOURCE_TAG = "SourceVM"  # the instance an AMI was made from (EC2 does not record it on the image)


def image_not_found(image_id: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidAMIID.NotFound: The image id '[{image_id}]' does not exist")


def _status(state: str) -> str:
    return "Available" if state == "available" else "Unavailable"


class AwsMyImageHandler(MyImageHandler):
    def __init__(self, session: AwsSession) -> None:
        self.s = session

    def _info(self, img: dict[str, Any]) -> MyImageInfo:
        tags = img.get("Tags") or []
        source = next((t.get("Value", "") for t in tags if t.get("Key") == SOURCE_TAG), "")
        created = img.get("CreationDate", "")
        if isinstance(created, datetime):
            created = created.isoformat()
        return MyImageInfo(iid=IID(name_tag(tags) or img.get("Name", ""), img["ImageId"]),
                           source_vm=IID("", source) if source else IID(), status=_status(img.get("State", "")),
                           created_time=str(created or ""),
                           tags=[t for t in user_tags(tags) if t.key != SOURCE_TAG],
                           key_values=[KeyValue("Name", img.get("Name", "")),
                                       KeyValue("Architecture", str(img.get("Architecture", "")))])

    async def _owned(self, image_ids: list[str] | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {"Owners": ["self"]}
        if image_ids is not None:
            kwargs["Filters"] = [{"Name": "image-id", "Values": image_ids}]
        out = await self.s.ec2(RT_MYIMAGE, image_ids[0] if image_ids else "", "describe_images", **kwargs)
        return list(out.get("Images", []))

    async def snapshot_vm(self, req: MyImageInfo) -> MyImageInfo:
        vm_id = req.source_vm.system_id
        tags = tag_spec("image", req.iid.name_id, req.tags)
        tags[0]["Tags"].append({"Key": SOURCE_TAG, "Value": vm_id})
        out = await self.s.ec2(RT_MYIMAGE, req.iid.name_id, "create_image", InstanceId=vm_id, Name=req.iid.name_id,
                               TagSpecifications=tags)
        return await self.get_my_image(IID(req.iid.name_id, out["ImageId"]))

    async def list_my_image(self) -> list[MyImageInfo]:
        return [self._info(i) for i in await self._owned()]

    async def get_my_image(self, iid: IID) -> MyImageInfo:
        image_id = iid.system_id or iid.name_id
        found = await self._owned([image_id])
        if not found:
            raise image_not_found(image_id)
        return self._info(found[0])

    async def check_windows_image(self, iid: IID) -> bool:
        found = await self._owned([iid.system_id])
        return bool(found) and str(found[0].get("Platform", "")).lower() == "windows"

    async def delete_my_image(self, iid: IID) -> bool:
        await self.get_my_image(iid)
        await self.s.ec2(RT_MYIMAGE, iid.name_id, "deregister_image", ImageId=iid.system_id)
        return True

    async def list_iid(self) -> list[IID]:
        return [IID(name_tag(i.get("Tags")) or i.get("Name", ""), i["ImageId"]) for i in await self._owned()]
