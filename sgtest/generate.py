"""The generated matrix (suite ``generated``): protocols x port shapes x CIDRs x directions x
stateful return traffic x add / remove / duplicate add / remove-missing.

Designed around what the data plane can answer: responders listen on TCP 22 and 1000, UDP 2000 and
ICMP echo on both the VM and the client, so a rule's port shape is chosen to cover or miss those ports
(a single port, a range around 1000 or 2000, a range ending just below, the edges 1 and 65535), and its
CIDR to contain the client or not (client/32, client's /24, 0.0.0.0/0, 10.0.0.0/8, 4.5.6.7/32). Every
case probes the four columns of its rule's direction in one batch, so a case costs one probe timeout.

State changes are minimal: each "add" case is followed by the "remove" case that reverts it, so the
group returns to the phase's base between rules. Phases:

1. inbound rules, default egress present (base: no inbound rule);
2. inbound rules with no egress rule at all: every pass proves the reply came back statefully;
3. outbound rules with no inbound and no egress rule (stateful return of outbound connections);
4. restore the starting rules.

Expectations, including which calls Spider rejects (duplicate add, remove of a missing rule), come
from the rule model like every other case.
"""

from __future__ import annotations

from dataclasses import dataclass

from sgtest.cases import Case, Column, RuleTemplate, Step, Suite, column_name

SUITE = "generated"
START = {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22"}
DEFAULT_EGRESS = {"Direction": "outbound", "IPProtocol": "ALL", "FromPort": "-1", "ToPort": "-1"}

#: Port shapes per protocol, chosen around the responders' ports (TCP 22/1000, UDP 2000).
PORT_SHAPES: dict[str, tuple[tuple[int, int], ...]] = {
    "TCP": ((22, 22), (1000, 1000), (999, 1001), (1001, 1005), (1, 999), (1000, 65535), (1, 65535), (1, 1),
            (65535, 65535)),
    "UDP": ((2000, 2000), (1999, 2001), (2001, 2010), (1, 1999), (2000, 65535), (1, 65535), (65535, 65535)),
    "ICMP": ((-1, -1),),
    "ALL": ((-1, -1),),
}
#: CIDRs containing the client, and not (the client's IP is known at run time).
CIDRS_MAIN = ("0.0.0.0/0", "${CLIENT1_IP}/32", "4.5.6.7/32")
CIDRS_MORE = ("${CLIENT1_NET24}", "10.0.0.0/8")
#: The shapes also tried with CIDRS_MORE (one per protocol family, plus the widest ranges).
MORE_SHAPES = (("TCP", (22, 22)), ("TCP", (999, 1001)), ("UDP", (2000, 2000)), ("UDP", (1, 65535)),
               ("ICMP", (-1, -1)), ("ALL", (-1, -1)))


def columns_for(direction: str) -> tuple[Column, ...]:
    return tuple(Column(column_name(direction, proto, port), direction, proto, port)
                 for proto, port in (("tcp", 22), ("tcp", 1000), ("udp", 2000), ("icmp", None)))


def rule(direction: str, proto: str, ports: tuple[int, int], cidr: str) -> dict[str, str]:
    return {"Direction": direction, "IPProtocol": proto, "FromPort": str(ports[0]), "ToPort": str(ports[1]),
            "CIDR": cidr}


def _label(r: dict[str, str]) -> str:
    ports = "" if r["IPProtocol"] in ("ALL", "ICMP") else f" {r['FromPort']}-{r['ToPort']}"
    return f"{r['Direction']} {r['IPProtocol']}{ports} from/to {r['CIDR']}"


@dataclass
class _Builder:
    cases: list[Case]

    def add(self, title: str, steps: list[Step], direction: str) -> None:
        n = f"g{len(self.cases) + 1:03d}"
        self.cases.append(Case(id=n, title=title, steps=tuple(steps), columns=columns_for(direction),
                               script=f"{n}.generated-case-{n}.sh"))


def _step(action: str, *rules: dict[str, str]) -> Step:
    return Step(action, tuple(RuleTemplate.of(r) for r in rules))  # type: ignore[arg-type]


def _matrix(direction: str, cidrs_by_shape: list[tuple[str, tuple[int, int], str]], b: _Builder,
            context: str, duplicate_every: int) -> None:
    """add + revert for every (protocol, ports, CIDR); every ``duplicate_every``-th rule also gets a
    duplicate add while present and a remove-missing once reverted."""
    for i, (proto, ports, cidr) in enumerate(cidrs_by_shape):
        r = rule(direction, proto, ports, cidr)
        b.add(f"[{context}] add {_label(r)}", [_step("add", r)], direction)
        if duplicate_every and i % duplicate_every == 0:
            b.add(f"[{context}] duplicate add {_label(r)} (Spider rejects, nothing changes)", [_step("add", r)],
                  direction)
        b.add(f"[{context}] remove {_label(r)}", [_step("remove", r)], direction)
        if duplicate_every and i % duplicate_every == 0:
            b.add(f"[{context}] remove missing {_label(r)} (Spider rejects, nothing changes)",
                  [_step("remove", r)], direction)


def _main_matrix() -> list[tuple[str, tuple[int, int], str]]:
    return [(proto, ports, cidr) for proto, shapes in PORT_SHAPES.items() for ports in shapes for cidr in CIDRS_MAIN]


def _more_matrix() -> list[tuple[str, tuple[int, int], str]]:
    return [(proto, ports, cidr) for proto, ports in MORE_SHAPES for cidr in CIDRS_MORE]


def generated_suite() -> Suite:
    b = _Builder([])
    # phase 1: inbound rules, default egress present
    b.add("[inbound] base: remove the starting inbound TCP 22 (no inbound rule)", [_step("remove", START)],
          "inbound")
    _matrix("inbound", _main_matrix(), b, "inbound", duplicate_every=9)
    # an ALL rule does not make a TCP rule a duplicate (CB-Spider's MOCK note, §9)
    all_any, tcp22 = rule("inbound", "ALL", (-1, -1), "0.0.0.0/0"), rule("inbound", "TCP", (22, 22), "0.0.0.0/0")
    b.add("[inbound] add ALL, then TCP 22 is not a duplicate", [_step("add", all_any), _step("add", tcp22)],
          "inbound")
    b.add("[inbound] remove TCP 22 with the wrong CIDR (missing: rejected)",
          [_step("remove", rule("inbound", "TCP", (22, 22), "${CLIENT1_IP}/32"))], "inbound")
    b.add("[inbound] remove ALL and TCP 22 in one call", [_step("remove", all_any, tcp22)], "inbound")
    # phase 2: inbound rules, no egress rule: passes need stateful return traffic
    b.add("[stateful-in] base: remove the default egress (no rule at all)", [_step("remove", DEFAULT_EGRESS)],
          "inbound")
    _matrix("inbound", _more_matrix(), b, "stateful-in", duplicate_every=0)
    # phase 3: outbound rules, nothing inbound, no egress
    b.add("[outbound] base: still no rule at all", [], "outbound")
    _matrix("outbound", _main_matrix() + _more_matrix(), b, "outbound", duplicate_every=11)
    # phase 4: back to the start
    b.add("[restore] add the starting inbound TCP 22 and the default egress",
          [_step("add", START, DEFAULT_EGRESS)], "outbound")
    return Suite(name=SUITE, title="Generated matrix: protocols x ports x CIDRs x directions x stateful x "
                                   "add/remove/duplicate/remove-missing",
                 cases=tuple(b.cases), initial_rules=(RuleTemplate.of(START),), kind="traffic",
                 skip_rules="prober", source="sgtest/generate.py")
