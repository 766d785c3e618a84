"""The AWS call path: client factory, bounded executor and the one wrapper every SDK call goes through.

``AwsSession.call`` runs a blocking boto3 call in the driver's executor, inside ``call_log.timed`` (so
every CSP call is recorded), and maps botocore errors onto ``DriverError`` / ``DriverNotFound`` with
the AWS error code and message. Credentials never appear in messages.
"""

from __future__ import annotations

import asyncio
import functools
import threading
from concurrent.futures import Executor
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError

from spider_core.calllog import RT_NLB, call_log
from spider_core.limits import CallLimiter
from spider_core.errors import DriverError, DriverNotFound


ClientFactory = Callable[[str], Any]
"""``factory(service_name) -> boto3 client`` (e.g. ``"ec2"``, ``"elbv2"``)."""


def error_code(exc: BaseException) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", ""))
    return ""


def is_not_found_code(code: str) -> bool:
    return "NotFound" in code or code in ("InvalidInstanceID.Malformed", "InvalidVpcID.Malformed",
                                          "InvalidGroupId.Malformed", "InvalidSubnetID.Malformed")


def map_error(exc: BaseException) -> DriverError:
    """botocore error -> DriverError (DriverNotFound for AWS *NotFound codes). Keeps code + message."""
    if isinstance(exc, DriverError):
        return exc
    if isinstance(exc, ClientError):
        err = exc.response.get("Error", {})
        code = str(err.get("Code", "Unknown"))
        msg = str(err.get("Message", "")).strip()
        text = f"{code}: {msg}" if msg else code
        status = int(exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0)
        cls = DriverNotFound if is_not_found_code(code) else DriverError
        return cls(text, http_status=status, error_code=code)
    if isinstance(exc, BotoCoreError):
        return DriverError(f"{type(exc).__name__}: {exc}")
    return DriverError(f"{type(exc).__name__}: {exc}")


class AwsSession:
    """What every handler of one connection shares: clients, executor and call-log labels."""

    def __init__(self, *, client_factory: ClientFactory, executor: Executor, cloud_os: str,
                 region_zone: str, connection: str = "", limiter: CallLimiter | None = None) -> None:
        self._factory = client_factory
        self._executor = executor
        self.limiter = limiter
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self.cloud_os = cloud_os
        self.region_zone = region_zone
        self.connection = connection

    def client(self, service: str) -> Any:
        c = self._clients.get(service)
        if c is None:
            with self._lock:
                c = self._clients.get(service)
                if c is None:
                    c = self._factory(service)
                    self._clients[service] = c
        return c

    def _run(self, service: str, api: str, resource_type: str, resource_name: str,
             kwargs: dict[str, Any]) -> Any:
        method = getattr(self.client(service), api)
        with call_log.timed(cloud_os=self.cloud_os, region_zone=self.region_zone,
                            resource_type=resource_type, resource_name=resource_name, api=api,
                            connection=self.connection):
            try:
                return method(**kwargs)
            except (ClientError, BotoCoreError) as exc:
                raise map_error(exc) from None

    async def call(self, resource_type: str, resource_name: str, service: str, api: str,
                   **kwargs: Any) -> Any:
        """Run ``client(service).api(**kwargs)`` in the executor; record it; map errors."""
        loop = asyncio.get_running_loop()
        fn = functools.partial(self._run, service, api, resource_type, resource_name, kwargs)
        if self.limiter is None:
            return await loop.run_in_executor(self._executor, fn)
        return await self.limiter.run(lambda: loop.run_in_executor(self._executor, fn))

    async def ec2(self, resource_type: str, resource_name: str, api: str, **kwargs: Any) -> Any:
        return await self.call(resource_type, resource_name, "ec2", api, **kwargs)

    async def elbv2(self, resource_name: str, api: str, **kwargs: Any) -> Any:
        return await self.call(RT_NLB, resource_name, "elbv2", api, **kwargs)


def name_tag(tags: list[dict[str, str]] | None) -> str:
    for t in tags or []:
        if t.get("Key") == "Name":
            return str(t.get("Value", ""))
    return ""


def tag_spec(resource_type: str, name: str, tags: list | None = None) -> list[dict[str, Any]]:
    """TagSpecifications for a create call: ``Name=<spUUID>`` plus the user's tags."""
    items = [{"Key": "Name", "Value": name}]
    for kv in tags or []:
        if kv.key and kv.key != "Name":
            items.append({"Key": kv.key, "Value": kv.value})
    return [{"ResourceType": resource_type, "Tags": items}]


def user_tags(tags: list[dict[str, str]] | None) -> list:
    from spider_core.model import KeyValue
    return [KeyValue(t["Key"], t.get("Value", "")) for t in tags or [] if t.get("Key") != "Name"]


async def paged(session: AwsSession, resource_type: str, name: str, service: str, api: str,
                result_key: str, **kwargs: Any) -> list[Any]:
    """All pages of a describe call (``NextToken`` loop); each page is one recorded call."""
    items: list[Any] = []
    token = None
    while True:
        args = dict(kwargs)
        if token:
            args["NextToken"] = token
        out = await session.call(resource_type, name, service, api, **args)
        items.extend(out.get(result_key, []))
        token = out.get("NextToken")
        if not token:
            return items
