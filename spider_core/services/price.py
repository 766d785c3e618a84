"""VM prices (CB-Spider's PriceInfo manager): product families of a region and the on-demand VM prices,
optionally filtered. Filters follow CB-Spider's driver rule: every ``{Key, Value}`` must match a field
of the price row by name (case-insensitive) with an equal value (case-insensitive)."""

from __future__ import annotations

from spider_core import errors
from spider_core.errors import SpiderError
from spider_core.model import KeyValue, VMPrice
from spider_core.services.common import require_conn
from spider_core.services.context import Conn, Spider


async def _handler(sp: Spider, conn_name: str, region: str):
    conn: Conn = await sp.connection(require_conn(conn_name))
    if not (region or "").strip():
        raise errors.empty_input("regionName")
    if not conn.capability.price_info_handler or conn.cloud.price_info is None:
        raise SpiderError(f"{conn_name} does not support PriceInfo")
    return conn, conn.cloud.price_info


async def product_families(sp: Spider, conn_name: str, region: str) -> list[str]:
    _, prices = await _handler(sp, conn_name, region)
    return list(await prices.list_product_family(region.strip()) or [])


def fields(p: VMPrice) -> dict[str, str]:
    """The fields a filter can name (CB-Spider's ProductInfo, VMSpecInfo and OnDemand field names)."""
    gpu = p.spec.gpus[0] if p.spec.gpus else None
    out = {"productid": p.product_id, "vmspecname": p.spec.name, "instancetype": p.spec.name,
           "vcpu": p.spec.vcpu_count, "clockghz": p.spec.vcpu_clock_ghz, "memsizemib": p.spec.mem_size_mib,
           "disksizegb": p.spec.disk_size_gb, "gpu": gpu.count if gpu else "", "gpumodel": gpu.model if gpu else "",
           "zonename": p.zone, "pricingid": p.pricing_id, "unit": p.unit, "currency": p.currency, "price": p.price,
           "description": p.description}
    for k, v in p.csp_product_info.items():
        out.setdefault(str(k).lower(), str(v))
    return out


def matches(p: VMPrice, filters: list[KeyValue]) -> bool:
    row = fields(p)
    return all(row.get(f.key.strip().lower(), None) is not None
               and row[f.key.strip().lower()].lower() == (f.value or "").strip().lower() for f in filters)


async def vm_prices(sp: Spider, conn_name: str, region: str, filters: list[KeyValue]) -> tuple[Conn, list[VMPrice]]:
    conn, prices = await _handler(sp, conn_name, region)
    for f in filters:
        if not f.key.strip():
            raise errors.validation("KeyValue", "Key")
    rows = await prices.list_vm_price(region.strip())
    return conn, [p for p in rows if matches(p, filters)]
