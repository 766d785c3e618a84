"""Every Cloud-Twin route against hostile input: malformed JSON, wrong types, odd ids, huge bodies.
Nothing may answer 5xx, every error comes in the addressed service's envelope, and the state the
project had before is still there afterwards."""

from __future__ import annotations

import json
import re

import aiohttp

from test_faults import login

BODIES = [b"{not json", b"[]", b"null", b"42", b'"x"', b"{}", json.dumps({"server": "x"}).encode(),
          json.dumps({"network": {"name": 5, "admin_state_up": "maybe"}}).encode(),
          json.dumps({"subnet": {"cidr": "300.1.1.1/99", "ip_version": "four", "network_id": []}}).encode(),
          json.dumps({"security_group_rule": {"direction": "sideways", "port_range_min": "a"}}).encode(),
          json.dumps({"loadbalancer": {"vip_subnet_id": {"a": 1}}}).encode(),
          json.dumps({"keypair": {"name": "../../etc/passwd", "public_key": "ssh-rsa AAAA"}}).encode()]
ODD_IDS = ["..", "%00", "x" * 300, "00000000-0000-0000-0000-000000000000", "'; DROP TABLE x; --"]
ENVELOPE = {"compute": lambda b: isinstance(b, dict) and len(b) == 1 and "message" in next(iter(b.values())),
            "network": lambda b: "NeutronError" in b,
            "load-balancer": lambda b: "faultstring" in b,
            "identity": lambda b: "error" in b}
PREFIX = {"compute": "compute", "network": "network", "image": "image", "load-balancer": "load-balancer"}


def concrete(pattern: str, oid: str) -> str:
    return re.sub(r"\{\w+\}", oid, pattern)


async def test_every_route_survives_hostile_input(twin):
    router = twin._runner.app["dispatcher"].router
    routes = [r for r in router.routes() if r.service in PREFIX]
    assert len(routes) > 100, "all services are routed"
    async with aiohttp.ClientSession() as s:
        token = await login(s, twin.url)
        h = {"X-Auth-Token": token, "Content-Type": "application/json"}
        # some state that must survive
        base = f"{twin.url}/cloud-1/RegionOne"
        async with s.post(f"{base}/network/v2.0/networks", json={"network": {"name": "keep"}}, headers=h) as r:
            keep = (await r.json())["network"]["id"]
        statuses: dict[int, int] = {}
        for route in routes:
            for oid in ODD_IDS[:2] + [ODD_IDS[3]]:
                url = f"{base}/{PREFIX[route.service]}{concrete(route.pattern, oid)}"
                bodies = BODIES if route.method in ("POST", "PUT") else [b""]
                for body in bodies:
                    async with s.request(route.method, url, data=body, headers=h) as r:
                        statuses[r.status] = statuses.get(r.status, 0) + 1
                        text = await r.text()
                        assert r.status < 500, f"{route.method} {url} {body[:60]!r}: {r.status} {text[:300]}"
                        if r.status >= 400 and route.service in ENVELOPE and text:
                            assert ENVELOPE[route.service](json.loads(text)), f"{route.method} {url}: {text[:200]}"
        # a body over the limit is refused before it is read
        async with s.post(f"{base}/network/v2.0/networks", data=b"{" + b" " * (2 * 1024 * 1024) + b"}",
                          headers=h) as r:
            assert r.status == 413
        async with s.get(f"{base}/network/v2.0/networks/{keep}", headers=h) as r:
            assert r.status == 200 and (await r.json())["network"]["name"] == "keep"
    assert twin._runner.app["dispatcher"].server_errors == 0
    assert statuses.get(400, 0) > 50 and statuses.get(404, 0) > 50, statuses
