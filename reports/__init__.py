"""Report rendering shared by every suite: CB-Spider markdown, a 4-way SG matrix, JUnit XML, JSON,
a baseline diff, CSV/SVG for load tests and the GitHub step summary.

Suites fill the dataclasses in `reports.model` and call `write_reports(result, out_dir)`, which
writes everything and returns the exit code (0 pass, 1 mismatches, 2 errors)."""
from reports.baseline import BaselineComparison, compare_suites, compare_with_file
from reports.model import (CBSPIDER_COLUMNS, CaseResult, Check, LatencyChart, MetricsTable, RuleDiff,
                           SgCase, SgCell, SgSuite, SuiteResult, compare, rule_text, threshold_check)
from reports.writer import EXIT_ERRORS, EXIT_FAILURES, EXIT_OK, exit_code, write_reports

__all__ = ["BaselineComparison", "CBSPIDER_COLUMNS", "CaseResult", "Check", "EXIT_ERRORS", "EXIT_FAILURES",
           "EXIT_OK", "LatencyChart", "MetricsTable", "RuleDiff", "SgCase", "SgCell", "SgSuite",
           "SuiteResult", "compare", "compare_suites", "compare_with_file", "exit_code", "rule_text",
           "threshold_check", "write_reports"]
