"""Text renderers: every output format is a jinja2 template in `reports/templates/`.

The templates do the layout; the filters here hold the small decisions (how a column label looks in
CB-Spider's header, what a 4-way cell reads, where the inbound/outbound splitter goes) so each is
made once. XML and SVG templates are autoescaped; markdown goes through the `md` filter instead,
which escapes the one character that breaks a table cell (`|`) and folds newlines.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from itertools import groupby
from typing import TYPE_CHECKING, Any, Iterable, Sequence

import jinja2

from reports.model import CaseResult, LatencyChart, MetricsTable, RuleDict, SgCase, SgCell, SgSuite, SuiteResult, rule_text

if TYPE_CHECKING:
    from reports.baseline import BaselineComparison, TimingChange

DEFAULT_TITLE = "spidertwin test report"
STATUS_ICONS = {"pass": "✅", "fail": "❌", "error": "⚠️", "skip": "⏭️"}
# Characters XML 1.0 forbids even escaped; probe output and error texts can carry them.
_XML_ILLEGAL = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


# ---------------------------------------------------------------- CB-Spider result file

def cbspider_label(column: str) -> str:
    """`I:TCP-01 (22)` -> `I:TCP-01 <br> (22)`, CB-Spider's two-line header cell; other labels as given."""
    head, sep, tail = column.partition(" (")
    return f"{head} <br> ({tail}" if sep else column


def cbspider_split(columns: Sequence[str]) -> int | None:
    """Index of the first outbound column when inbound columns precede it: where the empty
    5th cell goes. None when a case probes one direction only (no splitter then)."""
    for index, column in enumerate(columns):
        if column.startswith("O:"):
            return index if index > 0 else None
    return None


def cbspider_header(columns: Sequence[str]) -> str:
    split = cbspider_split(columns)
    parts = []
    for index, column in enumerate(columns):
        if index == 0:
            parts.append(cbspider_label(column))
        elif index == split:
            parts.append(" |  |" + cbspider_label(column))  # two spaces in the empty cell, none after
        else:
            parts.append(" | " + cbspider_label(column))
    return "".join(parts)


def cbspider_separator(columns: Sequence[str]) -> str:
    count = len(columns) + (1 if cbspider_split(columns) is not None else 0)
    return " | ".join(["--"] * count)


def cbspider_filename(csp: str, moment: datetime) -> str:
    return f"{csp}-result-{moment:%m.%d}.out"


def render_cbspider(cases: Iterable[SgCase]) -> str:
    return _env().get_template("cbspider.out.j2").render(cases=list(cases))


# ---------------------------------------------------------------- markdown helpers

def md(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\r\n", "\n").replace("\n", "<br>")


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "–"
    return f"{seconds:.1f} s" if seconds >= 1 else f"{seconds * 1000:.0f} ms"


def millis(value: float | None) -> str:
    return "–" if value is None else f"{value:.2f} ms"


def figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "" if value is None else str(value)


def plural(count: int, word: str, plural_form: str | None = None) -> str:
    return f"{count} {word if count == 1 else plural_form or word + 's'}"


def headline(suite: SuiteResult) -> str:
    """`cbspider-inbound on cloudtwin-cloud-1-config: 10 cases, 80 cells, 0 mismatches, 2.1 s`."""
    where = f"{suite.name} on {suite.target}" if suite.target else suite.name
    if suite.sg is not None:
        sg = suite.sg
        parts = [plural(len(sg.cases), "case"), plural(sg.cell_count(), "cell"),
                 plural(sg.mismatch_count(), "mismatch", "mismatches")]
        diffs = sum(1 for c in sg.cases if not c.api_match)
        errors = len(sg.errors) + sum(len(c.errors) for c in sg.cases)
        if diffs:
            parts.append(plural(diffs, "read-back diff"))
        if errors:
            parts.append(plural(errors, "error"))
    else:
        counts = suite.counts()
        parts = [plural(len(suite.cases), "case")]
        parts += [f"{counts[s]} {word}" for s, word in
                  (("pass", "passed"), ("fail", "failed"), ("error", "errors"), ("skip", "skipped"))
                  if counts[s]]
    return f"{where}: {', '.join(parts)}, {duration(suite.duration_s)}"


def failed_checks_text(case: CaseResult) -> str:
    return "; ".join(case.problems()) or case.skip_reason


def fourway(cell: SgCell) -> str:
    text = f"{cell.expected} / {cell.model} / {cell.actual}"
    return text if cell.ok else f"**{text}** ✗"


def disagreement(cell: SgCell) -> str:
    return ", ".join(w for w, bad in (("model", cell.model_mismatch), ("observed", cell.mismatch)) if bad)


@dataclass
class ColumnGroup:
    columns: list[str]
    cases: list[SgCase]


def column_groups(cases: Iterable[SgCase]) -> list[ColumnGroup]:
    """Consecutive cases probing the same columns share one matrix (generated suites vary them)."""
    return [ColumnGroup(list(cols), list(group))
            for cols, group in groupby(cases, key=lambda c: tuple(c.columns))]


def mismatch_rows(sg: SgSuite) -> list[tuple[SgCase, SgCell]]:
    return [(case, cell) for case in sg.cases for cell in case.mismatched_cells()]


def rules_md(rules: Iterable[RuleDict]) -> str:
    return "<br>".join(md(rule_text(r)) for r in rules) or "–"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "item"


def chart_stem(chart: LatencyChart) -> str:
    return chart.slug or slug(chart.title)


def chart_file(chart: LatencyChart) -> str:
    """The image the markdown shows (the SVG; a PNG of the same name lies beside it)."""
    return f"{chart_stem(chart)}.svg"


def table_file(table: MetricsTable) -> str:
    return f"{table.slug or slug(table.title)}.csv"


def baseline_headline(cmp: "BaselineComparison") -> str:
    source = f" `{cmp.source}`" if cmp.source else ""
    if not cmp.available:
        return f"Baseline{source}: not found, nothing compared."
    return (f"Baseline{source}: {plural(len(cmp.new_failures), 'new failure')}, "
            f"{len(cmp.fixed)} fixed, {cmp.still_failing} still failing, "
            f"{plural(len(cmp.timing_changes), 'timing change')}.")


def timing_delta(change: "TimingChange") -> str:
    delta = change.after_s - change.before_s
    rel = f"{delta / change.before_s * 100:+.0f} % " if change.before_s > 0 else ""
    return f"{rel}({'+' if delta >= 0 else '-'}{duration(abs(delta))})"


# ---------------------------------------------------------------- XML helpers

def xml_safe(value: Any) -> str:
    if value is None:
        text = ""
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (dict, list, tuple)):
        text = json.dumps(value, sort_keys=True, default=str)
    else:
        text = str(value)
    return _XML_ILLEGAL.sub("\ufffd", text)


def seconds3(value: float | None) -> str:
    return f"{value or 0.0:.3f}"


# ---------------------------------------------------------------- environment

@lru_cache(maxsize=1)
def _env() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("reports", "templates"),
        autoescape=lambda name: bool(name) and name.endswith(".xml.j2"),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined)
    env.filters.update(
        cbspider_time=lambda moment: moment.strftime("%Y.%m.%d-%H:%M:%S"),
        cbspider_header=cbspider_header, cbspider_separator=cbspider_separator,
        cbspider_split=cbspider_split, md=md, md_label=lambda c: md(cbspider_label(c)),
        duration=duration, millis=millis, figure=figure, headline=headline,
        failed_checks_text=failed_checks_text, fourway=fourway, disagreement=disagreement,
        column_groups=column_groups, mismatch_rows=mismatch_rows, rules_md=rules_md,
        chart_file=chart_file, baseline_headline=baseline_headline, timing_delta=timing_delta,
        status_icon=lambda status: STATUS_ICONS.get(status, ""), xml_safe=xml_safe,
        seconds3=seconds3, clock=lambda moment: moment.strftime("%Y-%m-%d %H:%M:%S"))
    return env


def render_template(template: str, **context: Any) -> str:
    return _env().get_template(template).render(**context)


# ---------------------------------------------------------------- documents

def tidy_markdown(text: str) -> str:
    """Templates leave generous blank lines between blocks; GitHub needs one, so keep one."""
    return re.sub(r"\n{3,}", "\n\n", text).strip("\n") + "\n"


def render_report_md(suites: Sequence[SuiteResult], *, title: str = DEFAULT_TITLE) -> str:
    return tidy_markdown(render_template("report.md.j2", suites=list(suites), title=title))


def overall_status(suites: Sequence[SuiteResult]) -> str:
    statuses = {s.status for s in suites}
    return next((s for s in ("error", "fail") if s in statuses), "pass")


def render_summary_md(suites: Sequence[SuiteResult], *, title: str = DEFAULT_TITLE,
                      baseline: "BaselineComparison | None" = None, limit: int = 50) -> str:
    problems = [(suite, case) for suite in suites for case in suite.reported_cases()
                if case.status in ("fail", "error")]
    return tidy_markdown(render_template(
        "summary.md.j2", suites=list(suites), title=title, problems=problems, limit=limit,
        baseline=baseline, status_icon=STATUS_ICONS[overall_status(suites)]))


def render_baseline_md(cmp: "BaselineComparison") -> str:
    return tidy_markdown(render_template("baseline.md.j2", cmp=cmp))


@dataclass
class _JUnitOutcome:
    message: str
    text: str


@dataclass
class _JUnitCase:
    name: str
    time: float
    properties: list[tuple[str, Any]]
    error: _JUnitOutcome | None = None
    failure: _JUnitOutcome | None = None
    skipped: str | None = None


@dataclass
class _JUnitSuite:
    name: str
    time: float
    timestamp: str
    properties: list[tuple[str, Any]]
    cases: list[_JUnitCase] = field(default_factory=list)

    def _count(self, attr: str) -> int:
        return sum(1 for c in self.cases if getattr(c, attr) is not None)

    tests = property(lambda self: len(self.cases))
    failures = property(lambda self: self._count("failure"))
    errors = property(lambda self: self._count("error"))
    skipped = property(lambda self: self._count("skipped"))


def _junit_case(case: CaseResult) -> _JUnitCase:
    props = sorted(case.properties.items())
    if case.started_at is not None:
        props.append(("started_at", case.started_at.isoformat()))
    out = _JUnitCase(case.name, case.duration_s, props)
    status, problems = case.status, case.problems()
    failed = case.failed_checks()
    if status == "error":
        out.error = _JUnitOutcome("; ".join(case.errors) or f"{plural(len(failed), 'check')} errored",
                                  "\n".join(problems))
    elif status == "fail":
        names = ", ".join(c.name for c in failed)
        out.failure = _JUnitOutcome(f"{len(failed)} of {len(case.checks)} checks failed: {names}",
                                    "\n".join(problems))
    elif status == "skip":
        out.skipped = case.skip_reason or "all checks skipped"
    return out


def render_junit(suites: Sequence[SuiteResult], *, name: str = "spidertwin") -> str:
    """One <testsuite> per suite, one <testcase> per case; a suite-level error becomes a
    `(suite setup)` case with <error>, so CI counts it."""
    views = []
    for suite in suites:
        props = sorted((k, v) for k, v in suite.properties.items())
        if suite.target:
            props.insert(0, ("target", suite.target))
        stamp = suite.started_at.strftime("%Y-%m-%dT%H:%M:%S") if suite.started_at else ""
        views.append(_JUnitSuite(suite.name, suite.duration_s, stamp, props,
                                 [_junit_case(c) for c in suite.reported_cases()]))
    totals = {"tests": sum(v.tests for v in views), "failures": sum(v.failures for v in views),
              "errors": sum(v.errors for v in views), "skipped": sum(v.skipped for v in views),
              "time": sum(s.duration_s for s in suites)}
    return render_template("junit.xml.j2", name=name, suites=views, totals=totals)
