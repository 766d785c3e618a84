"""The ``spider`` command: address parsing, the loopback-without-auth rule, and ``spider demo``."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import requests

from spider_core.cli import BindAddress, parse_address
from spider_helpers import REPO, free_port


@pytest.mark.parametrize("text, host, port, loopback", [
    (None, "127.0.0.1", 1024, True),
    ("", "127.0.0.1", 1024, True),
    ("localhost", "127.0.0.1", 1024, True),
    (":3000", "127.0.0.1", 3000, True),
    ("127.0.0.1:1025", "127.0.0.1", 1025, True),
    ("[::1]:1024", "::1", 1024, True),
    ("0.0.0.0:1024", "0.0.0.0", 1024, False),
    ("10.1.2.3:80", "10.1.2.3", 80, False),
])
def test_parse_address(text, host, port, loopback):
    addr = parse_address(text)
    assert addr == BindAddress(host, port)
    assert addr.loopback is loopback


def test_bad_port_is_a_clear_error():
    with pytest.raises(SystemExit, match="port must be a number"):
        parse_address("127.0.0.1:http")
    with pytest.raises(SystemExit, match="out of range"):
        parse_address("127.0.0.1:70000")


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if k not in ("SPIDER_USERNAME", "SPIDER_PASSWORD")}
    env.update({"SPIDER_ROOT": str(tmp_path), "PYTHONPATH": str(REPO), **extra})
    return env


def test_refuses_non_loopback_without_auth(tmp_path):
    """The refusal happens before anything listens: nothing is bound on any interface."""
    proc = subprocess.run([sys.executable, "-m", "spider_core.cli", "serve", "--address", "0.0.0.0:1"],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "refusing to listen on 0.0.0.0 without authentication" in proc.stderr


def test_half_configured_auth_is_refused(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "spider_core.cli", "serve", "--address", "127.0.0.1:1"],
                          env=_env(tmp_path, SPIDER_USERNAME="only-user"), capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode != 0 and "set both SPIDER_USERNAME and SPIDER_PASSWORD" in proc.stderr


def test_demo_registers_mock_and_cloudtwin_and_shows_a_first_request(tmp_path):
    port, twin_port = free_port(), free_port()
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "spider_core.cli", "demo", "--address", f"127.0.0.1:{port}",
                                 "--twin-address", f"127.0.0.1:{twin_port}"],
                                env=_env(tmp_path), stdout=out, stderr=subprocess.STDOUT, cwd=str(REPO))
    try:
        deadline = time.monotonic() + 60
        while "Stop with Ctrl-C" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()
            time.sleep(0.2)
        text = log.read_text()
        assert "MOCK connection 'mock-config01' is ready" in text
        assert '{"ConfigName":"mock-config01","ProviderName":"MOCK"' in text
        assert '{"vpc":[]}' in text
        r = requests.get(f"http://127.0.0.1:{port}/spider/connectionconfig/mock-config01", timeout=5)
        assert r.status_code == 200 and r.json()["DriverName"] == "mock-driver01"
        # Cloud-Twin runs beside it, with CB-Spider's CLOUDTWIN registration for three clouds
        assert f"Cloud-Twin listening on http://127.0.0.1:{twin_port}" in text
        assert "cloudtwin-cloud-1-config, cloudtwin-cloud-2-config, cloudtwin-cloud-3-config" in text
        clouds = requests.get(f"http://127.0.0.1:{twin_port}/_twin/clouds", timeout=5).json()["clouds"]
        assert {c["name"]: c["profile"] for c in clouds} == {
            "cloud-1": "openstack", "cloud-2": "lean-egress", "cloud-3": "busy-csp"}
        specs = requests.get(f"http://127.0.0.1:{port}/spider/vmspec",
                             params={"ConnectionName": "cloudtwin-cloud-1-config"}, timeout=60).json()
        assert "m1.small" in {s["Name"] for s in specs["vmspec"]}
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=30) == 0  # SIGTERM is a clean stop
        finally:
            if proc.poll() is None:
                proc.kill()
    deadline = time.monotonic() + 10  # the twin child goes with it
    while time.monotonic() < deadline:
        try:
            requests.get(f"http://127.0.0.1:{twin_port}/_twin/health", timeout=1)
        except requests.ConnectionError:
            break
        time.sleep(0.2)
    else:
        raise AssertionError("demo's Cloud-Twin outlived it")


def test_twin_refuses_non_loopback_without_an_admin_token(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "spider_core.cli", "twin", "--address", "0.0.0.0:1"],
                          env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0
    assert "refusing to listen on 0.0.0.0 without an admin token" in proc.stderr


def test_twin_starts_with_clouds_scenarios_and_state(tmp_path):
    port = free_port()
    state = tmp_path / "twin.json"
    cmd = [sys.executable, "-m", "spider_core.cli", "twin", "--port", str(port), "--cloud", "edge-1=busy-csp",
           "--scenario", "region-outage", "--state", str(state), "--admin-token", "tok"]
    proc = subprocess.Popen(cmd, env=_env(tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        line = proc.stdout.readline()
        assert f"Cloud-Twin listening on http://127.0.0.1:{port}" in line and "edge-1" in line, line
        base = f"http://127.0.0.1:{port}/_twin"
        assert requests.get(base + "/faults", timeout=5).status_code == 401, "the admin token is required"
        faults = requests.get(base + "/faults", headers={"X-Twin-Admin-Token": "tok"}, timeout=5).json()["faults"]
        assert [f["source"] for f in faults] == ["scenario:region-outage"]
    finally:
        proc.terminate()
        out = proc.communicate(timeout=30)[0]
    assert proc.returncode == 0
    assert "saved" in out and state.exists(), out
    bad = subprocess.run(cmd[:4] + ["--port", str(free_port()), "--scenario", "no-such-scenario"],
                         env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "no-such-scenario" in bad.stderr
