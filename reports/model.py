"""Result dataclasses every suite fills and every report renders.

Two layers, so the renderers stay generic while the SG suite keeps its own vocabulary:

* the generic core — `SuiteResult` of `CaseResult`s, each with named `Check`s (expected vs actual,
  a status, a message, a duration, free-form properties). JUnit XML, the JSON document, the baseline
  diff and the exit code work on this layer only, so the Locust harness reuses them unchanged
  (it adds `MetricsTable`s and `LatencyChart`s for its load figures);
* the SG layer — `SgSuite` of `SgCase`s with `SgCell`s (expected / model / observed per probe
  column) and the CB-Spider rule dicts sent and read back. `SgSuite.to_suite_result()` maps it onto
  the core; the CB-Spider `.out` file and the 4-way matrix are rendered from the SG layer itself.

Everything round-trips through plain dicts (`to_dict` / `from_dict`) for `result.json`.
"""
from __future__ import annotations

import re

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Callable, Iterable, Literal, Mapping

# A check or case outcome. "skip" is "not evaluated", "error" is "could not be evaluated".
Status = Literal["pass", "fail", "skip", "error"]
# One SG probe cell value, as CB-Spider writes it.
CellValue = Literal["pass", "fail", "skip"]
# A CB-Spider rule as sent to / read back from the REST API:
# {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "0.0.0.0/0"}.
RuleDict = dict[str, str]

STATUSES: tuple[str, ...] = ("pass", "fail", "skip", "error")
CELL_VALUES: tuple[str, ...] = ("pass", "fail", "skip")

# CB-Spider's eight probe columns, in file order (inbound four, then outbound four).
CBSPIDER_COLUMNS: tuple[str, ...] = (
    "I:TCP-01 (22)", "I:TCP-02 (1000)", "I:UDP-01 (2000)", "I:ICMP-01 (ping)",
    "O:TCP-01 (22)", "O:TCP-02 (1000)", "O:UDP-01 (2000)", "O:ICMP-01 (ping)",
)
# The id of the pseudo-case that carries suite-level errors (SuiteResult.reported_cases).
SUITE_CASE_ID = "(suite)"
RULE_FIELDS: tuple[str, ...] = ("Direction", "IPProtocol", "FromPort", "ToPort", "CIDR")


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def _from_iso(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None


# ---------------------------------------------------------------- generic core

@dataclass
class Check:
    """One named comparison inside a case: what was expected, what was seen, and the verdict."""

    name: str
    status: Status
    expected: Any = None
    actual: Any = None
    message: str = ""
    duration_s: float | None = None
    properties: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "expected": self.expected,
                "actual": self.actual, "message": self.message, "duration_s": self.duration_s,
                "properties": dict(self.properties)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "Check":
        return cls(name=data["name"], status=data["status"], expected=data.get("expected"),
                   actual=data.get("actual"), message=data.get("message", ""),
                   duration_s=data.get("duration_s"), properties=dict(data.get("properties") or {}))


def compare(name: str, expected: Any, actual: Any, *, message: str = "",
            duration_s: float | None = None, **properties: Any) -> Check:
    """A check that passes when actual == expected; the failure message says both values."""
    ok = expected == actual
    text = message or ("" if ok else f"expected {expected!r}, got {actual!r}")
    return Check(name, "pass" if ok else "fail", expected, actual, text, duration_s, properties)


def threshold_check(name: str, actual: float, limit: float, *, unit: str = "",
                    higher_is_better: bool = False) -> Check:
    """A gate like k6's thresholds: `p95 <= 50 ms`, `ops/s >= 200`. Used by load-test suites."""
    ok = actual >= limit if higher_is_better else actual <= limit
    op = ">=" if higher_is_better else "<="
    suffix = f" {unit}" if unit else ""
    expected = f"{op} {limit:g}{suffix}"
    message = "" if ok else f"{name} = {actual:g}{suffix}, limit {expected}"
    return Check(name, "pass" if ok else "fail", expected, f"{actual:g}{suffix}", message,
                 properties={"limit": limit, "value": actual, "unit": unit})


@dataclass
class CaseResult:
    """One test case: its checks plus errors that stopped it from being judged."""

    id: str
    name: str
    checks: list[Check] = field(default_factory=list)
    duration_s: float = 0.0
    started_at: datetime | None = None
    errors: list[str] = field(default_factory=list)
    skip_reason: str = ""
    properties: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        """error > fail > skip-all > pass, so one broken check is never hidden by the others."""
        if self.errors or any(c.status == "error" for c in self.checks):
            return "error"
        if any(c.status == "fail" for c in self.checks):
            return "fail"
        if self.skip_reason or (self.checks and all(c.status == "skip" for c in self.checks)):
            return "skip"
        return "pass"

    def failed_checks(self) -> list[Check]:
        return [c for c in self.checks if c.status in ("fail", "error")]

    def problems(self) -> list[str]:
        """One line per error and failed check: the text of a JUnit failure and a baseline entry."""
        lines = [f"error: {e}" for e in self.errors]
        for check in self.failed_checks():
            detail = check.message or f"expected {check.expected!r}, got {check.actual!r}"
            lines.append(f"{check.name}: {detail}")
        return lines

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "status": self.status,
                "duration_s": self.duration_s, "started_at": _iso(self.started_at),
                "errors": list(self.errors), "skip_reason": self.skip_reason,
                "properties": dict(self.properties), "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CaseResult":
        return cls(id=data["id"], name=data["name"],
                   checks=[Check.from_dict(c) for c in data.get("checks", [])],
                   duration_s=data.get("duration_s", 0.0), started_at=_from_iso(data.get("started_at")),
                   errors=list(data.get("errors", [])), skip_reason=data.get("skip_reason", ""),
                   properties=dict(data.get("properties") or {}))


@dataclass
class MetricsTable:
    """A titled table of figures (e.g. Locust's per-request stats) for markdown and CSV."""

    title: str
    columns: list[str]
    rows: list[list[Any]]
    slug: str = ""  # file stem for the CSV; derived from the title when empty

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "columns": list(self.columns),
                "rows": [list(r) for r in self.rows], "slug": self.slug}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "MetricsTable":
        return cls(data["title"], list(data["columns"]), [list(r) for r in data["rows"]],
                   data.get("slug", ""))


_AXIS_HINT = re.compile(r"\s*\((x:[^)]*)\)\s*$")


@dataclass
class LatencyChart:
    """Series of (x, y) points drawn as one line chart (``reports.charts``, PNG and SVG).

    `series` maps a label (e.g. "p95") to points; by default x is seconds since the start and y is
    milliseconds. ``y_label`` is the y unit ("ms", "count") and ``x_label`` the x axis text. A title
    may end with an axis hint, ``"(x: percentile, y: ms)"``: it sets both and leaves the title."""

    title: str
    series: dict[str, list[tuple[float, float]]]
    slug: str = ""
    y_label: str = "ms"
    x_label: str = "time since start (s)"

    def __post_init__(self) -> None:
        hint = _AXIS_HINT.search(self.title)
        if hint is None:
            return
        self.title = self.title[:hint.start()]
        for part in hint.group(1).split(","):
            axis, _, text = part.partition(":")
            if axis.strip() == "x" and text.strip():
                self.x_label = {"s": "time since start (s)"}.get(text.strip(), text.strip())
            elif axis.strip() == "y" and text.strip():
                self.y_label = text.strip()

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "slug": self.slug, "y_label": self.y_label, "x_label": self.x_label,
                "series": {k: [list(p) for p in v] for k, v in self.series.items()}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "LatencyChart":
        return cls(data["title"], {k: [(float(x), float(y)) for x, y in v]
                                   for k, v in data["series"].items()},
                   data.get("slug", ""), data.get("y_label", "ms"), data.get("x_label", "time since start (s)"))


@dataclass
class SuiteResult:
    """One suite run against one target: the unit of a JUnit <testsuite> and a baseline diff."""

    name: str
    target: str = ""
    cases: list[CaseResult] = field(default_factory=list)
    started_at: datetime | None = None
    duration_s: float = 0.0
    errors: list[str] = field(default_factory=list)  # suite-level (e.g. prepare failed)
    properties: dict[str, Any] = field(default_factory=dict)
    tables: list[MetricsTable] = field(default_factory=list)
    charts: list[LatencyChart] = field(default_factory=list)
    sg: "SgSuite | None" = None  # the SG detail this suite was derived from, for the SG renderers
    links: dict[str, str] = field(default_factory=dict)  # title -> a file next to the report (relative)

    def reported_cases(self) -> list[CaseResult]:
        """The cases plus, when the suite itself broke (e.g. prepare failed), a `(suite)` case
        carrying those errors, so JUnit, summaries, baselines and exit codes all count them."""
        if not self.errors:
            return list(self.cases)
        return [*self.cases, CaseResult(id=SUITE_CASE_ID, name="(suite setup)", errors=list(self.errors))]

    def counts(self) -> dict[str, int]:
        tally = {s: 0 for s in STATUSES}
        for case in self.reported_cases():
            tally[case.status] += 1
        tally["tests"] = sum(tally.values())
        return tally

    @property
    def status(self) -> Status:
        counts = self.counts()
        if counts["error"]:
            return "error"
        return "fail" if counts["fail"] else "pass"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "target": self.target, "status": self.status,
                "started_at": _iso(self.started_at), "duration_s": self.duration_s,
                "counts": self.counts(), "errors": list(self.errors),
                "properties": dict(self.properties),
                "tables": [t.to_dict() for t in self.tables],
                "charts": [c.to_dict() for c in self.charts],
                "cases": [c.to_dict() for c in self.cases],
                "links": dict(self.links),
                "sg": self.sg.to_dict() if self.sg is not None else None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SuiteResult":
        return cls(name=data["name"], target=data.get("target", ""),
                   cases=[CaseResult.from_dict(c) for c in data.get("cases", [])],
                   started_at=_from_iso(data.get("started_at")), duration_s=data.get("duration_s", 0.0),
                   errors=list(data.get("errors", [])), properties=dict(data.get("properties") or {}),
                   tables=[MetricsTable.from_dict(t) for t in data.get("tables", [])],
                   charts=[LatencyChart.from_dict(c) for c in data.get("charts", [])],
                   links=dict(data.get("links") or {}),
                   sg=SgSuite.from_dict(data["sg"]) if data.get("sg") else None)


# ---------------------------------------------------------------- SG suite layer

def rule_text(rule: Mapping[str, str]) -> str:
    """`inbound TCP 22-22 0.0.0.0/0`: one rule on one line for tables and messages."""
    ports = f"{rule.get('FromPort', '')}-{rule.get('ToPort', '')}"
    return " ".join(filter(None, (rule.get("Direction", ""), rule.get("IPProtocol", ""), ports,
                                  rule.get("CIDR") or "0.0.0.0/0")))


@dataclass
class RuleDiff:
    """Intended rules missing from the read-back, and read-back rules nobody asked for.

    The suite decides what "same rule" means (its rule model normalises case, ports, CIDRs);
    `between` takes that as a key function so normalisation stays in one place."""

    missing: list[RuleDict] = field(default_factory=list)
    unexpected: list[RuleDict] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.missing and not self.unexpected

    @classmethod
    def between(cls, intended: Iterable[RuleDict], readback: Iterable[RuleDict],
                key: Callable[[RuleDict], Any] | None = None) -> "RuleDiff":
        keyf = key or (lambda r: tuple(str(r.get(f, "")) for f in RULE_FIELDS))
        intended, readback = list(intended), list(readback)
        have = {keyf(r) for r in readback}
        want = {keyf(r) for r in intended}
        return cls([r for r in intended if keyf(r) not in have],
                   [r for r in readback if keyf(r) not in want])

    def lines(self) -> list[str]:
        return ([f"missing: {rule_text(r)}" for r in self.missing]
                + [f"unexpected: {rule_text(r)}" for r in self.unexpected])

    def to_dict(self) -> dict[str, Any]:
        return {"missing": [dict(r) for r in self.missing],
                "unexpected": [dict(r) for r in self.unexpected]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None) -> "RuleDiff":
        data = data or {}
        return cls([dict(r) for r in data.get("missing", [])],
                   [dict(r) for r in data.get("unexpected", [])])


@dataclass
class SgCell:
    """One probe column of one case.

    expected: from the rule model on the case's intended rules (with CB-Spider's skip rules);
    model:    the rule model on the rules read back from the API;
    observed: what the prober saw (meaningful only when `ran`; a probe not run reads "skip").
    """

    column: str
    expected: CellValue
    model: CellValue
    observed: CellValue
    ran: bool = True
    latency_ms: float | None = None
    detail: str = ""             # the prober's evidence, e.g. "SSH-2.0 banner", "timeout 100 ms"

    @property
    def actual(self) -> CellValue:
        """The value CB-Spider writes after the slash: the probe result, or skip when not run."""
        return self.observed if self.ran else "skip"

    @property
    def mismatch(self) -> bool:
        """CB-Spider's (X): the written actual differs from the expectation, literally."""
        return self.actual != self.expected

    @property
    def model_mismatch(self) -> bool:
        """The model on the read-back disagrees with the expectation (skip = not compared,
        since the model always answers pass/fail while expectations skip unprovable UDP)."""
        return self.expected != "skip" and self.model != self.expected

    @property
    def ok(self) -> bool:
        return not self.mismatch and not self.model_mismatch

    def to_dict(self) -> dict[str, Any]:
        return {"column": self.column, "expected": self.expected, "model": self.model,
                "observed": self.observed, "ran": self.ran, "latency_ms": self.latency_ms,
                "detail": self.detail}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SgCell":
        return cls(data["column"], data["expected"], data["model"], data["observed"],
                   bool(data.get("ran", True)), data.get("latency_ms"), data.get("detail", ""))


@dataclass
class SgCase:
    """One SG case: the REST change, its read-back and the probe cells, in column order."""

    id: str                      # "03"
    script: str                  # "03.inbound-case-03.sh" (the CB-Spider header names it)
    csp: str                     # CSP word as CB-Spider takes it, lowercase: "cloudtwin", "aws"
    timestamp: datetime          # when the probes ran (the header's YYYY.MM.DD-HH:MM:SS)
    cells: list[SgCell] = field(default_factory=list)
    description: str = ""        # e.g. "AddRules inbound TCP 22/22"
    intended_rules: list[RuleDict] = field(default_factory=list)
    readback_rules: list[RuleDict] = field(default_factory=list)
    api_match: bool = True
    api_diff: RuleDiff = field(default_factory=RuleDiff)
    errors: list[str] = field(default_factory=list)
    duration_s: float = 0.0
    properties: dict[str, Any] = field(default_factory=dict)  # free-form, e.g. documented conflicts

    @property
    def columns(self) -> list[str]:
        return [c.column for c in self.cells]

    def mismatched_cells(self) -> list[SgCell]:
        return [c for c in self.cells if not c.ok]

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "script": self.script, "csp": self.csp,
                "timestamp": self.timestamp.isoformat(), "description": self.description,
                "cells": [c.to_dict() for c in self.cells],
                "intended_rules": [dict(r) for r in self.intended_rules],
                "readback_rules": [dict(r) for r in self.readback_rules],
                "api_match": self.api_match, "api_diff": self.api_diff.to_dict(),
                "errors": list(self.errors), "duration_s": self.duration_s,
                "properties": dict(self.properties)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SgCase":
        return cls(id=data["id"], script=data["script"], csp=data["csp"],
                   timestamp=datetime.fromisoformat(data["timestamp"]),
                   cells=[SgCell.from_dict(c) for c in data.get("cells", [])],
                   description=data.get("description", ""),
                   intended_rules=[dict(r) for r in data.get("intended_rules", [])],
                   readback_rules=[dict(r) for r in data.get("readback_rules", [])],
                   api_match=bool(data.get("api_match", True)),
                   api_diff=RuleDiff.from_dict(data.get("api_diff")),
                   errors=list(data.get("errors", [])), duration_s=data.get("duration_s", 0.0),
                   properties=dict(data.get("properties") or {}))

    def to_case_result(self) -> CaseResult:
        """Generic view: per column an observed and a model check, plus one API read-back check."""
        checks: list[Check] = []
        for cell in self.cells:
            props = {"ran": cell.ran, "latency_ms": cell.latency_ms, "detail": cell.detail}
            checks.append(Check(f"observed {cell.column}",
                                "fail" if cell.mismatch else "skip" if cell.actual == "skip" else "pass",
                                cell.expected, cell.actual,
                                f"expected {cell.expected}, observed {cell.actual}"
                                + (f" ({cell.detail})" if cell.detail else "") if cell.mismatch else "",
                                properties=props))
            checks.append(Check(f"model {cell.column}",
                                "fail" if cell.model_mismatch else "skip" if cell.expected == "skip" else "pass",
                                cell.expected, cell.model,
                                f"expected {cell.expected}, model on read-back says {cell.model}"
                                if cell.model_mismatch else ""))
        checks.append(Check("api read-back", "pass" if self.api_match else "fail",
                            [rule_text(r) for r in self.intended_rules],
                            [rule_text(r) for r in self.readback_rules],
                            "" if self.api_match else "; ".join(self.api_diff.lines()) or "read-back differs"))
        return CaseResult(id=self.id, name=self.script, checks=checks, duration_s=self.duration_s,
                          started_at=self.timestamp, errors=list(self.errors),
                          properties={"csp": self.csp, "description": self.description, **self.properties})


@dataclass
class SgSuite:
    """One SG suite run (e.g. `cbspider-inbound`) against one connection."""

    name: str                    # "cbspider-inbound", "generated-tcp-ranges"
    csp: str                     # "cloudtwin"
    connection: str              # "cloudtwin-cloud-1-config"
    started_at: datetime
    cases: list[SgCase] = field(default_factory=list)
    duration_s: float = 0.0
    prober: str = ""             # "netns", "model", "ssh"
    errors: list[str] = field(default_factory=list)
    properties: dict[str, Any] = field(default_factory=dict)

    def cell_count(self) -> int:
        return sum(len(c.cells) for c in self.cases)

    def mismatch_count(self) -> int:
        return sum(len(c.mismatched_cells()) for c in self.cases)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "csp": self.csp, "connection": self.connection,
                "started_at": self.started_at.isoformat(), "duration_s": self.duration_s,
                "prober": self.prober, "errors": list(self.errors),
                "properties": dict(self.properties), "cases": [c.to_dict() for c in self.cases]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "SgSuite":
        return cls(name=data["name"], csp=data["csp"], connection=data.get("connection", ""),
                   started_at=datetime.fromisoformat(data["started_at"]),
                   cases=[SgCase.from_dict(c) for c in data.get("cases", [])],
                   duration_s=data.get("duration_s", 0.0), prober=data.get("prober", ""),
                   errors=list(data.get("errors", [])), properties=dict(data.get("properties") or {}))

    def to_suite_result(self) -> SuiteResult:
        props = {"csp": self.csp, "connection": self.connection, "prober": self.prober,
                 "cells": self.cell_count(), "mismatches": self.mismatch_count(), **self.properties}
        return SuiteResult(name=self.name, target=self.connection,
                           cases=[c.to_case_result() for c in self.cases], started_at=self.started_at,
                           duration_s=self.duration_s, errors=list(self.errors), properties=props,
                           sg=self)
