"""`spider load`: the Locust templates end to end, each run a `spider load` subprocess (Locust in its own
subprocess) against a Spider subprocess — on MOCK and on a Cloud-Twin connection, in parallel and
contention mode, under Cloud-Twin throttling, and interrupted. Every run must leave the connection's
resource counts as they were and no sponge-lock entry behind."""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests

from spider_helpers import REPO, SpiderProcess, TwinSubprocess, free_port

pytestmark = pytest.mark.slow

MOCK = "mock-config01"
TWIN_CONN = "cloudtwin-cloud-1-config"
COUNT_WORDS = ("vpc", "subnet", "securitygroup", "keypair", "vm", "nlb")


def load_cmd(server: str, out: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "spider_core.cli", "load", *args, "--server", server, "--out", str(out)]


def env() -> dict[str, str]:
    e = dict(os.environ, PYTHONUNBUFFERED="1")
    e["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), e.get("PYTHONPATH", "")]))
    return e


def spider_load(server: str, out: Path, *args: str, timeout: float = 240) -> tuple[subprocess.CompletedProcess, dict]:
    proc = subprocess.run(load_cmd(server, out, *args), capture_output=True, text=True, timeout=timeout, env=env(),
                          cwd=str(REPO))
    result = out / "result.json"
    assert result.exists(), f"no result.json (rc {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
    return proc, json.loads(result.read_text())["suites"][0]


def counts(spider: SpiderProcess, conn: str) -> dict[str, int]:
    return {w: requests.get(f"{spider.url}/count{w}/{conn}", timeout=10).json()["count"] for w in COUNT_WORDS}


def lock_entries(spider: SpiderProcess) -> list[dict[str, Any]]:
    return requests.get(spider.url + "/splockinfo", params={"detail": "true"}, timeout=10).json()["entries"]


def assert_clean_pass(proc: subprocess.CompletedProcess, suite: dict, n: int) -> dict:
    """Exit 0, N requests, 0 failures, the printed summary, and the cleanup case passed."""
    figures = suite["properties"]["figures"]
    assert proc.returncode == 0, f"{proc.stdout}\n{proc.stderr}"
    assert "PASS" in proc.stdout and "ops/s" in proc.stdout and "p95 (ms)" in proc.stdout, proc.stdout
    assert figures["requests"] == n and figures["failures"] == 0, figures
    cleanup = next(c for c in suite["cases"] if c["id"] == "cleanup")
    assert cleanup["status"] == "pass", cleanup
    return figures


def assert_nothing_left(spider: SpiderProcess, conn: str) -> None:
    assert counts(spider, conn) == dict.fromkeys(COUNT_WORDS, 0)
    assert lock_entries(spider) == []


# ---------------------------------------------------------------- MOCK

@pytest.fixture(scope="module")
def mock_spider(tmp_path_factory):
    with SpiderProcess(tmp_path_factory.mktemp("load-mock")) as srv:
        yield srv


def test_vpc_create_get_list_delete_100_on_mock(mock_spider, tmp_path):
    """The issue's `spider load create mock 100 --resource vpc`, then get, list and delete."""
    for op in ("create", "get", "list", "delete"):
        out = tmp_path / op
        proc, suite = spider_load(mock_spider.base, out, op, "mock", "100", "--resource", "vpc")
        figures = assert_clean_pass(proc, suite, 100)
        assert figures["successes"] == 100 and figures["ops/s"] > 0
        assert suite["target"] == MOCK
        assert_nothing_left(mock_spider, MOCK)
        for artefact in ("report.md", "summary.md", "result.json", "junit.xml", "summary.csv", "failures.csv",
                         "latency-percentiles.svg", "locust_stats.csv", "locust_failures.csv", "locust.json",
                         "locust.html"):
            assert (out / artefact).exists(), artefact
        assert "[Locust's own HTML report](locust.html)" in (out / "report.md").read_text()
        assert "| ops/s |" in (out / "report.md").read_text()
        assert "<svg" in (out / "latency-percentiles.svg").read_text()
        if op == "create":
            assert "registered connection mock-config01" in proc.stdout, "the default MOCK connection was made"
            lock = suite["properties"]["lock_monitor"]
            assert isinstance(lock, dict) and lock["leftovers"] == [], lock


def test_contention_100_creates_of_one_name(mock_spider, tmp_path):
    proc, suite = spider_load(mock_spider.base, tmp_path, "create", "mock", "100", "--resource", "vpc",
                              "--same-name")
    figures = assert_clean_pass(proc, suite, 100)
    assert figures["successes"] == 1
    assert figures["'already exists' (expected)"] == 99
    checks = {c["name"]: c for c in suite["cases"][0]["checks"]}
    assert checks["successes (contention)"]["status"] == "pass"
    assert_nothing_left(mock_spider, MOCK)


@pytest.mark.parametrize("op,resource", [("add", "subnet"), ("remove", "sgrule"), ("status", "vm"),
                                         ("get", "nlb")])
def test_templates_with_prerequisites(mock_spider, tmp_path, op, resource):
    """Setup makes what the operation needs (VPC, SG, key pair, VMs, the resources to read or remove);
    cleanup removes all of it."""
    proc, suite = spider_load(mock_spider.base, tmp_path, op, "mock", "5", "--resource", resource)
    assert_clean_pass(proc, suite, 5)
    assert_nothing_left(mock_spider, MOCK)


def test_p95_gate_sets_the_exit_code(mock_spider, tmp_path):
    proc, suite = spider_load(mock_spider.base, tmp_path, "get", "mock", "3", "--resource", "keypair",
                              "--max-p95-ms", "0.001")
    assert proc.returncode == 1, proc.stdout
    checks = {c["name"]: c["status"] for c in suite["cases"][0]["checks"]}
    assert checks["p95"] == "fail" and checks["failure ratio"] == "pass"
    assert_nothing_left(mock_spider, MOCK)


def test_failures_are_grouped_by_message_and_fail_the_gate(mock_spider, tmp_path):
    """Five VM starts with an unknown image fail alike: one message (the run's names read <name>), count 5;
    the prerequisites (VPC, SG, key pair) are still removed."""
    proc, suite = spider_load(mock_spider.base, tmp_path, "create", "mock", "5", "--resource", "vm",
                              "--image", "no-such-image", "--spec", "mock-vmspec-01")
    assert proc.returncode == 1, proc.stdout
    [table] = [t for t in suite["tables"] if t["title"] == "Failures by message"]
    assert len(table["rows"]) == 1 and table["rows"][0][1] == 5, table
    assert "no-such-image" in table["rows"][0][0] and "load-" not in table["rows"][0][0]
    assert_nothing_left(mock_spider, MOCK)


def test_interrupted_loop_cleans_up(mock_spider, tmp_path):
    proc = subprocess.Popen(load_cmd(mock_spider.base, tmp_path, "create", "mock", "10", "--resource", "keypair",
                                     "--loop", "--duration", "60"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(), cwd=str(REPO))
    try:
        time.sleep(6)
        proc.send_signal(signal.SIGINT)
        output, _ = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, output
    assert "cleaning up" in output
    assert_nothing_left(mock_spider, MOCK)


def test_a_master_and_two_worker_processes_run_one_template(mock_spider, tmp_path):
    """`spider load --master` here, two `spider load --worker --master-host 127.0.0.1` processes as if on
    other hosts: the users run on the workers, setup, gate, cleanup and reports stay on the master,
    and the report directory has Locust's own HTML report, linked from report.md."""
    port = free_port()
    master = subprocess.Popen(load_cmd(mock_spider.base, tmp_path, "create", "mock", "6", "--resource", "vpc",
                                       "--master", "--expect-workers", "2", "--master-bind-port", str(port)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(), cwd=str(REPO))
    worker_cmd = [sys.executable, "-m", "spider_core.cli", "load", "--worker", "--master-host", "127.0.0.1",
                  "--master-port", str(port)]
    workers = [subprocess.Popen(worker_cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env(),
                                cwd=str(REPO)) for _ in range(2)]
    try:
        output, _ = master.communicate(timeout=180)
        worker_output = [w.communicate(timeout=60)[0] for w in workers]
    finally:
        for proc in (master, *workers):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert master.returncode == 0, output
    assert [w.returncode for w in workers] == [0, 0], worker_output
    suite = json.loads((tmp_path / "result.json").read_text())["suites"][0]
    figures = suite["properties"]["figures"]
    assert figures["requests"] == 6 and figures["successes"] == 6 and figures["failures"] == 0, figures
    assert suite["properties"]["workers"] == f"2 (master on 127.0.0.1:{port})"
    html = (tmp_path / "locust.html").read_text()
    assert "<html" in html.lower() and "create vpc" in html, "Locust's report of this run"
    assert "[Locust's own HTML report](locust.html)" in (tmp_path / "report.md").read_text()
    assert_nothing_left(mock_spider, MOCK)


def test_master_and_worker_command_lines_are_checked(tmp_path, capsys):
    """A worker takes no template; a master binds loopback unless told, and says what a wider bind exposes."""
    from concurrency import run

    assert run.main(["create", "mock", "5", "--worker", "--out", str(tmp_path)]) == 2
    assert "--worker takes no OP CSP N" in capsys.readouterr().err
    assert run.main(["create", "mock", "5", "--resource", "vpc", "--master", "--processes", "2"]) == 2
    assert "choose one" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == [], "nothing ran"
    parser = argparse.ArgumentParser()
    run.add_arguments(parser)
    local = parser.parse_args(["create", "mock", "5", "--resource", "vpc", "--master"])
    assert local.master_bind_host == "127.0.0.1" and run.master_warning(local) is None
    wide = parser.parse_args(["create", "mock", "5", "--resource", "vpc", "--master", "--master-bind-host", "0.0.0.0"])
    assert "no authentication and no encryption" in run.master_warning(wide)
    for args, host in ((local, "127.0.0.1"), (wide, "0.0.0.0")):
        cmd = run.locust_command(run.LoadPlan("create", "vpc", 5, "c"), args, tmp_path)
        assert cmd[cmd.index("--master-bind-host") + 1] == host and "--master" in cmd


def test_bad_template_is_refused_before_anything_runs(tmp_path):
    proc = subprocess.run(load_cmd("http://127.0.0.1:9", tmp_path, "list", "mock", "5", "--resource", "sgrule"),
                          capture_output=True, text=True, timeout=60, env=env(), cwd=str(REPO))
    assert proc.returncode == 2 and "sgrule supports create, delete" in proc.stderr


# ---------------------------------------------------------------- Cloud-Twin

@pytest.fixture(scope="module")
def twin():
    t = TwinSubprocess("--cloud", "cloud-1=openstack", time_scale=0.1).start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture(scope="module")
def twin_spider(twin, tmp_path_factory):
    root = tmp_path_factory.mktemp("load-twin")
    with SpiderProcess(root) as srv:  # Spider's default request-limit policy
        yield srv


def test_vpc_create_get_list_delete_on_cloudtwin(twin, twin_spider, tmp_path):
    for op in ("create", "get", "list", "delete"):
        proc, suite = spider_load(twin_spider.base, tmp_path / op, op, "cloudtwin", "30", "--resource", "vpc",
                                  "--twin", twin.url)
        assert_clean_pass(proc, suite, 30)
        assert suite["target"] == TWIN_CONN
        assert_nothing_left(twin_spider, TWIN_CONN)
    [cloud] = twin.admin("GET", "/state?cloud=cloud-1")["clouds"]
    objects = cloud["objects"]["RegionOne"]
    assert objects["networks"] <= 1 and objects["subnets"] <= 1, f"only the external network stays: {objects}"


def test_300_creates_under_throttling_all_succeed_by_retrying(twin, twin_spider, tmp_path):
    fault = twin.admin("POST", "/faults", {"kind": "throttle", "match": {"cloud": "cloud-1", "method": "POST"},
                                           "rate": 30, "burst": 30, "per": "all"})["fault"]
    try:
        proc, suite = spider_load(twin_spider.base, tmp_path, "create", "cloudtwin", "300", "--resource", "vpc",
                                  "--twin", twin.url, timeout=400)
    finally:
        twin.admin("DELETE", f"/faults/{fault['id']}")
    figures = assert_clean_pass(proc, suite, 300)
    assert figures["successes"] == 300
    checks = {c["name"]: c for c in suite["cases"][0]["checks"]}
    assert checks["throttling failures"]["status"] == "pass"
    assert figures["throttled answers"] > 0 and figures["throttling retries"] > 0, figures
    assert figures["calls given up"] == 0
    assert "throttling retries" in (tmp_path / "report.md").read_text()
    assert_nothing_left(twin_spider, TWIN_CONN)
