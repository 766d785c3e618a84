"""The MetaDB contract on both engines: SQLite (the default) and a real PostgreSQL.

The same tests run against each engine: atomic IID inserts, duplicates, LIKE escaping, credentials
sealed at rest, intents and jobs with their owners, migrations recorded once, and CB-Spider's four
``SPIDER_METADB_*`` variables selecting PostgreSQL.
"""

from __future__ import annotations

import asyncio
import subprocess

import pytest

from pg_helpers import fresh_database, postgres_or_skip
from spider_core.errors import SpiderError
from spider_core.metadb import DuplicateRow, IIDRow, IntentRow, JobRow, from_env, migrations, postgres_settings
from spider_core.model import ConnectionConfigInfo, CredentialInfo, DriverInfo, KeyValue, RegionInfo


@pytest.fixture(params=["sqlite", "postgres"])
async def db(request, tmp_path):
    env = {} if request.param == "sqlite" else fresh_database()
    store = from_env(tmp_path, env)
    await store.open()
    store.replica = "r1"
    try:
        yield store
    finally:
        await store.close()


async def test_engine_is_chosen_by_cb_spider_variables(tmp_path):
    assert from_env(tmp_path, {}).engine == "sqlite"
    env = {"SPIDER_METADB_ENDPOINT": "db.example:5433", "SPIDER_METADB_USER": "u",
           "SPIDER_METADB_PASSWORD": "p", "SPIDER_METADB_DATABASE": "d"}
    s = postgres_settings(env)
    assert (s.host, s.port, s.user, s.database, s.pool_size) == ("db.example", 5433, "u", "d", 16)
    assert from_env(tmp_path, env).engine == "postgres"
    for bad in ("db:notaport", "db:5\u00b2", "db:\u0665432", "db:70000"):
        with pytest.raises(SpiderError, match="host:port"):
            postgres_settings({**env, "SPIDER_METADB_ENDPOINT": bad})
    with pytest.raises(SpiderError, match="SPIDER_METADB_POOL"):
        postgres_settings({**env, "SPIDER_METADB_POOL": "1\u00b2"})
    assert postgres_settings({**env, "SPIDER_METADB_ENDPOINT": "/run/postgresql:5432"}).host == "/run/postgresql"
    with pytest.raises(SpiderError, match="SPIDER_METADB_USER"):
        postgres_settings({**env, "SPIDER_METADB_USER": ""})


async def test_unreachable_postgres_is_a_clear_error(tmp_path):
    from spidercluster.procs import free_port
    store = from_env(tmp_path, {"SPIDER_METADB_ENDPOINT": f"127.0.0.1:{free_port()}", "SPIDER_METADB_USER": "u",
                                "SPIDER_METADB_PASSWORD": "p", "SPIDER_METADB_DATABASE": "d"})
    with pytest.raises(SpiderError, match="not reachable"):
        await store.open()


async def test_insert_is_all_or_nothing(db):
    await db.insert_iids([IIDRow("c", "vpc", "v1", "u1:x1")])
    before = await db.dump()
    with pytest.raises(DuplicateRow):
        await db.insert_iids([IIDRow("c", "vpc", "v2", "u2:x2"), IIDRow("c", "vpc", "v1", "u3:x3")])
    assert await db.dump() == before
    assert await db.get_iid("c", "vpc", "v2") is None
    assert (await db.find_iid_by_csp_id("c", "vpc", "x1")).name == "v1"
    assert await db.find_iid_by_csp_id("c", "vpc", "x%") is None  # LIKE wildcards are escaped


async def test_concurrent_inserts_of_one_key_give_one_row(db):
    results = await asyncio.gather(*(db.insert_iids([IIDRow("c", "vm", "same", f"u{i}:x{i}")]) for i in range(20)),
                                   return_exceptions=True)
    assert sum(r is None for r in results) == 1
    assert all(isinstance(r, DuplicateRow) for r in results if r is not None)
    assert await db.count_iids("vm", "c") == 1


async def test_concurrent_creates_store_together_and_fail_alone(db):
    """Many creates storing at once (grouped into one round trip on PostgreSQL): each call lands whole
    with its intent closed, a duplicate fails only its own call (none of its rows land), and a call
    that cannot be written at all fails alone too."""
    await db.insert_iids([IIDRow("c", "vpc", "taken", "t:1")])
    for i in range(30):
        await db.open_intent(IntentRow(f"in-{i}", "create", "c", "vpc", f"v{i}"))
    calls = [([IIDRow("c", "vpc", f"v{i}", f"u{i}:x{i}"), IIDRow("c", "subnet", "s1", f"s{i}:y{i}", owner_vpc=f"v{i}")],
              f"in-{i}") for i in range(30)]
    calls[7] = ([IIDRow("c", "vpc", "v7", "u7:x7"), IIDRow("c", "vpc", "taken", "t:2")], "in-7")
    failing = [7]
    if db.engine == "postgres":   # a NUL in a text value: PostgreSQL refuses the value itself
        calls[9] = ([IIDRow("c", "vpc", "v9", "bad\x00id")], "in-9")
        failing.append(9)
    results = await asyncio.gather(*(db.insert_iids(rows, intent=i) for rows, i in calls), return_exceptions=True)
    assert isinstance(results[7], DuplicateRow) and all(isinstance(results[i], Exception) for i in failing)
    assert [i for i, r in enumerate(results) if r is not None] == failing
    assert sorted(i.id for i in await db.list_intents()) == [f"in-{i}" for i in failing]   # the failed calls' stay open
    assert [await db.get_iid("c", "vpc", f"v{i}") for i in failing] == [None] * len(failing)
    assert (await db.get_iid("c", "vpc", "taken")).system_id == "t:1"
    stored = 30 - len(failing)
    assert await db.count_iids("vpc", "c") == stored + 1 and await db.count_iids("subnet", "c") == stored
    assert (await db.get_iid("c", "subnet", "s1", "v29")).system_id == "s29:y29"
    if db.engine == "postgres":   # without a bad value the group is one round trip: no call goes alone
        alone: list[str] = []
        single = db.steps._alone

        async def spy(step):
            alone.append(step)
            return await single(step)

        db.steps._alone = spy
        more = await asyncio.gather(*(db.insert_iids([IIDRow("c", "key", f"k{i}", f"k{i}:x")]) for i in range(10)),
                                    db.insert_iids([IIDRow("c", "vpc", "taken", "t:3")]), return_exceptions=True)
        assert alone == [] and more[:10] == [None] * 10 and isinstance(more[10], DuplicateRow)
        assert await db.count_iids("key", "c") == 10


async def test_iid_queries_and_children(db):
    await db.insert_iids([IIDRow("c", "vpc", "v1", "a:1"), IIDRow("c", "subnet", "s1", "b:2", owner_vpc="v1"),
                          IIDRow("c", "subnet", "s2", "b:3", owner_vpc="v1", zone="z1")])
    assert [r.name for r in await db.list_iids("c", "subnet", "v1")] == ["s1", "s2"]
    assert (await db.get_iids("c", [("subnet", "s2", None), ("vpc", "nope", None)]))[0].zone == "z1"
    await db.delete_iid_with_children("c", "vpc", "v1", "", "subnet")
    assert (await db.dump())["iid_infos"] == []


async def test_connection_info_round_trip_and_credentials_sealed(db, tmp_path):
    await db.put_driver(DriverInfo("d1", "MOCK", "x.so"))
    sealed = await db.put_credential(CredentialInfo("c1", "MOCK", [KeyValue("MockName", "plain-value-123")]))
    await db.put_region(RegionInfo("r1", "MOCK", [KeyValue("Region", "default")], ["z1"]))
    await db.put_connection(ConnectionConfigInfo("conn", "MOCK", "d1", "c1", "r1"))
    assert sealed.key_values[0].value != "plain-value-123"
    assert (await db.get_credential("c1", decrypt=True)).key_values[0].value == "plain-value-123"
    assert (await db.get_region("r1")).available_zones == ["z1"]
    assert [c.config_name for c in await db.list_connections("mock")] == ["conn"]
    stored = [row for row in (await db.dump())["credential_infos"]]
    assert "plain-value-123" not in repr(stored)  # what the database holds is sealed
    assert await db.delete_connection("conn") and not await db.delete_connection("conn")


async def test_a_create_intent_is_opened_only_for_a_free_name(db):
    vpc = IIDRow("c", "vpc", "v1", "v1-x:vpc-1")
    subnet = IIDRow("c", "subnet", "s1", "s1-x:sub-1", owner_vpc="v1")
    await db.insert_iids([vpc, subnet])
    taken = IntentRow("in-taken", "create", "c", "vpc", "v1", sp_uuid="v1-y")
    assert await db.open_intent_unless_mapped(taken) == (await db.get_iid("c", "vpc", "v1"))
    in_vpc = IntentRow("in-sub", "create", "c", "subnet", "s1", owner_vpc="v1")
    assert (await db.open_intent_unless_mapped(in_vpc, "v1")).system_id == "s1-x:sub-1"
    assert await db.list_intents() == []                     # nothing recorded for a taken name
    other_vpc = IntentRow("in-sub2", "create", "c", "subnet", "s1", owner_vpc="v2", detail={"zone": "z"})
    assert await db.open_intent_unless_mapped(other_vpc, "v2") is None   # the same name in another VPC is free
    free = IntentRow("in-free", "create", "c", "vpc", "v2", sp_uuid="v2-x", job_id="j1")
    assert await db.open_intent_unless_mapped(free) is None
    opened = {i.id: i for i in await db.list_intents()}
    assert sorted(opened) == ["in-free", "in-sub2"]
    assert (opened["in-free"].sp_uuid, opened["in-free"].job_id) == ("v2-x", "j1")
    assert opened["in-sub2"].detail == {"zone": "z"}
    with pytest.raises(Exception):                           # an id is recorded once
        await db.open_intent_unless_mapped(free)
    assert await db.count_open_intents() == 2


async def test_intents_and_jobs_belong_to_their_replica(db):
    await db.open_intent(IntentRow("in-1", "create", "c", "vm", "vm1", sp_uuid="vm1-x", detail={"zone": "z"}))
    db.replica = "r2"
    await db.open_intent(IntentRow("in-2", "create", "c", "vm", "vm2"))
    await db.put_job(JobRow("job-2", "create", "vm", "vm2", "c", "queued", "async", {"m": "POST"}))
    mine = [i.id for i in await db.list_intents()]
    assert mine == (["in-2"] if db.shared else ["in-1", "in-2"])  # a shared database filters by owner
    assert [j.id for j in await db.list_jobs(statuses=("queued",), mine=True)] == ["job-2"]
    db.replica = "r1"
    assert [i.detail for i in await db.list_intents(["in-1"])] == [{"zone": "z"}]
    assert await db.count_open_intents() == (1 if db.shared else 2)
    assert await db.list_jobs(mine=True) == ([] if db.shared else await db.list_jobs())
    assert await db.set_job_status("job-2", "cancelled", only_if="queued")
    assert not await db.set_job_status("job-2", "cancelled", only_if="queued")
    await db.close_intent("in-1")
    assert [i.id for i in await db.list_intents()] == ([] if db.shared else ["in-2"])


async def test_migrations_are_recorded_once(db, tmp_path):
    rows = await db._all("SELECT version FROM schema_migrations ORDER BY version")
    assert [r[0] for r in rows] == [m.version for m in migrations.MIGRATIONS]
    if db.engine == "sqlite":  # opening again applies nothing twice
        again = from_env(tmp_path, {})
        await db.close()
        await again.open()
        assert [r[0] for r in await again._all("SELECT version FROM schema_migrations")] == [m.version for m in migrations.MIGRATIONS]
        await again.close()


async def test_lookups_by_name_seek_the_name(db):
    """Every index of the IID table that starts like a lookup by (connection, type, name) also seeks
    the name: no lookup can take an index that makes it filter every row of a type. On PostgreSQL,
    checked on the planner too, on a table filled fast (no statistics yet), with the outer references
    the grouped steps use."""
    if db.engine == "sqlite":
        names = [r[1] for r in await db._all("PRAGMA index_list(iid_infos)")]
        indexes = {n: [c[2] for c in await db._all(f"PRAGMA index_info({n})")] for n in names}
    else:
        rows = await db.fetch("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'iid_infos'")
        indexes = {n: [c.strip() for c in d[d.index("(") + 1:d.rindex(")")].split(",")] for n, d in rows}
    assert indexes
    for name, columns in indexes.items():
        if columns[:2] == ["connection_name", "resource_type"]:
            assert columns[2] == "name_id", (name, columns)
    if db.engine == "postgres":
        await db.insert_iids([IIDRow("c", "vpc", f"v{i:05d}", f"u:{i}") for i in range(3000)])
        for lookup in ("i.owner_vpc = q.o", "(q.o IS NULL OR i.owner_vpc = q.o)"):
            plan = "\n".join(r[0] for r in await db.fetch(
                "EXPLAIN SELECT q.n, h.system_id FROM (VALUES ('c', 'vpc', 'v01234', ''::TEXT)) AS q(c, t, n, o) "
                "LEFT JOIN LATERAL (SELECT i.system_id FROM iid_infos i WHERE i.connection_name = q.c "
                f"AND i.resource_type = q.t AND i.name_id = q.n AND {lookup} "
                "ORDER BY i.connection_name, i.resource_type, i.name_id, i.owner_vpc LIMIT 1) AS h ON TRUE"))
            assert "Index" in plan and "Filter: (name_id" not in plan and "Seq Scan on iid_infos" not in plan, plan


async def test_grouped_steps_survive_their_session_being_ended(tmp_path):
    """The grouped steps keep a session of their own between round trips; when the server ends it
    (``pg_terminate_backend``, as a restart would), at most the call that finds out fails, and the
    next one runs on a fresh session."""
    store = from_env(tmp_path, fresh_database())
    await store.open()
    store.replica = "r1"
    try:
        await store.insert_iids([IIDRow("c", "vpc", "v0", "u:0")])
        pid = store._steps_session._conn.get_server_pid()
        assert await store.fetchval("SELECT pg_terminate_backend(?)", pid)
        outcomes = []
        for i in (1, 2, 3):
            try:
                await store.insert_iids([IIDRow("c", "vpc", f"v{i}", f"u:{i}")])
                outcomes.append("stored")
            except Exception as exc:  # noqa: BLE001 - the call that finds the session gone
                outcomes.append(type(exc).__name__)
        assert outcomes[1:] == ["stored", "stored"], outcomes
        assert store._steps_session._conn.get_server_pid() != pid
        assert {r.name for r in await store.list_iids("c", "vpc")} == ({"v0", "v2", "v3"} | (
            {"v1"} if outcomes[0] == "stored" else set()))
    finally:
        await store.close()


async def test_replicas_migrating_together_apply_each_migration_once(tmp_path):
    env = fresh_database(tcp=True)  # over 127.0.0.1 (the other tests use the unix socket)
    assert env["SPIDER_METADB_ENDPOINT"].startswith("127.0.0.1:")
    stores = [from_env(tmp_path / str(i), env) for i in range(4)]
    await asyncio.gather(*(s.open() for s in stores))
    try:
        rows = await stores[0]._all("SELECT version FROM schema_migrations ORDER BY version")
        assert [r[0] for r in rows] == [m.version for m in migrations.MIGRATIONS]
    finally:
        await asyncio.gather(*(s.close() for s in stores))


def test_postgres_runs_as_an_unprivileged_user_on_loopback():
    server = postgres_or_skip()
    assert server.host == "127.0.0.1" and server.child is not None and server.child.alive()
    out = subprocess.run(["ps", "-o", "user=", "-p", str(server.child.pid)], capture_output=True, text=True)
    assert out.stdout.strip() != "root"


async def test_grouped_calls_go_together_and_never_wait_forever():
    """``Grouped`` (the PostgreSQL engine's grouped round trips): calls queued while one group is out go
    in the next; a call made right after the previous group ended starts a new one (no call is left
    queued with nobody to send it); a group that fails sends each call alone, so only a bad one fails."""
    from spider_core.metadb.postgres import Grouped
    groups: list[list[int]] = []

    async def together(calls):
        groups.append(list(calls))
        if -1 in calls:
            raise ValueError("a bad value in the group")
        await asyncio.sleep(0.01)
        return [c * 10 for c in calls]

    async def alone(call):
        if call == -1:
            raise ValueError("bad value")
        return call * 10

    grouped = Grouped("test", together, alone)
    for i in range(20):                                  # one after another: each its own round trip
        assert await asyncio.wait_for(grouped(i), 2) == i * 10
    groups.clear()
    assert await asyncio.gather(*(grouped(i) for i in range(1, 8))) == [i * 10 for i in range(1, 8)]
    assert len(groups) < 7                               # the calls queued meanwhile went together
    results = await asyncio.gather(grouped(1), grouped(-1), grouped(3), return_exceptions=True)
    assert results[0] == 10 and results[2] == 30 and isinstance(results[1], ValueError)


async def test_a_grouped_call_made_as_the_runner_ends_is_sent():
    """A request woken while the last group is answered (its wake-up queued before the runner's end)
    calls at once: its call must start a new runner, not wait behind the one that just ended."""
    from spider_core.metadb.postgres import Grouped
    woken = asyncio.Event()

    async def alone(call):
        if call == 1:
            woken.set()          # the other request's wake-up is queued before this runner ends
        return call * 10

    async def together(calls):
        return [await alone(c) for c in calls]

    grouped = Grouped("test", together, alone)

    async def other_request() -> int:
        await woken.wait()
        return await grouped(2)

    other = asyncio.create_task(other_request())
    await asyncio.sleep(0)
    assert await grouped(1) == 10
    assert await asyncio.wait_for(other, 2) == 20
