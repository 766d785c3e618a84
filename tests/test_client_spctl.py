"""Client library and spctl against a tiny recording aiohttp server (no Spider server needed)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import threading

import pytest
from aiohttp import web

from spider_core import spctl
from spider_core.client import (ROUTES, ROUTES_BY_ID, AsyncSpiderClient, Prepared, SpiderAPIError,
                                SpiderClient, _Operations)

CONN = "mock-config01"


# =================================================================================================
# Fake server: records (method, path, query, body, auth) and answers canned JSON
# =================================================================================================

class FakeSpider:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.responses: dict[tuple[str, str], tuple[int, object]] = {}
        self.loop = asyncio.new_event_loop()
        self.port = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body: object = None
        if raw:
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw.decode("utf-8", "replace")
        self.requests.append({
            "method": request.method, "path": request.path, "raw_path": request.raw_path.split("?")[0],
            "query": dict(request.query), "body": body, "auth": request.headers.get("Authorization"),
            "content_type": request.content_type if raw else None,
        })
        status, payload = self.responses.get(
            (request.method, request.path),
            (200, {"method": request.method, "path": request.path, "ok": "true"}))
        if isinstance(payload, str):
            return web.Response(status=status, text=payload, content_type="text/plain")
        return web.json_response(payload, status=status)

    def start(self) -> None:
        async def setup() -> None:
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            self._runner = web.AppRunner(app)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.port = site._server.sockets[0].getsockname()[1]

        self._thread.start()
        asyncio.run_coroutine_threadsafe(setup(), self.loop).result(10)

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def last(self) -> dict:
        assert self.requests, "no request reached the fake server"
        return self.requests[-1]


@pytest.fixture(scope="module")
def server():
    fake = FakeSpider()
    fake.start()
    yield fake
    fake.stop()


@pytest.fixture
def fake(server, monkeypatch):
    monkeypatch.delenv("SPIDER_USERNAME", raising=False)
    monkeypatch.delenv("SPIDER_PASSWORD", raising=False)
    server.requests.clear()
    server.responses.clear()
    return server


# =================================================================================================
# Route table
# =================================================================================================

# Every path of contract section 5 (5.1-5.9), with the methods the contract lists for it.
CONTRACT_ROUTES: list[tuple[set[str], str]] = [
    # 5.1 system
    ({"GET"}, "/endpointinfo"), ({"GET"}, "/version"), ({"GET"}, "/ver"), ({"GET"}, "/healthcheck"),
    ({"GET"}, "/health"), ({"GET"}, "/ping"), ({"GET"}, "/readyz"), ({"GET"}, "/splockinfo"),
    ({"DELETE"}, "/destroy"), ({"POST"}, "/anycall"), ({"GET"}, "/driver/capability"),
    ({"GET"}, "/cspresourcename/{Name}"), ({"GET"}, "/cspresourceinfo/{Name}"), ({"GET"}, "/check/tcp"),
    ({"GET"}, "/check/udp"),
    # 5.2 connection information
    ({"GET"}, "/cloudos"), ({"GET"}, "/cloudos/metainfo/{CloudOSName}"),
    ({"POST"}, "/driver"), ({"GET"}, "/driver"), ({"GET"}, "/driver/{DriverName}"),
    ({"DELETE"}, "/driver/{DriverName}"), ({"POST"}, "/driver/upload"),
    ({"POST"}, "/credential"), ({"GET"}, "/credential"), ({"GET"}, "/credential/{CredentialName}"),
    ({"DELETE"}, "/credential/{CredentialName}"),
    ({"POST"}, "/region"), ({"GET"}, "/region"), ({"GET"}, "/region/{RegionName}"),
    ({"DELETE"}, "/region/{RegionName}"),
    ({"POST"}, "/connectionconfig"), ({"GET"}, "/connectionconfig"), ({"GET"}, "/connectionconfig/{ConfigName}"),
    ({"DELETE"}, "/connectionconfig/{ConfigName}"),
    ({"GET"}, "/countconnectionconfig"), ({"GET"}, "/countconnectionconfig/{ProviderName}"),
    # 5.3 region / zone / preconfig
    ({"GET"}, "/regionzone"), ({"GET"}, "/regionzone/{Name}"), ({"GET"}, "/orgregion"), ({"GET"}, "/orgzone"),
    ({"GET"}, "/preconfig/regionzone"), ({"GET"}, "/preconfig/regionzone/{Name}"), ({"GET"}, "/preconfig/orgregion"),
    # 5.4 images and specs
    ({"GET"}, "/vmimage"), ({"GET"}, "/vmimage/{Name}"), ({"GET"}, "/vmspec"), ({"GET"}, "/vmspec/{Name}"),
    ({"GET"}, "/vmorgspec"), ({"GET"}, "/vmorgspec/{Name}"),
    # 5.5 VPC and subnet
    ({"POST"}, "/vpc"), ({"GET"}, "/vpc"), ({"GET"}, "/vpc/{Name}"), ({"DELETE"}, "/vpc/{Name}"),
    ({"POST"}, "/vpc/{VPCName}/subnet"), ({"GET"}, "/vpc/{VPCName}/subnet/{Name}"),
    ({"DELETE"}, "/vpc/{VPCName}/subnet/{SubnetName}"), ({"DELETE"}, "/vpc/{VPCName}/cspsubnet/{Id}"),
    ({"POST"}, "/regvpc"), ({"DELETE"}, "/regvpc/{Name}"), ({"POST"}, "/regsubnet"),
    ({"DELETE"}, "/regsubnet/{Name}"), ({"GET"}, "/allvpc"), ({"GET"}, "/allvpcinfo"),
    ({"DELETE"}, "/cspvpc/{Id}"), ({"GET"}, "/countvpc"), ({"GET"}, "/countvpc/{ConnectionName}"),
    ({"GET"}, "/countsubnet"), ({"GET"}, "/countsubnet/{ConnectionName}"),
    # 5.6 security group and rules
    ({"POST"}, "/securitygroup"), ({"GET"}, "/securitygroup"), ({"GET"}, "/securitygroup/{Name}"),
    ({"GET"}, "/securitygroup/vpc/{VPCName}"), ({"DELETE"}, "/securitygroup/{Name}"),
    ({"POST"}, "/securitygroup/{SGName}/rules"), ({"DELETE"}, "/securitygroup/{SGName}/rules"),
    ({"POST"}, "/regsecuritygroup"), ({"DELETE"}, "/regsecuritygroup/{Name}"),
    ({"GET", "POST"}, "/getsecuritygroupowner"), ({"GET"}, "/allsecuritygroup"),
    ({"GET"}, "/allsecuritygroupinfo"), ({"DELETE"}, "/cspsecuritygroup/{Id}"),
    ({"GET"}, "/countsecuritygroup"), ({"GET"}, "/countsecuritygroup/{ConnectionName}"),
    # 5.7 key pair
    ({"POST"}, "/keypair"), ({"GET"}, "/keypair"), ({"GET"}, "/keypair/{Name}"), ({"DELETE"}, "/keypair/{Name}"),
    ({"POST"}, "/regkeypair"), ({"DELETE"}, "/regkeypair/{Name}"), ({"GET"}, "/allkeypair"),
    ({"GET"}, "/allkeypairinfo"), ({"DELETE"}, "/cspkeypair/{Id}"), ({"GET"}, "/countkeypair"),
    ({"GET"}, "/countkeypair/{ConnectionName}"),
    # 5.8 VM
    ({"POST"}, "/vm"), ({"GET"}, "/vm"), ({"GET"}, "/vm/{Name}"), ({"DELETE"}, "/vm/{Name}"),
    ({"GET"}, "/vmstatus"), ({"GET"}, "/vmstatus/{Name}"), ({"GET", "PUT"}, "/controlvm/{Name}"),
    ({"POST"}, "/regvm"), ({"DELETE"}, "/regvm/{Name}"), ({"GET", "POST"}, "/getvmusingresources"),
    ({"GET"}, "/allvm"), ({"GET"}, "/allvminfo"), ({"GET"}, "/cspvm/{Id}"), ({"DELETE"}, "/cspvm/{Id}"),
    ({"GET"}, "/countvm"), ({"GET"}, "/countvm/{ConnectionName}"),
    # 5.9 NLB
    ({"POST"}, "/nlb"), ({"GET"}, "/nlb"), ({"GET"}, "/nlb/{Name}"), ({"DELETE"}, "/nlb/{Name}"),
    ({"POST"}, "/nlb/{Name}/vms"), ({"DELETE"}, "/nlb/{Name}/vms"), ({"PUT"}, "/nlb/{Name}/listener"),
    ({"PUT"}, "/nlb/{Name}/vmgroup"), ({"PUT"}, "/nlb/{Name}/healthchecker"), ({"GET"}, "/nlb/{Name}/health"),
    ({"GET", "POST"}, "/getnlbowner"), ({"POST"}, "/regnlb"), ({"DELETE"}, "/regnlb/{Name}"),
    ({"GET"}, "/allnlb"), ({"GET"}, "/allnlbinfo"), ({"DELETE"}, "/cspnlb/{Id}"), ({"GET"}, "/countnlb"),
    ({"GET"}, "/countnlb/{ConnectionName}"),
]

PROJECT_ROUTES = [({"GET"}, "/splockinfo"), ({"GET"}, "/calllog")]


def _shape(path: str) -> str:
    """Parameter names are not part of the wire: ``/vpc/{VPCName}/subnet/{Name}`` == ``.../{SubnetName}``."""
    return re.sub(r"\{\w+\}", "{}", path)


def test_operation_ids_and_commands_are_unique():
    ids = [r.op_id for r in ROUTES]
    assert len(ids) == len(set(ids))
    cmds = [spctl.command_of(r.op_id) for r in ROUTES]
    assert len(cmds) == len(set(cmds))
    method_paths = [(r.method, r.path) for r in ROUTES]
    assert len(method_paths) == len(set(method_paths))


@pytest.mark.parametrize("methods,path", CONTRACT_ROUTES + PROJECT_ROUTES, ids=lambda x: str(x))
def test_route_table_covers_contract_section5(methods, path):
    matches = [r for r in ROUTES if _shape(r.path) == _shape(path) and r.method in methods]
    assert matches, f"no route for {sorted(methods)} {path}"


def test_every_route_has_a_client_method_on_both_clients():
    for r in ROUTES:
        assert r.py and hasattr(_Operations, r.py), r.op_id
        assert callable(getattr(SpiderClient, r.py)) and callable(getattr(AsyncSpiderClient, r.py))
        assert r.conn in ("query", "body", "none") and r.body in ("none", "conn", "reqinfo", "raw", "file")
        if r.conn == "body":
            assert r.method in ("POST", "PUT", "DELETE") and r.body in ("conn", "reqinfo")
        if r.conn == "query":
            assert r.method == "GET"


# =================================================================================================
# Client: one or more representative calls per route family
# =================================================================================================

VPC_REQ = {"Name": "vpc-01", "IPv4_CIDR": "192.168.0.0/16",
           "SubnetInfoList": [{"Name": "subnet-01", "IPv4_CIDR": "192.168.1.0/24"}]}
RULE = {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22"}
DRIVER = {"DriverName": "mock-driver01", "ProviderName": "MOCK", "DriverLibFileName": "mock-driver-v1.0.so"}
HC = {"Protocol": "TCP", "Port": "22", "Interval": "10", "Timeout": "10", "Threshold": "3"}

# (call, method, path, query, body)
CLIENT_CASES = [
    # system
    (lambda c: c.version(), "GET", "/spider/version", {}, None),
    (lambda c: c.splockinfo(), "GET", "/spider/splockinfo", {}, None),
    (lambda c: c.splockinfo(detail=True), "GET", "/spider/splockinfo", {"detail": "true"}, None),
    (lambda c: c.destroy(CONN), "DELETE", "/spider/destroy", {}, {"ConnectionName": CONN}),
    (lambda c: c.anycall(CONN, {"FID": "countAll", "IKeyValueList": [{"Key": "rsType", "Value": "vpc"}]}),
     "POST", "/spider/anycall", {},
     {"ConnectionName": CONN, "ReqInfo": {"FID": "countAll", "IKeyValueList": [{"Key": "rsType", "Value": "vpc"}]}}),
    (lambda c: c.driver_capability(CONN), "GET", "/spider/driver/capability", {"ConnectionName": CONN}, None),
    (lambda c: c.csp_resource_name(CONN, "vpc-01", "vpc"), "GET", "/spider/cspresourcename/vpc-01",
     {"ConnectionName": CONN, "ResourceType": "vpc"}, None),
    (lambda c: c.check_tcp("h", 22), "GET", "/spider/check/tcp", {"HostName": "h", "Port": "22"}, None),
    (lambda c: c.calllog(cloudos="MOCK", resourcetype="VM", errors=True, since=3, limit=5), "GET", "/spider/calllog",
     {"cloudos": "MOCK", "resourcetype": "VM", "errors": "true", "since": "3", "limit": "5"}, None),
    # connection info
    (lambda c: c.register_driver(DRIVER), "POST", "/spider/driver", {}, DRIVER),
    (lambda c: c.list_driver(provider="MOCK"), "GET", "/spider/driver", {"provider": "MOCK"}, None),
    (lambda c: c.unregister_driver("mock-driver01"), "DELETE", "/spider/driver/mock-driver01", {}, None),
    (lambda c: c.get_cloudos_metainfo("MOCK"), "GET", "/spider/cloudos/metainfo/MOCK", {}, None),
    (lambda c: c.get_connection_config(CONN), "GET", f"/spider/connectionconfig/{CONN}", {}, None),
    (lambda c: c.count_connection_config(), "GET", "/spider/countconnectionconfig", {}, None),
    (lambda c: c.count_connection_config("MOCK"), "GET", "/spider/countconnectionconfig/MOCK", {}, None),
    # region / zone
    (lambda c: c.list_region_zone(CONN), "GET", "/spider/regionzone", {"ConnectionName": CONN}, None),
    (lambda c: c.list_region_zone_preconfig("d1", "c1"), "GET", "/spider/preconfig/regionzone",
     {"DriverName": "d1", "CredentialName": "c1"}, None),
    # images / specs
    (lambda c: c.get_vm_spec(CONN, "mock-vmspec-01"), "GET", "/spider/vmspec/mock-vmspec-01",
     {"ConnectionName": CONN}, None),
    (lambda c: c.list_image(CONN), "GET", "/spider/vmimage", {"ConnectionName": CONN}, None),
    # vpc / subnet
    (lambda c: c.create_vpc(CONN, VPC_REQ), "POST", "/spider/vpc", {}, {"ConnectionName": CONN, "ReqInfo": VPC_REQ}),
    (lambda c: c.create_vpc(CONN, VPC_REQ, id_transform_mode="OFF"), "POST", "/spider/vpc", {},
     {"ConnectionName": CONN, "ReqInfo": VPC_REQ, "IDTransformMode": "OFF"}),
    (lambda c: c.list_vpc(CONN), "GET", "/spider/vpc", {"ConnectionName": CONN}, None),
    (lambda c: c.get_vpc(CONN, "vpc-01"), "GET", "/spider/vpc/vpc-01", {"ConnectionName": CONN}, None),
    (lambda c: c.delete_vpc(CONN, "vpc-01"), "DELETE", "/spider/vpc/vpc-01", {}, {"ConnectionName": CONN}),
    (lambda c: c.delete_vpc(CONN, "vpc-01", force=True), "DELETE", "/spider/vpc/vpc-01", {"force": "true"},
     {"ConnectionName": CONN}),
    (lambda c: c.add_subnet(CONN, "vpc-01", {"Name": "subnet-02", "IPv4_CIDR": "192.168.2.0/24"}), "POST",
     "/spider/vpc/vpc-01/subnet", {},
     {"ConnectionName": CONN, "ReqInfo": {"Name": "subnet-02", "IPv4_CIDR": "192.168.2.0/24"}}),
    (lambda c: c.get_subnet(CONN, "vpc-01", "subnet-02"), "GET", "/spider/vpc/vpc-01/subnet/subnet-02",
     {"ConnectionName": CONN}, None),
    (lambda c: c.remove_subnet(CONN, "vpc-01", "subnet-02"), "DELETE", "/spider/vpc/vpc-01/subnet/subnet-02", {},
     {"ConnectionName": CONN}),
    (lambda c: c.unregister_subnet(CONN, "s-r1", "vpc-01"), "DELETE", "/spider/regsubnet/s-r1", {},
     {"ConnectionName": CONN, "ReqInfo": {"VPCName": "vpc-01"}}),
    (lambda c: c.register_vpc(CONN, {"Name": "v", "CSPId": "vpc-1"}), "POST", "/spider/regvpc", {},
     {"ConnectionName": CONN, "ReqInfo": {"Name": "v", "CSPId": "vpc-1"}}),
    (lambda c: c.list_all_vpc_info(CONN), "GET", "/spider/allvpcinfo", {"ConnectionName": CONN}, None),
    (lambda c: c.delete_csp_vpc(CONN, "vpc-1"), "DELETE", "/spider/cspvpc/vpc-1", {}, {"ConnectionName": CONN}),
    (lambda c: c.count_vpc(CONN), "GET", f"/spider/countvpc/{CONN}", {}, None),
    (lambda c: c.count_subnet(), "GET", "/spider/countsubnet", {}, None),
    # security group
    (lambda c: c.create_securitygroup(CONN, {"Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": [RULE]}),
     "POST", "/spider/securitygroup", {},
     {"ConnectionName": CONN, "ReqInfo": {"Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": [RULE]}}),
    (lambda c: c.list_vpc_securitygroup(CONN, "vpc-01"), "GET", "/spider/securitygroup/vpc/vpc-01",
     {"ConnectionName": CONN}, None),
    (lambda c: c.add_rules(CONN, "sg-01", [RULE]), "POST", "/spider/securitygroup/sg-01/rules", {},
     {"ConnectionName": CONN, "ReqInfo": {"RuleInfoList": [RULE]}}),
    (lambda c: c.remove_rules(CONN, "sg-01", [RULE]), "DELETE", "/spider/securitygroup/sg-01/rules", {},
     {"ConnectionName": CONN, "ReqInfo": {"RuleInfoList": [RULE]}}),
    (lambda c: c.get_sg_owner_vpc(CONN, "sg-123"), "POST", "/spider/getsecuritygroupowner", {},
     {"ConnectionName": CONN, "ReqInfo": {"CSPId": "sg-123"}}),
    # keypair
    (lambda c: c.create_keypair(CONN, {"Name": "keypair-01"}), "POST", "/spider/keypair", {},
     {"ConnectionName": CONN, "ReqInfo": {"Name": "keypair-01"}}),
    (lambda c: c.get_keypair(CONN, "keypair-01"), "GET", "/spider/keypair/keypair-01", {"ConnectionName": CONN}, None),
    (lambda c: c.delete_keypair(CONN, "keypair-01"), "DELETE", "/spider/keypair/keypair-01", {},
     {"ConnectionName": CONN}),
    # vm
    (lambda c: c.start_vm(CONN, {"Name": "vm-01"}), "POST", "/spider/vm", {},
     {"ConnectionName": CONN, "ReqInfo": {"Name": "vm-01"}}),
    (lambda c: c.get_vm_status(CONN, "vm-01"), "GET", "/spider/vmstatus/vm-01", {"ConnectionName": CONN}, None),
    (lambda c: c.list_vm_status(CONN), "GET", "/spider/vmstatus", {"ConnectionName": CONN}, None),
    (lambda c: c.control_vm(CONN, "vm-01", "suspend"), "PUT", "/spider/controlvm/vm-01", {"action": "suspend"},
     {"ConnectionName": CONN}),
    (lambda c: c.reboot_vm(CONN, "vm-01"), "PUT", "/spider/controlvm/vm-01", {"action": "reboot"},
     {"ConnectionName": CONN}),
    (lambda c: c.terminate_vm(CONN, "vm-01", force=True), "DELETE", "/spider/vm/vm-01", {"force": "true"},
     {"ConnectionName": CONN}),
    (lambda c: c.get_vm_using_resources(CONN, "i-123"), "GET", "/spider/getvmusingresources",
     {"ConnectionName": CONN, "CSPId": "i-123"}, None),
    (lambda c: c.get_csp_vm(CONN, "i-123"), "GET", "/spider/cspvm/i-123", {"ConnectionName": CONN}, None),
    # nlb
    (lambda c: c.add_nlb_vms(CONN, "nlb-01", ["vm-02"]), "POST", "/spider/nlb/nlb-01/vms", {},
     {"ConnectionName": CONN, "ReqInfo": {"VMs": ["vm-02"]}}),
    (lambda c: c.remove_nlb_vms(CONN, "nlb-01", ["vm-02"]), "DELETE", "/spider/nlb/nlb-01/vms", {},
     {"ConnectionName": CONN, "ReqInfo": {"VMs": ["vm-02"]}}),
    (lambda c: c.change_nlb_healthchecker(CONN, "nlb-01", HC), "PUT", "/spider/nlb/nlb-01/healthchecker", {},
     {"ConnectionName": CONN, "ReqInfo": HC}),
    (lambda c: c.get_nlb_health(CONN, "nlb-01"), "GET", "/spider/nlb/nlb-01/health", {"ConnectionName": CONN}, None),
    (lambda c: c.get_nlb_owner_vpc(CONN, "nlb-1"), "POST", "/spider/getnlbowner", {},
     {"ConnectionName": CONN, "ReqInfo": {"CSPId": "nlb-1"}}),
    (lambda c: c.count_nlb(), "GET", "/spider/countnlb", {}, None),
]

# the families of contract section 5 each get at least one case above
assert len(CLIENT_CASES) > 50


def _check(rec: dict, method: str, path: str, query: dict, body: object) -> None:
    assert (rec["method"], rec["path"]) == (method, path)
    assert rec["query"] == query
    assert rec["body"] == body
    if body is not None:
        assert rec["content_type"] == "application/json"


@pytest.mark.parametrize("call,method,path,query,body", CLIENT_CASES)
def test_sync_client_request_shape(fake, call, method, path, query, body):
    with SpiderClient(fake.url) as c:
        result = call(c)
    _check(fake.last, method, path, query, body)
    assert result == {"method": method, "path": path, "ok": "true"}
    assert fake.last["auth"] is None


def test_async_client_sends_the_same_requests(fake):
    async def run() -> list:
        out = []
        async with AsyncSpiderClient(fake.url) as c:
            for call, *_ in CLIENT_CASES:
                out.append(await call(c))
        return out

    results = asyncio.run(run())
    assert len(fake.requests) == len(CLIENT_CASES)
    for rec, result, (_, method, path, query, body) in zip(fake.requests, results, CLIENT_CASES):
        _check(rec, method, path, query, body)
        assert result["path"] == path


def test_every_route_is_callable_through_the_generic_entry_point(fake):
    with SpiderClient(fake.url) as c:
        for r in ROUTES:
            args = [f"p{i}" for i in range(len(r.path_params))]
            kw = {"file": __file__} if r.body == "file" else {}
            c.call(r.op_id, *args, conn=CONN if r.conn != "none" else None, **kw)
            rec = fake.last
            assert rec["method"] == r.method
            expected = r.path
            for i, name in enumerate(r.path_params):
                expected = expected.replace("{%s}" % name, f"p{i}")
            assert rec["path"] == "/spider" + expected
            if r.conn == "query":
                assert rec["query"].get("ConnectionName") == CONN
            if r.conn == "body":
                assert rec["body"]["ConnectionName"] == CONN
    assert len(fake.requests) == len(ROUTES)


def test_path_values_are_url_quoted(fake):
    with SpiderClient(fake.url) as c:
        c.get_image(CONN, "img/with space")
    assert fake.last["raw_path"] == "/spider/vmimage/img%2Fwith%20space"


def test_upload_driver_sends_multipart(fake, tmp_path):
    lib = tmp_path / "drv.so"
    lib.write_bytes(b"\x7fELF")
    fake.responses[("POST", "/spider/driver/upload")] = (200, "uploaded")
    with SpiderClient(fake.url) as c:
        assert c.upload_driver(str(lib)) == "uploaded"
    assert fake.last["content_type"] == "multipart/form-data"


def test_text_plain_endpoint_returns_text(fake):
    fake.responses[("GET", "/spider/endpointinfo")] = (200, "\n  <CB-Spider> Multi-Cloud ...\n")
    with SpiderClient(fake.url) as c:
        assert "<CB-Spider>" in c.endpoint_info()


# ---- auth ----------------------------------------------------------------------------------------

BASIC_DEFAULT = "Basic " + base64.b64encode(b"default:default").decode()


def test_basic_auth_sent_when_configured(fake):
    with SpiderClient(fake.url, username="default", password="default") as c:
        c.list_vpc(CONN)
    assert fake.last["auth"] == BASIC_DEFAULT

    async def run() -> None:
        async with AsyncSpiderClient(fake.url, "default", "default") as c:
            await c.get_vm(CONN, "vm-01")

    asyncio.run(run())
    assert fake.last["auth"] == BASIC_DEFAULT


def test_basic_auth_env_fallback_and_both_required(fake, monkeypatch):
    monkeypatch.setenv("SPIDER_USERNAME", "u1")
    monkeypatch.setenv("SPIDER_PASSWORD", "p1")
    with SpiderClient(fake.url) as c:
        c.version()
    assert fake.last["auth"] == "Basic " + base64.b64encode(b"u1:p1").decode()

    monkeypatch.delenv("SPIDER_PASSWORD")
    with SpiderClient(fake.url) as c:
        c.version()
    assert fake.last["auth"] is None
    with SpiderClient(fake.url, username="only-user") as c:
        c.version()
    assert fake.last["auth"] is None


# ---- errors --------------------------------------------------------------------------------------

MISSING = "VPC 'vpc-99' does not exist in connection 'mock-config01'"


def test_sync_error_carries_status_and_message(fake):
    fake.responses[("GET", "/spider/vpc/vpc-99")] = (500, {"message": MISSING})
    with SpiderClient(fake.url) as c, pytest.raises(SpiderAPIError) as info:
        c.get_vpc(CONN, "vpc-99")
    assert info.value.status == 500
    assert info.value.message == MISSING
    assert "does not exist" in str(info.value)


def test_async_error_carries_status_and_message(fake):
    fake.responses[("DELETE", "/spider/vpc/vpc-99")] = (500, {"message": MISSING})
    fake.responses[("GET", "/spider/nope")] = (404, "plain not found")

    async def run() -> tuple:
        async with AsyncSpiderClient(fake.url) as c:
            with pytest.raises(SpiderAPIError) as e1:
                await c.delete_vpc(CONN, "vpc-99")
            with pytest.raises(SpiderAPIError) as e2:
                await c.send(Prepared("GET", "/spider/nope"))
        return e1.value, e2.value

    e1, e2 = asyncio.run(run())
    assert (e1.status, e1.message) == (500, MISSING)
    assert (e2.status, e2.message) == (404, "plain not found")


def test_wrong_number_of_path_arguments_is_a_type_error(fake):
    with SpiderClient(fake.url) as c, pytest.raises(TypeError):
        c.call("get-vpc", conn=CONN)
    assert not fake.requests


# =================================================================================================
# spctl
# =================================================================================================

@pytest.mark.parametrize("op_id,command", [
    ("create-vpc", ("vpc", "create")), ("add-subnet", ("subnet", "add")),
    ("get-vm-status", ("vm-status", "get")), ("list-all-vm", ("all-vm", "list")),
    ("control-vm", ("vm", "control")), ("add-rule", ("rule", "add")),
    ("register-driver", ("driver", "register")), ("list-connection-config", ("connection", "list")),
    ("list-vm-spec", ("vmspec", "list")), ("remove-subnet", ("subnet", "remove")),
])
def test_command_names_follow_the_operation_ids(op_id, command):
    assert op_id in ROUTES_BY_ID
    assert spctl.command_of(op_id) == command


def test_delete_operations_have_no_connection_flag():
    for r in ROUTES:
        names = [f.name for f in spctl.flags_of(r)]
        if r.method == "DELETE":
            assert "ConnectionName" not in names, r.op_id
        if r.conn == "query":
            assert "ConnectionName" in names, r.op_id


SUBNET2 = '{"ConnectionName":"mock-config01","ReqInfo":{"Name":"subnet-02","IPv4_CIDR":"192.168.2.0/24"}}'
CONN_BODY = '{"ConnectionName":"mock-config01"}'

SPCTL_CASES = [
    (["vpc", "create", "-d", json.dumps({"ConnectionName": CONN, "ReqInfo": VPC_REQ})],
     "POST", "/spider/vpc", {}, {"ConnectionName": CONN, "ReqInfo": VPC_REQ}),
    (["vpc", "list", "-c", CONN], "GET", "/spider/vpc", {"ConnectionName": CONN}, None),
    (["vpc", "get", "-c", CONN, "-n", "vpc-01"], "GET", "/spider/vpc/vpc-01", {"ConnectionName": CONN}, None),
    (["vpc", "get", "--ConnectionName", CONN, "--Name", "vpc-01"], "GET", "/spider/vpc/vpc-01",
     {"ConnectionName": CONN}, None),
    (["subnet", "add", "--VPCName", "vpc-01", "-d", SUBNET2], "POST", "/spider/vpc/vpc-01/subnet", {},
     json.loads(SUBNET2)),
    (["subnet", "remove", "--VPCName", "vpc-01", "--SubnetName", "s", "-d", CONN_BODY], "DELETE",
     "/spider/vpc/vpc-01/subnet/s", {}, {"ConnectionName": CONN}),
    (["vm", "control", "-n", "vm-01", "--action", "suspend", "-d", CONN_BODY], "PUT", "/spider/controlvm/vm-01",
     {"action": "suspend"}, {"ConnectionName": CONN}),
    (["vm-status", "get", "-c", CONN, "-n", "vm-01"], "GET", "/spider/vmstatus/vm-01", {"ConnectionName": CONN}, None),
    (["vpc", "delete", "-n", "vpc-01", "--force", "true", "-d", CONN_BODY], "DELETE", "/spider/vpc/vpc-01",
     {"force": "true"}, {"ConnectionName": CONN}),
    (["connection", "list"], "GET", "/spider/connectionconfig", {}, None),
    (["connection-config", "get", "--ConfigName", CONN], "GET", f"/spider/connectionconfig/{CONN}", {}, None),
    (["vmspec", "list", "-c", CONN], "GET", "/spider/vmspec", {"ConnectionName": CONN}, None),
    (["driver", "register", "--DriverName", "mock-driver01", "--ProviderName", "MOCK",
      "--DriverLibFileName", "mock-driver-v1.0.so"], "POST", "/spider/driver", {}, DRIVER),
    (["credential", "register", "-d", json.dumps({"CredentialName": "c1", "ProviderName": "MOCK",
                                                   "KeyValueInfoList": [{"Key": "MockName", "Value": "m"}]})],
     "POST", "/spider/credential", {},
     {"CredentialName": "c1", "ProviderName": "MOCK", "KeyValueInfoList": [{"Key": "MockName", "Value": "m"}]}),
    (["vpc-by-connection", "count", "-c", CONN], "GET", f"/spider/countvpc/{CONN}", {}, None),
    (["rule", "add", "--SGName", "sg-01", "-d",
      json.dumps({"ConnectionName": CONN, "ReqInfo": {"RuleInfoList": [RULE]}})],
     "POST", "/spider/securitygroup/sg-01/rules", {}, {"ConnectionName": CONN, "ReqInfo": {"RuleInfoList": [RULE]}}),
    (["splockinfo", "get", "--detail", "true"], "GET", "/spider/splockinfo", {"detail": "true"}, None),
    (["calllog", "list", "--cloudos", "MOCK", "--limit", "10"], "GET", "/spider/calllog",
     {"cloudos": "MOCK", "limit": "10"}, None),
]


@pytest.mark.parametrize("argv,method,path,query,body", SPCTL_CASES,
                         ids=lambda x: " ".join(x) if isinstance(x, list) else None)
def test_spctl_builds_the_request_and_prints_indented_json(fake, capsys, argv, method, path, query, body):
    rc = spctl.main(argv + ["-s", f"127.0.0.1:{fake.port}"])
    out = capsys.readouterr().out
    assert rc == 0
    assert len(fake.requests) == 1
    _check(fake.last, method, path, query, body)
    assert out == json.dumps({"method": method, "path": path, "ok": "true"}, indent=2) + "\n"
    assert "\x1b[" not in out  # no colour when not a TTY


def test_spctl_global_flags_before_the_command_and_auth(fake, capsys):
    rc = spctl.main(["-s", f"127.0.0.1:{fake.port}", "-u", "default", "-p", "default", "vpc", "list", "-c", CONN])
    assert rc == 0
    assert fake.last["auth"] == BASIC_DEFAULT
    rc = spctl.main(["vpc", "list", "-c", CONN, "--server", f"127.0.0.1:{fake.port}", "-u", "default"])
    assert rc == 0 and fake.last["auth"] is None  # Basic auth only when both are set
    capsys.readouterr()


def test_spctl_auth_from_environment(fake, capsys, monkeypatch):
    monkeypatch.setenv("SPIDER_USERNAME", "default")
    monkeypatch.setenv("SPIDER_PASSWORD", "default")
    assert spctl.main(["vm", "list", "-c", CONN, "-s", f"127.0.0.1:{fake.port}"]) == 0
    assert fake.last["auth"] == BASIC_DEFAULT
    capsys.readouterr()


def test_spctl_server_error_prints_message_and_fails(fake, capsys):
    fake.responses[("POST", "/spider/vpc")] = (500, {"message": "connectionName is empty!"})
    rc = spctl.main(["vpc", "create", "-d", '{"ReqInfo":{}}', "-s", f"127.0.0.1:{fake.port}"])
    out = capsys.readouterr().out
    assert rc != 0
    assert json.loads(out) == {"message": "ConnectionName is empty!"}


def test_spctl_unreachable_server_prints_json_message(capsys):
    rc = spctl.main(["vpc", "list", "-c", CONN, "-s", "127.0.0.1:1"])
    assert rc != 0
    assert "message" in json.loads(capsys.readouterr().out)


def test_spctl_missing_required_flag_prints_usage(fake, capsys):
    rc = spctl.main(["vpc", "get", "-c", CONN, "-s", f"127.0.0.1:{fake.port}"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "usage: spctl vpc get" in err
    assert '"Name"' in err
    assert not fake.requests


def test_spctl_missing_body_prints_usage_and_two_example_jsons(fake, capsys):
    rc = spctl.main(["subnet", "add", "--VPCName", "vpc-01", "-s", f"127.0.0.1:{fake.port}"])
    err = capsys.readouterr().err
    assert rc != 0
    assert "usage: spctl subnet add" in err
    assert "Example JSON 1" in err and "Example JSON 2" in err
    one_liner = re.search(r"-d '(\{.*\})'", err).group(1)
    assert json.loads(one_liner)["ConnectionName"] == CONN
    assert not fake.requests


def test_spctl_help_lists_resources_and_verbs(capsys):
    with pytest.raises(SystemExit) as e:
        spctl.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for res in ("vpc", "subnet", "vm-status", "connection", "vmspec", "rule", "nlb", "splockinfo", "calllog"):
        assert re.search(rf"^\s+{re.escape(res)}\b", out, re.M), res

    with pytest.raises(SystemExit):
        spctl.main(["vpc", "--help"])
    out = capsys.readouterr().out
    for verb in ("create", "list", "get", "delete", "register", "unregister"):
        assert re.search(rf"^\s+{verb}\b", out, re.M), verb


def test_spctl_version(capsys):
    assert spctl.main(["-v"]) == 0
    assert "spctl version" in capsys.readouterr().out


def test_colour_only_on_tty():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert "\x1b[" in spctl.render({"a": "b"}, Tty())
    assert spctl.render({"a": "b"}, io.StringIO()) == '{\n  "a": "b"\n}'
