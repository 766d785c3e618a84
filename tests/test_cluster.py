"""Three Spider replicas behind HAProxy on one PostgreSQL, with one shared moto server (``spider cluster up``).

* concurrent creates through HAProxy land on every replica: no duplicate, no orphan (AllList);
* the same name created on two replicas at once: exactly one success and one CB-Spider "already exists";
* ``kill -9`` of one replica during async VM creates: the survivors take its intents and jobs; every
  job ends ``done`` or ``failed`` with a reason, and the storm's VMs have 0 OnlyCSPList and 0
  OnlySpiderList.

CI runs smaller storms than ``bench/scale_out.py`` (300 creates, 100 pairs, 300 async creates).
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
import time
from pathlib import Path

import aiohttp
import pytest
import requests

from pg_helpers import postgres_or_skip
from spidercluster.config import ClusterConfig
from spidercluster.procs import free_port
from spidercluster.up import up

pytestmark = pytest.mark.slow

CONN = "mock-config01"
N_CREATES = int(os.environ.get("SPIDERTWIN_CLUSTER_CREATES", "60"))
N_PAIRS = int(os.environ.get("SPIDERTWIN_CLUSTER_PAIRS", "20"))
N_ASYNC = int(os.environ.get("SPIDERTWIN_CLUSTER_ASYNC", "30"))


def register_mock(url: str) -> None:
    for path, body in (("/driver", {"DriverName": "mock-driver01", "ProviderName": "MOCK",
                                    "DriverLibFileName": "mock-driver-v1.0.so"}),
                       ("/credential", {"CredentialName": "mock-credential01", "ProviderName": "MOCK",
                                        "KeyValueInfoList": [{"Key": "MockName", "Value": "cluster-test"}]}),
                       ("/region", {"RegionName": "mock-region01", "ProviderName": "MOCK",
                                    "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]}),
                       ("/connectionconfig", {"ConfigName": CONN, "ProviderName": "MOCK", "DriverName": "mock-driver01",
                                              "CredentialName": "mock-credential01", "RegionName": "mock-region01"})):
        r = requests.post(url + path, json=body, timeout=30)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def cluster():
    postgres_or_skip()  # skips (or fails in CI) without Debian's postgresql
    state = Path(tempfile.mkdtemp(prefix="spidertwin-cluster-"))
    cfg = ClusterConfig(state_dir=state, listen=f"127.0.0.1:{free_port()}", replicas=3, lease_seconds=5.0,
                        replica_env={"SPIDER_JOB_WORKERS": "64"}, twin_shards=2)
    running = up(cfg, log=lambda _line: None)
    try:
        register_mock(running.url)
        yield running
    finally:
        for child in running.children:  # shown when a test failed
            print(f"--- {child.name} (pid {child.pid}) log tail:\n{child.log_tail(15)}")
        running.stop()
        import shutil
        shutil.rmtree(state, ignore_errors=True)


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


async def post_many(calls: list[tuple[str, dict]], params: dict | None = None) -> list[tuple[int, dict]]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
        async def one(url: str, body: dict) -> tuple[int, dict]:
            async with session.post(url, json=body, params=params) as resp:
                return resp.status, await resp.json(content_type=None)
        return await asyncio.gather(*(one(u, b) for u, b in calls))


def all_list(url: str, rtype: str) -> dict:
    r = requests.get(f"{url}/all{rtype}", params={"ConnectionName": CONN}, timeout=60)
    assert r.status_code == 200, r.text
    return r.json()["AllList"]


def test_concurrent_creates_spread_over_replicas_without_duplicates_or_orphans(cluster):
    before = [served(r.url, "/spider/keypair") for r in cluster.replicas]
    calls = [(cluster.url + "/keypair", {"ConnectionName": CONN, "ReqInfo": {"Name": f"ck-{i:03d}"}})
             for i in range(N_CREATES)]
    results = asyncio.run(post_many(calls))
    assert [s for s, _ in results] == [200] * N_CREATES, [b for s, b in results if s != 200][:3]
    spread = [served(r.url, "/spider/keypair") - b for r, b in zip(cluster.replicas, before)]
    assert all(n > 0 for n in spread) and sum(spread) == N_CREATES, spread
    lists = all_list(cluster.url, "keypair")
    names = [i["NameId"] for i in lists["MappedList"] if i["NameId"].startswith("ck-")]
    assert sorted(names) == sorted(f"ck-{i:03d}" for i in range(N_CREATES))  # each once: no duplicate
    assert not lists["OnlySpiderList"] and not lists["OnlyCSPList"], lists  # no orphan either side
    print(f"\n{N_CREATES} creates through HAProxy: per replica {spread}; 0 duplicates, 0 orphans")


def test_same_name_on_two_replicas_gives_one_success(cluster):
    a, b = cluster.replicas[0].url + "/spider", cluster.replicas[1].url + "/spider"
    calls = []
    for i in range(N_PAIRS):
        body = {"ConnectionName": CONN, "ReqInfo": {"Name": f"pair-{i:03d}"}}
        calls += [(a + "/keypair", body), (b + "/keypair", body)]
    results = asyncio.run(post_many(calls))
    for i in range(N_PAIRS):
        pair = results[2 * i:2 * i + 2]
        assert sorted(s for s, _ in pair) == [200, 500], pair
        loser = next(body for s, body in pair if s == 500)
        assert loser == {"message": f"KeyPair 'pair-{i:03d}' already exists in connection '{CONN}'"} or \
            "already exists" in loser["message"], loser
    lists = all_list(cluster.url, "keypair")
    assert not lists["OnlyCSPList"] and not lists["OnlySpiderList"], lists


def test_cloudtwin_clouds_on_two_shards_behind_the_replicas(cluster):
    """``twin_shards=2``: cloud-1 and cloud-2 live on different shards, registered once through HAProxy;
    a VPC made through the replicas on each lands on its own shard."""
    assert [c.meta["shard"] for c in cluster.twins] == ["shard-1", "shard-2"]
    for cloud, shard in (("cloud-1", cluster.twins[0]), ("cloud-2", cluster.twins[1])):
        conn = f"cloudtwin-{cloud}-config"
        body = {"ConnectionName": conn, "ReqInfo": {"Name": f"vpc-{cloud}", "IPv4_CIDR": "10.30.0.0/16",
                                                    "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.30.1.0/24"}]}}
        r = requests.post(cluster.url + "/vpc", json=body, timeout=120)
        assert r.status_code == 200, r.text
        local = requests.get(shard.url + f"/_twin/state?cloud={cloud}&shard={shard.meta['shard']}", timeout=10)
        assert local.status_code == 200 and local.json()["clouds"][0]["objects"]["RegionOne"]["networks"] >= 1
        r = requests.delete(cluster.url + f"/vpc/vpc-{cloud}", json={"ConnectionName": conn}, timeout=120)
        assert r.status_code == 200, r.text


def test_kill_9_of_a_replica_during_async_vm_creates(cluster):
    url = cluster.url
    for path, info in (("/vpc", {"Name": "kv-vpc", "IPv4_CIDR": "10.0.0.0/16",
                                 "SubnetInfoList": [{"Name": "kv-sub", "IPv4_CIDR": "10.0.0.0/20"}]}),
                       ("/securitygroup", {"Name": "kv-sg", "VPCName": "kv-vpc", "SecurityRules": []}),
                       ("/keypair", {"Name": "kv-key"})):
        r = requests.post(url + path, json={"ConnectionName": CONN, "ReqInfo": info}, timeout=60)
        assert r.status_code == 200, r.text
    for replica in cluster.replicas:  # VM builds take a while, so the kill finds them in flight
        r = requests.post(replica.url + "/spider/mock/faults", timeout=10,
                          json={"kind": "latency", "fixed": 1.5, "match": {"operation": "ec2:RunInstances"}})
        assert r.status_code == 200, r.text
    victim = cluster.replicas[2]
    calls = []
    for i in range(N_ASYNC):
        target = cluster.replicas[i % 3].url + "/spider"
        calls.append((target + "/vm", {"ConnectionName": CONN, "ReqInfo": {
            "Name": f"kv-vm-{i:03d}", "ImageName": "mock-vmimage-01", "VMSpecName": "mock-vmspec-01", "VPCName": "kv-vpc",
            "SubnetName": "kv-sub", "SecurityGroupNames": ["kv-sg"], "KeyPairName": "kv-key"}}))
    submitted = asyncio.run(post_many(calls, params={"async": "true"}))
    assert [s for s, _ in submitted] == [202] * N_ASYNC, submitted[:3]
    time.sleep(1.0)
    victim.proc.kill()  # SIGKILL: no drain, no lease hand-over
    victim.proc.wait(10)
    killed_at = time.monotonic()
    survivor = cluster.replicas[0].url + "/spider"
    finals = [requests.get(f"{survivor}/job/{job['Id']}", params={"wait": "90"}, timeout=100).json()
              for _, job in submitted]
    took = time.monotonic() - killed_at
    assert all(f["Status"] == "done" or (f["Status"] == "failed" and f["Error"]) for f in finals), \
        [f for f in finals if f["Status"] not in ("done", "failed")][:3]
    lists = all_list(survivor, "vm")
    storm = {f"kv-vm-{i:03d}" for i in range(N_ASYNC)}
    assert not [i for i in lists["OnlySpiderList"] or [] if i["NameId"] in storm], lists
    assert not lists["OnlyCSPList"], lists  # the cloud has no VM Spider does not map
    done = [f["Name"] for f in finals if f["Status"] == "done"]
    assert sorted(i["NameId"] for i in lists["MappedList"] if i["NameId"] in storm) == sorted(done)
    info = requests.get(survivor + "/splockinfo", params={"detail": "true"}, timeout=10).json()["cluster"]
    assert {r["id"] for r in info["replicas"]} == {"replica-1", "replica-2"}  # the dead one was claimed
    print(f"\nkill -9 of {victim.meta['id']} with {N_ASYNC} async VM creates: all jobs ended {took:.1f} s later; "
          f"{len(done)} done, {N_ASYNC - len(done)} failed with a reason; 0 OnlyCSPList, 0 OnlySpiderList")
