"""Nova's metadata service (``cloudtwin.dataplane.metadata``) over real HTTP on 127.0.0.1, without root:
the twin's state is built through its APIs (a generated key pair, two networks with DHCP, static IPv4
and SLAAC IPv6, user data, a floating IP), then every document is read as a guest would."""

from __future__ import annotations

import asyncio
import base64
import json
import re
from typing import Any

import aiohttp
import pytest

from cloudtwin.dataplane import metadata
from twin_helpers import keystone_login

R = "/cloud-1/RegionOne"
SCRIPT = b"#!/bin/sh\necho hello from user-data > /tmp/ud\n"


class Cloud:
    """Raw HTTP against project p1 of cloud-1."""

    def __init__(self, s: aiohttp.ClientSession, srv: Any, token: str) -> None:
        self.s, self.srv, self.token = s, srv, token
        self.region = srv.twin.clouds["cloud-1"].regions["RegionOne"]

    async def req(self, method: str, path: str, body: Any = None, mv: str = "2.1") -> tuple[int, Any]:
        headers = {"X-Auth-Token": self.token, "OpenStack-API-Version": f"compute {mv}"}
        async with self.s.request(method, self.srv.url + R + path, json=body, headers=headers) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text and r.content_type == "application/json" else text)

    async def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, doc = await self.req(method, path, body, **kw)
        assert status < 300, (status, doc)
        return doc

    async def wait_active(self, sid: str) -> None:
        for _ in range(250):
            doc = await self.ok("GET", f"/compute/v2.1/servers/{sid}")
            if doc["server"]["status"] == "ACTIVE":
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{sid} never became ACTIVE")


@pytest.fixture
async def cloud(twin) -> Any:
    async with aiohttp.ClientSession() as s:
        token, _ = await keystone_login(s, twin.url, project="p1")
        yield Cloud(s, twin, token)


async def build_vm(c: Cloud, *, key: bool = True, user_data: bytes | None = SCRIPT) -> dict[str, Any]:
    """Two networks (DHCP IPv4; static IPv4 with a host route plus SLAAC IPv6), a key pair, a floating IP."""
    out: dict[str, Any] = {}
    n1 = (await c.ok("POST", "/network/v2.0/networks", {"network": {"name": "front", "mtu": 1450}}))["network"]
    await c.ok("POST", "/network/v2.0/subnets", {"subnet": {"network_id": n1["id"], "cidr": "10.1.0.0/24",
                                                            "ip_version": 4, "dns_nameservers": ["10.1.0.53"]}})
    n2 = (await c.ok("POST", "/network/v2.0/networks", {"network": {"name": "back"}}))["network"]
    await c.ok("POST", "/network/v2.0/subnets", {"subnet": {
        "network_id": n2["id"], "cidr": "10.2.0.0/24", "ip_version": 4, "enable_dhcp": False,
        "dns_nameservers": ["10.2.0.53", "10.1.0.53"],
        "host_routes": [{"destination": "172.16.0.0/12", "nexthop": "10.2.0.254"}]}})
    await c.ok("POST", "/network/v2.0/subnets", {"subnet": {
        "network_id": n2["id"], "cidr": "fd00:2::/64", "ip_version": 6, "ipv6_ra_mode": "slaac",
        "ipv6_address_mode": "slaac"}})
    out["nets"] = (n1["id"], n2["id"])
    server: dict[str, Any] = {"name": "Web_Server 1", "flavorRef": "1", "metadata": {"role": "web"},
                              "imageRef": next(i.id for i in c.region.glance.builtin.values()
                                               if i.name == "cirros-0.6.2"),
                              "networks": [{"uuid": n1["id"]}, {"uuid": n2["id"]}]}
    if key:
        kp = (await c.ok("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k1"}}))["keypair"]
        out["public_key"] = kp["public_key"]
        server["key_name"] = "k1"
    if user_data is not None:
        server["user_data"] = base64.b64encode(user_data).decode()
    sid = (await c.ok("POST", "/compute/v2.1/servers", {"server": server}))["server"]["id"]
    await c.wait_active(sid)
    out["id"] = sid
    ports = (await c.ok("GET", f"/network/v2.0/ports?device_id={sid}"))["ports"]
    out["ports"] = {p["network_id"]: p for p in ports}
    public = (await c.ok("GET", "/network/v2.0/networks?router:external=true"))["networks"][0]["id"]
    fip = (await c.ok("POST", "/network/v2.0/floatingips", {"floatingip": {
        "floating_network_id": public, "port_id": out["ports"][n1["id"]]["id"]}}))["floatingip"]
    out["fip"] = fip["floating_ip_address"]
    return out


class Guest:
    """An HTTP client in the VM's place, talking to the served socket."""

    def __init__(self, s: aiohttp.ClientSession, port: int) -> None:
        self.s, self.base = s, f"http://127.0.0.1:{port}"

    async def get(self, path: str, method: str = "GET") -> tuple[int, str, str]:
        async with self.s.request(method, self.base + path) as r:
            return r.status, await r.text(), r.headers.get("Content-Type", "")


@pytest.fixture
async def served(twin) -> Any:
    """serve(sock, lookup) on 127.0.0.1:<free port>; the test sets ``box["vm"]`` to (region, server)."""
    box: dict[str, Any] = {"vm": None}
    sock = metadata.open_socket("127.0.0.1", 0)
    handle = await metadata.serve(sock, lambda: box["vm"])
    async with aiohttp.ClientSession() as s:
        yield box, Guest(s, handle.port), handle
    handle.close()


def _vm(c: Cloud, sid: str) -> Any:
    def lookup() -> Any:
        server = c.region.nova.servers.get(sid)
        return None if server is None else (c.region, server)
    return lookup


async def test_openstack_documents(cloud, served):
    vm = await build_vm(cloud)
    box, guest, _ = served
    box["vm"] = _vm(cloud, vm["id"])()
    status, text, ctype = await guest.get("/openstack/latest/meta_data.json")
    assert status == 200 and ctype == "application/json"
    md = json.loads(text)
    server = cloud.region.nova.servers[vm["id"]]
    assert md["uuid"] == vm["id"]                       # cloud-init's instance-id is the server id
    assert md["name"] == "Web_Server 1" and md["hostname"] == "web-server-1.novalocal"
    assert md["public_keys"] == {"k1": vm["public_key"]}
    assert md["keys"] == [{"name": "k1", "type": "ssh", "data": vm["public_key"]}]
    assert md["meta"] == {"role": "web"} and md["launch_index"] == 0
    assert md["availability_zone"] == server.availability_zone and md["project_id"] == server.project_id
    assert md["devices"] == [] and md["dedicated_cpus"] == []
    assert len(base64.b64decode(md["random_seed"])) == 512
    assert list(md)[:3] == ["uuid", "meta", "public_keys"]          # Nova's key order
    # the same through a dated version: fields arrive with their version
    old = json.loads((await guest.get("/openstack/2013-10-17/meta_data.json"))[1])
    assert "random_seed" in old and "project_id" not in old and "devices" not in old
    folsom = json.loads((await guest.get("/openstack/2012-08-10/meta_data.json"))[1])
    assert "random_seed" not in folsom and folsom["uuid"] == vm["id"]
    assert (await guest.get("/openstack/2016-06-30/meta_data.json"))[0] == 200
    assert (await guest.get("/openstack/2099-01-01/meta_data.json"))[0] == 404
    # user data, decoded
    status, text, ctype = await guest.get("/openstack/latest/user_data")
    assert status == 200 and text.encode() == SCRIPT and ctype.startswith("text/plain")
    # vendor data, password
    assert (await guest.get("/openstack/latest/vendor_data.json"))[1] == "{}"
    assert json.loads((await guest.get("/openstack/latest/vendor_data2.json"))[1]) == {"static": {}}
    assert (await guest.get("/openstack/latest/password"))[:2] == (200, "")
    assert (await guest.get("/openstack/2012-08-10/vendor_data.json"))[0] == 404
    assert (await guest.get("/openstack/2015-10-15/vendor_data2.json"))[0] == 404
    # listings
    status, text, _ = await guest.get("/openstack/")
    assert status == 200 and text.split("\n") == list(metadata.OPENSTACK_VERSIONS) + ["latest"]
    assert (await guest.get("/openstack"))[1] == text
    assert (await guest.get("/openstack/latest/"))[1].split("\n") == [
        "meta_data.json", "user_data", "password", "vendor_data.json", "network_data.json", "vendor_data2.json"]
    assert (await guest.get("/openstack/2013-10-17"))[1].split("\n") == [
        "meta_data.json", "user_data", "password", "vendor_data.json"]
    assert (await guest.get("/openstack/latest/nothing"))[0] == 404
    assert (await guest.get("/openstack/content/0000"))[0] == 404


async def test_network_data(cloud, served):
    vm = await build_vm(cloud)
    box, guest, _ = served
    box["vm"] = _vm(cloud, vm["id"])()
    status, text, _ = await guest.get("/openstack/latest/network_data.json")
    assert status == 200
    nd = json.loads(text)
    n1, n2 = vm["nets"]
    p1, p2 = vm["ports"][n1], vm["ports"][n2]
    assert nd["links"] == [
        {"id": ("tap" + p1["id"])[:14], "vif_id": p1["id"], "type": "ovs", "mtu": 1450,
         "ethernet_mac_address": p1["mac_address"]},
        {"id": ("tap" + p2["id"])[:14], "vif_id": p2["id"], "type": "ovs", "mtu": 1500,
         "ethernet_mac_address": p2["mac_address"]}]
    v4_static = next(ip["ip_address"] for ip in p2["fixed_ips"] if "." in ip["ip_address"])
    v6 = next(ip["ip_address"] for ip in p2["fixed_ips"] if ":" in ip["ip_address"])
    assert nd["networks"] == [
        {"id": "network0", "type": "ipv4_dhcp", "link": nd["links"][0]["id"], "network_id": n1},
        {"id": "network1", "type": "ipv4", "link": nd["links"][1]["id"], "ip_address": v4_static,
         "netmask": "255.255.255.0",
         "routes": [{"network": "0.0.0.0", "netmask": "0.0.0.0", "gateway": "10.2.0.1"},
                    {"network": "172.16.0.0", "netmask": "255.240.0.0", "gateway": "10.2.0.254"}],
         "network_id": n2, "services": [{"type": "dns", "address": "10.2.0.53"},
                                        {"type": "dns", "address": "10.1.0.53"}]},
        {"id": "network2", "type": "ipv6_slaac", "link": nd["links"][1]["id"], "ip_address": v6,
         "netmask": "ffff:ffff:ffff:ffff::", "routes": [{"network": "::", "netmask": "::", "gateway": "fd00:2::1"}],
         "network_id": n2, "services": []}]
    assert nd["services"] == [{"type": "dns", "address": "10.1.0.53"}, {"type": "dns", "address": "10.2.0.53"}]


async def test_ec2_documents(cloud, served):
    vm = await build_vm(cloud)
    box, guest, _ = served
    box["vm"] = _vm(cloud, vm["id"])()
    server = cloud.region.nova.servers[vm["id"]]
    p1 = vm["ports"][vm["nets"][0]]
    assert (await guest.get("/"))[1].split("\n") == list(metadata.EC2_VERSIONS) + ["latest"]
    assert (await guest.get("/latest"))[1] == "meta-data/\nuser-data"
    status, text, ctype = await guest.get("/latest/meta-data/")
    assert status == 200 and ctype.startswith("text/plain")
    assert text.split("\n") == ["ami-id", "ami-launch-index", "ami-manifest-path", "block-device-mapping/",
                                "hostname", "instance-action", "instance-id", "instance-type", "local-hostname",
                                "local-ipv4", "placement/", "public-hostname", "public-ipv4", "public-keys/",
                                "reservation-id", "security-groups"]
    iid = (await guest.get("/latest/meta-data/instance-id"))[1]
    assert re.fullmatch(r"i-[0-9a-f]{8}", iid) and iid == "i-" + vm["id"][:8]
    assert iid == "i-" + (await cloud.ok("GET", f"/compute/v2.1/servers/{vm['id']}", mv="2.95"))[
        "server"]["OS-EXT-SRV-ATTR:instance_name"].removeprefix("instance-")
    assert (await guest.get("/latest/meta-data/ami-id"))[1] == "ami-" + server.image_id[:8]
    assert (await guest.get("/latest/meta-data/hostname"))[1] == "web-server-1.novalocal"
    assert (await guest.get("/latest/meta-data/local-hostname"))[1] == "web-server-1.novalocal"
    assert (await guest.get("/latest/meta-data/local-ipv4"))[1] == p1["fixed_ips"][0]["ip_address"]
    assert (await guest.get("/latest/meta-data/public-ipv4"))[1] == vm["fip"]
    assert (await guest.get("/latest/meta-data/instance-type"))[1] == "m1.tiny"
    assert (await guest.get("/latest/meta-data/placement/"))[1] == "availability-zone"
    assert (await guest.get("/latest/meta-data/placement/availability-zone"))[1] == server.availability_zone
    assert (await guest.get("/latest/meta-data/public-keys/"))[1] == "0=k1"
    assert (await guest.get("/latest/meta-data/public-keys/0/"))[1] == "openssh-key"
    assert (await guest.get("/latest/meta-data/public-keys/0/openssh-key"))[1] == vm["public_key"]
    assert (await guest.get("/latest/meta-data/security-groups"))[1] == "default"
    assert (await guest.get("/latest/meta-data/block-device-mapping/"))[1] == "ami\nroot"
    assert (await guest.get("/latest/meta-data/block-device-mapping/root"))[1] == "/dev/vda"
    assert (await guest.get("/latest/meta-data/ami-launch-index"))[1] == "0"
    assert (await guest.get("/latest/user-data"))[1].encode() == SCRIPT
    # the /ec2 prefix, dated versions, paths through leaves
    assert (await guest.get("/ec2/latest/meta-data/instance-id"))[1] == iid
    assert "public-ipv4" not in (await guest.get("/1.0/meta-data/"))[1]
    assert "placement/" in (await guest.get("/2009-04-04/meta-data/"))[1]
    for path in ("/latest/meta-data/instance-id/x", "/latest/meta-data/security-groups/default",
                 "/latest/meta-data/nope", "/2010-01-01/meta-data/", "/latest/meta-data/public-keys/1"):
        assert (await guest.get(path))[0] == 404, path


async def test_without_key_or_user_data_and_live_changes(cloud, served):
    vm = await build_vm(cloud, key=False, user_data=None)
    box, guest, _ = served
    lookup = _vm(cloud, vm["id"])
    box["vm"] = lookup()
    md = json.loads((await guest.get("/openstack/latest/meta_data.json"))[1])
    assert "public_keys" not in md and "keys" not in md
    assert (await guest.get("/openstack/latest/user_data"))[0] == 404
    assert "user_data" not in (await guest.get("/openstack/latest/"))[1].split("\n")
    assert (await guest.get("/latest"))[1] == "meta-data/"
    assert (await guest.get("/latest/user-data"))[0] == 404
    assert "public-keys/" not in (await guest.get("/latest/meta-data/"))[1]
    # the floating IP goes away: the next request says so (documents are built per request)
    fip = (await cloud.ok("GET", "/network/v2.0/floatingips"))["floatingips"][0]
    await cloud.ok("PUT", f"/network/v2.0/floatingips/{fip['id']}", {"floatingip": {"port_id": None}})
    assert (await guest.get("/latest/meta-data/public-ipv4"))[:2] == (200, "")
    # the server is deleted: 404 for everything
    await cloud.ok("DELETE", f"/compute/v2.1/servers/{vm['id']}")
    for _ in range(250):
        if cloud.region.nova.servers.get(vm["id"]) is None:
            break
        await asyncio.sleep(0.02)
    box["vm"] = lookup()
    assert box["vm"] is None
    assert (await guest.get("/openstack/latest/meta_data.json"))[0] == 404
    assert (await guest.get("/latest/meta-data/instance-id"))[0] == 404


async def raw(port: int, data: bytes, *, read_all: bool = True) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(-1) if read_all else reader.read(65536), 5)
    finally:
        writer.close()


async def test_http_server_rules(cloud, served):
    vm = await build_vm(cloud)
    box, guest, handle = served
    box["vm"] = _vm(cloud, vm["id"])()
    port = handle.port
    # HEAD: headers with the GET's length, no body
    status, text, _ = await guest.get("/latest/meta-data/instance-id", method="HEAD")
    assert status == 200 and text == ""
    out = await raw(port, b"HEAD /latest/meta-data/instance-id HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK\r\n") and b"Content-Length: 10\r\n" in out and out.endswith(b"\r\n\r\n")
    # only GET and HEAD
    for method in ("POST", "PUT", "DELETE"):
        status, text, _ = await guest.get("/latest/meta-data/", method=method)
        assert status == 405 and "not allowed" in text
    out = await raw(port, b"POST /openstack/latest/password HTTP/1.1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc")
    assert out.startswith(b"HTTP/1.1 405 ") and b"Allow: GET, HEAD\r\n" in out
    # keep-alive: two requests on one connection, then the connection closes when asked
    out = await raw(port, b"GET /latest/meta-data/instance-type HTTP/1.1\r\nHost: x\r\n\r\n"
                          b"GET /latest/meta-data/ami-launch-index HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.endswith(b"\r\n\r\n0")
    # HTTP/1.0 closes by default; absolute-form targets and query strings are fine
    out = await raw(port, b"GET http://169.254.169.254/latest/meta-data/instance-type?x=1 HTTP/1.0\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200 OK") and out.endswith(b"m1.tiny")
    # malformed and oversized requests: a status and a closed connection, never a traceback
    assert (await raw(port, b"garbage\r\n\r\n")).startswith(b"HTTP/1.1 400 ")
    assert (await raw(port, b"GET / HTTP/2.0\r\n\r\n")).startswith(b"HTTP/1.1 505 ")
    assert (await raw(port, b"GET / HTTP/1.1\r\nX: " + b"a" * 20000 + b"\r\n\r\n")).startswith(b"HTTP/1.1 431 ")
    big = await raw(port, b"GET / HTTP/1.1\r\nContent-Length: 999999999\r\n\r\n")
    assert big.startswith(b"HTTP/1.1 413 ")
    bad = await raw(port, b"GET / HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
    assert bad.startswith(b"HTTP/1.1 400 ")
    chunked = await raw(port, b"GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n")
    assert chunked.startswith(b"HTTP/1.1 501 ")
    # a document that fails to build is a plain 500, and the server keeps serving
    box["vm"] = (cloud.region, object())
    status, text, _ = await guest.get("/latest/meta-data/")
    assert status == 500 and "Traceback" not in text
    box["vm"] = _vm(cloud, vm["id"])()
    assert (await guest.get("/latest/meta-data/instance-type"))[:2] == (200, "m1.tiny")
    # close: the listening socket and open connections go
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    handle.close()
    assert await asyncio.wait_for(reader.read(), 5) == b""
    writer.close()
    with pytest.raises(OSError):
        await asyncio.open_connection("127.0.0.1", port)


def test_open_socket_binds_an_address_not_configured_here():
    """IP_FREEBIND: the socket is made before the namespace's lo carries 169.254.169.254."""
    sock = metadata.open_socket("192.0.2.77", 0)
    try:
        assert sock.getsockname()[0] == "192.0.2.77"
    finally:
        sock.close()
