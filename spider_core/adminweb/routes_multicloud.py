"""The multi-cloud "Create Resources" flow: one form creates a VPC (with a subnet), a security group, a
key pair and a VM on every chosen connection at once, and shows each step's outcome per connection.

Connections run concurrently; on one connection the steps run in order and stop at the first failure,
leaving what was made (listed in the result, deletable from the resource pages), as CB-Spider does.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field as dc_field
from typing import Any, Awaitable, Callable

from aiohttp import web

from spider_core.adminweb.routes_resources import catalogue
from spider_core.adminweb.web import BASE, field, fields, form_page, page
from spider_core.errors import SpiderError
from spider_core.rest.transport import spider
from spider_core.services import keypair, security, vm, vpc
from spider_core.services.context import Spider

routes = web.RouteTableDef()

DEFAULT_RULES = [{"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "0.0.0.0/0"},
                 {"Direction": "inbound", "IPProtocol": "ICMP", "FromPort": "-1", "ToPort": "-1", "CIDR": "0.0.0.0/0"},
                 {"Direction": "outbound", "IPProtocol": "ALL", "FromPort": "-1", "ToPort": "-1", "CIDR": "0.0.0.0/0"}]


@dataclass
class Step:
    name: str
    ok: bool
    detail: str
    seconds: float


@dataclass
class Run:
    connection: str
    steps: list[Step] = dc_field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.steps) and all(s.ok for s in self.steps) and len(self.steps) == 4


@dataclass
class Plan:
    prefix: str
    vpc_cidr: str
    subnet_cidr: str
    image: str
    spec: str

    def names(self) -> dict[str, str]:
        return {k: f"{self.prefix}-{k}" for k in ("vpc", "subnet", "sg", "key", "vm")}


async def choices(sp: Spider, conn: str) -> dict[str, Any]:
    """A connection's images and specs for the form (empty with the reason when it cannot list them)."""
    return {"name": conn, **await catalogue(sp, conn)}


@routes.get(BASE + "/createresources")
@page("createresources.html.j2")
async def form(request: web.Request) -> dict[str, Any]:
    sp = spider(request)
    configs = sorted(await sp.db.list_connections(), key=lambda c: c.config_name)
    rows = await asyncio.gather(*(choices(sp, c.config_name) for c in configs))
    providers = {c.config_name: c.provider_name for c in configs}
    return {"rows": [{**r, "provider": providers[r["name"]]} for r in rows], "runs": None}


async def step(run: Run, name: str, call: Callable[[], Awaitable[str]]) -> bool:
    started = time.perf_counter()
    try:
        detail, ok = await call(), True
    except SpiderError as exc:
        detail, ok = exc.message, False
    run.steps.append(Step(name, ok, detail, time.perf_counter() - started))
    return ok


async def create_on(sp: Spider, conn: str, plan: Plan) -> Run:
    n, run = plan.names(), Run(conn)

    async def make_vpc() -> str:
        info = await vpc.create(sp, conn, {"Name": n["vpc"], "IPv4_CIDR": plan.vpc_cidr,
                                           "SubnetInfoList": [{"Name": n["subnet"], "IPv4_CIDR": plan.subnet_cidr}]},
                                None)
        return f"{info.iid.name_id} ({info.iid.system_id})"

    async def make_sg() -> str:
        info = await security.create(sp, conn, {"Name": n["sg"], "VPCName": n["vpc"], "SecurityRules": DEFAULT_RULES},
                                     None)
        return f"{info.iid.name_id} ({info.iid.system_id}), {len(info.rules or [])} rules"

    async def make_key() -> str:
        info = await keypair.create(sp, conn, {"Name": n["key"]}, None)
        return f"{info.iid.name_id} ({info.iid.system_id})"

    async def make_vm() -> str:
        info = await vm.start(sp, conn, {"Name": n["vm"], "ImageName": plan.image, "VMSpecName": plan.spec,
                                         "VPCName": n["vpc"], "SubnetName": n["subnet"],
                                         "SecurityGroupNames": [n["sg"]], "KeyPairName": n["key"]}, None)
        return f"{info.iid.name_id} ({info.iid.system_id}), public IP {info.public_ip or 'none'}"

    for name, call in (("VPC", make_vpc), ("Security group", make_sg), ("Key pair", make_key), ("VM", make_vm)):
        if not await step(run, name, call):
            break
    return run


@routes.post(BASE + "/createresources")
@form_page("createresources.html.j2")
async def create(request: web.Request, form_data: dict[str, Any]) -> dict[str, Any]:
    sp = spider(request)
    chosen = fields(form_data, "conn")
    if not chosen:
        raise SpiderError("Choose at least one connection.")
    prefix = field(form_data, "prefix")
    if not prefix:
        raise SpiderError("Give a name prefix (resources are named <prefix>-vpc, <prefix>-sg, ...).")
    vpc_cidr = field(form_data, "vpc_cidr") or "10.0.0.0/16"
    subnet_cidr = field(form_data, "subnet_cidr") or "10.0.1.0/24"
    plans = {c: Plan(prefix, vpc_cidr, subnet_cidr, field(form_data, f"image:{c}"), field(form_data, f"spec:{c}"))
             for c in chosen}
    runs = await asyncio.gather(*(create_on(sp, c, p) for c, p in plans.items()))
    done = sum(r.ok for r in runs)
    level = "ok" if done == len(runs) else "error"
    return {"rows": [], "runs": runs, "prefix": prefix,
            "flash": (level, f"Resources created on {done} of {len(runs)} connection(s).")}
