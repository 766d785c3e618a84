"""sgtest without root: the rule model against CB-Spider's documented tables, the generated matrix,
case-file validation, and whole runs with the ``model`` prober through a Spider (MOCK and CLOUDTWIN
connections on both twin profiles), including runs that must fail with (X) cells."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sgtest.cases import CBSPIDER, ClientContext, format_tuple
from sgtest.cli import main as sgtest_main
from sgtest.expect import SkipPolicy, evaluate, plan_suite
from sgtest.generate import generated_suite
from sgtest.probers.netns import probe_body
from sgtest.probers.base import ProbeBatch, ProbeRequest, VMTarget
from sgtest.probers.ssh import outbound_passed, outbound_remote, ssh_command
from sgtest.rules import DEFAULT_EGRESS, Probe, Rule, RuleError, add_rules, allows, remove_rules
from sgtest.schema import CaseFileError, builtin_suite, load_suite
from spider_helpers import REPO, SpiderProcess, TwinSubprocess
from test_cloudtwin_spider import register

CLIENTS = ("203.0.113.10", "10.77.0.2", "4.5.6.8")


# ------------------------------------------------------------------------------------ rule model

@pytest.mark.parametrize("suite", ["cbspider-inbound", "cbspider-outbound"])
@pytest.mark.parametrize("client", CLIENTS)
def test_model_reproduces_every_documented_cbspider_row(suite, client):
    s = builtin_suite(suite)
    plans = plan_suite(s, ClientContext(client), SkipPolicy.cbspider())
    assert [p.case.id for p in plans] == ["01", "02", "03", "04", "05", "06", "10", "11", "20", "21"]
    for p in plans:
        assert p.case.cbspider_expected is not None
        assert p.expected == p.case.cbspider_expected, (
            f"{suite} case {p.case.id}: model {format_tuple(p.expected)} vs "
            f"documented {format_tuple(p.case.cbspider_expected)}")
        assert not p.documented_conflicts
        assert all(sp.error is None for sp in p.steps), "every CB-Spider change is accepted"


def test_model_reproduces_the_documented_create_add_list_get_readback():
    s = builtin_suite("cbspider-rules")
    ctx = ClientContext(CLIENTS[0])
    plans = plan_suite(s, ctx, SkipPolicy.cbspider())
    assert all(sp.error is None for p in plans for sp in p.steps), "against MOCK every add succeeds (§9)"
    documented = {r.rule(ctx) for r in plans[-1].case.cbspider_readback}
    assert len(documented) == 7
    assert set(plans[-1].rules_after) == documented | {DEFAULT_EGRESS}


def test_rule_normalisation_and_validation():
    assert Rule.from_cbspider({"direction": "INBOUND", "ipprotocol": "all", "fromport": "1", "toport": "2"}) == \
        Rule("inbound", "ALL", -1, -1, "0.0.0.0/0")
    assert Rule.of("outbound", "-1") == DEFAULT_EGRESS
    assert Rule.of("inbound", "icmp", 8, 0).from_port == -1
    assert Rule.of("inbound", "tcp", "22", "22", "10.1.2.3/24").cidr == "10.1.2.0/24"
    for bad in (("sideways", "TCP", 1, 1), ("inbound", "GRE", 1, 1), ("inbound", "TCP", 0, 5),
                ("inbound", "TCP", 5, 70000), ("inbound", "UDP", 10, 5), ("inbound", "TCP", "x", "1")):
        with pytest.raises(RuleError):
            Rule.of(*bad)
    with pytest.raises(RuleError):
        Rule.of("inbound", "TCP", 1, 1, "300.0.0.0/8")


def test_ranges_edges_cidrs_all_icmp():
    c = "10.77.0.2"
    tcp = [Rule.of("inbound", "TCP", 1000, 1005, f"{c}/32")]
    assert [allows(tcp, Probe("inbound", "tcp", p, c)) for p in (999, 1000, 1005, 1006)] == [False, True, True, False]
    assert not allows(tcp, Probe("inbound", "udp", 1000, c)), "TCP does not open UDP"
    assert not allows(tcp, Probe("inbound", "tcp", 1000, "10.77.0.3")), "/32 is one host"
    assert not allows(tcp, Probe("outbound", "tcp", 1000, c)), "direction matters"
    edges = [Rule.of("inbound", "UDP", 1, 1), Rule.of("inbound", "UDP", 65535, 65535)]
    assert [allows(edges, Probe("inbound", "udp", p, c)) for p in (1, 2, 65534, 65535)] == [True, False, False, True]
    nets = {"0.0.0.0/0": True, "10.0.0.0/8": True, "10.77.0.0/24": True, "10.77.1.0/24": False,
            "4.5.6.7/32": False, f"{c}/32": True}
    for cidr, want in nets.items():
        assert allows([Rule.of("inbound", "ICMP", cidr=cidr)], Probe("inbound", "icmp", None, c)) is want, cidr
    everything = [Rule.of("outbound", "ALL")]
    assert all(allows(everything, Probe("outbound", p, 22 if p != "icmp" else None, c)) for p in ("tcp", "udp", "icmp"))
    assert not allows([Rule.of("inbound", "ICMP")], Probe("inbound", "tcp", 22, c)), "ICMP opens no port"


def test_stateful_return_traffic():
    c = "10.77.0.2"
    only_in = [Rule.of("inbound", "TCP", 22, 22)]
    probe = Probe("inbound", "tcp", 22, c)
    assert allows(only_in, probe), "the reply needs no outbound rule: groups are stateful"
    assert not allows(only_in, probe, stateful=False), "without connection tracking the reply is dropped"
    assert allows(only_in + [Rule.of("outbound", "TCP", 1, 65535)], probe, stateful=False)
    row = evaluate(only_in, CBSPIDER, ClientContext(c), SkipPolicy(False, False), stateful=False)
    assert row == ["fail"] * 8


def test_duplicate_add_and_remove_missing_are_rejected_whole():
    base = (DEFAULT_EGRESS, Rule.of("inbound", "TCP", 22, 22))
    dup = add_rules(base, [Rule.of("inbound", "TCP", 1000, 1000), Rule.of("inbound", "tcp", 22, 22)])
    assert dup.error and "already has this rule" in dup.error and dup.rules == base
    assert add_rules(base, [Rule.of("inbound", "ALL")]).error is None, "ALL does not cover a TCP rule (§9)"
    miss = remove_rules(base, [Rule.of("inbound", "TCP", 22, 22), Rule.of("inbound", "TCP", 22, 22, "1.2.3.4/32")])
    assert miss.error and "does not have this rule" in miss.error and miss.rules == base
    assert remove_rules(base, [DEFAULT_EGRESS]).rules == (Rule.of("inbound", "TCP", 22, 22),)


# ------------------------------------------------------------------------------------ generator

def test_generated_matrix_is_large_well_formed_and_model_derived():
    s = generated_suite()
    assert len(s.cases) >= 200
    assert len({c.id for c in s.cases}) == len(s.cases)
    ctx = ClientContext("10.77.0.2")
    plans = plan_suite(s, ctx, SkipPolicy(False, False))
    rules = [r for p in plans for sp in p.steps for r in sp.rules]
    assert {r.protocol for r in rules} == {"TCP", "UDP", "ICMP", "ALL"}
    assert {r.direction for r in rules} == {"inbound", "outbound"}
    assert {1, 65535} <= {r.from_port for r in rules} | {r.to_port for r in rules}
    cidrs = {r.cidr for r in rules}
    assert {"0.0.0.0/0", "10.77.0.2/32", "10.77.0.0/24", "4.5.6.7/32", "10.0.0.0/8"} <= cidrs
    errors = [sp.error for p in plans for sp in p.steps if sp.error]
    assert any("already has" in e for e in errors) and any("does not have" in e for e in errors)
    for p in plans:
        assert p.case.columns and len(p.expected) == len(p.case.columns)
        assert set(p.expected) <= {"pass", "fail"}, "netns/model observe everything: no skips"
    assert set(plans[-1].rules_after) == {Rule.of("inbound", "TCP", 22, 22), DEFAULT_EGRESS}, "ends where it began"
    stateful = [p for p in plans if "stateful-in" in p.case.title and "pass" in p.expected]
    assert stateful and all(not any(r.direction == "outbound" for r in p.rules_after) for p in stateful)
    assert all(len(p.steps) <= 2 for p in plans), "minimal state changes per case"


# ------------------------------------------------------------------------------------ case files

GOOD_CASE = """
suite: mine
initial_rules: [{Direction: inbound, IPProtocol: TCP, FromPort: "22", ToPort: "22"}]
cases:
  - id: "a1"
    steps:
      - add: [{Direction: inbound, IPProtocol: TCP, FromPort: "1000", ToPort: "1000", CIDR: "${CLIENT1_IP}/32"}]
"""


@pytest.mark.parametrize("text,case,field,words", [
    (GOOD_CASE.replace("IPProtocol: TCP, FromPort: \"1000\"", "IPProtocol: GRE, FromPort: \"1000\""),
     "a1", "steps[0].add[0].IPProtocol", "GRE"),
    (GOOD_CASE.replace(', ToPort: "1000", CIDR', ', CIDR'), "a1", "steps[0].add[0].ToPort", "missing"),
    (GOOD_CASE.replace("${CLIENT1_IP}", "${CLIENT9}"), "a1", "steps[0].add[0]", "CLIENT9"),
    (GOOD_CASE.replace('FromPort: "1000", ToPort: "1000"', 'FromPort: "2000", ToPort: "1000"'),
     "a1", "steps[0].add[0].FromPort", "greater"),
    (GOOD_CASE + '    cbspider_expected: pass pass\n', "a1", "cbspider_expected", "2 values for 8 columns"),
    (GOOD_CASE + '    cbspider_expected: pass pass pass maybe pass pass pass pass\n', "a1", "cbspider_expected",
     "maybe"),
    (GOOD_CASE.replace("      - add:", "      - append:"), "a1", "steps[0].append", "unknown step"),
    (GOOD_CASE + '    colour: blue\n', "a1", "colour", "unknown case key"),
    (GOOD_CASE.replace('id: "a1"', 'title: no id'), None, "cases[0].id", "missing"),
    (GOOD_CASE.replace("suite: mine", "suite: mine\ncolumns: [{direction: inbound, proto: sctp, port: 1}]"),
     None, "columns[0].proto", "sctp"),
])
def test_case_file_errors_name_file_case_and_field(tmp_path, text, case, field, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(CaseFileError) as info:
        load_suite(path)
    err = info.value
    assert err.file == str(path) and err.case == case and err.field == field, str(err)
    assert str(path) in str(err) and field in str(err) and words in str(err)
    if case:
        assert f"case '{case}'" in str(err)


def test_case_file_syntax_error_and_good_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("suite: x\ncases: [\n")
    with pytest.raises(CaseFileError, match=r"broken.yaml: not valid YAML \(line"):
        load_suite(path)
    path.write_text(GOOD_CASE)
    suite = load_suite(path)
    assert suite.cases[0].columns == CBSPIDER and suite.skip_rules == "prober"
    example = builtin_suite("example-user")
    assert len(example.cases) == 4 and example.cases[0].columns[0].name == "I:TCP (22)"


# ------------------------------------------------------------------------------------ probers

def test_netns_probe_body_uses_the_admin_api_names():
    vm = VMTarget("vm", "203.0.113.5", "192.168.1.4")
    batch = ProbeBatch(vm, (ProbeRequest("c0", "inbound", "tcp", 22, "10.77.0.2"),
                            ProbeRequest("c7", "outbound", "icmp", None, "10.77.0.2")))
    body = probe_body(batch, 300, cloud="cloud-1")
    assert body == {"timeout_ms": 300, "probes": [
        {"id": "c0", "vm_ip": "203.0.113.5", "proto": "tcp", "from": "client", "to": "203.0.113.5", "port": 22,
         "cloud": "cloud-1"},
        {"id": "c7", "vm_ip": "203.0.113.5", "proto": "icmp", "from": "vm", "to": "10.77.0.2", "cloud": "cloud-1"}]}


def test_ssh_prober_commands_and_markers():
    vm = VMTarget("vm", "198.51.100.20", key_file="/tmp/k.pem")
    cmd = ssh_command(vm, outbound_remote("tcp", 1000, "203.0.113.9"))
    assert cmd[:3] == ["ssh", "-i", "/tmp/k.pem"] and "StrictHostKeyChecking=no" in cmd
    assert cmd[-2:] == ["cb-user@198.51.100.20", "nc -w3 -zvt 203.0.113.9 1000"]
    assert outbound_remote("udp", 2000, "1.2.3.4") == "nc -w3 -zvu 1.2.3.4 2000"
    assert outbound_remote("icmp", None, "1.2.3.4") == "ping -w3 -c3 1.2.3.4"
    assert outbound_passed("tcp", "Connection to 1.2.3.4 1000 port [tcp/*] succeeded!")
    assert not outbound_passed("tcp", "nc: connect to 1.2.3.4 port 1000 (tcp) timed out: Operation now in progress")
    assert outbound_passed("icmp", "64 bytes from 1.2.3.4: icmp_seq=1 ttl=64 time=0.05 ms")
    assert not outbound_passed("icmp", "3 packets transmitted, 0 received, 100% packet loss")


# ------------------------------------------------------------------------------------ whole runs

@pytest.fixture(scope="module")
def twin():
    t = TwinSubprocess("--cloud", "cloud-1=openstack", "--cloud", "cloud-2=lean-egress").start()
    try:
        yield t
    finally:
        t.stop()


@pytest.fixture(scope="module")
def spider(twin, tmp_path_factory):
    srv = SpiderProcess(tmp_path_factory.mktemp("sg-spider"), command="demo").start()  # demo registers MOCK
    try:
        register(srv.url, twin.url, ["cloud-1", "cloud-2"])
        yield srv
    finally:
        srv.stop()


def run_cli(spider, twin, conn: str, out: Path, *extra: str) -> int:
    return sgtest_main(["--server", spider.base, "--connection", conn, "--twin", twin.url, "--out", str(out),
                        "--quiet", *extra])


def result_doc(out: Path) -> dict:
    return json.loads((out / "result.json").read_text())


def assert_nothing_left(spider, conn: str) -> None:
    for kind in ("vm", "securitygroup", "keypair", "vpc"):
        listing = requests.get(f"{spider.url}/{kind}", params={"ConnectionName": conn}, timeout=30).json()
        assert not [i for i in listing[kind] if i["IId"]["NameId"].startswith("SG-Rules-Test")], (kind, listing)


def test_model_prober_all_suites_against_mock_through_the_spider_command(spider, twin, tmp_path):
    out = tmp_path / "mock"
    proc = subprocess.run([sys.executable, "-m", "spider_core.cli", "sgtest", "--server", spider.base,
                           "--connection", "mock-config01", "--suite", "all", "--out", str(out), "--quiet"],
                          cwd=REPO, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    doc = result_doc(out)
    names = [s["name"] for s in doc["suites"]]
    assert names == ["cbspider-rules", "cbspider-inbound", "cbspider-outbound", "generated"]
    assert all(s["status"] == "pass" for s in doc["suites"])
    [outfile] = out.glob("mock-result-*.out")
    text = outfile.read_text()
    assert "[mock-02.inbound-case-02.sh-Test:" in text and "(X)" not in text
    assert " fail / fail | fail / fail | skip / skip | fail / fail | | skip / skip |" in text
    assert {"report.md", "junit.xml", "summary.md"} <= {p.name for p in out.iterdir()}
    assert_nothing_left(spider, "mock-config01")


@pytest.mark.parametrize("cloud", ["cloud-1", "cloud-2"], ids=["openstack", "lean-egress"])
def test_model_prober_all_suites_against_cloudtwin_profiles(spider, twin, tmp_path, cloud):
    conn = f"cloudtwin-{cloud}-config"
    out = tmp_path / cloud
    assert run_cli(spider, twin, conn, out, "--suite", "all") == 0
    doc = result_doc(out)
    suites = {s["name"]: s for s in doc["suites"]}
    assert suites["generated"]["counts"]["tests"] >= 200
    for s in doc["suites"]:
        assert s["status"] == "pass", (s["name"], [c for c in s["cases"] if c["status"] != "pass"][:2])
    inbound = suites["cbspider-inbound"]["sg"]["cases"]
    assert inbound[0]["readback_rules"][-1] == {"Direction": "outbound", "IPProtocol": "ALL", "FromPort": "-1",
                                                "ToPort": "-1", "CIDR": "0.0.0.0/0"}, "default egress on both profiles"
    assert (out / f"cloudtwin-result-{inbound[0]['timestamp'][5:7]}.{inbound[0]['timestamp'][8:10]}.out").exists()
    assert_nothing_left(spider, conn)
    state = twin.admin("GET", f"/state?cloud={cloud}")["clouds"][0]["objects"]["RegionOne"]
    assert state["servers"] == 0 and state["keypairs"] == 0 and state["floatingips"] == 0


def test_wrong_documented_expectation_gives_x_cells_and_nonzero_exit(spider, twin, tmp_path):
    cases = tmp_path / "wrong.yaml"
    cases.write_text((REPO / "sgtest/cases/cbspider-inbound.yaml").read_text()
                     .replace("suite: cbspider-inbound", "suite: wrong-claims")
                     .replace("cbspider_expected: pass pass skip fail | pass pass pass pass",
                              "cbspider_expected: pass fail skip fail | pass pass pass pass"))
    out = tmp_path / "wrong"
    code = run_cli(spider, twin, "mock-config01", out, "--cases", str(cases))
    assert code != 0
    [outfile] = out.glob("mock-result-*.out")
    rows = outfile.read_text().split("\n\n")
    case04 = next(r for r in rows if "-04.inbound-case-04.sh-" in r)
    assert " fail / pass (X) |" in case04 and case04.count("(X)") == 1, case04
    assert sum(r.count("(X)") for r in rows) == 1, "exactly the wrong cell"
    doc = result_doc(out)
    [bad] = [c for c in doc["suites"][0]["cases"] if c["status"] != "pass"]
    assert bad["id"] == "04" and any("documented expectation" in e for e in bad["errors"])


def test_api_that_answers_differently_is_flagged(spider, twin, tmp_path):
    """A rule delete the cloud refuses (one injected Neutron error): RemoveRules fails, the read-back
    keeps the inbound ALL rule, so from case 02 on the model on the read-back disagrees with the
    expectation; case 01 (before the fault) stays clean."""
    fault = twin.admin("POST", "/faults", {"kind": "error", "preset": "internal", "count": 1,
                                           "match": {"cloud": "cloud-2", "operation": "network:security_group_rule:delete"}})
    out = tmp_path / "fault"
    try:
        code = run_cli(spider, twin, "cloudtwin-cloud-2-config", out, "--suite", "cbspider-inbound")
    finally:
        twin.admin("DELETE", f"/faults/{fault['fault']['id']}")
    assert code != 0
    doc = result_doc(out)
    cases = {c["id"]: c for c in doc["suites"][0]["sg"]["cases"]}
    assert not cases["02"]["api_match"] and "Spider answered" in " ".join(cases["02"]["errors"])
    assert cases["02"]["api_diff"]["unexpected"][0]["IPProtocol"] == "ALL"
    [outfile] = out.glob("cloudtwin-result-*.out")
    row02 = next(r for r in outfile.read_text().split("\n\n") if "-02.inbound-case-02.sh-" in r)
    row01 = next(r for r in outfile.read_text().split("\n\n") if "-01.inbound-case-01.sh-" in r)
    assert "(X)" not in row01
    assert row02.count("(X)") == 3 and row02.count("fail / pass (X)") == 3, row02
    assert_nothing_left(spider, "cloudtwin-cloud-2-config")


def test_refuses_to_touch_existing_resources(spider, twin, tmp_path):
    q = {"ConnectionName": "mock-config01"}
    r = requests.post(f"{spider.url}/keypair", json={**q, "ReqInfo": {"Name": "SG-Rules-Test-keypair-01"}}, timeout=30)
    assert r.status_code == 200, r.text
    try:
        assert run_cli(spider, twin, "mock-config01", tmp_path / "x", "--suite", "cbspider-inbound") == 2
        assert requests.get(f"{spider.url}/keypair/SG-Rules-Test-keypair-01", params=q, timeout=30).status_code == 200
        assert requests.get(f"{spider.url}/vpc", params=q, timeout=30).json() == {"vpc": []}
    finally:
        requests.delete(f"{spider.url}/keypair/SG-Rules-Test-keypair-01", json=q, timeout=30)
