"""Asynchronous jobs: a create, delete or VM control submitted now and run in the background.

A job is written to the MetaDB (``queued``) before the submitter gets its id, so it survives a
restart; it becomes ``running`` when a worker takes it and ends ``done`` (with the operation's
answer), ``failed`` (with CB-Spider's error text) or ``cancelled`` (deleted while still queued).

The runner does not know HTTP: the REST layer hands it an ``Execute`` function that replays the job's
recorded request through the same route handler a synchronous request uses, so both answer alike.
At most ``workers`` jobs run at once (each job's CSP calls still go through its connection's request
limiter); at most ``max_queued`` wait, past that a submit is refused with 503.

A job that was running when the server stopped keeps ``running`` in the MetaDB; the next start
settles it (``spider_core.lifecycle``): through its intent when it had reached the cloud, else by
looking at the MetaDB, else by running it again.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import os
from collections import deque
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable

from spider_core import ids
from spider_core.errors import SpiderError
from spider_core.metadb import JobRow, MetaStore

log = logging.getLogger(__name__)

STATUSES = ("queued", "running", "done", "failed", "cancelled")
FINISHED = ("done", "failed", "cancelled")
MAX_WAIT = 120.0  # longest long-poll (``?wait=S``)
POLL = 0.5  # a long-poll on a shared MetaDB also re-reads the job this often (another replica may run it)

CURRENT_JOB: contextvars.ContextVar[str] = contextvars.ContextVar("spidertwin_job", default="")
"""The job a service call runs for (set by the runner), so the intent it records names it."""

Execute = Callable[[JobRow], Awaitable[tuple[bool, Any, str | None]]]
"""``execute(job) -> (ok, result, error)``."""


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat()


class JobError(SpiderError):
    """A job request that cannot be served (unknown id, not cancellable, queue full)."""


class JobRunner:
    def __init__(self, db: MetaStore, *, workers: int | None = None, max_queued: int | None = None) -> None:
        self.db = db
        self.workers = workers or int(os.environ.get("SPIDER_JOB_WORKERS", "512"))
        self.max_queued = max_queued or int(os.environ.get("SPIDER_JOB_QUEUE", "100000"))
        self.execute: Execute | None = None
        self.on_finish: Callable[[JobRow], None] | None = None   # metrics
        self._queue: deque[str] = deque()
        self._wakeup = asyncio.Event()
        self._slots = asyncio.Semaphore(self.workers)
        self._running: dict[str, asyncio.Task] = {}
        self._finished: dict[str, asyncio.Event] = {}
        self._cancelled: set[str] = set()
        self._dispatcher: asyncio.Task | None = None
        self._accepting = True

    @property
    def queued(self) -> int:
        return len(self._queue)

    @property
    def running(self) -> int:
        return len(self._running)

    # ---- life cycle ---------------------------------------------------------------------------

    def start(self, execute: Execute) -> None:
        self.execute = execute
        if self._dispatcher is None:
            self._dispatcher = asyncio.get_running_loop().create_task(self._dispatch(), name="spider-jobs")

    def enqueue(self, job_id: str) -> None:
        """Queue a job already stored as ``queued`` (a submit, or one resumed at start)."""
        self._queue.append(job_id)
        self._finished.setdefault(job_id, asyncio.Event())
        self._wakeup.set()

    async def drain(self, deadline: float) -> int:
        """Stop starting jobs; wait up to ``deadline`` seconds for the running ones, then cancel them
        (their MetaDB state stays ``running`` and their intents open: the next start settles them).
        Queued jobs stay queued in the MetaDB. Returns how many were cancelled."""
        self._accepting = False
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)
            self._dispatcher = None
        tasks = list(self._running.values())
        if not tasks:
            return 0
        _, pending = await asyncio.wait(tasks, timeout=max(0.0, deadline))
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        return len(pending)

    # ---- submit, read, cancel --------------------------------------------------------------------

    async def submit(self, job: JobRow) -> JobRow:
        if not self._accepting:
            raise JobError("Spider is shutting down: no new jobs are accepted", status=503)
        if len(self._queue) >= self.max_queued:
            raise JobError(f"the job queue is full ({self.max_queued} jobs waiting); retry later", status=503)
        job.id = job.id or "job-" + ids.new_xid()
        job.status, job.created_at = "queued", job.created_at or now_iso()
        await self.db.put_job(job)
        self.enqueue(job.id)
        return job

    async def get(self, job_id: str) -> JobRow:
        job = await self.db.get_job(job_id)
        if job is None:
            raise JobError(f"job '{job_id}' not found", status=404)
        return job

    async def wait(self, job_id: str, seconds: float) -> JobRow:
        """The job once finished, or as it is after ``seconds`` (a long-poll)."""
        job = await self.get(job_id)
        if job.status in FINISHED or seconds <= 0:
            return job
        event = self._finished.setdefault(job_id, asyncio.Event())
        if not self.db.shared:
            try:
                await asyncio.wait_for(event.wait(), min(seconds, MAX_WAIT))
            except asyncio.TimeoutError:
                pass
            return await self.get(job_id)
        # On a shared MetaDB another replica may run it: look again every POLL seconds as well.
        deadline = asyncio.get_running_loop().time() + min(seconds, MAX_WAIT)
        while True:
            left = deadline - asyncio.get_running_loop().time()
            try:
                await asyncio.wait_for(event.wait(), max(0.0, min(left, POLL)))
            except asyncio.TimeoutError:
                pass
            job = await self.get(job_id)
            if job.status in FINISHED or left <= POLL:
                return job

    async def cancel(self, job_id: str) -> JobRow:
        job = await self.get(job_id)
        if job.status == "queued" and await self.db.set_job_status(job_id, "cancelled", only_if="queued"):
            self._cancelled.add(job_id)
            job = await self.get(job_id)
            self._finish(job)
            return job
        job = await self.get(job_id)
        if job.status == "running":
            raise JobError(f"job '{job_id}' is running: only a job that has not started can be cancelled",
                           status=409)
        raise JobError(f"job '{job_id}' has already finished ({job.status})", status=409)

    async def record(self, job: JobRow) -> None:
        """Store a finished job made elsewhere (what a restart reconciled)."""
        job.id = job.id or "job-" + ids.new_xid()
        job.created_at = job.created_at or now_iso()
        await self.db.put_job(job)
        self._finish(job)

    async def finish(self, job: JobRow, ok: bool, result: Any, error: str | None) -> None:
        job.status = "done" if ok else "failed"
        job.result, job.error, job.finished_at = result, error, now_iso()
        await self.db.update_job(job)
        self._finish(job)

    def _finish(self, job: JobRow) -> None:
        event = self._finished.pop(job.id, None)
        if event is not None:
            event.set()
        if self.on_finish is not None:
            self.on_finish(job)

    # ---- running ----------------------------------------------------------------------------------

    async def _dispatch(self) -> None:
        while True:
            while not self._queue:
                self._wakeup.clear()
                await self._wakeup.wait()
            await self._slots.acquire()
            if not self._queue:
                self._slots.release()
                continue
            job_id = self._queue.popleft()
            if job_id in self._cancelled:
                self._cancelled.discard(job_id)
                self._slots.release()
                continue
            task = asyncio.get_running_loop().create_task(self._run(job_id), name=f"spider-{job_id}")
            self._running[job_id] = task

    async def _run(self, job_id: str) -> None:
        try:
            job = await self.db.get_job(job_id)
            if job is None or job.status != "queued":
                return
            job.status, job.started_at = "running", now_iso()
            await self.db.update_job(job)
            token = CURRENT_JOB.set(job.id)
            try:
                assert self.execute is not None
                ok, result, error = await self.execute(job)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 - a job must end, whatever its handler did
                log.exception("job %s failed unexpectedly", job_id)
                ok, result, error = False, None, f"Internal Server Error: {type(exc).__name__}"
            finally:
                CURRENT_JOB.reset(token)
            await self.finish(job, ok, result, error)
        except asyncio.CancelledError:
            log.warning("job %s interrupted by the shutdown; the next start finishes it", job_id)
            raise
        finally:
            self._running.pop(job_id, None)
            self._slots.release()
