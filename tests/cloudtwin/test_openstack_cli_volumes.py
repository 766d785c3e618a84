"""The unmodified ``openstack`` CLI (python-openstackclient) drives Cinder and boot from volume on
Cloud-Twin: volume create/list/show/delete, server add/remove volume, server create --boot-from-volume.
Every step is checked against what the CLI prints and what the twin holds."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest


def _openstack_binary() -> str:
    found = Path(sys.executable).with_name("openstack")
    if found.exists():
        return str(found)
    path = shutil.which("openstack")
    if path is None:
        pytest.fail("python-openstackclient is a test dependency (pip install -e '.[test]'): `openstack` is missing")
    return path


class Cli:
    def __init__(self, url: str, cloud: str, project: str) -> None:
        self.binary = _openstack_binary()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
        self.env.update({"OS_AUTH_URL": f"{url}/v3", "OS_USERNAME": "admin", "OS_PASSWORD": "admin",
                         "OS_PROJECT_NAME": project, "OS_USER_DOMAIN_NAME": cloud,
                         "OS_PROJECT_DOMAIN_NAME": cloud, "OS_REGION_NAME": "RegionOne",
                         "OS_IDENTITY_API_VERSION": "3", "OS_INTERFACE": "public", "HOME": os.environ.get("HOME", "/tmp")})

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.binary, *args], env=self.env, capture_output=True, text=True, timeout=120,
                              stdin=subprocess.DEVNULL)
        if check:
            assert proc.returncode == 0, f"openstack {' '.join(args)}: {proc.stderr[-2000:]}"
        return proc

    def json(self, *args: str) -> Any:
        return json.loads(self.run(*args, "-f", "json").stdout)

    def wait_volume(self, name: str, status: str, timeout: float = 20) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            doc = self.json("volume", "show", name)
            if doc["status"] == status:
                return doc
            assert time.monotonic() < end, f"volume {name} stayed {doc['status']}, wanted {status}"
            time.sleep(0.1)


def test_openstack_cli_volumes_and_boot_from_volume(threaded_twin):
    cli = Cli(threaded_twin.url, "cli-cloud", "cli-project")
    created = cli.json("volume", "create", "--size", "2", "--description", "cli data", "cli-data")
    assert created["size"] == 2 and created["name"] == "cli-data" and created["status"] == "creating"
    shown = cli.wait_volume("cli-data", "available")
    assert shown["description"] == "cli data" and shown["type"] == "lvmdriver-1"
    assert [v["Name"] for v in cli.json("volume", "list")] == ["cli-data"]

    net = cli.json("network", "create", "cli-net")
    cli.run("subnet", "create", "--network", "cli-net", "--subnet-range", "10.44.0.0/24", "cli-subnet")
    server = cli.json("server", "create", "--flavor", "m1.small", "--image", "ubuntu-22.04",
                      "--boot-from-volume", "6", "--network", net["id"], "--wait", "cli-vm")
    assert server["status"] == "ACTIVE"
    assert "booted from volume" in server["image"]
    [root] = server["volumes_attached"]
    region = threaded_twin.twin.clouds["cli-cloud"].regions["RegionOne"]
    root_vol = threaded_twin.call(lambda: region.cinder.volumes[root["id"]])
    assert root_vol.size == 6 and root_vol.bootable and root_vol.image_metadata["image_name"] == "ubuntu-22.04"

    cli.run("server", "add", "volume", "cli-vm", "cli-data")
    attached = cli.wait_volume("cli-data", "in-use")
    assert attached["attachments"][0]["server_id"] == server["id"]
    assert attached["attachments"][0]["device"] == "/dev/vdb"
    listing = {v["Name"]: v for v in cli.json("volume", "list")}
    assert [a["server_id"] for a in listing["cli-data"]["Attached to"]] == [server["id"]]
    refused = cli.run("volume", "delete", "cli-data", check=False)
    assert refused.returncode != 0, "an attached volume cannot be deleted"

    cli.run("server", "remove", "volume", "cli-vm", "cli-data")
    assert cli.wait_volume("cli-data", "available")["attachments"] == []

    cli.run("server", "delete", "--wait", "cli-vm")
    assert cli.wait_volume(root["id"], "available")["attachments"] == [], \
        "--boot-from-volume keeps its volume (delete_on_termination false), now detached"
    cli.run("volume", "delete", "cli-data", root["id"])
    end = time.monotonic() + 20
    while cli.json("volume", "list"):
        assert time.monotonic() < end, "volume delete left volumes behind"
        time.sleep(0.1)
    assert threaded_twin.call(lambda: dict(region.cinder.volumes)) == {}
    missing = cli.run("volume", "show", "cli-data", check=False)
    assert missing.returncode != 0 and "cli-data" in missing.stderr
