"""Security group handler: Neutron security groups and rules, read back in CB-Spider's rule form.

User-visible semantics are the AWS driver's (normalisation across clouds is the point): a created
group holds exactly the requested rules plus the default outbound allow-all, shown as
``outbound ALL -1 -1 0.0.0.0/0``, which RemoveRules may delete. Neutron adds IPv4 *and* IPv6 allow-all
egress rules to a new group; the IPv6 one is removed unless it was requested (``outbound ALL ::/0``),
and a cloud that adds no default egress gets the IPv4 one from the driver.

The group's VPC (Neutron groups belong to a project, not a network) and the user's tags live in the
group's ``description``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from spider_core.drivers.coalesce import Coalescer
from spider_core.drivers.base import SecurityHandler
from spider_core.drivers.openstack.mapping import (DEFAULT_EGRESS, describe, described, is_default_v4_egress,
                                                   is_default_v6_egress, rule_key, rule_to_neutron,
                                                   rules_from_group, tags_in, tags_out)
from spider_core.calllog import RT_SG
from spider_core.drivers.openstack.session import (OpenStackError, OpenStackNotFound, OsSession, status_of, type_of)
from spider_core.drivers.openstack.vpc import BATCH, id_query, ports_going_away, ports_of, retry_in_use
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, SecurityInfo, SecurityReqInfo, SecurityRule

DEFAULT_V6_EGRESS = SecurityRule("outbound", "ALL", "-1", "-1", "::/0")


def sg_not_found(sg_id: str) -> DriverNotFound:
    return OpenStackNotFound(f"SecurityGroupNotFound: Security group {sg_id} does not exist",
                             error_type="SecurityGroupNotFound")


def _rules_text(rules: list[SecurityRule]) -> str:
    return "[" + " ".join(r.text() for r in rules) + "]"


class OsSecurityHandler(SecurityHandler):
    def __init__(self, session: OsSession, *, include_default: bool = True, max_inflight: int = 4) -> None:
        self.s = session
        self.include_default = include_default
        # Spider lists SGs by getting each one: concurrent gets become one filtered list call
        self._get = Coalescer(self._fetch, sg_not_found, max_inflight=max_inflight, max_batch=BATCH)

    # ---- mapping
    def _info(self, sg: dict[str, Any]) -> SecurityInfo:
        doc = described(sg.get("description"))
        rules: list[SecurityRule] = []
        for rule, _ in rules_from_group(sg):
            if rule not in rules:
                rules.append(rule)
        return SecurityInfo(iid=IID(sg.get("name", ""), sg["id"]), vpc_iid=IID("", str(doc.get("VPC") or "")),
                            rules=rules, tags=tags_out(doc))

    async def _group(self, iid: IID) -> dict[str, Any]:
        if not iid.system_id:
            raise sg_not_found(iid.name_id)
        try:
            return (await self.s.call(RT_SG, iid.name_id, "network", "GET",
                                      f"/security-groups/{iid.system_id}"))["security_group"]
        except OpenStackError as exc:
            if status_of(exc) == 400:
                raise sg_not_found(iid.system_id) from None
            raise

    async def _add(self, sg_id: str, name: str, rules: list[SecurityRule]) -> list[dict[str, Any]]:
        """Create rules (concurrently); raises the first failure after all finished."""
        async def one(rule: SecurityRule) -> dict[str, Any]:
            return (await self.s.call(RT_SG, name, "network", "POST", "/security-group-rules",
                                      {"security_group_rule": rule_to_neutron(rule, sg_id)}))["security_group_rule"]

        results = await asyncio.gather(*(one(r) for r in rules), return_exceptions=True)
        for r in results:
            if isinstance(r, BaseException):
                raise r
        return list(results)  # type: ignore[arg-type]

    async def _delete_rule(self, rule_id: str, name: str) -> None:
        try:
            await self.s.call(RT_SG, name, "network", "DELETE", f"/security-group-rules/{rule_id}")
        except DriverNotFound:
            pass

    # ---- handler
    async def create_security(self, req: SecurityReqInfo) -> SecurityInfo:
        rules: list[SecurityRule] = []
        for r in (rule_key(r) for r in req.rules):
            if r not in rules:
                rules.append(r)
        for r in rules:  # validate before creating anything
            rule_to_neutron(r)
        name = req.iid.name_id
        sg = (await self.s.call(RT_SG, name, "network", "POST", "/security-groups", {"security_group": {
            "name": name, "description": describe(VPC=req.vpc_iid.system_id, Tags=tags_in(req.tags))}}))[
            "security_group"]
        sg_id = sg["id"]
        try:
            defaults = sg.get("security_group_rules") or []
            have_v4 = any(is_default_v4_egress(nr) for nr in defaults)
            v6_ids = [nr["id"] for nr in defaults if is_default_v6_egress(nr)]
            keep_v6 = DEFAULT_V6_EGRESS in rules
            if not keep_v6:
                await asyncio.gather(*(self._delete_rule(rid, name) for rid in v6_ids))
            to_add = [r for r in rules if r != DEFAULT_EGRESS and not (keep_v6 and v6_ids and r == DEFAULT_V6_EGRESS)]
            if not have_v4:
                to_add.append(DEFAULT_EGRESS)
            await self._add(sg_id, name, to_add)
        except DriverError:
            try:
                await self.s.call(RT_SG, name, "network", "DELETE", f"/security-groups/{sg_id}")
            except DriverError:
                pass
            raise
        inbound = [r for r in rules if r.direction == "inbound"]
        outbound = [r for r in rules if r.direction == "outbound" and r != DEFAULT_EGRESS]
        return SecurityInfo(iid=IID(name, sg_id), vpc_iid=req.vpc_iid, rules=inbound + [DEFAULT_EGRESS] + outbound,
                            tags=list(req.tags))

    async def get_security(self, iid: IID) -> SecurityInfo:
        if not iid.system_id:
            raise sg_not_found(iid.name_id)
        return await self._get.get(iid.system_id)

    async def _fetch(self, ids: list[str]) -> dict[str, object]:
        if len(ids) == 1:
            try:
                return {ids[0]: self._info(await self._group(IID("", ids[0])))}
            except DriverNotFound:
                return {}
        groups = await self.s.list_all(RT_SG, "", "network", "/security-groups?" + id_query("id", ids),
                                       "security_groups")
        return {g["id"]: self._info(g) for g in groups if g.get("id") in ids}

    async def _all(self) -> list[dict[str, Any]]:
        project = await self.s.project_id()
        query = f"?project_id={project}" if project else ""
        groups = await self.s.list_all(RT_SG, "", "network", f"/security-groups{query}", "security_groups")
        return [g for g in groups
                if (not project or g.get("project_id", g.get("tenant_id", project)) == project)
                and (self.include_default or g.get("name") != "default")]

    async def list_security(self) -> list[SecurityInfo]:
        return [self._info(g) for g in await self._all()]

    async def list_iid(self) -> list[IID]:
        return [IID(g.get("name", ""), g["id"]) for g in await self._all()]

    async def delete_security(self, iid: IID) -> bool:
        if not iid.system_id:
            raise sg_not_found(iid.name_id)
        sg_id = iid.system_id

        async def action() -> None:
            await self.s.call(RT_SG, iid.name_id, "network", "DELETE", f"/security-groups/{sg_id}")

        async def blockers() -> bool:
            ports = await ports_of(self.s, RT_SG, iid.name_id, f"security_groups={sg_id}")
            return await ports_going_away(self.s, RT_SG, iid.name_id,
                                          [p for p in ports if sg_id in (p.get("security_groups") or [])])

        try:
            await retry_in_use(self.s, RT_SG, iid.name_id, action, blockers)
        except OpenStackError as exc:
            if status_of(exc) == 400:
                raise sg_not_found(sg_id) from None
            raise
        return True

    async def add_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> SecurityInfo:
        rules = [rule_key(r) for r in rules]
        for r in rules:
            rule_to_neutron(r)
        current = await self.get_security(sg_iid)
        have = current.rules or []
        name = sg_iid.name_id
        for r in rules:
            if r in have:
                raise DriverError(f"{name} SecurityGroup already has this rule: {r.text()}!! "
                                  f"#### {name} SecurityGroup has {_rules_text(have)}!!")
        try:
            await self._add(sg_iid.system_id, name, rules)
        except OpenStackError as exc:
            if status_of(exc) == 409 and ("Exists" in type_of(exc) or "already exists" in str(exc)):
                raise DriverError(f"{name} SecurityGroup already has this rule: {exc}") from None
            raise
        return await self.get_security(sg_iid)

    async def remove_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> bool:
        rules = [rule_key(r) for r in rules]
        for r in rules:
            rule_to_neutron(r)
        sg = await self._group(sg_iid)
        present = rules_from_group(sg)
        have = [r for r, _ in present]
        name = sg_iid.name_id
        ids: list[str] = []
        for r in rules:
            match = [rid for rule, rid in present if rule == r]
            if not match:
                raise DriverError(f"{name} SecurityGroup does not have this rule: {r.text()}!! "
                                  f"#### {name} SecurityGroup has {_rules_text(have)}!!")
            ids.extend(rid for rid in match if rid not in ids)
        results = await asyncio.gather(*(self.s.call(RT_SG, name, "network", "DELETE", f"/security-group-rules/{rid}")
                                         for rid in ids), return_exceptions=True)
        for res in results:
            if isinstance(res, DriverNotFound):
                raise DriverError(f"{name} SecurityGroup does not have this rule (removed meanwhile)") from None
            if isinstance(res, BaseException):
                raise res
        return True
