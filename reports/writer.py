"""`write_reports`: one call at the end of a run writes every artefact and returns the exit code.

Files in `out_dir` (overwritten, so one call per run — pass all suites of the run together):
    <csp>-result-MM.DD.out   CB-Spider's result file, per CSP word and case date (SG suites only)
    report.md                headlines, the 4-way SG matrix / case tables, metrics tables, charts
    summary.md               the short form, also appended to $GITHUB_STEP_SUMMARY when set
    junit.xml                one <testsuite> per suite
    result.json              the stable JSON document (reports.document)
    baseline.md              with `baseline=`: new failures, fixed cases, timing changes
    <slug>.csv, <slug>.png/.svg  metrics tables and charts of load-test suites
"""
from __future__ import annotations

import os
from datetime import datetime
from itertools import groupby
from pathlib import Path
from typing import Iterable, Mapping, Sequence, Union

from reports.baseline import (DEFAULT_ABS_THRESHOLD_S, DEFAULT_REL_THRESHOLD, BaselineComparison,
                              compare_suites, compare_with_file)
from reports.charts import write_chart, write_csv
from reports.document import build_document, dumps_document
from reports.model import SgCase, SgSuite, SuiteResult
from reports.render import (DEFAULT_TITLE, cbspider_filename, chart_stem, overall_status, render_baseline_md,
                            render_cbspider, render_junit, render_report_md, render_summary_md, table_file)

EXIT_OK = 0
EXIT_FAILURES = 1   # a mismatch / failed check, nothing broken
EXIT_ERRORS = 2     # something could not be run or judged (errors win over failures)

Reportable = Union[SuiteResult, SgSuite]
Baseline = Union[str, Path, Sequence[SuiteResult], None]


def as_suites(results: Reportable | Iterable[Reportable]) -> list[SuiteResult]:
    items = [results] if isinstance(results, (SuiteResult, SgSuite)) else list(results)
    return [r.to_suite_result() if isinstance(r, SgSuite) else r for r in items]


def exit_code(suites: Sequence[SuiteResult]) -> int:
    return {"error": EXIT_ERRORS, "fail": EXIT_FAILURES}.get(overall_status(suites), EXIT_OK)


def cbspider_files(suites: Sequence[SuiteResult]) -> dict[str, str]:
    """CB-Spider names its file after the CSP word and the date each case script ran, and appends
    every case in run order; the same grouping here, over all SG suites of the run."""
    cases: list[SgCase] = [c for s in suites if s.sg is not None for c in s.sg.cases]
    files: dict[str, list[SgCase]] = {}
    for name, group in groupby(cases, key=lambda c: cbspider_filename(c.csp, c.timestamp)):
        files.setdefault(name, []).extend(group)
    return {name: render_cbspider(group) for name, group in files.items()}


def append_step_summary(markdown: str, env: Mapping[str, str] | None = None) -> Path | None:
    """GitHub Actions shows what is appended to $GITHUB_STEP_SUMMARY on the run page."""
    target = (os.environ if env is None else env).get("GITHUB_STEP_SUMMARY")
    if not target:
        return None
    with open(target, "a", encoding="utf-8") as handle:
        handle.write(markdown if markdown.endswith("\n") else markdown + "\n")
    return Path(target)


def write_reports(results: Reportable | Iterable[Reportable], out_dir: str | Path, *,
                  baseline: Baseline = None, title: str = DEFAULT_TITLE,
                  rel_threshold: float = DEFAULT_REL_THRESHOLD,
                  abs_threshold_s: float = DEFAULT_ABS_THRESHOLD_S,
                  env: Mapping[str, str] | None = None,
                  generated_at: datetime | None = None) -> int:
    """Write every report for a run; return 0 (all passed), 1 (mismatches) or 2 (errors).

    `baseline` is a previous result.json path (missing file = first run, noted in baseline.md) or
    the previous suites themselves. `env` replaces os.environ for the step-summary lookup."""
    suites = as_suites(results)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    thresholds = {"rel_threshold": rel_threshold, "abs_threshold_s": abs_threshold_s}

    cmp: BaselineComparison | None = None
    if isinstance(baseline, (str, Path)):
        cmp = compare_with_file(suites, baseline, **thresholds)
    elif baseline is not None:
        cmp = compare_suites(suites, list(baseline), **thresholds)

    code = exit_code(suites)
    for name, text in cbspider_files(suites).items():
        (out / name).write_text(text, encoding="utf-8")
    (out / "report.md").write_text(render_report_md(suites, title=title), encoding="utf-8")
    (out / "junit.xml").write_text(render_junit(suites), encoding="utf-8")
    document = build_document(suites, status=overall_status(suites), exit_code=code, baseline=cmp,
                              generated_at=generated_at)
    (out / "result.json").write_text(dumps_document(document), encoding="utf-8")
    if cmp is not None:
        (out / "baseline.md").write_text(render_baseline_md(cmp), encoding="utf-8")
    for suite in suites:
        for table in suite.tables:
            write_csv(table, out / table_file(table))
        for chart in suite.charts:
            write_chart(chart, out, chart_stem(chart))
    summary = render_summary_md(suites, title=title, baseline=cmp)
    (out / "summary.md").write_text(summary, encoding="utf-8")
    append_step_summary(summary, env)
    return code
