"""The in-process moto backend behind the MOCK provider (``MotoBackend``).

* Instead of ``mock_aws()`` - which would patch *every* botocore client of the process, real AWS ones
  included - only the clients made here are routed to moto: a per-client ``before-send`` hook (a
  public botocore event) hands the request to moto's own stubber, as ``mock_aws()`` does. State lives
  in moto's process-wide backends and is lost on restart.
* Strict validation is on (AMI, key pair and instance type must exist) and moto's default AMIs are not
  loaded; the MOCK images are registered per account and region on first use (``images.py``).
* moto is not thread-safe: every call runs in ONE single-worker executor.
* Each credential ``MockName`` gets its own moto account (``backends.account_id``), passed with the
  ``x-moto-account-id`` header. Clients are reused per (account, region, service).
* Speed: requests are not signed (``botocore.UNSIGNED``, a public botocore setting; moto takes the
  account from the header), and the speed-ups of ``moto_speedups.py`` are applied: small equivalent
  replacements of moto hot spots, each checked against the installed moto before it is used.

Which process runs it: the moto worker (``moto_worker.py``, the default) or the server itself with
``SPIDERTWIN_MOTO_INPROCESS=1``; ``backends.py`` chooses.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from mock_driver.images import ImagesMixin

log = logging.getLogger(__name__)

DUMMY_KEY = "testing"
_STRICT = ("MOTO_ENABLE_AMI_VALIDATION", "MOTO_ENABLE_KEYPAIR_VALIDATION",
           "MOTO_EC2_ENABLE_INSTANCE_TYPE_VALIDATION")


def _configure_moto_settings() -> None:
    os.environ["MOTO_EC2_LOAD_DEFAULT_AMIS"] = "false"  # read when a backend is created
    for name in _STRICT:
        os.environ.setdefault(name, "true")  # for a moto imported after us
    import moto.settings as settings
    # read at moto import time: patch the module attributes too
    settings.ENABLE_AMI_VALIDATION = True
    settings.ENABLE_KEYPAIR_VALIDATION = True
    settings.EC2_ENABLE_INSTANCE_TYPE_VALIDATION = True


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
        self.patched = False
        if speedups:
            from mock_driver.moto_speedups import apply_all
            self.patched = all(apply_all().values())
        self._process = botocore_stubber.process_request
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="moto")
        self._clients: dict[tuple[str, str, str], Any] = {}
        self._lock = threading.Lock()
        import boto3
        self._session = boto3.session.Session(aws_access_key_id=DUMMY_KEY, aws_secret_access_key=DUMMY_KEY)
        self._init_images()

    @classmethod
    def local(cls) -> "MotoBackend":
        """The in-process backend of this process (created on first use)."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    @classmethod
    def forget_local(cls, backend: "MotoBackend") -> None:
        """Drop ``backend`` as this process's in-process backend (after it was closed)."""
        with cls._instance_lock:
            if cls._instance is backend:
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
