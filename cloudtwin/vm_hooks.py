"""Test hooks on data-plane VMs, under the admin API: ``GET /_twin/vms/{server}`` (how to reach a VM: its
namespace, addresses, the image's login user, whether sshd is up) and ``POST /_twin/vms/{server}/exec``
(run a command inside it without SSH).

They exist so a test or a person can look inside a VM as an operator would on a hypervisor: check what
user-data did, read an agent's log, kill a process, without depending on keys, security groups or
sshd. ``{server}`` is a server id or a unique server name (``?cloud=`` narrows a name to one cloud), so
``spider twin exec web-1 -- uptime`` needs no id lookup. The data plane does the work
(``DataPlane.vm_info`` and ``DataPlane.exec_in_vm``); this module resolves the server, checks the input
and turns the data plane's refusals into clear 4xx answers.
"""

from __future__ import annotations

import inspect
import math
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call

DEFAULT_TIMEOUT = 30.0
MAX_TIMEOUT = 600.0
MAX_ARGS = 4096
MAX_STDIN = 512 * 1024
PLANE_OFF = "The data plane is off: start the twin with --dataplane netns (needs root) to run commands in VMs."


@dataclass(frozen=True)
class ExecRequest:
    argv: list[str]
    stdin: str | None
    timeout: float


def find_server(twin: Any, ref: str, cloud: str | None = None) -> tuple[Any, Any]:
    """``(region, server)`` for a server id, or else a server name unique in the twin (or in ``cloud``)."""
    clouds = list(twin.clouds.values())
    if cloud is not None:
        clouds = [c for c in clouds if c.name == cloud]
        if not clouds:
            raise ApiError(404, f"cloud '{cloud}' not found")
    named: list[tuple[Any, Any]] = []
    for c in clouds:
        for region in c.regions.values():
            found = region.nova.servers.get(ref)
            if found is not None and not found.removed:
                return region, found
            named += [(region, s) for s in region.nova.iter_servers() if s.name == ref and not s.removed]
    if not named:
        where = f" in cloud '{cloud}'" if cloud else ""
        raise ApiError(404, f"No server with the id or name '{ref}'{where}.")
    if len(named) > 1:
        places = ", ".join(f"{s.id} ({r.cloud.name}/{r.name})" for r, s in named[:10])
        raise ApiError(409, f"{len(named)} servers are named '{ref}': {places}; use the server id or ?cloud=.")
    return named[0]


def parse_exec(body: Any) -> ExecRequest:
    """``{"argv": [...]}`` or ``{"command": "sh string"}``, optional ``stdin`` (text) and ``timeout`` (s)."""
    usage = ('body: {"argv": ["uname", "-a"]} or {"command": "echo $HOSTNAME"}, optional "stdin": "text", '
             f'"timeout": seconds (default {DEFAULT_TIMEOUT:g}, at most {MAX_TIMEOUT:g})')
    if not isinstance(body, dict):
        raise ApiError(400, usage)
    unknown = sorted(set(body) - {"argv", "command", "stdin", "timeout"})
    if unknown:
        raise ApiError(400, f"unknown field(s) {', '.join(unknown)}; {usage}")
    if ("argv" in body) == ("command" in body):
        raise ApiError(400, f"give exactly one of 'argv' and 'command'; {usage}")
    if "argv" in body:
        argv = body["argv"]
        if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
            raise ApiError(400, "'argv' must be a non-empty list of strings")
        if len(argv) > MAX_ARGS:
            raise ApiError(400, f"'argv' has {len(argv)} items; at most {MAX_ARGS}")
        if not argv[0]:
            raise ApiError(400, "'argv[0]' (the program) must not be empty")
    else:
        command = body["command"]
        if not isinstance(command, str) or not command.strip():
            raise ApiError(400, "'command' must be a non-empty string (run by /bin/sh -c)")
        argv = ["/bin/sh", "-c", command]
    if any("\x00" in a for a in argv):
        raise ApiError(400, "arguments cannot contain NUL characters")
    stdin = body.get("stdin")
    if stdin is not None and not isinstance(stdin, str):
        raise ApiError(400, "'stdin' must be a string")
    if stdin is not None and len(stdin) > MAX_STDIN:
        raise ApiError(400, f"'stdin' is {len(stdin)} characters; at most {MAX_STDIN}")
    timeout = body.get("timeout", DEFAULT_TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not math.isfinite(timeout) \
            or not 0 < timeout <= MAX_TIMEOUT:
        raise ApiError(400, f"'timeout' must be a number of seconds in (0, {MAX_TIMEOUT:g}]")
    return ExecRequest(list(argv), stdin, float(timeout))


def addresses(region: Any, server: Any) -> dict[str, list[str]]:
    """``{"fixed": [...], "floating": [...]}``: the server's addresses in port order (the data plane's
    ``vm_info`` shape)."""
    neutron = region.neutron
    ports = neutron.ports_of_device(server.id)
    return {"fixed": [ip["ip_address"] for p in ports for ip in p.fixed_ips],
            "floating": [f.floating_ip_address for p in ports for f in neutron.floatingips_of_port(p.id)]}


def _login_user(region: Any, server: Any) -> str | None:
    if not server.image_id:
        return None
    image = region.glance.find(server.project_id, server.image_id)
    return getattr(image, "login_user", None) if image is not None else None


async def _maybe_await(value: Any) -> Any:
    return await value if inspect.isawaitable(value) else value


def _plane(call: Call) -> Any:
    dp = call.twin.dataplane
    if dp is None:
        raise ApiError(409, PLANE_OFF)
    return dp


def _resolve(call: Call) -> tuple[Any, Any]:
    return find_server(call.twin, call.params["server"], call.query.get("cloud"))


async def vm_info(call: Call) -> web.Response:
    """``{server_id, name, cloud, region, status, namespace, login_user, addresses, ssh_ready}``: the
    twin's view, completed (and overridden) by ``DataPlane.vm_info`` when the data plane has it."""
    from cloudtwin.dataplane.manager import DataPlaneError

    region, server = _resolve(call)
    dp = _plane(call)
    out: dict[str, Any] = {
        "server_id": server.id, "name": server.name, "cloud": region.cloud.name, "region": region.name,
        "status": region.nova.life.attrs(server.state).get("status", server.state), "namespace": None,
        "login_user": _login_user(region, server), "addresses": addresses(region, server), "ssh_ready": False}
    info = getattr(dp, "vm_info", None)
    if info is not None:
        try:
            extra = await _maybe_await(info(server.id))
        except DataPlaneError as exc:
            raise ApiError(409, f"Server {server.id} ({server.name}) has no running VM: {exc}") from None
        if isinstance(extra, dict):
            out.update(extra)
    return wire.json_response(200, out)


async def vm_exec(call: Call) -> web.Response:
    """Run ``argv`` in the VM: ``{"exit_code", "stdout", "stderr", "duration_ms"}`` from the data plane."""
    from cloudtwin.dataplane.manager import DataPlaneError

    req = parse_exec(call.body())
    region, server = _resolve(call)
    dp = _plane(call)
    run = getattr(dp, "exec_in_vm", None)
    if run is None:
        raise ApiError(409, "This data plane cannot run commands in VMs (VMs are bare network namespaces).")
    try:
        stdin = req.stdin.encode() if req.stdin is not None else None
        result = await run(server.id, req.argv, stdin=stdin, timeout=req.timeout)
    except DataPlaneError as exc:
        raise ApiError(409, f"Cannot run a command in server {server.id} ({server.name}): {exc}") from None
    except (TimeoutError, OSError) as exc:
        detail = "it did not finish in time" if isinstance(exc, TimeoutError) else (exc.strerror or str(exc))
        raise ApiError(504 if isinstance(exc, TimeoutError) else 502,
                       f"Cannot run a command in server {server.id} ({server.name}): {detail}") from None
    return wire.json_response(200, result)
