"""Nova v2.1 wire format of a server's writable sub-resources: ``metadata`` (replace, merge, one key)
and ``os-interface`` attach and detach (ports through Neutron's model)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.nova.handlers import View, interface_doc, invalid, mv, nova_of, server_of
from cloudtwin.services.nova.models import Server

# states where Nova refuses metadata changes and interface changes (task in progress)
_BUSY_FOR_INTERFACES = ("BUILD", "SHELVED", "SHELVED_OFFLOADED", "RESCUED", "VERIFY_RESIZE")


def _check_metadata(call: Call, md: Any) -> dict[str, str]:
    if not isinstance(md, dict) or not all(isinstance(k, str) and 1 <= len(k) <= 255 for k in md):
        raise invalid("metadata", md, "a map of keys of 1 to 255 characters")
    for k, v in md.items():
        if not isinstance(v, str) or len(v) > 255:
            raise invalid(f"metadata/{k}", v, "a string of at most 255 characters")
    return md


def _within_quota(call: Call, s: Server, md: dict[str, str]) -> None:
    limit = nova_of(call).quota("metadata_items", s.project_id)
    if 0 <= limit < len(md):
        raise ApiError(403, f"Quota exceeded for metadata_items: Requested {len(md)}, but already used 0 of "
                            f"{limit} metadata_items")


def _writable(call: Call, s: Server) -> None:
    if s.locked:
        raise ApiError(409, f"Instance {s.id} is locked")
    state = nova_of(call).life.attrs(s.state)
    if state.get("task_state") == "deleting" or s.state == "BUILD" and not s.host:
        raise ApiError(409, f"Cannot 'update_metadata' instance {s.id} while it is in task_state "
                            f"{state.get('task_state')}")


async def replace_metadata(call: Call) -> web.Response:
    s = server_of(call)
    md = _check_metadata(call, call.body().get("metadata") if isinstance(call.body(), dict) else None)
    _within_quota(call, s, md)
    _writable(call, s)
    s.metadata = dict(md)
    s.touch()
    return wire.json_response(200, {"metadata": dict(s.metadata)})


async def update_metadata(call: Call) -> web.Response:
    s = server_of(call)
    md = _check_metadata(call, call.body().get("metadata") if isinstance(call.body(), dict) else None)
    merged = {**s.metadata, **md}
    _within_quota(call, s, merged)
    _writable(call, s)
    s.metadata = merged
    s.touch()
    return wire.json_response(200, {"metadata": dict(s.metadata)})


async def get_metadata_item(call: Call) -> web.Response:
    s = server_of(call)
    key = call.params["key"]
    if key not in s.metadata:
        raise ApiError(404, "Metadata item was not found")
    return wire.json_response(200, {"meta": {key: s.metadata[key]}})


async def put_metadata_item(call: Call) -> web.Response:
    s = server_of(call)
    key = call.params["key"]
    body = call.body("meta")
    md = _check_metadata(call, body)
    if len(md) > 1:
        raise ApiError(400, "Request body contains too many items")
    if key not in md:
        raise ApiError(400, "Request body and URI mismatch")
    _within_quota(call, s, {**s.metadata, **md})
    _writable(call, s)
    s.metadata[key] = md[key]
    s.touch()
    return wire.json_response(200, {"meta": {key: md[key]}})


async def delete_metadata_item(call: Call) -> web.Response:
    s = server_of(call)
    key = call.params["key"]
    if key not in s.metadata:
        raise ApiError(404, "Metadata item was not found")
    _writable(call, s)
    del s.metadata[key]
    s.touch()
    return wire.json_response(204)


# ---- interfaces -----------------------------------------------------------------------------------------------

def _nova_port_error(err: ApiError, what: str) -> ApiError:
    if err.status == 404:
        return ApiError(404, what)
    if err.status == 409 and err.code == "IpAddressAlreadyAllocated":
        return ApiError(400, err.message)
    return ApiError(409 if err.status == 409 else 400, err.message)


async def attach_interface(call: Call) -> web.Response:
    s = server_of(call)
    body = call.body("interfaceAttachment", required=False)
    if set(body) - {"port_id", "net_id", "fixed_ips", "tag"} or ("tag" in body and not mv(call, 2, 49)):
        raise invalid("interfaceAttachment", body, "Additional properties are not allowed")
    port_id, net_id, fixed = body.get("port_id"), body.get("net_id"), body.get("fixed_ips")
    if port_id and net_id:
        raise ApiError(400, "Must not input both network_id and port_id")
    if fixed is not None and (not isinstance(fixed, list) or len(fixed) != 1 or not isinstance(fixed[0], dict)
                              or not isinstance(fixed[0].get("ip_address"), str)):
        raise invalid("fixed_ips", fixed, "a list of one {'ip_address': ...}")
    if fixed and not net_id:
        raise ApiError(400, "Must input network_id when request IP address")
    if s.locked:
        raise ApiError(409, f"Instance {s.id} is locked")
    nova = nova_of(call)
    if s.state in _BUSY_FOR_INTERFACES or nova.life.attrs(s.state).get("task_state"):
        raise ApiError(409, f"Cannot 'attach_interface' instance {s.id} while it is in vm_state "
                            f"{nova.life.attrs(s.state).get('vm_state')}")
    neutron = nova.region.neutron
    owner = f"compute:{s.availability_zone}"
    try:
        if port_id:
            port = neutron.get_port(s.project_id, port_id)
            if port.device_id:
                raise ApiError(409, f"Port {port_id} is still in use.")
            neutron.bind_port(port, s.id, owner)
        else:
            if not net_id:
                nets = [n for n in neutron.visible_networks(s.project_id)]
                if len(nets) != 1:
                    raise ApiError(400, "Multiple possible networks found, use a Network ID to be more specific."
                                   if nets else "No network is available for the instance.")
                net_id = nets[0].id
            port = neutron.create_port(s.project_id, net_id, ip_address=fixed[0]["ip_address"] if fixed else None,
                                       security_group_ids=list(s.security_groups) or None, device_id=s.id,
                                       device_owner=owner)
    except ApiError as err:
        if err.status in (400, 409) and err.message.startswith(("Port ", "Multiple", "No network")):
            raise
        raise _nova_port_error(err, f"Port {port_id} could not be found." if port_id else
                               f"Network {net_id} could not be found.") from None
    if nova.life.attrs(s.state).get("status") == "ACTIVE" and port.state != "ACTIVE":
        neutron.plug_port(port, s.id, owner)
    nova.record_action(s, "attach_interface", call.request_id, call.token.user_id if call.token else "", done=True)
    return wire.json_response(200, {"interfaceAttachment": interface_doc(View(call), port)})


async def detach_interface(call: Call) -> web.Response:
    s = server_of(call)
    nova = nova_of(call)
    neutron = nova.region.neutron
    port = next((p for p in neutron.ports_of_device(s.id) if p.id == call.params["port_id"]), None)
    if port is None:
        raise ApiError(404, f"Port {call.params['port_id']} is not attached")
    if s.locked:
        raise ApiError(409, f"Instance {s.id} is locked")
    if getattr(port, "created_for_device", False):
        neutron.delete_port(port.project_id, port.id)
    else:
        neutron.unbind_port(port)
    nova.record_action(s, "detach_interface", call.request_id, call.token.user_id if call.token else "", done=True)
    return wire.json_response(202)


def add_routes(r: Router) -> None:
    s = "compute"
    r.add(s, "PUT", "/v2.1/servers/{id}/metadata", replace_metadata, "compute:server_metadata:replace")
    r.add(s, "POST", "/v2.1/servers/{id}/metadata", update_metadata, "compute:server_metadata:update")
    r.add(s, "GET", "/v2.1/servers/{id}/metadata/{key}", get_metadata_item, "compute:server_metadata:get")
    r.add(s, "PUT", "/v2.1/servers/{id}/metadata/{key}", put_metadata_item, "compute:server_metadata:set")
    r.add(s, "DELETE", "/v2.1/servers/{id}/metadata/{key}", delete_metadata_item, "compute:server_metadata:delete")
    r.add(s, "POST", "/v2.1/servers/{id}/os-interface", attach_interface, "compute:interface:create")
    r.add(s, "DELETE", "/v2.1/servers/{id}/os-interface/{port_id}", detach_interface, "compute:interface:delete")
