"""What each route takes and answers, declared once beside its handler.

``@api(body=..., reply=...)`` on a handler is read by two consumers: ``transport.bind`` decodes the
request body against ``body`` (so the handler does not name its schema a second time), and
``spider_core.rest.openapi`` writes the API description from the same declarations. ``reply`` is a
``wire`` encoder (its ``shape``), or a schema in ``wire``'s language in which encoders stand for
their shapes (``{"vpc": [wire.vpc]}``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Awaitable, Callable

from aiohttp import web

from spider_core.wire import Schema

# Paths that never need credentials (contract 1.2). The API description and its viewer are open as in
# CB-Spider (``/spider/api*``): they carry no data and change nothing; every call they document
# still needs Basic auth.
OPEN_PATHS = frozenset({"/spider/endpointinfo", "/spider/version", "/spider/ver", "/spider/healthcheck",
                        "/spider/health", "/spider/ping", "/spider/readyz", "/spider/healthz"})
OPEN_PREFIXES = ("/spider/api/",)
DOCS_PATH = "/spider/api"


def is_open(path: str) -> bool:
    return path in OPEN_PATHS or path == DOCS_PATH or path.startswith(OPEN_PREFIXES)


API_KEY: web.RequestKey[Any] = web.RequestKey("spidertwin_api", object)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Api:
    """A route's declared contract.

    ``body``: the ``ReqInfo`` schema (the whole body when ``flat``); ``None`` is the bare envelope
    (``ConnectionName`` ...). ``reply``: the 200 answer. ``query``: query parameters besides
    ``ConnectionName`` (names from ``QUERY``). ``connection``: the route takes a ConnectionName.
    ``errors``: statuses other than CB-Spider's 500 the route itself answers (400 for bad query
    values ...). ``hidden``: not part of the API description (the description's own viewer).
    """

    reply: Any = None
    body: Schema | None = None
    flat: bool = False
    query: tuple[str, ...] = ()
    connection: bool = True
    errors: tuple[int, ...] = ()
    text: str = ""  # the media type when the answer is not JSON
    hidden: bool = False
    tag: str = ""  # the group in the API description (default: the route module's family)


def api(**declared: Any) -> Callable[[Handler], Handler]:
    """Declare a handler's contract (``Api`` fields); the handler sees it through ``bind``."""
    contract = Api(**declared)

    def wrap(handler: Handler) -> Handler:
        @functools.wraps(handler)
        async def run(request: web.Request) -> web.StreamResponse:
            request[API_KEY] = contract
            return await handler(request)

        run.__api__ = contract  # type: ignore[attr-defined]
        return run

    return wrap


def declared(handler: Any) -> Api | None:
    return getattr(handler, "__api__", None)


# Query parameters routes may declare, with their JSON schema and meaning.
QUERY: dict[str, tuple[dict, str]] = {
    "ConnectionName": ({"type": "string"}, "The connection (a JSON body's ConnectionName wins when both are given)."),
    "force": ({"type": "string", "enum": ["true", "false"]},
              "`true`: remove the MetaDB row even when the cloud's delete fails."),
    "action": ({"type": "string", "enum": ["suspend", "resume", "reboot"]}, "The VM control action."),
    "provider": ({"type": "string"}, "Only entries of this provider (e.g. AWS, MOCK)."),
    "ProviderName": ({"type": "string"}, "Same as `provider`."),
    "ResourceType": ({"type": "string"}, "The resource family (vpc, subnet, sg, keypair, vm, nlb, disk, myimage ...)."),
    "ResourceName": ({"type": "string"}, "The resource's name."),
    "simple": ({"type": "string"}, "Present: spec names instead of whole spec objects."),
    "CSPId": ({"type": "string"}, "The resource's id in the cloud."),
    "DriverName": ({"type": "string"}, "A registered driver (preconfig routes: no connection yet)."),
    "CredentialName": ({"type": "string"}, "A registered credential."),
    "Hostname": ({"type": "string"}, "Host to probe."),
    "Port": ({"type": "string"}, "Port to probe, 1-65535."),
    "detail": ({"type": "string", "enum": ["true", "false"]}, "`true`: the rich lock and limiter view."),
    "wait": ({"type": "string"}, "Seconds to long-poll for the job's end (0-120)."),
    "status": ({"type": "string"}, "Comma-separated job statuses: queued, running, done, failed, cancelled."),
    "limit": ({"type": "string"}, "At most this many entries."),
    "since": ({"type": "string"}, "Only entries after this sequence number."),
    "cloudos": ({"type": "string"}, "Call log filter: cloud OS."),
    "resourcetype": ({"type": "string"}, "Call log filter: resource type."),
    "resourcename": ({"type": "string"}, "Call log filter: resource name."),
    "connection": ({"type": "string"}, "Call log filter: connection."),
    "errors": ({"type": "string", "enum": ["true", "false"]}, "Call log filter: failed calls only."),
    "kind": ({"type": "string"}, "Comma-separated event kinds."),
    "rule": ({"type": "string"}, "Only events of this fault rule."),
}
