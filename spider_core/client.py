"""Python client for the Spider REST API (CB-Spider wire contract), sync and async.

Everything is driven by one data table, :data:`ROUTES`: one :class:`Route` per REST operation, keyed
by its Swagger ``operationId`` (``create-vpc``, ``get-vm-status`` ...). The same table drives

* :class:`SpiderClient` (``requests``) and :class:`AsyncSpiderClient` (``aiohttp``): both inherit the
  thin named wrappers of :class:`_Operations` and differ only in how a :class:`Prepared` request is
  sent; request building (:func:`build_request`) and response decoding (:func:`decode_response`) are
  shared;
* ``spctl`` (:mod:`spider_core.spctl`), which turns each route into ``spctl <resource> <verb>``;
* route-coverage tests (server and client).

Conventions (contract 1.4): the connection name goes in the JSON body for POST/PUT/DELETE
(``{"ConnectionName": ..., "ReqInfo": {...}}``) and in the query for GET. Success returns the decoded
JSON (a dict; text for the text/plain ``/endpointinfo``); any non-2xx raises :class:`SpiderAPIError`
carrying the server's ``{"message"}`` text.

    with SpiderClient(username="default", password="default") as sp:
        sp.create_vpc("mock-config01", {"Name": "vpc-01", "IPv4_CIDR": "10.0.0.0/16",
                                        "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}]})
        sp.list_vpc("mock-config01")["vpc"]

    async with AsyncSpiderClient() as sp:
        await sp.get_vm_status("mock-config01", "vm-01")
"""

from __future__ import annotations

import base64
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping
from urllib.parse import quote

__all__ = [
    "BASE_PATH", "DEFAULT_BASE_URL", "ROUTES", "ROUTES_BY_ID", "Route", "Prepared", "SpiderAPIError",
    "SpiderClient", "AsyncSpiderClient", "build_request", "render_request", "decode_response",
    "basic_auth_header", "route",
]

BASE_PATH = "/spider"
DEFAULT_BASE_URL = "http://127.0.0.1:1024"
DEFAULT_TIMEOUT = 900.0  # VM start may poll for a PublicIP (600 s) and probe SSH (120 s) before answering

_PARAM = re.compile(r"\{(\w+)\}")


# =================================================================================================
# Route table
# =================================================================================================

@dataclass(frozen=True)
class Route:
    """One REST operation.

    op_id     Swagger operationId; unique. ``spctl`` splits it at the first ``-`` into verb/resource.
    method    HTTP method.
    path      path template below ``/spider`` with ``{Param}`` placeholders (aiohttp/echo syntax).
    conn      where ConnectionName goes: ``"query"`` (GET), ``"body"`` (POST/PUT/DELETE) or ``"none"``.
              Routes whose *path* holds the connection (``/countvpc/{ConnectionName}``) use ``"none"``.
    body      request body kind: ``"none"``; ``"conn"`` = ``{"ConnectionName"}``; ``"reqinfo"`` =
              ``{"ConnectionName", "ReqInfo": {...}}`` (+ top-level ``IDTransformMode``); ``"raw"`` =
              the object itself (connection-info registration); ``"file"`` = multipart field ``file``.
    query     query parameter names other than ConnectionName (optional unless listed in ``required``).
    required  the required subset of ``query``.
    fields    top-level keys of a ``raw`` body (spctl offers them as flags).
    py        name of the client method wrapping this route.
    family    contract section: system, connection, regionzone, image-spec, vpc, sg, keypair, vm, nlb.
    auth      False for the routes CB-Spider serves without Basic auth.
    text      True when the 200 answer is text/plain rather than JSON.
    example   minimal ``ReqInfo`` (reqinfo) or body (raw) for help texts; ``example_full`` the rich one.
    """

    op_id: str
    method: str
    path: str
    conn: str = "none"
    body: str = "none"
    query: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    fields: tuple[str, ...] = ()
    py: str = ""
    family: str = ""
    summary: str = ""
    auth: bool = True
    text: bool = False
    example: Any = None
    example_full: Any = None

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PARAM.findall(self.path))

    @property
    def full_path(self) -> str:
        return BASE_PATH + self.path

    @property
    def has_body(self) -> bool:
        return self.body != "none"


def _r(op_id: str, method: str, path: str, py: str, *, conn: str | None = None, body: str | None = None,
       **kw: Any) -> Route:
    """Table helper: defaults ``conn``/``body`` from the method when the route is connection-scoped."""
    scoped = kw.pop("scoped", True)
    if conn is None:
        conn = ("query" if method == "GET" else "body") if scoped else "none"
    if body is None:
        body = "none" if conn != "body" else ("conn" if method in ("DELETE", "PUT") else "reqinfo")
    return Route(op_id=op_id, method=method, path=path, conn=conn, body=body, py=py, **kw)


def _family(name: str, routes: Iterable[Route]) -> list[Route]:
    return [Route(**{**r.__dict__, "family": name}) for r in routes]


_CONN = "mock-config01"
_RULE = {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "0.0.0.0/0"}
_TAG = [{"Key": "env", "Value": "test"}]

_SYSTEM = _family("system", [
    _r("get-endpointinfo", "GET", "/endpointinfo", "endpoint_info", scoped=False, auth=False, text=True,
       summary="Server banner (text/plain)"),
    _r("version-info", "GET", "/version", "version", scoped=False, auth=False, summary="Server version"),
    _r("get-ver", "GET", "/ver", "ver", scoped=False, auth=False, summary="Server version (short path)"),
    _r("health-check-healthcheck", "GET", "/healthcheck", "healthcheck", scoped=False, auth=False,
       summary="Readiness check"),
    _r("health-check-health", "GET", "/health", "health", scoped=False, auth=False, summary="Readiness check"),
    _r("health-check-ping", "GET", "/ping", "ping", scoped=False, auth=False, summary="Readiness check"),
    _r("health-check-readyz", "GET", "/readyz", "readyz", scoped=False, auth=False,
       summary="Readiness: 503 while recovering after a restart, shutting down or shedding load"),
    _r("health-check-healthz", "GET", "/healthz", "healthz", scoped=False, auth=False,
       summary="Liveness (project extension): the process answers"),
    _r("get-metrics", "GET", "/metrics", "metrics", scoped=False, text=True,
       summary="Prometheus metrics (project extension)"),
    _r("get-splockinfo", "GET", "/splockinfo", "splockinfo", scoped=False, query=("detail",),
       summary="SP-Lock state (detail=true: rich project view)"),
    _r("get-limitinfo", "GET", "/limitinfo", "limitinfo", scoped=False, query=("ConnectionName",),
       summary="Request limiters per connection: policy, in-flight, throttling retries"),
    _r("destroy-all-resource", "DELETE", "/destroy", "destroy",
       summary="Delete every registered resource of a connection"),
    _r("any-call", "POST", "/anycall", "anycall", summary="Driver-specific AnyCall",
       example={"FID": "countAll", "IKeyValueList": [{"Key": "rsType", "Value": "vpc"}]}),
    _r("get-driver-capability", "GET", "/driver/capability", "driver_capability",
       summary="Driver capability of a connection"),
    _r("get-cspresourcename", "GET", "/cspresourcename/{Name}", "csp_resource_name",
       query=("ResourceType",), required=("ResourceType",), summary="CSP id of a resource"),
    _r("get-cspresourceinfo", "GET", "/cspresourceinfo/{Name}", "csp_resource_info",
       query=("ResourceType",), required=("ResourceType",), summary="Info of a resource by user name"),
    _r("check-tcp-port", "GET", "/check/tcp", "check_tcp", scoped=False, query=("HostName", "Port"),
       required=("HostName", "Port"), summary="Check a TCP port"),
    _r("check-udp-port", "GET", "/check/udp", "check_udp", scoped=False, query=("HostName", "Port"),
       required=("HostName", "Port"), summary="Check a UDP port"),
    # project extension (not in CB-Spider): the call log
    _r("list-calllog", "GET", "/calllog", "calllog", scoped=False,
       query=("cloudos", "resourcetype", "resourcename", "connection", "errors", "since", "limit"),
       summary="Call-log records (project extension)"),
])

_DRIVER_EX = {"DriverName": "mock-driver01", "ProviderName": "MOCK", "DriverLibFileName": "mock-driver-v1.0.so"}
_CRED_EX = {"CredentialName": "mock-credential01", "ProviderName": "MOCK",
            "KeyValueInfoList": [{"Key": "MockName", "Value": "mock_name00"}]}
_REGION_EX = {"RegionName": "mock-region01", "ProviderName": "MOCK",
              "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]}
_CONFIG_EX = {"ConfigName": _CONN, "ProviderName": "MOCK", "DriverName": "mock-driver01",
              "CredentialName": "mock-credential01", "RegionName": "mock-region01"}

_CONNECTION = _family("connection", [
    _r("list-cloudos", "GET", "/cloudos", "list_cloudos", scoped=False, summary="Supported providers"),
    _r("get-cloudos-metainfo", "GET", "/cloudos/metainfo/{CloudOSName}", "get_cloudos_metainfo", scoped=False,
       summary="Provider meta info"),
    _r("register-driver", "POST", "/driver", "register_driver", scoped=False, body="raw",
       fields=("DriverName", "ProviderName", "DriverLibFileName"), example=_DRIVER_EX, summary="Register a driver"),
    _r("list-driver", "GET", "/driver", "list_driver", scoped=False, query=("provider", "ProviderName"),
       summary="List drivers"),
    _r("get-driver", "GET", "/driver/{DriverName}", "get_driver", scoped=False, summary="Get a driver"),
    _r("unregister-driver", "DELETE", "/driver/{DriverName}", "unregister_driver", scoped=False,
       summary="Unregister a driver"),
    _r("upload-driver", "POST", "/driver/upload", "upload_driver", scoped=False, body="file",
       summary="Upload a driver library (multipart)"),
    _r("register-credential", "POST", "/credential", "register_credential", scoped=False, body="raw",
       fields=("CredentialName", "ProviderName", "KeyValueInfoList"), example=_CRED_EX,
       summary="Register a credential"),
    _r("list-credential", "GET", "/credential", "list_credential", scoped=False, query=("provider",),
       summary="List credentials"),
    _r("get-credential", "GET", "/credential/{CredentialName}", "get_credential", scoped=False,
       summary="Get a credential"),
    _r("unregister-credential", "DELETE", "/credential/{CredentialName}", "unregister_credential", scoped=False,
       summary="Unregister a credential"),
    _r("register-region", "POST", "/region", "register_region", scoped=False, body="raw",
       fields=("RegionName", "ProviderName", "KeyValueInfoList", "AvailableZoneList"), example=_REGION_EX,
       summary="Register a region"),
    _r("list-region", "GET", "/region", "list_region", scoped=False, query=("provider",), summary="List regions"),
    _r("get-region", "GET", "/region/{RegionName}", "get_region", scoped=False, summary="Get a region"),
    _r("unregister-region", "DELETE", "/region/{RegionName}", "unregister_region", scoped=False,
       summary="Unregister a region"),
    _r("create-connection-config", "POST", "/connectionconfig", "create_connection_config", scoped=False,
       body="raw", fields=("ConfigName", "ProviderName", "DriverName", "CredentialName", "RegionName"),
       example=_CONFIG_EX, summary="Create a connection config"),
    _r("list-connection-config", "GET", "/connectionconfig", "list_connection_config", scoped=False,
       summary="List connection configs"),
    _r("get-connection-config", "GET", "/connectionconfig/{ConfigName}", "get_connection_config", scoped=False,
       summary="Get a connection config"),
    _r("delete-connection-config", "DELETE", "/connectionconfig/{ConfigName}", "delete_connection_config",
       scoped=False, summary="Delete a connection config"),
    _r("count-all-connection", "GET", "/countconnectionconfig", "count_all_connection", scoped=False,
       summary="Count connection configs"),
    _r("count-connection-by-provider", "GET", "/countconnectionconfig/{ProviderName}",
       "count_connection_by_provider", scoped=False, summary="Count connection configs of a provider"),
])

_REGIONZONE = _family("regionzone", [
    _r("list-region-zone", "GET", "/regionzone", "list_region_zone", summary="Regions and zones"),
    _r("get-region-zone", "GET", "/regionzone/{Name}", "get_region_zone", summary="One region and its zones"),
    _r("list-org-region", "GET", "/orgregion", "list_org_region", summary="Raw CSP region list"),
    _r("list-org-zone", "GET", "/orgzone", "list_org_zone", summary="Raw CSP zone list"),
    _r("list-region-zone-preconfig", "GET", "/preconfig/regionzone", "list_region_zone_preconfig", scoped=False,
       query=("DriverName", "CredentialName"), required=("DriverName", "CredentialName"),
       summary="Regions and zones without a connection"),
    _r("get-region-zone-preconfig", "GET", "/preconfig/regionzone/{Name}", "get_region_zone_preconfig",
       scoped=False, query=("DriverName", "CredentialName"), required=("DriverName", "CredentialName"),
       summary="One region without a connection"),
    _r("list-preconfigured-original-org-region", "GET", "/preconfig/orgregion", "list_org_region_preconfig",
       scoped=False, query=("DriverName", "CredentialName"), required=("DriverName", "CredentialName"),
       summary="Raw CSP region list without a connection"),
])

_IMAGE_SPEC = _family("image-spec", [
    _r("list-image", "GET", "/vmimage", "list_image", summary="Public images"),
    _r("get-image", "GET", "/vmimage/{Name}", "get_image", summary="One public image"),
    _r("list-vm-spec", "GET", "/vmspec", "list_vm_spec", summary="VM specs"),
    _r("get-vm-spec", "GET", "/vmspec/{Name}", "get_vm_spec", summary="One VM spec"),
    _r("list-org-vm-spec", "GET", "/vmorgspec", "list_org_vm_spec", summary="Raw CSP VM specs"),
    _r("get-org-vm-spec", "GET", "/vmorgspec/{Name}", "get_org_vm_spec", summary="One raw CSP VM spec"),
])


def _resource_common(noun: str, path: str, py: str, reg_example: dict) -> list[Route]:
    """register/unregister, all/allinfo, csp delete and counts: identical shapes for every resource."""
    return [
        _r(f"register-{noun}", "POST", f"/reg{path}", f"register_{py}", example=reg_example,
           summary=f"Register an existing CSP {noun}"),
        _r(f"unregister-{noun}", "DELETE", f"/reg{path}/{{Name}}", f"unregister_{py}",
           summary=f"Unregister a {noun} (MetaDB only)"),
        _r(f"list-all-{noun}", "GET", f"/all{path}", f"list_all_{py}", summary=f"Spider vs CSP {noun} ids"),
        _r(f"list-all-{noun}-info", "GET", f"/all{path}info", f"list_all_{py}_info",
           summary=f"Spider vs CSP {noun} infos"),
        _r(f"count-all-{noun}", "GET", f"/count{path}", f"count_all_{py}", scoped=False,
           summary=f"Count {noun}s (all connections)"),
        _r(f"count-{noun}-by-connection", "GET", f"/count{path}/{{ConnectionName}}", f"count_{py}_by_connection",
           scoped=False, summary=f"Count {noun}s of a connection"),
    ]


_VPC_REQ = {"Name": "vpc-01", "IPv4_CIDR": "192.168.0.0/16",
            "SubnetInfoList": [{"Name": "subnet-01", "IPv4_CIDR": "192.168.1.0/24"}]}
_VPC_REQ_FULL = {"Name": "vpc-01", "IPv4_CIDR": "192.168.0.0/16",
                 "SubnetInfoList": [{"Name": "subnet-01", "Zone": "", "IPv4_CIDR": "192.168.1.0/24",
                                     "TagList": _TAG}], "TagList": _TAG}

_VPC = _family("vpc", [
    _r("create-vpc", "POST", "/vpc", "create_vpc", example=_VPC_REQ, example_full=_VPC_REQ_FULL,
       summary="Create a VPC with subnets"),
    _r("list-vpc", "GET", "/vpc", "list_vpc", summary="List VPCs"),
    _r("get-vpc", "GET", "/vpc/{Name}", "get_vpc", summary="Get a VPC"),
    _r("delete-vpc", "DELETE", "/vpc/{Name}", "delete_vpc", query=("force",), summary="Delete a VPC"),
    _r("add-subnet", "POST", "/vpc/{VPCName}/subnet", "add_subnet",
       example={"Name": "subnet-02", "IPv4_CIDR": "192.168.2.0/24"},
       example_full={"Name": "subnet-02", "Zone": "", "IPv4_CIDR": "192.168.2.0/24", "TagList": _TAG},
       summary="Add a subnet to a VPC"),
    _r("get-subnet", "GET", "/vpc/{VPCName}/subnet/{SubnetName}", "get_subnet", summary="Get a subnet"),
    _r("remove-subnet", "DELETE", "/vpc/{VPCName}/subnet/{SubnetName}", "remove_subnet", query=("force",),
       summary="Remove a subnet"),
    _r("remove-csp-subnet", "DELETE", "/vpc/{VPCName}/cspsubnet/{Id}", "remove_csp_subnet",
       summary="Remove a subnet at the CSP by CSP id"),
    _r("register-subnet", "POST", "/regsubnet", "register_subnet",
       example={"Name": "subnet-r1", "VPCName": "vpc-01", "CSPId": "subnet-0a1b2c"},
       example_full={"Name": "subnet-r1", "Zone": "", "VPCName": "vpc-01", "CSPId": "subnet-0a1b2c"},
       summary="Register an existing CSP subnet"),
    _r("unregister-subnet", "DELETE", "/regsubnet/{Name}", "unregister_subnet", body="reqinfo",
       example={"VPCName": "vpc-01"}, summary="Unregister a subnet (MetaDB only)"),
    _r("delete-csp-vpc", "DELETE", "/cspvpc/{Id}", "delete_csp_vpc", summary="Delete a VPC at the CSP by CSP id"),
    _r("count-all-subnet", "GET", "/countsubnet", "count_all_subnet", scoped=False,
       summary="Count subnets (all connections)"),
    _r("count-subnet-by-connection", "GET", "/countsubnet/{ConnectionName}", "count_subnet_by_connection",
       scoped=False, summary="Count subnets of a connection"),
    *_resource_common("vpc", "vpc", "vpc", {"Name": "vpc-r1", "CSPId": "vpc-0a1b2c"}),
])

_SG_REQ = {"Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": [_RULE]}

_SG = _family("sg", [
    _r("create-securitygroup", "POST", "/securitygroup", "create_securitygroup", example=_SG_REQ,
       example_full={**_SG_REQ, "TagList": _TAG}, summary="Create a security group"),
    _r("list-securitygroup", "GET", "/securitygroup", "list_securitygroup", summary="List security groups"),
    _r("get-securitygroup", "GET", "/securitygroup/{Name}", "get_securitygroup", summary="Get a security group"),
    _r("list-vpc-securitygroup", "GET", "/securitygroup/vpc/{VPCName}", "list_vpc_securitygroup",
       summary="List the security groups of a VPC"),
    _r("delete-securitygroup", "DELETE", "/securitygroup/{Name}", "delete_securitygroup", query=("force",),
       summary="Delete a security group"),
    _r("add-rule", "POST", "/securitygroup/{SGName}/rules", "add_rules", example={"RuleInfoList": [_RULE]},
       summary="Add rules to a security group"),
    _r("remove-rule", "DELETE", "/securitygroup/{SGName}/rules", "remove_rules", body="reqinfo",
       example={"RuleInfoList": [_RULE]}, summary="Remove rules from a security group"),
    _r("get-sg-owner-vpc", "POST", "/getsecuritygroupowner", "get_sg_owner_vpc", example={"CSPId": "sg-0a1b2c"},
       summary="Owner VPC of a CSP security group"),
    _r("delete-csp-securitygroup", "DELETE", "/cspsecuritygroup/{Id}", "delete_csp_securitygroup",
       summary="Delete a security group at the CSP by CSP id"),
    *_resource_common("securitygroup", "securitygroup", "securitygroup",
                      {"Name": "sg-r1", "VPCName": "vpc-01", "CSPId": "sg-0a1b2c"}),
])

_KEYPAIR = _family("keypair", [
    _r("create-keypair", "POST", "/keypair", "create_keypair", example={"Name": "keypair-01"},
       example_full={"Name": "keypair-01", "TagList": _TAG}, summary="Create a key pair"),
    _r("list-keypair", "GET", "/keypair", "list_keypair", summary="List key pairs"),
    _r("get-keypair", "GET", "/keypair/{Name}", "get_keypair", summary="Get a key pair"),
    _r("delete-keypair", "DELETE", "/keypair/{Name}", "delete_keypair", query=("force",),
       summary="Delete a key pair"),
    _r("delete-csp-keypair", "DELETE", "/cspkeypair/{Id}", "delete_csp_keypair",
       summary="Delete a key pair at the CSP by CSP id"),
    *_resource_common("keypair", "keypair", "keypair", {"Name": "keypair-r1", "CSPId": "key-0a1b2c"}),
])

_VM_REQ = {"Name": "vm-01", "ImageName": "mock-vmimage-01", "VPCName": "vpc-01", "SubnetName": "subnet-01",
           "SecurityGroupNames": ["sg-01"], "VMSpecName": "mock-vmspec-01", "KeyPairName": "keypair-01"}
_VM_REQ_FULL = {**_VM_REQ, "ImageType": "PublicImage", "RootDiskType": "default", "RootDiskSize": "default",
                "DataDiskNames": [], "VMUserId": "", "VMUserPasswd": "", "TagList": _TAG}

_VM = _family("vm", [
    _r("start-vm", "POST", "/vm", "start_vm", example=_VM_REQ, example_full=_VM_REQ_FULL, summary="Start a VM"),
    _r("list-vm", "GET", "/vm", "list_vm", summary="List VMs"),
    _r("get-vm", "GET", "/vm/{Name}", "get_vm", summary="Get a VM"),
    _r("terminate-vm", "DELETE", "/vm/{Name}", "terminate_vm", query=("force",), summary="Terminate a VM"),
    _r("list-vm-status", "GET", "/vmstatus", "list_vm_status", summary="Status of every VM"),
    _r("get-vm-status", "GET", "/vmstatus/{Name}", "get_vm_status", summary="Status of a VM"),
    _r("control-vm", "PUT", "/controlvm/{Name}", "control_vm", query=("action",), required=("action",),
       summary="Suspend, resume or reboot a VM"),
    _r("get-vm-using-rs", "GET", "/getvmusingresources", "get_vm_using_resources", query=("CSPId",),
       required=("CSPId",), summary="Resources used by a CSP VM"),
    _r("get-csp-vm", "GET", "/cspvm/{Id}", "get_csp_vm", summary="Get a VM by CSP id"),
    _r("terminate-csp-vm", "DELETE", "/cspvm/{Id}", "terminate_csp_vm", summary="Terminate a VM at the CSP"),
    *_resource_common("vm", "vm", "vm", {"Name": "vm-r1", "CSPId": "i-0a1b2c"}),
])

_NLB_REQ = {"Name": "spider-nlb-01", "VPCName": "vpc-01", "Type": "PUBLIC", "Scope": "REGION",
            "Listener": {"Protocol": "TCP", "Port": "22"},
            "HealthChecker": {"Protocol": "TCP", "Port": "22"}}
_NLB_REQ_FULL = {**_NLB_REQ, "VMGroup": {"Protocol": "TCP", "Port": "22", "VMs": ["vm-01", "vm-02"]},
                 "HealthChecker": {"Protocol": "TCP", "Port": "22", "Interval": "default", "Timeout": "default",
                                   "Threshold": "default"}, "TagList": _TAG}

_NLB = _family("nlb", [
    _r("create-nlb", "POST", "/nlb", "create_nlb", example=_NLB_REQ, example_full=_NLB_REQ_FULL,
       summary="Create a network load balancer"),
    _r("list-nlb", "GET", "/nlb", "list_nlb", summary="List NLBs"),
    _r("get-nlb", "GET", "/nlb/{Name}", "get_nlb", summary="Get an NLB"),
    _r("delete-nlb", "DELETE", "/nlb/{Name}", "delete_nlb", query=("force",), summary="Delete an NLB"),
    _r("add-nlb-vm", "POST", "/nlb/{Name}/vms", "add_nlb_vms", example={"VMs": ["vm-01"]},
       summary="Add VMs to an NLB"),
    _r("remove-nlb-vm", "DELETE", "/nlb/{Name}/vms", "remove_nlb_vms", body="reqinfo",
       example={"VMs": ["vm-01"]}, summary="Remove VMs from an NLB"),
    _r("change-listener", "PUT", "/nlb/{Name}/listener", "change_nlb_listener", body="reqinfo",
       example={"Protocol": "TCP", "Port": "80"}, summary="Change the NLB listener"),
    _r("change-vmgroup", "PUT", "/nlb/{Name}/vmgroup", "change_nlb_vmgroup", body="reqinfo",
       example={"Protocol": "TCP", "Port": "80"}, summary="Change the NLB VM group"),
    _r("change-healthchecker", "PUT", "/nlb/{Name}/healthchecker", "change_nlb_healthchecker", body="reqinfo",
       example={"Protocol": "TCP", "Port": "80"},
       example_full={"Protocol": "TCP", "Port": "80", "Interval": "10", "Timeout": "10", "Threshold": "3"},
       summary="Change the NLB health checker"),
    _r("get-vmgroup-healthinfo", "GET", "/nlb/{Name}/health", "get_nlb_health",
       summary="Health of the NLB's VMs"),
    _r("get-nlb-owner-vpc", "POST", "/getnlbowner", "get_nlb_owner_vpc", example={"CSPId": "nlb-0a1b2c"},
       summary="Owner VPC of a CSP NLB"),
    _r("delete-csp-nlb", "DELETE", "/cspnlb/{Id}", "delete_csp_nlb", summary="Delete an NLB at the CSP"),
    *_resource_common("nlb", "nlb", "nlb", {"Name": "nlb-r1", "VPCName": "vpc-01", "CSPId": "nlb-0a1b2c"}),
])


_DISK_REQ = {"Name": "disk-01", "DiskType": "default", "DiskSize": "default"}
_DISK = _family("disk", [
    _r("create-disk", "POST", "/disk", "create_disk", example=_DISK_REQ,
       example_full={**_DISK_REQ, "Zone": "", "TagList": _TAG}, summary="Create a disk"),
    _r("list-disk", "GET", "/disk", "list_disk", summary="List disks"),
    _r("get-disk", "GET", "/disk/{Name}", "get_disk", summary="Get a disk"),
    _r("delete-disk", "DELETE", "/disk/{Name}", "delete_disk", query=("force",), summary="Delete a disk"),
    _r("increase-disk-size", "PUT", "/disk/{Name}/size", "increase_disk_size", body="reqinfo",
       example={"Size": "150"}, summary="Grow a disk (GB)"),
    _r("attach-disk", "PUT", "/disk/{Name}/attach", "attach_disk", body="reqinfo", example={"VMName": "vm-01"},
       summary="Attach a disk to a VM"),
    _r("detach-disk", "PUT", "/disk/{Name}/detach", "detach_disk", body="reqinfo", example={"VMName": "vm-01"},
       summary="Detach a disk from a VM"),
    _r("delete-csp-disk", "DELETE", "/cspdisk/{Id}", "delete_csp_disk", summary="Delete a disk at the CSP"),
    *_resource_common("disk", "disk", "disk", {"Name": "disk-r1", "Zone": "", "CSPId": "vol-0a1b2c"}),
])

_MYIMAGE = _family("myimage", [
    _r("snapshot-vm", "POST", "/myimage", "snapshot_vm", example={"Name": "myimage-01", "SourceVM": "vm-01"},
       example_full={"Name": "myimage-01", "SourceVM": "vm-01", "TagList": _TAG}, summary="Snapshot a VM"),
    _r("list-myimage", "GET", "/myimage", "list_myimage", summary="List MyImages"),
    _r("get-myimage", "GET", "/myimage/{Name}", "get_myimage", summary="Get a MyImage"),
    _r("delete-myimage", "DELETE", "/myimage/{Name}", "delete_myimage", query=("force",),
       summary="Delete a MyImage"),
    _r("delete-csp-myimage", "DELETE", "/cspmyimage/{Id}", "delete_csp_myimage",
       summary="Delete a MyImage at the CSP"),
    *_resource_common("myimage", "myimage", "myimage", {"Name": "myimage-r1", "CSPId": "ami-0a1b2c"}),
])

_TAG_TARGET = {"ResourceType": "VPC", "ResourceName": "vpc-01"}
_TAGS = _family("tag", [
    _r("add-tag", "POST", "/tag", "add_tag", example={**_TAG_TARGET, "Tag": {"Key": "env", "Value": "test"}},
       summary="Add a tag to a resource"),
    _r("list-tag", "GET", "/tag", "list_tag", query=("ResourceType", "ResourceName"),
       required=("ResourceType", "ResourceName"), summary="A resource's tags"),
    _r("get-tag", "GET", "/tag/{Key}", "get_tag", query=("ResourceType", "ResourceName"),
       required=("ResourceType", "ResourceName"), summary="One tag of a resource"),
    _r("remove-tag", "DELETE", "/tag/{Key}", "remove_tag", body="reqinfo", example=_TAG_TARGET,
       summary="Remove a tag from a resource"),
    _r("find-tag", "POST", "/tag/find", "find_tag", example={"ResourceType": "all", "Keyword": "env"},
       summary="Resources whose tag key or value holds a keyword"),
])

_PUBLICIP = _family("publicip", [
    _r("create-publicip", "POST", "/publicip", "create_publicip", example={"Name": "publicip-01"},
       summary="Allocate a public IP"),
    _r("list-publicip", "GET", "/publicip", "list_publicip", summary="List public IPs"),
    _r("get-publicip", "GET", "/publicip/{Name}", "get_publicip", summary="Get a public IP"),
    _r("delete-publicip", "DELETE", "/publicip/{Name}", "delete_publicip", query=("force",),
       summary="Release a public IP"),
    _r("associate-publicip", "PUT", "/publicip/{Name}/associate", "associate_publicip", body="reqinfo",
       example={"VMName": "vm-01"}, summary="Associate a public IP with a VM or NIC"),
    _r("disassociate-publicip", "PUT", "/publicip/{Name}/disassociate", "disassociate_publicip",
       summary="Disassociate a public IP"),
    _r("delete-csp-publicip", "DELETE", "/csppublicip/{Id}", "delete_csp_publicip",
       summary="Release a public IP at the CSP"),
    *_resource_common("publicip", "publicip", "publicip", {"Name": "publicip-r1", "CSPId": "eipalloc-0a1b2c"}),
])

_NIC = _family("nic", [
    _r("create-nic", "POST", "/nic", "create_nic", example={"Name": "nic-01", "VPCName": "vpc-01",
                                                            "SubnetName": "subnet-01"},
       summary="Create a network interface"),
    _r("list-nic", "GET", "/nic", "list_nic", summary="List network interfaces"),
    _r("get-nic", "GET", "/nic/{Name}", "get_nic", summary="Get a network interface"),
    _r("delete-nic", "DELETE", "/nic/{Name}", "delete_nic", query=("force",), summary="Delete a network interface"),
    _r("attach-nic", "PUT", "/nic/{Name}/attach", "attach_nic", body="reqinfo", example={"VMName": "vm-01"},
       summary="Attach a network interface to a VM"),
    _r("detach-nic", "PUT", "/nic/{Name}/detach", "detach_nic", summary="Detach a network interface"),
    _r("add-nic-privateip", "POST", "/nic/{Name}/privateip", "add_nic_private_ip", example={"PrivateIP": ""},
       summary="Add a secondary private IP (empty: the cloud picks)"),
    _r("remove-nic-privateip", "DELETE", "/nic/{Name}/privateip/{IP}", "remove_nic_private_ip",
       summary="Remove a secondary private IP"),
    _r("get-nic-osconfigscript", "GET", "/nic/{Name}/osconfigscript", "get_nic_os_config_script",
       summary="Guest OS script an attach needs"),
    _r("delete-csp-nic", "DELETE", "/cspnic/{Id}", "delete_csp_nic", summary="Delete a NIC at the CSP"),
    *_resource_common("nic", "nic", "nic", {"Name": "nic-r1", "CSPId": "eni-0a1b2c"}),
])

_PRICE = _family("price", [
    _r("list-product-family", "GET", "/productfamily/{RegionName}", "list_product_family",
       summary="Product families of a region"),
    _r("get-vmprice-info", "GET", "/priceinfo/vm/{RegionName}", "get_vm_price_info", query=("simple",),
       summary="On-demand VM prices of a region"),
    _r("post-vmprice-info", "POST", "/priceinfo/vm/{RegionName}", "post_vm_price_info", body="raw",
       conn="none", example={"ConnectionName": _CONN, "FilterList": [{"Key": "vcpu", "Value": "4"}]},
       fields=("ConnectionName", "FilterList"), summary="VM prices with a filter list in the body"),
    *[_r(f"proxy-mcinsight-{what}{suffix}", "GET", f"/mcinsight/{path}{tail}", f"mcinsight_{py}{pysuffix}",
         scoped=False, query=params if not suffix else (),
         summary=f"{label} of the registered clouds (MC-Insight's API){' - filter values' if suffix else ''}")
      for what, path, py, label, params in (
          ("vmprice", "price-info", "price_info", "VM prices", ("csp", "region", "zone", "instance_type",
                                                                "vcpu_count", "mem_size_mib", "os_type",
                                                                "pricing_type", "skip", "limit")),
          ("vmspec", "vm-spec", "vm_spec", "VM specs", ("csp", "region", "name", "min_vcpu_count",
                                                        "max_vcpu_count", "min_mem_size_mib", "max_mem_size_mib",
                                                        "gpu_model", "search_text", "skip", "limit")),
          ("vmimage", "vm-image", "vm_image", "VM images", ("csp", "region", "image_name", "os_architecture",
                                                           "os_platform", "os_distribution", "skip", "limit")))
      for suffix, tail, pysuffix in (("", "", ""), ("-filters", "/filters", "_filters"))],
])

_IMAGESPEC_KEY = ("CSP", "Region", "Zone", "ImageName", "SpecName")
_FAV_EX = {"CSP": "MOCK", "Region": "default", "Zone": "", "ImageName": "mock-vmimage-01",
           "SpecName": "mock-vmspec-01"}
_IMAGESPEC = _family("vm-favorite-recent", [
    _r("list-favorite-imagespec", "GET", "/vm/imagespecfavorite", "list_favorite_imagespec", scoped=False,
       query=("CSP", "Region", "Zone", "SortBy", "SortOrder"), summary="Favourite image+spec combinations"),
    _r("add-favorite-imagespec", "POST", "/vm/imagespecfavorite", "add_favorite_imagespec", scoped=False,
       body="raw", example=_FAV_EX, fields=("CSP", "Region", "Zone", "ImageName", "SpecName", "OSArch", "OsPlatform",
                                            "OsDistribution", "CPUInfo", "GPUInfo", "PriceInfo"),
       summary="Add a favourite image+spec"),
    _r("delete-favorite-imagespec", "DELETE", "/vm/imagespecfavorite", "delete_favorite_imagespec", scoped=False,
       query=_IMAGESPEC_KEY, required=("CSP", "Region", "ImageName", "SpecName"),
       summary="Remove a favourite image+spec"),
    _r("bulk-import-favorite-imagespec", "POST", "/vm/imagespecfavorite/bulk", "bulk_import_favorite_imagespec",
       scoped=False, body="raw", example={"records": [_FAV_EX]}, fields=("records",),
       summary="Import favourites, skipping existing ones"),
    _r("list-recent-imagespec", "GET", "/vm/imagespecrecent", "list_recent_imagespec", scoped=False,
       query=("CSP", "Region", "Zone", "Limit", "SortBy", "SortOrder"), summary="Recently started image+specs"),
    _r("delete-recent-imagespec", "DELETE", "/vm/imagespecrecent", "delete_recent_imagespec", scoped=False,
       query=_IMAGESPEC_KEY, required=("CSP", "Region", "ImageName", "SpecName"),
       summary="Remove a recent image+spec record"),
    _r("bulk-import-recent-imagespec", "POST", "/vm/imagespecrecent/bulk", "bulk_import_recent_imagespec",
       scoped=False, body="raw", example={"records": [_FAV_EX]}, fields=("records",),
       summary="Import recent records, skipping existing ones"),
])

# project extension: asynchronous jobs (``?async=true`` / ``Prefer: respond-async`` on creates, deletes,
# VM control) and the MOCK provider's fault rules
_JOB = _family("job", [
    _r("get-job", "GET", "/job/{Id}", "get_job", scoped=False, query=("wait",),
       summary="A job; wait=S long-polls until it finishes (up to 120 s)"),
    _r("list-job", "GET", "/job", "list_job", scoped=False, query=("ConnectionName", "status", "limit"),
       summary="Jobs, newest first (status: queued,running,done,failed,cancelled)"),
    _r("cancel-job", "DELETE", "/job/{Id}", "cancel_job", scoped=False, summary="Cancel a job that has not started"),
])

_MOCK_FAULT_EX = {"kind": "throttle", "match": {"project": "example-mock-name", "method": "POST"}, "rate": 10}
_MOCK = _family("mock", [
    _r("list-mockfault", "GET", "/mock/faults", "list_mock_faults", scoped=False, summary="MOCK fault rules"),
    _r("add-mockfault", "POST", "/mock/faults", "add_mock_faults", scoped=False, body="raw", example=_MOCK_FAULT_EX,
       summary="Add MOCK fault rules (Cloud-Twin's schema: throttle, error, latency, outage)"),
    _r("clear-mockfault", "DELETE", "/mock/faults", "clear_mock_faults", scoped=False,
       summary="Remove every MOCK fault rule"),
    _r("remove-mockfault", "DELETE", "/mock/faults/{Id}", "remove_mock_fault", scoped=False,
       summary="Remove one MOCK fault rule"),
    _r("list-mockevent", "GET", "/mock/events", "list_mock_events", scoped=False,
       query=("since", "kind", "rule", "limit"), summary="What MOCK faults injected, into which call"),
])

#: Every operation, in contract order. Server authors: iterate this for route-coverage tests.
ROUTES: tuple[Route, ...] = tuple(_SYSTEM + _CONNECTION + _REGIONZONE + _IMAGE_SPEC + _VPC + _SG + _KEYPAIR
                                  + _VM + _NLB + _DISK + _MYIMAGE + _TAGS + _PUBLICIP + _NIC + _PRICE
                                  + _IMAGESPEC + _JOB + _MOCK)
FINISHED_JOB = ("done", "failed", "cancelled")
ROUTES_BY_ID: dict[str, Route] = {r.op_id: r for r in ROUTES}


def route(op_id: str) -> Route:
    try:
        return ROUTES_BY_ID[op_id]
    except KeyError:
        raise KeyError(f"unknown operationId {op_id!r}") from None


# =================================================================================================
# Request building and response decoding (shared by both clients and spctl)
# =================================================================================================

@dataclass
class Prepared:
    """A transport-neutral request: ``path`` is absolute (``/spider/...``)."""

    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    json: Any = None
    file: str | None = None  # local path sent as multipart field "file"
    route: Route | None = None


class SpiderAPIError(Exception):
    """Non-2xx answer. ``status`` is the HTTP code, ``message`` the server's ``{"message"}`` text."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status
        self.message = message
        self.body = body


def _qs(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def render_request(rt: Route, path_values: Mapping[str, Any], query: Mapping[str, Any] | None = None,
                   body: Any = None, file: str | None = None) -> Prepared:
    """Fill the path template and attach query/body exactly as given (spctl's ``-d`` path)."""
    missing = [p for p in rt.path_params if path_values.get(p) in (None, "")]
    if missing:
        raise ValueError(f"{rt.op_id}: missing path parameter(s) {', '.join(missing)}")
    path = _PARAM.sub(lambda m: quote(str(path_values[m.group(1)]), safe=""), rt.path)
    params = {k: _qs(v) for k, v in (query or {}).items() if v is not None}
    return Prepared(rt.method, BASE_PATH + path, params, body, file, rt)


def build_request(rt: Route, path_args: tuple | list = (), *, conn: str | None = None, req: Any = None,
                  query: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                  file: str | None = None) -> Prepared:
    """Build the request of a route from positional path arguments, the connection and ``ReqInfo``.

    ``extra`` adds top-level body keys (``IDTransformMode``); ``query`` adds query parameters (``None``
    values are dropped, booleans become ``true``/``false``).
    """
    names = rt.path_params
    if len(path_args) != len(names):
        raise TypeError(f"{rt.op_id} takes path parameters {names}, got {len(path_args)} value(s)")
    q: dict[str, Any] = {}
    if rt.conn == "query" and conn is not None:
        q["ConnectionName"] = conn
    q.update(query or {})
    body: Any = None
    if rt.body == "conn":
        body = {"ConnectionName": conn}
    elif rt.body == "reqinfo":
        body = {"ConnectionName": conn, "ReqInfo": req if req is not None else {}}
    elif rt.body == "raw":
        body = dict(req or {})
    if extra and isinstance(body, dict):
        body.update({k: v for k, v in extra.items() if v is not None})
    return render_request(rt, dict(zip(names, path_args)), q, body, file)


def basic_auth_header(username: str | None, password: str | None) -> dict[str, str]:
    """``Authorization: Basic ...`` when both parts are given (after the env fallback), else nothing."""
    if username is None:
        username = os.environ.get("SPIDER_USERNAME") or None
    if password is None:
        password = os.environ.get("SPIDER_PASSWORD") or None
    if not username or not password:
        return {}
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return {"Authorization": f"Basic {token}"}


def decode_response(status: int, content_type: str, raw: bytes) -> Any:
    """JSON (or text) on 2xx; :class:`SpiderAPIError` otherwise."""
    text = raw.decode("utf-8", errors="replace")
    data: Any = None
    if text.strip():
        try:
            data = json.loads(text)
        except ValueError:
            data = None
    if 200 <= status < 300:
        if data is not None:
            return data
        return text if text.strip() else {}
    if isinstance(data, dict) and "message" in data:
        message = str(data["message"])
    else:
        message = text.strip() or f"HTTP {status}"
    raise SpiderAPIError(status, message, data if data is not None else text)


def _normalise_base_url(base_url: str) -> str:
    base = base_url.rstrip("/")
    if "://" not in base:
        base = "http://" + base
    if base.endswith(BASE_PATH):
        base = base[: -len(BASE_PATH)]
    return base


# =================================================================================================
# Named operations (shared by the sync and async clients)
# =================================================================================================

class _Operations:
    """Thin named wrappers. Each returns whatever ``_call`` returns: a value for :class:`SpiderClient`,
    an awaitable for :class:`AsyncSpiderClient` (``await client.get_vpc(...)``)."""

    def _call(self, op_id: str, *path_args: Any, conn: str | None = None, req: Any = None,
              query: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
              file: str | None = None) -> Any:
        raise NotImplementedError

    def call(self, op_id: str, *path_args: Any, conn: str | None = None, req: Any = None,
             query: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
             file: str | None = None) -> Any:
        """Generic entry point: any route of :data:`ROUTES` by operationId."""
        return self._call(op_id, *path_args, conn=conn, req=req, query=query, extra=extra, file=file)

    @staticmethod
    def _force(force: bool) -> dict[str, str] | None:
        return {"force": "true"} if force else None

    @staticmethod
    def _idt(mode: str | None) -> dict[str, str] | None:
        return {"IDTransformMode": mode} if mode else None

    # ---- 5.1 system --------------------------------------------------------------------------------
    def endpoint_info(self) -> Any: return self._call("get-endpointinfo")
    def version(self) -> Any: return self._call("version-info")
    def ver(self) -> Any: return self._call("get-ver")
    def healthcheck(self) -> Any: return self._call("health-check-healthcheck")
    def health(self) -> Any: return self._call("health-check-health")
    def ping(self) -> Any: return self._call("health-check-ping")
    def readyz(self) -> Any: return self._call("health-check-readyz")
    def healthz(self) -> Any: return self._call("health-check-healthz")
    def metrics(self) -> Any: return self._call("get-metrics")

    def splockinfo(self, detail: bool = False) -> Any:
        """``{"splockinfo": [...]}``; ``detail=True`` asks for the project's rich lock view."""
        return self._call("get-splockinfo", query={"detail": "true"} if detail else None)

    def splockinfo_detail(self) -> Any: return self.splockinfo(detail=True)

    def limitinfo(self, conn: str | None = None) -> Any:
        """``{"limitinfo": [...]}``: every connection's request limiter (or one connection's)."""
        return self._call("get-limitinfo", query={"ConnectionName": conn} if conn else None)

    def destroy(self, conn: str) -> Any: return self._call("destroy-all-resource", conn=conn)
    def anycall(self, conn: str, req: dict) -> Any: return self._call("any-call", conn=conn, req=req)
    def driver_capability(self, conn: str) -> Any: return self._call("get-driver-capability", conn=conn)

    def csp_resource_name(self, conn: str, name: str, resource_type: str) -> Any:
        return self._call("get-cspresourcename", name, conn=conn, query={"ResourceType": resource_type})

    def csp_resource_info(self, conn: str, name: str, resource_type: str) -> Any:
        return self._call("get-cspresourceinfo", name, conn=conn, query={"ResourceType": resource_type})

    def check_tcp(self, host: str, port: int | str) -> Any:
        return self._call("check-tcp-port", query={"HostName": host, "Port": port})

    def check_udp(self, host: str, port: int | str) -> Any:
        return self._call("check-udp-port", query={"HostName": host, "Port": port})

    def calllog(self, *, cloudos: str | None = None, resourcetype: str | None = None,
                resourcename: str | None = None, connection: str | None = None, errors: bool | None = None,
                since: int | None = None, limit: int | None = None) -> Any:
        """Project extension ``GET /spider/calllog``; every filter optional."""
        return self._call("list-calllog", query={
            "cloudos": cloudos, "resourcetype": resourcetype, "resourcename": resourcename,
            "connection": connection, "errors": errors, "since": since, "limit": limit})

    # ---- 5.2 connection information ----------------------------------------------------------------
    def list_cloudos(self) -> Any: return self._call("list-cloudos")
    def get_cloudos_metainfo(self, cloudos: str) -> Any: return self._call("get-cloudos-metainfo", cloudos)
    def register_driver(self, req: dict) -> Any: return self._call("register-driver", req=req)

    def list_driver(self, provider: str | None = None) -> Any:
        return self._call("list-driver", query={"provider": provider})

    def get_driver(self, name: str) -> Any: return self._call("get-driver", name)
    def unregister_driver(self, name: str) -> Any: return self._call("unregister-driver", name)
    def upload_driver(self, file_path: str) -> Any: return self._call("upload-driver", file=file_path)
    def register_credential(self, req: dict) -> Any: return self._call("register-credential", req=req)

    def list_credential(self, provider: str | None = None) -> Any:
        return self._call("list-credential", query={"provider": provider})

    def get_credential(self, name: str) -> Any: return self._call("get-credential", name)
    def unregister_credential(self, name: str) -> Any: return self._call("unregister-credential", name)
    def register_region(self, req: dict) -> Any: return self._call("register-region", req=req)

    def list_region(self, provider: str | None = None) -> Any:
        return self._call("list-region", query={"provider": provider})

    def get_region(self, name: str) -> Any: return self._call("get-region", name)
    def unregister_region(self, name: str) -> Any: return self._call("unregister-region", name)
    def create_connection_config(self, req: dict) -> Any: return self._call("create-connection-config", req=req)
    def list_connection_config(self) -> Any: return self._call("list-connection-config")
    def get_connection_config(self, name: str) -> Any: return self._call("get-connection-config", name)
    def delete_connection_config(self, name: str) -> Any: return self._call("delete-connection-config", name)
    def count_all_connection(self) -> Any: return self._call("count-all-connection")

    def count_connection_by_provider(self, provider: str) -> Any:
        return self._call("count-connection-by-provider", provider)

    def count_connection_config(self, provider: str | None = None) -> Any:
        return self.count_connection_by_provider(provider) if provider else self.count_all_connection()

    # ---- 5.3 region / zone / preconfig -------------------------------------------------------------
    def list_region_zone(self, conn: str) -> Any: return self._call("list-region-zone", conn=conn)
    def get_region_zone(self, conn: str, name: str) -> Any: return self._call("get-region-zone", name, conn=conn)
    def list_org_region(self, conn: str) -> Any: return self._call("list-org-region", conn=conn)
    def list_org_zone(self, conn: str) -> Any: return self._call("list-org-zone", conn=conn)

    def list_region_zone_preconfig(self, driver_name: str, credential_name: str) -> Any:
        return self._call("list-region-zone-preconfig",
                          query={"DriverName": driver_name, "CredentialName": credential_name})

    def get_region_zone_preconfig(self, driver_name: str, credential_name: str, name: str) -> Any:
        return self._call("get-region-zone-preconfig", name,
                          query={"DriverName": driver_name, "CredentialName": credential_name})

    def list_org_region_preconfig(self, driver_name: str, credential_name: str) -> Any:
        return self._call("list-preconfigured-original-org-region",
                          query={"DriverName": driver_name, "CredentialName": credential_name})

    # ---- 5.4 images and specs ----------------------------------------------------------------------
    def list_image(self, conn: str) -> Any: return self._call("list-image", conn=conn)
    def get_image(self, conn: str, name: str) -> Any: return self._call("get-image", name, conn=conn)
    def list_vm_spec(self, conn: str) -> Any: return self._call("list-vm-spec", conn=conn)
    def get_vm_spec(self, conn: str, name: str) -> Any: return self._call("get-vm-spec", name, conn=conn)
    def list_org_vm_spec(self, conn: str) -> Any: return self._call("list-org-vm-spec", conn=conn)
    def get_org_vm_spec(self, conn: str, name: str) -> Any: return self._call("get-org-vm-spec", name, conn=conn)

    # ---- 5.5 VPC and subnet ------------------------------------------------------------------------
    def create_vpc(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("create-vpc", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_vpc(self, conn: str) -> Any: return self._call("list-vpc", conn=conn)
    def get_vpc(self, conn: str, name: str) -> Any: return self._call("get-vpc", name, conn=conn)

    def delete_vpc(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-vpc", name, conn=conn, query=self._force(force))

    def add_subnet(self, conn: str, vpc: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("add-subnet", vpc, conn=conn, req=req, extra=self._idt(id_transform_mode))

    def get_subnet(self, conn: str, vpc: str, name: str) -> Any:
        return self._call("get-subnet", vpc, name, conn=conn)

    def remove_subnet(self, conn: str, vpc: str, name: str, force: bool = False) -> Any:
        return self._call("remove-subnet", vpc, name, conn=conn, query=self._force(force))

    def remove_csp_subnet(self, conn: str, vpc: str, csp_id: str) -> Any:
        return self._call("remove-csp-subnet", vpc, csp_id, conn=conn)

    def register_vpc(self, conn: str, req: dict) -> Any: return self._call("register-vpc", conn=conn, req=req)
    def unregister_vpc(self, conn: str, name: str) -> Any: return self._call("unregister-vpc", name, conn=conn)
    def register_subnet(self, conn: str, req: dict) -> Any: return self._call("register-subnet", conn=conn, req=req)

    def unregister_subnet(self, conn: str, name: str, vpc: str) -> Any:
        return self._call("unregister-subnet", name, conn=conn, req={"VPCName": vpc})

    def list_all_vpc(self, conn: str) -> Any: return self._call("list-all-vpc", conn=conn)
    def list_all_vpc_info(self, conn: str) -> Any: return self._call("list-all-vpc-info", conn=conn)
    def delete_csp_vpc(self, conn: str, csp_id: str) -> Any: return self._call("delete-csp-vpc", csp_id, conn=conn)
    def count_all_vpc(self) -> Any: return self._call("count-all-vpc")
    def count_vpc_by_connection(self, conn: str) -> Any: return self._call("count-vpc-by-connection", conn)
    def count_vpc(self, conn: str | None = None) -> Any:
        return self.count_vpc_by_connection(conn) if conn else self.count_all_vpc()
    def count_all_subnet(self) -> Any: return self._call("count-all-subnet")
    def count_subnet_by_connection(self, conn: str) -> Any: return self._call("count-subnet-by-connection", conn)
    def count_subnet(self, conn: str | None = None) -> Any:
        return self.count_subnet_by_connection(conn) if conn else self.count_all_subnet()

    # ---- 5.6 security group and rules --------------------------------------------------------------
    def create_securitygroup(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("create-securitygroup", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_securitygroup(self, conn: str) -> Any: return self._call("list-securitygroup", conn=conn)
    def get_securitygroup(self, conn: str, name: str) -> Any: return self._call("get-securitygroup", name, conn=conn)

    def list_vpc_securitygroup(self, conn: str, vpc: str) -> Any:
        return self._call("list-vpc-securitygroup", vpc, conn=conn)

    def delete_securitygroup(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-securitygroup", name, conn=conn, query=self._force(force))

    def add_rules(self, conn: str, sg: str, rules: list[dict]) -> Any:
        return self._call("add-rule", sg, conn=conn, req={"RuleInfoList": list(rules)})

    def remove_rules(self, conn: str, sg: str, rules: list[dict]) -> Any:
        return self._call("remove-rule", sg, conn=conn, req={"RuleInfoList": list(rules)})

    def register_securitygroup(self, conn: str, req: dict) -> Any:
        return self._call("register-securitygroup", conn=conn, req=req)

    def unregister_securitygroup(self, conn: str, name: str) -> Any:
        return self._call("unregister-securitygroup", name, conn=conn)

    def get_sg_owner_vpc(self, conn: str, csp_id: str) -> Any:
        return self._call("get-sg-owner-vpc", conn=conn, req={"CSPId": csp_id})

    def list_all_securitygroup(self, conn: str) -> Any: return self._call("list-all-securitygroup", conn=conn)

    def list_all_securitygroup_info(self, conn: str) -> Any:
        return self._call("list-all-securitygroup-info", conn=conn)

    def delete_csp_securitygroup(self, conn: str, csp_id: str) -> Any:
        return self._call("delete-csp-securitygroup", csp_id, conn=conn)

    def count_all_securitygroup(self) -> Any: return self._call("count-all-securitygroup")

    def count_securitygroup_by_connection(self, conn: str) -> Any:
        return self._call("count-securitygroup-by-connection", conn)

    def count_securitygroup(self, conn: str | None = None) -> Any:
        return self.count_securitygroup_by_connection(conn) if conn else self.count_all_securitygroup()

    # ---- 5.7 key pair ------------------------------------------------------------------------------
    def create_keypair(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("create-keypair", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_keypair(self, conn: str) -> Any: return self._call("list-keypair", conn=conn)
    def get_keypair(self, conn: str, name: str) -> Any: return self._call("get-keypair", name, conn=conn)

    def delete_keypair(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-keypair", name, conn=conn, query=self._force(force))

    def register_keypair(self, conn: str, req: dict) -> Any: return self._call("register-keypair", conn=conn, req=req)

    def unregister_keypair(self, conn: str, name: str) -> Any:
        return self._call("unregister-keypair", name, conn=conn)

    def list_all_keypair(self, conn: str) -> Any: return self._call("list-all-keypair", conn=conn)
    def list_all_keypair_info(self, conn: str) -> Any: return self._call("list-all-keypair-info", conn=conn)

    def delete_csp_keypair(self, conn: str, csp_id: str) -> Any:
        return self._call("delete-csp-keypair", csp_id, conn=conn)

    def count_all_keypair(self) -> Any: return self._call("count-all-keypair")
    def count_keypair_by_connection(self, conn: str) -> Any: return self._call("count-keypair-by-connection", conn)
    def count_keypair(self, conn: str | None = None) -> Any:
        return self.count_keypair_by_connection(conn) if conn else self.count_all_keypair()

    # ---- 5.8 VM ------------------------------------------------------------------------------------
    def start_vm(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("start-vm", conn=conn, req=req, extra=self._idt(id_transform_mode))

    create_vm = start_vm

    def list_vm(self, conn: str) -> Any: return self._call("list-vm", conn=conn)
    def get_vm(self, conn: str, name: str) -> Any: return self._call("get-vm", name, conn=conn)

    def terminate_vm(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("terminate-vm", name, conn=conn, query=self._force(force))

    delete_vm = terminate_vm

    def list_vm_status(self, conn: str) -> Any: return self._call("list-vm-status", conn=conn)
    def get_vm_status(self, conn: str, name: str) -> Any: return self._call("get-vm-status", name, conn=conn)

    def control_vm(self, conn: str, name: str, action: str) -> Any:
        """``action`` is ``suspend``, ``resume`` or ``reboot``; answers ``{"Status": ...}``."""
        return self._call("control-vm", name, conn=conn, query={"action": action})

    def suspend_vm(self, conn: str, name: str) -> Any: return self.control_vm(conn, name, "suspend")
    def resume_vm(self, conn: str, name: str) -> Any: return self.control_vm(conn, name, "resume")
    def reboot_vm(self, conn: str, name: str) -> Any: return self.control_vm(conn, name, "reboot")
    def register_vm(self, conn: str, req: dict) -> Any: return self._call("register-vm", conn=conn, req=req)
    def unregister_vm(self, conn: str, name: str) -> Any: return self._call("unregister-vm", name, conn=conn)

    def get_vm_using_resources(self, conn: str, csp_id: str) -> Any:
        return self._call("get-vm-using-rs", conn=conn, query={"CSPId": csp_id})

    def list_all_vm(self, conn: str) -> Any: return self._call("list-all-vm", conn=conn)
    def list_all_vm_info(self, conn: str) -> Any: return self._call("list-all-vm-info", conn=conn)
    def get_csp_vm(self, conn: str, csp_id: str) -> Any: return self._call("get-csp-vm", csp_id, conn=conn)
    def terminate_csp_vm(self, conn: str, csp_id: str) -> Any: return self._call("terminate-csp-vm", csp_id, conn=conn)
    def count_all_vm(self) -> Any: return self._call("count-all-vm")
    def count_vm_by_connection(self, conn: str) -> Any: return self._call("count-vm-by-connection", conn)
    def count_vm(self, conn: str | None = None) -> Any:
        return self.count_vm_by_connection(conn) if conn else self.count_all_vm()

    # ---- 5.9 network load balancer -----------------------------------------------------------------
    def create_nlb(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("create-nlb", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_nlb(self, conn: str) -> Any: return self._call("list-nlb", conn=conn)
    def get_nlb(self, conn: str, name: str) -> Any: return self._call("get-nlb", name, conn=conn)

    def delete_nlb(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-nlb", name, conn=conn, query=self._force(force))

    def add_nlb_vms(self, conn: str, name: str, vms: list[str]) -> Any:
        return self._call("add-nlb-vm", name, conn=conn, req={"VMs": list(vms)})

    def remove_nlb_vms(self, conn: str, name: str, vms: list[str]) -> Any:
        return self._call("remove-nlb-vm", name, conn=conn, req={"VMs": list(vms)})

    def change_nlb_listener(self, conn: str, name: str, req: dict) -> Any:
        return self._call("change-listener", name, conn=conn, req=req)

    def change_nlb_vmgroup(self, conn: str, name: str, req: dict) -> Any:
        return self._call("change-vmgroup", name, conn=conn, req=req)

    def change_nlb_healthchecker(self, conn: str, name: str, req: dict) -> Any:
        return self._call("change-healthchecker", name, conn=conn, req=req)

    def get_nlb_health(self, conn: str, name: str) -> Any:
        return self._call("get-vmgroup-healthinfo", name, conn=conn)

    def get_nlb_owner_vpc(self, conn: str, csp_id: str) -> Any:
        return self._call("get-nlb-owner-vpc", conn=conn, req={"CSPId": csp_id})

    def register_nlb(self, conn: str, req: dict) -> Any: return self._call("register-nlb", conn=conn, req=req)
    def unregister_nlb(self, conn: str, name: str) -> Any: return self._call("unregister-nlb", name, conn=conn)
    def list_all_nlb(self, conn: str) -> Any: return self._call("list-all-nlb", conn=conn)
    def list_all_nlb_info(self, conn: str) -> Any: return self._call("list-all-nlb-info", conn=conn)
    def delete_csp_nlb(self, conn: str, csp_id: str) -> Any: return self._call("delete-csp-nlb", csp_id, conn=conn)
    def count_all_nlb(self) -> Any: return self._call("count-all-nlb")
    def count_nlb_by_connection(self, conn: str) -> Any: return self._call("count-nlb-by-connection", conn)
    def count_nlb(self, conn: str | None = None) -> Any:
        return self.count_nlb_by_connection(conn) if conn else self.count_all_nlb()



    # ---- VM-side families: disk, MyImage, tag, public IP, NIC (management routes: ``_managed``) ---------
    def create_disk(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("create-disk", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_disk(self, conn: str) -> Any: return self._call("list-disk", conn=conn)
    def get_disk(self, conn: str, name: str) -> Any: return self._call("get-disk", name, conn=conn)

    def delete_disk(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-disk", name, conn=conn, query=self._force(force))

    def increase_disk_size(self, conn: str, name: str, size: str) -> Any:
        return self._call("increase-disk-size", name, conn=conn, req={"Size": size})

    def attach_disk(self, conn: str, name: str, vm: str) -> Any:
        return self._call("attach-disk", name, conn=conn, req={"VMName": vm})

    def detach_disk(self, conn: str, name: str, vm: str) -> Any:
        return self._call("detach-disk", name, conn=conn, req={"VMName": vm})

    def snapshot_vm(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("snapshot-vm", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_myimage(self, conn: str) -> Any: return self._call("list-myimage", conn=conn)
    def get_myimage(self, conn: str, name: str) -> Any: return self._call("get-myimage", name, conn=conn)

    def delete_myimage(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-myimage", name, conn=conn, query=self._force(force))

    def add_tag(self, conn: str, resource_type: str, resource_name: str, key: str, value: str) -> Any:
        return self._call("add-tag", conn=conn, req={"ResourceType": resource_type, "ResourceName": resource_name,
                                                     "Tag": {"Key": key, "Value": value}})

    def list_tag(self, conn: str, resource_type: str, resource_name: str) -> Any:
        return self._call("list-tag", conn=conn, query={"ResourceType": resource_type, "ResourceName": resource_name})

    def get_tag(self, conn: str, resource_type: str, resource_name: str, key: str) -> Any:
        return self._call("get-tag", key, conn=conn,
                          query={"ResourceType": resource_type, "ResourceName": resource_name})

    def remove_tag(self, conn: str, resource_type: str, resource_name: str, key: str) -> Any:
        return self._call("remove-tag", key, conn=conn,
                          req={"ResourceType": resource_type, "ResourceName": resource_name})

    def find_tag(self, conn: str, keyword: str, resource_type: str = "all") -> Any:
        return self._call("find-tag", conn=conn, req={"ResourceType": resource_type, "Keyword": keyword})

    def create_publicip(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("create-publicip", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_publicip(self, conn: str) -> Any: return self._call("list-publicip", conn=conn)
    def get_publicip(self, conn: str, name: str) -> Any: return self._call("get-publicip", name, conn=conn)

    def delete_publicip(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-publicip", name, conn=conn, query=self._force(force))

    def associate_publicip(self, conn: str, name: str, vm: str = "", nic: str = "", private_ip: str = "") -> Any:
        return self._call("associate-publicip", name, conn=conn,
                          req={"VMName": vm, "NICName": nic, "PrivateIP": private_ip})

    def disassociate_publicip(self, conn: str, name: str) -> Any:
        return self._call("disassociate-publicip", name, conn=conn)

    def create_nic(self, conn: str, req: dict, id_transform_mode: str | None = None) -> Any:
        return self._call("create-nic", conn=conn, req=req, extra=self._idt(id_transform_mode))

    def list_nic(self, conn: str) -> Any: return self._call("list-nic", conn=conn)
    def get_nic(self, conn: str, name: str) -> Any: return self._call("get-nic", name, conn=conn)

    def delete_nic(self, conn: str, name: str, force: bool = False) -> Any:
        return self._call("delete-nic", name, conn=conn, query=self._force(force))

    def attach_nic(self, conn: str, name: str, vm: str) -> Any:
        return self._call("attach-nic", name, conn=conn, req={"VMName": vm})

    def detach_nic(self, conn: str, name: str) -> Any: return self._call("detach-nic", name, conn=conn)

    def add_nic_private_ip(self, conn: str, name: str, private_ip: str = "") -> Any:
        return self._call("add-nic-privateip", name, conn=conn, req={"PrivateIP": private_ip})

    def remove_nic_private_ip(self, conn: str, name: str, private_ip: str) -> Any:
        return self._call("remove-nic-privateip", name, private_ip, conn=conn)

    def get_nic_os_config_script(self, conn: str, name: str) -> Any:
        return self._call("get-nic-osconfigscript", name, conn=conn)

    # ---- prices, MC-Insight searches, VM image+spec favourites and recents ----------------------------
    def list_product_family(self, conn: str, region: str) -> Any:
        return self._call("list-product-family", region, conn=conn)

    def get_vm_price_info(self, conn: str, region: str, simple: bool = False) -> Any:
        return self._call("get-vmprice-info", region, conn=conn, query={"simple": "true"} if simple else None)

    def post_vm_price_info(self, conn: str, region: str, filters: list[dict] | None = None) -> Any:
        return self._call("post-vmprice-info", region, req={"ConnectionName": conn, "FilterList": filters or []})

    def mcinsight_price_info(self, **query: Any) -> Any: return self._call("proxy-mcinsight-vmprice", query=query)
    def mcinsight_price_info_filters(self) -> Any: return self._call("proxy-mcinsight-vmprice-filters")
    def mcinsight_vm_spec(self, **query: Any) -> Any: return self._call("proxy-mcinsight-vmspec", query=query)
    def mcinsight_vm_spec_filters(self) -> Any: return self._call("proxy-mcinsight-vmspec-filters")
    def mcinsight_vm_image(self, **query: Any) -> Any: return self._call("proxy-mcinsight-vmimage", query=query)
    def mcinsight_vm_image_filters(self) -> Any: return self._call("proxy-mcinsight-vmimage-filters")

    def list_favorite_imagespec(self, **query: Any) -> Any:
        return self._call("list-favorite-imagespec", query=query)

    def add_favorite_imagespec(self, record: dict) -> Any: return self._call("add-favorite-imagespec", req=record)

    def delete_favorite_imagespec(self, **key: Any) -> Any:
        return self._call("delete-favorite-imagespec", query=key)

    def bulk_import_favorite_imagespec(self, records: list[dict]) -> Any:
        return self._call("bulk-import-favorite-imagespec", req={"records": records})

    def list_recent_imagespec(self, **query: Any) -> Any: return self._call("list-recent-imagespec", query=query)
    def delete_recent_imagespec(self, **key: Any) -> Any: return self._call("delete-recent-imagespec", query=key)

    def bulk_import_recent_imagespec(self, records: list[dict]) -> Any:
        return self._call("bulk-import-recent-imagespec", req={"records": records})

    # ---- jobs and MOCK faults (project extensions) ----------------------------------------------------
    def get_job(self, job_id: str, wait: float | None = None) -> Any:
        return self._call("get-job", job_id, query={"wait": wait})

    def list_job(self, conn: str | None = None, status: str | None = None, limit: int | None = None) -> Any:
        return self._call("list-job", query={"ConnectionName": conn, "status": status, "limit": limit})

    def cancel_job(self, job_id: str) -> Any: return self._call("cancel-job", job_id)
    def list_mock_faults(self) -> Any: return self._call("list-mockfault")
    def add_mock_faults(self, rules: Any) -> Any: return self._call("add-mockfault", req=rules)
    def clear_mock_faults(self) -> Any: return self._call("clear-mockfault")
    def remove_mock_fault(self, rule_id: str) -> Any: return self._call("remove-mockfault", rule_id)

    def list_mock_events(self, since: int | None = None, kind: str | None = None) -> Any:
        return self._call("list-mockevent", query={"since": since, "kind": kind})


class _Base(_Operations):
    """``asynchronous=True`` sends ``Prefer: respond-async``: creates, deletes and VM control answer
    at once with a job (202), to follow with ``get_job``/``wait_job``; every other route is unchanged."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, username: str | None = None,
                 password: str | None = None, timeout: float | None = DEFAULT_TIMEOUT, *,
                 asynchronous: bool = False) -> None:
        self.base_url = _normalise_base_url(base_url)
        self.timeout = timeout
        self.headers = {"Accept": "application/json", **basic_auth_header(username, password)}
        if asynchronous:
            self.headers["Prefer"] = "respond-async"

    def url(self, p: Prepared) -> str:
        return self.base_url + p.path

    def prepare(self, op_id: str, *path_args: Any, conn: str | None = None, req: Any = None,
                query: Mapping[str, Any] | None = None, extra: Mapping[str, Any] | None = None,
                file: str | None = None) -> Prepared:
        return build_request(route(op_id), path_args, conn=conn, req=req, query=query, extra=extra, file=file)


# =================================================================================================
# Sync client (requests)
# =================================================================================================

def _managed(noun: str) -> None:
    """register/unregister, all/allinfo, CSP delete and counts for a family: the same seven wrappers."""
    def register(self: Any, conn: str, req: dict) -> Any: return self._call(f"register-{noun}", conn=conn, req=req)
    def unregister(self: Any, conn: str, name: str) -> Any: return self._call(f"unregister-{noun}", name, conn=conn)
    def list_all(self: Any, conn: str) -> Any: return self._call(f"list-all-{noun}", conn=conn)
    def list_all_info(self: Any, conn: str) -> Any: return self._call(f"list-all-{noun}-info", conn=conn)
    def delete_csp(self: Any, conn: str, csp_id: str) -> Any: return self._call(f"delete-csp-{noun}", csp_id, conn=conn)
    def count_all(self: Any) -> Any: return self._call(f"count-all-{noun}")
    def count_by(self: Any, conn: str) -> Any: return self._call(f"count-{noun}-by-connection", conn)
    for name, fn in ((f"register_{noun}", register), (f"unregister_{noun}", unregister), (f"list_all_{noun}", list_all),
                     (f"list_all_{noun}_info", list_all_info), (f"delete_csp_{noun}", delete_csp),
                     (f"count_all_{noun}", count_all), (f"count_{noun}_by_connection", count_by)):
        fn.__name__ = name
        setattr(_Operations, name, fn)


for _noun in ("disk", "myimage", "publicip", "nic"):
    _managed(_noun)


class SpiderClient(_Base):
    """Blocking client on one pooled ``requests.Session``. Use as a context manager or call close()."""

    def __init__(self, base_url: str = DEFAULT_BASE_URL, username: str | None = None,
                 password: str | None = None, timeout: float | None = DEFAULT_TIMEOUT, *,
                 asynchronous: bool = False) -> None:
        import requests

        super().__init__(base_url, username, password, timeout, asynchronous=asynchronous)
        self.session = requests.Session()
        self.session.headers.update(self.headers)

    def __enter__(self) -> "SpiderClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self.session.close()

    def send(self, p: Prepared) -> Any:
        """Send a prepared request; decoded JSON/text on 2xx, :class:`SpiderAPIError` otherwise."""
        kwargs: dict[str, Any] = {"params": p.params or None, "timeout": self.timeout}
        if p.file is not None:
            with open(p.file, "rb") as fh:
                resp = self.session.request(p.method, self.url(p), files={"file": (os.path.basename(p.file), fh)},
                                            **kwargs)
        else:
            if p.json is not None:
                kwargs["json"] = p.json
            resp = self.session.request(p.method, self.url(p), **kwargs)
        return decode_response(resp.status_code, resp.headers.get("Content-Type", ""), resp.content)

    def _call(self, op_id: str, *path_args: Any, **kw: Any) -> Any:
        return self.send(self.prepare(op_id, *path_args, **kw))

    def wait_job(self, job_id: str, timeout: float = 600.0, poll: float = 60.0) -> Any:
        """Long-poll a job until it finishes (done, failed or cancelled) or ``timeout`` passes;
        returns the job as last seen."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            job = self.get_job(job_id, wait=round(max(0.0, min(poll, left)), 3))
            if job.get("Status") in FINISHED_JOB or left <= 0:
                return job


# =================================================================================================
# Async client (aiohttp)
# =================================================================================================

class AsyncSpiderClient(_Base):
    """Same methods as :class:`SpiderClient`, as awaitables, on one ``aiohttp.ClientSession``.

    ``async with AsyncSpiderClient(...) as sp: await sp.list_vpc("c")``. Without the context manager
    the session is created on first use; call ``await sp.close()``.
    """

    def __init__(self, base_url: str = DEFAULT_BASE_URL, username: str | None = None,
                 password: str | None = None, timeout: float | None = DEFAULT_TIMEOUT,
                 connector_limit: int = 100, *, asynchronous: bool = False) -> None:
        super().__init__(base_url, username, password, timeout, asynchronous=asynchronous)
        self._limit = connector_limit
        self._session: Any = None

    async def __aenter__(self) -> "AsyncSpiderClient":
        self._ensure_session()
        return self

    async def __aexit__(self, *exc: Any) -> None:
        await self.close()

    def _ensure_session(self) -> Any:
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers=self.headers, timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=self._limit))
        return self._session

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    async def send(self, p: Prepared) -> Any:
        import aiohttp

        session = self._ensure_session()
        kwargs: dict[str, Any] = {"params": p.params or None}
        if p.file is not None:
            form = aiohttp.FormData()
            with open(p.file, "rb") as fh:
                form.add_field("file", fh.read(), filename=os.path.basename(p.file))
            kwargs["data"] = form
        elif p.json is not None:
            kwargs["json"] = p.json
        async with session.request(p.method, self.url(p), **kwargs) as resp:
            raw = await resp.read()
            return decode_response(resp.status, resp.headers.get("Content-Type", ""), raw)

    def _call(self, op_id: str, *path_args: Any, **kw: Any) -> Any:
        # Build synchronously (argument errors surface at call time), send as a coroutine.
        return self.send(self.prepare(op_id, *path_args, **kw))

    async def wait_job(self, job_id: str, timeout: float = 600.0, poll: float = 60.0) -> Any:
        """Long-poll a job until it finishes or ``timeout`` passes; returns the job as last seen."""
        import time

        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            job = await self.get_job(job_id, wait=round(max(0.0, min(poll, left)), 3))
            if job.get("Status") in FINISHED_JOB or left <= 0:
                return job
