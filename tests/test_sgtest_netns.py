"""sgtest with real packets: ``spider sgtest --prober netns`` through Spider (CLOUDTWIN connections)
against a Cloud-Twin running its data plane (``--dataplane netns``).

CB-Spider's inbound and outbound suites must pass on both the ``openstack`` and ``lean-egress``
profiles; the data plane's deliberately broken compilers must show up as exactly the cells they break;
nothing with the twin's prefix may remain after a run, an interrupted run, or the twin's exit.
Needs root, iproute2 and nftables: skipped with the reason otherwise, failed under
SPIDERTWIN_REQUIRE_ROOT_TESTS=1 (CI).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sgtest.cli import main as sgtest_main
from spider_helpers import REPO, SpiderProcess, TwinSubprocess, require_root_dataplane
from test_cloudtwin_spider import register

CLOUDS = {"openstack": "cloud-1", "lean-egress": "cloud-2"}


@pytest.fixture(scope="module")
def twin():
    require_root_dataplane()
    t = TwinSubprocess("--cloud", "cloud-1=openstack", "--cloud", "cloud-2=lean-egress", "--dataplane", "netns")
    t.start()
    prefix = t.admin("GET", "/dataplane")["prefix"]
    try:
        yield t
    finally:
        t.stop()
        assert leftovers(prefix) == {}, "the twin's exit must remove every namespace, link and nft table"


@pytest.fixture(scope="module")
def spider(twin, tmp_path_factory):
    srv = SpiderProcess(tmp_path_factory.mktemp("sgnetns-spider")).start()
    try:
        register(srv.url, twin.url, list(CLOUDS.values()))
        yield srv
    finally:
        srv.stop()


def leftovers(prefix: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    ns = [line.split()[0] for line in subprocess.run(["ip", "netns", "list"], capture_output=True,
                                                     text=True).stdout.splitlines() if line.startswith(prefix)]
    links = [line for line in subprocess.run(["ip", "-o", "link"], capture_output=True, text=True).stdout.splitlines()
             if prefix in line]
    tables = [line for line in subprocess.run(["nft", "list", "tables"], capture_output=True,
                                              text=True).stdout.splitlines() if prefix in line]
    for name, items in (("namespaces", ns), ("links", links), ("nft tables", tables)):
        if items:
            found[name] = items
    return found


def vm_namespaces(twin: TwinSubprocess, deadline_s: float = 20.0) -> list[dict]:
    """The data plane's VMs once deleted servers have been torn down (or the deadline passes)."""
    end = time.monotonic() + deadline_s
    while True:
        servers = twin.admin("GET", "/dataplane")["servers"]
        if not servers or time.monotonic() > end:
            return servers
        time.sleep(0.2)


def sgtest(spider, twin, cloud: str, out: Path, *extra: str) -> int:
    return sgtest_main(["--server", spider.base, "--connection", f"cloudtwin-{cloud}-config", "--twin", twin.url,
                        "--prober", "netns", "--out", str(out), "--quiet", *extra])


def rows(out: Path) -> dict[str, str]:
    """CB-Spider .out file -> {script name: row line}."""
    [path] = out.glob("cloudtwin-result-*.out")
    found = {}
    for block in path.read_text().split("\n\n"):
        lines = block.strip("\n").splitlines()
        if lines:
            found[lines[0].split("-", 1)[1].rsplit("-Test:", 1)[0]] = lines[3]
    return found


@pytest.mark.parametrize("profile", list(CLOUDS))
def test_cbspider_suites_pass_with_real_packets(spider, twin, tmp_path, profile):
    cloud = CLOUDS[profile]
    out = tmp_path / profile
    for suite in ("cbspider-inbound", "cbspider-outbound"):
        assert sgtest(spider, twin, cloud, out / suite, "--suite", suite) == 0, (out / suite / "summary.md").read_text()
        found = rows(out / suite)
        assert len(found) == 10 and not any("(X)" in r for r in found.values())
        doc = json.loads((out / suite / "result.json").read_text())
        assert doc["suites"][0]["sg"]["prober"] == "netns"
    inbound = rows(out / "cbspider-inbound")
    assert inbound["21.inbound-case-21.sh"] == (" pass / pass | fail / fail | pass / pass | pass / pass | | "
                                                "pass / pass | pass / pass | pass / pass | pass / pass |")
    outbound = rows(out / "cbspider-outbound")
    assert outbound["02.outbound-case-02.sh"] == (" pass / pass | fail / fail | skip / skip | fail / fail | | "
                                                  "fail / fail | fail / fail | skip / skip | fail / fail |")
    assert vm_namespaces(twin) == [], "the terminated VM's namespace is gone"


def test_broken_cidr_compiler_shows_exactly_case_21(spider, twin, tmp_path):
    twin.admin("POST", "/dataplane/debug", {"break": "cidr"})
    try:
        code = sgtest(spider, twin, "cloud-1", tmp_path, "--suite", "cbspider-inbound")
    finally:
        twin.admin("POST", "/dataplane/debug", {"break": None})
    assert code == 1
    found = rows(tmp_path)
    bad = {name: row for name, row in found.items() if "(X)" in row}
    assert list(bad) == ["21.inbound-case-21.sh"]
    assert bad["21.inbound-case-21.sh"].count("(X)") == 1 and " fail / pass (X) |" in bad["21.inbound-case-21.sh"]


def test_broken_stateful_compiler_fails_every_expected_pass(spider, twin, tmp_path):
    """Without established/related accept every reply is dropped: each cell expected to pass fails,
    each cell expected to fail still fails."""
    twin.admin("POST", "/dataplane/debug", {"break": "stateful"})
    try:
        code = sgtest(spider, twin, "cloud-2", tmp_path, "--suite", "cbspider-outbound", "--ready-timeout", "3")
    finally:
        twin.admin("POST", "/dataplane/debug", {"break": None})
    assert code == 1
    doc = json.loads((tmp_path / "result.json").read_text())
    for case in doc["suites"][0]["sg"]["cases"]:
        for cell in case["cells"]:
            x = cell["ran"] and cell["observed"] != cell["expected"]
            assert x == (cell["expected"] == "pass"), (case["id"], cell)
            assert cell["model"] == cell["expected"], "the API holds the right rules: only the data plane is broken"
    assert " pass / fail (X) |" in rows(tmp_path)["01.outbound-case-01.sh"]


def test_interrupted_run_cleans_up_everything(spider, twin, tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen([sys.executable, "-m", "spider_core.cli", "sgtest", "--server", spider.base,
                             "--connection", "cloudtwin-cloud-1-config", "--twin", twin.url, "--prober", "netns",
                             "--suite", "generated", "--out", str(tmp_path)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:  # interrupt once the VM exists and cases are running
        seen.append(line)
        if line.strip().startswith("g005"):
            break
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    assert proc.returncode == 130, "".join(seen) + rest
    q = {"ConnectionName": "cloudtwin-cloud-1-config"}
    for kind in ("vm", "securitygroup", "keypair", "vpc"):
        listing = requests.get(f"{spider.url}/{kind}", params=q, timeout=30).json()[kind]
        assert not [i for i in listing if i["IId"]["NameId"].startswith("SG-Rules-Test")], kind
    assert vm_namespaces(twin) == [], "no VM namespace after the interrupted run"
    assert (tmp_path / "result.json").exists(), "partial results are still reported"
