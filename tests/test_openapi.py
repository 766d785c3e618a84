"""The API descriptions: generated from the route tables, valid OpenAPI 3.1, served with Swagger UI
from the pip package, and true to the servers (schemathesis finds no crash and no answer that
disagrees with the description, on NULL, on MOCK and on Cloud-Twin's admin API).

Run with ``-s`` to see the per-route table (cases, 5xx, crashes, mismatches).
"""

from __future__ import annotations

import uuid

import pytest
import requests
from openapi_spec_validator import validate

from openapi_fuzz import any_5xx, fuzz, problems, server_errors, table
from spider_helpers import SpiderProcess, TwinSubprocess

AUTH = ("fuzz-user", "fuzz-pass-1")
JSON = {"Content-Type": "application/json"}

# Operations not fuzzed, and why (every other one is).
SPIDER_EXCLUDE = {
    "GET /spider/check/tcp": "connects to the host named in the query: fuzzed names would send DNS lookups and "
                             "packets off the machine (tests/test_spider_commands.py covers it on loopback)",
    "GET /spider/check/udp": "same as check/tcp",
}
TWIN_EXCLUDE = {
    "POST /_twin/snapshot": "writes a file at a path the caller chooses: fuzzed paths would write anywhere on disk",
    "POST /_twin/restore": "reads a file at a path the caller chooses (covered by tests/cloudtwin snapshot tests)",
}
EXAMPLES = 4  # per operation (half positive, half negative data where inputs can be broken)


def register(base: str, provider: str, credential: list[dict], region: list[dict], name: str) -> None:
    calls = [("driver", {"DriverName": f"{name}-driver", "ProviderName": provider,
                         "DriverLibFileName": f"{provider.lower()}-driver-v1.0.so"}),
             ("credential", {"CredentialName": f"{name}-cred", "ProviderName": provider,
                             "KeyValueInfoList": credential}),
             ("region", {"RegionName": f"{name}-region", "ProviderName": provider, "KeyValueInfoList": region}),
             ("connectionconfig", {"ConfigName": name, "ProviderName": provider, "DriverName": f"{name}-driver",
                                   "CredentialName": f"{name}-cred", "RegionName": f"{name}-region"})]
    for route, body in calls:
        r = requests.post(f"{base}/spider/{route}", json=body, auth=AUTH, timeout=30)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def spider(tmp_path_factory):
    with SpiderProcess(tmp_path_factory.mktemp("openapi"),
                       env={"SPIDER_USERNAME": AUTH[0], "SPIDER_PASSWORD": AUTH[1]}) as server:
        register(server.base, "NULL", [{"Key": "Name", "Value": f"null-{uuid.uuid4().hex[:8]}"}],
                 [{"Key": "Region", "Value": "null-region"}], "null-config01")
        register(server.base, "MOCK", [{"Key": "MockName", "Value": f"mock-{uuid.uuid4().hex[:8]}"}],
                 [{"Key": "Region", "Value": "default"}], "mock-config01")
        yield server


def test_spider_description_is_valid_and_covers_every_route(spider):
    spec = requests.get(spider.base + "/spider/api/openapi.json", timeout=10).json()  # open, like /spider/api
    validate(spec)
    assert spec["openapi"] == "3.1.0"
    ops = {(m.upper(), p) for p, item in spec["paths"].items() for m in item}
    assert ("POST", "/spider/vpc") in ops and ("DELETE", "/spider/vm/{Name}") in ops
    assert ("GET", "/spider/countvpc/{ConnectionName}") in ops
    undeclared = [f"{m.upper()} {p}" for p, item in spec["paths"].items() for m, op in item.items()
                  if op.get("x-undeclared")]
    assert undeclared == [], f"routes without an @api declaration (spider_core/rest/contract.py): {undeclared}"
    vpc = spec["components"]["schemas"]["Vpc"]
    assert vpc["properties"]["IId"]["required"] == ["NameId", "SystemId"]
    assert vpc["properties"]["SubnetInfoList"]["anyOf"][1] == {"type": "null"}
    assert "TagList" not in vpc["required"] and "IPv4_CIDR" in vpc["required"]
    create = spec["paths"]["/spider/vpc"]["post"]
    assert create["security"] == [{"basicAuth": []}] and {"200", "202", "401", "500"} <= set(create["responses"])
    assert spec["paths"]["/spider/readyz"]["get"]["security"] == []


def test_swagger_ui_is_served_from_the_package(spider):
    page = requests.get(spider.base + "/spider/api", timeout=10)
    assert page.status_code == 200 and "swagger-ui-bundle.js" in page.text and "http" not in page.text.split(
        "<body>")[1].replace("http-equiv", "")  # nothing from another host
    js = requests.get(spider.base + "/spider/api/static/swagger-ui-bundle.js", timeout=10)
    assert js.status_code == 200 and len(js.content) > 100_000
    assert requests.get(spider.base + "/spider/api/init.js", timeout=10).status_code == 200
    # the calls themselves still need credentials
    assert requests.get(spider.base + "/spider/vpc?ConnectionName=null-config01", timeout=10).status_code == 401


def test_unicode_digits_are_refused_not_crashed_on(spider):
    """What schemathesis found: str.isdigit() accepts "²", which int() refuses (an unhandled 500)."""
    base, conn = spider.base + "/spider", {"ConnectionName": "null-config01"}
    r = requests.get(base + "/vm/imagespecrecent", params={"Limit": "²"}, auth=AUTH, timeout=30)
    assert r.status_code == 200 and isinstance(r.json(), list)
    r = requests.get(base + "/check/tcp", params={"Hostname": "127.0.0.1", "Port": "²"}, auth=AUTH, timeout=30)
    assert (r.status_code, r.json()) == (400, {"message": "Invalid port value"})
    r = requests.get(base + "/mock/events", params={"since": "²"}, auth=AUTH, timeout=30)
    assert r.status_code == 400 and "whole number" in r.json()["message"]
    vm = {"Name": "vm-u", "ImageName": "img", "VMSpecName": "spec", "VPCName": "v", "SubnetName": "s",
          "SecurityGroupNames": ["sg"], "KeyPairName": "k", "RootDiskSize": "²"}
    r = requests.post(base + "/vm", json={**conn, "ReqInfo": vm}, auth=AUTH, timeout=30)
    assert r.status_code == 500 and "is not a valid Root Disk Size" in r.json()["message"]
    r = requests.post(base + "/disk", json={**conn, "ReqInfo": {"Name": "disk-u", "DiskSize": "²"}}, auth=AUTH,
                      timeout=30)
    assert r.status_code == 500 and r.json()["message"] != "Internal Server Error", r.text


@pytest.mark.slow
def test_schemathesis_spider_null_and_mock(spider):
    tallies = []
    for conn in ("null-config01", "mock-config01"):
        # every operation on NULL, valid and invalid data; on MOCK the valid data of those that take a
        # connection (the rest, and invalid data, never reach a driver)
        found = fuzz(spider.base + "/spider/api/openapi.json", spider.base, max_examples=EXAMPLES, auth=AUTH,
                     exclude=SPIDER_EXCLUDE, connection=conn, connection_only=conn.startswith("mock"),
                     negative=conn.startswith("null"))
        print(f"\nschemathesis on Spider, connection {conn}:\n{table(found)}\n{server_errors(found)}")
        tallies += found
    assert problems(tallies) == []
    assert all(t.cases >= 1 for t in tallies) and sum(t.cases for t in tallies) > 2 * len(tallies)


@pytest.mark.slow
def test_schemathesis_twin_admin():
    with TwinSubprocess() as twin:
        spec = requests.get(twin.url + "/_twin/openapi.json", timeout=10).json()
        validate(spec)
        odd = requests.post(twin.url + "/_twin/vms/a%0Ab/exec", json={"argv": ["true"]}, timeout=10)
        assert odd.status_code == 404 and odd.json()["error"]["code"] == 404  # the twin's JSON, not aiohttp's text
        found = fuzz(twin.url + "/_twin/openapi.json", twin.url, max_examples=EXAMPLES, exclude=TWIN_EXCLUDE,
                     crashed=any_5xx)
        print(f"\nschemathesis on Cloud-Twin /_twin:\n{table(found)}")
        assert problems(found) == []
