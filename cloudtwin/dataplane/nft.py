"""Security groups -> one nftables table per VM namespace.

The table mirrors how Neutron's firewall drivers behave: stateful (established/related return traffic
is accepted first, invalid packets dropped), inbound and outbound default **drop**, and each rule an
allow for new connections. Each port gets its own pair of chains, reached from the base chains by its
interface names (a one-port server: its private interface and the public one carrying its floating IPs,
so a floating IP change leaves the table as it is) or, when a server has several ports, by the floating
IPs of each port on the shared public interface.

A compiled table is applied with one ``nft -f -`` inside the namespace; the file starts with
``table`` + ``delete table`` + the new definition, so the swap is one atomic transaction.

``broken`` switches on a deliberate compiler bug (``stateful``: no established/related rule; ``cidr``:
remote IP prefixes ignored), which a security-group suite uses to prove it can fail.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass

BREAKS = ("stateful", "cidr")
PORT_PROTOCOLS = {6, 17, 33, 132, 136}        # tcp, udp, dccp, sctp, udplite: the ones with ports
ND_TYPES = "{ nd-neighbor-solicit, nd-neighbor-advert, nd-router-solicit, nd-router-advert }"


@dataclass(frozen=True)
class RuleSpec:
    """One Neutron rule with its remote side resolved: ``remote`` None = any address, () = nobody."""

    direction: str                          # ingress | egress
    version: int                            # 4 | 6
    protocol: int | None                    # IP protocol number, None = any
    port_min: int | None = None             # ICMP: type
    port_max: int | None = None             # ICMP: code
    remote: tuple[str, ...] | None = None
    remote_group: str | None = None
    prefix: str | None = None               # the rule's remote_ip_prefix as given
    rule_id: str = ""


@dataclass(frozen=True)
class PortPolicy:
    index: int
    ifnames: tuple[str, ...]                # interfaces whose traffic is this port's
    floating: tuple[str, ...]               # addresses on a shared interface that are this port's
    enabled: bool                           # port_security_enabled: False means no filtering
    rules: tuple[RuleSpec, ...]


def _ports(lo: int | None, hi: int | None) -> str | None:
    if lo is None and hi is None:
        return None
    lo = 1 if lo is None else lo
    hi = lo if hi is None else hi
    return str(lo) if lo == hi else f"{lo}-{hi}"


def render_rule(rule: RuleSpec, broken: str | None = None) -> str | None:
    """The nft statement allowing ``rule``'s new connections, or None when it can match nobody."""
    v4 = rule.version == 4
    parts = [f"meta nfproto {'ipv4' if v4 else 'ipv6'}"]
    remote = rule.remote
    if broken == "cidr" and rule.remote_group is None:
        remote = None
    if remote is not None:
        if not remote:
            return None
        family, side = ("ip" if v4 else "ip6"), ("saddr" if rule.direction == "ingress" else "daddr")
        parts.append(f"{family} {side} {remote[0]}" if len(remote) == 1
                     else f"{family} {side} {{ {', '.join(remote)} }}")
    proto = rule.protocol
    if proto in (1, 58):
        icmp = "icmp" if v4 else "icmpv6"       # Neutron's "icmp" on an IPv6 rule means ICMPv6
        parts.append(f"meta l4proto {icmp}")
        if rule.port_min is not None:
            parts.append(f"{icmp} type {rule.port_min}")
            if rule.port_max is not None:
                parts.append(f"{icmp} code {rule.port_max}")
    elif proto is not None:
        parts.append(f"meta l4proto {proto}")
        ports = _ports(rule.port_min, rule.port_max) if proto in PORT_PROTOCOLS else None
        if ports is not None:
            parts.append(f"th dport {ports}")
    parts.append("ct state new accept")
    return " ".join(parts)


def compile_ruleset(table: str, policies: list[PortPolicy], broken: str | None = None) -> str:
    lines = [f"table inet {table}", f"delete table inet {table}", f"table inet {table} {{"]
    for p in policies:
        for direction, suffix in (("ingress", "in"), ("egress", "out")):
            lines.append(f"\tchain port{p.index}_{suffix} {{")
            if not p.enabled:
                lines.append("\t\taccept")
            for rule in p.rules if p.enabled else ():
                if rule.direction != direction:
                    continue
                text = render_rule(rule, broken)
                lines.append(f"\t\t{text}" if text else
                             f"\t\t# rule {rule.rule_id}: remote group {rule.remote_group} has no members")
            lines.append("\t}")
    for chain, hook, dev, addr, suffix in (("ingress", "input", "iifname", "daddr", "in"),
                                           ("egress", "output", "oifname", "saddr", "out")):
        lines.append(f"\tchain {chain} {{")
        lines.append(f"\t\ttype filter hook {hook} priority filter; policy drop;")
        if broken != "stateful":
            lines.append("\t\tct state established,related accept")
        lines.append(f"\t\ticmpv6 type {ND_TYPES} accept")
        lines.append("\t\tct state invalid drop")
        lines.append(f'\t\t{dev} "lo" accept')
        for p in policies:
            for ifname in p.ifnames:
                lines.append(f'\t\t{dev} "{ifname}" jump port{p.index}_{suffix}')
            for ip in p.floating:
                lines.append(f"\t\tip {addr} {ip} jump port{p.index}_{suffix}")
        lines.append("\t}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def apply_here(text: str) -> None:
    """Load a compiled table into the calling thread's namespace (run on a ``NetnsThreads`` worker)."""
    done = subprocess.run(["nft", "-f", "-"], input=text, text=True, capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"nft -f - failed: {done.stderr.strip()[:800]}")
