"""Price handler for real AWS: the AWS Price List API (``pricing``, served from us-east-1 only)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, Callable

from spider_core.calllog import RT_PRICE
from spider_core.drivers.aws.session import AwsSession
from spider_core.drivers.base import PriceInfoHandler
from spider_core.model import GpuInfo, VMPrice, VMSpecInfo

PRICING_REGION = "us-east-1"
COMPUTE = "Compute Instance"


def _mib(memory: str) -> str:
    """'8 GiB' -> '8192'."""
    number = memory.split()[0].replace(",", "") if memory else ""
    try:
        return str(int(Decimal(number) * 1024))
    except Exception:  # noqa: BLE001 - AWS sends "NA" for some products
        return "-1"


def vm_price(item: dict[str, Any], region: str) -> VMPrice | None:
    product = item.get("product", {})
    attrs = product.get("attributes", {})
    for term in (item.get("terms", {}).get("OnDemand") or {}).values():
        for dim in (term.get("priceDimensions") or {}).values():
            usd = dim.get("pricePerUnit", {}).get("USD")
            if usd is None:
                continue
            gpus = [GpuInfo(count=attrs["gpu"])] if attrs.get("gpu", "0") not in ("0", "") else []
            spec = VMSpecInfo(region=region, name=attrs.get("instanceType", ""), vcpu_count=attrs.get("vcpu", ""),
                              vcpu_clock_ghz=attrs.get("clockSpeed", "").replace(" GHz", "").replace("Up to ", ""),
                              mem_size_mib=_mib(attrs.get("memory", "")), disk_size_gb="-1", gpus=gpus)
            return VMPrice(spec=spec, product_id=product.get("sku", ""), price=usd, currency="USD",
                           unit=dim.get("unit", "Hrs"), pricing_id=dim.get("rateCode", ""),
                           description=dim.get("description", ""), csp_product_info=attrs,
                           csp_price_info={"OnDemand": term})
    return None


class AwsPriceInfoHandler(PriceInfoHandler):
    def __init__(self, session_for_region: Callable[[str], AwsSession]) -> None:
        self.s = session_for_region(PRICING_REGION)

    async def list_product_family(self, region: str) -> list[str]:
        out = await self.s.call(RT_PRICE, region, "pricing", "get_attribute_values", ServiceCode="AmazonEC2",
                                AttributeName="productFamily")
        return sorted(v["Value"] for v in out.get("AttributeValues", []))

    async def list_vm_price(self, region: str) -> list[VMPrice]:
        filters = [{"Type": "TERM_MATCH", "Field": k, "Value": v} for k, v in (
            ("regionCode", region), ("productFamily", COMPUTE), ("operatingSystem", "Linux"), ("tenancy", "Shared"),
            ("preInstalledSw", "NA"), ("capacitystatus", "Used"))]
        prices: list[VMPrice] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"ServiceCode": "AmazonEC2", "Filters": filters, "MaxResults": 100}
            if token:
                kwargs["NextToken"] = token
            out = await self.s.call(RT_PRICE, region, "pricing", "get_products", **kwargs)
            for raw in out.get("PriceList", []):
                price = vm_price(json.loads(raw) if isinstance(raw, str) else raw, region)
                if price is not None:
                    prices.append(price)
            token = out.get("NextToken")
            if not token:
                return prices
