"""System routes: banner, version, health, lock views, call log, destroy, AnyCall, capability."""

from __future__ import annotations

import asyncio

from typing import Any

from aiohttp import web

from spider_core import __version__, wire
from spider_core.calllog import call_log
from spider_core.cluster_view import cluster_view, info_strings
from spider_core.errors import SpiderError
from spider_core.rest.contract import api
from spider_core.rest.transport import bind, conn_name, message, path, query, reply, req_info, spider
from spider_core.services import system

routes = web.RouteTableDef()


@routes.get("/spider/endpointinfo")
@api(reply=str, text="text/plain", connection=False)
async def endpoint_info(request: web.Request) -> web.Response:
    base = f"http://{request.host}/spider"
    text = ("\n  <CB-Spider> Multi-Cloud Unified Interface Framework >> One-Code, Multi-Cloud\n"
            f"     - REST API: {base}\n     - Health: {base}/readyz\n     - Version: {base}/ver\n")
    return web.Response(text=text, content_type="text/plain")


@routes.get("/spider/version")
@routes.get("/spider/ver")
@api(reply={"Version": str}, connection=False)
async def version(request: web.Request) -> web.Response:
    return reply(request, {"Version": f"CB-Spider spidertwin-v{__version__}"})


@routes.get("/spider/healthcheck")
@routes.get("/spider/health")
@routes.get("/spider/ping")
@api(reply=wire.MESSAGE, connection=False)
async def health(request: web.Request) -> web.Response:
    try:
        await spider(request).db.ping()
    except Exception as exc:  # noqa: BLE001 - reported, as CB-Spider does, with 503
        return message(request, f"MetaDB is not available: {exc}", 503)
    return reply(request, {"message": "CB-Spider is ready"})


@routes.get("/spider/healthz")
@api(reply={"message": str, "phase": str}, connection=False)
async def healthz(request: web.Request) -> web.Response:
    """Alive: the process answers (under overload and while draining too; no MetaDB round trip)."""
    return reply(request, {"message": "alive", "phase": spider(request).phase})


@routes.get("/spider/readyz")
@api(reply=wire.MESSAGE, connection=False)
async def readyz(request: web.Request) -> web.Response:
    """Can take work: recovered after a restart, not draining, not shedding load, MetaDB answering."""
    ok, why = spider(request).readiness()
    if not ok:
        response = message(request, why, 503)
        response.headers["Retry-After"] = "1"
        return response
    return await health(request)


@routes.get("/spider/metrics")
@api(reply=str, text="text/plain", connection=False)
async def metrics(request: web.Request) -> web.Response:
    """Prometheus text format (``spider_core.metrics``)."""
    await spider(request).metrics.refresh()
    return web.Response(body=spider(request).metrics.render(),
                        headers={"Content-Type": "text/plain; version=0.0.4; charset=utf-8"})


async def lock_and_limit_view(request: web.Request) -> dict:
    """The project's rich view: lock entries and statistics, plus every connection's request limiter;
    on a cluster also every replica's lock holders and waiters (``cluster``)."""
    sp = spider(request)
    view = sp.locks.snapshot()
    view["limits"] = [lim.stats() for lim in sp.limiters.values()]
    if getattr(sp, "replica", None) is not None:
        view["cluster"] = await cluster_view(sp)
    return view


@routes.get("/spider/splockinfo")
@api(reply=Any, query=("detail",), connection=False)
async def splock_info(request: web.Request) -> web.Response:
    if query(request, "detail").lower() in ("true", "1", "yes"):
        return reply(request, await lock_and_limit_view(request))
    sp = spider(request)
    if getattr(sp, "replica", None) is not None:  # every replica's holders and waiters
        return reply(request, {"splockinfo": info_strings(await cluster_view(sp))})
    return reply(request, {"splockinfo": sp.locks.info()})


@routes.get("/spider/splockstats")
@api(reply=Any, connection=False)
async def splock_stats(request: web.Request) -> web.Response:
    return reply(request, await lock_and_limit_view(request))


@routes.get("/spider/limitinfo")
@api(reply={"limitinfo": [Any]}, query=("ConnectionName",), connection=False)
async def limit_info(request: web.Request) -> web.Response:
    """Request limiters per connection (``?ConnectionName=`` for one): policy, in-flight, queued,
    throttled answers, retries, time spent waiting."""
    sp = spider(request)
    name = query(request, "ConnectionName")
    limiters = [lim for n, lim in sp.limiters.items() if not name or n == name]
    return reply(request, {"limitinfo": [lim.stats() for lim in limiters]})


@routes.get("/spider/calllog")
@api(reply={"calllog": [Any]}, query=("cloudos", "resourcetype", "resourcename", "connection", "errors",
     "since", "limit"), connection=False, errors=(400,))
async def calllog(request: web.Request) -> web.Response:
    """CSP call history as JSON; filters: cloudos, resourcetype, resourcename, connection, errors, since, limit."""
    def number(key: str, default: int) -> int:
        text = query(request, key)
        try:
            return int(text) if text else default
        except ValueError:
            raise web.HTTPBadRequest(reason=f"{key} must be an integer") from None

    records = call_log.query(cloud_os=query(request, "cloudos"), resource_type=query(request, "resourcetype"),
                             resource_name=query(request, "resourcename"), connection=query(request, "connection"),
                             errors_only=query(request, "errors").lower() in ("true", "1"),
                             since_seq=number("since", 0), limit=number("limit", 1000))
    return reply(request, {"calllog": records})


@routes.delete("/spider/destroy")
@api(reply=Any)
async def destroy(request: web.Request) -> web.Response:
    body = await bind(request)
    result = await system.destroy(spider(request), conn_name(request, body))
    for entry in result["DeletedAllListByResourceType"] or []:
        entry["DeletedIIDList"] = [wire.iid(i) for i in entry["DeletedIIDList"]]
    return reply(request, result)


@routes.post("/spider/anycall")
@api(reply={"FID": str, "IKeyValueList": wire.Null([wire.KV]), "OKeyValueList": wire.Null([wire.KV])},
     body=wire.ANYCALL_REQ)
async def any_call(request: web.Request) -> web.Response:
    body = await bind(request)
    out = await system.any_call(spider(request), conn_name(request, body), req_info(body))
    return reply(request, {"FID": out.fid, "IKeyValueList": wire.kvs(out.inputs),
                           "OKeyValueList": wire.kvs(out.outputs)})


@routes.get("/spider/driver/capability")
@api(reply=wire.capability)
async def capability(request: web.Request) -> web.Response:
    body = await bind(request)
    return reply(request, wire.capability(await system.capability(spider(request), conn_name(request, body))))


def _resource_type(request: web.Request, body: dict) -> str:
    return body.get("ResourceType") or query(request, "ResourceType")


@routes.get("/spider/cspresourcename/{Name}")
@api(reply={"Name": str}, query=("ResourceType",))
async def csp_resource_name(request: web.Request) -> web.Response:
    body = await bind(request)
    name = await system.csp_resource_name(spider(request), conn_name(request, body), _resource_type(request, body),
                                          path(request, "Name"))
    return reply(request, {"Name": name})


_ENCODERS = {"vpc": wire.vpc, "sg": wire.security, "keypair": wire.keypair, "vm": wire.vm, "nlb": wire.nlb,
             "disk": wire.disk, "myimage": wire.myimage, "publicip": wire.public_ip, "nic": wire.network_interface}


@routes.get("/spider/cspresourceinfo/{Name}")
@api(reply=Any, query=("ResourceType",))
async def csp_resource_info(request: web.Request) -> web.Response:
    body = await bind(request)
    rtype, info = await system.csp_resource_info(spider(request), conn_name(request, body),
                                                 _resource_type(request, body), path(request, "Name"))
    return reply(request, _ENCODERS[rtype](info))


async def _port_of(request: web.Request) -> tuple[str, int]:
    host = query(request, "HostName") or query(request, "Hostname")
    if not host:
        raise SpiderError("Missing required query parameter: Hostname", status=400)
    text = query(request, "Port")
    if not text:
        raise SpiderError("Missing required query parameter: Port", status=400)
    if not text.isdecimal() or not 0 < int(text) < 65536:
        raise SpiderError("Invalid port value", status=400)
    try:  # the resolver encodes names with IDNA; a name it cannot encode is no host
        host.encode("idna")
    except UnicodeError:
        raise SpiderError(f"Invalid host name: '{host}' is not a valid DNS name", status=400) from None
    return host, int(text)


@routes.get("/spider/check/tcp")
@api(reply=wire.MESSAGE, query=("Hostname", "Port"), connection=False, errors=(400,))
async def check_tcp(request: web.Request) -> web.Response:
    """Is a TCP port open? (a connect within 3 s)."""
    host, port = await _port_of(request)
    try:
        _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 3)
        writer.close()
    except (OSError, asyncio.TimeoutError) as exc:
        raise SpiderError(f"Failed: TCP port {port} is not open on {host}: {exc or 'timeout'}") from None
    return reply(request, {"message": f"Success: TCP port {port} is open on {host}"})


class _UDPProbe(asyncio.DatagramProtocol):
    def __init__(self) -> None:
        self.done: asyncio.Future[str] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr) -> None:
        if not self.done.done():
            self.done.set_result("reply")

    def error_received(self, exc: Exception) -> None:
        if not self.done.done():
            self.done.set_exception(exc)


@routes.get("/spider/check/udp")
@api(reply=wire.MESSAGE, query=("Hostname", "Port"), connection=False, errors=(400,))
async def check_udp(request: web.Request) -> web.Response:
    """Is a UDP port open? A reply, or silence for 2 s (no ICMP port-unreachable), counts as open."""
    host, port = await _port_of(request)
    loop = asyncio.get_running_loop()
    try:
        transport, probe = await loop.create_datagram_endpoint(_UDPProbe, remote_addr=(host, port))
    except OSError as exc:
        raise SpiderError(f"Failed: UDP port {port} is not reachable on {host}: {exc}") from None
    try:
        transport.sendto(b"spidertwin-probe")
        await asyncio.wait_for(asyncio.shield(probe.done), 2)
    except asyncio.TimeoutError:
        pass
    except OSError as exc:
        raise SpiderError(f"Failed: UDP port {port} is not open on {host}: {exc}") from None
    finally:
        transport.close()
    return reply(request, {"message": f"Success: UDP port {port} is open on {host}"})
