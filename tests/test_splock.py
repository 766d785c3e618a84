"""SP-Lock (spider_core.splock): sponge and global modes."""

from __future__ import annotations

import asyncio
import random

import pytest

from spider_core.splock import LockManager

IDLE = ["<VPC SPLock> ", "<SG SPLock> ", "<Key SPLock> ", "<VM SPLock> "]


async def settle(rounds: int = 5) -> None:
    """Let every ready task run (no wall-clock sleeps)."""
    for _ in range(rounds):
        await asyncio.sleep(0)


class Holder:
    """A task that takes a lock, reports it, and holds it until told to let go."""

    def __init__(self, locks: LockManager, kind: str, family: str, conn: str, name: str) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        ctx = locks.write(family, conn, name) if kind == "w" else locks.read(family, conn, name)

        async def run() -> None:
            async with ctx:
                self.entered.set()
                await self.release.wait()

        self.task = asyncio.create_task(run())

    async def finish(self) -> None:
        self.release.set()
        await self.task


# ---- sponge mode -------------------------------------------------------------------------------------

async def test_writers_on_one_key_are_exclusive():
    locks = LockManager()
    a = Holder(locks, "w", "vpc", "c1", "vpc-01")
    await a.entered.wait()
    b = Holder(locks, "w", "vpc", "c1", "vpc-01")
    await settle()
    assert not b.entered.is_set()
    assert locks.snapshot()["entries"][0]["waiters"] == 1
    await a.finish()
    await b.entered.wait()
    await b.finish()
    assert locks.entry_count() == 0


async def test_writer_excludes_readers_and_readers_exclude_writer():
    locks = LockManager()
    r = Holder(locks, "r", "vm", "c1", "vm-01")
    await r.entered.wait()
    w = Holder(locks, "w", "vm", "c1", "vm-01")
    await settle()
    assert not w.entered.is_set()
    await r.finish()
    await w.entered.wait()
    r2 = Holder(locks, "r", "vm", "c1", "vm-01")
    await settle()
    assert not r2.entered.is_set()
    await w.finish()
    await r2.entered.wait()
    await r2.finish()
    assert locks.entry_count() == 0


async def test_readers_run_together():
    locks = LockManager()
    readers = [Holder(locks, "r", "sg", "c1", "sg-01") for _ in range(5)]
    await asyncio.wait_for(asyncio.gather(*(h.entered.wait() for h in readers)), 1)
    entry = locks.snapshot()["entries"][0]
    assert entry["holders"] == 5 and entry["mode"] == "read" and entry["refcount"] == 5
    for h in readers:
        await h.finish()
    assert locks.entry_count() == 0


async def test_different_keys_do_not_wait():
    locks = LockManager()
    a = Holder(locks, "w", "vpc", "c1", "vpc-01")
    await a.entered.wait()
    others = [
        Holder(locks, "w", "vpc", "c1", "vpc-02"),   # other name
        Holder(locks, "w", "vpc", "c2", "vpc-01"),   # other connection
        Holder(locks, "w", "sg", "c1", "vpc-01"),    # other family
    ]
    await asyncio.wait_for(asyncio.gather(*(h.entered.wait() for h in others)), 1)
    for h in [a, *others]:
        await h.finish()
    assert locks.entry_count() == 0


async def test_namespace_replaces_connection():
    locks = LockManager(namespace="shared")
    a = Holder(locks, "w", "vpc", "c1", "vpc-01")
    await a.entered.wait()
    b = Holder(locks, "w", "vpc", "c2", "vpc-01")  # same name, other connection: same key now
    await settle()
    assert not b.entered.is_set()
    assert locks.info()[0].startswith("<VPC SPLock> (shared:vpc-01, ")
    await a.finish()
    await b.entered.wait()
    await b.finish()


async def test_waiting_writer_blocks_later_readers_fifo():
    locks = LockManager()
    r1 = Holder(locks, "r", "key", "c1", "k")
    await r1.entered.wait()
    w = Holder(locks, "w", "key", "c1", "k")
    await settle()
    r2 = Holder(locks, "r", "key", "c1", "k")  # arrives after the writer: must not overtake it
    await settle()
    assert not w.entered.is_set() and not r2.entered.is_set()
    await r1.finish()
    await w.entered.wait()
    await settle()
    assert not r2.entered.is_set()
    await w.finish()
    await r2.entered.wait()
    await r2.finish()
    assert locks.entry_count() == 0


async def test_writer_not_starved_by_stream_of_readers():
    locks = LockManager()
    stop = asyncio.Event()
    writer_done = asyncio.Event()
    reads_after_writer_queued = 0
    writer_queued = False

    async def reader() -> None:
        nonlocal reads_after_writer_queued
        while not stop.is_set():
            async with locks.read("vm", "c", "vm-1"):
                if writer_queued and not writer_done.is_set():
                    reads_after_writer_queued += 1
                await asyncio.sleep(0)

    async def writer() -> None:
        nonlocal writer_queued
        writer_queued = True
        async with locks.write("vm", "c", "vm-1"):
            writer_done.set()

    readers = [asyncio.create_task(reader()) for _ in range(10)]
    await settle()
    w = asyncio.create_task(writer())
    await asyncio.wait_for(writer_done.wait(), 2)
    # Only readers already holding when the writer queued may finish; no new reader got in.
    assert reads_after_writer_queued <= 10
    stop.set()
    await asyncio.gather(w, *readers)
    assert locks.entry_count() == 0


async def test_storm_of_mixed_tasks_leaves_no_entries():
    locks = LockManager()
    rng = random.Random(7)
    inside: dict[tuple[str, str], list[int]] = {}  # key -> [readers, writers]
    violations = 0

    async def one(i: int) -> None:
        nonlocal violations
        family = rng.choice(["vpc", "sg", "vm"])
        name = f"n{rng.randrange(5)}"
        write = rng.random() < 0.4
        key = (family, name)
        ctx = locks.write(family, "c", name) if write else locks.read(family, "c", name)
        async with ctx:
            state = inside.setdefault(key, [0, 0])
            if write:
                state[1] += 1
                if state[0] or state[1] > 1:
                    violations += 1
            else:
                state[0] += 1
                if state[1]:
                    violations += 1
            for _ in range(rng.randrange(3)):
                await asyncio.sleep(0)
            if write:
                state[1] -= 1
            else:
                state[0] -= 1

    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(1000))), 10)
    assert violations == 0
    assert locks.entry_count() == 0
    assert locks.info() == IDLE
    snap = locks.snapshot()
    assert snap["entries"] == []
    assert sum(s["acquired"] for s in snap["stats"].values()) == 1000


async def test_cancel_while_waiting_leaves_no_entry():
    locks = LockManager()
    a = Holder(locks, "w", "vpc", "c", "v")
    await a.entered.wait()
    b = Holder(locks, "w", "vpc", "c", "v")
    await settle()
    assert locks.snapshot()["entries"][0]["refcount"] == 2
    b.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b.task
    assert locks.snapshot()["entries"][0]["refcount"] == 1
    assert locks.snapshot()["entries"][0]["waiters"] == 0
    await a.finish()
    assert locks.entry_count() == 0
    # the key still works afterwards
    async with locks.write("vpc", "c", "v"):
        pass
    assert locks.entry_count() == 0


async def test_cancelled_waiting_writer_unblocks_readers_behind_it():
    locks = LockManager()
    r1 = Holder(locks, "r", "sg", "c", "s")
    await r1.entered.wait()
    w = Holder(locks, "w", "sg", "c", "s")
    await settle()
    r2 = Holder(locks, "r", "sg", "c", "s")
    await settle()
    assert not r2.entered.is_set()
    w.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await w.task
    await asyncio.wait_for(r2.entered.wait(), 1)  # the queued reader joins the running one
    await r1.finish()
    await r2.finish()
    assert locks.entry_count() == 0


async def test_cancel_after_grant_before_resume_gives_lock_back():
    locks = LockManager()
    a = locks.write("vm", "c", "x")
    await a.__aenter__()
    b = Holder(locks, "w", "vm", "c", "x")
    await settle()
    await a.__aexit__(None, None, None)  # grants b (no suspension point), b has not run yet
    assert locks.snapshot()["entries"][0]["holders"] == 0
    b.task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await b.task
    assert not b.entered.is_set()
    assert locks.entry_count() == 0
    async with asyncio.timeout(1):
        async with locks.write("vm", "c", "x"):
            pass


async def test_exception_inside_block_releases():
    locks = LockManager()
    with pytest.raises(RuntimeError):
        async with locks.write("key", "c", "k"):
            raise RuntimeError("boom")
    assert locks.entry_count() == 0


async def test_info_idle_and_busy():
    locks = LockManager()
    assert locks.info() == IDLE
    a = Holder(locks, "w", "vm", "mock-config01", "vm-01")
    await a.entered.wait()
    b = Holder(locks, "r", "vm", "mock-config01", "vm-01")
    c = Holder(locks, "r", "vm", "mock-config01", "vm-01")
    n = Holder(locks, "w", "nlb", "mock-config01", "nlb-01")  # not shown by info()
    await settle()
    info = locks.info()
    assert info[:3] == IDLE[:3]
    assert info[3].startswith("<VM SPLock> (mock-config01:vm-01, 0x")
    assert info[3].endswith(":3) ")
    assert len(info) == 4
    for h in (a, b, c, n):
        await h.finish()
    assert locks.info() == IDLE


async def test_snapshot_shape_and_stats():
    locks = LockManager()
    a = Holder(locks, "w", "vpc", "c", "vpc-01")
    await a.entered.wait()
    b = Holder(locks, "w", "vpc", "c", "vpc-01")
    c = Holder(locks, "r", "vpc", "c", "vpc-01")
    await settle()
    snap = locks.snapshot()
    assert snap["mode"] == "sponge"
    assert "T" in snap["since"]
    [entry] = snap["entries"]
    assert entry["family"] == "vpc" and entry["connection"] == "c" and entry["name"] == "vpc-01"
    assert entry["holders"] == 1 and entry["mode"] == "write" and entry["waiters"] == 2
    assert entry["refcount"] == 3 and entry["held_for_ms"] >= 0.0
    assert snap["stats"]["vpc"]["max_waiters"] == 2
    for h in (a, b, c):
        await h.finish()
    snap = locks.snapshot()
    assert snap["entries"] == []
    vpc = snap["stats"]["vpc"]
    assert vpc["acquired"] == 3
    for measure in ("wait_ms", "hold_ms"):
        p = vpc[measure]
        assert set(p) == {"p50", "p95", "p99", "max"}
        assert 0.0 <= p["p50"] <= p["p95"] <= p["p99"] <= p["max"]
    assert vpc["wait_ms"]["max"] > 0.0  # b and c waited


def test_from_env(monkeypatch):
    monkeypatch.delenv("SPIDER_LOCK_MODE", raising=False)
    monkeypatch.delenv("PERMISSION_BASED_CONTROL_MODE", raising=False)
    locks = LockManager.from_env()
    assert locks.mode == "sponge" and locks.namespace == ""
    monkeypatch.setenv("SPIDER_LOCK_MODE", "GLOBAL")
    monkeypatch.setenv("PERMISSION_BASED_CONTROL_MODE", "team-a")
    locks = LockManager.from_env()
    assert locks.mode == "global" and locks.namespace == "team-a"
    monkeypatch.setenv("SPIDER_LOCK_MODE", "bogus")
    with pytest.raises(ValueError):
        LockManager.from_env()
    with pytest.raises(ValueError):
        LockManager("bogus")


# ---- global mode -------------------------------------------------------------------------------------

async def test_global_mode_serialises_names_in_a_family():
    locks = LockManager("global")
    a = Holder(locks, "r", "vpc", "c1", "vpc-01")
    await a.entered.wait()
    b = Holder(locks, "r", "vpc", "c2", "vpc-02")  # other name, other conn, even a read: waits
    other = Holder(locks, "w", "sg", "c1", "sg-01")  # other family: runs
    await asyncio.wait_for(other.entered.wait(), 1)
    await settle()
    assert not b.entered.is_set()
    info = locks.info()
    assert "(c1:vpc-01, " in info[0] and "(c2:vpc-02, " in info[0]
    snap = locks.snapshot()
    assert snap["mode"] == "global"
    assert {e["name"] for e in snap["entries"]} == {"vpc-01", "vpc-02", "sg-01"}
    await a.finish()
    await b.entered.wait()
    await b.finish()
    await other.finish()
    assert locks.entry_count() == 0
    assert locks.info() == IDLE
    assert locks._family_locks == {}


async def test_global_mode_storm_and_cancel():
    locks = LockManager("global")
    running = 0
    peak = 0

    async def one(i: int) -> None:
        nonlocal running, peak
        ctx = locks.read("vm", "c", f"vm-{i % 7}") if i % 2 else locks.write("vm", "c", f"vm-{i % 7}")
        async with ctx:
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0)
            running -= 1

    tasks = [asyncio.create_task(one(i)) for i in range(200)]
    await settle(2)
    tasks[-1].cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    assert peak == 1
    assert locks.entry_count() == 0
    assert locks._family_locks == {}
