"""Assemble one connection's handlers on an ``OsSession`` (OPENSTACK and CLOUDTWIN)."""

from __future__ import annotations

from typing import Any

from spider_core.drivers.base import CloudConnection
from spider_core.drivers.openstack.catalog import OsImageHandler, OsRegionZoneHandler, OsVmSpecHandler
from spider_core.drivers.openstack.disk import OsDiskHandler
from spider_core.drivers.openstack.keypair import OsKeyPairHandler
from spider_core.drivers.openstack.myimage import OsMyImageHandler
from spider_core.drivers.openstack.nic import OsNICHandler
from spider_core.drivers.openstack.publicip import OsPublicIPHandler
from spider_core.drivers.openstack.nlb import OsNlbHandler
from spider_core.drivers.openstack.security import OsSecurityHandler
from spider_core.drivers.openstack.session import OsSession
from spider_core.drivers.openstack.tag import OsTagHandler
from spider_core.drivers.openstack.vm import OsVmHandler
from spider_core.drivers.openstack.vpc import OsVpcHandler


class OsConnection(CloudConnection):
    async def close(self) -> None:
        session = self.extra.get("session")
        if session is not None:
            await session.aclose()


def build_connection(session: OsSession, *, include_default_sg: bool = True,
                     **overrides: Any) -> CloudConnection:
    handlers: dict[str, Any] = {
        "region_zone": OsRegionZoneHandler(session),
        "image": OsImageHandler(session),
        "vmspec": OsVmSpecHandler(session),
        "vpc": OsVpcHandler(session),
        "security": OsSecurityHandler(session, include_default=include_default_sg),
        "keypair": OsKeyPairHandler(session),
        "vm": OsVmHandler(session),
        "nlb": OsNlbHandler(session),
        "disk": OsDiskHandler(session),
        "myimage": OsMyImageHandler(session),
        "tag": OsTagHandler(session),
        "publicip": OsPublicIPHandler(session),
        "nic": OsNICHandler(session),
    }
    handlers.update(overrides)
    conn = OsConnection(**handlers)
    conn.extra["session"] = session
    return conn
