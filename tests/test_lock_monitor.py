"""The lock monitor (concurrency/monitor.py) against a real ``spider serve`` subprocess.

A CLOUDTWIN connection whose network creates take 1 s (Cloud-Twin latency fault) makes every VPC create
hold its SP-Lock for ~1 s: concurrent distinct creates show up as holders, concurrent creates of one name
as waiters, and a 0.5 s threshold flags the holds. After the run no entry may be left."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import aiohttp
import pytest
import requests

from concurrency.monitor import LockMonitor, summarise_view
from reports.charts import write_chart
from spider_helpers import REPO, SpiderProcess, TwinSubprocess, free_port
from test_cloudtwin_spider import register

CONN = "cloudtwin-cloud-1-config"


@pytest.fixture(scope="module")
def twin():
    with TwinSubprocess("--cloud", "cloud-1=openstack") as t:
        yield t


@pytest.fixture(scope="module")
def spider(twin, tmp_path_factory):
    srv = SpiderProcess(tmp_path_factory.mktemp("lockmon-spider")).start()
    try:
        register(srv.url, twin.url, ["cloud-1"])
        assert requests.get(srv.url + "/vpc", params={"ConnectionName": CONN}, timeout=60).status_code == 200
        yield srv
    finally:
        srv.stop()


async def create_vpc(session: aiohttp.ClientSession, url: str, name: str) -> tuple[int, str]:
    body = {"ConnectionName": CONN, "ReqInfo": {"Name": name, "IPv4_CIDR": "10.0.0.0/16",
                                                "SubnetInfoList": [{"Name": f"{name}-sn", "IPv4_CIDR": "10.0.1.0/24"}]}}
    async with session.post(url + "/vpc", json=body) as resp:
        return resp.status, await resp.text()


async def test_monitor_sees_holders_waiters_flags_long_holds_and_no_leftovers(twin, spider, tmp_path):
    twin.admin("POST", "/faults", {"kind": "latency", "match": {"operation": "network:network:create"},
                                          "fixed": 1.0})
    names = [f"lm-vpc-{i}" for i in range(8)]
    try:
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=120)) as session:
            async with LockMonitor(spider.base, interval=0.05, hold_threshold_s=0.5, grace_s=0.3) as mon:
                await asyncio.sleep(0.2)
                results = await asyncio.gather(*(create_vpc(session, spider.url, n) for n in names),
                                               *(create_vpc(session, spider.url, "lm-same") for _ in range(4)))
            distinct, same = results[:len(names)], results[len(names):]
            assert all(status == 200 for status, _ in distinct), distinct
            assert sorted(status for status, _ in same) == [200, 500, 500, 500], same
            assert all("already exist" in text for status, text in same if status != 200)
    finally:
        twin.admin("DELETE", "/faults")
        for n in [*names, "lm-same"]:
            requests.delete(spider.url + f"/vpc/{n}", json={"ConnectionName": CONN}, timeout=60)

    s = mon.summary()
    assert s["mode"] == "sponge"
    assert s["samples"] >= 15 and s["failed_samples"] == 0
    assert s["peak_holders"] >= 5          # the distinct creates hold their own keys at once
    assert s["peak_waiters"] >= 3          # the same-name creates queue behind the first
    assert s["peak_entries"] >= 6
    assert s["family_peaks"]["vpc"]["waiters"] >= 3
    flagged = {h["key"]: h["held_ms"] for h in s["long_holds"]}
    assert f"vpc/{CONN}/lm-vpc-0" in flagged and f"vpc/{CONN}/lm-same" in flagged
    assert all(500 < ms < 10_000 for ms in flagged.values())
    assert len(flagged) == len(set(flagged))                   # each key flagged once
    assert s["longest_hold"]["ms"] >= 800 and s["longest_hold"]["key"].startswith(f"vpc/{CONN}/lm-")
    assert s["final_sample"] and s["leftovers"] == []          # nothing left once the requests ended
    assert s["family_stats"]["vpc"]["hold_ms"]["max"] >= 900
    assert s["ok"] is False                                    # long holds were flagged

    table = mon.metrics_table()
    assert len(table.rows) == s["samples"] and table.columns[:3] == ["t_s", "holders", "waiters"]
    assert max(r[table.columns.index("vpc_waiters")] for r in table.rows) == s["peak_waiters"]
    peaks = dict((r[0], r[1]) for r in mon.summary_table().rows)
    assert peaks["lock peak waiters"] == s["peak_waiters"] and peaks["entries left after the run"] == 0
    counts, hold = mon.charts()
    assert max(y for _, y in counts.series["holders"]) == s["peak_holders"]
    for chart in (counts, hold):
        png, svg = write_chart(chart, tmp_path, chart.slug)
        assert png.read_bytes().startswith(b"\x89PNG") and "<svg" in svg.read_text()
    assert int(requests.get(spider.url + f"/countvpc/{CONN}", timeout=30).json()["count"]) == 0


async def test_monitor_survives_a_server_that_does_not_answer():
    mon = LockMonitor(f"http://127.0.0.1:{free_port()}", interval=0.05, grace_s=0.0, timeout_s=0.5)
    await mon.start()
    await asyncio.sleep(0.3)
    s = await mon.stop()
    assert s["samples"] == 0 and s["failed_samples"] >= 3 and s["last_error"]
    assert s["final_sample"] is False and s["ok"] is False


def test_monitor_alone_writes_timeline_and_summary_with_basic_auth(tmp_path):
    srv = SpiderProcess(tmp_path / "root", env={"SPIDER_USERNAME": "mon", "SPIDER_PASSWORD": "pw"}).start()
    try:
        out = tmp_path / "out"
        cmd = [sys.executable, "-m", "concurrency.monitor", "--server", srv.base, "--duration", "0.6",
               "--interval", "0.1", "--grace", "0.1", "--out", str(out)]
        denied = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert denied.returncode == 2, denied.stdout + denied.stderr   # 401s: no sample succeeded
        ok = subprocess.run([*cmd, "--user", "mon", "--password", "pw"], cwd=REPO, capture_output=True,
                            text=True, timeout=60)
        assert ok.returncode == 0, ok.stdout + ok.stderr
    finally:
        srv.stop()
    doc = json.loads((out / "timeline.json").read_text())
    assert doc["summary"]["samples"] >= 4 and doc["summary"]["leftovers"] == []
    assert (out / "timeline.csv").read_text().startswith("t_s,holders,waiters,entries")
    assert "<svg" in (out / "lock-timeline.svg").read_text()
    assert "Verdict: OK" in (out / "summary.md").read_text()


def test_summarise_view_counts_per_family_and_the_longest_current_hold():
    view = {"mode": "global", "entries": [
        {"family": "vpc", "connection": "c", "name": "a", "holders": 1, "waiters": 0, "held_for_ms": 120.0},
        {"family": "vpc", "connection": "c", "name": "b", "holders": 0, "waiters": 2, "held_for_ms": 0.0},
        {"family": "sg", "connection": "c", "name": "s", "holders": 2, "waiters": 1, "held_for_ms": 900.0}]}
    s = summarise_view(view, 1.25)
    assert (s.holders, s.waiters, s.entries) == (3, 3, 3)
    assert (s.longest_hold_ms, s.longest_hold_key) == (900.0, "sg/c/s")
    assert s.families == {"vpc": {"holders": 1, "waiters": 2, "entries": 2},
                          "sg": {"holders": 2, "waiters": 1, "entries": 1}}
