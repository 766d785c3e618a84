"""Per-connection pages of the resources that hang off VMs, as CB-Spider's AdminWeb has them: Disk
(create, attach, detach, increase size, delete), MyImage (snapshot a VM, delete) and Public IP
(allocate, associate, disassociate, release).

Built like ``routes_resources``: server-paged tables over the MetaDB's names, POST forms that flash
Spider's own messages, deletes of checked rows.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from spider_core.adminweb import forms
from spider_core.adminweb.routes_resources import conn_of, deleter, names_of, paged
from spider_core.adminweb.web import BASE, action, field, page
from spider_core.errors import SpiderError
from spider_core.rest.transport import spider
from spider_core.services import common, disk, myimage, publicip

routes = web.RouteTableDef()


# ---- disks -----------------------------------------------------------------------------------------

@routes.get(BASE + "/disk/{conn}")
@page("disk.html.j2")
async def disk_page(request: web.Request) -> dict[str, Any]:
    sp, conn = spider(request), conn_of(request)
    pager = await paged(request, common.DISK, disk.list_all)
    return {"pager": pager, "disks": await names_of(sp, conn, common.DISK), "vms": await names_of(sp, conn, common.VM)}


@routes.post(BASE + "/disk/{conn}")
@action
async def disk_create(request: web.Request, form: dict[str, Any]) -> str:
    info = await disk.create(spider(request), conn_of(request), forms.disk_req(form), None)
    size = f"{info.disk_size} GB" if info.disk_size else "default size"
    return f"Disk '{info.iid.name_id}' created ({info.iid.system_id}, {info.disk_type or 'default type'}, {size})."


@routes.post(BASE + "/disk/{conn}/attach")
@action
async def disk_attach(request: web.Request, form: dict[str, Any]) -> str:
    sp, conn, name, vm_name = spider(request), conn_of(request), field(form, "DiskName"), field(form, "VMName")
    verb = field(form, "verb")
    if verb == "detach":
        await disk.detach(sp, conn, name, vm_name)
        return f"Disk '{name}' detached from VM '{vm_name}'."
    if verb != "attach":
        raise SpiderError(f"{verb} is not a valid action!!")
    await disk.attach(sp, conn, name, vm_name)
    return f"Disk '{name}' attached to VM '{vm_name}'."


@routes.post(BASE + "/disk/{conn}/size")
@action
async def disk_size(request: web.Request, form: dict[str, Any]) -> str:
    name, size = field(form, "DiskName"), field(form, "Size")
    await disk.change_size(spider(request), conn_of(request), name, size)
    return f"Disk '{name}' increased to {size} GB."


# ---- MyImages --------------------------------------------------------------------------------------

@routes.get(BASE + "/myimage/{conn}")
@page("myimage.html.j2")
async def myimage_page(request: web.Request) -> dict[str, Any]:
    sp, conn = spider(request), conn_of(request)
    pager = await paged(request, common.MYIMAGE, myimage.list_all)
    return {"pager": pager, "vms": await names_of(sp, conn, common.VM)}


@routes.post(BASE + "/myimage/{conn}")
@action
async def myimage_snapshot(request: web.Request, form: dict[str, Any]) -> str:
    req = {"Name": field(form, "Name"), "SourceVM": field(form, "SourceVM")}
    info = await myimage.snapshot(spider(request), conn_of(request), req, None)
    return f"MyImage '{info.iid.name_id}' snapshotted from VM '{req['SourceVM']}' ({info.iid.system_id})."


# ---- public IPs ------------------------------------------------------------------------------------

@routes.get(BASE + "/publicip/{conn}")
@page("publicip.html.j2")
async def publicip_page(request: web.Request) -> dict[str, Any]:
    sp, conn = spider(request), conn_of(request)
    pager = await paged(request, common.PUBLICIP, publicip.list_all)
    return {"pager": pager, "ips": await names_of(sp, conn, common.PUBLICIP),
            "vms": await names_of(sp, conn, common.VM)}


@routes.post(BASE + "/publicip/{conn}")
@action
async def publicip_allocate(request: web.Request, form: dict[str, Any]) -> str:
    info = await publicip.create(spider(request), conn_of(request), {"Name": field(form, "Name")}, None)
    return f"Public IP '{info.iid.name_id}' allocated ({info.public_ip_address or info.iid.system_id})."


@routes.post(BASE + "/publicip/{conn}/associate")
@action
async def publicip_associate(request: web.Request, form: dict[str, Any]) -> str:
    sp, conn, name, verb = spider(request), conn_of(request), field(form, "IPName"), field(form, "verb")
    if verb == "disassociate":
        await publicip.disassociate(sp, conn, name)
        return f"Public IP '{name}' disassociated."
    if verb != "associate":
        raise SpiderError(f"{verb} is not a valid action!!")
    info = await publicip.associate(sp, conn, name, {"VMName": field(form, "VMName")})
    return f"Public IP '{name}' ({info.public_ip_address}) associated with VM '{info.owned_vm.name_id}'."


for _section, _module, _what in (("disk", disk, "disk"), ("myimage", myimage, "MyImage"),
                                 ("publicip", publicip, "public IP")):
    routes.post(f"{BASE}/{_section}/{{conn}}/delete")(deleter(_module, _what))
