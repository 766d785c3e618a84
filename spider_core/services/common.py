"""What every resource family shares: kinds, driver calls, MetaDB lookups, all-lists, register/unregister.

A ``Kind`` describes one resource type once (MetaDB word, message word, lock family, driver handler),
so the generic operations below work for VPCs, SGs, keys, VMs and NLBs alike.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Collection, TypeVar

from spider_core import errors, ids
from spider_core.cluster_lock import settle_deferred
from spider_core.errors import SpiderError
from spider_core.metadb import IIDRow
from spider_core.model import IID
from spider_core.services.context import Conn, Spider

log = logging.getLogger(__name__)
T = TypeVar("T")


@dataclass(frozen=True)
class Kind:
    rtype: str         # MetaDB / ResourceType word
    type_word: str     # word in messages ("Security Group")
    lock_family: str   # sponge-lock family
    handler: str       # CloudConnection attribute
    id_type: str       # key for CloudDriver.id_max_length


VPC = Kind("vpc", "VPC", "vpc", "vpc", "vpc")
SUBNET = Kind("subnet", "Subnet", "vpc", "vpc", "subnet")
SG = Kind("sg", "Security Group", "sg", "security", "sg")
KEY = Kind("keypair", "VM KeyPair", "key", "keypair", "keypair")
VM = Kind("vm", "VM", "vm", "vm", "vm")
NLB = Kind("nlb", "Network Load Balancer", "nlb", "nlb", "nlb")
DISK = Kind("disk", "Disk", "disk", "disk", "disk")
MYIMAGE = Kind("myimage", "MyImage", "image", "myimage", "myimage")
PUBLICIP = Kind("publicip", "Public IP", "publicip", "publicip", "publicip")
NIC = Kind("nic", "Network Interface Card", "nic", "nic", "nic")
KINDS = {k.rtype: k for k in (VPC, SUBNET, SG, KEY, VM, NLB, DISK, MYIMAGE, PUBLICIP, NIC)}


def handler(conn: Conn, kind: Kind) -> Any:
    h = getattr(conn.cloud, kind.handler, None)
    if h is None:
        raise errors.NotSupported(f"{conn.provider} driver does not support {kind.type_word} handling!")
    return h


async def drive(call: Awaitable[T]) -> T:
    """Await a driver call; anything but a SpiderError becomes a DriverError with its text only.
    A request's deferred cluster locks are taken first: no cloud call runs without them."""
    try:
        await settle_deferred()
        return await call
    except SpiderError:
        raise
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # noqa: BLE001 - a driver bug must never reach the client as a traceback
        log.exception("driver call failed")
        raise errors.DriverError(str(exc) or type(exc).__name__) from None


LIST_CONCURRENCY = 32


async def gather_bounded(items: list[Any], fn: Callable[[Any], Awaitable[T]], limit: int = LIST_CONCURRENCY) -> list[T]:
    """``gather(fn(i) for i in items)`` with at most ``limit`` running at once, results in order.

    Lists fetch every item from the driver; a few dozen in flight keep a coalescing driver's batches
    full without creating one task (and one lock entry) per item for a list of thousands.
    """
    results: list[Any] = [None] * len(items)
    position = 0

    async def worker() -> None:
        nonlocal position
        while position < len(items):
            index = position
            position += 1
            results[index] = await fn(items[index])

    await asyncio.gather(*(worker() for _ in range(min(limit, len(items)))))
    return results


def only_named(rows: list[IIDRow], only: Collection[str] | None) -> list[IIDRow]:
    """The rows a list should fetch: all of them, or just the named ones (one page of a long table)."""
    return rows if only is None else [r for r in rows if r.name in only]


# The longest resource name: its URL (/spider/vpc/<name>, up to 9 bytes per character once escaped)
# must fit in the 1 MB request line the server reads (rest.app.MAX_LINE), or it could never be read.
MAX_NAME = 100_000


def required(value: Any, type_name: str, field_name: str) -> str:
    """CB-Spider's struct validator: empty -> ``resources.<Type>:<Field>'s input value is empty!``;
    a name longer than MAX_NAME is refused too (before anything is created)."""
    if not isinstance(value, str) or not value.strip():
        raise errors.validation(type_name, field_name)
    if field_name == "NameId" and len(value.strip()) > MAX_NAME:
        raise SpiderError(f"resources.{type_name}:{field_name}'s input value is too long: {len(value.strip())} "
                          f"characters, at most {MAX_NAME} (a name must fit in a request URL)")
    return value.strip()


def require_conn(name: str | None) -> str:
    if not name:
        raise errors.connection_name_empty()
    return name


def new_uuid(conn: Conn, kind: Kind, name: str, id_mode: str | None) -> str:
    return ids.new_sp_uuid(name, provider=conn.provider, id_max_length=conn.driver.id_max_length(kind.id_type),
                           transform=ids.transform_enabled(id_mode))


def stored_iid(row: IIDRow) -> IID:
    return IID(row.name, row.system_id)


def user_iid(row: IIDRow) -> IID:
    return IID(row.name, ids.csp_id_of(row.system_id))


def driver_iid(row: IIDRow) -> IID:
    return IID(ids.sp_uuid_of(row.system_id), ids.csp_id_of(row.system_id))


async def lookup(sp: Spider, conn_name: str, kind: Kind, name: str, owner_vpc: str | None = None) -> IIDRow:
    row = await sp.db.get_iid(conn_name, kind.rtype, name, owner_vpc)
    if row is None:
        raise errors.resource_not_found(kind.type_word, name, conn_name)
    return row


class NameMap:
    """CSP id -> user IID for the resources of one connection (maps driver answers back to names)."""

    def __init__(self, rows: list[IIDRow]) -> None:
        self._by_csp: dict[tuple[str, str], IIDRow] = {}
        for r in rows:
            self._by_csp[(r.resource_type, ids.csp_id_of(r.system_id))] = r

    @classmethod
    async def load(cls, sp: Spider, conn_name: str, rtypes: list[str]) -> "NameMap":
        rows: list[IIDRow] = []
        for rtype in rtypes:
            rows.extend(await sp.db.list_iids(conn_name, rtype))
        return cls(rows)

    def user(self, rtype: str, driver: IID) -> IID:
        """The user IID for a driver IID; unknown ids keep an empty NameId."""
        row = self._by_csp.get((rtype, driver.system_id))
        return IID(row.name, driver.system_id) if row else IID("", driver.system_id)


# ---- generic operations on any kind ----------------------------------------------------------------

async def delete_with_driver(sp: Spider, conn: Conn, kind: Kind, row: IIDRow, force: bool,
                             call: Callable[[IID], Awaitable[Any]]) -> Any:
    """CB-Spider's delete rule: a not-found driver error counts as success; any other error fails
    unless ``force``; a ``False`` answer keeps the MetaDB row."""
    try:
        outcome = await drive(call(driver_iid(row)))
    except SpiderError as exc:
        if not (errors.is_not_found(exc) or force):
            raise
        log.info("%s %s: driver said %r; deleting the MetaDB row (%s)", kind.type_word, row.name,
                 exc.message, "not found" if errors.is_not_found(exc) else "forced")
        return True
    return outcome


def match_rows(rows: list[IIDRow], csp_items: list[T], csp_id: Callable[[T], str]
               ) -> tuple[list[tuple[IIDRow, T]], list[IIDRow], list[T]]:
    """Compare MetaDB rows with a CSP list by CSP id: (mapped pairs, Spider-only rows, CSP-only items)."""
    by_csp = {csp_id(i): i for i in csp_items}
    mine = {ids.csp_id_of(r.system_id) for r in rows}
    mapped = [(r, by_csp[ids.csp_id_of(r.system_id)]) for r in rows if ids.csp_id_of(r.system_id) in by_csp]
    only_spider = [r for r in rows if ids.csp_id_of(r.system_id) not in by_csp]
    return mapped, only_spider, [i for i in csp_items if csp_id(i) not in mine]


async def all_list(sp: Spider, conn_name: str, kind: Kind) -> dict:
    """``/allXXX``: user IIDs mapped or Spider-only, and the driver's IIDs that only the CSP has."""
    conn = await sp.connection(require_conn(conn_name))
    rows = await sp.db.list_iids(conn_name, kind.rtype)
    csp_iids: list[IID] = await drive(handler(conn, kind).list_iid())
    mapped, only_spider, only_csp = match_rows(rows, csp_iids, lambda i: i.system_id)
    return {"MappedList": [user_iid(r) for r, _ in mapped], "OnlySpiderList": [user_iid(r) for r in only_spider],
            "OnlyCSPList": only_csp}


async def all_info(sp: Spider, conn_name: str, kind: Kind, list_method: str,
                   to_user: Callable[[IIDRow, Any], Awaitable[Any]]) -> dict:
    """``/allXXXinfo``: full info for mapped and CSP-only resources; stored IIDs for Spider-only ones."""
    conn = await sp.connection(require_conn(conn_name))
    rows = await sp.db.list_iids(conn_name, kind.rtype)
    infos = await drive(getattr(handler(conn, kind), list_method)())
    mapped, only_spider, only_csp = match_rows(rows, infos, lambda i: i.iid.system_id)
    return {"MappedInfoList": [await to_user(r, i) for r, i in mapped],
            "OnlySpiderList": [IID(r.name, r.system_id) for r in only_spider],
            "OnlyCSPInfoList": only_csp}


async def owner_vpc_of(sp: Spider, conn_name: str, kind: Kind, csp_id: str, get_method: str) -> IID:
    """The VPC a CSP resource (SG, NLB) belongs to; NameId is '' when that VPC is not registered."""
    target, iid = await csp_target(sp, conn_name, kind, csp_id)
    info = await drive(getattr(target, get_method)(iid))
    vpc_row = await sp.db.find_iid_by_csp_id(conn_name, VPC.rtype, info.vpc_iid.system_id)
    return IID(vpc_row.name if vpc_row else "", info.vpc_iid.system_id)


async def csp_target(sp: Spider, conn_name: str, kind: Kind, csp_id: str) -> tuple[Any, IID]:
    """The handler and driver IID for an operation addressed by CSP id (``/cspXXX/{Id}``, owner lookups)."""
    require_conn(conn_name)
    if not csp_id:
        raise errors.empty_input("cspID")
    conn = await sp.connection(conn_name)
    return handler(conn, kind), IID(csp_id, csp_id)


async def unregister(sp: Spider, conn_name: str, kind: Kind, name: str, owner_vpc: str | None = None) -> bool:
    require_conn(conn_name)
    async with sp.locks.write(kind.lock_family, conn_name, name):
        row = await sp.db.get_iid(conn_name, kind.rtype, name, owner_vpc)
        if row is None:
            raise errors.the_type_does_not_exist(kind.type_word, name)
        await sp.db.delete_iids([(conn_name, kind.rtype, row.owner_vpc, row.name)])
    return True


async def count(sp: Spider, kind: Kind, conn_name: str = "") -> int:
    return await sp.db.count_iids(kind.rtype, conn_name)


async def store_or_rollback(sp: Spider, rows: list[IIDRow], rollback: Callable[[], Awaitable[Any]],
                            what: str, intent: Any = None) -> None:
    """Store IIDs after a CSP create, closing its intent in the same transaction; if that fails,
    delete the CSP resource again (CB-Spider's rule). A cancellation (the shutdown deadline) rolls
    nothing back: the write may still land, and the open intent lets the next start decide."""
    try:
        await sp.db.insert_iids(rows, intent=intent.id if intent is not None else "")
        if intent is not None:
            intent.closed = True
    except asyncio.CancelledError:
        raise
    except BaseException as exc:
        try:
            await drive(rollback())
        except Exception as rb_exc:  # noqa: BLE001
            log.error("rollback of %s after a MetaDB failure failed: %s", what, rb_exc)
            raise SpiderError(f"{what}: MetaDB write failed ({exc}) and rolling back the CSP resource "
                              f"failed ({rb_exc})") from None
        raise SpiderError(f"{what}: MetaDB write failed, CSP resource rolled back: {exc}") from None
