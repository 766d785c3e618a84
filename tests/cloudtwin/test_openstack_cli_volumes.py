"""The unmodified ``openstack`` CLI (python-openstackclient) drives Cinder and boot from volume on
Cloud-Twin: volume create/list/show/delete, server add/remove volume, server create --boot-from-volume.
Every step is checked against what the CLI prints and what the twin holds."""

from __future__ import annotations

import time
from typing import Any

from twin_helpers import OpenStackCli


class Cli(OpenStackCli):
    def wait_volume(self, name: str, status: str, timeout: float = 20) -> dict[str, Any]:
        end = time.monotonic() + timeout
        while True:
            doc = self.json("volume", "show", name)
            if doc["status"] == status:
                return doc
            assert time.monotonic() < end, f"volume {name} stayed {doc['status']}, wanted {status}"
            time.sleep(0.1)


def test_openstack_cli_volumes_and_boot_from_volume(threaded_twin):
    cli = Cli(threaded_twin.url, "cli-cloud", "cli-project", in_process=True)
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
