"""Network load balancer handler (ELBv2 ``Type=network``).

IID SystemId of an NLB is its LoadBalancerArn. One target group per NLB (VM group) and one listener.
Target group names are derived deterministically from the NLB name, protocol and port, within AWS's
32-character limit. The LB type is never derived from the ARN (moto always writes ``app``).
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from spider_core.calllog import RT_NLB, RT_VM
from spider_core.drivers.aws.session import AwsSession, name_tag, paged
from spider_core.drivers.base import NLBHandler
from spider_core.errors import DriverError, DriverNotFound
from spider_core.model import (IID, HealthCheckerInfo, HealthInfo, KeyValue, ListenerInfo, NLBInfo,
                               NLBReqInfo, VMGroupInfo)

NAME_MAX = 32


def nlb_not_found(name: str) -> DriverNotFound:
    return DriverNotFound(f"LoadBalancerNotFound: The load balancer '{name}' does not exist")


def target_group_name(nlb_name: str, protocol: str, port: str) -> str:
    """Deterministic, unique per (NLB, protocol, port), at most 32 characters."""
    digest = hashlib.sha1(f"{nlb_name}/{protocol.upper()}/{port}".encode()).hexdigest()
    return f"tg-{digest[:NAME_MAX - 3]}"


def _int(value: int) -> int | None:
    return value if isinstance(value, int) and value > 0 else None


class AwsNlbHandler(NLBHandler):
    def __init__(self, session: AwsSession) -> None:
        self.s = session

    # ---- helpers
    async def _lb(self, iid: IID) -> dict[str, Any]:
        arn = iid.system_id
        if not arn:
            found = await paged(self.s, RT_NLB, iid.name_id, "elbv2", "describe_load_balancers",
                                "LoadBalancers", Names=[iid.name_id])
        else:
            found = (await self.s.elbv2(iid.name_id, "describe_load_balancers",
                                        LoadBalancerArns=[arn]))["LoadBalancers"]
        if not found:
            raise nlb_not_found(iid.name_id or arn)
        return found[0]

    async def _tg(self, lb_arn: str, name: str) -> dict[str, Any] | None:
        """The VM group: the target group the listener forwards to (falls back to the LB's groups)."""
        ls = await self._listener(lb_arn, name)
        for action in (ls or {}).get("DefaultActions", []):
            if action.get("TargetGroupArn"):
                try:
                    tgs = (await self.s.elbv2(name, "describe_target_groups",
                                              TargetGroupArns=[action["TargetGroupArn"]]))["TargetGroups"]
                    if tgs:
                        return tgs[0]
                except DriverNotFound:
                    pass
        try:
            tgs = (await self.s.elbv2(name, "describe_target_groups", LoadBalancerArn=lb_arn))["TargetGroups"]
        except DriverNotFound:
            return None
        return tgs[0] if tgs else None

    async def _listener(self, lb_arn: str, name: str) -> dict[str, Any] | None:
        ls = (await self.s.elbv2(name, "describe_listeners", LoadBalancerArn=lb_arn))["Listeners"]
        return ls[0] if ls else None

    async def _targets(self, tg_arn: str, name: str) -> list[dict[str, Any]]:
        return (await self.s.elbv2(name, "describe_target_health",
                                   TargetGroupArn=tg_arn))["TargetHealthDescriptions"]

    async def _vm_iids(self, ids: list[str], name: str) -> list[IID]:
        if not ids:
            return []
        names: dict[str, str] = {}
        try:
            res = await paged(self.s, RT_VM, name, "ec2", "describe_instances", "Reservations",
                              Filters=[{"Name": "instance-id", "Values": ids}])
            names = {i["InstanceId"]: name_tag(i.get("Tags")) for r in res for i in r["Instances"]}
        except DriverError:
            pass
        return [IID(names.get(i, ""), i) for i in ids]

    @staticmethod
    def _hc(tg: dict[str, Any]) -> HealthCheckerInfo:
        return HealthCheckerInfo(protocol=str(tg.get("HealthCheckProtocol", "")),
                                 port=str(tg.get("HealthCheckPort", "")),
                                 interval=int(tg.get("HealthCheckIntervalSeconds", -1)),
                                 timeout=int(tg.get("HealthCheckTimeoutSeconds", -1)),
                                 threshold=int(tg.get("HealthyThresholdCount", -1)),
                                 csp_id=tg["TargetGroupArn"])

    @staticmethod
    def _listener_info(lb: dict[str, Any], ls: dict[str, Any] | None) -> ListenerInfo:
        if ls is None:
            return ListenerInfo(dns_name=lb.get("DNSName", ""))
        return ListenerInfo(protocol=str(ls.get("Protocol", "")), port=str(ls.get("Port", "")),
                            dns_name=lb.get("DNSName", ""), csp_id=ls["ListenerArn"])

    async def _info(self, lb: dict[str, Any]) -> NLBInfo:
        name = lb["LoadBalancerName"]
        arn = lb["LoadBalancerArn"]
        tg = await self._tg(arn, name)
        ls = await self._listener(arn, name)
        group = VMGroupInfo()
        hc = HealthCheckerInfo()
        if tg is not None:
            targets = await self._targets(tg["TargetGroupArn"], name)
            group = VMGroupInfo(protocol=str(tg.get("Protocol", "")), port=str(tg.get("Port", "")),
                                vms=await self._vm_iids([t["Target"]["Id"] for t in targets], name),
                                csp_id=tg["TargetGroupArn"])
            hc = self._hc(tg)
        created = lb.get("CreatedTime")
        return NLBInfo(iid=IID(name, arn), vpc_iid=IID("", lb.get("VpcId", "")),
                       type="PUBLIC" if lb.get("Scheme") == "internet-facing" else "INTERNAL",
                       scope="REGION", listener=self._listener_info(lb, ls), vm_group=group,
                       health_checker=hc,
                       created_time=created.isoformat() if isinstance(created, datetime) else str(created or ""),
                       key_values=[KeyValue("State", str(lb.get("State", {}).get("Code", "")))])

    async def _create_tg(self, name: str, vpc_id: str, group: VMGroupInfo, hc: HealthCheckerInfo,
                         tags: list[dict[str, str]]) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "Name": target_group_name(name, group.protocol, group.port),
            "Protocol": group.protocol.upper() or "TCP", "Port": int(group.port), "VpcId": vpc_id,
            "TargetType": "instance", "Tags": tags,
        }
        if hc.protocol:
            kwargs["HealthCheckProtocol"] = hc.protocol.upper()
        if hc.port:
            kwargs["HealthCheckPort"] = str(hc.port)
        if _int(hc.interval):
            kwargs["HealthCheckIntervalSeconds"] = hc.interval
        if _int(hc.timeout):
            kwargs["HealthCheckTimeoutSeconds"] = hc.timeout
        if _int(hc.threshold):
            kwargs["HealthyThresholdCount"] = hc.threshold
            kwargs["UnhealthyThresholdCount"] = hc.threshold
        return (await self.s.elbv2(name, "create_target_group", **kwargs))["TargetGroups"][0]

    # ---- handler
    async def create_nlb(self, req: NLBReqInfo) -> NLBInfo:
        name = req.iid.name_id
        if len(name) > NAME_MAX:
            raise DriverError(f"NLB name '{name}' is longer than {NAME_MAX} characters (AWS limit)")
        group = req.vm_group if req.vm_group.port else VMGroupInfo(
            protocol=req.listener.protocol, port=req.listener.port, vms=list(req.vm_group.vms))
        try:
            int(req.listener.port)
            int(group.port)
        except ValueError:
            raise DriverError("NLB listener and VM group ports must be integers") from None
        subnets = await paged(self.s, RT_NLB, name, "ec2", "describe_subnets", "Subnets",
                              Filters=[{"Name": "vpc-id", "Values": [req.vpc_iid.system_id]}])
        per_az: dict[str, str] = {}
        for sn in subnets:
            per_az.setdefault(sn["AvailabilityZone"], sn["SubnetId"])
        if not per_az:
            raise DriverError(f"VPC '{req.vpc_iid.name_id or req.vpc_iid.system_id}' has no subnet for the NLB")
        tags = [{"Key": "Name", "Value": name}] + [{"Key": t.key, "Value": t.value} for t in req.tags
                                                   if t.key and t.key != "Name"]
        lb = (await self.s.elbv2(name, "create_load_balancer", Name=name, Type="network",
                                 Scheme="internal" if req.type.upper() == "INTERNAL" else "internet-facing",
                                 Subnets=list(per_az.values()), Tags=tags))["LoadBalancers"][0]
        arn = lb["LoadBalancerArn"]
        try:
            tg = await self._create_tg(name, req.vpc_iid.system_id, group, req.health_checker, tags)
            ls = (await self.s.elbv2(name, "create_listener", LoadBalancerArn=arn,
                                     Protocol=req.listener.protocol.upper() or "TCP",
                                     Port=int(req.listener.port),
                                     DefaultActions=[{"Type": "forward",
                                                      "TargetGroupArn": tg["TargetGroupArn"]}]))["Listeners"][0]
            if group.vms:
                await self.s.elbv2(name, "register_targets", TargetGroupArn=tg["TargetGroupArn"],
                                   Targets=[{"Id": v.system_id, "Port": int(group.port)} for v in group.vms])
        except DriverError:
            await self._delete(lb)
            raise
        return NLBInfo(iid=IID(name, arn), vpc_iid=req.vpc_iid,
                       type="INTERNAL" if lb.get("Scheme") == "internal" else "PUBLIC", scope="REGION",
                       listener=self._listener_info(lb, ls),
                       vm_group=VMGroupInfo(protocol=str(tg["Protocol"]), port=str(tg["Port"]),
                                            vms=list(group.vms), csp_id=tg["TargetGroupArn"]),
                       health_checker=self._hc(tg),
                       created_time=lb["CreatedTime"].isoformat() if isinstance(lb.get("CreatedTime"), datetime)
                       else str(lb.get("CreatedTime", "")),
                       tags=list(req.tags))

    async def list_nlb(self) -> list[NLBInfo]:
        lbs = await paged(self.s, RT_NLB, "", "elbv2", "describe_load_balancers", "LoadBalancers")
        return [await self._info(lb) for lb in lbs if lb.get("Type", "network") == "network"]

    async def get_nlb(self, iid: IID) -> NLBInfo:
        return await self._info(await self._lb(iid))

    async def list_iid(self) -> list[IID]:
        lbs = await paged(self.s, RT_NLB, "", "elbv2", "describe_load_balancers", "LoadBalancers")
        return [IID(lb["LoadBalancerName"], lb["LoadBalancerArn"]) for lb in lbs
                if lb.get("Type", "network") == "network"]

    async def _delete(self, lb: dict[str, Any]) -> None:
        name, arn = lb["LoadBalancerName"], lb["LoadBalancerArn"]
        tg = await self._tg(arn, name)
        tgs = [tg] if tg else []
        for ls in (await self.s.elbv2(name, "describe_listeners", LoadBalancerArn=arn))["Listeners"]:
            await self.s.elbv2(name, "delete_listener", ListenerArn=ls["ListenerArn"])
        await self.s.elbv2(name, "delete_load_balancer", LoadBalancerArn=arn)
        for tg in tgs:
            try:
                await self.s.elbv2(name, "delete_target_group", TargetGroupArn=tg["TargetGroupArn"])
            except DriverError:
                pass

    async def delete_nlb(self, iid: IID) -> bool:
        await self._delete(await self._lb(iid))
        return True

    async def _group(self, nlb_iid: IID) -> tuple[dict[str, Any], dict[str, Any]]:
        lb = await self._lb(nlb_iid)
        tg = await self._tg(lb["LoadBalancerArn"], lb["LoadBalancerName"])
        if tg is None:
            raise DriverError(f"{nlb_iid.name_id} NLB has no VM group (target group)")
        return lb, tg

    async def add_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> VMGroupInfo:
        lb, tg = await self._group(nlb_iid)
        name = lb["LoadBalancerName"]
        current = [t["Target"]["Id"] for t in await self._targets(tg["TargetGroupArn"], name)]
        for v in vm_iids:
            if v.system_id in current:
                raise DriverError(f"{name} NLB already has this VM: {{{v.name_id} {v.system_id}}}!! "
                                  f"#### {name} NLB has {current}!!")
        if vm_iids:
            await self.s.elbv2(name, "register_targets", TargetGroupArn=tg["TargetGroupArn"],
                               Targets=[{"Id": v.system_id, "Port": int(tg["Port"])} for v in vm_iids])
        ids = current + [v.system_id for v in vm_iids]
        return VMGroupInfo(protocol=str(tg["Protocol"]), port=str(tg["Port"]),
                           vms=await self._vm_iids(ids, name), csp_id=tg["TargetGroupArn"])

    async def remove_vms(self, nlb_iid: IID, vm_iids: list[IID]) -> bool:
        lb, tg = await self._group(nlb_iid)
        name = lb["LoadBalancerName"]
        current = [t["Target"]["Id"] for t in await self._targets(tg["TargetGroupArn"], name)]
        for v in vm_iids:
            if v.system_id not in current:
                raise DriverError(f"{name} NLB does not have this VM: {{{v.name_id} {v.system_id}}}!! "
                                  f"#### {name} NLB has {current}!!")
        if vm_iids:
            await self.s.elbv2(name, "deregister_targets", TargetGroupArn=tg["TargetGroupArn"],
                               Targets=[{"Id": v.system_id} for v in vm_iids])
        return True

    async def get_vm_group_health(self, nlb_iid: IID) -> HealthInfo:
        lb, tg = await self._group(nlb_iid)
        name = lb["LoadBalancerName"]
        targets = await self._targets(tg["TargetGroupArn"], name)
        iids = {i.system_id: i for i in await self._vm_iids([t["Target"]["Id"] for t in targets], name)}
        info = HealthInfo()
        for t in targets:
            iid = iids[t["Target"]["Id"]]
            info.all_vms.append(iid)
            if t.get("TargetHealth", {}).get("State") == "healthy":
                info.healthy_vms.append(iid)
            else:
                info.unhealthy_vms.append(iid)
        return info

    async def change_listener(self, nlb_iid: IID, listener: ListenerInfo) -> ListenerInfo:
        lb = await self._lb(nlb_iid)
        name = lb["LoadBalancerName"]
        ls = await self._listener(lb["LoadBalancerArn"], name)
        if ls is None:
            raise DriverError(f"{name} NLB has no listener")
        kwargs: dict[str, Any] = {"ListenerArn": ls["ListenerArn"]}
        if listener.protocol:
            kwargs["Protocol"] = listener.protocol.upper()
        if listener.port:
            kwargs["Port"] = int(listener.port)
        out = (await self.s.elbv2(name, "modify_listener", **kwargs))["Listeners"][0]
        return self._listener_info(lb, out)

    async def change_vm_group_info(self, nlb_iid: IID, vm_group: VMGroupInfo) -> VMGroupInfo:
        """Target group protocol/port are immutable in AWS: make a new group, move targets, swap."""
        lb, old = await self._group(nlb_iid)
        name, arn = lb["LoadBalancerName"], lb["LoadBalancerArn"]
        protocol = (vm_group.protocol or old["Protocol"]).upper()
        port = vm_group.port or str(old["Port"])
        if protocol == old["Protocol"] and str(port) == str(old["Port"]):
            targets = [t["Target"]["Id"] for t in await self._targets(old["TargetGroupArn"], name)]
            return VMGroupInfo(protocol=protocol, port=str(port), vms=await self._vm_iids(targets, name),
                               csp_id=old["TargetGroupArn"])
        hc = self._hc(old)
        new = await self._create_tg(name, lb["VpcId"], VMGroupInfo(protocol=protocol, port=str(port)), hc,
                                    [{"Key": "Name", "Value": name}])
        targets = [t["Target"]["Id"] for t in await self._targets(old["TargetGroupArn"], name)]
        if targets:
            await self.s.elbv2(name, "register_targets", TargetGroupArn=new["TargetGroupArn"],
                               Targets=[{"Id": t, "Port": int(port)} for t in targets])
        ls = await self._listener(arn, name)
        if ls is not None:
            await self.s.elbv2(name, "modify_listener", ListenerArn=ls["ListenerArn"],
                               DefaultActions=[{"Type": "forward", "TargetGroupArn": new["TargetGroupArn"]}])
        try:
            await self.s.elbv2(name, "delete_target_group", TargetGroupArn=old["TargetGroupArn"])
        except DriverError:
            pass
        return VMGroupInfo(protocol=protocol, port=str(port), vms=await self._vm_iids(targets, name),
                           csp_id=new["TargetGroupArn"])

    async def change_health_checker_info(self, nlb_iid: IID,
                                         health_checker: HealthCheckerInfo) -> HealthCheckerInfo:
        lb, tg = await self._group(nlb_iid)
        kwargs: dict[str, Any] = {"TargetGroupArn": tg["TargetGroupArn"]}
        if health_checker.protocol:
            kwargs["HealthCheckProtocol"] = health_checker.protocol.upper()
        if health_checker.port:
            kwargs["HealthCheckPort"] = str(health_checker.port)
        if _int(health_checker.interval):
            kwargs["HealthCheckIntervalSeconds"] = health_checker.interval
        if _int(health_checker.timeout):
            kwargs["HealthCheckTimeoutSeconds"] = health_checker.timeout
        if _int(health_checker.threshold):
            kwargs["HealthyThresholdCount"] = health_checker.threshold
            kwargs["UnhealthyThresholdCount"] = health_checker.threshold
        out = (await self.s.elbv2(lb["LoadBalancerName"], "modify_target_group", **kwargs))["TargetGroups"][0]
        return self._hc(out)
