"""The MOCK provider on a shared moto server (``SPIDERTWIN_MOTO_ENDPOINT``), for Spider replicas.

Same interface as the other backends (``executor``, ``client``, ``ensure_images``, ``reset``,
``close``): real boto3 clients with ``endpoint_url`` set to the server, the MockName's account in
moto's ``x-moto-account-id`` header, requests signed with dummy keys (moto's server dispatches by
the signature's service). Calls run in a small thread pool: the server
serialises them itself, and several in flight keep its queue full.

Images: two replicas may register the MOCK images in one account at the same moment; each then
maps a name to the lowest AMI id the account has under it, so every replica uses the same one.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mock_driver.images import ImagesMixin
from mock_driver.moto_backend import DUMMY_KEY

ENDPOINT_ENV = "SPIDERTWIN_MOTO_ENDPOINT"
THREADS = 8


class MotoServerBackend(ImagesMixin):
    def __init__(self, endpoint: str) -> None:
        import boto3
        self.endpoint = endpoint.rstrip("/")
        self.patched = False
        self.executor = ThreadPoolExecutor(max_workers=THREADS, thread_name_prefix="moto-remote")
        self._session = boto3.session.Session(aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY)
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        self._init_images()

    def client(self, account: str, region: str, service: str) -> Any:
        key = (account, region, service)
        c = self._clients.get(key)
        if c is not None:
            return c
        with self._lock:
            c = self._clients.get(key)
            if c is None:
                from botocore.config import Config
                # signed (with dummy keys): the server tells the service from the signature's scope
                cfg = Config(retries={"max_attempts": 1, "mode": "standard"}, max_pool_connections=THREADS)
                c = self._session.client(service, region_name=region, endpoint_url=self.endpoint, config=cfg)
                c.meta.events.register_first("before-send", _account_header(account))
                from mock_driver.fault_hooks import install as install_fault_hooks
                install_fault_hooks(c)
                self._clients[key] = c
        return c

    def _register(self, key: tuple[str, str], names: list[str]) -> dict[str, str]:
        super()._register(key, names)
        account, region = key
        found = self.client(account, region, "ec2").describe_images(
            Owners=["self"], Filters=[{"Name": "name", "Values": names}])["Images"]
        mapping: dict[str, str] = {}
        for image in sorted(found, key=lambda i: i["ImageId"]):
            mapping.setdefault(image["Name"], image["ImageId"])
        with self._images_lock:
            self.images[key] = mapping
        return mapping

    def reset(self) -> None:
        """Empty the shared server (every replica's MOCK state)."""
        import urllib.request
        req = urllib.request.Request(self.endpoint + "/moto-api/reset", method="POST")
        with urllib.request.urlopen(req, timeout=30):  # noqa: S310 - the configured loopback moto server
            pass
        with self._images_lock:
            self.images.clear()

    def status(self) -> dict[str, Any]:
        return {"mode": "server", "endpoint": self.endpoint}

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def _account_header(account: str):
    def add(request: Any, **_: Any) -> None:
        request.headers["x-moto-account-id"] = account
    return add
