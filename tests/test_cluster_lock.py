"""The cluster's rows on a real PostgreSQL: the sponge lock across replicas, leases, and the claim of a
dead replica's work (``spider_core.metadb.postgres.ClusterStore``, ``cluster_lock``, ``replicas``)."""

from __future__ import annotations

import asyncio

import pytest

from pg_helpers import fresh_database
from spider_core.cluster_lock import ClusterLock
from spider_core.metadb import IIDRow, IntentRow, JobRow, from_env
from spider_core.metadb.postgres import ClusterStore, LockStep
from spider_core.replicas import Replica
from spider_core.splock import LockManager, Need

LEASE = 30.0


@pytest.fixture
async def two(tmp_path):
    """Two replicas' views of one fresh database: (store, db) each, both joined."""
    env = fresh_database()
    out = []
    for name in ("r1", "r2"):
        db = from_env(tmp_path / name, env)
        await db.open()
        db.replica = name
        store = ClusterStore(db)
        await store.join(name, f"http://{name}")
        out.append((store, db))
    try:
        yield out
    finally:
        for _, db in out:
            await db.close()


async def test_a_write_excludes_other_replicas_and_reads_share(two):
    (s1, _), (s2, _) = two
    w = [("vm", "c", "vm-1", True)]
    r = [("vm", "c", "vm-1", False)]
    assert await s1.try_lock("r1", "r1/1", w, "POST /spider/vm", LEASE)
    assert not await s2.try_lock("r2", "r2/1", w, "POST /spider/vm", LEASE)   # another replica's write
    assert not await s2.try_lock("r2", "r2/2", r, "GET /spider/vm/vm-1", LEASE)
    assert await s1.try_lock("r1", "r1/2", r, "GET", LEASE)   # a replica's own rows never block it
    holders, waiters = await s1.lock_rows()
    assert {(h[3], h[4]) for h in holders} == {("r1", 1), ("r1", 0)}
    assert {(w_[3], w_[5]) for w_ in waiters} == {("r2", "POST /spider/vm"), ("r2", "GET /spider/vm/vm-1")}
    await s1.unlock(["r1/1", "r1/2"])
    assert await s2.try_lock("r2", "r2/2", r, "GET", LEASE)    # reads share across replicas
    assert await s1.try_lock("r1", "r1/3", r, "GET", LEASE)
    assert not await s1.try_lock("r1", "r1/4", w, "POST", LEASE)
    # r2's GET waits no more (its waiter row went with the grant); its POST still waits, and r1's now
    assert {(w_[3], w_[5]) for w_ in (await s1.lock_rows())[1]} == {("r2", "POST /spider/vm"), ("r1", "POST")}


async def test_all_or_none_of_a_requests_locks(two):
    (s1, _), (s2, _) = two
    assert await s1.try_lock("r1", "r1/1", [("sg", "c", "sg-b", True)], "x", LEASE)
    plan = [("vpc", "c", "vpc-1", False), ("sg", "c", "sg-a", False), ("sg", "c", "sg-b", False), ("vm", "c", "v", True)]
    assert not await s2.try_lock("r2", "r2/1", plan, "POST /spider/vm", LEASE)
    holders, _ = await s1.lock_rows()
    assert [h[2] for h in holders] == ["sg-b"]  # nothing of the refused request was kept


async def test_a_dead_replicas_locks_stop_counting_and_its_work_is_claimed(two):
    (s1, db1), (s2, db2) = two
    await db2.open_intent(IntentRow("in-r2", "create", "c", "vm", "vm-9", sp_uuid="vm-9-x"))
    await db2.put_job(JobRow("job-q", "create", "vm", "vm-8", "c", "queued", "async", {}))
    await db2.put_job(JobRow("job-d", "create", "vm", "vm-7", "c", "done", "async", {}))
    assert await s2.try_lock("r2", "r2/1", [("vm", "c", "vm-9", True)], "POST", LEASE)
    assert not await s1.try_lock("r1", "r1/1", [("vm", "c", "vm-9", True)], "POST", LEASE)
    assert await s1.expired("r1", LEASE) == []
    await db1._write([("UPDATE replicas SET last_seen = last_seen - 100 WHERE id = ?", ("r2",))])  # r2 fell silent
    assert await s1.try_lock("r1", "r1/2", [("vm", "c", "vm-9", True)], "POST", LEASE)  # its rows stop counting
    assert await s1.expired("r1", LEASE) == ["r2"]
    claims = await asyncio.gather(s1.claim("r2", "r1", LEASE), s1.claim("r2", "r1", LEASE))
    assert sorted(c is None for c in claims) == [False, True]  # exactly one survivor wins the claim
    intents, jobs = next(c for c in claims if c is not None)
    assert intents == ["in-r2"] and jobs == ["job-q"]  # finished jobs stay where they are
    assert [i.id for i in await db1.list_intents()] == ["in-r2"]
    assert not await s2.heartbeat("r2")  # r2 learns it was fenced
    assert [r[0] for r in await s1.replicas(LEASE)] == ["r1"]


async def test_waiters_are_woken_by_notify_not_by_polling(two):
    """A NOTIFY names the keys given back: their waiters look again at once, the others sleep on."""
    (s1, db1), (s2, db2) = two
    lock1, lock2 = ClusterLock(s1, "r1", LEASE), ClusterLock(s2, "r2", LEASE)
    db2.on_splock_released.append(lock2.wake)
    held = {k: await lock1.acquire("c", [("key", k, True)], "POST") for k in ("k1", "k2")}
    waiters = {k: asyncio.create_task(lock2.acquire("c", [("key", k, True)], "POST")) for k in ("k1", "k2")}
    await asyncio.sleep(1.5)  # the backoff has grown past 0.5 s by now
    assert not any(w.done() for w in waiters.values()) and lock2.waits == 2
    loop = asyncio.get_running_loop()
    released = loop.time()
    await s1.unlock([held["k1"]])
    await asyncio.wait_for(waiters["k1"], 5)
    assert loop.time() - released < 0.5  # the NOTIFY woke it, not the next poll
    assert not waiters["k2"].done()
    await s1.unlock([held["k2"]])
    await asyncio.wait_for(waiters["k2"], 5)


async def test_lock_manager_holds_across_two_managers_on_one_database(two):
    """Two LockManagers (two replicas) on one key: the second waits until the first gives it back."""
    (s1, db1), (s2, db2) = two
    managers = []
    for store, db, name in ((s1, db1, "r1"), (s2, db2, "r2")):
        m = LockManager("sponge")
        m.cluster = ClusterLock(store, name, LEASE)
        db.on_splock_released.append(m.cluster.wake)
        managers.append(m)
    order: list[str] = []

    async def create(m: LockManager, who: str) -> None:
        async with m.write("vpc", "c", "same"):
            order.append(f"{who} in")
            await asyncio.sleep(0.3)
            order.append(f"{who} out")

    await asyncio.gather(create(managers[0], "r1"), create(managers[1], "r2"))
    assert order in (["r1 in", "r1 out", "r2 in", "r2 out"], ["r2 in", "r2 out", "r1 in", "r1 out"])
    for m in managers:
        await m.cluster.flush()
    assert (await s1.lock_rows()) == ([], [])


async def test_replica_tick_claims_and_hands_over(two):
    (s1, db1), (s2, db2) = two
    await db2.open_intent(IntentRow("in-x", "delete", "c", "vpc", "v"))
    await db1._write([("UPDATE replicas SET last_seen = 0 WHERE id = ?", ("r2",))])  # as a clean stop leaves it
    replica = Replica(s1, "r1", lease=LEASE)
    handed: list[tuple[list[str], list[str]]] = []

    async def take_over(intents: list[str], jobs: list[str]) -> None:
        handed.append((intents, jobs))

    await replica.tick(take_over)
    assert handed == [(["in-x"], [])] and replica.claimed == ["r2"] and replica.healthy
    fenced = Replica(s2, "r2", lease=LEASE)
    await fenced.tick(take_over)
    assert fenced.fenced and not fenced.healthy


def _managers(two) -> list[LockManager]:
    managers = []
    for store, db in two:
        m = LockManager("sponge")
        m.cluster = ClusterLock(store, db.replica, LEASE)
        db.on_splock_released.append(m.cluster.wake)
        managers.append(m)
    return managers


async def test_a_create_takes_its_locks_with_its_check_and_intent(two):
    """``spider_lock_open_intent``: a lock another replica holds refuses the whole step (no intent, only a
    waiter row); once given back the create takes its lock and records its intent in one call; a name
    already mapped answers its row and records nothing."""
    (s1, db1), (s2, db2) = two
    keys = [("vpc", "c", "v1", True)]
    assert await s1.try_lock("r1", "r1/1", keys, "POST", LEASE)
    intent = db2._intent_params(IntentRow("in-a", "create", "c", "vpc", "v1", sp_uuid="v1-x"))
    assert await s2.lock_open_intent("r2/1", keys, "POST", LEASE, None, intent) == (False, None)
    assert await db1.list_intents() == [] and await db2.list_intents() == []
    holders, waiters = await s1.lock_rows()
    assert [(h[3], h[2]) for h in holders] == [("r1", "v1")] and [w[3] for w in waiters] == ["r2"]
    await s1.unlock(["r1/1"])
    assert await s2.lock_open_intent("r2/1", keys, "POST", LEASE, None, intent) == (True, None)
    assert [(i.id, i.sp_uuid) for i in await db2.list_intents()] == [("in-a", "v1-x")]
    holders, waiters = await s1.lock_rows()
    assert [(h[3], h[5]) for h in holders] == [("r2", "POST")] and waiters == []
    # r2 maps the name and gives the lock back: r1's create of the same name finds the row
    await db2.insert_iids([IIDRow("c", "vpc", "v1", "v1-x:vpc-1")], intent="in-a")
    await s2.unlock(["r2/1"])
    again = db1._intent_params(IntentRow("in-b", "create", "c", "vpc", "v1"))
    taken, row = await s1.lock_open_intent("r1/2", keys, "POST", LEASE, None, again)
    assert taken and (row.name, row.system_id) == ("v1", "v1-x:vpc-1")
    assert await db1.list_intents() == []
    # a subnet's name is checked in its own VPC only
    sub = db1._intent_params(IntentRow("in-s", "create", "c", "subnet", "s1", owner_vpc="v2"))
    await db1.insert_iids([IIDRow("c", "subnet", "s1", "s1-x:sub-1", owner_vpc="v1")])
    assert await s1.lock_open_intent("r1/3", [("subnet", "c", "v2/s1", True)], "POST", LEASE, "v2", sub) == (True, None)
    assert [i.id for i in await db1.list_intents()] == ["in-s"]


async def test_deferred_locks_are_taken_before_any_other_step(two):
    """A guard with ``defer_cluster`` takes nothing in the database until the request's first step: the
    create's intent step takes the locks with it, and a plain read or a cloud call takes them first."""
    from spider_core.cluster_lock import settle_deferred
    (s1, db1), (s2, db2) = two
    m1, m2 = _managers(two)
    async with m1.hold("c", [Need("vpc", "v1", True)], defer_cluster=True):
        assert (await s1.lock_rows()) == ([], [])       # deferred: nothing taken yet
        assert await db1.get_iid("c", "vpc", "v1") is None   # a read takes them first
        assert [h[2] for h in (await s1.lock_rows())[0]] == ["v1"]
    await m1.cluster.flush()
    async with m1.hold("c", [Need("vpc", "v2", True)], defer_cluster=True):
        await settle_deferred()                          # what a cloud call does first
        assert [h[2] for h in (await s1.lock_rows())[0]] == ["v2"]
    await m1.cluster.flush()
    async with m1.hold("c", [Need("vpc", "v3", True)], defer_cluster=True):
        pass                                            # never taken: nothing to give back
    assert (await s1.lock_rows()) == ([], [])


async def test_same_name_deferred_creates_on_two_replicas_give_one_intent(two):
    """Two replicas create one name at once through the fused step: one records its intent and maps
    the name; the other waits for the lock, then finds the row."""
    (s1, db1), (s2, db2) = two
    managers = _managers(two)
    outcomes: list[str] = []

    async def create(m: LockManager, db, who: str) -> None:
        async with m.hold("c", [Need("vpc", "same", True)], defer_cluster=True):
            row = IntentRow(f"in-{who}", "create", "c", "vpc", "same", sp_uuid=f"same-{who}")
            if await db.open_intent_unless_mapped(row) is not None:
                outcomes.append(f"{who} exists")
                return
            await asyncio.sleep(0.2)                    # the cloud call
            await db.insert_iids([IIDRow("c", "vpc", "same", f"same-{who}:vpc")], intent=row.id)
            outcomes.append(f"{who} created")

    await asyncio.gather(create(managers[0], db1, "r1"), create(managers[1], db2, "r2"))
    assert sorted(o.split()[1] for o in outcomes) == ["created", "exists"]
    assert await db1.list_intents() == [] and await db2.list_intents() == []
    for m in managers:
        await m.cluster.flush()
    assert (await s1.lock_rows()) == ([], [])


async def test_concurrent_creates_take_their_locks_together(two):
    """Creates of one replica that reach their lock-and-intent step at once share one round trip
    (``spider_lock_open_intents``), each decided on its own: a free name opens its intent, a mapped
    name answers its row, a name another replica holds waits until it is given back."""
    (s1, db1), (s2, db2) = two
    m1, _ = _managers(two)
    await db1.insert_iids([IIDRow("c", "vpc", "v3", "v3-x:vpc-3")])
    assert await s2.try_lock("r2", "r2/1", [("vpc", "c", "v5", True)], "POST", LEASE)
    alone: list[str] = []
    single = db1.steps._alone

    async def spy(step):
        if isinstance(step, LockStep):
            alone.append(step.intent[6])
        return await single(step)

    db1.steps._alone = spy

    async def create(i: int) -> str:
        async with m1.hold("c", [Need("vpc", f"v{i}", True)], defer_cluster=True):
            row = await db1.open_intent_unless_mapped(IntentRow(f"in-{i}", "create", "c", "vpc", f"v{i}"))
            return f"exists {row.system_id}" if row else "opened"

    held = asyncio.create_task(create(5))
    results = await asyncio.gather(*(create(i) for i in range(10) if i != 5))
    assert [name for name in alone if name != "v5"] == []   # one group: none went alone (v5 retries later)
    assert results == ["opened"] * 3 + ["exists v3-x:vpc-3"] + ["opened"] * 5
    await asyncio.sleep(0.3)
    assert not held.done()                              # v5 is r2's
    assert [(w[2], w[3]) for w in (await s1.lock_rows())[1]] == [("v5", "r1")]
    await s2.unlock(["r2/1"])
    assert await asyncio.wait_for(held, 5) == "opened"
    assert sorted(i.id for i in await db1.list_intents()) == sorted(f"in-{i}" for i in range(10) if i != 3)
    await m1.cluster.flush()
    assert (await s1.lock_rows()) == ([], [])
