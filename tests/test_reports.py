"""The shared reports package: CB-Spider's result file byte for byte, the 4-way SG report, JUnit XML,
result.json, the baseline diff, exit codes and the GitHub step summary."""
from __future__ import annotations

import csv
import json
import re
import xml.etree.ElementTree as ET
from datetime import datetime
from pathlib import Path

import pytest

from reports import (CBSPIDER_COLUMNS, EXIT_ERRORS, EXIT_FAILURES, EXIT_OK, CaseResult, LatencyChart,
                     MetricsTable, RuleDiff, SgCase, SgCell, SgSuite, SuiteResult, compare_suites,
                     threshold_check, write_reports)
from reports.document import SCHEMA_VERSION, read_document, read_suites
from reports.render import cbspider_header, cbspider_separator, render_cbspider, render_junit

REFERENCE = Path("/work/shared/reference/sg-validation.md")

# sg-validation.md section 8, copied literally: the example result block.
CBSPIDER_EXAMPLE = (
    "[aws-03.inbound-case-03.sh-Test:2026.08.19-13:45:12]\n"
    "I:TCP-01 <br> (22) | I:TCP-02 <br> (1000) | I:UDP-01 <br> (2000) | I:ICMP-01 <br> (ping) |  |"
    "O:TCP-01 <br> (22) | O:TCP-02 <br> (1000) | O:UDP-01 <br> (2000) | O:ICMP-01 <br> (ping)\n"
    "-- | -- | -- | -- | -- | -- | -- | -- | --\n"
    " pass / pass | fail / fail | skip / skip | fail / pass (X) | | pass / pass | pass / pass | pass / pass | pass / pass |\n"
    "\n"
)

TCP22 = {"Direction": "inbound", "IPProtocol": "TCP", "FromPort": "22", "ToPort": "22", "CIDR": "0.0.0.0/0"}
ALL_IN = {"Direction": "inbound", "IPProtocol": "ALL", "FromPort": "-1", "ToPort": "-1", "CIDR": "0.0.0.0/0"}


def make_cells(expected: str, observed: str, model: str | None = None,
               columns=CBSPIDER_COLUMNS) -> list[SgCell]:
    """Cells from space-separated values; an observed `skip` means the probe was not run."""
    model = model or expected
    return [SgCell(col, e, m, o, ran=o != "skip", latency_ms=None if o == "skip" else 0.25)
            for col, e, m, o in zip(columns, expected.split(), model.split(), observed.split())]


def make_case(case_id: str, expected: str, observed: str, *, model: str | None = None,
              csp: str = "aws", when: datetime = datetime(2026, 8, 19, 13, 45, 12),
              duration_s: float = 0.2, **kwargs) -> SgCase:
    return SgCase(case_id, f"{case_id}.inbound-case-{case_id}.sh", csp, when,
                  make_cells(expected, observed, model), duration_s=duration_s, **kwargs)


ALL_PASS = "pass pass pass pass pass pass pass pass"


def inbound_suite(*cases: SgCase, errors: list[str] | None = None) -> SgSuite:
    return SgSuite("cbspider-inbound", "cloudtwin", "cloudtwin-cloud-1-config",
                   datetime(2026, 8, 19, 13, 44, 0), list(cases), duration_s=2.1, prober="netns",
                   errors=errors or [])


def example_case(csp: str = "aws") -> SgCase:
    return make_case("03", "pass fail skip fail pass pass pass pass",
                     "pass fail skip pass pass pass pass pass", csp=csp)


# ---------------------------------------------------------------- CB-Spider result file

def test_cbspider_block_is_byte_exact_with_the_reference_example():
    assert render_cbspider([example_case()]) == CBSPIDER_EXAMPLE


def test_the_literal_example_is_the_one_in_the_reference():
    if not REFERENCE.exists():
        pytest.skip("shared reference not mounted; the literal copy above still pins the format")
    text = REFERENCE.read_text(encoding="utf-8")
    section = text[text.index("## 8. Result file format"):]
    block = re.search(r"```\n(.*?)```", section, re.S).group(1)
    assert block == CBSPIDER_EXAMPLE


def test_cbspider_file_name_and_cases_appended_in_order(tmp_path):
    first = make_case("01", ALL_PASS, ALL_PASS, csp="cloudtwin", when=datetime(2026, 8, 19, 13, 44, 0))
    third = example_case(csp="cloudtwin")
    write_reports(inbound_suite(first, third), tmp_path, env={})
    text = (tmp_path / "cloudtwin-result-08.19.out").read_text()
    assert text == render_cbspider([first]) + render_cbspider([third])
    assert text.startswith("[cloudtwin-01.inbound-case-01.sh-Test:2026.08.19-13:44:00]\n")
    assert text.count("\n\n[") == 1 and text.endswith("|\n\n")


def test_cbspider_file_follows_each_case_date_like_the_scripts(tmp_path):
    late = make_case("01", ALL_PASS, ALL_PASS, when=datetime(2026, 8, 19, 23, 59, 59))
    early = make_case("02", ALL_PASS, ALL_PASS, when=datetime(2026, 8, 20, 0, 0, 1))
    write_reports(inbound_suite(late, early), tmp_path, env={})
    assert (tmp_path / "aws-result-08.19.out").read_text().count("[aws-") == 1
    assert (tmp_path / "aws-result-08.20.out").read_text().count("[aws-") == 1


def test_cbspider_always_run_probe_expected_skip_is_marked_like_test_result():
    """CB-Spider's test_result compares the two words literally, so `skip / pass` gets (X)."""
    case = make_case("07", "skip fail skip fail skip skip skip skip",
                     "pass fail skip fail skip skip skip skip")
    row = render_cbspider([case]).splitlines()[3]
    assert row == (" skip / pass (X) | fail / fail | skip / skip | fail / fail | |"
                   " skip / skip | skip / skip | skip / skip | skip / skip |")


def test_cbspider_generated_columns():
    inbound_only = ["I:TCP 1-65535 from 10.0.0.5/32", "I:UDP-01 (2000)"]
    assert cbspider_header(inbound_only) == "I:TCP 1-65535 from 10.0.0.5/32 | I:UDP-01 <br> (2000)"
    assert cbspider_separator(inbound_only) == "-- | --"
    mixed = ["I:TCP 1-65535 from 10.0.0.5/32", "O:UDP 53 to 10.0.0.9/32"]
    assert cbspider_header(mixed) == "I:TCP 1-65535 from 10.0.0.5/32 |  |O:UDP 53 to 10.0.0.9/32"
    assert cbspider_separator(mixed) == "-- | -- | --"
    case = SgCase("g001", "g001.generated.sh", "cloudtwin", datetime(2026, 1, 2, 3, 4, 5),
                  make_cells("pass fail", "pass fail", columns=mixed))
    assert render_cbspider([case]).splitlines()[3] == " pass / pass | | fail / fail |"


# ---------------------------------------------------------------- 4-way report.md

def test_report_md_headline_matrix_and_readback_section(tmp_path):
    ok = make_case("01", ALL_PASS, ALL_PASS, duration_s=0.1, csp="cloudtwin")
    bad = make_case("03", "pass fail skip fail pass pass pass pass",
                    "pass fail skip pass pass pass pass pass",
                    model="pass pass skip fail pass pass pass pass", csp="cloudtwin",
                    description="AddRules inbound TCP 22/22", intended_rules=[ALL_IN, TCP22],
                    readback_rules=[ALL_IN], api_match=False,
                    api_diff=RuleDiff.between([ALL_IN, TCP22], [ALL_IN]))
    bad.cells[3].detail = "echo reply in 0.03 ms"
    write_reports(inbound_suite(ok, bad), tmp_path, env={})
    text = (tmp_path / "report.md").read_text()
    lines = text.splitlines()
    assert lines[0] == "# spidertwin test report"
    assert lines[2] == ("- cbspider-inbound on cloudtwin-cloud-1-config: 2 cases, 16 cells, "
                        "2 mismatches, 1 read-back diff, 2.1 s")
    assert ("| 03.inbound-case-03.sh | pass / pass / pass | **fail / pass / fail** ✗ | skip / skip / skip"
            " | **fail / fail / pass** ✗ |") in text
    assert "| 01.inbound-case-01.sh |" + " pass / pass / pass |" * 8 + " ✓ | 100 ms |" in text
    assert "| 03.inbound-case-03.sh | I:TCP-02 (1000) | fail | pass | fail | 0.25 ms | model |  |" in text
    assert ("| 03.inbound-case-03.sh | I:ICMP-01 (ping) | fail | fail | pass | 0.25 ms | observed |"
            " echo reply in 0.03 ms |") in text
    assert "echo reply in 0.03 ms" in (tmp_path / "junit.xml").read_text()
    assert ("| 03.inbound-case-03.sh | AddRules inbound TCP 22/22 | inbound TCP 22-22 0.0.0.0/0 | – |"
            in text)
    assert "\n\n\n" not in text


def test_report_md_all_clean_says_so(tmp_path):
    write_reports(inbound_suite(make_case("01", ALL_PASS, ALL_PASS)), tmp_path, env={})
    text = (tmp_path / "report.md").read_text()
    assert "1 case, 8 cells, 0 mismatches, 2.1 s" in text
    assert "None: in all 8 cells the model and the probe agree with the expectation." in text
    assert "All 1 cases read back exactly the intended rules." in text


def test_report_md_groups_cases_by_column_set():
    cols_a, cols_b = ["I:TCP 22", "I:TCP 23"], ["O:UDP 53"]
    cases = [SgCase(f"g{i}", f"g{i}.sh", "cloudtwin", datetime(2026, 1, 1),
                    make_cells(*(["pass " * len(cols)] * 2), columns=cols))
             for i, cols in enumerate([cols_a, cols_a, cols_b])]
    from reports.render import render_report_md
    text = render_report_md([SgSuite("gen", "cloudtwin", "c", datetime(2026, 1, 1), cases).to_suite_result()])
    assert text.count("| Case | I:TCP 22 | I:TCP 23 | API | Time |") == 1
    assert text.count("| Case | O:UDP 53 | API | Time |") == 1


# ---------------------------------------------------------------- JUnit XML

def test_junit_counts_failures_errors_and_properties(tmp_path):
    suite = inbound_suite(
        make_case("01", ALL_PASS, ALL_PASS),
        example_case(),
        make_case("04", ALL_PASS, ALL_PASS, errors=["AddRules: HTTP 500 <boom> & \x01 control"]),
        errors=["prepare: VM Status is not Running"])
    write_reports(suite, tmp_path, env={})
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert root.tag == "testsuites"
    (ts,) = root.findall("testsuite")
    assert (ts.get("name"), ts.get("tests"), ts.get("failures"), ts.get("errors"), ts.get("skipped")) == \
        ("cbspider-inbound", "4", "1", "2", "0")
    assert ts.get("time") == "2.100" and ts.get("timestamp") == "2026-08-19T13:44:00"
    props = {p.get("name"): p.get("value") for p in ts.find("properties")}
    assert props["csp"] == "cloudtwin" and props["prober"] == "netns" and props["mismatches"] == "1"
    cases = {c.get("name"): c for c in ts.findall("testcase")}
    assert list(cases) == ["01.inbound-case-01.sh", "03.inbound-case-03.sh", "04.inbound-case-04.sh",
                           "(suite setup)"]
    assert cases["01.inbound-case-01.sh"].find("failure") is None
    failure = cases["03.inbound-case-03.sh"].find("failure")
    assert failure.get("message") == "1 of 17 checks failed: observed I:ICMP-01 (ping)"
    assert failure.text == "observed I:ICMP-01 (ping): expected fail, observed pass"
    assert cases["03.inbound-case-03.sh"].get("classname") == "cbspider-inbound"
    assert cases["03.inbound-case-03.sh"].get("time") == "0.200"
    error = cases["04.inbound-case-04.sh"].find("error")
    assert error.get("message") == "AddRules: HTTP 500 <boom> & \ufffd control"
    assert cases["(suite setup)"].find("error").get("message") == "prepare: VM Status is not Running"


def test_junit_skipped_and_generic_checks():
    suite = SuiteResult("gen", cases=[
        CaseResult("a", "a", [threshold_check("p95", 42.0, 50.0, unit="ms")], duration_s=1.5),
        CaseResult("b", "b", skip_reason="needs root"),
    ])
    root = ET.fromstring(render_junit([suite]))
    assert (root.get("tests"), root.get("failures"), root.get("skipped")) == ("2", "0", "1")
    skipped = root.find("testsuite/testcase[@name='b']/skipped")
    assert skipped.get("message") == "needs root"


# ---------------------------------------------------------------- result.json

def test_result_json_round_trips(tmp_path):
    suite = inbound_suite(example_case(), make_case("01", ALL_PASS, ALL_PASS, intended_rules=[ALL_IN],
                                                    readback_rules=[ALL_IN]))
    write_reports(suite, tmp_path, env={}, generated_at=datetime(2026, 8, 19, 14, 0, 0))
    document = read_document(tmp_path / "result.json")
    assert document["schema_version"] == SCHEMA_VERSION
    assert document["generated_at"] == "2026-08-19T14:00:00"
    assert (document["status"], document["exit_code"]) == ("fail", EXIT_FAILURES)
    assert document["counts"] == {"tests": 2, "pass": 1, "fail": 1, "skip": 0, "error": 0}
    (loaded,) = read_suites(tmp_path / "result.json")
    assert loaded.sg == suite
    assert loaded.to_dict() == suite.to_suite_result().to_dict()
    cell = document["suites"][0]["sg"]["cases"][0]["cells"][3]
    assert cell == {"column": "I:ICMP-01 (ping)", "expected": "fail", "model": "fail",
                    "observed": "pass", "ran": True, "latency_ms": 0.25, "detail": ""}


def test_result_json_newer_schema_is_refused(tmp_path):
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"schema_version": SCHEMA_VERSION + 1, "suites": []}))
    with pytest.raises(ValueError, match="schema_version"):
        read_suites(path)


# ---------------------------------------------------------------- baseline

def test_baseline_finds_new_failure_fixed_case_and_timing(tmp_path):
    before = inbound_suite(
        make_case("01", ALL_PASS, ALL_PASS, duration_s=0.2),
        example_case(),                                              # failing before
        make_case("04", ALL_PASS, ALL_PASS, duration_s=1.0),
        make_case("05", ALL_PASS, ALL_PASS, duration_s=1.0))
    write_reports(before, tmp_path / "prev", env={})
    after = inbound_suite(
        make_case("01", ALL_PASS, "pass pass pass fail pass pass pass pass", duration_s=0.2),  # breaks
        make_case("03", "pass fail skip fail pass pass pass pass",
                  "pass fail skip fail pass pass pass pass"),                                # fixed
        make_case("04", ALL_PASS, ALL_PASS, duration_s=2.5),     # +150 %, +1.5 s: reported
        make_case("05", ALL_PASS, ALL_PASS, duration_s=1.05),    # +5 %: noise
        make_case("06", ALL_PASS, ALL_PASS))                     # new, passing
    code = write_reports(after, tmp_path / "now", baseline=tmp_path / "prev" / "result.json", env={})
    assert code == EXIT_FAILURES
    cmp = read_document(tmp_path / "now" / "result.json")["baseline"]
    assert [(c["case_id"], c["before"], c["after"]) for c in cmp["new_failures"]] == [("01", "pass", "fail")]
    assert cmp["new_failures"][0]["details"] == ["observed I:ICMP-01 (ping): expected pass, observed fail"]
    assert [(c["case_id"], c["before"], c["after"]) for c in cmp["fixed"]] == [("03", "fail", "pass")]
    assert [(t["case_id"], t["before_s"], t["after_s"]) for t in cmp["timing_changes"]] == [("04", 1.0, 2.5)]
    assert cmp["added"] == ["cbspider-inbound/06"] and cmp["removed"] == []
    text = (tmp_path / "now" / "baseline.md").read_text()
    assert "1 new failure, 1 fixed, 0 still failing, 1 timing change." in text
    assert "| cbspider-inbound | 01.inbound-case-01.sh | pass | fail |" in text
    assert "| cbspider-inbound | 03.inbound-case-03.sh | fail | pass |" in text
    assert "| cbspider-inbound | 04.inbound-case-04.sh | 1.0 s | 2.5 s | +150 % (+1.5 s) |" in text
    assert "Baseline" in (tmp_path / "now" / "summary.md").read_text()


def test_baseline_missing_file_is_a_first_run(tmp_path):
    code = write_reports(inbound_suite(make_case("01", ALL_PASS, ALL_PASS)), tmp_path,
                         baseline=tmp_path / "nope.json", env={})
    assert code == EXIT_OK
    assert "No baseline result was found" in (tmp_path / "baseline.md").read_text()
    assert read_document(tmp_path / "result.json")["baseline"]["available"] is False


def test_baseline_same_directory_compares_before_overwriting(tmp_path):
    write_reports(inbound_suite(example_case()), tmp_path, env={})
    write_reports(inbound_suite(make_case("03", "pass fail skip fail pass pass pass pass",
                                          "pass fail skip fail pass pass pass pass")),
                  tmp_path, baseline=tmp_path / "result.json", env={})
    assert [c["case_id"] for c in read_document(tmp_path / "result.json")["baseline"]["fixed"]] == ["03"]


def test_baseline_suite_setup_error_is_a_new_failure():
    cmp = compare_suites([inbound_suite(errors=["prepare failed"]).to_suite_result()],
                         [inbound_suite().to_suite_result()])
    assert [(c.case_id, c.before, c.after) for c in cmp.new_failures] == [("(suite)", None, "error")]
    assert cmp.added == []


# ---------------------------------------------------------------- exit codes

@pytest.mark.parametrize("case,suite_errors,code", [
    (make_case("01", ALL_PASS, ALL_PASS), [], EXIT_OK),
    (example_case(), [], EXIT_FAILURES),                                                      # observed
    (make_case("01", ALL_PASS, ALL_PASS, model="fail pass pass pass pass pass pass pass"), [], EXIT_FAILURES),
    (make_case("01", ALL_PASS, ALL_PASS, api_match=False), [], EXIT_FAILURES),                # read-back
    (make_case("01", ALL_PASS, "pass pass skip pass pass pass pass pass"), [], EXIT_FAILURES),  # not run
    (make_case("01", ALL_PASS, ALL_PASS, errors=["probe crashed"]), [], EXIT_ERRORS),
    (example_case(), ["prepare failed"], EXIT_ERRORS),
])
def test_exit_codes(tmp_path, case, suite_errors, code):
    assert write_reports(inbound_suite(case, errors=suite_errors), tmp_path, env={}) == code


def test_model_skip_expectation_is_not_compared():
    """Expected skip marks an unprovable UDP cell; the model's pass/fail there is not a mismatch."""
    case = make_case("02", "fail fail skip fail skip skip skip skip",
                     "fail fail skip fail skip skip skip skip",
                     model="fail fail fail fail pass pass pass pass")
    assert case.mismatched_cells() == [] and case.to_case_result().status == "pass"


# ---------------------------------------------------------------- GitHub step summary

def test_step_summary_appended_only_when_set(tmp_path, monkeypatch):
    summary = tmp_path / "step-summary.md"
    summary.write_text("earlier step\n")
    suite = inbound_suite(example_case())
    write_reports(suite, tmp_path / "a", env={"GITHUB_STEP_SUMMARY": str(summary)})
    text = summary.read_text()
    assert text.startswith("earlier step\n### ❌ spidertwin test report\n")
    assert text[len("earlier step\n"):] == (tmp_path / "a" / "summary.md").read_text()
    assert "| cbspider-inbound | 03.inbound-case-03.sh | fail |" in text

    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    write_reports(suite, tmp_path / "b")                          # env=None reads os.environ
    assert summary.read_text().count("### ❌ spidertwin test report") == 2

    monkeypatch.delenv("GITHUB_STEP_SUMMARY")
    write_reports(suite, tmp_path / "c")
    assert summary.read_text().count("### ❌ spidertwin test report") == 2


# ---------------------------------------------------------------- load-test pieces

def test_generic_suite_with_metrics_table_chart_and_gate(tmp_path):
    table = MetricsTable("Requests", ["Name", "Requests", "Failures", "p95 ms"],
                         [["GET /spider/vpc", 12000, 3, 41.5], ["POST /spider/vpc", 800, 0, None]])
    chart = LatencyChart("Latency over time", {"p50": [(0, 10.0), (10, 12.0)],
                                               "p95": [(10, 42.0), (0, 30.0)]})
    suite = SuiteResult("locust-create-vpc", "mock-config01", [
        CaseResult("gate", "threshold gate", [threshold_check("p95", 41.5, 50, unit="ms"),
                                              threshold_check("ops/s", 180, 200, higher_is_better=True)])],
        duration_s=60.0, tables=[table], charts=[chart])
    assert write_reports(suite, tmp_path, env={}) == EXIT_FAILURES
    with open(tmp_path / "requests.csv", newline="") as handle:
        assert list(csv.reader(handle)) == [["Name", "Requests", "Failures", "p95 ms"],
                                            ["GET /spider/vpc", "12000", "3", "41.5"],
                                            ["POST /spider/vpc", "800", "0", ""]]
    svg = ET.parse(tmp_path / "latency-over-time.svg").getroot()
    texts = "".join(svg.itertext())
    assert "latency (ms)" in texts and "time since start (s)" in texts and "p50" in texts and "p95" in texts
    assert (tmp_path / "latency-over-time.png").read_bytes().startswith(b"\x89PNG")
    report = (tmp_path / "report.md").read_text()
    assert "- locust-create-vpc on mock-config01: 1 case, 1 failed, 60.0 s" in report
    assert "| GET /spider/vpc | 12,000 | 3 | 41.50 |" in report
    assert "![Latency over time](latency-over-time.svg)" in report
    assert "ops/s: ops/s = 180, limit >= 200" in report
    assert not list(tmp_path.glob("*-result-*.out"))
