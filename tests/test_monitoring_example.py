"""The monitoring example (``python -m examples.monitoring``) at a small N, as CI runs it.

VMs are created through Spider on a CLOUDTWIN connection to a twin with its data plane; an agent,
installed over the real ``ssh``, reports every second to a UDP collector on the twin's host link. The
test runs the example as a user does and then checks its claims against the twin itself: the hosts
the example says went silent are exactly the servers the twin's crash fault hit, the outage really
reached the cloud, and everything made through Spider is gone afterwards.

Needs root, iproute2, nftables, openssh and tini (skipped with the reason otherwise; failed under
SPIDERTWIN_REQUIRE_ROOT_TESTS=1, as in CI).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from spider_helpers import REPO, SpiderProcess, TwinSubprocess, require_twin_vms


def run_example(*args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")]))
    return subprocess.run([sys.executable, "-m", "examples.monitoring", *args], cwd=str(REPO), env=env,
                          capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def twin():
    require_twin_vms()
    with TwinSubprocess("--dataplane", "netns") as t:
        yield t


@pytest.fixture(scope="module")
def spider(twin, tmp_path_factory):
    with SpiderProcess(tmp_path_factory.mktemp("monitoring-spider")) as srv:
        yield srv


def test_six_vms_report_an_outage_does_not_stop_them_and_exactly_the_two_crashed_go_silent(twin, spider, tmp_path):
    since = twin.admin("GET", "/events?limit=1")["last_seq"]
    out = tmp_path / "result.json"
    done = run_example("-n", "6", "--crash", "2", "--outage", "3", "--observe", "2", "--meter-every", "1",
                       "--twin", twin.url, "--spider", spider.base, "--cloud", "mon-ci", "--json", str(out),
                       "--workdir", str(tmp_path / "work"))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    assert lines[-1].startswith("monitoring PASS: 6 VMs through Spider"), lines[-1]
    assert any("hosts reported in the last" in line for line in lines), "progress while it runs"
    result = json.loads(out.read_text())
    rows = result["rows"]
    assert result["ok"] and result["hosts_seen"] == 6
    assert len({r["hostname"] for r in rows}) == 6 and all(r["reports"] >= 3 for r in rows)
    assert all(r["rx_bytes"] > 0 and r["tx_bytes"] > 0 and r["processes"] >= 3 for r in rows), \
        "each agent reports its own namespace's counters and its VM's processes"

    crash_events = twin.admin("GET", f"/events?since={since}&kind=fault.crash")["events"]
    hit = {e["detail"]["server"] for e in crash_events if e.get("cloud") == "mon-ci"}
    assert len(hit) == 2
    silent = {r["server_id"] for r in rows if not r["reporting"]}
    assert silent == hit, "exactly the servers the twin crashed stopped reporting"
    assert {r["server_id"] for r in rows if not r["running"]} == hit
    live = [r for r in rows if r["reporting"]]
    assert len(live) == 4 and all(r["memory_mib"] and r["memory_mib"] > 0 for r in live), \
        "the running VMs' cgroup memory, from the twin"

    outage_hits = twin.admin("GET", f"/events?since={since}&kind=fault.outage")["events"]
    assert any(e.get("cloud") == "mon-ci" for e in outage_hits), "the outage reached the control plane"
    assert result["outage_reporting"] == 6 and result["outage_spider_error"]

    [cloud] = twin.admin("GET", "/state?cloud=mon-ci")["clouds"]
    objects = cloud["objects"]["RegionOne"]
    assert objects["servers"] == 0 and objects["floatingips"] == 0 and objects["keypairs"] == 0, objects
    assert not [s for s in twin.admin("GET", "/dataplane")["servers"] if s["cloud"] == "mon-ci"]


def test_standalone_run_starts_and_stops_its_own_twin_and_spider(tmp_path):
    require_twin_vms()
    work = tmp_path / "work"
    done = run_example("-n", "2", "--crash", "1", "--outage", "0", "--observe", "1", "--time-scale", "0.1",
                       "--workdir", str(work))
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    stack = re.search(r"Cloud-Twin (http://127\.0\.0\.1:\d+) \(started\), Spider (http://127\.0\.0\.1:\d+)/spider "
                      r"\(started\)", done.stdout)
    assert stack, done.stdout[:500]
    assert done.stdout.strip().splitlines()[-1].startswith("monitoring PASS: 2 VMs")
    prefix = re.search(r"namespaces (ctw[0-9a-f]{4})-\*", (work / "twin.log").read_text()).group(1)
    assert prefix not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert not Path(f"/run/cloudtwin/{prefix}").exists(), "the twin it started removed its VMs"
    assert prefix not in subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    for url in stack.groups():
        with pytest.raises(requests.ConnectionError):
            requests.get(url, timeout=2)
