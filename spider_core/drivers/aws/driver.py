"""``AwsDriver``: the boto3 driver for real AWS."""

from __future__ import annotations

import threading
from typing import Any

from spider_core.drivers.aws.connection import build_connection
from spider_core.drivers.aws.session import AwsSession
from spider_core.drivers.aws.view import AwsView
from spider_core.drivers.base import CloudConnection, ConnectionInfo, DriverCapability, PooledDriver
from spider_core.errors import DriverError

# AWS name limits where they are shorter than 255 (contract 3.2 sizes spUUIDs to fit).
ID_MAX_LENGTH = {"nlb": 32}
# CB-Spider's AWS driver tags these (its TagSupportResourceType), plus Elastic IPs and ENIs
TAG_TYPES = ("vpc", "subnet", "sg", "keypair", "vm", "nlb", "disk", "myimage", "publicip", "nic")


def credential_value(credential: dict[str, str], key: str) -> str:
    for k, v in credential.items():
        if k.lower() == key.lower():
            return v
    return ""


class AwsDriver(PooledDriver):
    provider_name = "AWS"


    def capability(self) -> DriverCapability:
        return DriverCapability(zone_based_control=True, region_zone_handler=True, image_handler=True,
                                vmspec_handler=True, vpc_handler=True, security_handler=True,
                                keypair_handler=True, vm_handler=True, nlb_handler=True, vpc_cidr=True,
                                probe_ssh_after_start=True, disk_handler=True, myimage_handler=True,
                                tag_handler=True, public_ip_handler=True, nic_handler=True, price_info_handler=True,
                                tag_support_resource_types=TAG_TYPES)

    def credential_keys(self) -> list[str]:
        return ["ClientId", "ClientSecret"]

    def region_keys(self) -> list[str]:
        return ["Region", "Zone"]

    def id_max_length(self, resource_type: str) -> int:
        return ID_MAX_LENGTH.get(resource_type.lower(), 255)

    async def connect(self, info: ConnectionInfo) -> CloudConnection:
        import boto3
        from botocore.config import Config

        key_id = credential_value(info.credential, "ClientId")
        secret = credential_value(info.credential, "ClientSecret")
        if not key_id or not secret:
            raise DriverError("AWS credential needs ClientId and ClientSecret")
        if not info.region:
            raise DriverError("AWS connection needs a Region")
        boto_session = boto3.session.Session(aws_access_key_id=key_id, aws_secret_access_key=secret)
        config = Config(max_pool_connections=self._max_workers,
                        retries={"mode": "adaptive", "max_attempts": 8})
        factory_lock = threading.Lock()

        def factory_for(region: str) -> Any:
            def make(service: str) -> Any:
                with factory_lock:  # boto3 sessions are not thread-safe while creating clients
                    return boto_session.client(service, region_name=region, config=config)
            return make

        executor = self.executor()

        def session_for(region: str) -> AwsSession:
            return AwsSession(client_factory=factory_for(region), executor=executor, cloud_os="AWS",
                              region_zone=f"{region}/", connection=info.connection_name, limiter=info.limiter)

        session = AwsSession(client_factory=factory_for(info.region), executor=executor, cloud_os="AWS",
                             region_zone=f"{info.region}/{info.zone}", connection=info.connection_name,
                             limiter=info.limiter)
        view = AwsView(info.region, info.zone)
        return build_connection(session, view, include_default=True, max_inflight=4,
                                session_for_region=session_for)

