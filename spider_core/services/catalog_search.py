"""Searches across every registered connection's catalogue: what CB-Spider's ``/mcinsight/*`` routes ask
an Internet service for (prices, specs, images of a CSP), answered from the clouds Spider knows.

Each answer is ``{"total", "skip", "limit", "items": [...]}``; an item has MC-Insight's snake_case field
names and a filter is a query parameter of the same name (equal, case-insensitive; ``min_``/``max_``
prefixes bound numbers). ``/filters`` lists every value each filter can take."""

from __future__ import annotations

import logging
from typing import Any, Awaitable, Callable

from spider_core.errors import SpiderError
from spider_core.services.context import Conn, Spider

log = logging.getLogger(__name__)

PRICE_PARAMS = ("csp", "region", "zone", "name", "product_id", "instance_type", "vcpu_count", "mem_size_mib",
                "os_type", "pricing_type", "skip", "limit")
SPEC_PARAMS = ("csp", "name", "region", "zone", "min_vcpu_count", "max_vcpu_count", "min_mem_size_mib",
               "max_mem_size_mib", "min_gpu_count", "max_gpu_count", "gpu_mfr", "gpu_model", "search_text",
               "skip", "limit")
IMAGE_PARAMS = ("csp", "region", "zone", "image_id", "image_name", "os_architecture", "os_platform",
                "os_distribution", "os_disk_type", "image_status", "min_os_disk_size_gb", "max_os_disk_size_gb",
                "skip", "limit")
_FILTER_FIELDS = {"price": ("csp", "region", "instance_type", "vcpu_count", "mem_size_mib", "os_type",
                            "pricing_type", "currency"),
                  "spec": ("csp", "region", "name", "vcpu_count", "mem_size_mib", "gpu_mfr", "gpu_model"),
                  "image": ("csp", "region", "os_architecture", "os_platform", "os_distribution", "image_status")}


async def _connections(sp: Spider, csp: str) -> list[Conn]:
    """One open connection per (provider, region) of the CSP asked for ('' = every provider)."""
    seen: set[tuple[str, str]] = set()
    out = []
    for cfg in await sp.db.list_connections():
        if csp and cfg.provider_name.upper() != csp.upper():
            continue
        try:
            conn = await sp.connection(cfg.config_name)
        except SpiderError as exc:
            log.info("catalogue search skips connection %s: %s", cfg.config_name, exc.message)
            continue
        key = (conn.provider, conn.info.region)
        if key not in seen:
            seen.add(key)
            out.append(conn)
    return out


async def _collect(sp: Spider, csp: str, rows: Callable[[Conn], Awaitable[list[dict]]]) -> list[dict]:
    items: list[dict] = []
    for conn in await _connections(sp, csp):
        try:
            items.extend(await rows(conn))
        except SpiderError as exc:
            log.info("catalogue search: %s %s: %s", conn.provider, conn.info.region, exc.message)
    return items


def _number(value: Any) -> float | None:
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _keep(item: dict, params: dict[str, str]) -> bool:
    for name, wanted in params.items():
        if name in ("skip", "limit", "csp"):
            continue
        if name == "search_text":
            if wanted.lower() not in " ".join(str(v) for v in item.values()).lower():
                return False
        elif name.startswith(("min_", "max_")):
            have, bound = _number(item.get(name[4:])), _number(wanted)
            if bound is None:
                raise SpiderError(f"{name}: a number (got '{wanted}')", status=400)
            if have is None or (have < bound if name.startswith("min_") else have > bound):
                return False
        elif str(item.get(name, "")).lower() != wanted.lower():
            return False
    return True


def _page(items: list[dict], params: dict[str, str]) -> dict:
    try:
        skip = int(params.get("skip", "0"))
        limit = int(params.get("limit", "100"))
    except ValueError:
        raise SpiderError("skip and limit: whole numbers", status=400) from None
    if skip < 0 or limit < 0:
        raise SpiderError("skip and limit: whole numbers", status=400)
    kept = [i for i in items if _keep(i, params)]
    return {"total": len(kept), "skip": skip, "limit": limit, "items": kept[skip:skip + limit]}


async def _price_rows(conn: Conn) -> list[dict]:
    if conn.cloud.price_info is None:
        return []
    rows = []
    for p in await conn.cloud.price_info.list_vm_price(conn.info.region):
        rows.append({"csp": conn.provider.lower(), "region": conn.info.region, "zone": p.zone, "name": p.spec.name,
                     "product_id": p.product_id, "instance_type": p.spec.name, "vcpu_count": p.spec.vcpu_count,
                     "mem_size_mib": p.spec.mem_size_mib, "os_type": "linux", "pricing_type": "on-demand",
                     "price": p.price, "currency": p.currency, "unit": p.unit})
    return rows


async def _spec_rows(conn: Conn) -> list[dict]:
    if conn.cloud.vmspec is None:
        return []
    rows = []
    for s in await conn.cloud.vmspec.list_vm_spec():
        gpu = s.gpus[0] if s.gpus else None
        rows.append({"csp": conn.provider.lower(), "region": conn.info.region, "zone": conn.info.zone, "name": s.name,
                     "vcpu_count": s.vcpu_count, "vcpu_clock_ghz": s.vcpu_clock_ghz, "mem_size_mib": s.mem_size_mib,
                     "disk_size_gb": s.disk_size_gb, "gpu_count": gpu.count if gpu else "0",
                     "gpu_mfr": gpu.mfr if gpu else "", "gpu_model": gpu.model if gpu else "",
                     "gpu_mem_size_gb": gpu.mem_size_gb if gpu else ""})
    return rows


async def _image_rows(conn: Conn) -> list[dict]:
    if conn.cloud.image is None:
        return []
    rows = []
    for i in await conn.cloud.image.list_image():
        rows.append({"csp": conn.provider.lower(), "region": conn.info.region, "zone": conn.info.zone,
                     "image_id": i.iid.system_id, "image_name": i.name, "os_architecture": i.os_architecture,
                     "os_platform": i.os_platform, "os_distribution": i.os_distribution,
                     "os_disk_type": i.os_disk_type, "os_disk_size_gb": i.os_disk_size_gb,
                     "image_status": i.image_status})
    return rows


async def prices(sp: Spider, params: dict[str, str]) -> dict:
    return _page(await _collect(sp, params.get("csp", ""), _price_rows), params)


async def specs(sp: Spider, params: dict[str, str]) -> dict:
    return _page(await _collect(sp, params.get("csp", ""), _spec_rows), params)


async def images(sp: Spider, params: dict[str, str]) -> dict:
    return _page(await _collect(sp, params.get("csp", ""), _image_rows), params)


async def filters(sp: Spider, what: str) -> dict:
    rows = await _collect(sp, "", {"price": _price_rows, "spec": _spec_rows, "image": _image_rows}[what])
    return {name: sorted({str(r.get(name, "")) for r in rows if r.get(name, "") != ""})
            for name in _FILTER_FIELDS[what]}
