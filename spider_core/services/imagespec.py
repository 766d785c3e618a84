"""VM image+spec favourites and recents (CB-Spider's ``/vm/imagespecfavorite`` and ``/vm/imagespecrecent``).

Records are keyed by (CSP, Region, Zone, ImageName, SpecName) and kept in the MetaDB. A recent record is
written after every successful VM start (count and average creation time), as CB-Spider does."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from spider_core.errors import SpiderError
from spider_core.services.context import Spider

FAVORITE, RECENT = "favorite", "recent"
FIELDS = ("CSP", "Region", "Zone", "ImageName", "SpecName", "OSArch", "OsPlatform", "OsDistribution", "CPUInfo",
          "GPUInfo", "PriceInfo")
FAVORITE_FIELDS = FIELDS + ("CreatedAt",)
RECENT_FIELDS = FIELDS + ("AvgCreationTime", "CreationCount", "LastCreatedAt")
REQUIRED_TEXT = "CSP, Region, ImageName, and SpecName are required"
# sort keys CB-Spider's SQL accepts (its column names) -> record fields
_SORT = {"created_at": "CreatedAt", "last_created_at": "LastCreatedAt", "creation_count": "CreationCount",
         "avg_creation_time": "AvgCreationTime", "csp": "CSP", "region": "Region", "zone": "Zone",
         "image_name": "ImageName", "spec_name": "SpecName"}


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _key(rec: dict) -> tuple[str, str, str, str, str]:
    return (rec.get("CSP", ""), rec.get("Region", ""), rec.get("Zone", ""), rec.get("ImageName", ""),
            rec.get("SpecName", ""))


def _record(values: dict, names: tuple[str, ...]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in names:
        value = values.get(name)
        if name == "CreationCount":
            out[name] = int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0
        elif name == "AvgCreationTime":
            out[name] = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0.0
        else:
            out[name] = value if isinstance(value, str) else ""
    return out


def _require_key(values: dict) -> tuple[str, str, str, str, str]:
    key = _key(values)
    if not key[0] or not key[1] or not key[3] or not key[4]:
        raise SpiderError(REQUIRED_TEXT, status=400)
    return key


async def add_favorite(sp: Spider, values: dict) -> str:
    key = _require_key(values)
    record = _record(values, FAVORITE_FIELDS)
    record["CreatedAt"] = _now()
    await sp.db.put_imagespec(FAVORITE, key, record)
    return "Successfully added to favorites"


async def delete(sp: Spider, kind: str, values: dict) -> str:
    key = _require_key(values)
    if not await sp.db.delete_imagespec(kind, key):
        raise SpiderError(f"{'favorite' if kind == FAVORITE else 'recent'} VM record not found")
    return "Successfully removed from favorites" if kind == FAVORITE else "Successfully removed from recent records"


async def bulk_import(sp: Spider, kind: str, records: Any) -> dict[str, int]:
    if not isinstance(records, list) or not records:
        raise SpiderError("No records to import", status=400)
    names = FAVORITE_FIELDS if kind == FAVORITE else RECENT_FIELDS
    inserted = skipped = 0
    for item in records:
        if not isinstance(item, dict):
            raise SpiderError("Invalid request body: every record must be a JSON object", status=400)
        record = _record(item, names)
        if await sp.db.put_imagespec(kind, _key(record), record, only_new=True):
            inserted += 1
        else:
            skipped += 1
    return {"inserted": inserted, "skipped": skipped, "total": len(records)}


async def listing(sp: Spider, kind: str, csp: str, region: str, zone: str, sort_by: str, sort_order: str,
                  limit: int | None = None) -> list[dict]:
    rows = await sp.db.list_imagespec(kind)
    if csp:
        rows = [r for r in rows if r.get("CSP", "").upper() == csp.upper()]
    if region:
        rows = [r for r in rows if r.get("Region") == region]
    if zone:
        rows = [r for r in rows if r.get("Zone") in (zone, "")]
    default = "created_at" if kind == FAVORITE else "last_created_at"
    field = _SORT.get((sort_by or default).strip().lower())
    if field is None:
        raise SpiderError(f"SortBy: one of {', '.join(sorted(_SORT))} (got '{sort_by}')", status=400)
    order = (sort_order or "desc").strip().lower()
    if order not in ("asc", "desc"):
        raise SpiderError(f"SortOrder: asc or desc (got '{sort_order}')", status=400)
    rows.sort(key=lambda r: r.get(field, ""), reverse=order == "desc")
    if kind == RECENT:
        rows = rows[:limit if limit and limit > 0 else 10]
    names = FAVORITE_FIELDS if kind == FAVORITE else RECENT_FIELDS
    return [_record(r, names) for r in rows]


async def record_start(sp: Spider, csp: str, region: str, zone: str, image: str, spec: str, seconds: float,
                       details: dict) -> None:
    """After a VM start: one more creation of this image+spec (running average of the creation time)."""
    key = (csp, region, zone, image, spec)
    old = await sp.db.get_imagespec(RECENT, key) or {}
    count = int(old.get("CreationCount", 0)) + 1
    avg = (float(old.get("AvgCreationTime", 0.0)) * (count - 1) + seconds) / count
    record = _record({"CSP": csp, "Region": region, "Zone": zone, "ImageName": image, "SpecName": spec, **details},
                     RECENT_FIELDS)
    record.update(AvgCreationTime=round(avg, 3), CreationCount=count, LastCreatedAt=_now())
    await sp.db.put_imagespec(RECENT, key, record)
