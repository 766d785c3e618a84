"""The unmodified ``openstack`` CLI (python-openstackclient) through the everyday commands of its
"server" chapter on Cloud-Twin: create, list, show, set/unset, the power and lifecycle actions, rebuild,
resize with confirm, shelve, rescue, lock, image create, console log, events, security groups, cold
migration, server groups, hypervisors, flavors, zones and compute quotas. Each step is checked against
what the CLI prints."""

from __future__ import annotations

import time
from typing import Any

from twin_helpers import OpenStackCli as Cli


def _wait(cli: Cli, name: str, status: str, timeout: float = 30) -> dict[str, Any]:
    end = time.monotonic() + timeout
    while True:
        doc = cli.json("server", "show", name)
        if doc["status"] == status and not doc.get("OS-EXT-STS:task_state"):
            return doc
        assert time.monotonic() < end, f"server {name} stayed {doc['status']}, wanted {status}"
        time.sleep(0.1)


def _action(cli: Cli, args: tuple[str, ...], name: str, status: str) -> dict[str, Any]:
    cli.run("server", *args, name)
    return _wait(cli, name, status)


def test_openstack_cli_server_chapter(threaded_twin):
    cli = Cli(threaded_twin.url, "cli-cloud", "admin", in_process=True)
    flavor = cli.json("flavor", "create", "--vcpus", "1", "--ram", "256", "--disk", "1", "cli.flavor")
    assert flavor["name"] == "cli.flavor" and flavor["os-flavor-access:is_public"] is True
    cli.run("flavor", "set", "--property", "hw:cpu_policy=shared", "cli.flavor")
    assert "hw:cpu_policy" in str(cli.json("flavor", "show", "cli.flavor")["properties"])
    cli.run("network", "create", "cli-net")
    cli.run("subnet", "create", "--network", "cli-net", "--subnet-range", "10.45.0.0/24", "cli-subnet")
    cli.run("security", "group", "create", "cli-web")
    group = cli.json("server", "group", "create", "--policy", "anti-affinity", "cli-group")
    assert group["policy"] == "anti-affinity"
    assert [g["Name"] for g in cli.json("server", "group", "list")] == ["cli-group"]

    server = cli.json("server", "create", "--flavor", "cli.flavor", "--image", "cirros-0.6.2", "--network",
                      "cli-net", "--hint", f"group={group['id']}", "--wait", "cli-vm")
    assert server["status"] == "ACTIVE"
    assert [s["Name"] for s in cli.json("server", "list")] == ["cli-vm"]
    cli.run("server", "set", "--property", "role=web", "cli-vm")
    assert cli.json("server", "show", "cli-vm")["properties"] == {"role": "web"}
    cli.run("server", "unset", "--property", "role", "cli-vm")
    assert cli.json("server", "show", "cli-vm")["properties"] == {}

    _action(cli, ("stop",), "cli-vm", "SHUTOFF")
    _action(cli, ("start",), "cli-vm", "ACTIVE")
    _action(cli, ("pause",), "cli-vm", "PAUSED")
    _action(cli, ("unpause",), "cli-vm", "ACTIVE")
    _action(cli, ("suspend",), "cli-vm", "SUSPENDED")
    _action(cli, ("resume",), "cli-vm", "ACTIVE")
    _action(cli, ("reboot", "--hard"), "cli-vm", "ACTIVE")
    cli.run("server", "rebuild", "--image", "cirros-0.6.2", "--wait", "cli-vm")
    cli.run("server", "resize", "--flavor", "m1.tiny", "--wait", "cli-vm")
    assert "m1.tiny" in str(_wait(cli, "cli-vm", "VERIFY_RESIZE")["flavor"])
    cli.run("server", "resize", "confirm", "cli-vm")
    _wait(cli, "cli-vm", "ACTIVE")
    before = cli.json("server", "show", "cli-vm")["OS-EXT-SRV-ATTR:host"]
    cli.run("server", "migrate", "--wait", "cli-vm")
    cli.run("server", "resize", "confirm", "cli-vm")
    assert _wait(cli, "cli-vm", "ACTIVE")["OS-EXT-SRV-ATTR:host"] != before

    _action(cli, ("shelve",), "cli-vm", "SHELVED_OFFLOADED")
    _action(cli, ("unshelve",), "cli-vm", "ACTIVE")
    _action(cli, ("rescue",), "cli-vm", "RESCUE")
    _action(cli, ("unrescue",), "cli-vm", "ACTIVE")
    cli.run("server", "lock", "cli-vm")
    assert cli.run("server", "stop", "cli-vm", check=False).returncode != 0, "a locked server refuses stop"
    cli.run("server", "unlock", "cli-vm")

    image = cli.json("server", "image", "create", "--name", "cli-snap", "--wait", "cli-vm")
    assert image["name"] == "cli-snap" and image["status"] == "active"
    assert "login:" in cli.run("console", "log", "show", "cli-vm").stdout
    events = [e["Action"] for e in cli.json("server", "event", "list", "cli-vm")]
    assert events[-1] == "create" and {"resize", "migrate", "shelve", "rescue", "createImage"} <= set(events)
    cli.run("server", "add", "security", "group", "cli-vm", "cli-web")
    assert "cli-web" in str(cli.json("server", "show", "cli-vm")["security_groups"])

    hosts = [h["Hypervisor Hostname"] for h in cli.json("hypervisor", "list")]
    assert hosts == ["nova-compute-1", "nova-compute-2"]
    zones = cli.json("availability", "zone", "list", "--compute")
    assert {z["Zone Name"] for z in zones} == {"internal", "nova"}, "an admin sees the detail, as in Nova"
    project = cli.json("project", "show", "admin")["id"]
    cli.run("quota", "set", "--instances", "7", project)
    quota = cli.json("quota", "show", "--compute", project)
    assert any(q.get("Resource") == "instances" and q.get("Limit") == 7 for q in quota) \
        if isinstance(quota, list) else quota["instances"] == 7

    cli.run("server", "delete", "--wait", "cli-vm")
    assert cli.json("server", "list") == []
    cli.run("server", "group", "delete", "cli-group")
    cli.run("flavor", "delete", "cli.flavor")
    assert "cli.flavor" not in [f["Name"] for f in cli.json("flavor", "list")]
