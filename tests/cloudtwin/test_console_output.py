"""Nova's ``os-getConsoleOutput`` on Cloud-Twin: raw HTTP (Nova's length rules, 409 before launch, the
log written from the server's state, the data plane's log when it has one) and the unmodified
``openstack console log show``."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import aiohttp
import pytest

from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig
from test_openstack_cli_volumes import Cli
from twin_helpers import keystone_login

R = "/cloud-1/RegionOne"


class Client:
    def __init__(self, s: aiohttp.ClientSession, url: str, token: str) -> None:
        self.s, self.url, self.token = s, url, token

    async def req(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.s.request(method, self.url + R + path, json=body, headers={"X-Auth-Token": self.token}) as r:
            text = await r.text()
            return r.status, (json.loads(text) if text and r.content_type == "application/json" else text)

    async def console(self, sid: str, arg: Any = None) -> tuple[int, Any]:
        return await self.req("POST", f"/compute/v2.1/servers/{sid}/action", {"os-getConsoleOutput": arg})

    async def status(self, sid: str) -> str:
        return (await self.req("GET", f"/compute/v2.1/servers/{sid}"))[1]["server"]["status"]

    async def wait(self, sid: str, status: str) -> None:
        for _ in range(400):
            if await self.status(sid) == status:
                return
            await asyncio.sleep(0.02)
        raise AssertionError(f"{sid} never reached {status}")


async def make_server(c: Client, *, key: bool = True) -> tuple[str, dict[str, Any]]:
    net = (await c.req("POST", "/network/v2.0/networks", {"network": {"name": "n1"}}))[1]["network"]["id"]
    status, _ = await c.req("POST", "/network/v2.0/subnets", {"subnet": {"network_id": net, "cidr": "10.7.0.0/24",
                                                                         "ip_version": 4}})
    assert status == 201
    info: dict[str, Any] = {}
    body: dict[str, Any] = {"name": "Log VM", "flavorRef": "2", "networks": [{"uuid": net}],
                            "user_data": base64.b64encode(b"#!/bin/sh\necho hi\n").decode()}
    _, images = await c.req("GET", "/image/v2/images?name=ubuntu-22.04")
    body["imageRef"] = images["images"][0]["id"]
    if key:
        _, kp = await c.req("POST", "/compute/v2.1/os-keypairs", {"keypair": {"name": "k1"}})
        info["public_key"] = kp["keypair"]["public_key"]
        body["key_name"] = "k1"
    status, doc = await c.req("POST", "/compute/v2.1/servers", {"server": body})
    assert status == 202, doc
    return doc["server"]["id"], info


@pytest.fixture
async def client(twin) -> Any:
    async with aiohttp.ClientSession() as s:
        token, _ = await keystone_login(s, twin.url, project="p1")
        yield Client(s, twin.url, token)


async def test_the_log_written_from_the_server_state(twin, client):
    sid, info = await make_server(client)
    await client.wait(sid, "ACTIVE")
    status, doc = await client.console(sid, {})
    assert status == 200 and list(doc) == ["output"]
    out = doc["output"]
    region = twin.twin.clouds["cloud-1"].regions["RegionOne"]
    port = region.neutron.ports_of_device(sid)[0]
    ip = port.fixed_ips[0]["ip_address"]
    row = next(line for line in out.split("\n") if f" {ip} " in line)
    assert row.startswith("ci-info: |") and [c.strip() for c in row.split("|")[1:-1]] == [
        "ens3", "True", ip, "255.255.255.0", "global", port.mac_address]
    assert f"instance-id {sid} (EC2 i-{sid[:8]}), local-hostname log-vm" in out
    assert out.endswith("\n\nUbuntu 22.04 log-vm ttyS0\n\nlog-vm login: \n")
    assert "Cloud-init v. " in out and " finished at " in out and "DataSourceOpenStackLocal" in out
    assert "-----BEGIN SSH HOST KEY FINGERPRINTS-----" in out and "root@log-vm (ED25519)" in out
    blob = base64.b64decode(info["public_key"].split()[1])
    key_fp = "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")
    assert key_fp in out and "for user ubuntu" in out           # the image's login user, its key
    assert all(ch in "\t\n" or ch >= " " for ch in out)
    # deterministic: the same server reads the same
    assert (await client.console(sid, {"length": None}))[1]["output"] == out
    # stopped: the log ends with the power-off
    assert (await client.req("POST", f"/compute/v2.1/servers/{sid}/action", {"os-stop": None}))[0] == 202
    await client.wait(sid, "SHUTOFF")
    stopped = (await client.console(sid, {}))[1]["output"]
    assert stopped.startswith(out) and stopped.rstrip().endswith("reboot: Power down")


async def test_length_rules_are_novas(twin, client):
    sid, _ = await make_server(client, key=False)
    await client.wait(sid, "ACTIVE")
    full = (await client.console(sid, {}))[1]["output"]
    lines = full.split("\n")
    assert "no authorized SSH keys fingerprints found for user ubuntu" in full
    assert (await client.console(sid, {"length": 5}))[1]["output"] == "\n".join(lines[-5:])
    assert (await client.console(sid, {"length": "3"}))[1]["output"] == "\n".join(lines[-3:])
    assert (await client.console(sid, {"length": 0}))[1]["output"] == ""
    assert (await client.console(sid, {"length": 100000}))[1]["output"] == full
    # -1 is what the schema calls unlimited; Nova's slicing [-(-1):] drops the first line
    assert (await client.console(sid, {"length": -1}))[1]["output"] == "\n".join(lines[1:])
    # the string pattern allows a sign and the minimum does not apply to strings: "-2" drops two lines
    assert (await client.console(sid, {"length": "-2"}))[1]["output"] == "\n".join(lines[2:])
    for bad, why in ((-2, "less than the minimum of -1"), ("abc", "does not match"), ("1.5", "does not match"),
                     (True, "is not of type"), (1.5, "is not of type"), ([1], "is not of type")):
        status, doc = await client.console(sid, {"length": bad})
        assert status == 400 and why in doc["badRequest"]["message"], (bad, doc)
    status, doc = await client.console(sid, {"length": 1, "lines": 2})
    assert status == 400 and "Additional properties are not allowed" in doc["badRequest"]["message"]
    status, doc = await client.console(sid, None)
    assert status == 400 and "is not of type 'object'" in doc["badRequest"]["message"]
    status, doc = await client.console("00000000-0000-0000-0000-000000000000", {})
    assert status == 404


async def test_not_ready_before_the_first_launch():
    """Real-time stages: BUILD lasts ~1 s, so the server has no host yet (Nova's InstanceNotReady)."""
    srv = await TwinServer(port=0, config=TwinConfig(time_scale=1.0)).start()
    try:
        async with aiohttp.ClientSession() as s:
            token, _ = await keystone_login(s, srv.url, project="p1")
            c = Client(s, srv.url, token)
            sid, _ = await make_server(c, key=False)
            status, doc = await c.console(sid, {})
            assert status == 409 and doc["conflictingRequest"]["message"] == f"Instance {sid} is not ready"
            status, doc = await c.console(sid, {"length": -7})     # the body is checked first
            assert status == 400
    finally:
        await srv.stop()


class FakePlane:
    """Stands in for ``DataPlane``: a VM with its own console log."""

    def __init__(self, text: str | None, *, is_async: bool = False) -> None:
        self.text, self.is_async, self.calls = text, is_async, []

    def console(self, cloud: str, region: str, server_id: str) -> Any:
        self.calls.append((cloud, region, server_id))
        if self.is_async:
            async def later() -> str | None:
                return self.text
            return later()
        return self.text

    async def stop(self) -> None:
        pass


async def test_the_data_plane_log_when_there_is_one(twin, client):
    sid, _ = await make_server(client, key=False)
    await client.wait(sid, "ACTIVE")
    written = (await client.console(sid, {}))[1]["output"]
    plane = FakePlane("boot\x07 line\nhi from user-data\nlogin: \n")
    twin.twin.dataplane = plane
    try:
        assert (await client.console(sid, {}))[1]["output"] == "boot line\nhi from user-data\nlogin: \n"
        assert plane.calls == [("cloud-1", "RegionOne", sid)]
        assert (await client.console(sid, {"length": 2}))[1]["output"] == "login: \n"
        twin.twin.dataplane = FakePlane("async log\n", is_async=True)
        assert (await client.console(sid, {}))[1]["output"] == "async log\n"
        twin.twin.dataplane = FakePlane(None)            # the data plane does not run this server
        assert (await client.console(sid, {}))[1]["output"] == written
        twin.twin.dataplane = object()                   # a data plane without consoles
        assert (await client.console(sid, {}))[1]["output"] == written
    finally:
        twin.twin.dataplane = None


def test_openstack_console_log_show(threaded_twin):
    cli = Cli(threaded_twin.url, "console-cloud", "console-project", in_process=True)
    cli.run("network", "create", "n1")
    cli.run("subnet", "create", "--network", "n1", "--subnet-range", "10.8.0.0/24", "s1")
    server = cli.json("server", "create", "--image", "cirros-0.6.2", "--flavor", "m1.tiny", "--network", "n1",
                      "--wait", "cli-vm")
    out = cli.run("console", "log", "show", "cli-vm").stdout
    assert f"instance-id {server['id']} (EC2 i-{server['id'][:8]})" in out and "Cloud-init v. " in out
    assert "for user cirros" in out and "Cirros 0.6.2 cli-vm ttyS0" in out and "cli-vm login: " in out
    last = cli.run("console", "log", "show", "--lines", "4", "cli-vm").stdout
    assert last == "\n".join(out.split("\n")[-4:]) == "Cirros 0.6.2 cli-vm ttyS0\n\ncli-vm login: \n"
    missing = cli.run("console", "log", "show", "no-such-vm", check=False)
    assert missing.returncode != 0 and "No Server found for no-such-vm" in missing.stderr
