"""Three Spider replicas behind HAProxy on one PostgreSQL, with one shared moto server (``spider cluster up``).

* concurrent creates through HAProxy land on every replica: no duplicate, no orphan (AllList);
* the same name created on two replicas at once: exactly one success and one CB-Spider "already exists";
* ``kill -9`` of one replica during async VM creates: the survivors take its intents and jobs; every
  job ends ``done`` or ``failed`` with a reason, and the storm's VMs have 0 OnlyCSPList and 0
  OnlySpiderList;
* with ``twin_shards=2``, CLOUDTWIN clouds on two Cloud-Twin shards behind the same replicas.

The scenarios live in ``cluster_scenarios`` (``bench/scale_out.py`` runs them at full size: 300
creates, 100 pairs, 300 async creates); CI runs them smaller.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import requests

import cluster_scenarios as scenarios
from pg_helpers import postgres_or_skip
from spidercluster.config import ClusterConfig
from spidercluster.procs import free_port
from spidercluster.up import up

pytestmark = pytest.mark.slow

N_CREATES = int(os.environ.get("SPIDERTWIN_CLUSTER_CREATES", "45"))
N_PAIRS = int(os.environ.get("SPIDERTWIN_CLUSTER_PAIRS", "15"))
N_ASYNC = int(os.environ.get("SPIDERTWIN_CLUSTER_ASYNC", "24"))


@pytest.fixture(scope="module")
def cluster():
    postgres_or_skip()  # skips (or fails in CI) without Debian's postgresql
    state = Path(tempfile.mkdtemp(prefix="spidertwin-cluster-"))
    cfg = ClusterConfig(state_dir=state, listen=f"127.0.0.1:{free_port()}", replicas=3, lease_seconds=5.0,
                        replica_env={"SPIDER_JOB_WORKERS": "64"}, twin_shards=2)
    try:
        running = up(cfg, log=lambda _line: None)  # a failed start stops what it had started
    except BaseException:
        shutil.rmtree(state, ignore_errors=True)
        raise
    try:
        scenarios.register_mock(running.url)
        yield running
    finally:
        for child in running.children:  # shown when a test failed
            print(f"--- {child.name} (pid {child.pid}) log tail:\n{child.log_tail(15)}")
        running.stop()
        shutil.rmtree(state, ignore_errors=True)


def test_concurrent_creates_spread_over_replicas_without_duplicates_or_orphans(cluster):
    print("\n", scenarios.spread_creates(cluster, N_CREATES))


def test_same_name_on_two_replicas_gives_one_success(cluster):
    print("\n", scenarios.same_name_pairs(cluster, N_PAIRS))


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
    print("\n", scenarios.kill_during_async_creates(cluster, N_ASYNC))


def test_cluster_wide_lock_view_and_metrics(cluster):
    """A lock held on replica-1 shows on replica-2's /splockinfo and /metrics, with the holder's replica."""
    import threading
    import time

    holder, viewer = cluster.replicas[0].url + "/spider", cluster.replicas[1].url + "/spider"
    fault = requests.post(holder + "/mock/faults", timeout=10,
                          json={"kind": "latency", "fixed": 3.0, "match": {"operation": "ec2:CreateKeyPair"}})
    assert fault.status_code == 200, fault.text
    slow = threading.Thread(target=requests.post, args=(holder + "/keypair",),
                            kwargs={"json": {"ConnectionName": scenarios.CONN, "ReqInfo": {"Name": "viewed-key"}},
                                    "timeout": 60})
    slow.start()
    try:
        deadline, seen = time.monotonic() + 10, None
        while seen is None and time.monotonic() < deadline:
            view = requests.get(viewer + "/splockinfo", params={"detail": "true"}, timeout=10).json()["cluster"]
            seen = next((e for e in view["locks"] if e["name"] == "viewed-key"), None)
            time.sleep(0.05)
        assert seen is not None and seen["family"] == "key", view
        assert [(h["replica"], h["mode"], h["request"]) for h in seen["holders"]] == \
            [("replica-1", "write", "POST /spider/keypair")]
        info = requests.get(viewer + "/splockinfo", timeout=10).json()["splockinfo"]
        assert f"({scenarios.CONN}:viewed-key, replica-1:1)" in info[2], info
        metrics = requests.get(viewer + "/metrics", timeout=10).text
        assert 'spider_cluster_lock_holders{family="key",replica="replica-1"} 1.0' in metrics
        assert 'spider_cluster_replica_up{replica="replica-2"} 1.0' in metrics
    finally:
        slow.join()
        requests.delete(holder + "/mock/faults", timeout=10)
