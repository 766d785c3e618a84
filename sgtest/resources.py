"""The test bed on the Spider side: CB-Spider's resources (§2), created over REST and always removed.

Only what this run created is deleted, in reverse order, with CB-Spider's patience (the SG delete is
retried while the terminated VM still holds it). A run refuses to start when a resource with one of
its names already exists on the connection: it is someone's, and a cleanup must never touch it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Awaitable, Callable

from spider_core.client import AsyncSpiderClient, SpiderAPIError
from sgtest.probers.base import VMTarget
from sgtest.rules import Rule

log = logging.getLogger("sgtest")

VPC_CIDR, SUBNET_CIDR = "192.168.0.0/16", "192.168.1.0/24"


class RunRefused(RuntimeError):
    """The run cannot start (names taken, connection unknown, no image); nothing was created."""


@dataclass(frozen=True)
class Names:
    """CB-Spider's resource names (§2) under a prefix (default ``SG-Rules-Test``)."""

    prefix: str = "SG-Rules-Test"

    @property
    def vpc(self) -> str: return f"{self.prefix}-vpc-01"
    @property
    def subnet(self) -> str: return f"{self.prefix}-subnet-01"
    @property
    def sg(self) -> str: return f"{self.prefix}-SG01"
    @property
    def keypair(self) -> str: return f"{self.prefix}-keypair-01"
    @property
    def vm(self) -> str: return f"{self.prefix}-VM-01-1"


def _names_of(listing: Any, key: str) -> set[str]:
    items = listing.get(key) if isinstance(listing, dict) else None
    return {str((i.get("IId") or {}).get("NameId", "")) for i in items or [] if isinstance(i, dict)}


def readback_rules(sg: dict[str, Any]) -> tuple[list[dict[str, str]], list[Rule], list[str]]:
    """The group's rules as read back: the raw dicts, the parsed rules, and rules the model cannot read."""
    raw = [dict(r) for r in sg.get("SecurityRules") or []]
    parsed, bad = [], []
    for r in raw:
        try:
            parsed.append(Rule.from_cbspider(r))
        except ValueError as exc:
            bad.append(f"{r}: {exc}")
    return raw, parsed, bad


def pick_image(images: list[dict[str, Any]]) -> str:
    """The first Linux image (CB-Spider's MOCK setup uses the first, ``mock-vmimage-01``)."""
    names = [str((i.get("IId") or {}).get("NameId", "")) for i in images]
    linux = [n for n in names if n and "windows" not in n.lower()]
    if not linux:
        raise RunRefused("the connection lists no usable VM image; pass --image")
    return next((n for n in linux if "ubuntu" in n.lower()), linux[0])


def pick_spec(specs: list[dict[str, Any]]) -> str:
    """The first spec with at least 1 GiB of memory (m1.tiny's 512 MiB is too small for Ubuntu)."""
    def mem(s: dict[str, Any]) -> int:
        try:
            return int(str(s.get("MemSizeMiB") or s.get("Mem") or 0))
        except ValueError:
            return 0
    named = [s for s in specs if s.get("Name")]
    if not named:
        raise RunRefused("the connection lists no VM spec; pass --spec")
    return str(next((s for s in named if mem(s) >= 1024), named[0])["Name"])


@dataclass
class TestBed:
    spider: AsyncSpiderClient
    connection: str
    names: Names
    key_dir: Path
    vm_timeout_s: float = 300.0
    created: list[tuple[str, str]] = field(default_factory=list)
    cleanup_errors: list[str] = field(default_factory=list)

    # ---- before anything exists
    async def preflight(self) -> str:
        """The connection's provider; refuses when one of our names is already in use."""
        try:
            conf = await self.spider.get_connection_config(self.connection)
        except SpiderAPIError as exc:
            raise RunRefused(f"connection '{self.connection}': {exc.message}") from None
        c = self.connection
        listings = await asyncio.gather(self.spider.list_vpc(c), self.spider.list_securitygroup(c),
                                        self.spider.list_keypair(c), self.spider.list_vm(c))
        taken = []
        for (kind, key, name), listing in zip((("VPC", "vpc", self.names.vpc),
                                               ("security group", "securitygroup", self.names.sg),
                                               ("key pair", "keypair", self.names.keypair),
                                               ("VM", "vm", self.names.vm)), listings):
            if name in _names_of(listing, key):
                taken.append(f"{kind} '{name}'")
        if taken:
            raise RunRefused(f"{', '.join(taken)} already exist(s) on connection '{c}'; sgtest never deletes "
                             f"resources it did not create. Delete them, or run with another --prefix.")
        return str(conf.get("ProviderName", ""))

    # ---- creation (each records itself for cleanup before the next step)
    async def create_vpc(self) -> None:
        await self.spider.create_vpc(self.connection, {
            "Name": self.names.vpc, "IPv4_CIDR": VPC_CIDR,
            "SubnetInfoList": [{"Name": self.names.subnet, "IPv4_CIDR": SUBNET_CIDR}]})
        self.created.append(("vpc", self.names.vpc))

    async def create_sg(self, rules: list[dict[str, str]]) -> dict[str, Any]:
        sg = await self.spider.create_securitygroup(self.connection, {
            "Name": self.names.sg, "VPCName": self.names.vpc, "SecurityRules": rules})
        self.created.append(("securitygroup", self.names.sg))
        return sg

    async def create_keypair(self) -> Path:
        key = await self.spider.create_keypair(self.connection, {"Name": self.names.keypair})
        self.created.append(("keypair", self.names.keypair))
        self.key_dir.mkdir(parents=True, exist_ok=True)
        path = self.key_dir / f"{self.names.keypair}.pem"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(str(key.get("PrivateKey", "")))
        os.chmod(path, 0o600)
        return path

    async def start_vm(self, image: str | None, spec: str | None, key_file: Path) -> VMTarget:
        c = self.connection
        if not image:
            image = pick_image((await self.spider.list_image(c)).get("image") or [])
        if not spec:
            spec = pick_spec((await self.spider.list_vm_spec(c)).get("vmspec") or [])
        try:
            await self.spider.start_vm(c, {
                "Name": self.names.vm, "ImageName": image, "VPCName": self.names.vpc,
                "SubnetName": self.names.subnet, "SecurityGroupNames": [self.names.sg],
                "VMSpecName": spec, "KeyPairName": self.names.keypair})
        finally:
            # a failed start may still have left a VM behind: always try to terminate it
            self.created.append(("vm", self.names.vm))
        return await self.wait_running(key_file)

    async def wait_running(self, key_file: Path) -> VMTarget:
        """CB-Spider's prepare: poll until Running, then until a PublicIP shows."""
        deadline = time.monotonic() + self.vm_timeout_s
        status = ""
        while time.monotonic() < deadline:
            status = str((await self.spider.get_vm_status(self.connection, self.names.vm)).get("Status", ""))
            if status == "Running":
                vm = await self.spider.get_vm(self.connection, self.names.vm)
                if vm.get("PublicIP"):
                    return VMTarget(self.names.vm, str(vm["PublicIP"]), str(vm.get("PrivateIP", "")),
                                    str(vm.get("VMUserId") or "cb-user"), str(key_file),
                                    str((vm.get("IId") or {}).get("SystemId", "")))
            elif status in ("Failed", "Terminated", "Terminating"):
                break
            await asyncio.sleep(1.0)
        raise RuntimeError(f"VM Status is not Running (last status '{status}' after waiting)")

    # ---- cleanup
    async def _retry(self, what: str, action: Callable[[], Awaitable[Any]], tries: int = 30,
                     pause: float = 2.0) -> None:
        for attempt in range(tries):
            try:
                await action()
                return
            except SpiderAPIError as exc:
                if "does not exist" in exc.message or "not found" in exc.message.lower():
                    return
                if attempt == tries - 1:
                    self.cleanup_errors.append(f"{what}: {exc.message}")
                    return
            await asyncio.sleep(pause)

    async def _vm_gone(self) -> None:
        deadline = time.monotonic() + self.vm_timeout_s
        while time.monotonic() < deadline:
            try:
                status = (await self.spider.get_vm_status(self.connection, self.names.vm)).get("Status")
            except SpiderAPIError:
                return
            if status == "Terminated":
                return
            await asyncio.sleep(0.5)

    async def cleanup_last(self, kind: str) -> None:
        """Delete the newest resource of a kind now (a suite's own group), keeping the rest."""
        for i in range(len(self.created) - 1, -1, -1):
            if self.created[i][0] == kind:
                name = self.created.pop(i)[1]
                await self._retry(f"delete {kind} '{name}'", lambda: self._deleter(kind)(name))
                return

    def _deleter(self, kind: str) -> Callable[[str], Awaitable[Any]]:
        c = self.connection
        return {"vm": lambda n: self.spider.terminate_vm(c, n),
                "securitygroup": lambda n: self.spider.delete_securitygroup(c, n),
                "keypair": lambda n: self.spider.delete_keypair(c, n),
                "vpc": lambda n: self.spider.delete_vpc(c, n)}[kind]

    async def cleanup(self) -> list[str]:
        """Delete what this run created, newest first; never raises (errors are returned)."""
        while self.created:
            kind, name = self.created.pop()
            try:
                await self._retry(f"delete {kind} '{name}'", lambda: self._deleter(kind)(name))
                if kind == "vm":
                    await self._vm_gone()
            except Exception as exc:  # keep going: the rest must still be removed
                self.cleanup_errors.append(f"delete {kind} '{name}': {exc}")
        key = self.key_dir / f"{self.names.keypair}.pem"
        if key.exists():
            key.unlink()
        return self.cleanup_errors
