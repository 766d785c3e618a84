"""Report rendering shared by every suite: CB-Spider markdown, a 4-way SG matrix, JUnit XML, JSON,
a baseline diff and the GitHub step summary. Suites fill the dataclasses in `reports.model`."""
from reports.model import (CBSPIDER_COLUMNS, CaseResult, Check, LatencyChart, MetricsTable, RuleDiff,
                           SgCase, SgCell, SgSuite, SuiteResult, compare, rule_text, threshold_check)

__all__ = ["CBSPIDER_COLUMNS", "CaseResult", "Check", "LatencyChart", "MetricsTable", "RuleDiff",
           "SgCase", "SgCell", "SgSuite", "SuiteResult", "compare", "rule_text", "threshold_check"]
