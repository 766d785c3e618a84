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


def test_demo_registers_mock_and_shows_a_first_request(tmp_path):
    port = free_port()
    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "spider_core.cli", "demo", "--address", f"127.0.0.1:{port}"],
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
    finally:
        proc.terminate()
        try:
            assert proc.wait(timeout=30) == 0  # SIGTERM is a clean stop
        finally:
            if proc.poll() is None:
                proc.kill()
