"""The in-process moto backend behind the MOCK provider.

* ``MotoBackend`` runs moto inside its process (see below for which process). Instead of ``mock_aws()`` -
  which would patch *every* botocore client of the process, real AWS ones included - only the clients
  made here are routed to moto, by a per-client ``before-send`` hook that hands the request to moto's
  own stubber. State lives in moto's process-wide backends and is lost on restart.
* Strict validation is on (AMI, key pair and instance type must exist) and moto's default AMIs are not
  loaded; the MOCK images are registered per account and region on first use.
* moto is not thread-safe: every call runs in ONE single-worker executor.
* Each credential ``MockName`` gets its own moto account (12 digits derived from a hash of the name),
  passed with the ``x-moto-account-id`` header. Clients are reused per (account, region, service).
* Speed: requests are not signed (``botocore.UNSIGNED``; moto takes the account from the header), and
  ``moto.core.utils.method_names_from_class`` (``inspect.getmembers`` on every request) is memoised per
  class - a guarded monkeypatch that leaves moto untouched if its internals change. Further guarded
  patches (fast exact-match EC2 filters, security group lookup by id, one User-Agent string per
  client, a cached URL -> handler route, a light form-body request for EC2/ELBv2 parameter parsing)
  live in ``mock_driver/moto_speedups.py``.

Where moto runs (``MotoBackend.get()`` picks, once per process):

* default - in ONE dedicated worker process (``mock_driver/moto_worker.py``), a child of the server
  with its own core and GIL. It owns moto and the real boto3 clients (the ``MotoBackend`` of this
  module, in the worker); the server gets ``MotoWorkerBackend`` with client *proxies* that send each
  call over a pipe (pickle) and raise the worker's ``ClientError`` again. The worker starts on first
  use and exits with ``MockDriver.close()``, on SIGTERM, or when the server dies.
* ``SPIDERTWIN_MOTO_INPROCESS=1`` - the escape hatch: moto runs in this process, on the single
  ``moto`` executor thread (the pre-worker mode; moto's CPU then shares the server's GIL).
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

log = logging.getLogger(__name__)

DUMMY_KEY = "testing"
_STRICT = ("MOTO_ENABLE_AMI_VALIDATION", "MOTO_ENABLE_KEYPAIR_VALIDATION",
           "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION")


def account_id(mock_name: str) -> str:
    """A deterministic 12-digit moto account id for a MockName (never the moto default)."""
    n = int.from_bytes(hashlib.sha256(mock_name.encode()).digest()[:8], "big") % 10**11
    return f"9{n:011d}"


def _configure_moto_settings() -> None:
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"  # read when a backend is created
    for name in _STRICT:
        os.environ.setdefault(name, "true")  # for a moto imported after us
    import moto.settings as settings
    # read at moto import time: patch the module attributes too
    settings.ENABLE_AMI_VALIDATION = True
    settings.ENABLE_KEYPAIR_VALIDATION = True
    settings.EC2_ENABLE_INSTANCE_TYPE_VALIDATION = True


_patched = False

# The moto releases the guarded speed-ups were written and tested against (pyproject pins the first).
# moto's internals move between patch releases (5.2.5 rebuilt its request handling), so on any other
# version MOCK runs on plain moto: slower, never wrong.
TESTED_MOTO_VERSIONS = ("5.2.1",)


def speedups_supported() -> bool:
    import moto
    version = getattr(moto, "__version__", "?")
    if version in TESTED_MOTO_VERSIONS:
        return True
    log.warning("moto %s: MOCK speed-ups are tested on moto %s only; running on plain moto", version,
                ", ".join(TESTED_MOTO_VERSIONS))
    return False


def patch_moto_speed() -> bool:
    """Memoise ``method_names_from_class`` per class. Returns True if the patch is active."""
    global _patched
    if _patched:
        return True
    if not speedups_supported():
        return False
    try:
        import moto.core.responses as responses
        import moto.core.utils as utils
        original = getattr(responses, "method_names_from_class", None)
        if original is None or not callable(original):
            log.info("moto internals changed: method_names_from_class not found, not patched")
            return False

        @functools.lru_cache(maxsize=None)
        def _cached(clazz: Any) -> tuple[str, ...]:
            return tuple(original(clazz))

        def method_names_from_class(clazz: Any) -> list[str]:
            try:
                return _cached(clazz)  # type: ignore[return-value]  # a tuple supports `in`
            except TypeError:  # unhashable: fall back
                return original(clazz)

        method_names_from_class.__wrapped__ = original  # type: ignore[attr-defined]
        responses.method_names_from_class = method_names_from_class
        utils.method_names_from_class = method_names_from_class
        _patch_ec2_get_tags()
        from mock_driver.moto_speedups import apply_all
        apply_all()
        _patched = True
        return True
    except Exception as exc:  # noqa: BLE001 - never break the backend for a speed-up
        log.info("moto speed patch not applied: %s", exc)
        return False


def _patch_ec2_get_tags() -> None:
    """``TaggedEC2Resource.get_tags`` scans every tag of the region (``describe_tags`` with a
    resource-id filter) for each resource it serialises: O(all tags) per resource. Replace it with a
    direct lookup in the backend's ``tags[resource_id]`` dict, same result shape. Guarded."""
    try:
        from moto.ec2.models.core import TaggedEC2Resource
        from moto.ec2.utils import EC2_PREFIX_TO_RESOURCE, get_prefix
        original = TaggedEC2Resource.get_tags
        if getattr(original, "_spidertwin", False):
            return

        def get_tags(self: Any) -> list[dict[str, str]]:
            rid = getattr(self, "id", None)
            if not rid:
                return []
            store = getattr(self.ec2_backend, "tags", None)
            if not isinstance(store, dict):
                return original(self)
            tags = store.get(rid)
            if not tags:
                return []
            rtype = EC2_PREFIX_TO_RESOURCE.get(get_prefix(rid), "")
            return [{"resource_id": rid, "key": k, "value": v, "resource_type": rtype}
                    for k, v in tags.items()]

        get_tags._spidertwin = True  # type: ignore[attr-defined]
        TaggedEC2Resource.get_tags = get_tags  # type: ignore[method-assign]
    except Exception as exc:  # noqa: BLE001
        log.info("moto get_tags patch not applied: %s", exc)


INPROCESS_ENV = "SPIDERTWIN_MOTO_INPROCESS"


def inprocess_mode() -> bool:
    """True when ``SPIDERTWIN_MOTO_INPROCESS`` asks for moto in this process (no worker)."""
    return os.environ.get(INPROCESS_ENV, "").strip().lower() in ("1", "true", "yes", "on")


class ImagesMixin:
    """``ensure_images`` for both backends (needs ``client()``, ``images`` and ``_images_lock``)."""

    images: dict[tuple[str, str], dict[str, str]]
    _images_lock: threading.Lock

    def client(self, account: str, region: str, service: str) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def ensure_images(self, account: str, region: str, names: list[str]) -> dict[str, str]:
        """Register the MOCK images as AMIs in (account, region) once; returns name -> AMI id.

        Runs in the moto executor (serialised), so concurrent connects never register twice.
        """
        from spider_core.calllog import call_log
        key = (account, region)
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


_active: Any = None  # the process's MOCK backend (MotoBackend or MotoWorkerBackend)
_active_lock = threading.Lock()


class MotoBackend(ImagesMixin):
    """moto in THIS process (the worker's backend, or the server's with SPIDERTWIN_MOTO_INPROCESS=1)."""

    _instance: "MotoBackend | None" = None
    _instance_lock = threading.Lock()

    def __init__(self, *, speedups: bool = True) -> None:
        _configure_moto_settings()
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse
        from moto.core.models import botocore_stubber

        self._stubber = botocore_stubber
        self._aws_response = AWSResponse
        self._raw = MockRawResponse
        self.speedups = speedups
        self.patched = patch_moto_speed() if speedups else False
        self._process = botocore_stubber.process_request
        if self.patched:
            from mock_driver.moto_speedups import make_url_router
            self._process = make_url_router(botocore_stubber.process_request) or self._process
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moto")
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        import boto3
        self._session = boto3.session.Session(aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY)
        self.images: dict[tuple[str, str], dict[str, str]] = {}  # (account, region) -> name -> ami id
        self._images_lock = threading.Lock()

    @classmethod
    def local(cls) -> "MotoBackend":
        """The in-process backend of this process (created on first use)."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    @classmethod
    def get(cls) -> Any:
        """The MOCK backend of this process: a ``MotoWorkerBackend`` (moto in a worker process), or
        the in-process ``MotoBackend`` when ``SPIDERTWIN_MOTO_INPROCESS=1``. Both offer ``executor``,
        ``client(account, region, service)``, ``ensure_images``, ``reset`` and ``close``."""
        global _active
        with _active_lock:
            if _active is None:
                if inprocess_mode():
                    _active = cls.local()
                else:
                    from mock_driver.moto_worker import MotoWorkerBackend
                    _active = MotoWorkerBackend()
            return _active

    @classmethod
    def shutdown(cls) -> None:
        """Close the process's MOCK backend (stops the worker); the next ``get()`` starts afresh."""
        global _active
        with _active_lock:
            backend, _active = _active, None
        if backend is not None:
            backend.close()
            if backend is cls._instance:
                with cls._instance_lock:
                    cls._instance = None

    def close(self) -> None:
        """Stop the executor. moto's state of an in-process backend stays (it is process-wide)."""
        self.executor.shutdown(wait=True, cancel_futures=True)

    def _send_hook(self, account: str):
        aws_response, raw = self._aws_response, self._raw
        process = self._process

        def send(request: Any, **_: Any) -> Any:
            request.headers["x-moto-account-id"] = account
            result = process(request)
            if result is None:
                raise RuntimeError(f"moto does not handle {request.url}")
            status, headers, body = result
            return aws_response(request.url, status, headers, raw(body))

        return send

    def client(self, account: str, region: str, service: str) -> Any:
        key = (account, region, service)
        c = self._clients.get(key)
        if c is not None:
            return c
        with self._lock:
            c = self._clients.get(key)
            if c is None:
                import botocore
                from botocore.config import Config
                cfg = Config(retries={"max_attempts": 1, "mode": "standard"},
                             signature_version=botocore.UNSIGNED if self.speedups else None)
                c = self._session.client(service, region_name=region, config=cfg)
                # first in the chain: nothing of ours ever reaches the network
                c.meta.events.register_first("before-send", self._send_hook(account))
                from mock_driver.fault_hooks import install as install_fault_hooks
                install_fault_hooks(c)  # MOCK faults (mock_driver/faults.py) answer as AWS would
                if self.speedups:
                    from mock_driver.moto_speedups import cache_user_agent
                    cache_user_agent(c)
                self._clients[key] = c
        return c

    def reset_now(self) -> None:
        """Drop every moto account's state, in the calling thread (the worker's loop uses this)."""
        from moto.backends import get_backend
        for name in ("ec2", "elbv2"):
            get_backend(name).reset()  # type: ignore[no-untyped-call]
        with self._images_lock:
            self.images.clear()

    def reset(self) -> None:
        """Drop every moto account's state (what a process restart does)."""
        self.executor.submit(self.reset_now).result()
