"""The MOCK images as AMIs, registered once per moto account and region (both MOCK backends share it).

Why registered rather than loaded from a file: moto keeps only ``Name`` and ``Description`` of a
registered image, which is all the MOCK needs, and registering per (account, region) on first use
costs two calls instead of loading moto's 1,300 default AMIs into every region.
"""

from __future__ import annotations

import threading
from typing import Any


class ImagesMixin:
    """``ensure_images`` for both backends (they call ``_init_images()`` and offer ``client()``)."""

    images: dict[tuple[str, str], dict[str, str]]
    _images_lock: threading.Lock
    _register_lock: threading.Lock

    def _init_images(self) -> None:
        self.images = {}  # (account, region) -> image name -> AMI id
        self._images_lock = threading.Lock()  # the mapping
        self._register_lock = threading.Lock()  # one registration at a time: connects may run in parallel

    def client(self, account: str, region: str, service: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def ensure_images(self, account: str, region: str, names: list[str]) -> dict[str, str]:
        """Register the MOCK images as AMIs in (account, region) once; returns name -> AMI id.

        Concurrent connects never register twice: the second waits for the first and finds its ids.
        """
        key = (account, region)
        with self._images_lock:
            known = self.images.get(key)
            if known is not None and all(n in known for n in names):
                return known
        with self._register_lock:
            return self._register(key, names)

    def _register(self, key: tuple[str, str], names: list[str]) -> dict[str, str]:
        from spider_core.calllog import call_log
        account, region = key
        with self._images_lock:
            known = self.images.get(key)
            if known is not None and all(n in known for n in names):
                return known
        ec2 = self.client(account, region, "ec2")
        with call_log.timed(cloud_os="MOCK", region_zone=f"{region}/", resource_type="VMIMAGE",
                            resource_name="", api="describe_images"):
            found = ec2.describe_images(Owners=["self"], Filters=[{"Name": "name", "Values": names}])["Images"]
        mapping = {i["Name"]: i["ImageId"] for i in found}
        for name in names:
            if name not in mapping:
                with call_log.timed(cloud_os="MOCK", region_zone=f"{region}/", resource_type="VMIMAGE",
                                    resource_name=name, api="register_image"):
                    mapping[name] = ec2.register_image(Name=name, Description=name,
                                                       RootDeviceName="/dev/sda1")["ImageId"]
        with self._images_lock:
            self.images[key] = mapping
        return mapping
