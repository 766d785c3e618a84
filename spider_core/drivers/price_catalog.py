"""Prices of the emulated providers from ``spider_core/data/prices.yaml`` (its header is the schema), and
the price handler MOCK and CLOUDTWIN share: every spec the connection's spec handler lists, priced by
the table (an exact price, or vCPUs, memory and GPUs times their rates, times the region's factor)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from spider_core.drivers.base import PriceInfoHandler, VMSpecHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import VMPrice

PRICES_PATH = Path(__file__).resolve().parents[1] / "data" / "prices.yaml"


@dataclass(frozen=True)
class ProviderPrices:
    product_families: tuple[str, ...]
    per_vcpu: Decimal
    per_gib: Decimal
    per_gpu: Decimal
    regions: dict[str, Decimal]
    specs: dict[str, Decimal]
    currency: str
    unit: str


def _decimal(value: Any, where: str) -> Decimal:
    try:
        out = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValueError(f"{PRICES_PATH.name}: {where} must be a decimal string, not {value!r}") from None
    if out < 0:
        raise ValueError(f"{PRICES_PATH.name}: {where} must not be negative ({value!r})")
    return out


def parse(data: Any) -> dict[str, ProviderPrices]:
    if not isinstance(data, dict) or not isinstance(data.get("providers"), dict):
        raise ValueError(f"{PRICES_PATH.name}: needs a 'providers' mapping")
    currency, unit = str(data.get("currency", "USD")), str(data.get("unit", "Hour"))
    out = {}
    for provider, p in data["providers"].items():
        where = f"providers.{provider}"
        if not isinstance(p, dict):
            raise ValueError(f"{PRICES_PATH.name}: {where} must be a mapping")
        families = p.get("product_families") or []
        if not isinstance(families, list) or not all(isinstance(f, str) for f in families):
            raise ValueError(f"{PRICES_PATH.name}: {where}.product_families must be a list of strings")
        regions = p.get("regions") or {}
        specs = p.get("specs") or {}
        if not isinstance(regions, dict) or not isinstance(specs, dict):
            raise ValueError(f"{PRICES_PATH.name}: {where}.regions and .specs must be mappings")
        out[str(provider).upper()] = ProviderPrices(
            tuple(families), _decimal(p.get("per_vcpu", "0"), f"{where}.per_vcpu"),
            _decimal(p.get("per_gib", "0"), f"{where}.per_gib"), _decimal(p.get("per_gpu", "0"), f"{where}.per_gpu"),
            {str(k): _decimal(v, f"{where}.regions.{k}") for k, v in regions.items()},
            {str(k): _decimal(v, f"{where}.specs.{k}") for k, v in specs.items()}, currency, unit)
    return out


@lru_cache(maxsize=2)
def _load(path: str, mtime: float) -> dict[str, ProviderPrices]:
    with open(path, encoding="utf-8") as fh:
        return parse(yaml.safe_load(fh))


def load(path: Path = PRICES_PATH) -> dict[str, ProviderPrices]:
    return _load(str(path), path.stat().st_mtime)


def _number(text: str) -> Decimal:
    try:
        return Decimal(text)
    except (InvalidOperation, ValueError):
        return Decimal(0)


class CatalogPriceHandler(PriceInfoHandler):
    """Prices of the specs a connection offers, in its own region (other regions are not its to price)."""

    def __init__(self, provider: str, region: str, specs: VMSpecHandler) -> None:
        self.provider = provider
        self.region = region
        self.specs = specs

    def _table(self) -> ProviderPrices:
        table = load().get(self.provider)
        if table is None:
            raise DriverError(f"{self.provider} has no price table in {PRICES_PATH.name}")
        return table

    def _factor(self, table: ProviderPrices, region: str) -> Decimal:
        if region != self.region:
            raise DriverNotFound(f"{region} region does not exist!! (this connection's region is {self.region})")
        factor = table.regions.get(region, table.regions.get("*"))
        if factor is None:
            raise DriverNotFound(f"{region} region has no price information")
        return factor

    async def list_product_family(self, region: str) -> list[str]:
        table = self._table()
        self._factor(table, region)
        return list(table.product_families)

    async def list_vm_price(self, region: str) -> list[VMPrice]:
        table = self._table()
        factor = self._factor(table, region)
        out = []
        for spec in await self.specs.list_vm_spec():
            base = table.specs.get(spec.name)
            if base is None:
                gpus = sum(_number(g.count) for g in spec.gpus)
                base = (_number(spec.vcpu_count) * table.per_vcpu + _number(spec.mem_size_mib) / 1024 * table.per_gib
                        + gpus * table.per_gpu)
            price = (base * factor).quantize(Decimal("0.0001"))
            out.append(VMPrice(spec=spec, product_id=f"{self.provider.lower()}-{region}-{spec.name}", price=str(price),
                               currency=table.currency, unit=table.unit,
                               pricing_id=f"{self.provider.lower()}-{region}-{spec.name}-ondemand",
                               csp_product_info={"instanceType": spec.name, "regionName": region, "os": "Linux"},
                               csp_price_info={"payAsYouGo": {"unit": table.unit, "currency": table.currency,
                                                              "price": str(price)}}))
        return out
