"""N VMs made through Spider on a CLOUDTWIN connection, reached with the real ``ssh`` client, and
removed through Spider again.

This is CB-Spider's user flow at scale: register a connection, create a key pair (its private key is
written to a 0600 file), a VPC, a security group with TCP 22 open, then the VMs; every VM answers SSH as
``cb-user`` with that key at its PublicIP, over the twin's host link. Before any connection the target
is checked to be routed over the twin's link (``ip route get`` says ``dev ctw...``), so nothing here
can reach a real network by mistake.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from spider_core.client import AsyncSpiderClient, SpiderAPIError

SSH_OPTS = ["-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
            "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR"]
Progress = Callable[[str], None]


class FleetError(RuntimeError):
    """The fleet could not be created or reached."""


@dataclass
class Vm:
    """One VM as Spider returned it."""

    name: str                # Spider's name
    public_ip: str
    user: str
    hostname: str = ""       # what the VM itself says (the cloud's server name), learnt over ssh
    server_id: str = ""      # the cloud's server id (Spider's IId.SystemId)


@dataclass
class Fleet:
    """The Spider resources of one run (all named ``<prefix>-...``)."""

    client: AsyncSpiderClient
    conn: str
    prefix: str
    key_file: Path
    vms: list[Vm] = field(default_factory=list)
    made: dict[str, list[str]] = field(default_factory=dict)    # resource kind -> names, for cleanup

    @property
    def by_ip(self) -> dict[str, Vm]:
        return {v.public_ip: v for v in self.vms}


async def register_connection(client: AsyncSpiderClient, twin_url: str, cloud: str, conn: str) -> None:
    """CB-Spider's registration sequence for one Cloud-Twin cloud; names that exist are reused."""
    steps: list[Callable[[], Awaitable[Any]]] = [
        lambda: client.register_driver({"DriverName": "cloudtwin-driver01", "ProviderName": "CLOUDTWIN",
                                        "DriverLibFileName": "cloudtwin-driver-v1.0.so"}),
        lambda: client.register_region({"RegionName": "cloudtwin-region", "ProviderName": "CLOUDTWIN",
                                        "KeyValueInfoList": [{"Key": "Region", "Value": "default"}]}),
        lambda: client.register_credential({"CredentialName": f"{conn}-credential", "ProviderName": "CLOUDTWIN",
                                            "KeyValueInfoList": [{"Key": "IdentityEndpoint", "Value": twin_url},
                                                                 {"Key": "DomainName", "Value": cloud},
                                                                 {"Key": "MockName", "Value": "monitoring"}]}),
        lambda: client.create_connection_config({"ConfigName": conn, "ProviderName": "CLOUDTWIN",
                                                 "DriverName": "cloudtwin-driver01",
                                                 "CredentialName": f"{conn}-credential",
                                                 "RegionName": "cloudtwin-region"}),
    ]
    for step in steps:
        try:
            await step()
        except SpiderAPIError as exc:
            if "already exist" not in exc.message:
                raise


async def routed_by_twin(ip: str) -> bool:
    """True when the host sends ``ip`` over one of the twin's links."""
    proc = await asyncio.create_subprocess_exec("ip", "route", "get", ip, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.DEVNULL)
    out, _ = await proc.communicate()
    return " dev ctw" in out.decode()


async def ssh(key: Path, user: str, ip: str, command: str, *, stdin: bytes | None = None,
              timeout: float = 30) -> tuple[int, str, str]:
    """The real ``ssh`` client: (exit code, stdout, stderr). Refuses an address the twin does not route."""
    if not await routed_by_twin(ip):
        raise FleetError(f"{ip} is not routed over the twin's host link: not connecting")
    proc = await asyncio.create_subprocess_exec(
        "ssh", "-i", str(key), *SSH_OPTS, f"{user}@{ip}", command,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        out, err = await asyncio.wait_for(proc.communicate(stdin), timeout)
    except asyncio.TimeoutError:
        proc.kill()
        await proc.wait()
        return 255, "", f"ssh timed out after {timeout:g} s"
    return proc.returncode or 0, out.decode(errors="replace"), err.decode(errors="replace")


async def create(client: AsyncSpiderClient, conn: str, prefix: str, n: int, workdir: Path, *,
                 parallel: int = 100, image: str = "ubuntu-22.04", spec: str = "m1.small",
                 progress: Progress = print, made: list[Fleet] | None = None,
                 latencies: list[float] | None = None) -> Fleet:
    """Key pair, VPC, SG (TCP 22 in) and ``n`` VMs, ``parallel`` VM creates in flight at once. The
    fleet is appended to ``made`` before the first create, so a caller can clean up after a failure;
    each VM create's seconds go to ``latencies`` (for the benchmark)."""
    fleet = Fleet(client, conn, prefix, workdir / f"{prefix}-key.pem")
    if made is not None:
        made.append(fleet)
    key = await client.create_keypair(conn, {"Name": f"{prefix}-key"})
    fleet.made["keypair"] = [f"{prefix}-key"]
    fleet.key_file.write_text(key["PrivateKey"])
    fleet.key_file.chmod(0o600)
    await client.create_vpc(conn, {"Name": f"{prefix}-vpc", "IPv4_CIDR": "10.77.0.0/16",
                                   "SubnetInfoList": [{"Name": f"{prefix}-subnet", "IPv4_CIDR": "10.77.0.0/20"}]})
    fleet.made["vpc"] = [f"{prefix}-vpc"]
    ssh_in = {"FromPort": "22", "ToPort": "22", "IPProtocol": "tcp", "Direction": "inbound", "CIDR": "0.0.0.0/0"}
    await client.create_securitygroup(conn, {"Name": f"{prefix}-sg", "VPCName": f"{prefix}-vpc",
                                             "SecurityRules": [ssh_in]})
    fleet.made["securitygroup"] = [f"{prefix}-sg"]
    names = [f"{prefix}-vm-{i:03d}" for i in range(1, n + 1)]
    fleet.made["vm"] = list(names)
    gate = asyncio.Semaphore(parallel)
    done = 0

    async def one(name: str) -> Vm:
        nonlocal done
        async with gate:
            began = time.monotonic()
            vm = await client.create_vm(conn, {"Name": name, "ImageName": image, "VMSpecName": spec,
                                               "VPCName": f"{prefix}-vpc", "SubnetName": f"{prefix}-subnet",
                                               "SecurityGroupNames": [f"{prefix}-sg"], "KeyPairName": f"{prefix}-key"})
        done += 1
        if latencies is not None:
            latencies.append(time.monotonic() - began)
        if not vm.get("PublicIP"):
            raise FleetError(f"VM {name} has no PublicIP")
        return Vm(name, vm["PublicIP"], vm.get("VMUserId") or "cb-user",
                  server_id=str((vm.get("IId") or {}).get("SystemId") or ""))

    tasks = [asyncio.ensure_future(one(name)) for name in names]
    ticker = asyncio.ensure_future(_tick(lambda: f"  created {done}/{n} VMs through Spider", progress))
    try:
        fleet.vms = list(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    finally:
        ticker.cancel()
    return fleet


async def _tick(text: Callable[[], str], progress: Progress, every: float = 1.0) -> None:
    while True:
        await asyncio.sleep(every)
        progress(text())


async def install_agents(fleet: Fleet, agent: Path, collector: tuple[str, int], *, parallel: int = 32,
                         deadline: float = 120.0, progress: Progress = print) -> dict[str, str]:
    """Copy the agent into every VM over SSH and start it detached (``setsid -f``), as a monitoring
    system installs its agents. A VM whose sshd is not up yet (Spider answers once a VM is ACTIVE with
    a PublicIP; the VM is still booting) is retried until ``deadline`` seconds have passed. Returns the
    hostname each VM reported; raises when a VM cannot be reached in time."""
    source = agent.read_bytes()
    host, port = collector
    command = (f"mkdir -p ~/.monitoring && cat > ~/.monitoring/agent.py && "
               f"setsid -f python3 ~/.monitoring/agent.py {host} {port} 1 </dev/null >/dev/null 2>&1; hostname")
    gate = asyncio.Semaphore(parallel)
    done = 0
    hostnames: dict[str, str] = {}
    give_up = time.monotonic() + deadline

    async def one(vm: Vm) -> None:
        nonlocal done
        err = ""
        pause = 0.5
        while True:
            async with gate:
                code, out, err = await ssh(fleet.key_file, vm.user, vm.public_ip, command, stdin=source)
            if code == 0:
                vm.hostname = hostnames[vm.name] = out.strip()
                done += 1
                return
            if time.monotonic() + pause > give_up:
                raise FleetError(f"agent install on {vm.name} ({vm.public_ip}) failed for {deadline:g} s: {err.strip()}")
            await asyncio.sleep(pause)
            pause = min(pause * 2, 4.0)

    ticker = asyncio.ensure_future(_tick(lambda: f"  agents installed on {done}/{len(fleet.vms)} VMs over ssh",
                                         progress))
    started = time.monotonic()
    try:
        await asyncio.gather(*(one(vm) for vm in fleet.vms))
    finally:
        ticker.cancel()
    progress(f"  agents installed on {done}/{len(fleet.vms)} VMs in {time.monotonic() - started:.1f} s")
    return hostnames


async def delete(fleet: Fleet, progress: Progress = print) -> list[str]:
    """Remove everything the fleet made through Spider, VMs first (a crashed VM too). Returns problems."""
    problems: list[str] = []
    client, conn = fleet.client, fleet.conn
    started = time.monotonic()

    async def gone(kind: str, name: str) -> None:
        try:
            await client.call(f"delete-{kind}" if kind != "vm" else "terminate-vm", name, conn=conn)
        except SpiderAPIError as exc:
            if "does not exist" not in exc.message and "not exist" not in exc.message:
                problems.append(f"{kind} {name}: {exc.message}")

    await asyncio.gather(*(gone("vm", n) for n in fleet.made.get("vm", [])))
    for kind in ("securitygroup", "vpc", "keypair"):
        for name in fleet.made.get(kind, []):
            await gone(kind, name)
    progress(f"  deleted the run's VMs, SG, VPC and key pair through Spider "
             f"in {time.monotonic() - started:.1f} s" + (f" ({len(problems)} problems)" if problems else ""))
    return problems
