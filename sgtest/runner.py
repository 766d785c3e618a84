"""Drive a Spider over its REST API through the suites, and fill the shared report model.

Per traffic case: send the case's REST changes exactly as CB-Spider's scripts do, read the group back
(``GET``), probe every column in one batch, and fill each cell with
expected (the rule model on the intended rules), model (the rule model on the read-back) and observed
(the prober). One VM serves every traffic suite; between suites the group is moved to the next
suite's starting rules with at most one RemoveRules and one AddRules. Everything created is removed
in ``finally`` — after a failure, a Ctrl-C or a SIGTERM (the CLI turns both into a cancellation).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from reports.model import RuleDiff, SgCase, SgCell, SgSuite
from spider_core.client import AsyncSpiderClient, SpiderAPIError
from sgtest.cases import CBSPIDER, ClientContext, Column, Suite
from sgtest.expect import (CasePlan, SkipPolicy, StepPlan, always_runs, evaluate, initial_rules, plan_case,
                           policy_for)
from sgtest.probers import Prober, ProbeBatch, ProbeRequest, VMTarget
from sgtest.resources import Names, RunRefused, TestBed, readback_rules
from sgtest.rules import DEFAULT_EGRESS, Probe, Rule, allows, same_rules

log = logging.getLogger("sgtest")

READINESS = tuple(c for c in CBSPIDER if c.direction == "inbound" and c.proto in ("tcp", "icmp"))


@dataclass
class RunConfig:
    server: str
    connection: str
    suites: list[Suite]
    out: Path
    csp: str = ""                 # CB-Spider's CSP word for the .out file; default: provider, lowercase
    image: str | None = None
    spec: str | None = None
    prefix: str = "SG-Rules-Test"
    settle_s: float = 0.0         # CB-Spider sleeps ${SLEEP:-10} after a change; emulated clouds need none
    ready_timeout_s: float = 60.0
    vm_timeout_s: float = 300.0
    username: str | None = None
    password: str | None = None
    progress: Callable[[str], None] = lambda line: None


@dataclass
class RunOutcome:
    suites: list[SgSuite] = field(default_factory=list)
    provider: str = ""
    prober: str = ""
    client_ip: str = ""
    cleanup_errors: list[str] = field(default_factory=list)
    interrupted: bool = False


def _rule_key(r: dict[str, str]) -> Any:
    try:
        return Rule.from_cbspider(r)
    except ValueError:
        return tuple(sorted(r.items()))


def intended_dicts(rules: tuple[Rule, ...]) -> list[dict[str, str]]:
    return [r.to_cbspider() for r in rules]


class Runner:
    def __init__(self, config: RunConfig, prober: Prober) -> None:
        self.cfg = config
        self.prober = prober
        self.spider = AsyncSpiderClient(config.server, config.username, config.password, timeout=600)
        self.bed = TestBed(self.spider, config.connection, Names(config.prefix), config.out, config.vm_timeout_s)
        self.outcome = RunOutcome(prober=prober.info.name)
        self.ctx = ClientContext("0.0.0.0")
        self.vm: VMTarget | None = None

    # ------------------------------------------------------------------ REST steps
    async def _do_step(self, sp: StepPlan) -> str | None:
        """One step over REST; the API's error text, or None on success."""
        c, sg = self.cfg.connection, self.bed.names.sg
        try:
            if sp.step.action == "add":
                await self.spider.add_rules(c, sg, list(sp.wire_rules))
            elif sp.step.action == "remove":
                await self.spider.remove_rules(c, sg, list(sp.wire_rules))
            elif sp.step.action == "get":
                for _ in range(sp.step.count):
                    await self.spider.get_securitygroup(c, sg)
            else:
                for _ in range(sp.step.count):
                    await self.spider.list_securitygroup(c)
        except SpiderAPIError as exc:
            return exc.message or f"HTTP {exc.status}"
        return None

    async def _run_steps(self, plan: CasePlan) -> tuple[list[str], list[tuple[StepPlan, str | None]]]:
        errors, outcomes = [], []
        for sp in plan.steps:
            got = await self._do_step(sp)
            outcomes.append((sp, got))
            if sp.step.action not in ("add", "remove"):
                if got:
                    errors.append(f"{sp.step.describe(self.ctx)}: {got}")
                continue
            if sp.error is None and got is not None:
                errors.append(f"{sp.step.describe(self.ctx)}: the rule model expects success, Spider answered: {got}")
            elif sp.error is not None and got is None:
                errors.append(f"{sp.step.describe(self.ctx)}: the rule model expects a rejection ({sp.error}), "
                              "Spider accepted it")
        return errors, outcomes

    async def _readback(self) -> tuple[list[dict[str, str]], list[Rule], list[str]]:
        sg = await self.spider.get_securitygroup(self.cfg.connection, self.bed.names.sg)
        return readback_rules(sg)

    def _api_diff(self, intended: tuple[Rule, ...], raw: list[dict[str, str]]) -> RuleDiff:
        return RuleDiff.between(intended_dicts(intended), raw, key=_rule_key)

    # ------------------------------------------------------------------ probing
    def _requests(self, columns: tuple[Column, ...], run: list[bool]) -> tuple[ProbeRequest, ...]:
        return tuple(ProbeRequest(f"c{i}", col.direction, col.proto, col.port, self.ctx.ip)
                     for i, (col, go) in enumerate(zip(columns, run)) if go)

    async def _probe(self, columns: tuple[Column, ...], run: list[bool], readback: list[Rule]) -> dict[int, Any]:
        assert self.vm is not None
        reqs = self._requests(columns, run)
        results = await self.prober.probe(ProbeBatch(self.vm, reqs, tuple(readback)))
        return {int(r.id[1:]): r for r in results}

    async def wait_ready(self, rules: tuple[Rule, ...]) -> None:
        """CB-Spider waits for ``nc -zv P_IP 22`` before its cases; here: until the inbound TCP/ICMP
        probes agree with the model (the data plane has the VM, ARP is warm), or the timeout."""
        deadline = time.monotonic() + self.cfg.ready_timeout_s
        want = [allows(rules, c.probe(self.ctx)) for c in READINESS]
        while True:
            got = await self._probe(READINESS, [True] * len(READINESS), list(rules))
            seen = [got[i].ok for i in range(len(READINESS))]
            if seen == want or time.monotonic() > deadline:
                if seen != want:
                    log.warning("probes still disagree with the model after %.0f s: %s vs %s",
                                self.cfg.ready_timeout_s, seen, want)
                return
            await asyncio.sleep(0.5)

    # ------------------------------------------------------------------ one case
    async def run_case(self, suite: Suite, plan: CasePlan, policy: SkipPolicy, csp: str) -> SgCase:
        started = time.perf_counter()
        errors, outcomes = await self._run_steps(plan)
        if plan.steps and self.cfg.settle_s:
            await asyncio.sleep(self.cfg.settle_s)
        case = plan.case
        probing = suite.kind == "traffic" and case.probe
        expected = list(case.cbspider_expected if case.cbspider_expected is not None else plan.expected)
        run = [e != "skip" or always_runs(col) for col, e in zip(case.columns, expected)]
        early: asyncio.Task | None = None
        if probing and self.prober.info.name != "model":  # probes need no read-back: overlap them
            early = asyncio.ensure_future(self._probe(case.columns, run, []))
        try:
            raw, parsed, unreadable = await self._readback()
        except BaseException:
            if early is not None:
                early.cancel()
            raise
        errors += [f"read-back rule the model cannot read: {u}" for u in unreadable]
        diff = self._api_diff(plan.rules_after, raw)
        errors += [f"documented expectation differs from the rule model at {c}" for c in plan.documented_conflicts]
        if case.cbspider_readback is not None:
            documented = {r.rule(self.ctx) for r in case.cbspider_readback}
            if documented != set(plan.rules_after) - {DEFAULT_EGRESS}:
                errors.append("documented read-back differs from the rule model: documented "
                              f"{sorted(r.text() for r in documented)}, model {[r.text() for r in plan.rules_after]}")
        stamp = datetime.now()
        cells: list[SgCell] = []
        if suite.kind == "readback":
            cells = self._readback_cells(plan, outcomes, diff.empty)
        elif probing:
            # a documented row (cbspider_expected) is the claim the row checks; the model must agree
            model_row = evaluate(parsed, case.columns, self.ctx, policy)
            results = await early if early is not None else await self._probe(case.columns, run, parsed)
            for i, col in enumerate(case.columns):
                r = results.get(i)
                observed = ("pass" if r.ok else "fail") if r is not None else "skip"
                cells.append(SgCell(col.name, expected[i], model_row[i], observed, ran=r is not None,
                                    latency_ms=r.latency_ms if r is not None else None,
                                    detail=r.detail if r is not None else ""))
        return SgCase(id=case.id, script=case.script, csp=csp, timestamp=stamp, cells=cells,
                      description=f"{case.title} — {plan.description(self.ctx)}" if case.title
                      else plan.description(self.ctx),
                      intended_rules=intended_dicts(plan.rules_after), readback_rules=raw,
                      api_match=diff.empty, api_diff=diff, errors=errors,
                      duration_s=time.perf_counter() - started)

    def _readback_cells(self, plan: CasePlan, outcomes: list[tuple[StepPlan, str | None]],
                        api_match: bool) -> list[SgCell]:
        """The create-add-list-get test has no traffic: one cell per API call (pass = accepted) and one
        for the read-back (pass = the API holds exactly the intended rules)."""
        cells = []
        for n, (sp, got) in enumerate(outcomes, start=1):
            want = "pass" if sp.error is None else "fail"
            seen = "pass" if got is None else "fail"
            cells.append(SgCell(f"#{n} {sp.step.describe(self.ctx)}", want, want, seen))
        match = "pass" if api_match else "fail"
        cells.append(SgCell("GET read-back", "pass", match, match))
        return cells

    # ------------------------------------------------------------------ suites
    async def _reset_group(self, target: tuple[Rule, ...]) -> list[str]:
        """Move the group to a suite's starting rules with one RemoveRules and one AddRules."""
        _, current, _ = await self._readback()
        extra = [r.to_cbspider() for r in current if r not in target]
        missing = [r.to_cbspider() for r in target if r not in current]
        c, sg = self.cfg.connection, self.bed.names.sg
        if extra:
            await self.spider.remove_rules(c, sg, extra)
        if missing:
            await self.spider.add_rules(c, sg, missing)
        _, now, _ = await self._readback()
        if not same_rules(now, target):
            return [f"could not reset the group to the suite's starting rules: read back "
                    f"{[r.text() for r in now]}, wanted {[r.text() for r in target]}"]
        return []

    async def run_suite(self, suite: Suite, csp: str, *, first_sg: bool) -> SgSuite:
        policy = policy_for(suite, self.prober.info.policy)
        result = SgSuite(name=suite.name, csp=csp, connection=self.cfg.connection, started_at=datetime.now(),
                         prober=self.prober.info.name if suite.kind == "traffic" else "api",
                         properties={"client_ip": self.ctx.ip, "source": suite.source,
                                     "provider": self.outcome.provider,
                                     "skip_rules": suite.skip_rules})
        self.outcome.suites.append(result)  # partial results survive an interruption
        t0 = time.perf_counter()
        rules = initial_rules(suite, self.ctx)
        if suite.kind == "traffic" and not first_sg:
            result.errors += await self._reset_group(rules)
            if self.vm is not None:
                await self.wait_ready(rules)
        self.cfg.progress(f"suite {suite.name}: {len(suite.cases)} cases")
        try:
            for case in suite.cases:
                plan = plan_case(case, rules, self.ctx, policy)
                sg_case = await self.run_case(suite, plan, policy, csp)
                result.cases.append(sg_case)
                rules = plan.rules_after
                bad = len(sg_case.mismatched_cells()) + (0 if sg_case.api_match else 1) + len(sg_case.errors)
                self.cfg.progress(f"  {case.id:>6} {'ok ' if not bad else 'X  '} {sg_case.description}")
        finally:
            result.duration_s = time.perf_counter() - t0
        return result

    def _follow_client(self, first: Any) -> None:
        """A twin prober learns the VM's cloud only once the VM exists; when its client (CLIENT1_IP)
        differs from the one guessed at the start, later rules use the new one. Rules already made with
        the old address cannot be followed: that run needs ``--twin-cloud``."""
        ip = self.prober.info.client_ip
        if not ip or ip == self.ctx.ip:
            return
        new = ClientContext(ip)
        if [r.wire(self.ctx) for r in first.initial_rules] != [r.wire(new) for r in first.initial_rules]:
            raise RunRefused(f"the VM's client is {ip}, not {self.ctx.ip}, and the initial rules name the "
                             "client: run with --twin-cloud")
        self.ctx = new
        self.outcome.client_ip = ip
        self.cfg.progress(f"client {ip} (the VM's cloud)")

    async def run(self) -> RunOutcome:
        cfg = self.cfg
        out = self.outcome
        traffic = [s for s in cfg.suites if s.kind == "traffic"]
        readback = [s for s in cfg.suites if s.kind == "readback"]
        try:
            out.provider = await self.bed.preflight()
            csp = cfg.csp or out.provider.lower() or "spider"
            await self.prober.prepare()
            self.ctx = ClientContext(self.prober.info.client_ip)
            out.client_ip = self.ctx.ip
            cfg.progress(f"connection {cfg.connection} ({out.provider}), prober {self.prober.info.name}, "
                         f"client {self.ctx.ip}")
            await self.bed.create_vpc()
            for suite in readback:  # CB-Spider's 3.create-add-list-get: its own group, no VM
                await self.bed.create_sg([r.wire(self.ctx) for r in suite.initial_rules])
                await self.run_suite(suite, csp, first_sg=True)
                await self.bed.cleanup_last("securitygroup")
            if traffic:
                first = traffic[0]
                await self.bed.create_sg([r.wire(self.ctx) for r in first.initial_rules])
                key = await self.bed.create_keypair()
                cfg.progress(f"starting VM {self.bed.names.vm} ...")
                self.vm = await self.bed.start_vm(cfg.image, cfg.spec, key)
                cfg.progress(f"VM running, PublicIP {self.vm.public_ip}")
                await self.prober.start(self.vm)
                self._follow_client(first)
                await self.wait_ready(initial_rules(first, self.ctx))
                for n, suite in enumerate(traffic):
                    await self.run_suite(suite, csp, first_sg=n == 0)
        except asyncio.CancelledError:
            out.interrupted = True
            raise
        finally:
            cfg.progress("cleaning up ...")
            out.cleanup_errors = await self.bed.cleanup()
            await self.prober.close()
            await self.spider.close()
        return out


__all__ = ["RunConfig", "RunOutcome", "Runner", "RunRefused", "Probe"]
