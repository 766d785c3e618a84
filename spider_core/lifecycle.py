"""Start and stop without losing work: recovery after a restart, and the SIGTERM drain.

At start, before ``/spider/readyz`` says ready: every open intent is reconciled with its cloud
(``spider_core.intents``), every job is settled (finished through its intent, found finished in the
MetaDB, or run again) and queued jobs are resumed. Intents whose connection cannot be reached are
retried in the background until they settle.

On SIGTERM (``spider serve``): readiness turns false and new requests get 503, the listener closes,
requests and jobs in flight get ``SPIDER_SHUTDOWN_TIMEOUT`` seconds to finish; what is still running
then is cancelled with its job and intent left in the MetaDB, which the next start finishes.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING

from aiohttp import web

from spider_core.intents import RETRY_SECONDS, Outcome, Reconciler
from spider_core.jobs import FINISHED, Execute, now_iso
from spider_core.metadb import JobRow
from spider_core.services.common import KINDS

if TYPE_CHECKING:
    from spider_core.services.context import Spider

log = logging.getLogger("spider.lifecycle")


async def recover(sp: "Spider", execute: Execute) -> None:
    """Reconcile intents, settle and resume jobs, then declare the server ready; as a replica of a
    shared MetaDB, go on to heartbeat and take over the work of replicas that die."""
    sp.jobs.start(execute)
    sp.phase = "reconciling"
    if sp.replica is not None:
        async def start_take_over(intents: list[str], jobs: list[str]) -> None:
            sp.spawn(take_over(sp, intents, jobs))  # in the background: the heartbeat must go on meanwhile

        sp.spawn(sp.replica.run(start_take_over))
    await _recover(sp, None, None, before_ready=True)


async def take_over(sp: "Spider", intent_ids: list[str], job_ids: list[str]) -> None:
    """Finish a dead replica's work, now ours: the same settling as after our own restart."""
    await _recover(sp, intent_ids, job_ids, before_ready=False)


async def _recover(sp: "Spider", intent_ids: list[str] | None, job_ids: list[str] | None, *,
                   before_ready: bool) -> None:
    reconciler = Reconciler(sp)
    try:
        await _settle(sp, await reconciler.run_once(intent_ids))
        await _resume(sp, {row.job_id for row in reconciler.pending if row.job_id}, job_ids)
    except Exception:  # noqa: BLE001 - a recovery bug must not keep the server from serving
        log.exception("recovery of interrupted work failed; open intents stay for the next start")
    if before_ready and sp.phase == "reconciling":
        sp.phase = "ready"
    while reconciler.pending:
        await asyncio.sleep(RETRY_SECONDS)
        try:
            await _settle(sp, await reconciler.run_once([row.id for row in reconciler.pending]))
        except Exception:  # noqa: BLE001
            log.exception("retrying open intents failed")


async def _settle(sp: "Spider", outcomes: list[Outcome]) -> None:
    for out in outcomes:
        row = out.intent
        log.warning("reconciled %s of %s '%s' on '%s': %s - %s", row.op, row.resource_type, row.name,
                    row.connection, out.status, out.message)
        ok = out.status == "done"
        job = await sp.db.get_job(row.job_id) if row.job_id else None
        if job is not None and job.status not in FINISHED:
            await sp.jobs.finish(job, ok, out.result, None if ok else out.message)
        elif job is None:
            await sp.jobs.record(JobRow(id="", operation=row.op, resource=row.resource_type, name=row.name,
                                        connection=row.connection, status=out.status, origin="reconcile",
                                        request={}, result=out.result, error=None if ok else out.message,
                                        created_at=row.created_at, started_at=row.created_at,
                                        finished_at=now_iso()))


async def _resume(sp: "Spider", held: set[str], ids: list[str] | None = None) -> None:
    """Queued jobs go back in the queue (oldest first); running ones without an open intent never
    reached the cloud or had finished: the MetaDB tells which, else they run again. Only this
    server's jobs (``ids``: only those)."""
    for job in reversed(await sp.db.list_jobs(statuses=("running",), limit=1_000_000, mine=True, ids=ids)):
        if job.id in held:
            continue
        kind = KINDS.get(job.resource)
        row = await sp.db.get_iid(job.connection, kind.rtype, job.name) if kind and job.name else None
        if job.operation == "create" and row is not None:
            await sp.jobs.finish(job, True, {"IId": {"NameId": job.name, "SystemId": row.system_id.partition(":")[2]},
                                             "Reconciled": True}, None)
        elif job.operation == "delete" and kind is not None and job.name and row is None:
            await sp.jobs.finish(job, True, {"Result": "true", "Reconciled": True}, None)
        else:
            job.status, job.started_at = "queued", None
            await sp.db.update_job(job)
            log.warning("job %s (%s %s '%s') was interrupted before reaching the cloud: running it again",
                        job.id, job.operation, job.resource, job.name)
    for job in reversed(await sp.db.list_jobs(statuses=("queued",), limit=1_000_000, mine=True, ids=ids)):
        sp.jobs.enqueue(job.id)


def shutdown_deadline() -> float:
    """``SPIDER_SHUTDOWN_TIMEOUT`` seconds (default 30) that work in flight gets after SIGTERM."""
    text = os.environ.get("SPIDER_SHUTDOWN_TIMEOUT", "").strip()
    try:
        value = float(text) if text else 30.0
    except ValueError:
        raise SystemExit(f"spider: SPIDER_SHUTDOWN_TIMEOUT={text!r}: a number of seconds") from None
    if value < 0:
        raise SystemExit(f"spider: SPIDER_SHUTDOWN_TIMEOUT={text!r}: a number of seconds >= 0")
    return value


async def stop_serving(sp: "Spider", runner: web.AppRunner, deadline: float) -> str:
    """The SIGTERM drain: refuse new work, close the listener, give requests and jobs in flight
    ``deadline`` seconds, cancel the rest (their intents and jobs stay for the next start). Returns
    the one-line summary ``spider serve`` prints."""
    started = time.monotonic()
    sp.phase = "draining"
    requests = sp.admission.server.inflight
    running = sp.jobs.running
    print(f"spidertwin: stopping: {requests} request(s) and {running} job(s) in flight get up to {deadline:g} s; "
          f"{sp.jobs.queued} queued job(s) stay queued for the next start", flush=True)
    _, cancelled = await asyncio.gather(runner.cleanup(), sp.jobs.drain(deadline))
    left = await sp.db.count_open_intents()
    return (f"spidertwin: stopped in {time.monotonic() - started:.1f} s: {running - cancelled} of {running} running "
            f"job(s) finished, {cancelled} interrupted; {left} open intent(s) and the queued jobs are finished at "
            "the next start")
