"""The MetaDB schema, one for both engines, as numbered migrations applied in order at start.

``schema_migrations`` records what was applied; a start applies what is missing inside one
transaction (PostgreSQL's DDL is transactional; replicas starting together serialise on an advisory
lock, so each migration runs once). Migration 1 is the schema SQLite files had before versioning,
written ``IF NOT EXISTS``, so an existing file is adopted as it is.

The text is shared; the few dialect words are placeholders filled per engine (``{without_rowid}``:
SQLite keeps the IID table as its own primary-key B-tree). A migration's ``postgres`` statements
exist only there (server-side functions the cluster-wide lock runs in one round trip).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Migration:
    version: int
    description: str
    statements: tuple[str, ...]
    postgres_only: tuple[str, ...] = ()


DIALECT_WORDS = {
    "sqlite": {"without_rowid": "WITHOUT ROWID"},
    "postgres": {"without_rowid": ""},
}

MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "connection information, IIDs, intents and jobs", (
        """CREATE TABLE IF NOT EXISTS cloud_driver_infos (
            driver_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL, driver_lib_file_name TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS credential_infos (
            credential_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL,
            key_values TEXT NOT NULL)""",                           # JSON [[key, encrypted value], ...]
        """CREATE TABLE IF NOT EXISTS region_infos (
            region_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL,
            key_values TEXT NOT NULL, available_zones TEXT)""",
        """CREATE TABLE IF NOT EXISTS connection_config_infos (
            config_name TEXT PRIMARY KEY, provider_name TEXT NOT NULL, driver_name TEXT NOT NULL,
            credential_name TEXT NOT NULL, region_name TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS iid_infos (
            connection_name TEXT NOT NULL, resource_type TEXT NOT NULL, owner_vpc TEXT NOT NULL DEFAULT '',
            name_id TEXT NOT NULL, system_id TEXT NOT NULL, zone_id TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            PRIMARY KEY (connection_name, resource_type, name_id, owner_vpc)) {without_rowid}""",
        "CREATE INDEX IF NOT EXISTS iid_by_owner ON iid_infos (connection_name, resource_type, owner_vpc)",
        """CREATE TABLE IF NOT EXISTS intents (
            id TEXT PRIMARY KEY, job_id TEXT NOT NULL DEFAULT '', op TEXT NOT NULL,
            connection_name TEXT NOT NULL, resource_type TEXT NOT NULL, owner_vpc TEXT NOT NULL DEFAULT '',
            name_id TEXT NOT NULL, sp_uuid TEXT NOT NULL DEFAULT '', system_id TEXT NOT NULL DEFAULT '',
            detail TEXT NOT NULL DEFAULT '{{}}', created_at TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS jobs (
            id TEXT PRIMARY KEY, operation TEXT NOT NULL, resource TEXT NOT NULL, name TEXT NOT NULL,
            connection_name TEXT NOT NULL, status TEXT NOT NULL, origin TEXT NOT NULL,
            request TEXT NOT NULL,
            result TEXT, error TEXT, created_at TEXT NOT NULL, started_at TEXT, finished_at TEXT)""",
        "CREATE INDEX IF NOT EXISTS jobs_by_status ON jobs (status, id)",
        "CREATE INDEX IF NOT EXISTS jobs_by_connection ON jobs (connection_name, id)",
    )),
    Migration(2, "replicas: owners of intents and jobs, heartbeats, the cluster-wide sponge lock", (
        "ALTER TABLE intents ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
        "ALTER TABLE jobs ADD COLUMN owner TEXT NOT NULL DEFAULT ''",
        "CREATE INDEX intents_by_owner ON intents (owner)",
        "CREATE INDEX jobs_by_owner ON jobs (owner, status)",
        # one row per live replica; last_seen is the database server's clock (epoch seconds)
        """CREATE TABLE replicas (
            id TEXT PRIMARY KEY, url TEXT NOT NULL DEFAULT '', started_at DOUBLE PRECISION NOT NULL,
            last_seen DOUBLE PRECISION NOT NULL)""",
        # one row per granted sponge lock (holder = replica/token): a write excludes every other replica
        """CREATE TABLE splocks (
            family TEXT NOT NULL, connection_name TEXT NOT NULL, name TEXT NOT NULL, holder TEXT NOT NULL,
            replica TEXT NOT NULL, write INTEGER NOT NULL, request TEXT NOT NULL DEFAULT '',
            since DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (family, connection_name, name, holder))""",
        "CREATE INDEX splocks_by_replica ON splocks (replica)",
        "CREATE INDEX splocks_by_holder ON splocks (holder)",
        # requests waiting for a lock another replica holds (shown by /spider/splockinfo)
        """CREATE TABLE splock_waiters (
            family TEXT NOT NULL, connection_name TEXT NOT NULL, name TEXT NOT NULL, holder TEXT NOT NULL,
            replica TEXT NOT NULL, write INTEGER NOT NULL, request TEXT NOT NULL DEFAULT '',
            since DOUBLE PRECISION NOT NULL,
            PRIMARY KEY (family, connection_name, name, holder))""",
        "CREATE INDEX splock_waiters_by_replica ON splock_waiters (replica)",
    ), postgres_only=(
        # Take every lock of one request or none, atomically, in one round trip. The advisory
        # transaction locks (taken in hash order, so two calls never wait in a circle) make the check
        # and the insert one step per key; rows of replicas whose lease ran out do not count.
        """CREATE OR REPLACE FUNCTION spider_try_lock(me TEXT, holder_id TEXT, fams TEXT[], conns TEXT[],
                                                      names TEXT[], writes INT[], req TEXT, lease DOUBLE PRECISION)
           RETURNS BOOLEAN LANGUAGE plpgsql AS $$
           DECLARE
               now_s DOUBLE PRECISION := extract(epoch FROM clock_timestamp());
               h BIGINT;
           BEGIN
               FOR h IN SELECT DISTINCT hashtextextended(f || chr(31) || c || chr(31) || n, 0) AS k
                        FROM unnest(fams, conns, names) AS t(f, c, n) ORDER BY k LOOP
                   PERFORM pg_advisory_xact_lock(h);
               END LOOP;
               IF EXISTS (
                   SELECT 1 FROM unnest(fams, conns, names, writes) AS k(f, c, n, w)
                   JOIN splocks s ON s.family = k.f AND s.connection_name = k.c AND s.name = k.n
                   JOIN replicas r ON r.id = s.replica
                   WHERE s.replica <> me AND (s.write = 1 OR k.w = 1) AND r.last_seen > now_s - lease) THEN
                   INSERT INTO splock_waiters (family, connection_name, name, holder, replica, write, request, since)
                       SELECT f, c, n, holder_id, me, w, req, now_s FROM unnest(fams, conns, names, writes) AS k(f, c, n, w)
                       ON CONFLICT DO NOTHING;
                   RETURN FALSE;
               END IF;
               DELETE FROM splock_waiters WHERE holder = holder_id;
               INSERT INTO splocks (family, connection_name, name, holder, replica, write, request, since)
                   SELECT f, c, n, holder_id, me, w, req, now_s FROM unnest(fams, conns, names, writes) AS k(f, c, n, w);
               RETURN TRUE;
           END $$""",
        # Give a request's locks back; wake the replicas that wait for one of these keys.
        # Give locks back (several requests' at once); wake the replicas that wait for one of these keys.
        """CREATE OR REPLACE FUNCTION spider_unlock(holder_ids TEXT[]) RETURNS VOID LANGUAGE plpgsql AS $$
           BEGIN
               IF EXISTS (SELECT 1 FROM splocks s JOIN splock_waiters w ON w.family = s.family
                              AND w.connection_name = s.connection_name AND w.name = s.name
                          WHERE s.holder = ANY(holder_ids)) THEN
                   PERFORM pg_notify('spider_splock', '');
               END IF;
               DELETE FROM splocks WHERE holder = ANY(holder_ids);
               DELETE FROM splock_waiters WHERE holder = ANY(holder_ids);
           END $$""",
    )),
    Migration(3, "VM image+spec favourites and recents (CB-Spider's tables)", (
        """CREATE TABLE IF NOT EXISTS vm_imagespec_infos (
            kind TEXT NOT NULL, csp TEXT NOT NULL, region TEXT NOT NULL, zone TEXT NOT NULL, image_name TEXT NOT NULL,
            spec_name TEXT NOT NULL, record TEXT NOT NULL,
            PRIMARY KEY (kind, csp, region, zone, image_name, spec_name))""",
    )),
    Migration(4, "the lock-release NOTIFY names the keys given back, so only their waiters look again", (),
              postgres_only=(
        """CREATE OR REPLACE FUNCTION spider_unlock(holder_ids TEXT[]) RETURNS VOID LANGUAGE plpgsql AS $$
           DECLARE
               released TEXT;
           BEGIN
               SELECT string_agg(DISTINCT s.family || chr(31) || s.connection_name || chr(31) || s.name, chr(10))
                 INTO released
                 FROM splocks s JOIN splock_waiters w ON w.family = s.family
                      AND w.connection_name = s.connection_name AND w.name = s.name
                WHERE s.holder = ANY(holder_ids);
               IF released IS NOT NULL THEN
                   -- a payload past NOTIFY's 8000 bytes would be refused: then every waiter looks again
                   PERFORM pg_notify('spider_splock', CASE WHEN octet_length(released) > 7000 THEN '' ELSE released END);
               END IF;
               DELETE FROM splocks WHERE holder = ANY(holder_ids);
               DELETE FROM splock_waiters WHERE holder = ANY(holder_ids);
           END $$""",
    )),
    Migration(5, "a create's cluster locks, duplicate check and intent in one round trip", (), postgres_only=(
        # spider_try_lock, then (taken) the IID row under the intent's name (in VPC iid_owner; NULL: any);
        # the intent is recorded only when there is none. One transaction: a refused lock records
        # nothing but the waiter rows. Each statement sees the rows committed before it (READ COMMITTED,
        # a VOLATILE function), so the check sees whatever the lock's previous holder wrote.
        """CREATE OR REPLACE FUNCTION spider_lock_open_intent(
               me TEXT, holder_id TEXT, fams TEXT[], conns TEXT[], names TEXT[], writes INT[], req TEXT,
               lease DOUBLE PRECISION, iid_owner TEXT, i_id TEXT, i_job TEXT, i_op TEXT, i_conn TEXT, i_type TEXT,
               i_owner_vpc TEXT, i_name TEXT, i_sp_uuid TEXT, i_system_id TEXT, i_detail TEXT, i_created TEXT)
           RETURNS TABLE (locked BOOLEAN, found_system_id TEXT, found_owner_vpc TEXT, found_zone_id TEXT,
                          found_created_at TEXT)
           LANGUAGE plpgsql AS $$
           DECLARE
               hit iid_infos%ROWTYPE;
           BEGIN
               IF NOT spider_try_lock(me, holder_id, fams, conns, names, writes, req, lease) THEN
                   RETURN QUERY SELECT FALSE, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT;
                   RETURN;
               END IF;
               SELECT * INTO hit FROM iid_infos i
                WHERE i.connection_name = i_conn AND i.resource_type = i_type AND i.name_id = i_name
                  AND (iid_owner IS NULL OR i.owner_vpc = iid_owner)
                ORDER BY i.owner_vpc LIMIT 1;
               IF FOUND THEN
                   RETURN QUERY SELECT TRUE, hit.system_id, hit.owner_vpc, hit.zone_id, hit.created_at;
                   RETURN;
               END IF;
               INSERT INTO intents (id, job_id, op, connection_name, resource_type, owner_vpc, name_id, sp_uuid,
                                    system_id, detail, created_at, owner)
                    VALUES (i_id, i_job, i_op, i_conn, i_type, i_owner_vpc, i_name, i_sp_uuid, i_system_id, i_detail,
                            i_created, me);
               RETURN QUERY SELECT TRUE, NULL::TEXT, NULL::TEXT, NULL::TEXT, NULL::TEXT;
           END $$""",
    )),
    Migration(6, "IID inserts of concurrent creates grouped in one round trip", (), postgres_only=(
        # Call g's rows are the ones with grp = g; each call is inserted (and its intent closed) in its
        # own subtransaction: a duplicate key fails that call alone ('23505' in its slot, '' = stored).
        """CREATE OR REPLACE FUNCTION spider_store_iids(grp INT[], conns TEXT[], types TEXT[], owners TEXT[],
                                                        names TEXT[], sysids TEXT[], zones TEXT[], created TEXT[],
                                                        intent_ids TEXT[])
           RETURNS TEXT[] LANGUAGE plpgsql AS $$
           DECLARE
               codes TEXT[] := '{}';
           BEGIN
               FOR g IN 1 .. coalesce(array_length(intent_ids, 1), 0) LOOP
                   BEGIN
                       INSERT INTO iid_infos (connection_name, resource_type, owner_vpc, name_id, system_id, zone_id,
                                              created_at)
                           SELECT c, t, o, n, s, z, a
                             FROM unnest(grp, conns, types, owners, names, sysids, zones, created) AS r(gi, c, t, o, n, s, z, a)
                            WHERE gi = g;
                       IF intent_ids[g] <> '' THEN
                           DELETE FROM intents WHERE id = intent_ids[g];
                       END IF;
                       codes := codes || ''::TEXT;
                   EXCEPTION WHEN unique_violation THEN
                       codes := codes || SQLSTATE;
                   END;
               END LOOP;
               RETURN codes;
           END $$""",
    )),
    Migration(7, "the lock-and-intent steps of concurrent creates grouped in one round trip", (), postgres_only=(
        # spider_lock_open_intent for several requests of one replica at once, one answer row per
        # request in order. The advisory locks of every key of the group are taken first, in hash order
        # (as spider_try_lock takes them), so groups and single calls never wait for each other in a
        # circle; then each request is decided on its own: its keys (k_grp = its index) are refused if
        # another live replica holds them (waiter rows only), else its lock rows, the IID lookup and
        # its intent as in spider_lock_open_intent.
        """CREATE OR REPLACE FUNCTION spider_lock_open_intents(
               me TEXT, lease DOUBLE PRECISION, k_grp INT[], fams TEXT[], conns TEXT[], names TEXT[], writes INT[],
               holder_ids TEXT[], reqs TEXT[], iid_owners TEXT[], i_ids TEXT[], i_jobs TEXT[], i_ops TEXT[],
               i_conns TEXT[], i_types TEXT[], i_owner_vpcs TEXT[], i_names TEXT[], i_sp_uuids TEXT[],
               i_system_ids TEXT[], i_details TEXT[], i_created TEXT[])
           RETURNS TABLE (locked BOOLEAN, found_system_id TEXT, found_owner_vpc TEXT, found_zone_id TEXT,
                          found_created_at TEXT)
           LANGUAGE plpgsql AS $$
           DECLARE
               now_s DOUBLE PRECISION := extract(epoch FROM clock_timestamp());
               h BIGINT;
               hit iid_infos%ROWTYPE;
           BEGIN
               FOR h IN SELECT DISTINCT hashtextextended(f || chr(31) || c || chr(31) || n, 0) AS k
                        FROM unnest(fams, conns, names) AS t(f, c, n) ORDER BY k LOOP
                   PERFORM pg_advisory_xact_lock(h);
               END LOOP;
               FOR g IN 1 .. coalesce(array_length(holder_ids, 1), 0) LOOP
                   found_system_id := NULL; found_owner_vpc := NULL; found_zone_id := NULL; found_created_at := NULL;
                   IF EXISTS (
                       SELECT 1 FROM unnest(k_grp, fams, conns, names, writes) AS k(gi, f, c, n, w)
                       JOIN splocks s ON s.family = k.f AND s.connection_name = k.c AND s.name = k.n
                       JOIN replicas r ON r.id = s.replica
                       WHERE k.gi = g AND s.replica <> me AND (s.write = 1 OR k.w = 1)
                         AND r.last_seen > now_s - lease) THEN
                       INSERT INTO splock_waiters (family, connection_name, name, holder, replica, write, request, since)
                           SELECT f, c, n, holder_ids[g], me, w, reqs[g], now_s
                             FROM unnest(k_grp, fams, conns, names, writes) AS k(gi, f, c, n, w) WHERE gi = g
                           ON CONFLICT DO NOTHING;
                       locked := FALSE;
                       RETURN NEXT;
                       CONTINUE;
                   END IF;
                   DELETE FROM splock_waiters WHERE holder = holder_ids[g];
                   INSERT INTO splocks (family, connection_name, name, holder, replica, write, request, since)
                       SELECT f, c, n, holder_ids[g], me, w, reqs[g], now_s
                         FROM unnest(k_grp, fams, conns, names, writes) AS k(gi, f, c, n, w) WHERE gi = g;
                   locked := TRUE;
                   SELECT * INTO hit FROM iid_infos i
                    WHERE i.connection_name = i_conns[g] AND i.resource_type = i_types[g] AND i.name_id = i_names[g]
                      AND (iid_owners[g] IS NULL OR i.owner_vpc = iid_owners[g])
                    ORDER BY i.owner_vpc LIMIT 1;
                   IF FOUND THEN
                       found_system_id := hit.system_id; found_owner_vpc := hit.owner_vpc;
                       found_zone_id := hit.zone_id; found_created_at := hit.created_at;
                   ELSE
                       INSERT INTO intents (id, job_id, op, connection_name, resource_type, owner_vpc, name_id, sp_uuid,
                                            system_id, detail, created_at, owner)
                            VALUES (i_ids[g], i_jobs[g], i_ops[g], i_conns[g], i_types[g], i_owner_vpcs[g], i_names[g],
                                    i_sp_uuids[g], i_system_ids[g], i_details[g], i_created[g], me);
                   END IF;
                   RETURN NEXT;
               END LOOP;
           END $$""",
    )),
    Migration(8, "IIDs by owner VPC: an index led by the owner and ending in the name", (
        # (connection, type, owner_vpc) served "children of a VPC" but also matched every lookup by
        # (connection, type, name): with stale statistics (a new database filling fast) PostgreSQL's
        # planner took it for those and filtered every row of the type by name. Led by the owner VPC it
        # cannot serve a lookup in any VPC, and ending in the name it seeks one row when it serves a
        # lookup in one VPC.
        "DROP INDEX IF EXISTS iid_by_owner",
        "CREATE INDEX IF NOT EXISTS iid_by_owner_vpc ON iid_infos (owner_vpc, connection_name, resource_type, name_id)",
    )),
    Migration(9, "the grouped create steps as set operations (one statement per step, not one per create)", (),
              postgres_only=(
        # The same answers as migrations 6 and 7, each step one statement over the whole group: the
        # loops ran every statement once per create and scanned the group's arrays in each turn, so a
        # group of 30 cost 1.7x a group of 12 per create. A group's requests come from one replica
        # whose own lock manager already keeps conflicting requests apart, so they are decided together.
        """CREATE OR REPLACE FUNCTION spider_lock_open_intents(
               me TEXT, lease DOUBLE PRECISION, k_grp INT[], fams TEXT[], conns TEXT[], names TEXT[], writes INT[],
               holder_ids TEXT[], reqs TEXT[], iid_owners TEXT[], i_ids TEXT[], i_jobs TEXT[], i_ops TEXT[],
               i_conns TEXT[], i_types TEXT[], i_owner_vpcs TEXT[], i_names TEXT[], i_sp_uuids TEXT[],
               i_system_ids TEXT[], i_details TEXT[], i_created TEXT[])
           RETURNS TABLE (locked BOOLEAN, found_system_id TEXT, found_owner_vpc TEXT, found_zone_id TEXT,
                          found_created_at TEXT)
           LANGUAGE plpgsql AS $$
           DECLARE
               now_s DOUBLE PRECISION := extract(epoch FROM clock_timestamp());
               refused INT[];
           BEGIN
               PERFORM pg_advisory_xact_lock(hk) FROM (
                   SELECT DISTINCT hashtextextended(f || chr(31) || c || chr(31) || n, 0) AS hk
                     FROM unnest(fams, conns, names) AS t(f, c, n) ORDER BY hk) AS ordered;
               -- requests with a key another live replica holds: refused, recorded as waiters. Every
               -- lookup below is a LATERAL probe of a primary key: a join the planner may choose would
               -- scan whole tables while their statistics are stale (a new database that grows fast).
               refused := ARRAY(
                   SELECT DISTINCT k.gi FROM unnest(k_grp, fams, conns, names, writes) AS k(gi, f, c, n, w)
                    CROSS JOIN LATERAL (
                        SELECT 1 FROM splocks s JOIN replicas r ON r.id = s.replica
                         WHERE s.family = k.f AND s.connection_name = k.c AND s.name = k.n AND s.replica <> me
                           AND (s.write = 1 OR k.w = 1) AND r.last_seen > now_s - lease
                         LIMIT 1) AS busy);
               IF cardinality(refused) > 0 THEN
                   INSERT INTO splock_waiters (family, connection_name, name, holder, replica, write, request, since)
                       SELECT k.f, k.c, k.n, q.h, me, k.w, q.rq, now_s
                         FROM unnest(k_grp, fams, conns, names, writes) AS k(gi, f, c, n, w)
                         JOIN unnest(holder_ids, reqs) WITH ORDINALITY AS q(h, rq, g) ON q.g = k.gi
                        WHERE k.gi = ANY(refused)
                       ON CONFLICT DO NOTHING;
               END IF;
               DELETE FROM splock_waiters sw
                USING unnest(k_grp, fams, conns, names) AS k(gi, f, c, n)
                 JOIN unnest(holder_ids) WITH ORDINALITY AS q(h, g) ON q.g = k.gi
                WHERE NOT (k.gi = ANY(refused)) AND sw.family = k.f AND sw.connection_name = k.c AND sw.name = k.n
                  AND sw.holder = q.h;
               INSERT INTO splocks (family, connection_name, name, holder, replica, write, request, since)
                   SELECT k.f, k.c, k.n, q.h, me, k.w, q.rq, now_s
                     FROM unnest(k_grp, fams, conns, names, writes) AS k(gi, f, c, n, w)
                     JOIN unnest(holder_ids, reqs) WITH ORDINALITY AS q(h, rq, g) ON q.g = k.gi
                    WHERE NOT (k.gi = ANY(refused));
               -- the granted requests' IID lookups; an intent for each one whose name is not mapped
               RETURN QUERY
               WITH q AS (
                   SELECT * FROM unnest(iid_owners, i_ids, i_jobs, i_ops, i_conns, i_types, i_owner_vpcs, i_names,
                                        i_sp_uuids, i_system_ids, i_details, i_created)
                          WITH ORDINALITY AS q(io, iid, job, op, conn, typ, ovpc, nm, spu, sysid, det, cr, g)
                    WHERE NOT (q.g = ANY(refused))),
               hits AS (
                   SELECT q.g, h.hs, h.ho, h.hz, h.hc FROM q LEFT JOIN LATERAL (
                       SELECT i.system_id AS hs, i.owner_vpc AS ho, i.zone_id AS hz, i.created_at AS hc
                         FROM iid_infos i
                        WHERE i.connection_name = q.conn AND i.resource_type = q.typ AND i.name_id = q.nm
                          AND (q.io IS NULL OR i.owner_vpc = q.io)
                        -- the primary key's order (the first three are equal here): ORDER BY owner_vpc
                        -- alone would let an index by owner VPC serve it, a scan of every row of the type
                        ORDER BY i.connection_name, i.resource_type, i.name_id, i.owner_vpc LIMIT 1) AS h ON TRUE),
               opened AS (
                   INSERT INTO intents (id, job_id, op, connection_name, resource_type, owner_vpc, name_id, sp_uuid,
                                        system_id, detail, created_at, owner)
                   SELECT q.iid, q.job, q.op, q.conn, q.typ, q.ovpc, q.nm, q.spu, q.sysid, q.det, q.cr, me
                     FROM q JOIN hits ON hits.g = q.g WHERE hits.hs IS NULL)
               SELECT NOT (a.g = ANY(refused)), hits.hs, hits.ho, hits.hz, hits.hc
                 FROM generate_series(1, cardinality(holder_ids)) AS a(g) LEFT JOIN hits ON hits.g = a.g
                ORDER BY a.g;
           END $$""",
        # Rows already mapped fail their own call ('23505' in its slot) and nothing of that call is
        # written; the other calls' rows go in one INSERT and their intents out in one DELETE. Rows
        # taken by another transaction meanwhile (the callers' locks make that a bug) fail the whole
        # group, which the caller then stores call by call.
        """CREATE OR REPLACE FUNCTION spider_store_iids(grp INT[], conns TEXT[], types TEXT[], owners TEXT[],
                                                        names TEXT[], sysids TEXT[], zones TEXT[], created TEXT[],
                                                        intent_ids TEXT[])
           RETURNS TEXT[] LANGUAGE plpgsql AS $$
           DECLARE
               dup INT[];
               wanted INT;
               stored INT;
           BEGIN
               dup := ARRAY(
                   SELECT DISTINCT r.gi FROM unnest(grp, conns, types, owners, names) AS r(gi, c, t, o, n)
                    CROSS JOIN LATERAL (
                        SELECT 1 FROM iid_infos i
                         WHERE i.connection_name = r.c AND i.resource_type = r.t AND i.name_id = r.n
                           AND i.owner_vpc = r.o
                         LIMIT 1) AS mapped);
               SELECT count(*) INTO wanted FROM unnest(grp) AS r(gi) WHERE NOT (r.gi = ANY(dup));
               WITH ins AS (
                   INSERT INTO iid_infos (connection_name, resource_type, owner_vpc, name_id, system_id, zone_id,
                                          created_at)
                   SELECT c, t, o, n, s, z, a
                     FROM unnest(grp, conns, types, owners, names, sysids, zones, created) AS r(gi, c, t, o, n, s, z, a)
                    WHERE NOT (r.gi = ANY(dup))
                   ON CONFLICT DO NOTHING RETURNING 1)
               SELECT count(*) INTO stored FROM ins;
               IF stored <> wanted THEN
                   RAISE EXCEPTION 'spider_store_iids: % of % rows were mapped meanwhile', wanted - stored, wanted
                       USING ERRCODE = 'unique_violation';
               END IF;
               DELETE FROM intents WHERE id IN (
                   SELECT t.id FROM unnest(intent_ids) WITH ORDINALITY AS t(id, g)
                    WHERE t.id <> '' AND NOT (t.g = ANY(dup)));
               RETURN ARRAY(SELECT CASE WHEN t.g = ANY(dup) THEN '23505' ELSE '' END
                              FROM generate_series(1, cardinality(intent_ids)) AS t(g) ORDER BY t.g);
           END $$""",
    )),
    Migration(10, "a replica's waiting steps of every kind in one round trip", (), postgres_only=(
        # What one replica has waiting while its previous round trip is out, sent in the next one as
        # one JSON document: locks given back ("release": holder ids, spider_unlock), IID rows with
        # their intents' close ("store": [call, connection, type, owner VPC, name, system id, zone,
        # created] rows and "store_intents", spider_store_iids), then lock-and-intent steps ("keys":
        # [step, family, connection, name, write] rows and "locks": [holder, request, IID owner, then
        # the intent's 11 columns] rows, spider_lock_open_intents). Each round trip costs the replica a
        # send that wakes a backend, and each array parameter element a type check in asyncpg: one
        # stream with one document spends the least of the replica's CPU, the scarce one.
        """CREATE OR REPLACE FUNCTION spider_steps(
               me TEXT, lease DOUBLE PRECISION, steps JSONB,
               OUT store_codes TEXT[], OUT granted BOOLEAN[], OUT hit_system_ids TEXT[], OUT hit_owner_vpcs TEXT[],
               OUT hit_zone_ids TEXT[], OUT hit_created TEXT[])
           LANGUAGE plpgsql AS $$
           DECLARE
               releases TEXT[] := ARRAY(SELECT jsonb_array_elements_text(steps->'release'));
               s_grp INT[]; s_conns TEXT[]; s_types TEXT[]; s_owners TEXT[]; s_names TEXT[]; s_sysids TEXT[];
               s_zones TEXT[]; s_created TEXT[];
               k_grp INT[]; k_fams TEXT[]; k_conns TEXT[]; k_names TEXT[]; k_writes INT[];
               l_holders TEXT[]; l_reqs TEXT[]; l_iid_owners TEXT[]; l_ids TEXT[]; l_jobs TEXT[]; l_ops TEXT[];
               l_conns TEXT[]; l_types TEXT[]; l_owner_vpcs TEXT[]; l_names TEXT[]; l_sp_uuids TEXT[];
               l_system_ids TEXT[]; l_details TEXT[]; l_created TEXT[];
           BEGIN
               IF cardinality(releases) > 0 THEN
                   PERFORM spider_unlock(releases);
               END IF;
               IF jsonb_array_length(steps->'store') > 0 THEN
                   SELECT array_agg((r->>0)::INT ORDER BY o), array_agg(r->>1 ORDER BY o), array_agg(r->>2 ORDER BY o),
                          array_agg(r->>3 ORDER BY o), array_agg(r->>4 ORDER BY o), array_agg(r->>5 ORDER BY o),
                          array_agg(r->>6 ORDER BY o), array_agg(r->>7 ORDER BY o)
                     INTO s_grp, s_conns, s_types, s_owners, s_names, s_sysids, s_zones, s_created
                     FROM jsonb_array_elements(steps->'store') WITH ORDINALITY AS t(r, o);
                   store_codes := spider_store_iids(s_grp, s_conns, s_types, s_owners, s_names, s_sysids, s_zones,
                                                    s_created,
                                                    ARRAY(SELECT jsonb_array_elements_text(steps->'store_intents')));
               END IF;
               IF jsonb_array_length(steps->'locks') > 0 THEN
                   SELECT array_agg((r->>0)::INT ORDER BY o), array_agg(r->>1 ORDER BY o), array_agg(r->>2 ORDER BY o),
                          array_agg(r->>3 ORDER BY o), array_agg((r->>4)::INT ORDER BY o)
                     INTO k_grp, k_fams, k_conns, k_names, k_writes
                     FROM jsonb_array_elements(steps->'keys') WITH ORDINALITY AS t(r, o);
                   SELECT array_agg(r->>0 ORDER BY o), array_agg(r->>1 ORDER BY o), array_agg(r->>2 ORDER BY o),
                          array_agg(r->>3 ORDER BY o), array_agg(r->>4 ORDER BY o), array_agg(r->>5 ORDER BY o),
                          array_agg(r->>6 ORDER BY o), array_agg(r->>7 ORDER BY o), array_agg(r->>8 ORDER BY o),
                          array_agg(r->>9 ORDER BY o), array_agg(r->>10 ORDER BY o), array_agg(r->>11 ORDER BY o),
                          array_agg(r->>12 ORDER BY o), array_agg(r->>13 ORDER BY o)
                     INTO l_holders, l_reqs, l_iid_owners, l_ids, l_jobs, l_ops, l_conns, l_types, l_owner_vpcs,
                          l_names, l_sp_uuids, l_system_ids, l_details, l_created
                     FROM jsonb_array_elements(steps->'locks') WITH ORDINALITY AS t(r, o);
                   SELECT array_agg(r.locked ORDER BY r.n), array_agg(r.found_system_id ORDER BY r.n),
                          array_agg(r.found_owner_vpc ORDER BY r.n), array_agg(r.found_zone_id ORDER BY r.n),
                          array_agg(r.found_created_at ORDER BY r.n)
                     INTO granted, hit_system_ids, hit_owner_vpcs, hit_zone_ids, hit_created
                     FROM spider_lock_open_intents(me, lease, k_grp, k_fams, k_conns, k_names, k_writes, l_holders,
                                                   l_reqs, l_iid_owners, l_ids, l_jobs, l_ops, l_conns, l_types,
                                                   l_owner_vpcs, l_names, l_sp_uuids, l_system_ids, l_details,
                                                   l_created)
                          WITH ORDINALITY AS r(locked, found_system_id, found_owner_vpc, found_zone_id,
                                               found_created_at, n);
               END IF;
           END $$""",
    )),
)

LATEST = MIGRATIONS[-1].version

VERSION_TABLE = ("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
                 "description TEXT NOT NULL, applied_at TEXT NOT NULL)")


def statements(migration: Migration, dialect: str) -> list[str]:
    """The migration's SQL for ``dialect`` ("sqlite" or "postgres")."""
    words = DIALECT_WORDS[dialect]
    out = [sql.format(**words) for sql in migration.statements]
    if dialect == "postgres":
        out += list(migration.postgres_only)
    return out


def pending(applied: set[int]) -> list[Migration]:
    return [m for m in MIGRATIONS if m.version not in applied]
