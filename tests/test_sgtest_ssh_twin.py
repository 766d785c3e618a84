"""``spider sgtest --prober ssh``, CB-Spider's own method, against Cloud-Twin's VMs: inbound probes go
from this host over the twin's host link, outbound ones run on the VM over real SSH as cb-user with the
key Spider returned (``nc``, ``ping``). CB-Spider's inbound and outbound suites pass, and every cell
that both probers run observes what the netns prober observes.

Needs root, iproute2, nftables, openssh, tini, netcat-openbsd, sudo and ping (skipped with the reason on
a laptop without them; failed under SPIDERTWIN_REQUIRE_ROOT_TESTS=1, as in CI).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sgtest.cli import main as sgtest_main
from spider_helpers import SpiderProcess, TwinSubprocess, require_twin_vms
from test_cloudtwin_spider import register

CLOUD = "sshprobe-1"
TOOLS = ("nc", "sudo", "ping")


@pytest.fixture(scope="module")
def twin():
    require_twin_vms(*TOOLS)
    with TwinSubprocess("--cloud", f"{CLOUD}=openstack", "--dataplane", "netns") as t:
        yield t


@pytest.fixture(scope="module")
def spider(twin, tmp_path_factory):
    with SpiderProcess(tmp_path_factory.mktemp("sshprobe-spider")) as srv:
        register(srv.url, twin.url, [CLOUD])
        yield srv


def run(spider, twin, prober: str, suite: str, out: Path) -> dict:
    code = sgtest_main(["--server", spider.base, "--connection", f"cloudtwin-{CLOUD}-config", "--twin", twin.url,
                        "--twin-cloud", CLOUD, "--prober", prober, "--suite", suite, "--out", str(out), "--quiet"])
    doc = json.loads((out / "result.json").read_text())
    assert code == 0, (out / "summary.md").read_text()
    return doc


def cells(doc: dict) -> dict[tuple[str, str], dict]:
    return {(case["id"], cell["column"] if "column" in cell else str(i)): cell
            for case in doc["suites"][0]["sg"]["cases"] for i, cell in enumerate(case["cells"])}


@pytest.mark.parametrize("suite", ["cbspider-inbound", "cbspider-outbound"])
def test_cbspider_suites_pass_with_the_ssh_prober_as_with_netns(spider, twin, tmp_path, suite):
    ssh_doc = run(spider, twin, "ssh", suite, tmp_path / "ssh")
    assert ssh_doc["suites"][0]["sg"]["prober"] == "ssh"
    netns_doc = run(spider, twin, "netns", suite, tmp_path / "netns")
    by_ssh, by_netns = cells(ssh_doc), cells(netns_doc)
    assert by_ssh.keys() == by_netns.keys()
    ran = 0
    for key, cell in by_ssh.items():
        if cell["ran"]:
            ran += 1
            assert cell["observed"] == cell["expected"], (key, cell)
            assert cell["observed"] == by_netns[key]["observed"], (key, cell, by_netns[key])
    assert ran >= len(by_ssh) // 2, "the ssh prober runs most cells (CB-Spider's skips aside)"
