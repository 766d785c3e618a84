"""Spider over Cloud-Twin, end to end over HTTP: CB-Spider's MOCK full test (36 calls) against a
CLOUDTWIN connection, and faults (region outage, throttling, a failing build) seen through Spider."""

from __future__ import annotations

import time

import pytest
import requests

from spider_helpers import SpiderProcess, TwinSubprocess
from test_legacy_scripts import KEY_KEYS, RULE_KEYS, VM_STATUSES, parse_script

CONN = "cloudtwin-cloud-1-config"
IMAGE, SPEC = "ubuntu-22.04", "m1.small"


@pytest.fixture(scope="module")
def twin():
    t = TwinSubprocess("--cloud", "cloud-1=openstack", "--cloud", "cloud-2=lean-egress",
                       "--cloud", "cloud-3=openstack").start()
    try:
        yield t
    finally:
        t.stop()


def register(url: str, twin_url: str, clouds: list[str]) -> None:
    """CB-Spider's Cloud-Twin registration sequence (contract 11)."""
    def post(path, body):
        r = requests.post(url + path, json=body, timeout=30)
        assert r.status_code == 200, f"{path}: {r.status_code} {r.text}"
    post("/driver", {"DriverName": "cloudtwin-driver01", "ProviderName": "CLOUDTWIN",
                     "DriverLibFileName": "cloudtwin-driver-v1.0.so"})
    post("/region", {"RegionName": "cloudtwin-region", "ProviderName": "CLOUDTWIN",
                     "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]})
    for cloud in clouds:
        post("/credential", {"CredentialName": f"cloudtwin-{cloud}-credential01", "ProviderName": "CLOUDTWIN",
                             "KeyValueInfoList": [{"Key": "IdentityEndpoint", "Value": twin_url},
                                                  {"Key": "DomainName", "Value": cloud},
                                                  {"Key": "MockName", "Value": "mock_name01"}]})
        post("/connectionconfig", {"ConfigName": f"cloudtwin-{cloud}-config", "ProviderName": "CLOUDTWIN",
                                   "DriverName": "cloudtwin-driver01",
                                   "CredentialName": f"cloudtwin-{cloud}-credential01",
                                   "RegionName": "cloudtwin-region"})


@pytest.fixture(scope="module")
def spider(twin, tmp_path_factory):
    root = tmp_path_factory.mktemp("ct-spider")
    limits = root / "limits.yaml"  # cloud-2's connection may not retry throttled calls
    limits.write_text("connections:\n  cloudtwin-cloud-2-config: {retries: 0}\n")
    srv = SpiderProcess(root, env={"SPIDER_LIMITS_FILE": str(limits)}).start()
    try:
        register(srv.url, twin.url, ["cloud-1", "cloud-2", "cloud-3"])
        yield srv
    finally:
        srv.stop()


def twin_objects(twin: TwinSubprocess, cloud: str) -> dict:
    [c] = twin.admin("GET", f"/state?cloud={cloud}")["clouds"]
    return c["objects"]


def test_mock_full_test_sequence_against_a_cloudtwin_connection(twin, spider):
    calls = parse_script("mock-full_test.sh")
    assert len(calls) == 36
    replies = []
    for n, call in enumerate(calls, start=1):
        path = call["path"].replace("mock-config01", CONN)
        body = call["body"]
        if body is not None:
            body = body.replace("mock-config01", CONN).replace("mock-vmimage-01", IMAGE).replace(
                "mock-vmspec-01", SPEC)
        r = requests.request(call["method"], spider.base + path, data=body,
                             headers={"Content-Type": "application/json"}, timeout=120)
        assert r.status_code == 200, f"call #{n} {call['method']} {path}: {r.status_code} {r.text}"
        replies.append(r.json())
    vpc, subnet_add = replies[0], replies[1]
    assert vpc["IId"]["NameId"] == "vpc-01" and vpc["IPv4_CIDR"] == "192.168.0.0/16"
    assert sorted(s["IId"]["NameId"] for s in subnet_add["SubnetInfoList"]) == ["subnet-01", "subnet-02"]
    assert [len(replies[i]["vpc"]) for i in (2, 3)] == [1, 1]
    sg = replies[6]
    rules = {tuple(r[k] for k in RULE_KEYS) for r in sg["SecurityRules"]}
    assert ("inbound", "TCP", "1", "65535", "0.0.0.0/0") in rules
    assert ("outbound", "ALL", "-1", "-1", "0.0.0.0/0") in rules, "CB-Spider's default outbound allow-all"
    key = replies[11]
    assert list(key)[:len(KEY_KEYS)] == KEY_KEYS[:len(key)] or set(KEY_KEYS) >= set(key)
    assert "PRIVATE KEY" in key["PrivateKey"]
    vm = replies[16]
    assert vm["IId"]["NameId"] == "vm-01"
    image = requests.get(spider.url + f"/vmimage/{IMAGE}", params={"ConnectionName": CONN}).json()
    assert image["IId"]["NameId"] == IMAGE and image["OSDistribution"].lower().startswith("ubuntu")
    assert vm["ImageIId"]["SystemId"] == image["IId"]["SystemId"], "the cloud's own image id, as CB-Spider"
    assert vm["VMSpecName"] == SPEC
    assert vm["PublicIP"] and vm["PrivateIP"].startswith("192.168.1.")
    assert vm["KeyPairIId"]["NameId"] == "keypair-01" and vm["VMUserId"] == "cb-user"
    assert [s["NameId"] for s in vm["SecurityGroupIIds"]] == ["sg-01"]
    assert replies[21] == {"vmstatus": [{"IId": vm["IId"], "VmStatus": "Running"}]}
    statuses = [replies[i]["Status"] for i in range(23, 32)]
    assert statuses[:2] == ["Running", "Running"]
    assert statuses[2:] == ["Suspending", "Suspending", "Resuming", "Resuming", "Rebooting", "Rebooting",
                            "Terminating"]
    assert all(s in VM_STATUSES for s in statuses)
    assert replies[32:] == [{"Result": "true"}] * 4
    # nothing left behind: not in Spider, not in the cloud (the region's external network stays)
    q = {"ConnectionName": CONN}
    assert requests.get(spider.url + "/vpc", params=q).json() == {"vpc": []}
    assert requests.get(spider.url + "/vm", params=q).json() == {"vm": []}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        objs = twin_objects(twin, "cloud-1")["RegionOne"]
        if objs.get("servers", 0) == 0:
            break
        time.sleep(0.1)
    assert objs.get("servers", 0) == 0 and objs.get("keypairs", 0) == 0, objs
    assert objs.get("security_groups", 0) <= 1, f"only the project's default SG may stay: {objs}"


def test_region_outage_is_a_clear_error_and_recovers(twin, spider):
    conn = "cloudtwin-cloud-3-config"
    q = {"ConnectionName": conn}
    assert requests.get(spider.url + "/vpc", params=q, timeout=60).status_code == 200
    rule = twin.admin("POST", "/faults", {"kind": "outage", "match": {"cloud": "cloud-3", "region": "RegionOne"},
                                          "duration": 3})["fault"]
    try:
        r = requests.post(spider.url + "/vpc", json={"ConnectionName": conn, "ReqInfo": {
            "Name": "vpc-out", "IPv4_CIDR": "10.0.0.0/16",
            "SubnetInfoList": [{"Name": "sn-out", "IPv4_CIDR": "10.0.1.0/24"}]}}, timeout=60)
        assert r.status_code >= 400
        msg = r.json()["message"]
        assert "503" in msg and conn in msg, msg
        assert requests.get(spider.url + "/vpc/vpc-out", params=q).status_code >= 400, "nothing half-created"
        events = twin.admin("GET", f"/events?rule={rule['id']}&kind=fault.outage")["events"]
        assert events and all(e["cloud"] == "cloud-3" and e["status"] == 503 for e in events)
    finally:
        twin.admin("DELETE", f"/faults/{rule['id']}")
    r = requests.post(spider.url + "/vpc", json={"ConnectionName": conn, "ReqInfo": {
        "Name": "vpc-out", "IPv4_CIDR": "10.0.0.0/16",
        "SubnetInfoList": [{"Name": "sn-out", "IPv4_CIDR": "10.0.1.0/24"}]}}, timeout=60)
    assert r.status_code == 200, r.text
    assert requests.delete(spider.url + "/vpc/vpc-out", json={"ConnectionName": conn}).json() == {"Result": "true"}


def test_throttling_is_retried_by_the_limit_policy_or_reaches_the_client(twin, spider):
    """Default policy: a throttled call waits for Retry-After and succeeds; a connection whose policy
    allows no retries hands the CSP's 429 + Retry-After to the client."""
    rule = twin.admin("POST", "/faults", {"kind": "throttle", "match": {"method": "POST"},
                                          "rate": 1, "burst": 1, "per": "all"})["fault"]
    try:
        for conn, cloud in (("cloudtwin-cloud-3-config", "cloud-3"), ("cloudtwin-cloud-2-config", "cloud-2")):
            results = []
            for i in range(3):
                r = requests.post(spider.url + "/keypair", json={"ConnectionName": conn, "ReqInfo": {"Name": f"kt-{i}"}},
                                  timeout=120)
                results.append((r.status_code, r.json()))
            [lim] = requests.get(spider.url + "/limitinfo", params={"ConnectionName": conn}).json()["limitinfo"]
            if cloud == "cloud-3":
                assert [s for s, _ in results] == [200, 200, 200], results
                assert lim["retries"] >= 2 and lim["gave_up"] == 0, lim
            else:
                assert results[0][0] == 200
                throttled = [body for status, body in results[1:] if status >= 400]
                assert throttled and all("429" in b["message"] and "Retry-After" in b["message"] for b in throttled)
                assert lim["retries"] == 0 and lim["gave_up"] == len(throttled), lim
    finally:
        twin.admin("DELETE", f"/faults/{rule['id']}")
    for conn in ("cloudtwin-cloud-3-config", "cloudtwin-cloud-2-config"):
        for i in range(3):
            requests.delete(spider.url + f"/keypair/kt-{i}", json={"ConnectionName": conn})


def test_injected_error_transitions_surface_as_failed(twin, spider):
    conn = "cloudtwin-cloud-3-config"
    body = lambda req: {"ConnectionName": conn, "ReqInfo": req}  # noqa: E731
    vm_req = lambda name: body({"Name": name, "ImageName": IMAGE, "VMSpecName": SPEC, "VPCName": "vpc-f",  # noqa: E731
                                "SubnetName": "sn-f", "SecurityGroupNames": ["sg-f"], "KeyPairName": "key-f"})
    assert requests.post(spider.url + "/vpc", json=body({"Name": "vpc-f", "IPv4_CIDR": "10.1.0.0/16",
                         "SubnetInfoList": [{"Name": "sn-f", "IPv4_CIDR": "10.1.1.0/24"}]})).status_code == 200
    assert requests.post(spider.url + "/securitygroup", json=body({"Name": "sg-f", "VPCName": "vpc-f",
                         "SecurityRules": []})).status_code == 200
    assert requests.post(spider.url + "/keypair", json=body({"Name": "key-f"})).status_code == 200
    try:
        # a running VM crashes (ACTIVE -> ERROR): Spider reports it Failed
        r = requests.post(spider.url + "/vm", json=vm_req("vm-crash"), timeout=120)
        assert r.status_code == 200, r.text
        q = {"ConnectionName": conn}
        assert requests.get(spider.url + "/vmstatus/vm-crash", params=q).json() == {"Status": "Running"}
        crash = twin.admin("POST", "/faults", {"kind": "crash", "match": {"cloud": "cloud-3"}, "to": "ERROR"})["fault"]
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            status = requests.get(spider.url + "/vmstatus/vm-crash", params=q).json()
            if status == {"Status": "Failed"}:
                break
            time.sleep(0.1)
        assert status == {"Status": "Failed"}
        assert requests.get(spider.url + "/vm/vm-crash", params=q).status_code == 200
        events = twin.admin("GET", f"/events?rule={crash['id']}&kind=fault.crash")["events"]
        assert [e["kind"] for e in events] == ["fault.crash"]
        # a build that ends in ERROR: the create fails with the cloud's fault message, nothing is kept
        rule = twin.admin("POST", "/faults", {"kind": "fail_transition", "resource": "server", "state": "BUILD",
                                              "match": {"cloud": "cloud-3"}, "count": 1,
                                              "message": "No valid host was found."})["fault"]
        r = requests.post(spider.url + "/vm", json=vm_req("vm-fail"), timeout=120)
        assert r.status_code >= 400 and "No valid host" in r.json()["message"], r.text
        assert requests.get(spider.url + "/vm/vm-fail", params=q).status_code >= 400
        events = twin.admin("GET", f"/events?rule={rule['id']}&kind=fault.fail_transition")["events"]
        assert len(events) == 1 and events[0]["cloud"] == "cloud-3"
    finally:
        twin.admin("DELETE", "/faults")
        for path in ("/vm/vm-crash", "/vm/vm-fail"):
            requests.delete(spider.url + path, json={"ConnectionName": conn})
        requests.delete(spider.url + "/keypair/key-f", json={"ConnectionName": conn})
        for path in ("/securitygroup/sg-f", "/vpc/vpc-f"):
            for _ in range(100):
                if requests.delete(spider.url + path, json={"ConnectionName": conn}).status_code == 200:
                    break
                time.sleep(0.2)
