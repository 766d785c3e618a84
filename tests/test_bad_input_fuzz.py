"""Every route, fed malformed and hostile bodies: a clear JSON ``{"message"}`` each time, never an
Internal Server Error or a traceback, and the MetaDB unchanged unless the call succeeded."""

from __future__ import annotations

import json
import random

import pytest

from spider_core.client import ROUTES

SKIP = {"upload-driver"}  # multipart; covered by its own refusal
# CB-Spider answers these with a bare JSON array (a Go slice), every other route with an object
ARRAY_ANSWERS = {"list-favorite-imagespec", "list-recent-imagespec"}
HOSTILE_VALUES = [None, 0, -1, 1.5, True, [], {}, [1, 2], {"a": {"b": []}}, "", " ", "x" * 5000,
                  "'; DROP TABLE iid_infos; --", "名前", "\u0000", "../../etc/passwd", "<script>"]


def _path(route, value: str = "fuzz") -> str:
    path = route.path
    for name in route.path_params:
        path = path.replace("{" + name + "}", value)
    return path


def _bodies(rng: random.Random, conn: str) -> list[object]:
    bodies: list[object] = [[], "text", 12, None, {"ReqInfo": "notanobject"}, {"ConnectionName": 5},
                            {"ConnectionName": conn, "ReqInfo": []}, {"ConnectionName": conn, "ReqInfo": None}]
    for _ in range(6):
        req = {k: rng.choice(HOSTILE_VALUES) for k in ("Name", "VPCName", "IPv4_CIDR", "SubnetInfoList",
                                                       "SecurityRules", "RuleInfoList", "VMs", "Listener",
                                                       "CSPId", "ImageName", "KeyValueInfoList")}
        bodies.append({"ConnectionName": conn, "ReqInfo": req, "DriverName": rng.choice(HOSTILE_VALUES),
                       "CredentialName": rng.choice(HOSTILE_VALUES)})
    # well-typed but hostile: these get past JSON binding and into the services and drivers
    strings = [v for v in HOSTILE_VALUES if isinstance(v, str)]
    for _ in range(8):
        rule = {k: rng.choice(strings) for k in ("Direction", "IPProtocol", "FromPort", "ToPort", "CIDR")}
        req = {"Name": rng.choice(strings), "VPCName": rng.choice(strings), "IPv4_CIDR": rng.choice(strings),
               "SubnetInfoList": [{"Name": rng.choice(strings), "IPv4_CIDR": rng.choice(strings),
                                   "Zone": rng.choice(strings)}],
               "SecurityRules": [rule], "RuleInfoList": [rule], "VMs": [rng.choice(strings)],
               "Listener": {"Protocol": rng.choice(strings), "Port": rng.choice(strings)},
               "HealthChecker": {"Protocol": rng.choice(strings), "Interval": rng.choice(strings)},
               "CSPId": rng.choice(strings), "ImageName": rng.choice(strings), "VMSpecName": rng.choice(strings),
               "SubnetName": rng.choice(strings), "SecurityGroupNames": [rng.choice(strings)],
               "KeyPairName": rng.choice(strings), "RootDiskSize": rng.choice(strings),
               "FID": rng.choice(strings), "IKeyValueList": [{"Key": rng.choice(strings), "Value": "x"}]}
        bodies.append({"ConnectionName": conn, "ReqInfo": req, "IDTransformMode": rng.choice(strings)})
        bodies.append({"DriverName": rng.choice(strings), "ProviderName": rng.choice(strings),
                       "DriverLibFileName": rng.choice(strings), "CredentialName": rng.choice(strings),
                       "RegionName": rng.choice(strings), "ConfigName": rng.choice(strings),
                       "KeyValueInfoList": [{"Key": rng.choice(strings), "Value": rng.choice(strings)}]})
    return bodies


@pytest.mark.parametrize("route", [r for r in ROUTES if r.op_id not in SKIP], ids=lambda r: r.op_id)
async def test_route_survives_hostile_input(null_server, route):
    srv = null_server
    rng = random.Random(route.op_id)
    before = await srv.dump()
    for value in ("fuzz", "%27%3B--", "%E5%90%8D"):
        for body in _bodies(rng, srv.conn):
            raw = json.dumps(body)
            reply = await srv.call(route.method, "/spider" + _path(route, value), data=raw,
                                   headers={"Content-Type": "application/json"},
                                   params={"ConnectionName": srv.conn, "action": "suspend"}
                                   if route.method == "GET" else None)
            if route.text and reply.status == 200:
                continue
            assert reply.status != 500 or reply.json != {"message": "Internal Server Error"}, \
                f"{route.op_id} {raw[:200]}"
            assert "Traceback" not in reply.text
            payload = reply.json
            assert isinstance(payload, list if reply.status == 200 and route.op_id in ARRAY_ANSWERS else dict)
            if reply.status != 200:
                assert set(payload) == {"message"} and payload["message"], (route.op_id, raw[:200], payload)
                assert await srv.dump() == before, f"{route.op_id}: a failed call changed the MetaDB ({raw[:200]})"
            else:
                before = await srv.dump()


MOCK_ROUTES = [r for r in ROUTES if r.method in ("POST", "PUT") and r.family in ("vpc", "sg", "keypair", "vm", "nlb")]


@pytest.mark.parametrize("route", MOCK_ROUTES, ids=lambda r: r.op_id)
async def test_route_survives_hostile_input_on_mock(mock_server, route):
    """The same on MOCK, where hostile values reach boto3 and moto (strict validation on)."""
    srv = mock_server
    rng = random.Random("mock-" + route.op_id)
    before = await srv.dump()
    for body in _bodies(rng, srv.conn):
        raw = json.dumps(body)
        reply = await srv.call(route.method, "/spider" + _path(route), data=raw,
                               headers={"Content-Type": "application/json"})
        assert reply.json != {"message": "Internal Server Error"} and "Traceback" not in reply.text, \
            (route.op_id, raw[:200])
        if reply.status != 200:
            assert set(reply.json) == {"message"}
            assert await srv.dump() == before, f"{route.op_id}: a failed call changed the MetaDB ({raw[:200]})"
        else:
            before = await srv.dump()
