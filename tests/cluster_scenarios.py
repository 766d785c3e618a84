"""The cluster's must-hold scenarios, shared by ``tests/test_cluster.py`` (small N, in CI) and
``bench/scale_out.py`` (full size): each drives a running ``spidercluster.up.Cluster`` over HTTP,
asserts what must hold, and returns its figures."""

from __future__ import annotations

import asyncio
import re
import time

import aiohttp
import requests

CONN = "mock-config01"


def register_mock(url: str, conn: str = CONN) -> None:
    """CB-Spider's MOCK registration, through the cluster's front URL."""
    for path, body in (("/driver", {"DriverName": "mock-driver01", "ProviderName": "MOCK",
                                    "DriverLibFileName": "mock-driver-v1.0.so"}),
                       ("/credential", {"CredentialName": "mock-credential01", "ProviderName": "MOCK",
                                        "KeyValueInfoList": [{"Key": "MockName", "Value": "cluster-test"}]}),
                       ("/region", {"RegionName": "mock-region01", "ProviderName": "MOCK",
                                    "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]}),
                       ("/connectionconfig", {"ConfigName": conn, "ProviderName": "MOCK", "DriverName": "mock-driver01",
                                              "CredentialName": "mock-credential01", "RegionName": "mock-region01"})):
        r = requests.post(url + path, json=body, timeout=30)
        assert r.status_code == 200, r.text


def served(replica_url: str, route: str, method: str = "POST") -> int:
    """Requests a replica answered on ``route`` (its Prometheus counter)."""
    text = requests.get(replica_url + "/spider/metrics", timeout=10).text
    total = 0.0
    for line in text.splitlines():
        if line.startswith("spider_http_requests_total{"):
            labels, value = line[len("spider_http_requests_total{"):].rsplit("} ", 1)
            found = dict(re.findall(r'(\w+)="([^"]*)"', labels))
            if found.get("route") == route and found.get("method") == method:
                total += float(value)
    return int(total)


async def post_many(calls: list[tuple[str, dict]], params: dict | None = None,
                    concurrency: int = 100) -> list[tuple[int, dict]]:
    gate = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=600),
                                     connector=aiohttp.TCPConnector(limit=concurrency)) as session:
        async def one(url: str, body: dict) -> tuple[int, dict]:
            async with gate:
                async with session.post(url, json=body, params=params) as resp:
                    return resp.status, await resp.json(content_type=None)
        return await asyncio.gather(*(one(u, b) for u, b in calls))


def all_list(url: str, rtype: str) -> dict:
    r = requests.get(f"{url}/all{rtype}", params={"ConnectionName": CONN}, timeout=120)
    assert r.status_code == 200, r.text
    return r.json()["AllList"]


def vpc_body(name: str) -> dict:
    return {"ConnectionName": CONN, "ReqInfo": {"Name": name, "IPv4_CIDR": "10.0.0.0/16",
                                                "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}]}}


def spread_creates(cluster, n: int) -> dict:
    """n concurrent VPC creates through HAProxy: every replica serves some, each name exists once,
    no orphan on either side."""
    before = [served(r.url, "/spider/vpc") for r in cluster.replicas]
    calls = [(cluster.url + "/vpc", vpc_body(f"cv-{i:04d}")) for i in range(n)]
    started = time.monotonic()
    results = asyncio.run(post_many(calls))
    took = time.monotonic() - started
    assert [s for s, _ in results] == [200] * n, [b for s, b in results if s != 200][:3]
    spread = [served(r.url, "/spider/vpc") - b for r, b in zip(cluster.replicas, before)]
    assert all(k > 0 for k in spread) and sum(spread) == n, spread
    lists = all_list(cluster.url, "vpc")
    names = [i["NameId"] for i in lists["MappedList"] if i["NameId"].startswith("cv-")]
    assert sorted(names) == sorted(f"cv-{i:04d}" for i in range(n))  # each once: no duplicate
    assert not lists["OnlySpiderList"] and not lists["OnlyCSPList"], lists  # no orphan either side
    return {"creates": n, "per_replica": spread, "seconds": round(took, 2)}


def same_name_pairs(cluster, n: int) -> dict:
    """n names, each created on two different replicas at once: one success, one "already exists"."""
    calls = []
    for i in range(n):
        a, b = cluster.replicas[i % len(cluster.replicas)], cluster.replicas[(i + 1) % len(cluster.replicas)]
        body = vpc_body(f"pair-{i:04d}")
        calls += [(a.url + "/spider/vpc", body), (b.url + "/spider/vpc", body)]
    results = asyncio.run(post_many(calls))
    for i in range(n):
        pair = results[2 * i:2 * i + 2]
        assert sorted(s for s, _ in pair) == [200, 500], pair
        loser = next(body for s, body in pair if s == 500)
        assert loser == {"message": f"VPC 'pair-{i:04d}' already exists in connection '{CONN}'"}, loser
    lists = all_list(cluster.url, "vpc")
    assert not lists["OnlyCSPList"] and not lists["OnlySpiderList"], lists
    return {"pairs": n, "one_success_each": True}


def kill_during_async_creates(cluster, n: int, build_seconds: float = 1.5) -> dict:
    """n async VM creates spread over the replicas (builds slowed to ``build_seconds``); kill -9 of the
    last replica mid-storm; every job ends done or failed with a reason; 0 OnlyCSPList, 0 OnlySpiderList."""
    url = cluster.url
    for path, info in (("/vpc", {"Name": "kv-vpc", "IPv4_CIDR": "10.0.0.0/16",
                                 "SubnetInfoList": [{"Name": "kv-sub", "IPv4_CIDR": "10.0.0.0/20"}]}),
                       ("/securitygroup", {"Name": "kv-sg", "VPCName": "kv-vpc", "SecurityRules": []}),
                       ("/keypair", {"Name": "kv-key"})):
        r = requests.post(url + path, json={"ConnectionName": CONN, "ReqInfo": info}, timeout=60)
        assert r.status_code == 200, r.text
    for replica in cluster.replicas:  # VM builds take a while, so the kill finds them in flight
        r = requests.post(replica.url + "/spider/mock/faults", timeout=10,
                          json={"kind": "latency", "fixed": build_seconds, "match": {"operation": "ec2:RunInstances"}})
        assert r.status_code == 200, r.text
    victim, survivors = cluster.replicas[-1], cluster.replicas[:-1]
    calls = [(cluster.replicas[i % len(cluster.replicas)].url + "/spider/vm", {"ConnectionName": CONN, "ReqInfo": {
        "Name": f"kv-vm-{i:04d}", "ImageName": "mock-vmimage-01", "VMSpecName": "mock-vmspec-01", "VPCName": "kv-vpc",
        "SubnetName": "kv-sub", "SecurityGroupNames": ["kv-sg"], "KeyPairName": "kv-key"}}) for i in range(n)]
    submitted = asyncio.run(post_many(calls, params={"async": "true"}))
    assert [s for s, _ in submitted] == [202] * n, submitted[:3]
    time.sleep(1.0)
    victim.proc.kill()  # SIGKILL: no drain, no lease hand-over
    victim.proc.wait(10)
    killed_at = time.monotonic()
    survivor = survivors[0].url + "/spider"
    finals = [requests.get(f"{survivor}/job/{job['Id']}", params={"wait": "120"}, timeout=130).json()
              for _, job in submitted]
    took = time.monotonic() - killed_at
    unfinished = [f for f in finals if not (f["Status"] == "done" or (f["Status"] == "failed" and f["Error"]))]
    assert not unfinished, unfinished[:3]
    lists = all_list(survivor, "vm")
    storm = {f"kv-vm-{i:04d}" for i in range(n)}
    only_spider = [i for i in lists["OnlySpiderList"] or [] if i["NameId"] in storm]
    assert not only_spider and not lists["OnlyCSPList"], lists
    done = [f["Name"] for f in finals if f["Status"] == "done"]
    assert sorted(i["NameId"] for i in lists["MappedList"] if i["NameId"] in storm) == sorted(done)
    info = requests.get(survivor + "/splockinfo", params={"detail": "true"}, timeout=10).json()["cluster"]
    assert victim.meta["id"] not in {r["id"] for r in info["replicas"]}  # the dead one was claimed
    on_victim = sum(1 for i in range(n) if i % len(cluster.replicas) == len(cluster.replicas) - 1)
    reasons: dict[str, int] = {}
    for f in finals:
        if f["Status"] == "failed":
            reason = f["Error"].split(":", 1)[-1].strip()[:70] if "was being created" in f["Error"] else f["Error"][:70]
            reasons[reason] = reasons.get(reason, 0) + 1
    return {"async_creates": n, "submitted_to_victim": on_victim, "done": len(done), "failed": n - len(done),
            "failed_because": reasons, "all_ended_after_kill_s": round(took, 1), "only_csp": 0, "only_spider": 0}
