"""Error paths of the REST edge (contract 1.3-1.6, 2.3, 2.4, 7.1, 7.3) on an in-process MOCK server.

Every failed call must answer JSON ``{"message": ...}`` (no traceback) and leave the MetaDB exactly as
it was (``db.dump()`` before == after).
"""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from spider_core.errors import DriverError
from spider_core.metadb import MetaDB

C = "mock-config01"
VPC_REQ = {"Name": "vpc-01", "IPv4_CIDR": "192.168.0.0/16",
           "SubnetInfoList": [{"Name": "subnet-01", "IPv4_CIDR": "192.168.1.0/24"}]}
RULE = {"FromPort": "22", "ToPort": "22", "IPProtocol": "tcp", "Direction": "inbound", "CIDR": "0.0.0.0/0"}


def vpc_req(name: str) -> dict:
    return {**VPC_REQ, "Name": name}


def error_body(r, status: int = 500) -> str:
    """Assert CB-Spider's error shape; return the message."""
    assert r.status == status, f"{r.status} {r.text}"
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json
    assert isinstance(body, dict) and list(body) == ["message"], r.text
    assert isinstance(body["message"], str) and body["message"]
    for leak in ("Traceback", 'File "', "spider_core", "sqlite3.", "Error(", ".py"):
        assert leak not in r.text, f"internal detail leaked: {r.text}"
    return body["message"]


async def failing(srv, method: str, path: str, body=None, *, status: int = 500, **kw) -> str:
    """Make a call that must fail; assert the error shape and that the MetaDB did not change."""
    before = await srv.dump()
    r = await srv.call(method, path, body, **kw)
    msg = error_body(r, status)
    assert await srv.dump() == before, f"MetaDB changed by failed {method} {path}: {msg}"
    return msg


async def ok(srv, method: str, path: str, body=None, **kw):
    r = await srv.call(method, path, body, **kw)
    assert r.status == 200, f"{method} {path}: {r.status} {r.text}"
    return r.json


async def make_all(srv) -> None:
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    await ok(srv, "POST", "securitygroup", srv.body({"Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": [RULE]}))
    await ok(srv, "POST", "keypair", srv.body({"Name": "keypair-01"}))
    await ok(srv, "POST", "vm", srv.body({"Name": "vm-01", "ImageName": "mock-vmimage-01", "VPCName": "vpc-01",
                                          "SubnetName": "subnet-01", "SecurityGroupNames": ["sg-01"],
                                          "VMSpecName": "mock-vmspec-01", "KeyPairName": "keypair-01"}))


# ---- duplicates, unknown names, unknown connection ---------------------------------------------------

async def test_duplicate_creates_are_refused(mock_server):
    srv = mock_server
    await make_all(srv)
    assert await failing(srv, "POST", "vpc", srv.body(VPC_REQ)) == f"VPC 'vpc-01' already exists in connection '{C}'"
    assert await failing(srv, "POST", "securitygroup", srv.body(
        {"Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": []})) == \
        f"Security Group 'sg-01' already exists in connection '{C}'"
    assert await failing(srv, "POST", "keypair", srv.body({"Name": "keypair-01"})) == \
        f"VM KeyPair 'keypair-01' already exists in connection '{C}'"
    assert await failing(srv, "POST", "vm", srv.body(
        {"Name": "vm-01", "ImageName": "mock-vmimage-01", "VPCName": "vpc-01", "SubnetName": "subnet-01",
         "SecurityGroupNames": ["sg-01"], "VMSpecName": "mock-vmspec-01", "KeyPairName": "keypair-01"})) == \
        f"VM 'vm-01' already exists in connection '{C}'"
    assert await failing(srv, "POST", "vpc/vpc-01/subnet", srv.body({"Name": "subnet-01",
                                                                     "IPv4_CIDR": "192.168.9.0/24"})) == \
        f"Subnet 'subnet-01' already exists in connection '{C}'"
    # the duplicate attempts created nothing at the CSP either
    allvpc = (await ok(srv, "GET", "allvpc", params={"ConnectionName": C}))["AllList"]
    assert [i["NameId"] for i in allvpc["MappedList"]] == ["vpc-01"] and allvpc["OnlyCSPList"] == []
    allsg = (await ok(srv, "GET", "allsecuritygroup", params={"ConnectionName": C}))["AllList"]
    assert len(allsg["MappedList"]) == 1 and allsg["OnlyCSPList"] == []


@pytest.mark.parametrize("path,word", [("vpc", "VPC"), ("securitygroup", "Security Group"),
                                       ("keypair", "VM KeyPair"), ("vm", "VM")])
async def test_unknown_name_get_and_delete(mock_server, path, word):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))  # something in the MetaDB to protect
    expected = f"{word} 'x' does not exist in connection '{C}'"
    assert await failing(srv, "GET", f"{path}/x", params={"ConnectionName": C}) == expected
    assert await failing(srv, "GET", f"{path}/x", srv.body()) == expected
    assert await failing(srv, "DELETE", f"{path}/x", srv.body()) == expected
    assert await failing(srv, "DELETE", f"{path}/x", srv.body(), params={"force": "true"}) == expected


async def test_unknown_subnet_and_rules_on_unknown_sg(mock_server):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    assert await failing(srv, "DELETE", "vpc/vpc-01/subnet/nope", srv.body()) == \
        f"Subnet 'nope' does not exist in connection '{C}'"
    assert await failing(srv, "GET", "vpc/vpc-01/subnet/nope", srv.body(), status=404) == "Subnet not found"
    assert await failing(srv, "POST", "vpc/nope/subnet", srv.body({"Name": "s", "IPv4_CIDR": "10.0.0.0/24"})) == \
        f"VPC 'nope' does not exist in connection '{C}'"
    assert await failing(srv, "POST", "securitygroup/nope/rules", srv.body({"RuleInfoList": [RULE]})) == \
        "The Security Group 'nope' does not exist!"
    assert await failing(srv, "POST", "securitygroup", srv.body(
        {"Name": "sg-x", "VPCName": "nope", "SecurityRules": []})) == f"VPC 'nope' does not exist in connection '{C}'"


@pytest.mark.parametrize("method,path,body", [
    ("GET", "vpc", None), ("GET", "vpc/vpc-01", None), ("GET", "securitygroup", None),
    ("GET", "keypair", None), ("GET", "allvpc", None),
    ("POST", "vpc", {"ReqInfo": VPC_REQ}), ("POST", "keypair", {"ReqInfo": {"Name": "k"}}),
])
async def test_unknown_connection(mock_server, method, path, body):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    b = {"ConnectionName": "nope", **(body or {})}
    # by-name calls may look the name up first (contract 7.7 does so for VMs): either text is fine
    accepted = {"nope: does not exist!"}
    if path == "vpc/vpc-01":
        accepted.add("VPC 'vpc-01' does not exist in connection 'nope'")
    assert await failing(srv, method, path, b) in accepted
    if method == "GET":
        assert await failing(srv, method, path, params={"ConnectionName": "nope"}) in accepted


async def test_vm_list_of_unknown_connection_is_empty(mock_server):
    # contract 7.7: MetaDB is read before the connection is opened
    assert await ok(mock_server, "GET", "vm", params={"ConnectionName": "nope"}) == {"vm": []}
    assert await ok(mock_server, "GET", "vmstatus", params={"ConnectionName": "nope"}) == {"vmstatus": []}


async def test_connection_with_missing_parts(mock_server):
    srv = mock_server
    await ok(srv, "POST", "connectionconfig", {"ConfigName": "broken", "ProviderName": "MOCK",
                                               "DriverName": "no-driver", "CredentialName": "mock-credential01",
                                               "RegionName": "mock-region01"})
    assert await failing(srv, "GET", "vpc", params={"ConnectionName": "broken"}) == "no-driver: does not exist!"


@pytest.mark.parametrize("method,path,body", [
    ("POST", "vpc", {"ReqInfo": VPC_REQ}), ("GET", "vpc", None), ("GET", "vpc/vpc-01", None),
    ("DELETE", "vpc/vpc-01", None), ("POST", "securitygroup", {"ReqInfo": {"Name": "s", "VPCName": "vpc-01",
                                                                          "SecurityRules": []}}),
    ("POST", "keypair", {"ReqInfo": {"Name": "k"}}), ("DELETE", "keypair/k", {}),
    ("GET", "allvpc", None), ("DELETE", "cspvpc/vpc-123", {}),
])
async def test_missing_connection_name(mock_server, method, path, body):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    assert await failing(srv, method, path, body) == "ConnectionName is empty!"
    assert await failing(srv, method, path, {**(body or {}), "ConnectionName": ""}) == "ConnectionName is empty!"


async def test_curl_without_content_type_binds_nothing(mock_server):
    # curl -d without -H: application/x-www-form-urlencoded, which binds nothing (contract 1.3)
    msg = await failing(mock_server, "POST", "vpc", data=json.dumps(mock_server.body(VPC_REQ)),
                        headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert msg == "ConnectionName is empty!"


async def test_empty_names_are_validation_errors(mock_server):
    srv = mock_server
    for name in ("", "   "):
        assert await failing(srv, "POST", "vpc", srv.body(vpc_req(name))) == \
            "resources.IID:NameId's input value is empty!"
        assert await failing(srv, "POST", "keypair", srv.body({"Name": name})) == \
            "resources.IID:NameId's input value is empty!"
    bad_subnet = {**VPC_REQ, "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": ""}]}
    assert await failing(srv, "POST", "vpc", srv.body(bad_subnet)) == \
        "resources.SubnetInfo:IPv4_CIDR's input value is empty!"
    assert await failing(srv, "POST", "vpc", srv.body({"IPv4_CIDR": "10.0.0.0/16"})) == \
        "resources.IID:NameId's input value is empty!"


# ---- body binding --------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", ['{"ConnectionName": x}', '{"ConnectionName": "mock-config01",', "{'a': 1}",
                                 '{"ConnectionName":"mock-config01"}}', "\xff\xfe"])
async def test_malformed_json(mock_server, raw):
    msg = await failing(mock_server, "POST", "vpc", data=raw.encode("latin-1"),
                        headers={"Content-Type": "application/json"})
    assert msg.startswith("code=400, message=Syntax error"), msg


@pytest.mark.parametrize("body,field", [
    ({"ConnectionName": 5}, "ConnectionName"),
    ({"ConnectionName": C, "ReqInfo": {**VPC_REQ, "Name": 1}}, "Name"),
    ({"ConnectionName": C, "ReqInfo": {**VPC_REQ, "SubnetInfoList": {"Name": "s"}}}, "SubnetInfoList"),
    ({"ConnectionName": C, "ReqInfo": {**VPC_REQ, "IPv4_CIDR": ["10.0.0.0/16"]}}, "IPv4_CIDR"),
    ({"ConnectionName": C, "ReqInfo": "vpc-01"}, "ReqInfo"),
    ({"ConnectionName": True}, "ConnectionName"),
])
async def test_wrong_json_types(mock_server, body, field):
    msg = await failing(mock_server, "POST", "vpc", body)
    assert msg.startswith("code=400, message=Unmarshal type error"), msg
    fields = [p.split("=", 1)[1] for p in msg.split(", ") if p.startswith("field=")]
    assert fields and fields[0].split(".")[-1] == field, msg


async def test_body_must_be_an_object(mock_server):
    msg = await failing(mock_server, "POST", "vpc", data=b"[1,2]", headers={"Content-Type": "application/json"})
    assert "Unmarshal type error" in msg


async def test_keys_match_case_insensitively(mock_server):
    body = {"connectionname": C, "reqinfo": {"name": "vpc-ci", "ipv4_cidr": "10.0.0.0/16",
                                             "subnetinfolist": [{"NAME": "s1", "IPv4_cidr": "10.0.1.0/24"}]},
            "unknownKey": {"x": 1}}
    v = await ok(mock_server, "POST", "vpc", body)
    assert v["IId"]["NameId"] == "vpc-ci" and v["SubnetInfoList"][0]["IId"]["NameId"] == "s1"


async def test_10_mib_body_is_refused_and_server_survives(mock_server):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    big = json.dumps({"ConnectionName": C, "ReqInfo": {**vpc_req("vpc-big"), "Pad": "x" * (10 * 1024 * 1024)}})
    msg = await failing(srv, "POST", "vpc", data=big, headers={"Content-Type": "application/json"}, status=413)
    assert "413" in msg and "Request Entity Too Large" in msg and "MiB" in msg, msg
    assert await ok(srv, "GET", "readyz") == {"message": "CB-Spider is ready"}
    assert [v["IId"]["NameId"] for v in (await ok(srv, "GET", "vpc", params={"ConnectionName": C}))["vpc"]] == \
        ["vpc-01"]


@pytest.mark.parametrize("ctype", ["text/plain", "application/xml-bogus", "image/png", None])
async def test_non_json_content_type_with_a_body(mock_server, ctype):
    headers = {"Content-Type": ctype} if ctype else {}
    data = json.dumps(mock_server.body(VPC_REQ)).encode()
    if ctype is None:
        # aiohttp would otherwise add application/octet-stream
        headers = {"Content-Type": ""}
    msg = await failing(mock_server, "POST", "vpc", data=data, headers=headers)
    assert msg == "code=415, message=Unsupported Media Type"


# ---- odd names ----------------------------------------------------------------------------------

ODD_NAMES = [
    "vpc\"quoted'name",
    "vpc-ünïcödé-日本語",
    "'; DROP TABLE iid_infos; --",
    "Robert'); DELETE FROM iid_infos WHERE ('1'='1",
    "v" * 300,
    "100%_like\\escape",
    "<script>&amp;</script>",
]


@pytest.mark.parametrize("name", ODD_NAMES)
async def test_odd_names_round_trip(mock_server, name):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(vpc_req("vpc-guard")))
    created = await ok(srv, "POST", "vpc", srv.body(vpc_req(name)))
    assert created["IId"]["NameId"] == name
    q = {"ConnectionName": C}
    got = await ok(srv, "GET", "vpc/" + quote(name, safe=""), params=q)
    assert got["IId"] == created["IId"]
    names = sorted(v["IId"]["NameId"] for v in (await ok(srv, "GET", "vpc", params=q))["vpc"])
    assert names == sorted(["vpc-guard", name])
    assert await ok(srv, "GET", f"countvpc/{C}") == {"count": 2}
    # a duplicate of the odd name is still detected (exact match, no LIKE/escaping surprises)
    assert await failing(srv, "POST", "vpc", srv.body(vpc_req(name))) == \
        f"VPC '{name}' already exists in connection '{C}'"
    assert await ok(srv, "DELETE", "vpc/" + quote(name, safe=""), srv.body()) == {"Result": "true"}
    assert [v["IId"]["NameId"] for v in (await ok(srv, "GET", "vpc", params=q))["vpc"]] == ["vpc-guard"]
    dump = await srv.dump()
    assert [r for r in dump["iid_infos"] if r[3] == name] == []
    assert {r[3] for r in dump["iid_infos"] if r[1] == "vpc"} == {"vpc-guard"}


async def test_sql_like_wildcards_do_not_match_other_rows(mock_server):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(vpc_req("vpc-01")))
    for pattern in ("%", "vpc-0_", "vpc%"):
        assert await failing(srv, "GET", "vpc/" + quote(pattern, safe=""), params={"ConnectionName": C}) == \
            f"VPC '{pattern}' does not exist in connection '{C}'"


# ---- force, redirects, pretty, 404/405 -----------------------------------------------------------

async def test_force_true_semantics(mock_server, monkeypatch):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    conn = await srv.sp.connection(C)
    calls = []

    async def broken_delete(iid):
        calls.append(iid)
        raise DriverError("the CSP is on fire")

    monkeypatch.setattr(conn.cloud.vpc, "delete_vpc", broken_delete)
    # a driver error fails the delete; MetaDB unchanged; only the exact string "true" forces
    for params in ({}, {"force": "TRUE"}, {"force": "1"}, {"force": "yes"}, {"force": ""}):
        msg = await failing(srv, "DELETE", "vpc/vpc-01", srv.body(), params=params)
        assert "the CSP is on fire" in msg
    assert len(calls) == 5
    assert await ok(srv, "DELETE", "vpc/vpc-01", srv.body(), params={"force": "true"}) == {"Result": "true"}
    dump = await srv.dump()
    assert dump["iid_infos"] == [], "forced delete removes the VPC row and its subnet rows"
    monkeypatch.undo()
    # the VPC is still at the CSP (the driver failed): it is now CSP-only
    only_csp = (await ok(srv, "GET", "allvpc", params={"ConnectionName": C}))["AllList"]["OnlyCSPList"]
    assert len(only_csp) == 1


async def test_not_found_at_the_csp_counts_as_deleted(mock_server):
    srv = mock_server
    v = await ok(srv, "POST", "vpc", srv.body(vpc_req("vpc-gone")))
    # delete the subnet and VPC behind Spider's back, then delete through Spider without force
    conn = await srv.sp.connection(C)
    for s in v["SubnetInfoList"]:
        await ok(srv, "DELETE", f"vpc/vpc-gone/cspsubnet/{s['IId']['SystemId']}", srv.body())
    assert await ok(srv, "DELETE", f"cspvpc/{v['IId']['SystemId']}", srv.body()) == {"Result": "true"}
    assert v["IId"]["SystemId"] not in {i.system_id for i in await conn.cloud.vpc.list_iid()}
    assert await ok(srv, "GET", "vpc", params={"ConnectionName": C}) == {"vpc": [{
        "IId": {"NameId": "vpc-gone", "SystemId": (await srv.sp.db.get_iid(C, "vpc", "vpc-gone")).system_id},
        "IPv4_CIDR": "", "SubnetInfoList": []}]}, "list shows a stub with the stored spUUID:cspId"
    assert await ok(srv, "DELETE", "vpc/vpc-gone", srv.body()) == {"Result": "true"}
    assert (await srv.dump())["iid_infos"] == []


async def test_trailing_slash_redirects(mock_server):
    srv = mock_server
    r = await srv.call("GET", "/spider/vpc/?ConnectionName=mock-config01&pretty", allow_redirects=False)
    assert r.status == 301
    assert r.headers["Location"] == "/spider/vpc?ConnectionName=mock-config01&pretty"
    r = await srv.call("DELETE", "/spider/vpc/vpc-01/", srv.body(), allow_redirects=False)
    assert r.status == 301 and r.headers["Location"] == "/spider/vpc/vpc-01"


async def test_pretty_indents_by_two_spaces(mock_server):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    compact = await srv.call("GET", "vpc/vpc-01", params={"ConnectionName": C})
    pretty = await srv.call("GET", "/spider/vpc/vpc-01?ConnectionName=mock-config01&pretty")
    assert pretty.status == 200 and pretty.json == compact.json
    assert pretty.text == json.dumps(compact.json, indent=2, ensure_ascii=False) + "\n"
    assert pretty.text.startswith('{\n  "IId": {\n    "NameId": "vpc-01"')
    err = await srv.call("GET", "/spider/vpc/nope?ConnectionName=mock-config01&pretty")
    assert err.text == '{\n  "message": "VPC \'nope\' does not exist in connection \'mock-config01\'"\n}\n'


@pytest.mark.parametrize("method,path", [("GET", "/spider/nope"), ("POST", "/spider/vpcs"),
                                         ("GET", "/spider/vpc/a/b/c/d"), ("GET", "/nope"), ("DELETE", "/spider")])
async def test_unknown_routes_404(mock_server, method, path):
    msg = await failing(mock_server, method, path, mock_server.body(), status=404)
    assert msg == "Not Found"


@pytest.mark.parametrize("method,path", [("PATCH", "/spider/vpc"), ("PUT", "/spider/vpc"),
                                         ("POST", "/spider/vpc/vpc-01"), ("DELETE", "/spider/vpc"),
                                         ("PUT", "/spider/keypair/k")])
async def test_wrong_method_405(mock_server, method, path):
    msg = await failing(mock_server, method, path, mock_server.body(), status=405)
    assert msg == "Method Not Allowed"


async def test_head_and_options(mock_server):
    r = await mock_server.call("HEAD", "/spider/readyz")
    assert r.status == 200 and r.text == ""
    r = await mock_server.call("OPTIONS", "/spider/vpc", headers={"Origin": "http://x",
                                                                  "Access-Control-Request-Method": "POST"})
    assert r.status == 204 and r.headers["Access-Control-Allow-Origin"] == "*"


async def test_internal_error_is_sanitised(mock_server, monkeypatch):
    srv = mock_server
    conn = await srv.sp.connection(C)

    async def bug(*a, **k):
        raise KeyError("secret-internal-detail")

    monkeypatch.setattr(conn.cloud.keypair, "create_key", bug)
    msg = await failing(srv, "POST", "keypair", srv.body({"Name": "k1"}))
    assert "Traceback" not in msg


async def test_sg_create_without_security_rules(mock_server):
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    # CB-Spider panics (500 Internal Server Error); any clean 500 message is acceptable
    await failing(srv, "POST", "securitygroup", srv.body({"Name": "sg-x", "VPCName": "vpc-01"}))


# ---- rollback of a CSP create when the MetaDB write fails ----------------------------------------

async def test_metadb_failure_after_csp_create_rolls_back(mock_server, monkeypatch):
    srv = mock_server
    conn = await srv.sp.connection(C)
    csp_before = {i.system_id for i in await conn.cloud.vpc.list_iid()}
    original = MetaDB.insert_iids
    failures = []

    async def insert_once_broken(self, rows, **kw):
        if not failures:
            failures.append(rows)
            raise OSError("disk full")
        return await original(self, rows, **kw)

    monkeypatch.setattr(MetaDB, "insert_iids", insert_once_broken)
    msg = await failing(srv, "POST", "vpc", srv.body(VPC_REQ))
    assert "rolled back" in msg and "disk full" in msg, msg
    assert failures and failures[0][0].name == "vpc-01"
    # the CSP VPC Spider created is gone again, and nothing is in the MetaDB
    csp_after = {i.system_id for i in await conn.cloud.vpc.list_iid()}
    assert csp_after == csp_before
    assert await srv.sp.db.count_open_intents() == 0  # the failed create's intent is closed: nothing to reconcile
    created_csp_id = failures[0][0].system_id.split(":", 1)[1]
    assert created_csp_id not in csp_after
    allvpc = (await ok(srv, "GET", "allvpc", params={"ConnectionName": C}))["AllList"]
    assert allvpc == {"MappedList": [], "OnlySpiderList": [], "OnlyCSPList": []}
    assert (await srv.dump())["iid_infos"] == []
    assert srv.sp.locks.entry_count() == 0
    # the next create (MetaDB healthy again) works with the same name
    v = await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    assert v["IId"]["NameId"] == "vpc-01"


async def test_keypair_rollback_too(mock_server, monkeypatch):
    srv = mock_server
    conn = await srv.sp.connection(C)
    original = MetaDB.insert_iids
    fired = []

    async def broken(self, rows):
        if not fired:
            fired.append(1)
            raise OSError("disk full")
        return await original(self, rows)

    monkeypatch.setattr(MetaDB, "insert_iids", broken)
    await failing(srv, "POST", "keypair", srv.body({"Name": "keypair-01"}))
    assert await conn.cloud.keypair.list_iid() == []


async def test_the_same_rule_twice_in_one_request_changes_nothing(mock_server):
    """Found by the SG suite: clouds reject the second copy only after creating the first, so Spider
    refuses such a list up front (create, AddRules and RemoveRules alike)."""
    srv = mock_server
    await ok(srv, "POST", "vpc", srv.body(VPC_REQ))
    await ok(srv, "POST", "securitygroup", srv.body({"Name": "sg-d", "VPCName": "vpc-01", "SecurityRules": [RULE]}))
    before = (await srv.call("GET", "securitygroup/sg-d", params={"ConnectionName": C})).json["SecurityRules"]
    other = {**RULE, "FromPort": "1000", "ToPort": "1000", "IPProtocol": "TCP", "CIDR": ""}
    for method in ("POST", "DELETE"):
        msg = await failing(srv, method, "securitygroup/sg-d/rules", srv.body({"RuleInfoList": [other, {**other, "CIDR": "0.0.0.0/0"}]}))
        assert "names the same rule twice" in msg and "FromPort:1000" in msg
    after = (await srv.call("GET", "securitygroup/sg-d", params={"ConnectionName": C})).json["SecurityRules"]
    assert after == before, "nothing reached the cloud"
    assert "names the same rule twice" in await failing(
        srv, "POST", "securitygroup", srv.body({"Name": "sg-e", "VPCName": "vpc-01", "SecurityRules": [RULE, RULE]}))
