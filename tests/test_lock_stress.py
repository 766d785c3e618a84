"""Seeded stress of the lock hierarchy: random concurrent creates and deletes of parents and children
(VPC, subnet, SG, key pair, VM) on NULL and on CLOUDTWIN. Whatever wins each race, the end state is
whole: no lock entry left, no MetaDB row pointing at a missing VPC, no resource only in Spider or only
in the cloud, no request stuck (a deadlock), and every failure a clean CB-Spider error.

CI-sized (a few hundred requests on NULL, fewer on CLOUDTWIN, where each is a real HTTP exchange with
the twin); ``bench/splock_vs_global.py`` measures speed.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter, defaultdict
from typing import Any

import pytest

from lock_helpers import (Cloud, assert_consistent, is_clean_error, provider, sg_req, twin,  # noqa: F401
                          twin_server, vm_req, vpc_req)

VPCS = ("v0", "v1", "v2")


class Jitter:
    """A driver handler whose calls first sleep a seeded random while: NULL answers at once, so without
    this the lock holders would hardly overlap."""

    def __init__(self, inner: Any, rnd: random.Random, most: float) -> None:
        self._inner, self._rnd, self._most = inner, rnd, most

    def __getattr__(self, attr: str) -> Any:
        target = getattr(self._inner, attr)
        if not asyncio.iscoroutinefunction(target):
            return target

        async def call(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(self._rnd.random() * self._most)
            return await target(*args, **kwargs)

        return call


def plan(seed: int, n: int) -> list[tuple[str, str, dict | None]]:
    """``n`` random (method, path, ReqInfo) requests over a small set of names, so they collide."""
    rnd = random.Random(seed)
    out: list[tuple[str, str, dict | None]] = []
    for _ in range(n):
        v = rnd.choice(VPCS)
        octet = VPCS.index(v) + 1
        sg = f"{v}-g{rnd.randint(0, 1)}"
        key = f"k{rnd.randint(0, 1)}"
        vm = f"m{rnd.randint(0, 5)}"
        op = rnd.choices(["vpc+", "vpc-", "sn+", "sn-", "sg+", "sg-", "key+", "key-", "vm+", "vm-"],
                         weights=[3, 1, 2, 1, 3, 1, 2, 1, 5, 2])[0]
        out.append({
            "vpc+": ("POST", "vpc", vpc_req(v, "sn-a", octet)),
            "vpc-": ("DELETE", f"vpc/{v}", None),
            "sn+": ("POST", f"vpc/{v}/subnet", {"Name": "sn-b", "IPv4_CIDR": f"10.0.{10 + octet}.0/24"}),
            "sn-": ("DELETE", f"vpc/{v}/subnet/sn-b", None),
            "sg+": ("POST", "securitygroup", sg_req(sg, v)),
            "sg-": ("DELETE", f"securitygroup/{sg}", None),
            "key+": ("POST", "keypair", {"Name": key}),
            "key-": ("DELETE", f"keypair/{key}", None),
            "vm+": ("POST", "vm", {"Name": vm, "VPCName": v, "SubnetName": "sn-a", "SecurityGroupNames": [sg],
                                   "KeyPairName": key}),
            "vm-": ("DELETE", f"vm/{vm}", None),
        }[op])
    return out


async def storm(srv: Any, cloud: Cloud, seed: int, n: int, spread: float) -> Counter:
    rnd = random.Random(seed + 1)
    for path, body in (("vpc", vpc_req("v0", "sn-a", 1)), ("securitygroup", sg_req("v0-g0", "v0")),
                       ("keypair", {"Name": "k0"})):
        assert (await srv.call("POST", path, srv.body(body))).status == 200
    requests = plan(seed, n)
    delays = [rnd.random() * spread for _ in requests]

    async def one(i: int) -> Any:
        method, path, body = requests[i]
        if path == "vm" and body is not None:
            body = vm_req(cloud, body["Name"], body["VPCName"], body["SubnetName"], body["SecurityGroupNames"],
                          body["KeyPairName"])
        await asyncio.sleep(delays[i])
        return await srv.call(method, path, srv.body(body))

    tasks = [asyncio.create_task(one(i)) for i in range(len(requests))]
    done, pending = await asyncio.wait(tasks, timeout=240)
    if pending:
        pytest.fail(f"deadlock: {len(pending)} requests never ended; locks {srv.sp.locks.snapshot()['entries']}")
    outcome: Counter = Counter()
    failures: dict[str, list[str]] = defaultdict(list)
    for (method, path, _), task in zip(requests, tasks):
        reply = task.result()
        kind = f"{method} {'subnet' if '/subnet' in path else path.split('/')[0]}"
        outcome[(kind, reply.status == 200)] += 1
        if reply.status != 200:
            failures[kind].append(reply.text[:200])
        if reply.status != 200:
            assert is_clean_error(reply), (method, path, reply.status, reply.text)
    outcome["failures"] = failures  # type: ignore[assignment]  # shown when an assertion on outcome fails
    return outcome


async def clean_up(srv: Any) -> None:
    """Delete everything children first; each delete must succeed now that nothing races it."""
    rows = (await srv.dump())["iid_infos"]
    order = {"vm": 0, "sg": 1, "keypair": 1, "subnet": 2, "vpc": 3}
    for rtype, owner, name in sorted(((r[1], r[2], r[3]) for r in rows if r[1] in order), key=lambda x: order[x[0]]):
        path = {"vm": f"vm/{name}", "sg": f"securitygroup/{name}", "keypair": f"keypair/{name}",
                "subnet": f"vpc/{owner}/subnet/{name}", "vpc": f"vpc/{name}"}[rtype]
        if rtype == "subnet" and name == "sn-a":
            continue  # goes with its VPC
        reply = await srv.call("DELETE", path, srv.body())
        assert reply.status == 200, (path, reply.text)
    count = await srv.call("GET", f"countvpc/{srv.conn}")
    assert count.json["count"] in (0, "0")


@pytest.mark.parametrize("seed", [3])
async def test_random_creates_and_deletes_of_parents_and_children_leave_a_whole_state(provider, seed):
    srv, cloud = provider
    if srv.sp.locks.mode != "sponge":
        pytest.skip("the stress is about the sponge hierarchy")
    null = cloud.image.startswith("null")
    if null:  # overlap the holders for real: each NULL call yields for up to 20 ms
        conn = await srv.sp.connection(srv.conn)
        rnd = random.Random(seed)
        for family in ("vpc", "security", "keypair", "vm"):
            setattr(conn.cloud, family, Jitter(getattr(conn.cloud, family), rnd, 0.02))
    outcome = await storm(srv, cloud, seed, 400 if null else 90, 0.5 if null else 2.0)
    failures = outcome.pop("failures")
    in_use = [m for kind in ("DELETE vpc", "DELETE subnet", "DELETE securitygroup") for m in failures[kind]
              if "inuse" in m.lower().replace(" ", "") or "depend" in m.lower()]
    assert outcome[("POST vm", True)], (outcome, dict(failures))
    if null:  # NULL's seeded jitter makes parent deletes meet their children; the twin's timing varies
        assert in_use, (outcome, dict(failures))
    await assert_consistent(srv)
    await clean_up(srv)
    await assert_consistent(srv)
