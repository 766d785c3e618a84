"""Nova v2.1 wire format of ``POST /servers/{id}/action`` and the consoles.

Each action parses its argument, calls the model (``models`` for plain lifecycle actions,
``operations`` for the ones that make images or move servers), records an instance action and answers
as Nova does: 202 with no body for most, 200 with a body for reads (console output, remote consoles,
rescue's password), the image id (2.45+) or ``Location`` for snapshots and backups.
"""

from __future__ import annotations

import secrets
from typing import Any, Awaitable, Callable

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova import operations, vnc
from cloudtwin.services.nova.console import console_output
from cloudtwin.services.nova.handlers import (PASS_CHARS, View, floating_ip_action, invalid, mv, nova_of,
                                              server_of)
from cloudtwin.services.nova.models import NovaState, Server, ref_id

ActionFn = Callable[[Call, NovaState, Server, Any], Awaitable[web.Response | None]]
# lifecycle actions with no argument -> the instance action name Nova records
_SIMPLE = {"os-start": "start", "os-stop": "stop", "suspend": "suspend", "resume": "resume", "pause": "pause",
           "unpause": "unpause", "shelveOffload": "shelveOffload"}
_CONSOLES = {"os-getVNCConsole": ("vnc", ("novnc", "xvpvnc")), "os-getSPICEConsole": ("spice", ("spice-html5",)),
             "os-getRDPConsole": ("rdp", ("rdp-html5",)), "os-getSerialConsole": ("serial", ("serial",))}
_PROTOCOL_TYPES = {"vnc": ("novnc", "xvpvnc"), "spice": ("spice-html5",), "rdp": ("rdp-html5",),
                   "serial": ("serial",), "mks": ("webmks",)}


def _password() -> str:
    return "".join(secrets.choice(PASS_CHARS) for _ in range(12))


def _record(call: Call, s: Server, action: str, *, done: bool = False) -> None:
    assert call.token is not None
    nova_of(call).record_action(s, action, call.request_id, call.token.user_id, done=done)


def _obj(name: str, arg: Any, *, nullable: bool = True) -> dict[str, Any]:
    if arg is None and nullable:
        return {}
    if not isinstance(arg, dict):
        raise invalid(name, arg, f"{arg!r} is not of type 'object'")
    return arg


def _str(arg: dict[str, Any], key: str, *, required: bool = False, max_len: int = 255) -> str | None:
    v = arg.get(key)
    if v is None:
        if required:
            raise invalid(key, None, f"'{key}' is a required property")
        return None
    if not isinstance(v, str) or (required and not v.strip()) or len(v) > max_len:
        raise invalid(key, v, f"{v!r} is not a valid string")
    return v


def _metadata(arg: dict[str, Any], key: str = "metadata") -> dict[str, str] | None:
    md = arg.get(key)
    if md is None:
        return None
    if not isinstance(md, dict) or not all(isinstance(k, str) and isinstance(v, str) and 0 < len(k) <= 255
                                           and len(v) <= 255 for k, v in md.items()):
        raise invalid(key, md, "metadata is a map of strings (keys 1-255, values <= 255)")
    return md


# ---- lifecycle -----------------------------------------------------------------------------------------

async def _simple(call: Call, nova: NovaState, s: Server, name: str) -> None:
    call.twin.faults.zone_check(call, s.availability_zone)
    nova.action(s, name)
    _record(call, s, _SIMPLE[name])


async def _reboot(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    if not isinstance(arg, dict) or not isinstance(arg.get("type"), str) \
            or arg["type"].upper() not in ("SOFT", "HARD"):
        raise invalid("reboot/type", arg.get("type") if isinstance(arg, dict) else arg,
                      "'type' must be 'SOFT' or 'HARD'")
    call.twin.faults.zone_check(call, s.availability_zone)
    nova.action(s, "reboot_hard" if arg["type"].upper() == "HARD" else "reboot")
    _record(call, s, "reboot")


async def _lock(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    reason = None
    if arg is not None:
        body = _obj("lock", arg)
        if body and not mv(call, 2, 73):
            raise invalid("lock", arg, "Additional properties are not allowed")
        reason = _str(body, "locked_reason")
    s.locked, s.locked_reason = True, reason
    s.touch()
    _record(call, s, "lock", done=True)


async def _unlock(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    s.locked, s.locked_reason = False, None
    s.touch()
    _record(call, s, "unlock", done=True)


# ---- images --------------------------------------------------------------------------------------------

def _image_answer(call: Call, image: Any) -> web.Response:
    if image is None:
        return wire.json_response(202)
    if mv(call, 2, 45):
        return wire.json_response(202, {"image_id": image.id})
    assert call.region is not None
    return wire.json_response(202, None, {"Location": f"{View(call).root}/images/{image.id}"})


async def _create_image(call: Call, nova: NovaState, s: Server, arg: Any) -> web.Response:
    body = _obj("createImage", arg, nullable=False)
    name = _str(body, "name", required=True)
    md = _metadata(body)
    assert call.token is not None and name is not None
    image = operations.create_image(nova, s, call.token.user_id, name, md)
    _record(call, s, "createImage")
    return _image_answer(call, image)


async def _create_backup(call: Call, nova: NovaState, s: Server, arg: Any) -> web.Response:
    body = _obj("createBackup", arg, nullable=False)
    name = _str(body, "name", required=True)
    backup_type = _str(body, "backup_type", required=True)
    rotation = body.get("rotation")
    if isinstance(rotation, str) and rotation.isdigit():
        rotation = int(rotation)
    if not isinstance(rotation, int) or isinstance(rotation, bool) or rotation < 0:
        raise invalid("rotation", rotation, "must be a non-negative integer")
    assert call.token is not None and name is not None and backup_type is not None
    image = operations.create_backup(nova, s, call.token.user_id, name, backup_type, rotation, _metadata(body))
    _record(call, s, "createBackup")
    return _image_answer(call, image)


# ---- rebuild, rescue, password -------------------------------------------------------------------------

async def _rebuild(call: Call, nova: NovaState, s: Server, arg: Any) -> web.Response:
    body = _obj("rebuild", arg, nullable=False)
    image_ref = _str(body, "imageRef", required=True)
    name = _str(body, "name")
    if name is not None and not name.strip():
        raise invalid("name", name, "the name may not be blank")
    kwargs: dict[str, Any] = {}
    if "description" in body:
        if not mv(call, 2, 19):
            raise invalid("rebuild", body, "Additional properties are not allowed ('description' was unexpected)")
        kwargs["description"] = body["description"]
    if "key_name" in body:
        if not mv(call, 2, 54):
            raise invalid("rebuild", body, "Additional properties are not allowed ('key_name' was unexpected)")
        kwargs["key_name"] = body["key_name"]
    if "user_data" in body:
        if not mv(call, 2, 57):
            raise invalid("rebuild", body, "Additional properties are not allowed ('user_data' was unexpected)")
        kwargs["user_data"] = body["user_data"]
    password = body.get("adminPass") or _password()
    disk_config = body.get("OS-DCF:diskConfig")
    if disk_config is not None and disk_config not in ("MANUAL", "AUTO"):
        raise invalid("OS-DCF:diskConfig", disk_config, "'MANUAL' or 'AUTO'")
    assert image_ref is not None
    operations.rebuild(nova, s, ref_id(image_ref), name=name, metadata=_metadata(body),
                       access_ipv4=_str(body, "accessIPv4"), access_ipv6=_str(body, "accessIPv6"), **kwargs)
    if disk_config is not None:
        s.disk_config = disk_config
    _record(call, s, "rebuild")
    out = View(call).changed(s)
    out.pop("OS-EXT-SRV-ATTR:user_data", None)
    if mv(call, 2, 54):
        out["key_name"] = s.key_name
    if mv(call, 2, 57):
        out["user_data"] = s.user_data
    out["adminPass"] = password
    return wire.json_response(202, {"server": out})


async def _rescue(call: Call, nova: NovaState, s: Server, arg: Any) -> web.Response:
    body = _obj("rescue", arg)
    password = _str(body, "adminPass") or _password()
    rescue_image = _str(body, "rescue_image_ref")
    operations.rescue(nova, s, ref_id(rescue_image) if rescue_image else None)
    _record(call, s, "rescue")
    return wire.json_response(200, {"adminPass": password})


async def _unrescue(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    nova.action(s, "unrescue")
    _record(call, s, "unrescue")


async def _change_password(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    body = _obj("changePassword", arg, nullable=False)
    if not isinstance(body.get("adminPass"), str):
        raise invalid("adminPass", body.get("adminPass"), "'adminPass' is a required property")
    nova.action(s, "changePassword")
    _record(call, s, "changePassword")


# ---- moves ---------------------------------------------------------------------------------------------

async def _resize(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    body = _obj("resize", arg, nullable=False)
    ref = body.get("flavorRef")
    if not isinstance(ref, (str, int)) or isinstance(ref, bool) or not str(ref):
        raise invalid("flavorRef", ref, "'flavorRef' is a required property")
    flavor = nova.find_flavor(str(ref))
    if flavor is None:
        raise ApiError(400, f"Flavor {ref} could not be found.")
    disk_config = body.get("OS-DCF:diskConfig")
    if disk_config is not None and disk_config not in ("MANUAL", "AUTO"):
        raise invalid("OS-DCF:diskConfig", disk_config, "'MANUAL' or 'AUTO'")
    assert call.token is not None
    operations.resize(nova, s, flavor, call.token.user_id)
    if disk_config is not None:
        s.disk_config = disk_config
    _record(call, s, "resize")


async def _confirm(call: Call, nova: NovaState, s: Server, arg: Any) -> web.Response:
    operations.confirm_resize(nova, s)
    _record(call, s, "confirmResize")
    return wire.json_response(204)


async def _revert(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    operations.revert_resize(nova, s)
    _record(call, s, "revertResize")


def _host_arg(call: Call, body: dict[str, Any], since: tuple[int, int] | None) -> str | None:
    host = body.get("host")
    if host is not None and since is not None and call.microversion < since:
        raise invalid("host", host, "Additional properties are not allowed ('host' was unexpected)")
    if host is not None and not isinstance(host, str):
        raise invalid("host", host, f"{host!r} is not of type 'string'")
    return host


async def _migrate(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    body = _obj("migrate", arg)
    assert call.token is not None
    operations.migrate(nova, s, call.token.user_id, _host_arg(call, body, (2, 56)))
    _record(call, s, "migrate")


async def _live_migrate(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    body = _obj("os-migrateLive", arg, nullable=False)
    if "block_migration" not in body:
        raise invalid("os-migrateLive", body, "'block_migration' is a required property")
    bm = body["block_migration"]
    if not (isinstance(bm, bool) or (bm == "auto" and mv(call, 2, 25))):
        raise invalid("block_migration", bm, f"{bm!r} is not valid")
    assert call.token is not None
    operations.live_migrate(nova, s, call.token.user_id, _host_arg(call, body, None))
    _record(call, s, "live-migration")


async def _evacuate(call: Call, nova: NovaState, s: Server, arg: Any) -> web.Response:
    body = _obj("evacuate", arg)
    password = _str(body, "adminPass") or _password()
    assert call.token is not None
    operations.evacuate(nova, s, call.token.user_id, _host_arg(call, body, None))
    _record(call, s, "evacuate")
    if mv(call, 2, 14):
        return wire.json_response(200, None)
    return wire.json_response(200, {"adminPass": password})


async def _shelve(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    assert call.token is not None
    operations.shelve(nova, s, call.token.user_id)
    _record(call, s, "shelve")


async def _shelve_offload(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    nova.action(s, "shelveOffload")
    _record(call, s, "shelveOffload")


async def _unshelve(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    zone = host = None
    if arg is not None:
        body = _obj("unshelve", arg)
        if body and not mv(call, 2, 77):
            raise invalid("unshelve", arg, "Additional properties are not allowed")
        zone = _str(body, "availability_zone")
        host = _host_arg(call, body, (2, 91))
    operations.unshelve(nova, s, zone, host)
    _record(call, s, "unshelve")


# ---- admin -------------------------------------------------------------------------------------------

async def _reset_state(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    body = _obj("os-resetState", arg, nullable=False)
    state = body.get("state")
    if state not in ("active", "error"):
        raise invalid("state", state, f"{state!r} is not one of ['active', 'error']")
    operations.reset_state(nova, s, state)


async def _admin_noop(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    """``injectNetworkInfo`` / ``resetNetwork``: the twin's network info is always current."""


async def _crash_dump(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    if not mv(call, 2, 17):
        raise ApiError(404, "The resource could not be found.")
    if arg is not None:
        raise invalid("trigger_crash_dump", arg, "None is the only allowed value")
    if s.locked:
        raise ApiError(409, f"Instance {s.id} is locked")
    if s.state not in ("ACTIVE", "PAUSED", "RESCUED", "RESIZED", "ERROR"):
        raise ApiError(409, f"Cannot 'trigger_crash_dump' instance {s.id} while it is in vm_state "
                            f"{nova.life.attrs(s.state).get('vm_state')}")
    _record(call, s, "trigger_crash_dump", done=True)


async def _force_delete(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    nova.delete_server(s)


async def _restore(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    raise ApiError(409, f"Cannot 'restore' instance {s.id} while it is in vm_state "
                        f"{nova.life.attrs(s.state).get('vm_state')}")


# ---- security groups, floating IPs ---------------------------------------------------------------------

async def _security_group(call: Call, nova: NovaState, s: Server, arg: Any, add: bool) -> None:
    body = _obj("addSecurityGroup" if add else "removeSecurityGroup", arg, nullable=False)
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise invalid("name", name, "'name' is a required property")
    neutron = nova.region.neutron
    try:
        sid = neutron.resolve_security_groups(s.project_id, [name])[0]
    except ApiError as err:
        if err.status == 409:
            raise ApiError(409, err.message) from None
        raise ApiError(404, f"Security group {name} not found for project {s.project_id}.") from None
    ports = neutron.ports_of_device(s.id)
    current = {g for p in ports for g in p.security_groups} if ports else set(s.security_groups)
    if not add and sid not in current:
        raise ApiError(400, f"Security group {name} not associated with the instance {s.id}")
    for p in ports:
        groups = [g for g in p.security_groups if g != sid] + ([sid] if add else [])
        neutron.update_port(p.project_id, p.id, {"security_groups": list(dict.fromkeys(groups))})
    s.security_groups = [g for g in s.security_groups if g != sid] + ([sid] if add else [])
    s.touch()


async def _add_sg(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    await _security_group(call, nova, s, arg, True)


async def _remove_sg(call: Call, nova: NovaState, s: Server, arg: Any) -> None:
    await _security_group(call, nova, s, arg, False)


async def _floating(call: Call, nova: NovaState, s: Server, arg: Any, name: str) -> None:
    floating_ip_action(call, s, name, arg)


# ---- consoles --------------------------------------------------------------------------------------------

async def _console_output(call: Call, nova: NovaState, s: Server, arg: Any) -> web.Response:
    call.twin.faults.zone_check(call, s.availability_zone)
    return wire.json_response(200, {"output": await console_output(call, s, arg)})


def _console_url(call: Call, s: Server, protocol: str, kind: str) -> str:
    if kind == "novnc":
        return vnc.issue(nova_of(call), s, kind, View(call).root)
    token = secrets.token_urlsafe(16)
    root = View(call).root.split("/compute", 1)[0]
    paths = {"novnc": "vnc_auto.html", "xvpvnc": "console", "spice-html5": "spice_auto.html",
             "rdp-html5": "rdp", "serial": "serial", "webmks": "mks"}
    if protocol == "serial":
        return f"ws://127.0.0.1:6083/?token={token}"
    return f"{root}/console/{paths[kind]}?token={token}&instance={s.id}"


def _console_ready(nova: NovaState, s: Server) -> None:
    if nova.life.attrs(s.state).get("status") != "ACTIVE":
        raise ApiError(409, f"Instance {s.id} is not ready")


async def _legacy_console(call: Call, nova: NovaState, s: Server, arg: Any, action: str) -> web.Response:
    protocol, kinds = _CONSOLES[action]
    if mv(call, 2, 6) and action != "os-getSerialConsole" or protocol == "rdp":
        raise ApiError(400 if protocol == "rdp" else 404,
                       "Unavailable console type rdp-html5." if protocol == "rdp" else "The resource could not be found.")
    body = _obj(action, arg, nullable=False)
    kind = body.get("type")
    if kind not in kinds:
        raise invalid("type", kind, f"{kind!r} is not one of {list(kinds)}")
    _console_ready(nova, s)
    return wire.json_response(200, {"console": {"type": kind, "url": _console_url(call, s, protocol, kind)}})


async def remote_console(call: Call) -> web.Response:
    """``POST /servers/{id}/remote-consoles`` (2.6+)."""
    if not mv(call, 2, 6):
        raise ApiError(404, "The resource could not be found.")
    s = server_of(call)
    body = call.body("remote_console")
    protocol, kind = body.get("protocol"), body.get("type")
    protocols = dict(_PROTOCOL_TYPES)
    if not mv(call, 2, 8):
        protocols.pop("mks")
    if protocol not in protocols:
        raise invalid("protocol", protocol, f"{protocol!r} is not one of {sorted(protocols)}")
    if kind not in protocols[protocol]:
        raise invalid("type", kind, f"{kind!r} is not valid for protocol {protocol}")
    if protocol in ("rdp", "mks"):
        raise ApiError(400, f"Unavailable console type {kind}.")
    _console_ready(nova_of(call), s)
    return wire.json_response(200, {"remote_console": {"protocol": protocol, "type": kind,
                                                       "url": _console_url(call, s, protocol, kind)}})


# ---- dispatch ----------------------------------------------------------------------------------------------

def _table() -> dict[str, ActionFn]:
    t: dict[str, ActionFn] = {
        "reboot": _reboot, "lock": _lock, "unlock": _unlock, "createImage": _create_image,
        "createBackup": _create_backup, "rebuild": _rebuild, "rescue": _rescue, "unrescue": _unrescue,
        "changePassword": _change_password, "resize": _resize, "confirmResize": _confirm,
        "revertResize": _revert, "migrate": _migrate, "os-migrateLive": _live_migrate, "evacuate": _evacuate,
        "shelve": _shelve, "shelveOffload": _shelve_offload, "unshelve": _unshelve,
        "os-resetState": _reset_state, "injectNetworkInfo": _admin_noop, "resetNetwork": _admin_noop,
        "trigger_crash_dump": _crash_dump, "forceDelete": _force_delete, "restore": _restore,
        "addSecurityGroup": _add_sg, "removeSecurityGroup": _remove_sg,
        "os-getConsoleOutput": _console_output,
    }
    for name in _SIMPLE:
        if name != "shelveOffload":
            t[name] = (lambda n: lambda call, nova, s, arg: _simple(call, nova, s, n))(name)
    for name in ("addFloatingIp", "removeFloatingIp"):
        t[name] = (lambda n: lambda call, nova, s, arg: _floating(call, nova, s, arg, n))(name)
    for name in _CONSOLES:
        t[name] = (lambda n: lambda call, nova, s, arg: _legacy_console(call, nova, s, arg, n))(name)
    return t


ACTIONS = _table()


async def server_action(call: Call) -> web.Response:
    body = call.body()
    if not isinstance(body, dict) or len(body) != 1:
        raise ApiError(400, "Malformed request body: exactly one action is expected.")
    (name, arg), = body.items()
    fn = ACTIONS.get(name)
    if fn is None:
        raise ApiError(400, f"There is no such action: {name}")
    s = server_of(call)
    out = await fn(call, nova_of(call), s, arg)
    return out if out is not None else wire.json_response(202)


def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "POST", "/v2.1/servers/{id}/action", server_action, "compute:server:action")
    r.add(s, "POST", "/v2.1/servers/{id}/remote-consoles", remote_console, "compute:server:remote_console")
