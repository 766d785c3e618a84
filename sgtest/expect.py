"""Expectations from the rule model: what each step should answer and what each probe should see.

The planner walks a suite's cases in order with the intended rule set, exactly as the cases walk the
real group: each AddRules/RemoveRules is predicted to succeed or to be rejected (duplicate / missing
rule, leaving the set unchanged), and the columns are evaluated on the resulting set. CB-Spider's
skip rules are applied on top (§4): a UDP block cannot be observed by ``nc -zu``, and outbound probes
travel over ssh, which needs inbound TCP 22.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from sgtest.cases import CellValue, ClientContext, Column, Case, Step, Suite
from sgtest.rules import Probe, Rule, add_rules, allows, created_group, remove_rules


@dataclass(frozen=True)
class SkipPolicy:
    """Which expectations become ``skip`` because the probing method cannot decide them."""

    udp_fail_unobservable: bool = True       # nc -zu: a dropped datagram looks like an open port
    outbound_needs_inbound_ssh: bool = True  # outbound probes run over ssh to the VM

    @classmethod
    def cbspider(cls) -> "SkipPolicy":
        return cls(True, True)


def cell_value(ok: bool) -> CellValue:
    return "pass" if ok else "fail"


def evaluate(rules: Iterable[Rule], columns: Iterable[Column], ctx: ClientContext,
             policy: SkipPolicy, *, stateful: bool = True) -> list[CellValue]:
    """The model's row for a rule set: pass/fail per column, then the skip rules."""
    rules = list(rules)
    columns = list(columns)
    ssh_open = allows(rules, Probe("inbound", "tcp", 22, ctx.ip), stateful=stateful)
    row: list[CellValue] = []
    for col in columns:
        ok = allows(rules, col.probe(ctx), stateful=stateful)
        if col.direction == "outbound" and policy.outbound_needs_inbound_ssh and not ssh_open:
            row.append("skip")
        elif col.proto == "udp" and not ok and policy.udp_fail_unobservable:
            row.append("skip")
        else:
            row.append(cell_value(ok))
    return row


def always_runs(column: Column) -> bool:
    """CB-Spider runs I:TCP and I:ICMP even when their expectation is skip; the rest are not run."""
    return column.direction == "inbound" and column.proto in ("tcp", "icmp")


@dataclass(frozen=True)
class StepPlan:
    step: Step
    wire_rules: tuple[dict[str, str], ...]   # the bodies sent, as written (placeholders filled)
    rules: tuple[Rule, ...]                  # the same rules in comparison form
    error: str | None                        # the rejection the model predicts, None = success
    rules_after: tuple[Rule, ...]


@dataclass(frozen=True)
class CasePlan:
    case: Case
    steps: tuple[StepPlan, ...]
    rules_before: tuple[Rule, ...]
    rules_after: tuple[Rule, ...]
    expected: tuple[CellValue, ...]          # the model's row on the intended rules
    documented_conflicts: tuple[str, ...]    # columns where cbspider_expected disagrees with the model

    def description(self, ctx: ClientContext) -> str:
        parts = []
        for sp in self.steps:
            if sp.step.action in ("get", "list"):
                continue
            text = sp.step.describe(ctx)
            if sp.error:
                text += " (rejected: " + ("duplicate" if "already" in sp.error else "missing") + ")"
            parts.append(text)
        return "; ".join(parts) or "no change"


def plan_step(step: Step, current: tuple[Rule, ...], ctx: ClientContext) -> StepPlan:
    wire = tuple(r.wire(ctx) for r in step.rules)
    rules = tuple(r.rule(ctx) for r in step.rules)
    if step.action == "add":
        outcome = add_rules(current, rules)
    elif step.action == "remove":
        outcome = remove_rules(current, rules)
    else:
        return StepPlan(step, (), (), None, current)
    return StepPlan(step, wire, rules, outcome.error, outcome.rules)


def initial_rules(suite: Suite, ctx: ClientContext) -> tuple[Rule, ...]:
    """The group as CB-Spider shows it right after creation."""
    return created_group(r.rule(ctx) for r in suite.initial_rules)


def plan_case(case: Case, current: tuple[Rule, ...], ctx: ClientContext, policy: SkipPolicy) -> CasePlan:
    steps = []
    rules = current
    for step in case.steps:
        sp = plan_step(step, rules, ctx)
        steps.append(sp)
        rules = sp.rules_after
    expected = tuple(evaluate(rules, case.columns, ctx, policy)) if case.probe else ()
    conflicts: list[str] = []
    if case.cbspider_expected is not None and case.probe:
        for col, model, documented in zip(case.columns, expected, case.cbspider_expected):
            if model != documented:
                conflicts.append(f"{col.name}: documented {documented}, rule model {model}")
    return CasePlan(case, tuple(steps), current, rules, expected, tuple(conflicts))


def plan_suite(suite: Suite, ctx: ClientContext, policy: SkipPolicy) -> list[CasePlan]:
    """Every case's plan, each starting from the previous case's intended rules."""
    rules = initial_rules(suite, ctx)
    plans = []
    for case in suite.cases:
        plan = plan_case(case, rules, ctx, policy)
        plans.append(plan)
        rules = plan.rules_after
    return plans


def policy_for(suite: Suite, prober_policy: SkipPolicy) -> SkipPolicy:
    return SkipPolicy.cbspider() if suite.skip_rules == "cbspider" else prober_policy
