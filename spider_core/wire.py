"""CB-Spider's JSON wire format: request decoding and response encoding, at the REST edge only.

Decoding follows Go's ``encoding/json`` into CB-Spider's request structs as echo binds them: keys
match case-insensitively, unknown keys are ignored, ``null`` leaves a field empty, and a value of the
wrong JSON type is an error naming the field (echo's "Unmarshal type error" text).

Encoding writes each type's keys in CB-Spider's order, omits ``omitempty`` fields when empty, and
escapes ``<``, ``>``, ``&`` like Go does.
"""

from __future__ import annotations

import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any, Callable, Union

from spider_core.drivers.base import DriverCapability
from spider_core.errors import SpiderError
from spider_core.model import (
    IID,
    ConnectionConfigInfo,
    CredentialInfo,
    DiskInfo,
    DriverInfo,
    GpuInfo,
    HealthCheckerInfo,
    HealthInfo,
    ImageInfo,
    KeyPairInfo,
    KeyValue,
    ListenerInfo,
    MyImageInfo,
    NetworkInterfaceInfo,
    NICInfo,
    NLBInfo,
    PublicIPInfo,
    RegionInfo,
    RegionZoneInfo,
    SecurityInfo,
    SecurityRule,
    SubnetInfo,
    TagInfo,
    VMGroupInfo,
    VMInfo,
    VMPrice,
    VMSpecInfo,
    VMStatusInfo,
    VPCInfo,
    ZoneInfo,
)

# ================================================================================================
# Request schemas: a schema is ``str`` / ``bool`` / ``int`` / ``Any`` / ``[schema]`` / ``{Key: schema}``

Schema = Union[type, list, dict]

KV = {"Key": str, "Value": str}
IID_S = {"NameId": str, "SystemId": str}
SUBNET_REQ = {"Name": str, "Zone": str, "IPv4_CIDR": str, "TagList": [KV]}
VPC_REQ = {"Name": str, "IPv4_CIDR": str, "SubnetInfoList": [SUBNET_REQ], "TagList": [KV]}
RULE = {"Direction": str, "IPProtocol": str, "FromPort": str, "ToPort": str, "CIDR": str}
SG_REQ = {"Name": str, "VPCName": str, "SecurityRules": [RULE], "TagList": [KV]}
RULES_REQ = {"RuleInfoList": [RULE]}
KEY_REQ = {"Name": str, "TagList": [KV]}
VM_REQ = {"Name": str, "ImageType": str, "ImageName": str, "VMSpecName": str, "VPCName": str,
          "SubnetName": str, "SecurityGroupNames": [str], "KeyPairName": str, "RootDiskType": str,
          "RootDiskSize": str, "DataDiskNames": [str], "VMUserId": str, "VMUserPasswd": str,
          "TagList": [KV]}
LISTENER_REQ = {"Protocol": str, "Port": str}
VMGROUP_REQ = {"Protocol": str, "Port": str, "VMs": [str]}
HC_REQ = {"Protocol": str, "Port": str, "Interval": str, "Timeout": str, "Threshold": str}
NLB_REQ = {"Name": str, "VPCName": str, "Type": str, "Scope": str, "Listener": LISTENER_REQ,
           "VMGroup": VMGROUP_REQ, "HealthChecker": HC_REQ, "TagList": [KV]}
NLB_VMS_REQ = {"VMs": [str]}
REG_REQ = {"Name": str, "CSPId": str, "VPCName": str, "Zone": str}
OWNER_REQ = {"CSPId": str}
ANYCALL_REQ = {"FID": str, "IKeyValueList": [KV]}
DRIVER_REQ = {"DriverName": str, "ProviderName": str, "DriverLibFileName": str}
CREDENTIAL_REQ = {"CredentialName": str, "ProviderName": str, "KeyValueInfoList": [KV]}
REGION_REQ = {"RegionName": str, "ProviderName": str, "KeyValueInfoList": [KV], "AvailableZoneList": [str]}
CONNECTION_REQ = {"ConfigName": str, "ProviderName": str, "DriverName": str, "CredentialName": str,
                  "RegionName": str}
PRECONFIG_REQ = {"DriverName": str, "CredentialName": str}
DISK_REQ = {"Name": str, "Zone": str, "DiskType": str, "DiskSize": str, "TagList": [KV]}
DISK_REG_REQ = {"Name": str, "Zone": str, "CSPId": str}
DISK_SIZE_REQ = {"Size": str}
VM_NAME_REQ = {"VMName": str}
MYIMAGE_REQ = {"Name": str, "SourceVM": str, "TagList": [KV]}
TAG_ADD_REQ = {"ResourceType": str, "ResourceName": str, "Tag": KV}
TAG_REMOVE_REQ = {"ResourceType": str, "ResourceName": str}
TAG_FIND_REQ = {"ResourceType": str, "Keyword": str}
PUBLICIP_REQ = {"Name": str, "TagList": [KV]}
PUBLICIP_ASSOC_REQ = {"VMName": str, "NICName": str, "PrivateIP": str}
NIC_REQ = {"Name": str, "VPCName": str, "SubnetName": str, "SecurityGroupNames": [str], "TagList": [KV]}
NIC_IP_REQ = {"PrivateIP": str}
PRICE_REQ = {"ConnectionName": str, "FilterList": [KV]}


class Opt:
    """A response key Go omits when empty (``omitempty``): present only sometimes."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema


class Null:
    """A response value that may be ``null`` (a nil slice in CB-Spider's structs)."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema


def shaped(shape: Any) -> Callable[[Callable], Callable]:
    """Record what an encoder writes (the schema language above, plus ``Opt``/``Null``): the API
    description (``spider_core.rest.openapi``) reads it, so the documented response is the encoder's."""

    def mark(encoder: Callable) -> Callable:
        encoder.shape = shape  # type: ignore[attr-defined]
        return encoder

    return mark


def envelope(req_schema: Schema | None) -> dict:
    """``{"ConnectionName", "IDTransformMode", "ReqInfo": req_schema}`` as CB-Spider's handlers bind."""
    schema: dict[str, Any] = {"ConnectionName": str, "IDTransformMode": str, "ResourceType": str,
                              "CSPId": str}
    if req_schema is not None:
        schema["ReqInfo"] = req_schema
    return schema


_GO_TYPE = {str: "string", bool: "bool", int: "int", list: "array", dict: "object"}


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _type_error(expected: str, got: Any, path: str) -> SpiderError:
    kind = _json_kind(got)
    return SpiderError(f"code=400, message=Unmarshal type error: expected={expected}, got={kind}, "
                       f"field={path}, offset=0, internal=json: cannot unmarshal {kind} into Go struct "
                       f"field .{path} of type {expected}")


def decode(value: Any, schema: Schema, path: str = "") -> Any:
    """Check ``value`` against ``schema``; return it with canonical key names (unknown keys dropped)."""
    if value is None:
        return None
    if schema is Any:
        return value
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            raise _type_error("struct", value, path or "body")
        lower = {k.lower(): k for k in schema}
        out: dict[str, Any] = {}
        for key, item in value.items():
            canonical = lower.get(key.lower()) if isinstance(key, str) else None
            if canonical is None:
                continue
            sub = f"{path}.{canonical}" if path else canonical
            decoded = decode(item, schema[canonical], sub)
            if decoded is not None:
                out[canonical] = decoded
        return out
    if isinstance(schema, list):
        if not isinstance(value, list):
            raise _type_error("[]" + _GO_TYPE.get(schema[0] if isinstance(schema[0], type) else dict, "struct"),
                              value, path)
        # Go decodes a null element into the element's zero value ({} for a struct, "" for a string), so a
        # null inside SubnetInfoList is an empty subnet the validator then names, never a crash
        return [decode(_zero(schema[0]) if item is None else item, schema[0], path) for item in value]
    if schema is str:
        if not isinstance(value, str):
            raise _type_error("string", value, path)
        return value
    if schema is bool:
        if not isinstance(value, bool):
            raise _type_error("bool", value, path)
        return value
    if schema is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise _type_error("int", value, path)
        return value
    raise TypeError(f"bad schema {schema!r}")


def _zero(schema: Schema) -> Any:
    if isinstance(schema, dict):
        return {}
    if isinstance(schema, list):
        return []
    return {str: "", bool: False, int: 0}.get(schema)  # type: ignore[call-overload]


# Go's encoding/json refuses documents nested deeper than this (its "exceeded max depth" error)
MAX_DEPTH = 10000


def _too_deep(raw: bytes) -> int:
    """The offset where nesting passes MAX_DEPTH, or -1: checked before json.loads, which would hit
    Python's recursion limit (a RecursionError) on a few thousand levels."""
    depth = 0
    in_string = escaped = False
    for offset, byte in enumerate(raw):
        if in_string:
            if escaped:
                escaped = False
            elif byte == 0x5C:  # backslash
                escaped = True
            elif byte == 0x22:
                in_string = False
        elif byte == 0x22:
            in_string = True
        elif byte in (0x5B, 0x7B):  # [ {
            depth += 1
            if depth > MAX_DEPTH:
                return offset
        elif byte in (0x5D, 0x7D):
            depth -= 1
    return -1


def parse_json(raw: bytes) -> Any:
    """Decode a request body, raising echo's Syntax error text on malformed JSON."""
    deep = _too_deep(raw) if raw.count(b"[") + raw.count(b"{") > MAX_DEPTH else -1
    if deep >= 0:
        raise SpiderError(f"code=400, message=Syntax error: offset={deep}, error=exceeded max depth, "
                          "internal=exceeded max depth")
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise SpiderError(f"code=400, message=Syntax error: offset={exc.pos}, error={exc.msg}, "
                          f"internal={exc.msg}") from None
    except RecursionError:  # below Go's depth limit but past Python's stack
        raise SpiderError("code=400, message=Syntax error: offset=0, error=exceeded max depth, "
                          "internal=exceeded max depth") from None
    except UnicodeDecodeError:
        raise SpiderError("code=400, message=Syntax error: offset=0, error=invalid UTF-8 in request body, "
                          "internal=invalid UTF-8 in request body") from None


def kvs_in(items: list[dict] | None) -> list[KeyValue]:
    return [KeyValue(i.get("Key", ""), i.get("Value", "")) for i in items or []]


def rule_in(item: dict) -> SecurityRule:
    return SecurityRule(direction=item.get("Direction", ""), ip_protocol=item.get("IPProtocol", ""),
                        from_port=item.get("FromPort", ""), to_port=item.get("ToPort", ""),
                        cidr=item.get("CIDR", ""))


# ================================================================================================
# Encoding


def _raw_value(value: Any) -> Any:
    """Values a CSP's raw JSON (``/orgregion``, ``/vmorgspec``) may carry that json cannot write."""
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def dumps(obj: Any, pretty: bool = False) -> str:
    """Go-style JSON: compact (or 2-space indented), UTF-8, ``<>&`` escaped, trailing newline."""
    if pretty:
        text = json.dumps(obj, ensure_ascii=False, indent=2, default=_raw_value)
    else:
        text = json.dumps(obj, ensure_ascii=False, separators=(",", ":"), default=_raw_value)
    if "<" in text or ">" in text or "&" in text or "\u2028" in text or "\u2029" in text:
        text = (text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
                .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029"))
    return text + "\n"


@shaped(IID_S)
def iid(i: IID) -> dict:
    return {"NameId": i.name_id, "SystemId": i.system_id}


def kvs(items: list[KeyValue] | None) -> list[dict] | None:
    return None if items is None else [{"Key": kv.key, "Value": kv.value} for kv in items]


TAIL = {"TagList": Opt([KV]), "KeyValueList": Opt([KV])}


def _put_oe(out: dict, key: str, value: Any) -> None:
    """Set an ``omitempty`` field only when it is non-empty (Go's rule)."""
    if value not in (None, "", [], {}, 0, False):
        out[key] = value


def _tail(out: dict, tags: list[KeyValue] | None, key_values: list[KeyValue] | None) -> dict:
    _put_oe(out, "TagList", kvs(tags))
    _put_oe(out, "KeyValueList", kvs(key_values))
    return out


# ---- connection info ------------------------------------------------------------------------------

@shaped(DRIVER_REQ)
def driver(d: DriverInfo) -> dict:
    return {"DriverName": d.driver_name, "ProviderName": d.provider_name,
            "DriverLibFileName": d.driver_lib_file_name}


@shaped({"CredentialName": str, "ProviderName": str, "KeyValueInfoList": Null([KV])})
def credential(c: CredentialInfo) -> dict:
    return {"CredentialName": c.credential_name, "ProviderName": c.provider_name,
            "KeyValueInfoList": kvs(c.key_values) or []}


@shaped({"RegionName": str, "ProviderName": str, "KeyValueInfoList": Null([KV]), "AvailableZoneList": Null([str])})
def region(r: RegionInfo) -> dict:
    return {"RegionName": r.region_name, "ProviderName": r.provider_name,
            "KeyValueInfoList": kvs(r.key_values) or [], "AvailableZoneList": list(r.available_zones or [])}


@shaped(CONNECTION_REQ)
def connection_config(c: ConnectionConfigInfo) -> dict:
    return {"ConfigName": c.config_name, "ProviderName": c.provider_name, "DriverName": c.driver_name,
            "CredentialName": c.credential_name, "RegionName": c.region_name}


# ---- region/zone, image, spec ---------------------------------------------------------------------

ZONE_OUT = {"Name": str, "DisplayName": str, "CSPDisplayName": str, "Status": str, "KeyValueList": Opt([KV])}


@shaped(ZONE_OUT)
def zone(z: ZoneInfo) -> dict:
    out = {"Name": z.name, "DisplayName": z.display_name, "CSPDisplayName": z.csp_display_name,
           "Status": z.status}
    _put_oe(out, "KeyValueList", kvs(z.key_values))
    return out


@shaped({"Name": str, "DisplayName": str, "CSPDisplayName": str, "ZoneList": Opt([ZONE_OUT]),
         "KeyValueList": Opt([KV])})
def region_zone(r: RegionZoneInfo) -> dict:
    out: dict[str, Any] = {"Name": r.name, "DisplayName": r.display_name, "CSPDisplayName": r.csp_display_name}
    _put_oe(out, "ZoneList", [zone(z) for z in r.zones])
    _put_oe(out, "KeyValueList", kvs(r.key_values))
    return out


@shaped({"IId": IID_S, "Name": str, "OSArchitecture": str, "OSPlatform": str, "OSDistribution": str,
         "OSDiskType": str, "OSDiskSizeGB": str, "ImageStatus": str, "KeyValueList": Opt([KV])})
def image(i: ImageInfo) -> dict:
    out = {"IId": iid(i.iid), "Name": i.name, "OSArchitecture": i.os_architecture,
           "OSPlatform": i.os_platform, "OSDistribution": i.os_distribution, "OSDiskType": i.os_disk_type,
           "OSDiskSizeGB": i.os_disk_size_gb, "ImageStatus": i.image_status}
    _put_oe(out, "KeyValueList", kvs(i.key_values))
    return out


GPU_OUT = {"Count": str, "Mfr": Opt(str), "Model": Opt(str), "MemSizeGB": Opt(str), "TotalMemSizeGB": Opt(str)}


@shaped(GPU_OUT)
def gpu(g: GpuInfo) -> dict:
    out = {"Count": g.count}
    _put_oe(out, "Mfr", g.mfr)
    _put_oe(out, "Model", g.model)
    _put_oe(out, "MemSizeGB", g.mem_size_gb)
    _put_oe(out, "TotalMemSizeGB", g.total_mem_size_gb)
    return out


@shaped({"Region": str, "Name": str, "VCpu": {"Count": str, "ClockGHz": Opt(str)}, "MemSizeMiB": str,
         "DiskSizeGB": str, "Gpu": Opt([GPU_OUT]), "KeyValueList": Opt([KV])})
def vmspec(s: VMSpecInfo) -> dict:
    vcpu = {"Count": s.vcpu_count}
    _put_oe(vcpu, "ClockGHz", s.vcpu_clock_ghz)
    out: dict[str, Any] = {"Region": s.region, "Name": s.name, "VCpu": vcpu, "MemSizeMiB": s.mem_size_mib,
                           "DiskSizeGB": s.disk_size_gb}
    _put_oe(out, "Gpu", [gpu(g) for g in s.gpus])
    _put_oe(out, "KeyValueList", kvs(s.key_values))
    return out


# ---- VPC / SG / key -------------------------------------------------------------------------------

SUBNET_OUT = {"IId": IID_S, "Zone": str, "IPv4_CIDR": str, **TAIL}


@shaped(SUBNET_OUT)
def subnet(s: SubnetInfo) -> dict:
    return _tail({"IId": iid(s.iid), "Zone": s.zone, "IPv4_CIDR": s.ipv4_cidr}, s.tags, s.key_values)


@shaped({"IId": IID_S, "IPv4_CIDR": str, "SubnetInfoList": Null([SUBNET_OUT]), **TAIL})
def vpc(v: VPCInfo) -> dict:
    subnets = [subnet(s) for s in v.subnets or []]  # CB-Spider's description: an array, so [] even for a stub
    return _tail({"IId": iid(v.iid), "IPv4_CIDR": v.ipv4_cidr, "SubnetInfoList": subnets}, v.tags, v.key_values)


RULE_OUT = {"Direction": str, "IPProtocol": str, "FromPort": str, "ToPort": str, "CIDR": Opt(str)}


@shaped(RULE_OUT)
def rule(r: SecurityRule) -> dict:
    out = {"Direction": r.direction, "IPProtocol": r.ip_protocol, "FromPort": r.from_port, "ToPort": r.to_port}
    _put_oe(out, "CIDR", r.cidr)
    return out


@shaped({"IId": IID_S, "VpcIID": IID_S, "SecurityRules": Null([RULE_OUT]), **TAIL})
def security(s: SecurityInfo) -> dict:
    rules = [rule(r) for r in s.rules or []]
    return _tail({"IId": iid(s.iid), "VpcIID": iid(s.vpc_iid), "SecurityRules": rules}, s.tags, s.key_values)


@shaped({"IId": IID_S, "Fingerprint": Opt(str), "PublicKey": Opt(str), "PrivateKey": Opt(str),
         "VMUserID": Opt(str), **TAIL})
def keypair(k: KeyPairInfo) -> dict:
    out: dict[str, Any] = {"IId": iid(k.iid)}
    _put_oe(out, "Fingerprint", k.fingerprint)
    _put_oe(out, "PublicKey", k.public_key)
    _put_oe(out, "PrivateKey", k.private_key)
    _put_oe(out, "VMUserID", k.vm_user_id)
    return _tail(out, k.tags, k.key_values)


# ---- VM ---------------------------------------------------------------------------------------------

NIC_OUT = {"IId": IID_S, "DeviceIndex": int, "PrivateIPs": Opt([str]), "PublicIPs": Opt([str]),
           "MACAddress": Opt(str), "SubnetIID": IID_S}


@shaped(NIC_OUT)
def nic(n: NICInfo) -> dict:
    out: dict[str, Any] = {"IId": iid(n.iid), "DeviceIndex": n.device_index}
    _put_oe(out, "PrivateIPs", n.private_ips)
    _put_oe(out, "PublicIPs", n.public_ips)
    _put_oe(out, "MACAddress", n.mac_address)
    out["SubnetIID"] = iid(n.subnet_iid)
    return out


@shaped({
    "IId": IID_S, "StartTime": str, "Region": {"Region": str, "Zone": Opt(str)}, "ImageType": str, "ImageIId": IID_S,
    "VMSpecName": str, "VpcIID": IID_S, "SubnetIID": IID_S, "SecurityGroupIIds": [IID_S], "KeyPairIId": IID_S,
    "RootDiskType": str, "RootDiskSize": str, "RootDeviceName": str, "DataDiskIIDs": Opt([IID_S]),
    "VMBootDisk": Opt(str), "VMBlockDisk": Opt(str), "VMUserId": str, "VMUserPasswd": Opt(str), "NICs": Opt([NIC_OUT]),
    "NetworkInterface": str, "PublicIP": str, "PublicIPs": Opt([str]), "PublicDNS": Opt(str), "PrivateIP": str,
    "PrivateIPs": Opt([str]), "PrivateDNS": Opt(str), "Platform": str, "SSHAccessPoint": Opt(str), "AccessPoint": str,
    **TAIL})
def vm(v: VMInfo) -> dict:
    reg: dict[str, Any] = {"Region": v.region}
    _put_oe(reg, "Zone", v.zone)
    out: dict[str, Any] = {
        "IId": iid(v.iid), "StartTime": v.start_time, "Region": reg, "ImageType": v.image_type,
        "ImageIId": iid(v.image_iid), "VMSpecName": v.vmspec_name, "VpcIID": iid(v.vpc_iid),
        "SubnetIID": iid(v.subnet_iid), "SecurityGroupIIds": [iid(i) for i in v.security_group_iids],
        "KeyPairIId": iid(v.keypair_iid), "RootDiskType": v.root_disk_type, "RootDiskSize": v.root_disk_size,
        "RootDeviceName": v.root_device_name,
    }
    _put_oe(out, "DataDiskIIDs", [iid(i) for i in v.data_disk_iids])
    _put_oe(out, "VMBootDisk", v.vm_boot_disk)
    _put_oe(out, "VMBlockDisk", v.vm_block_disk)
    out["VMUserId"] = v.vm_user_id
    _put_oe(out, "VMUserPasswd", v.vm_user_passwd)
    _put_oe(out, "NICs", [nic(n) for n in v.nics])
    out["NetworkInterface"] = v.network_interface
    out["PublicIP"] = v.public_ip
    _put_oe(out, "PublicIPs", v.public_ips)
    _put_oe(out, "PublicDNS", v.public_dns)
    out["PrivateIP"] = v.private_ip
    _put_oe(out, "PrivateIPs", v.private_ips)
    _put_oe(out, "PrivateDNS", v.private_dns)
    out["Platform"] = v.platform
    _put_oe(out, "SSHAccessPoint", v.ssh_access_point)
    out["AccessPoint"] = v.access_point
    return _tail(out, v.tags, v.key_values)


@shaped({"IId": IID_S, "VmStatus": str})
def vm_status(s: VMStatusInfo) -> dict:
    return {"IId": iid(s.iid), "VmStatus": s.status}


# ---- NLB ----------------------------------------------------------------------------------------------

@shaped({"Protocol": str, "IP": str, "Port": str, "DNSName": str, "CspID": Opt(str), "KeyValueList": Opt([KV])})
def listener(listener_info: ListenerInfo) -> dict:
    out = {"Protocol": listener_info.protocol, "IP": listener_info.ip, "Port": listener_info.port,
           "DNSName": listener_info.dns_name}
    _put_oe(out, "CspID", listener_info.csp_id)
    _put_oe(out, "KeyValueList", kvs(listener_info.key_values))
    return out


@shaped({"Protocol": str, "Port": str, "VMs": [IID_S], "CspID": Opt(str), "KeyValueList": Opt([KV])})
def vm_group(g: VMGroupInfo) -> dict:
    out: dict[str, Any] = {"Protocol": g.protocol, "Port": g.port, "VMs": [iid(i) for i in g.vms]}
    _put_oe(out, "CspID", g.csp_id)
    _put_oe(out, "KeyValueList", kvs(g.key_values))
    return out


@shaped({"Protocol": str, "Port": str, "Interval": int, "Timeout": int, "Threshold": int, "CspID": Opt(str),
         "KeyValueList": Opt([KV])})
def health_checker(h: HealthCheckerInfo) -> dict:
    out: dict[str, Any] = {"Protocol": h.protocol, "Port": h.port, "Interval": h.interval,
                           "Timeout": h.timeout, "Threshold": h.threshold}
    _put_oe(out, "CspID", h.csp_id)
    _put_oe(out, "KeyValueList", kvs(h.key_values))
    return out


@shaped({"IId": IID_S, "VpcIID": IID_S, "Type": str, "Scope": str, "Listener": listener.shape,
         "VMGroup": vm_group.shape, "HealthChecker": health_checker.shape, "CreatedTime": str, **TAIL})
def nlb(n: NLBInfo) -> dict:
    out = {"IId": iid(n.iid), "VpcIID": iid(n.vpc_iid), "Type": n.type, "Scope": n.scope,
           "Listener": listener(n.listener), "VMGroup": vm_group(n.vm_group),
           "HealthChecker": health_checker(n.health_checker), "CreatedTime": n.created_time}
    return _tail(out, n.tags, n.key_values)


@shaped({"AllVMs": [IID_S], "HealthyVMs": [IID_S], "UnHealthyVMs": [IID_S]})
def health(h: HealthInfo) -> dict:
    return {"AllVMs": [iid(i) for i in h.all_vms], "HealthyVMs": [iid(i) for i in h.healthy_vms],
            "UnHealthyVMs": [iid(i) for i in h.unhealthy_vms]}


# ---- misc ---------------------------------------------------------------------------------------------

# CB-Spider's DriverCapabilityInfo, in its Go field order: (Go name, DriverCapability field or None
# for the families no driver here implements).
_CAPABILITY_FIELDS: tuple[tuple[str, str | None], ...] = (
    ("ZoneBasedControl", "zone_based_control"), ("RegionZoneHandler", "region_zone_handler"),
    ("PriceInfoHandler", "price_info_handler"), ("ImageHandler", "image_handler"),
    ("VMSpecHandler", "vmspec_handler"), ("VPCHandler", "vpc_handler"), ("SecurityHandler", "security_handler"),
    ("KeyPairHandler", "keypair_handler"), ("VMHandler", "vm_handler"), ("DiskHandler", "disk_handler"),
    ("MyImageHandler", "myimage_handler"), ("NLBHandler", "nlb_handler"), ("ClusterHandler", "cluster_handler"),
    ("FileSystemHandler", None), ("QuotaInfoHandler", None), ("RDBMSHandler", None), ("DBSpecHandler", None),
    ("RDBMSMySQLHandler", None), ("RDBMSMariaDBHandler", None), ("RDBMSPostgreSQLHandler", None),
    ("PublicIPHandler", "public_ip_handler"), ("NICHandler", "nic_handler"), ("TagHandler", "tag_handler"),
    ("TagSupportResourceType", "tag_support_resource_types"), ("VPC_CIDR", "vpc_cidr"), ("EMULATED_VPC", None),
    ("SINGLE_VPC", "single_vpc"),
)


@shaped({go: [str] if go == "TagSupportResourceType" else bool for go, _ in _CAPABILITY_FIELDS})
def capability(c: DriverCapability) -> dict:
    out: dict[str, Any] = {}
    for go, py in _CAPABILITY_FIELDS:
        if go == "TagSupportResourceType":
            out[go] = list(c.tag_support_resource_types)
        else:
            out[go] = bool(getattr(c, py)) if py else False
    return out


# ---- disk, MyImage, public IP, NIC, tag --------------------------------------------------------------

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, what CB-Spider's stubs carry


@shaped({"IId": IID_S, "Zone": str, "DiskType": str, "DiskSize": str, "Status": str, "OwnerVM": IID_S,
         "CreatedTime": str, **TAIL})
def disk(d: DiskInfo) -> dict:
    out = {"IId": iid(d.iid), "Zone": d.zone, "DiskType": d.disk_type, "DiskSize": d.disk_size,
           "Status": d.status, "OwnerVM": iid(d.owner_vm), "CreatedTime": d.created_time or ZERO_TIME}
    return _tail(out, d.tags, d.key_values)


@shaped({"IId": IID_S, "SourceVM": IID_S, "Status": str, "CreatedTime": str, **TAIL})
def myimage(m: MyImageInfo) -> dict:
    out = {"IId": iid(m.iid), "SourceVM": iid(m.source_vm), "Status": m.status,
           "CreatedTime": m.created_time or ZERO_TIME}
    return _tail(out, m.tags, m.key_values)


@shaped({"IId": IID_S, "PublicIPAddress": str, "Status": str, "OwnedVM": IID_S, "OwnedNIC": IID_S,
         "OwnedPrivateIP": Opt(str), "CreatedTime": str, **TAIL})
def public_ip(p: PublicIPInfo) -> dict:
    # OwnedVM/OwnedNIC are struct values: Go's omitempty never drops them
    out: dict[str, Any] = {"IId": iid(p.iid), "PublicIPAddress": p.public_ip_address, "Status": p.status,
                           "OwnedVM": iid(p.owned_vm), "OwnedNIC": iid(p.owned_nic)}
    _put_oe(out, "OwnedPrivateIP", p.owned_private_ip)
    out["CreatedTime"] = p.created_time or ZERO_TIME
    return _tail(out, p.tags, p.key_values)


@shaped({"IId": IID_S, "VpcIID": IID_S, "SubnetIID": IID_S, "SecurityGroupIIDs": Opt([IID_S]), "PrivateIP": str,
         "PrivateIPs": Opt([str]), "PublicIPs": Opt([str]), "PublicIP": Opt(str), "OwnerVM": IID_S,
         "DeviceIndex": Opt(int), "MACAddress": Opt(str), "Status": str, "CreatedTime": str, **TAIL})
def network_interface(n: NetworkInterfaceInfo) -> dict:
    out: dict[str, Any] = {"IId": iid(n.iid), "VpcIID": iid(n.vpc_iid), "SubnetIID": iid(n.subnet_iid)}
    _put_oe(out, "SecurityGroupIIDs", [iid(i) for i in n.security_group_iids])
    out["PrivateIP"] = n.private_ip
    _put_oe(out, "PrivateIPs", list(n.private_ips))
    _put_oe(out, "PublicIPs", list(n.public_ips))
    _put_oe(out, "PublicIP", n.public_ip)
    out["OwnerVM"] = iid(n.owner_vm)
    _put_oe(out, "DeviceIndex", n.device_index)
    _put_oe(out, "MACAddress", n.mac_address)
    out["Status"] = n.status
    out["CreatedTime"] = n.created_time or ZERO_TIME
    return _tail(out, n.tags, n.key_values)


@shaped(KV)
def kv(item: KeyValue) -> dict:
    return {"Key": item.key, "Value": item.value}


@shaped({"ResType": str, "ResIId": IID_S, **TAIL})
def tag_info(t: TagInfo) -> dict:
    return _tail({"ResType": t.res_type, "ResIId": iid(t.res_iid)}, t.tags, t.key_values)


def vm_price(p: "VMPrice", simple: bool) -> dict:
    product: dict[str, Any] = {"ProductId": p.product_id}
    if simple:
        product["VMSpecName"] = p.spec.name
    else:
        product["VMSpecInfo"] = vmspec(p.spec)
    _put_oe(product, "Description", p.description)
    product["CSPProductInfo"] = p.csp_product_info or {}
    on_demand = {"PricingId": p.pricing_id, "Unit": p.unit, "Currency": p.currency, "Price": p.price}
    out: dict[str, Any] = {}
    _put_oe(out, "ZoneName", p.zone)
    out["ProductInfo"] = product
    out["PriceInfo"] = {"OnDemand": on_demand, "CSPPriceInfo": p.csp_price_info or {}}
    return out


def cloud_price(cloud: str, region_name: str, prices: list, simple: bool) -> dict:
    """CB-Spider's ``CloudPrice`` (the ``/priceinfo/vm/{RegionName}`` answer)."""
    return {"Meta": {"Version": "1.0", "Description": f"{cloud} Virtual Machines Price Info"},
            "CloudName": cloud, "RegionName": region_name, "PriceList": [vm_price(p, simple) for p in prices]}


COUNT = {"count": int}
STATUS = {"Status": str}
MESSAGE = {"message": str}


@shaped({"Result": str})
def result(ok: bool) -> dict:
    return {"Result": "true" if ok else "false"}
