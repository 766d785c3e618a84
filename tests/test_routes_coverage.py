"""Every operation of the client route table (``spider_core.client.ROUTES``) is served by the server.

1. Static: the aiohttp router has a route with the same method and path shape (parameter names are
   ignored: ``/vpc/{VPCName}/subnet/{SubnetName}`` == ``/vpc/{VPCName}/subnet/{Name}``).
2. Dynamic: each operation, sent to an in-process server (NULL connection), reaches a handler: the
   answer is never the router's 404 ``Not Found`` / 405 ``Method Not Allowed``, and is JSON
   ``{"message"}``-shaped on failure.
"""

from __future__ import annotations

import re

import pytest

from spider_core.client import ROUTES, Route
from spider_core.rest.app import create_app

# Operations of ROUTES deliberately not required of the core server, with the reason. Keep it empty
# unless a route is really outside the core (contract 5.11); a missing core route must fail the test.
OUTSIDE_CORE: dict[str, str] = {}

# Contract section 5 methods that the client table does not use but CB-Spider serves (scripts use them).
CONTRACT_EXTRAS = [
    ("GET", "/spider/controlvm/{Name}"),          # mock-full_test.sh #26-31
    ("GET", "/spider/getsecuritygroupowner"),     # "GET / POST"
    ("GET", "/spider/getnlbowner"),
    ("GET", "/spider/getvmusingresources"),
    ("POST", "/spider/getvmusingresources"),
]

_PARAM = re.compile(r"\{[^}]+\}")


def shape(path: str) -> str:
    return _PARAM.sub("{}", path)


def server_routes() -> set[tuple[str, str]]:
    app = create_app(object())  # the router does not need a Spider
    out = set()
    for resource in app.router.resources():
        info = resource.get_info()
        path = info.get("path") or info.get("formatter")
        if path is None:
            continue  # a static directory (Swagger UI's files)
        for route in resource:
            out.add((route.method, shape(path)))
    return out


def test_route_table_is_not_trivially_small():
    assert len(ROUTES) >= 120
    assert not set(OUTSIDE_CORE) - {r.op_id for r in ROUTES}, "stale exclusions"


@pytest.mark.parametrize("route", [r for r in ROUTES if r.op_id not in OUTSIDE_CORE], ids=lambda r: r.op_id)
def test_server_has_a_route_for(route: Route):
    assert (route.method, shape(route.full_path)) in server_routes(), \
        f"{route.op_id}: no server route for {route.method} {route.full_path}"


@pytest.mark.parametrize("method,path", CONTRACT_EXTRAS)
def test_server_has_contract_extra_methods(method, path):
    assert (method, shape(path)) in server_routes()


def test_report_server_only_routes():
    """Server routes the client table does not know (informational; extensions must be deliberate)."""
    client = {(r.method, shape(r.full_path)) for r in ROUTES} | {(m, shape(p)) for m, p in CONTRACT_EXTRAS}
    # AdminWeb's pages are the browser console, not API operations (tests/test_adminweb.py covers them)
    extra = sorted(x for x in server_routes() - client if x[0] != "HEAD" and not x[1].startswith("/spider/adminweb"))
    assert extra == [("GET", "/spider/api"), ("GET", "/spider/api/init.js"), ("GET", "/spider/api/openapi.json"),
                     ("GET", "/spider/api/static/{}"), ("GET", "/spider/splockstats")], extra


def _fill(route: Route) -> str:
    values = {"ConnectionName": "null-config01", "ProviderName": "NULL", "CloudOSName": "MOCK"}
    return _PARAM.sub(lambda m: values.get(m.group(0)[1:-1], "x"), route.full_path)


@pytest.mark.parametrize("route", [r for r in ROUTES if r.op_id not in OUTSIDE_CORE], ids=lambda r: r.op_id)
async def test_operation_reaches_a_handler(null_server, route: Route):
    srv = null_server
    params = {q: "1" for q in route.required}
    if route.op_id.startswith("check-"):
        params = {"HostName": "127.0.0.1", "Port": "9"}
    if route.conn == "query":
        params["ConnectionName"] = srv.conn
    body = None
    if route.body == "conn":
        body = {"ConnectionName": srv.conn}
    elif route.body == "reqinfo":
        body = {"ConnectionName": srv.conn, "ReqInfo": route.example or {}}
    elif route.body == "raw":
        body = route.example or {}
    r = await srv.call(route.method, _fill(route), body, params=params or None)
    if route.text:
        assert r.status == 200 and r.headers["Content-Type"].startswith("text/plain")
        return
    assert r.headers["Content-Type"].startswith("application/json"), r.text
    if r.status != 200:
        assert list(r.json) == ["message"], r.text
        assert r.json["message"] not in ("Not Found", "Method Not Allowed"), f"{route.op_id}: {r.text}"
        assert r.json["message"] != "Internal Server Error", f"{route.op_id}: unhandled exception in the handler"
        assert r.status in (400, 404, 500), r.text
        if r.status == 404:
            assert r.json["message"].endswith("not found"), r.text
