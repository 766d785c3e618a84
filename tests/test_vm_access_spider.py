"""CB-Spider's basic user flow ends with "VM access": ``ssh -i <the created key> cb-user@<PublicIP>``.
Through Spider on a CLOUDTWIN connection to a twin with its data plane: key pair, VPC, a security
group with TCP 22 open, a VM; then the real ``ssh`` client with the private key Spider returned.

Needs root, iproute2, nftables, openssh and tini (skipped with the reason otherwise; failed under
SPIDERTWIN_REQUIRE_ROOT_TESTS=1, as in CI).
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from spider_helpers import SpiderProcess, TwinSubprocess, require_twin_vms
from test_cloudtwin_spider import register

CLOUD = "access-1"
CONN = f"cloudtwin-{CLOUD}-config"


@pytest.fixture(scope="module")
def twin():
    require_twin_vms()
    with TwinSubprocess("--dataplane", "netns") as t:
        yield t


@pytest.fixture(scope="module")
def spider(twin, tmp_path_factory):
    with SpiderProcess(tmp_path_factory.mktemp("access-spider")) as srv:
        register(srv.url, twin.url, [CLOUD])
        yield srv


def call(spider: SpiderProcess, method: str, path: str, req: Any = None, timeout: float = 120) -> Any:
    body: dict[str, Any] = {"ConnectionName": CONN}
    if req is not None:
        body["ReqInfo"] = req
    r = requests.request(method, spider.url + path, json=body, timeout=timeout)
    assert r.status_code == 200, f"{method} {path}: {r.status_code} {r.text}"
    return r.json()


def ssh(key: Path, ip: str, command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    route = subprocess.run(["ip", "route", "get", ip], capture_output=True, text=True).stdout
    assert " dev ctw" in route, f"{ip} must be routed over the twin's own link: {route!r}"
    return subprocess.run(["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
                           "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", "-o", "LogLevel=ERROR",
                           f"cb-user@{ip}", command], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def test_ssh_into_a_vm_spider_created_with_the_key_spider_returned(spider, twin, tmp_path):
    key = call(spider, "POST", "/keypair", {"Name": "access-key"})
    other = call(spider, "POST", "/keypair", {"Name": "other-key"})
    key_file, other_file = tmp_path / "access-key.pem", tmp_path / "other-key.pem"
    for path, doc in ((key_file, key), (other_file, other)):
        path.write_text(doc["PrivateKey"])
        path.chmod(0o600)
    call(spider, "POST", "/vpc", {"Name": "access-vpc", "IPv4_CIDR": "10.30.0.0/16",
                                  "SubnetInfoList": [{"Name": "access-sn", "IPv4_CIDR": "10.30.1.0/24"}]})
    ssh_rule = {"FromPort": "22", "ToPort": "22", "IPProtocol": "tcp", "Direction": "inbound", "CIDR": "0.0.0.0/0"}
    call(spider, "POST", "/securitygroup", {"Name": "access-sg", "VPCName": "access-vpc", "SecurityRules": [ssh_rule]})
    vm = call(spider, "POST", "/vm", {"Name": "access-vm", "ImageName": "ubuntu-22.04", "VMSpecName": "m1.small",
                                      "VPCName": "access-vpc", "SubnetName": "access-sn",
                                      "SecurityGroupNames": ["access-sg"], "KeyPairName": "access-key"})
    ip, user = vm["PublicIP"], vm["VMUserId"]
    assert user == "cb-user" and ip
    server = twin.admin("GET", "/dataplane")["servers"]
    server_id = next(s["server_id"] for s in server if ip in s["floating_ips"])
    end = time.monotonic() + 30
    while not (info := twin.admin("GET", f"/vms/{server_id}"))["ssh_ready"]:
        assert time.monotonic() < end, info
        time.sleep(0.1)
    try:
        done = ssh(key_file, ip, "hostname")
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == info["name"].lower(), "the VM's own hostname: its server name"
        refused = ssh(other_file, ip, "hostname")
        assert refused.returncode == 255 and "Permission denied" in refused.stderr, "another key is refused"
        call(spider, "DELETE", "/securitygroup/access-sg/rules", {"RuleInfoList": [ssh_rule]})
        time.sleep(0.5)
        blocked = ssh(key_file, ip, "hostname")
        assert blocked.returncode == 255 and "timed out" in blocked.stderr, "no port-22 rule, no connection"
    finally:
        call(spider, "DELETE", "/vm/access-vm")
        call(spider, "DELETE", "/securitygroup/access-sg")
        call(spider, "DELETE", "/vpc/access-vpc")
        for name in ("access-key", "other-key"):
            call(spider, "DELETE", f"/keypair/{name}")
