"""Crash-safe creates and deletes: an intent is written to the MetaDB before the cloud call.

A create or delete changes two places that cannot share a transaction: the cloud and the MetaDB. A
server killed between the two used to leave cloud resources Spider no longer mapped (they only showed
up in ``OnlyCSPList``) or rows pointing at nothing. So every create and delete first records an intent
(what, under which user name, the spUUID the cloud will know it by), awaits its commit, then calls the
cloud; the IID rows are written and the intent closed in one transaction. What can be left after a
SIGKILL is only open intents, and ``reconcile`` settles each with the cloud at the next start:

* create, resource found by its spUUID name: mapped under the user's name (done);
* create, resource absent: failed (the cloud never made it);
* delete: the cloud delete is repeated (not-found counts as done) and the rows go (done).

A task cancelled during its cloud call (the SIGTERM deadline passed) leaves its intent open on
purpose: the next start finishes it the same way. Every outcome is logged and recorded as a job.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, AsyncIterator
from contextlib import asynccontextmanager

from spider_core import errors, ids
from spider_core.errors import SpiderError
from spider_core.jobs import CURRENT_JOB
from spider_core.metadb import IIDRow, IntentRow
from spider_core.model import IID
from spider_core.services.common import KINDS, VPC, drive, driver_iid, handler

log = logging.getLogger(__name__)

RETRY_SECONDS = 5.0


@dataclass
class Intent:
    """An open intent as the service holds it; ``closed`` once its rows are written with it."""

    row: IntentRow
    closed: bool = False

    @property
    def id(self) -> str:
        return self.row.id


@asynccontextmanager
async def recorded(sp: Any, op: str, rtype: str, conn_name: str, name: str, *, owner_vpc: str = "",
                   sp_uuid: str = "", system_id: str = "", detail: dict | None = None, refuse_existing: str = "",
                   existing_in: str | None = None) -> AsyncIterator[Intent]:
    """Record an intent before the body's cloud call; the body closes it with its MetaDB write
    (``intent=...``). An error closes it here (the call failed: nothing to reconcile); a cancellation
    leaves it open for the next start.

    ``refuse_existing`` (a create's type word): a name already mapped (in VPC ``existing_in``; None:
    in any) gets CB-Spider's "already exists" instead, checked in the same MetaDB step that records
    the intent (one round trip on PostgreSQL)."""
    row = IntentRow(id="in-" + ids.new_xid(), op=op, connection=conn_name, resource_type=rtype, name=name,
                    owner_vpc=owner_vpc, sp_uuid=sp_uuid, system_id=system_id, detail=detail or {},
                    job_id=CURRENT_JOB.get())
    if refuse_existing:
        if await sp.db.open_intent_unless_mapped(row, existing_in) is not None:
            raise errors.already_exists(refuse_existing, name, conn_name)
    else:
        await sp.db.open_intent(row)
    intent = Intent(row)
    try:
        yield intent
    except asyncio.CancelledError:
        raise
    except BaseException:
        if not intent.closed:
            await asyncio.shield(sp.db.close_intent(intent.id))
            intent.closed = True
        raise
    if not intent.closed:
        await sp.db.close_intent(intent.id)
        intent.closed = True


# ---- reconciliation at start --------------------------------------------------------------------

@dataclass
class Outcome:
    """What reconciling one intent decided."""

    intent: IntentRow
    status: str                 # "done" or "failed"
    message: str
    result: dict | None = None


@dataclass
class Reconciler:
    """Settles every open intent with the cloud; ``pending`` holds the ones the cloud could not be
    asked about yet (connection down), retried every ``RETRY_SECONDS`` until they settle."""

    sp: Any
    pending: list[IntentRow] = field(default_factory=list)
    settled: list[Outcome] = field(default_factory=list)

    async def run_once(self, ids: list[str] | None = None) -> list[Outcome]:
        """Settle this server's open intents (``ids``: only those, e.g. a dead replica's just claimed)."""
        intents = await self.sp.db.list_intents(ids)
        groups: dict[str, list[IntentRow]] = defaultdict(list)
        for row in intents:
            groups[row.connection].append(row)
        outcomes: list[Outcome] = []
        self.pending = []
        for conn_name, rows in groups.items():
            try:
                outcomes += await self._group(conn_name, rows)
            except SpiderError as exc:
                log.warning("reconcile: connection '%s' not reachable (%s); %d intent(s) stay open, retried "
                            "every %.0f s", conn_name, exc.message, len(rows), RETRY_SECONDS)
                self.pending += rows
        self.settled += outcomes
        return outcomes

    async def _group(self, conn_name: str, rows: list[IntentRow]) -> list[Outcome]:
        conn = await self.sp.connection(conn_name)
        listed: dict[str, dict[str, str]] = {}  # resource type -> spUUID -> CSP id (one list per type)
        out = []
        for row in rows:
            kind = KINDS[row.resource_type]
            lock_name = row.owner_vpc if row.resource_type == "subnet" else row.name  # the services' lock keys
            async with self.sp.locks.write(kind.lock_family, conn_name, lock_name):
                if row.op == "create":
                    csp = listed.get(row.resource_type)
                    if csp is None and row.resource_type != "subnet":
                        iids = await drive(handler(conn, kind).list_iid())
                        csp = listed[row.resource_type] = {i.name_id: i.system_id for i in iids}
                    out.append(await self._create(conn, row, csp or {}))
                else:
                    out.append(await self._delete(conn, row))
        return out

    async def _create(self, conn: Any, row: IntentRow, csp: dict[str, str]) -> Outcome:
        db = self.sp.db
        existing = await db.get_iid(row.connection, row.resource_type, row.name, row.owner_vpc)
        if existing is not None and ids.sp_uuid_of(existing.system_id) == row.sp_uuid:
            await db.close_intent(row.id)
            return Outcome(row, "done", "the create had finished before the restart",
                           _iid_result(existing.name, existing.system_id))
        if row.resource_type == "subnet":
            return await self._create_subnet(conn, row)
        csp_id = csp.get(row.sp_uuid)
        if csp_id is None or existing is not None:
            await db.close_intent(row.id)
            return Outcome(row, "failed", f"{row.resource_type} '{row.name}' was being created when the server "
                                          f"stopped, and the cloud has no resource named '{row.sp_uuid}': "
                                          "the create did not happen; submit it again")
        rows = [IIDRow(row.connection, row.resource_type, row.name, ids.spider_system_id(row.sp_uuid, csp_id),
                       owner_vpc=row.owner_vpc, zone=row.detail.get("zone", ""))]
        note = ""
        if row.resource_type == "vpc":
            subnet_rows, missing = await self._vpc_subnets(conn, row, csp_id)
            rows += subnet_rows
            if missing:
                note = f"; subnets the cloud did not make before the stop: {', '.join(missing)}"
        await db.insert_iids(rows, intent=row.id)
        return Outcome(row, "done", f"found in the cloud as '{csp_id}' and mapped under its name{note}",
                       _iid_result(row.name, csp_id))

    async def _vpc_subnets(self, conn: Any, row: IntentRow, csp_id: str) -> tuple[list[IIDRow], list[str]]:
        wanted = {sp_uuid: (user, zone) for user, sp_uuid, zone in row.detail.get("subnets", [])}
        if not wanted:
            return [], []
        info = await drive(handler(conn, VPC).get_vpc(IID(row.sp_uuid, csp_id)))
        rows = []
        for sub in info.subnets or []:
            match = wanted.pop(sub.iid.name_id, None)
            if match is not None:
                rows.append(IIDRow(row.connection, "subnet", match[0],
                                   ids.spider_system_id(sub.iid.name_id, sub.iid.system_id), owner_vpc=row.name,
                                   zone=sub.zone or match[1]))
        return rows, sorted(user for user, _ in wanted.values())

    async def _create_subnet(self, conn: Any, row: IntentRow) -> Outcome:
        db = self.sp.db
        vpc_row = await db.get_iid(row.connection, "vpc", row.owner_vpc)
        found = None
        if vpc_row is not None:
            info = await drive(handler(conn, VPC).get_vpc(driver_iid(vpc_row)))
            found = next((s for s in info.subnets or [] if s.iid.name_id == row.sp_uuid), None)
        if found is None:
            await db.close_intent(row.id)
            return Outcome(row, "failed", f"subnet '{row.name}' was being added when the server stopped, and "
                                          "the cloud has no such subnet: the add did not happen; submit it again")
        await db.insert_iids([IIDRow(row.connection, "subnet", row.name,
                                     ids.spider_system_id(row.sp_uuid, found.iid.system_id), owner_vpc=row.owner_vpc,
                                     zone=found.zone or row.detail.get("zone", ""))], intent=row.id)
        return Outcome(row, "done", f"found in the cloud as '{found.iid.system_id}' and mapped under its name",
                       _iid_result(row.name, found.iid.system_id))

    async def _delete(self, conn: Any, row: IntentRow) -> Outcome:
        db = self.sp.db
        stored = await db.get_iid(row.connection, row.resource_type, row.name, row.owner_vpc)
        if stored is None:
            await db.close_intent(row.id)
            return Outcome(row, "done", "the delete had finished before the restart", {"Result": "true"})
        kind = KINDS[row.resource_type]
        target = driver_iid(stored)
        try:
            if row.resource_type == "subnet":
                vpc_row = await db.get_iid(row.connection, "vpc", row.owner_vpc)
                if vpc_row is not None:
                    await drive(handler(conn, VPC).remove_subnet(driver_iid(vpc_row), target))
            else:
                method = {"vpc": "delete_vpc", "sg": "delete_security", "keypair": "delete_key",
                          "vm": "terminate_vm", "nlb": "delete_nlb", "disk": "delete_disk",
                          "myimage": "delete_my_image", "publicip": "delete_public_ip",
                          "nic": "delete_nic"}[row.resource_type]
                await drive(getattr(handler(conn, kind), method)(target))
        except SpiderError as exc:
            if not errors.is_not_found(exc):
                raise
        if row.resource_type == "vpc":
            await db.delete_iid_with_children(row.connection, "vpc", row.name, "", "subnet", intent=row.id)
        else:
            await db.delete_iids([(row.connection, row.resource_type, row.owner_vpc, row.name)], intent=row.id)
        return Outcome(row, "done", "the cloud delete was finished and the rows removed", {"Result": "true"})


def _iid_result(name: str, system_id: str) -> dict:
    return {"IId": {"NameId": name, "SystemId": ids.csp_id_of(system_id)}, "Reconciled": True}


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()
