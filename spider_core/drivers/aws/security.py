"""Security group handler: EC2 security groups and their ingress/egress permissions.

Rule mapping follows CB-Spider's AWS driver: TCP/UDP carry ports, ICMP uses -1/-1, ``ALL`` is
IpProtocol ``-1`` with ports ``-1``; each CIDR in IpRanges/Ipv6Ranges is one rule. A new group keeps
EC2's default outbound allow-all, reported as ``outbound ALL -1 -1 0.0.0.0/0``.
"""

from __future__ import annotations

from typing import Any

from spider_core.drivers.coalesce import Coalescer
from spider_core.calllog import RT_SG
from spider_core.drivers.aws.session import AwsSession, error_code, name_tag, tag_spec, user_tags
from spider_core.drivers.base import SecurityHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import IID, SecurityInfo, SecurityReqInfo, SecurityRule, normalise_rule

DEFAULT_EGRESS = SecurityRule("outbound", "ALL", "-1", "-1", "0.0.0.0/0")


def sg_not_found(group_id: str) -> DriverNotFound:
    return DriverNotFound(f"InvalidGroup.NotFound: The security group '{group_id}' does not exist")


def _port(value: str, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise DriverError(f"invalid {what} '{value}': must be an integer") from None


def rule_to_permission(rule: SecurityRule) -> dict[str, Any]:
    proto = rule.ip_protocol.upper()
    perm: dict[str, Any]
    if proto == "ALL" or proto == "-1":
        perm = {"IpProtocol": "-1"}
    elif proto == "ICMP":
        perm = {"IpProtocol": "icmp", "FromPort": -1, "ToPort": -1}
    elif proto in ("TCP", "UDP"):
        perm = {"IpProtocol": proto.lower(), "FromPort": _port(rule.from_port, "FromPort"),
                "ToPort": _port(rule.to_port, "ToPort")}
    else:
        raise DriverError(f"unsupported IPProtocol '{rule.ip_protocol}' (TCP, UDP, ICMP or ALL)")
    cidr = rule.cidr or "0.0.0.0/0"
    if ":" in cidr:
        perm["Ipv6Ranges"] = [{"CidrIpv6": cidr}]
    else:
        perm["IpRanges"] = [{"CidrIp": cidr}]
    return perm


def permissions_to_rules(perms: list[dict[str, Any]], direction: str) -> list[SecurityRule]:
    rules: list[SecurityRule] = []
    for p in perms:
        proto = str(p.get("IpProtocol", "-1"))
        if proto == "-1":
            name, fp, tp = "ALL", "-1", "-1"
        else:
            name = proto.upper()
            fp = str(p.get("FromPort", -1))
            tp = str(p.get("ToPort", -1))
            if name == "ICMP":
                fp, tp = "-1", "-1"
        cidrs = [r["CidrIp"] for r in p.get("IpRanges", [])] + \
                [r["CidrIpv6"] for r in p.get("Ipv6Ranges", [])]
        for cidr in cidrs:
            rules.append(SecurityRule(direction, name, fp, tp, cidr))
    return rules


def _rules_text(rules: list[SecurityRule]) -> str:
    return "[" + " ".join(r.text() for r in rules) + "]"


class AwsSecurityHandler(SecurityHandler):
    def __init__(self, session: AwsSession, *, include_default: bool = True, max_inflight: int = 1) -> None:
        self.s = session
        self.include_default = include_default
        self._get = Coalescer(self._fetch, sg_not_found, max_inflight=max_inflight)

    def _info(self, sg: dict[str, Any]) -> SecurityInfo:
        rules = permissions_to_rules(sg.get("IpPermissions", []), "inbound") + \
            permissions_to_rules(sg.get("IpPermissionsEgress", []), "outbound")
        return SecurityInfo(iid=IID(name_tag(sg.get("Tags")) or sg.get("GroupName", ""), sg["GroupId"]),
                            vpc_iid=IID("", sg.get("VpcId", "")), rules=rules,
                            tags=user_tags(sg.get("Tags")))

    async def _authorize(self, group_id: str, name: str, rules: list[SecurityRule]) -> None:
        inbound = [rule_to_permission(r) for r in rules if r.direction == "inbound"]
        outbound = [rule_to_permission(r) for r in rules if r.direction == "outbound"]
        bad = [r for r in rules if r.direction not in ("inbound", "outbound")]
        if bad:
            raise DriverError(f"invalid Direction '{bad[0].direction}' (inbound or outbound)")
        if inbound:
            await self.s.ec2(RT_SG, name, "authorize_security_group_ingress",
                             GroupId=group_id, IpPermissions=inbound)
        if outbound:
            await self.s.ec2(RT_SG, name, "authorize_security_group_egress",
                             GroupId=group_id, IpPermissions=outbound)

    async def create_security(self, req: SecurityReqInfo) -> SecurityInfo:
        rules = []
        for r in (normalise_rule(r) for r in req.rules):
            if r not in rules:
                rules.append(r)
        # validate before creating anything
        for r in rules:
            rule_to_permission(r)
        out = await self.s.ec2(RT_SG, req.iid.name_id, "create_security_group",
                               VpcId=req.vpc_iid.system_id, GroupName=req.iid.name_id,
                               Description=f"{req.iid.name_id} (spidertwin)",
                               TagSpecifications=tag_spec("security-group", req.iid.name_id, req.tags))
        group_id = out["GroupId"]
        to_add = [r for r in rules if r != DEFAULT_EGRESS]
        try:
            await self._authorize(group_id, req.iid.name_id, to_add)
        except DriverError:
            try:
                await self.s.ec2(RT_SG, req.iid.name_id, "delete_security_group", GroupId=group_id)
            except DriverError:
                pass
            raise
        result = [r for r in to_add if r.direction == "inbound"] + [DEFAULT_EGRESS] + \
            [r for r in to_add if r.direction == "outbound"]
        return SecurityInfo(iid=IID(req.iid.name_id, group_id), vpc_iid=req.vpc_iid, rules=result,
                            tags=list(req.tags))

    async def _fetch(self, ids: list[str]) -> dict[str, object]:
        name = ids[0] if len(ids) == 1 else f"{len(ids)} SecurityGroups"
        groups = (await self.s.ec2(RT_SG, name, "describe_security_groups",
                                   Filters=[{"Name": "group-id", "Values": ids}]))["SecurityGroups"]
        return {g["GroupId"]: self._info(g) for g in groups}

    async def get_security(self, iid: IID) -> SecurityInfo:
        if not iid.system_id:
            raise sg_not_found(iid.name_id)
        return await self._get.get(iid.system_id)

    async def _all(self) -> list[dict[str, Any]]:
        groups = (await self.s.ec2(RT_SG, "", "describe_security_groups"))["SecurityGroups"]
        return [g for g in groups if self.include_default or g.get("GroupName") != "default"]

    async def list_security(self) -> list[SecurityInfo]:
        return [self._info(g) for g in await self._all()]

    async def list_iid(self) -> list[IID]:
        return [IID(name_tag(g.get("Tags")) or g.get("GroupName", ""), g["GroupId"]) for g in await self._all()]

    async def delete_security(self, iid: IID) -> bool:
        if not iid.system_id:
            raise sg_not_found(iid.name_id)
        await self.s.ec2(RT_SG, iid.name_id, "delete_security_group", GroupId=iid.system_id)
        return True

    async def add_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> SecurityInfo:
        rules = [normalise_rule(r) for r in rules]
        for r in rules:
            rule_to_permission(r)
        current = await self.get_security(sg_iid)
        have = current.rules or []
        for r in rules:
            if r in have:
                raise DriverError(f"{sg_iid.name_id} SecurityGroup already has this rule: {r.text()}!! "
                                  f"#### {sg_iid.name_id} SecurityGroup has {_rules_text(have)}!!")
        try:
            await self._authorize(sg_iid.system_id, sg_iid.name_id, rules)
        except DriverError as exc:
            if error_code(exc.__cause__) == "InvalidPermission.Duplicate" or "Duplicate" in str(exc):
                raise DriverError(f"{sg_iid.name_id} SecurityGroup already has this rule: {exc}") from None
            raise
        return await self.get_security(sg_iid)

    async def remove_rules(self, sg_iid: IID, rules: list[SecurityRule]) -> bool:
        rules = [normalise_rule(r) for r in rules]
        for r in rules:
            rule_to_permission(r)
        current = await self.get_security(sg_iid)
        have = current.rules or []
        for r in rules:
            if r not in have:
                raise DriverError(f"{sg_iid.name_id} SecurityGroup does not have this rule: {r.text()}!! "
                                  f"#### {sg_iid.name_id} SecurityGroup has {_rules_text(have)}!!")
        inbound = [rule_to_permission(r) for r in rules if r.direction == "inbound"]
        outbound = [rule_to_permission(r) for r in rules if r.direction == "outbound"]
        try:
            if inbound:
                await self.s.ec2(RT_SG, sg_iid.name_id, "revoke_security_group_ingress",
                                 GroupId=sg_iid.system_id, IpPermissions=inbound)
            if outbound:
                await self.s.ec2(RT_SG, sg_iid.name_id, "revoke_security_group_egress",
                                 GroupId=sg_iid.system_id, IpPermissions=outbound)
        except DriverNotFound as exc:
            if "InvalidPermission" in str(exc):  # a rule vanished meanwhile: not a missing SG
                raise DriverError(f"{sg_iid.name_id} SecurityGroup does not have this rule "
                                  "(AWS InvalidPermission)") from None
            raise
        return True
