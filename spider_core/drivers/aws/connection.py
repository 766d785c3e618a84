"""Assemble one connection's handlers on an ``AwsSession`` (used by the AWS and MOCK drivers)."""

from __future__ import annotations

from typing import Any, Callable

from spider_core.drivers.aws.disk import AwsDiskHandler
from spider_core.drivers.aws.image import AwsImageHandler
from spider_core.drivers.aws.keypair import AwsKeyPairHandler
from spider_core.drivers.aws.myimage import AwsMyImageHandler
from spider_core.drivers.aws.nic import AwsNICHandler
from spider_core.drivers.aws.nlb import AwsNlbHandler
from spider_core.drivers.aws.price import AwsPriceInfoHandler
from spider_core.drivers.aws.publicip import AwsPublicIPHandler
from spider_core.drivers.aws.regionzone import AwsRegionZoneHandler
from spider_core.drivers.aws.security import AwsSecurityHandler
from spider_core.drivers.aws.session import AwsSession
from spider_core.drivers.aws.tag import AwsTagHandler
from spider_core.drivers.aws.view import AwsView
from spider_core.drivers.aws.vm import AwsVmHandler
from spider_core.drivers.aws.vmspec import AwsVmSpecHandler
from spider_core.drivers.aws.vpc import AwsVpcHandler
from spider_core.drivers.base import CloudConnection


def build_connection(session: AwsSession, view: AwsView, *, include_default: bool = True,
                     max_inflight: int = 1,
                     session_for_region: Callable[[str], AwsSession] | None = None,
                     **overrides: Any) -> CloudConnection:
    """All AWS handlers; ``overrides`` replaces some (e.g. MOCK's profile-backed image handler)."""
    handlers: dict[str, Any] = {
        "region_zone": AwsRegionZoneHandler(session, view.aws_region, session_for_region),
        "image": AwsImageHandler(session),
        "vmspec": AwsVmSpecHandler(session, view.region),
        "vpc": AwsVpcHandler(session, view, include_default=include_default, max_inflight=max_inflight),
        "security": AwsSecurityHandler(session, include_default=include_default, max_inflight=max_inflight),
        "keypair": AwsKeyPairHandler(session, max_inflight=max_inflight),
        "vm": AwsVmHandler(session, view, max_inflight=max_inflight),
        "nlb": AwsNlbHandler(session),
        "disk": AwsDiskHandler(session, view),
        "myimage": AwsMyImageHandler(session),
        "tag": AwsTagHandler(session),
        "publicip": AwsPublicIPHandler(session),
        "nic": AwsNICHandler(session),
    }
    if session_for_region is not None:
        handlers["price_info"] = AwsPriceInfoHandler(session_for_region)
    handlers.update(overrides)
    conn = CloudConnection(**handlers)
    conn.extra["session"] = session
    conn.extra["view"] = view
    return conn
