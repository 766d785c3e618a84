"""The Cloud-Twin HTTP edge: one dispatcher for every service, plus ``TwinServer`` to run it.

URL layout (what the Keystone catalog hands out)::

    /                       Keystone version list (300)
    /v3/...                 Keystone v3 (also /identity/v3/...)
    /{cloud}/{region}/compute/v2.1/...     Nova
    /{cloud}/{region}/network/v2.0/...     Neutron
    /{cloud}/{region}/image/...            Glance (root = version list)
    /{cloud}/{region}/load-balancer/...    Octavia (/v2 and /v2.0)
    /{cloud}/{region}/volume/...           Cinder (root = version list; /v3/{project_id}/...)
    /_twin/...              the admin API (faults, events, state, reset, snapshot)

The dispatcher routes, authenticates, applies faults/throttling/latency for the operation, runs the
handler and renders any error in the addressed service's own envelope. No traceback ever reaches a
client: an unexpected exception becomes a 500 in the service's style and is logged here.
"""

from __future__ import annotations

import asyncio
import logging
import re
import warnings
from collections import Counter
from typing import Any

from aiohttp import web

from cloudtwin import errors, policy, wire
from cloudtwin.clouds import TwinConfig
from cloudtwin.twin import Twin
from cloudtwin.errors import ApiError
from cloudtwin.forward import SHARD_HEADER
from cloudtwin.routing import SERVICE_PATHS, Call, Router

log = logging.getLogger("cloudtwin")

NOVA_MIN = (2, 1)
MICROVERSION_MIN = {"compute": NOVA_MIN, "volume": (3, 0)}   # services that negotiate microversions
_MV = re.compile(r"^\s*(\d+)\.(\d+)\s*$")


def parse_microversion(text: str) -> tuple[int, int]:
    m = _MV.match(text)
    if not m:
        raise ValueError(text)
    return int(m.group(1)), int(m.group(2))


def build_router() -> Router:
    from cloudtwin import admin
    from cloudtwin.services import load_modules

    router = Router()
    for service, mod in load_modules().items():
        add = getattr(mod, "add_routes", None)
        if add is None:
            raise RuntimeError(f"cloudtwin service '{service}' ({mod.__name__}) has no add_routes(router)")
        add(router)
    admin.add_routes(router)
    return router


def service_url(request: web.Request, cloud: str, region: str, service: str) -> str:
    base = request.app["public_url"] or f"{request.scheme}://{request.host}"
    if service == "identity":
        return f"{base}/v3"
    return f"{base}/{cloud}/{region}/{SERVICE_PATHS[service]}"


def split_path(path: str) -> tuple[str, str, str, str]:
    """``(service, cloud, region, subpath)`` for a request path; service '' when nothing matches."""
    if path in ("", "/"):
        return "identity", "", "", "/"
    if path.startswith("/identity/"):
        path = path[len("/identity"):]
    if path == "/v3" or path.startswith("/v3/"):
        return "identity", "", "", path
    if path == "/_twin" or path.startswith("/_twin/"):
        return "admin", "", "", path[len("/_twin"):] or "/"
    parts = path.split("/", 4)  # '', cloud, region, service, rest
    if len(parts) >= 4 and parts[3] in SERVICE_PATHS:
        sub = "/" + parts[4] if len(parts) == 5 else "/"
        return parts[3], parts[1], parts[2], sub
    return "", "", "", path


class Dispatcher:
    def __init__(self, twin: Twin, router: Router) -> None:
        self.twin = twin
        self.router = router
        self.requests: Counter[str] = Counter()
        self.server_errors = 0

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        rid = wire.request_id()
        service, cloud_name, region_name, sub = split_path(request.path)
        headers = {"X-Openstack-Request-Id": rid}
        if service == "compute":
            headers["X-Compute-Request-Id"] = rid
        style = service or "identity"
        try:
            if not service:
                raise ApiError(404, "The resource could not be found.")
            route, params = self.router.match(service, request.method, sub)
            call = Call(request, self.twin, route, params, rid)
            self.requests[route.operation] += 1
            if self.twin.shard is not None:
                headers[SHARD_HEADER] = self.twin.shard.me.name
                answer = await self.twin.shard.route(call, service, cloud_name)
                if answer is not None:
                    return answer
            if service not in ("identity", "admin"):
                self._resolve_cloud(call, cloud_name, region_name)
            if service == "admin":
                self.twin.admin_guard(request)
            elif route.auth:
                self._authenticate(call)
            if service in MICROVERSION_MIN:
                self._microversion(call, headers)
            if request.method in ("POST", "PUT", "PATCH") and request.content_type != "application/octet-stream":
                await call.read_body()   # image data streams to its handler instead
            if route.auth and service != "admin":
                policy.enforce(call)      # the roles the operation needs (data/policy.yaml)
            injected = await self.twin.faults.before(call)
            if injected is not None:
                injected.headers.update(headers)
                return injected
            response = await route.handler(call)
            response.headers.update(headers)
            response.headers.update(call.response_headers)
            return response
        except ApiError as err:
            return errors.render(style, err, headers)
        except (asyncio.CancelledError, ConnectionResetError):
            raise  # client went away, or an injected connection reset
        except Exception:  # never a traceback to the client
            self.server_errors += 1
            log.exception("cloudtwin: unexpected error on %s %s (%s)", request.method, request.path, rid)
            err = ApiError(500, "The server has either erred or is incapable of performing the requested "
                                f"operation. (request {rid})")
            return errors.render(style, err, headers)

    def _resolve_cloud(self, call: Call, cloud_name: str, region_name: str) -> None:
        cloud = self.twin.cloud(cloud_name, create=False)
        if cloud is None and call.route.auth:   # a token sealed by another process may name a cloud new here
            token = self.twin.token(call.request.headers.get("X-Auth-Token"))
            cloud = token.cloud if token is not None and token.cloud.name == cloud_name else None
        if cloud is None:
            raise ApiError(404, f"Cloud '{cloud_name}' is not known to this twin.")
        region = cloud.region(region_name)
        if region is None:
            raise ApiError(404, f"Region '{region_name}' is not known to cloud '{cloud_name}'.")
        call.cloud, call.region = cloud, region

    def _authenticate(self, call: Call) -> None:
        token = self.twin.token(call.request.headers.get("X-Auth-Token"))
        if token is None or (call.cloud is not None and token.cloud is not call.cloud):
            raise ApiError(401, "The request you have made requires authentication.")
        call.token = token

    def _microversion(self, call: Call, headers: dict[str, str]) -> None:
        """Negotiate the request's microversion (Nova: ``compute 2.x``, Cinder: ``volume 3.x``)."""
        assert call.cloud is not None
        service = call.route.service
        h = call.request.headers
        text = None
        osv = h.get("OpenStack-API-Version", "")
        if osv.lower().startswith(service + " "):
            text = osv.split(None, 1)[1]
        elif service == "compute" and h.get("X-OpenStack-Nova-API-Version"):
            text = h["X-OpenStack-Nova-API-Version"]
        profile = call.cloud.profile
        min_v = MICROVERSION_MIN[service]
        max_v = parse_microversion(profile.max_microversion if service == "compute"
                                   else profile.volume_max_microversion)
        if text is None:
            version = min_v
        elif text.strip().lower() == "latest":
            version = max_v
        else:
            try:
                version = parse_microversion(text)
            except ValueError:
                raise ApiError(400, f"Invalid API version request string {text}.") from None
            if not min_v <= version <= max_v:
                raise ApiError(406, f"Version {text.strip()} is not supported by the API. Minimum is "
                                    f"{min_v[0]}.{min_v[1]} and maximum is {max_v[0]}.{max_v[1]}.",
                               code="computeFault")
        call.microversion = version
        v = f"{version[0]}.{version[1]}"
        headers["OpenStack-API-Version"] = f"{service} {v}"
        if service == "compute":
            headers["X-OpenStack-Nova-API-Version"] = v
            headers["Vary"] = "OpenStack-API-Version, X-OpenStack-Nova-API-Version"
        else:
            headers["Vary"] = "OpenStack-API-Version"


def create_app(twin: Twin, *, public_url: str | None = None) -> web.Application:
    app = web.Application(client_max_size=2 * 1024 * 1024)
    dispatcher = Dispatcher(twin, build_router())
    with warnings.catch_warnings():  # plain string keys keep handlers free of app-key imports
        warnings.simplefilter("ignore")
        app["twin"] = twin
        app["dispatcher"] = dispatcher
        app["public_url"] = public_url.rstrip("/") if public_url else None
        app["service_url"] = service_url

    async def handle(request: web.Request) -> web.StreamResponse:
        return await dispatcher(request)

    app.router.add_route("*", r"/{tail:[\s\S]*}", handle)  # any path, newlines included

    async def on_startup(_: web.Application) -> None:
        twin.start()

    async def on_cleanup(_: web.Application) -> None:
        await twin.stop()
        if twin.shard is not None:
            await twin.shard.peers.close()

    app.on_startup.append(on_startup)
    app.on_cleanup.append(on_cleanup)
    return app


class TwinServer:
    """Run a twin on ``host:port`` inside the current event loop (tests, ``spider demo``)."""

    def __init__(self, twin: Twin | None = None, *, host: str = "127.0.0.1", port: int = 8192,
                 public_url: str | None = None, config: TwinConfig | None = None) -> None:
        self.twin = twin or Twin(config)
        self.host = host
        self.port = port
        self.public_url = public_url
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def start(self) -> "TwinServer":
        app = create_app(self.twin, public_url=self.public_url)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port, backlog=2048, reuse_address=True)
        await site.start()
        if self.port == 0:
            sockets = site._server.sockets if site._server else []  # type: ignore[union-attr]
            self.port = sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> "TwinServer":
        return await self.start()

    async def __aexit__(self, *exc: Any) -> None:
        await self.stop()
