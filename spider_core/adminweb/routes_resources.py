"""Per-connection resource pages, as CB-Spider's AdminWeb has them: VPC/subnet, security group (rules),
key pair, VM (suspend, resume, reboot, terminate) and NLB tables with create and delete; the image,
spec and region/zone lists; and the "mgmt" pages comparing the MetaDB with the CSP (mapped,
Spider-only and CSP-only resources) for these and the VM-side families of ``routes_vmside``.

Tables page on the server (``web.paginate``): the browser gets one page of rows whatever the count.
"""

from __future__ import annotations

import asyncio
from typing import Any, Awaitable, Callable

from aiohttp import web

from spider_core import errors
from spider_core.adminweb import forms
from spider_core.adminweb.web import BASE, Pager, action, field, fields, form_page, page, paginate
from spider_core.errors import SpiderError
from spider_core.model import VMStatus
from spider_core.rest.transport import spider
from spider_core.services import catalog, common, disk, keypair, myimage, nlb, publicip, security, vm, vpc
from spider_core.services.context import Spider

routes = web.RouteTableDef()

VM_ACTIONS = ("suspend", "resume", "reboot")


def conn_of(request: web.Request) -> str:
    return request.match_info["conn"]


async def paged(request: web.Request, kind: common.Kind, list_all: Callable[..., Awaitable[list[Any]]]) -> Pager:
    """One page of a resource table: page the MetaDB's names first, then fetch only that page's
    resources from the driver (a table of 10,000 VMs costs one page of driver calls). ``list_all``
    is the family's service function, called as ``list_all(spider, connection, only=names)``."""
    sp, conn = spider(request), conn_of(request)
    await sp.connection(conn)  # an unknown connection is an error, not an empty table
    rows = await sp.db.list_iids(conn, kind.rtype)
    pager = paginate(request, {r.name for r in rows}, key=str)
    infos = await list_all(sp, conn, only=set(pager.items)) if pager.items else []
    pager.items = sorted(infos, key=lambda i: i.iid.name_id)
    return pager


async def names_of(sp: Spider, conn: str, kind: common.Kind) -> list[str]:
    """The MetaDB's names of one kind on the connection, sorted: a form's choices (no driver call)."""
    return sorted(r.name for r in await sp.db.list_iids(conn, kind.rtype))


CHOICE_TIMEOUT = 10.0
CHOICES_SHOWN = 1000


async def optional(call: Awaitable[list[Any]]) -> tuple[list[Any], str]:
    """A list the page can do without (choices for a form): (items, '') or ([], why not), within
    ``CHOICE_TIMEOUT`` (a real cloud's public image list can take long; the form then takes a typed name)."""
    try:
        return await asyncio.wait_for(call, CHOICE_TIMEOUT), ""
    except SpiderError as exc:
        return [], exc.message
    except asyncio.TimeoutError:
        return [], f"no answer within {CHOICE_TIMEOUT:g} s: type a name"


async def catalogue(sp: Spider, conn: str) -> dict[str, Any]:
    """Image and spec names a VM form suggests (the first ``CHOICES_SHOWN`` of each), and why not when
    the connection cannot list them."""
    (images, image_error), (specs, spec_error) = await asyncio.gather(
        optional(catalog.list_image(sp, conn)), optional(catalog.list_spec(sp, conn)))
    image_names = sorted(i.iid.name_id or i.name for i in images)
    spec_names = sorted(s.name for s in specs)
    return {"images": image_names[:CHOICES_SHOWN], "image_error": image_error, "image_count": len(image_names),
            "specs": spec_names[:CHOICES_SHOWN], "spec_error": spec_error, "spec_count": len(spec_names)}


async def delete_each(names: list[str], what: str, delete: Callable[[str], Awaitable[Any]]) -> str:
    """Delete every checked row; report what went and what did not (one failure stops nothing)."""
    if not names:
        raise SpiderError(f"Choose at least one {what} to delete.")
    done, failed = [], []
    for name in names:
        try:
            await delete(name)
            done.append(name)
        except SpiderError as exc:
            failed.append(f"{name}: {exc.message}")
    if failed:
        raise SpiderError(f"Deleted: {', '.join(done) or 'none'}. Failed: " + "; ".join(failed))
    return f"Deleted {what}: {', '.join(done)}."


# ---- VPC and subnets -------------------------------------------------------------------------------

@routes.get(BASE + "/vpc/{conn}")
@page("vpc.html.j2")
async def vpc_page(request: web.Request) -> dict[str, Any]:
    return {"pager": await paged(request, common.VPC, vpc.list_all)}


@routes.post(BASE + "/vpc/{conn}")
@action
async def vpc_create(request: web.Request, form: dict[str, Any]) -> str:
    info = await vpc.create(spider(request), conn_of(request), forms.vpc_req(form), None)
    return f"VPC '{info.iid.name_id}' created ({info.iid.system_id})."


@routes.post(BASE + "/vpc/{conn}/subnet")
@action
async def subnet_add(request: web.Request, form: dict[str, Any]) -> str:
    req = {"Name": field(form, "Name"), "IPv4_CIDR": field(form, "IPv4_CIDR"), "Zone": field(form, "Zone")}
    await vpc.add_subnet(spider(request), conn_of(request), field(form, "VPCName"), req, None)
    return f"Subnet '{req['Name']}' added to VPC '{field(form, 'VPCName')}'."


@routes.post(BASE + "/vpc/{conn}/subnet/delete")
@action
async def subnet_remove(request: web.Request, form: dict[str, Any]) -> str:
    vpc_name, subnet_name = forms.vpc_subnet(form)
    await vpc.remove_subnet(spider(request), conn_of(request), vpc_name, subnet_name, bool(field(form, "force")))
    return f"Subnet '{subnet_name}' removed from VPC '{vpc_name}'."


# ---- security groups -------------------------------------------------------------------------------

@routes.get(BASE + "/securitygroup/{conn}")
@page("securitygroup.html.j2")
async def sg_page(request: web.Request) -> dict[str, Any]:
    sp, conn = spider(request), conn_of(request)
    pager = await paged(request, common.SG, security.list_all)
    return {"pager": pager, "vpcs": await names_of(sp, conn, common.VPC)}


@routes.post(BASE + "/securitygroup/{conn}")
@action
async def sg_create(request: web.Request, form: dict[str, Any]) -> str:
    info = await security.create(spider(request), conn_of(request), forms.sg_req(form), None)
    return f"Security group '{info.iid.name_id}' created with {len(info.rules or [])} rule(s)."


@routes.post(BASE + "/securitygroup/{conn}/rules")
@action
async def sg_rules(request: web.Request, form: dict[str, Any]) -> str:
    sg_name, verb = field(form, "SGName"), field(form, "verb")
    req = {"RuleInfoList": forms.rules(form)}
    if not req["RuleInfoList"]:
        raise SpiderError("Give a rule: direction, protocol, ports and CIDR.")
    if verb == "remove":
        await security.remove_rules(spider(request), conn_of(request), sg_name, req)
        return f"Rule removed from '{sg_name}'."
    await security.add_rules(spider(request), conn_of(request), sg_name, req)
    return f"Rule added to '{sg_name}'."


# ---- key pairs -------------------------------------------------------------------------------------

@routes.get(BASE + "/keypair/{conn}")
@page("keypair.html.j2")
async def key_page(request: web.Request) -> dict[str, Any]:
    return {"pager": await paged(request, common.KEY, keypair.list_all), "created": None}


@routes.post(BASE + "/keypair/{conn}")
@form_page("keypair.html.j2")
async def key_create(request: web.Request, form: dict[str, Any]) -> dict[str, Any]:
    """The private key is shown once, on this page (CB-Spider never returns it again)."""
    sp, conn = spider(request), conn_of(request)
    created = await keypair.create(sp, conn, {"Name": field(form, "Name")}, None)
    pager = await paged(request, common.KEY, keypair.list_all)
    return {"pager": pager, "created": created,
            "flash": ("ok", f"Key pair '{created.iid.name_id}' created. Save its private key now: "
                            "it is not shown again.")}


# ---- VMs -------------------------------------------------------------------------------------------

async def vm_status(sp: Spider, conn: str, name: str) -> str:
    try:
        return await vm.status(sp, conn, name)
    except SpiderError as exc:
        return VMStatus.NOT_EXIST.value if errors.is_not_found(exc) else VMStatus.FAILED.value


async def vm_choices(sp: Spider, conn: str) -> dict[str, Any]:
    """What the create form offers: images, specs, VPC/subnet pairs, SGs and keys of the connection."""
    subnets = await sp.db.list_iids(conn, common.SUBNET.rtype)
    return {**await catalogue(sp, conn), "subnets": sorted((r.owner_vpc, r.name) for r in subnets),
            "sgs": await names_of(sp, conn, common.SG), "keys": await names_of(sp, conn, common.KEY)}


@routes.get(BASE + "/vm/{conn}")
@page("vm.html.j2")
async def vm_page(request: web.Request) -> dict[str, Any]:
    sp, conn = spider(request), conn_of(request)
    pager, choices = await asyncio.gather(paged(request, common.VM, vm.list_all),
                                          vm_choices(sp, conn))
    statuses = await asyncio.gather(*(vm_status(sp, conn, v.iid.name_id) for v in pager.items))
    return {"pager": pager, "statuses": dict(zip((v.iid.name_id for v in pager.items), statuses)),
            "actions": VM_ACTIONS, **choices}


@routes.post(BASE + "/vm/{conn}")
@action
async def vm_create(request: web.Request, form: dict[str, Any]) -> str:
    info = await vm.start(spider(request), conn_of(request), forms.vm_req(form), None)
    return f"VM '{info.iid.name_id}' started ({info.iid.system_id}, public IP {info.public_ip or 'none'})."


@routes.post(BASE + "/vm/{conn}/control")
@action
async def vm_control(request: web.Request, form: dict[str, Any]) -> str:
    sp, conn, verb, names = spider(request), conn_of(request), field(form, "verb").lower(), fields(form, "name")
    if not names:
        raise SpiderError("Choose at least one VM.")
    if verb == "terminate":
        force = bool(field(form, "force"))
        outcome = [f"{n}: {await vm.terminate(sp, conn, n, force)}" for n in names]
    elif verb in VM_ACTIONS:
        outcome = [f"{n}: {await vm.control(sp, conn, n, verb)}" for n in names]
    else:
        raise SpiderError(f"{verb} is not a valid action!!")
    return f"{verb.capitalize()}: " + ", ".join(outcome) + "."


# ---- NLBs ------------------------------------------------------------------------------------------

@routes.get(BASE + "/nlb/{conn}")
@page("nlb.html.j2")
async def nlb_page(request: web.Request) -> dict[str, Any]:
    sp, conn = spider(request), conn_of(request)
    pager = await paged(request, common.NLB, nlb.list_all)
    return {"pager": pager, "vpcs": await names_of(sp, conn, common.VPC), "vms": await names_of(sp, conn, common.VM)}


@routes.post(BASE + "/nlb/{conn}")
@action
async def nlb_create(request: web.Request, form: dict[str, Any]) -> str:
    info = await nlb.create(spider(request), conn_of(request), forms.nlb_req(form), None)
    listener = info.listener
    return f"NLB '{info.iid.name_id}' created (listener {listener.ip or listener.dns_name}:{listener.port})."


# ---- deletes of checked rows (VPC, SG, key pair, NLB; VMs terminate through the control form) --------

def deleter(module: Any, what: str) -> Callable[[web.Request], Awaitable[web.Response]]:
    @action
    async def delete(request: web.Request, form: dict[str, Any]) -> str:
        sp, conn, force = spider(request), conn_of(request), bool(field(form, "force"))
        return await delete_each(fields(form, "name"), what, lambda n: module.delete(sp, conn, n, force))
    return delete


for _section, _module, _what in (("vpc", vpc, "VPC"), ("securitygroup", security, "security group"),
                                 ("keypair", keypair, "key pair"), ("nlb", nlb, "NLB")):
    routes.post(f"{BASE}/{_section}/{{conn}}/delete")(deleter(_module, _what))


# ---- catalogues ------------------------------------------------------------------------------------

@routes.get(BASE + "/vmimage/{conn}")
@page("vmimage.html.j2")
async def image_page(request: web.Request) -> dict[str, Any]:
    items = await catalog.list_image(spider(request), conn_of(request))
    return {"pager": paginate(request, items, lambda i: i.iid.name_id or i.name)}


@routes.get(BASE + "/vmspec/{conn}")
@page("vmspec.html.j2")
async def spec_page(request: web.Request) -> dict[str, Any]:
    items = await catalog.list_spec(spider(request), conn_of(request))
    return {"pager": paginate(request, items, lambda s: s.name)}


@routes.get(BASE + "/regionzone/{conn}")
@page("regionzone.html.j2")
async def region_zone_page(request: web.Request) -> dict[str, Any]:
    items = await catalog.list_region_zone(spider(request), conn_of(request))
    return {"pager": paginate(request, items, lambda r: r.name)}


# ---- MetaDB vs CSP ("mgmt") ------------------------------------------------------------------------

MGMT_TABS = (("vpc", "VPC"), ("securitygroup", "Security Group"), ("keypair", "KeyPair"), ("vm", "VM"),
             ("disk", "Disk"), ("myimage", "MyImage"), ("publicip", "Public IP"), ("nlb", "NLB"))
Delete = Callable[..., Awaitable[Any]]
MGMT: dict[str, tuple[common.Kind, Delete, Delete]] = {
    # section: (kind, delete a MetaDB name (with force), delete a CSP id)
    "vpc": (common.VPC, vpc.delete, vpc.delete_csp), "securitygroup": (common.SG, security.delete, security.delete_csp),
    "keypair": (common.KEY, keypair.delete, keypair.delete_csp), "vm": (common.VM, vm.terminate, vm.delete_csp),
    "disk": (common.DISK, disk.delete, disk.service.delete_csp),
    "myimage": (common.MYIMAGE, myimage.delete, myimage.service.delete_csp),
    "publicip": (common.PUBLICIP, publicip.delete, publicip.service.delete_csp),
    "nlb": (common.NLB, nlb.delete, nlb.delete_csp)}


def _mgmt(request: web.Request) -> tuple[str, common.Kind, Delete, Delete]:
    rtype = request.match_info["rtype"]
    if rtype not in MGMT:
        raise web.HTTPNotFound()
    return (rtype, *MGMT[rtype])


@routes.get(BASE + "/mgmt/{rtype}/{conn}")
@page("mgmt.html.j2")
async def mgmt_page(request: web.Request) -> dict[str, Any]:
    rtype, kind, _, _ = _mgmt(request)
    lists = await common.all_list(spider(request), conn_of(request), kind)
    return {"rtype": rtype, "type_word": kind.type_word, "lists": lists, "sections": MGMT_TABS}


@routes.post(BASE + "/mgmt/{rtype}/{conn}/delete")
@action
async def mgmt_delete(request: web.Request, form: dict[str, Any]) -> str:
    """Spider-known rows are deleted by name with force; CSP-only resources by their CSP id."""
    _, kind, delete, delete_csp = _mgmt(request)
    sp, conn = spider(request), conn_of(request)
    by_name = fields(form, "name")
    by_csp = fields(form, "csp")
    outcome = []
    if by_name:
        outcome.append(await delete_each(by_name, kind.type_word, lambda n: delete(sp, conn, n, True)))
    if by_csp:
        outcome.append(await delete_each(by_csp, f"CSP {kind.type_word}", lambda i: delete_csp(sp, conn, i)))
    if not outcome:
        raise SpiderError(f"Choose at least one {kind.type_word} to delete.")
    return " ".join(outcome)
