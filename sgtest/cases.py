"""The case model: suites of cases, each a list of REST steps and the probe columns to measure.

Case files (YAML, see :mod:`sgtest.schema`) and the generated matrix (:mod:`sgtest.generate`) both
produce these objects; the runner and the expectation planner never look at YAML.

Rule templates may name the test client, which is only known at run time (CB-Spider reads it with
``curl ifconfig.co``; the netns data plane reports its client namespaces' IPs):

* ``${CLIENT1_IP}``    the client's IP (``${CLIENT1_IP}/32`` is CB-Spider case 20's CIDR)
* ``${CLIENT1_NET24}`` the client's /24 network, e.g. ``10.77.0.0/24``
* ``${CLIENT1_NET16}`` the client's /16 network
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path
from string import Template
from typing import Literal, Mapping

from reports.model import CBSPIDER_COLUMNS
from sgtest.rules import Probe, Rule

StepAction = Literal["add", "remove", "get", "list"]
SuiteKind = Literal["traffic", "readback"]
SkipRules = Literal["cbspider", "prober"]
CellValue = Literal["pass", "fail", "skip"]

CASES_DIR = Path(__file__).resolve().parent / "cases"


@dataclass(frozen=True)
class ClientContext:
    """The test client as the rules and probes see it."""

    ip: str

    def placeholders(self) -> dict[str, str]:
        addr = ipaddress.ip_address(self.ip)
        return {"CLIENT1_IP": self.ip,
                "CLIENT1_NET24": str(ipaddress.ip_network(f"{addr}/24", strict=False)),
                "CLIENT1_NET16": str(ipaddress.ip_network(f"{addr}/16", strict=False))}


#: A client IP used to check templates at load time (documentation range, never probed).
CHECK_CONTEXT = ClientContext("198.51.100.7")


@dataclass(frozen=True)
class RuleTemplate:
    """A CB-Spider rule as written in a case file (strings, placeholders allowed)."""

    fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, body: Mapping[str, object]) -> "RuleTemplate":
        return cls(tuple((str(k), str(v)) for k, v in body.items()))

    def wire(self, ctx: ClientContext) -> dict[str, str]:
        """The body sent to Spider, exactly as written except for placeholders (CB-Spider's scripts
        send ``"all"`` lower-case and omit CIDR; so do we)."""
        subst = ctx.placeholders()
        return {k: Template(v).substitute(subst) for k, v in self.fields}

    def rule(self, ctx: ClientContext) -> Rule:
        return Rule.from_cbspider(self.wire(ctx))


@dataclass(frozen=True)
class Step:
    """One REST interaction of a case: AddRules / RemoveRules (one call with all listed rules), or
    throw-away GET / LIST calls (CB-Spider's cases 20 and 21 make two GETs between their changes)."""

    action: StepAction
    rules: tuple[RuleTemplate, ...] = ()
    count: int = 1

    def describe(self, ctx: ClientContext) -> str:
        if self.action in ("get", "list"):
            return f"{self.action.upper()} x{self.count}"
        verb = "AddRules" if self.action == "add" else "RemoveRules"
        return f"{verb} " + ", ".join(_short(r.rule(ctx)) for r in self.rules)


def _short(rule: Rule) -> str:
    ports = "" if rule.protocol in ("ALL", "ICMP") else f" {rule.from_port}/{rule.to_port}"
    cidr = "" if rule.cidr == "0.0.0.0/0" else f" {rule.cidr}"
    return f"{rule.direction} {rule.protocol}{ports}{cidr}"


@dataclass(frozen=True)
class Column:
    """One probe column: who opens the connection (direction), protocol and port, toward the client."""

    name: str
    direction: str
    proto: str
    port: int | None

    def probe(self, ctx: ClientContext) -> Probe:
        return Probe(self.direction, self.proto, self.port, ctx.ip)


def _cbspider_columns() -> tuple[Column, ...]:
    specs = (("inbound", "tcp", 22), ("inbound", "tcp", 1000), ("inbound", "udp", 2000), ("inbound", "icmp", None),
             ("outbound", "tcp", 22), ("outbound", "tcp", 1000), ("outbound", "udp", 2000), ("outbound", "icmp", None))
    return tuple(Column(name, d, p, port) for name, (d, p, port) in zip(CBSPIDER_COLUMNS, specs))


#: CB-Spider's eight probes (§4), in file order.
CBSPIDER = _cbspider_columns()


def column_name(direction: str, proto: str, port: int | None) -> str:
    """Name a non-CB-Spider column in the same style: ``I:TCP (1000)``, ``O:ICMP (ping)``."""
    return f"{'I' if direction == 'inbound' else 'O'}:{proto.upper()} ({port if port is not None else 'ping'})"


@dataclass(frozen=True)
class Case:
    id: str
    title: str
    steps: tuple[Step, ...]
    columns: tuple[Column, ...] = CBSPIDER
    script: str = ""                                   # CB-Spider's header name, e.g. 03.inbound-case-03.sh
    cbspider_expected: tuple[CellValue, ...] | None = None
    cbspider_readback: tuple[RuleTemplate, ...] | None = None
    probe: bool = True                                 # False: API steps and read-back only


@dataclass(frozen=True)
class Suite:
    name: str
    title: str
    cases: tuple[Case, ...]
    initial_rules: tuple[RuleTemplate, ...] = ()
    kind: SuiteKind = "traffic"
    skip_rules: SkipRules = "cbspider"
    source: str = ""
    description: str = ""
    extra: dict[str, object] = field(default_factory=dict, compare=False)

    @property
    def needs_vm(self) -> bool:
        return self.kind == "traffic"


def parse_tuple(text: str) -> tuple[CellValue, ...]:
    """``"pass fail skip fail | pass pass pass pass"`` -> 8 values (the ``|`` is optional)."""
    values = [v for v in text.replace("|", " ").split()]
    bad = [v for v in values if v not in ("pass", "fail", "skip")]
    if bad:
        raise ValueError(f"values must be pass, fail or skip, got {', '.join(map(repr, bad))}")
    return tuple(values)  # type: ignore[return-value]


def format_tuple(values: tuple[str, ...] | list[str]) -> str:
    if len(values) == 8:
        return " ".join(values[:4]) + " | " + " ".join(values[4:])
    return " ".join(values)
