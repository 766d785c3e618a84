"""Faults on MOCK connections (``/spider/mock/faults``): Cloud-Twin's rule schema applied at the boto3
boundary, answered by botocore as AWS would (``RequestLimitExceeded``, ``Unavailable``, preset codes,
connection errors), retried by the request-limit policy where AWS's SDKs would retry."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from mock_driver.fault_hooks import FAULT_PARAM, error_response, install
from mock_driver.faults import FAULTS, MockFaults, operation_name

N = int(os.environ.get("SPIDERTWIN_MOCK_FAULT_N", "100"))


@pytest.fixture(autouse=True)
def _no_rules_left():
    FAULTS.clear()
    yield
    FAULTS.clear()


async def test_throttle_at_10_writes_per_second_gives_no_user_visible_failure(mock_server):
    srv = mock_server
    added = await srv.call("POST", "mock/faults", {"kind": "throttle", "match": {"method": "POST"},
                                                   "rate": 10, "burst": 10})
    assert added.status == 200, added.text
    started = time.monotonic()
    replies = await asyncio.gather(*(srv.call("POST", "keypair", srv.body({"Name": f"tk-{i:03d}"}))
                                     for i in range(N)))
    took = time.monotonic() - started
    failures = [r.text for r in replies if r.status != 200]
    assert failures == []
    events = (await srv.call("GET", "mock/events", params={"kind": "fault.throttle"})).json
    throttled = events["counts"].get("fault.throttle", 0)
    assert throttled > 0 and all(e["operation"] == "ec2:CreateKeyPair" for e in events["events"])
    limits = (await srv.call("GET", "limitinfo", params={"ConnectionName": srv.conn})).json["limitinfo"][0]
    assert limits["retries"] >= throttled and limits["gave_up"] == 0
    assert took >= (N - 10) / 10 * 0.9  # the CSP's rate bounds it: delayed, not failed
    metrics = (await srv.call("GET", "metrics")).text
    assert f'spider_limiter_retried_total{{connection="{srv.conn}"}}' in metrics
    assert 'spider_csp_call_duration_seconds_count{cloud="MOCK",operation="create_key_pair",outcome="error"}' \
        in metrics
    print(f"\nMOCK throttle 10 writes/s: {N} concurrent key pair creates, 0 failures, {throttled} throttled "
          f"answers retried, {took:.1f} s ({N / took:.1f} creates/s)")


async def test_outage_error_preset_and_count_reach_the_client_with_aws_codes(mock_server):
    srv = mock_server
    await srv.call("POST", "mock/faults", [
        {"id": "down", "kind": "outage", "match": {"operation": "ec2:CreateVpc"}, "count": 1},
        {"id": "quota", "kind": "error", "preset": "quota", "match": {"operation": "ec2:CreateSecurityGroup"},
         "count": 1}])
    vpc = {"Name": "fv-1", "IPv4_CIDR": "10.0.0.0/16", "SubnetInfoList": [{"Name": "s1", "IPv4_CIDR": "10.0.1.0/24"}]}
    first = await srv.call("POST", "vpc", srv.body(vpc))
    assert first.status == 500 and first.json["message"].startswith("Unavailable: The service is unavailable")
    second = await srv.call("POST", "vpc", srv.body(vpc))  # count 1: the next call succeeds
    assert second.status == 200, second.text
    sg = {"Name": "fsg", "VPCName": "fv-1", "SecurityRules": []}
    quota = await srv.call("POST", "securitygroup", srv.body(sg))
    assert quota.status == 500 and quota.json["message"].startswith("InstanceLimitExceeded:")
    assert (await srv.call("POST", "securitygroup", srv.body(sg))).status == 200
    listed = (await srv.call("GET", "mock/faults")).json["faults"]
    assert {f["id"]: (f["hits"], f["active"]) for f in listed} == {"down": (1, False), "quota": (1, False)}
    # nothing was left behind by the failed creates
    assert (await srv.call("GET", "countvpc/" + srv.conn)).json == {"count": 1}


async def test_reset_and_hang_are_connection_errors(mock_server):
    srv = mock_server
    await srv.call("POST", "mock/faults", {"kind": "outage", "mode": "reset", "match": {"operation": "ec2:CreateKeyPair"},
                                           "count": 1})
    reset = await srv.call("POST", "keypair", srv.body({"Name": "rk"}))
    assert reset.status == 500 and "ConnectionClosedError" in reset.json["message"]
    await srv.call("DELETE", "mock/faults")
    await srv.call("POST", "mock/faults", {"kind": "outage", "mode": "hang", "duration": 0.5,
                                           "match": {"operation": "ec2:CreateKeyPair"}})
    started = time.monotonic()
    hung = await srv.call("POST", "keypair", srv.body({"Name": "hk"}))
    assert hung.status == 500 and "ReadTimeoutError" in hung.json["message"]
    assert 0.3 <= time.monotonic() - started < 5


async def test_latency_delays_without_holding_other_calls(mock_server):
    srv = mock_server
    await srv.call("POST", "mock/faults", {"kind": "latency", "fixed": 0.5, "match": {"operation": "ec2:CreateKeyPair"}})
    started = time.monotonic()
    replies = await asyncio.gather(*(srv.call("POST", "keypair", srv.body({"Name": f"lk-{i}"})) for i in range(10)))
    took = time.monotonic() - started
    assert all(r.status == 200 for r in replies)
    assert 0.5 <= took < 2.5  # concurrent, not 10 x 0.5 s behind the serialised moto
    events = (await srv.call("GET", "mock/events", params={"kind": "fault.latency"})).json["events"]
    assert len(events) == 10 and events[0]["detail"] == {"seconds": 0.5}


async def test_bad_rules_are_refused_whole(mock_server):
    srv = mock_server
    cases = [({"kind": "stuck"}, "kind: one of throttle, error, latency, outage for MOCK"),
             ({"kind": "throttle"}, "rate: requests per second"),
             ([{"kind": "latency", "fixed": 1}, {"kind": "error"}], "faults[1]: status"),
             ({"kind": "outage", "match": {"zone": "z"}}, "match.zone"),
             ({"kind": "latency", "fixed": 1, "match": {"colour": "red"}}, "match: an object with keys")]
    for doc, text in cases:
        reply = await srv.call("POST", "mock/faults", doc)
        assert reply.status == 400 and text in reply.json["message"], (doc, reply.text)
    assert (await srv.call("GET", "mock/faults")).json == {"faults": []}
    bad_json = await srv.call("POST", "mock/faults", data="{", headers={"Content-Type": "application/json"})
    assert bad_json.status == 400
    assert (await srv.call("DELETE", "mock/faults/none")).status == 404


def test_hooks_answer_in_the_service_format_parsed_by_botocore():
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("elbv2", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    install(client)
    with pytest.raises(ClientError) as err:
        client.describe_load_balancers(**{FAULT_PARAM: {"status": 503, "code": "Throttling", "message": "slow down"}})
    assert err.value.response["Error"] == {"Type": "Sender", "Code": "Throttling", "Message": "slow down"}
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    model = client.meta.service_model.operation_model("DescribeLoadBalancers")
    http, parsed = error_response(model, 400, "A&B", "<x>")
    assert http.status_code == 400 and parsed["Error"]["Code"] == "A&B" and parsed["Error"]["Message"] == "<x>"


def test_rules_match_mock_attributes_and_replay_with_a_seed():
    faults = MockFaults(seed=7)
    faults.add({"kind": "error", "status": 500, "probability": 0.5, "match": {"project": "alice", "method": "POST"}})
    attrs = {"cloud": "mock", "project": "alice", "region": "default", "service": "ec2",
             "operation": "ec2:CreateVpc", "method": "POST"}
    first = [faults.decide(attrs).fault is not None for _ in range(20)]
    again = MockFaults(seed=7)
    again.add({"kind": "error", "status": 500, "probability": 0.5, "match": {"project": "alice", "method": "POST"}})
    assert [again.decide(attrs).fault is not None for _ in range(20)] == first
    assert 0 < sum(first) < 20
    assert faults.decide({**attrs, "project": "bob"}).fault is None
    assert faults.decide({**attrs, "method": "GET"}).fault is None
    assert operation_name("describe_vpcs") == "DescribeVpcs"
