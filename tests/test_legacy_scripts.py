"""CB-Spider's legacy MOCK scripts (contract 15) against a real ``spider serve`` subprocess.

Test A replays every curl call of ``tests/legacy/*.sh`` in Python (requests) and checks each JSON
answer against the contract. Test B runs the shell scripts unchanged with bash + curl + json_pp on
127.0.0.1:1024. The ``*-auth*`` twins run against a server with Basic auth ``default:default``.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import requests

from spider_helpers import SpiderProcess, port_is_free

LEGACY = Path(__file__).with_name("legacy")
CONN = "mock-config01"
HIDDEN = "Hidden for security."
AUTH = {"Authorization": "Basic " + base64.b64encode(b"default:default").decode()}

_CURL = re.compile(r"""^curl -sX (?P<method>[A-Z]+) "?http://\$SPIDER_SERVER(?P<path>/spider/[^"\s]*)"?""")
_BODY = re.compile(r"""-d '(?P<body>.*)'""")


def parse_script(name: str) -> list[dict]:
    """Every curl call of a legacy script: method, path (with query), body (text or None), auth flag."""
    calls = []
    for line in (LEGACY / name).read_text().splitlines():
        if not line.startswith("curl "):
            continue
        m = _CURL.match(line)
        assert m, f"unparsable curl line in {name}: {line}"
        assert line.rstrip().endswith("json_pp"), f"every call is piped through json_pp: {line}"
        assert "-H 'Content-Type: application/json'" in line
        b = _BODY.search(line)
        calls.append({"method": m["method"], "path": m["path"], "body": b["body"] if b else None,
                      "auth": "Authorization: Basic" in line})
    return calls


# ---- shape checks ---------------------------------------------------------------------------------

VPC_KEYS = ["IId", "IPv4_CIDR", "SubnetInfoList", "TagList", "KeyValueList"]
SUBNET_KEYS = ["IId", "Zone", "IPv4_CIDR", "TagList", "KeyValueList"]
SG_KEYS = ["IId", "VpcIID", "SecurityRules", "TagList", "KeyValueList"]
RULE_KEYS = ["Direction", "IPProtocol", "FromPort", "ToPort", "CIDR"]
KEY_KEYS = ["IId", "Fingerprint", "PublicKey", "PrivateKey", "VMUserID", "TagList", "KeyValueList"]
VM_KEYS = ["IId", "StartTime", "Region", "ImageType", "ImageIId", "VMSpecName", "VpcIID", "SubnetIID",
           "SecurityGroupIIds", "KeyPairIId", "RootDiskType", "RootDiskSize", "RootDeviceName", "DataDiskIIDs",
           "VMBootDisk", "VMBlockDisk", "VMUserId", "VMUserPasswd", "NICs", "NetworkInterface", "PublicIP",
           "PublicIPs", "PublicDNS", "PrivateIP", "PrivateIPs", "PrivateDNS", "Platform", "SSHAccessPoint",
           "AccessPoint", "TagList", "KeyValueList"]
VM_OMITEMPTY = {"DataDiskIIDs", "VMBootDisk", "VMBlockDisk", "VMUserPasswd", "NICs", "PublicIPs", "PublicDNS",
                "PrivateIPs", "PrivateDNS", "SSHAccessPoint", "TagList", "KeyValueList"}
VM_STATUSES = {"Creating", "Running", "Suspending", "Suspended", "Resuming", "Rebooting", "Terminating",
               "Terminated", "NotExist", "Failed"}


def ordered(obj: dict, order: list[str], required: list[str]) -> None:
    keys = list(obj)
    unknown = [k for k in keys if k not in order]
    assert not unknown, f"unexpected keys {unknown} in {keys}"
    assert keys == sorted(keys, key=order.index), f"key order {keys} != contract order {order}"
    missing = [k for k in required if k not in obj]
    assert not missing, f"missing keys {missing} in {keys}"


def iid(obj: dict, name: str | None = None) -> None:
    assert list(obj) == ["NameId", "SystemId"], obj
    assert isinstance(obj["SystemId"], str) and obj["SystemId"], obj
    if name is not None:
        assert obj["NameId"] == name


def check_vpc(v: dict, subnets: list[str]) -> None:
    ordered(v, VPC_KEYS, ["IId", "IPv4_CIDR", "SubnetInfoList"])
    iid(v["IId"], "vpc-01")
    assert v["IId"]["SystemId"].startswith("vpc-"), "MOCK runs on moto: AWS VPC ids"
    assert v["IPv4_CIDR"] == "192.168.0.0/16"
    assert sorted(s["IId"]["NameId"] for s in v["SubnetInfoList"]) == subnets
    cidrs = {"subnet-01": "192.168.1.0/24", "subnet-02": "192.168.2.0/24"}
    for s in v["SubnetInfoList"]:
        ordered(s, SUBNET_KEYS, ["IId", "Zone", "IPv4_CIDR"])
        iid(s["IId"])
        assert s["IId"]["SystemId"].startswith("subnet-")
        assert isinstance(s["Zone"], str)
        assert s["IPv4_CIDR"] == cidrs[s["IId"]["NameId"]]


def check_sg(g: dict) -> None:
    ordered(g, SG_KEYS, ["IId", "VpcIID", "SecurityRules"])
    iid(g["IId"], "sg-01")
    assert g["IId"]["SystemId"].startswith("sg-")
    iid(g["VpcIID"], "vpc-01")
    for r in g["SecurityRules"]:
        ordered(r, RULE_KEYS, RULE_KEYS)
        assert all(isinstance(v, str) for v in r.values()), f"rule values are strings: {r}"
    rules = [tuple(r[k] for k in RULE_KEYS) for r in g["SecurityRules"]]
    # "tcp" normalised to "TCP"; MOCK follows EC2: the default outbound ALL rule is visible
    assert ("inbound", "TCP", "1", "65535", "0.0.0.0/0") in rules
    assert ("outbound", "ALL", "-1", "-1", "0.0.0.0/0") in rules
    assert len(rules) == 2, rules


def check_key(k: dict, *, created: bool) -> None:
    ordered(k, KEY_KEYS, ["IId", "PublicKey", "PrivateKey"])
    iid(k["IId"], "keypair-01")
    if created:
        assert k["PrivateKey"] and k["PrivateKey"] != HIDDEN, "create returns the private key once"
        assert "PRIVATE KEY" in k["PrivateKey"]
        assert k["PublicKey"] != HIDDEN
    else:
        assert k["PrivateKey"] == HIDDEN and k["PublicKey"] == HIDDEN


def check_vm(v: dict, state: dict) -> None:
    ordered(v, VM_KEYS, [k for k in VM_KEYS if k not in VM_OMITEMPTY])
    iid(v["IId"], "vm-01")
    assert v["IId"]["SystemId"].startswith("i-")
    assert v["ImageType"] == "PublicImage"
    assert v["ImageIId"]["NameId"] == "mock-vmimage-01"
    assert v["VMSpecName"] == "mock-vmspec-01"
    assert v["VpcIID"] == state["vpc"]
    assert v["SubnetIID"]["NameId"] == "subnet-01"
    assert v["SecurityGroupIIds"] == [state["sg"]]
    assert v["KeyPairIId"]["NameId"] == "keypair-01"
    assert v["Region"]["Region"] == "default"
    assert v["VMUserId"] == "cb-user"
    assert v["PublicIP"] and v["PrivateIP"]
    assert v["SSHAccessPoint"] == v["PublicIP"] + ":22"


def expectations() -> list:
    """One checker per call of 9.mock-conn-config.sh (4) + mock-full_test.sh (36), in order."""
    st: dict = {}

    def c_driver(j):
        assert list(j.items()) == [("DriverName", "mock-driver01"), ("ProviderName", "MOCK"),
                                   ("DriverLibFileName", "mock-driver-v1.0.so")]

    def c_cred(j):
        assert list(j) == ["CredentialName", "ProviderName", "KeyValueInfoList"]
        assert j["CredentialName"] == "mock-credential01" and j["ProviderName"] == "MOCK"
        [kv] = j["KeyValueInfoList"]
        assert list(kv) == ["Key", "Value"] and kv["Key"] == "MockName"
        assert kv["Value"] not in ("mock_name00", HIDDEN), "POST echoes the encrypted value"
        assert len(base64.b64decode(kv["Value"])) >= 16 + len("mock_name00")

    def c_region(j):
        assert json.dumps(j) == json.dumps({"RegionName": "mock-region01", "ProviderName": "MOCK",
                                            "KeyValueInfoList": [{"Key": "Region", "Value": "default"}],
                                            "AvailableZoneList": []})

    def c_conn(j):
        assert list(j.items()) == [("ConfigName", CONN), ("ProviderName", "MOCK"), ("DriverName", "mock-driver01"),
                                   ("CredentialName", "mock-credential01"), ("RegionName", "mock-region01")]

    def c_vpc_create(j):
        check_vpc(j, ["subnet-01"])
        st["vpc"] = j["IId"]

    def c_subnet_add(j):
        check_vpc(j, ["subnet-01", "subnet-02"])
        assert j["IId"] == st["vpc"]
        st["vpc_full"] = j

    def c_vpc_list(j):
        assert list(j) == ["vpc"] and len(j["vpc"]) == 1
        check_vpc(j["vpc"][0], ["subnet-01", "subnet-02"])
        assert j["vpc"][0]["IId"] == st["vpc"]

    def c_vpc_get(j):
        check_vpc(j, ["subnet-01", "subnet-02"])
        assert j["IId"] == st["vpc"]

    def c_sg_create(j):
        check_sg(j)
        assert j["VpcIID"] == st["vpc"]
        st["sg"] = j["IId"]

    def c_sg_list(j):
        assert list(j) == ["securitygroup"] and len(j["securitygroup"]) == 1
        check_sg(j["securitygroup"][0])
        assert j["securitygroup"][0]["IId"] == st["sg"]

    def c_sg_get(j):
        check_sg(j)
        assert j["IId"] == st["sg"]

    def c_key_create(j):
        check_key(j, created=True)
        st["key"] = j["IId"]

    def c_key_list(j):
        assert list(j) == ["keypair"] and len(j["keypair"]) == 1
        check_key(j["keypair"][0], created=False)
        assert j["keypair"][0]["IId"] == st["key"]

    def c_key_get(j):
        check_key(j, created=False)
        assert j["IId"] == st["key"]

    def c_vm_create(j):
        check_vm(j, st)
        st["vm"] = j["IId"]

    def c_vm_list(j):
        assert list(j) == ["vm"] and len(j["vm"]) == 1
        check_vm(j["vm"][0], st)
        assert j["vm"][0]["IId"] == st["vm"]

    def c_vm_get(j):
        check_vm(j, st)
        assert j["IId"] == st["vm"]

    def c_vmstatus_list(j):
        assert j == {"vmstatus": [{"IId": st["vm"], "VmStatus": "Running"}]}
        assert list(j["vmstatus"][0]) == ["IId", "VmStatus"]

    def status(word):
        def c(j):
            assert j == {"Status": word}
            assert word in VM_STATUSES
        return c

    def c_true(j):
        assert j == {"Result": "true"}

    return ([c_driver, c_cred, c_region, c_conn]
            + [c_vpc_create, c_subnet_add, c_vpc_list, c_vpc_list, c_vpc_get, c_vpc_get]
            + [c_sg_create, c_sg_list, c_sg_list, c_sg_get, c_sg_get]
            + [c_key_create, c_key_list, c_key_list, c_key_get, c_key_get]
            + [c_vm_create, c_vm_list, c_vm_list, c_vm_get, c_vm_get, c_vmstatus_list, c_vmstatus_list,
               status("Running"), status("Running"), status("Suspending"), status("Suspending"),
               status("Resuming"), status("Resuming"), status("Rebooting"), status("Rebooting"),
               status("Terminating")]
            + [c_true] * 4)


FULL_IDX_OF_AUTH = [1, 2, 3, 5, 7, 8, 10, 12, 13, 15, 17, 18, 20, 22, 24, 26, 28, 30, 32, 33, 34, 35, 36]


def send(base: str, call: dict, *, auth: bool | None = None) -> requests.Response:
    headers = {"Content-Type": "application/json"}
    if call["auth"] if auth is None else auth:
        headers.update(AUTH)
    return requests.request(call["method"], base + call["path"], data=call["body"], headers=headers, timeout=60)


def check_reply(n: int, call: dict, r: requests.Response, checker) -> None:
    where = f"call #{n} {call['method']} {call['path']}"
    assert r.status_code == 200, f"{where}: {r.status_code} {r.text}"
    assert r.headers["Content-Type"].startswith("application/json"), where
    assert r.text.endswith("\n") and "\n" not in r.text[:-1], f"{where}: compact JSON + newline"
    try:
        checker(r.json())
    except AssertionError as exc:
        raise AssertionError(f"{where}: {exc}\n{r.text}") from None


# ---- the scripts themselves follow the contract ----------------------------------------------------

def test_scripts_hold_the_contract_calls():
    conn = parse_script("9.mock-conn-config.sh")
    full = parse_script("mock-full_test.sh")
    assert len(conn) == 4 and len(full) == 36
    assert [c["path"] for c in conn] == ["/spider/driver", "/spider/credential", "/spider/region",
                                         "/spider/connectionconfig"]
    body_calls = [c for c in full if c["body"] is not None]
    query_calls = [c for c in full if c["body"] is None]
    assert all("ConnectionName=mock-config01" in c["path"] for c in query_calls)
    assert all(json.loads(c["body"])["ConnectionName"] == CONN for c in body_calls)
    auth_conn = parse_script("9.mock-auth-conn-config.sh")
    auth_full = parse_script("mock-auth_full_test.sh")
    assert all(c["auth"] for c in auth_conn + auth_full)
    assert [dict(c, auth=False) for c in auth_conn] == conn
    assert [dict(c, auth=False) for c in auth_full] == [full[i - 1] for i in FULL_IDX_OF_AUTH]
    assert all(c["body"] is not None for c in auth_full), "auth variant: body variants only"
    sleeps = (LEGACY / "mock-full_test.sh").read_text().splitlines().count("sleep $SLEEP")
    assert sleeps == 5


# ---- Test B: the shell scripts themselves ----------------------------------------------------------

def _json_docs(stdout: str) -> list:
    """The JSON documents json_pp printed (banner lines start with '#')."""
    text = "\n".join(line for line in stdout.splitlines() if not line.startswith("#"))
    dec, docs, i = json.JSONDecoder(), [], 0
    while True:
        while i < len(text) and text[i].isspace():
            i += 1
        if i >= len(text):
            return docs
        doc, i = dec.raw_decode(text, i)
        docs.append(doc)


def _run(script: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    import os
    env = dict(os.environ, SLEEP="0", **(env_extra or {}))
    env.pop("SPIDER_SERVER", None)  # the scripts' default: localhost:1024
    return subprocess.run(["bash", str(LEGACY / script)], capture_output=True, text=True, env=env, timeout=120)


def _check_script_output(res: subprocess.CompletedProcess, expected_docs: int) -> list:
    assert res.returncode == 0, res.stderr
    # json_pp reports unparsable input ("malformed JSON string ...") on stderr
    assert res.stderr == "", res.stderr
    docs = _json_docs(res.stdout)
    assert len(docs) == expected_docs, res.stdout[-3000:]
    errors = [d for d in docs if isinstance(d, dict) and "message" in d]
    assert not errors, errors
    assert '"message"' not in res.stdout
    return docs


# ---- servers: one per auth mode, on 127.0.0.1:1024 when it is free (the scripts hard-code it) -----

def _tools_missing() -> str | None:
    for tool in ("bash", "curl", "json_pp", "base64"):
        if shutil.which(tool) is None:
            return f"{tool} is not installed (json_pp comes with perl)"
    return None


def _server(tmp_path_factory, env: dict | None = None):
    port = 1024 if port_is_free(1024) else None
    srv = SpiderProcess(tmp_path_factory.mktemp("legacy-root"), port, env=env)
    try:
        yield srv.start()
    finally:
        srv.stop()


def _need_script_server(srv: SpiderProcess) -> None:
    missing = _tools_missing()
    if missing:
        if os.environ.get("SPIDERTWIN_REQUIRE_ROOT_TESTS") == "1":  # CI installs curl and perl
            pytest.fail(f"SPIDERTWIN_REQUIRE_ROOT_TESTS=1 but {missing}")
        pytest.skip(missing)
    if srv.port != 1024:
        pytest.skip("127.0.0.1:1024 was in use: the legacy scripts hard-code localhost:1024")


class TestNoAuth:
    """Test A (Python replay) then Test B (the scripts) against one ``spider serve`` without auth."""

    @pytest.fixture(scope="class")
    @classmethod
    def srv(cls, tmp_path_factory):
        yield from _server(tmp_path_factory)

    def test_a_replay_all_40_calls_over_http(self, srv):
        calls = parse_script("9.mock-conn-config.sh") + parse_script("mock-full_test.sh")
        checks = expectations()
        assert len(calls) == len(checks) == 40
        for n, (call, checker) in enumerate(zip(calls, checks), start=1):
            check_reply(n, call, send(srv.base, call), checker)
        # everything the script created is gone again, MetaDB and cloud alike
        q = {"ConnectionName": CONN}
        assert requests.get(srv.url + "/vpc", params=q).json() == {"vpc": []}
        assert requests.get(srv.url + "/vm", params=q).json() == {"vm": []}
        for word in ("vpc", "subnet", "securitygroup", "keypair", "vm"):
            assert requests.get(f"{srv.url}/count{word}/{CONN}").json() == {"count": 0}, word
        allvpc = requests.get(srv.url + "/allvpc", params=q).json()["AllList"]
        assert allvpc["MappedList"] == [] and allvpc["OnlySpiderList"] == []
        assert all(i["NameId"] != "vpc-01" for i in allvpc["OnlyCSPList"])
        assert requests.get(srv.url + "/splockinfo").json() == {
            "splockinfo": ["<VPC SPLock> ", "<SG SPLock> ", "<Key SPLock> ", "<VM SPLock> "]}

    def test_b_shell_scripts_unchanged(self, srv):
        _need_script_server(srv)
        docs = _check_script_output(_run("9.mock-conn-config.sh"), 4)
        assert docs[3]["ConfigName"] == CONN
        docs = _check_script_output(_run("mock-full_test.sh"), 36)
        assert docs[0]["IId"]["NameId"] == "vpc-01"
        assert docs[16]["IId"]["NameId"] == "vm-01"
        assert [d.get("Status") for d in docs[25:32]] == ["Suspending", "Suspending", "Resuming", "Resuming",
                                                          "Rebooting", "Rebooting", "Terminating"]
        assert docs[32:] == [{"Result": "true"}] * 4
        assert requests.get(srv.url + "/countvpc").json() == {"count": 0}


class TestAuth:
    """The ``*-auth*`` twins against ``spider serve`` with SPIDER_USERNAME=default SPIDER_PASSWORD=default."""

    @pytest.fixture(scope="class")
    @classmethod
    def srv(cls, tmp_path_factory):
        yield from _server(tmp_path_factory, {"SPIDER_USERNAME": "default", "SPIDER_PASSWORD": "default"})

    def test_a_auth_variant_over_http(self, srv):
        conn = parse_script("9.mock-auth-conn-config.sh")
        full = parse_script("mock-auth_full_test.sh")
        all_checks = expectations()
        checks = all_checks[:4] + [all_checks[4 + i - 1] for i in FULL_IDX_OF_AUTH]
        assert len(conn) + len(full) == len(checks) == 27
        for n, (call, checker) in enumerate(zip(conn + full, checks), start=1):
            # without the header first: 401, nothing happens
            bare = send(srv.base, call, auth=False)
            assert bare.status_code == 401, f"call #{n}: {bare.status_code} {bare.text}"
            assert bare.json() == {"message": "Unauthorized"}
            assert "WWW-Authenticate" not in bare.headers
            check_reply(n, call, send(srv.base, call), checker)
        # wrong password is 401 too; auth runs after routing; the open paths need no credentials
        bad = {"Authorization": "Basic " + base64.b64encode(b"default:wrong").decode()}
        r = requests.get(srv.url + "/vpc", params={"ConnectionName": CONN}, headers=bad)
        assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
        r = requests.get(srv.url + "/no/such/route")
        assert (r.status_code, r.json()) == (401, {"message": "Unauthorized"})
        for open_path in ("/readyz", "/version", "/healthcheck"):
            assert requests.get(srv.url + open_path).status_code == 200

    def test_b_auth_shell_scripts(self, srv):
        _need_script_server(srv)
        _check_script_output(_run("9.mock-auth-conn-config.sh"), 4)
        docs = _check_script_output(_run("mock-auth_full_test.sh"), 23)
        assert docs[-4:] == [{"Result": "true"}] * 4
        # the no-auth script against the auth server: every call refused, every answer still JSON
        res = _run("mock-full_test.sh")
        assert res.returncode == 0 and res.stderr == ""
        assert _json_docs(res.stdout) == [{"message": "Unauthorized"}] * 36
