"""Image handler: describe_images. The public catalogue is huge, so the list is capped."""

from __future__ import annotations

from typing import Any

from spider_core.calllog import RT_IMAGE
from spider_core.drivers.aws.session import AwsSession
from spider_core.drivers.base import ImageHandler
from spider_core.errors import DriverNotFound
from spider_core.model import IID, ImageInfo, KeyValue

LIST_LIMIT = 1000
_ARCH = {"x86_64": "x86_64", "arm64": "arm64", "i386": "x86_32", "x86_64_mac": "x86_64_mac",
         "arm64_mac": "arm64_mac"}


def image_info(img: dict[str, Any]) -> ImageInfo:
    root = img.get("RootDeviceName", "")
    size, dtype = "-1", ""
    for bdm in img.get("BlockDeviceMappings", []):
        if bdm.get("DeviceName") == root and "Ebs" in bdm:
            size = str(bdm["Ebs"].get("VolumeSize", "-1"))
            dtype = str(bdm["Ebs"].get("VolumeType", ""))
    windows = str(img.get("Platform", "")).lower() == "windows"
    return ImageInfo(iid=IID(img["ImageId"], img["ImageId"]), name=img.get("Name", ""),
                     os_architecture=_ARCH.get(img.get("Architecture", ""), "NA"),
                     os_platform="Windows" if windows else "Linux/UNIX",
                     os_distribution=img.get("Description", "") or img.get("Name", ""),
                     os_disk_type=dtype, os_disk_size_gb=size,
                     image_status="Available" if img.get("State") == "available" else "Unavailable",
                     key_values=[KeyValue("OwnerId", str(img.get("OwnerId", "")))])


class AwsImageHandler(ImageHandler):
    def __init__(self, session: AwsSession) -> None:
        self.s = session

    async def list_image(self) -> list[ImageInfo]:
        out = await self.s.ec2(RT_IMAGE, "", "describe_images", Owners=["amazon"],
                               Filters=[{"Name": "state", "Values": ["available"]},
                                        {"Name": "image-type", "Values": ["machine"]}],
                               MaxResults=LIST_LIMIT)
        return [image_info(i) for i in out["Images"]]

    async def get_image(self, iid: IID) -> ImageInfo:
        image_id = iid.system_id or iid.name_id
        out = await self.s.ec2(RT_IMAGE, image_id, "describe_images", ImageIds=[image_id])
        if not out["Images"]:
            raise DriverNotFound(f"InvalidAMIID.NotFound: The image id '[{image_id}]' does not exist")
        return image_info(out["Images"][0])
