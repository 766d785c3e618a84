"""``/_twin`` on a sharded twin: each admin call reaches the shard that holds its cloud, or every shard.

Whichever shard is asked coordinates; the legs go to the shards (itself included) with
``X-Twin-Shard-Local`` so each answers from its own state, and the answers are merged here:

=====================================  ==============================================================
call                                   goes to
=====================================  ==============================================================
``?shard=NAME`` on any call            that shard alone, answered as it answers
clouds ``POST`` / ``{name}``           the cloud's owner
``GET /clouds``, ``GET /state``        every shard; lists concatenated, counters summed
``?cloud=NAME`` (state, events, reset) the cloud's owner
``POST /faults``, ``/scenarios``       each rule to the owner of its ``match.cloud`` when that is a plain
                                       name, else to every shard; ids are given here so one rule has
                                       one id everywhere; all or nothing (a refusal removes the rest)
``GET|DELETE /faults[/{id}]``          every shard; one entry per id, ``hits`` summed
``GET /events``                        every shard, merged by time; ``last_seq`` is then a cursor
                                       ``a:12,b:40`` that ``?since=`` takes back
``POST /reset``, ``/dataplane/debug``  every shard
``POST /snapshot``, ``/restore``       every shard, each to its own file (``path`` gets ``.<shard>``)
``/vms/{server}``                      the shard that has the server
``POST /dataplane/probe``              each probe to its ``cloud``'s owner, results in request order
=====================================  ==============================================================

Profiles and scenario lists, ``/health`` and ``/stats`` answer locally (``GET /_twin/cluster`` shows
every shard's health). A shard that does not answer is listed under ``unreachable`` and the call
succeeds over the others: its clouds are down anyway.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import TYPE_CHECKING, Any, Awaitable, Callable
from urllib.parse import urlencode

import yaml
from aiohttp import web

from cloudtwin import wire
from cloudtwin.cluster import Shard
from cloudtwin.errors import ApiError
from cloudtwin.forward import Answer, ShardDown
from cloudtwin.routing import Call

if TYPE_CHECKING:
    from cloudtwin.shards import ShardRole

Strategy = Callable[["ShardRole", Call], Awaitable["web.Response | None"]]
GLOB = set("*?[")


def _path(call: Call, **query: str | None) -> str:
    """The request's path with its query, some parameters replaced (None drops one)."""
    items = [(k, v) for k, v in call.request.query.items() if k not in query and k != "shard"]
    items += [(k, v) for k, v in query.items() if v is not None]
    return call.request.path + (f"?{urlencode(items)}" if items else "")


def _body(call: Call) -> bytes | None:
    return call.raw_body


async def _one(role: "ShardRole", call: Call, shard: Shard, *, body: bytes | None = None,
               path: str | None = None) -> web.Response | None:
    """The call answered by ``shard`` alone (None: this shard answers it itself)."""
    if shard.name == role.me.name and body is None and path is None:
        return None
    try:
        answer = await role.peers.send(shard, call.request.method, path or _path(call),
                                       headers=call.request.headers, body=body if body is not None else _body(call),
                                       local_only=True)
    except ShardDown as exc:
        raise ApiError(exc.status, f"Cloud-Twin {exc}") from None
    return answer.response(shard.name)


async def _all(role: "ShardRole", call: Call, *, body: bytes | None = None, path: str | None = None,
               shards: list[Shard] | None = None) -> tuple[dict[str, Any], dict[str, str]]:
    """The call on every shard: ({shard: JSON answer}, {shard: why unreachable}); a shard's refusal
    (4xx/5xx) is raised as that shard's error."""
    answers, down = await role.peers.everywhere(call.request.method, path or _path(call),
                                                headers=call.request.headers,
                                                body=body if body is not None else _body(call), shards=shards)
    for name, answer in answers.items():
        if answer.status >= 300 and answer.status != 404:
            raise _refusal(name, answer)
    return {n: a.json() for n, a in answers.items() if a.status < 300}, down


def _refusal(shard: str, answer: Answer) -> ApiError:
    try:
        message = (answer.json() or {})["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = answer.body.decode(errors="replace")[:500]
    return ApiError(answer.status, f"shard '{shard}': {message}")


def _reply(body: dict[str, Any], down: dict[str, str], status: int = 200) -> web.Response:
    if down:
        body["unreachable"] = down
    return wire.json_response(status, body)


def _owner_of(role: "ShardRole", cloud: str) -> Shard:
    return role.require_owner(cloud)


# ---- clouds and state
async def cloud_by_param(role: "ShardRole", call: Call) -> web.Response | None:
    return await _one(role, call, _owner_of(role, call.params["name"]))


async def cloud_create(role: "ShardRole", call: Call) -> web.Response | None:
    body = call.body()
    if not isinstance(body, dict) or not isinstance(body.get("name"), str):
        return None  # the handler answers with its own 400
    return await _one(role, call, _owner_of(role, body["name"]))


async def clouds(role: "ShardRole", call: Call) -> web.Response | None:
    answers, down = await _all(role, call)
    return _reply({"clouds": [c for a in answers.values() for c in a["clouds"]]}, down)


async def state(role: "ShardRole", call: Call) -> web.Response | None:
    if call.query.get("cloud") is not None:
        return await _one(role, call, _owner_of(role, call.query["cloud"]))
    answers, down = await _all(role, call)
    return _reply({"clouds": [c for a in answers.values() for c in a["clouds"]],
                   "faults": await _fault_count(role, call),
                   "transitions_pending": sum(a["transitions_pending"] for a in answers.values()),
                   "shards": {n: {"clouds": len(a["clouds"]), "faults": a["faults"]} for n, a in answers.items()}},
                  down)


async def reset(role: "ShardRole", call: Call) -> web.Response | None:
    if call.query.get("cloud") is not None:
        return await _one(role, call, _owner_of(role, call.query["cloud"]))
    rules = await _fault_count(role, call) if wire.truthy(call.query.get("faults")) is not False else 0
    answers, down = await _all(role, call)
    return _reply({"reset": "all", "faults_removed": rules}, down)


async def _fault_count(role: "ShardRole", call: Call) -> int:
    """Distinct rules over the cluster (a rule sent to every shard counts once)."""
    answers, _ = await role.peers.everywhere("GET", "/_twin/faults", headers=call.request.headers)
    return len({r["id"] for a in answers.values() if a.status == 200 for r in a.json()["faults"]})


# ---- faults and scenarios
def _targets(role: "ShardRole", doc: Any) -> list[Shard]:
    """Where one rule goes: the owner of a plain ``match.cloud``, else every shard."""
    match = doc.get("match") if isinstance(doc, dict) else None
    cloud = match.get("cloud") if isinstance(match, dict) else None
    if isinstance(cloud, str) and cloud and not GLOB & set(cloud):
        owner = role.owner(cloud)
        if owner is not None:
            return [owner]
    return list(role.cluster.shards.values())


async def _add_rules(role: "ShardRole", call: Call, docs: list[Any], path: str,
                     wrap: Callable[[list[Any]], Any]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Send each rule to its shards (every rule gets a cluster-wide id first); all or nothing."""
    from cloudtwin.faults import parse_rule

    for i, doc in enumerate(docs):   # refuse a bad rule here, before any shard has anything
        try:
            parse_rule(doc, rule_id="check", base_seed=0, now=0.0)
        except ValueError as exc:
            raise ApiError(400, f"invalid fault: faults[{i}]: {exc}") from None
    docs = [dict(d, id=d.get("id") or f"{role.me.name}-{secrets.token_hex(4)}") for d in docs]
    per_shard: dict[str, list[Any]] = {}
    for doc in docs:
        for shard in _targets(role, doc):
            per_shard.setdefault(shard.name, []).append(doc)
    added: dict[str, dict[str, Any]] = {}
    done: list[tuple[Shard, list[str]]] = []
    down: dict[str, str] = {}
    for name, group in per_shard.items():
        shard = role.cluster.shards[name]
        try:
            answer = await role.peers.send(shard, "POST", path, headers=call.request.headers,
                                           body=json.dumps(wrap(group)).encode(), local_only=True)
        except ShardDown as exc:
            down[name] = str(exc)
            continue
        if answer.status >= 300:
            await _remove(role, call, done)
            raise _refusal(name, answer)
        done.append((shard, [d["id"] for d in group]))
        for rule in answer.json()["faults"]:
            added.setdefault(rule["id"], rule)
    return [added[d["id"]] for d in docs if d["id"] in added], down


async def _remove(role: "ShardRole", call: Call, done: list[tuple[Shard, list[str]]]) -> None:
    for shard, ids in done:
        for rid in ids:
            try:
                await role.peers.send(shard, "DELETE", f"/_twin/faults/{rid}", headers=call.request.headers,
                                      local_only=True)
            except ShardDown:
                pass


async def faults_add(role: "ShardRole", call: Call) -> web.Response | None:
    body = call.body()
    docs = body.get("faults") if isinstance(body, dict) and "faults" in body else body
    many = isinstance(docs, list)
    if not (many and all(isinstance(d, dict) for d in docs)) and not isinstance(docs, dict):
        return None  # the handler answers with its own 400
    rules, down = await _add_rules(role, call, docs if many else [docs], "/_twin/faults", lambda g: g)
    return _reply({"faults": rules} if many else {"fault": rules[0]} if rules else {"faults": []}, down, 201)


async def scenario_run(role: "ShardRole", call: Call) -> web.Response | None:
    from cloudtwin.admin import load_scenario, shipped_scenarios

    body = call.body()
    if isinstance(body, dict) and isinstance(body.get("name"), str) and "faults" not in body:
        path = shipped_scenarios().get(body["name"])
        if path is None:
            return None  # the handler's 404 names the known scenarios
        body = yaml.safe_load(path.read_text())
    try:
        docs = load_scenario(body, "request")
    except ValueError as exc:
        raise ApiError(400, f"invalid scenario: {exc}") from None
    name = body.get("name", "unnamed") if isinstance(body, dict) else "unnamed"
    rules, down = await _add_rules(role, call, docs, "/_twin/scenarios",
                                   lambda g: {"name": name, "faults": g})
    return _reply({"scenario": name, "faults": rules}, down, 201)


def _merge_rules(answers: dict[str, Any]) -> list[dict[str, Any]]:
    """One entry per rule id (a rule sent to several shards is one rule), its hits summed."""
    merged: dict[str, dict[str, Any]] = {}
    for shard, answer in answers.items():
        for rule in answer["faults"] if "faults" in answer else [answer["fault"]]:
            seen = merged.get(rule["id"])
            if seen is None:
                merged[rule["id"]] = dict(rule, shards=[shard])
            else:
                seen["hits"] += rule["hits"]
                seen["active"] = seen["active"] or rule["active"]
                seen["shards"].append(shard)
    return list(merged.values())


async def faults_list(role: "ShardRole", call: Call) -> web.Response | None:
    answers, down = await _all(role, call)
    return _reply({"faults": _merge_rules(answers)}, down)


async def fault_get(role: "ShardRole", call: Call) -> web.Response | None:
    answers, down = await _all(role, call)
    if not answers:
        raise ApiError(404, f"fault '{call.params['id']}' not found")
    return _reply({"fault": _merge_rules(answers)[0]}, down)


async def fault_delete(role: "ShardRole", call: Call) -> web.Response | None:
    answers, down = await role.peers.everywhere("DELETE", _path(call), headers=call.request.headers)
    if not any(a.status == 204 for a in answers.values()):
        raise ApiError(404, f"fault '{call.params['id']}' not found")
    return wire.json_response(204)


async def faults_clear(role: "ShardRole", call: Call) -> web.Response | None:
    rules = await _fault_count(role, call)
    _, down = await _all(role, call)
    return _reply({"removed": rules}, down)


# ---- events
def _cursor(text: str | None, shards: list[str]) -> dict[str, int]:
    """``?since=``: a number (every shard's own sequence) or the cursor ``a:12,b:40`` of a merged answer."""
    if not text:
        return dict.fromkeys(shards, 0)
    if text.lstrip("-").isdigit():
        return dict.fromkeys(shards, int(text))
    out = dict.fromkeys(shards, 0)
    for part in text.split(","):
        name, sep, seq = part.partition(":")
        if not sep or name not in out or not seq.isdigit():
            raise ApiError(400, "query parameter 'since' must be an integer or a cursor such as 'a:12,b:40'")
        out[name] = int(seq)
    return out


async def events(role: "ShardRole", call: Call) -> web.Response | None:
    cloud = call.query.get("cloud")
    if cloud is not None:
        return await _one(role, call, _owner_of(role, cloud), path=_path(call))
    names = list(role.cluster.shards)
    since = _cursor(call.query.get("since"), names)
    try:
        limit = int(call.query.get("limit", "1000"))
    except ValueError:
        raise ApiError(400, "query parameter 'limit' must be an integer") from None
    legs = {n: _path(call, since=str(since[n])) for n in names}
    merged: list[dict[str, Any]] = []
    down: dict[str, str] = {}
    for name in names:   # sequential legs keep the code simple; each is one local query
        answers, missing = await role.peers.everywhere("GET", legs[name], headers=call.request.headers,
                                                       shards=[role.cluster.shards[name]])
        down.update(missing)
        for shard, answer in answers.items():
            if answer.status >= 300:
                raise _refusal(shard, answer)
            merged += [dict(e, shard=shard) for e in answer.json()["events"]]
    merged.sort(key=lambda e: e["time"])
    merged = merged[:max(limit, 0)]
    last = dict(since)
    for e in merged:
        last[e["shard"]] = max(last[e["shard"]], e["seq"])
    return _reply({"events": merged, "last_seq": ",".join(f"{n}:{s}" for n, s in last.items())}, down)


# ---- snapshots, the data plane, VMs
async def snapshot(role: "ShardRole", call: Call) -> web.Response | None:
    body = call.body(required=False) or {}
    path = body.get("path") if isinstance(body, dict) else None
    results: dict[str, Any] = {}
    down: dict[str, str] = {}
    for shard in role.cluster.shards.values():
        leg = None
        if isinstance(path, str) and path:
            p = Path(path)
            leg = json.dumps(dict(body, path=str(p.with_name(f"{p.stem}.{shard.name}{p.suffix}")))).encode()
        answers, missing = await role.peers.everywhere(call.request.method, _path(call), headers=call.request.headers,
                                                       body=leg if leg is not None else _body(call), shards=[shard])
        down.update(missing)
        for name, answer in answers.items():
            if answer.status >= 300:
                raise _refusal(name, answer)
            results[name] = answer.json()
    return _reply({"shards": results}, down, 201 if call.route.pattern == "/snapshot" else 200)


def _merge_docs(docs: list[Any]) -> Any:
    """Status documents of several shards as one: numbers summed, lists joined, mappings merged."""
    first = docs[0]
    if isinstance(first, bool) or not all(type(d) is type(first) for d in docs):
        return any(docs) if isinstance(first, bool) else first
    if isinstance(first, (int, float)):
        return sum(docs)
    if isinstance(first, list):
        return [x for d in docs for x in d]
    if isinstance(first, dict):
        keys = list(dict.fromkeys(k for d in docs for k in d))
        return {k: _merge_docs([d[k] for d in docs if k in d]) for k in keys}
    return first


async def dataplane_status(role: "ShardRole", call: Call) -> web.Response | None:
    answers, down = await _all(role, call)
    merged = _merge_docs(list(answers.values())) if answers else {}
    return _reply(dict(merged, shards=list(answers)), down)


async def broadcast(role: "ShardRole", call: Call) -> web.Response | None:
    answers, down = await _all(role, call)
    return _reply({"shards": answers}, down)


async def dataplane_probe(role: "ShardRole", call: Call) -> web.Response | None:
    body = call.body()
    probes = body.get("probes") if isinstance(body, dict) else None
    if not isinstance(probes, list) or not all(isinstance(p, dict) for p in probes):
        return None  # the handler's own 400
    groups: dict[str, list[int]] = {}
    for i, probe in enumerate(probes):
        cloud = probe.get("cloud")
        owner = role.owner(cloud) if isinstance(cloud, str) else None
        groups.setdefault((owner or role.me).name, []).append(i)
    results: list[Any] = [None] * len(probes)
    down: dict[str, str] = {}
    for name, idx in groups.items():
        leg = json.dumps(dict(body, probes=[probes[i] for i in idx])).encode()
        answers, missing = await role.peers.everywhere("POST", _path(call), headers=call.request.headers, body=leg,
                                                       shards=[role.cluster.shards[name]])
        down.update(missing)
        for shard, answer in answers.items():
            if answer.status >= 300:
                raise _refusal(shard, answer)
            for i, result in zip(idx, answer.json()["results"]):
                results[i] = result
        for i in idx:
            if results[i] is None:
                results[i] = {"id": probes[i].get("id"), "ok": False, "latency_ms": None,
                              "detail": f"shard '{name}' does not answer"}
    return _reply({"results": results}, down)


async def vm(role: "ShardRole", call: Call) -> web.Response | None:
    """A VM's shard is the one that knows the server: asked once, all at once."""
    answers, down = await role.peers.everywhere("GET", f"/_twin/vms/{call.params['server']}",
                                                headers=call.request.headers)
    found = [n for n, a in answers.items() if a.status != 404]
    if not found:
        raise ApiError(404 if not down else 503, f"server '{call.params['server']}' is on no shard that answers"
                       + (f" (unreachable: {', '.join(down)})" if down else ""))
    return await _one(role, call, role.cluster.shards[found[0]], path=_path(call))


async def cluster(role: "ShardRole", call: Call) -> web.Response | None:
    answers, down = await role.peers.everywhere("GET", "/_twin/health", headers=call.request.headers)
    doc = role.cluster.public()
    for name, info in doc["shards"].items():
        answer = answers.get(name)
        info["health"] = answer.json() if answer is not None and answer.status == 200 else None
        info["error"] = down.get(name)
    return wire.json_response(200, dict(doc, me=role.me.name))


STRATEGIES: dict[tuple[str, str], Strategy] = {
    ("GET", "/cluster"): cluster,
    ("GET", "/clouds"): clouds, ("POST", "/clouds"): cloud_create,
    ("GET", "/clouds/{name}"): cloud_by_param, ("DELETE", "/clouds/{name}"): cloud_by_param,
    ("GET", "/faults"): faults_list, ("POST", "/faults"): faults_add, ("DELETE", "/faults"): faults_clear,
    ("GET", "/faults/{id}"): fault_get, ("DELETE", "/faults/{id}"): fault_delete,
    ("POST", "/scenarios"): scenario_run, ("POST", "/profiles"): broadcast,
    ("GET", "/events"): events, ("GET", "/state"): state, ("POST", "/reset"): reset,
    ("POST", "/snapshot"): snapshot, ("POST", "/restore"): snapshot,
    ("GET", "/dataplane"): dataplane_status, ("POST", "/dataplane/probe"): dataplane_probe,
    ("POST", "/dataplane/debug"): broadcast,
    ("GET", "/vms/{server}"): vm, ("POST", "/vms/{server}/exec"): vm,
}


async def route(role: "ShardRole", call: Call) -> web.Response | None:
    """The answer for an admin call on a sharded twin, or None when this shard answers it alone."""
    call.twin.admin_guard(call.request)
    await call.read_body()
    name = call.query.get("shard")
    if name:
        shard = role.cluster.shards.get(name)
        if shard is None:
            raise ApiError(404, f"shard '{name}' is not in the cluster (shards: {', '.join(role.cluster.shards)})")
        return await _one(role, call, shard, path=_path(call)) if shard.name != role.me.name else None
    strategy = STRATEGIES.get((call.request.method, call.route.pattern))
    return await strategy(role, call) if strategy is not None else None
