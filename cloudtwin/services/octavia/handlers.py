"""Octavia v2 wire format: bodies in, dicts out, every route under ``/v2`` and ``/v2.0``.

Validation of field types and ranges happens here, in the style of Octavia's WSME layer
(``Invalid input for field/attribute <f>. Value: '<v>'. <why>``); the rules between objects (state,
duplicates, quotas, VIPs) live in ``models.py``.
"""

from __future__ import annotations

import ipaddress
from typing import Any, Callable

from aiohttp import web

from cloudtwin import wire
from cloudtwin.errors import ApiError
from cloudtwin.routing import Call, Router
from cloudtwin.services.octavia import models as m
from cloudtwin.services.octavia.models import OctaviaState

SERVICE = "load-balancer"
PREFIXES = ("/v2", "/v2.0")
_MISSING = object()
PAGING_KEYS = frozenset({"limit", "marker", "page_reverse", "sort", "sort_key", "sort_dir", "fields",
                         "tags", "tags-any", "not-tags", "not-tags-any"})


# ---------------------------------------------------------------------------------------------- input
def invalid(name: str, value: Any, why: str) -> ApiError:
    return ApiError(400, f"Invalid input for field/attribute {name}. Value: '{value}'. {why}")


class Fields:
    """Typed reads from one request object, with Octavia-style errors."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def has(self, name: str) -> bool:
        return name in self.body

    def raw(self, name: str, required: bool = False) -> Any:
        v = self.body.get(name, _MISSING)
        if (v is _MISSING or v is None) and required:
            raise invalid(name, None, "Mandatory field missing.")
        return v

    def str(self, name: str, *, required: bool = False, default: Any = None, maxlen: int = 255,
            nullable: bool = True) -> Any:
        v = self.raw(name, required)
        if v is _MISSING:
            return default
        if v is None:
            if not nullable:
                raise invalid(name, v, "Value should not be null.")
            return None
        if not isinstance(v, str):
            raise invalid(name, v, "Value should be a string.")
        if len(v) > maxlen:
            raise invalid(name, v, f"Value should have a maximum character requirement of {maxlen}")
        return v

    def int(self, name: str, *, required: bool = False, default: Any = None, lo: int | None = None,
            hi: int | None = None, nullable: bool = False) -> Any:
        v = self.raw(name, required)
        if v is _MISSING:
            return default
        if v is None and nullable:
            return None
        if isinstance(v, str) and v.strip().lstrip("-").isdigit():
            v = int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise invalid(name, v, "Value should be an integer.")
        if lo is not None and v < lo:
            raise invalid(name, v, f"Value should be greater or equal to {lo}")
        if hi is not None and v > hi:
            raise invalid(name, v, f"Value should be lower or equal to {hi}")
        return v

    def bool(self, name: str, *, default: Any = None) -> Any:
        v = self.raw(name)
        if v is _MISSING:
            return default
        if isinstance(v, str) and wire.truthy(v) is not None:
            return wire.truthy(v)
        if not isinstance(v, bool):
            raise invalid(name, v, "Value should be a boolean.")
        return v

    def enum(self, name: str, choices: tuple[str, ...], *, required: bool = False, default: Any = None) -> Any:
        v = self.raw(name, required)
        if v is _MISSING or v is None:
            return default
        if v not in choices:
            raise invalid(name, v, f"Value should be one of: {', '.join(choices)}")
        return v

    def ip(self, name: str, *, required: bool = False) -> Any:
        v = self.str(name, required=required, maxlen=64)
        if v is None:
            return None
        try:
            return str(ipaddress.ip_address(v))
        except ValueError:
            raise invalid(name, v, "Value should be IPv4 or IPv6 format") from None

    def tags(self, default: Any = None) -> Any:
        v = self.raw("tags")
        if v is _MISSING:
            return default
        if v is None:
            return []
        if not isinstance(v, list) or not all(isinstance(t, str) and len(t) <= 255 for t in v):
            raise invalid("tags", v, "Value should be a list of strings.")
        return list(dict.fromkeys(v))

    def str_list(self, name: str, default: Any = None) -> Any:
        v = self.raw(name)
        if v is _MISSING:
            return default
        if v is None:
            return None
        if not isinstance(v, list) or not all(isinstance(t, str) for t in v):
            raise invalid(name, v, "Value should be a list of strings.")
        return list(v)

    def read_only(self, *names: str, kind: str) -> None:
        for name in names:
            if name in self.body:
                raise invalid(name, self.body[name], f"Attribute {name} cannot be changed on a {kind}.")


def _envelope(call: Call, key: str) -> Fields:
    return Fields(call.body(key))


def _state(call: Call) -> OctaviaState:
    assert call.region is not None
    return call.region.octavia  # type: ignore[no-any-return]


def _pick(values: dict[str, Any]) -> dict[str, Any]:
    """Drop the fields a request did not give (``_MISSING``) so model defaults apply."""
    return {k: v for k, v in values.items() if v is not _MISSING}


# ---------------------------------------------------------------------------------------------- output
def _ids(ids: Any) -> list[dict[str, str]]:
    return [{"id": i} for i in ids]


def render_lb(st: OctaviaState, lb: m.LoadBalancer) -> dict[str, Any]:
    return {
        "id": lb.id, "name": lb.name, "description": lb.description,
        "provisioning_status": lb.state, "operating_status": st.lb_status(lb),
        "admin_state_up": lb.admin_state_up, "project_id": lb.project_id, "tenant_id": lb.project_id,
        "created_at": wire.iso(lb.created_at), "updated_at": wire.iso(lb.updated_at),
        "vip_address": lb.vip_address, "vip_port_id": lb.vip_port_id, "vip_subnet_id": lb.vip_subnet_id,
        "vip_network_id": lb.vip_network_id, "vip_qos_policy_id": lb.vip_qos_policy_id,
        "vip_vnic_type": "normal", "vip_sg_ids": [], "additional_vips": [],
        "listeners": _ids(st._lb_listeners.get(lb.id, ())), "pools": _ids(st._lb_pools.get(lb.id, ())),
        "provider": lb.provider, "flavor_id": lb.flavor_id, "availability_zone": lb.availability_zone,
        "tags": list(lb.tags),
    }


def render_listener(st: OctaviaState, li: m.Listener) -> dict[str, Any]:
    return {
        "id": li.id, "name": li.name, "description": li.description,
        "provisioning_status": li.state, "operating_status": st.listener_status(li),
        "admin_state_up": li.admin_state_up, "protocol": li.protocol, "protocol_port": li.protocol_port,
        "connection_limit": li.connection_limit, "default_pool_id": li.default_pool_id,
        "loadbalancers": [{"id": li.loadbalancer_id}], "l7policies": [],
        "default_tls_container_ref": li.default_tls_container_ref, "sni_container_refs": list(li.sni_container_refs),
        "insert_headers": dict(li.insert_headers),
        "timeout_client_data": li.timeout_client_data, "timeout_member_connect": li.timeout_member_connect,
        "timeout_member_data": li.timeout_member_data, "timeout_tcp_inspect": li.timeout_tcp_inspect,
        "allowed_cidrs": list(li.allowed_cidrs) if li.allowed_cidrs is not None else None,
        "client_ca_tls_container_ref": None, "client_authentication": "NONE", "client_crl_container_ref": None,
        "tls_ciphers": None, "tls_versions": None, "alpn_protocols": None,
        "hsts_max_age": None, "hsts_include_subdomains": False, "hsts_preload": False,
        "project_id": li.project_id, "tenant_id": li.project_id,
        "created_at": wire.iso(li.created_at), "updated_at": wire.iso(li.updated_at), "tags": list(li.tags),
    }


def render_pool(st: OctaviaState, p: m.Pool) -> dict[str, Any]:
    hm = st.pool_healthmonitor(p.id)
    return {
        "id": p.id, "name": p.name, "description": p.description,
        "provisioning_status": p.state, "operating_status": st.pool_status(p),
        "admin_state_up": p.admin_state_up, "protocol": p.protocol, "lb_algorithm": p.lb_algorithm,
        "session_persistence": dict(p.session_persistence) if p.session_persistence else None,
        "loadbalancers": [{"id": p.loadbalancer_id}], "listeners": _ids(st.pool_listener_ids(p.id)),
        "members": _ids(st._pool_members.get(p.id, ())), "healthmonitor_id": hm.id if hm else None,
        "tls_enabled": False, "tls_container_ref": None, "ca_tls_container_ref": None, "crl_container_ref": None,
        "tls_ciphers": None, "tls_versions": None, "alpn_protocols": None,
        "project_id": p.project_id, "tenant_id": p.project_id,
        "created_at": wire.iso(p.created_at), "updated_at": wire.iso(p.updated_at), "tags": list(p.tags),
    }


def render_member(st: OctaviaState, mb: m.Member) -> dict[str, Any]:
    return {
        "id": mb.id, "name": mb.name, "address": mb.address, "protocol_port": mb.protocol_port,
        "weight": mb.weight, "backup": mb.backup, "subnet_id": mb.subnet_id,
        "monitor_address": mb.monitor_address, "monitor_port": mb.monitor_port,
        "admin_state_up": mb.admin_state_up, "provisioning_status": mb.state,
        "operating_status": st.member_status(mb), "vnic_type": "normal",
        "project_id": mb.project_id, "tenant_id": mb.project_id,
        "created_at": wire.iso(mb.created_at), "updated_at": wire.iso(mb.updated_at), "tags": list(mb.tags),
    }


def render_hm(st: OctaviaState, hm: m.HealthMonitor) -> dict[str, Any]:
    return {
        "id": hm.id, "name": hm.name, "type": hm.type, "delay": hm.delay, "timeout": hm.timeout,
        "max_retries": hm.max_retries, "max_retries_down": hm.max_retries_down,
        "http_method": hm.http_method, "url_path": hm.url_path, "expected_codes": hm.expected_codes,
        "http_version": hm.http_version, "domain_name": hm.domain_name,
        "admin_state_up": hm.admin_state_up, "pools": [{"id": hm.pool_id}],
        "provisioning_status": hm.state, "operating_status": st.healthmonitor_status(hm),
        "project_id": hm.project_id, "tenant_id": hm.project_id,
        "created_at": wire.iso(hm.created_at), "updated_at": wire.iso(hm.updated_at), "tags": list(hm.tags),
    }


def status_tree(st: OctaviaState, lb: m.LoadBalancer) -> dict[str, Any]:
    listeners = []
    for li in st.lb_listeners(lb.id):
        pools = []
        pool = st.pools.get(li.default_pool_id) if li.default_pool_id else None
        if pool is not None:
            entry: dict[str, Any] = {"id": pool.id, "name": pool.name, "provisioning_status": pool.state,
                                     "operating_status": st.pool_status(pool)}
            hm = st.pool_healthmonitor(pool.id)
            if hm is not None:
                entry["health_monitor"] = {"id": hm.id, "name": hm.name, "type": hm.type,
                                           "provisioning_status": hm.state,
                                           "operating_status": st.healthmonitor_status(hm)}
            entry["members"] = [{"id": mb.id, "name": mb.name, "address": mb.address,
                                 "protocol_port": mb.protocol_port, "provisioning_status": mb.state,
                                 "operating_status": st.member_status(mb)} for mb in st.pool_members(pool.id)]
            pools.append(entry)
        listeners.append({"id": li.id, "name": li.name, "provisioning_status": li.state,
                          "operating_status": st.listener_status(li), "pools": pools})
    return {"statuses": {"loadbalancer": {"id": lb.id, "name": lb.name, "provisioning_status": lb.state,
                                          "operating_status": st.lb_status(lb), "listeners": listeners}}}


def list_response(call: Call, plural: str, items: list[dict[str, Any]]) -> web.Response:
    q = call.query
    items = wire.filter_by(items, q, [k for k in q if k not in PAGING_KEYS and (not items or k in items[0])])
    items = _filter_tags(items, q)
    items = _sort(items, q)
    chunk, marker = wire.page(items, q)
    fields = [f for v in q.getall("fields", []) for f in v.split(",") if f]
    if fields:
        chunk = [{k: v for k, v in it.items() if k in fields} for it in chunk]
    links = []
    if marker is not None:
        links.append({"href": wire.next_link(call.request, marker, q.get("limit")), "rel": "next"})
    return wire.json_response(200, {plural: chunk, f"{plural}_links": links})


def _filter_tags(items: list[dict[str, Any]], q: Any) -> list[dict[str, Any]]:
    def split(key: str) -> set[str]:
        return {t for v in q.getall(key, []) for t in v.split(",") if t}

    all_, any_, not_all, not_any = split("tags"), split("tags-any"), split("not-tags"), split("not-tags-any")
    if not (all_ or any_ or not_all or not_any):
        return items
    out = []
    for it in items:
        tags = set(it.get("tags") or ())
        if all_ and not all_ <= tags:
            continue
        if any_ and not any_ & tags:
            continue
        if not_all and not_all <= tags:
            continue
        if not_any and not_any & tags:
            continue
        out.append(it)
    return out


def _sort(items: list[dict[str, Any]], q: Any) -> list[dict[str, Any]]:
    keys: list[tuple[str, bool]] = []
    if q.get("sort"):
        for part in q["sort"].split(","):
            k, _, d = part.partition(":")
            keys.append((k.strip(), d.strip().lower() == "desc"))
    elif q.get("sort_key"):
        dirs = q.getall("sort_dir", [])
        for i, k in enumerate(q.getall("sort_key")):
            keys.append((k, (dirs[i] if i < len(dirs) else "asc").lower() == "desc"))
    if not keys:
        return items
    for k, _ in keys:
        if items and k not in items[0]:
            raise ApiError(400, f"Supplied sort key '{k}' is not valid.")
    for k, desc in reversed(keys):
        items = sorted(items, key=lambda it: (it.get(k) is None, str(it.get(k)) if it.get(k) is not None else ""),
                       reverse=desc)
    return items


# ---------------------------------------------------------------------------------------------- versions
async def versions(call: Call) -> web.Response:
    base = call.base_url()
    updated = "2016-12-11T00:00:00Z"
    return wire.json_response(200, {"versions": [
        {"id": "v2.0", "status": "SUPPORTED", "updated": updated, "links": [{"href": f"{base}/v2", "rel": "self"}]},
        {"id": "v2", "status": "CURRENT", "updated": "2023-06-01T00:00:00Z",
         "links": [{"href": f"{base}/v2", "rel": "self"}]},
    ]})


# ---------------------------------------------------------------------------------------------- load balancers


async def create_lb(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "loadbalancer")
    kwargs = dict(
        name=f.str("name", default="") or "", description=f.str("description", default="") or "",
        admin_state_up=f.bool("admin_state_up", default=True),
        vip_subnet_id=f.str("vip_subnet_id"), vip_network_id=f.str("vip_network_id"),
        vip_port_id=f.str("vip_port_id"), vip_address=f.ip("vip_address"),
        vip_qos_policy_id=f.str("vip_qos_policy_id"), provider=f.str("provider", maxlen=64),
        flavor_id=f.str("flavor_id"), availability_zone=f.str("availability_zone"), tags=f.tags(default=[]),
    )
    pid = f.str("project_id") or call.project_id
    if pid != call.project_id:
        raise ApiError(403, "Policy does not allow this request to be performed.")
    lb = st.create_lb(call.project_id, **kwargs)
    return wire.json_response(201, {"loadbalancer": render_lb(st, lb)})


async def get_lb(call: Call) -> web.Response:
    st = _state(call)
    return wire.json_response(200, {"loadbalancer": render_lb(st, st.get_lb(call.project_id, call.params["lb_id"]))})


async def update_lb(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "loadbalancer")
    f.read_only("vip_address", "vip_port_id", "vip_subnet_id", "vip_network_id", "provider", "flavor_id",
                "availability_zone", "project_id", kind="load balancer")
    changes = _pick({"name": f.str("name", default=_MISSING), "description": f.str("description", default=_MISSING),
                     "admin_state_up": f.bool("admin_state_up", default=_MISSING),
                     "vip_qos_policy_id": f.str("vip_qos_policy_id", default=_MISSING),
                     "tags": f.tags(default=_MISSING)})
    _no_nulls(changes, "name", "description")
    lb = st.update_lb(call.project_id, call.params["lb_id"], changes)
    return wire.json_response(200, {"loadbalancer": render_lb(st, lb)})


async def delete_lb(call: Call) -> web.Response:
    cascade = wire.truthy(call.query.get("cascade")) or False
    _state(call).delete_lb(call.project_id, call.params["lb_id"], cascade=cascade)
    return wire.json_response(204)


async def lb_status(call: Call) -> web.Response:
    st = _state(call)
    return wire.json_response(200, status_tree(st, st.get_lb(call.project_id, call.params["lb_id"])))


ZERO_STATS = {"active_connections": 0, "bytes_in": 0, "bytes_out": 0, "request_errors": 0, "total_connections": 0}


async def lb_stats(call: Call) -> web.Response:
    _state(call).get_lb(call.project_id, call.params["lb_id"])
    return wire.json_response(200, {"stats": dict(ZERO_STATS)})


async def lb_failover(call: Call) -> web.Response:
    _state(call).failover_lb(call.project_id, call.params["lb_id"])
    return wire.json_response(202)


# ---------------------------------------------------------------------------------------------- listeners
def _listener_common(f: Fields, default: Any) -> dict[str, Any]:
    return _pick({
        "name": f.str("name", default=default), "description": f.str("description", default=default),
        "admin_state_up": f.bool("admin_state_up", default=default),
        "connection_limit": f.int("connection_limit", default=default, lo=-1),
        "default_pool_id": f.str("default_pool_id", default=default),
        "timeout_client_data": f.int("timeout_client_data", default=default, lo=0, hi=31536000),
        "timeout_member_connect": f.int("timeout_member_connect", default=default, lo=0, hi=31536000),
        "timeout_member_data": f.int("timeout_member_data", default=default, lo=0, hi=31536000),
        "timeout_tcp_inspect": f.int("timeout_tcp_inspect", default=default, lo=0, hi=31536000),
        "allowed_cidrs": _cidrs(f, default), "insert_headers": _headers(f, default),
        "default_tls_container_ref": f.str("default_tls_container_ref", default=default),
        "sni_container_refs": f.str_list("sni_container_refs", default=default), "tags": f.tags(default=default),
    })


def _cidrs(f: Fields, default: Any) -> Any:
    v = f.str_list("allowed_cidrs", default=default)
    if isinstance(v, list):
        try:
            return [str(ipaddress.ip_network(c, strict=False)) for c in v]
        except ValueError:
            raise invalid("allowed_cidrs", v, "Value should be a list of CIDRs.") from None
    return v


def _headers(f: Fields, default: Any) -> Any:
    v = f.raw("insert_headers")
    if v is _MISSING:
        return default
    if v is None:
        return {}
    if not isinstance(v, dict) or not all(isinstance(k, str) and isinstance(x, str) for k, x in v.items()):
        raise invalid("insert_headers", v, "Value should be a mapping of strings.")
    return dict(v)


def _no_nulls(values: dict[str, Any], *names: str) -> None:
    """Octavia stores a null name or description as ''."""
    for n in names:
        if n in values and values[n] is None:
            values[n] = ""


def _drop_nulls(values: dict[str, Any], *names: str) -> None:
    """A null for these fields in an update means 'leave it as it is'."""
    for n in names:
        if n in values and values[n] is None:
            del values[n]


def _lister(kind: str, plural: str, render: Callable[[OctaviaState, Any], dict[str, Any]],
            by_lb: bool = False) -> Callable[[Call], Any]:
    """``GET /v2/lbaas/<plural>``: the caller's objects (``?loadbalancer_id=`` narrows when ``by_lb``)."""
    async def handler(call: Call) -> web.Response:
        st = _state(call)
        items = st.list(kind, call.project_id)
        lb_id = call.query.get("loadbalancer_id") if by_lb else None
        if lb_id:
            items = [x for x in items if x.loadbalancer_id == lb_id]
        return list_response(call, plural, [render(st, x) for x in items])

    return handler


async def create_listener(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "listener")
    lb_id = f.str("loadbalancer_id", required=True)
    protocol = f.enum("protocol", m.LISTENER_PROTOCOLS, required=True)
    port = f.int("protocol_port", required=True, lo=1, hi=65535)
    attrs = {k: v for k, v in _listener_common(f, _MISSING).items() if v is not None or k in ("default_pool_id",
                                                                                           "allowed_cidrs")}
    _no_nulls(attrs, "name", "description")
    if protocol in ("UDP", "SCTP") and attrs.get("insert_headers"):
        raise m.validation(f"The {protocol} protocol does not support header insertion.")
    li = st.create_listener(call.project_id, lb_id, protocol, port, **attrs)
    return wire.json_response(201, {"listener": render_listener(st, li)})


async def get_listener(call: Call) -> web.Response:
    st = _state(call)
    li = st.get_listener(call.project_id, call.params["listener_id"])
    return wire.json_response(200, {"listener": render_listener(st, li)})


async def update_listener(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "listener")
    f.read_only("loadbalancer_id", "protocol", "protocol_port", "project_id", kind="listener")
    changes = _listener_common(f, _MISSING)
    _no_nulls(changes, "name", "description")
    _drop_nulls(changes, "connection_limit", "timeout_client_data", "timeout_member_connect", "timeout_member_data",
                "timeout_tcp_inspect", "admin_state_up", "sni_container_refs", "tags")
    li = st.update_listener(call.project_id, call.params["listener_id"], changes)
    return wire.json_response(200, {"listener": render_listener(st, li)})


async def delete_listener(call: Call) -> web.Response:
    _state(call).delete_listener(call.project_id, call.params["listener_id"])
    return wire.json_response(204)


async def listener_stats(call: Call) -> web.Response:
    _state(call).get_listener(call.project_id, call.params["listener_id"])
    return wire.json_response(200, {"stats": dict(ZERO_STATS)})


# ---------------------------------------------------------------------------------------------- pools
def _session_persistence(f: Fields, default: Any) -> Any:
    v = f.raw("session_persistence")
    if v is _MISSING:
        return default
    if v is None or v == {}:
        return None
    if not isinstance(v, dict):
        raise invalid("session_persistence", v, "Value should be an object.")
    sp_type = v.get("type")
    if sp_type not in m.SESSION_PERSISTENCE:
        raise invalid("session_persistence", v, f"type should be one of: {', '.join(m.SESSION_PERSISTENCE)}")
    out: dict[str, Any] = {"type": sp_type, "cookie_name": v.get("cookie_name"),
                           "persistence_timeout": v.get("persistence_timeout"),
                           "persistence_granularity": v.get("persistence_granularity")}
    if sp_type == "APP_COOKIE" and not out["cookie_name"]:
        raise m.validation("Cookie names are required for APP_COOKIE session persistence.")
    if sp_type != "APP_COOKIE" and out["cookie_name"]:
        raise m.validation(f"Cookie names are not supported for {sp_type} persistence.")
    return out


def _pool_common(f: Fields, default: Any) -> dict[str, Any]:
    return _pick({"name": f.str("name", default=default), "description": f.str("description", default=default),
                  "admin_state_up": f.bool("admin_state_up", default=default),
                  "session_persistence": _session_persistence(f, default), "tags": f.tags(default=default)})


async def create_pool(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "pool")
    protocol = f.enum("protocol", m.POOL_PROTOCOLS, required=True)
    algorithm = f.enum("lb_algorithm", m.LB_ALGORITHMS, required=True)
    attrs = {k: v for k, v in _pool_common(f, _MISSING).items() if v is not None or k == "session_persistence"}
    _no_nulls(attrs, "name", "description")
    pool = st.create_pool(call.project_id, protocol=protocol, lb_algorithm=algorithm,
                          listener_id=f.str("listener_id"), loadbalancer_id=f.str("loadbalancer_id"), **attrs)
    return wire.json_response(201, {"pool": render_pool(st, pool)})


async def get_pool(call: Call) -> web.Response:
    st = _state(call)
    return wire.json_response(200, {"pool": render_pool(st, st.get_pool(call.project_id, call.params["pool_id"]))})


async def update_pool(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "pool")
    f.read_only("protocol", "listener_id", "loadbalancer_id", "project_id", kind="pool")
    changes = _pool_common(f, _MISSING)
    alg = f.enum("lb_algorithm", m.LB_ALGORITHMS)
    if alg is not None:
        changes["lb_algorithm"] = alg
    _no_nulls(changes, "name", "description")
    _drop_nulls(changes, "admin_state_up", "tags")
    pool = st.update_pool(call.project_id, call.params["pool_id"], changes)
    return wire.json_response(200, {"pool": render_pool(st, pool)})


async def delete_pool(call: Call) -> web.Response:
    _state(call).delete_pool(call.project_id, call.params["pool_id"])
    return wire.json_response(204)


# ---------------------------------------------------------------------------------------------- members
def _member_common(f: Fields, default: Any) -> dict[str, Any]:
    return _pick({"name": f.str("name", default=default), "weight": f.int("weight", default=default, lo=0, hi=256),
                  "backup": f.bool("backup", default=default),
                  "admin_state_up": f.bool("admin_state_up", default=default),
                  "monitor_address": f.ip("monitor_address") if f.has("monitor_address") else default,
                  "monitor_port": f.int("monitor_port", default=default, lo=1, hi=65535, nullable=True),
                  "tags": f.tags(default=default)})


async def list_members(call: Call) -> web.Response:
    st = _state(call)
    pool = st.get_pool(call.project_id, call.params["pool_id"])
    return list_response(call, "members", [render_member(st, mb) for mb in st.pool_members(pool.id)])


async def create_member(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "member")
    address = f.ip("address", required=True)
    port = f.int("protocol_port", required=True, lo=1, hi=65535)
    attrs = {k: v for k, v in _member_common(f, _MISSING).items() if v is not None or k.startswith("monitor_")}
    _no_nulls(attrs, "name")
    mb = st.create_member(call.project_id, call.params["pool_id"], address=address, protocol_port=port,
                          subnet_id=f.str("subnet_id"), **attrs)
    return wire.json_response(201, {"member": render_member(st, mb)})


async def get_member(call: Call) -> web.Response:
    st = _state(call)
    mb = st.get_member(call.project_id, call.params["pool_id"], call.params["member_id"])
    return wire.json_response(200, {"member": render_member(st, mb)})


async def update_member(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "member")
    f.read_only("address", "protocol_port", "subnet_id", "project_id", kind="member")
    changes = _member_common(f, _MISSING)
    _no_nulls(changes, "name")
    _drop_nulls(changes, "weight", "backup", "admin_state_up", "tags")
    mb = st.update_member(call.project_id, call.params["pool_id"], call.params["member_id"], changes)
    return wire.json_response(200, {"member": render_member(st, mb)})


async def delete_member(call: Call) -> web.Response:
    _state(call).delete_member(call.project_id, call.params["pool_id"], call.params["member_id"])
    return wire.json_response(204)


# ---------------------------------------------------------------------------------------------- health monitors
HTTP_METHODS = ("CONNECT", "DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT", "TRACE")


def _hm_common(f: Fields, default: Any) -> dict[str, Any]:
    return _pick({
        "name": f.str("name", default=default),
        "delay": f.int("delay", default=default, lo=0, hi=2147483647),
        "timeout": f.int("timeout", default=default, lo=0, hi=2147483647),
        "max_retries": f.int("max_retries", default=default, lo=1, hi=10),
        "max_retries_down": f.int("max_retries_down", default=default, lo=1, hi=10),
        "http_method": f.enum("http_method", HTTP_METHODS, default=default),
        "url_path": f.str("url_path", default=default, maxlen=2048),
        "expected_codes": f.str("expected_codes", default=default, maxlen=64),
        "admin_state_up": f.bool("admin_state_up", default=default),
        "domain_name": f.str("domain_name", default=default),
        "tags": f.tags(default=default),
    })


def _check_http_fields(hm_type: str, values: dict[str, Any]) -> None:
    if hm_type in m.HTTP_HM_TYPES:
        path = values.get("url_path")
        if path is not None and not path.startswith("/"):
            raise invalid("url_path", path, "Value should be a URL path starting with '/'.")
        codes = values.get("expected_codes")
        if codes is not None and not _codes_ok(codes):
            raise invalid("expected_codes", codes, "Value should be a status code, a list (200,202) or a range "
                                                   "(200-204).")
        return
    for k in ("http_method", "url_path", "expected_codes", "domain_name"):
        if values.get(k) is not None:
            raise m.validation(f"{k} is not a valid option for health monitors of type {hm_type}")


def _codes_ok(codes: str) -> bool:
    for part in codes.split(","):
        lo, _, hi = part.partition("-")
        for c in (lo, hi) if hi else (lo,):
            if not (c.isdigit() and 100 <= int(c) <= 599):
                return False
    return True


async def create_hm(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "healthmonitor")
    pool_id = f.str("pool_id", required=True)
    hm_type = f.enum("type", m.HM_TYPES, required=True)
    delay = f.int("delay", required=True, lo=0, hi=2147483647)
    timeout = f.int("timeout", required=True, lo=0, hi=2147483647)
    retries = f.int("max_retries", required=True, lo=1, hi=10)
    attrs = {k: v for k, v in _hm_common(f, _MISSING).items()
             if k not in ("delay", "timeout", "max_retries") and v is not None}
    _check_http_fields(hm_type, attrs)
    if timeout > delay:
        raise m.validation(f"The health monitor timeout ({timeout}) must be less than or equal to its delay "
                           f"({delay}).")
    if hm_type in m.HTTP_HM_TYPES:
        attrs.setdefault("http_method", "GET")
        attrs.setdefault("url_path", "/")
        attrs.setdefault("expected_codes", "200")
    _no_nulls(attrs, "name")
    hm = st.create_healthmonitor(call.project_id, pool_id, type=hm_type, delay=delay, timeout=timeout,
                                 max_retries=retries, **attrs)
    return wire.json_response(201, {"healthmonitor": render_hm(st, hm)})


async def get_hm(call: Call) -> web.Response:
    st = _state(call)
    hm = st.get_healthmonitor(call.project_id, call.params["hm_id"])
    return wire.json_response(200, {"healthmonitor": render_hm(st, hm)})


async def update_hm(call: Call) -> web.Response:
    st = _state(call)
    f = _envelope(call, "healthmonitor")
    f.read_only("pool_id", "type", "project_id", kind="health monitor")
    changes = _hm_common(f, _MISSING)
    _no_nulls(changes, "name")
    _drop_nulls(changes, "delay", "timeout", "max_retries", "max_retries_down", "admin_state_up", "tags")
    hm = st.get_healthmonitor(call.project_id, call.params["hm_id"])
    _check_http_fields(hm.type, {k: v for k, v in changes.items() if v is not None})
    hm = st.update_healthmonitor(call.project_id, call.params["hm_id"], changes)
    return wire.json_response(200, {"healthmonitor": render_hm(st, hm)})


async def delete_hm(call: Call) -> web.Response:
    _state(call).delete_healthmonitor(call.project_id, call.params["hm_id"])
    return wire.json_response(204)


# ---------------------------------------------------------------------------------------------- catalogue
async def list_providers(call: Call) -> web.Response:
    return wire.json_response(200, {"providers": [
        {"name": "amphora", "description": "The Octavia Amphora driver."},
        {"name": "octavia", "description": "Deprecated alias of the Octavia Amphora driver."}]})


def _empty(plural: str) -> Callable[[Call], Any]:
    async def handler(call: Call) -> web.Response:
        return wire.json_response(200, {plural: [], f"{plural}_links": []})
    return handler


def _quota_body(st: OctaviaState, project_id: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"load_balancer": st.quota_limit("loadbalancer"), "listener": st.quota_limit("listener"),
                            "pool": st.quota_limit("pool"), "member": st.quota_limit("member"),
                            "health_monitor": st.quota_limit("healthmonitor"), "l7policy": -1, "l7rule": -1}
    if project_id is not None:
        body["project_id"] = project_id
    return body


async def quota_defaults(call: Call) -> web.Response:
    return wire.json_response(200, {"quota": _quota_body(_state(call), None)})


async def quota_get(call: Call) -> web.Response:
    pid = call.params["project_id"]
    if pid != call.project_id:
        raise ApiError(403, "Policy does not allow this request to be performed.")
    return wire.json_response(200, {"quota": _quota_body(_state(call), pid)})


async def quota_list(call: Call) -> web.Response:
    return wire.json_response(200, {"quotas": [_quota_body(_state(call), call.project_id)], "quotas_links": []})


# ---------------------------------------------------------------------------------------------- routes
list_lbs = _lister("loadbalancer", "loadbalancers", render_lb)
list_listeners = _lister("listener", "listeners", render_listener, by_lb=True)
list_pools = _lister("pool", "pools", render_pool, by_lb=True)
list_hms = _lister("healthmonitor", "healthmonitors", render_hm)


def add_routes(r: Router) -> None:
    r.add(SERVICE, "GET", "/", versions, "load-balancer:version:list", auth=False)
    routes: list[tuple[str, str, Any, str]] = [
        ("GET", "/lbaas/loadbalancers", list_lbs, "loadbalancer:list"),
        ("POST", "/lbaas/loadbalancers", create_lb, "loadbalancer:create"),
        ("GET", "/lbaas/loadbalancers/{lb_id}", get_lb, "loadbalancer:get"),
        ("PUT", "/lbaas/loadbalancers/{lb_id}", update_lb, "loadbalancer:update"),
        ("DELETE", "/lbaas/loadbalancers/{lb_id}", delete_lb, "loadbalancer:delete"),
        ("GET", "/lbaas/loadbalancers/{lb_id}/status", lb_status, "loadbalancer_status:get"),
        ("GET", "/lbaas/loadbalancers/{lb_id}/stats", lb_stats, "loadbalancer_stats:get"),
        ("PUT", "/lbaas/loadbalancers/{lb_id}/failover", lb_failover, "loadbalancer:action"),
        ("GET", "/lbaas/listeners", list_listeners, "listener:list"),
        ("POST", "/lbaas/listeners", create_listener, "listener:create"),
        ("GET", "/lbaas/listeners/{listener_id}", get_listener, "listener:get"),
        ("PUT", "/lbaas/listeners/{listener_id}", update_listener, "listener:update"),
        ("DELETE", "/lbaas/listeners/{listener_id}", delete_listener, "listener:delete"),
        ("GET", "/lbaas/listeners/{listener_id}/stats", listener_stats, "listener_stats:get"),
        ("GET", "/lbaas/pools", list_pools, "pool:list"),
        ("POST", "/lbaas/pools", create_pool, "pool:create"),
        ("GET", "/lbaas/pools/{pool_id}", get_pool, "pool:get"),
        ("PUT", "/lbaas/pools/{pool_id}", update_pool, "pool:update"),
        ("DELETE", "/lbaas/pools/{pool_id}", delete_pool, "pool:delete"),
        ("GET", "/lbaas/pools/{pool_id}/members", list_members, "member:list"),
        ("POST", "/lbaas/pools/{pool_id}/members", create_member, "member:create"),
        ("GET", "/lbaas/pools/{pool_id}/members/{member_id}", get_member, "member:get"),
        ("PUT", "/lbaas/pools/{pool_id}/members/{member_id}", update_member, "member:update"),
        ("DELETE", "/lbaas/pools/{pool_id}/members/{member_id}", delete_member, "member:delete"),
        ("GET", "/lbaas/healthmonitors", list_hms, "healthmonitor:list"),
        ("POST", "/lbaas/healthmonitors", create_hm, "healthmonitor:create"),
        ("GET", "/lbaas/healthmonitors/{hm_id}", get_hm, "healthmonitor:get"),
        ("PUT", "/lbaas/healthmonitors/{hm_id}", update_hm, "healthmonitor:update"),
        ("DELETE", "/lbaas/healthmonitors/{hm_id}", delete_hm, "healthmonitor:delete"),
        ("GET", "/lbaas/providers", list_providers, "provider:list"),
        ("GET", "/lbaas/flavors", _empty("flavors"), "flavor:list"),
        ("GET", "/lbaas/availabilityzones", _empty("availability_zones"), "availability_zone:list"),
        ("GET", "/lbaas/l7policies", _empty("l7policies"), "l7policy:list"),
        ("GET", "/octavia/amphorae", _empty("amphorae"), "amphora:list"),
        ("GET", "/lbaas/quotas", quota_list, "quota:list"),
        ("GET", "/lbaas/quotas/defaults", quota_defaults, "quota:get"),
        ("GET", "/lbaas/quotas/{project_id}", quota_get, "quota:get"),
    ]
    for prefix in PREFIXES:
        for method, path, handler, op in routes:
            r.add(SERVICE, method, prefix + path, handler, f"{SERVICE}:{op}")
