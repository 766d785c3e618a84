"""Bad input a CB-Spider-driven fuzz run found: each gets a CB-Spider-style JSON ``{"message"}`` (never
aiohttp's plain text or an Internal Server Error) and leaves no half state."""

from __future__ import annotations

import json

import pytest

from tests.families_flow import ok


async def _vpc_roundtrip(srv, name: str) -> None:
    made = ok(await srv.call("POST", "vpc", srv.body({"Name": name, "IPv4_CIDR": "10.9.0.0/16", "SubnetInfoList": [
        {"Name": "s1", "IPv4_CIDR": "10.9.1.0/24"}]})))
    assert made["IId"]["NameId"] == name
    got = ok(await srv.call("GET", "vpc/" + name, params={"ConnectionName": srv.conn}))
    assert got["IId"] == made["IId"]
    assert ok(await srv.call("DELETE", "vpc/" + name, srv.body())) == {"Result": "true"}
    assert (await srv.dump())["iid_infos"] == []


async def test_a_10000_character_name_can_be_read_and_deleted(null_server):
    await _vpc_roundtrip(null_server, "v" * 10_000)


@pytest.mark.parametrize("name", ["vpc{1}", "{x}", "a}b{c"])
async def test_names_with_braces_can_be_read_and_deleted(null_server, name):
    await _vpc_roundtrip(null_server, name)


async def test_a_name_too_long_for_any_url_is_refused_at_create(null_server):
    srv = null_server
    r = await srv.call("POST", "vpc", srv.body({"Name": "v" * 100_001, "IPv4_CIDR": "10.9.0.0/16"}))
    assert r.status == 500 and "too long" in r.json["message"] and (await srv.dump())["iid_infos"] == []
    r = await srv.call("POST", "disk", srv.body({"Name": "d" * 100_001}))
    assert r.status == 500 and "too long" in r.json["message"]


async def test_a_request_line_past_the_limit_is_refused_whole(null_server):
    srv = null_server
    r = await srv.call("GET", "vpc/" + "v" * (1_100_000), params={"ConnectionName": srv.conn})
    assert r.status in (400, 414) and (await srv.dump())["iid_infos"] == []


NULL_ITEMS = [
    ("POST", "vpc", {"ReqInfo": {"Name": "v1", "IPv4_CIDR": "10.0.0.0/16", "SubnetInfoList": [None]}},
     "resources.IID:NameId's input value is empty!"),
    ("POST", "vpc", {"ReqInfo": {"Name": "v1", "IPv4_CIDR": "10.0.0.0/16", "SubnetInfoList": [
        {"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}, None]}}, "resources.IID:NameId's input value is empty!"),
    ("POST", "anycall", {"ReqInfo": {"FID": "countAll", "IKeyValueList": [None]}}, None),
    ("POST", "credential", {"CredentialName": "c1", "ProviderName": "NULL", "KeyValueInfoList": [None]}, None),
]


@pytest.mark.parametrize("method,path,body,text", NULL_ITEMS, ids=["subnet", "subnet-2", "ikv", "kvinfo"])
async def test_null_list_items_get_a_message(null_server, method, path, body, text):
    srv = null_server
    before = await srv.dump()
    r = await srv.call(method, path, {"ConnectionName": srv.conn, **body})
    assert r.headers["Content-Type"].startswith("application/json"), r.text
    assert r.json != {"message": "Internal Server Error"}
    if text is not None:
        assert r.status == 500 and r.json == {"message": text}
    if r.status != 200:
        assert list(r.json) == ["message"] and await srv.dump() == before


async def test_null_security_rule_is_refused_or_kept_whole(null_server):
    srv = null_server
    ok(await srv.call("POST", "vpc", srv.body({"Name": "v1", "IPv4_CIDR": "10.0.0.0/16", "SubnetInfoList": []})))
    before = await srv.dump()
    r = await srv.call("POST", "securitygroup", srv.body({"Name": "g1", "VPCName": "v1", "SecurityRules": [None]}))
    assert r.json != {"message": "Internal Server Error"} and r.status in (200, 500), r.text
    if r.status == 500:
        assert list(r.json) == ["message"] and await srv.dump() == before
    else:
        assert r.json["IId"]["NameId"] == "g1"


@pytest.mark.parametrize("depth", [5_000, 100_000])
async def test_deeply_nested_json_gets_a_syntax_message(null_server, depth):
    srv = null_server
    raw = '{"ConnectionName":"%s","ReqInfo":%s%s}' % (srv.conn, "[" * depth, "]" * depth)
    r = await srv.call("POST", "vpc", data=raw, headers={"Content-Type": "application/json"})
    assert r.status == 500 and r.json["message"].startswith("code=400, message=Syntax error"), r.text[:200]
    assert "exceeded max depth" in r.json["message"] or "Unmarshal type error" in r.json["message"]


@pytest.mark.parametrize("host", ["é" * 70, "a" * 64 + ".example", "bad..host"])
async def test_check_tcp_with_a_host_that_is_not_idna(null_server, host):
    r = await null_server.call("GET", "check/tcp", params={"HostName": host, "Port": "22"})
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.status in (400, 500) and list(r.json) == ["message"] and r.json["message"] != "Internal Server Error"


async def test_platform_and_empty_arrays(null_server):
    srv = null_server
    ok(await srv.call("POST", "vpc", srv.body({"Name": "v1", "IPv4_CIDR": "10.0.0.0/16",
                                               "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}]})))
    ok(await srv.call("POST", "securitygroup", srv.body({"Name": "g1", "VPCName": "v1", "SecurityRules": []})))
    ok(await srv.call("POST", "keypair", srv.body({"Name": "k1"})))
    vm = ok(await srv.call("POST", "vm", srv.body({"Name": "vm1", "ImageName": "null-image-01", "VMSpecName":
                                                   "null-spec-01", "VPCName": "v1", "SubnetName": "s1",
                                                   "SecurityGroupNames": ["g1"], "KeyPairName": "k1"})))
    assert vm["Platform"] == "LINUX/UNIX"
    sg = ok(await srv.call("GET", "securitygroup/g1", params={"ConnectionName": srv.conn}))
    assert sg["SecurityRules"] == []
    for word in ("disk", "myimage", "publicip", "nic"):
        info = ok(await srv.call("GET", f"all{word}info", params={"ConnectionName": srv.conn}))["AllListInfo"]
        assert info == {"MappedInfoList": [], "OnlySpiderList": [], "OnlyCSPInfoList": []}, (word, info)
    region = ok(await srv.call("POST", "region", {"RegionName": "r1", "ProviderName": "NULL",
                                                  "KeyValueInfoList": [{"Key": "Region", "Value": "x"}]}))
    assert region["AvailableZoneList"] == []
    assert json.loads((await srv.call("GET", "vm/imagespecfavorite")).text) == []
