"""The rule model: what a CB-Spider security group lets through, in pure Python.

Every expectation of the suite comes from here, never from a hand-typed table, so one definition of
"what an SG means" decides the CB-Spider cases, the generated matrix and users' own case files:

* rules are allow-only; a probe passes when one rule of its direction matches protocol, port and peer;
* ``ALL`` matches every protocol and port, ``ICMP`` carries no port (both use ``-1``);
* TCP/UDP rules match ports ``FromPort..ToPort`` inclusive;
* the CIDR must contain the peer (the source of inbound, the destination of outbound traffic);
  an empty CIDR means ``0.0.0.0/0``; host bits are ignored as clouds do (``10.1.2.3/24`` = ``10.1.2.0/24``);
* groups are stateful: the reply of an allowed connection needs no rule in the other direction.
  ``stateful=False`` evaluates the reply against the other direction too, which is what a broken
  connection-tracking rule would do (the suite uses it to explain failures, not to expect them).

It also applies AddRules/RemoveRules the way Spider answers them: an AddRules naming a rule the
group already has, or a RemoveRules naming one it lacks, is rejected as a whole and changes nothing
(CB-Spider's "already has this rule" / "does not have this rule").
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Iterable, Mapping

DIRECTIONS = ("inbound", "outbound")
PROTOCOLS = ("TCP", "UDP", "ICMP", "ALL")
PROBE_PROTOCOLS = ("tcp", "udp", "icmp")
ANY_V4 = "0.0.0.0/0"


class RuleError(ValueError):
    """A rule that no cloud would accept (bad protocol, port or CIDR)."""


def canonical_cidr(cidr: str) -> str:
    text = (cidr or "").strip() or ANY_V4
    try:
        return str(ipaddress.ip_network(text, strict=False))
    except ValueError:
        raise RuleError(f"invalid CIDR '{cidr}'") from None


@dataclass(frozen=True, order=True)
class Rule:
    """One CB-Spider rule in comparison form (the key Spider's drivers compare on)."""

    direction: str
    protocol: str
    from_port: int
    to_port: int
    cidr: str = ANY_V4

    @classmethod
    def of(cls, direction: str, protocol: str, from_port: int | str = -1, to_port: int | str = -1,
           cidr: str = "") -> "Rule":
        """Normalise like Spider: direction lower, protocol upper (``-1`` = ALL), ALL/ICMP ports -1,
        canonical CIDR. Raises :class:`RuleError` for what a driver would reject."""
        d = str(direction).strip().lower()
        if d not in DIRECTIONS:
            raise RuleError(f"invalid Direction '{direction}' (inbound or outbound)")
        p = str(protocol).strip().upper()
        if p == "-1":
            p = "ALL"
        if p not in PROTOCOLS:
            raise RuleError(f"invalid IPProtocol '{protocol}' (TCP, UDP, ICMP or ALL)")
        if p in ("ALL", "ICMP"):
            lo = hi = -1
        else:
            try:
                lo, hi = int(str(from_port).strip()), int(str(to_port).strip())
            except ValueError:
                raise RuleError(f"invalid port range '{from_port}'-'{to_port}': ports must be integers") from None
            if not (1 <= lo <= 65535 and 1 <= hi <= 65535):
                raise RuleError(f"invalid port range {lo}-{hi}: TCP/UDP ports are 1..65535")
            if lo > hi:
                raise RuleError(f"invalid port range {lo}-{hi}: FromPort is greater than ToPort")
        return cls(d, p, lo, hi, canonical_cidr(cidr))

    @classmethod
    def from_cbspider(cls, body: Mapping[str, object]) -> "Rule":
        """From CB-Spider JSON (``Direction``, ``IPProtocol``, ``FromPort``, ``ToPort``, ``CIDR``);
        keys are case-insensitive as on the wire."""
        low = {str(k).lower(): v for k, v in body.items()}
        return cls.of(str(low.get("direction", "")), str(low.get("ipprotocol", "")),
                      str(low.get("fromport", "-1")), str(low.get("toport", "-1")), str(low.get("cidr") or ""))

    def to_cbspider(self) -> dict[str, str]:
        return {"Direction": self.direction, "IPProtocol": self.protocol, "FromPort": str(self.from_port),
                "ToPort": str(self.to_port), "CIDR": self.cidr}

    def text(self) -> str:
        """CB-Spider's own text form: ``{inbound TCP 22 22 0.0.0.0/0}``."""
        return f"{{{self.direction} {self.protocol} {self.from_port} {self.to_port} {self.cidr}}}"

    def matches(self, direction: str, proto: str, port: int | None, peer: str) -> bool:
        if direction != self.direction:
            return False
        if self.protocol != "ALL":
            if self.protocol != proto.upper():
                return False
            if self.protocol in ("TCP", "UDP") and not (port is not None and self.from_port <= port <= self.to_port):
                return False
        return ipaddress.ip_address(peer) in ipaddress.ip_network(self.cidr)


#: The rule CB-Spider shows on every new group (the CSP's default egress), which RemoveRules may delete.
DEFAULT_EGRESS = Rule("outbound", "ALL", -1, -1, ANY_V4)


@dataclass(frozen=True)
class Probe:
    """One traffic probe between the VM and a client: ``direction`` says who opens the connection
    (inbound = client -> VM, outbound = VM -> client); ``peer`` is the client's IP; ``port`` is None for ICMP."""

    direction: str
    proto: str
    port: int | None
    peer: str

    def __post_init__(self) -> None:
        if self.direction not in DIRECTIONS:
            raise RuleError(f"invalid probe direction '{self.direction}'")
        if self.proto not in PROBE_PROTOCOLS:
            raise RuleError(f"invalid probe protocol '{self.proto}' (tcp, udp or icmp)")
        if self.proto != "icmp" and not (self.port and 1 <= self.port <= 65535):
            raise RuleError(f"a {self.proto} probe needs a port 1..65535, got {self.port}")
        ipaddress.ip_address(self.peer)


def opposite(direction: str) -> str:
    return "outbound" if direction == "inbound" else "inbound"


#: Linux's default ephemeral port range (net.ipv4.ip_local_port_range): where replies are addressed.
EPHEMERAL = (32768, 60999)


def _reply_allowed(rules: list[Rule], probe: Probe) -> bool:
    """Without connection tracking the reply is a new packet in the other direction, addressed to the
    opener's ephemeral port: only ALL, the same protocol with a range covering every ephemeral port,
    or (for ICMP) an ICMP rule lets it through."""
    back = opposite(probe.direction)
    peer = ipaddress.ip_address(probe.peer)
    for r in rules:
        if r.direction != back or peer not in ipaddress.ip_network(r.cidr):
            continue
        if r.protocol == "ALL" or (r.protocol == "ICMP" and probe.proto == "icmp"):
            return True
        if r.protocol == probe.proto.upper() and r.from_port <= EPHEMERAL[0] and r.to_port >= EPHEMERAL[1]:
            return True
    return False


def allows(rules: Iterable[Rule], probe: Probe, *, stateful: bool = True) -> bool:
    """Would the group let this probe's connection through (and its reply back)?"""
    rules = list(rules)
    if not any(r.matches(probe.direction, probe.proto, probe.port, probe.peer) for r in rules):
        return False
    return stateful or _reply_allowed(rules, probe)


@dataclass(frozen=True)
class ChangeOutcome:
    """What an AddRules/RemoveRules does to a rule set: the new set, or the error Spider answers."""

    rules: tuple[Rule, ...]
    error: str | None = None


def _text_list(rules: Iterable[Rule]) -> str:
    return "[" + " ".join(r.text() for r in rules) + "]"


def add_rules(current: Iterable[Rule], new: Iterable[Rule]) -> ChangeOutcome:
    """AddRules: rejected as a whole if any rule is already present (exact five-field match; an ALL
    rule does not cover a TCP rule), else the union in request order."""
    have = list(current)
    new = list(new)
    for r in new:
        if r in have:
            return ChangeOutcome(tuple(have), f"already has this rule: {r.text()} (group has {_text_list(have)})")
    out = list(have)
    for r in new:
        if r not in out:
            out.append(r)
    return ChangeOutcome(tuple(out))


def remove_rules(current: Iterable[Rule], gone: Iterable[Rule]) -> ChangeOutcome:
    """RemoveRules: rejected as a whole if any rule is missing, else the set without them."""
    have = list(current)
    gone = list(gone)
    for r in gone:
        if r not in have:
            return ChangeOutcome(tuple(have), f"does not have this rule: {r.text()} (group has {_text_list(have)})")
    return ChangeOutcome(tuple(r for r in have if r not in gone))


def created_group(requested: Iterable[Rule]) -> tuple[Rule, ...]:
    """What CB-Spider shows for a freshly created group: the requested rules (deduplicated) plus the
    default outbound allow-all (profiles that add no egress are normalised to this by the driver)."""
    out: list[Rule] = []
    for r in requested:
        if r not in out:
            out.append(r)
    if DEFAULT_EGRESS not in out:
        out.append(DEFAULT_EGRESS)
    return tuple(out)


def same_rules(a: Iterable[Rule], b: Iterable[Rule]) -> bool:
    return sorted(set(a)) == sorted(set(b))
