"""``OpenStackDriver`` (provider OPENSTACK, a real OpenStack) and ``CloudTwinDriver`` (provider
CLOUDTWIN, the Cloud-Twin emulator: the same handlers, a different way to log in).

One openstacksdk ``Connection`` per Spider connection, built in the driver's bounded thread pool (it is
expensive) and never from the user's clouds.yaml or ``OS_*`` variables. It logs in and discovers the
endpoints; the REST calls themselves go out on the event loop (``transport.py``).
"""

from __future__ import annotations

import asyncio
import warnings
from typing import Any

from spider_core.drivers.base import CloudConnection, ConnectionInfo, DriverCapability, PooledDriver
from spider_core.drivers.openstack.connection import build_connection
from spider_core.drivers.openstack.session import OsSession
from spider_core.drivers.price_catalog import CatalogPriceHandler
from spider_core.errors import DriverError

API_TIMEOUT = 60  # seconds for one HTTP call
# CB-Spider's OpenStack driver: Disk (Cinder), MyImage (Nova createImage), PublicIP (floating IPs), NIC
# (ports) and tags on VPC, subnet, SG, VM and NLB; no price information (CLOUDTWIN prices come from
# spider_core/data/prices.yaml)
VM_SIDE = dict(disk_handler=True, myimage_handler=True, public_ip_handler=True, nic_handler=True, tag_handler=True,
               tag_support_resource_types=("vpc", "subnet", "sg", "vm", "nlb"))


def credential_value(credential: dict[str, str], key: str) -> str:
    for k, v in credential.items():
        if k.lower() == key.lower():
            return str(v)
    return ""


def make_sdk_connection(auth: dict[str, Any], auth_type: str, region: str, pool_size: int) -> Any:
    """A configured (not yet authenticated) openstacksdk Connection; blocking."""
    import openstack
    from openstack import warnings as os_warnings
    from requests.adapters import HTTPAdapter

    # the SDK warns about its own internal deprecations on every request: not the user's business
    for category in (os_warnings.RemovedInSDK50Warning, os_warnings.RemovedInSDK60Warning):
        warnings.filterwarnings("ignore", category=category)

    kwargs: dict[str, Any] = {"auth_type": auth_type, "auth": auth, "api_timeout": API_TIMEOUT,
                              "app_name": "spidertwin"}
    if region:
        kwargs["region_name"] = region
    conn = openstack.connect(load_yaml_config=False, load_envvars=False, **kwargs)
    http = conn.session.session  # the requests.Session under keystoneauth: one pool per thread count
    for prefix in ("http://", "https://"):
        http.mount(prefix, HTTPAdapter(pool_connections=8, pool_maxsize=pool_size))
    return conn


class OpenStackDriver(PooledDriver):
    provider_name = "OPENSTACK"
    # the pool only runs the SDK's logins and endpoint discovery; REST calls go out on the event loop
    # (transport.py) over up to HTTP_CONNECTIONS pooled connections per Spider connection, so N
    # concurrent creates overlap without N threads (bench/splock_vs_global.py)
    MAX_WORKERS = 16
    HTTP_CONNECTIONS = 256
    cloud_os = "OPENSTACK"
    auth_type = "password"
    include_default_sg = True
    use_routers = True  # a router per VPC (gateway on the external network): floating IPs need it


    def capability(self) -> DriverCapability:
        return DriverCapability(zone_based_control=True, region_zone_handler=True, image_handler=True,
                                vmspec_handler=True, vpc_handler=True, security_handler=True,
                                keypair_handler=True, vm_handler=True, nlb_handler=True, vpc_cidr=True,
                                probe_ssh_after_start=True, **VM_SIDE)

    def credential_keys(self) -> list[str]:
        return ["IdentityEndpoint", "Username", "Password", "DomainName", "ProjectID"]

    def region_keys(self) -> list[str]:
        return ["Region", "Zone"]

    # ---- login
    def auth_options(self, info: ConnectionInfo) -> tuple[dict[str, Any], str]:
        """(keystoneauth ``auth`` dict, the endpoint to name in messages)."""
        c = info.credential
        url = credential_value(c, "IdentityEndpoint").strip()
        user = credential_value(c, "Username")
        password = credential_value(c, "Password")
        domain = credential_value(c, "DomainName") or "Default"
        project = credential_value(c, "ProjectID")
        missing = [k for k, v in (("IdentityEndpoint", url), ("Username", user), ("Password", password),
                                  ("ProjectID", project)) if not v]
        if missing:
            raise DriverError(f"OPENSTACK credential needs {', '.join(missing)}")
        return ({"auth_url": url, "username": user, "password": password, "user_domain_name": domain,
                 "project_id": project, "project_domain_name": domain}, url)

    def region_of(self, info: ConnectionInfo) -> str:
        return info.region

    async def connect(self, info: ConnectionInfo) -> CloudConnection:
        auth, endpoint = self.auth_options(info)
        region = self.region_of(info)
        pool = self._max_workers
        auth_type = self.auth_type

        def factory() -> Any:
            return make_sdk_connection(auth, auth_type, region, pool)

        session = OsSession(connection_factory=factory, executor=self.executor(), cloud_os=self.cloud_os,
                            region_zone=f"{region}/{info.zone}", endpoint=endpoint,
                            connection=info.connection_name, region=region, zone=info.zone,
                            limiter=info.limiter, http_limit=self.HTTP_CONNECTIONS, timeout=API_TIMEOUT)
        session.features["routers"] = self.use_routers
        # build the SDK connection now, in the pool (no network call: it authenticates on first use)
        await asyncio.get_running_loop().run_in_executor(self.executor(), session.sdk)
        conn = build_connection(session, include_default_sg=self.include_default_sg)
        if self.capability().price_info_handler:
            conn.price_info = CatalogPriceHandler(self.cloud_os, region, conn.vmspec)
        return conn

    async def prepare(self) -> None:
        """Import openstacksdk (half a second) before the first request needs it."""
        def load() -> None:
            import openstack.connection  # noqa: F401
        await asyncio.get_running_loop().run_in_executor(self.executor(), load)



class CloudTwinDriver(OpenStackDriver):
    """Cloud-Twin: ``IdentityEndpoint`` is the emulator's base URL (Keystone at ``{base}/v3``),
    ``DomainName`` one virtual cloud, ``MockName`` the Keystone project (each name its own state).
    Login user ``admin``/``admin`` unless the credential carries Username/Password."""

    provider_name = "CLOUDTWIN"
    cloud_os = "CLOUDTWIN"
    auth_type = "v3password"
    include_default_sg = False
    use_routers = False  # Cloud-Twin gives floating IPs without routers: 4+ calls less per VPC
    DEFAULT_USER = "admin"
    DEFAULT_PASSWORD = "admin"

    def capability(self) -> DriverCapability:
        return DriverCapability(zone_based_control=False, region_zone_handler=True, image_handler=True,
                                vmspec_handler=True, vpc_handler=True, security_handler=True,
                                keypair_handler=True, vm_handler=True, nlb_handler=True, vpc_cidr=True,
                                probe_ssh_after_start=False, price_info_handler=True, **VM_SIDE)

    def credential_keys(self) -> list[str]:
        return ["IdentityEndpoint", "DomainName", "MockName"]

    def region_keys(self) -> list[str]:
        return ["Region"]

    @staticmethod
    def auth_url(base: str) -> str:
        url = base.strip().rstrip("/")
        return url if url.endswith("/v3") else f"{url}/v3"

    def auth_options(self, info: ConnectionInfo) -> tuple[dict[str, Any], str]:
        c = info.credential
        base = credential_value(c, "IdentityEndpoint")
        domain = credential_value(c, "DomainName")
        project = credential_value(c, "MockName")
        missing = [k for k, v in (("IdentityEndpoint", base), ("DomainName", domain), ("MockName", project)) if not v]
        if missing:
            raise DriverError(f"CLOUDTWIN credential needs {', '.join(missing)}")
        url = self.auth_url(base)
        return ({"auth_url": url,
                 "username": credential_value(c, "Username") or self.DEFAULT_USER,
                 "password": credential_value(c, "Password") or self.DEFAULT_PASSWORD,
                 "user_domain_name": domain, "project_name": project, "project_domain_name": domain}, url)

    def region_of(self, info: ConnectionInfo) -> str:
        return info.region or "default"
