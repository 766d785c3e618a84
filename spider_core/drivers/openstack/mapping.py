"""Pure mappings between CB-Spider's model and OpenStack JSON (no I/O; unit-tested on their own).

* security-group rules: CB-Spider ``{Direction, IPProtocol, FromPort, ToPort, CIDR}`` <->
  Neutron ``{direction, protocol, port_range_min, port_range_max, remote_ip_prefix, ethertype}``
* VM status: Nova ``status`` + ``OS-EXT-STS:task_state`` -> CB-Spider's ten status words
* Octavia member ``operating_status`` -> healthy / unhealthy
* resource descriptions: small JSON documents the driver keeps in Neutron/Octavia ``description``
  fields for what OpenStack has no field for (the VPC's IPv4_CIDR, a subnet's zone, an SG's VPC)
"""

from __future__ import annotations

import ipaddress
import json
from typing import Any

from spider_core.errors import DriverError
from spider_core.model import KeyValue, SecurityRule, VMStatus, normalise_rule

ANY_V4 = "0.0.0.0/0"
ANY_V6 = "::/0"
DEFAULT_EGRESS = SecurityRule("outbound", "ALL", "-1", "-1", ANY_V4)

# ------------------------------------------------------------------------------------------------
# security-group rules


def _port(value: str, what: str) -> int:
    try:
        port = int(str(value).strip())
    except (TypeError, ValueError):
        raise DriverError(f"invalid {what} '{value}': must be an integer") from None
    if not 1 <= port <= 65535:
        raise DriverError(f"invalid {what} '{value}': must be 1..65535 for TCP/UDP")
    return port


def ethertype(cidr: str) -> str:
    return "IPv6" if ":" in cidr else "IPv4"


def canonical_cidr(cidr: str) -> str:
    """``10.0.0.5/24`` -> ``10.0.0.0/24``; unparseable text is returned as given (the cloud judges)."""
    try:
        return str(ipaddress.ip_network(cidr.strip(), strict=False))
    except ValueError:
        return cidr.strip()


def rule_to_neutron(rule: SecurityRule, sg_id: str = "") -> dict[str, Any]:
    """One CB-Spider rule (normalised or not) -> a Neutron security_group_rule create body."""
    r = normalise_rule(rule)
    if r.direction not in ("inbound", "outbound"):
        raise DriverError(f"invalid Direction '{rule.direction}' (inbound or outbound)")
    body: dict[str, Any] = {"direction": "ingress" if r.direction == "inbound" else "egress",
                            "ethertype": ethertype(r.cidr), "remote_ip_prefix": canonical_cidr(r.cidr)}
    proto = r.ip_protocol
    if proto in ("ALL", "-1"):
        body["protocol"] = None
    elif proto == "ICMP":
        body["protocol"] = "icmp" if body["ethertype"] == "IPv4" else "ipv6-icmp"
    elif proto in ("TCP", "UDP"):
        lo, hi = _port(r.from_port, "FromPort"), _port(r.to_port, "ToPort")
        if lo > hi:
            raise DriverError(f"invalid port range {r.from_port}-{r.to_port}: FromPort is greater than ToPort")
        body.update(protocol=proto.lower(), port_range_min=lo, port_range_max=hi)
    else:
        raise DriverError(f"unsupported IPProtocol '{rule.ip_protocol}' (TCP, UDP, ICMP or ALL)")
    if sg_id:
        body["security_group_id"] = sg_id
    return body


def neutron_to_rule(nr: dict[str, Any]) -> SecurityRule | None:
    """A Neutron rule -> a CB-Spider rule; None for rules CB-Spider cannot express (remote groups,
    other protocols)."""
    if nr.get("remote_group_id") or nr.get("remote_address_group_id"):
        return None
    direction = "inbound" if nr.get("direction") == "ingress" else "outbound"
    eth = nr.get("ethertype") or "IPv4"
    cidr = nr.get("remote_ip_prefix") or (ANY_V6 if eth == "IPv6" else ANY_V4)
    cidr = canonical_cidr(cidr)
    proto = nr.get("protocol")
    proto = str(proto).lower() if proto not in (None, "", "any") else None
    if proto is None:
        return SecurityRule(direction, "ALL", "-1", "-1", cidr)
    if proto in ("icmp", "1", "ipv6-icmp", "icmpv6", "58"):
        return SecurityRule(direction, "ICMP", "-1", "-1", cidr)
    if proto in ("tcp", "6", "udp", "17"):
        name = "TCP" if proto in ("tcp", "6") else "UDP"
        lo, hi = nr.get("port_range_min"), nr.get("port_range_max")
        if lo is None and hi is None:
            lo, hi = 1, 65535
        lo = lo if lo is not None else hi
        hi = hi if hi is not None else lo
        return SecurityRule(direction, name, str(lo), str(hi), cidr)
    return None


def rule_key(rule: SecurityRule) -> SecurityRule:
    """Comparison form: normalised, canonical CIDR."""
    r = normalise_rule(rule)
    if r.ip_protocol in ("ALL", "-1", "ICMP"):
        r = SecurityRule(r.direction, "ALL" if r.ip_protocol == "-1" else r.ip_protocol, "-1", "-1", r.cidr)
    return SecurityRule(r.direction, r.ip_protocol, r.from_port, r.to_port, canonical_cidr(r.cidr))


def rules_from_group(sg: dict[str, Any]) -> list[tuple[SecurityRule, str]]:
    """(rule, neutron rule id) for every expressible rule of a security group, inbound first."""
    out: list[tuple[SecurityRule, str]] = []
    for nr in sg.get("security_group_rules") or []:
        rule = neutron_to_rule(nr)
        if rule is not None:
            out.append((rule, str(nr.get("id", ""))))
    out.sort(key=lambda item: 0 if item[0].direction == "inbound" else 1)
    return out


def is_default_v6_egress(nr: dict[str, Any]) -> bool:
    """The IPv6 allow-all egress rule Neutron adds to every new group."""
    return (nr.get("direction") == "egress" and nr.get("ethertype") == "IPv6" and nr.get("protocol") is None
            and nr.get("remote_ip_prefix") in (None, ANY_V6) and not nr.get("remote_group_id"))


def is_default_v4_egress(nr: dict[str, Any]) -> bool:
    return (nr.get("direction") == "egress" and nr.get("ethertype", "IPv4") == "IPv4"
            and nr.get("protocol") is None and nr.get("remote_ip_prefix") in (None, ANY_V4)
            and not nr.get("remote_group_id"))


# ------------------------------------------------------------------------------------------------
# VM status

_TASK_STATUS = {
    "deleting": VMStatus.TERMINATING, "soft-deleting": VMStatus.TERMINATING,
    "suspending": VMStatus.SUSPENDING, "powering-off": VMStatus.SUSPENDING, "pausing": VMStatus.SUSPENDING,
    "shelving": VMStatus.SUSPENDING,
    "resuming": VMStatus.RESUMING, "powering-on": VMStatus.RESUMING, "unpausing": VMStatus.RESUMING,
    "unshelving": VMStatus.RESUMING,
    "rebooting": VMStatus.REBOOTING, "reboot_pending": VMStatus.REBOOTING, "reboot_started": VMStatus.REBOOTING,
    "rebooting_hard": VMStatus.REBOOTING, "reboot_pending_hard": VMStatus.REBOOTING,
    "reboot_started_hard": VMStatus.REBOOTING,
    "scheduling": VMStatus.CREATING, "networking": VMStatus.CREATING, "spawning": VMStatus.CREATING,
    "block_device_mapping": VMStatus.CREATING,
}

_SERVER_STATUS = {
    "BUILD": VMStatus.CREATING, "ACTIVE": VMStatus.RUNNING,
    "SUSPENDED": VMStatus.SUSPENDED, "SHUTOFF": VMStatus.SUSPENDED, "PAUSED": VMStatus.SUSPENDED,
    "SHELVED": VMStatus.SUSPENDED, "SHELVED_OFFLOADED": VMStatus.SUSPENDED, "STOPPED": VMStatus.SUSPENDED,
    "REBOOT": VMStatus.REBOOTING, "HARD_REBOOT": VMStatus.REBOOTING,
    "DELETED": VMStatus.TERMINATED, "SOFT_DELETED": VMStatus.TERMINATED,
    "ERROR": VMStatus.FAILED, "UNKNOWN": VMStatus.FAILED,
    # administrative transitions of a running server
    "MIGRATING": VMStatus.RUNNING, "RESIZE": VMStatus.RUNNING, "VERIFY_RESIZE": VMStatus.RUNNING,
    "REVERT_RESIZE": VMStatus.RUNNING, "PASSWORD": VMStatus.RUNNING, "REBUILD": VMStatus.CREATING,
    "RESCUE": VMStatus.RUNNING,
}


def task_state(server: dict[str, Any]) -> str:
    return str(server.get("OS-EXT-STS:task_state") or "").lower()


def vm_status(server: dict[str, Any]) -> VMStatus:
    """Nova server -> CB-Spider VMStatus; a pending task wins over the steady status."""
    task = task_state(server)
    if task in _TASK_STATUS:
        return _TASK_STATUS[task]
    return _SERVER_STATUS.get(str(server.get("status", "")).upper(), VMStatus.FAILED)


def is_settled(server: dict[str, Any]) -> bool:
    """No transition pending: a steady status and no task state."""
    return not task_state(server) and str(server.get("status", "")).upper() in (
        "ACTIVE", "SUSPENDED", "SHUTOFF", "PAUSED", "ERROR", "SHELVED", "SHELVED_OFFLOADED")


# ------------------------------------------------------------------------------------------------
# NLB member health

HEALTHY = {"ONLINE", "NO_MONITOR"}


def member_healthy(member: dict[str, Any]) -> bool:
    return str(member.get("operating_status", "")).upper() in HEALTHY


def monitor_type(protocol: str) -> str:
    p = (protocol or "TCP").upper()
    if p in ("TCP", "HTTP", "HTTPS", "PING", "UDP-CONNECT", "TLS-HELLO", "SCTP"):
        return p
    if p == "UDP":
        return "UDP-CONNECT"
    if p == "ICMP":
        return "PING"
    raise DriverError(f"unsupported HealthChecker protocol '{protocol}' (TCP, HTTP, HTTPS, UDP)")


def monitor_protocol(mtype: str) -> str:
    t = (mtype or "").upper()
    return {"UDP-CONNECT": "UDP", "PING": "ICMP"}.get(t, t)


# ------------------------------------------------------------------------------------------------
# image / flavor


def image_platform(img: dict[str, Any]) -> str:
    os_type = str(img.get("os_type") or "").lower()
    if os_type == "windows" or "windows" in str(img.get("os_distro") or "").lower():
        return "Windows"
    return "Linux/UNIX" if os_type in ("", "linux") else os_type.capitalize()


_ARCH = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "arm64", "arm64": "arm64", "i686": "x86_32",
         "i386": "x86_32", "x86_32": "x86_32"}


def image_arch(img: dict[str, Any]) -> str:
    return _ARCH.get(str(img.get("architecture") or "").lower(), "NA")


def image_distribution(img: dict[str, Any]) -> str:
    distro = str(img.get("os_distro") or "").strip()
    version = str(img.get("os_version") or "").strip()
    return " ".join(x for x in (distro, version) if x) or str(img.get("name") or "")


# ------------------------------------------------------------------------------------------------
# descriptions: small JSON documents in description fields

MARK = "spidertwin"
DESCRIPTION_MAX = 255


def describe(**fields: Any) -> str:
    """``{"spidertwin": {...}}`` in at most 255 characters (Neutron's limit); tags go first when long."""
    doc = {k: v for k, v in fields.items() if v not in (None, "", [], {})}
    text = json.dumps({MARK: doc}, separators=(",", ":"))
    if len(text) > DESCRIPTION_MAX and "Tags" in doc:
        doc.pop("Tags")
        text = json.dumps({MARK: doc}, separators=(",", ":"))
    return text[:DESCRIPTION_MAX]


def described(description: Any) -> dict[str, Any]:
    """What ``describe`` wrote ({} for any other description)."""
    if not isinstance(description, str) or MARK not in description:
        return {}
    try:
        doc = json.loads(description)
    except ValueError:
        return {}
    inner = doc.get(MARK) if isinstance(doc, dict) else None
    return inner if isinstance(inner, dict) else {}


def tags_in(kvs: list[KeyValue]) -> dict[str, str]:
    return {kv.key: kv.value for kv in kvs or [] if kv.key}


def tags_out(doc: dict[str, Any]) -> list[KeyValue]:
    tags = doc.get("Tags")
    return [KeyValue(str(k), str(v)) for k, v in tags.items()] if isinstance(tags, dict) else []
