"""The OpenAPI 3.1 description of the running server, written from its own route table.

Every route the application registered is described: its path and method from aiohttp's router,
its request body, answer and query parameters from the handler's ``contract.api`` declaration, whose
schemas are the ones ``transport.bind`` decodes with and ``wire`` encoders write. A route without a
declaration still appears (with an open schema and ``x-undeclared``) so nothing is silently missing.

How errors are documented: CB-Spider answers almost every handler failure (not found, already
exists, validation, unknown connection, a cloud's error, a body it cannot bind) with HTTP 500 and
``{"message": text}``; clients rely on that, so the description says so instead of inventing 4xx
codes. Statuses a route really answers otherwise (400 for bad query values, 401, 413, 503) are listed
where they apply.
"""

from __future__ import annotations

import re
from typing import Any, Iterable

from aiohttp import web

from spider_core import __version__, wire
from spider_core.rest.async_jobs import ASYNC_ROUTES, job_json
from spider_core.rest.contract import QUERY, Api, declared, is_open

# AdminWeb's HTML pages are the browser console, not API operations
BROWSER_PAGES = ("/spider/adminweb",)
_PARAM = re.compile(r"\{(\w+)\}")
_WORDS = re.compile(r"\W+")
_METHODS = ("GET", "PUT", "POST", "DELETE", "PATCH")
_WHY = {
    400: "A query parameter or the request is invalid (the route checks it itself).",
    401: "Missing or wrong Basic credentials: `{\"message\": \"Unauthorized\"}`.",
    404: "Not found.",
    413: "The body is larger than the server accepts.",
    500: "CB-Spider's answer to any handler failure: unknown connection or name, already exists, "
         "validation, a cloud's error, a body that does not bind (`code=400, message=Syntax error ...`, "
         "`code=415, message=Unsupported Media Type`).",
    503: "Shedding load or shutting down (`Retry-After` says when to retry), or the MetaDB is down.",
}


class Shapes:
    """Turns ``wire`` schemas into JSON Schema; encoders become named components."""

    def __init__(self) -> None:
        self.components: dict[str, dict] = {}

    def response(self, shape: Any) -> dict:
        if callable(shape) and hasattr(shape, "shape"):
            name = "".join(part.capitalize() for part in shape.__name__.strip("_").split("_"))
            if name not in self.components:
                self.components[name] = {}  # reserve first: shapes may share sub-shapes
                self.components[name] = self.response(shape.shape)
            return {"$ref": f"#/components/schemas/{name}"}
        if isinstance(shape, wire.Null):
            inner = self.response(shape.schema)
            return {"anyOf": [inner, {"type": "null"}]}
        if isinstance(shape, dict):
            if not shape:
                return {"type": "object"}
            props = {k: self.response(v.schema if isinstance(v, wire.Opt) else v) for k, v in shape.items()}
            required = [k for k, v in shape.items() if not isinstance(v, wire.Opt)]
            return {"type": "object", "properties": props, "required": required, "additionalProperties": False}
        if isinstance(shape, list):
            return {"type": "array", "items": self.response(shape[0])}
        return _scalar(shape)


def _scalar(shape: Any) -> dict:
    if shape is Any or shape is None:
        return {}
    kinds = {str: "string", bool: "boolean", int: "integer", float: "number"}
    if shape in kinds:
        return {"type": kinds[shape]}
    raise TypeError(f"not a wire schema: {shape!r}")


def request_schema(schema: Any) -> dict:
    """A body as ``wire.decode`` reads it: every key optional and nullable, names matched without
    regard to case, unknown keys ignored."""
    if schema is Any:
        return {}
    if isinstance(schema, dict):
        return {"type": ["object", "null"], "properties": {k: request_schema(v) for k, v in schema.items()}}
    if isinstance(schema, list):
        return {"type": ["array", "null"], "items": request_schema(schema[0])}
    return {"type": [_scalar(schema)["type"], "null"]}


def _parameters(pattern: str, contract: Api, method: str) -> list[dict]:
    params = [{"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
              for name in _PARAM.findall(pattern)]
    names = list(contract.query)
    if contract.connection and "ConnectionName" not in names and "{ConnectionName}" not in pattern:
        names.insert(0, "ConnectionName")
    for name in names:
        schema, text = QUERY.get(name, ({"type": "string"}, ""))
        params.append({"name": name, "in": "query", "required": False, "schema": schema, "description": text})
    if (method, pattern) in ASYNC_ROUTES:
        params.append({"name": "async", "in": "query", "required": False,
                       "schema": {"type": "string", "enum": ["true", "false"]},
                       "description": "`true`: run as a job; the answer is 202 with the job."})
    return params


def _body(contract: Api, method: str) -> dict | None:
    if method == "GET":
        return None  # CB-Spider also reads a GET's JSON body; the query form is the documented one
    if contract.flat:
        schema = request_schema(contract.body)
    else:
        schema = request_schema(wire.envelope(contract.body))
    return {"required": False, "content": {"application/json": {"schema": schema}}}


def _tag(handler: Any) -> str:
    """The route module's family (``routes_vpc`` -> ``vpc``): Swagger UI groups operations by it."""
    module = handler.__module__.rsplit(".", 1)[-1]
    return module[len("routes_"):] if module.startswith("routes_") else module


def _operation(shapes: Shapes, method: str, pattern: str, handler: Any) -> dict:
    contract = declared(handler)
    op: dict[str, Any] = {"operationId": method.lower() + "_" + _WORDS.sub("_", pattern.strip("/")),
                          "tags": [contract.tag if contract and contract.tag else _tag(handler)]}
    doc = (handler.__doc__ or "").strip()
    if doc:
        op["description"] = doc
    if contract is None:
        contract = Api()
        op["x-undeclared"] = True
    op["parameters"] = _parameters(pattern, contract, method)
    body = _body(contract, method)
    if body is not None:
        op["requestBody"] = body
    media = contract.text or "application/json"
    answer = {"schema": {"type": "string"}} if contract.text else {"schema": shapes.response(contract.reply)}
    responses: dict[str, Any] = {"200": {"description": "Success.", "content": {media: answer}}}
    if (method, pattern) in ASYNC_ROUTES:
        responses["202"] = {"description": "Accepted as a job (`?async=true` or `Prefer: respond-async`); "
                                           "`Location` is the job's URL.",
                            "content": {"application/json": {"schema": shapes.response(job_json)}}}
    codes = set(contract.errors) | {500, 503}
    if (method, pattern) in ASYNC_ROUTES:
        codes.add(400)  # a bad ?async= value
    if not is_open(pattern):
        codes.add(401)
        op["security"] = [{"basicAuth": []}]
    else:
        op["security"] = []
    if body is not None:
        codes.add(413)
    for code in sorted(codes):
        responses[str(code)] = {"description": _WHY.get(code, "Error."), "content": {"application/json": {
            "schema": {"$ref": "#/components/schemas/Error"}}}}
    op["responses"] = responses
    return op


def routes_of(app: web.Application) -> Iterable[tuple[str, str, Any]]:
    """(method, path pattern, handler) of every documented route, in registration order."""
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method not in _METHODS:
            continue
        contract = declared(route.handler)
        if contract is not None and contract.hidden:
            continue
        info = resource.get_info()
        pattern = info.get("formatter") or info.get("path")
        if pattern and not pattern.startswith(BROWSER_PAGES):
            yield route.method, pattern, route.handler


def build(app: web.Application) -> dict:
    shapes = Shapes()
    paths: dict[str, dict] = {}
    for method, pattern, handler in routes_of(app):
        paths.setdefault(pattern, {})[method.lower()] = _operation(shapes, method, pattern, handler)
    shapes.components["Error"] = {"type": "object", "properties": {"message": {"type": "string"}},
                                  "required": ["message"]}
    return {
        "openapi": "3.1.0",
        "info": {"title": "CB-Spider REST API (spidertwin)", "version": __version__,
                 "description": "CB-Spider's REST API as spidertwin serves it, generated from the server's route "
                                "table. Answers are JSON; `?pretty` indents them. Errors are `{\"message\"}`, "
                                "mostly with HTTP 500 as in CB-Spider."},
        "servers": [{"url": "/"}],
        "security": [{"basicAuth": []}],
        "paths": paths,
        "components": {"schemas": shapes.components,
                       "securitySchemes": {"basicAuth": {"type": "http", "scheme": "basic"}}},
    }
