"""The unmodified ``openstack`` CLI on Cloud-Twin through the everyday commands of its image, volume and
network chapters that go beyond create/list/delete: image create --file / save / set / unset / add
project / member list, volume snapshot / backup / transfer request / type, availability zones, quotas
and admin network views. Every step checks what the CLI prints or what it wrote."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from twin_helpers import OpenStackCli


def wait(cli: OpenStackCli, kind: list[str], name: str, status: str, timeout: float = 20) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        doc = cli.json(*kind, "show", name)
        if doc["status"] == status:
            return doc  # type: ignore[no-any-return]
        assert time.monotonic() < end, f"{name} stayed {doc['status']}, wanted {status}"
        time.sleep(0.1)


def test_openstack_cli_image_volume_network_chapters(threaded_twin: Any, tmp_path: Path) -> None:
    cli = OpenStackCli(threaded_twin.url, "cli-store", "admin", in_process=True)
    data = tmp_path / "disk.raw"
    data.write_bytes(b"\x00\x01twin image" * 4096)
    img = cli.json("image", "create", "--file", str(data), "--disk-format", "raw", "--container-format", "bare",
                   "--property", "os_distro=debian", "--tag", "cli", "cli-image")
    assert img["status"] == "active" and img["size"] == data.stat().st_size
    saved = tmp_path / "saved.raw"
    cli.run("image", "save", "--file", str(saved), "cli-image")
    assert saved.read_bytes() == data.read_bytes()
    cli.run("image", "set", "--property", "hw_disk_bus=scsi", "--min-disk", "2", "--shared", "cli-image")
    shown = cli.json("image", "show", "cli-image")
    assert shown["min_disk"] == 2 and shown["visibility"] == "shared"
    assert shown["properties"]["hw_disk_bus"] == "scsi"
    cli.run("image", "unset", "--property", "hw_disk_bus", "cli-image")
    assert "hw_disk_bus" not in cli.json("image", "show", "cli-image")["properties"]
    friend = cli.json("project", "create", "--domain", "cli-store", "friend")
    cli.run("image", "add", "project", "cli-image", friend["id"])
    [member] = cli.json("image", "member", "list", "cli-image")
    assert member["Member ID"] == friend["id"] and member["Status"] == "pending"
    assert "cli-image" in [i["Name"] for i in cli.json("image", "list")]

    vol = cli.json("volume", "create", "--size", "1", "cli-vol")
    wait(cli, ["volume"], vol["id"], "available")
    cli.run("volume", "set", "--name", "cli-vol2", "--property", "tier=gold", vol["id"])
    cli.run("volume", "set", "--size", "2", "cli-vol2")
    assert wait(cli, ["volume"], "cli-vol2", "available")["size"] == 2
    snap = cli.json("volume", "snapshot", "create", "--volume", "cli-vol2", "cli-snap")
    wait(cli, ["volume", "snapshot"], snap["id"], "available")
    assert [s["Name"] for s in cli.json("volume", "snapshot", "list")] == ["cli-snap"]
    backup = cli.json("volume", "backup", "create", "--name", "cli-backup", "cli-vol2")
    wait(cli, ["volume", "backup"], backup["id"], "available")
    wait(cli, ["volume"], "cli-vol2", "available")
    restored = cli.json("volume", "backup", "restore", "cli-backup", "cli-vol2", "--force")
    assert restored["volume_id"] == vol["id"], restored
    wait(cli, ["volume"], "cli-vol2", "available")
    cli.run("volume", "snapshot", "delete", "cli-snap")
    vtype = cli.json("volume", "type", "create", "--private", "--property", "volume_backend_name=lvmdriver-1",
                     "cli-type")
    assert vtype["name"] == "cli-type" and vtype["is_public"] is False
    cli.run("volume", "type", "delete", "cli-type")
    end = time.monotonic() + 20
    while cli.json("volume", "snapshot", "list"):
        assert time.monotonic() < end
        time.sleep(0.1)
    request = cli.json("volume", "transfer", "request", "create", "--name", "cli-move", "cli-vol2")
    assert request["auth_key"] and request["volume_id"] == vol["id"]
    assert cli.json("volume", "show", "cli-vol2")["status"] == "awaiting-transfer"
    accepted = cli.json("volume", "transfer", "request", "accept", "--auth-key", request["auth_key"], request["id"])
    assert accepted["volume_id"] == vol["id"]
    cli.run("volume", "backup", "delete", "cli-backup")

    zones = cli.json("availability", "zone", "list", "--network", "--long")
    assert {(z["Zone Name"], z["Zone Resource"]) for z in zones} == {("nova", "network"), ("nova", "router")}
    quotas = {q["Resource"]: q["Limit"] for q in cli.json("quota", "show")}
    assert quotas["volumes"] == 10000
    agents = cli.json("network", "agent", "list")
    assert "DHCP agent" in {a["Agent Type"] for a in agents}
    net = cli.json("network", "create", "--project", friend["id"], "for-friend")
    assert net["project_id"] == friend["id"]
    cli.run("quota", "set", "--networks", "7", friend["id"])
    assert {q["Resource"]: q["Limit"] for q in cli.json("quota", "show", friend["id"])}["networks"] == 7
