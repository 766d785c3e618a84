"""Restart of a real ``spider serve`` on the same SPIDER_ROOT (contract 4.2 "Mock state vs MetaDB").

The MetaDB (connection info + IIDs) survives; the MOCK cloud (in-process moto) does not. Lists then
return CB-Spider stubs with the stored ``spUUID:cspId``, and deletes succeed as if forced.
"""

from __future__ import annotations

import re
import stat

import requests

C = "mock-config01"
Q = {"ConnectionName": C}
B = {"ConnectionName": C}
SPUUID = "[0-9a-z_-]+-[0-9a-v]{20}"


def post(srv, path, req):
    r = requests.post(f"{srv.url}/{path}", json={"ConnectionName": C, "ReqInfo": req}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()


def get(srv, path, status=200, **params):
    r = requests.get(f"{srv.url}/{path}", params=params or None, timeout=60)
    assert r.status_code == status, r.text
    return r


def counts(srv) -> dict:
    return {w: get(srv, f"count{w}/{C}").json()["count"]
            for w in ("vpc", "subnet", "securitygroup", "keypair", "vm")}


def test_restart_keeps_metadb_and_loses_mock_state(spider_process, spider_root):
    srv = spider_process(command="demo")  # registers mock-config01 (the 4 calls of 9.mock-conn-config.sh)
    vpc = post(srv, "vpc", {"Name": "vpc-01", "IPv4_CIDR": "192.168.0.0/16",
                            "SubnetInfoList": [{"Name": "subnet-01", "IPv4_CIDR": "192.168.1.0/24"}]})
    sg = post(srv, "securitygroup", {"Name": "sg-01", "VPCName": "vpc-01", "SecurityRules": [
        {"FromPort": "22", "ToPort": "22", "IPProtocol": "tcp", "Direction": "inbound"}]})
    key = post(srv, "keypair", {"Name": "keypair-01"})
    vm = post(srv, "vm", {"Name": "vm-01", "ImageName": "mock-vmimage-01", "VPCName": "vpc-01",
                          "SubnetName": "subnet-01", "SecurityGroupNames": ["sg-01"],
                          "VMSpecName": "mock-vmspec-01", "KeyPairName": "keypair-01"})
    assert counts(srv) == {"vpc": 1, "subnet": 1, "securitygroup": 1, "keypair": 1, "vm": 1}
    conn_before = get(srv, "connectionconfig").json()
    cred_before = get(srv, "credential").json()
    assert srv.stop() == 0, "graceful stop on SIGTERM"

    # ---- start again, plain serve (no demo registration), same root ----------------------------
    srv = spider_process(command="serve")
    assert get(srv, "connectionconfig").json() == conn_before
    assert conn_before == {"connectionconfig": [{"ConfigName": C, "ProviderName": "MOCK", "DriverName": "mock-driver01",
                                                 "CredentialName": "mock-credential01",
                                                 "RegionName": "mock-region01"}]}
    assert get(srv, "credential").json() == cred_before
    assert cred_before["credential"][0]["KeyValueInfoList"] == [{"Key": "MockName", "Value": "Hidden for security."}]
    assert get(srv, "driver/mock-driver01").json()["ProviderName"] == "MOCK"
    assert get(srv, "region/mock-region01").json()["KeyValueInfoList"] == [{"Key": "Region", "Value": "default"}]
    assert counts(srv) == {"vpc": 1, "subnet": 1, "securitygroup": 1, "keypair": 1, "vm": 1}
    assert get(srv, "countvpc").json() == {"count": 1}

    # MOCK state is empty: lists give CB-Spider stubs carrying the stored spUUID:cspId
    r = get(srv, "vpc", **Q)
    assert '"IPv4_CIDR":"","SubnetInfoList":[]' in r.text, r.text  # an array, never null
    [stub] = r.json()["vpc"]
    assert stub["IId"]["NameId"] == "vpc-01"
    assert re.fullmatch(f"{SPUUID}:{re.escape(vpc['IId']['SystemId'])}", stub["IId"]["SystemId"]), stub
    assert stub["IId"]["SystemId"].startswith("vpc-01-")
    assert list(stub) == ["IId", "IPv4_CIDR", "SubnetInfoList"]

    [vm_stub] = get(srv, "vm", **Q).json()["vm"]
    assert vm_stub["IId"]["NameId"] == "vm-01"
    assert re.fullmatch(f"{SPUUID}:{re.escape(vm['IId']['SystemId'])}", vm_stub["IId"]["SystemId"]), vm_stub
    assert vm_stub["PublicIP"] == "" and vm_stub["PrivateIP"] == "" and vm_stub["VMSpecName"] == ""

    [sg_stub] = get(srv, "securitygroup", **Q).json()["securitygroup"]
    assert sg_stub["IId"]["NameId"] == "sg-01" and sg_stub["SecurityRules"] == []
    assert sg_stub["IId"]["SystemId"].endswith(":" + sg["IId"]["SystemId"])
    [key_stub] = get(srv, "keypair", **Q).json()["keypair"]
    assert key_stub["IId"]["NameId"] == "keypair-01"
    assert key_stub["IId"]["SystemId"].endswith(":" + key["IId"]["SystemId"])

    # get of one item: the driver's not-found error (500), not a stub
    msg = get(srv, "vpc/vpc-01", 500, **Q).json()["message"]
    assert msg and "Traceback" not in msg
    # /allvpc: only in Spider now
    lists = get(srv, "allvpc", **Q).json()["AllList"]
    assert lists["MappedList"] == [] and [i["NameId"] for i in lists["OnlySpiderList"]] == ["vpc-01"]
    # status list maps not-found to NotExist
    assert get(srv, "vmstatus", **Q).json() == {"vmstatus": [{"IId": {"NameId": "vm-01",
                                                                      "SystemId": vm["IId"]["SystemId"]},
                                                              "VmStatus": "NotExist"}]}

    # deletes succeed (the cloud says not found = already gone) and the counts go to 0
    r = requests.delete(f"{srv.url}/vm/vm-01", json=B, timeout=60)
    assert r.status_code == 200 and set(r.json()) == {"Status"}, r.text
    for path in ("keypair/keypair-01", "securitygroup/sg-01", "vpc/vpc-01"):
        r = requests.delete(f"{srv.url}/{path}", json=B, timeout=60)
        assert (r.status_code, r.json()) == (200, {"Result": "true"}), (path, r.text)
    assert counts(srv) == {"vpc": 0, "subnet": 0, "securitygroup": 0, "keypair": 0, "vm": 0}
    assert get(srv, "vpc", **Q).json() == {"vpc": []}
    assert get(srv, "splockinfo").json()["splockinfo"] == ["<VPC SPLock> ", "<SG SPLock> ", "<Key SPLock> ",
                                                          "<VM SPLock> "]
    srv.stop()

    # ---- secrets at rest -----------------------------------------------------------------------
    key_file = spider_root / "secret.key"
    assert key_file.is_file()
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    leaks = [str(p) for p in spider_root.rglob("*") if p.is_file() and b"mock_name00" in p.read_bytes()]
    assert leaks == [], f"credential value in plain text in {leaks}"
    # sanity: we scanned the real database (main file or its WAL holds the credential row)
    db_bytes = b"".join(p.read_bytes() for p in (spider_root / "meta_db").iterdir() if p.is_file())
    assert b"mock-credential01" in db_bytes
