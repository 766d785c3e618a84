"""The AWS price handler reads the Price List API's documents (moto has no Price List API, so the
handler runs here on a recorded answer's shape)."""

from __future__ import annotations

import json

from spider_core.drivers.aws.price import AwsPriceInfoHandler, vm_price

PRODUCT = {
    "product": {"sku": "ABC123", "productFamily": "Compute Instance", "attributes": {
        "instanceType": "m5.large", "vcpu": "2", "memory": "8 GiB", "clockSpeed": "3.1 GHz", "regionCode": "us-east-2",
        "operatingSystem": "Linux", "gpu": "0"}},
    "terms": {"OnDemand": {"ABC123.JRTCKXETXF": {"priceDimensions": {"ABC123.JRTCKXETXF.6YS6EN2CT7": {
        "unit": "Hrs", "pricePerUnit": {"USD": "0.0960000000"}, "rateCode": "ABC123.JRTCKXETXF.6YS6EN2CT7",
        "description": "$0.096 per On Demand Linux m5.large Instance Hour"}}}}},
}


def test_a_price_list_document_becomes_a_vm_price():
    p = vm_price(PRODUCT, "us-east-2")
    assert p is not None and p.price == "0.0960000000" and p.unit == "Hrs" and p.currency == "USD"
    assert (p.spec.name, p.spec.vcpu_count, p.spec.mem_size_mib, p.spec.vcpu_clock_ghz) == ("m5.large", "2", "8192",
                                                                                         "3.1")
    assert p.product_id == "ABC123" and p.pricing_id.endswith("6YS6EN2CT7") and not p.spec.gpus
    assert vm_price({"product": {"attributes": {}}, "terms": {}}, "us-east-2") is None


class _Session:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict]] = []

    async def call(self, rtype, name, service, api, **kwargs):
        self.calls.append((api, kwargs))
        if api == "get_attribute_values":
            return {"AttributeValues": [{"Value": "Storage"}, {"Value": "Compute Instance"}]}
        page = kwargs.get("NextToken")
        return {"PriceList": [json.dumps(PRODUCT)], **({} if page else {"NextToken": "t2"})}


async def test_the_handler_asks_us_east_1_for_every_page_of_a_region():
    session = _Session()
    regions = []
    handler = AwsPriceInfoHandler(lambda region: regions.append(region) or session)
    assert await handler.list_product_family("us-east-2") == ["Compute Instance", "Storage"]
    prices = await handler.list_vm_price("us-east-2")
    assert regions == ["us-east-1"] and len(prices) == 2
    filters = {f["Field"]: f["Value"] for f in session.calls[1][1]["Filters"]}
    assert filters["regionCode"] == "us-east-2" and filters["productFamily"] == "Compute Instance"
