"""Per-service routing and the request context every handler receives.

One aiohttp catch-all route hands each request to ``app.dispatch``, which finds the service from the
URL (``/{cloud}/{region}/{service}/...``), then the route here. Knowing the route *before* the handler
runs is what lets faults, throttling and latency be matched by operation name
(``compute:server:create``) and be recorded with the request they hit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Awaitable, Callable

from aiohttp import web

from cloudtwin.errors import ApiError

if TYPE_CHECKING:
    from cloudtwin.clouds import Cloud, Project, RegionState, Token
    from cloudtwin.twin import Twin

Handler = Callable[["Call"], Awaitable[web.Response]]
# the URL segment of each service under /{cloud}/{region}/ and the root path its catalog URL points at
SERVICE_PATHS = {"compute": "compute/v2.1", "network": "network", "image": "image",
                 "load-balancer": "load-balancer", "volume": "volume"}
MAX_BODY = 1024 * 1024  # OpenStack services refuse large bodies with 413; 1 MiB is ample for this API

_PARAM = re.compile(r"\{(\w+)\}")


@dataclass(frozen=True)
class Route:
    service: str
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: Handler
    operation: str          # e.g. "compute:server:create"; faults and rate limits match on it
    auth: bool = True       # False for version documents

    @property
    def op_class(self) -> str:
        """``read`` for GETs, ``write`` for everything that changes state (the usual throttling split)."""
        return "read" if self.method in ("GET", "HEAD") else "write"


class Router:
    def __init__(self) -> None:
        self._routes: dict[str, list[Route]] = {}

    def add(self, service: str, method: str, pattern: str, handler: Handler, operation: str,
            *, auth: bool = True) -> None:
        rx = "^" + _PARAM.sub(lambda m: f"(?P<{m.group(1)}>[^/]+)", pattern.rstrip("/") or "") + "/?$"
        self._routes.setdefault(service, []).append(
            Route(service, method, pattern, re.compile(rx), handler, operation, auth))

    def services(self) -> list[str]:
        return list(self._routes)

    def routes(self, service: str | None = None) -> list[Route]:
        if service is not None:
            return list(self._routes.get(service, []))
        return [r for rs in self._routes.values() for r in rs]

    def match(self, service: str, method: str, subpath: str) -> tuple[Route, dict[str, str]]:
        allowed = False
        for route in self._routes.get(service, ()):
            m = route.regex.match(subpath)
            if m is None:
                continue
            if route.method == method or (method == "HEAD" and route.method == "GET"):
                return route, m.groupdict()
            allowed = True
        if allowed:
            raise ApiError(405, f"The method {method} is not allowed for this resource.")
        raise ApiError(404, "The resource could not be found.")


@dataclass
class Call:
    """One API request after routing and authentication."""

    request: web.Request
    twin: "Twin"
    route: Route
    params: dict[str, str]
    request_id: str
    cloud: "Cloud | None" = None
    region: "RegionState | None" = None
    token: "Token | None" = None
    microversion: tuple[int, int] = (2, 1)
    response_headers: dict[str, str] = field(default_factory=dict)
    raw_body: bytes | None = None       # the body as it came (a shard forwards it unchanged)
    _body: Any = None
    _body_read: bool = False

    @property
    def query(self) -> Any:
        return self.request.query

    @property
    def project(self) -> "Project":
        assert self.token is not None
        return self.token.project

    @property
    def project_id(self) -> str:
        return self.project.id

    def base_url(self) -> str:
        """This request's service root, e.g. ``http://127.0.0.1:8192/cloud-1/RegionOne/compute/v2.1``."""
        return self.request.app["service_url"](self.request, self.cloud.name if self.cloud else "",
                                               self.region.name if self.region else "", self.route.service)

    async def read_body(self) -> None:
        if self._body_read:
            return
        self._body_read = True
        if not self.request.body_exists:
            return
        if self.request.content_length is not None and self.request.content_length > MAX_BODY:
            raise ApiError(413, "Request is too large.")
        raw = await self.request.content.read(MAX_BODY + 1)
        if len(raw) > MAX_BODY:
            raise ApiError(413, "Request is too large.")
        self.raw_body = raw
        if not raw.strip():
            return
        import json
        try:
            self._body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ApiError(400, f"Malformed request body: {exc}") from None

    def body(self, envelope: str | None = None, *, required: bool = True) -> Any:
        """The JSON body (read by the dispatcher); with ``envelope`` the object under that key."""
        body = self._body
        if envelope is None:
            if body is None and required:
                raise ApiError(400, "The request body is missing.")
            return body
        if not isinstance(body, dict) or not isinstance(body.get(envelope), dict):
            if not required and body is None:
                return {}
            raise ApiError(400, f"Invalid request body: an object under '{envelope}' is required.")
        return body[envelope]
