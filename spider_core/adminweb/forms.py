"""AdminWeb forms -> the request mappings Spider's services take (CB-Spider's ``ReqInfo`` shapes).

The services validate (empty names, bad CIDRs, duplicate rules...) and answer with CB-Spider's texts;
these functions only gather the form's fields, so the rules live in one place.
"""

from __future__ import annotations

import json
from typing import Any

from spider_core.adminweb.web import field, fields
from spider_core.errors import SpiderError


def rows(form: dict[str, Any], *keys: str) -> list[dict[str, str]]:
    """Repeated field groups (one table row each) as dicts; rows whose first key is blank are dropped."""
    columns = []
    for key in keys:
        value = form.get(key, [])
        columns.append(value if isinstance(value, list) else [value])
    out = []
    for values in zip(*columns):
        row = {k: v.strip() for k, v in zip(keys, values)}
        if row[keys[0]]:
            out.append(row)
    return out


def vpc_req(form: dict[str, Any]) -> dict[str, Any]:
    subnets = [{"Name": r["SubnetName"], "IPv4_CIDR": r["SubnetCIDR"], "Zone": r["SubnetZone"]}
               for r in rows(form, "SubnetName", "SubnetCIDR", "SubnetZone")]
    return {"Name": field(form, "Name"), "IPv4_CIDR": field(form, "IPv4_CIDR"), "SubnetInfoList": subnets}


def rule(row: dict[str, str]) -> dict[str, str]:
    return {"Direction": row["Direction"], "IPProtocol": row["IPProtocol"], "FromPort": row["FromPort"],
            "ToPort": row["ToPort"], "CIDR": row.get("CIDR") or "0.0.0.0/0"}


def rules(form: dict[str, Any]) -> list[dict[str, str]]:
    return [rule(r) for r in rows(form, "Direction", "IPProtocol", "FromPort", "ToPort", "CIDR")
            if r["IPProtocol"]]


def sg_req(form: dict[str, Any]) -> dict[str, Any]:
    return {"Name": field(form, "Name"), "VPCName": field(form, "VPCName"), "SecurityRules": rules(form)}


def vpc_subnet(form: dict[str, Any], key: str = "Subnet") -> tuple[str, str]:
    """The ``[vpc, subnet]`` pair a VPC/subnet select carries as JSON (names may hold any character)."""
    text = field(form, key)
    try:
        vpc_name, subnet_name = json.loads(text) if text else ("", "")
    except (ValueError, TypeError):
        raise SpiderError("VPC / Subnet: choose one from the list") from None
    return str(vpc_name), str(subnet_name)


def vm_req(form: dict[str, Any]) -> dict[str, Any]:
    vpc_name, subnet_name = vpc_subnet(form)
    req = {"Name": field(form, "Name"), "ImageType": field(form, "ImageType") or "PublicImage",
           "ImageName": field(form, "ImageName"), "VMSpecName": field(form, "VMSpecName"),
           "VPCName": vpc_name, "SubnetName": subnet_name,
           "SecurityGroupNames": fields(form, "SecurityGroupNames"), "KeyPairName": field(form, "KeyPairName"),
           "RootDiskType": field(form, "RootDiskType"), "RootDiskSize": field(form, "RootDiskSize"),
           "VMUserId": field(form, "VMUserId"), "VMUserPasswd": field(form, "VMUserPasswd")}
    return {k: v for k, v in req.items() if v != "" or k in ("Name", "ImageName", "VMSpecName", "KeyPairName")}


def nlb_req(form: dict[str, Any]) -> dict[str, Any]:
    return {"Name": field(form, "Name"), "VPCName": field(form, "VPCName"),
            "Type": field(form, "Type") or "PUBLIC", "Scope": field(form, "Scope") or "REGION",
            "Listener": {"Protocol": field(form, "ListenerProtocol"), "Port": field(form, "ListenerPort")},
            "VMGroup": {"Protocol": field(form, "VMGroupProtocol"), "Port": field(form, "VMGroupPort"),
                        "VMs": fields(form, "VMs")},
            "HealthChecker": {"Protocol": field(form, "HCProtocol"), "Port": field(form, "HCPort"),
                              "Interval": field(form, "HCInterval"), "Timeout": field(form, "HCTimeout"),
                              "Threshold": field(form, "HCThreshold")}}


def disk_req(form: dict[str, Any]) -> dict[str, Any]:
    return {"Name": field(form, "Name"), "Zone": field(form, "Zone"), "DiskType": field(form, "DiskType"),
            "DiskSize": field(form, "DiskSize")}
