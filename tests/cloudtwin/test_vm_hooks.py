"""The VM test hooks without root: ``GET /_twin/vms/{server}`` and ``POST /_twin/vms/{server}/exec`` on a
twin with a stand-in data plane (server ids and names, ambiguity, the data plane's refusals, bad bodies,
the admin token), and ``spider twin exec|ssh`` (argument parsing, the exec round trip, the ssh command
line)."""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from cloudtwin import cli as twin_cli
from cloudtwin import vm_cli
from cloudtwin.app import TwinServer
from cloudtwin.clouds import TwinConfig
from cloudtwin.dataplane.manager import DataPlaneError
from twin_helpers import FAST, keystone_login


class FakePlane:
    """Stands in for ``DataPlane``: VMs listed in ``running`` answer, others are refused."""

    def __init__(self) -> None:
        self.running: dict[str, str] = {}           # server id -> namespace
        self.calls: list[tuple[Any, ...]] = []
        self.raise_timeout = False

    def vm_info(self, server_id: str) -> dict[str, Any]:
        if server_id not in self.running:
            raise DataPlaneError(f"server {server_id} has no data-plane VM (not ACTIVE, or not known)")
        return {"namespace": self.running[server_id], "ssh_ready": True, "login_user": "cb-user"}

    async def exec_in_vm(self, server_id: str, argv: list[str], *, stdin: bytes | None = None,
                         timeout: float = 30.0) -> dict[str, Any]:
        self.calls.append((server_id, argv, stdin, timeout))
        if self.raise_timeout:
            raise TimeoutError()
        if server_id not in self.running:
            raise DataPlaneError(f"server {server_id} has no machine yet")
        out = " ".join(argv) + (f" <{stdin.decode()}>" if stdin else "")
        return {"exit_code": 3 if argv[0] == "false" else 0, "stdout": out + "\n", "stderr": "e\n",
                "duration_ms": 1.5}

    async def stop(self) -> None:
        pass


async def _servers(url: str, cloud: str, names: list[str]) -> list[str]:
    async with aiohttp.ClientSession() as s:
        token, _ = await keystone_login(s, url, project="p1", cloud=cloud)
        h = {"X-Auth-Token": token}
        root = f"{url}/{cloud}/RegionOne"
        async with s.post(f"{root}/network/v2.0/networks", json={"network": {"name": "n"}}, headers=h) as r:
            net = (await r.json())["network"]["id"]
        async with s.post(f"{root}/network/v2.0/subnets", headers=h,
                          json={"subnet": {"network_id": net, "cidr": "10.3.0.0/24", "ip_version": 4}}) as r:
            assert r.status == 201
        async with s.get(f"{root}/image/v2/images?name=cirros-0.6.2", headers=h) as r:
            image = (await r.json())["images"][0]["id"]
        ids = []
        for name in names:
            async with s.post(f"{root}/compute/v2.1/servers", headers=h, json={"server": {
                    "name": name, "imageRef": image, "flavorRef": "1", "networks": [{"uuid": net}]}}) as r:
                assert r.status == 202, await r.text()
                ids.append((await r.json())["server"]["id"])
        return ids


async def _req(s: aiohttp.ClientSession, method: str, url: str, body: Any = None,
               headers: dict[str, str] | None = None) -> tuple[int, Any]:
    async with s.request(method, url, json=body, headers=headers) as r:
        return r.status, await r.json()


def _msg(doc: Any) -> str:
    return str(doc["error"]["message"])


async def test_vm_routes_with_a_stand_in_data_plane(twin):
    web1, dup1 = await _servers(twin.url, "cloud-1", ["web-1", "dup"])
    (dup2,) = await _servers(twin.url, "cloud-2", ["dup"])
    base = twin.url + "/_twin/vms/"
    async with aiohttp.ClientSession() as s:
        # the data plane is off
        status, doc = await _req(s, "GET", base + web1)
        assert status == 409 and "data plane is off" in _msg(doc)
        status, doc = await _req(s, "POST", base + "web-1/exec", {"argv": ["true"]})
        assert status == 409 and "data plane is off" in _msg(doc)
        plane = FakePlane()
        plane.running[web1] = "ctw0-vm0001"
        twin.twin.dataplane = plane
        try:
            # by id and by name: the twin's view, completed by the data plane
            status, doc = await _req(s, "GET", base + web1)
            assert status == 200
            region = twin.twin.clouds["cloud-1"].regions["RegionOne"]
            ip = region.neutron.ports_of_device(web1)[0].fixed_ips[0]["ip_address"]
            assert doc["server_id"] == web1 and doc["name"] == "web-1" and doc["cloud"] == "cloud-1"
            assert doc["region"] == "RegionOne" and doc["namespace"] == "ctw0-vm0001" and doc["ssh_ready"] is True
            assert doc["login_user"] == "cb-user" and doc["addresses"] == {"fixed": [ip], "floating": []}
            assert (await _req(s, "GET", base + "web-1"))[1]["server_id"] == web1
            # a name in two clouds is ambiguous until ?cloud= says which
            status, doc = await _req(s, "GET", base + "dup")
            assert status == 409 and dup1 in _msg(doc) and dup2 in _msg(doc) and "?cloud=" in _msg(doc)
            status, doc = await _req(s, "GET", base + "dup?cloud=cloud-2")
            assert status == 409 and f"Server {dup2} (dup) has no running VM" in _msg(doc)
            assert (await _req(s, "GET", base + "nothing"))[0] == 404
            status, doc = await _req(s, "GET", base + "web-1?cloud=nope")
            assert status == 404 and "cloud 'nope' not found" in _msg(doc)
            # exec: argv, a shell string, stdin (sent as bytes), timeout
            status, doc = await _req(s, "POST", base + "web-1/exec", {"argv": ["echo", "a b"]})
            assert status == 200 and doc == {"exit_code": 0, "stdout": "echo a b\n", "stderr": "e\n", "duration_ms": 1.5}
            assert plane.calls[-1] == (web1, ["echo", "a b"], None, 30.0)
            status, doc = await _req(s, "POST", base + web1 + "/exec",
                                     {"command": "cat > /tmp/x", "stdin": "data", "timeout": 5})
            assert status == 200 and doc["stdout"] == "/bin/sh -c cat > /tmp/x <data>\n"
            assert plane.calls[-1] == (web1, ["/bin/sh", "-c", "cat > /tmp/x"], b"data", 5.0)
            assert (await _req(s, "POST", base + "web-1/exec", {"argv": ["false"]}))[1]["exit_code"] == 3
            # the data plane refuses: a server without a VM
            status, doc = await _req(s, "POST", base + dup1 + "/exec", {"argv": ["true"]})
            assert status == 409 and f"Cannot run a command in server {dup1} (dup): server {dup1} has no machine yet" \
                == _msg(doc)
            assert (await _req(s, "POST", base + "ghost/exec", {"argv": ["true"]}))[0] == 404
            plane.raise_timeout = True
            status, doc = await _req(s, "POST", base + "web-1/exec", {"argv": ["sleep", "9"], "timeout": 1})
            assert status == 504 and "did not finish in time" in _msg(doc)
            plane.raise_timeout = False
            # bad bodies: 400 with what to send, before anything runs
            calls = len(plane.calls)
            for body, why in (({"argv": ["a"], "command": "b"}, "exactly one of"), ({}, "exactly one of"),
                              ({"argv": []}, "non-empty list"), ({"argv": ["a", 1]}, "non-empty list"),
                              ({"argv": "ls"}, "non-empty list"), ({"argv": [""]}, "must not be empty"),
                              ({"command": "  "}, "non-empty string"), ({"argv": ["a\x00b"]}, "NUL"),
                              ({"argv": ["a"], "timeout": 0}, "'timeout'"), ({"argv": ["a"], "timeout": 601}, "'timeout'"),
                              ({"argv": ["a"], "timeout": "5"}, "'timeout'"), ({"argv": ["a"], "timeout": True}, "'timeout'"),
                              ({"argv": ["a"], "stdin": 5}, "'stdin'"), ({"argv": ["a"], "user": "x"}, "unknown field"),
                              (["ls"], "body:")):
                status, doc = await _req(s, "POST", base + "web-1/exec", body)
                assert status == 400 and why in _msg(doc), (body, doc)
            async with s.post(base + "web-1/exec", data=b'{"argv": ["a"], "timeout": NaN}',
                              headers={"Content-Type": "application/json"}) as r:
                assert r.status == 400 and "'timeout'" in _msg(await r.json())
            assert len(plane.calls) == calls
            # a data plane without these methods (bare namespaces): clear 409s, info from the twin
            twin.twin.dataplane = type("Bare", (), {"stop": FakePlane.stop})()
            status, doc = await _req(s, "POST", base + "web-1/exec", {"argv": ["true"]})
            assert status == 409 and "cannot run commands" in _msg(doc)
            status, doc = await _req(s, "GET", base + "web-1")
            assert status == 200 and doc["login_user"] == "cirros" and doc["ssh_ready"] is False
        finally:
            twin.twin.dataplane = None


async def test_vm_routes_need_the_admin_token():
    srv = await TwinServer(port=0, config=TwinConfig(time_scale=FAST, admin_token="s3cret")).start()
    try:
        async with aiohttp.ClientSession() as s:
            status, _ = await _req(s, "GET", srv.url + "/_twin/vms/x")
            assert status == 401
            status, _ = await _req(s, "POST", srv.url + "/_twin/vms/x/exec", {"argv": ["true"]})
            assert status == 401
            status, doc = await _req(s, "GET", srv.url + "/_twin/vms/x", headers={"X-Twin-Admin-Token": "s3cret"})
            assert status == 404
    finally:
        await srv.stop()


# ---- the CLI -----------------------------------------------------------------------------------------

def parse(argv: list[str]) -> tuple[argparse.Namespace, list[str]]:
    p = argparse.ArgumentParser(prog="spider twin")
    twin_cli.add_arguments(p)
    args = p.parse_args(argv)
    return args, (vm_cli.split_command(args) if args.twin_command else [])


def test_cli_arguments(monkeypatch):
    monkeypatch.delenv("CLOUDTWIN_ADDRESS", raising=False)
    args, cmd = parse([])
    assert args.twin_command is None and args.address == twin_cli.DEFAULT_ADDRESS      # still runs the twin
    args, cmd = parse(["exec", "vm-1", "--", "ls", "-la"])
    assert (args.twin_command, args.server, cmd, args.timeout, args.stdin) == ("exec", "vm-1", ["ls", "-la"], 30.0, None)
    # options after SERVER, a '--' inside the command, the parent's --address
    args, cmd = parse(["--address", "10.0.0.1:9000", "exec", "vm-1", "--timeout", "5", "--stdin", "-", "--",
                       "sh", "-c", "x -- y"])
    assert (args.address, args.timeout, args.stdin, cmd) == ("10.0.0.1:9000", 5.0, "-", ["sh", "-c", "x -- y"])
    args, cmd = parse(["exec", "--address", "h:1", "--in-cloud", "c2", "vm-1", "--", "true"])
    assert (args.address, args.vm_cloud, cmd) == ("h:1", "c2", ["true"])
    args, cmd = parse(["exec", "vm-1", "uname", "-a"])                 # without '--'
    assert cmd == ["uname", "-a"]
    args, cmd = parse(["ssh", "-i", "k.pem", "vm-1"])
    assert (args.twin_command, args.key, args.user, cmd) == ("ssh", "k.pem", None, [])
    args, cmd = parse(["ssh", "vm-1", "--key", "k.pem", "--user", "ubuntu", "--", "hostname"])
    assert (args.key, args.user, cmd) == ("k.pem", "ubuntu", ["hostname"])
    with pytest.raises(SystemExit):
        parse(["exec", "vm-1", "--timeout", "soon", "--", "true"])
    monkeypatch.setenv("CLOUDTWIN_ADDRESS", "0.0.0.0:7000")
    assert vm_cli.base_url(None) == "http://127.0.0.1:7000"
    assert vm_cli.base_url("[::1]:8") == "http://[::1]:8"


def test_ssh_command_line():
    info = {"server_id": "s1", "login_user": "cb-user",
            "addresses": {"fixed": ["fd00::5", "10.0.0.5"], "floating": ["198.18.0.7"]}}
    assert vm_cli.ssh_argv(info, key="k.pem", user=None, command=["hostname"]) == [
        "ssh", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
        "-i", "k.pem", "-o", "IdentitiesOnly=yes", "cb-user@198.18.0.7", "hostname"]
    fixed_only = {**info, "addresses": {"fixed": ["fd00::5", "10.0.0.5"], "floating": []}}
    assert vm_cli.ssh_argv(fixed_only, key=None, user="root", command=[])[-1] == "root@10.0.0.5"
    with pytest.raises(vm_cli.CliError, match="--user"):
        vm_cli.ssh_argv({**info, "login_user": None}, key=None, user=None, command=[])
    with pytest.raises(vm_cli.CliError, match="no IP address"):
        vm_cli.ssh_argv({**info, "addresses": {"fixed": [], "floating": []}}, key=None, user=None, command=[])


def _address(url: str) -> str:
    return url.removeprefix("http://")


def test_cli_round_trip(threaded_twin, capsys, tmp_path, monkeypatch):
    (sid,) = asyncio.run_coroutine_threadsafe(_servers(threaded_twin.url, "cloud-1", ["app-1"]),
                                              threaded_twin.loop).result(20)
    plane = FakePlane()
    plane.running[sid] = "ctw0-vm0007"
    threaded_twin.twin.dataplane = plane
    addr = _address(threaded_twin.url)
    try:
        # exec: stdout, stderr and the exit code come back
        assert twin_cli.main(["--address", addr, "exec", "app-1", "--", "echo", "hi there"]) == 0
        out = capsys.readouterr()
        assert out.out == "echo hi there\n" and out.err == "e\n"
        assert twin_cli.main(["--address", addr, "exec", "app-1", "--", "false"]) == 3
        src = tmp_path / "in.txt"
        src.write_text("from a file")
        assert twin_cli.main(["exec", "--address", addr, "--stdin", str(src), "--timeout", "7", sid, "--", "cat"]) == 0
        assert plane.calls[-1] == (sid, ["cat"], b"from a file", 7.0)
        capsys.readouterr()
        # the twin's refusals and a missing command: exit 2 with the twin's message
        assert twin_cli.main(["--address", addr, "exec", "nope", "--", "true"]) == 2
        assert "No server with the id or name 'nope'" in capsys.readouterr().err
        assert twin_cli.main(["--address", addr, "exec", "app-1"]) == 2
        assert "give the command after '--'" in capsys.readouterr().err
        # ssh: the real client's command line, from GET /_twin/vms/{server}
        key = tmp_path / "key.pem"
        key.write_text("k")
        ran: list[Any] = []
        monkeypatch.setattr(vm_cli.shutil, "which", lambda name: "/usr/bin/ssh")
        args, cmd = parse(["--address", addr, "ssh", "--key", str(key), "app-1", "--", "hostname"])
        assert vm_cli.run_ssh(args, cmd, execvp=lambda binary, argv: ran.append((binary, argv))) == 0
        ip = threaded_twin.twin.clouds["cloud-1"].regions["RegionOne"].neutron.ports_of_device(sid)[0] \
            .fixed_ips[0]["ip_address"]
        assert ran == [("/usr/bin/ssh", vm_cli.ssh_argv({"login_user": "cb-user",
                                                         "addresses": {"fixed": [ip], "floating": []}},
                                                        key=str(key), user=None, command=["hostname"]))]
        args, cmd = parse(["--address", addr, "ssh", "--key", str(tmp_path / "missing.pem"), "app-1"])
        with pytest.raises(vm_cli.CliError, match="no such file"):
            vm_cli.run_ssh(args, cmd, execvp=lambda binary, argv: ran.append(argv))
        # the installed `spider` command, end to end
        env = {**os.environ, "CLOUDTWIN_ADDRESS": addr}
        spider = str(Path(sys.executable).with_name("spider"))
        proc = subprocess.run([spider, "twin", "exec", "app-1", "--", "uname", "-n"], env=env, capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)
        assert (proc.returncode, proc.stdout) == (0, "uname -n\n"), proc.stderr
    finally:
        threaded_twin.twin.dataplane = None


def test_cli_without_a_twin(capsys):
    assert twin_cli.main(["--address", "127.0.0.1:9", "exec", "vm", "--", "true"]) == 2
    err = capsys.readouterr().err
    assert "cannot reach the twin at http://127.0.0.1:9" in err and "Traceback" not in err
